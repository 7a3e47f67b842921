"""Logs: one JSON object per line in production (LOG_FORMAT), the request id, one access line
per request, and the redaction of emailed links' tokens.

gunicorn.conf.py loads this file by its path (not through the ``webapp`` package, which would
import the whole app into the master and keep its code across a reload), so at module level it
needs nothing but the standard library and Flask.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import time

from flask import g, has_app_context, has_request_context, request

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
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def request_fields() -> dict:
    """The request id and the signed-in user's id, when there are a request and a user; never
    looks anything up (the user only if the request already loaded them)."""
    if not has_app_context():
        return {}
    fields = {}
    request_id = g.get("request_id")
    if request_id is not None:
        fields["request_id"] = request_id
    user_id = g.get("user_id")  # set by sessions.load_user
    if user_id is None:
        bearer = g.get("api_bearer")  # the API's checked bearer token
        user_id = bearer.claims.get("sub") if bearer is not None else None
    if user_id is not None:
        fields["user_id"] = user_id
    return fields


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id and user_id (in a request), the record's extra
    fields, and an exception's traceback as ``exc``: one line, never a link's token."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if "request_id" not in record.__dict__:
            out.update(request_fields())
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                out[key] = value
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, default=str, ensure_ascii=False)


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
    g.request_id = secrets.token_hex(6)
    g.request_started = time.perf_counter()


def _access_line(response):
    """One line per request: the route (the URL rule, never the raw path: no ids or tokens),
    method, status, duration. A streamed answer (a CSV export) is logged once it is sent."""
    if g.get("access_logged"):  # an after_request hook failed and the error page came through
        return response
    g.access_logged = True
    rule = request.url_rule
    fields = {
        "request_id": g.get("request_id"),
        **request_fields(),
        "method": request.method,
        "route": rule.rule if rule is not None else None,
        "endpoint": request.endpoint,
        "status": response.status_code,
        "ip": request.remote_addr,
    }
    started = g.get("request_started")
    if started is None or not response.is_streamed:
        _write_access(fields, started)
    else:
        response.call_on_close(lambda: _write_access(fields, started))
    return response


def _write_access(fields: dict, started: float | None) -> None:
    if started is not None:
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    route = fields["route"] or "(no route)"
    access_log.info("%s %s %s", fields["method"], route, fields["status"], extra=fields)
