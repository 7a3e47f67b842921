"""The grading queue of a course: what waits for a grade, in which order, and how many.

The queue is the course's work waiting for a grade (``models.WAITING``) on gradable blocks, by
enrolled students, oldest first by ``(updated_at, id)``. It is read as a merge of one ordered
list per gradable block, which the partial index ``ix_completed_content_blocks_waiting``
(block, updated_at, id, student) holds: "the first one after this key" is one index probe per
gradable block of the course (its *head*), never a scan of the course's completions. Counts
stop at ``COUNT_CAP`` (docs/teaching.md says why). Every function takes the id of a course the
caller got from ``access.course_for_owner``.

The statements are built once (they take their values as bound parameters): building a SELECT
of this size costs more Python time than PostgreSQL needs to run it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import GRADABLE, CompletedContentBlock, ContentBlock, Course, Section, User
from .access import enrolled

QUEUE_LIST = 50  # the queue's oldest submissions, listed beside the panel
COUNT_CAP = 100  # counts stop here: "100+"

CCB = CompletedContentBlock


class Count(int):
    """A number of submissions, counted up to COUNT_CAP: beyond it, it reads "100+"."""

    @property
    def capped(self) -> bool:
        return self > COUNT_CAP

    def __str__(self) -> str:
        return f"{COUNT_CAP:,}+" if self.capped else f"{int(self):,}"


COURSE = bindparam("course_id", type_=Integer)
AT = bindparam("at", type_=CCB.updated_at.type)  # a submission's key: (updated_at, id)
REF = bindparam("ref", type_=Integer)


def _waiting(c) -> ColumnElement[bool]:
    """``models.WAITING`` in SQL: the partial index's predicate, so the index serves it."""
    return or_(c.grade.is_(None), c.graded_at.is_(None), c.updated_at > c.graded_at)


def _head(block_id, *, after: bool = False, backwards: bool = False, exclude: bool = False):
    """SQL: the id of the block's first waiting submission (after the key (AT, REF) if
    ``after``; the last one before it if ``backwards``; never REF if ``exclude``): one index
    probe. The enrolment check is a subquery per row (``access.enrolled``), so only the rows
    the probe passes over are checked, never the course's enrolments."""
    c = aliased(CCB)
    stmt = select(c.id).where(
        c.content_block_id == block_id, _waiting(c), enrolled(COURSE, c.student_id)
    )
    if after:
        key = tuple_(c.updated_at, c.id)
        stmt = stmt.where(key < tuple_(AT, REF) if backwards else key > tuple_(AT, REF))
    if exclude:
        stmt = stmt.where(c.id != REF)
    order = (c.updated_at.desc(), c.id.desc()) if backwards else (c.updated_at, c.id)
    return stmt.order_by(*order).limit(1).scalar_subquery()


def _heads(name: str, **kw):
    """CTE: (block_id, id, updated_at) of the head of each gradable block that has one.

    Materialized, so each head is probed once; its key is read by primary key (a join could
    be planned as a hash join over every completion).
    """
    found = (
        select(ContentBlock.id.label("block_id"), _head(ContentBlock.id, **kw).label("id"))
        .join(Section, ContentBlock.section_id == Section.id)
        .where(Section.course_id == COURSE, ContentBlock.type.in_(GRADABLE))
        .cte(f"{name}_found")
        .prefix_with("MATERIALIZED")
    )
    c = aliased(CCB)
    at = select(c.updated_at).where(c.id == found.c.id).scalar_subquery()
    return (
        select(found.c.block_id, found.c.id, at.label("updated_at"))
        .where(found.c.id.is_not(None))
        .cte(name)
    )


def _first(name: str, *, backwards: bool = False, **kw):
    """SQL: the queue's first submission (``_head``'s arguments): the smallest of the heads,
    or the largest with ``backwards``."""
    heads = _heads(name, backwards=backwards, **kw)
    order = (heads.c.updated_at, heads.c.id)
    if backwards:
        order = (heads.c.updated_at.desc(), heads.c.id.desc())
    return select(heads.c.id).order_by(*order).limit(1).scalar_subquery()


NEXT = "next"  # after (AT, REF), else the oldest other one: the queue wraps round
PREVIOUS = "previous"  # before (AT, REF); none for the oldest


def neighbour_of(which: str):
    """SQL: the id of the NEXT or PREVIOUS submission around the key (AT, REF)."""
    if which == PREVIOUS:
        return _first("before", after=True, backwards=True)
    return func.coalesce(_first("after", after=True), _first("oldest", exclude=True))


