"""Blueprint `auth`: getting in (routes.py) and the signed-in account (account.py)."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import account, routes  # noqa: E402,F401 - registers the views
