"""The JSON API under /api/v1: the same services as the pages, with declared schemas
(flask-smorest + marshmallow), bearer tokens and problem details. docs/api.md has the why.

One blueprint, ``api``; its views are in the modules below, one per resource.
"""

from __future__ import annotations

from flask import Flask, abort
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser, is_json_request


class JsonParser(FlaskParser):
    """webargs' parser, except that a body sent to an operation that reads JSON must be JSON:
    a form, text or XML body is 415 (webargs alone would read it as no body: a 422 naming
    every required field, which hides the real mistake). No body at all stays a 422."""

    def _raw_load_json(self, req):
        sent = req.content_length or req.form or req.files or req.get_data(cache=True)
        if sent and not is_json_request(req):
            abort(415, description="Send the body as JSON (Content-Type: application/json).")
        return super()._raw_load_json(req)


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = JsonParser()


bp = ApiBlueprint(
    "api", __name__, url_prefix="/api/v1", description="Lectern's JSON API (docs/api.md)"
)

from . import (  # noqa: E402 - the views register themselves on bp
    auth,
    content,
    courses,
    grading,
    learning,
    roster,
    users,
)

_ = (auth, content, courses, grading, learning, roster, users)


def init_app(app: Flask) -> None:
    """Mount the API: its OpenAPI document, the blueprint, no CSRF, CORS if configured."""
    from ..extensions import csrf
    from .problems import LecternApi

    app.config.update(
        API_TITLE="Lectern API",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": "Courses, learning and grading over JSON. See docs/api.md."},
            "servers": [{"url": "/"}],
        },
    )
    api = LecternApi(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An access token"}
    )
    # Bearer tokens, never cookies: nothing for a forged cross-site request to ride on.
    csrf.exempt(bp)
    api.register_blueprint(bp)
    app.extensions["lectern_api"] = api
    origins = app.config.get("API_CORS_ORIGINS") or []
    if origins:
        from flask_cors import CORS

        CORS(
            app,
            resources={r"/api/v1/*": {"origins": origins}},
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Location", "Retry-After"],
            supports_credentials=False,
            max_age=600,
        )
