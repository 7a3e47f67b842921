"""Sign-in, sign-out and the account pages."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import sessions
from ..extensions import client_ip
from ..htmx import hx_redirect
from ..services import accounts
from ..site import home_endpoint
from . import bp
from .forms import LoginForm

_UNSAFE = re.compile(r"[\x00-\x20\\]")


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a same-site relative path, else None (no open redirects)."""
    if not target or _UNSAFE.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)), code=303)
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    if form.validate_on_submit():
        result = accounts.authenticate(form.email.data, form.password.data)
        ip = client_ip()
        if result.outcome == "ok":
            sessions.start(result.user, form.remember.data, ip, request.user_agent.string)
            accounts.record_login(result.user, ip)
            return hx_redirect(next_url or url_for(home_endpoint(result.user)))
        accounts.record_login_failure(form.email.data, result.user, ip)
        form.password.errors.append("That email and password do not match an active account.")
    return render_template("auth/login.html", form=form, next_url=next_url), (
        422 if form.is_submitted() else 200
    )


@bp.post("/logout")
def logout():
    # CSRF is checked by CSRFProtect before we get here.
    sessions.end_current()
    flash("You are signed out.", "info")
    return hx_redirect(url_for("site.home"))


@bp.get("/signup")
def signup():
    return render_template("auth/placeholder.html", title="Sign up")


@bp.get("/password/forgot")
def forgot_password():
    return render_template("auth/placeholder.html", title="Forgot password")


@bp.get("/account")
def account():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    flash("Account settings are coming.", "info")
    return render_template("auth/placeholder.html", title="Account")
