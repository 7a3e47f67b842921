"""The signed-in account: profile, password, email address, deletion, and the sessions page.

Same blueprint (``auth``) as routes.py; the rules and transactions are services/profile.py.
"""

from __future__ import annotations

from flask import flash, make_response, redirect, session, url_for
from flask_login import current_user, login_required

from .. import htmx, limits, sessions, tokens
from ..extensions import client_ip
from ..filters import device
from ..services import Invalid, NotFound, accounts, profile
from . import bp
from .forms import ChangeEmailForm, ChangePasswordForm, ConfirmForm, DeleteAccountForm, NameForm


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
    return htmx.answer(page="auth/account.html", status=status, **_account_forms(**given))


def _refused(form, exc: Invalid, default_field: str) -> None:
    """Put a service's refusal next to its field; count it if it was a wrong password."""
    limits.count_wrong_password(exc)
    getattr(form, exc.field or default_field).errors.append(exc.message)


def _form_answer(form_id: str, fragment: str, message: str | None, **given):
    """One form of the account page: htmx aimed at it gets its fragment (``message``
    announced); otherwise the account page with the form's errors (422), or, once it worked, a
    redirect to the page with ``message`` flashed."""
    if message and not htmx.targets(form_id):
        flash(message, "success")
    return htmx.answer(
        fragment,
        page=None if message else "auth/account.html",
        redirect_to=url_for("auth.account"),
        ids=(form_id,),
        status=200 if message else 422,
        message=message,
        done=message,  # shown in the fragment, above the form
        **_account_forms(**given),
    )


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
            profile.change_name(current_user, form.name.data)
        except Invalid as exc:
            form.name.errors.append(exc.message)
        else:
            flash("Your name is saved.", "success")
            return redirect(url_for("auth.account"), code=303)
    return _account_page(422, name_form=form)


@bp.post("/account/password")
@limits.password_check
@login_required
def change_password():
    form = ChangePasswordForm(prefix="pw")
    form._email = current_user.email
    message = None
    if form.validate_on_submit():
        try:
            profile.change_password(
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
    fragment = "auth/partials/password_form.html"
    return _form_answer("password-form", fragment, message, password_form=form)


@bp.post("/account/email")
@limits.email_ip
@limits.email_user
@limits.new_email_address
@limits.password_check
@login_required
def change_email():
    form = ChangeEmailForm(prefix="em")
    message = None
    if form.validate_on_submit():
        try:
            profile.request_email_change(
                current_user, form.email.data, form.password.data, client_ip()
            )
        except Invalid as exc:
            _refused(form, exc, "email")
        else:
            message = "We have sent a confirmation link to the new address. Open it to finish."
            form = ChangeEmailForm(formdata=None, prefix="em")
    return _form_answer("email-form", "auth/partials/email_form.html", message, email_form=form)


def _email_problem(reason: str):
    status = 400 if reason == "invalid" else 410
    return htmx.answer(page="auth/email_problem.html", status=status, reason=reason)


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    """GET checks the link and shows a button; only the POST changes the address."""
    try:
        _user, new_email = profile.email_change_request(token)
    except tokens.TokenError as exc:
        return _email_problem(exc.reason)
    form = ConfirmForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return htmx.answer(
            page="auth/email_confirm.html",
            status=status,
            form=form,
            token=token,
            new_email=new_email,
        )
    try:
        profile.confirm_email_change(token, client_ip())
    except tokens.TokenError as exc:
        return _email_problem(exc.reason)
    flash("Your email address is changed. Use the new one to log in.", "success")
    target = "auth.account" if current_user.is_authenticated else "auth.login"
    return redirect(url_for(target), code=303)


@bp.post("/account/delete")
@limits.password_check
@login_required
def delete_account():
    form = DeleteAccountForm(prefix="del")
    if form.validate_on_submit():
        try:
            profile.delete_account(current_user, form.password.data, client_ip())
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
    return htmx.answer(
        page="auth/sessions.html",
        live=profile.list_sessions(current_user),
        current_jti=sessions.current_jti(),
        sid=accounts.session_id,
    )


@bp.post("/account/sessions/<sid>/end")
@login_required
def end_session(sid: str):
    try:
        info = profile.end_session(current_user, sid, sessions.current_jti(), client_ip())
    except (NotFound, Invalid) as exc:
        message, category = exc.message, "info"
    else:
        where = f"{device(info.user_agent)} from {info.ip or 'an unknown address'}"
        message, category = f"Session ended: {where}.", "success"
    if htmx.targets(f"session-{sid}"):
        return htmx.announce(make_response("", 200), message)  # the row goes
    flash(message, category)
    return redirect(url_for("auth.sessions"), code=303)


@bp.post("/account/sessions/end-others")
@login_required
def end_other_sessions():
    count = profile.end_other_sessions(current_user, sessions.current_jti(), client_ip())
    sessions.reissue(current_user)
    flash(f"Signed out of {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("auth.sessions"), code=303)
