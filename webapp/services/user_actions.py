"""What an admin changes about accounts: role, status, sessions, emails, new accounts, bulk
actions, deletion and course transfer, with the rules they keep (an active admin remains;
course owners are not made students).

Each action is one unit of work: it records an audit event in the same transaction and commits
once; a refusal (a DomainError) or any failure rolls all of it back. A role change, deactivation,
"end sessions" or deletion bumps the target's session epoch in the transaction, so it takes
effect on their very next request, and removes their live sessions from the store only after the
commit (the store is outside the transaction): an action that does not commit ends nobody's
sessions.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .. import sessions
from ..extensions import db
from ..mail import queue_email
from ..models import Course, Role, User, utcnow
from . import Conflict, Invalid, NotAllowed, NotFound, accounts, after_commit, audit, unit_of_work
from .access import user_for_admin
from .users import ROLES, courses_owned, deletion_impact, users_by_ids

BULK_ACTIONS = {
    "deactivate": "Deactivate",
    "activate": "Activate or reactivate",
    "role:student": "Make student",
    "role:teacher": "Make teacher",
    "role:admin": "Make admin",
}


# --- the rules -----------------------------------------------------------------------------------


class OwnsCourses(Conflict):
    """Making a course owner a student is refused; ``user_ids`` names the owners."""

    def __init__(self, message: str, user_ids: list[int]):
        super().__init__(message)
        self.user_ids = user_ids


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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


# --- one user ------------------------------------------------------------------------------------


@unit_of_work()
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
    accounts.end_all_sessions(user)
    audit.record("admin.role_changed", actor=actor, target=user, ip=ip, old=old, new=role)
    return user


@unit_of_work()
def deactivate(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    if not user.is_active:
        raise Conflict("This account is not active.")
    if user.role == Role.ADMIN:
        _ensure_admins_remain({user.id})
    user.is_active = False
    if user.activated_at is None:
        user.activated_at = utcnow()  # a deactivated account, not a pending one
    accounts.end_all_sessions(user)
    audit.record("admin.deactivated", actor=actor, target=user, ip=ip)
    return user


@unit_of_work()
def reactivate(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    if user.is_active or user.activated_at is None:
        raise Conflict("Only a deactivated account can be reactivated.")
    user.is_active = True
    audit.record("admin.reactivated", actor=actor, target=user, ip=ip)
    return user


@unit_of_work()
def activate(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    if user.is_active or user.activated_at is not None:
        raise Conflict("Only a pending account can be activated.")
    user.is_active = True
    user.activated_at = utcnow()
    audit.record("admin.activated", actor=actor, target=user, ip=ip)
    return user


@unit_of_work()
def end_sessions(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    accounts.end_all_sessions(user)
    audit.record("admin.sessions_ended", actor=actor, target=user, ip=ip)
    return user


@unit_of_work()
def end_session(actor: User, user_id: int, sid: str, ip: str) -> User:
    """End one live session of the user, named by its public handle (never the jti)."""
    user = user_for_admin(user_id)
    ended = accounts.find_session(user.id, sid or "")
    if ended is None:
        raise NotFound("That session has already ended.")
    after_commit(lambda: sessions.store().delete(ended.jti))
    audit.record(
        "admin.session_ended",
        actor=actor,
        target=user,
        ip=ip,
        session_ip=ended.ip,
        started=ended.created_at.isoformat(),
    )
    return user


def _teacher_request(user_id: int) -> User:
    user = user_for_admin(user_id)
    if user.teacher_requested_at is None or user.role != Role.STUDENT:
        raise Conflict("This account has no open request to be a teacher.")
    return user


@unit_of_work()
def approve_teacher(actor: User, user_id: int, ip: str) -> User:
    """Grant a sign-up's request to be a teacher (TEACHER_SIGNUP=approval): the role changes as
    an admin's role change does (their sessions end), the person is told by email."""
    user = _teacher_request(user_id)
    user.role, user.teacher_requested_at = str(Role.TEACHER), None
    accounts.end_all_sessions(user)
    audit.record("admin.teacher_approved", actor=actor, target=user, ip=ip)
    queue_email(user.email, "teacher_approved", user=user, url=accounts.link("auth.login"))
    return user


