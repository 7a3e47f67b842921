"""Error pages when a server Lectern needs is down: the app's own 503, never a bare 500."""

from __future__ import annotations

import contextlib

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from webapp.extensions import db

from .conftest import login_as


def _refuse(*args, **kwargs):
    raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


@contextlib.contextmanager
def database_down():
    """Every statement fails as it does when PostgreSQL is stopped."""
    event.listen(db.engine, "before_cursor_execute", _refuse)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", _refuse)


def assert_503(response):
    """The app's own 503 page (or fragment), with what every answer carries."""
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.headers["X-Request-ID"]
    assert "Content-Security-Policy" in response.headers
    assert "Temporarily unavailable" in response.get_data(as_text=True)


def test_a_public_page_answers_503_while_the_database_is_down(app, client):
    with database_down():
        assert_503(client.get("/courses"))
    assert client.get("/courses").status_code == 200


def test_a_signed_in_user_gets_the_503_page_not_a_bare_500(app, client, student):
    login_as(client, student)
    with database_down():
        assert_503(client.get("/learn"))
        fragment = client.get("/learn", headers={"HX-Request": "true"})
        assert_503(fragment)
        assert "<html" not in fragment.get_data(as_text=True).lower()
    assert client.get("/learn").status_code == 200  # back at once, no restart


def test_a_503_on_a_rate_limited_form_says_when_to_come_back_after_an_outage(app, client):
    """The rate limiter puts its window's reset in Retry-After (an hour for the email forms):
    a 503 says 30 seconds, as every 503 does."""
    words = "a long enough passphrase"
    signup = {"name": "A", "email": "a@example.com", "role": "student", "password": words,
              "confirm": words}  # fmt: skip
    with database_down():
        assert_503(client.post("/signup", data=signup))
        assert_503(client.post("/password/forgot", data={"email": "a@example.com"}))
        assert_503(client.post("/login", data={"email": "a@example.com", "password": "x" * 12}))
    assert client.post("/signup", data=signup).status_code == 303
