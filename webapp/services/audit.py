"""The audit log: append-only records of admin actions and security events.

Callers add the record inside their own transaction. Never pass a password or a token.
"""

from __future__ import annotations

from ..extensions import db
from ..models import AuditEvent

# A detail whose key contains one of these is dropped, however it is spelled (new_password,
# reset_token, api_secret, jti, …): a caller's slip must not put a secret in the log.
FORBIDDEN_KEY_PARTS = ("password", "passwd", "token", "secret", "jti", "cookie")


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
