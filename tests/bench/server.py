"""gunicorn as documented (gunicorn -c gunicorn.conf.py wsgi:app), and users who log in to it."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .settings import OUT, PASSWORD, ROOT, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One gunicorn master and its workers, serving the bench database on a free local port."""

    def __init__(
        self,
        settings: Settings,
        config: Path | str = "gunicorn.conf.py",
        extra_env: dict | None = None,
        log_name: str = "gunicorn.log",
    ):
        self.settings = settings
        self.port = free_port()
        self.config = str(config)
        self.extra_env = extra_env or {}
        self.log_path = OUT / log_name
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> None:
        r = redis.Redis.from_url(self.settings.redis_url)
        r.flushdb()  # sessions and rate limits of earlier runs (the bench's own Redis db only)
        env = {
            **os.environ,
            **self.settings.app_env(),
            "BIND": f"127.0.0.1:{self.port}",
            **self.extra_env,
        }
        OUT.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process in stop()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.proc = subprocess.Popen(
            [gunicorn, "-c", self.config, "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._log = log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}: {self.log_path}")
            try:
                if Client(self.port).get("/healthz").status == 200:
                    time.sleep(1.0)  # every worker booted, not just the first
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"/healthz did not answer within {timeout} s: {self.log_path}")

    def workers(self) -> list[int]:
        """The pids of the master's worker processes."""
        if self.proc is None:
            return []
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()
        self.proc = None


# --- a small HTTP client that keeps cookies itself (the session cookie is Secure) ------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Client:
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict | None = None
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = self.cookie_header()
        if body is not None:
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            conn.request(method, path, body=body.encode() if body is not None else None, headers=h)
            resp = conn.getresponse()
            out = Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()
        # Secure cookies arrive over plain HTTP here: keep them ourselves, as a browser would
        # over HTTPS.
        for value in out.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";", 1)[0]
            if "max-age=0" in value.lower() or cookie_value == "":
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = cookie_value
        return out

    def get(self, path: str, headers: dict | None = None) -> Response:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict, headers: dict | None = None) -> Response:
        return self.request("POST", path, urllib.parse.urlencode(fields), headers)


_CSRF_INPUT = re.compile(r"<input[^>]*\bname=\"csrf_token\"[^>]*>")
_VALUE = re.compile(r"\bvalue=\"([^\"]+)\"")


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on the page (the hidden csrf_token input)."""
    match = _CSRF_INPUT.search(html)
    value = _VALUE.search(match.group(0)) if match else None
    if value is None:
        raise RuntimeError("no csrf_token input on the page")
    return value.group(1)


@dataclass
class Session:
    """A user logged in through the login form: their cookie and their page's CSRF token."""

    user_id: int
    email: str
    cookie: str
    csrf: str


def login(port: int, user_id: int, email: str, page: str) -> Session:
    """GET /login, POST the form with its CSRF token, then GET ``page`` for the token of the
    signed-in session (the session cookie changes when the token is first made)."""
    client = Client(port)
    form = client.get("/login")
    if form.status != 200:
        raise RuntimeError(f"GET /login answered {form.status}")
    done = client.post(
        "/login", {"csrf_token": csrf_token(form.text), "email": email, "password": PASSWORD}
    )
    if done.status not in (302, 303):
        raise RuntimeError(f"login of {email} answered {done.status}")
    landing = client.get(page)
    if landing.status != 200:
        raise RuntimeError(f"GET {page} as {email} answered {landing.status}")
    return Session(user_id, email, client.cookie_header(), csrf_token(landing.text))
