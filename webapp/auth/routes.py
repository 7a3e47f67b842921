"""Sign-up, activation, sign-in and out, password reset, the account and its sessions."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

from flask import (
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from .. import sessions, tokens
from ..extensions import client_ip, limiter
from ..htmx import hx_redirect, targets
from ..services import Invalid, NotFound, accounts
from ..site import home_endpoint
from . import bp
from .forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ConfirmForm,
    DeleteAccountForm,
    EmailOnlyForm,
    LoginForm,
    NameForm,
    NewPasswordForm,
    SignupForm,
)

_UNSAFE = re.compile(r"[\x00-\x20\\]")
RESET_KEY = "reset_token"
INVITE_KEY = "invite_token"


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a same-site relative path, else None (no open redirects)."""
    if not target or _UNSAFE.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _form_email() -> str:
    return accounts.normalise_email(request.form.get("email", ""))[:254]


def _failed(response) -> bool:
    return response.status_code == 422


def _lockout(request_limit) -> None:
    accounts.record_lockout(_form_email(), client_ip())


def _cfg(name: str, default: str):
    return lambda: current_app.config.get(name, default)


# Per IP and per account; only failed attempts count. The IP is the socket's peer unless
# TRUSTED_PROXIES says how many X-Forwarded-For hops to believe (ProxyFix).
login_ip_limit = limiter.limit(
    _cfg("LOGIN_LIMIT_IP", "50 per 15 minutes"), methods=["POST"], deduct_when=_failed
)
login_account_limit = limiter.limit(
    _cfg("LOGIN_LIMIT_ACCOUNT", "10 per 15 minutes"),
    key_func=lambda: "account:" + _form_email(),
    methods=["POST"],
    deduct_when=_failed,
    on_breach=_lockout,
)
# Forms that send email: per IP, and per address so nobody can flood one inbox.
email_ip_limit = limiter.limit(_cfg("EMAIL_LIMIT_IP", "30 per hour"), methods=["POST"])
email_address_limit = limiter.limit(
    _cfg("EMAIL_LIMIT_ADDRESS", "5 per hour"),
    key_func=lambda: "address:" + _form_email(),
    methods=["POST"],
)


def _user_key() -> str:
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return "anonymous:" + client_ip()  # login_required sends these away anyway


def _new_email_key() -> str:
    return "address:" + accounts.normalise_email(request.form.get("em-email", ""))[:254]


# The change-email form sends email too: per IP, per signed-in user, per target address.
email_user_limit = limiter.limit(
    _cfg("EMAIL_LIMIT_USER", "10 per hour"), key_func=_user_key, methods=["POST"]
)
new_email_address_limit = limiter.limit(
    _cfg("EMAIL_LIMIT_ADDRESS", "5 per hour"), key_func=_new_email_key, methods=["POST"]
)


def _wrong_password(response) -> bool:
    return bool(g.get("wrong_password"))


def _password_lockout(request_limit) -> None:
    if current_user.is_authenticated:
        accounts.record_password_lockout(current_user, client_ip())


# Wrong current passwords given by a signed-in user (change password, change email, delete
# account), one count shared by the three forms: a stolen session gets no unlimited guesses.
password_check_limit = limiter.shared_limit(
    _cfg("PASSWORD_CHECK_LIMIT", "10 per 15 minutes"),
    scope="password-check",
    key_func=_user_key,
    methods=["POST"],
    deduct_when=_wrong_password,
    on_breach=_password_lockout,
)


def _refused(form, exc: Invalid, default_field: str) -> None:
    """Put a service's refusal next to its field; count it if it was a wrong password."""
    g.wrong_password = isinstance(exc, accounts.WrongPassword)
    getattr(form, exc.field or default_field).errors.append(exc.message)


def _even_out(started: float) -> None:
    """Sign-up, resend and forgot do more work for a registered address (an email rendered, an
    outbox row): wait out a fixed floor (EMAIL_FORM_MIN_SECONDS) so that the answer takes the
    same time whichever the address."""
    remaining = current_app.config["EMAIL_FORM_MIN_SECONDS"] - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


