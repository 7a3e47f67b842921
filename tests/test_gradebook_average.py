"""The gradebook's averages by the teacher's rule, the same on the page, after a cell save and
in the CSV; full block titles in the headers (issue 16, item 9)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from tests.conftest import login_as, make_course, make_user
from tests.test_teaching import complete, enrol, gradable_of
from tests.test_teaching_progress import texts
from webapp.extensions import db
from webapp.models import CompletedContentBlock, Course, Role
from webapp.services import gradebook
from webapp.services.progress import grade_average

LONG = "Assignment: a very long block title that used to be cut off in the gradebook header"


@pytest.mark.parametrize(
    ("total", "graded", "missing", "rule", "expected"),
    [
        (80, 1, 1, "graded", 80.0),
        (80, 1, 1, "zero", 40.0),
        (0, 0, 2, "graded", None),
        (0, 0, 2, "zero", 0.0),
        (0, 0, 0, "zero", None),
    ],
)
def test_grade_average_rule(total, graded, missing, rule, expected):
    assert grade_average(total, graded, missing, rule) == expected


@pytest.fixture
def book(teacher):
    """Two gradable blocks; Ann: quiz 80, assignment missing; Ben: quiz handed in and waiting,
    assignment 60."""
    course = make_course(teacher, title="Maths", sections=1, blocks=2, types=("quiz", "assignment"))
    quiz, assignment = gradable_of(course)
    assignment.title = LONG
    db.session.commit()
    ann = make_user(Role.STUDENT, name="Ann", email="ann@example.com")
    ben = make_user(Role.STUDENT, name="Ben", email="ben@example.com")
    for s in (ann, ben):
        enrol(s, course)
    complete(ann, quiz, url="https://x.org/a", grade=80, grader=teacher)
    complete(ben, quiz, url="https://x.org/b")
    waiting = complete(ben, assignment, url="https://x.org/c", grade=60, grader=teacher)
    return course, ann, ben, quiz, assignment, waiting


# (Ann's row, Ben's row, the quiz's column, the assignment's column)
EXPECTED = {"graded": ("80.0", "60.0", "80.0", "60.0"), "zero": ("40.0", "60.0", "80.0", "30.0")}


def shown(client, course, ann, ben, quiz, assignment) -> tuple:
    html = client.get(f"/teach/courses/{course.id}/gradebook").get_data(as_text=True)
    ids = (f"avg-s{ann.id}", f"avg-s{ben.id}", f"avg-b{quiz.id}", f"avg-b{assignment.id}")
    return tuple(texts(html, "span", id=i)[0] for i in ids)


@pytest.mark.parametrize("rule", ["graded", "zero"])
def test_page_and_csv_average_by_the_course_rule(client, teacher, book, rule):
    course, ann, ben, quiz, assignment, _ = book
    login_as(client, teacher)
    resp = client.post(f"/teach/courses/{course.id}/gradebook/average", data={"rule": rule})
    assert resp.status_code == 303
    assert db.session.get(Course, course.id).average_rule == rule
    assert shown(client, course, ann, ben, quiz, assignment) == EXPECTED[rule]
    page = client.get(f"/teach/courses/{course.id}/gradebook").get_data(as_text=True)
    said = {"graded": "average of graded work", "zero": "missing work counts as 0"}[rule]
    assert texts(page, "strong", id="average-rule") == [said]

    raw = client.get(f"/teach/courses/{course.id}/gradebook.csv").get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert rows[0][-1] == f"Average ({said})"
    averages = {r[1]: r[-1] for r in rows[1:]}
    assert averages == {"ann@example.com": EXPECTED[rule][0], "ben@example.com": EXPECTED[rule][1]}


def test_cell_save_averages_by_the_course_rule(app, teacher, book):
    course, ann, ben, quiz, assignment, waiting = book
    course.average_rule = "zero"
    db.session.commit()
    quiz_of_ben = next(c for c in _completions(ben) if c.content_block_id == quiz.id)
    saved = gradebook.save_cell(
        course, quiz_of_ben.id, teacher, 50, str(quiz_of_ben.version),
        students=[ann.id, ben.id], blocks=[quiz.id, assignment.id],
    )  # fmt: skip
    assert (saved.row_avg, saved.col_avg) == (55.0, 65.0)  # Ben (50+60)/2; the quiz (80+50)/2
    course = db.session.get(Course, course.id)
    book_ = gradebook.gradebook(course)
    assert (book_.row_avg[ben.id], book_.col_avg[quiz.id]) == (55.0, 65.0)
    assert book_.row_avg[ann.id] == 40.0 and book_.col_avg[assignment.id] == 30.0


def _completions(student):
    return db.session.scalars(
        select(CompletedContentBlock).where(CompletedContentBlock.student_id == student.id)
    ).all()


def test_only_the_owner_sets_the_rule_and_only_known_rules(client, teacher, other_teacher, book):
    course = book[0]
    login_as(client, other_teacher)
    url = f"/teach/courses/{course.id}/gradebook/average"
    assert client.post(url, data={"rule": "zero"}).status_code == 404
    login_as(client, teacher)
    assert client.post(url, data={"rule": "median"}).status_code == 303
    assert db.session.get(Course, course.id).average_rule == "graded"


def test_block_titles_are_shown_in_full_in_wrapping_headers(client, teacher, book):
    course = book[0]
    login_as(client, teacher)
    html = client.get(f"/teach/courses/{course.id}/gradebook").get_data(as_text=True)
    headers = [t.strip() for t in texts(html, "th", scope="col", class_="block-col")]
    assert LONG in headers
    # (tests/e2e/test_issue16_pages.py measures in Chromium that no header is clipped)
    region = texts(html, "div", role="region", tabindex="0")
    assert region  # the scrolling table is a focusable, labelled region
