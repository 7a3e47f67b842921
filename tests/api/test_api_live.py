"""The API against the app served by gunicorn: the journey script of docs/api.md, and a
standard OAuth2 client (authlib) against the token endpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.conftest import emailed_token
from tests.conftest import make_user
from webapp.extensions import db
from webapp.models import Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def journey_source() -> str:
    text = DOC.read_text()
    found = re.search(r"<!-- journey -->\s*```python\n(.*?)```", text, re.S)
    assert found, "docs/api.md has lost its journey script"
    return found.group(1)


def activation_token(email: str) -> str:
    db.session.expire_all()
    return emailed_token(email, "/activate/")


def test_the_journey_script_in_the_docs_runs(server):
    space: dict = {"__name__": "journey"}
    exec(compile(journey_source(), str(DOC), "exec"), space)  # noqa: S102 - our own docs
    course_id = space["journey"](server, activation_token)
    assert isinstance(course_id, int)


def test_authlib_oauth2_session_fetches_and_refreshes_tokens(server):
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.requests_client import OAuth2Session

    user = make_user(Role.STUDENT)
    token_url = server + "/api/v1/auth/token"
    session = OAuth2Session(client_id="script", token_endpoint_auth_method="none")
    token = session.fetch_token(token_url, username=user.email, password="correct horse battery")
    assert token["token_type"] == "bearer" and token["expires_in"] == 900
    me = session.get(server + "/api/v1/me")
    assert me.status_code == 200 and me.json()["id"] == user.id

    old_refresh = token["refresh_token"]
    new = session.refresh_token(token_url, refresh_token=old_refresh)
    assert new["refresh_token"] != old_refresh
    assert session.get(server + "/api/v1/me").json()["id"] == user.id

    with pytest.raises(OAuthError) as refused:  # reuse: the family ends
        session.refresh_token(token_url, refresh_token=old_refresh)
    assert refused.value.error == "invalid_grant"
    assert session.get(server + "/api/v1/me").status_code == 401

    with pytest.raises(OAuthError) as wrong:
        session.fetch_token(token_url, username=user.email, password="not it")
    assert wrong.value.error == "invalid_grant"