def _render(template: str, status: int = 200, **ctx):
    return make_response(render_template(template, **ctx), status)


# --- log in and out -------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@login_ip_limit
@login_account_limit
def login():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)), code=303)
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    notice = None
    if form.validate_on_submit():
        result = accounts.authenticate(form.email.data, form.password.data)
        ip = client_ip()
        if result.outcome == "ok":
            sessions.start(result.user, form.remember.data, ip, request.user_agent.string)
            accounts.record_login(result.user, ip)
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
    status = 422 if form.is_submitted() else 200
    return _render("auth/login.html", status, form=form, next_url=next_url, notice=notice)


@bp.post("/logout")
def logout():
    # CSRF is checked by CSRFProtect before we get here.
    sessions.end_current()
    flash("You are signed out.", "info")
    return hx_redirect(url_for("site.home"))


# --- sign up and activate -------------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
@email_ip_limit
@email_address_limit
def signup():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)), code=303)
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
            _even_out(started)
            return redirect(url_for("auth.signup_sent"), code=303)
    return _render("auth/signup.html", 422 if form.is_submitted() else 200, form=form)


@bp.post("/signup/validate/<field>")
def validate_signup(field: str):
    """Inline validation of one sign-up field as the user leaves it. Never says whether an
    address is registered: only its form is checked."""
    form = SignupForm(meta={"csrf": False})
    if field not in ("name", "email", "password", "confirm"):
        return _render("auth/partials/feedback.html", 404, field_id=field, errors=[])
    target = getattr(form, field)
    if target.data or field == "confirm":
        target.validate(form)
    if field == "confirm" and not form.confirm.data:
        target.errors = []
    return _render("auth/partials/feedback.html", field_id=target.id, errors=list(target.errors))


@bp.get("/signup/sent")
def signup_sent():
    return _render("auth/sent.html", kind="signup")


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
    status = 422 if form.is_submitted() else 200
    return _render("auth/activate.html", status, form=form, token=token)


@bp.route("/activate/resend", methods=["GET", "POST"])
@email_ip_limit
@email_address_limit
def resend_activation():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        started = time.monotonic()
        accounts.resend_activation(form.email.data)
        _even_out(started)
        return redirect(url_for("auth.resend_sent"), code=303)
    return _render("auth/resend.html", 422 if form.is_submitted() else 200, form=form)


@bp.get("/activate/sent")
def resend_sent():
    return _render("auth/sent.html", kind="activation")


def _link_problem(purpose: str, reason: str):
    """A clear page for a used, expired or broken link, with a form for a new one."""
    return _render(
        "auth/link_problem.html",
        400 if reason == "invalid" else 410,
        purpose=purpose,
        reason=reason,
        form=EmailOnlyForm(),
    )


# --- forgotten password ---------------------------------------------------------------------


@bp.route("/password/forgot", methods=["GET", "POST"])
@email_ip_limit
@email_address_limit
def forgot_password():
    form = EmailOnlyForm()
    if form.validate_on_submit():
        started = time.monotonic()
        accounts.request_password_reset(form.email.data, client_ip())
        _even_out(started)
        return redirect(url_for("auth.forgot_sent"), code=303)
    return _render("auth/forgot.html", 422 if form.is_submitted() else 200, form=form)


@bp.get("/password/forgot/sent")
def forgot_sent():
    return _render("auth/sent.html", kind="reset")


@bp.get("/password/reset/<token>")
def reset_password_token(token: str):
    """Keep the token in the session and move to a URL without it (no Referer leak)."""
    session[RESET_KEY] = token
    return redirect(url_for("auth.reset_password"), code=303)


