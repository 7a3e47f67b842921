"""Accounts: passwords, sign-in checks, activation and the session epoch."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import Role, User, utcnow
from . import audit

# Checked against when the email is unknown, so both paths cost one scrypt verification.
_DUMMY_HASH = generate_password_hash("lectern-dummy-password-for-timing")


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


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


def end_all_sessions(user: User) -> None:
    """Bump the epoch: every token issued before now stops working (the caller commits)."""
    user.session_epoch = (user.session_epoch or 0) + 1