@unit_of_work()
def refuse_teacher(actor: User, user_id: int, ip: str) -> User:
    """Refuse a request to be a teacher: the account stays a student; the person is told."""
    user = _teacher_request(user_id)
    user.teacher_requested_at = None
    audit.record("admin.teacher_refused", actor=actor, target=user, ip=ip)
    queue_email(user.email, "teacher_refused", user=user)
    return user


@unit_of_work()
def send_reset(actor: User, user_id: int, ip: str) -> User:
    user = user_for_admin(user_id)
    if not user.is_active:
        raise Conflict("Password reset links go to active accounts only.")
    accounts.send_password_reset_email(user)
    audit.record("admin.reset_sent", actor=actor, target=user, ip=ip)
    return user


@unit_of_work()
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
    return user


@unit_of_work()
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
    return user


# --- many users ----------------------------------------------------------------------------------


def _bulk_deactivate(actor: User, users: list[User], ip: str) -> list[User]:
    targets = [u for u in users if u.is_active]
    _ensure_admins_remain({u.id for u in targets if u.role == Role.ADMIN})
    for user in targets:
        user.is_active = False
        user.activated_at = user.activated_at or utcnow()
        accounts.end_all_sessions(user)
        audit.record("admin.deactivated", actor=actor, target=user, ip=ip, bulk=True)
    return targets


def _bulk_activate(actor: User, users: list[User], ip: str) -> list[User]:
    targets = [u for u in users if not u.is_active]
    for user in targets:
        kind = "admin.reactivated" if user.activated_at else "admin.activated"
        user.is_active = True
        user.activated_at = user.activated_at or utcnow()
        audit.record(kind, actor=actor, target=user, ip=ip, bulk=True)
    return targets


def _bulk_role(actor: User, users: list[User], role: str, ip: str) -> list[User]:
    targets = [u for u in users if u.role != role]
    _ensure_no_owner_becomes_student(targets, role)
    _ensure_admins_remain({u.id for u in targets if u.role == Role.ADMIN})
    for user in targets:
        old, user.role = user.role, role
        accounts.end_all_sessions(user)
        audit.record(
            "admin.role_changed", actor=actor, target=user, ip=ip, old=old, new=role, bulk=True
        )
    return targets


@unit_of_work()
def bulk(actor: User, ids, action: str, ip: str) -> int:
    """Apply ``action`` to every selected user in one transaction; returns how many changed."""
    if action not in BULK_ACTIONS:
        raise Invalid("Choose an action.", field="action")
    users = users_by_ids(ids)
    if not users:
        raise Invalid("Select at least one user.", field="user_ids")
    if action == "deactivate":
        changed = _bulk_deactivate(actor, users, ip)
    elif action == "activate":
        changed = _bulk_activate(actor, users, ip)
    else:
        changed = _bulk_role(actor, users, action.split(":", 1)[1], ip)
    audit.record(
        f"admin.bulk_{action.replace(':', '_')}",
        actor=actor,
        ip=ip,
        selected=len(users),
        changed=len(changed),
    )
    return len(changed)


# --- deletion and course transfer ----------------------------------------------------------------


@unit_of_work()
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
    # Enrolments, completions, sessions and editor state go with the row (ON DELETE CASCADE);
    # a session store in Redis forgets them after the commit.
    user_id = user.id
    after_commit(lambda: sessions.store().delete_for_user(user_id))
    db.session.delete(user)
    return email


def receiving_teacher(to_email: str, owner_id: int) -> User:
    """The active teacher, other than the owner, named by ``to_email`` (who takes courses)."""
    to = accounts.find_by_email(to_email)
    if to is None or to.role != Role.TEACHER or not to.is_active or to.id == owner_id:
        raise Invalid("Enter the email of another active teacher.", field="to_email")
    return to


@unit_of_work()
def transfer_courses(actor: User, user_id: int, to_email: str, ip: str) -> int:
    """Give every course the user owns to another teacher, in one transaction."""
    user = user_for_admin(user_id)
    to = receiving_teacher(to_email, user.id)
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
    return result.rowcount
