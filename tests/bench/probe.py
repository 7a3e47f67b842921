"""The same request once in-process (Flask test client, same settings, same database): the SQL
statements it runs (a ``before_cursor_execute`` listener) and the bytes of its answer."""

from __future__ import annotations

import os
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
    location: str = ""


class Probe:
    def __init__(self, settings: Settings):
        os.environ.update(settings.app_env())
        from webapp import create_app
        from webapp.extensions import db

        self.app = create_app()
        self.client = self.app.test_client(use_cookies=False)
        self._seen: list[str] = []
        with self.app.app_context():
            event.listen(db.engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, parameters, context, executemany):
        self._seen.append(" ".join(statement.split()))

    def send(self, req: Req, encoding: str | None, n: str = "probe") -> Answer:
        """``req`` as wrk sends it (``__N__`` replaced by ``n``), with Accept-Encoding or not."""
        headers = {k: v for k, v in req.headers.items() if k.lower() != "accept-encoding"}
        if encoding:
            headers["Accept-Encoding"] = encoding
        content_type = headers.pop("Content-Type", None)
        body = req.body.replace("__N__", n) if req.body is not None else None
        self._seen = []
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
            location=resp.headers.get("Location", "") or resp.headers.get("HX-Redirect", ""),
        )
