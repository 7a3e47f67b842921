"""Sessions: the live-session store (Redis and SQL), lifetimes, revocation, the sessions page,
cookie flags, and failing closed when Redis is down."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, IsolatedClient, base_config, login_as, make_user
from tests.servers import dead_redis, hung_port  # noqa: F401 - the fixture
from webapp import create_app, sessions
from webapp.extensions import db
from webapp.models import AuditEvent, utcnow
from webapp.services import accounts, unit_of_work


@pytest.fixture(params=["redis", "sql"])
def store_kind(request, app):
    """Run each test on the Redis store and on the SQL store (used without REDIS_URL)."""
    if request.param == "sql":
        app.extensions["lectern_session_store"] = sessions.SqlStore()
    return request.param


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def login(client, user, remember=False, agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"):
    data = {"email": user.email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    resp = client.post("/login", data=data, headers={"User-Agent": agent})
    assert resp.status_code == 303
    return client


def new_client(app):
    return app.test_client()


# --- the sessions page ---------------------------------------------------------------------


def test_sessions_page_lists_my_live_sessions_only(app, store_kind, student, count_queries):
    mine = login(new_client(app), student)
    login(new_client(app), student, agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari/604.1")
    stranger = make_user()
    login(new_client(app), stranger, agent="curl/8.0")
    with count_queries() as q:
        resp = mine.get("/account/sessions")
    assert resp.status_code == 200
    assert q.count <= 3
    body = resp.get_data(as_text=True)
    assert "Firefox on Linux" in body and "Safari on iPhone" in body
    assert "curl" not in body
    assert "This device" in body and body.count("End session</button>") == 1
    assert "127.0.0.1" in body
    assert "Log out everywhere else" in body
    for info in sessions.store().list_for_user(student.id):
        assert info.jti not in body  # only opaque handles


@pytest.mark.parametrize(
    ("config_overrides", "texts"),
    [
        ({}, ("after 2 hours without use", "12 hours after", "7 days without", "30 days after")),
        (
            {"SESSION_IDLE_SECONDS": 1800, "SESSION_MAX_SECONDS": 5400},
            ("after 30 minutes without use", "at the latest 90 minutes after"),
        ),
    ],
)
def test_sessions_page_states_the_configured_lifetimes(app, student, texts):
    c = login(new_client(app), student)
    html = c.get("/account/sessions").get_data(as_text=True)
    for text in texts:
        assert text in html


def test_sessions_page_needs_a_user(client):
    assert client.get("/account/sessions").status_code == 303


def _handle_of_other(app, user, current_client):
    current = current_client.get("/account/sessions")
    assert current.status_code == 200
    for info in sessions.store().list_for_user(user.id):
        sid = accounts.session_id(info.jti)
        if f"/account/sessions/{sid}/end" in current.get_data(as_text=True):
            return sid, info.jti
    raise AssertionError("no other session listed")


def test_end_one_session(app, store_kind, student):
    mine = login(new_client(app), student)
    theirs = login(new_client(app), student)
    sid, jti = _handle_of_other(app, student, mine)
    resp = mine.post(f"/account/sessions/{sid}/end")
    assert resp.status_code == 303 and resp.headers["Location"] == "/account/sessions"
    assert jti not in [s.jti for s in sessions.store().list_for_user(student.id)]
    assert theirs.get("/account").status_code == 303  # that device is signed out
    assert mine.get("/account").status_code == 200
    assert actions()[-1] == "session.ended"


def test_end_one_session_with_htmx_removes_the_row(app, store_kind, student):
    mine = login(new_client(app), student)
    login(new_client(app), student)
    sid, _ = _handle_of_other(app, student, mine)
    resp = mine.post(
        f"/account/sessions/{sid}/end",
        headers={"HX-Request": "true", "HX-Target": f"session-{sid}"},
    )
    assert resp.status_code == 200 and resp.get_data() == b""
    # It names the session that ended (its device and address), as its row did.
    announced = json.loads(resp.headers["HX-Trigger"])["announce"]
    assert announced.startswith("Session ended: ") and " from " in announced, announced
    assert len(sessions.store().list_for_user(student.id)) == 1


def test_cannot_end_someone_elses_session(app, store_kind, student):
    victim = make_user()
    victim_client = login(new_client(app), victim)
    (info,) = sessions.store().list_for_user(victim.id)
    attacker = login(new_client(app), student)
    resp = attacker.post(f"/account/sessions/{accounts.session_id(info.jti)}/end")
    assert resp.status_code == 303
    assert len(sessions.store().list_for_user(victim.id)) == 1
    assert victim_client.get("/account").status_code == 200


def test_log_out_everywhere_else(app, store_kind, student):
    mine = login(new_client(app), student, remember=True)
    others = [login(new_client(app), student) for _ in range(2)]
    resp = mine.post("/account/sessions/end-others")
    assert resp.status_code == 303
    assert "Signed out of 2 other sessions" in mine.get("/account/sessions").get_data(as_text=True)
    for other in others:
        assert other.get("/account").status_code == 303
    assert mine.get("/account").status_code == 200
    with mine.session_transaction() as sess:
        assert sess.permanent  # "keep me signed in" survives the re-issued token
    db.session.refresh(student)
    assert student.session_epoch == 1
    assert len(sessions.store().list_for_user(student.id)) == 1
    assert "sessions.ended_others" in actions()


# --- revocation on the next request --------------------------------------------------------


def test_replay_after_password_change_is_refused(app, store_kind, student):
    victim = login(new_client(app), student)
    stolen = victim.get_cookie("lectern").value
    data = {
        "pw-current_password": PASSWORD,
        "pw-new_password": "another good passphrase",
        "pw-confirm": "another good passphrase",
    }
    assert victim.post("/account/password", data=data).status_code == 303
    thief = new_client(app)
    thief.set_cookie("lectern", stolen)
    assert thief.get("/account").status_code == 303
    assert victim.get("/account").status_code == 200


def test_deactivation_takes_effect_on_the_next_request(app, store_kind, student):
    c = login(new_client(app), student)
    assert c.get("/account").status_code == 200
    student.is_active = False
    db.session.commit()
    resp = c.get("/account")
    assert resp.status_code == 303 and "/login" in resp.headers["Location"]


def test_role_is_read_from_the_database_every_request(app, store_kind):
    admin = make_user("admin")
    c = login(new_client(app), admin)
    assert c.get("/admin/users").status_code == 200
    admin.role = "teacher"
    db.session.commit()
    assert c.get("/admin/users").status_code == 404
    assert c.get("/account").status_code == 200


def test_epoch_bump_ends_every_session(app, store_kind, student):
    c = login(new_client(app), student)
    with unit_of_work():
        accounts.end_all_sessions(student)
    assert sessions.store().list_for_user(student.id) == []
    assert c.get("/account").status_code == 303


def test_sessions_leave_the_store_once_and_only_after_the_commit(
    app, store_kind, student, monkeypatch
):
    c = login(new_client(app), student)
    store = sessions.store()
    calls = []
    real = store.delete_for_user
    monkeypatch.setattr(
        store, "delete_for_user", lambda *a, **kw: calls.append(a) or real(*a, **kw)
    )
    with pytest.raises(RuntimeError), unit_of_work():
        accounts.end_all_sessions(student)
        raise RuntimeError("refused after the bump")
    assert calls == [] and c.get("/account").status_code == 200  # rolled back: nothing ended
    db.session.refresh(student)
    assert student.session_epoch == 0
    with unit_of_work():
        accounts.end_all_sessions(student)
        assert calls == [] and len(store.list_for_user(student.id)) == 1  # not before the commit
    assert calls == [(student.id,)]  # once, after the commit
    assert c.get("/account").status_code == 303


def test_a_stale_epoch_alone_is_refused(app, store_kind, student):
    """Even if the store still had the jti (e.g. restored), the epoch refuses the token."""
    c = new_client(app)
    login_as(c, student)
    student.session_epoch = 5
    db.session.commit()
    assert c.get("/account").status_code == 303


# --- lifetimes -----------------------------------------------------------------------------


def test_absolute_lifetime(app, store_kind, student):
    short = login(new_client(app), student)
    lasting = login(new_client(app), student, remember=True)
    app.config["SESSION_MAX_SECONDS"] = -1
    assert short.get("/account").status_code == 303
    assert lasting.get("/account").status_code == 200
    app.config["SESSION_REMEMBER_SECONDS"] = -1
    assert lasting.get("/account").status_code == 303


def test_idle_timeout_is_refreshed_on_use(app, student):
    c = login(new_client(app), student)
    (info,) = sessions.store().list_for_user(student.id)
    r = app.extensions["lectern_redis"]
    key = f"lectern:sess:{info.jti}"
    r.expire(key, 5)
    assert c.get("/account").status_code == 200
    assert r.ttl(key) > app.config["SESSION_IDLE_SECONDS"] - 60
    r.delete(key)  # what the TTL does when it runs out
    assert c.get("/account").status_code == 303


def _seconds_left(app, store_kind, client) -> float:
    """How long the client's live session has before its idle timeout ends it."""
    with client.session_transaction() as sess:
        jti = sessions.verify(sess[sessions.AUTH_KEY])["jti"]
    if store_kind == "redis":
        return app.extensions["lectern_redis"].ttl(f"lectern:sess:{jti}")
    from webapp.models import LiveSession, utcnow

    row = db.session.get(LiveSession, jti)
    return (row.expires_at - utcnow()).total_seconds()


