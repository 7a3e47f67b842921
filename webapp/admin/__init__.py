"""Blueprint `admin`: users and the audit log (routes.py), courses (courses.py)."""

from flask import Blueprint

bp = Blueprint("admin", __name__)

from . import courses, routes  # noqa: E402,F401 - registers the views
