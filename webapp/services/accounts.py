"""Accounts: getting into Lectern. Addresses and the password policy, sign-up, activation,
invitations, signing in, the forgotten password, and ending a user's sessions.

Every function that changes something is one unit of work (all or nothing) and records the
security event in the audit log in the same transaction. Emails go through the outbox in that
same transaction; live sessions leave the store only after the commit. Nothing here reveals
whether an address is registered to someone who does not already control it. The signed-in
account (name, password change, email change, deletion, the sessions page) is services/profile.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from .. import sessions, tokens
from ..extensions import db
from ..mail import queue_email
from ..models import Role, User, utcnow
from . import Conflict, Invalid, after_commit, audit, insert, unit_of_work

# Checked against when the email is unknown, so both paths cost one scrypt verification.
_DUMMY_HASH = generate_password_hash("lectern-dummy-password-for-timing")

PASSWORD_MIN = 10
PASSWORD_MAX = 256
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"
SELF_SERVICE_ROLES = (Role.STUDENT, Role.TEACHER)
TEACHERS_CLOSED = "Teacher accounts are made by an admin here: sign up as a student, or ask one."


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


def link(endpoint: str, **values) -> str:
    """An absolute link built from BASE_URL, never from the request's Host header."""
    path = current_app.url_map.bind("lectern.invalid").build(endpoint, values)
    return current_app.config["BASE_URL"] + path


