"""gunicorn settings for production: gunicorn -c gunicorn.conf.py wsgi:app"""

import glob
import importlib.util
import multiprocessing
import os
from pathlib import Path

from dotenv import dotenv_values
from gunicorn.glogging import Logger

# Sized by measurement (make bench BENCH_ARGS=--tune; docs/performance.md, "gunicorn.conf.py").
# Sync workers, two per core: a request is CPU work in Python plus waits on PostgreSQL and Redis,
# and a second worker per core fills those waits. A sync worker accepts a connection only when
# it is free, so requests queue once, in the kernel, first come first served; gthread workers
# accept while busy and queue behind their own threads, which on the 2-core machine doubled the
# p95 of pages at 16 connections for no more throughput. More workers than 2 per core only added
# contention. GUNICORN_THREADS > 1 switches to gthread (keepalive applies to it only).
bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A sync worker that runs longer than this is killed: the CSV exports of a course of 2,000
# students and 1,000 blocks stream for 13-18 s on the 2-core machine.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 20
keepalive = 5
# No recycling: a worker restart costs about 1.2 s of CPU (importing the app) and the p99 of
# everything served meanwhile; every 2,000 requests that was half a /healthz's CPU again.
# MAX_REQUESTS turns it on, with 10 % jitter so that workers do not restart together.
max_requests = int(os.environ.get("MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn 27 opens a control socket (for gunicornc) at one path per user, $HOME/.gunicorn/:
# two instances on one host would share it. Lectern does not use it; signals do the same work.
control_socket_disable = True

# Email links carry one-purpose tokens in their path (activation, password reset, invitation,
# email change). The access log writes "[redacted]" in their place, in the request line, the
# path and the Referer alike, so no token is written to the application log (docs/admin.md).
# The rule is webapp/logs.py's, loaded by its path: importing the webapp package here would
# load the whole app into the master, and a reload (SIGHUP) would keep that old code.
_spec = importlib.util.spec_from_file_location(
    "lectern_logs", Path(__file__).resolve().parent / "webapp" / "logs.py"
)
logs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(logs)

# Logs (docs/operations.md, "Logs"): LOG_FORMAT as the app reads it (the environment, then .env).
# JSON: every line on stderr is one JSON object, and the app writes one access line per request
# (route, user, status, duration), so gunicorn's own access log, which would say it all again,
# is off. Text: gunicorn's access log, redacted as below.
_settings = {**dotenv_values(Path(__file__).resolve().parent / ".env"), **os.environ}
LOG_FORMAT = logs.choose_format(_settings.get("LOG_FORMAT"), _settings.get("LECTERN_ENV", ""))
# The access log costs about 0.05 ms a line (with the redaction below).
accesslog = None if LOG_FORMAT == "json" else "-"
errorlog = "-"


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        if LOG_FORMAT == "json":
            for handler in self.error_log.handlers:
                handler.setFormatter(logs.JsonFormatter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        text = "\n".join(v for v in atoms.values() if isinstance(v, str))
        if not logs.might_hold_token(text):
            return atoms
        return {k: logs.redact(v) if isinstance(v, str) else v for k, v in atoms.items()}


logger_class = RedactingLogger


# Metrics (docs/operations.md, "Metrics"): with PROMETHEUS_MULTIPROC_DIR set, each worker writes
# its counts to files there and a scrape adds them all up. The directory is emptied when
# gunicorn starts (counts of an earlier run would be added in), and a worker that exits is
# marked dead so that prometheus_client drops its live gauges.
_METRIC_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for pattern in _METRIC_FILES:
            for path in glob.glob(os.path.join(directory, pattern)):
                os.remove(path)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
