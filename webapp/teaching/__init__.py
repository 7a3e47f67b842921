"""Blueprint `teaching`."""

from flask import Blueprint

bp = Blueprint("teaching", __name__)

from . import routes  # noqa: E402,F401 - registers the views
