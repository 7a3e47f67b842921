"""The audit log: append-only records of admin actions and security events, and their reading.

Callers add a record inside their own transaction. Never pass a password or a token. The log
page reads newest first, keyset-paginated on the id.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import AuditEvent, User
from . import id_or_404

# A detail whose key contains one of these is dropped, however it is spelled (new_password,
# reset_token, api_secret, jti, …): a caller's slip must not put a secret in the log.
FORBIDDEN_KEY_PARTS = ("password", "passwd", "token", "secret", "jti", "cookie")

PAGE_SIZE = 50

ADMIN_ACTIONS = (
    "admin.activated",
    "admin.activation_sent",
    "admin.course_deleted",
    "admin.course_transferred",
    "admin.courses_transferred",
    "admin.deactivated",
    "admin.outbox_retried",
    "admin.outbox_retried_all",
    "admin.reactivated",
    "admin.reset_sent",
    "admin.role_changed",
    "admin.session_ended",
    "admin.sessions_ended",
    "admin.teacher_approved",
    "admin.teacher_refused",
    "admin.user_created",
    "admin.user_deleted",
)


# --- writing -------------------------------------------------------------------------------------


def _secret_key(key: str) -> bool:
    key = key.lower()
    return any(part in key for part in FORBIDDEN_KEY_PARTS)


def record(action: str, *, actor=None, target=None, ip: str = "", **details) -> AuditEvent:
    clean = {k: v for k, v in details.items() if not _secret_key(k)}
    event = AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", actor),
        target_user_id=getattr(target, "id", target),
        ip=ip[:64],
        details=clean,
    )
    db.session.add(event)
    return event


def course_deleted(course, actor, ip: str = "") -> AuditEvent | None:
    """Record an admin deleting a course someone else owns (``admin.course_deleted``, target: the
    owner); an owner deleting their own course is not an admin action and records nothing.
    Call it in the deleting transaction, before the course row is deleted."""
    if course.user_id == getattr(actor, "id", actor):
        return None
    return record(
        "admin.course_deleted",
        actor=actor,
        target=course.user_id,
        ip=ip,
        course_id=course.id,
        title=course.title,
    )


# --- reading -------------------------------------------------------------------------------------


@dataclass
class AuditRow:
    event: AuditEvent
    actor_email: str | None
    target_email: str | None


@dataclass
class AuditPage:
    rows: list[AuditRow]
    next_before: int | None  # the ``before`` of the next (older) page; None on the last one
    q: str
    action: str
    before: int | None = None  # this page's own cursor: None on the newest page


def audit_actions() -> list[str]:
    """The actions to filter by: ours, and those among the latest 10,000 events (bounded cost;
    a DISTINCT over millions of login events would not be)."""
    recent = select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(10_000).subquery()
    seen = set(db.session.scalars(select(recent.c.action).distinct()))
    return sorted(seen | set(ADMIN_ACTIONS))


def audit_log(q: str = "", action: str = "", before=None) -> AuditPage:
    """Newest first, keyset-paginated on id: ``before`` is the last id of the previous page
    (as the request gave it; anything but an id is NotFound).

    Not ``db.paginate``: an OFFSET walks every skipped row of a log that only grows, and rows
    written while someone pages would shift the pages under them; ``id < before`` does neither.
    """
    q = (q or "").strip()[:100]
    before = id_or_404(before, "page of the audit log") if before not in (None, "") else None
    actor = aliased(User)
    target = aliased(User)
    stmt = (
        select(AuditEvent, actor.email, target.email)
        .outerjoin(actor, actor.id == AuditEvent.actor_id)
        .outerjoin(target, target.id == AuditEvent.target_user_id)
        .order_by(AuditEvent.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    if q:
        columns = (AuditEvent.action, actor.email, target.email, AuditEvent.ip)
        stmt = stmt.where(or_(*(c.icontains(q, autoescape=True) for c in columns)))
    rows = [AuditRow(e, a, t) for e, a, t in db.session.execute(stmt).all()]
    next_before = rows[PAGE_SIZE - 1].event.id if len(rows) > PAGE_SIZE else None
    return AuditPage(rows[:PAGE_SIZE], next_before, q, action, before)
