"""Course authoring through HTTP: each route as page and fragment, for each role."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from sqlalchemy import insert, select

from tests.conftest import login_as, make_course
from webapp.extensions import db
from webapp.models import (
    CollapsedSection,
    CompletedContentBlock,
    ContentBlock,
    Course,
    Section,
    StudentCourse,
)


def dangerous(html: str) -> list:
    """Elements a browser would run: scripts, on* handlers, htmx on load, javascript: links."""
    found = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "script" and "src" not in a:
                found.append((tag, a))
            if tag == "img" or any(k.startswith("on") for k in a):
                found.append((tag, a))
            if a.get("hx-trigger") == "load" or a.get("hx-get") == "/teach":
                found.append((tag, a))
            if (a.get("href") or "").strip().lower().startswith("javascript:"):
                found.append((tag, a))

    Finder().feed(html)
    return found


def hx(target: str) -> dict:
    return {"HX-Request": "true", "HX-Target": target}


def layout(course_id: int) -> list[tuple[int, list[int]]]:
    db.session.expire_all()
    sections = db.session.scalars(
        select(Section).where(Section.course_id == course_id).order_by(Section.position)
    ).all()
    assert [s.position for s in sections] == list(range(len(sections)))
    out = []
    for s in sections:
        blocks = sorted(s.blocks, key=lambda b: b.position)
        assert [b.position for b in blocks] == list(range(len(blocks)))
        out.append((s.id, [b.id for b in blocks]))
    return out


def snapshot(course_id: int):
    """Everything about a course that a refused request must leave as it was."""
    db.session.expire_all()
    course = db.session.get(Course, course_id)
    if course is None:
        return None
    rows = db.session.execute(
        select(Section.title, Section.description, ContentBlock.title, ContentBlock.content)
        .outerjoin(ContentBlock)
        .where(Section.course_id == course_id)
        .order_by(Section.id, ContentBlock.id)
    ).all()
    return (course.title, course.description, course.is_published, layout(course_id), rows)


@pytest.fixture
def course(teacher):
    return make_course(teacher, title="Draft course", sections=2, blocks=2, published=False)


def actor(who, teacher, other_teacher, student, admin):
    return {
        "anonymous": None,
        "student": student,
        "other_teacher": other_teacher,
        "owner": teacher,
        "admin": admin,
    }[who]


ROLES = ["anonymous", "student", "other_teacher", "admin", "owner"]


# --- dashboard and new course ----------------------------------------------------------------


@pytest.mark.parametrize("who", ROLES)
def test_dashboard_is_for_teachers(client, teacher, other_teacher, student, admin, course, who):
    user = actor(who, teacher, other_teacher, student, admin)
    if user:
        login_as(client, user)
    resp = client.get("/teach")
    if who == "anonymous":
        assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"]
    elif who in ("student", "admin"):
        assert resp.status_code == 404
    else:
        assert resp.status_code == 200
        assert ("Draft course" in resp.text) == (who == "owner")


def test_dashboard_empty_state_says_what_to_do(client, teacher):
    login_as(client, teacher)
    resp = client.get("/teach")
    assert "You have no courses yet" in resp.text
    assert 'href="/teach/courses/new"' in resp.text


def test_dashboard_counts_in_a_fixed_number_of_queries(client, teacher, student, count_queries):
    login_as(client, teacher)
    make_course(teacher, sections=1, blocks=5)
    with count_queries() as few:
        client.get("/teach")
    for i in range(8):
        c = make_course(teacher, title=f"Course {i}", sections=3, blocks=5)
        db.session.add(StudentCourse(student_id=student.id, course_id=c.id))
        quiz = next(b for s in c.sections for b in s.blocks if b.type == "quiz")
        db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=quiz.id))
    db.session.commit()
    with count_queries() as many:
        resp = client.get("/teach")
    assert resp.status_code == 200
    assert many.count == few.count <= 9
    row = resp.text.split(f'id="course-row-{c.id}"')[1].split("</tr>")[0]
    assert '<td class="num" data-count="sections">3</td>' in row
    assert '<td class="num" data-count="blocks">15</td>' in row
    assert '<td class="num" data-count="students">1</td>' in row
    assert "<strong>1</strong>" in row
    if "teaching.grading_page" in client.application.view_functions:
        with client.application.test_request_context():
            from flask import url_for

            assert url_for("teaching.grading_page", course_id=c.id) in row


def test_dashboard_to_grade_matches_the_grading_queue(client, teacher, student):
    """Only enrolled students' work waits: a removed student's completion counts nowhere."""
    from tests.conftest import make_user

    c = make_course(teacher, title="Counted", sections=1, blocks=5)
    quiz = next(b for b in c.sections[0].blocks if b.type == "quiz")
    gone = make_user("student")
    for who in (student, gone):
        db.session.add(StudentCourse(student_id=who.id, course_id=c.id))
        db.session.add(CompletedContentBlock(student_id=who.id, content_block_id=quiz.id))
    db.session.commit()
    login_as(client, teacher)

    def counts():
        row = client.get("/teach").text.split(f'id="course-row-{c.id}"')[1].split("</tr>")[0]
        dashboard = row.split('data-count="to_grade">')[1].split("</td>")[0]
        queue = client.get(f"/teach/courses/{c.id}/grading").text
        queue = queue.split('id="grading-count"')[1].split('<span class="visually-hidden"> w')[0]
        return dashboard, queue

    dashboard, queue = counts()
    assert "<strong>2</strong>" in dashboard and "(</span>2" in queue
    resp = client.post(f"/teach/courses/{c.id}/students/{gone.id}/remove", data={"confirm": "yes"})
    assert resp.status_code == 303
    dashboard, queue = counts()
    assert "<strong>1</strong>" in dashboard and "(</span>1" in queue


@pytest.mark.parametrize("who", ROLES)
def test_new_course_access(client, teacher, other_teacher, student, admin, who):
    user = actor(who, teacher, other_teacher, student, admin)
    if user:
        login_as(client, user)
    resp = client.post("/teach/courses/new", data={"course-title": "Fresh"})
    if who in ("owner", "other_teacher"):
        assert resp.status_code == 303
        course = db.session.scalar(select(Course))
        assert resp.headers["Location"] == f"/teach/courses/{course.id}"
        assert (course.title, course.is_published, course.user_id) == ("Fresh", False, user.id)
    else:
        assert resp.status_code in (302, 303, 404)
        assert db.session.scalar(select(Course)) is None


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
def test_new_course_refuses_bad_titles_next_to_the_field(client, teacher, title):
    login_as(client, teacher)
    resp = client.post("/teach/courses/new", data={"course-title": title})
    assert resp.status_code == 422
    assert 'id="course-title-error"' in resp.text and 'aria-invalid="true"' in resp.text
    assert db.session.scalar(select(Course)) is None


# --- editor access -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ROLES)
def test_editor_access(client, teacher, other_teacher, student, admin, course, who):
    user = actor(who, teacher, other_teacher, student, admin)
    if user:
        login_as(client, user)
    resp = client.get(f"/teach/courses/{course.id}")
    if who == "anonymous":
        assert resp.status_code in (302, 303)
    elif who in ("student", "other_teacher"):
        assert resp.status_code == 404 and "Draft course" not in resp.text
    else:
        assert resp.status_code == 200
        assert "Block 1.1" in resp.text and "Delete course" in resp.text
        # Admins see the course but get no editing controls.
        assert ('id="add-section"' in resp.text) == (who == "owner")
        assert ("data-inplace-edit" in resp.text) == (who == "owner")


def test_editor_has_the_course_tabs_for_its_owner(client, teacher, admin, student, course):
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    quiz = next(b for s in course.sections for b in s.blocks if b.type == "quiz")
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=quiz.id))
    db.session.commit()
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}").text
    tabs = html.split('<nav class="course-tabs"')[1].split("</nav>")[0]
    base = f"/teach/courses/{course.id}"
    assert f'<a href="{base}" aria-current="page">Editor</a>' in tabs
    for url in (f"{base}/students", f"{base}/grading", f"{base}/gradebook"):
        assert f'href="{url}"' in tabs
    assert '<span id="grading-count" class="count">' in tabs and "1<span" in tabs
    # The tabs lead to teaching pages only the owner may open: an admin sees none.
    login_as(client, admin)
    html = client.get(f"/teach/courses/{course.id}").text
    assert "course-tabs" not in html


def test_editor_of_a_published_course_is_still_private(client, other_teacher, teacher):
    course = make_course(teacher, published=True)
    login_as(client, other_teacher)
    assert client.get(f"/teach/courses/{course.id}").status_code == 404


def mutations(course_id, section_id, block_id, other_section_id):
    """(method, url, data, htmx target) for every mutating URL of the editor."""
    return [
        (
            "post",
            f"/teach/courses/{course_id}/title",
            {"course-edit-title": "Hacked"},
            "course-title",
        ),
        ("post", f"/teach/courses/{course_id}/description", {"course-edit-description": "x"}, None),
        ("post", f"/teach/courses/{course_id}/publish", {"published": "1"}, "publish"),
        ("post", f"/teach/courses/{course_id}/duplicate", {}, None),
        ("post", f"/teach/courses/{course_id}/sections", {"new-section-title": "S"}, "outline"),
        ("post", f"/teach/courses/{course_id}/order", {"order": "[]"}, "outline"),
        (
            "post",
            f"/teach/sections/{section_id}/title",
            {f"section-{section_id}-edit-title": "x"},
            None,
        ),
        ("post", f"/teach/sections/{section_id}/description", {}, None),
        ("post", f"/teach/sections/{section_id}/collapse", {"collapsed": "1"}, None),
        ("post", f"/teach/sections/{section_id}/move", {"direction": "down"}, "outline"),
        (
            "post",
            f"/teach/sections/{section_id}/blocks",
            {f"new-block-{section_id}-title": "B"},
            None,
        ),
        ("post", f"/teach/sections/{section_id}/delete", {}, "outline"),
        (
            "post",
            f"/teach/blocks/{block_id}",
            {f"block-{block_id}-title": "x"},
            f"block-{block_id}",
        ),
        ("post", f"/teach/blocks/{block_id}/move", {"direction": "down"}, "outline"),
        ("post", f"/teach/blocks/{block_id}/move", {"section_id": str(other_section_id)}, None),
        ("post", f"/teach/blocks/{block_id}/delete", {}, "outline"),
        ("get", f"/teach/blocks/{block_id}?edit=1", None, f"block-{block_id}"),
        ("get", f"/teach/blocks/{block_id}/move", None, None),
        ("get", f"/teach/courses/{course_id}/title?edit=1", None, "course-title"),
        ("get", f"/teach/sections/{section_id}/title?edit=1", None, None),
    ]


@pytest.mark.parametrize("who", ["student", "other_teacher", "admin"])
@pytest.mark.parametrize("as_htmx", [False, True])
def test_mutating_urls_are_not_found_for_others(
    client, teacher, other_teacher, student, admin, course, who, as_htmx
):
    login_as(client, actor(who, teacher, other_teacher, student, admin))
    (sid, (bid, _)), (sid2, _) = layout(course.id)
    before = snapshot(course.id)
    for method, url, data, target in mutations(course.id, sid, bid, sid2):
        headers = hx(target or "outline") if as_htmx else {}
        resp = getattr(client, method)(url, data=data, headers=headers)
        assert resp.status_code == 404, (url, resp.status_code)
    assert snapshot(course.id) == before
    assert db.session.query(Course).count() == 1
    assert db.session.query(CollapsedSection).count() == 0


@pytest.mark.parametrize("as_htmx", [False, True])
def test_a_teacher_demoted_to_student_loses_their_courses(client, teacher, course, as_htmx):
    (sid, (bid, _)), (sid2, _) = layout(course.id)
    teacher.role = "student"
    db.session.commit()
    login_as(client, teacher)
    before = snapshot(course.id)
    assert client.get(f"/teach/courses/{course.id}").status_code == 404
    assert client.get("/teach").status_code == 404
    for method, url, data, target in mutations(course.id, sid, bid, sid2):
        headers = hx(target or "outline") if as_htmx else {}
        resp = getattr(client, method)(url, data=data, headers=headers)
        assert resp.status_code == 404, (url, resp.status_code)
    assert client.post(f"/teach/courses/{course.id}/delete").status_code == 404
    assert snapshot(course.id) == before
    assert db.session.query(Course).count() == 1
    assert db.session.query(CollapsedSection).count() == 0


def test_mutating_urls_send_anonymous_to_login(client, course):
    (sid, (bid, _)), (sid2, _) = layout(course.id)
    before = snapshot(course.id)
    for method, url, data, _target in mutations(course.id, sid, bid, sid2):
        resp = getattr(client, method)(url, data=data)
        assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"], url
        resp = getattr(client, method)(url, data=data, headers=hx("outline"))
        assert resp.status_code == 204 and "/login" in resp.headers["HX-Redirect"], url
    assert snapshot(course.id) == before


def test_moving_a_block_into_someone_elses_section_changes_nothing(
    client, teacher, other_teacher, course
):
    theirs = make_course(other_teacher)
    login_as(client, teacher)
    (_, (bid, _)), _ = layout(course.id)
    their_section = layout(theirs.id)[0][0]
    before, before_theirs = snapshot(course.id), snapshot(theirs.id)
    resp = client.post(
        f"/teach/blocks/{bid}/move", data={"section_id": their_section}, headers=hx("outline")
    )
    assert resp.status_code == 404
    assert snapshot(course.id) == before and snapshot(theirs.id) == before_theirs


# --- in-place fields ---------------------------------------------------------------------------


def test_course_title_in_place(client, teacher, course):
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/title"
    form = client.get(url + "?edit=1", headers=hx("course-title"))
    assert form.status_code == 200 and "Vary" in form.headers
    assert form.text.lstrip().startswith('<div id="course-title"')
    assert 'value="Draft course"' in form.text and "data-autofocus" in form.text
    assert "<html" not in form.text
    shown = client.get(url, headers=hx("course-title"))
    assert '<h1 class="inplace-text">Draft course</h1>' in shown.text
    saved = client.post(url, data={"course-edit-title": "  Renamed  "}, headers=hx("course-title"))
    assert saved.status_code == 200 and ">Renamed</h1>" in saved.text
    assert json.loads(saved.headers["HX-Trigger"]) == {"announce": "Course title saved: Renamed"}
    assert db.session.get(Course, course.id).title == "Renamed"


def test_course_title_errors_appear_next_to_the_field(client, teacher, course):
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/title"
    for bad in ("   ", "x" * 201):
        resp = client.post(url, data={"course-edit-title": bad}, headers=hx("course-title"))
        assert resp.status_code == 422
        assert 'id="course-edit-title-error"' in resp.text and "<form" in resp.text
        announced = json.loads(resp.headers["HX-Trigger"])["announce"]
        assert announced.startswith("Course title not saved: ")
    page = client.post(url, data={"course-edit-title": " "})
    assert (
        page.status_code == 422
        and "<html" in page.text
        and 'id="course-edit-title-error"' in page.text
    )
    assert db.session.get(Course, course.id).title == "Draft course"


def test_in_place_fields_work_without_javascript(client, teacher, course):
    login_as(client, teacher)
    sid = layout(course.id)[0][0]
    resp = client.get(f"/teach/courses/{course.id}/description?edit=1")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("?edit=course-description#course-description")
    page = client.get(resp.headers["Location"])
    assert 'name="course-edit-description"' in page.text
    resp = client.post(
        f"/teach/courses/{course.id}/description", data={"course-edit-description": "New words"}
    )
    assert resp.status_code == 303 and resp.headers["Location"].endswith("#course-description")
    assert db.session.get(Course, course.id).description == "New words"
    page = client.get(f"/teach/courses/{course.id}?edit=section-{sid}-title")
    assert f'name="section-{sid}-edit-title"' in page.text
    resp = client.post(f"/teach/sections/{sid}/title", data={f"section-{sid}-edit-title": "Intro"})
    assert resp.status_code == 303
    assert db.session.get(Section, sid).title == "Intro"


def test_section_fields_in_place(client, teacher, course):
    login_as(client, teacher)
    sid = layout(course.id)[0][0]
    key = f"section-{sid}-description"
    form = client.get(f"/teach/sections/{sid}/description?edit=1", headers=hx(key))
    assert form.text.lstrip().startswith(f'<div id="{key}"') and "<textarea" in form.text
    resp = client.post(
        f"/teach/sections/{sid}/description", data={f"section-{sid}-edit-description": "Hi"},
        headers=hx(key),
    )  # fmt: skip
    assert resp.status_code == 200 and ">Hi</p>" in resp.text
    resp = client.post(
        f"/teach/sections/{sid}/title", data={f"section-{sid}-edit-title": " "},
        headers=hx(f"section-{sid}-title"),
    )  # fmt: skip
    assert resp.status_code == 422 and f'id="section-{sid}-edit-title-error"' in resp.text
    assert db.session.get(Section, sid).title == "Section 1"


def test_publish_toggle(client, teacher, course):
    login_as(client, teacher)
    resp = client.post(f"/teach/courses/{course.id}/publish", data={"published": "1"},
                       headers=hx("publish"))  # fmt: skip
    assert resp.status_code == 200 and "Unpublish" in resp.text and 'id="publish"' in resp.text
    assert db.session.get(Course, course.id).is_published is True
    resp = client.post(f"/teach/courses/{course.id}/publish", data={"published": "0"})
    assert resp.status_code == 303
    assert db.session.get(Course, course.id).is_published is False


# --- sections and blocks -----------------------------------------------------------------------


def test_add_section_page_and_fragment(client, teacher, course):
    login_as(client, teacher)
    url = f"/teach/courses/{course.id}/sections"
    resp = client.post(url, data={"new-section-title": "Third"}, headers=hx("outline"))
    assert resp.status_code == 200 and resp.text.lstrip().startswith('<div id="outline"')
    assert "Third" in resp.text and "3 sections" in resp.text
    resp = client.post(url, data={"new-section-title": "Fourth"})
    assert resp.status_code == 303 and "/teach/courses/" in resp.headers["Location"]
    titles = [db.session.get(Section, s).title for s, _ in layout(course.id)]
    assert titles == ["Section 1", "Section 2", "Third", "Fourth"]
    bad = client.post(url, data={"new-section-title": "  "}, headers=hx("outline"))
    assert bad.status_code == 422 and bad.headers["HX-Retarget"] == "#add-section"
    assert 'id="new-section-title-error"' in bad.text
    assert client.post(url, data={"new-section-title": ""}).status_code == 422
    assert len(layout(course.id)) == 4


def test_collapse_state_is_kept_per_user_on_the_server(client, teacher, course):
    login_as(client, teacher)
    sid = layout(course.id)[0][0]
    resp = client.post(f"/teach/sections/{sid}/collapse", data={"collapsed": "1"},
                       headers=hx(f"section-{sid}"))  # fmt: skip
    assert resp.status_code == 200 and 'aria-expanded="false"' in resp.text
    assert f'id="section-{sid}-body" class="section-body" hidden' in resp.text
    assert db.session.query(CollapsedSection).count() == 1
    page = client.get(f"/teach/courses/{course.id}")
    assert f'id="section-{sid}-body" class="section-body" hidden' in page.text
    resp = client.post(f"/teach/sections/{sid}/collapse", data={"collapsed": "0"})
    assert resp.status_code == 303
    assert db.session.query(CollapsedSection).count() == 0


def test_move_section_by_keyboard_buttons(client, teacher, course):
    login_as(client, teacher)
    (s1, _), (s2, _) = layout(course.id)
    resp = client.post(
        f"/teach/sections/{s2}/move", data={"direction": "up"}, headers=hx("outline")
    )
    assert resp.status_code == 200
    # Focus stays on the button that was pressed, so it can be pressed again.
    assert resp.text.index("data-autofocus") > resp.text.index(f'id="section-{s2}"')
    assert [s for s, _ in layout(course.id)] == [s2, s1]
    assert client.post(f"/teach/sections/{s2}/move", data={"direction": "x"}).status_code == 400


def test_delete_section_says_what_is_lost(client, teacher, student, course):
    login_as(client, teacher)
    (s1, (b1, b2)), (s2, _) = layout(course.id)
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=b1))
    db.session.commit()
    text = " ".join(client.get(f"/teach/courses/{course.id}").text.split())
    assert "Deletes the section with its 2 blocks and 1 student completion." in text
    assert "with its 2 sections, 4 blocks, 1 enrolment and 1 student completion" in text
    resp = client.post(f"/teach/sections/{s1}/delete", headers=hx("outline"))
    assert resp.status_code == 200 and "1 section" in resp.text
    assert layout(course.id) == [(s2, layout(course.id)[0][1])]
    assert db.session.query(CompletedContentBlock).count() == 0


def test_add_block_then_edit_it_by_type(client, teacher, course):
    login_as(client, teacher)
    sid = layout(course.id)[0][0]
    resp = client.post(
        f"/teach/sections/{sid}/blocks",
        data={f"new-block-{sid}-title": "Watch this", f"new-block-{sid}-type": "lesson"},
        headers=hx("outline"),
    )
    assert resp.status_code == 200 and "Watch this" in resp.text
    bid = layout(course.id)[0][1][-1]
    key = f"block-{bid}"
    form = client.get(f"/teach/blocks/{bid}?edit=1", headers=hx(key))
    assert form.text.lstrip().startswith(f'<li id="{key}"') and f'name="{key}-url"' in form.text
    data = {f"{key}-title": "Watch this", f"{key}-type": "video", f"{key}-url": ""}
    resp = client.post(f"/teach/blocks/{bid}", data=data, headers=hx(key))
    assert resp.status_code == 422 and "A URL is required" in resp.text
    data[f"{key}-url"] = "javascript:alert(1)"
    resp = client.post(f"/teach/blocks/{bid}", data=data, headers=hx(key))
    assert resp.status_code == 422 and "http:// or https://" in resp.text
    data[f"{key}-url"] = "https://example.com/" + "x" * 2000
    assert client.post(f"/teach/blocks/{bid}", data=data, headers=hx(key)).status_code == 422
    data[f"{key}-url"] = "https://video.example/1"
    resp = client.post(f"/teach/blocks/{bid}", data=data, headers=hx(key))
    assert resp.status_code == 200 and "Video" in resp.text and "block-form" not in resp.text
    block = db.session.get(ContentBlock, bid)
    assert (block.type, block.url) == ("video", "https://video.example/1")
    resp = client.post(f"/teach/blocks/{bid}", data={**data, f"{key}-title": "Plain"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"#{key}")
    assert db.session.get(ContentBlock, bid).title == "Plain"
    resp = client.post(f"/teach/blocks/{bid}", data={**data, f"{key}-title": ""})
    assert resp.status_code == 422 and "<html" in resp.text


def test_add_block_error_swaps_only_its_form(client, teacher, course):
    login_as(client, teacher)
    sid = layout(course.id)[0][0]
    resp = client.post(f"/teach/sections/{sid}/blocks", data={f"new-block-{sid}-title": " "},
                       headers=hx("outline"))  # fmt: skip
    assert resp.status_code == 422 and resp.headers["HX-Retarget"] == f"#add-block-{sid}"
    assert f'id="new-block-{sid}-title-error"' in resp.text
    resp = client.post(f"/teach/sections/{sid}/blocks", data={f"new-block-{sid}-title": " "})
    assert resp.status_code == 422 and f'id="new-block-{sid}-title-error"' in resp.text
    assert len(layout(course.id)[0][1]) == 2


def test_move_blocks_by_buttons_and_to_another_section(client, teacher, course):
    login_as(client, teacher)
    (s1, (a, b)), (s2, (c, d)) = layout(course.id)
    resp = client.post(f"/teach/blocks/{b}/move", data={"direction": "down"}, headers=hx("outline"))
    assert resp.status_code == 200
    assert layout(course.id) == [(s1, [a]), (s2, [b, c, d])]
    chooser = client.get(f"/teach/blocks/{a}/move", headers=hx(f"block-{a}"))
    assert '<select id="move-' in chooser.text and "<html" not in chooser.text
    assert "<html" in client.get(f"/teach/blocks/{a}/move").text
    resp = client.post(f"/teach/blocks/{a}/move", data={"section_id": s2})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"#block-{a}")
    assert layout(course.id) == [(s1, []), (s2, [b, c, d, a])]


def test_delete_block(client, teacher, course):
    login_as(client, teacher)
    (s1, (a, b)), _ = layout(course.id)
    resp = client.post(f"/teach/blocks/{a}/delete", headers=hx("outline"))
    assert resp.status_code == 200 and "Deleted the block" in resp.headers["HX-Trigger"]
    assert layout(course.id)[0] == (s1, [b])
    assert client.post(f"/teach/blocks/{b}/delete").status_code == 303
    assert layout(course.id)[0] == (s1, [])


# --- reorder -----------------------------------------------------------------------------------


def test_reorder_saves_the_whole_order(client, teacher, course):
    login_as(client, teacher)
    (s1, (a, b)), (s2, (c, d)) = layout(course.id)
    order = json.dumps([[s2, [d, a]], [s1, [c, b]]])
    resp = client.post(
        f"/teach/courses/{course.id}/order", data={"order": order}, headers=hx("outline")
    )
    assert resp.status_code == 200 and json.loads(resp.headers["HX-Trigger"]) == {
        "announce": "Section Section 1 moved to position 2 of 2"
    }
    assert layout(course.id) == [(s2, [d, a]), (s1, [c, b])]


@pytest.mark.parametrize(
    "make_order",
    [
        lambda s1, s2, a, b, c, d, f: [[s1, [a, a]], [s2, [b, c, d]]],  # duplicate
        lambda s1, s2, a, b, c, d, f: [[s1, [a]], [s2, [b, c]]],  # missing
        lambda s1, s2, a, b, c, d, f: [[s1, [a, b, f]], [s2, [c, d]]],  # another course's
        lambda s1, s2, a, b, c, d, f: [[s1, [a, b, 99999999999]], [s2, [c, d]]],
    ],
)
def test_reorder_refuses_stale_or_tampered_orders(
    client, teacher, other_teacher, course, make_order
):
    theirs = make_course(other_teacher, sections=1, blocks=1)
    f = layout(theirs.id)[0][1][0]
    login_as(client, teacher)
    (s1, (a, b)), (s2, (c, d)) = layout(course.id)
    order = make_order(s1, s2, a, b, c, d, f)
    data = {"order": order if isinstance(order, str) else json.dumps(order)}
    before, before_theirs = snapshot(course.id), snapshot(theirs.id)
    resp = client.post(f"/teach/courses/{course.id}/order", data=data, headers=hx("outline"))
    assert resp.status_code == 409 and 'id="outline"' in resp.text
    assert "Nothing was moved" in json.loads(resp.headers["HX-Trigger"])["announce"]
    resp = client.post(f"/teach/courses/{course.id}/order", data=data)
    assert resp.status_code == 303
    assert "Nothing was moved" in client.get(resp.headers["Location"]).text
    assert snapshot(course.id) == before and snapshot(theirs.id) == before_theirs


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "",
        "[]]",
        '[[1, "ab"]]',
        '{"x": 1}',
        "[[1, [2]], 3]",
        "[[1, [2], 3]]",
        "[[1, [[2]]]]",
        "[[1e400, [2]]]",
        "[[1.5, [2]]]",
        "[[true, [2]]]",
        "[[1, [null]]]",
        "[" + "9" * 5000 + "]",
        "[" * 10_000 + "]" * 10_000,  # deep nesting: refused before the parser recurses
        "[[" + ",".join(["1"] * 10_000) + "]]",  # not a [section, blocks] pair
    ],
)
def test_reorder_refuses_malformed_orders_with_422(client, teacher, course, payload):
    login_as(client, teacher)
    before = snapshot(course.id)
    url = f"/teach/courses/{course.id}/order"
    resp = client.post(url, data={"order": payload}, headers=hx("outline"))
    assert resp.status_code == 422 and 'id="outline"' in resp.text
    assert (
        "could not be read. Nothing was moved" in json.loads(resp.headers["HX-Trigger"])["announce"]
    )
    resp = client.post(url, data={"order": payload})
    assert resp.status_code == 303
    assert "Nothing was moved" in client.get(resp.headers["Location"]).text
    assert snapshot(course.id) == before


def test_reorder_caps_the_body_at_64_kib(client, teacher, course):
    login_as(client, teacher)
    (s1, (a, b)), (s2, (c, d)) = layout(course.id)
    before = snapshot(course.id)
    url = f"/teach/courses/{course.id}/order"
    order = json.dumps([[s2, [d, a]], [s1, [c, b]]])
    # Well under the app's 1 MiB, but the body is over the order's cap: refused unread.
    resp = client.post(url, data={"order": order + " " * (128 * 1024)}, headers=hx("outline"))
    assert resp.status_code == 413
    # The body just fits, the field does not: a 422 that says why.
    field = order + " " * (64 * 1024 - len(order) + 1)
    resp = client.post(url, data={"order": field}, headers=hx("outline"))
    assert resp.status_code == 422
    assert "too large" in json.loads(resp.headers["HX-Trigger"])["announce"]
    assert snapshot(course.id) == before
    # Whitespace is fine while the order stays small.
    small = json.dumps([[s2, [d, a]], [s1, [c, b]]], indent=2)
    resp = client.post(url, data={"order": small}, headers=hx("outline"))
    assert resp.status_code == 200 and layout(course.id) == [(s2, [d, a]), (s1, [c, b])]


def test_parse_order_field_cap_is_a_clear_message():
    from webapp.services import Invalid
    from webapp.services.blocks import ORDER_MAX_BYTES, parse_order

    with pytest.raises(Invalid, match="too large"):
        parse_order("[" + " " * ORDER_MAX_BYTES + "]")
    assert parse_order("[[1, [2, 3]], [4, []]]") == [(1, [2, 3]), (4, [])]


# --- course actions ----------------------------------------------------------------------------


def test_duplicate_course(client, teacher, student, course):
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.commit()
    login_as(client, teacher)
    resp = client.post(f"/teach/courses/{course.id}/duplicate")
    copy = db.session.scalars(select(Course).where(Course.id != course.id)).one()
    assert resp.status_code == 303 and resp.headers["Location"] == f"/teach/courses/{copy.id}"
    assert copy.title == "Copy of Draft course" and not copy.is_published
    assert [len(b) for _, b in layout(copy.id)] == [2, 2]
    assert db.session.query(StudentCourse).filter_by(course_id=copy.id).count() == 0


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_delete_course(client, teacher, admin, course, who):
    login_as(client, teacher if who == "owner" else admin)
    resp = client.post(f"/teach/courses/{course.id}/delete")
    assert resp.status_code == 303
    assert resp.headers["Location"] == ("/teach" if who == "owner" else "/courses")
    assert db.session.query(Course).count() == 0 and db.session.query(ContentBlock).count() == 0


def test_admin_deleting_a_course_leaves_an_audit_record(client, teacher, admin, course):
    from webapp.models import AuditEvent

    course_id = course.id
    login_as(client, admin)
    assert client.post(f"/teach/courses/{course_id}/delete").status_code == 303
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "admin.course_deleted")
    ).one()
    assert (event.actor_id, event.target_user_id) == (admin.id, teacher.id)
    assert event.details == {"course_id": course_id, "title": "Draft course"}
    assert event.ip == "127.0.0.1"


def test_owner_deleting_their_course_is_not_audited(client, teacher, course):
    from webapp.models import AuditEvent

    login_as(client, teacher)
    assert client.post(f"/teach/courses/{course.id}/delete").status_code == 303
    assert db.session.query(AuditEvent).filter_by(action="admin.course_deleted").count() == 0


def test_delete_course_from_htmx_redirects(client, teacher, course):
    login_as(client, teacher)
    resp = client.post(f"/teach/courses/{course.id}/delete", headers=hx("main"))
    assert resp.status_code == 204 and resp.headers["HX-Redirect"] == "/teach"


def post_forms(html: str) -> list[dict]:
    """The attributes of every POST form in a page."""
    forms = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "form" and (a.get("method") or "").lower() == "post":
                forms.append(a)

    Finder().feed(html)
    return forms


def test_every_editor_form_disables_its_button_in_flight(client, teacher, student, course):
    """No double submits: each POST form is sent by htmx with hx-disabled-elt (a second click
    on Duplicate, Delete or Collapse while the first is on its way does nothing)."""
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.commit()
    login_as(client, teacher)
    forms = post_forms(client.get(f"/teach/courses/{course.id}").text)
    assert len(forms) > 8
    for form in forms:
        if form.get("id") == "order-form" or not form["action"].startswith("/teach"):
            continue  # drag and drop's hidden form (no button); the layout's Log out
        assert form.get("hx-post") == form["action"], form
        if form.get("id") == "row-action":  # the rows' menus' shared form: buttons outside it
            assert form["hx-sync"] == "this:drop", form
            continue
        assert form.get("hx-disabled-elt", "").startswith("find button"), form
    [new] = [f for f in post_forms(client.get("/teach/courses/new").text) if f.get("id")]
    assert new["hx-post"] == new["action"] and new["hx-disabled-elt"] == "find button"
    assert new["hx-select"] == "#new-course" and new["id"] == "new-course"


def test_new_course_over_htmx_redirects_or_answers_the_form(client, teacher):
    login_as(client, teacher)
    bad = client.post("/teach/courses/new", data={"course-title": " "}, headers=hx("new-course"))
    assert bad.status_code == 422 and '<form id="new-course"' in bad.text
    assert 'id="course-title-error"' in bad.text and "data-autofocus" in bad.text
    ok = client.post("/teach/courses/new", data={"course-title": "Fresh"}, headers=hx("new-course"))
    course = db.session.scalar(select(Course))
    assert ok.status_code == 204 and ok.headers["HX-Redirect"] == f"/teach/courses/{course.id}"


def test_duplicate_course_from_htmx_redirects_to_the_copy(client, teacher, course):
    login_as(client, teacher)
    resp = client.post(f"/teach/courses/{course.id}/duplicate", headers=hx("main"))
    copy = db.session.scalars(select(Course).where(Course.id != course.id)).one()
    assert resp.status_code == 204 and resp.headers["HX-Redirect"] == f"/teach/courses/{copy.id}"


# --- Markdown preview and XSS ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "student", "admin"])
def test_preview_is_for_teachers(client, student, admin, who):
    if who != "anonymous":
        login_as(client, student if who == "student" else admin)
    resp = client.post("/teach/preview", data={"block-1-content": "*hi*"})
    assert resp.status_code in (302, 303, 404)


def test_preview_fragment_and_page(client, teacher):
    login_as(client, teacher)
    md = "**bold** [x](javascript:alert(1)) <script>alert(1)</script>"
    resp = client.post("/teach/preview", data={"block-1-content": md}, headers=hx("preview-1"))
    assert resp.status_code == 200 and "<strong>bold</strong>" in resp.text
    assert dangerous(resp.text) == [] and "<html" not in resp.text
    page = client.post("/teach/preview", data={"block-1-content": md})
    assert (
        "<html" in page.text and "hx-disable" in page.text and "<strong>bold</strong>" in page.text
    )


XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '<div hx-get="/teach" hx-trigger="load">boom</div>',
]


@pytest.mark.parametrize("payload", XSS)
def test_every_text_field_comes_out_inert(client, teacher, payload):
    login_as(client, teacher)
    resp = client.post(
        "/teach/courses/new", data={"course-title": payload, "course-description": payload}
    )
    course_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    client.post(f"/teach/courses/{course_id}/sections", data={"new-section-title": payload})
    sid = layout(course_id)[0][0]
    client.post(
        f"/teach/sections/{sid}/description", data={f"section-{sid}-edit-description": payload}
    )
    client.post(f"/teach/sections/{sid}/blocks", data={f"new-block-{sid}-title": payload})
    bid = layout(course_id)[0][1][0]
    key = f"block-{bid}"
    content = payload + "\n\n[click](javascript:alert(1))"
    resp = client.post(f"/teach/blocks/{bid}", data={
        f"{key}-title": payload, f"{key}-type": "lesson", f"{key}-description": payload,
        f"{key}-content": content,
    })  # fmt: skip
    assert resp.status_code == 303
    pages = [
        client.get("/teach").text,
        client.get(f"/teach/courses/{course_id}").text,
        client.get(f"/teach/courses/{course_id}?edit={key}").text,
        client.get(f"/teach/courses/{course_id}?edit=course-title").text,
        client.get(f"/teach/blocks/{bid}?edit=1", headers=hx(key)).text,
        client.get(f"/teach/blocks/{bid}/move").text,
    ]
    for html in pages:
        assert payload not in html
        assert dangerous(html) == []
    # The rendered Markdown sits in an hx-disable container.
    edit = pages[4]
    assert f'<div class="preview" hx-disable>\n          <div id="preview-{bid}"' in edit


# --- query budget ------------------------------------------------------------------------------


def test_editor_query_budget_does_not_grow_with_the_course(client, teacher, count_queries):
    small = make_course(teacher, sections=1, blocks=1)
    big = Course(title="Big", description="", user_id=teacher.id)
    db.session.add(big)
    db.session.commit()
    db.session.execute(
        insert(Section),
        [
            {"course_id": big.id, "title": f"S{i}", "description": "", "position": i}
            for i in range(40)
        ],
    )
    section_ids = db.session.scalars(select(Section.id).where(Section.course_id == big.id)).all()
    db.session.execute(
        insert(ContentBlock),
        [
            {"section_id": sid, "title": f"B{j}", "description": "", "type": "lesson",
             "url": None, "content": "", "position": j}
            for sid in section_ids for j in range(25)
        ],
    )  # fmt: skip
    db.session.commit()
    login_as(client, teacher)
    with count_queries() as q_small:
        client.get(f"/teach/courses/{small.id}")
    with count_queries() as q_big:
        resp = client.get(f"/teach/courses/{big.id}")
    assert resp.status_code == 200 and resp.text.count('class="block"') == 1000
    assert q_big.count == q_small.count <= 10, q_big.statements
    # The page's size: each row holds its title, type, Edit and a menu whose buttons share
    # one form (one CSRF token for the page): 1.8 MB for these 1,000 blocks. With three forms
    # and their tokens in every row it was 2.98 MB.
    assert len(resp.data) < 2_000_000, len(resp.data)


def test_ids_beyond_the_database_range_are_not_found(client, teacher, course):
    login_as(client, teacher)
    huge = 10**20
    (_, (bid, _)), _ = layout(course.id)
    assert client.get(f"/teach/courses/{huge}").status_code == 404
    assert client.post(f"/teach/sections/{huge}/collapse", data={}).status_code == 404
    assert client.get(f"/teach/blocks/{huge}?edit=1").status_code == 404
    resp = client.post(f"/teach/blocks/{bid}/move", data={"section_id": str(huge)})
    assert resp.status_code == 404
    for bad in ("x", "abc", "-1", "0", "99999999999", "", "1.5"):
        resp = client.post(f"/teach/blocks/{bid}/move", data={"section_id": bad})
        assert resp.status_code == 404, bad
        resp = client.post(
            f"/teach/blocks/{bid}/move", data={"section_id": bad}, headers=hx("outline")
        )
        assert resp.status_code == 404, bad
    for url in (
        "/teach/courses/99999999999",
        "/teach/courses/99999999999/students",
        "/teach/sections/99999999999/title?edit=1",
        "/teach/blocks/99999999999/move",
    ):
        assert client.get(url).status_code == 404, url
