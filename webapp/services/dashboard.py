"""The teacher's dashboard: their courses with section, block, student and to-grade counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from ..extensions import db
from ..models import ContentBlock, Course, Section, StudentCourse, User
from .grading_queue import queue_counts


@dataclass
class CourseSummary:
    course: Course
    sections: int = 0
    blocks: int = 0
    students: int = 0
    to_grade: int = 0


def teacher_dashboard(user: User) -> list[CourseSummary]:
    """The user's courses with their counts, in five queries whatever their number."""
    courses = (
        db.session.execute(
            select(Course).where(Course.user_id == user.id).order_by(Course.updated_at.desc())
        )
        .scalars()
        .all()
    )
    rows = {c.id: CourseSummary(c) for c in courses}
    if not rows:
        return []
    mine = select(Course.id).where(Course.user_id == user.id)
    counts = {
        "sections": select(Section.course_id, func.count(Section.id))
        .where(Section.course_id.in_(mine))
        .group_by(Section.course_id),
        "blocks": select(Section.course_id, func.count(ContentBlock.id))
        .join(ContentBlock, ContentBlock.section_id == Section.id)
        .where(Section.course_id.in_(mine))
        .group_by(Section.course_id),
        "students": select(StudentCourse.course_id, func.count(StudentCourse.id))
        .where(StudentCourse.course_id.in_(mine))
        .group_by(StudentCourse.course_id),
    }
    for name, stmt in counts.items():
        for course_id, n in db.session.execute(stmt):
            setattr(rows[course_id], name, n)
    # The grading queue's own count, so the dashboard and the queue always agree (only
    # currently enrolled students' work counts).
    for course_id, n in queue_counts(user).items():
        if course_id in rows:
            rows[course_id].to_grade = n
    return list(rows.values())
