"""Session tokens and the store of live sessions (Redis, or SQL without Redis).

A login issues a token signed with the salt ``session`` carrying ``sub`` (user id), ``jti``
(random) and ``epoch`` (the user's session epoch). It rides in Flask's session cookie. Every
request checks the signature and absolute age, that the ``jti`` is live in the store (refreshing
its idle timeout), that the epoch matches the user row and that the user is active.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass

import redis
from flask import current_app, g, has_app_context, session
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import delete, select

from .extensions import db
from .metrics import count_store_error
from .models import LiveSession, utcnow

SEEN_EVERY = 60  # seconds: how stale a session's "last seen" may get (one write a minute)


class StoreUnavailable(RuntimeError):
    """The live-session store cannot be reached: authenticated requests fail closed."""


def mark_down() -> None:
    """Remember for the rest of this request that Redis did not answer, so that no later call
    (rendering the 503 page asks who is signed in) waits for another timeout."""
    if has_app_context():
        g.store_unavailable = True


def _known_down() -> bool:
    return has_app_context() and bool(g.get("store_unavailable"))


@dataclass
class SessionInfo:
    jti: str
    user_id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    ip: str
    user_agent: str


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="session")


def sign(user_id: int, jti: str, epoch: int, remember: bool) -> str:
    return _serializer().dumps({"sub": user_id, "jti": jti, "epoch": epoch, "rem": remember})


def verify(token: str) -> dict | None:
    """The token's payload if its signature holds and it is within the absolute lifetime."""
    cfg = current_app.config
    try:
        payload = _serializer().loads(token, max_age=cfg["SESSION_REMEMBER_SECONDS"])
    except (BadSignature, TypeError, ValueError):
        return None
    if not isinstance(payload, dict) or not {"sub", "jti", "epoch"} <= payload.keys():
        return None
    if not payload.get("rem"):
        try:
            _serializer().loads(token, max_age=cfg["SESSION_MAX_SECONDS"])
        except BadSignature:
            return None
    return payload


def idle_seconds(remember: bool) -> int:
    """The idle timeout: longer for "keep me signed in" (SESSION_REMEMBER_IDLE_SECONDS), since
    a remembered session that still died after two idle hours would not keep anyone signed in."""
    cfg = current_app.config
    return cfg["SESSION_REMEMBER_IDLE_SECONDS"] if remember else cfg["SESSION_IDLE_SECONDS"]


def new_jti() -> str:
    return secrets.token_urlsafe(24)


