"""The progress rule: how much of a course a student has done, and when it is completed.

Every page, fragment, CSV and roster takes its figures from here, so they always agree:
``percent()`` rounds down, so 100 % means every block is done, and a course is completed
exactly when it has blocks and the student has completed every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, literal, select, true, update

from ..extensions import db
from ..models import CompletedContentBlock, ContentBlock, Section, StudentCourse, utcnow


def percent(done: int, total: int) -> int:
    """Whole percent of ``done`` out of ``total``, rounded down (0 for an empty course)."""
    return done * 100 // total if total else 0


AVERAGE_RULES = {  # the teacher's choice per course (Course.average_rule), as the pages say it
    "graded": "average of graded work",
    "zero": "missing work counts as 0",
}


def grade_average(total: int, graded: int, missing: int, rule: str) -> float | None:
    """The average of ``graded`` grades summing to ``total``, by the course's rule: ``graded``
    leaves out work not handed in, ``zero`` counts each of the ``missing`` pieces as 0. Work
    handed in and waiting for a grade is left out by both. None when nothing counts.

    The gradebook page, a cell save and the gradebook CSV all average through here."""
    count = graded + (missing if rule == "zero" else 0)
    return total / count if count else None


@dataclass(frozen=True)
class Figures:
    """How much of a course (or of one section) a student has done."""

    done: int
    total: int

    @property
    def percent(self) -> int:
        return percent(self.done, self.total)


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


def section_figures(course_id: int, student_id: int | None):
    """SELECT the course's sections in order: ``id``, ``title``, ``position``, ``total`` blocks
    and ``done`` by the student (0 without one).

    What it reads: the course's sections, one index entry per block of the course (counted
    section by section along (section_id, position)), and the student's own completions once
    (their (student_id, content_block_id) index, each completion's block by its key), grouped by
    section. Nothing of other students, and no block of another course but those the student
    completed. (Counting the student's work per section inside the section's subquery lets
    PostgreSQL hash all of their completions again for every section.)
    """
    total = (
        select(func.count())
        .select_from(ContentBlock)
        .where(ContentBlock.section_id == Section.id)
        .scalar_subquery()
    )  # count(*): the index answers alone (an index-only scan once the table is vacuumed)
    stmt = select(Section.id, Section.title, Section.position, total.label("total"))
    if student_id is None:
        stmt = stmt.add_columns(literal(0).label("done"))
    else:
        mine = (
            select(ContentBlock.section_id, func.count().label("done"))
            .select_from(CompletedContentBlock)
            .join(ContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
            .where(CompletedContentBlock.student_id == student_id)
            .group_by(ContentBlock.section_id)
            .subquery("mine")
        )
        stmt = stmt.add_columns(func.coalesce(mine.c.done, 0).label("done")).outerjoin(
            mine, mine.c.section_id == Section.id
        )
    return stmt.where(Section.course_id == course_id).order_by(Section.position, Section.id)


def _completion(total, done, now) -> dict:
    """The rule, in SQL: ``completed`` and ``completed_at`` (kept while it stays complete)."""
    is_complete = and_(total > 0, done == total)
    return {
        "completed": is_complete,
        "completed_at": case(
            (is_complete, func.coalesce(StudentCourse.completed_at, now)), else_=None
        ),
    }


def sync_course_completion(course_id: int, student_id: int | None = None) -> None:
    """Recompute ``StudentCourse.completed``/``completed_at`` for a course's enrolments.

    Call it inside the unit of work of every change that can move it (a completion, an undo, an
    enrolment, a block added or deleted); it does not commit.
    """
    total = block_total(course_id).scalar_subquery()
    done = done_count(course_id, StudentCourse.student_id).scalar_subquery()
    stmt = (
        update(StudentCourse)
        .where(StudentCourse.course_id == course_id)
        .values(**_completion(total, done, utcnow()))
        .execution_options(synchronize_session=False)
    )
    if student_id is not None:
        stmt = stmt.where(StudentCourse.student_id == student_id)
    db.session.execute(stmt)


def settle(enrolment_id, course_id, student_id, section_id, now, base, **values):
    """One UPDATE of one enrolment after its student completed or undid a block; the figures
    the answer shows come back with it (``sync_course_completion`` for one student, in the
    same statement as what the caller reads). The statement, not its result: the arguments
    may be values or bound parameters (the caller builds it once and executes it with
    parameters, which spares the milliseconds of building it on every request).

    ``base`` is the caller's SELECT of one row, with a boolean column ``present`` (the block is
    still there) and whatever else the answer shows. To it come the course's ``total`` and
    ``done`` and the section's ``section_total`` and ``section_done``, summed over
    ``section_figures`` (this course's blocks, one index entry each); the whole row is a CTE
    (computed once). The enrolment gets ``completed``/``completed_at`` by the rule and
    ``values``, only if ``present``; RETURNING ``completed`` and every column of the row.
    Executed, it gives one row, or none when nothing was updated (the block or the enrolment
    is gone).
    """
    per_section = section_figures(course_id, student_id).order_by(None).subquery()

    def summed(column, where=None):
        return func.coalesce(func.sum(column if where is None else case((where, column))), 0)

    here = per_section.c.id == section_id
    totals = select(
        summed(per_section.c.total).label("total"),
        summed(per_section.c.done).label("done"),
        summed(per_section.c.total, here).label("section_total"),
        summed(per_section.c.done, here).label("section_done"),
    ).subquery("totals")
    facts = base.add_columns(*totals.c).join(totals, true()).cte("facts")

    def fact(name: str):
        return select(facts.c[name]).scalar_subquery()

    stmt = (
        update(StudentCourse)
        .where(StudentCourse.id == enrolment_id, fact("present"))
        .values(**_completion(fact("total"), fact("done"), now), **values)
        .returning(StudentCourse.completed, *(fact(c.key).label(c.key) for c in facts.c))
        .execution_options(synchronize_session=False)
    )
    return stmt
