"""Graceful restarts under load (issue 18 point 8; docs/operations.md, "Restarts and deploys").

The app runs under gunicorn with the project's gunicorn.conf.py (two sync workers, production
settings) on PostgreSQL and Redis. Signed-in students enrol, mark blocks complete, undo and read
their pages from several threads while the master gets SIGHUP (reload) or SIGTERM (stop).
tests/restart_hooks.py adds, in that process only, a log of the requests the workers started
and a slow path that holds one completion in flight, half written, when the signal arrives.

Each student works alone in their enrolment, so every answer can be checked exactly (the
progress bar says how many blocks they have done) and so can the database afterwards.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from tests.conftest import (
    DATABASE_URL,
    ON_REAL_SERVERS,
    PASSWORD,
    REDIS_URL,
    Mailbox,
    base_config,
    free_port,
    make_course,
    make_user,
    wait_for,
)
from tests.test_learning import assert_progress_invariant
from webapp import mail
from webapp.extensions import db
from webapp.models import CompletedContentBlock, OutboxMessage, StudentCourse

ROOT = Path(__file__).resolve().parents[1]
GRACEFUL_TIMEOUT = 20  # gunicorn.conf.py
SLOW = 2.0  # seconds the slow completion stays in flight, half written
LEARNERS = 6

pytestmark = pytest.mark.postgres


@pytest.fixture
def real_servers():
    """gunicorn in production runs on PostgreSQL and Redis: skip on the stand-ins (not in CI)."""
    if not ON_REAL_SERVERS:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the restart tests: they need PostgreSQL and Redis")
        pytest.skip("gunicorn on the real servers: set TEST_DATABASE_URL and TEST_REDIS_URL")


# --- gunicorn ------------------------------------------------------------------------------------


class Gunicorn:
    """The master, as a deploy starts it, with tests/restart_hooks.py around the project's
    settings; its notes (``ready``/``start``/``slow`` lines) and its log."""

    def __init__(self, tmp_path: Path, **extra_env: str):
        self.port = free_port()
        self.log_path = tmp_path / "gunicorn.log"
        self.notes_path = tmp_path / "requests.log"
        env = {
            **os.environ,
            "LECTERN_ENV": "production",
            "SECRET_KEY": base_config()["SECRET_KEY"],
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "BASE_URL": "https://lectern.restart.invalid",
            "MAIL_SERVER": "127.0.0.1",  # nobody listens: mail would stay in the outbox
            "MAIL_PORT": str(free_port()),
            "OUTBOX_THREAD": "0",
            "LECTERN_INSTANCE": str(tmp_path / "instance"),
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "1",
            "MAX_REQUESTS": "0",
            "RESTART_TEST_LOG": str(self.notes_path),
            "RESTART_TEST_SLOW": str(SLOW),
            **extra_env,
        }
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "tests/restart_hooks.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> Gunicorn:
        try:
            self.workers_ready(lambda pids: len(pids) == 2, "two workers")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=GRACEFUL_TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def notes(self, kind: str) -> list[tuple[str, int]]:
        """(tag, pid) of every ``kind`` line so far."""
        if not self.notes_path.exists():
            return []
        lines = (line.split() for line in self.notes_path.read_text().splitlines())
        return [(tag, int(pid)) for k, tag, pid in lines if k == kind]

    def workers(self) -> set[int]:
        """The master's living worker processes."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, IndexError):
                continue
            if int(ppid) == self.proc.pid and state != "Z":
                found.add(int(stat.parent.name))
        return found

    def workers_ready(self, condition, what: str, timeout: float = 60) -> set[int]:
        """The living workers that have loaded the app, once ``condition`` holds for them."""

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")
            pids = self.workers() & {pid for _, pid in self.notes("ready")}
            return pids if condition(pids) else None

        return wait_for(ready, timeout, what)


# --- a client that tells "never got in" from "got in and was dropped" ---------------------------

_tags = itertools.count(1)


