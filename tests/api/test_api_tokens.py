"""The API's tokens: grants, expiry, revocation, rotation with reuse detection, the session
epoch, inactive users, cookies never authenticating, CSRF, throttling."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from tests.api.conftest import TOKEN_URL, auth, emailed_token, grant, refresh, tokens_for
from tests.conftest import login_as, make_user
from webapp import sessions, tokens
from webapp.extensions import db
from webapp.models import AuditEvent, Role
from webapp.services import accounts, api_auth, unit_of_work, user_actions


def me(client, pair):
    return client.get("/api/v1/me", headers=auth(pair))


def test_password_grant_issues_a_pair_that_reads_me(client, student):
    resp = grant(client, student)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    claims = tokens.read("api-access", body["access_token"])
    assert claims["sub"] == student.id and claims["typ"] == "access" and claims["epoch"] == 0
    assert {"jti", "iat", "sid"} <= claims.keys()
    refresh_claims = tokens.read("api-refresh", body["refresh_token"])
    assert refresh_claims["typ"] == "refresh" and refresh_claims["jti"] != claims["jti"]
    got = me(client, body)
    assert got.status_code == 200
    assert got.get_json()["email"] == student.email and got.get_json()["role"] == "student"
    assert "login.success" in db.session.scalars(select(AuditEvent.action)).all()


@pytest.mark.parametrize("case", ["wrong password", "unknown email", "deactivated", "pending"])
def test_password_grant_refusals_are_oauth2_errors(client, case):
    user = make_user(Role.STUDENT, active=case != "pending")
    if case == "deactivated":
        user_actions.deactivate(make_user(Role.ADMIN), user.id, "127.0.0.1")
    email = "nobody@example.com" if case == "unknown email" else user.email
    password = "not the password" if case == "wrong password" else None
    resp = grant(client, email, password) if password else grant(client, email)
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["error"] == "invalid_grant" and body["error_description"]
    assert resp.headers["Content-Type"].startswith("application/json")
    if case == "pending":
        assert "not activated" in body["error_description"]
        assert emailed_token(user.email, "/activate/")


@pytest.mark.parametrize(
    "data, error",
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "a@example.com"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
    ],
)
def test_malformed_token_requests(client, data, error):
    resp = client.post(TOKEN_URL, data=data)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == error


def _resigned(token: str, purpose: str, age: int) -> str:
    """The same token (same claims) signed ``age`` seconds ago."""

    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    claims = tokens.read(purpose, token)
    key = client_key()
    return URLSafeTimedSerializer(key, salt=f"lectern-{purpose}", signer=Past).dumps(claims)


def client_key() -> str:
    from flask import current_app

    return current_app.config["SECRET_KEY"]


def test_access_token_expires_after_15_minutes(client, student):
    pair = tokens_for(client, student)
    fresh = _resigned(pair["access_token"], "api-access", 15 * 60 - 5)
    assert me(client, fresh).status_code == 200
    old = _resigned(pair["access_token"], "api-access", 15 * 60 + 1)
    resp = me(client, old)
    assert resp.status_code == 401
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_refresh_token_expires_after_14_days(client, student):
    pair = tokens_for(client, student)
    day = 24 * 3600
    too_old = _resigned(pair["refresh_token"], "api-refresh", 14 * day + 1)
    assert refresh(client, too_old).get_json()["error"] == "invalid_grant"
    # 13 days old: still good (the same family key is live)
    old = _resigned(pair["refresh_token"], "api-refresh", 13 * day)
    assert refresh(client, old).status_code == 200


def test_types_do_not_cross(client, student):
    pair = tokens_for(client, student)
    assert me(client, pair["refresh_token"]).status_code == 401
    assert refresh(client, pair["access_token"]).get_json()["error"] == "invalid_grant"
    assert me(client, pair["access_token"] + "x").status_code == 401


def test_rotation_old_refresh_token_stops_working_new_one_works(client, student):
    first = tokens_for(client, student)
    second = refresh(client, first["refresh_token"]).get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert me(client, second).status_code == 200
    # the access token of the rotated pair goes with its refresh token
    assert me(client, first).status_code == 401
    third = refresh(client, second["refresh_token"]).get_json()
    assert me(client, third).status_code == 200


def test_reuse_of_a_refresh_token_revokes_the_whole_family(client, student):
    first = tokens_for(client, student)
    other = tokens_for(client, student)  # another client of the same user: untouched
    second = refresh(client, first["refresh_token"]).get_json()
    reused = refresh(client, first["refresh_token"])
    assert reused.status_code == 400 and reused.get_json()["error"] == "invalid_grant"
    assert (
        db.session.scalar(select(func.count()).where(AuditEvent.action == "api.refresh_reused"))
        == 1
    )
    assert me(client, second).status_code == 401
    assert refresh(client, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert me(client, other).status_code == 200


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoke_ends_access_and_refresh_together(client, student, which):
    pair = tokens_for(client, student)
    other = tokens_for(client, student)
    resp = client.post("/api/v1/auth/revoke", data={"token": pair[which]})
    assert resp.status_code == 200
    assert me(client, pair).status_code == 401
    assert refresh(client, pair["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert me(client, other).status_code == 200


def test_revoke_of_nonsense_is_200_and_changes_nothing(client, student):
    pair = tokens_for(client, student)
    assert client.post("/api/v1/auth/revoke", data={"token": "nonsense"}).status_code == 200
    assert me(client, pair).status_code == 200


def test_logout_ends_the_pair(client, student):
    pair = tokens_for(client, student)
    resp = client.post("/api/v1/auth/logout", headers=auth(pair))
    assert resp.status_code == 204
    assert me(client, pair).status_code == 401
    assert refresh(client, pair["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_revocation_state_lives_in_the_store_with_the_remaining_lifetime(app, client, student):
    pair = tokens_for(client, student)
    sid = tokens.read("api-access", pair["access_token"])["sid"]
    redis = app.extensions["lectern_redis"]
    ttl = redis.ttl(f"lectern:sess:{sid}")
    assert 14 * 24 * 3600 - 5 <= ttl <= 14 * 24 * 3600
    client.post("/api/v1/auth/logout", headers=auth(pair))
    assert redis.exists(f"lectern:sess:{sid}") == 0


def test_session_epoch_ends_every_token(client, student):
    pair = tokens_for(client, student)
    with unit_of_work():
        accounts.end_all_sessions(db.session.get(type(student), student.id))
    assert me(client, pair).status_code == 401
    assert refresh(client, pair["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert me(client, tokens_for(client, student)).status_code == 200


def test_a_stale_epoch_is_refused_even_if_the_family_is_live(client, student):
    pair = tokens_for(client, student)
    with unit_of_work():
        db.session.get(type(student), student.id).session_epoch += 1  # epoch alone
    assert me(client, pair).status_code == 401


def test_inactive_users_are_refused(client, student, admin):
    pair = tokens_for(client, student)
    with unit_of_work():
        db.session.get(type(student), student.id).is_active = False  # no epoch bump
    assert me(client, pair).status_code == 401
    assert refresh(client, pair["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_role_change_is_read_from_the_database(client, teacher, admin):
    pair = tokens_for(client, teacher)
    user_actions.change_role(admin, teacher.id, "student", "127.0.0.1")  # bumps the epoch
    assert me(client, pair).status_code == 401


def test_the_session_cookie_never_authenticates_the_api(client, student, teacher):
    login_as(client, student)
    assert client.get("/learn").status_code == 200  # the cookie is good for pages
    (web,) = sessions.store().list_for_user(student.id)
    assert client.get("/api/v1/me").status_code == 401
    # with a bearer of someone else, the bearer is who calls; the cookie is not even read
    got = client.get("/api/v1/me", headers=auth(tokens_for(client, teacher)))
    assert got.get_json()["id"] == teacher.id
    (after,) = sessions.store().list_for_user(student.id)
    assert after.last_seen_at == web.last_seen_at  # the web session was not touched


@pytest.mark.parametrize("config_overrides", [{"WTF_CSRF_ENABLED": True}])
def test_no_csrf_on_the_api_but_on_pages(client, student):
    assert grant(client, student).status_code == 200
    assert client.post("/login", data={"email": student.email}).status_code == 400


@pytest.mark.parametrize("config_overrides", [{"LOGIN_LIMIT_ACCOUNT": "3 per 15 minutes"}])
def test_token_endpoint_is_throttled_with_the_web_login(client, student):
    client.post("/login", data={"email": student.email, "password": "wrong one"})
    for _ in range(2):
        assert grant(client, student, "wrong one").status_code == 400
    resp = grant(client, student)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert client.post("/login", data={"email": student.email, "password": "x"}).status_code == 429


@pytest.mark.parametrize("config_overrides", [{"LOGIN_LIMIT_ACCOUNT": "2 per 15 minutes"}])
def test_refresh_grants_do_not_use_the_account_budget(client, student):
    pair = tokens_for(client, student)
    for _ in range(3):
        assert refresh(client, "nonsense").status_code == 400
    assert refresh(client, pair["refresh_token"]).status_code == 200


def test_api_tokens_are_listed_and_ended_with_the_users_sessions(client, student):
    pair = tokens_for(client, student)
    listed = sessions.store().list_for_user(student.id)
    assert [s.jti.startswith(api_auth.PREFIX) for s in listed] == [True]
    sessions.store().delete_for_user(student.id)
    assert me(client, pair).status_code == 401


def test_the_store_down_is_a_503_problem_not_a_500(app, student):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tests.conftest import IsolatedClient, base_config
    from webapp import create_app

    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_timeout=0.2, socket_connect_timeout=0.2,
        decode_responses=True, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip
    broken = create_app(base_config(REDIS_CLIENT=dead, RATELIMIT_STORAGE_URI="memory://"))
    broken.test_client_class = IsolatedClient
    c = broken.test_client()
    resp = grant(c, student)
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) > 0
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert c.get("/api/v1/me", headers=auth("x.y.z")).status_code == 401  # no store needed
    with app.app_context():
        good = tokens_for(app.test_client(), student)
    resp = c.get("/api/v1/me", headers=auth(good))
    assert resp.status_code == 503 and resp.get_json()["status"] == 503


def test_answers_to_a_bearer_are_not_cached(client, student):
    pair = tokens_for(client, student)
    assert me(client, pair).headers["Cache-Control"] == "no-store"


def test_two_refreshes_with_one_token_at_once_one_wins_and_the_family_ends(app, client, student):
    import threading

    pair = tokens_for(client, student)
    barrier = threading.Barrier(2)
    results: list = []

    def go():
        with app.app_context():
            c = app.test_client()
            barrier.wait()
            resp = refresh(c, pair["refresh_token"])
            results.append((resp.status_code, resp.get_json()))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(code for code, _ in results) == [200, 400]
    (winner,) = [body for code, body in results if code == 200]
    # the loser presented a used token: reuse detection ended the family, winner included
    assert me(client, winner).status_code == 401
