"""Bad input is a 4xx page every time, never a 500, and the next normal request is served.

Malformed ids in every route of the app (for each method it has), oversized bodies, too many
form parts, invalid UTF-8, wrong methods and a missing CSRF token (docs/operations.md).
"""

from __future__ import annotations

import pytest

from tests.conftest import base_config, login_as
from tests.test_inputs import world  # noqa: F401 - the fixture
from webapp import create_app

# Not ids any row has: past PostgreSQL's integer (2**31 - 1), and a 20-digit number.
HUGE_IDS = (2**31, 10**20)


def _urls_with(app, method: str, value) -> list[str]:
    """Every route of ``method`` whose path holds an integer, with ``value`` in each."""
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or method not in rule.methods:
            continue
        converters = rule._converters
        ints = [a for a in rule.arguments if a in converters and converters[a].regex == r"\d+"]
        if not ints:
            continue
        values = {a: value if a in ints else "token" for a in rule.arguments}
        for arg in rule.arguments:  # <any(a, b):name>
            if getattr(converters.get(arg), "items", None):
                values[arg] = sorted(converters[arg].items)[0]
        values.update(rule.defaults or {})
        urls.append(rule.build(values, append_unknown=False)[1])
    assert len(urls) > 10
    return urls


def _assert_4xx(response, what: str) -> None:
    """A 4xx page, or (signed out, on a page that needs a user) the redirect to log in."""
    assert 400 <= response.status_code < 500 or response.status_code == 303, (
        f"{what}: {response.status_code}"
    )


@pytest.mark.parametrize("role", [None, "student", "teacher", "admin"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_ids_no_row_can_have_are_a_4xx_on_every_route(app, client, world, role, method):  # noqa: F811
    if role:
        login_as(client, world["people"][role])
    for value in HUGE_IDS:
        for url in _urls_with(app, method, value):
            _assert_4xx(client.open(url, method=method, data={"title": "x"}), f"{method} {url}")
    assert client.get("/courses").status_code == 200


@pytest.mark.parametrize(
    "path, status",
    [("/courses/abc", 404), ("/courses/-1", 404), ("/courses/1.5", 404), ("/courses/%ff", 404),
     ("/courses/%00", 400)],  # a NUL anywhere: refused first (tests/test_inputs.py)
)  # fmt: skip
def test_ids_that_are_not_numbers_are_a_4xx(client, path, status):
    assert client.get(path).status_code == status
    assert client.get("/courses").status_code == 200


def test_an_oversized_body_is_413(app, client, world):  # noqa: F811
    login_as(client, world["people"]["teacher"])
    url = f"/teach/courses/{world['course_id']}/title"
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post(url, data={"title": big})
    assert response.status_code == 413
    assert "<html" in response.get_data(as_text=True).lower()  # the app's own page
    assert client.get("/courses").status_code == 200


def test_too_many_form_parts_is_413(client):
    fields = {f"f{i}": "x" for i in range(5000)}  # over Flask's MAX_FORM_PARTS (1,000)
    response = client.post("/login", data=fields, content_type="multipart/form-data")
    assert response.status_code == 413
    assert client.get("/login").status_code == 200


def test_invalid_utf8_is_never_a_500(client, world):  # noqa: F811
    login_as(client, world["people"]["teacher"])
    url = f"/teach/courses/{world['course_id']}/title"
    for body in (b"title=%ff%fe%fd", b"title=\xff\xfe", b"\xc3\x28=\xa0\xa1"):
        response = client.post(url, data=body, content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500, body
    response = client.get("/courses?q=%ff%fe")
    assert response.status_code < 500
    assert client.get("/courses").status_code == 200


def test_a_wrong_method_is_405(client):
    assert client.put("/courses").status_code == 405
    assert client.delete("/login").status_code == 405
    assert client.get("/logout").status_code == 405


def test_a_missing_csrf_token_is_400_and_changes_nothing():
    app = create_app(base_config(WTF_CSRF_ENABLED=True))
    client = app.test_client()
    response = client.post("/login", data={"email": "a@example.com", "password": "x" * 12})
    assert response.status_code == 400
    assert "<html" in response.get_data(as_text=True).lower()
    assert client.get("/login").status_code == 200
