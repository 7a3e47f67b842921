"""The progress rule: how much of a course a student has done, and when it is completed.

Every page, fragment, CSV and roster takes its figures from here, so they always agree:
``percent()`` rounds down, so 100 % means every block is done, and a course is completed
exactly when it has blocks and the student has completed every one of them.
"""

from __future__ import annotations

from sqlalchemy import and_, case, func, select, update

from ..extensions import db
from ..models import CompletedContentBlock, ContentBlock, Section, StudentCourse, utcnow


def percent(done: int, total: int) -> int:
    """Whole percent of ``done`` out of ``total``, rounded down (0 for an empty course)."""
    return done * 100 // total if total else 0


def block_total(course_id):
    """SELECT: the number of blocks of a course (``course_id`` a value or a column)."""
    return (
        select(func.count(ContentBlock.id))
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course_id)
    )


def done_count(course_id, student_id):
    """SELECT: the number of the course's blocks the student has completed (values or columns)."""
    return (
        select(func.count(CompletedContentBlock.id))
        .join(ContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course_id, CompletedContentBlock.student_id == student_id)
    )


def block_ids(course_id: int):
    """SELECT: the ids of a course's blocks."""
    return (
        select(ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course_id)
    )


def done_per_student(course_id: int):
    """Subquery: per student, how many of the course's blocks they completed, and when last."""
    return (
        select(
            CompletedContentBlock.student_id.label("student_id"),
            func.count(CompletedContentBlock.id).label("done"),
            func.max(CompletedContentBlock.updated_at).label("last_activity"),
        )
        .where(CompletedContentBlock.content_block_id.in_(block_ids(course_id)))
        .group_by(CompletedContentBlock.student_id)
        .subquery()
    )


def sync_course_completion(course_id: int, student_id: int | None = None) -> None:
    """Recompute ``StudentCourse.completed``/``completed_at`` for a course's enrolments.

    Call it inside the unit of work of every change that can move it (a completion, an undo, an
    enrolment, a block added or deleted); it does not commit.
    """
    total = block_total(course_id).scalar_subquery()
    done = done_count(course_id, StudentCourse.student_id).scalar_subquery()
    is_complete = and_(total > 0, done == total)
    stmt = (
        update(StudentCourse)
        .where(StudentCourse.course_id == course_id)
        .values(
            completed=is_complete,
            completed_at=case(
                (is_complete, func.coalesce(StudentCourse.completed_at, utcnow())),
                else_=None,
            ),
        )
        .execution_options(synchronize_session=False)
    )
    if student_id is not None:
        stmt = stmt.where(StudentCourse.student_id == student_id)
    db.session.execute(stmt)