@bp.route("/password/reset", methods=["GET", "POST"])
def reset_password():
    token = session.get(RESET_KEY, "")
    try:
        user = accounts.reset_user(token)
    except tokens.TokenError as exc:
        session.pop(RESET_KEY, None)
        return _link_problem("reset", exc.reason if token else "invalid")
    form = NewPasswordForm()
    form._email = user.email
    if form.validate_on_submit():
        try:
            accounts.reset_password(token, form.password.data, client_ip())
        except tokens.TokenError as exc:
            return _link_problem("reset", exc.reason)
        except Invalid as exc:
            form.password.errors.append(exc.message)
        else:
            session.pop(RESET_KEY, None)
            sessions.end_current()
            flash(
                "Your password has been changed and every session was signed out. "
                "Log in with the new password.",
                "success",
            )
            return redirect(url_for("auth.login"), code=303)
    status = 422 if form.is_submitted() else 200
    return _render("auth/new_password.html", status, form=form, user=user, purpose="reset")


@bp.get("/invite/<token>")
def accept_invite(token: str):
    session[INVITE_KEY] = token
    return redirect(url_for("auth.set_password"), code=303)


@bp.route("/invite", methods=["GET", "POST"])
def set_password():
    token = session.get(INVITE_KEY, "")
    try:
        user = accounts.invited_user(token)
    except tokens.TokenError as exc:
        session.pop(INVITE_KEY, None)
        return _link_problem("invite", exc.reason if token else "invalid")
    form = NewPasswordForm()
    form._email = user.email
    if form.validate_on_submit():
        try:
            accounts.accept_invitation(token, form.password.data, client_ip())
        except tokens.TokenError as exc:
            return _link_problem("invite", exc.reason)
        except Invalid as exc:
            form.password.errors.append(exc.message)
        else:
            session.pop(INVITE_KEY, None)
            flash("Your password is set and your account is active. Log in to start.", "success")
            return redirect(url_for("auth.login"), code=303)
    status = 422 if form.is_submitted() else 200
    return _render("auth/new_password.html", status, form=form, user=user, purpose="invite")


# --- the account ----------------------------------------------------------------------------


def _account_forms(**given):
    forms = {
        "name_form": NameForm(formdata=None, obj=current_user, prefix="profile"),
        "password_form": ChangePasswordForm(formdata=None, prefix="pw"),
        "email_form": ChangeEmailForm(formdata=None, prefix="em"),
        "delete_form": DeleteAccountForm(formdata=None, prefix="del"),
    }
    forms.update(given)
    return forms


def _account_page(status: int = 200, **given):
    return _render("auth/account.html", status, **_account_forms(**given))


def _form_fragment(form_id: str, fragment: str, status: int, message: str | None, **ctx):
    """htmx aimed at this form: the form's fragment (with a message announced); else None."""
    if not targets(form_id):
        return None
    resp = _render(fragment, status, message=message, **ctx)
    if message:
        resp.headers["HX-Trigger"] = json.dumps({"announce": message})
    return resp


@bp.get("/account")
@login_required
def account():
    return _account_page()


@bp.post("/account/name")
@login_required
def change_name():
    form = NameForm(prefix="profile")
    if form.validate_on_submit():
        try:
            accounts.change_name(current_user, form.name.data)
        except Invalid as exc:
            form.name.errors.append(exc.message)
        else:
            flash("Your name is saved.", "success")
            return redirect(url_for("auth.account"), code=303)
    return _account_page(422, name_form=form)


@bp.post("/account/password")
@password_check_limit
@login_required
def change_password():
    form = ChangePasswordForm(prefix="pw")
    form._email = current_user.email
    message = None
    if form.validate_on_submit():
        try:
            accounts.change_password(
                current_user,
                form.current_password.data,
                form.new_password.data,
                sessions.current_jti(),
                client_ip(),
            )
        except Invalid as exc:
            _refused(form, exc, "new_password")
        else:
            sessions.reissue(current_user)
            message = "Your password is changed. Your other sessions were signed out."
            form = ChangePasswordForm(formdata=None, prefix="pw")
    status = 422 if form.errors else 200
    fragment = _form_fragment(
        "password-form", "auth/partials/password_form.html", status, message, password_form=form
    )
    if fragment is not None:
        return fragment
    if message:
        flash(message, "success")
        return redirect(url_for("auth.account"), code=303)
    return _account_page(422, password_form=form)


