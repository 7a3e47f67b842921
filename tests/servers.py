"""Throwaway servers that a test may stop and start again: a private PostgreSQL cluster, a
private Redis.

The machine's shared PostgreSQL is never stopped: a test that takes the database away starts
its own cluster (``initdb`` and ``pg_ctl`` from the machine's PostgreSQL binaries) in a
temporary directory on a free port. Without the binaries such tests skip, except under CI,
which must run them (``need_binaries``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import DATABASE_URL, REDIS_URL, base_config, free_port


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(pg_ctl) if pg_ctl else None


def need_binaries() -> str:
    """The PostgreSQL binaries' directory; skip the test without them (fail under CI)."""
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the outage tests: no initdb/pg_ctl on this machine")
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
    return bindir


class PrivatePostgres:
    """A PostgreSQL cluster of its own: ``start()``, ``stop()``, ``start()`` again, ``close()``.

    initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user and
    its commands run as that user (``runuser``).
    """

    def __init__(self, bindir: str):
        self.bindir = bindir
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="lectern-pg-")
        self.data = os.path.join(self.dir, "data")
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--no-instructions")  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as, os.path.join(self.bindir, tool), *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def tool(self, name: str, *args: str, input: bytes | None = None) -> bytes:
        """Run one of the PostgreSQL client programs (pg_dump, pg_restore, createdb…) against
        this cluster, as its owner; returns what it printed."""
        cmd = [*self._as, os.path.join(self.bindir, name), "-h", "127.0.0.1", "-p",
               str(self.port), "-U", "postgres", *args]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, timeout=120, input=input)
        return done.stdout

    def url_of(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l",
                  os.path.join(self.dir, "log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres():
    cluster = PrivatePostgres(need_binaries())
    cluster.start()
    yield cluster
    cluster.close()


class PrivateRedis:
    """A ``redis-server`` of its own on a free port, without persistence: stopped and started
    again, it has lost its data (as a Redis restarted without a snapshot has)."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            if os.environ.get("CI") == "true":
                pytest.fail("CI must run the outage tests: no redis-server on this machine")
            pytest.skip("no redis-server on this machine")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        for _ in range(100):
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    client.close()
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hung_port():
    """A port that accepts connections and never answers: a server that hangs, not one that
    refuses (a closed port answers at once, so it does not prove the timeouts)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield server.getsockname()[1]
    server.close()


def dead_redis():
    """A Redis client of a closed port (refused at once): 0.2 s timeouts, no retries, as a
    session store handed to the app."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host="127.0.0.1",
        port=1,
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


@contextlib.contextmanager
def gunicorn(tmp_path: Path, workers: int = 1, **env: str):
    """gunicorn with the project's own gunicorn.conf.py (development settings, the test
    database and Redis, ``env`` added), on a free port; yields (base URL, process, log path)
    once /healthz answers, and stops it with SIGTERM."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    environ = {
        **os.environ,
        "LECTERN_ENV": "development",
        "LECTERN_INSTANCE": str(tmp_path / "instance"),
        "SECRET_KEY": base_config()["SECRET_KEY"],
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "OUTBOX_THREAD": "false",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        **env,
    }
    base = f"http://127.0.0.1:{port}"
    root = Path(__file__).resolve().parents[1]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=root,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=1):
                        break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.1)
            yield base, proc, log_path
        finally:
            proc.terminate()
            proc.wait(timeout=30)
