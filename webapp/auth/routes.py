"""Getting in: sign-up, activation, log-in and log-out, the forgotten password, invitations.

The signed-in account pages are in account.py; the rate limits in webapp/limits.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import flash, redirect, request, session, url_for
from flask_login import current_user

from .. import limits, sessions, tokens
from ..extensions import client_ip
from ..htmx import answer, hx_redirect
from ..services import Invalid, accounts
from ..site import home_endpoint
from ..urls import safe_next
from . import bp
from .forms import ConfirmForm, EmailOnlyForm, LoginForm, NewPasswordForm, SignupForm


def _status(form) -> int:
    return 422 if form.is_submitted() else 200


def _home_if_signed_in():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)), code=303)
    return None


def _link_problem(purpose: str, reason: str):
    """A clear page for a used, expired or broken link, with a form for a new one."""
    status = 400 if reason == "invalid" else 410
    form = EmailOnlyForm()
    return answer(
        page="auth/link_problem.html", status=status, purpose=purpose, reason=reason, form=form
    )


# --- log in and out -------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limits.login_ip
@limits.login_account
def login():
    if (home := _home_if_signed_in()) is not None:
        return home
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    notice = None
    if form.validate_on_submit():
        result = accounts.authenticate(form.email.data, form.password.data)
        ip = client_ip()
        if result.outcome == "ok":
            # Audited first, then the session opens: a log-in the database did not record
            # (it failed mid-way: 503) leaves no live session and no cookie behind.
            accounts.record_login(result.user, ip)
            sessions.start(result.user, form.remember.data, ip, request.user_agent.string)
            return hx_redirect(next_url or url_for(home_endpoint(result.user)))
        if result.outcome == "pending":
            accounts.record_pending_login(result.user, ip)
            notice = (
                "Your account is not activated yet. We have sent you a new activation link: "
                "open it, then log in."
            )
        else:
            accounts.record_login_failure(form.email.data, result.user, ip)
            form.password.errors.append("That email and password do not match an active account.")
    return answer(
        page="auth/login.html", status=_status(form), form=form, next_url=next_url, notice=notice
    )


@bp.post("/logout")
def logout():
    # CSRF is checked by CSRFProtect before we get here.
    sessions.end_current()
    flash("You are signed out.", "info")
    return hx_redirect(url_for("site.home"))


# --- sign up and activate -------------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
@limits.email_ip
@limits.email_address
def signup():
    if (home := _home_if_signed_in()) is not None:
        return home
    form = SignupForm()
    if form.validate_on_submit():
        started = time.monotonic()
        try:
            accounts.sign_up(
                form.name.data, form.email.data, form.password.data, form.role.data, client_ip()
            )
        except Invalid as exc:
            getattr(form, exc.field or "email").errors.append(exc.message)
        else:
            limits.even_out(started)
            return redirect(url_for("auth.signup_sent"), code=303)
    return answer(page="auth/signup.html", status=_status(form), form=form)


@bp.post("/signup/validate/<field>")
def validate_signup(field: str):
    """Inline validation of one sign-up field as the user leaves it. Never says whether an
    address is registered: only its form is checked."""
    form = SignupForm(meta={"csrf": False})
    if field not in ("name", "email", "password", "confirm"):
        return answer(page="auth/partials/feedback.html", status=404, field_id=field, errors=[])
    target = getattr(form, field)
    if target.data or field == "confirm":
        target.validate(form)
    if field == "confirm" and not form.confirm.data:
        target.errors = []
    errors = list(target.errors)
    return answer(page="auth/partials/feedback.html", field_id=target.id, errors=errors)


@bp.get("/signup/sent")
def signup_sent():
    return answer(page="auth/sent.html", kind="signup")


@bp.route("/activate/<token>", methods=["GET", "POST"])
def activate(token: str):
    """GET checks the link and shows a button; only the POST activates, so a mail scanner
    that opens every link changes nothing."""
    try:
        accounts.activation_user(token)
    except tokens.TokenError as exc:
        return _link_problem("activate", exc.reason)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            accounts.activate(token, client_ip())
        except tokens.TokenError as exc:
            return _link_problem("activate", exc.reason)
        flash("Your account is active. Log in to start.", "success")
        return redirect(url_for("auth.login"), code=303)
    return answer(page="auth/activate.html", status=_status(form), form=form, token=token)


def _email_form(service, template: str, sent_endpoint: str):
    """A form that asks for an address and mails it (or not): always the same answer."""
    form = EmailOnlyForm()
    if form.validate_on_submit():
        started = time.monotonic()
        service(form.email.data)
        limits.even_out(started)
        return redirect(url_for(sent_endpoint), code=303)
    return answer(page=template, status=_status(form), form=form)


@bp.route("/activate/resend", methods=["GET", "POST"])
@limits.email_ip
@limits.email_address
def resend_activation():
    return _email_form(accounts.resend_activation, "auth/resend.html", "auth.resend_sent")


@bp.get("/activate/sent")
def resend_sent():
    return answer(page="auth/sent.html", kind="activation")


# --- forgotten password and invitations -----------------------------------------------------


@bp.route("/password/forgot", methods=["GET", "POST"])
@limits.email_ip
@limits.email_address
def forgot_password():
    def request_reset(email: str) -> None:
        accounts.request_password_reset(email, client_ip())

    return _email_form(request_reset, "auth/forgot.html", "auth.forgot_sent")


@bp.get("/password/forgot/sent")
def forgot_sent():
    return answer(page="auth/sent.html", kind="reset")


@dataclass(frozen=True)
class PasswordLink:
    """A link that leads to a new-password form: a reset, or an admin's invitation.

    Opening it keeps the token in the session (under ``key``) and moves to ``form_endpoint``,
    a URL without the token (no Referer or history leak). There ``find_user(token)`` checks the
    token and ``apply(token, password, ip)`` sets the password; then the token is forgotten
    (and, with ``sign_out``, this browser's session ended) and the user is sent to log in.
    """

    purpose: str
    key: str
    form_endpoint: str
    find_user: Callable
    apply: Callable
    sign_out: bool
    done: str


RESET = PasswordLink(
    "reset",
    "reset_token",
    "auth.reset_password",
    accounts.reset_user,
    accounts.reset_password,
    sign_out=True,
    done="Your password has been changed and every session was signed out. "
    "Log in with the new password.",
)
INVITE = PasswordLink(
    "invite",
    "invite_token",
    "auth.set_password",
    accounts.invited_user,
    accounts.accept_invitation,
    sign_out=False,
    done="Your password is set and your account is active. Log in to start.",
)


@bp.get("/password/reset/<token>")
def reset_password_token(token: str):
    return _keep_token(RESET, token)


@bp.route("/password/reset", methods=["GET", "POST"])
def reset_password():
    return _new_password(RESET)


@bp.get("/invite/<token>")
def accept_invite(token: str):
    return _keep_token(INVITE, token)


@bp.route("/invite", methods=["GET", "POST"])
def set_password():
    return _new_password(INVITE)


def _keep_token(link: PasswordLink, token: str):
    session[link.key] = token
    return redirect(url_for(link.form_endpoint), code=303)


def _new_password(link: PasswordLink):
    token = session.get(link.key, "")
    try:
        user = link.find_user(token)
    except tokens.TokenError as exc:
        session.pop(link.key, None)
        return _link_problem(link.purpose, exc.reason if token else "invalid")
    form = NewPasswordForm()
    form._email = user.email
    if form.validate_on_submit():
        try:
            link.apply(token, form.password.data, client_ip())
        except tokens.TokenError as exc:
            return _link_problem(link.purpose, exc.reason)
        except Invalid as exc:
            form.password.errors.append(exc.message)
        else:
            session.pop(link.key, None)
            if link.sign_out:
                sessions.end_current()
            flash(link.done, "success")
            return redirect(url_for("auth.login"), code=303)
    ctx = {"form": form, "user": user, "purpose": link.purpose}
    return answer(page="auth/new_password.html", status=_status(form), **ctx)
