"""The API keeps the pages' access rules through the same guards: owner-only authoring,
enrolled-only learning, role-only collections, 404 for anything private that is not yours."""

from __future__ import annotations

import pytest

from tests.api.conftest import tokens_for
from tests.conftest import make_course, make_user
from webapp.extensions import db
from webapp.models import BlockType, Course, Role
from webapp.services import learning


@pytest.fixture
def world(app, teacher, other_teacher, student, admin):
    draft = make_course(teacher, title="Draft", published=False)
    public = make_course(teacher, title="Public", types=(BlockType.LESSON, BlockType.QUIZ))
    outsider = make_user(Role.STUDENT)
    learning.enrol(public.id, student)
    quiz = public.sections[0].blocks[1]
    change = learning.complete_block(public.id, quiz.id, student, url="https://example.com/q")
    return {
        "draft": draft.id,
        "public": public.id,
        "draft_section": draft.sections[0].id,
        "draft_block": draft.sections[0].blocks[0].id,
        "public_section": public.sections[0].id,
        "public_block": public.sections[0].blocks[0].id,
        "quiz": quiz.id,
        "submission": change.completion.id,
        "outsider": outsider,
    }


OWNER_ONLY = [
    ("GET", "/courses/{draft}"),
    ("PATCH", "/courses/{public}"),
    ("DELETE", "/courses/{public}"),
    ("POST", "/courses/{public}/sections"),
    ("PUT", "/courses/{public}/order"),
    ("GET", "/sections/{public_section}"),
    ("PATCH", "/sections/{public_section}"),
    ("DELETE", "/sections/{public_section}"),
    ("POST", "/sections/{public_section}/move"),
    ("POST", "/sections/{public_section}/blocks"),
    ("GET", "/blocks/{public_block}"),
    ("PATCH", "/blocks/{public_block}"),
    ("DELETE", "/blocks/{public_block}"),
    ("POST", "/blocks/{public_block}/move"),
    ("GET", "/courses/{public}/grading"),
    ("GET", "/courses/{public}/submissions/{submission}"),
    ("PUT", "/courses/{public}/submissions/{submission}/grade"),
    ("GET", "/courses/{public}/gradebook.csv"),
    ("GET", "/courses/{public}/progress.csv"),
]
BODIES = {"order": {"sections": []}, "grade": {"grade": 1, "version": 1}, "move": {}}


def body(method: str, url: str) -> dict:
    tail = url.rsplit("/", 1)[-1]
    return BODIES.get(tail, {"title": "x"} if method == "POST" else {})


ADMIN_MAY = {("GET", "/courses/{draft}"), ("DELETE", "/courses/{public}")}  # as on the web


@pytest.mark.parametrize("who", ["other_teacher", "student", "admin"])
def test_authoring_and_teaching_are_the_owners_only(client, api, world, request, who):
    pair = tokens_for(client, request.getfixturevalue(who))
    for method, url in OWNER_ONLY:
        if who == "admin" and (method, url) in ADMIN_MAY:
            continue
        resp = api.call(method, url.format(**world), pair, json=body(method, url))
        assert resp.status_code == 404, (method, url, resp.get_json())
        assert resp.headers["Content-Type"] == "application/problem+json"
    assert db.session.get(Course, world["public"]) is not None


def test_the_owner_may(client, api, world, teacher):
    pair = tokens_for(client, teacher)
    for method, url in OWNER_ONLY:
        if method == "GET":
            assert api.get(url.format(**world), pair).status_code == 200, url


def test_admins_read_drafts_and_delete_any_course(client, api, world, admin):
    pair = tokens_for(client, admin)
    assert api.get(f"/courses/{world['draft']}", pair).status_code == 200
    assert api.delete(f"/courses/{world['draft']}", pair).status_code == 204
    assert db.session.get(Course, world["draft"]) is None


STUDENT_ONLY = [
    ("GET", "/enrolments"),
    ("POST", "/enrolments"),
    ("GET", "/completions"),
    ("GET", "/courses/{public}/blocks/{public_block}"),
    ("PUT", "/courses/{public}/blocks/{public_block}/completion"),
]


@pytest.mark.parametrize("method, url", STUDENT_ONLY)
def test_learning_is_for_students(client, api, world, teacher, method, url):
    pair = tokens_for(client, teacher)
    resp = api.call(method, url.format(**world), pair, json={"course_id": world["public"]})
    assert resp.status_code == 404


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/courses/{public}/blocks/{public_block}"),
        ("PUT", "/courses/{public}/blocks/{public_block}/completion"),
        ("GET", "/courses/{public}/blocks/{quiz}/completion"),
        ("GET", "/enrolments/{public}"),
    ],
)
def test_learning_is_for_enrolled_students(client, api, world, method, url):
    pair = tokens_for(client, world["outsider"])
    assert api.call(method, url.format(**world), pair, json={}).status_code == 404


def test_nobody_enrols_in_a_draft_or_sees_it(client, api, world, student):
    pair = tokens_for(client, student)
    assert api.get(f"/courses/{world['draft']}", pair).status_code == 404
    resp = api.post("/enrolments", pair, json={"course_id": world["draft"]})
    assert resp.status_code == 404
    found = api.get("/courses", pair).get_json()["items"]
    assert [c["title"] for c in found] == ["Public"]


@pytest.mark.parametrize("who", ["teacher", "student"])
@pytest.mark.parametrize(
    "method, url", [("GET", "/users"), ("GET", "/users/1"), ("PATCH", "/users/1")]
)
def test_users_are_for_admins(client, api, world, request, who, method, url):
    pair = tokens_for(client, request.getfixturevalue(who))
    assert api.call(method, url, pair, json={"role": "admin"}).status_code == 404


def test_students_do_not_create_courses(client, api, student):
    pair = tokens_for(client, student)
    assert api.post("/courses", pair, json={"title": "Mine"}).status_code == 404
