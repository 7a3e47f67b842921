"""Learning: a student's changes in a course: enrolment, visits and completions.

What a student reads (course page, block page, a section's blocks) is
``services/learning_outline.py``; the catalogue ``services/catalogue.py``, the student's
overview ``services/my_learning.py``.
Every change is one ``unit_of_work()``. A change that depends on the course's structure holds
the course row (``access.block_for_student(hold=True)``, ``_hold_structure``) and reads again
what it is about to use, so a block or course deleted by its teacher meanwhile answers the 404 a
later request would get.

A completion or an undo is three statements after the user's: the guard (which takes the
lock), the INSERT or DELETE, and one UPDATE of the enrolment that returns everything the answer
shows (docs/learning.md, "Queries").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import cache
from urllib.parse import urlsplit

from sqlalchemy import and_, bindparam, case, delete, literal, select, update
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    CompletedContentBlock,
    Course,
    StudentCourse,
    User,
    utcnow,
)
from . import Conflict, Invalid, NotFound, insert, unit_of_work
from .access import (
    StudentBlock,
    block_for_student,
    course_for_student,
    course_for_viewer,
    is_student,
)
from .learning_outline import BlockView, Link, OutlineSection, link, neighbours
from .progress import Figures, settle, sync_course_completion

NO_COURSE = "No such course."
NO_BLOCK = "No such block."


def _hold_structure(course_id: int) -> None:
    """Keep the course's blocks still until this student's change commits.

    Authoring takes ``FOR UPDATE`` on the course row before adding or deleting a block; this
    ``FOR KEY SHARE`` conflicts only with that (students do not wait for each other). Without
    it, an enrolment and a new block committed at the same moment would each recompute
    ``completed`` without seeing the other. Taken before any other row, so it cannot deadlock
    with the teacher's delete. (A completion takes the same lock in its guard,
    ``block_for_student(hold=True)``.)

    The row is read under the lock: if the teacher deleted (or unpublished: nobody new enrols)
    the course while this waited, NotFound, before anything is written.
    """
    published = db.session.scalar(
        select(Course.is_published)
        .where(Course.id == course_id)
        .with_for_update(read=True, key_share=True)
    )
    if not published:
        raise NotFound(NO_COURSE)


# --- enrolment -----------------------------------------------------------------------------------


@unit_of_work(missing=NO_COURSE)
def enrol(course_id: int, student: User) -> None:
    """Enrol once, whatever the number of clicks; completions kept from before count again."""
    course = course_for_student(course_id, student)
    _hold_structure(course.id)
    db.session.execute(
        insert(StudentCourse)
        .values(student_id=student.id, course_id=course.id, completed=False, enrolled_at=utcnow())
        .on_conflict_do_nothing(index_elements=["student_id", "course_id"])
    )
    sync_course_completion(course.id, student.id)


@unit_of_work()
def unenrol(course_id: int, student: User) -> bool:
    """Leave a course; completions stay, so enrolling again brings the progress back.
    Returns whether the course is published (one that is not cannot be joined again)."""
    course = course_for_viewer(course_id, student)
    published = course.is_published
    if is_student(student):
        db.session.execute(
            delete(StudentCourse).where(
                StudentCourse.course_id == course.id, StudentCourse.student_id == student.id
            )
        )
    return published


@unit_of_work(missing=NO_BLOCK)
def record_visit(view: BlockView) -> None:
    """Remember the block as the student's last, for resume (only when it changes). The route
    calls it after rendering: the commit expires every row the page shows."""
    if view.enrolment.last_block_id != view.block.id:
        db.session.execute(
            update(StudentCourse)
            .where(StudentCourse.id == view.enrolment.id)
            .values(last_block_id=view.block.id)
            .execution_options(synchronize_session=False)
        )


# --- completions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockRef:
    """What a change needs of the block, copied before the commit expires the row."""

    id: int
    section_id: int
    title: str
    type: str
    is_gradable: bool


@dataclass(frozen=True)
class Work:
    """The student's completion as a change leaves it (what the fragment shows)."""

    id: int
    url: str | None
    feedback: str
    grade: int | None
    grader_comment: str
    graded_at: dt.datetime | None
    changed_since_graded: bool


