"""The home page and the health endpoints."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import text

from .extensions import db, limiter
from .sessions import store

bp = Blueprint("site", __name__)


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
