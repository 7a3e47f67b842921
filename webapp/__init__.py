"""Lectern: create_app() wires config, extensions, blueprints and error handlers."""

from __future__ import annotations

import os

from flask import Flask, abort, before_render_template, g, request
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from . import assets, errors, filters, htmx, inputs, logs, metrics, sessions
from . import config as config_module
from .embeds import FRAME_HOSTS
from .extensions import compress, csrf, db, limiter, login_manager, migrate
from .extensions import mail as mail_ext  # not `mail`: the submodule webapp.mail shadows it

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# frame-src: the two video players of video blocks (webapp/embeds.py), nothing else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    f"font-src 'self'; connect-src 'self'; frame-src {' '.join(FRAME_HOSTS)}; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=os.environ.get("LECTERN_INSTANCE", os.path.join(ROOT, "instance")),
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    if overrides is None or "LECTERN_ENV" not in overrides:
        from dotenv import load_dotenv

        load_dotenv(os.path.join(ROOT, ".env"))
    app.config.update(config_module.load(app.instance_path, overrides))
    app.config["PERMANENT_SESSION_LIFETIME"] = app.config["SESSION_REMEMBER_SECONDS"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS",
        {
            "socket_timeout": app.config["REDIS_SOCKET_TIMEOUT"],
            "socket_connect_timeout": app.config["REDIS_SOCKET_TIMEOUT"],
        }
        if app.config["REDIS_URL"]
        else {},
    )
    app.config.setdefault("RATELIMIT_KEY_PREFIX", app.config.get("REDIS_PREFIX", "lectern:"))
    # Brotli, else gzip (docs/performance.md: what is compressed, and why BREACH is not a risk).
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["br", "deflate"])
    logs.init_app(app)  # first: its request id and timing wrap every other hook
    metrics.init_app(app)  # nothing at all unless METRICS_TOKEN is set
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    mail_ext.init_app(app)
    csrf.init_app(app)
    compress.init_app(app)
    # Registered before the limiter's own hook, so it runs after it (Flask runs them in
    # reverse): Flask-Limiter sets Retry-After on every answer of a limited route to its
    # window's reset, up to an hour away; a 503 keeps the Retry-After of an outage.
    app.after_request(errors.keep_retry_after)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.request_loader(sessions.load_user)
    login_manager.unauthorized_handler(_unauthorized)
    app.extensions["lectern_session_store"] = sessions.make_store(app)
    _sqlite_pragmas(app)
    assets.init_app(app)

    from .admin import bp as admin_bp
    from .auth import bp as auth_bp
    from .authoring import bp as authoring_bp
    from .learning import bp as learning_bp
    from .site import bp as site_bp
    from .teaching import bp as teaching_bp

    for bp in (site_bp, auth_bp, authoring_bp, learning_bp, teaching_bp, admin_bp):
        app.register_blueprint(bp)

    from . import api

    api.init_app(app)  # before errors.register: the app's error handlers answer for it too
    errors.register(app)
    filters.register(app)
    _hooks(app)

    from . import cli

    cli.register(app)
    if app.config["OUTBOX_THREAD"]:
        _outbox_thread_on_first_request(app)
    return app


def _outbox_thread_on_first_request(app: Flask) -> None:
    """Start the email worker thread in the process that serves requests (not a CLI command)."""
    import threading

    lock = threading.Lock()
    started = False

    @app.before_request
    def _start_outbox_worker():
        nonlocal started
        if started:
            return
        with lock:
            if not started:
                from .mail import start_worker

                start_worker(app)
                started = True


def _unauthorized():
    if getattr(g, "store_unavailable", False):
        abort(503)
    from flask import url_for

    from .urls import safe_next

    target = url_for("auth.login", next=safe_next(request.full_path.rstrip("?")))
    return htmx.hx_redirect(target)


def _sqlite_pragmas(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    with app.app_context():

        @event.listens_for(db.engine, "connect")
        def _on_connect(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()


def _hooks(app: Flask) -> None:
    app.before_request(inputs.refuse_nul)

    @app.context_processor
    def _template_globals():
        return {"request_id": getattr(g, "request_id", "-")}

    @app.after_request
    def _headers(response):
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        h["X-Request-ID"] = getattr(g, "request_id", "-")
        user = g.get("_login_user")
        if user is not None and user.is_authenticated:
            h["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
        return htmx.add_vary(response)

    # `current_user` in templates is Flask-Login's; keep a name for role checks.
    app.jinja_env.globals["current_user"] = current_user

    @before_render_template.connect_via(app)
    def _load_user_before_rendering(sender, template, context, **extra):
        # The signed-in user is looked up before a page renders, never by the template itself.
        current_user._get_current_object()
