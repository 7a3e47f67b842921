"""gunicorn settings for tests/test_restarts.py only: the project's gunicorn.conf.py as it is,
plus two test-only hooks (``gunicorn -c tests/restart_hooks.py wsgi:app``).

- To ``RESTART_TEST_LOG``, each worker writes ``ready - <pid>`` once it has loaded the app,
  and ``start <X-Test-Id> <pid>`` for every request it starts: the test knows which workers
  serve, and tells a request the app accepted from one it never saw.
- With ``RESTART_TEST_SLOW`` set, a request carrying ``X-Test-Slow`` waits that many seconds
  inside its transaction (a completion: after its INSERT, before the enrolment's UPDATE), and
  says so in the log (``slow <X-Test-Id> <pid>``), so the test can send the signal while it is
  really in flight, half written.

The product has no such path: these hooks exist only in the process this file configures.
"""

import os
import time
from pathlib import Path

_PROJECT = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"
# Run as if it were that file (it finds webapp/logs.py and .env beside itself), then back.
_OWN, __file__ = __file__, str(_PROJECT)
exec(compile(_PROJECT.read_text(), str(_PROJECT), "exec"))  # noqa: S102 - the settings, unchanged
__file__ = _OWN

_LOG = os.environ["RESTART_TEST_LOG"]
_SLOW = float(os.environ.get("RESTART_TEST_SLOW") or 0)


def _note(line: str) -> None:
    """One line, appended atomically (several workers write to the file)."""
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def pre_request(worker, req):
    tag = next((value for name, value in req.headers if name == "X-TEST-ID"), None)
    if tag:
        _note(f"start {tag} {os.getpid()}")


def post_worker_init(worker):
    _note(f"ready - {os.getpid()}")  # the app is loaded: this worker serves from now on
    if not _SLOW:
        return
    from flask import request

    from webapp.services import learning

    settle = learning._settle

    def slow_settle(held, **values):
        tag = request.headers.get("X-Test-Slow")
        if tag:
            _note(f"slow {tag} {os.getpid()}")
            time.sleep(_SLOW)  # gunicorn's SIGTERM handler does not interrupt it (PEP 475)
        return settle(held, **values)

    learning._settle = slow_settle
