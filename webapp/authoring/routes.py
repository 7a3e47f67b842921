"""Course authoring for teachers."""

from flask import render_template
from flask_login import login_required

from . import bp


@bp.get("/teach")
@login_required
def dashboard():
    return render_template("authoring/dashboard.html")
