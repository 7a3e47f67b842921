"""Teachers see what students see; unpublishing keeps a course for its students; an empty
course cannot be published (issue 16, items 5, 6 and 7)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from tests.conftest import login_as, make_course
from tests.test_teaching_progress import texts
from webapp.extensions import db
from webapp.models import CompletedContentBlock, Course, Section, StudentCourse
from webapp.services import Invalid
from webapp.services import courses as course_svc


def blocks(course):
    return [b for s in course.sections for b in s.blocks]


def enrol(student, course):
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.commit()


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags(html: str, tag: str) -> list[dict]:
    parser = _Tags()
    parser.feed(html)
    return [a for t, a in parser.tags if t == tag]


def hrefs(html: str) -> set[str]:
    return {a.get("href", "") for a in tags(html, "a")}


def actions(html: str) -> set[str]:
    return {a.get("action", "") for a in tags(html, "form")}


# --- 5. the student view for owners and admins ----------------------------------------------------


@pytest.mark.parametrize("who", ["teacher", "admin"])
@pytest.mark.parametrize("published", [True, False])
def test_owner_and_admin_preview_every_block_read_only(client, request, teacher, who, published):
    course = make_course(teacher, sections=2, blocks=2, published=published)
    login_as(client, request.getfixturevalue(who))
    page = client.get(f"/courses/{course.id}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    first, *rest = blocks(course)
    assert f"/courses/{course.id}/blocks/{first.id}" in hrefs(body)  # the outline is linked
    assert texts(body, "a", href=f"/courses/{course.id}/blocks/{first.id}", class_="button")
    for block in blocks(course):
        resp = client.get(f"/courses/{course.id}/blocks/{block.id}")
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert texts(html, "h1") == [block.title]
        assert "Preview" in "".join(texts(html, "div", role="note"))
        assert not any(a.endswith(("/complete", "/undo", "/completion")) for a in actions(html))
        assert 'id="completion"' not in html and "<progress" not in html
    assert db.session.scalar(select(func.count(StudentCourse.id))) == 0  # nothing recorded
    assert db.session.scalar(select(func.count(CompletedContentBlock.id))) == 0


def test_preview_links_the_owner_back_to_the_editor_and_the_next_block(client, teacher):
    course = make_course(teacher, sections=1, blocks=2)
    first, second = blocks(course)
    login_as(client, teacher)
    html = client.get(f"/courses/{course.id}/blocks/{first.id}").get_data(as_text=True)
    assert f"/teach/courses/{course.id}" in hrefs(html)
    assert f"/courses/{course.id}/blocks/{second.id}" in hrefs(html)


def test_folded_section_is_linked_in_a_preview(client, teacher):
    course = make_course(teacher, sections=2, blocks=1)
    second = course.sections[1]
    login_as(client, teacher)
    resp = client.get(
        f"/courses/{course.id}/sections/{second.id}",
        headers={"HX-Request": "true", "HX-Target": f"section-blocks-{second.id}"},
    )
    assert resp.status_code == 200
    assert f"/courses/{course.id}/blocks/{second.blocks[0].id}" in hrefs(
        resp.get_data(as_text=True)
    )


@pytest.mark.parametrize("who", ["other_teacher", "student"])
def test_no_preview_for_other_teachers_or_students(client, request, teacher, who):
    course = make_course(teacher, sections=1, blocks=1, published=False)
    login_as(client, request.getfixturevalue(who))
    assert client.get(f"/courses/{course.id}/blocks/{blocks(course)[0].id}").status_code == 404


def test_preview_cannot_complete(client, teacher):
    course = make_course(teacher, sections=1, blocks=1)
    login_as(client, teacher)
    resp = client.post(f"/courses/{course.id}/blocks/{blocks(course)[0].id}/complete")
    assert resp.status_code == 404


def test_preview_of_a_block_of_another_course_is_404(client, teacher, admin):
    course = make_course(teacher, sections=1, blocks=1)
    other = make_course(teacher, sections=1, blocks=1)
    login_as(client, admin)
    assert client.get(f"/courses/{course.id}/blocks/{blocks(other)[0].id}").status_code == 404


# --- 6. unpublishing keeps the course for its students --------------------------------------------


def test_unpublished_course_stays_with_enrolled_students(client, teacher, student):
    course = make_course(teacher, title="Kept course", sections=1, blocks=2, types=("lesson",))
    first, second = blocks(course)
    enrol(student, course)
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=first.id))
    db.session.commit()
    login_as(client, teacher)
    resp = client.post(f"/teach/courses/{course.id}/publish", data={"published": "0"})
    assert resp.status_code == 303
    assert db.session.get(Course, course.id).is_published is False

    login_as(client, student)
    mine = client.get("/learn").get_data(as_text=True)
    assert "Kept course" in mine and f"/courses/{course.id}" in "".join(hrefs(mine))
    page = client.get(f"/courses/{course.id}")
    assert page.status_code == 200
    assert "no longer in the catalogue" in page.get_data(as_text=True)
    block = client.get(f"/courses/{course.id}/blocks/{first.id}")
    assert block.status_code == 200 and "Completed" in block.get_data(as_text=True)
    done = client.post(f"/courses/{course.id}/blocks/{second.id}/complete")
    assert done.status_code == 303
    assert db.session.scalar(select(func.count(CompletedContentBlock.id))) == 2
    assert db.session.scalars(select(StudentCourse)).one().completed is True
    assert "Kept course" not in client.get("/courses").get_data(as_text=True)


def test_unpublished_course_takes_no_new_enrolments(client, teacher, student):
    course = make_course(teacher, sections=1, blocks=1, published=False)
    login_as(client, student)
    assert client.get(f"/courses/{course.id}").status_code == 404
    assert client.post(f"/courses/{course.id}/enrol").status_code == 404
    assert db.session.scalar(select(func.count(StudentCourse.id))) == 0


def test_leaving_an_unpublished_course_goes_to_my_learning(client, teacher, student):
    course = make_course(teacher, sections=1, blocks=1, published=False)
    enrol(student, course)
    login_as(client, student)
    resp = client.post(f"/courses/{course.id}/unenrol")
    assert resp.status_code == 303 and resp.headers["Location"] == "/learn"
    assert client.get(f"/courses/{course.id}").status_code == 404


def test_unpublish_control_says_students_keep_the_course(client, teacher):
    course = make_course(teacher, sections=1, blocks=1)
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}").get_data(as_text=True)
    note = " ".join(texts(html, "p", id="publish-note"))
    assert "out of the catalogue" in note and "keep it" in note
    resp = client.post(
        f"/teach/courses/{course.id}/publish", data={"published": "0"},
        headers={"HX-Request": "true", "HX-Target": "publish"},
    )  # fmt: skip
    assert resp.status_code == 200
    assert "enrolled students keep it" in resp.headers.get("HX-Trigger", "") + resp.get_data(
        as_text=True
    )


# --- 7. an empty course cannot be published -------------------------------------------------------


def test_empty_course_cannot_be_published_service(app, teacher):
    course = make_course(teacher, sections=1, blocks=0, published=False)
    with pytest.raises(Invalid, match="at least one block"):
        course_svc.set_published(course, True)
    assert db.session.get(Course, course.id).is_published is False


@pytest.mark.parametrize("htmx", [True, False])
def test_empty_course_cannot_be_published_web(client, teacher, htmx):
    course = make_course(teacher, sections=0, published=False)
    db.session.add(Section(course_id=course.id, title="Only a section", description="", position=0))
    db.session.commit()
    login_as(client, teacher)
    headers = {"HX-Request": "true", "HX-Target": "publish"} if htmx else {}
    resp = client.post(
        f"/teach/courses/{course.id}/publish", data={"published": "1"}, headers=headers
    )
    assert db.session.get(Course, course.id).is_published is False
    if htmx:
        assert resp.status_code == 422
        assert "at least one block" in " ".join(
            texts(resp.get_data(as_text=True), "p", role="alert")
        )
    else:
        assert resp.status_code == 303
        page = client.get(resp.headers["Location"]).get_data(as_text=True)
        assert "at least one block" in page
