"""Administration of users."""

from flask import render_template

from ..guards import admin_required
from . import bp


@bp.get("/admin/users")
@admin_required
def users():
    return render_template("admin/users.html")
