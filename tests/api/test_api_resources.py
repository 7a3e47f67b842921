"""The API's resources: 201 with Location, 204, 409, 422 with field errors, 428, cursor pages,
account flows by email, grading with If-Match, admin actions, CORS."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.api.conftest import emailed_token, grant, refresh, tokens_for
from tests.conftest import make_course, make_user
from webapp.extensions import db
from webapp.models import BlockType, CompletedContentBlock, Role, User
from webapp.services import learning


def test_signup_activation_and_login(client, api):
    body = {"name": "Ada", "email": "Ada@Example.com", "password": "a fine long passphrase"}
    resp = api.post("/auth/signup", json={**body, "role": "teacher"})
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v1/me"
    user = db.session.scalar(select(User).where(User.email == "ada@example.com"))
    # The web's rule (TEACHER_SIGNUP=approval, the default): a student who asked to teach.
    assert user.role == "student" and user.teacher_requested_at is not None
    assert not user.is_active
    assert grant(client, "ada@example.com", body["password"]).get_json()["error"] == "invalid_grant"
    token = emailed_token("ada@example.com", "/activate/")
    assert api.post("/auth/activate", json={"token": token}).status_code == 204
    assert api.post("/auth/activate", json={"token": token}).status_code == 410
    pair = tokens_for(client, "ada@example.com", body["password"])
    assert api.get("/me", pair).get_json()["status"] == "active"
    # a registered address gets the same answer
    assert api.post("/auth/signup", json=body).status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "A", "email": "not an address", "password": "a fine long passphrase"}, "email"),
        ({"name": "A", "email": "a@example.com", "password": "short"}, "password"),
        ({"name": "A", "email": "a@example.com", "password": "x" * 20, "role": "admin"}, "role"),
        ({"email": "a@example.com", "password": "a fine long passphrase"}, "name"),
    ],
)
def test_signup_refusals_name_the_field(api, body, field):
    resp = api.post("/auth/signup", json=body)
    assert resp.status_code == 422
    assert list(resp.get_json()["errors"]) == [field]


def test_password_reset_by_email(client, api, student):
    old = tokens_for(client, student)
    assert api.post("/auth/password/forgot", json={"email": student.email}).status_code == 202
    assert api.post("/auth/password/forgot", json={"email": "x@example.com"}).status_code == 202
    token = emailed_token(student.email, "/password/reset/")
    weak = api.post("/auth/password/reset", json={"token": token, "password": "short"})
    assert weak.status_code == 422 and list(weak.get_json()["errors"]) == ["password"]
    new = "a completely new passphrase"
    assert (
        api.post("/auth/password/reset", json={"token": token, "password": new}).status_code == 204
    )
    assert api.get("/me", old).status_code == 401
    assert refresh(client, old["refresh_token"]).status_code == 400
    assert (
        api.post("/auth/password/reset", json={"token": token, "password": new}).status_code == 410
    )
    assert grant(client, student).status_code == 400
    assert grant(client, student, new).status_code == 200


def test_course_create_read_update_delete(client, api, teacher):
    pair = tokens_for(client, teacher)
    resp = api.post("/courses", pair, json={"title": "Rivers"})
    assert resp.status_code == 201
    location = resp.headers["Location"]
    course = resp.get_json()
    assert location == f"/api/v1/courses/{course['id']}" and course["published"] is False
    assert (
        client.get(
            location, headers={"Authorization": f"Bearer {pair['access_token']}"}
        ).status_code
        == 200
    )
    blank = api.patch(f"/courses/{course['id']}", pair, json={"title": "   "})
    assert blank.status_code == 422 and list(blank.get_json()["errors"]) == ["title"]
    empty = api.patch(f"/courses/{course['id']}", pair, json={"title": "Seas", "published": True})
    assert empty.status_code == 422  # nothing to learn yet: not published, nor renamed
    assert api.get(f"/courses/{course['id']}", pair).get_json()["title"] == "Rivers"
    section = api.post(f"/courses/{course['id']}/sections", pair, json={"title": "Tides"})
    block = {"title": "Why tides", "type": "lesson"}
    assert (
        api.post(f"/sections/{section.get_json()['id']}/blocks", pair, json=block).status_code
        == 201
    )
    changed = api.patch(f"/courses/{course['id']}", pair, json={"title": "Seas", "published": True})
    assert changed.get_json()["title"] == "Seas" and changed.get_json()["published"] is True
    assert [c["id"] for c in api.get("/teaching/courses", pair).get_json()] == [course["id"]]
    gone = api.delete(f"/courses/{course['id']}", pair)
    assert gone.status_code == 204 and gone.data == b""
    assert api.get(f"/courses/{course['id']}", pair).status_code == 404


def test_sections_blocks_and_order(client, api, teacher):
    pair = tokens_for(client, teacher)
    cid = api.post("/courses", pair, json={"title": "C"}).get_json()["id"]
    s1 = api.post(f"/courses/{cid}/sections", pair, json={"title": "One"})
    assert s1.status_code == 201 and s1.headers["Location"].endswith(
        f"/sections/{s1.get_json()['id']}"
    )
    s2 = api.post(f"/courses/{cid}/sections", pair, json={"title": "Two"}).get_json()
    s1 = s1.get_json()
    b1 = api.post(f"/sections/{s1['id']}/blocks", pair, json={"title": "L", "content": "*x*"})
    assert b1.status_code == 201 and b1.get_json()["content"] == "*x*"
    b1 = b1.get_json()
    no_url = api.post(f"/sections/{s1['id']}/blocks", pair, json={"title": "V", "type": "video"})
    assert no_url.status_code == 422 and list(no_url.get_json()["errors"]) == ["url"]
    b2 = api.post(
        f"/sections/{s1['id']}/blocks", pair,
        json={"title": "V", "type": "video", "url": "https://example.com/v"},
    ).get_json()  # fmt: skip
    assert (
        api.patch(f"/blocks/{b1['id']}", pair, json={"title": "L2"}).get_json()["content"] == "*x*"
    )
    moved = api.post(f"/blocks/{b2['id']}/move", pair, json={"section_id": s2["id"]})
    assert moved.get_json()["section_id"] == s2["id"]
    assert api.post(f"/sections/{s2['id']}/move", pair, json={"direction": "up"}).status_code == 200
    stale = {"sections": [{"id": s1["id"], "blocks": [b1["id"]]}]}  # misses a section
    assert api.put(f"/courses/{cid}/order", pair, json=stale).status_code == 409
    order = {
        "sections": [
            {"id": s1["id"], "blocks": [b2["id"], b1["id"]]},
            {"id": s2["id"], "blocks": []},
        ]
    }
    assert api.put(f"/courses/{cid}/order", pair, json=order).status_code == 204
    section = api.get(f"/sections/{s1['id']}", pair).get_json()
    assert [b["id"] for b in section["blocks"]] == [b2["id"], b1["id"]] and section["position"] == 0
    assert api.delete(f"/blocks/{b1['id']}", pair).status_code == 204
    assert api.delete(f"/sections/{s2['id']}", pair).status_code == 204
    assert [s["id"] for s in api.get(f"/courses/{cid}", pair).get_json()["sections"]] == [s1["id"]]


def test_cursor_pages(client, api, teacher, student):
    for n in range(5):
        make_course(teacher, title=f"Course {n}", sections=0)
    pair = tokens_for(client, student)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/courses", pair, query_string=query).get_json()
        seen += [c["title"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Course {n}" for n in range(5)] and pages == 3
    too_many = api.get("/courses", pair, query_string={"limit": 101})
    assert too_many.status_code == 422 and list(too_many.get_json()["errors"]) == ["limit"]
    bad = api.get("/courses", pair, query_string={"cursor": "nonsense"})
    assert bad.status_code == 422 and list(bad.get_json()["errors"]) == ["cursor"]
    first = api.get("/courses", pair, query_string={"limit": 2}).get_json()["next_cursor"]
    other_limit = api.get("/courses", pair, query_string={"limit": 3, "cursor": first})
    assert other_limit.status_code == 422


@pytest.fixture
def submitted(app, teacher, student):
    course = make_course(teacher, sections=1, blocks=1, types=(BlockType.ASSIGNMENT,))
    learning.enrol(course.id, student)
    block = course.sections[0].blocks[0]
    change = learning.complete_block(course.id, block.id, student, url="https://example.com/a")
    return course.id, block.id, change.completion.id


def test_completions_mark_edit_undo(client, api, student, teacher):
    course = make_course(teacher, sections=1, blocks=2, types=(BlockType.LESSON,))
    pair = tokens_for(client, student)
    assert api.post("/enrolments", pair, json={"course_id": course.id}).status_code == 201
    block = course.sections[0].blocks[0].id
    url = f"/courses/{course.id}/blocks/{block}/completion"
    first = api.put(url, pair, json={})
    assert first.status_code == 201 and first.headers["Location"] == "/api/v1" + url
    assert first.get_json()["progress"] == {"done": 1, "total": 2, "percent": 50}
    assert api.put(url, pair, json={}).status_code == 200
    assert api.patch(url, pair, json={"url": "https://x.example"}).status_code == 409
    assert api.delete(url, pair).status_code == 204
    assert api.get(url, pair).status_code == 404
    assert api.patch(url, pair, json={}).status_code == 409
    assert api.get("/completions", pair).get_json() == {"items": [], "next_cursor": None}
    assert api.delete(f"/enrolments/{course.id}", pair).status_code == 204
    assert api.get(f"/enrolments/{course.id}", pair).status_code == 404


def test_grading_with_if_match_and_version(client, api, teacher, student, submitted):
    cid, bid, sid = submitted
    tpair = tokens_for(client, teacher)
    spair = tokens_for(client, student)
    queue = api.get(f"/courses/{cid}/grading", tpair).get_json()
    assert [i["id"] for i in queue["items"]] == [sid] and queue["waiting"] == 1
    got = api.get(f"/courses/{cid}/submissions/{sid}", tpair)
    etag = got.headers["ETag"]
    assert etag == f'"{got.get_json()["version"]}"'
    grade_url = f"/courses/{cid}/submissions/{sid}/grade"
    assert api.put(grade_url, tpair, json={"grade": 50}).status_code == 428
    # the student edits the work meanwhile: the grader's version is stale
    api.patch(
        f"/courses/{cid}/blocks/{bid}/completion", spair, json={"url": "https://example.com/b"}
    )
    stale = api.put(grade_url, tpair, json={"grade": 50}, headers={"If-Match": etag})
    assert stale.status_code == 409
    assert db.session.get(CompletedContentBlock, sid).grade is None
    fresh = api.get(f"/courses/{cid}/submissions/{sid}", tpair).get_json()["version"]
    done = api.put(grade_url, tpair, json={"grade": 70, "comment": "Good", "version": fresh})
    assert done.status_code == 200 and done.get_json()["grade"] == 70
    assert done.headers["ETag"] == f'"{fresh + 1}"'
    assert api.delete(f"/courses/{cid}/blocks/{bid}/completion", spair).status_code == 409
    mine = api.get("/completions", spair).get_json()["items"]
    assert mine[0]["grade"] == 70 and mine[0]["grader_comment"] == "Good"
    csv = api.get(f"/courses/{cid}/gradebook.csv", tpair)
    assert csv.status_code == 200 and csv.mimetype == "text/csv" and "70" in csv.get_data(True)


def test_admin_manages_users(client, api, admin, student):
    pending = make_user(Role.STUDENT, active=False, name="Pending Pat")
    pair = tokens_for(client, admin)
    victim = tokens_for(client, student)
    found = api.get("/users", pair, query_string={"q": "pending pat"}).get_json()
    assert [u["id"] for u in found["items"]] == [pending.id]
    assert api.get("/users", pair, query_string={"status": "bogus"}).status_code == 422
    role = api.patch(f"/users/{student.id}", pair, json={"role": "teacher"})
    assert role.status_code == 200 and role.get_json()["role"] == "teacher"
    assert api.get("/me", victim).status_code == 401  # a role change ends every token
    off = api.patch(f"/users/{student.id}", pair, json={"status": "deactivated"})
    assert off.get_json()["status"] == "deactivated"
    assert grant(client, student).status_code == 400
    assert (
        api.patch(f"/users/{pending.id}", pair, json={"status": "active"}).get_json()["status"]
        == "active"
    )
    assert api.patch(f"/users/{pending.id}", pair, json={}).status_code == 422


def test_errors_are_never_html(client, api, student):
    pair = tokens_for(client, student)
    resp = api.call("PUT", "/me", pair)
    assert resp.status_code == 405 and "GET" in resp.headers["Allow"]
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert api.get("/no/such/thing", pair).headers["Content-Type"] == "application/problem+json"
    assert client.get("/no/such/page").mimetype == "text/html"


def test_cors_is_off_by_default(client, student):
    resp = client.get("/api/v1/me", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


@pytest.mark.parametrize("config_overrides", [{"API_CORS_ORIGINS": ["https://app.example.org"]}])
def test_cors_for_the_listed_origins_only(client, student):
    pair = tokens_for(client, student)
    allowed = client.get(
        "/api/v1/me",
        headers={
            "Origin": "https://app.example.org",
            "Authorization": f"Bearer {pair['access_token']}",
        },
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.org"
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    other = client.get("/api/v1/me", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    page = client.get("/", headers={"Origin": "https://app.example.org"})
    assert "Access-Control-Allow-Origin" not in page.headers


@pytest.mark.parametrize("config_overrides", [{"API_CORS_ORIGINS": ["https://app.example.org"]}])
def test_cors_preflight(client):
    resp = client.options(
        "/api/v1/courses",
        headers={
            "Origin": "https://app.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.org"
    allowed = resp.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