@dataclass
class Change:
    """After mark complete, edit or undo: the completion fragment and its out-of-band parts
    (outline tick, section and course progress, previous/next), from the statement that made
    the change; ``refused``: the reason it was not made (409)."""

    course_id: int
    block: BlockRef
    completion: Work | None
    completed: bool = False
    figures: Figures | None = None
    section: OutlineSection | None = None
    prev: Link | None = None
    next: Link | None = None
    refused: str | None = None


def _ref(held: StudentBlock) -> BlockRef:
    b = held.block
    return BlockRef(b.id, b.section_id, b.title, b.type, b.is_gradable)


def _work(done: CompletedContentBlock | None) -> Work | None:
    if done is None:
        return None
    return Work(done.id, done.url, done.feedback, done.grade, done.grader_comment,
                done.graded_at, bool(done.changed_since_graded))  # fmt: skip


def unchanged(held: StudentBlock) -> Change:
    """The completion as the guard found it (a form sent back with its errors)."""
    return Change(held.course.id, _ref(held), _work(held.completion))


@cache
def _settle_statement(*keys: str):
    """The enrolment's UPDATE (``progress.settle``) for any block, built once per set of
    ``keys`` (the enrolment's columns it also sets) with bound parameters ``p_*`` and ``v_*``."""
    course, student, block = bindparam("p_course"), bindparam("p_student"), bindparam("p_block")
    work = aliased(CompletedContentBlock)
    mine = and_(work.student_id == student, work.content_block_id == block)
    base = neighbours(course, block).add_columns(
        work.id.label("work_id"), work.url, work.feedback, work.grade, work.grader_comment,
        work.graded_at, work.changed_since_graded.label("changed_since_graded"),
    ).outerjoin(work, mine)  # fmt: skip
    now = bindparam("p_now", type_=StudentCourse.completed_at.type)
    return settle(
        bindparam("p_enrolment"), course, student, bindparam("p_section"), now, base,
        **{key: bindparam(f"v_{key}") for key in keys},
    )  # fmt: skip


def _settle(held: StudentBlock, **values):
    """The enrolment's one UPDATE, RETURNING what the fragment shows (None: nothing updated)."""
    params = {
        "p_course": held.course.id, "p_student": held.enrolment.student_id,
        "p_block": held.block.id, "p_section": held.block.section_id,
        "p_enrolment": held.enrolment.id, "p_now": utcnow(),
    }  # fmt: skip
    params.update((f"v_{key}", value) for key, value in values.items())
    stmt = _settle_statement(*sorted(values))
    # On the session's connection: through the ORM the statement's cache key would be made
    # again for every execution (~1 ms for this one), which is what building it once saves.
    return db.session.connection().execute(stmt, params).one_or_none()


def _changed(course_id: int, ref: BlockRef, row, refused: str | None = None) -> Change:
    work = None
    if row.work_id is not None:
        work = Work(row.work_id, row.url, row.feedback, row.grade, row.grader_comment,
                    row.graded_at, bool(row.changed_since_graded))  # fmt: skip
    section = OutlineSection(ref.section_id, "", 0, row.section_total, row.section_done)
    return Change(
        course_id, ref, work, bool(row.completed), Figures(row.done, row.total), section,
        link(row.prev_id, row.prev_title), link(row.next_id, row.next_title), refused,
    )  # fmt: skip


def check_work_url(url: str | None) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if not url or parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise Invalid("Give the address of your work, starting with http:// or https://.", "url")
    return url


def _clean_work(block, url: str | None, remarks: str | None):
    if not block.is_gradable:
        return None, ""
    remarks = (remarks or "").strip()
    if len(remarks) > 5000:
        raise Invalid("Remarks can be at most 5000 characters.", "remarks")
    return check_work_url(url), remarks


