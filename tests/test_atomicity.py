"""Every business operation is one transaction: killed at any point, it leaves nothing behind
(issue 18 point 6; docs/operations.md, "Atomicity").

For each operation, sent through HTTP as a user sends it:

1. On the seeded data, send it once and record what the app's connection does during the
   request: each statement, and each COMMIT.
2. Put the same data back (same ids) and take a snapshot: every table's rows, and the live
   sessions in the session store.
3. For N = 1 … (the last COMMIT), send it again with the app's database connection killed
   just before its Nth step: ``pg_terminate_backend`` of that connection's backend, from a
   connection of the test's own, and waiting until the backend is gone, so the statement (or
   the COMMIT) really meets a dead connection. Each time the answer is the app's own 503 (an
   API call: its JSON problem), and every table holds exactly what it held before: no row
   written, changed or deleted, and no session opened or ended. A killed run leaves the data
   as it was, so the next N starts on an untouched copy (the snapshot proves it).
4. Then the same request, undisturbed, succeeds: the pool replaced the dead connection
   (``pool_pre_ping``) without a restart, and the operation did change the data.

Statements after the last COMMIT (what a page reads to answer) are outside the operation and
are not killed. PostgreSQL only (the kill needs a server): skipped on the SQLite stand-in,
which CI never uses (tests/conftest.py refuses it under CI=true, and so does this module).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
from flask import current_app, has_request_context
from sqlalchemy import event

from tests.conftest import (
    DATABASE_URL,
    PASSWORD,
    _reset_schema,
    login_as,
    make_course,
    make_user,
)
from tests.test_authoring_menu import find, parse, text
from webapp import sessions, tokens
from webapp.extensions import db
from webapp.models import CompletedContentBlock, Role, User
from webapp.services import learning

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _postgresql_only():
    if not DATABASE_URL.startswith("postgresql"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the atomicity tests on PostgreSQL (TEST_DATABASE_URL)")
        pytest.skip("killing the database connection needs PostgreSQL (TEST_DATABASE_URL)")


@pytest.fixture
def config_overrides() -> dict:
    return {"RATELIMIT_ENABLED": False}  # the same sign-up, a dozen times over


# --- the kill ----------------------------------------------------------------------------------


class Killer:
    """Watches the app's engine during a request: records its statements and COMMITs, and
    kills the connection just before the step ``at`` (1-based) when armed."""

    def __init__(self, engine):
        self.engine = engine
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.own = psycopg.connect(url, autocommit=True)  # the test's connection: never killed
        self.steps: list[str] = []  # "COMMIT" or the statement
        self.at: int | None = None
        self.killed: str | None = None
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)
        self.own.close()

    def run(self, send: Callable[[], object], at: int | None = None):
        self.steps, self.at, self.killed = [], at, None
        try:
            return send()
        finally:
            self.at = None

    def _statement(self, conn, cursor, statement, params, context, executemany):
        self._step(conn, " ".join(statement.split()))

    def _commit(self, conn):
        self._step(conn, "COMMIT")

    def _step(self, conn, what: str) -> None:
        if not has_request_context():  # only the request's own work, never the test's
            return
        self.steps.append(what)
        if len(self.steps) == self.at:
            self._kill(conn)
            self.killed = what

    def _kill(self, conn) -> None:
        dbapi = conn.connection.dbapi_connection
        with dbapi.cursor() as cur:  # straight on the connection: not one of the steps
            cur.execute("SELECT pg_backend_pid()")
            (pid,) = cur.fetchone()
        assert self.own.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        deadline = time.monotonic() + 10
        while self.own.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the backend outlived pg_terminate_backend"
            time.sleep(0.002)

    def snapshot(self) -> dict[str, list]:
        """Every table's rows (sorted), read on the test's own connection, and the live
        sessions in the store (an operation opens or ends them only once it has committed)."""
        names = [
            r[0]
            for r in self.own.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        found = {
            name: sorted(self.own.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for name in names
        }
        store = current_app.config["REDIS_CLIENT"]
        found["(session store)"] = sorted(str(k) for k in store.scan_iter("*sess*"))
        return found


@pytest.fixture
def killer(app):
    k = Killer(db.engine)
    yield k
    k.close()


# --- the data every operation starts from --------------------------------------------------------


def _seed() -> dict:
    """Teachers, an admin, students; a published course of 3 sections x 3 blocks with work done
    (an assignment among it, to grade), a small course one block short of completed, a draft. Plain
    values only: no ORM object outlives the seeding (it would load itself during a request)."""
    people = {
        name: make_user(role, email=f"{name}@example.com", name=name.title())
        for name, role in (
            ("teacher", Role.TEACHER), ("heir", Role.TEACHER), ("admin", Role.ADMIN),
            ("student", Role.STUDENT), ("ann", Role.STUDENT), ("ben", Role.STUDENT),
            ("cy", Role.STUDENT), ("dee", Role.STUDENT),
        )
    }  # fmt: skip
    pending = make_user(Role.STUDENT, email="pat@example.com", name="Pat", active=False)
    course = make_course(people["teacher"], title="Atoms", sections=3, blocks=3)
    small = make_course(people["teacher"], title="Small", sections=1, blocks=2, types=("lesson",))
    draft = make_course(people["teacher"], title="Draft", sections=1, blocks=2, published=False)
    w = {"ids": {name: u.id for name, u in people.items()}}
    w["course"], w["small"], w["draft"] = course.id, small.id, draft.id
    w["sections"] = [s.id for s in sorted(course.sections, key=lambda s: s.position)]
    w["blocks"] = {
        s.id: [b.id for b in sorted(s.blocks, key=lambda b: b.position)] for s in course.sections
    }
    w["small_blocks"] = [b.id for b in small.sections[0].blocks]
    url = "https://example.com/work"
    first = w["blocks"][w["sections"][0]]  # lesson, quiz, assignment
    for name in ("student", "ann"):
        student = people[name]
        learning.enrol(course.id, student)
        for block_id in first:
            learning.complete_block(course.id, block_id, student, url=url, remarks="Mine")
    learning.enrol(course.id, people["ben"])
    learning.enrol(small.id, people["student"])
    learning.complete_block(small.id, w["small_blocks"][0], people["student"])
    # Cy did all of Small, then left it: enrolling again brings the completed course back.
    learning.enrol(small.id, people["cy"])
    for block_id in w["small_blocks"]:
        learning.complete_block(small.id, block_id, people["cy"])
    learning.unenrol(small.id, people["cy"])
    work = db.session.scalars(
        db.select(CompletedContentBlock).where(
            CompletedContentBlock.student_id == people["student"].id,
            CompletedContentBlock.content_block_id == first[2],  # the assignment
        )
    ).one()
    w["submission"], w["version"] = work.id, str(work.version)
    w["ids"]["pat"] = pending.id
    pw = tokens.password_digest(pending.password_hash)
    w["activation"] = tokens.make("activate", uid=pending.id, email=pending.email, pw=pw)
    db.session.commit()
    db.session.expunge_all()
    return w


_SEEDED: tuple[dict, list[tuple[str, bytes]], list[tuple[str, int, bool]]] | None = None


def _fresh(app, own: psycopg.Connection) -> dict:
    """The seeded data, again with the same ids, and a live session for everyone (an
    operation may end some). Seeded through the services once; after that each table's rows
    and each sequence's position are put back as they were (COPY), which takes a fraction of
    the time."""
    global _SEEDED
    db.session.remove()
    tables = [t.name for t in db.metadata.sorted_tables]  # parents first
    if _SEEDED is None:
        _reset_schema(app)
        w = _seed()
        db.session.remove()
        rows = []
        for name in tables:
            with own.cursor().copy(f'COPY "{name}" TO STDOUT') as copy:
                rows.append((name, b"".join(bytes(chunk) for chunk in copy)))
        sequences = [
            (seq, *own.execute(f"SELECT last_value, is_called FROM {seq}").fetchone())
            for (seq,) in own.execute(
                "SELECT schemaname || '.' || sequencename FROM pg_sequences"
                " WHERE schemaname = 'public'"
            ).fetchall()
        ]
        _SEEDED = (w, rows, sequences)
    else:
        w, rows, sequences = _SEEDED
        with own.transaction():
            for name in reversed(tables):
                own.execute(f'DELETE FROM "{name}"')
            for name, data in rows:
                with own.cursor().copy(f'COPY "{name}" FROM STDIN') as copy:
                    copy.write(data)
            for seq, value, called in sequences:
                own.execute("SELECT setval(%s, %s, %s)", [seq, value, called])
    app.config["REDIS_CLIENT"].flushdb()
    for name, user_id in w["ids"].items():
        if name != "pat":  # pending: no session
            sessions.store().create(sessions.new_jti(), user_id, 3600, "127.0.0.1", "seed")
    return dict(w)


# --- the operations ------------------------------------------------------------------------------


@dataclass
class Operation:
    """``send(client, w)`` makes the request as ``actor`` (None: signed out; ``api:<name>``:
    with that user's bearer token in ``w["token"]``), answered ``ok`` when nothing fails;
    ``api``: a JSON API call (its errors are problem documents)."""

    actor: str | None
    send: Callable
    ok: int
    api: bool = False

    def __post_init__(self):
        self.api = self.api or (self.actor or "").startswith("api:")


def _hx(target: str) -> dict:
    return {"HX-Request": "true", "HX-Target": target}


def _sec(w, i: int) -> int:
    return w["sections"][i]


def _blocks(w, i: int) -> list[int]:
    return w["blocks"][w["sections"][i]]


def _bearer(w) -> dict:
    return {"Authorization": f"Bearer {w['token']}"}


OPERATIONS = {
    # authoring: the structure of a course
    "delete a section with its blocks and their completions": Operation(
        "teacher", lambda c, w: c.post(f"/teach/sections/{_sec(w, 0)}/delete"), 303
    ),
    "delete a block (renumber the rest, course completion)": Operation(
        "teacher", lambda c, w: c.post(f"/teach/blocks/{_blocks(w, 0)[1]}/delete"), 303
    ),
    "move a block down past its section's end": Operation(
        "teacher",
        lambda c, w: c.post(f"/teach/blocks/{_blocks(w, 0)[2]}/move", data={"direction": "down"}),
        303,
    ),
    "move a block to another section": Operation(
        "teacher",
        lambda c, w: c.post(
            f"/teach/blocks/{_blocks(w, 0)[0]}/move", data={"section_id": _sec(w, 2)}
        ),
        303,
    ),
    "move a section up": Operation(
        "teacher",
        lambda c, w: c.post(f"/teach/sections/{_sec(w, 2)}/move", data={"direction": "up"}),
        303,
    ),
    "reorder the whole outline (drag and drop)": Operation(
        "teacher",
        lambda c, w: c.post(
            f"/teach/courses/{w['course']}/order",
            data={
                "order": str([[s, list(reversed(w["blocks"][s]))] for s in reversed(w["sections"])])
            },
        ),
        303,
    ),
    "duplicate a block": Operation(
        "teacher", lambda c, w: c.post(f"/teach/blocks/{_blocks(w, 1)[0]}/duplicate"), 303
    ),
    "duplicate a course with its sections and blocks": Operation(
        "teacher", lambda c, w: c.post(f"/teach/courses/{w['course']}/duplicate"), 303
    ),
    "add a block (course completion recomputed)": Operation(
        "teacher",
        lambda c, w: c.post(
            f"/teach/sections/{_sec(w, 1)}/blocks",
            data={
                f"new-block-{_sec(w, 1)}-{k}": v
                for k, v in (("title", "Late addition"), ("type", "lesson"), ("url", ""))
            },
        ),
        303,
    ),
    "publish a course": Operation(
        "teacher",
        lambda c, w: c.post(f"/teach/courses/{w['draft']}/publish", data={"published": "1"}),
        303,
    ),
    "an admin deletes someone's course (with its audit record)": Operation(
        "admin", lambda c, w: c.post(f"/admin/courses/{w['course']}/delete"), 303
    ),
    # learning
    "enrol (the enrolment and its completion state)": Operation(
        "cy", lambda c, w: c.post(f"/courses/{w['small']}/enrol"), 303
    ),
    "mark the last block complete (completion, progress, course completed)": Operation(
        "student",
        lambda c, w: c.post(f"/courses/{w['small']}/blocks/{w['small_blocks'][1]}/complete"),
        303,
    ),
    "undo a completion": Operation(
        "student",
        lambda c, w: c.post(f"/courses/{w['course']}/blocks/{_blocks(w, 0)[0]}/undo"),
        303,
    ),
    "delete one's own account (enrolments, completions, audit, sessions)": Operation(
        "ann", lambda c, w: c.post("/account/delete", data={"del-password": PASSWORD}), 303
    ),
    # teaching
    "grade with a comment (the grade and the student's email)": Operation(
        "teacher",
        lambda c, w: c.post(
            f"/teach/courses/{w['course']}/grading/{w['submission']}",
            data={
                "grade": "87",
                "comment": "Well argued",
                "version": w["version"],
                "action": "save",
            },
        ),
        303,
    ),
    "save a grade in the gradebook (the grade and the student's email)": Operation(
        "teacher",
        lambda c, w: c.post(
            f"/teach/courses/{w['course']}/gradebook/cells/{w['submission']}",
            data={f"c{w['submission']}-grade": "70", f"c{w['submission']}-version": w["version"]},
        ),
        303,
    ),
    "remove a student from a course": Operation(
        "teacher",
        lambda c, w: c.post(
            f"/teach/courses/{w['course']}/students/{w['ids']['ann']}/remove",
            data={"confirm": "yes"},
        ),
        303,
    ),
    "enrol by email (a new account, its invitation, the enrolments, audit)": Operation(
        "teacher",
        lambda c, w: c.post(
            f"/teach/courses/{w['course']}/students",
            data={"emails": "cy@example.com\nnew.person@example.com"},
        ),
        303,
    ),
    # accounts and admin
    "sign up (the user, the audit record, the activation email)": Operation(
        None,
        lambda c, w: c.post(
            "/signup",
            data={
                "name": "New",
                "email": "new@example.com",
                "role": "student",
                "password": "a long enough passphrase",
                "confirm": "a long enough passphrase",
            },
        ),
        303,
    ),
    "activate an account from its emailed link (audited)": Operation(
        None, lambda c, w: c.post(f"/activate/{w['activation']}"), 303
    ),
    "an admin creates an account (the user, the invitation, audit)": Operation(
        "admin",
        lambda c, w: c.post(
            "/admin/users/new",
            data={"email": "invited@example.com", "name": "Invited", "role": "teacher"},
        ),
        303,
    ),
    "change a user's role (sessions end, audit)": Operation(
        "admin",
        lambda c, w: c.post(f"/admin/users/{w['ids']['ben']}/role", data={"role": "teacher"}),
        303,
    ),
    "log in (the live session, the audit record, the last log-in time)": Operation(
        None,
        lambda c, w: c.post("/login", data={"email": "ben@example.com", "password": PASSWORD}),
        303,
    ),
    "delete a user with their enrolments and completions (audited)": Operation(
        "admin", lambda c, w: c.post(f"/admin/users/{w['ids']['ann']}/delete"), 303
    ),
    "bulk action: deactivate several users (sessions, audit per user)": Operation(
        "admin",
        lambda c, w: c.post(
            "/admin/users/bulk",
            data={
                "user_ids": [w["ids"]["student"], w["ids"]["ann"], w["ids"]["ben"]],
                "action": "deactivate",
                "confirm": "yes",
                "back": "/admin/users",
            },
        ),
        303,
    ),
    "transfer a teacher's courses (audited)": Operation(
        "admin",
        lambda c, w: c.post(
            f"/admin/users/{w['ids']['teacher']}/transfer", data={"to_email": "heir@example.com"}
        ),
        303,
    ),
    # the same services through the JSON API
    "API: log in (password grant: a token family, the audit record)": Operation(
        None,
        lambda c, w: c.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "ben@example.com", "password": PASSWORD},
        ),
        200,
        api=True,
    ),
    "API: change a course's title and publish it (both or neither)": Operation(
        "api:teacher",
        lambda c, w: c.patch(
            f"/api/v1/courses/{w['draft']}",
            headers=_bearer(w),
            json={"title": "Ready", "description": "Now with words", "published": True},
        ),
        200,
    ),
    "API: change a user's role and deactivate them (both or neither)": Operation(
        "api:admin",
        lambda c, w: c.patch(
            f"/api/v1/users/{w['ids']['ben']}",
            headers=_bearer(w),
            json={"role": "teacher", "status": "deactivated"},
        ),
        200,
    ),
    "API: delete a section": Operation(
        "api:teacher",
        lambda c, w: c.delete(f"/api/v1/sections/{_sec(w, 0)}", headers=_bearer(w)),
        204,
    ),
    "API: reorder": Operation(
        "api:teacher",
        lambda c, w: c.put(
            f"/api/v1/courses/{w['course']}/order",
            headers=_bearer(w),
            json={"sections": [{"id": s, "blocks": w["blocks"][s]} for s in w["sections"][::-1]]},
        ),
        204,
    ),
    "API: enrol": Operation(
        "api:cy",
        lambda c, w: c.post(
            "/api/v1/enrolments", headers=_bearer(w), json={"course_id": w["small"]}
        ),
        201,
    ),
    "API: grade": Operation(
        "api:teacher",
        lambda c, w: c.put(
            f"/api/v1/courses/{w['course']}/submissions/{w['submission']}/grade",
            headers={**_bearer(w), "If-Match": f'"{w["version"]}"'},
            json={"grade": 64, "comment": "Fine"},
        ),
        200,
    ),
}


def _sign_in(client, w: dict, actor: str | None) -> None:
    """Sign ``client`` in as ``actor`` (before the snapshot: a password grant writes to the
    session store)."""
    if actor is None:
        return
    if actor.startswith("api:"):
        resp = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": f"{actor[4:]}@example.com",
                  "password": PASSWORD},
        )  # fmt: skip
        assert resp.status_code == 200, resp.get_json()
        w["token"] = resp.get_json()["access_token"]
        return
    login_as(client, db.session.get(User, w["ids"][actor]))
    db.session.expunge_all()


def _assert_failed_cleanly(resp, api: bool, what: str) -> None:
    """The app's own 503, not a traceback: the page (or the API's problem document)."""
    assert resp.status_code == 503, f"{what}: {resp.status_code}"
    assert resp.headers["Retry-After"] == "30", what
    assert resp.headers["X-Request-ID"], what
    if api:
        assert resp.mimetype == "application/problem+json", what
        assert resp.get_json() == {
            "type": "about:blank", "title": "Service Unavailable", "status": 503,
        }, what  # fmt: skip
        return
    page = parse(resp.get_data(as_text=True))
    [heading] = find(page, lambda n: n[0] == "h1")
    assert text(heading) == "Temporarily unavailable", what
    assert not find(page, lambda n: n[0] == "pre"), what  # no traceback anywhere


def prove_atomic(app, killer: Killer, name: str, op: Operation) -> None:
    """Steps 1 to 4 of the module's docstring; AssertionError naming what went wrong."""
    client = app.test_client()

    # 1. Once through, watching what the connection does.
    w = _fresh(app, killer.own)
    _sign_in(client, w, op.actor)
    first = killer.run(lambda: op.send(client, w))
    assert first.status_code == op.ok, f"{name}: {first.status_code}"
    steps = list(killer.steps)
    assert "COMMIT" in steps, f"{name} did not commit"
    last_commit = len(steps) - steps[::-1].index("COMMIT")

    # 2. The same data again.
    w = _fresh(app, killer.own)
    client = app.test_client()
    _sign_in(client, w, op.actor)
    before = killer.snapshot()

    # 3. Killed before each step up to the last COMMIT: a clean 503, not one row changed.
    for n in range(1, last_commit + 1):
        what = f"{name}, killed before step {n} of {last_commit}: {steps[n - 1][:120]}"
        resp = killer.run(lambda: op.send(client, w), at=n)
        assert killer.killed == steps[n - 1], f"{what}: the request took another path"
        _assert_failed_cleanly(resp, op.api, what)
        after = killer.snapshot()
        changed = [t for t in before if before[t] != after[t]]
        assert not changed, f"{what}: partial rows left in {changed}"

    # 4. The pool recovers by itself, and the operation works (and does change the data).
    resp = killer.run(lambda: op.send(client, w))
    assert resp.status_code == op.ok, f"{name}, undisturbed after the kills: {resp.status_code}"
    assert killer.snapshot() != before, f"{name} changed nothing: the test would prove nothing"


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_an_operation_killed_at_any_statement_leaves_no_partial_rows(app, killer, name):
    prove_atomic(app, killer, name, OPERATIONS[name])


def test_an_operation_in_two_transactions_is_caught(app, killer, monkeypatch):
    """The proof can fail: a section deletion that commits before it renumbers the rest (as
    a service calling two units of work in turn would) leaves a gap in the positions when it
    is killed in between, and the sweep says where."""
    from webapp.services import courses

    renumber = courses.renumber_sections

    def commit_first(ids):
        db.session.commit()
        renumber(ids)

    monkeypatch.setattr(courses, "renumber_sections", commit_first)
    name = "delete a section with its blocks and their completions"
    with pytest.raises(AssertionError, match=r"partial rows left in \[.*'sections'"):
        prove_atomic(app, killer, name, OPERATIONS[name])