def test_keep_me_signed_in_has_the_longer_idle_timeout(app, store_kind, student):
    idle, remember_idle = 2 * 3600, 7 * 24 * 3600
    assert app.config["SESSION_IDLE_SECONDS"] == idle
    assert app.config["SESSION_REMEMBER_IDLE_SECONDS"] == remember_idle
    short = login(new_client(app), student)
    lasting = login(new_client(app), student, remember=True)
    for _ in range(2):  # at login, and again once a request has refreshed it
        assert idle - 60 < _seconds_left(app, store_kind, short) <= idle
        assert remember_idle - 60 < _seconds_left(app, store_kind, lasting) <= remember_idle
        assert short.get("/account").status_code == 200
        assert lasting.get("/account").status_code == 200


def test_idle_timeout_in_the_sql_store(app, student):
    app.extensions["lectern_session_store"] = sessions.SqlStore()
    c = login(new_client(app), student)
    from sqlalchemy import update

    from webapp.models import LiveSession, utcnow

    db.session.execute(update(LiveSession).values(expires_at=utcnow()))
    db.session.commit()
    assert c.get("/account").status_code == 303


def test_a_log_in_purges_expired_rows_of_the_sql_store(app, student):
    """No worker cleans the SQL store: each log-in deletes the rows whose idle timeout ran out."""
    from webapp.models import LiveSession, utcnow

    app.extensions["lectern_session_store"] = sessions.SqlStore()
    login(new_client(app), student)
    live = login(new_client(app), student)
    with live.session_transaction() as sess:
        kept = sessions.verify(sess[sessions.AUTH_KEY])["jti"]
    (expired,) = db.session.scalars(select(LiveSession.jti).where(LiveSession.jti != kept))
    db.session.execute(
        LiveSession.__table__.update()
        .where(LiveSession.jti == expired)
        .values(expires_at=utcnow() - dt.timedelta(seconds=1))
    )
    db.session.commit()
    login(new_client(app), make_user())
    jtis = set(db.session.scalars(select(LiveSession.jti)))
    assert expired not in jtis and kept in jtis and len(jtis) == 2
    assert live.get("/account").status_code == 200


