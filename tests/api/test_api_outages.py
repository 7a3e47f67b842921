"""The JSON API while a server it depends on is away: a JSON 503 with Retry-After and
X-Request-ID, never an HTML page, and served again once the server is back, without a restart
(issue 18 points 3 to 5; docs/api.md, "Errors").

The servers really go away: a private PostgreSQL cluster is stopped, a private redis-server is
stopped, a listener that never answers stands in for Redis (tests/servers.py).
"""

from __future__ import annotations

import time

from tests.api.conftest import API, TOKEN_URL, auth, grant, tokens_for
from tests.conftest import IsolatedClient, base_config, make_course, make_user
from tests.servers import hung_port, private_postgres, private_redis  # noqa: F401 - fixtures
from webapp import create_app, tokens
from webapp.extensions import db
from webapp.models import Role
from webapp.services import api_auth

PROBLEM = "application/problem+json"


def assert_json_503(resp, what: str = "") -> None:
    """The API's 503: a problem document, Retry-After, a request id, the security headers."""
    assert resp.status_code == 503, f"{what}: {resp.status_code} {resp.get_data()[:200]!r}"
    assert resp.mimetype == PROBLEM, f"{what}: {resp.mimetype}"
    assert resp.get_json() == {"type": "about:blank", "title": "Service Unavailable", "status": 503}
    assert resp.headers["Retry-After"] == "30", what
    assert resp.headers["X-Request-ID"], what
    assert resp.headers["X-Content-Type-Options"] == "nosniff", what
    assert resp.headers["Cache-Control"] == "no-store", what


def _requests(course_id: int) -> list[tuple[str, str, dict]]:
    """What an API client does: read, write, and its token endpoint."""
    return [
        ("GET", "/me", {}),
        ("GET", "/courses", {}),
        ("GET", f"/courses/{course_id}", {}),
        ("POST", "/enrolments", {"json": {"course_id": course_id}}),
        ("PATCH", "/me", {"json": {"name": "Renamed"}}),
    ]


def test_the_api_answers_a_json_503_while_postgresql_is_down(private_postgres):  # noqa: F811
    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=private_postgres.url))
    client = app.test_client()
    with app.app_context():
        db.create_all()
        teacher = make_user(Role.TEACHER, email="api-pg-teacher@example.com")
        make_user(Role.STUDENT, email="api-pg-student@example.com")
        course_id = make_course(teacher).id
    pair = tokens_for(client, "api-pg-student@example.com")
    assert client.get(API + "/me", headers=auth(pair)).status_code == 200

    private_postgres.stop()
    for method, path, kw in _requests(course_id):
        resp = client.open(API + path, method=method, headers=auth(pair), **kw)
        assert_json_503(resp, f"{method} {path}")
    assert_json_503(grant(client, "api-pg-student@example.com"), "password grant")
    signup = {"name": "N", "email": "n@example.com", "password": "a long enough passphrase"}
    assert_json_503(client.post(API + "/auth/signup", json=signup), "sign-up")
    assert client.get(API + "/openapi.json").status_code == 200  # needs no database

    private_postgres.start()
    # No restart: the pool's pre-ping replaces the dead connections.
    assert client.get(API + "/me", headers=auth(pair)).status_code == 200
    assert (
        client.post(
            API + "/enrolments", headers=auth(pair), json={"course_id": course_id}
        ).status_code
        == 201
    )  # noqa: E501
    assert grant(client, "api-pg-student@example.com").status_code == 200


def _redis_app(url: str):
    cfg = base_config(REDIS_CLIENT=None, REDIS_URL=url, REDIS_SOCKET_TIMEOUT=0.2)
    del cfg["RATELIMIT_STORAGE_URI"]  # production wiring: the limits live in the same Redis
    served = create_app(cfg)
    served.test_client_class = IsolatedClient
    return served


def test_the_api_answers_a_json_503_while_redis_is_down_and_serves_again(app, private_redis):  # noqa: F811
    served = _redis_app(private_redis.url)
    with served.app_context():
        teacher = make_user(Role.TEACHER, email="api-redis-teacher@example.com")
        make_user(Role.STUDENT, email="api-redis-student@example.com")
        course_id = make_course(teacher).id
    client = served.test_client()
    student = "api-redis-student@example.com"
    pair = tokens_for(client, student)
    assert client.get(API + "/me", headers=auth(pair)).status_code == 200

    private_redis.stop()
    for method, path, kw in _requests(course_id):
        resp = client.open(API + path, method=method, headers=auth(pair), **kw)
        assert_json_503(resp, f"{method} {path}")
    # No token is issued that nobody could check, nor a refresh that nobody could rotate.
    assert_json_503(grant(client, student), "password grant")
    refresh = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    assert_json_503(client.post(TOKEN_URL, data=refresh), "refresh grant")
    assert client.get(API + "/openapi.json").status_code == 200  # needs no Redis

    private_redis.start()  # back, and empty: every token family is gone
    resp = client.get(API + "/me", headers=auth(pair))
    assert resp.status_code == 401 and resp.mimetype == PROBLEM
    again = tokens_for(client, student)  # no restart needed
    assert client.get(API + "/me", headers=auth(again)).status_code == 200


def test_a_hung_redis_is_a_json_503_for_the_api(app, hung_port):  # noqa: F811
    """A listener in place of Redis that never answers: the socket timeout ends the request."""
    served = _redis_app(f"redis://127.0.0.1:{hung_port}/0")
    with served.app_context():
        student = make_user(Role.STUDENT, email="api-hung@example.com")
        claims = {"sub": student.id, "epoch": 0, "iat": int(time.time()), "typ": "access"}
        # A well-signed access token: only the store can tell whether it is still live.
        token = tokens.make(api_auth.ACCESS, **claims, jti="j", sid=api_auth.store_key("f", "r"))
        student = student.email
    client = served.test_client()
    assert_json_503(client.get(API + "/me", headers=auth(token)), "/me")
    assert_json_503(grant(client, student), "password grant")
    assert client.get(API + "/openapi.json").status_code == 200
