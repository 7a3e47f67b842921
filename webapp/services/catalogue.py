"""The catalogue: published courses, searched by title or teacher, a page at a time, shown as
cards (docs/design.md); a student can keep to the courses they are enrolled in, or the others."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import contains_eager, load_only

from ..extensions import db
from ..models import Course, Section, StudentCourse, User
from .access import is_student
from .estimates import course_minutes
from .progress import block_total, done_count, percent

PER_PAGE = 20
QUERY_MAX = 200
SHOW = ("all", "enrolled", "not-enrolled")  # the student's filter; "all" for everyone else


@dataclass
class CatalogueRow:
    """One course card: what the card shows, and the student's progress if enrolled."""

    course: Course
    teacher: str
    sections: int
    blocks: int
    enrolled: bool
    minutes: int = 0
    done: int = 0

    @property
    def percent(self) -> int:
        return percent(self.done, self.blocks)


@dataclass
class CataloguePage:
    rows: list[CatalogueRow]
    query: str
    page: int
    pages: int
    total: int
    show: str = "all"
    can_filter: bool = False


def _enrolled(student_id: int | None):
    return exists().where(
        StudentCourse.course_id == Course.id, StudentCourse.student_id == student_id
    )


def _published(query: str):
    """SELECT of the published courses matching ``query``, with their teacher, in title order."""
    stmt = (
        select(Course)
        .join(Course.owner)
        .where(Course.is_published.is_(True))
        .order_by(func.lower(Course.title), Course.id)
        .options(
            load_only(Course.id, Course.title, Course.description, Course.user_id),
            contains_eager(Course.owner).load_only(User.id, User.name),
        )
    )
    if query:
        stmt = stmt.where(
            or_(
                Course.title.icontains(query, autoescape=True),
                User.name.icontains(query, autoescape=True),
            )
        )
    return stmt


def _counts(course_ids: list[int], student_id: int | None) -> dict[int, tuple]:
    """Sections, blocks, "enrolled", estimated minutes and the student's done blocks of each
    course, in one query (the progress figures are progress.py's)."""
    if not course_ids:
        return {}
    sections = (
        select(func.count(Section.id)).where(Section.course_id == Course.id).scalar_subquery()
    )
    blocks = block_total(Course.id).scalar_subquery()
    minutes = course_minutes(Course.id).scalar_subquery()
    done = done_count(Course.id, student_id).scalar_subquery()
    rows = db.session.execute(
        select(Course.id, sections, blocks, _enrolled(student_id), minutes, done).where(
            Course.id.in_(course_ids)
        )
    )
    return {
        cid: (n_sections, n_blocks, bool(flag), int(n_minutes or 0), n_done)
        for cid, n_sections, n_blocks, flag, n_minutes, n_done in rows
    }


def catalogue(
    query: str, page: int, user: User | None, per_page: int = PER_PAGE, show: str = "all"
) -> CataloguePage:
    """Published courses matching ``query`` (title or teacher), with counts; three queries.

    ``show`` ("enrolled", "not-enrolled") keeps a student to their courses or the others; for
    anyone else it is "all". A page past the last one shows the last page (two more queries,
    only then).
    """
    query = (query or "").strip()[:QUERY_MAX]
    can_filter = is_student(user)
    show = show if can_filter and show in SHOW else "all"
    stmt = _published(query)
    if show != "all":
        mine = _enrolled(user.id)
        stmt = stmt.where(mine if show == "enrolled" else ~mine)
    found = db.paginate(stmt, page=page, per_page=per_page, error_out=False)
    if found.page > found.pages > 0:
        found = db.paginate(stmt, page=found.pages, per_page=per_page, error_out=False)
    student_id = user.id if is_student(user) else None
    counts = _counts([c.id for c in found.items], student_id)
    rows = [CatalogueRow(c, c.owner.name, *counts[c.id]) for c in found.items]
    return CataloguePage(
        rows=rows,
        query=query,
        page=found.page,
        pages=max(1, found.pages),
        total=found.total or 0,
        show=show,
        can_filter=can_filter,
    )
