"""The account (name, password) and a course's students over the API."""

from __future__ import annotations

import pytest

from tests.api.conftest import grant, refresh, tokens_for
from tests.conftest import make_course, make_user
from webapp.models import BlockType, Role
from webapp.services import learning, roster


def test_change_name(client, api, student):
    pair = tokens_for(client, student)
    resp = api.patch("/me", pair, json={"name": "  New Name "})
    assert resp.status_code == 200 and resp.get_json()["name"] == "New Name"
    assert api.patch("/me", pair, json={"name": "   "}).status_code == 422


def test_change_password_ends_the_others_and_keeps_this_client(client, api, student):
    pair = tokens_for(client, student)
    other = tokens_for(client, student)
    wrong = api.post(
        "/me/password", pair, json={"current_password": "nope", "new_password": "x" * 20}
    )
    assert wrong.status_code == 422 and list(wrong.get_json()["errors"]) == ["current_password"]
    new = "another long passphrase"
    resp = api.post(
        "/me/password",
        pair,
        json={"current_password": "correct horse battery", "new_password": new},
    )
    assert resp.status_code == 200
    fresh = resp.get_json()
    assert api.get("/me", fresh).status_code == 200
    assert api.get("/me", pair).status_code == 401
    assert api.get("/me", other).status_code == 401
    assert refresh(client, other["refresh_token"]).status_code == 400
    assert refresh(client, fresh["refresh_token"]).status_code == 200
    assert grant(client, student, new).status_code == 200


@pytest.mark.parametrize("config_overrides", [{"PASSWORD_CHECK_LIMIT": "2 per 15 minutes"}])
def test_wrong_current_passwords_are_throttled(client, api, student):
    pair = tokens_for(client, student)
    body = {"current_password": "nope", "new_password": "x" * 20}
    assert [api.post("/me/password", pair, json=body).status_code for _ in range(3)] == [
        422, 422, 429
    ]  # fmt: skip


@pytest.fixture
def course(app, teacher):
    return make_course(teacher, sections=1, blocks=2, types=(BlockType.LESSON,))


def test_roster_enrol_list_record_remove(client, api, teacher, student, course):
    pair = tokens_for(client, teacher)
    other = make_user(Role.STUDENT, name="Zed")
    colleague = make_user(Role.TEACHER)
    emails = f"{student.email}, {other.email}; {colleague.email}, not-an-address"
    resp = api.post(f"/courses/{course.id}/students", pair, json={"emails": emails})
    assert resp.status_code == 200
    assert [r["result"] for r in resp.get_json()] == [
        "enrolled", "enrolled", roster.STAFF[Role.TEACHER], "not an email address"
    ]  # fmt: skip
    learning.complete_block(course.id, course.sections[0].blocks[0].id, student)
    page = api.get(f"/courses/{course.id}/students", pair, query_string={"limit": 1}).get_json()
    assert [r["name"] for r in page["items"]] == [student.name]
    assert page["items"][0]["percent"] == 50 and page["next_cursor"]
    rest = api.get(
        f"/courses/{course.id}/students",
        pair,
        query_string={"limit": 1, "cursor": page["next_cursor"]},
    ).get_json()
    assert [r["name"] for r in rest["items"]] == ["Zed"] and rest["next_cursor"] is None
    record = api.get(f"/courses/{course.id}/students/{student.id}", pair).get_json()
    assert [b["completed_at"] is not None for b in record["blocks"]] == [True, False]
    assert api.delete(f"/courses/{course.id}/students/{student.id}", pair).status_code == 204
    assert api.get(f"/courses/{course.id}/students/{student.id}", pair).status_code == 404


def test_roster_is_the_owners(client, api, other_teacher, student, course):
    pair = tokens_for(client, other_teacher)
    url = f"/courses/{course.id}/students"
    assert api.get(url, pair).status_code == 404
    assert api.post(url, pair, json={"emails": student.email}).status_code == 404


@pytest.mark.parametrize("config_overrides", [{"ENROL_LIMIT": "3 per hour"}])
def test_enrolling_by_email_shares_the_roster_pages_budget(client, api, teacher, course):
    from tests.conftest import login_as

    pair = tokens_for(client, teacher)
    url = f"/courses/{course.id}/students"
    two = "a@example.com b@example.com"
    assert api.post(url, pair, json={"emails": two}).status_code == 200
    login_as(client, teacher)
    web = f"/teach/courses/{course.id}/students"
    assert client.post(web, data={"emails": "c@example.com"}).status_code in (
        200, 303
    )  # fmt: skip
    assert api.post(url, pair, json={"emails": "d@example.com"}).status_code == 429


def test_duplicate_a_course(client, api, teacher, course):
    pair = tokens_for(client, teacher)
    resp = api.post(f"/courses/{course.id}/duplicate", pair)
    assert resp.status_code == 201
    copy = resp.get_json()
    assert copy["id"] != course.id and copy["published"] is False
    assert resp.headers["Location"] == f"/api/v1/courses/{copy['id']}"
    assert [len(s["blocks"]) for s in copy["sections"]] == [2]
