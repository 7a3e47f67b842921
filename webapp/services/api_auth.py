"""The JSON API's bearer tokens: the OAuth2 password and refresh grants, revocation, and the
check of an access token on every API request (docs/api.md, "Tokens").

Tokens are signed by ``tokens.make`` with one salt per type (``api-access``, ``api-refresh``)
and carry JWT-style claims: ``sub`` (user id), ``jti``, ``typ``, ``epoch`` (the user's session
epoch) and ``iat``; ``tokens.read`` checks the signature and the age (``max_age`` always).

A password grant opens a *family*. The family's current refresh token is a live session in the
same store as the browser's sessions (Redis, or the SQL table without Redis), under the key
``api.<family>.<refresh jti>``, with the refresh lifetime as its TTL: its state expires by itself
when the token does. Access tokens name that key (``sid``) and are refused once it is gone.

- Rotation: a refresh grant opens the family's next key, then deletes the presented token's
  key (one atomic DEL decides which of two concurrent refreshes wins). A token whose key was
  already gone (used before, or revoked) is a reuse: the whole family ends, and the client must
  log in again (OAuth 2.0 Security BCP).
- Revocation and log-out delete the family's keys: its refresh token and every access token.
- The store holds only live tokens (an allowlist): if Redis loses its data every API client is
  logged out, the safe direction, exactly as the browser sessions are.
- ``session_epoch`` ends every token too (password change or reset, "log out everywhere",
  deactivation, role change), and so does ``end_all_sessions`` deleting the user's keys. An
  inactive user's tokens are refused. Roles are read from the user row on every request.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from flask import current_app

from .. import sessions, tokens
from ..extensions import db
from ..models import User
from . import accounts, audit, unit_of_work

ACCESS = "api-access"
REFRESH = "api-refresh"
PREFIX = "api."


class GrantError(Exception):
    """A token request refused, with its OAuth2 error code (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type


@dataclass(frozen=True)
class Bearer:
    """The user of a valid access token, and the token's claims."""

    user: User
    claims: dict


def store_key(family: str, refresh_jti: str) -> str:
    return f"{PREFIX}{family}.{refresh_jti}"


def _family_of(key: str) -> str:
    return key.removeprefix(PREFIX).partition(".")[0]


def _issue(user: User, family: str, ip: str, user_agent: str) -> TokenPair:
    cfg = current_app.config
    refresh_jti = sessions.new_jti()
    key = store_key(family, refresh_jti)
    agent = (user_agent or "API client")[:300]
    sessions.store().create(key, user.id, cfg["API_REFRESH_SECONDS"], ip, agent)
    common = {"sub": user.id, "epoch": user.session_epoch, "iat": int(time.time())}
    refresh = tokens.make(REFRESH, **common, jti=refresh_jti, typ="refresh", fam=family)
    access = tokens.make(ACCESS, **common, jti=sessions.new_jti(), typ="access", sid=key)
    return TokenPair(access, refresh, cfg["API_ACCESS_SECONDS"])


def password_grant(email: str, password: str, ip: str, user_agent: str) -> TokenPair:
    """The password grant: the web log-in's checks and audit events, then a new family."""
    result = accounts.authenticate(email, password)
    if result.outcome == "ok":
        # Audited first, then the family opens in the store: a grant the database did not
        # record (it failed mid-way) leaves no live token family behind.
        accounts.record_login(result.user, ip)
        return _issue(result.user, secrets.token_urlsafe(12), ip, user_agent)
    if result.outcome == "pending":
        accounts.record_pending_login(result.user, ip)
        raise GrantError(
            "invalid_grant",
            "This account is not activated yet. We have sent a new activation link.",
        )
    accounts.record_login_failure(email, result.user, ip)
    raise GrantError("invalid_grant", "That email and password do not match an active account.")


def _claims(purpose: str, token: str, typ: str) -> dict | None:
    """The claims of a valid, unexpired token of this type, or None."""
    try:
        claims = tokens.read(purpose, token)
    except tokens.TokenError:
        return None
    if claims.get("typ") != typ or not isinstance(claims.get("sub"), int):
        return None
    if not isinstance(claims.get("epoch"), int):
        return None
    return claims


def _current_user(claims: dict) -> User | None:
    """The token's user if they are active and the token's epoch is theirs."""
    user = db.session.get(User, claims["sub"])
    if user is None or not user.is_active or user.session_epoch != claims["epoch"]:
        return None
    return user


def refresh_grant(token: str, ip: str, user_agent: str) -> TokenPair:
    """Rotate: the presented refresh token stops working and the family's next pair is issued.
    A refresh token used before (or revoked) ends its whole family (reuse detection)."""
    claims = _claims(REFRESH, token or "", "refresh")
    if claims is None or not isinstance(claims.get("fam"), str):
        raise GrantError("invalid_grant", "The refresh token is invalid or expired.")
    user = _current_user(claims)
    if user is None:
        end_family(claims["sub"], claims["fam"])
        raise GrantError("invalid_grant", "The refresh token is no longer valid. Log in again.")
    # The next pair's key is live before the presented one goes: a reuse racing with this
    # rotation then always finds it when it ends the family (never a pair that survives it).
    pair = _issue(user, claims["fam"], ip, user_agent)
    if not sessions.store().delete(store_key(claims["fam"], claims["jti"])):
        end_family(user.id, claims["fam"])  # the pair just issued with it
        with unit_of_work():
            audit.record("api.refresh_reused", actor=user, target=user, ip=ip)
        raise GrantError(
            "invalid_grant",
            "This refresh token was already used or revoked; its tokens are all ended now. "
            "Log in again.",
        )
    return pair


def end_family(user_id: int, family: str) -> int:
    """Delete every live key of the family (its refresh token, and so its access tokens)."""
    store = sessions.store()
    ended = 0
    for info in store.list_for_user(user_id):
        if info.jti.startswith(f"{PREFIX}{family}."):
            ended += store.delete(info.jti)
    return ended


def revoke(token: str) -> None:
    """RFC 7009: revoke an access or refresh token with its whole family (access and refresh
    together). An unknown, invalid or expired token is not an error: there is nothing to end."""
    for purpose, typ in ((ACCESS, "access"), (REFRESH, "refresh")):
        try:
            claims = tokens.read(purpose, token or "")
        except tokens.TokenError:
            continue
        if claims.get("typ") != typ or not isinstance(claims.get("sub"), int):
            continue
        family = claims.get("fam") if typ == "refresh" else _family_of(str(claims.get("sid")))
        if isinstance(family, str) and family:
            end_family(claims["sub"], family)
        return


def bearer(token: str) -> Bearer | None:
    """The user of a valid access token: signature, age, type, live family, active user, epoch."""
    claims = _claims(ACCESS, token or "", "access")
    if claims is None or not isinstance(claims.get("sid"), str):
        return None
    if not sessions.store().is_live(claims["sid"], claims["sub"]):
        return None
    user = _current_user(claims)
    return Bearer(user, claims) if user is not None else None


def log_out(current: Bearer) -> None:
    """End the family of the access token in use: its refresh token and access tokens."""
    end_family(current.user.id, _family_of(current.claims["sid"]))


def reissue(current: Bearer, ip: str, user_agent: str) -> TokenPair:
    """A new pair for this client after its user's epoch changed (their password, changed
    through this client: every other session and token has ended, this one carries on)."""
    user = db.session.get(User, current.user.id)
    family = _family_of(current.claims["sid"])
    sessions.store().delete(current.claims["sid"])
    return _issue(user, family, ip, user_agent)
