"""Finding and showing users for the admin: the users table, the selection of a bulk action,
the detail page and what a deletion would take with it. Nothing here writes; the changes are in
``user_actions.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, case, func, or_, select

from .. import sessions
from ..extensions import db
from ..models import (
    AuditEvent,
    CompletedContentBlock,
    Course,
    Role,
    StudentCourse,
    User,
)
from . import NotFound, accounts, id_or_404, progress
from .access import user_for_admin

ROLES = tuple(str(r) for r in Role)
STATUSES = ("active", "pending", "deactivated", "requested")  # requested: asks to teach
PAGE_SIZE = 50
MAX_PAGE = 200  # bounded offset: at most 10,000 rows deep; beyond that, narrow the search
COUNT_CAP = MAX_PAGE * PAGE_SIZE  # counts stop here ("10,000+"): a count never scans the table
BULK_MAX = 500

_STATUS_ORDER = case(
    (User.is_active.is_(True), 0),
    (User.activated_at.is_(None), 1),
    else_=2,
)
SORTS = {
    "email": User.email,
    "name": User.name,
    "role": User.role,
    "status": _STATUS_ORDER,
    "created": User.created_at,
    "last_login": User.last_login_at,
}


# --- the users table -----------------------------------------------------------------------------


@dataclass
class UserFilter:
    q: str = ""
    role: str = ""
    status: str = ""
    sort: str = "created"
    direction: str = "desc"
    page: int = 1

    def __post_init__(self):
        self.q = (self.q or "").strip()[:100]
        self.role = self.role if self.role in ROLES else ""
        self.status = self.status if self.status in STATUSES else ""
        self.sort = self.sort if self.sort in SORTS else "created"
        self.direction = self.direction if self.direction in ("asc", "desc") else "desc"
        self.page = min(max(int(self.page or 1), 1), MAX_PAGE)

    def args(self, **changes) -> dict:
        """Query-string arguments for a link to this listing with ``changes``."""
        values = {
            "q": self.q,
            "role": self.role,
            "status": self.status,
            "sort": self.sort,
            "dir": self.direction,
            "page": self.page,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v != "" and not (k == "page" and v == 1)}


@dataclass
class UserPage:
    """One page of the users table: Flask-SQLAlchemy's page, whose total stops at COUNT_CAP."""

    pagination: Pagination
    filter: UserFilter
    capped: bool  # more than COUNT_CAP match: the total reads "10,000+"

    @property
    def users(self) -> list[User]:
        return self.pagination.items

    @property
    def total(self) -> int:
        return self.pagination.total or 0

    @property
    def has_prev(self) -> bool:
        return self.pagination.has_prev

    @property
    def has_next(self) -> bool:  # never past MAX_PAGE: the capped total has MAX_PAGE pages
        return self.pagination.has_next

    @property
    def truncated(self) -> bool:
        """More rows exist past MAX_PAGE: narrow the search to see them."""
        return self.capped and self.filter.page >= MAX_PAGE

    @property
    def first_index(self) -> int:
        return self.pagination.first

    @property
    def last_index(self) -> int:
        return self.pagination.last


def _filtered(stmt: Select, f: UserFilter) -> Select:
    if f.q:
        # ILIKE on PostgreSQL, which the trigram indexes on email and name serve.
        stmt = stmt.where(
            or_(*(c.icontains(f.q, autoescape=True) for c in (User.email, User.name)))
        )
    if f.role:
        stmt = stmt.where(User.role == f.role)
    if f.status == "active":
        stmt = stmt.where(User.is_active.is_(True))
    elif f.status == "pending":
        stmt = stmt.where(User.is_active.is_(False), User.activated_at.is_(None))
    elif f.status == "deactivated":
        stmt = stmt.where(User.is_active.is_(False), User.activated_at.is_not(None))
    elif f.status == "requested":  # the partial index ix_users_teacher_requests
        stmt = stmt.where(User.teacher_requested_at.is_not(None))
    return stmt


def search_statement(f: UserFilter) -> Select:
    """The users matching the filter, in its order (the id breaks ties, so pages are stable)."""
    column = SORTS[f.sort]
    order = column.asc() if f.direction == "asc" else column.desc()
    tiebreak = User.id.asc() if f.direction == "asc" else User.id.desc()
    if f.sort == "last_login":
        order = order.nulls_last()
    return _filtered(select(User), f).order_by(order, tiebreak)


