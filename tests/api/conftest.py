"""Helpers for the API tests: tokens by the password grant, bearer headers, emailed tokens."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.e2e.conftest import serve
from webapp.extensions import db
from webapp.models import OutboxMessage

API = "/api/v1"
TOKEN_URL = API + "/auth/token"


def grant(client, user_or_email, password: str = PASSWORD):
    email = getattr(user_or_email, "email", user_or_email)
    return client.post(
        TOKEN_URL, data={"grant_type": "password", "username": email, "password": password}
    )


def tokens_for(client, user, password: str = PASSWORD) -> dict:
    resp = grant(client, user, password)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def refresh(client, refresh_token: str):
    return client.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def auth(token_or_pair) -> dict:
    token = token_or_pair["access_token"] if isinstance(token_or_pair, dict) else token_or_pair
    return {"Authorization": f"Bearer {token}"}


def emailed_token(address: str, path: str) -> str:
    """The token of the newest emailed link to ``path`` (e.g. "/activate/") for ``address``."""
    rows = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.recipient == address)
        .order_by(OutboxMessage.id.desc())
    ).all()
    for row in rows:
        found = re.search(re.escape(path) + r"([A-Za-z0-9_.\-]+)", row.text_body or "")
        if found:
            return found.group(1)
    raise AssertionError(f"no {path} link emailed to {address}")


@pytest.fixture
def api(client):
    """The test client with JSON helpers: api.get(url, user_tokens) …"""

    class Api:
        def __init__(self, c):
            self.c = c

        def call(self, method, url, pair=None, **kw):
            headers = {**kw.pop("headers", {}), **(auth(pair) if pair else {})}
            return self.c.open(API + url, method=method, headers=headers, **kw)

        def get(self, url, pair=None, **kw):
            return self.call("GET", url, pair, **kw)

        def post(self, url, pair=None, **kw):
            return self.call("POST", url, pair, **kw)

        def patch(self, url, pair=None, **kw):
            return self.call("PATCH", url, pair, **kw)

        def put(self, url, pair=None, **kw):
            return self.call("PUT", url, pair, **kw)

        def delete(self, url, pair=None, **kw):
            return self.call("DELETE", url, pair, **kw)

    return Api(client)


@pytest.fixture
def server(app, tmp_path):
    """The app served by gunicorn (tests/e2e's ``serve``), with no timing floor on the email
    forms, room in the rate limits for a fuzzer's thousand requests from one address, and
    teachers' sign-up open (the journey signs up its own teacher)."""
    generous = "100000 per minute"
    env = {
        "EMAIL_FORM_MIN_SECONDS": "0",
        "TEACHER_SIGNUP": "open",
        "LOGIN_LIMIT_IP": generous,
        "LOGIN_LIMIT_ACCOUNT": generous,
        "EMAIL_LIMIT_IP": generous,
        "EMAIL_LIMIT_ADDRESS": generous,
    }
    with serve(app, tmp_path, **env) as url:
        yield url