class RedisStore:
    """Live sessions as Redis keys with the idle timeout as TTL."""

    def __init__(self, client: redis.Redis, prefix: str = "lectern:"):
        self.r = client
        self.prefix = prefix

    def _key(self, jti: str) -> str:
        return f"{self.prefix}sess:{jti}"

    def _user_key(self, user_id: int) -> str:
        return f"{self.prefix}user-sess:{user_id}"

    def _call(self, fn, *args):
        if _known_down():
            raise StoreUnavailable("already unreachable in this request")
        try:
            return fn(*args)
        except redis.RedisError as exc:
            mark_down()
            count_store_error("sessions")
            raise StoreUnavailable(str(exc)) from exc

    def create(self, jti: str, user_id: int, idle: int, ip: str, user_agent: str) -> None:
        now = utcnow().isoformat()
        record = json.dumps(
            {"user_id": user_id, "created": now, "seen": now, "ip": ip, "ua": user_agent}
        )

        def run():
            pipe = self.r.pipeline()
            pipe.set(self._key(jti), record, ex=idle)
            pipe.sadd(self._user_key(user_id), jti)
            pipe.execute()

        self._call(run)

    def touch(self, jti: str, idle: int, user_id: int) -> bool:
        """Refresh a live session's idle timeout; False if it is gone or not this user's.

        One round trip on most requests: ``GETEX`` reads the record and renews its timeout,
        and only on a key that still exists, so a session ended (deleted) by another request
        is never brought back. The record's "last seen" is written again only once it is
        ``SEEN_EVERY`` seconds old, with ``SET … XX KEEPTTL``: it too only replaces a key that
        still exists.
        """

        def run():
            raw = self.r.getex(self._key(jti), ex=idle)
            if raw is None:
                return False
            record = json.loads(raw)
            if record["user_id"] != user_id:
                return False  # a token of another user's session: it needs the secret key
            now = utcnow()
            if (now - dt.datetime.fromisoformat(record["seen"])).total_seconds() < SEEN_EVERY:
                return True
            record["seen"] = now.isoformat()
            return bool(self.r.set(self._key(jti), json.dumps(record), xx=True, keepttl=True))

        return self._call(run)

    def is_live(self, jti: str, user_id: int) -> bool:
        """Whether the session is live and this user's, changing nothing (no idle refresh)."""

        def run():
            raw = self.r.get(self._key(jti))
            return raw is not None and json.loads(raw)["user_id"] == user_id

        return self._call(run)

    def delete(self, jti: str) -> bool:
        """End a session; True if it was live (one atomic DEL decides, so of two requests
        ending the same session at once exactly one gets True)."""

        def run():
            raw = self.r.get(self._key(jti))
            gone = self.r.delete(self._key(jti)) == 1
            if raw is not None:
                self.r.srem(self._user_key(json.loads(raw)["user_id"]), jti)
            return gone

        return self._call(run)

    def list_for_user(self, user_id: int) -> list[SessionInfo]:
        def run():
            jtis = sorted(self.r.smembers(self._user_key(user_id)))
            if not jtis:
                return []
            raws = self.r.mget([self._key(j) for j in jtis])
            live, dead = [], []
            for jti, raw in zip(jtis, raws, strict=True):
                if raw is None:
                    dead.append(jti)
                    continue
                rec = json.loads(raw)
                live.append(
                    SessionInfo(
                        jti=jti if isinstance(jti, str) else jti.decode(),
                        user_id=user_id,
                        created_at=dt.datetime.fromisoformat(rec["created"]),
                        last_seen_at=dt.datetime.fromisoformat(rec["seen"]),
                        ip=rec.get("ip", ""),
                        user_agent=rec.get("ua", ""),
                    )
                )
            if dead:
                self.r.srem(self._user_key(user_id), *dead)
            return sorted(live, key=lambda s: s.last_seen_at, reverse=True)

        return self._call(run)

    def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        def run():
            jtis = [
                j if isinstance(j, str) else j.decode()
                for j in self.r.smembers(self._user_key(user_id))
            ]
            doomed = [j for j in jtis if j != keep]
            if doomed:
                self.r.delete(*[self._key(j) for j in doomed])
                self.r.srem(self._user_key(user_id), *doomed)
            return len(doomed)

        return self._call(run)

    def ping(self) -> bool:
        try:
            return bool(self.r.ping())
        except redis.RedisError:
            count_store_error("readiness")
            return False


class SqlStore:
    """The same interface on a SQL table, for running without Redis.

    It writes through its own connection so that a session survives a rollback of the request.
    """

    def _run(self, fn):
        with db.engine.begin() as conn:
            return fn(conn)

    def create(self, jti: str, user_id: int, idle: int, ip: str, user_agent: str) -> None:
        now = utcnow()
        values = {
            "jti": jti,
            "user_id": user_id,
            "expires_at": now + dt.timedelta(seconds=idle),
            "created_at": now,
            "last_seen_at": now,
            "ip": ip,
            "user_agent": user_agent,
        }
        t = LiveSession.__table__

        def run(conn):
            # Housekeeping at log-in: expired rows go (the index on expires_at keeps it cheap),
            # so the table holds the live sessions plus those expired since the last log-in.
            conn.execute(delete(t).where(t.c.expires_at <= now))
            conn.execute(t.insert().values(**values))

        self._run(run)

    def touch(self, jti: str, idle: int, user_id: int) -> bool:
        now = utcnow()
        t = LiveSession.__table__
        stmt = (
            t.update()
            .where(t.c.jti == jti, t.c.user_id == user_id, t.c.expires_at > now)
            .values(last_seen_at=now, expires_at=now + dt.timedelta(seconds=idle))
        )
        return self._run(lambda c: c.execute(stmt).rowcount == 1)

    def is_live(self, jti: str, user_id: int) -> bool:
        t = LiveSession.__table__
        stmt = select(t.c.jti).where(
            t.c.jti == jti, t.c.user_id == user_id, t.c.expires_at > utcnow()
        )
        return self._run(lambda c: c.execute(stmt).first() is not None)

    def delete(self, jti: str) -> bool:
        t = LiveSession.__table__
        stmt = delete(t).where(t.c.jti == jti, t.c.expires_at > utcnow())
        gone = self._run(lambda c: c.execute(stmt).rowcount == 1)
        if not gone:  # an expired row may linger until the next log-in: remove it too
            self._run(lambda c: c.execute(delete(t).where(t.c.jti == jti)))
        return gone

    def list_for_user(self, user_id: int) -> list[SessionInfo]:
        t = LiveSession.__table__
        stmt = (
            select(t)
            .where(t.c.user_id == user_id, t.c.expires_at > utcnow())
            .order_by(t.c.last_seen_at.desc())
        )
        rows = self._run(lambda c: c.execute(stmt).all())
        col = LiveSession.__table__.c.created_at.type
        return [
            SessionInfo(
                jti=r.jti,
                user_id=r.user_id,
                created_at=col.process_result_value(r.created_at, None),
                last_seen_at=col.process_result_value(r.last_seen_at, None),
                ip=r.ip,
                user_agent=r.user_agent,
            )
            for r in rows
        ]

    def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        t = LiveSession.__table__
        stmt = delete(t).where(t.c.user_id == user_id)
        if keep:
            stmt = stmt.where(t.c.jti != keep)
        return self._run(lambda c: c.execute(stmt).rowcount)

    def ping(self) -> bool:
        return True


