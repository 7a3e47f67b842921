"""The signed-in account: name, password change, email change, deletion, and the user's own
live sessions (the sessions page). Getting into an account is services/accounts.py.

Each change is one unit of work with its audit event; a password given to confirm an action is
checked here, and a wrong one raises ``WrongPassword`` (the routes count those).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from .. import sessions, tokens
from ..extensions import db
from ..mail import queue_email
from ..models import Theme, User
from . import Invalid, NotAllowed, NotFound, accounts, after_commit, audit, unit_of_work


class WrongPassword(Invalid):
    """The password given to confirm an action is not the user's; the routes throttle these."""


_NOT_YOURS = {
    "password": "That is not your password.",
    "current_password": "That is not your current password.",
}


def _require_password(user: User, password: str, field: str = "password") -> None:
    if not user.password_hash or not check_password_hash(user.password_hash, password or ""):
        raise WrongPassword(_NOT_YOURS[field], field)


@unit_of_work()
def change_name(user: User, name: str) -> None:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("Enter a name of 1 to 120 characters.", "name")
    user.name = name


@unit_of_work()
def change_theme(user: User, theme: str) -> None:
    """The colour theme the person chose: ``system``, ``light`` or ``dark``."""
    if theme not in set(Theme):
        raise Invalid("Choose the system, light or dark theme.", "theme")
    user.theme = theme


@unit_of_work()
def change_password(user: User, current: str, new: str, keep_jti: str | None, ip: str) -> None:
    """Change the password (needs the current one); every other session ends."""
    _require_password(user, current, "current_password")
    accounts.set_password(user, new, "new_password", keep_jti=keep_jti)
    audit.record("password.changed", actor=user, target=user, ip=ip)
    reset_url = accounts.link("auth.forgot_password")
    queue_email(user.email, "password_changed", user=user, reset_url=reset_url)


@unit_of_work()
def record_password_lockout(user: User, ip: str) -> None:
    """A signed-in user reached the limit of wrong passwords (change password/email, delete)."""
    audit.record("password.locked", actor=user, target=user, ip=ip)


# --- the email address ---------------------------------------------------------------------


@unit_of_work()
def request_email_change(user: User, new_email: str, password: str, ip: str) -> None:
    """Send a confirmation link to the new address. A taken address gets the same answer."""
    _require_password(user, password)
    new_email = accounts.check_email(new_email)
    if new_email == user.email:
        raise Invalid("That is already your email address.", "email")
    if accounts.find_by_email(new_email) is None:
        token = tokens.make("email-change", uid=user.id, old=user.email, new=new_email)
        queue_email(
            new_email,
            "email_change",
            user=user,
            new_email=new_email,
            url=accounts.link("auth.confirm_email", token=token),
            hours=accounts.hours("EMAIL_CHANGE_MAX_SECONDS"),
        )
    audit.record("email.change_requested", actor=user, target=user, ip=ip)


def email_change_request(token: str) -> tuple[User, str]:
    """The user and new address of an email-change link, changing nothing; TokenError when the
    link is expired, tampered, used (the address changed since) or the address is taken."""
    claims = tokens.read("email-change", token)
    user = db.session.get(User, claims.get("uid"))
    if user is None or not user.is_active:
        raise tokens.TokenError("invalid")
    if user.email != claims.get("old"):
        raise tokens.TokenError("used")
    new_email = claims.get("new")
    if not isinstance(new_email, str) or accounts.find_by_email(new_email) is not None:
        raise tokens.TokenError("taken")
    return user, new_email


def confirm_email_change(token: str, ip: str) -> User:
    """Apply an email change link; the old address is told. TokenError when not valid."""
    try:
        with unit_of_work():
            user, new_email = email_change_request(token)
            old_email = user.email
            user.email = new_email
            audit.record(
                "email.changed", actor=user, target=user, ip=ip, old=old_email, new=new_email
            )
            queue_email(old_email, "email_changed", user=user, new_email=new_email)
    except IntegrityError as exc:  # someone took the address since email_change_request
        raise tokens.TokenError("taken") from exc
    return user


# --- deleting the account ------------------------------------------------------------------


@unit_of_work()
def delete_account(user: User, password: str, ip: str) -> None:
    """A student deletes their own account; enrolments and completions go with it, and its
    live sessions leave the store once that is committed."""
    if not user.is_student:
        raise NotAllowed("Only student accounts can be deleted here. Ask an administrator.")
    _require_password(user, password)
    user_id = user.id
    audit.record("account.deleted", actor=None, target=None, ip=ip, user_id=user_id)
    db.session.delete(user)
    after_commit(lambda: sessions.store().delete_for_user(user_id))


# --- my sessions ---------------------------------------------------------------------------


def list_sessions(user: User) -> list[sessions.SessionInfo]:
    return sessions.store().list_for_user(user.id)


@unit_of_work()
def end_session(user: User, sid: str, current_jti: str | None, ip: str):
    """End one of the user's own sessions (by its public handle); NotFound otherwise. Returns
    the session as it was (its device and address name it in the announcement)."""
    info = accounts.find_session(user.id, sid)
    if info is None:
        raise NotFound("That session has already ended.")
    if current_jti is not None and tokens.same(current_jti, info.jti):
        raise Invalid("Use “Log out” to end this session.")
    audit.record("session.ended", actor=user, target=user, ip=ip, session=sid)
    after_commit(lambda: sessions.store().delete(info.jti))
    return info


@unit_of_work()
def end_other_sessions(user: User, current_jti: str | None, ip: str) -> int:
    """Log out everywhere else; returns how many sessions ended."""
    count = len([s for s in list_sessions(user) if s.jti != current_jti])
    accounts.end_all_sessions(user, keep_jti=current_jti)
    audit.record("sessions.ended_others", actor=user, target=user, ip=ip, count=count)
    return count