@dataclass
class Outcome:
    tag: str
    action: str
    status: int | None = None  # None: no answer (``error`` says why)
    error: str = ""  # "refused": the connection was refused; "cut: …": no complete answer
    location: str = ""
    body: str = ""
    at: float = 0.0  # when the answer (or the error) came


class _Elements(HTMLParser):
    """The attributes of each element with an id, and the first csrf_token input's value."""

    def __init__(self, html: str):
        super().__init__()
        self.by_id: dict[str, dict] = {}
        self.csrf: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.by_id.setdefault(a["id"], a)
        if tag == "input" and a.get("name") == "csrf_token" and self.csrf is None:
            self.csrf = a.get("value")


@dataclass
class Learner:
    """A signed-in student working through the course, who knows what every answer must say."""

    port: int
    user_id: int
    email: str
    course_id: int
    blocks: list[int]
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""
    enrolled: bool = False
    done: set[int] = field(default_factory=set)
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def send(self, action: str, method: str, path: str, fields=None, headers=None) -> Outcome:
        tag = f"r{next(_tags)}"
        out = Outcome(tag, action)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            try:
                conn.connect()
            except ConnectionRefusedError:
                out.error, out.at = "refused", time.monotonic()
                return out
            h = {"X-Test-Id": tag, **(headers or {})}
            if self.cookies:
                h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            body = None
            if fields is not None:
                body = urllib.parse.urlencode({"csrf_token": self.csrf, **fields})
                h["Content-Type"] = "application/x-www-form-urlencoded"
                h["X-CSRFToken"] = self.csrf
            try:
                conn.request(method, path, body=body, headers=h)
                resp = conn.getresponse()
                data = resp.read()  # IncompleteRead if the body is cut short
            except (OSError, http.client.HTTPException) as exc:
                out.error, out.at = f"cut: {type(exc).__name__}: {exc}", time.monotonic()
                return out
        finally:
            conn.close()
        out.status, out.at = resp.status, time.monotonic()
        out.location, out.body = resp.headers.get("Location", ""), data.decode()
        if not resp.headers.get("X-Request-ID"):
            self.problems.append(f"{tag} {action}: no X-Request-ID")
        # The session cookie is Secure; over plain HTTP we keep it ourselves, as a browser
        # would over HTTPS.
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return out

    def _record(self, out: Outcome, status: int) -> bool:
        """Keep the outcome; True when it is the expected answer (a problem noted if not)."""
        self.outcomes.append(out)
        if out.status is None:
            return False
        if out.status != status:
            self.problems.append(f"{out.tag} {out.action}: {out.status}, expected {status}")
            return False
        return True

    def _progress_is(self, out: Outcome, done: int) -> None:
        bar = _Elements(out.body).by_id.get("course-progress-bar")
        found = (int(bar["value"]), int(bar["max"])) if bar else None
        if found != (done, len(self.blocks)):
            self.problems.append(f"{out.tag} {out.action}: progress {found}, expected {done}")

    def log_in(self) -> None:
        form = self.send("login form", "GET", "/login")
        assert form.status == 200, form
        self.csrf = _Elements(form.body).csrf
        done = self.send("log in", "POST", "/login", {"email": self.email, "password": PASSWORD})
        assert done.status == 303, done
        landing = self.send("course", "GET", f"/courses/{self.course_id}")
        assert landing.status == 200, landing
        self.csrf = _Elements(landing.body).csrf  # the signed-in session's token

    # --- what a student does, each checked --------------------------------------------------

    def enrol(self) -> Outcome:
        out = self.send("enrol", "POST", f"/courses/{self.course_id}/enrol", {})
        if self._record(out, 303):
            self.enrolled = True
            if not out.location.endswith(f"/courses/{self.course_id}"):
                self.problems.append(f"{out.tag} enrol: went to {out.location}")
        return out

    def course_page(self) -> Outcome:
        out = self.send("course", "GET", f"/courses/{self.course_id}")
        if self._record(out, 200):
            self._progress_is(out, len(self.done))
        return out

    def my_learning(self) -> Outcome:
        out = self.send("learn", "GET", "/learn")
        self._record(out, 200)
        return out

    def _change(self, action: str, block: int, extra: dict | None = None) -> Outcome:
        headers = {"HX-Request": "true", "HX-Target": "completion", **(extra or {})}
        path = f"/courses/{self.course_id}/blocks/{block}/{action}"
        return self.send(action, "POST", path, {}, headers)

    def complete(self, slow: bool = False) -> Outcome:
        block = next(b for b in self.blocks if b not in self.done)
        out = self._change("complete", block, {"X-Test-Slow": "1"} if slow else None)
        if self._record(out, 200):
            self._progress_is(out, len(self.done) + 1)
            self.done.add(block)
        return out

    def undo(self) -> Outcome:
        block = max(self.done)
        out = self._change("undo", block)
        if self._record(out, 200):
            self._progress_is(out, len(self.done) - 1)
            self.done.discard(block)
        return out

    def step(self, n: int) -> Outcome:
        """Enrol, then round and round: read, complete twice, undo once (so the course gets
        completed and un-completed), read their overview, enrol again (a no-op)."""
        if not self.enrolled:
            return self.enrol()
        match n % 6:
            case 0:
                return self.course_page()
            case 1 | 2:
                return self.complete() if len(self.done) < len(self.blocks) else self.undo()
            case 3:
                return self.undo() if self.done else self.complete()
            case 4:
                return self.my_learning()
            case _:
                return self.enrol()

    def work(self, stop: threading.Event) -> None:
        """Until ``stop``, or until the server refuses the connection (it has stopped)."""
        for n in itertools.count():
            if stop.is_set() or self.step(n).error == "refused":
                return