def count_statement(f: UserFilter) -> Select:
    """How many users match, counting no further than COUNT_CAP + 1."""
    capped_ids = _filtered(select(User.id), f).limit(COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(capped_ids)


def search_users(f: UserFilter, per_page: int = PAGE_SIZE) -> UserPage:
    """One page of users matching the filter, and a count capped at COUNT_CAP (two queries)."""
    pagination = db.paginate(
        search_statement(f),
        page=f.page,
        per_page=per_page,
        max_per_page=max(per_page, PAGE_SIZE),
        error_out=False,
        count=False,  # Flask-SQLAlchemy's count is exact; ours stops at COUNT_CAP
    )
    total = db.session.scalar(count_statement(f)) or 0
    pagination.total = min(total, COUNT_CAP)
    return UserPage(pagination, f, capped=total > COUNT_CAP)


# --- the selection of a bulk action --------------------------------------------------------------


def _valid_ids(values) -> list[int]:
    """The values that are user ids; others are dropped, like the ids of deleted users."""
    ids = set()
    for value in values:
        try:
            ids.add(id_or_404(value, "user"))
        except NotFound:
            continue
    return sorted(ids)


def users_by_ids(ids) -> list[User]:
    """The selected users (at most BULK_MAX), from ids as the form sent them."""
    ids = _valid_ids(ids)[:BULK_MAX]
    if not ids:
        return []
    return list(db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.email)))


# --- courses owned, and what a deletion takes with it ---------------------------------------------


def courses_owned(user_ids) -> dict[int, int]:
    """How many courses each of these users owns (owners only)."""
    ids = list(user_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Course.user_id, func.count()).where(Course.user_id.in_(ids)).group_by(Course.user_id)
    )
    return dict(rows.all())


def _courses_of(user: User) -> list[Course]:
    return list(
        db.session.scalars(select(Course).where(Course.user_id == user.id).order_by(Course.title))
    )


@dataclass
class DeletionImpact:
    courses: list[Course]
    enrolments: int
    completions: int


def deletion_impact(user: User) -> DeletionImpact:
    enrolments = db.session.scalar(
        select(func.count()).select_from(StudentCourse).where(StudentCourse.student_id == user.id)
    )
    completions = db.session.scalar(
        select(func.count())
        .select_from(CompletedContentBlock)
        .where(CompletedContentBlock.student_id == user.id)
    )
    return DeletionImpact(_courses_of(user), enrolments or 0, completions or 0)


# --- the user detail page ------------------------------------------------------------------------


@dataclass
class Enrolment:
    """A course the user is enrolled in, with their progress by the one progress rule."""

    course: Course
    completed: bool
    done: int
    total: int
    percent: int


@dataclass
class UserOverview:
    user: User
    sessions: list  # (public handle, SessionInfo) pairs
    courses: list[Course]
    enrolments: list[Enrolment]
    events: list[AuditEvent] = field(default_factory=list)


def _enrolments(user: User) -> list[Enrolment]:
    """The user's latest 200 enrolments with their progress, in one query."""
    total = progress.block_total(Course.id).scalar_subquery()
    done = progress.done_count(Course.id, user.id).scalar_subquery()
    rows = db.session.execute(
        select(StudentCourse.completed, Course, done, total)
        .join(Course, Course.id == StudentCourse.course_id)
        .where(StudentCourse.student_id == user.id)
        .order_by(StudentCourse.enrolled_at.desc())
        .limit(200)
    ).all()
    return [Enrolment(c, completed, d, t, progress.percent(d, t)) for completed, c, d, t in rows]


def user_overview(user_id: int) -> UserOverview:
    """Everything the detail page shows, in a fixed number of queries."""
    user = user_for_admin(user_id)
    events = list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_user_id == user.id)
            .order_by(AuditEvent.id.desc())
            .limit(20)
        )
    )
    live = [(accounts.session_id(s.jti), s) for s in sessions.store().list_for_user(user.id)]
    return UserOverview(user, live, _courses_of(user), _enrolments(user), events)
