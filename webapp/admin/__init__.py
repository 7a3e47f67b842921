"""Blueprint `admin`: users and the audit log (routes.py), courses (courses.py), the email
outbox (outbox.py)."""

from flask import Blueprint

bp = Blueprint("admin", __name__)

from . import courses, outbox, routes  # noqa: E402,F401 - registers the views
