"""Who calls the API: the ``Authorization: Bearer`` access token, and nothing else.

The API never reads the session cookie: ``authenticated`` checks the bearer token through
``services.api_auth.bearer`` and keeps it in ``g.api_bearer``; Flask-Login's
``current_user`` (the cookie's user) is never asked for on an API request.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, g

from ..models import User
from ..services import api_auth
from ..tokens import bearer_token
from . import bp

SECURITY = [{"bearerAuth": []}]
CHALLENGE = 'Bearer realm="lectern"'


class Unauthenticated(Exception):
    """No bearer token, or one that is not (or no longer) valid: 401 with a challenge."""

    def __init__(self, detail: str, error: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.error = error

    @property
    def challenge(self) -> str:
        if self.error is None:
            return CHALLENGE
        return f'{CHALLENGE}, error="{self.error}", error_description="{self.detail}"'


def current() -> api_auth.Bearer:
    """The checked bearer of this request (set by ``authenticated``)."""
    return g.api_bearer


def me() -> User:
    return g.api_bearer.user


def authenticated(*roles: str):
    """The view needs a valid access token; with ``roles``, a user with one of them (others get
    404, as on the web: the resource does not exist for them)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            token = bearer_token()
            if token is None:
                raise Unauthenticated("Send an access token: Authorization: Bearer <token>.")
            found = api_auth.bearer(token)
            if found is None:
                raise Unauthenticated(
                    "The access token is invalid, expired or revoked.", "invalid_token"
                )
            g.api_bearer = found
            if roles and found.user.role not in roles:
                abort(404)
            return view(*args, **kwargs)

        return bp.doc(security=SECURITY)(wrapped)

    return decorator


@bp.after_request
def _private(response):
    """What a bearer reads is theirs: no shared cache keeps it."""
    if g.get("api_bearer") is not None:
        response.headers["Cache-Control"] = "no-store"
    return response