def test_tampered_token_is_refused(app, student):
    c = new_client(app)
    login_as(c, student)
    with c.session_transaction() as sess:
        sess[sessions.AUTH_KEY] = sess[sessions.AUTH_KEY][:-2] + "zz"
    assert c.get("/account").status_code == 303


# --- cookies -------------------------------------------------------------------------------


def test_cookie_flags_in_development(client, student):
    resp = client.post("/login", data={"email": student.email, "password": PASSWORD})
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_cookie_flags_in_production(app, student):
    prod = create_app(
        base_config(
            LECTERN_ENV="production",
            SECRET_KEY="a-long-random-production-key-0123456789-xyz",
            BASE_URL="https://lectern.example",
            MAIL_SERVER="smtp.lectern.example",
            SESSION_COOKIE_SECURE=True,
            SESSION_COOKIE_NAME="__Host-lectern",
        )
    )
    prod.test_client_class = IsolatedClient
    c = prod.test_client()
    resp = c.post(
        "/login",
        data={"email": student.email, "password": PASSWORD},
        base_url="https://lectern.example",
    )
    assert resp.status_code == 303
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("__Host-lectern=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie


# --- Redis down ----------------------------------------------------------------------------


@pytest.fixture
def hung_redis(hung_port):  # noqa: F811
    """A Redis that hangs, not one that refuses (tests/servers.py, ``hung_port``)."""
    return f"redis://127.0.0.1:{hung_port}/0"


@pytest.fixture(params=["client", "url", "closed-port", "hung"])
def redis_down_app(request, app):
    """Redis unreachable: a client handed in (0.2 s timeouts, no retries), or one that
    make_store builds from REDIS_URL. "closed-port" and "hung" are the production wiring: the
    rate limits' storage is derived from the same REDIS_URL, so it is down too."""
    if request.param == "client":
        dead = dead_redis()
        cfg = base_config(REDIS_CLIENT=dead, RATELIMIT_STORAGE_URI="memory://")
    elif request.param == "url":
        cfg = base_config(
            REDIS_CLIENT=None,
            REDIS_URL="redis://127.0.0.1:1/0",
            REDIS_SOCKET_TIMEOUT=0.2,
            RATELIMIT_STORAGE_URI="memory://",
        )
    else:
        url = "redis://127.0.0.1:1/0"
        if request.param == "hung":
            url = request.getfixturevalue("hung_redis")
        cfg = base_config(REDIS_CLIENT=None, REDIS_URL=url)  # REDIS_SOCKET_TIMEOUT: default
        del cfg["RATELIMIT_STORAGE_URI"]
    broken = create_app(cfg)
    assert request.param not in ("closed-port", "hung") or (
        broken.config["RATELIMIT_STORAGE_URI"] == cfg["REDIS_URL"]
    )
    broken.test_client_class = IsolatedClient
    return broken


def _signed_in_to(app, student):
    c = app.test_client()
    with c.session_transaction() as sess, app.app_context():
        sess[sessions.AUTH_KEY] = sessions.sign(student.id, "some-jti", 0, False)
    return c


def _timed(limit: float | None):
    """A caller of test-client methods; with ``limit``, each answer must come within it."""

    def timed(call, *args, **kwargs):
        started = time.monotonic()
        resp = call(*args, **kwargs)
        if limit is not None:
            assert time.monotonic() - started < limit, args
        return resp

    return timed


@pytest.mark.slow
def test_redis_down_answers_within_one_second(redis_down_app, student):
    """The timing half of the test below (the hung listener proves the socket timeouts)."""
    c, timed = _signed_in_to(redis_down_app, student), _timed(1.0)
    for path in ("/account", "/learn"):
        assert timed(c.get, path).status_code == 503, path
    assert timed(c.get, "/account", headers={"HX-Request": "true"}).status_code == 503
    assert timed(redis_down_app.test_client().get, "/courses").status_code == 200
    data = {"email": student.email, "password": PASSWORD}
    assert timed(redis_down_app.test_client().post, "/login", data=data).status_code == 503


def test_redis_down_fails_closed_and_public_pages_work(redis_down_app, student):
    c, timed = _signed_in_to(redis_down_app, student), _timed(None)

    for path in ("/account", "/account/sessions", "/learn"):
        resp = timed(c.get, path)
        assert resp.status_code == 503, path
        assert "Temporarily unavailable" in resp.get_data(as_text=True)
    resp = timed(c.get, "/account", headers={"HX-Request": "true"})
    assert resp.status_code == 503 and "<html" not in resp.get_data(as_text=True)
    # Log-out cannot end the session in the store (503), but this browser drops the cookie.
    with c.session_transaction() as sess:
        kept = dict(sess)
    assert timed(c.post, "/logout").status_code == 503
    with c.session_transaction() as sess:
        assert sessions.AUTH_KEY not in sess
        sess.update(kept)
    # Public pages keep working, with or without the cookie.
    for path in ("/", "/login", "/signup", "/password/forgot", "/activate/resend", "/courses"):
        assert timed(redis_down_app.test_client().get, path).status_code == 200, path
    assert timed(c.get, "/login").status_code == 200
    # Logging in cannot open a session: 503, never a session that is not checked.
    fresh = redis_down_app.test_client()
    data = {"email": student.email, "password": PASSWORD}
    resp = timed(fresh.post, "/login", data=data)
    assert resp.status_code == 503
    assert timed(c.post, "/login", data=data).status_code == 503  # with the old cookie too
    with fresh.session_transaction() as sess:
        assert sessions.AUTH_KEY not in sess


# --- a session ended during one of its own requests stays ended ------------------------------


class _EndedBetweenReadAndWrite:
    """A Redis client on which the session key is deleted (as "end this session" or "log out
    everywhere" in another request would) right after the store has read it."""

    def __init__(self, client, key: str):
        self._client = client
        self._key = key

    def __getattr__(self, name):
        return getattr(self._client, name)

    def getex(self, key, **kwargs):
        raw = self._client.getex(key, **kwargs)
        if key == self._key:
            self._client.delete(key)
        return raw


def _age_seen(r, key: str, seconds: int) -> None:
    """Make the session's "last seen" ``seconds`` old (its timeout kept)."""
    record = json.loads(r.get(key))
    record["seen"] = (utcnow() - dt.timedelta(seconds=seconds)).isoformat()
    r.set(key, json.dumps(record), keepttl=True)


@pytest.mark.parametrize("seen_ago", [0, 3600], ids=["seen-just-now", "seen-an-hour-ago"])
def test_a_session_ended_while_its_request_refreshes_it_stays_ended(app, student, seen_ago):
    c = login(new_client(app), student)
    (info,) = sessions.store().list_for_user(student.id)
    store = app.extensions["lectern_session_store"]
    real, key = store.r, f"lectern:sess:{info.jti}"
    _age_seen(real, key, seen_ago)
    store.r = _EndedBetweenReadAndWrite(real, key)
    try:
        answer = c.get("/account").status_code
    finally:
        store.r = real
    # Seen an hour ago, the request writes "last seen" (SET XX: nothing to replace, so the
    # request is signed out); seen just now it writes nothing, and was served (it read a live
    # session, as if the session had ended just after it). Either way nothing is revived.
    assert answer == (303 if seen_ago else 200)
    assert real.exists(key) == 0
    assert sessions.store().list_for_user(student.id) == []
    assert c.get("/account").status_code == 303


def test_touch_refreshes_only_a_live_session_of_that_user(app, student):
    store = sessions.store()
    store.create("j1", student.id, 60, "127.0.0.1", "pytest")
    r = app.extensions["lectern_redis"]
    assert store.touch("j1", 3600, student.id + 1) is False  # not this user's
    assert store.touch("j1", 3600, student.id) is True
    assert r.ttl("lectern:sess:j1") > 3000
    r.delete("lectern:sess:j1")
    assert store.touch("j1", 3600, student.id) is False
    assert r.exists("lectern:sess:j1") == 0


def test_last_seen_is_written_at_most_once_a_minute_and_keeps_the_timeout(app, student):
    store = sessions.store()
    store.create("j2", student.id, 60, "127.0.0.1", "pytest")
    r = app.extensions["lectern_redis"]
    key = "lectern:sess:j2"
    before = r.get(key)
    assert store.touch("j2", 3600, student.id) is True
    assert r.get(key) == before  # seen a moment ago: only the timeout was renewed
    assert r.ttl(key) > 3000
    _age_seen(r, key, sessions.SEEN_EVERY + 5)
    assert store.touch("j2", 3600, student.id) is True
    seen = dt.datetime.fromisoformat(json.loads(r.get(key))["seen"])
    assert utcnow() - seen < dt.timedelta(seconds=sessions.SEEN_EVERY)
    assert r.ttl(key) > 3000  # KEEPTTL: the write did not drop the renewed timeout
