"""The audit log: append-only records of admin actions and security events.

Callers add the record inside their own transaction. Never pass a password or a token.
"""

from __future__ import annotations

from ..extensions import db
from ..models import AuditEvent

FORBIDDEN_KEYS = {"password", "password_hash", "token", "secret", "csrf_token"}


def record(action: str, *, actor=None, target=None, ip: str = "", **details) -> AuditEvent:
    clean = {k: v for k, v in details.items() if k not in FORBIDDEN_KEYS}
    event = AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", actor),
        target_user_id=getattr(target, "id", target),
        ip=ip[:64],
        details=clean,
    )
    db.session.add(event)
    return event
