"""Issue 16's new and changed pages in Chromium at 1280, 390 and 320 px: the admin's courses
list and a course's admin page, the gradebook (full block titles, the student column and the
averages in view while it scrolls) and a teacher's preview of a block. Each page fits the
viewport and is axe-clean. Screenshots: tests/e2e/screenshots/issue16-*.png."""

from __future__ import annotations

import pytest

from tests.conftest import make_course, make_user
from tests.e2e.test_admin import log_in, shot
from tests.test_teaching import complete, enrol, gradable_of
from webapp.extensions import db
from webapp.models import Role, StudentCourse

WIDTHS = (1280, 390, 320)


def fits_and_clean(page, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"issue16-{name}-{width}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, (name, width, overflow)
        assert page.watch.axe() == [], (name, width)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.watch.assert_clean()


@pytest.fixture
def school(app):
    admin = make_user(Role.ADMIN, email="boss@school.org", name="Bea Boss")
    teacher = make_user(Role.TEACHER, email="ada.lovelace@school.example.org", name="Ada Lovelace")
    students = [
        make_user(Role.STUDENT, email=f"student{i:02d}@school.org", name=f"Student Number {i:02d}")
        for i in range(12)
    ]
    titles = [
        "Introduction to algebra and the many ways of solving equations",
        "Geometry", "Draft: statistics for the curious", "History of the Roman Empire",
    ]  # fmt: skip
    courses = [make_course(teacher, title=t, sections=3, blocks=3, published="Draft" not in t)
               for t in titles]  # fmt: skip
    for s in students:
        db.session.add(StudentCourse(student_id=s.id, course_id=courses[0].id))
    db.session.commit()
    return admin, teacher, students, courses


def test_admin_courses_pages(live_server, page, school):
    admin, _, _, courses = school
    log_in(page, live_server, admin.email)
    page.goto(live_server + "/admin/courses")
    assert page.locator("#course-results tbody tr").count() == 4
    fits_and_clean(page, "admin-courses")
    page.get_by_label("Search by title, owner's name or email").fill("roman")
    page.wait_for_function(
        "() => document.querySelectorAll('#course-results tbody tr').length === 1"
    )
    page.get_by_role("link", name="History of the Roman Empire").click()
    page.wait_for_selector("h1")
    fits_and_clean(page, "admin-course")


def test_gradebook_headers_in_full_and_sticky_columns(live_server, page, school):
    _, teacher, students, courses = school
    course = make_course(
        teacher, title="Long titles", sections=2, blocks=6, types=("quiz", "assignment")
    )
    for i, block in enumerate(gradable_of(course)):
        block.title = f"Assignment {i + 1}: a long title that used to be cut off in the header"
    db.session.commit()
    for s in students:
        enrol(s, course)
    for i, block in enumerate(gradable_of(course)[:4]):
        complete(students[i], block, url="https://x.org", grade=70 + i, grader=teacher)
    log_in(page, live_server, teacher.email)
    page.goto(f"{live_server}/teach/courses/{course.id}/gradebook")
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('#gradebook-table thead th')]
             .filter(th => th.scrollWidth > th.clientWidth + 1
                        || th.scrollHeight > th.clientHeight + 1)
             .map(th => th.textContent)"""
    )
    assert clipped == []  # every title shows in full
    fits_and_clean(page, "gradebook")
    # Scrolled right and down inside its region, the student column, the header row and the
    # averages stay where they were on screen.
    page.set_viewport_size({"width": 390, "height": 700})
    wrap = page.locator(".gradebook-wrap")
    before = page.evaluate(
        """() => ['.student-col', 'thead', 'tfoot', 'tbody .avg-col'].map(
             s => document.querySelector('#gradebook-table ' + s).getBoundingClientRect())
             .map(r => [Math.round(r.left), Math.round(r.top)])"""
    )
    wrap.evaluate("el => { el.scrollLeft = 400; el.scrollTop = 200; }")
    after = page.evaluate(
        """() => ['tbody tr:last-child .student-col', 'thead', 'tfoot',
                  'tbody tr:last-child .avg-col']
             .map(s => document.querySelector('#gradebook-table ' + s).getBoundingClientRect())
             .map(r => [Math.round(r.left), Math.round(r.top)])"""
    )
    assert after[0][0] == before[0][0]  # the student column stays at the left
    assert after[1][1] == before[1][1]  # the headers stay at the top
    box = wrap.bounding_box()
    assert after[2][1] < box["y"] + box["height"]  # the column averages stay in view
    assert after[3][0] < box["x"] + box["width"]  # and so does the Average column
    shot(page, "issue16-gradebook-scrolled-390")


def test_teacher_previews_a_block(live_server, page, school):
    _, teacher, _, courses = school
    course = courses[0]
    log_in(page, live_server, teacher.email)
    page.goto(f"{live_server}/courses/{course.id}")
    page.get_by_role("link", name="Preview the first block").click()
    page.wait_for_selector(".preview-banner")
    assert page.locator("#completion form").count() == 0
    fits_and_clean(page, "preview-block")
