"""One-purpose signed tokens: activation, invitation, password reset and email-change links,
and the JSON API's access and refresh tokens.

Each purpose has its own salt and lifetime, and each token is bound to the state it changes,
so that it works once: an activation token names the address and carries a digest of the password
hash (refused once the account is active, or once a later sign-up replaced the password); reset
and invitation tokens carry that digest too; an email-change token names the old address.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PURPOSES = {
    "activate": "ACTIVATION_MAX_SECONDS",
    "invite": "ACTIVATION_MAX_SECONDS",
    "reset": "RESET_MAX_SECONDS",
    "email-change": "EMAIL_CHANGE_MAX_SECONDS",
    # The JSON API's bearer tokens (services/api_auth.py): one salt per type.
    "api-access": "API_ACCESS_SECONDS",
    "api-refresh": "API_REFRESH_SECONDS",
}


class TokenError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "expired", "invalid", "used" or "taken"


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"lectern-{purpose}")


def password_digest(password_hash: str | None) -> str:
    """A short keyed digest of the password hash, so a reset link dies when the hash changes."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, (password_hash or "").encode(), hashlib.sha256).hexdigest()[:32]


def same(given: object, expected: str) -> bool:
    """Whether a secret (or a digest of one) matches, in constant time. ``given`` may come from
    outside (a URL, a claim): anything that is not a string simply does not match."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def password_unchanged(claims: dict, password_hash: str | None) -> bool:
    """Whether a link's ``pw`` claim is the digest of this password hash (constant time)."""
    return same(claims.get("pw"), password_digest(password_hash))


def make(purpose: str, **claims) -> str:
    return _serializer(purpose).dumps(claims)


def read(purpose: str, token: str) -> dict:
    """The claims of a valid token of this purpose; TokenError otherwise."""
    max_age = current_app.config[PURPOSES[purpose]]
    try:
        claims = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenError("expired") from exc
    except (BadSignature, TypeError, ValueError) as exc:
        raise TokenError("invalid") from exc
    if not isinstance(claims, dict):
        raise TokenError("invalid")
    return claims


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer …`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_subject() -> int | None:
    """The user id an API request's access token names, its signature and age checked but not
    its revocation (for rate-limit keys only; ``services.api_auth.bearer`` decides access)."""
    try:
        sub = read("api-access", bearer_token() or "").get("sub")
    except TokenError:
        return None
    return sub if isinstance(sub, int) else None
