"""Courses for admins: every course (drafts too) searched and paged with its owner and number
of students, and handing one course to another teacher. Deleting is ``courses.delete_course``
(which audits an admin's deletion); the course comes from ``access.course_for_manager``.

The list keeps the users table's rules (docs/admin.md): light rows (no forms; a row links to the
course's admin page with its actions), ``db.paginate`` without its exact count (ours stops at
``users.COUNT_CAP``), a search with ``icontains(autoescape=True)``, and the same few statements
whatever the number of courses or students (the count of students is one index probe a row).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Bundle

from ..extensions import db
from ..models import Course, StudentCourse, User, utcnow
from . import audit, unit_of_work
from .user_actions import receiving_teacher
from .users import COUNT_CAP, MAX_PAGE, PAGE_SIZE

STATUSES = {"published": True, "draft": False}


@dataclass
class CourseFilter:
    q: str = ""
    status: str = ""
    page: int = 1

    def __post_init__(self):
        self.q = (self.q or "").strip()[:100]
        self.status = self.status if self.status in STATUSES else ""
        self.page = min(max(int(self.page or 1), 1), MAX_PAGE)

    def args(self, **changes) -> dict:
        """Query-string arguments for a link to this listing with ``changes``."""
        values = {"q": self.q, "status": self.status, "page": self.page, **changes}
        return {k: v for k, v in values.items() if v != "" and not (k == "page" and v == 1)}


@dataclass
class CourseRow:
    id: int
    title: str
    is_published: bool
    created_at: dt.datetime
    owner_id: int
    owner_name: str
    owner_email: str
    students: int


@dataclass
class CoursePage:
    pagination: Pagination
    filter: CourseFilter
    capped: bool  # more than COUNT_CAP match

    @property
    def rows(self) -> list[CourseRow]:
        return [CourseRow(*r) for r in self.pagination.items]

    @property
    def total(self) -> int:
        return self.pagination.total or 0


def _filtered(stmt: Select, f: CourseFilter) -> Select:
    if f.q:
        cols = (Course.title, User.email, User.name)
        stmt = stmt.where(or_(*(c.icontains(f.q, autoescape=True) for c in cols)))
    if f.status:
        stmt = stmt.where(Course.is_published.is_(STATUSES[f.status]))
    return stmt


def students_of(course_id) -> Select:
    """SELECT: how many students are enrolled in the course (a value or a column)."""
    return select(func.count(StudentCourse.id)).where(StudentCourse.course_id == course_id)


def search_courses(f: CourseFilter) -> CoursePage:
    """One page of courses, newest first, and a count capped at COUNT_CAP (two statements)."""
    row = Bundle(
        "row", Course.id, Course.title, Course.is_published, Course.created_at, User.id,
        User.name, User.email, students_of(Course.id).scalar_subquery(),
    )  # fmt: skip
    stmt = _filtered(select(row).join(User, User.id == Course.user_id), f).order_by(
        Course.created_at.desc(), Course.id.desc()
    )
    pagination = db.paginate(
        stmt, page=f.page, per_page=PAGE_SIZE, max_per_page=PAGE_SIZE, error_out=False,
        count=False,
    )  # fmt: skip
    ids = _filtered(select(Course.id).join(User, User.id == Course.user_id), f)
    total = db.session.scalar(select(func.count()).select_from(ids.limit(COUNT_CAP + 1).subquery()))
    pagination.total = min(total or 0, COUNT_CAP)
    return CoursePage(pagination, f, capped=(total or 0) > COUNT_CAP)


def student_count(course: Course) -> int:
    return db.session.scalar(students_of(course.id)) or 0


@unit_of_work()
def transfer_course(actor: User, course: Course, to_email: str, ip: str) -> User:
    """Hand the course to another active teacher (audited: ``admin.course_transferred``, target
    the former owner); its sections, blocks, students and their work stay as they are."""
    to = receiving_teacher(to_email, course.user_id)
    audit.record(
        "admin.course_transferred", actor=actor, target=course.user_id, ip=ip,
        course_id=course.id, title=course.title, to_user_id=to.id, to_email=to.email,
    )  # fmt: skip
    db.session.execute(
        update(Course)
        .where(Course.id == course.id)
        .values(user_id=to.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return to
