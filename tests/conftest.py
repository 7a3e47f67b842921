"""Test fixtures: an app per test, a clean database per test, users of each role, SQL counting.

By default the suite runs on SQLite and fakeredis. With TEST_DATABASE_URL and TEST_REDIS_URL set
(as CI sets them) it runs against the real PostgreSQL and Redis; under CI=true it refuses to run
on the stand-ins.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from werkzeug.security import generate_password_hash

from webapp import create_app, sessions
from webapp.extensions import db
from webapp.models import BlockType, ContentBlock, Course, Role, Section, User, utcnow

PASSWORD = "correct horse battery"
_TMP = Path(tempfile.mkdtemp(prefix="lectern-tests-"))
DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'test.sqlite'}"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
ON_REAL_SERVERS = DATABASE_URL.startswith("postgresql") and bool(REDIS_URL)


def _backends() -> str:
    db_kind = "postgresql" if DATABASE_URL.startswith("postgresql") else "sqlite"
    redis_kind = "redis" if REDIS_URL else "fakeredis"
    return f"lectern backends: database={db_kind} sessions={redis_kind}"


def pytest_report_header(config):
    return _backends()


def pytest_terminal_summary(terminalreporter):
    # Printed even with -q; .ci/run checks it to prove the suite ran on the real servers.
    terminalreporter.write_line(_backends())


def pytest_collection_modifyitems(config, items):
    """Timing checks (``slow``) compare wall-clock times, which a busy machine upsets: CI runs
    them (CI=true, on a machine of its own); elsewhere RUN_SLOW=1 does."""
    if os.environ.get("CI") == "true" or os.environ.get("RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="timing check: CI runs it (or RUN_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_sessionstart(session):
    if os.environ.get("CI") == "true" and not ON_REAL_SERVERS:
        raise pytest.UsageError(
            "CI=true but TEST_DATABASE_URL/TEST_REDIS_URL do not name PostgreSQL and Redis: "
            "refusing to run the suite on the stand-ins"
        )


# --- the app and the database ----------------------------------------------------------------

_PW_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
_schema_ready = False
_fake_server = None


def _redis_client():
    global _fake_server
    if REDIS_URL:
        import redis

        return redis.Redis.from_url(
            REDIS_URL, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
        )
    import fakeredis

    if _fake_server is None:
        _fake_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_fake_server, decode_responses=True)


def base_config(**extra) -> dict:
    cfg = {
        "LECTERN_ENV": "testing",
        "SECRET_KEY": "test-secret-key-0123456789-abcdefghijklmnop",
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "REDIS_CLIENT": _redis_client(),
        "RATELIMIT_STORAGE_URI": REDIS_URL or "memory://",
        "WTF_CSRF_ENABLED": False,
        "BASE_URL": "http://lectern.test",
        "MAIL_SERVER": "",
        "OUTBOX_THREAD": False,
        "EMAIL_FORM_MIN_SECONDS": 0,  # tests/test_auth.py turns the timing floor on to test it
    }
    cfg.update(extra)
    return cfg


def _reset_schema(app) -> None:
    global _schema_ready
    with app.app_context():
        if not _schema_ready:
            db.drop_all()
            db.create_all()
            _schema_ready = True
            return
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        if db.engine.dialect.name == "postgresql":
            _truncate(tables)
            return
        with db.engine.begin() as conn:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
            conn.execute(text("DELETE FROM sqlite_sequence"))  # as RESTART IDENTITY does


def _truncate(tables: list[str]) -> None:
    """TRUNCATE every table. A failed test may leave a connection idle in a transaction (a
    thread of a concurrency test, say) that holds a lock: instead of waiting on it forever, give
    up after a few seconds, end such connections and try once more."""
    statement = text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    for attempt in (1, 2):
        try:
            with db.engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                conn.execute(statement)
            return
        except OperationalError:
            if attempt == 2:
                raise
            with db.engine.begin() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND state LIKE 'idle in transaction%'"
                    )
                )


@pytest.fixture
def config_overrides() -> dict:
    """Override in a test module (or parametrize indirectly) to change the app's settings."""
    return {}