class Load:
    """The learners, each in a thread of its own."""

    def __init__(self, learners: list[Learner]):
        self.learners = learners
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=lr.work, args=(self.stop,)) for lr in learners]

    def start(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def answered(self) -> int:
        return sum(o.status is not None for lr in self.learners for o in lr.outcomes)

    def join(self, timeout: float = 60) -> None:
        for t in self.threads:
            t.join(timeout=timeout)
        assert not any(t.is_alive() for t in self.threads)

    def finish(self) -> None:
        self.stop.set()
        self.join()

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for lr in self.learners for o in lr.outcomes]

    @property
    def problems(self) -> list[str]:
        return [p for lr in self.learners for p in lr.problems]


# --- the course, and the database afterwards -----------------------------------------------------


def _learners(port: int, n: int) -> tuple[int, list[Learner]]:
    teacher = make_user("teacher")
    course = make_course(teacher, title="Restarted", sections=2, blocks=3, types=("lesson",))
    blocks = [b.id for s in course.sections for b in s.blocks]
    people = [make_user("student") for _ in range(n)]
    return course.id, [Learner(port, p.id, p.email, course.id, blocks) for p in people]


def _check_database(course_id: int, learners: list[Learner]) -> None:
    """Every change the server answered is in the database, nothing else, and every enrolment
    follows the progress rule (services/progress.py)."""
    db.session.expire_all()
    for lr in learners:
        done = set(
            db.session.scalars(
                select(CompletedContentBlock.content_block_id).where(
                    CompletedContentBlock.student_id == lr.user_id
                )
            )
        )
        assert done == lr.done, lr.email
        enrolments = db.session.scalar(
            select(func.count(StudentCourse.id)).where(StudentCourse.student_id == lr.user_id)
        )
        assert enrolments == int(lr.enrolled), lr.email
    assert_progress_invariant(course_id)


def _in_flight(server: Gunicorn, slow: Learner) -> tuple[threading.Thread, list[Outcome]]:
    """The slow learner's completion, sent and waited for until it is held half written."""
    seen_before = {tag for tag, _ in server.notes("slow")}
    answers: list[Outcome] = []
    thread = threading.Thread(target=lambda: answers.append(slow.complete(slow=True)))
    thread.start()
    wait_for(lambda: {t for t, _ in server.notes("slow")} - seen_before, 30, "the slow request")
    return thread, answers


