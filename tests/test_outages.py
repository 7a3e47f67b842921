"""Servers Lectern depends on, really taken away and brought back (docs/operations.md).

These tests stop a private PostgreSQL cluster of their own (tests/servers.py), never the
machine's shared one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, select, text, update

from tests.bench.server import Client, csrf_token
from tests.conftest import (
    ON_REAL_SERVERS,
    PASSWORD,
    IsolatedClient,
    Mailbox,
    base_config,
    free_port,
    login_as,
    make_course,
    make_user,
    wait_for,
)
from tests.e2e.conftest import serve
from tests.servers import hung_port, private_postgres, private_redis  # noqa: F401 - fixtures
from tests.test_errors import assert_503
from webapp import create_app
from webapp.extensions import db

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flask(env: dict, *args: str, **kw):
    return subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, **kw)


def _sign_up(client, address: str) -> None:
    data = {"name": "Someone", "email": address, "password": "a long enough passphrase",
            "confirm": "a long enough passphrase", "role": "student"}  # fmt: skip
    assert client.post("/signup", data=data).status_code == 303


def test_the_outbox_worker_survives_postgresql_going_away(private_postgres, tmp_path):  # noqa: F811
    box, smtp_port = Mailbox(), free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    env = {
        **os.environ, "FLASK_APP": "wsgi:app", "LECTERN_ENV": "development",
        "DATABASE_URL": private_postgres.url, "LECTERN_INSTANCE": str(tmp_path),
        "REDIS_URL": "", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_port),
        "OUTBOX_THREAD": "0",
    }  # fmt: skip
    upgrade = _flask(env, "db", "upgrade", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert upgrade.wait(timeout=120) == 0, upgrade.stdout.read().decode()
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - the worker writes to it
    worker = _flask(env, "outbox", "run", "--interval", "0.2", stdout=log, stderr=log)
    app = create_app(
        base_config(SQLALCHEMY_DATABASE_URI=private_postgres.url, MAIL_SERVER="127.0.0.1",
                    MAIL_PORT=smtp_port)
    )  # fmt: skip
    client = app.test_client()

    def mail_to(address):
        return lambda: [m for m in box.messages if m["To"] == address]

    try:
        _sign_up(client, "before@example.com")
        wait_for(mail_to("before@example.com"), 30, "the first sign-up's email")

        private_postgres.stop()
        time.sleep(2.5)  # the worker polls into the outage again and again
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()

        private_postgres.start()
        _sign_up(client, "after@example.com")  # the app's pool reconnects (pool_pre_ping)
        wait_for(mail_to("after@example.com"), 60, "the email of a sign-up after the outage")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
        smtp.stop()
    assert "poll failed" in (tmp_path / "worker.log").read_text()  # it did meet the outage
    # Each message went out exactly once, and the table says so.
    assert [m["To"] for m in box.messages] == ["before@example.com", "after@example.com"]
    engine = create_engine(private_postgres.url)
    with engine.connect() as conn:
        waiting = conn.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
    engine.dispose()
    assert waiting == 0


def test_a_database_outage_is_the_apps_503_for_everyone_and_passes(private_postgres):  # noqa: F811
    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=private_postgres.url))
    client = app.test_client()
    with app.app_context():  # left before the requests: each has its own, as in a server
        db.create_all()
        login_as(client, make_user("student", email="outage@example.com"))
    assert client.get("/learn").status_code == 200

    private_postgres.stop()
    assert_503(client.get("/learn"))  # signed in: the error page must not need the user
    fragment = client.get("/learn", headers={"HX-Request": "true"})
    assert_503(fragment)
    assert "<html" not in fragment.get_data(as_text=True).lower()
    assert_503(client.get("/courses"))  # anonymous pages too: they read courses
    assert client.get("/healthz").status_code == 200  # the process itself is fine
    assert client.get("/readyz").status_code == 503  # but it cannot serve: out of the pool

    private_postgres.start()
    # No restart: the pool's pre-ping replaces the dead connections.
    assert client.get("/learn").status_code == 200
    assert client.get("/courses").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_redis_stopped_then_back_empty_logs_everyone_out_and_nothing_else(
    app,
    private_redis,  # noqa: F811
):
    cfg = base_config(REDIS_CLIENT=None, REDIS_URL=private_redis.url, REDIS_SOCKET_TIMEOUT=0.2)
    del cfg["RATELIMIT_STORAGE_URI"]  # production wiring: the limits live in the same Redis
    served = create_app(cfg)
    served.test_client_class = IsolatedClient
    with served.app_context():
        make_user("student", email="redis-outage@example.com")
    client = served.test_client()
    login = {"email": "redis-outage@example.com", "password": PASSWORD}
    assert client.post("/login", data=login).status_code == 303
    assert client.get("/learn").status_code == 200

    private_redis.stop()
    assert client.get("/learn").status_code == 503  # fail closed, never unchecked
    assert client.get("/courses").status_code == 200  # public pages keep working
    assert client.post("/login", data=login).status_code == 503  # no unthrottled log-in

    private_redis.start()  # back, and empty: it kept nothing
    assert client.get("/learn").status_code == 303  # the session is gone: signed out
    assert client.post("/login", data=login).status_code == 303  # no restart needed
    assert client.get("/learn").status_code == 200


def _hung_database_app(port: int):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/lectern"
    return create_app(base_config(SQLALCHEMY_DATABASE_URI=url, DATABASE_CONNECT_TIMEOUT=1))


def test_the_database_timeouts_reach_every_connection():
    app = create_app(
        base_config(
            SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/x",
            DATABASE_CONNECT_TIMEOUT=3,
            DATABASE_STATEMENT_TIMEOUT=20,
        )
    )
    args = app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    assert args["connect_timeout"] == 3
    assert args["options"].split() == ["-c", "jit=off", "-c", "statement_timeout=20000"]


def test_a_hung_database_is_the_503_page_and_other_requests_go_on(hung_port):  # noqa: F811
    """A listener in place of PostgreSQL that accepts and never answers: the connect timeout
    ends the request with the 503 page; requests that need no database are served meanwhile."""
    app = _hung_database_app(hung_port)
    answers = {}

    def hung():
        answers["courses"] = app.test_client().get("/courses")

    waiting = threading.Thread(target=hung)
    waiting.start()
    assert app.test_client().get("/healthz").status_code == 200  # not stuck behind it
    waiting.join(timeout=60)
    assert not waiting.is_alive()
    assert_503(answers["courses"])


@pytest.mark.slow
def test_a_hung_database_answers_within_its_connect_timeout(hung_port):  # noqa: F811
    client = _hung_database_app(hung_port).test_client()
    started = time.monotonic()
    assert client.get("/courses").status_code == 503
    assert time.monotonic() - started < 5  # DATABASE_CONNECT_TIMEOUT=1 (libpq waits 2 s at least)


# --- backup and restore (docs/operations.md) ---------------------------------------------------


def _tables(url: str) -> dict[str, list]:
    """Every table's rows in key order, alembic's version included."""
    engine = create_engine(url)
    with engine.connect() as conn:
        names = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ).all()
        rows = {
            name: conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1')).all() for name in names
        }
    engine.dispose()
    return rows


def _progress(app, email: str, course_id: int) -> str:
    """A journey's result: what the student's course page says of their progress."""
    from webapp.models import User

    client = app.test_client()
    with app.app_context():
        login_as(client, db.session.scalar(select(User).where(User.email == email)))
    html = client.get(f"/courses/{course_id}").get_data(as_text=True)
    return re.search(r"\d+ of \d+ blocks? done", html)[0]


def test_a_backup_restores_every_row_and_the_app_runs_on_it(private_postgres, tmp_path):  # noqa: F811
    from webapp.services import learning

    private_postgres.tool("createdb", "lectern")
    private_postgres.tool("createdb", "restored")
    source, restored = private_postgres.url_of("lectern"), private_postgres.url_of("restored")
    env = {**os.environ, "FLASK_APP": "wsgi:app", "LECTERN_ENV": "development",
           "DATABASE_URL": source, "LECTERN_INSTANCE": str(tmp_path), "REDIS_URL": ""}  # fmt: skip
    upgrade = _flask(env, "db", "upgrade", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert upgrade.wait(timeout=120) == 0, upgrade.stdout.read().decode()
    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=source))
    with app.app_context():
        teacher = make_user("teacher", email="backup-teacher@example.com")
        student = make_user("student", email="backup-student@example.com")
        course = make_course(teacher, title="Backed up", sections=2, blocks=3)
        course_id, blocks = course.id, [b.id for s in course.sections for b in s.blocks]
        learning.enrol(course_id, student)
        for block_id in blocks[:2]:
            learning.complete_block(course_id, block_id, student, url="https://example.com/w")
    before = _progress(app, "backup-student@example.com", course_id)
    assert before == "2 of 6 blocks done"

    # The procedure of docs/operations.md: pg_dump's custom format, pg_restore into an empty
    # database (no owner or privilege statements, so any role can restore it).
    dump = private_postgres.tool("pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                                 "lectern")  # fmt: skip
    private_postgres.tool("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                          "-d", "restored", input=dump)  # fmt: skip

    assert _tables(restored) == _tables(source)
    again = create_app(base_config(SQLALCHEMY_DATABASE_URI=restored))
    assert _progress(again, "backup-student@example.com", course_id) == before


# --- several instances (docs/operations.md) ----------------------------------------------------


def _real_servers_or_skip() -> None:
    if not ON_REAL_SERVERS:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run this test on PostgreSQL and Redis")
        pytest.skip("two processes share state through PostgreSQL and Redis only")


def _log_in(port: int, email: str, password: str = PASSWORD) -> tuple[Client, int]:
    """A browser of its own: GET /login, POST the form; (the client, the POST's status)."""
    client = Client(port)
    form = client.get("/login")
    assert form.status == 200
    fields = {"csrf_token": csrf_token(form.text), "email": email, "password": password}
    return client, client.post("/login", fields).status


def _post_form(client: Client, page: str, action: str) -> int:
    """POST ``action`` with the CSRF token of ``page`` (as the page's button would)."""
    return client.post(action, {"csrf_token": csrf_token(client.get(page).text)}).status


def test_two_gunicorn_processes_on_two_ports_behave_as_one(app, admin, tmp_path):
    """Two app processes behind a load balancer, sharing only PostgreSQL and Redis: a log-out
    and an admin's deactivation on one are refused on the other at its next request, and the
    log-in throttle counts the failures on both."""
    _real_servers_or_skip()
    make_user("student", email="victim@example.com")
    both = make_user("student", email="both@example.com").id
    admin_email = admin.email
    limits = {"LOGIN_LIMIT_ACCOUNT": "4 per 15 minutes"}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with (
        serve(app, tmp_path / "one", **limits) as one_url,
        serve(app, tmp_path / "two", **limits) as two_url,
    ):
        one, two = (int(url.rpartition(":")[2]) for url in (one_url, two_url))

        def signed_in_on_both() -> tuple[Client, Client]:
            a, status = _log_in(one, "both@example.com")
            assert status == 303
            b = Client(two, cookies=dict(a.cookies))  # the same cookie, sent to the other
            assert b.get("/learn").status == 200
            return a, b

        a, b = signed_in_on_both()
        assert _post_form(a, "/learn", "/logout") in (302, 303)
        assert b.get("/learn").status == 303  # logged out on one: refused on the other

        a, b = signed_in_on_both()
        boss, status = _log_in(two, admin_email)
        assert status == 303
        page = f"/admin/users/{both}"
        assert _post_form(boss, page, f"{page}/deactivate") == 303  # on the second process
        assert a.get("/learn").status == 303  # and out on the first at its next request
        with db.engine.connect() as conn:
            assert conn.scalar(text(f"SELECT is_active FROM users WHERE id = {both}")) is False

        for port in (one, two, one, two):  # four failures, two on each process
            assert _log_in(port, "victim@example.com", "not the password")[1] == 422
        assert _log_in(two, "victim@example.com")[1] == 429  # counted across both
        assert _log_in(one, "victim@example.com")[1] == 429


def test_a_hung_smtp_server_delays_mail_and_nothing_else(app, client, hung_port):  # noqa: F811
    """An SMTP server that accepts and never answers: the sign-up is answered at once (mail
    goes through the outbox), the worker gives up on the message at MAIL_TIMEOUT and keeps it
    for a later try; nothing is lost."""
    from webapp.mail import deliver_pending
    from webapp.models import OutboxMessage, utcnow

    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=hung_port, MAIL_TIMEOUT=1)
    _sign_up(client, "hung-smtp@example.com")
    with app.app_context():
        assert deliver_pending() == (0, 1)
        (row,) = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == "hung-smtp@example.com")
        ).all()
        assert row.sent_at is None and row.attempts == 1
        assert "timed out" in row.last_error.lower() and row.next_attempt_at > utcnow()


