"""CSV exports of a course: the gradebook and every completion, streamed, formula-safe.

Every function takes a course the caller got from ``access.course_for_owner``. Rows are read
through a server-side cursor and written a chunk at a time, so memory stays flat.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from itertools import groupby

from sqlalchemy import and_, select

from ..extensions import db
from ..models import GRADABLE, ContentBlock, Course, Section, StudentCourse, User
from ..models import CompletedContentBlock as CCB
from .access import enrolled_work
from .gradebook import course_blocks
from .progress import (
    AVERAGE_RULES,
    block_ids,
    block_total,
    done_per_student,
    grade_average,
    percent,
)

_FORMULA = frozenset("=+-@\t\r")


def csv_safe(value) -> object:
    """Neutralise spreadsheet formulas: text starting with = + - @ (or tab/CR) gets a quote."""
    if isinstance(value, str) and value[:1] in _FORMULA:
        return "'" + value
    return value


class _Rows:
    """csv.writer into a small buffer, handed out every ``flush_every`` rows."""

    def __init__(self, flush_every: int = 200):
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, lineterminator="\r\n")
        self.flush_every = flush_every
        self.pending = 0

    def add(self, row) -> str | None:
        self.writer.writerow([csv_safe(v) for v in row])
        self.pending += 1
        return self.take() if self.pending >= self.flush_every else None

    def take(self) -> str:
        text = self.buf.getvalue()
        self.buf.seek(0)
        self.buf.truncate()
        self.pending = 0
        return text


def _stream(header: list[str], stmt, row_of) -> Iterator[str]:
    """The header (with a BOM, so spreadsheets read UTF-8), then ``row_of`` each result row."""
    out = _Rows()
    out.add(header)
    yield "\ufeff" + out.take()
    result = db.session.execute(stmt)
    try:
        for row in row_of(result):
            chunk = out.add(row)
            if chunk:
                yield chunk
        yield out.take()
    finally:
        result.close()


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat(sep=" ", timespec="seconds") if value else ""


def _fmt_avg(value) -> str:
    return "" if value is None else f"{float(value):.1f}"


def gradebook_csv(course: Course, chunk: int = 1000) -> Iterator[str]:
    """The gradebook, one line per enrolled student, streamed (a server-side cursor).

    Columns: student, email, one per gradable block (the grade, empty if none), average by the
    course's rule (``progress.grade_average``, as the gradebook page), named in its header.
    """
    rule = course.average_rule
    blocks = course_blocks(course.id, gradable_only=True)
    index = {b.id: i for i, b in enumerate(blocks)}
    gradable = block_ids(course.id).where(ContentBlock.type.in_(GRADABLE))
    stmt = (
        select(User.id, User.name, User.email, CCB.content_block_id, CCB.grade)
        .select_from(StudentCourse)
        .join(User, User.id == StudentCourse.student_id)
        .outerjoin(
            CCB,
            and_(CCB.student_id == User.id, CCB.content_block_id.in_(gradable)),
        )
        .where(StudentCourse.course_id == course.id)
        .order_by(User.name, User.id)
        .execution_options(yield_per=chunk)
    )

    def rows(result):
        for (_sid, name, email), grades_of in groupby(result, key=lambda r: (r[0], r[1], r[2])):
            grades: list = [""] * len(blocks)
            total = graded = handed_in = 0
            for *_, bid, g in grades_of:
                if bid is not None and bid in index:
                    handed_in += 1
                    if g is not None:
                        grades[index[bid]] = g
                        total += g
                        graded += 1
            average = grade_average(total, graded, len(blocks) - handed_in, rule)
            yield [name, email, *grades, _fmt_avg(average)]

    header = ["Student", "Email", *[b.title for b in blocks], f"Average ({AVERAGE_RULES[rule]})"]
    return _stream(header, stmt, rows)


PROGRESS_HEADER = [
    "Student",
    "Email",
    "Section",
    "Block",
    "Type",
    "Completed at",
    "Updated at",
    "Grade",
    "Graded at",
    "Comment",
    "Course progress (%)",
]


def progress_csv(course: Course, chunk: int = 1000) -> Iterator[str]:
    """Every completion of every enrolled student, one line each, with the student's course
    progress (the same rounded-down percent as every page), streamed."""
    total = db.session.scalar(block_total(course.id))
    done = done_per_student(course.id)
    stmt = (
        enrolled_work(
            User.name,
            User.email,
            Section.title,
            ContentBlock.title,
            ContentBlock.type,
            CCB.completed_at,
            CCB.updated_at,
            CCB.grade,
            CCB.graded_at,
            CCB.grader_comment,
            done.c.done,
        )
        .join(User, User.id == CCB.student_id)
        .join(done, done.c.student_id == CCB.student_id)
        .where(Section.course_id == course.id)
        .order_by(User.name, User.id, Section.position, ContentBlock.position, CCB.id)
        .execution_options(yield_per=chunk)
    )

    def rows(result):
        for name, email, section, block, kind, completed, updated, g, graded, note, n in result:
            yield [
                name,
                email,
                section,
                block,
                kind,
                _iso(completed),
                _iso(updated),
                "" if g is None else g,
                _iso(graded),
                note or "",
                percent(n, total),
            ]

    return _stream(PROGRESS_HEADER, stmt, rows)