# --- the tests -------------------------------------------------------------------------------


def test_sighup_replaces_the_workers_under_load_without_a_failed_request(
    app, tmp_path, real_servers
):
    with Gunicorn(tmp_path) as server:
        course_id, learners = _learners(server.port, LEARNERS + 1)
        slow, busy = learners[0], learners[1:]
        for lr in learners:
            lr.log_in()
        slow.enrol()
        old = server.workers_ready(lambda pids: len(pids) == 2, "two workers")
        load = Load(busy).start()
        wait_for(lambda: load.answered() >= 20, 60, "20 answers")
        slow_thread, slow_answer = _in_flight(server, slow)

        server.proc.send_signal(signal.SIGHUP)
        hup = time.monotonic()
        new = server.workers_ready(
            lambda pids: len(pids) == 2 and not pids & old, "two new workers"
        )
        # The new workers serve: 10 requests started by them.
        wait_for(
            lambda: sum(pid in new for _, pid in server.notes("start")) >= 10, 60, "new workers"
        )
        load.finish()
        slow_thread.join(timeout=30)
        assert server.proc.poll() is None  # the master stays; only its workers changed
        wait_for(lambda: not server.workers() & old, 30, "the old workers to leave")
        started = server.notes("start")
    outcomes = load.outcomes + slow_answer

    assert [o for o in outcomes if o.status is None] == []  # no refusal, no cut, no timeout
    assert load.problems + slow.problems == []  # every answer the expected status and content
    (slow_out,) = slow_answer
    assert slow_out.status == 200 and slow_out.at > hup  # in flight at the reload, finished
    by_pid = {tag: pid for tag, pid in started}
    assert by_pid[slow_out.tag] in old
    assert {pid for _, pid in started} >= old | new  # served by the old workers and the new
    _check_database(course_id, learners)
    through = sum(o.at > hup for o in outcomes)
    print(f"\nSIGHUP: {len(outcomes)} requests, {through} answered after the signal, 0 failed")


def test_sigterm_finishes_every_accepted_request_and_exits_in_time(app, tmp_path, real_servers):
    with Gunicorn(tmp_path) as server:
        course_id, learners = _learners(server.port, LEARNERS + 1)
        slow, busy = learners[0], learners[1:]
        for lr in learners:
            lr.log_in()
        slow.enrol()
        workers = server.workers_ready(lambda pids: len(pids) == 2, "two workers")
        load = Load(busy).start()
        wait_for(lambda: load.answered() >= 20, 60, "20 answers")
        slow_thread, slow_answer = _in_flight(server, slow)

        server.proc.send_signal(signal.SIGTERM)
        term = time.monotonic()
        code = server.proc.wait(timeout=GRACEFUL_TIMEOUT + 10)
        drained = time.monotonic() - term
        load.join()  # each learner stops at its first refused connection
        slow_thread.join(timeout=30)
        started = {tag for tag, _ in server.notes("start")}
        log = server.log()
    outcomes = load.outcomes + slow_answer
    answered = [o for o in outcomes if o.status is not None]
    refused = [o for o in outcomes if o.error == "refused"]
    never_in = [o for o in outcomes if o.error.startswith("cut") and o.tag not in started]

    # Every request a worker accepted got its whole, expected answer; what got no answer never
    # reached the app (refused, or reset in the kernel's queue when the last worker left).
    assert [o for o in outcomes if o.status is None and o.tag in started] == []
    assert {o.tag for o in answered} == started & {o.tag for o in outcomes}
    assert load.problems + slow.problems == []
    assert len(answered) + len(refused) + len(never_in) == len(outcomes)
    assert all(lr.outcomes[-1].error == "refused" for lr in busy)  # the load went on to the end
    (slow_out,) = slow_answer
    assert slow_out.status == 200 and slow_out.at > term  # in flight, half written, finished
    # The workers left on their own (none killed at graceful_timeout), the master cleanly.
    assert code == 0
    for pid in workers:
        assert f"Worker exiting (pid: {pid})" in log
    assert "SIGKILL" not in log and "Traceback" not in log
    assert drained < GRACEFUL_TIMEOUT
    _check_database(course_id, learners)  # no partial write, every answered one kept
    after = sum(o.at > term for o in answered)
    print(
        f"\nSIGTERM: {len(outcomes)} requests; {after} answered after the signal, the slow one "
        f"at {slow_out.at - term:.2f} s; drained in {drained:.2f} s; after it {len(refused)} "
        f"refused and {len(never_in)} reset before a worker took them"
    )


