"""Settings from the environment (and .env); refuses unsafe production settings."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from .logs import FORMATS, choose_format

log = logging.getLogger(__name__)

METRICS_TOKEN_MIN = 32  # characters of the /metrics bearer token
WEAK_KEYS = {"", "dev", "changeme", "change-me", "secret", "development", "test"}


TEACHER_SIGNUP = ("open", "approval", "closed")  # who becomes a teacher by signing up


class ConfigError(RuntimeError):
    """A setting makes the app unsafe or unusable; the message says which in one line."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _number(name: str, default, kind, what: str):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from exc


def _int(name: str, default: int) -> int:
    return _number(name, default, int, "an integer")


def _float(name: str, default: float) -> float:
    return _number(name, default, float, "a number")


def _str(name: str, default: str) -> str:
    """The setting, or its default when unset or empty (env.txt lists some as empty)."""
    return os.environ.get(name) or default


def normalise_database_url(url: str) -> str:
    """Map legacy PostgreSQL URLs onto the psycopg 3 driver."""
    for legacy in (
        "postgresql+asyncpg://",
        "postgresql+psycopg2://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(legacy):
            log.warning("DATABASE_URL uses %s; using postgresql+psycopg:// instead", legacy)
            return "postgresql+psycopg://" + url[len(legacy) :]
    return url


def _dev_secret_key(instance: Path) -> str:
    """A random key made once and kept in instance/ so sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load(instance_path: str, overrides: dict | None = None) -> dict:
    """Build the Flask config from the environment, then apply overrides (tests)."""
    overrides = overrides or {}
    env = overrides.get("LECTERN_ENV", _str("LECTERN_ENV", "development"))
    if env not in {"development", "production", "testing"}:
        raise ConfigError(f"LECTERN_ENV must be development, production or testing, not {env!r}")
    production = env == "production"
    instance = Path(instance_path)

    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'lectern.sqlite'}"
    secret_key = os.environ.get("SECRET_KEY", "")
    if not secret_key and not production and "SECRET_KEY" not in overrides:
        secret_key = _dev_secret_key(instance)

    cfg: dict = {
        "LECTERN_ENV": env,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        # hide_parameters: a logged SQL error never shows bound values (hashes, jtis)
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "REDIS_SOCKET_TIMEOUT": _float("REDIS_SOCKET_TIMEOUT", 0.5),
        "DATABASE_CONNECT_TIMEOUT": _int("DATABASE_CONNECT_TIMEOUT", 5),
        "DATABASE_STATEMENT_TIMEOUT": _int("DATABASE_STATEMENT_TIMEOUT", 30),
        "BASE_URL": _str("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": _int("MAIL_PORT", 25),
        "MAIL_USE_TLS": _bool(os.environ.get("MAIL_USE_TLS"), False),
        "MAIL_USE_SSL": _bool(os.environ.get("MAIL_USE_SSL"), False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": _str("MAIL_DEFAULT_SENDER", "Lectern <no-reply@localhost>"),
        "MAIL_TIMEOUT": _float("MAIL_TIMEOUT", 10),
        "MAIL_MAX_ATTEMPTS": _int("MAIL_MAX_ATTEMPTS", 30),
        "OUTBOX_THREAD": _bool(os.environ.get("OUTBOX_THREAD"), env == "development"),
        "SESSION_COOKIE_SECURE": _bool(os.environ.get("SESSION_COOKIE_SECURE"), production),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": _str(
            "SESSION_COOKIE_NAME", "__Host-lectern" if production else "lectern"
        ),
        "SESSION_IDLE_SECONDS": _int("SESSION_IDLE_SECONDS", 2 * 3600),
        "SESSION_MAX_SECONDS": _int("SESSION_MAX_SECONDS", 12 * 3600),
        "SESSION_REMEMBER_SECONDS": _int("SESSION_REMEMBER_SECONDS", 30 * 24 * 3600),
        "SESSION_REMEMBER_IDLE_SECONDS": _int("SESSION_REMEMBER_IDLE_SECONDS", 7 * 24 * 3600),
        "ACTIVATION_MAX_SECONDS": _int("ACTIVATION_MAX_SECONDS", 48 * 3600),
        "RESET_MAX_SECONDS": _int("RESET_MAX_SECONDS", 3600),
        "EMAIL_CHANGE_MAX_SECONDS": _int("EMAIL_CHANGE_MAX_SECONDS", 48 * 3600),
        "API_ACCESS_SECONDS": _int("API_ACCESS_SECONDS", 15 * 60),
        "API_REFRESH_SECONDS": _int("API_REFRESH_SECONDS", 14 * 24 * 3600),
        "API_CORS_ORIGINS": [
            o.strip().rstrip("/") for o in _str("API_CORS_ORIGINS", "").split(",") if o.strip()
        ],
        "LOGIN_LIMIT_ACCOUNT": _str("LOGIN_LIMIT_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_LIMIT_IP": _str("LOGIN_LIMIT_IP", "50 per 15 minutes"),
        "PASSWORD_CHECK_LIMIT": _str("PASSWORD_CHECK_LIMIT", "10 per 15 minutes"),
        "EMAIL_LIMIT_IP": _str("EMAIL_LIMIT_IP", "30 per hour"),
        "EMAIL_LIMIT_ADDRESS": _str("EMAIL_LIMIT_ADDRESS", "5 per hour"),
        "EMAIL_LIMIT_USER": _str("EMAIL_LIMIT_USER", "10 per hour"),
        "ENROL_LIMIT": _str("ENROL_LIMIT", "500 per hour"),
        "TEACHER_SIGNUP": _str("TEACHER_SIGNUP", "approval"),
        "EMAIL_FORM_MIN_SECONDS": _float("EMAIL_FORM_MIN_SECONDS", 0.5),
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 1024 * 1024),
        "WTF_CSRF_TIME_LIMIT": None,
        "RATELIMIT_ENABLED": True,
        # Observability (docs/operations.md, "Metrics" and "Logs").
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
        "LOG_FORMAT": _str("LOG_FORMAT", ""),
        "TESTING": env == "testing",
    }
    cfg.update(overrides)
    if str(cfg["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        # No JIT: PostgreSQL compiles any query the planner guesses costs over 100,000 (such
        # as the grading queue's nested probes, which read a few thousand rows) for 50-1,500 ms
        # on every run; for short queries that is all loss (docs/teaching.md).
        # Timeouts (docs/operations.md): a PostgreSQL that is down, or accepts and never
        # answers, costs a request at most DATABASE_CONNECT_TIMEOUT seconds (then the 503
        # page); a statement at most DATABASE_STATEMENT_TIMEOUT (0: none), well under
        # gunicorn's worker timeout. Migrations lift the statement timeout (migrations/env.py).
        engine = cfg["SQLALCHEMY_ENGINE_OPTIONS"] = dict(cfg["SQLALCHEMY_ENGINE_OPTIONS"])
        statement_ms = max(cfg["DATABASE_STATEMENT_TIMEOUT"], 0) * 1000
        engine.setdefault(
            "connect_args",
            {
                "options": f"-c jit=off -c statement_timeout={statement_ms}",
                "connect_timeout": max(cfg["DATABASE_CONNECT_TIMEOUT"], 1),
            },
        )
    if cfg["TEACHER_SIGNUP"] not in TEACHER_SIGNUP:
        raise ConfigError(
            f"TEACHER_SIGNUP must be open, approval or closed, not {cfg['TEACHER_SIGNUP']!r}"
        )
    cfg["LOG_FORMAT"] = choose_format(cfg["LOG_FORMAT"], env)
    if cfg["LOG_FORMAT"] not in FORMATS:
        raise ConfigError(f"LOG_FORMAT must be json or text, not {cfg['LOG_FORMAT']!r}")
    token = cfg["METRICS_TOKEN"]
    if token and (len(token) < METRICS_TOKEN_MIN or len(set(token)) < 10):
        raise ConfigError(
            f"METRICS_TOKEN is weak; use a random token of {METRICS_TOKEN_MIN}+ characters"
        )
    if cfg["MAIL_MAX_ATTEMPTS"] < 1:
        raise ConfigError("MAIL_MAX_ATTEMPTS must be at least 1")
    if production:
        check_production(cfg)
    return cfg


def check_production(cfg: dict) -> None:
    key = cfg.get("SECRET_KEY") or ""
    if not key:
        raise ConfigError("SECRET_KEY is not set; production needs a random key of 32+ characters")
    if key.lower() in WEAK_KEYS or len(key) < 32 or len(set(key)) < 10:
        raise ConfigError("SECRET_KEY is weak; use a random key of 32+ characters")
    if not cfg.get("SESSION_COOKIE_SECURE"):
        raise ConfigError("SESSION_COOKIE_SECURE is off; production cookies must be Secure (HTTPS)")
    if not str(cfg.get("SESSION_COOKIE_NAME", "")).startswith("__Host-"):
        # The prefix makes the browser refuse the cookie unless it is Secure, host-only, Path=/.
        raise ConfigError("SESSION_COOKIE_NAME must start with __Host- in production")
    if not str(cfg.get("BASE_URL", "")).startswith("https://"):
        raise ConfigError("BASE_URL must start with https:// in production")
    if not cfg.get("MAIL_SERVER"):
        # Without it the outbox would print every email, with its sign-in links, to the logs.
        raise ConfigError("MAIL_SERVER is not set; production sends email through an SMTP server")
    if not cfg.get("REDIS_URL") and cfg.get("REDIS_CLIENT") is None:
        # Without it rate limits live in each process's memory: every gunicorn worker would
        # grant its own 10 login attempts.
        raise ConfigError(
            "REDIS_URL is not set; production keeps sessions and rate limits in Redis"
        )
