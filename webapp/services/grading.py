"""The grading queue and grading: what waits for a grade, in which order, and saving a grade.

Every function takes a course the caller got from ``access.course_for_owner`` (only the owner
grades a course). A grade is saved only if the submission is still the version the grader
loaded: ``completed_content_blocks.version``, which every UPDATE of the row bumps (a student's
edit as much as another grade), so nothing is ever overwritten unseen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, update

from ..extensions import db
from ..mail import queue_email
from ..models import (
    GRADABLE,
    CompletedContentBlock,
    ContentBlock,
    Course,
    Section,
    User,
    utcnow,
)
from . import MAX_ID, Conflict, Invalid, unit_of_work
from .access import completion_for_grader, enrolled_work

QUEUE_LIST = 50

CCB = CompletedContentBlock


# --- the queue ---------------------------------------------------------------------------------


def _waiting() -> list:
    """Submissions to gradable blocks without a grade, or changed since they were graded."""
    return [
        ContentBlock.type.in_(GRADABLE),
        or_(CCB.grade.is_(None), CCB.graded_at.is_(None), CCB.changed_since_graded),
    ]


def _queue(course_id: int, *cols):
    return enrolled_work(*cols).where(Section.course_id == course_id, *_waiting())


def queue_count(course_id: int) -> int:
    return db.session.scalar(_queue(course_id, func.count(CCB.id)))


def queue_counts(owner: User) -> dict[int, int]:
    """Submissions waiting for a grade, per course of ``owner`` (for a dashboard)."""
    rows = db.session.execute(
        enrolled_work(Section.course_id, func.count(CCB.id))
        .join(Course, Course.id == Section.course_id)
        .where(Course.user_id == owner.id, *_waiting())
        .group_by(Section.course_id)
    )
    return dict(rows.all())


@dataclass
class QueueItem:
    id: int
    student_name: str
    block_title: str
    updated_at: dt.datetime
    regrade: bool


def queue_list(course_id: int, limit: int = QUEUE_LIST) -> list[QueueItem]:
    """The oldest submissions first (by the time the student last touched them)."""
    stmt = (
        _queue(course_id, CCB.id, User.name, ContentBlock.title, CCB.updated_at, CCB.graded_at)
        .join(User, User.id == CCB.student_id)
        .order_by(CCB.updated_at, CCB.id)
        .limit(limit)
    )
    return [
        QueueItem(cid, name, title, updated, graded is not None)
        for cid, name, title, updated, graded in db.session.execute(stmt)
    ]


def _first(course_id: int, *where) -> int | None:
    return db.session.scalar(
        _queue(course_id, CCB.id).where(*where).order_by(CCB.updated_at, CCB.id).limit(1)
    )


def neighbours(course_id: int, current: CompletedContentBlock | None) -> tuple[int | None, ...]:
    """(previous, next) submission ids in the queue around ``current`` (which may be graded).

    Next wraps to the oldest submission, so "Save & next" always finds what is left.
    """
    if current is None:
        return None, _first(course_id)
    u, cid = current.updated_at, current.id
    before = or_(CCB.updated_at < u, and_(CCB.updated_at == u, CCB.id < cid))
    after = or_(CCB.updated_at > u, and_(CCB.updated_at == u, CCB.id > cid))
    prev_id = db.session.scalar(
        _queue(course_id, CCB.id)
        .where(before)
        .order_by(CCB.updated_at.desc(), CCB.id.desc())
        .limit(1)
    )
    # The next one after this, else the oldest one left (the queue wraps around).
    return prev_id, _first(course_id, after) or _first(course_id, CCB.id != cid)


def grader_of(completion: CompletedContentBlock) -> User | None:
    if completion.graded_by_id is None:
        return None
    return db.session.get(User, completion.graded_by_id)


# --- grading -----------------------------------------------------------------------------------


def version_of(completion: CompletedContentBlock) -> str:
    """The version a grader's form carries (see the module's docstring)."""
    return str(completion.version)


def _parse_version(token: str | None) -> int:
    try:
        version = int(token or "")
    except ValueError:
        version = 0
    if not 0 < version <= MAX_ID:
        raise Invalid("The form is out of date: reload the page.", field="version")
    return version


class StaleGrade(Conflict):
    """The submission changed since the grader loaded it; nothing was saved."""

    def __init__(self):
        super().__init__(
            "This submission changed since you opened it, so your grade was not saved. "
            "Its current state is shown below; save again to replace it."
        )


@unit_of_work()
def grade(
    course: Course,
    completion_id: int,
    grader: User,
    grade_value: int,
    comment: str | None,
    version: str,
) -> CompletedContentBlock:
    """Grade a submission if it is still the version the grader loaded; emails the student.

    ``comment=None`` keeps the current comment (the gradebook edits grades only). One
    conditional UPDATE decides: if it touches no row, someone changed the submission first and
    StaleGrade is raised (the caller shows the current state); nothing is overwritten.
    """
    if not isinstance(grade_value, int) or not 0 <= grade_value <= 100:
        raise Invalid("A grade is a whole number from 0 to 100.", field="grade")
    if comment is not None and len(comment) > 5000:
        raise Invalid("At most 5000 characters.", field="comment")
    completion = completion_for_grader(course, completion_id)
    loaded = _parse_version(version)
    values = {"grade": grade_value, "graded_at": utcnow(), "graded_by_id": grader.id}
    if comment is not None:
        values["grader_comment"] = comment
    result = db.session.execute(
        update(CCB)
        .where(CCB.id == completion.id, CCB.version == loaded)
        .values(**values)  # the version column's onupdate bumps it
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleGrade()
    db.session.refresh(completion)
    block, student = completion.block, completion.student
    queue_email(
        student.email,
        "graded",
        student=student,
        course=course,
        block=block,
        grade=completion.grade,
        comment=completion.grader_comment,
        path=f"/courses/{course.id}/blocks/{block.id}",
    )
    return completion


def grade_and_advance(
    course: Course,
    completion_id: int,
    grader: User,
    grade_value: int,
    comment: str | None,
    version: str,
    advance: bool,
) -> tuple[CompletedContentBlock, CompletedContentBlock | None]:
    """Grade (see ``grade``), then the submission to show: the next in the queue if
    ``advance`` (None when nothing is left), else the graded one."""
    done = grade(course, completion_id, grader, grade_value, comment, version)
    # Read after the commit, with the block and the student the panel shows.
    done = completion_for_grader(course, done.id)
    if not advance:
        return done, done
    next_id = neighbours(course.id, done)[1]
    return done, completion_for_grader(course, next_id) if next_id else None
