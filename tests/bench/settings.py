"""Where the benchmark runs: database, Redis, output folder, durations and the app's settings."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "bench"  # git-ignored
YARDSTICK = Path(os.environ.get("BENCH_YARDSTICK", "/work/shared/yardstick/run.sh"))
VENV = Path(sys.prefix) if sys.prefix != sys.base_prefix else None  # for the yardstick

PASSWORD = "bench passphrase of the school"


def _plain(url: str) -> str:
    """A libpq URL (psycopg.connect) from a SQLAlchemy one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class Settings:
    database_url: str = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/lectern_bench"
    )
    redis_url: str = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    seconds: int = int(os.environ.get("BENCH_SECONDS", "8"))
    fresh: bool = os.environ.get("SEED", os.environ.get("BENCH_SEED", "")) == "fresh"
    encoding: str = os.environ.get("BENCH_ACCEPT_ENCODING", "br, gzip")
    yardstick: bool = os.environ.get("BENCH_YARDSTICK_RUN", "1") != "0"
    only: list[str] = field(default_factory=list)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def dsn(self) -> str:
        return _plain(self.database_url)

    @property
    def admin_dsn(self) -> str:
        """The same server's maintenance database (to create or drop the bench database)."""
        base, _, _ = self.dsn.rpartition("/")
        return f"{base}/postgres"

    @property
    def db_name(self) -> str:
        return self.dsn.rpartition("/")[2].split("?")[0]

    @property
    def short(self) -> int:
        """Seconds of the single-connection and /healthz runs."""
        return max(2, round(self.seconds * 0.4))

    def app_env(self) -> dict[str, str]:
        """Production settings (webapp/config.py refuses less): the server and the in-process
        probe run with exactly these."""
        return {
            "LECTERN_ENV": "production",
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": self.secret_key,
            "REDIS_URL": self.redis_url,
            "BASE_URL": "https://lectern.bench.invalid",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": "2525",  # nothing listens: emails stay in the outbox (no outbox thread)
            "SESSION_COOKIE_NAME": "__Host-lectern",
            "OUTBOX_THREAD": "0",
            "LECTERN_INSTANCE": str(OUT / "instance"),
        }
