"""Bad input to the JSON API is a JSON 4xx every time, never a 500, and the next request is
served (issue 18 point 10; docs/api.md, "Errors").

Impossible ids in every route of the API, for every method it takes and every role; ids no
row can have inside bodies; oversized bodies; invalid UTF-8 and invalid JSON; JSON nested
deeper than any request needs; wrong methods; bodies that are not JSON.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import API, TOKEN_URL, auth, tokens_for
from tests.test_inputs import world  # noqa: F401 - the fixture

PROBLEM = "application/problem+json"
# Not ids any row has: past PostgreSQL's integer (2**31 - 1), and a 20-digit number.
HUGE_IDS = (2**31, 10**20)

# A body each operation accepts, so that the request gets past its schema to the ids.
BODIES = {
    "api.update_course": {"title": "x"},
    "api.create_section": {"title": "x"},
    "api.update_section": {"title": "x"},
    "api.move_section": {"direction": "up"},
    "api.create_block": {"title": "x"},
    "api.update_block": {"title": "x"},
    "api.move_block": {"direction": "up"},
    "api.reorder": {"sections": []},
    "api.complete": {"url": "https://example.com/work"},
    "api.edit_completion": {"url": "https://example.com/work", "remarks": ""},
    "api.grade": {"grade": 50, "version": 1},
    "api.enrol_students": {"emails": "someone@example.com"},
    "api.update_user": {"role": "student"},
}


def assert_problem(resp, status: int, what: str = "") -> dict:
    """An API error of exactly ``status``: a problem document saying the same status."""
    assert resp.status_code == status, f"{what}: {resp.status_code} {resp.get_data()[:200]!r}"
    assert resp.mimetype == PROBLEM, f"{what}: {resp.mimetype}"
    body = resp.get_json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"], what
    return body


def _served(client, pair) -> None:
    """A normal request right after: served."""
    assert client.get(API + "/me", headers=auth(pair)).status_code == 200


def _api_urls(app, method: str, value) -> list[tuple[str, str]]:
    """(endpoint, url) of every API route of ``method`` with an id in its path, set to
    ``value``."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API) or method not in rule.methods:
            continue
        ints = [a for a in rule.arguments if rule._converters[a].regex == r"\d+"]
        if ints:
            urls.append((rule.endpoint, rule.build(dict.fromkeys(ints, value))[1]))
    return urls


