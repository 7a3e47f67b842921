"""The catalogue: published courses, searched by title or teacher, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import contains_eager, load_only

from ..extensions import db
from ..models import Course, Section, StudentCourse, User
from .access import is_student
from .progress import block_total

PER_PAGE = 20
QUERY_MAX = 200


@dataclass
class CatalogueRow:
    course: Course
    teacher: str
    sections: int
    blocks: int
    enrolled: bool


@dataclass
class CataloguePage:
    rows: list[CatalogueRow]
    query: str
    page: int
    pages: int
    total: int


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


def _counts(course_ids: list[int], student_id: int | None) -> dict[int, tuple[int, int, bool]]:
    """Sections, blocks and "enrolled" of each course, in one query."""
    if not course_ids:
        return {}
    sections = (
        select(func.count(Section.id)).where(Section.course_id == Course.id).scalar_subquery()
    )
    blocks = block_total(Course.id).scalar_subquery()
    enrolled = exists().where(
        StudentCourse.course_id == Course.id, StudentCourse.student_id == student_id
    )
    rows = db.session.execute(
        select(Course.id, sections, blocks, enrolled).where(Course.id.in_(course_ids))
    )
    return {cid: (n_sections, n_blocks, bool(flag)) for cid, n_sections, n_blocks, flag in rows}


def catalogue(query: str, page: int, user: User | None, per_page: int = PER_PAGE) -> CataloguePage:
    """Published courses matching ``query`` (title or teacher), with counts; three queries.

    A page past the last one shows the last page (two more queries, only then).
    """
    query = (query or "").strip()[:QUERY_MAX]
    stmt = _published(query)
    found = db.paginate(stmt, page=page, per_page=per_page, error_out=False)
    if found.page > found.pages > 0:
        found = db.paginate(stmt, page=found.pages, per_page=per_page, error_out=False)
    student_id = user.id if is_student(user) else None
    counts = _counts([c.id for c in found.items], student_id)
    rows = [CatalogueRow(c, c.owner.name, *counts[c.id]) for c in found.items]
    return CataloguePage(
        rows=rows, query=query, page=found.page, pages=max(1, found.pages), total=found.total or 0
    )
