"""My learning: a student's enrolled courses with their progress, and recently graded work."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import load_only

from ..extensions import db
from ..models import CompletedContentBlock, ContentBlock, Course, Section, StudentCourse, User
from .progress import percent


@dataclass
class MyCourse:
    enrolment: StudentCourse
    course: Course
    total: int
    done: int

    @property
    def percent(self) -> int:
        return percent(self.done, self.total)

    @property
    def started(self) -> bool:
        """A block done or opened: the button says "Resume", else "Start"."""
        return self.done > 0 or self.enrolment.last_block_id is not None


@dataclass
class MyLearning:
    courses: list[MyCourse]
    graded: list[tuple[CompletedContentBlock, ContentBlock, Course]]


def my_learning(student: User, graded_limit: int = 5) -> MyLearning:
    """Enrolled courses with progress, and recently graded work: three queries."""
    rows = db.session.execute(
        select(StudentCourse, Course)
        .join(Course, StudentCourse.course_id == Course.id)
        .where(StudentCourse.student_id == student.id)
        .order_by(StudentCourse.enrolled_at.desc(), StudentCourse.id.desc())
    ).all()
    ids = [course.id for _, course in rows]
    totals: dict[int, int] = {}
    done: dict[int, int] = {}
    if ids:
        totals = dict(
            db.session.execute(
                select(Section.course_id, func.count(ContentBlock.id))
                .join(ContentBlock, ContentBlock.section_id == Section.id)
                .where(Section.course_id.in_(ids))
                .group_by(Section.course_id)
            ).all()
        )
        done = dict(
            db.session.execute(
                select(Section.course_id, func.count(CompletedContentBlock.id))
                .join(ContentBlock, ContentBlock.section_id == Section.id)
                .join(
                    CompletedContentBlock,
                    CompletedContentBlock.content_block_id == ContentBlock.id,
                )
                .where(Section.course_id.in_(ids), CompletedContentBlock.student_id == student.id)
                .group_by(Section.course_id)
            ).all()
        )
    graded = db.session.execute(
        select(CompletedContentBlock, ContentBlock, Course)
        .join(ContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .join(Course, Section.course_id == Course.id)
        .where(
            CompletedContentBlock.student_id == student.id,
            CompletedContentBlock.graded_at.is_not(None),
        )
        .order_by(CompletedContentBlock.graded_at.desc())
        .limit(graded_limit)
        .options(load_only(ContentBlock.id, ContentBlock.title, ContentBlock.section_id))
    ).all()
    return MyLearning(
        courses=[
            MyCourse(e, c, totals.get(c.id, 0), done.get(c.id, 0))
            for e, c in rows
            if c.is_published
        ],
        graded=[tuple(r) for r in graded],
    )


@dataclass
class MyWork:
    completion: CompletedContentBlock
    block_title: str
    block_type: str
    course_id: int
    course_title: str


def my_work(student: User, page: int, per_page: int) -> tuple[list[MyWork], bool]:
    """The student's completions, newest first, a page at a time (and whether more follow):
    one statement."""
    cols = (ContentBlock.title, ContentBlock.type, Course.id, Course.title)
    rows = db.session.execute(
        select(CompletedContentBlock, *cols)
        .join(ContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
        .join(Section, ContentBlock.section_id == Section.id)
        .join(Course, Section.course_id == Course.id)
        .where(CompletedContentBlock.student_id == student.id)
        .order_by(CompletedContentBlock.completed_at.desc(), CompletedContentBlock.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    ).all()
    return [MyWork(*row) for row in rows[:per_page]], len(rows) > per_page
