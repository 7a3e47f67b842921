"""The same request once in-process (Flask test client, same settings, same database): the SQL
statements it runs (a ``before_cursor_execute`` listener) and the bytes of its answer."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from sqlalchemy import event

from .settings import Settings
from .wrk import Req


@dataclass
class Answer:
    status: int
    size: int
    encoding: str
    statements: list[str] = field(default_factory=list)
    timings: list[float] = field(default_factory=list)  # ms, one per statement
    location: str = ""


class Probe:
    def __init__(self, settings: Settings):
        os.environ.update(settings.app_env())
        from webapp import create_app
        from webapp.extensions import db

        self.app = create_app()
        self.client = self.app.test_client(use_cookies=False)
        self._seen: list[str] = []
        self._times: list[float] = []
        with self.app.app_context():
            event.listen(db.engine, "before_cursor_execute", self._before)
            event.listen(db.engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._seen.append(" ".join(statement.split()))
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self._times.append(1000 * (time.perf_counter() - conn.info.pop("bench_t0")))

    def send(self, req: Req, encoding: str | None, n: str = "probe") -> Answer:
        """``req`` as wrk sends it (``__N__`` replaced by ``n``), with Accept-Encoding or not."""
        headers = {k: v for k, v in req.headers.items() if k.lower() != "accept-encoding"}
        if encoding:
            headers["Accept-Encoding"] = encoding
        content_type = headers.pop("Content-Type", None)
        body = req.body.replace("__N__", n) if req.body is not None else None
        self._seen, self._times = [], []
        resp = self.client.open(
            req.path,
            method=req.method,
            headers=headers,
            data=body,
            content_type=content_type,
            base_url="http://127.0.0.1",
        )
        data = resp.get_data()
        return Answer(
            status=resp.status_code,
            size=len(data),
            encoding=resp.headers.get("Content-Encoding", "identity"),
            statements=list(self._seen),
            timings=list(self._times),
            location=resp.headers.get("Location", "") or resp.headers.get("HX-Redirect", ""),
        )