@bp.post("/account/email")
@email_ip_limit
@email_user_limit
@new_email_address_limit
@password_check_limit
@login_required
def change_email():
    form = ChangeEmailForm(prefix="em")
    message = None
    if form.validate_on_submit():
        try:
            accounts.request_email_change(
                current_user, form.email.data, form.password.data, client_ip()
            )
        except Invalid as exc:
            _refused(form, exc, "email")
        else:
            message = "We have sent a confirmation link to the new address. Open it to finish."
            form = ChangeEmailForm(formdata=None, prefix="em")
    status = 422 if form.errors else 200
    fragment = _form_fragment(
        "email-form", "auth/partials/email_form.html", status, message, email_form=form
    )
    if fragment is not None:
        return fragment
    if message:
        flash(message, "success")
        return redirect(url_for("auth.account"), code=303)
    return _account_page(422, email_form=form)


def _email_problem(reason: str):
    return _render("auth/email_problem.html", 400 if reason == "invalid" else 410, reason=reason)


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    """GET checks the link and shows a button; only the POST changes the address."""
    try:
        _user, new_email = accounts.email_change_request(token)
    except tokens.TokenError as exc:
        return _email_problem(exc.reason)
    form = ConfirmForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _render(
            "auth/email_confirm.html", status, form=form, token=token, new_email=new_email
        )
    try:
        accounts.confirm_email_change(token, client_ip())
    except tokens.TokenError as exc:
        return _email_problem(exc.reason)
    flash("Your email address is changed. Use the new one to log in.", "success")
    target = "auth.account" if current_user.is_authenticated else "auth.login"
    return redirect(url_for(target), code=303)


@bp.post("/account/delete")
@password_check_limit
@login_required
def delete_account():
    form = DeleteAccountForm(prefix="del")
    if form.validate_on_submit():
        try:
            accounts.delete_account(current_user, form.password.data, client_ip())
        except Invalid as exc:  # NotAllowed (not a student) answers 403 via errors.py
            _refused(form, exc, "password")
        else:
            session.clear()
            flash("Your account and everything in it has been deleted.", "info")
            return redirect(url_for("site.home"), code=303)
    return _account_page(422, delete_form=form)


# --- sessions -------------------------------------------------------------------------------


@bp.get("/account/sessions", endpoint="sessions")
@login_required
def sessions_page():
    return _render(
        "auth/sessions.html",
        live=accounts.list_sessions(current_user),
        current_jti=sessions.current_jti(),
        sid=accounts.session_id,
    )


@bp.post("/account/sessions/<sid>/end")
@login_required
def end_session(sid: str):
    try:
        accounts.end_session(current_user, sid, sessions.current_jti(), client_ip())
    except (NotFound, Invalid) as exc:
        message = exc.message
    else:
        message = "Session ended."
    if targets(f"session-{sid}"):
        resp = make_response("", 200)  # the row goes
        resp.headers["HX-Trigger"] = json.dumps({"announce": message})
        return resp
    flash(message, "success" if message == "Session ended." else "info")
    return redirect(url_for("auth.sessions"), code=303)


@bp.post("/account/sessions/end-others")
@login_required
def end_other_sessions():
    count = accounts.end_other_sessions(current_user, sessions.current_jti(), client_ip())
    sessions.reissue(current_user)
    flash(f"Signed out of {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("auth.sessions"), code=303)


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


@bp.app_template_filter("duration")
def duration(seconds: int) -> str:
    """A lifetime from the settings in words: "2 hours", "30 days", "90 minutes"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


@bp.app_template_filter("device")
def device(user_agent: str | None) -> str:
    """A short human name for a User-Agent string: "Firefox on Windows"."""
    ua = user_agent or ""
    browser = next((name for key, name in _BROWSERS if key in ua), None)
    system = next((name for key, name in _SYSTEMS if key in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or (ua[:40] if ua else "Unknown device")
