"""Blueprint `learning`."""

from flask import Blueprint

bp = Blueprint("learning", __name__)

from . import routes  # noqa: E402,F401 - registers the views