# --- the email worker, stopped while it sends ----------------------------------------------------


class SlowMailbox(Mailbox):
    """Takes each message, then waits before its 250: a send in flight for ``delay`` seconds."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        answer = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return answer


@pytest.fixture
def slow_smtp(app):
    box, port = SlowMailbox(SLOW), free_port()
    server = Controller(box, hostname="127.0.0.1", port=port)
    server.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=10)
    yield box
    server.stop()


def _queue_one(recipient: str) -> int:
    row = OutboxMessage(recipient=recipient, subject="Hello", text_body="Hi\n", html_body="")
    db.session.add(row)
    db.session.commit()
    return row.id


def _sent_once(app, box: SlowMailbox, row_id: int, recipient: str) -> None:
    """The message is recorded as sent, and another pass of the outbox sends nothing."""
    db.session.expire_all()
    row = db.session.get(OutboxMessage, row_id)
    assert row.sent_at is not None and row.attempts == 1, row.last_error
    assert mail.deliver_pending() == (0, 0)
    assert [m["To"] for m in box.messages] == [recipient]


def test_the_outbox_worker_stops_on_sigterm_after_the_message_in_hand(app, slow_smtp, tmp_path):
    """A deploy stops `flask outbox run` with SIGTERM while it sends: the message in hand is
    finished and recorded, then the worker exits 0; it is never sent twice."""
    row_id = _queue_one("in-hand@example.com")
    env = {
        **os.environ, "FLASK_APP": "wsgi:app", "LECTERN_ENV": "development",
        "SECRET_KEY": base_config()["SECRET_KEY"], "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL, "LECTERN_INSTANCE": str(tmp_path), "OUTBOX_THREAD": "0",
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(app.config["MAIL_PORT"]),
    }  # fmt: skip
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - the worker writes to it
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "outbox", "run", "--interval", "0.2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: slow_smtp.messages, 60, "the message at the SMTP server")
        worker.send_signal(signal.SIGTERM)  # while the server has not said 250 yet
        code = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
    assert code == 0, (tmp_path / "worker.log").read_text()
    _sent_once(app, slow_smtp, row_id, "in-hand@example.com")


def test_a_gunicorn_workers_outbox_thread_finishes_its_message_on_sigterm(
    app, slow_smtp, tmp_path, real_servers
):
    """OUTBOX_THREAD on (the development default): a worker leaving on SIGTERM lets its outbox
    thread finish the message in hand instead of cutting it off (it would be sent again)."""
    row_id = _queue_one("thread@example.com")
    port = str(app.config["MAIL_PORT"])
    with Gunicorn(tmp_path, OUTBOX_THREAD="1", MAIL_PORT=port) as server:
        probe = Learner(server.port, 0, "", 0, [])
        assert probe.send("healthz", "GET", "/healthz").status == 200  # starts one thread
        wait_for(lambda: slow_smtp.messages, 60, "the message at the SMTP server")
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=GRACEFUL_TIMEOUT + 10) == 0
        log = server.log()
    assert "SIGKILL" not in log and "Traceback" not in log
    _sent_once(app, slow_smtp, row_id, "thread@example.com")
