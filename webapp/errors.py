"""Error pages for 400/403/404/405/413/429/500/503: friendly, htmx-aware, never a traceback."""

from __future__ import annotations

import logging
import time

import redis
from flask import g, make_response, render_template
from flask_login import current_user
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from .api import problems
from .api.security import Unauthenticated
from .extensions import login_manager
from .htmx import is_htmx
from .metrics import count_store_error
from .services import Conflict, DomainError, Invalid, NotAllowed, NotFound, discard
from .sessions import StoreUnavailable, mark_down

log = logging.getLogger(__name__)
RETRY_SECONDS = 30  # Retry-After on every 503 (docs/security.md)

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Reload the page and try again."),
    403: ("Not allowed", "You do not have permission to do that."),
    404: ("Not found", "There is nothing here. The link may be old, or the page was removed."),
    405: ("Method not allowed", "That action cannot be done this way."),
    413: ("Too large", "What you sent is larger than Lectern accepts."),
    429: ("Too many attempts", "Please wait a little and try again."),
    500: ("Something went wrong", "An error on our side stopped this request. Nothing was saved."),
    503: (
        "Temporarily unavailable",
        "Lectern cannot reach a service it needs right now. Please try again in a minute.",
    ),
}


def _resolve_user_safely() -> None:
    """Load the signed-in user for the page's header now; if the database or the session store
    is what failed, render the error page as for an anonymous visitor instead of failing again."""
    try:
        current_user._get_current_object()
    except (SQLAlchemyError, redis.RedisError, StoreUnavailable):
        discard()
        g._login_user = login_manager.anonymous_user()


def render_error(code: int, detail: str | None = None, retry_after: int | None = None):
    _resolve_user_safely()
    title, message = MESSAGES.get(code, MESSAGES[500])
    ctx = {
        "code": code,
        "title": title,
        "message": detail or message,
        "request_id": getattr(g, "request_id", "-"),
        "retry_after": retry_after,
    }
    template = "errors/fragment.html" if is_htmx() else "errors/page.html"
    resp = make_response(render_template(template, **ctx), code)
    if retry_after:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def keep_retry_after(response):
    """``after_request``, run after Flask-Limiter's: every 503 says ``Retry-After: 30`` (the
    limiter would put its window's reset there, an hour away for the email forms)."""
    if response.status_code == 503:
        response.headers["Retry-After"] = str(RETRY_SECONDS)
    return response


def register(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        retry = None
        if exc.code == 429:
            retry = _retry_seconds()
        elif exc.code == 503:
            retry = RETRY_SECONDS
        if problems.is_api_request():
            return _api_http_error(exc, retry)
        detail = None
        if exc.code in (400, 403) and exc.description and getattr(exc, "show_detail", False):
            detail = exc.description
        resp = render_error(exc.code, detail, retry)
        if exc.code == 405 and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(StoreUnavailable)
    @app.errorhandler(redis.RedisError)
    def store_down(exc):
        log.error("session store unavailable: %s", exc)
        if not isinstance(exc, StoreUnavailable):  # the store counted its own already
            count_store_error("rate_limits")
        mark_down()  # the rate limits' Redis is the sessions' Redis: no second timeout
        discard()
        return _error(503, retry_after=RETRY_SECONDS)

    @app.errorhandler(OperationalError)
    def database_down(exc):
        # The database cannot be reached (or a statement timed out): a clear 503, never a 500.
        log.error("database unavailable (request %s): %s", getattr(g, "request_id", "-"), exc)
        discard()
        return _error(503, retry_after=RETRY_SECONDS)

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        # Fallback for domain errors a route did not turn into a form message itself.
        discard()
        codes = {NotFound: 404, NotAllowed: 403, Conflict: 409, Invalid: 422}
        code = next((c for kind, c in codes.items() if isinstance(exc, kind)), 400)
        if problems.is_api_request():
            fields = {exc.field: [exc.message]} if code == 422 and exc.field else None
            return problems.answer(code, exc.message or None, fields)
        return render_error(code, exc.message or None)

    @app.errorhandler(Unauthenticated)
    def unauthenticated(exc: Unauthenticated):
        discard()
        return problems.answer(401, exc.detail, headers={"WWW-Authenticate": exc.challenge})

    @app.errorhandler(Exception)
    def server_error(exc):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error (request %s)", getattr(g, "request_id", "-"))
        discard()
        return _error(500)

    app.register_error_handler(InternalServerError, server_error)
    app.register_error_handler(ServiceUnavailable, http_error)


def _error(code: int, retry_after: int | None = None):
    """An error page, or the problem document of an API request."""
    if problems.is_api_request():
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return problems.answer(code, headers=headers)
    return render_error(code, retry_after=retry_after)


def _api_http_error(exc: HTTPException, retry: int | None):
    """An HTTP error of an API request as a problem document; a validation error (422) from
    the schemas carries its field errors."""
    headers = {"Retry-After": str(retry)} if retry else {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    data = getattr(exc, "data", None) or {}
    fields = problems.flatten(data["messages"]) if "messages" in data else None
    detail = None
    if fields:
        detail = "The request has invalid fields."
    elif exc.code not in (404, 500) and exc.description and getattr(exc, "show_detail", True):
        detail = exc.description
    for name, value in (data.get("headers") or {}).items():
        headers[name] = value
    return problems.answer(exc.code or 500, detail, fields, headers)


def _retry_seconds() -> int:
    """Seconds until the rate limit that refused this request resets (at least 1)."""
    from .extensions import limiter

    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()))
