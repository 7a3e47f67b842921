"""Prometheus metrics at /metrics (prometheus-flask-exporter), off unless METRICS_TOKEN is set.

Off, nothing of it exists: no route (404), no hook on any request, prometheus_client is not
even imported. On, every request is counted and timed per Flask endpoint, method and status
(never the raw path: no ids or tokens in labels, a bounded number of series), and a scrape
adds what is read at that moment: the outbox's depth and its oldest pending message's age.
Session-store errors are counted where a Redis failure becomes a 503 (``count_store_error``).

Under gunicorn with PROMETHEUS_MULTIPROC_DIR set, every worker writes its counts to files in
that directory and a scrape, answered by any worker, adds them all up (prometheus_client's
multiprocess mode; gunicorn.conf.py marks dead workers and empties the directory at start).
"""

from __future__ import annotations

import logging
import os

from flask import Response, current_app, has_app_context, request

from .tokens import bearer_token, same

log = logging.getLogger(__name__)

EXTENSION = "lectern_metrics"
# Seconds; the exporter's default buckets end at 10 s, and a large CSV export takes ~15 s.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Methods counted; anything else (any token is a valid method) would be a new series each.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STORE_ERROR_SOURCES = ("sessions", "rate_limits", "readiness")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def init_app(app) -> None:
    token = app.config["METRICS_TOKEN"]
    if not token:
        return
    from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
    from prometheus_flask_exporter import PrometheusMetrics

    from .extensions import csrf, limiter

    disable_created_metrics()  # no *_created series: half the series, nothing Prometheus needs
    # Each app its own registry (tests build many apps; the exporter skips a registry that
    # already has its metrics). In multiprocess mode the values live in the directory's files
    # and the answer is read from there.
    registry = CollectorRegistry(auto_describe=True)
    exporter = PrometheusMetrics(
        app,
        path=None,  # the endpoint is ours: bearer token, no CSRF, no rate limit
        registry=registry,
        group_by=endpoint,
        buckets=BUCKETS,
    )
    store_errors = Counter(
        "lectern_session_store_errors",
        "Redis errors that made a request answer 503 (the session store or the rate limits)",
        ["source"],
        registry=registry,
    )
    for source in STORE_ERROR_SOURCES:
        store_errors.labels(source=source)  # every series present from the start, at 0
    exposed = registry
    if multiprocess_dir():
        from prometheus_client.multiprocess import MultiProcessCollector

        exposed = CollectorRegistry()
        MultiProcessCollector(exposed)
    exposed.register(OutboxCollector())
    app.extensions[EXTENSION] = {"store_errors": store_errors}

    @exporter.do_not_track()
    def metrics_view():
        """The exposition, for the bearer of METRICS_TOKEN only."""
        if not _authorised(token):
            return Response(
                "Send the metrics token: Authorization: Bearer <token>\n",
                401,
                {"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
                mimetype="text/plain",
            )
        from prometheus_client.exposition import choose_encoder

        encode, content_type = choose_encoder(request.headers.get("Accept"))
        return Response(
            encode(exposed), 200, {"Content-Type": content_type, "Cache-Control": "no-store"}
        )

    view = limiter.exempt(csrf.exempt(metrics_view))
    app.add_url_rule("/metrics", "metrics", view, methods=["GET"])

    @app.before_request
    def _odd_method():
        if request.method not in METHODS:
            request.prom_do_not_track = True  # the exporter's own mark: not counted


def endpoint(req) -> str:
    """The label of a request: its Flask endpoint (bounded; "unmatched" for a 404 no route
    took). The function's name is the label's name."""
    return req.endpoint or "unmatched"


def _authorised(token: str) -> bool:
    """The request's bearer token is METRICS_TOKEN (hmac.compare_digest, in tokens.same)."""
    return same(bearer_token(), token)


def count_store_error(source: str) -> None:
    """One more Redis failure that turns into a 503 (sessions.py, errors.py); nothing when
    metrics are off."""
    if not has_app_context():
        return
    extension = current_app.extensions.get(EXTENSION)
    if extension is not None:
        extension["store_errors"].labels(source=source).inc()


class OutboxCollector:
    """The outbox, read at scrape time (in the scrape's request) with one query on the pending
    index: pending messages, given-up messages, and the age of the oldest pending one."""

    def describe(self):
        return []  # read only when scraped, never when registered

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            pending, given_up, oldest = self._read()
        except Exception:  # noqa: BLE001 - the request metrics are still worth answering
            log.warning("metrics: the outbox could not be read", exc_info=True)
            return
        yield GaugeMetricFamily(
            "lectern_outbox_pending", "Messages waiting to be sent (not given up)", value=pending
        )
        yield GaugeMetricFamily(
            "lectern_outbox_given_up", "Messages the worker gave up on", value=given_up
        )
        yield GaugeMetricFamily(
            "lectern_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting to be sent (0 when none)",
            value=oldest,
        )

    def _read(self) -> tuple[int, int, float]:
        from sqlalchemy import case, func, select

        from .extensions import db
        from .mail import GAVE_UP
        from .models import OutboxMessage as M
        from .models import UTCDateTime, utcnow
        from .services import discard

        waiting = M.next_attempt_at != GAVE_UP
        query = select(
            func.count(case((waiting, 1))),
            func.count(case((M.next_attempt_at == GAVE_UP, 1))),
            func.min(case((waiting, M.created_at)), type_=UTCDateTime()),
        ).where(M.sent_at.is_(None))
        try:
            pending, given_up, oldest = db.session.execute(query).one()
        except Exception:
            discard()
            raise
        age = max((utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        return pending, given_up, age