def complete(held: StudentBlock, url: str | None = None, remarks: str = "") -> Change:
    """Mark the guarded block complete (once, however many requests); assignments and quizzes
    need a url. ``held`` comes from ``block_for_student(hold=True)``: the course row is held.

    Three statements after the guard's: the INSERT (skipped when the guard saw the completion),
    and the enrolment's UPDATE that reads the block again (gone: 404), sets ``last_block_id``
    and ``completed`` and returns the figures, the neighbours and the work.
    """
    url, remarks = _clean_work(held.block, url, remarks)
    course_id, student_id, ref = held.course.id, held.enrolment.student_id, _ref(held)
    with unit_of_work(missing=NO_BLOCK):
        if held.completion is None:
            now = utcnow()
            db.session.execute(
                insert(CompletedContentBlock)
                .values(
                    student_id=student_id, content_block_id=ref.id, url=url, feedback=remarks,
                    grader_comment="", completed_at=now, updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["student_id", "content_block_id"])
            )  # fmt: skip
        row = _settle(held, last_block_id=ref.id)
        if row is None:
            raise NotFound(NO_BLOCK)
    return _changed(course_id, ref, row)


GRADED_UNDO = (
    "This work has been graded, so it cannot be undone. You can still edit its url and remarks."
)


class _Refused(Conflict):
    """Raised inside a unit of work to roll it back; the service answers with the reason."""


def undo(held: StudentBlock) -> Change:
    """Take the guarded completion back, unless a teacher has graded it (``refused``).

    Only an ungraded row is deleted (in the DELETE itself, so a grade given a moment ago is
    never lost); the enrolment's UPDATE then tells whether graded work is still there.
    """
    course_id, student_id, ref = held.course.id, held.enrolment.student_id, _ref(held)
    row = None
    try:
        with unit_of_work(missing=NO_BLOCK):
            gone = db.session.execute(
                delete(CompletedContentBlock)
                .where(
                    CompletedContentBlock.content_block_id == ref.id,
                    CompletedContentBlock.student_id == student_id,
                    CompletedContentBlock.graded_at.is_(None),
                    CompletedContentBlock.grade.is_(None),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            row = _settle(held)
            if row is None:
                raise NotFound(NO_BLOCK)
            if not gone and row.work_id is not None:
                raise _Refused(GRADED_UNDO)  # the unit of work rolls back
    except _Refused as exc:
        return _changed(course_id, ref, row, refused=exc.message)
    return _changed(course_id, ref, row)


NOT_DONE = "This block is not marked complete."


def edit(held: StudentBlock, url: str | None, remarks: str) -> Change:
    """Change the url and remarks of submitted work; never the grade or the grader's comment."""
    current = unchanged(held)
    if held.completion is None:
        return replace(current, refused=NOT_DONE)
    if not held.block.is_gradable:
        return replace(current, refused="There is nothing to edit on this block.")
    url, remarks = _clean_work(held.block, url, remarks)
    if (current.completion.url, current.completion.feedback) == (url, remarks):
        return current
    w = CompletedContentBlock
    now = utcnow()
    # A grade saved while this UPDATE waited for the row may carry a later clock reading than
    # ``now``: it is dated just before the edit, so the work still reads as changed since graded
    # (the CASE is evaluated on the row as the grader committed it; docs/teaching.md).
    graded_at = case(
        (w.graded_at >= now, literal(now - dt.timedelta(microseconds=1), w.graded_at.type)),
        else_=w.graded_at,
    )
    try:
        with unit_of_work():
            # Bumping updated_at tells the teacher the work changed after it was graded.
            row = db.session.execute(
                update(w)
                .where(w.id == current.completion.id)
                .values(url=url, feedback=remarks, updated_at=now, graded_at=graded_at)
                .returning(
                    w.id,
                    w.url,
                    w.feedback,
                    w.grade,
                    w.grader_comment,
                    w.graded_at,
                    w.changed_since_graded,
                )  # fmt: skip
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if row is None:
                raise _Refused(NOT_DONE)  # undone in another tab meanwhile
    except _Refused as exc:
        return replace(current, completion=None, refused=exc.message)
    return replace(current, completion=Work(*row[:6], bool(row[6])))


# --- the same operations by ids (the seed command, tests) ---------------------------------------


def complete_block(course_id, block_id, student: User, url=None, remarks="") -> Change:
    return complete(block_for_student(course_id, block_id, student, hold=True), url, remarks)


def undo_completion(course_id, block_id, student: User) -> Change:
    change = undo(block_for_student(course_id, block_id, student, hold=True))
    if change.refused:
        raise Conflict(change.refused)
    return change


def edit_completion(course_id, block_id, student: User, url, remarks) -> Change:
    change = edit(block_for_student(course_id, block_id, student), url, remarks)
    if change.refused:
        raise Conflict(change.refused)
    return change
