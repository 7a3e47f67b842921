"""Logs: one JSON object per line in production (LOG_FORMAT), the request id, one access line
per request, and the redaction of emailed links' tokens.

gunicorn.conf.py loads this file by its path (not through the ``webapp`` package, which would
import the whole app into the master and keep its code across a reload), so at module level it
needs nothing but the standard library and Flask.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time

from flask import g, has_app_context, request

FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Email links carry one-purpose tokens in their path (activation, password reset, invitation,
# email change). Wherever a path or URL is written to a log (gunicorn's access log, a message),
# "[redacted]" stands in their place.
_SEP = r"(?:/|%2[Ff])"  # a slash, or an encoded one (a link inside ?next=…)
TOKEN_PATH = re.compile(
    rf"({_SEP}(?:activate|password{_SEP}reset|invite|account{_SEP}email{_SEP}confirm){_SEP})"
    r"(?!(?:resend|sent)(?:[/?#&%\s\"]|$))[^/?#&%\s\"]+"
)
# Every alternative of TOKEN_PATH holds one of these words: a text without any is left alone
# (one substring test instead of a regex substitution; gunicorn's access log has some 40 atoms).
TOKEN_WORDS = ("activate", "reset", "invite", "confirm")

access_log = logging.getLogger("lectern.access")


def might_hold_token(text: str) -> bool:
    return any(word in text for word in TOKEN_WORDS)


def redact(text: str) -> str:
    """``text`` with the token of every emailed link in it replaced by "[redacted]"."""
    if not might_hold_token(text):
        return text
    return TOKEN_PATH.sub(r"\1[redacted]", text)


def choose_format(value: str | None, env: str) -> str:
    """LOG_FORMAT as set, else json in production and text elsewhere (gunicorn.conf.py and
    config.py decide alike). An unknown value is returned as it is: config.py refuses it."""
    value = (value or "").strip().lower()
    return value or ("json" if env == "production" else "text")


# --- the JSON lines ------------------------------------------------------------------------

# Attributes every LogRecord has: anything else on a record came from ``extra=`` and is written.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_encode = json.JSONEncoder(default=str, ensure_ascii=False, separators=(", ", ": ")).encode


def request_fields() -> dict:
    """The request id and the signed-in user's id, when there are a request and a user; never
    looks anything up (the user only if the request already loaded them)."""
    if not has_app_context():
        return {}
    state = g._get_current_object()
    fields = {}
    request_id = state.get("request_id")
    if request_id is not None:
        fields["request_id"] = request_id
    user_id = _user_id(state)
    if user_id is not None:
        fields["user_id"] = user_id
    return fields


def _user_id(state) -> int | None:
    user_id = state.get("user_id")  # set by sessions.load_user
    if user_id is None:
        bearer = state.get("api_bearer")  # the API's checked bearer token
        user_id = bearer.claims.get("sub") if bearer is not None else None
    return user_id


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id and user_id (in a request), the record's extra
    fields, and an exception's traceback as ``exc``: one line, never a link's token."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            + f".{int((record.created - seconds) * 1000):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "lectern_access", None)
        if fields is not None:  # the access line: its fields made already, the route its text
            out.update(fields)
            return _encode(out)
        out["message"] = redact(out["message"])
        out.update(request_fields())
        extra = record.__dict__.keys() - _STANDARD
        for key in extra:
            out[key] = record.__dict__[key]
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return _encode(out)


def json_handler(stream=None) -> logging.Handler:
    """The handler production logs through: JSON lines on ``stream`` (stderr by default)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


def _configure_root(fmt: str) -> None:
    """A handler on the root logger, as logging.basicConfig makes one: only if there is none
    (gunicorn leaves the root logger alone; a test's log capture is kept)."""
    root = logging.getLogger()
    if root.handlers:
        return
    if fmt == "json":
        root.addHandler(json_handler())
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
    root.setLevel(logging.INFO)


# --- every request: its id, and in JSON mode its access line ---------------------------------


def init_app(app) -> None:
    """Called first in create_app, so that its hooks run before every other: the request id is
    there for any answer (a refused CSRF token, a rate limit), and the access line's duration
    counts all the app's work."""
    fmt = app.config["LOG_FORMAT"]
    _configure_root(fmt)
    if fmt == "json":
        # The development server's own request lines would repeat the access line, raw path
        # (with a link's token) and all.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app.before_request(_start_timed)
        app.after_request(_access_line)
    else:
        app.before_request(_start)


def _start() -> None:
    g.request_id = secrets.token_hex(6)


def _start_timed() -> None:
    state = g._get_current_object()
    state.request_started = time.perf_counter()
    state.request_id = secrets.token_hex(6)


def _access_line(response):
    """One line per request: the route (the URL rule, never the raw path: no ids or tokens),
    method, status, duration. A streamed answer (a CSV export) is logged once it is sent."""
    state = g._get_current_object()  # each `g.` and `request.` is a context lookup: once each
    if state.get("access_logged"):  # an after_request hook failed; its error page came through
        return response
    state.access_logged = True
    req = request._get_current_object()
    rule = req.url_rule
    fields = {"request_id": state.get("request_id")}
    user_id = _user_id(state)
    if user_id is not None:
        fields["user_id"] = user_id
    fields["method"] = req.method
    fields["route"] = rule.rule if rule is not None else None
    fields["endpoint"] = req.endpoint
    fields["status"] = response.status_code
    fields["ip"] = req.remote_addr
    started = state.get("request_started")
    if started is None or not response.is_streamed:
        _write_access(fields, started)
    else:
        response.call_on_close(lambda: _write_access(fields, started))
    return response


def _write_access(fields: dict, started: float | None) -> None:
    if started is not None:
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    if not access_log.isEnabledFor(logging.INFO):
        return
    # The record made directly: Logger.info would walk the stack for the caller's line, a
    # third of the line's cost, for a line whose origin is always this one.
    message = f"{fields['method']} {fields['route'] or '(no route)'} {fields['status']}"
    record = logging.LogRecord(access_log.name, logging.INFO, __file__, 0, message, None, None)
    record.lectern_access = fields
    access_log.handle(record)
