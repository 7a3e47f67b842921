"""The home page and the health endpoints."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import text

from .extensions import db, limiter
from .models import Theme
from .services import profile
from .sessions import store
from .urls import safe_next

bp = Blueprint("site", __name__)

THEME_COOKIE = "theme"
YEAR = 365 * 24 * 3600


def theme_of(user) -> str:
    """The colour theme a page is drawn in: a signed-in person's own choice, else this
    browser's cookie, else the system's (``prefers-color-scheme``)."""
    if user.is_authenticated:
        return user.theme
    chosen = request.cookies.get(THEME_COOKIE, "")
    return chosen if chosen in set(Theme) else Theme.SYSTEM


@bp.app_context_processor
def _theme():
    """``page_theme()`` for layout.html: the theme and where the toggle comes back to. A
    function, so a fragment (which has no layout) never reads the user's row again after a
    commit expired it."""

    def page_theme() -> dict:
        here = request.full_path.rstrip("?") if request.method == "GET" else None
        return {"name": theme_of(current_user), "next": here}

    return {"page_theme": page_theme} if has_request_context() else {}


@bp.post("/theme")
def theme():
    """The theme toggle (a plain form in the footer): kept on the account when signed in, and
    in a cookie for this browser either way (it stays after logging out)."""
    choice = request.form.get("theme", "")
    if choice not in set(Theme):
        abort(400)
    if current_user.is_authenticated:
        profile.change_theme(current_user, choice)
    response = redirect(safe_next(request.form.get("next")) or url_for("site.home"), code=303)
    response.set_cookie(
        THEME_COOKIE,
        choice,
        max_age=YEAR,
        httponly=True,
        samesite="Lax",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )
    return response


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)), code=303)
    return render_template("home.html")


def home_endpoint(user) -> str:
    """Where a signed-in user starts: their role's home page."""
    return {"admin": "admin.users", "teacher": "authoring.dashboard"}.get(
        user.role, "learning.my_learning"
    )


@bp.get("/healthz")
@limiter.exempt
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
@limiter.exempt
def readyz():
    checks = {"database": False, "sessions": False}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:  # noqa: BLE001 - readiness reports, it does not explain
        current_app.logger.warning("readyz: database unreachable")
    checks["sessions"] = store().ping()
    ok = all(checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), (200 if ok else 503)
