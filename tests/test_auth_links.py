"""Secrets and their digests are compared in constant time: the password digest bound into
activation, invitation and reset links, and the public handles of live sessions."""

from __future__ import annotations

import hmac

import pytest

from tests.conftest import login_as, make_user
from webapp import tokens
from webapp.extensions import db
from webapp.services import accounts


@pytest.fixture
def compared(monkeypatch) -> list[tuple]:
    """Every call of hmac.compare_digest, as (a, b)."""
    calls: list[tuple] = []
    real = hmac.compare_digest

    def record(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", record)
    return calls


def _user_for(purpose: str):
    if purpose == "invite":  # invited by an admin: no password yet
        user = accounts.create_user("invited@example.com", "Invited", None, "student")
        db.session.commit()
        return user
    return make_user(active=purpose == "reset")


FINDERS = {
    "activate": accounts.activation_user,
    "invite": accounts.invited_user,
    "reset": accounts.reset_user,
}


@pytest.mark.parametrize("purpose", sorted(FINDERS))
def test_a_link_s_password_digest_is_compared_in_constant_time(app, compared, purpose):
    user = _user_for(purpose)
    digest = tokens.password_digest(user.password_hash)
    claims = {"uid": user.id, "pw": digest}
    if purpose != "reset":
        claims["email"] = user.email
    find = FINDERS[purpose]
    assert find(tokens.make(purpose, **claims)).id == user.id
    assert any(digest.encode() in pair or digest in pair for pair in compared)
    for wrong in ("0" * 32, digest[:-1], "", None, 12345):
        with pytest.raises(tokens.TokenError) as refused:
            find(tokens.make(purpose, **{**claims, "pw": wrong}))
        assert refused.value.reason == "used"


def test_a_session_handle_is_compared_in_constant_time(app, compared, student):
    c = app.test_client()
    jti = login_as(c, student)
    other = login_as(app.test_client(), student)
    sid = accounts.session_id(other)
    resp = c.post(f"/account/sessions/{sid}/end")
    assert resp.status_code == 303
    assert any(sid.encode() in pair or sid in pair for pair in compared)
    assert accounts.find_session(student.id, sid) is None
    assert accounts.find_session(student.id, accounts.session_id(jti)).jti == jti


@pytest.mark.parametrize("sid", ["é", "%C3%A9x", "0" * 20])
def test_any_session_handle_in_the_url_is_answered_not_a_500(app, student, sid):
    c = app.test_client()
    login_as(c, student)
    resp = c.post(f"/account/sessions/{sid}/end")
    assert resp.status_code == 303
    assert "already ended" in c.get("/account/sessions").get_data(as_text=True)
