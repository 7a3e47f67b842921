"""Learning: enrolments, completions and progress."""

from __future__ import annotations

from sqlalchemy import and_, case, func, select, update

from ..extensions import db
from ..models import CompletedContentBlock, ContentBlock, Section, StudentCourse, utcnow


def sync_course_completion(course_id: int, student_id: int | None = None) -> None:
    """Recompute ``StudentCourse.completed``/``completed_at`` for a course's enrolments.

    A student has completed a course exactly when the course has blocks and every one of them
    is completed by the student. Call it inside the transaction of every change that can move
    it (a completion, an undo, a block added or deleted); it does not commit.
    """
    total = (
        select(func.count(ContentBlock.id))
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == course_id)
        .scalar_subquery()
    )
    done = (
        select(func.count(CompletedContentBlock.id))
        .join(ContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(
            Section.course_id == course_id,
            CompletedContentBlock.student_id == StudentCourse.student_id,
        )
        .scalar_subquery()
    )
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
