"""Blueprint `authoring`."""

from flask import Blueprint

bp = Blueprint("authoring", __name__)

from . import block_routes, routes  # noqa: E402,F401 - registers the views