def store():
    """The live-session store of the current app."""
    return current_app.extensions["lectern_session_store"]


def make_store(app):
    url = app.config.get("REDIS_URL")
    client = app.config.get("REDIS_CLIENT")  # tests hand in a fakeredis client
    if client is None and url:
        timeout = app.config["REDIS_SOCKET_TIMEOUT"]
        # No retries with backoff: an unreachable Redis must answer 503 within a second.
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
        )
    if client is not None:
        app.extensions["lectern_redis"] = client
        return RedisStore(client, prefix=app.config.get("REDIS_PREFIX", "lectern:"))
    return SqlStore()


# --- the signed-in user of a request -------------------------------------------------------

AUTH_KEY = "auth"


def start(user, remember: bool, ip: str, user_agent: str) -> str:
    """Open a live session for ``user`` and put its token in a fresh cookie session."""
    jti = new_jti()
    store().create(jti, user.id, idle_seconds(remember), ip, user_agent[:300])
    session.clear()  # a new session at login: nothing carried over from before (no fixation)
    session[AUTH_KEY] = sign(user.id, jti, user.session_epoch, remember)
    session.permanent = remember
    return jti


def current_jti() -> str | None:
    return getattr(g, "session_jti", None)


def reissue(user) -> None:
    """Re-sign the current session's token with the user's new epoch (same jti, same
    "keep me signed in" choice) after this session ended all the others."""
    payload = verify(session.get(AUTH_KEY) or "")
    if payload is None or payload["sub"] != user.id:
        return
    session[AUTH_KEY] = sign(user.id, payload["jti"], user.session_epoch, bool(payload.get("rem")))


def end_current() -> None:
    """Log out: delete the live session and clear the cookie."""
    jti = current_jti()
    if jti is None:  # the user was not loaded in this request: read the cookie's token
        payload = verify(session.get(AUTH_KEY) or "")
        jti = payload["jti"] if payload else None
    try:
        if jti:
            store().delete(jti)
    finally:
        # Even if the store cannot be reached (503), this browser forgets the session.
        session.clear()


def load_user(request):
    """Flask-Login request loader: the user of a valid, live session, or None.

    If the store cannot be reached the request is treated as anonymous and marked, so that
    pages needing a user answer 503 (fail closed) while public pages keep working.
    """
    from .models import User

    token = session.get(AUTH_KEY)
    if not token:
        return None
    payload = verify(token)
    if payload is None:
        session.pop(AUTH_KEY, None)
        return None
    try:
        idle = idle_seconds(bool(payload.get("rem")))
        alive = store().touch(payload["jti"], idle, payload["sub"])
    except StoreUnavailable:
        mark_down()
        return None
    if not alive:
        session.pop(AUTH_KEY, None)
        return None
    user = db.session.get(User, payload["sub"])
    if user is None or not user.is_active or user.session_epoch != payload["epoch"]:
        session.pop(AUTH_KEY, None)
        return None
    g.session_jti = payload["jti"]
    g.user_id = user.id  # for the logs (webapp/logs.py), which never look a user up
    return user
