"""Grading: one submission as the grading panel shows it, and saving a grade.

Every function takes a course the caller got from ``access.course_for_owner`` (only the owner
grades a course). A grade is saved only if the submission is still the version the grader
loaded: ``completed_content_blocks.version``, which every UPDATE of the row bumps (a student's
edit as much as another grade), so nothing is ever overwritten unseen. The queue (what waits,
in which order, how many) is ``grading_queue``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace

from sqlalchemy import (
    Integer,
    Select,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.orm import aliased

from ..extensions import db
from ..mail import render_email
from ..models import (
    CompletedContentBlock,
    ContentBlock,
    Course,
    OutboxMessage,
    User,
    utcnow,
)
from . import MAX_ID, Conflict, Invalid, NotFound, id_or_404, unit_of_work
from .access import completion_for_grader, gradable_work, grader_work
from .grading_queue import COURSE, NEXT, Count, count_of, neighbour_of
from .grading_queue import queue_count as queue_count  # the course tabs' count

CCB = CompletedContentBlock


# --- one submission, as the grading panel shows it ----------------------------------------------


@dataclass
class Submission:
    """The grading panel's submission: plain values, so a commit expires nothing it shows."""

    id: int
    url: str | None
    feedback: str
    grade: int | None
    grader_comment: str
    graded_at: dt.datetime | None
    updated_at: dt.datetime
    version: int
    block: SimpleNamespace  # id, title, type
    student: SimpleNamespace  # id, name
    grader: str | None  # the name of who graded it

    @property
    def changed_since_graded(self) -> bool:
        return self.graded_at is not None and self.updated_at > self.graded_at

    @classmethod
    def of(cls, row) -> Submission:
        return cls(
            *row[:8],
            SimpleNamespace(id=row.block_id, title=row.block_title, type=row.block_type),
            SimpleNamespace(id=row.student_id, name=row.student_name),
            row.grader_name,
        )


@cache
def _submission_stmt(which: str | None = None, count: bool = False) -> Select:
    """SELECT the course's submission ``ident`` (or the NEXT or PREVIOUS one around (AT, REF))
    as the panel shows it (``access.grader_work``); ``count``: and how many wait."""
    ident = bindparam("ident", type_=Integer) if which is None else neighbour_of(which)
    grader = aliased(User)
    stmt = (
        grader_work(
            COURSE,
            CCB.id,
            CCB.url,
            CCB.feedback,
            CCB.grade,
            CCB.grader_comment,
            CCB.graded_at,
            CCB.updated_at,
            CCB.version,
            ContentBlock.id.label("block_id"),
            ContentBlock.title.label("block_title"),
            ContentBlock.type.label("block_type"),
            User.id.label("student_id"),
            User.name.label("student_name"),
            grader.name.label("grader_name"),
        )
        .join(User, User.id == CCB.student_id)
        .outerjoin(grader, grader.id == CCB.graded_by_id)
        .where(CCB.id == ident)
    )
    return stmt.add_columns(count_of().label("waiting")) if count else stmt


def submission(course: Course, completion_id) -> Submission:
    """The course's submission ``completion_id`` as the panel shows it (the rule of
    ``access.completion_for_grader``: anything else is NotFound)."""
    params = {"course_id": course.id, "ident": id_or_404(completion_id, "submission")}
    row = db.session.execute(_submission_stmt(), params).one_or_none()
    if row is None:
        raise NotFound("No such submission.")
    return Submission.of(row)


def neighbour(course: Course, completion_id, which: str) -> Submission | None:
    """The NEXT or PREVIOUS submission around ``completion_id`` in the queue (None: there is
    none); NotFound if ``completion_id`` is not a submission of this course."""
    current = completion_for_grader(course, completion_id)
    params = {"course_id": course.id, "at": current.updated_at, "ref": current.id}
    row = db.session.execute(_submission_stmt(which), params).one_or_none()
    return Submission.of(row) if row is not None else None


# --- grading -----------------------------------------------------------------------------------


def version_of(completion) -> str:
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


@dataclass
class Graded:
    """A grade just saved, as its UPDATE returned it."""

    id: int
    student_id: int
    block_id: int
    grade: int
    comment: str
    updated_at: dt.datetime
    graded_at: dt.datetime
    version: int
    student_name: str
    block_title: str