class IsolatedClient(FlaskClient):
    """Each request in its own app context: its own ``g`` and database session, as in a server.

    After the request the test's own session is expired, so assertions read committed state.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        db.session.expire_all()
        return response


@pytest.fixture
def app(config_overrides):
    application = create_app(base_config(**config_overrides))
    application.test_client_class = IsolatedClient
    _reset_schema(application)
    client = application.config["REDIS_CLIENT"]
    client.flushdb()
    ctx = application.app_context()
    ctx.push()
    yield application
    db.session.remove()
    ctx.pop()
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


# --- templates never query -----------------------------------------------------------------------
#
# A template only shows what its route passed. While one renders, no SQL may run: a relationship
# loaded lazily, a deferred column, a query behind a template global all fail the test. The one
# exception is a row the route already held coming back after its commit expired it (SQLAlchemy
# reloads the expired columns of that row): that is the unit of work's ordinary effect.

_rendering = threading.local()


def _render_starts(sender, template, context, **extra):
    _rendering.name = template.name


def _render_ends(sender, template, context, **extra):
    _rendering.name = None


def _reloads_expired_row(context) -> bool:
    options = context.execution_options.get("_sa_orm_load_options")
    state = getattr(options, "_refresh_state", None)
    return state is not None and bool(state.expired_attributes)


@pytest.fixture(autouse=True)
def _templates_never_query(request):
    if "app" not in request.fixturenames:
        yield
        return
    import flask

    app = request.getfixturevalue("app")
    found: list[str] = []

    def before(conn, cursor, statement, params, context, executemany):
        name = getattr(_rendering, "name", None)
        if name and not _reloads_expired_row(context):
            found.append(f"{name}: {' '.join(statement.split())[:160]}")

    flask.before_render_template.connect(_render_starts, app)
    flask.template_rendered.connect(_render_ends, app)
    engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    yield
    event.remove(engine, "before_cursor_execute", before)
    flask.before_render_template.disconnect(_render_starts, app)
    flask.template_rendered.disconnect(_render_ends, app)
    assert not found, "templates ran SQL while rendering:\n" + "\n".join(found)


# --- people and courses ------------------------------------------------------------------------


def make_user(
    role: str = Role.STUDENT,
    email: str | None = None,
    name: str | None = None,
    active: bool = True,
    password: str | None = PASSWORD,
) -> User:
    make_user.counter += 1
    n = make_user.counter
    user = User(
        email=(email or f"{role}{n}@example.com").lower(),
        name=name or f"{str(role).title()} {n}",
        password_hash=_PW_HASH if password == PASSWORD else generate_password_hash(password),
        role=str(role),
        is_active=active,
        activated_at=utcnow() if active else None,
        session_epoch=0,
    )
    db.session.add(user)
    db.session.commit()
    return user


make_user.counter = 0


@pytest.fixture
def student(app):
    return make_user(Role.STUDENT)


@pytest.fixture
def teacher(app):
    return make_user(Role.TEACHER)


@pytest.fixture
def other_teacher(app):
    return make_user(Role.TEACHER)


@pytest.fixture
def admin(app):
    return make_user(Role.ADMIN)


def login_as(client, user, remember: bool = False) -> str:
    """Open a live session for ``user`` in ``client`` without the login form; returns its jti."""
    app = client.application
    jti = sessions.new_jti()
    sessions.store().create(jti, user.id, app.config["SESSION_IDLE_SECONDS"], "127.0.0.1", "pytest")
    with client.session_transaction() as sess:
        sess.clear()
        sess[sessions.AUTH_KEY] = sessions.sign(user.id, jti, user.session_epoch, remember)
        sess.permanent = remember
    return jti


def make_course(
    owner: User,
    title: str = "A course",
    sections: int = 2,
    blocks: int = 2,
    published: bool = True,
    types: tuple[str, ...] = tuple(BlockType),
) -> Course:
    """A course with ``sections`` sections of ``blocks`` blocks each, types cycling."""
    course = Course(title=title, description="About it", user_id=owner.id, is_published=published)
    db.session.add(course)
    i = 0
    for s in range(sections):
        section = Section(course=course, title=f"Section {s + 1}", description="", position=s)
        db.session.add(section)
        for b in range(blocks):
            kind = str(types[i % len(types)])
            i += 1
            db.session.add(
                ContentBlock(
                    section=section,
                    title=f"Block {s + 1}.{b + 1}",
                    description="",
                    type=kind,
                    url="https://example.com/x" if kind in ("video", "link") else None,
                    content="Some *text*",
                    position=b,
                )
            )
    db.session.commit()
    return course


# --- many requests at once -----------------------------------------------------------------------


def at_once(app, clients: list, send) -> list[int]:
    """Each client makes its request (``send(client, i)``, returning the response) at the same
    moment, released together by a barrier; the status codes, in the order they came back."""
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []
    lock = threading.Lock()

    def run(c, i):
        with app.app_context():  # the client expires this thread's session after the request
            barrier.wait(timeout=30)
            resp = send(c, i)
        with lock:
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=run, args=(c, i)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return statuses


# --- counting SQL ------------------------------------------------------------------------------


class QueryCounter:
    def __init__(self):
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app):
    """``with count_queries() as q: client.get(...)`` then assert ``q.count <= N``."""

    @contextlib.contextmanager
    def counting():
        counter = QueryCounter()

        def before(conn, cursor, statement, params, context, executemany):
            counter.statements.append(statement)

        engine = db.engine
        event.listen(engine, "before_cursor_execute", before)
        try:
            yield counter
        finally:
            event.remove(engine, "before_cursor_execute", before)

    return counting


def wait_for(condition, timeout: float, what: str, every: float = 0.02):
    """Poll ``condition()`` until it gives something true, and return that; fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what}")


# --- email ---------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """Messages received by a real SMTP server (aiosmtpd) on a free local port."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(msg)
        return "250 OK"

    def deliver(self) -> list:
        """Run the outbox once and return every message received so far."""
        from webapp.mail import deliver_pending

        deliver_pending()
        return list(self.messages)

    def to(self, address: str) -> list:
        return [m for m in self.deliver() if m["To"] == address]

    @staticmethod
    def text(msg) -> str:
        return msg.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def mailbox(app):
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    yield box
    controller.stop()