def hours(setting: str) -> int:
    return max(1, current_app.config[setting] // 3600)


def set_password(
    user: User, password: str, field: str = "password", keep_jti: str | None = None
) -> None:
    """A new password under the policy (Invalid on ``field`` if not); every session of the
    user but ``keep_jti`` ends. The caller's unit of work commits."""
    problems = password_problems(password, user.email)
    if problems:
        raise Invalid(problems[0], field)
    user.password_hash = hash_password(password)
    end_all_sessions(user, keep_jti=keep_jti)


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


@unit_of_work()
def record_login(user: User, ip: str) -> None:
    user.last_login_at = utcnow()
    audit.record("login.success", actor=user, target=user, ip=ip)


@unit_of_work()
def record_login_failure(email: str, user: User | None, ip: str) -> None:
    audit.record("login.failure", target=user, ip=ip, email=normalise_email(email)[:254])


@unit_of_work()
def record_pending_login(user: User, ip: str) -> None:
    """A right password for a never-activated account: say so and send a fresh link."""
    audit.record("login.failure", target=user, ip=ip, email=user.email, reason="not activated")
    send_activation_email(user)


@unit_of_work()
def record_lockout(email: str, ip: str) -> None:
    user = find_by_email(email)
    audit.record("login.locked", target=user, ip=ip, email=normalise_email(email)[:254])


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

    Two sign-ups of one new address at once: the one whose insert finds the address taken
    (``ON CONFLICT DO NOTHING``) is answered as a sign-up for a pending address (its submission
    replaces the first).
    """
    if role not in SELF_SERVICE_ROLES:
        raise Invalid("Choose student or teacher.", "role")
    role, requested = signup_role(role)
    email = check_email(email)
    problems = password_problems(password, email)
    if problems:
        raise Invalid(problems[0], "password")
    password_hash = hash_password(password)  # paid on both paths, so timing tells nothing
    name, role = name.strip(), str(role)
    with unit_of_work():
        user = find_by_email(email)
        if user is None:
            new_id = db.session.scalar(
                insert(User)
                .values(email=email, name=name, password_hash=password_hash, role=role,
                        teacher_requested_at=requested)
                .on_conflict_do_nothing(index_elements=["email"])
                .returning(User.id)
            )  # fmt: skip
            if new_id is not None:
                user = db.session.get(User, new_id)
                asked = {"teacher_request": True} if requested else {}
                audit.record("signup", actor=user, target=user, ip=ip, role=role, **asked)
                send_activation_email(user)
                return
            user = find_by_email(email)  # inserted by someone else since the first look
            if user is None:  # and deleted again: vanishingly rare, ask for another try
                raise Conflict("Please send the form again.", "email")
        _sign_up_existing(user, name, password_hash, (role, requested), ip)


def signup_role(role: str) -> tuple[str, dt.datetime | None]:
    """The role a sign-up as ``role`` gets under TEACHER_SIGNUP, and the time of its teacher
    request: ``open``, a teacher; ``approval``, a student with a request for an admin;
    ``closed``, refused (admins make teachers)."""
    if role != Role.TEACHER:
        return role, None
    mode = current_app.config["TEACHER_SIGNUP"]
    if mode == "closed":
        raise Invalid(TEACHERS_CLOSED, "role")
    if mode == "approval":
        return str(Role.STUDENT), utcnow()
    return role, None


def _sign_up_existing(user: User, name: str, password_hash: str, role: tuple, ip: str) -> None:
    """A sign-up for a registered address (see sign_up); the caller commits."""
    role, requested = role
    if not user.is_active and user.activated_at is None and user.password_hash:
        user.password_hash = password_hash
        user.name = name
        user.role = role
        user.teacher_requested_at = requested
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
            login_url=link("auth.login"),
            hours=hours("RESET_MAX_SECONDS"),
        )


def _bound_link(purpose: str, user: User, endpoint: str) -> str:
    """A link naming the user and the address, bound to the current password hash."""
    pw = tokens.password_digest(user.password_hash)
    return link(endpoint, token=tokens.make(purpose, uid=user.id, email=user.email, pw=pw))


def send_activation_email(user: User) -> None:
    """Queue the activation link (valid ACTIVATION_MAX_SECONDS); the caller commits.

    The link names the address and carries a digest of the password hash: it dies when a later
    sign-up replaces the password, and once the account is active.
    """
    url = _bound_link("activate", user, "auth.activate")
    hrs = hours("ACTIVATION_MAX_SECONDS")
    queue_email(user.email, "activation", user=user, url=url, hours=hrs)


def send_invitation_email(user: User, template: str = "invitation", **ctx) -> None:
    """Queue an invitation to set a password (purpose "invite"); the caller commits.
    ``template``: an admin's invitation, or a teacher's to a course (``course_invitation``)."""
    url = _bound_link("invite", user, "auth.accept_invite")
    hrs = hours("ACTIVATION_MAX_SECONDS")
    queue_email(user.email, template, user=user, url=url, hours=hrs, **ctx)


def _reset_link(user: User) -> str:
    token = tokens.make("reset", uid=user.id, pw=tokens.password_digest(user.password_hash))
    return link("auth.reset_password_token", token=token)


def send_password_reset_email(user: User) -> None:
    """Queue the reset link (valid RESET_MAX_SECONDS, once); the caller commits."""
    url, hrs = _reset_link(user), hours("RESET_MAX_SECONDS")
    queue_email(user.email, "reset", user=user, url=url, hours=hrs)


def _link_user(purpose: str, token: str, *, named: bool) -> tuple[User, dict]:
    """The user a link of ``purpose`` is for (its address too when ``named``), and its claims;
    TokenError "invalid" for a link that names no such user."""
    claims = tokens.read(purpose, token)
    user = db.session.get(User, claims.get("uid"))
    if user is None or (named and user.email != claims.get("email")):
        raise tokens.TokenError("invalid")
    return user, claims


def activation_user(token: str) -> User:
    """The pending user an activation link is for, changing nothing; TokenError when the link
    is expired, tampered, used, or its password was replaced by a later sign-up."""
    user, claims = _link_user("activate", token, named=True)
    if user.activated_at is not None or not user.password_hash:
        raise tokens.TokenError("used")
    if not tokens.password_unchanged(claims, user.password_hash):
        raise tokens.TokenError("used")
    return user


def _hold_pending(user: User) -> None:
    """Lock the user's row and look again: of several requests with the same link at once
    (a double click, a mail client's prefetch), one activates and the others find it used."""
    db.session.refresh(user, with_for_update=True)
    if user.activated_at is not None:
        raise tokens.TokenError("used")


@unit_of_work()
def activate(token: str, ip: str) -> User:
    """Activate the account named by an activation link; TokenError when it is not valid."""
    user = activation_user(token)
    _hold_pending(user)
    user.is_active = True
    user.activated_at = utcnow()
    audit.record("account.activated", actor=user, target=user, ip=ip)
    return user


@unit_of_work()
def resend_activation(email: str) -> None:
    """Send a fresh activation link if this is a pending account; silent otherwise."""
    user = find_by_email(email)
    if user is not None and user.activated_at is None and user.password_hash:
        send_activation_email(user)


def invited_user(token: str) -> User:
    """The user an invitation link is for; TokenError once used, expired or tampered."""
    user, claims = _link_user("invite", token, named=True)
    if user.activated_at is not None or not tokens.password_unchanged(claims, user.password_hash):
        raise tokens.TokenError("used")
    return user


@unit_of_work()
def accept_invitation(token: str, password: str, ip: str) -> User:
    user = invited_user(token)
    _hold_pending(user)
    set_password(user, password)
    user.is_active = True
    user.activated_at = utcnow()
    audit.record("account.activated", actor=user, target=user, ip=ip, invited=True)
    audit.record("password.reset", actor=user, target=user, ip=ip)
    return user


# --- the forgotten password ----------------------------------------------------------------


@unit_of_work()
def request_password_reset(email: str, ip: str) -> None:
    """Email a reset link to an active account (an activation link to a pending one)."""
    user = find_by_email(email)
    if user is None or not user.password_hash:
        return
    if user.is_active:
        send_password_reset_email(user)
    elif user.activated_at is None:
        send_activation_email(user)
    # else: deactivated by an admin, nothing to send


def reset_user(token: str) -> User:
    """The user a reset link is for; TokenError once used, expired, tampered or deactivated."""
    user, claims = _link_user("reset", token, named=False)
    if not user.is_active:
        raise tokens.TokenError("invalid")
    if not tokens.password_unchanged(claims, user.password_hash):
        raise tokens.TokenError("used")
    return user


@unit_of_work()
def reset_password(token: str, password: str, ip: str) -> User:
    """Set a new password from a reset link; every session of the user ends."""
    user = reset_user(token)
    set_password(user, password)
    audit.record("password.reset", actor=user, target=user, ip=ip)
    queue_email(user.email, "password_changed", user=user, reset_url=link("auth.forgot_password"))
    return user


# --- ending sessions -----------------------------------------------------------------------


def end_all_sessions(user: User, keep_jti: str | None = None) -> None:
    """Bump the epoch so every token issued before now stops working, and, once the caller's
    unit of work has committed, drop the user's live sessions from the store (all but
    ``keep_jti``). Call it inside a ``unit_of_work()``: the store is left alone on a rollback."""
    user.session_epoch = (user.session_epoch or 0) + 1
    if user.id is not None:
        user_id = user.id
        after_commit(lambda: sessions.store().delete_for_user(user_id, keep=keep_jti))


def session_id(jti: str) -> str:
    """A public handle for a live session: never the jti itself."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"sid:{jti}".encode(), hashlib.sha256).hexdigest()[:20]


def find_session(user_id: int, sid: str) -> sessions.SessionInfo | None:
    """The user's live session with this public handle (compared in constant time), or None."""
    for info in sessions.store().list_for_user(user_id):
        if tokens.same(sid, session_id(info.jti)):
            return info
    return None
