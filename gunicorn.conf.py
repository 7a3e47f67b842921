"""gunicorn settings for production: gunicorn -c gunicorn.conf.py wsgi:app"""

import multiprocessing
import os
import re

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
# The access log costs about 0.05 ms a line (with the redaction below); it stays on.
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn 27 opens a control socket (for gunicornc) at one path per user, $HOME/.gunicorn/:
# two instances on one host would share it. Lectern does not use it; signals do the same work.
control_socket_disable = True

# Email links carry one-purpose tokens in their path (activation, password reset, invitation,
# email change). The access log writes "[redacted]" in their place, in the request line, the
# path and the Referer alike, so no token is written to the application log (docs/admin.md).
_SEP = r"(?:/|%2[Ff])"  # a slash, or an encoded one (a link inside ?next=…)
_TOKEN_PATH = re.compile(
    rf"({_SEP}(?:activate|password{_SEP}reset|invite|account{_SEP}email{_SEP}confirm){_SEP})"
    r"(?!(?:resend|sent)(?:[/?#&%\s\"]|$))[^/?#&%\s\"]+"
)


# Every alternative of _TOKEN_PATH holds one of these words: a line without any is left alone
# (one substring test instead of a regex substitution on each of some 40 atoms; 0.06 ms a line).
_TOKEN_WORDS = ("activate", "reset", "invite", "confirm")


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        text = "\n".join(v for v in atoms.values() if isinstance(v, str))
        if not any(word in text for word in _TOKEN_WORDS):
            return atoms
        return {
            k: _TOKEN_PATH.sub(r"\1[redacted]", v) if isinstance(v, str) else v
            for k, v in atoms.items()
        }


logger_class = RedactingLogger
