"""Learning for students."""

from flask import render_template
from flask_login import login_required

from . import bp


@bp.get("/courses")
def catalogue():
    return render_template("learning/catalogue.html")


@bp.get("/learn")
@login_required
def my_learning():
    return render_template("learning/my_learning.html")
