"""Accounts: passwords, sign-up, activation, sign-in checks, resets, profile and sessions.

Every function that changes something commits once (all or nothing) and records the security
event in the audit log in the same transaction. Emails go through the outbox in that same
transaction. Nothing here reveals whether an address is registered to someone who does not
already control it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from .. import sessions, tokens
from ..extensions import db
from ..mail import queue_email
from ..models import Role, User, utcnow
from . import Invalid, NotAllowed, NotFound, audit

# Checked against when the email is unknown, so both paths cost one scrypt verification.
_DUMMY_HASH = generate_password_hash("lectern-dummy-password-for-timing")

PASSWORD_MIN = 10
PASSWORD_MAX = 256
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"
SELF_SERVICE_ROLES = (Role.STUDENT, Role.TEACHER)


class WrongPassword(Invalid):
    """The password given to confirm an action is not the user's; the routes throttle these."""


# --- values --------------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def check_email(email: str) -> str:
    """The normalised address if it is well formed (no deliverability lookup); Invalid if not."""
    email = (email or "").strip()
    try:
        # allow_smtputf8=False: a non-ASCII local part needs SMTPUTF8 all the way to the
        # recipient, which mail servers do not all offer; internationalised domains are fine.
        result = validate_email(email, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        if "@" in email and not email.rpartition("@")[0].isascii():
            raise Invalid(
                "Use an address with only ASCII letters, digits and .-_+ before the @.", "email"
            ) from exc
        raise Invalid("Enter a valid email address, like name@example.com.", "email") from exc
    normalised = result.normalized.lower()
    if len(normalised) > 254:
        raise Invalid("That email address is too long.", "email")
    return normalised


@functools.cache
def common_passwords() -> frozenset[str]:
    with open(COMMON_PASSWORDS_FILE, encoding="utf-8") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip())


def password_problems(password: str, email: str = "") -> list[str]:
    """What is wrong with a new password under the policy (NIST SP 800-63B); [] when fine."""
    password = password or ""
    if len(password) < PASSWORD_MIN:
        return [f"Use at least {PASSWORD_MIN} characters."]
    if len(password) > PASSWORD_MAX:
        return [f"Use at most {PASSWORD_MAX} characters."]
    lowered = password.strip().lower()
    if lowered in common_passwords():
        return ["That password is one of the most common ones. Choose another."]
    email = normalise_email(email)
    if email and lowered in {email, email.partition("@")[0]}:
        return ["Your password must not be your email address."]
    return []


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def _link(endpoint: str, **values) -> str:
    """An absolute link built from BASE_URL, never from the request's Host header."""
    path = current_app.url_map.bind("lectern.invalid").build(endpoint, values)
    return current_app.config["BASE_URL"] + path