def test_smtp_down_then_back_delivers_each_message_exactly_once(app, client, teacher):
    """A real SMTP server (aiosmtpd), stopped: a sign-up, a password reset and a grade (whose
    email tells the student) answer as always; their messages wait in the outbox with the
    error; the server starts again on the same port and the worker sends each exactly once."""
    from collections import Counter

    from tests.test_teaching import complete, enrol, gradable_of
    from webapp.mail import work
    from webapp.models import OutboxMessage, utcnow
    from webapp.services import grading

    box, smtp_port = Mailbox(), free_port()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_port, MAIL_TIMEOUT=2)
    student = make_user("student", email="graded@example.com")
    make_user("student", email="forgetful@example.com")
    course = make_course(teacher, sections=1, blocks=2, types=("assignment",))
    enrol(student, course)
    work_row = complete(student, gradable_of(course)[0], url="https://example.com/essay")
    teacher_client = app.test_client()
    login_as(teacher_client, teacher)

    def run_worker() -> tuple[int, int]:
        return next(work(once=True))  # one poll of `flask outbox run`, errors raised

    smtp = Controller(box, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    _sign_up(client, "before@example.com")
    assert run_worker() == (1, 0)  # the server is real and was working
    smtp.stop()

    # SMTP is down: every request answers exactly as it does when it is up.
    _sign_up(client, "newcomer@example.com")
    forgot = client.post("/password/forgot", data={"email": "forgetful@example.com"})
    assert forgot.status_code == 303
    assert forgot.headers["Location"].endswith("/password/forgot/sent")
    graded = teacher_client.post(
        f"/teach/courses/{course.id}/grading/{work_row.id}",
        data={"grade": "90", "comment": "Clear and careful", "action": "save",
              "version": grading.version_of(work_row)},
    )  # fmt: skip
    assert graded.status_code == 303
    db.session.expire_all()
    assert db.session.get(type(work_row), work_row.id).grade == 90  # the grade is saved

    waiting = ["newcomer@example.com", "forgetful@example.com", "graded@example.com"]
    assert run_worker() == (0, 3)

    def outbox() -> dict[str, OutboxMessage]:
        db.session.expire_all()
        return {m.recipient: m for m in db.session.scalars(select(OutboxMessage))}

    rows = outbox()
    for address in waiting:
        row = rows[address]
        assert row.sent_at is None and row.attempts == 1, address
        assert row.last_error.startswith("ConnectionRefusedError"), row.last_error
        assert row.next_attempt_at > utcnow() and row.text_body  # kept, with its body
    assert "Graded:" in rows["graded@example.com"].subject

    # The server is back on the same port. Before the backoff has passed nothing is tried;
    # once it has (moved forward in the table, not slept), each message goes out once.
    smtp = Controller(box, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        assert run_worker() == (0, 0)
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None))
            .values(next_attempt_at=utcnow())
        )
        db.session.commit()
        assert run_worker() == (3, 0)
        assert run_worker() == (0, 0)  # run again: nothing is sent twice
    finally:
        smtp.stop()
    assert Counter(m["To"] for m in box.messages) == Counter(["before@example.com", *waiting])
    rows = outbox()
    assert all(r.sent_at is not None and r.last_error == "" for r in rows.values())
    assert [r.attempts for r in map(rows.get, waiting)] == [2, 2, 2]
    (grade_mail,) = [m for m in box.messages if m["To"] == "graded@example.com"]
    assert "Clear and careful" in Mailbox.text(grade_mail)