@pytest.mark.parametrize("role", ["student", "teacher", "admin"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_ids_no_row_can_have_are_a_404_on_every_api_route(app, client, world, role, method):  # noqa: F811
    pair = tokens_for(client, world["people"][role])
    swept = 0
    for value in HUGE_IDS:
        for endpoint, url in _api_urls(app, method, value):
            resp = client.open(url, method=method, headers=auth(pair), json=BODIES.get(endpoint))
            assert_problem(resp, 404, f"{role} {method} {url}")
            swept += 1
    assert swept >= 2
    _served(client, pair)


@pytest.mark.parametrize(
    "path, status",
    [("/courses/abc", 404), ("/courses/-1", 404), ("/courses/1.5", 404), ("/courses/%ff", 404),
     ("/courses/%00", 400), ("/sections/99999999999999999999", 404), ("/nowhere", 404)],
)  # fmt: skip
def test_ids_that_are_not_numbers_are_a_json_4xx(client, world, path, status):  # noqa: F811
    pair = tokens_for(client, world["people"]["teacher"])
    for method in ("GET", "PATCH", "DELETE"):
        resp = client.open(API + path, method=method, headers=auth(pair), json={"title": "x"})
        assert_problem(resp, status, f"{method} {path}")
    _served(client, pair)


@pytest.mark.parametrize(
    "role, method, path, body, status",
    [
        ("student", "POST", "/enrolments", {"course_id": 10**20}, 404),
        ("student", "POST", "/enrolments", {"course_id": -1}, 404),
        ("student", "POST", "/enrolments", {"course_id": "abc"}, 422),
        ("teacher", "POST", "/blocks/{block_id}/move", {"section_id": 10**20}, 404),
        ("teacher", "POST", "/blocks/{block_id}/move", {"section_id": 2**31}, 404),
        ("teacher", "PUT", "/courses/{course_id}/order",
         {"sections": [{"id": 10**20, "blocks": [2**31]}]}, 409),
        ("teacher", "PUT", "/courses/{course_id}/submissions/{completion_id}/grade",
         {"grade": 50, "version": 10**20}, 422),
        ("teacher", "PUT", "/courses/{course_id}/submissions/{completion_id}/grade",
         {"grade": 10**20, "version": 1}, 422),
        ("admin", "PATCH", "/users/{user_id}", {"role": 10**20}, 422),
    ],
)  # fmt: skip
def test_ids_no_row_can_have_in_a_body_are_a_json_4xx(
    client,
    world,  # noqa: F811
    role,
    method,
    path,
    body,
    status,
):
    pair = tokens_for(client, world["people"][role])
    resp = client.open(API + path.format(**world), method=method, headers=auth(pair), json=body)
    assert_problem(resp, status, f"{method} {path} {body}")
    _served(client, pair)


def test_an_oversized_body_is_413(app, client, world):  # noqa: F811
    pair = tokens_for(client, world["people"]["teacher"])
    big = b'{"title": "' + b"x" * app.config["MAX_CONTENT_LENGTH"] + b'"}'
    resp = client.post(
        API + "/courses", headers=auth(pair), data=big, content_type="application/json"
    )
    assert_problem(resp, 413)
    _served(client, pair)


def test_an_oversized_token_request_is_413_in_the_oauth_shape(app, client, world):  # noqa: F811
    """The token endpoint answers in OAuth2's shape (RFC 6749 section 5.2), with the HTTP
    status of what went wrong when that is not the grant's own error."""
    form = "grant_type=password&username=" + "x" * app.config["MAX_CONTENT_LENGTH"]
    resp = client.post(TOKEN_URL, data=form, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 413
    assert resp.mimetype == "application/json"
    assert resp.get_json()["error"] == "invalid_request"
    _served(client, tokens_for(client, world["people"]["student"]))


@pytest.mark.parametrize(
    "body, status",
    [
        (b'{"title": "\xff\xfe"}', 400),  # not UTF-8
        (b'{"title": "\xc3\x28"}', 400),
        (b'{"title": ', 400),  # not JSON
        (b"{'title': 'x'}", 400),
        (b"", 422),  # no body: the required fields are missing
        (b"[1, 2]", 422),  # JSON, but not an object
        (b'"a string"', 422),
        (b'{"title": "x", "owner": 1}', 422),  # a field the schema does not declare
        (b"[" * 100_000 + b"]" * 100_000, 400),  # nested past any parser's depth
        (b'{"a": ' * 200 + b"1" + b"}" * 200, 400),  # nested deeper than any request needs
    ],
)
def test_invalid_utf8_and_invalid_json_are_a_json_4xx(client, world, body, status):  # noqa: F811
    pair = tokens_for(client, world["people"]["teacher"])
    resp = client.post(
        API + "/courses", headers=auth(pair), data=body, content_type="application/json"
    )
    assert_problem(resp, status, repr(body[:40]))
    _served(client, pair)


def test_invalid_utf8_in_a_query_or_a_token_request_is_never_a_500(client, world):  # noqa: F811
    pair = tokens_for(client, world["people"]["student"])
    resp = client.get(API + "/courses?q=%ff%fe", headers=auth(pair))
    assert resp.status_code == 200  # read as text, with replacement characters
    assert resp.get_json()["items"] == []
    resp = client.post(
        TOKEN_URL,
        data=b"grant_type=password&username=\xff\xfe&password=%ff",
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status_code == 400
    assert resp.get_json()["error"] in ("invalid_request", "invalid_grant")
    _served(client, pair)


def test_a_wrong_method_is_405_with_allow(client, world):  # noqa: F811
    pair = tokens_for(client, world["people"]["teacher"])
    for method, path, allowed in (
        ("PUT", "/courses", {"GET", "POST"}),
        ("POST", f"/courses/{world['course_id']}", {"GET", "PATCH", "DELETE"}),
        ("GET", "/auth/token", {"POST"}),
        ("DELETE", "/me", {"GET", "PATCH"}),
    ):
        resp = client.open(API + path, method=method, headers=auth(pair))
        assert resp.status_code == 405, (method, path)
        assert resp.mimetype in (PROBLEM, "application/json"), (method, path)
        assert set(resp.headers["Allow"].split(", ")) - {"HEAD", "OPTIONS"} == allowed
    _served(client, pair)


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", b"title=x"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="title"'
         b"\r\n\r\nx\r\n--b--\r\n"),
        ("text/plain", b'{"title": "x"}'),
        ("application/xml", b"<title>x</title>"),
    ],
)  # fmt: skip
def test_a_body_that_is_not_json_is_415(client, world, content_type, body):  # noqa: F811
    pair = tokens_for(client, world["people"]["teacher"])
    resp = client.post(API + "/courses", headers=auth(pair), data=body, content_type=content_type)
    problem = assert_problem(resp, 415, content_type)
    assert "application/json" in problem["detail"]
    _served(client, pair)
    # The same, as JSON: created.
    resp = client.post(API + "/courses", headers=auth(pair), json={"title": "x"})
    assert resp.status_code == 201


def test_a_token_request_in_json_is_the_oauth_invalid_request(client, world):  # noqa: F811
    resp = client.post(TOKEN_URL, json={"grant_type": "password"})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"
