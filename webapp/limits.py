"""Every rate limit of the app (Flask-Limiter; storage Redis, or memory without it).

Each limit reads its setting when a request comes (the defaults below apply when it is not
set); docs/security.md ("Throttling") says what each one is for. The IP is the socket's peer
unless TRUSTED_PROXIES says how many X-Forwarded-For hops to believe (ProxyFix).
"""

from __future__ import annotations

import time

from flask import current_app, g, request
from flask_login import current_user

from . import tokens
from .extensions import client_ip, db, limiter
from .models import User
from .services import accounts, profile, roster


def _cfg(name: str, default: str):
    return lambda: current_app.config.get(name, default)


def _form_email() -> str:
    """The address a form (``email``, or the OAuth2 token request's ``username``) or a JSON
    body (``email``) names."""
    value = request.form.get("email") or request.form.get("username")
    if value is None and request.is_json:
        body = request.get_json(silent=True)
        value = body.get("email") if isinstance(body, dict) else None
    return accounts.normalise_email(value if isinstance(value, str) else "")[:254]


def even_out(started: float) -> None:
    """Sign-up, resend and forgot do more work for a registered address (an email rendered, an
    outbox row): wait out a fixed floor (EMAIL_FORM_MIN_SECONDS) so that the answer takes the
    same time whichever the address. Pages and the API alike."""
    remaining = current_app.config["EMAIL_FORM_MIN_SECONDS"] - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


def _new_email_key() -> str:
    return "address:" + accounts.normalise_email(request.form.get("em-email", ""))[:254]


def _user_key() -> str:
    if request.path.startswith("/api/"):  # the bearer's user: the API never reads the cookie
        sub = tokens.bearer_subject()
        return f"user:{sub}" if sub is not None else "anonymous:" + client_ip()
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return "anonymous:" + client_ip()  # login_required sends these away anyway


def _failed(response) -> bool:
    """A refused log-in: the form again (422), or the API's refused password grant."""
    return response.status_code == 422 or bool(g.get("login_failed"))


def _not_a_password_login() -> bool:
    """The API's refresh grant names no account: only the per-IP limit applies to it."""
    return request.form.get("grant_type", "password") != "password"


def _lockout(request_limit) -> None:
    accounts.record_lockout(_form_email(), client_ip())


def count_wrong_password(exc: Exception) -> None:
    """Count a service's refusal against ``password_check`` if it was a wrong password."""
    g.wrong_password = isinstance(exc, profile.WrongPassword)


def _wrong_password(response) -> bool:
    return bool(g.get("wrong_password"))


def _password_lockout(request_limit) -> None:
    if _is_api():
        sub = tokens.bearer_subject()
        user = db.session.get(User, sub) if sub is not None else None
        if user is not None:
            profile.record_password_lockout(user, client_ip())
    elif current_user.is_authenticated:
        profile.record_password_lockout(current_user, client_ip())


# Log-in, per IP and per account; only failed attempts count. Shared by the log-in page and
# the API's token endpoint: one budget per account and per address, whichever door is tried.
login_ip = limiter.shared_limit(
    _cfg("LOGIN_LIMIT_IP", "50 per 15 minutes"),
    scope="login-ip",
    methods=["POST"],
    deduct_when=_failed,
)
login_account = limiter.shared_limit(
    _cfg("LOGIN_LIMIT_ACCOUNT", "10 per 15 minutes"),
    scope="login-account",
    key_func=lambda: "account:" + _form_email(),
    methods=["POST"],
    exempt_when=_not_a_password_login,
    deduct_when=_failed,
    on_breach=_lockout,
)
# Forms that send email: per IP, and per address so nobody can flood one inbox.
email_ip = limiter.limit(_cfg("EMAIL_LIMIT_IP", "30 per hour"), methods=["POST"])
email_address = limiter.limit(
    _cfg("EMAIL_LIMIT_ADDRESS", "5 per hour"),
    key_func=lambda: "address:" + _form_email(),
    methods=["POST"],
)
# The change-email form sends email too: per IP, per signed-in user, per target address.
email_user = limiter.limit(
    _cfg("EMAIL_LIMIT_USER", "10 per hour"), key_func=_user_key, methods=["POST"]
)
new_email_address = limiter.limit(
    _cfg("EMAIL_LIMIT_ADDRESS", "5 per hour"), key_func=_new_email_key, methods=["POST"]
)
# Wrong current passwords given by a signed-in user (change password, change email, delete
# account), one count shared by the three forms: a stolen session gets no unlimited guesses.
password_check = limiter.shared_limit(
    _cfg("PASSWORD_CHECK_LIMIT", "10 per 15 minutes"),
    scope="password-check",
    key_func=_user_key,
    methods=["POST"],
    deduct_when=_wrong_password,
    on_breach=_password_lockout,
)


def _enrol_cost() -> int:
    """Every address of a paste counts against the hourly budget (a refused paste costs nothing)."""
    emails = request.form.get("emails")
    if emails is None and request.is_json:
        body = request.get_json(silent=True)
        emails = body.get("emails") if isinstance(body, dict) else None
    n = len(roster.parse_addresses(emails if isinstance(emails, str) else ""))
    return max(1, min(n, roster.MAX_ENROL_ADDRESSES))


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _enroller() -> str | None:
    """The teacher enrolling: the bearer's user on the API (never the cookie), else the page's."""
    if _is_api():
        sub = tokens.bearer_subject()
        return None if sub is None else str(sub)
    return current_user.get_id() if current_user.is_authenticated else None


# "No such student" tells the teacher who was not enrolled, so enrolling by email is also a way
# to ask whether an address is a student's account. A per-teacher budget of addresses keeps that
# from becoming an enumeration oracle (docs/teaching.md).
# One budget per teacher, shared by the roster page and the API.
enrol = limiter.shared_limit(
    _cfg("ENROL_LIMIT", "500 per hour"),
    scope="enrol",
    key_func=lambda: f"enrol-teacher:{_enroller()}",
    methods=["POST"],
    exempt_when=lambda: _enroller() is None,
    deduct_when=lambda response: response.status_code < 400,
    cost=_enrol_cost,
)
