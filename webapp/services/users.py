"""Administration of users: search, row and bulk actions, deletion, the audit log.

Every action takes the acting admin, records an audit event in the same transaction and commits
once. A role change, deactivation or deletion also ends the target's live sessions (after the
commit, since the session store is outside the database transaction) and bumps their epoch, so it
takes effect on their very next request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from sqlalchemy import Select, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from .. import sessions
from ..extensions import db
from ..models import (
    AuditEvent,
    CompletedContentBlock,
    ContentBlock,
    Course,
    Role,
    Section,
    StudentCourse,
    User,
    utcnow,
)
from . import Conflict, DomainError, Invalid, NotAllowed, NotFound, accounts, audit, id_or_404
from .access import user_for_admin
from .progress import percent

ROLES = tuple(str(r) for r in Role)
STATUSES = ("active", "pending", "deactivated")
PAGE_SIZE = 50
MAX_PAGE = 200  # bounded offset: at most 10,000 rows deep; beyond that, narrow the search
COUNT_CAP = 10_000  # counts stop here ("10,000+") so a count never scans the whole table
AUDIT_PAGE_SIZE = 50
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
BULK_ACTIONS = {
    "deactivate": "Deactivate",
    "activate": "Activate or reactivate",
    "role:student": "Make student",
    "role:teacher": "Make teacher",
    "role:admin": "Make admin",
}


def like_pattern(term: str) -> str:
    """A LIKE pattern matching ``term`` anywhere, with LIKE's wildcards taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


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
    users: list[User]
    total: int
    capped: bool
    filter: UserFilter
    has_next: bool
    truncated: bool = False  # more rows exist past MAX_PAGE: narrow the search to see them

    @property
    def has_prev(self) -> bool:
        return self.filter.page > 1

    @property
    def first_index(self) -> int:
        return (self.filter.page - 1) * PAGE_SIZE + 1 if self.users else 0

    @property
    def last_index(self) -> int:
        return (self.filter.page - 1) * PAGE_SIZE + len(self.users)


def _filtered(stmt: Select, f: UserFilter) -> Select:
    if f.q:
        pattern = like_pattern(f.q.lower())
        # Emails are stored lower-cased; both columns carry trigram indexes on PostgreSQL.
        stmt = stmt.where(
            or_(User.email.like(pattern, escape="\\"), User.name.ilike(pattern, escape="\\"))
        )
    if f.role:
        stmt = stmt.where(User.role == f.role)
    if f.status == "active":
        stmt = stmt.where(User.is_active.is_(True))
    elif f.status == "pending":
        stmt = stmt.where(User.is_active.is_(False), User.activated_at.is_(None))
    elif f.status == "deactivated":
        stmt = stmt.where(User.is_active.is_(False), User.activated_at.is_not(None))
    return stmt