def count_of(course_id=COURSE, per_course: bool = False):
    """SQL: how many submissions wait, counted up to COUNT_CAP + 1 (constant work).
    ``per_course``: ``course_id`` is the ``Course.id`` of the outer query."""
    c = aliased(CCB)
    found = (
        select(literal(1))
        .select_from(c)
        .join(ContentBlock, ContentBlock.id == c.content_block_id)
        .join(Section, ContentBlock.section_id == Section.id)
        .where(
            Section.course_id == course_id,
            ContentBlock.type.in_(GRADABLE),
            _waiting(c),
            enrolled(course_id, c.student_id),
        )
        .limit(COUNT_CAP + 1)
    )
    if per_course:
        found = found.correlate(Course)
    return select(func.count()).select_from(found.subquery()).scalar_subquery()


@cache
def _count_stmt() -> Select:
    return select(count_of())


@cache
def _counts_stmt() -> Select:
    return select(Course.id, count_of(Course.id, per_course=True)).where(
        Course.user_id == bindparam("owner_id", type_=Integer)
    )


def queue_count(course_id: int) -> Count:
    return Count(db.session.scalar(_count_stmt(), {"course_id": course_id}))


def queue_counts(owner: User) -> dict[int, Count]:
    """Submissions waiting for a grade, per course of ``owner`` (for a dashboard)."""
    rows = db.session.execute(_counts_stmt(), {"owner_id": owner.id})
    return {course_id: Count(n) for course_id, n in rows}


@dataclass
class QueueItem:
    id: int
    student_name: str
    block_title: str
    updated_at: dt.datetime
    regrade: bool


END = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)  # a key after every submission's
LAST_ID = 2**31 - 1


@cache
def _queue_stmt(lateral: bool) -> Select:
    """The QUEUE_LIST oldest submissions, with the count.

    They can only come from the blocks of the QUEUE_LIST oldest heads, each block giving at
    most QUEUE_LIST of them; and if there are that many heads, none is newer than the last of
    them. So: the heads, then from each of those blocks its first rows up to that bound (a
    range of the index; on PostgreSQL a LATERAL LIMIT per block), sorted. ``lateral``: the
    database has LATERAL (SQLite has not; it reads those blocks' rows up to the bound).
    """
    heads = _heads("heads")
    top = (
        select(heads).order_by(heads.c.updated_at, heads.c.id).limit(QUEUE_LIST).cte("oldest_heads")
    )
    full = select(func.count()).select_from(top).scalar_subquery() >= QUEUE_LIST
    last = (
        select(top.c.updated_at, top.c.id)
        .order_by(top.c.updated_at.desc(), top.c.id.desc())
        .limit(1)
        .subquery()
    )
    bound = select(
        case((full, last.c.updated_at), else_=literal(END, CCB.updated_at.type)).label("at"),
        case((full, last.c.id), else_=LAST_ID).label("id"),
    ).cte("bound")
    c = aliased(CCB)
    rows = select(c.id, c.updated_at, c.graded_at, c.student_id, c.content_block_id).where(
        c.content_block_id == top.c.block_id,
        _waiting(c),
        tuple_(c.updated_at, c.id) <= tuple_(bound.c.at, bound.c.id),
        enrolled(COURSE, c.student_id),
    )
    if lateral:
        rows = rows.order_by(c.updated_at, c.id).limit(QUEUE_LIST)
    rows = rows.lateral("rows") if lateral else rows.subquery("rows")
    picked = (
        select(rows)
        .select_from(top)
        .join(bound, literal(True))
        .join(rows, literal(True) if lateral else rows.c.content_block_id == top.c.block_id)
        .order_by(rows.c.updated_at, rows.c.id)
        .limit(QUEUE_LIST)
        .cte("picked")
    )
    # The names of the fifty, each by its key (a join could be planned as a hash of every user).
    name = select(User.name).where(User.id == picked.c.student_id).scalar_subquery()
    title = select(ContentBlock.title).where(ContentBlock.id == picked.c.content_block_id)
    return select(
        picked.c.id,
        name,
        title.scalar_subquery(),
        picked.c.updated_at,
        picked.c.graded_at,
        count_of().label("waiting"),
    ).order_by(picked.c.updated_at, picked.c.id)


def queue_list(course_id: int) -> tuple[list[QueueItem], Count]:
    """The QUEUE_LIST oldest submissions and how many wait, in one statement."""
    lateral = db.session.get_bind().dialect.name == "postgresql"
    rows = db.session.execute(_queue_stmt(lateral), {"course_id": course_id}).all()
    if not rows:
        return [], Count(0)  # no block has a head: nothing waits
    items = [QueueItem(r[0], r[1], r[2], r[3], r[4] is not None) for r in rows]
    return items, Count(rows[0].waiting)
