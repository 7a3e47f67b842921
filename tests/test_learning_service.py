"""The learning service on its own: rules without HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import make_course, make_user
from tests.test_learning import assert_progress_invariant, blocks_of, first_of
from webapp.extensions import db
from webapp.models import CompletedContentBlock, Role, StudentCourse, utcnow
from webapp.services import Conflict, Invalid, NotFound, access
from webapp.services import learning as service
from webapp.services import learning_outline as outline
from webapp.services.catalogue import catalogue


@pytest.fixture
def course(teacher):
    return make_course(teacher, title="Service course", sections=2, blocks=3)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_enrol_is_idempotent_and_students_only(course, student, teacher, admin):
    service.enrol(course.id, student)
    service.enrol(course.id, student)
    assert count(StudentCourse) == 1
    for not_student in (teacher, admin):
        with pytest.raises(NotFound):
            service.enrol(course.id, not_student)
    assert count(StudentCourse) == 1


def test_enrol_in_draft_or_missing_course_is_not_found(teacher, student):
    draft = make_course(teacher, published=False)
    for course_id in (draft.id, 9999):
        with pytest.raises(NotFound):
            service.enrol(course_id, student)


def test_blocks_need_enrolment(course, student):
    block = blocks_of(course)[0]
    with pytest.raises(access.NotEnrolled):
        outline.block_page(course.id, block.id, student)
    with pytest.raises(access.NotEnrolled):
        service.complete_block(course.id, block.id, student)
    assert count(CompletedContentBlock) == 0


@pytest.mark.parametrize(
    "url", [None, "", "   ", "javascript:alert(1)", "http://", "https://x." + "y" * 2000, "/rel"]
)
def test_gradable_blocks_need_an_http_url(course, student, url):
    service.enrol(course.id, student)
    assignment = first_of(course, "assignment")
    with pytest.raises(Invalid) as err:
        service.complete_block(course.id, assignment.id, student, url, "")
    assert err.value.field == "url"
    assert count(CompletedContentBlock) == 0


def test_remarks_are_limited(course, student):
    service.enrol(course.id, student)
    quiz = first_of(course, "quiz")
    with pytest.raises(Invalid) as err:
        service.complete_block(course.id, quiz.id, student, "https://a.example", "x" * 5001)
    assert err.value.field == "remarks"


def test_complete_twice_keeps_the_first(course, student):
    service.enrol(course.id, student)
    quiz = first_of(course, "quiz")
    service.complete_block(course.id, quiz.id, student, "https://first.example", "one")
    view = service.complete_block(course.id, quiz.id, student, "https://second.example", "two")
    assert count(CompletedContentBlock) == 1
    assert view.completion.url == "https://first.example"
    assert db.session.scalar(select(StudentCourse.last_block_id)) == quiz.id


def test_edit_never_touches_the_grade_and_undo_refuses_graded_work(course, student, teacher):
    service.enrol(course.id, student)
    quiz = first_of(course, "quiz")
    view = service.complete_block(course.id, quiz.id, student, "https://a.example", "")
    row = db.session.get(CompletedContentBlock, view.completion.id)
    row.grade, row.grader_comment, row.graded_by_id, row.graded_at = 70, "ok", teacher.id, utcnow()
    db.session.commit()
    view = service.edit_completion(course.id, quiz.id, student, "https://b.example", "fixed")
    done = view.completion
    assert (done.url, done.feedback) == ("https://b.example", "fixed")
    assert (done.grade, done.grader_comment) == (70, "ok") and done.changed_since_graded
    row = db.session.get(CompletedContentBlock, done.id)
    assert (row.grade, row.grader_comment, row.graded_by_id) == (70, "ok", teacher.id)
    with pytest.raises(Conflict, match="graded"):
        service.undo_completion(course.id, quiz.id, student)
    assert count(CompletedContentBlock) == 1


def test_undo_and_progress(course, student):
    service.enrol(course.id, student)
    for b in blocks_of(course):
        url = "https://w.example" if b.is_gradable else None
        view = service.complete_block(course.id, b.id, student, url, "")
        assert_progress_invariant(course.id)
    assert view.completed and view.figures.percent == 100
    view = service.undo_completion(course.id, blocks_of(course)[-1].id, student)
    assert not view.completed and view.figures.percent == 83
    assert (view.section.done, view.section.total) == (2, 3)
    assert_progress_invariant(course.id)


def test_catalogue_only_published_and_enrolled_flag(course, student, teacher):
    make_course(teacher, title="Hidden draft", published=False)
    service.enrol(course.id, student)
    page = catalogue("", 1, student)
    assert [r.course.title for r in page.rows] == ["Service course"]
    assert page.rows[0].enrolled and (page.rows[0].sections, page.rows[0].blocks) == (2, 6)
    other = make_user(Role.STUDENT)
    assert not catalogue("", 1, other).rows[0].enrolled
    assert not catalogue("", 1, None).rows[0].enrolled
    assert catalogue("nothing like it", 1, None).total == 0