def search_users(f: UserFilter) -> UserPage:
    """One page of users matching the filter, and a count capped at COUNT_CAP (two queries)."""
    column = SORTS[f.sort]
    order = column.asc() if f.direction == "asc" else column.desc()
    tiebreak = User.id.asc() if f.direction == "asc" else User.id.desc()
    if f.sort == "last_login":
        order = order.nulls_last()
    stmt = (
        _filtered(select(User), f)
        .order_by(order, tiebreak)
        .offset((f.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    rows = list(db.session.scalars(stmt))
    capped_ids = _filtered(select(User.id), f).limit(COUNT_CAP + 1).subquery()
    total = db.session.scalar(select(func.count()).select_from(capped_ids)) or 0
    return UserPage(
        users=rows[:PAGE_SIZE],
        total=min(total, COUNT_CAP),
        capped=total > COUNT_CAP,
        filter=f,
        has_next=len(rows) > PAGE_SIZE and f.page < MAX_PAGE,
        truncated=len(rows) > PAGE_SIZE and f.page >= MAX_PAGE,
    )


def _refusals_roll_back(action):
    """A refused action leaves nothing behind: roll back (and so release any row locks), then
    let the domain error through to the route."""

    @functools.wraps(action)
    def run(*args, **kwargs):
        try:
            return action(*args, **kwargs)
        except DomainError:
            db.session.rollback()
            raise

    return run


# --- course owners stay teachers (or admins) -----------------------------------------------------


class OwnsCourses(Conflict):
    """Making a course owner a student is refused; ``user_ids`` names the owners."""

    def __init__(self, message: str, user_ids: list[int]):
        super().__init__(message)
        self.user_ids = user_ids


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def courses_owned(user_ids) -> dict[int, int]:
    """How many courses each of these users owns (owners only)."""
    ids = list(user_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Course.user_id, func.count()).where(Course.user_id.in_(ids)).group_by(Course.user_id)
    )
    return dict(rows.all())


def _ensure_no_owner_becomes_student(users: list[User], role: str) -> None:
    """A student cannot run courses: the courses must be transferred first. (Admins may own
    courses: they can manage any course anyway, so a promotion keeps them.)"""
    if role != Role.STUDENT:
        return
    owned = courses_owned(u.id for u in users)
    owners = [u for u in users if owned.get(u.id)]
    if not owners:
        return
    if len(users) == 1:
        (user,) = owners
        raise OwnsCourses(
            f"{user.email} owns {_plural(owned[user.id], 'course')}: transfer them to another "
            "teacher before making this account a student.",
            [user.id],
        )
    named = ", ".join(f"{u.email} ({_plural(owned[u.id], 'course')})" for u in owners[:5])
    more = f" and {len(owners) - 5} more" if len(owners) > 5 else ""
    raise OwnsCourses(
        f"Nothing was changed: {_plural(len(owners), 'selected user')} "
        f"{'owns' if len(owners) == 1 else 'own'} courses: "
        f"{named}{more}. Transfer their courses to another teacher first.",
        [u.id for u in owners],
    )


# --- the last-admin rule -------------------------------------------------------------------------


def _ensure_admins_remain(removed_ids: set[int]) -> None:
    """Refuse a change that would leave no active admin.

    The active admins are locked (SELECT … FOR UPDATE on PostgreSQL) for the rest of the
    transaction, so two admins demoting each other at once cannot both succeed.
    """
    if not removed_ids:
        return
    stmt = (
        select(User.id)
        .where(User.role == Role.ADMIN, User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    )
    active_admins = set(db.session.scalars(stmt))
    if active_admins and not (active_admins - removed_ids):
        raise Conflict("This would leave Lectern without an active admin, so it was not done.")


def _kick(user: User) -> None:
    """The user's current sessions stop working on their next request (epoch; caller commits)."""
    accounts.end_all_sessions(user)


def _drop_live_sessions(user_ids) -> None:
    store = sessions.store()
    for user_id in user_ids:
        store.delete_for_user(user_id)


# --- row actions ---------------------------------------------------------------------------------


@_refusals_roll_back
def change_role(actor: User, user_id: int, role: str, ip: str) -> User:
    if role not in ROLES:
        raise Invalid("Choose a role.", field="role")
    user = user_for_admin(user_id)
    if user.role == role:
        return user
    _ensure_no_owner_becomes_student([user], role)
    if user.role == Role.ADMIN:
        _ensure_admins_remain({user.id})
    old = user.role
    user.role = role
    _kick(user)
    audit.record("admin.role_changed", actor=actor, target=user, ip=ip, old=old, new=role)
    db.session.commit()
    _drop_live_sessions([user.id])
    return user


@_refusals_roll_back
def deactivate(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    if not user.is_active:
        raise Conflict("This account is not active.")
    if user.role == Role.ADMIN:
        _ensure_admins_remain({user.id})
    user.is_active = False
    if user.activated_at is None:
        user.activated_at = utcnow()  # a deactivated account, not a pending one
    _kick(user)
    audit.record("admin.deactivated", actor=actor, target=user, ip=ip)
    db.session.commit()
    _drop_live_sessions([user.id])
    return user


@_refusals_roll_back
def reactivate(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    if user.is_active or user.activated_at is None:
        raise Conflict("Only a deactivated account can be reactivated.")
    user.is_active = True
    audit.record("admin.reactivated", actor=actor, target=user, ip=ip)
    db.session.commit()
    return user


@_refusals_roll_back
def activate(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    if user.is_active or user.activated_at is not None:
        raise Conflict("Only a pending account can be activated.")
    user.is_active = True
    user.activated_at = utcnow()
    audit.record("admin.activated", actor=actor, target=user, ip=ip)
    db.session.commit()
    return user


@_refusals_roll_back
def end_sessions(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    _kick(user)
    audit.record("admin.sessions_ended", actor=actor, target=user, ip=ip)
    db.session.commit()
    _drop_live_sessions([user.id])
    return user


@_refusals_roll_back
def end_session(actor: User, user_id: int, sid: str, ip: str) -> User:
    """End one live session of the user, named by its public handle (never the jti)."""
    user = user_for_admin(user_id)
    store = sessions.store()
    live = {accounts.session_id(s.jti): s for s in store.list_for_user(user.id)}
    if not sid or sid not in live:
        raise NotFound("That session has already ended.")
    ended = live[sid]
    store.delete(ended.jti)
    audit.record(
        "admin.session_ended",
        actor=actor,
        target=user,
        ip=ip,
        session_ip=ended.ip,
        started=ended.created_at.isoformat(),
    )
    db.session.commit()
    return user


@_refusals_roll_back
def send_reset(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    if not user.is_active:
        raise Conflict("Password reset links go to active accounts only.")
    accounts.send_password_reset_email(user)
    audit.record("admin.reset_sent", actor=actor, target=user, ip=ip)
    db.session.commit()
    return user


@_refusals_roll_back
def send_activation(actor: User, user_id: int, ip: str) -> User:
    """Resend the activation link; an account without a password gets the invitation again."""
    user = user_for_admin(user_id)
    if user.is_active or user.activated_at is not None:
        raise Conflict("Only a pending account has an activation link.")
    if user.password_hash:
        accounts.send_activation_email(user)
    else:
        accounts.send_invitation_email(user)
    audit.record("admin.activation_sent", actor=actor, target=user, ip=ip)
    db.session.commit()
    return user


@_refusals_roll_back
def create_user(actor: User, email: str, name: str, role: str, ip: str) -> User:
    """A pending account without a password; the person is invited to set one."""
    email = accounts.normalise_email(email)
    if role not in ROLES:
        raise Invalid("Choose a role.", field="role")
    if not name.strip():
        raise Invalid("Enter a name.", field="name")
    taken = Invalid("An account with this email already exists.", field="email")
    if accounts.find_by_email(email) is not None:
        raise taken
    user = accounts.create_user(email, name, None, role=role, active=False)
    try:
        db.session.flush()
    except IntegrityError:  # created at the same moment by another request: the unique index
        raise taken from None
    accounts.send_invitation_email(user)
    audit.record("admin.user_created", actor=actor, target=user, ip=ip, role=role)
    db.session.commit()
    return user


# --- bulk actions --------------------------------------------------------------------------------


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


@_refusals_roll_back
def bulk(actor: User, ids, action: str, ip: str) -> int:
    """Apply ``action`` to every selected user in one transaction; returns how many changed."""
    if action not in BULK_ACTIONS:
        raise Invalid("Choose an action.", field="action")
    users = users_by_ids(ids)
    if not users:
        raise Invalid("Select at least one user.", field="user_ids")
    changed: list[User] = []
    if action == "deactivate":
        targets = [u for u in users if u.is_active]
        _ensure_admins_remain({u.id for u in targets if u.role == Role.ADMIN})
        for user in targets:
            user.is_active = False
            user.activated_at = user.activated_at or utcnow()
            _kick(user)
            audit.record("admin.deactivated", actor=actor, target=user, ip=ip, bulk=True)
        changed = targets
    elif action == "activate":
        for user in [u for u in users if not u.is_active]:
            kind = "admin.reactivated" if user.activated_at else "admin.activated"
            user.is_active = True
            user.activated_at = user.activated_at or utcnow()
            audit.record(kind, actor=actor, target=user, ip=ip, bulk=True)
            changed.append(user)
    else:
        role = action.split(":", 1)[1]
        targets = [u for u in users if u.role != role]
        _ensure_no_owner_becomes_student(targets, role)
        _ensure_admins_remain({u.id for u in targets if u.role == Role.ADMIN})
        for user in targets:
            old, user.role = user.role, role
            _kick(user)
            audit.record(
                "admin.role_changed", actor=actor, target=user, ip=ip, old=old, new=role, bulk=True
            )
        changed = targets
    audit.record(
        f"admin.bulk_{action.replace(':', '_')}",
        actor=actor,
        ip=ip,
        selected=len(users),
        changed=len(changed),
    )
    db.session.commit()
    if action != "activate":
        _drop_live_sessions([u.id for u in changed])
    return len(changed)


# --- deletion and course transfer ----------------------------------------------------------------


@dataclass
class DeletionImpact:
    courses: list[Course]
    enrolments: int
    completions: int


def deletion_impact(user: User) -> DeletionImpact:
    courses = list(
        db.session.scalars(select(Course).where(Course.user_id == user.id).order_by(Course.title))
    )
    enrolments = db.session.scalar(
        select(func.count()).select_from(StudentCourse).where(StudentCourse.student_id == user.id)
    )
    completions = db.session.scalar(
        select(func.count())
        .select_from(CompletedContentBlock)
        .where(CompletedContentBlock.student_id == user.id)
    )
    return DeletionImpact(courses, enrolments or 0, completions or 0)


@_refusals_roll_back
def delete_user(actor: User, user_id: int, ip: str) -> str:
    """Delete the account with its enrolments and completions; returns the email it had."""
    user = user_for_admin(user_id)
    if user.id == actor.id:
        raise NotAllowed("You cannot delete your own account here.")
    owned = db.session.scalar(
        select(func.count()).select_from(Course).where(Course.user_id == user.id)
    )
    if owned:
        raise Conflict("This user owns courses: transfer them to another teacher first.")
    if user.role == Role.ADMIN and user.is_active:
        _ensure_admins_remain({user.id})
    impact = deletion_impact(user)
    email = user.email
    audit.record(
        "admin.user_deleted",
        actor=actor,
        ip=ip,
        user_id=user.id,
        email=email,
        role=user.role,
        enrolments=impact.enrolments,
        completions=impact.completions,
    )
    # Enrolments, completions, sessions and editor state go with the row (ON DELETE CASCADE).
    db.session.delete(user)
    db.session.commit()
    _drop_live_sessions([user_id])
    return email


@_refusals_roll_back
def transfer_courses(actor: User, user_id: int, to_email: str, ip: str) -> int:
    """Give every course the user owns to another teacher, in one transaction."""
    user = user_for_admin(user_id)
    to = accounts.find_by_email(to_email)
    if to is None or to.role != Role.TEACHER or not to.is_active or to.id == user.id:
        raise Invalid("Enter the email of another active teacher.", field="to_email")
    result = db.session.execute(
        update(Course)
        .where(Course.user_id == user.id)
        .values(user_id=to.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    audit.record(
        "admin.courses_transferred",
        actor=actor,
        target=user,
        ip=ip,
        to_user_id=to.id,
        to_email=to.email,
        courses=result.rowcount,
    )
    db.session.commit()
    return result.rowcount


# --- the user detail page ------------------------------------------------------------------------


@dataclass
class Enrolment:
    course: Course
    completed: bool
    done: int
    total: int

    @property
    def percent(self) -> int:
        return percent(self.done, self.total)


@dataclass
class UserOverview:
    user: User
    sessions: list  # (public handle, SessionInfo) pairs
    courses: list[Course]
    enrolments: list[Enrolment]
    events: list[AuditEvent] = field(default_factory=list)


def user_overview(user_id: int) -> UserOverview:
    """Everything the detail page shows, in a fixed number of queries."""
    user = user_for_admin(user_id)
    courses = list(
        db.session.scalars(select(Course).where(Course.user_id == user.id).order_by(Course.title))
    )
    totals = (
        select(Section.course_id, func.count(ContentBlock.id).label("total"))
        .join(ContentBlock, ContentBlock.section_id == Section.id)
        .group_by(Section.course_id)
        .subquery()
    )
    done = (
        select(Section.course_id, func.count(CompletedContentBlock.id).label("done"))
        .join(ContentBlock, ContentBlock.section_id == Section.id)
        .join(CompletedContentBlock, CompletedContentBlock.content_block_id == ContentBlock.id)
        .where(CompletedContentBlock.student_id == user.id)
        .group_by(Section.course_id)
        .subquery()
    )
    rows = db.session.execute(
        select(StudentCourse, Course, totals.c.total, done.c.done)
        .join(Course, Course.id == StudentCourse.course_id)
        .outerjoin(totals, totals.c.course_id == Course.id)
        .outerjoin(done, done.c.course_id == Course.id)
        .where(StudentCourse.student_id == user.id)
        .order_by(StudentCourse.enrolled_at.desc())
        .limit(200)
    ).all()
    enrolments = [Enrolment(c, sc.completed, d or 0, t or 0) for sc, c, t, d in rows]
    events = list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_user_id == user.id)
            .order_by(AuditEvent.id.desc())
            .limit(20)
        )
    )
    live = [(accounts.session_id(s.jti), s) for s in sessions.store().list_for_user(user.id)]
    return UserOverview(user, live, courses, enrolments, events)


# --- the audit log -------------------------------------------------------------------------------


@dataclass
class AuditRow:
    event: AuditEvent
    actor_email: str | None
    target_email: str | None


@dataclass
class AuditPage:
    rows: list[AuditRow]
    next_before: int | None
    q: str
    action: str


ADMIN_ACTIONS = (
    "admin.activated",
    "admin.activation_sent",
    "admin.course_deleted",
    "admin.courses_transferred",
    "admin.deactivated",
    "admin.reactivated",
    "admin.reset_sent",
    "admin.role_changed",
    "admin.session_ended",
    "admin.sessions_ended",
    "admin.user_created",
    "admin.user_deleted",
)


def audit_actions() -> list[str]:
    """The actions to filter by: ours, and those among the latest 10,000 events (bounded cost;
    a DISTINCT over millions of login events would not be)."""
    recent = select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(10_000).subquery()
    seen = set(db.session.scalars(select(recent.c.action).distinct()))
    return sorted(seen | set(ADMIN_ACTIONS))


def audit_log(q: str = "", action: str = "", before=None) -> AuditPage:
    """Newest first, keyset-paginated on id: ``before`` is the last id of the previous page
    (as the request gave it; anything but an id is NotFound)."""
    q = (q or "").strip()[:100]
    before = id_or_404(before, "page of the audit log") if before not in (None, "") else None
    actor = aliased(User)
    target = aliased(User)
    stmt = (
        select(AuditEvent, actor.email, target.email)
        .outerjoin(actor, actor.id == AuditEvent.actor_id)
        .outerjoin(target, target.id == AuditEvent.target_user_id)
        .order_by(AuditEvent.id.desc())
        .limit(AUDIT_PAGE_SIZE + 1)
    )
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    if q:
        pattern = like_pattern(q.lower())
        stmt = stmt.where(
            or_(
                AuditEvent.action.like(pattern, escape="\\"),
                actor.email.like(pattern, escape="\\"),
                target.email.like(pattern, escape="\\"),
                AuditEvent.ip.like(pattern, escape="\\"),
            )
        )
    rows = [AuditRow(e, a, t) for e, a, t in db.session.execute(stmt).all()]
    next_before = rows[AUDIT_PAGE_SIZE - 1].event.id if len(rows) > AUDIT_PAGE_SIZE else None
    return AuditPage(rows[:AUDIT_PAGE_SIZE], next_before, q, action)
