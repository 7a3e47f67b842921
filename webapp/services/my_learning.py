"""My learning: a student's enrolled courses with their progress, and recently graded work."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import load_only

from ..extensions import db
from ..models import CompletedContentBlock, ContentBlock, Course, Section, StudentCourse, User
from .estimates import course_minutes
from .progress import block_total, done_count, percent


@dataclass
class MyCourse:
    """One enrolled course's card: the same figures as the catalogue's cards."""

    enrolment: StudentCourse
    course: Course
    total: int
    done: int
    minutes: int = 0
    enrolled = True

    @property
    def percent(self) -> int:
        return percent(self.done, self.total)

    @property
    def blocks(self) -> int:
        return self.total

    @property
    def teacher(self) -> str:
        return self.course.owner.name

    @property
    def started(self) -> bool:
        """A block done or opened: the button says "Resume", else "Start"."""
        return self.done > 0 or self.enrolment.last_block_id is not None


@dataclass
class MyLearning:
    courses: list[MyCourse]
    graded: list[tuple[CompletedContentBlock, ContentBlock, Course]]


def my_learning(student: User, graded_limit: int = 5) -> MyLearning:
    """Enrolled courses with their progress (progress.py's figures) and estimated length, and
    recently graded work: two queries."""
    rows = db.session.execute(
        select(
            StudentCourse,
            Course,
            block_total(Course.id).scalar_subquery(),
            done_count(Course.id, student.id).scalar_subquery(),
            course_minutes(Course.id).scalar_subquery(),
        )
        .join(Course, StudentCourse.course_id == Course.id)
        .where(StudentCourse.student_id == student.id)
        .order_by(StudentCourse.enrolled_at.desc(), StudentCourse.id.desc())
    ).all()
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
            MyCourse(e, c, total, done, int(minutes or 0))
            for e, c, total, done, minutes in rows  # unpublished too: still theirs
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