@cache
def _grade_stmt(with_comment: bool):
    """The conditional UPDATE: this version of a submission the course's teacher may grade
    (``access.gradable_work``), RETURNING what the answer and the email need."""
    values = {
        "grade": bindparam("new_grade", type_=Integer),
        "graded_at": bindparam("now", type_=CCB.graded_at.type),
        "graded_by_id": bindparam("grader_id", type_=Integer),
    }
    if with_comment:
        values["grader_comment"] = bindparam("comment", type_=CCB.grader_comment.type)
    student = select(User.name, User.email).where(User.id == CCB.student_id)
    return (
        update(CCB)
        .where(
            CCB.id == bindparam("completion_id", type_=Integer),
            CCB.version == bindparam("loaded", type_=Integer),
            *gradable_work(COURSE),
        )
        .values(**values)  # the version column's onupdate bumps it
        .returning(
            CCB.id,
            CCB.student_id,
            CCB.content_block_id,
            CCB.grade,
            CCB.grader_comment,
            CCB.updated_at,
            CCB.graded_at,
            CCB.version,
            student.with_only_columns(User.name).scalar_subquery(),
            select(ContentBlock.title)
            .where(ContentBlock.id == CCB.content_block_id)
            .scalar_subquery(),
            student.with_only_columns(User.email).scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    )


MAIL_KEYS = ("recipient", "subject", "text_body", "html_body")  # what ``render_email`` gives


@cache
def _mail_insert():
    """The email's INSERT into the outbox, built once (bound parameters ``m_*``)."""
    now = bindparam("m_now", type_=OutboxMessage.created_at.type)
    values = {key: bindparam(f"m_{key}") for key in MAIL_KEYS}
    return insert(OutboxMessage).values(
        **values, created_at=now, next_attempt_at=now, attempts=0, last_error=""
    )


@cache
def _with_mail(then: Select) -> Select:
    """``then`` with the email's INSERT as a CTE: one statement (PostgreSQL)."""
    return then.add_cte(_mail_insert().returning(OutboxMessage.id).cte("mail"))


def _outbox_then(values: dict, then: Select | None, params: dict):
    """Queue the email and run ``then`` (with ``params``): one statement on PostgreSQL, where
    the INSERT is a CTE of the SELECT; two elsewhere. Returns ``then``'s rows."""
    mail = {f"m_{key}": values[key] for key in MAIL_KEYS} | {"m_now": utcnow()}
    if then is not None and db.session.get_bind().dialect.name == "postgresql":
        return db.session.execute(_with_mail(then), params | mail).all()
    db.session.execute(_mail_insert(), mail)
    return db.session.execute(then, params).all() if then is not None else None


def grade(
    course: Course,
    completion_id: int,
    grader: User,
    grade_value: int,
    comment: str | None,
    version: str,
    then: Callable[[Graded], tuple[Select, dict]] | None = None,
):
    """Grade a submission if it is still the version the grader loaded; emails the student.

    ``comment=None`` keeps the current comment (the gradebook edits grades only). One
    conditional UPDATE decides, with the grader's rule in its WHERE: if it touches no row, the
    submission is not this course's (404) or someone changed it first (StaleGrade: the caller
    shows the current state); nothing is overwritten. ``then(graded)``, if given, is the
    (SELECT, parameters) of what the answer shows: it runs in the same unit of work, with the
    email's INSERT. Returns the Graded, or (Graded, then's rows) with ``then``.
    """
    if not isinstance(grade_value, int) or not 0 <= grade_value <= 100:
        raise Invalid("A grade is a whole number from 0 to 100.", field="grade")
    if comment is not None and len(comment) > 5000:
        raise Invalid("At most 5000 characters.", field="comment")
    params = {
        "course_id": course.id,
        "completion_id": id_or_404(completion_id, "submission"),
        "loaded": _parse_version(version),
        "new_grade": grade_value,
        "now": utcnow(),
        "grader_id": grader.id,
        "comment": comment,
    }
    with unit_of_work():
        # On the session's connection: through the ORM an UPDATE's cache key is made again on
        # every execution.
        stmt = _grade_stmt(comment is not None)
        row = db.session.connection().execute(stmt, params).one_or_none()
        if row is None:
            completion_for_grader(course, completion_id)  # 404 if it is not a submission here
            raise StaleGrade()
        done = Graded(*row[:10])
        mail = render_email(
            row[10],
            "graded",
            student=SimpleNamespace(name=done.student_name),
            course=course,
            block=SimpleNamespace(title=done.block_title),
            grade=done.grade,
            comment=done.comment,
            path=f"/courses/{course.id}/blocks/{done.block_id}",
        )
        stmt, then_params = then(done) if then is not None else (None, {})
        rows = _outbox_then(mail, stmt, then_params)
    return done if then is None else (done, rows)


def grade_and_advance(
    course: Course,
    completion_id: int,
    grader: User,
    grade_value: int,
    comment: str | None,
    version: str,
    advance: bool,
) -> tuple[Graded, Submission | None, Count]:
    """Grade (see ``grade``), then the submission to show and how many wait: the next in the
    queue if ``advance`` (None when nothing is left), else the graded one.

    On PostgreSQL that is two statements: the UPDATE, then one SELECT of the next submission
    and the count with the email's INSERT (four with the session's user and the course).
    """

    def then(done: Graded) -> tuple[Select, dict]:
        if not advance:
            return _submission_stmt(count=True), {"course_id": course.id, "ident": done.id}
        params = {"course_id": course.id, "at": done.updated_at, "ref": done.id}
        return _submission_stmt(NEXT, count=True), params

    done, rows = grade(course, completion_id, grader, grade_value, comment, version, then)
    if not rows:
        return done, None, Count(0)  # nothing waits: there is no next one
    return done, Submission.of(rows[0]), Count(rows[0].waiting)