def _hours(setting: str) -> int:
    return max(1, current_app.config[setting] // 3600)


# --- signing in ----------------------------------------------------------------------------


@dataclass
class LoginResult:
    user: User | None
    outcome: str  # "ok", "pending" (right password, never activated) or "bad"


def authenticate(email: str, password: str) -> LoginResult:
    """Check credentials in constant-ish time. Deactivated accounts look like bad passwords."""
    user = find_by_email(email)
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return LoginResult(None, "bad")
    if not check_password_hash(user.password_hash, password):
        return LoginResult(user, "bad")
    if not user.is_active:
        return LoginResult(user, "pending" if user.activated_at is None else "bad")
    return LoginResult(user, "ok")


def record_login(user: User, ip: str) -> None:
    user.last_login_at = utcnow()
    audit.record("login.success", actor=user, target=user, ip=ip)
    db.session.commit()


def record_login_failure(email: str, user: User | None, ip: str) -> None:
    audit.record("login.failure", target=user, ip=ip, email=normalise_email(email)[:254])
    db.session.commit()


def record_pending_login(user: User, ip: str) -> None:
    """A right password for a never-activated account: say so and send a fresh link."""
    audit.record("login.failure", target=user, ip=ip, email=user.email, reason="not activated")
    send_activation_email(user)
    db.session.commit()


def record_lockout(email: str, ip: str) -> None:
    user = find_by_email(email)
    audit.record("login.locked", target=user, ip=ip, email=normalise_email(email)[:254])
    db.session.commit()


# --- creating and activating accounts ------------------------------------------------------


def create_user(
    email: str,
    name: str,
    password: str | None,
    role: str = Role.STUDENT,
    active: bool = False,
) -> User:
    """Add a user to the session (the caller commits)."""
    now = utcnow()
    user = User(
        email=normalise_email(email),
        name=name.strip(),
        password_hash=hash_password(password) if password else None,
        role=str(role),
        is_active=active,
        activated_at=now if active else None,
        session_epoch=0,
    )
    db.session.add(user)
    return user


def sign_up(name: str, email: str, password: str, role: str, ip: str) -> None:
    """Create a pending account and send its activation link.

    A registered address gets the same answer (the caller shows "check your inbox"):

    - never activated, signed up by itself (it has a password): the new submission replaces
      the password, name and role, and a fresh activation link goes out. Activation links
      carry a digest of the password hash, so every earlier link (say, from someone who signed
      up with this address and their own password first) stops working: no pre-hijacking.
    - invited by an admin (no password yet): the invitation is sent again, nothing changes.
    - active: its owner is told an account exists, with a reset link.
    - deactivated: nothing is sent.

    Two sign-ups of one new address at once: the one that loses the insert is answered as a
    sign-up for a pending address (its submission replaces the first).
    """
    if role not in SELF_SERVICE_ROLES:
        raise Invalid("Choose student or teacher.", "role")
    email = check_email(email)
    problems = password_problems(password, email)
    if problems:
        raise Invalid(problems[0], "password")
    password_hash = hash_password(password)  # paid on both paths, so timing tells nothing
    name = name.strip()
    existing = find_by_email(email)
    if existing is None:
        user = User(
            email=email,
            name=name,
            password_hash=password_hash,
            role=str(role),
            is_active=False,
            session_epoch=0,
        )
        db.session.add(user)
        try:
            db.session.flush()
        except IntegrityError:  # the same address was inserted since find_by_email
            db.session.rollback()
            existing = find_by_email(email)
            if existing is None:
                raise
        else:
            audit.record("signup", actor=user, target=user, ip=ip, role=str(role))
            send_activation_email(user)
            db.session.commit()
            return
    _sign_up_existing(existing, name, password_hash, str(role), ip)
    db.session.commit()


def _sign_up_existing(user: User, name: str, password_hash: str, role: str, ip: str) -> None:
    """A sign-up for a registered address (see sign_up); the caller commits."""
    if not user.is_active and user.activated_at is None and user.password_hash:
        user.password_hash = password_hash
        user.name = name
        user.role = role
        audit.record("signup", target=user, ip=ip, existing=True, replaced=True, role=role)
        send_activation_email(user)
    elif not user.is_active and user.activated_at is None:
        audit.record("signup", target=user, ip=ip, existing=True, invited=True)
        send_invitation_email(user)
    elif user.is_active:
        audit.record("signup", target=user, ip=ip, existing=True)
        queue_email(
            user.email,
            "account_exists",
            user=user,
            reset_url=_reset_link(user),
            login_url=_link("auth.login"),
            hours=_hours("RESET_MAX_SECONDS"),
        )


def send_activation_email(user: User) -> None:
    """Queue the activation link (valid ACTIVATION_MAX_SECONDS); the caller commits.

    The link names the address and carries a digest of the password hash: it dies when a later
    sign-up replaces the password, and once the account is active.
    """
    token = tokens.make(
        "activate", uid=user.id, email=user.email, pw=tokens.password_digest(user.password_hash)
    )
    queue_email(
        user.email,
        "activation",
        user=user,
        url=_link("auth.activate", token=token),
        hours=_hours("ACTIVATION_MAX_SECONDS"),
    )


def send_invitation_email(user: User) -> None:
    """Queue an invitation to set a password (purpose "invite"); the caller commits."""
    token = tokens.make(
        "invite", uid=user.id, email=user.email, pw=tokens.password_digest(user.password_hash)
    )
    queue_email(
        user.email,
        "invitation",
        user=user,
        url=_link("auth.accept_invite", token=token),
        hours=_hours("ACTIVATION_MAX_SECONDS"),
    )


def _reset_link(user: User) -> str:
    token = tokens.make("reset", uid=user.id, pw=tokens.password_digest(user.password_hash))
    return _link("auth.reset_password_token", token=token)


def send_password_reset_email(user: User) -> None:
    """Queue the reset link (valid RESET_MAX_SECONDS, once); the caller commits."""
    queue_email(
        user.email,
        "reset",
        user=user,
        url=_reset_link(user),
        hours=_hours("RESET_MAX_SECONDS"),
    )


def activation_user(token: str) -> User:
    """The pending user an activation link is for, changing nothing; TokenError when the link
    is expired, tampered, used, or its password was replaced by a later sign-up."""
    claims = tokens.read("activate", token)
    user = db.session.get(User, claims.get("uid"))
    if user is None or user.email != claims.get("email"):
        raise tokens.TokenError("invalid")
    if user.activated_at is not None or not user.password_hash:
        raise tokens.TokenError("used")
    if not hmac.compare_digest(
        str(claims.get("pw", "")), tokens.password_digest(user.password_hash)
    ):
        raise tokens.TokenError("used")
    return user


def activate(token: str, ip: str) -> User:
    """Activate the account named by an activation link; TokenError when it is not valid."""
    user = activation_user(token)
    user.is_active = True
    user.activated_at = utcnow()
    audit.record("account.activated", actor=user, target=user, ip=ip)
    db.session.commit()
    return user


def resend_activation(email: str) -> None:
    """Send a fresh activation link if this is a pending account; silent otherwise."""
    user = find_by_email(email)
    if user is not None and user.activated_at is None and user.password_hash:
        send_activation_email(user)
        db.session.commit()


def invited_user(token: str) -> User:
    """The user an invitation link is for; TokenError once used, expired or tampered."""
    claims = tokens.read("invite", token)
    user = db.session.get(User, claims.get("uid"))
    if user is None or user.email != claims.get("email"):
        raise tokens.TokenError("invalid")
    if user.activated_at is not None or claims.get("pw") != tokens.password_digest(
        user.password_hash
    ):
        raise tokens.TokenError("used")
    return user


def accept_invitation(token: str, password: str, ip: str) -> User:
    user = invited_user(token)
    problems = password_problems(password, user.email)
    if problems:
        raise Invalid(problems[0], "password")
    user.password_hash = hash_password(password)
    user.is_active = True
    user.activated_at = utcnow()
    end_all_sessions(user)
    audit.record("account.activated", actor=user, target=user, ip=ip, invited=True)
    audit.record("password.reset", actor=user, target=user, ip=ip)
    db.session.commit()
    return user


# --- passwords -----------------------------------------------------------------------------


def request_password_reset(email: str, ip: str) -> None:
    """Email a reset link to an active account (an activation link to a pending one)."""
    user = find_by_email(email)
    if user is None or not user.password_hash:
        return
    if user.is_active:
        send_password_reset_email(user)
    elif user.activated_at is None:
        send_activation_email(user)
    else:
        return  # deactivated by an admin: nothing to send
    db.session.commit()


def reset_user(token: str) -> User:
    """The user a reset link is for; TokenError once used, expired, tampered or deactivated."""
    claims = tokens.read("reset", token)
    user = db.session.get(User, claims.get("uid"))
    if user is None or not user.is_active:
        raise tokens.TokenError("invalid")
    if claims.get("pw") != tokens.password_digest(user.password_hash):
        raise tokens.TokenError("used")
    return user


def reset_password(token: str, password: str, ip: str) -> User:
    """Set a new password from a reset link; every session of the user ends."""
    user = reset_user(token)
    problems = password_problems(password, user.email)
    if problems:
        raise Invalid(problems[0], "password")
    user.password_hash = hash_password(password)
    end_all_sessions(user)
    audit.record("password.reset", actor=user, target=user, ip=ip)
    queue_email(user.email, "password_changed", user=user, reset_url=_link("auth.forgot_password"))
    db.session.commit()
    return user


def change_password(user: User, current: str, new: str, keep_jti: str | None, ip: str) -> None:
    """Change the password (needs the current one); every other session ends."""
    if not user.password_hash or not check_password_hash(user.password_hash, current or ""):
        raise WrongPassword("That is not your current password.", "current_password")
    problems = password_problems(new, user.email)
    if problems:
        raise Invalid(problems[0], "new_password")
    user.password_hash = hash_password(new)
    end_all_sessions(user, keep_jti=keep_jti)
    audit.record("password.changed", actor=user, target=user, ip=ip)
    queue_email(user.email, "password_changed", user=user, reset_url=_link("auth.forgot_password"))
    db.session.commit()


# --- profile -------------------------------------------------------------------------------


def change_name(user: User, name: str) -> None:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("Enter a name of 1 to 120 characters.", "name")
    user.name = name
    db.session.commit()


def _require_password(user: User, password: str) -> None:
    if not user.password_hash or not check_password_hash(user.password_hash, password or ""):
        raise WrongPassword("That is not your password.", "password")


def record_password_lockout(user: User, ip: str) -> None:
    """A signed-in user reached the limit of wrong passwords (change password/email, delete)."""
    audit.record("password.locked", actor=user, target=user, ip=ip)
    db.session.commit()


def request_email_change(user: User, new_email: str, password: str, ip: str) -> None:
    """Send a confirmation link to the new address. A taken address gets the same answer."""
    _require_password(user, password)
    new_email = check_email(new_email)
    if new_email == user.email:
        raise Invalid("That is already your email address.", "email")
    if find_by_email(new_email) is None:
        token = tokens.make("email-change", uid=user.id, old=user.email, new=new_email)
        queue_email(
            new_email,
            "email_change",
            user=user,
            new_email=new_email,
            url=_link("auth.confirm_email", token=token),
            hours=_hours("EMAIL_CHANGE_MAX_SECONDS"),
        )
    audit.record("email.change_requested", actor=user, target=user, ip=ip)
    db.session.commit()


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
    if not isinstance(new_email, str) or find_by_email(new_email) is not None:
        raise tokens.TokenError("taken")
    return user, new_email


def confirm_email_change(token: str, ip: str) -> User:
    """Apply an email change link; the old address is told. TokenError when not valid."""
    user, new_email = email_change_request(token)
    old_email = user.email
    try:
        user.email = new_email
        audit.record("email.changed", actor=user, target=user, ip=ip, old=old_email, new=new_email)
        queue_email(old_email, "email_changed", user=user, new_email=new_email)
        db.session.commit()
    except IntegrityError as exc:  # someone took the address since email_change_request
        db.session.rollback()
        raise tokens.TokenError("taken") from exc
    return user


def delete_account(user: User, password: str, ip: str) -> None:
    """A student deletes their own account; enrolments and completions go with it."""
    if not user.is_student:
        raise NotAllowed("Only student accounts can be deleted here. Ask an administrator.")
    _require_password(user, password)
    user_id = user.id
    sessions.store().delete_for_user(user_id)
    audit.record("account.deleted", actor=None, target=None, ip=ip, user_id=user_id)
    db.session.delete(user)
    db.session.commit()


# --- sessions ------------------------------------------------------------------------------


def end_all_sessions(user: User, keep_jti: str | None = None) -> None:
    """Bump the epoch so every token issued before now stops working, and drop the user's live
    sessions from the store (all but ``keep_jti``). The caller commits."""
    user.session_epoch = (user.session_epoch or 0) + 1
    if user.id is not None:
        sessions.store().delete_for_user(user.id, keep=keep_jti)


def session_id(jti: str) -> str:
    """A public handle for a live session: never the jti itself."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"sid:{jti}".encode(), hashlib.sha256).hexdigest()[:20]


def list_sessions(user: User) -> list[sessions.SessionInfo]:
    return sessions.store().list_for_user(user.id)


def end_session(user: User, sid: str, current_jti: str | None, ip: str) -> None:
    """End one of the user's own sessions (by its public handle); NotFound otherwise."""
    for info in sessions.store().list_for_user(user.id):
        if hmac.compare_digest(session_id(info.jti), sid or ""):
            if info.jti == current_jti:
                raise Invalid("Use “Log out” to end this session.")
            sessions.store().delete(info.jti)
            audit.record("session.ended", actor=user, target=user, ip=ip, session=sid)
            db.session.commit()
            return
    raise NotFound("That session has already ended.")


def end_other_sessions(user: User, current_jti: str | None, ip: str) -> int:
    """Log out everywhere else; returns how many sessions ended."""
    count = len([s for s in sessions.store().list_for_user(user.id) if s.jti != current_jti])
    end_all_sessions(user, keep_jti=current_jti)
    audit.record("sessions.ended_others", actor=user, target=user, ip=ip, count=count)
    db.session.commit()
    return count
