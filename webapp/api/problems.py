"""Errors of the JSON API: RFC 9457 problem details (``application/problem+json``), and the
OAuth2 error shape (RFC 6749 section 5.2) on the token endpoint.

``errors.py`` (the app's error handlers) answers every request under ``/api/`` through
``answer()`` here, so an API client never gets an HTML page, whatever failed.
"""

from __future__ import annotations

import http

from flask import jsonify, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from werkzeug.http import HTTP_STATUS_CODES

PREFIX = "/api/"
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
PROBLEM = "application/problem+json"

# OAuth2 error codes for the token endpoint's refusals that are not a grant's own error (any
# other status: invalid_request).
OAUTH_ERRORS = {400: "invalid_request", 401: "invalid_client", 422: "invalid_request"}


def is_api_request() -> bool:
    return request.path.startswith(PREFIX)


class ProblemSchema(Schema):
    """RFC 9457 problem details; ``errors`` maps a field to its messages (422)."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class OAuthErrorSchema(Schema):
    """The token endpoint's errors (RFC 6749 section 5.2)."""

    error = fields.String(required=True, metadata={"example": "invalid_grant"})
    error_description = fields.String()


class LecternApi(Api):
    """flask-smorest's Api, with our error handling: the app's handlers (errors.py) answer for
    the API too, in the problem shape documented here as every operation's default response."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        pass  # errors.register() owns the handlers and calls answer() for /api/ requests

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = ProblemSchema
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "A problem (RFC 9457)", "schema": ProblemSchema}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


def flatten(messages) -> dict[str, list[str]]:
    """webargs' ``{location: {field: [messages]}}`` as ``{field: [messages]}``."""
    found: dict[str, list[str]] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            found.setdefault(prefix or "body", []).extend(value)
        else:
            found.setdefault(prefix or "body", []).append(str(value))

    if isinstance(messages, dict) and set(messages) <= {
        "json", "form", "query", "querystring", "headers", "files", "view_args", "path"
    }:  # fmt: skip
        for inner in messages.values():
            walk("", inner)
    else:
        walk("", messages)
    return found


def answer(
    status: int,
    detail: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict | None = None,
):
    """The error response for an API request: OAuth2-shaped on the token endpoint, else a
    problem document."""
    if request.path == TOKEN_PATH and status < 500 and status != 429:
        body = {"error": OAUTH_ERRORS.get(status, "invalid_request")}
        text = "; ".join(f"{k}: {' '.join(v)}" for k, v in (errors or {}).items()) or detail
        if text:
            body["error_description"] = text
        resp = jsonify(body)
        # The grant's own errors and invalid fields are 400 (401: client authentication), as
        # RFC 6749 says; an HTTP error of the request itself (405, 413, 415) keeps its status.
        resp.status_code = 400 if status in (400, 422) else status
    else:
        body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error")}
        body["status"] = status
        if detail:
            body["detail"] = detail
        if errors:
            body["errors"] = errors
        resp = jsonify(body)
        resp.status_code = status
        resp.mimetype = PROBLEM
    resp.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp
