"""WSGI entry point: gunicorn wsgi:app (and FLASK_APP=wsgi:app for the flask command)."""

import sys

from webapp import create_app
from webapp.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # One line that says why, not a traceback. Exit status 3 is gunicorn's "worker failed to
    # boot": the master stops instead of starting workers again and again.
    print(f"Lectern will not start: {exc}", file=sys.stderr)
    sys.exit(3)
