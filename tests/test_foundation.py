"""The skeleton: configuration, headers, errors, health, constraints, CLI, migrations."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text
from sqlalchemy.exc import DataError, IntegrityError

from tests.conftest import DATABASE_URL, make_course, make_user
from webapp import config as config_module
from webapp import create_app
from webapp.extensions import db
from webapp.models import CompletedContentBlock, ContentBlock, Role, StudentCourse, User

# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "a" * 40}, "SECRET_KEY is weak"),
        (
            {"SECRET_KEY": "Zx8-kQ2pL9vN4mR7tY1wE5uI3oP6aS0dF", "SESSION_COOKIE_SECURE": "false"},
            "SESSION_COOKIE_SECURE is off",
        ),
        (
            {"SECRET_KEY": "Zx8-kQ2pL9vN4mR7tY1wE5uI3oP6aS0dF", "SESSION_COOKIE_NAME": "lectern"},
            "SESSION_COOKIE_NAME must start with __Host-",
        ),
        (
            {
                "SECRET_KEY": "Zx8-kQ2pL9vN4mR7tY1wE5uI3oP6aS0dF",
                "BASE_URL": "https://lectern.example",
                "MAIL_SERVER": "smtp.lectern.example",
            },
            "REDIS_URL is not set",
        ),
    ],
)
def test_production_refuses_unsafe_settings(monkeypatch, tmp_path, env, message):
    for name in ("SECRET_KEY", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_NAME", "BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("MAIL_SERVER", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LECTERN_ENV", "production")
    with pytest.raises(config_module.ConfigError, match=message):
        config_module.load(str(tmp_path))


def test_production_refusal_is_one_line_not_a_traceback(tmp_path):
    """gunicorn and the flask command load wsgi.py: the refusal is one line on stderr and exit
    status 3 (gunicorn's "worker failed to boot", so its master stops)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")
    }
    env.update(LECTERN_ENV="production", LECTERN_INSTANCE=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (
        "Lectern will not start: SECRET_KEY is not set; "
        "production needs a random key of 32+ characters"
    )
    assert "Traceback" not in proc.stderr


def test_production_accepts_safe_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("LECTERN_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "Zx8-kQ2pL9vN4mR7tY1wE5uI3oP6aS0dF")
    monkeypatch.setenv("BASE_URL", "https://lectern.example")
    monkeypatch.setenv("MAIL_SERVER", "smtp.lectern.example")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.delenv("SESSION_COOKIE_NAME", raising=False)
    cfg = config_module.load(str(tmp_path))
    assert cfg["SESSION_COOKIE_SECURE"] is True
    assert cfg["SESSION_COOKIE_NAME"].startswith("__Host-")


def _env_txt() -> dict[str, str]:
    from pathlib import Path

    from dotenv import dotenv_values

    values = dotenv_values(Path(__file__).resolve().parents[1] / "env.txt")
    return {name: value or "" for name, value in values.items()}


def test_env_txt_documents_every_setting_config_reads():
    import re
    from pathlib import Path

    source = Path(config_module.__file__).read_text()
    read = set(re.findall(r'(?:_str|_int|_float|os\.environ\.get)\(\s*"([A-Z_]+)"', source))
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BASE_URL", "MAIL_SERVER"} <= read
    assert read - set(_env_txt()) == set()


@pytest.mark.parametrize("env", ["development", "production"])
def test_env_txt_copied_to_dotenv_loads_as_documented(monkeypatch, tmp_path, env):
    """env.txt as a .env file, unchanged but for what production must set: it loads, with the
    documented defaults, and production still gets Secure __Host- cookies."""
    for name, value in _env_txt().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LECTERN_ENV", env)
    if env == "production":
        monkeypatch.setenv("SECRET_KEY", "Zx8-kQ2pL9vN4mR7tY1wE5uI3oP6aS0dF")
        monkeypatch.setenv("BASE_URL", "https://lectern.example")
        monkeypatch.setenv("MAIL_SERVER", "smtp.lectern.example")
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    cfg = config_module.load(str(tmp_path))
    production = env == "production"
    assert cfg["SESSION_COOKIE_SECURE"] is production
    assert cfg["SESSION_COOKIE_NAME"] == ("__Host-lectern" if production else "lectern")
    assert cfg["REDIS_SOCKET_TIMEOUT"] == 0.5 and cfg["MAIL_TIMEOUT"] == 10
    assert cfg["LOGIN_LIMIT_ACCOUNT"] == "10 per 15 minutes"
    assert cfg["MAIL_DEFAULT_SENDER"] == "Lectern <no-reply@localhost>"


def test_empty_settings_take_their_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("LECTERN_ENV", "development")
    for name in ("REDIS_SOCKET_TIMEOUT", "MAIL_TIMEOUT", "SESSION_COOKIE_NAME", "LOGIN_LIMIT_IP"):
        monkeypatch.setenv(name, "")
    cfg = config_module.load(str(tmp_path))
    assert cfg["REDIS_SOCKET_TIMEOUT"] == 0.5 and cfg["MAIL_TIMEOUT"] == 10
    assert cfg["SESSION_COOKIE_NAME"] == "lectern"
    assert cfg["LOGIN_LIMIT_IP"] == "50 per 15 minutes"
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "soon")
    with pytest.raises(config_module.ConfigError, match="^REDIS_SOCKET_TIMEOUT must be a number"):
        config_module.load(str(tmp_path))


def test_development_key_is_generated_once_and_kept(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("LECTERN_ENV", "development")
    first = config_module.load(str(tmp_path))["SECRET_KEY"]
    second = config_module.load(str(tmp_path))["SECRET_KEY"]
    assert len(first) >= 32 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_rate_limits_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LECTERN_ENV", "development")
    names = (
        "LOGIN_LIMIT_ACCOUNT",
        "PASSWORD_CHECK_LIMIT",
        "EMAIL_LIMIT_IP",
        "EMAIL_LIMIT_USER",
        "ENROL_LIMIT",
    )
    for name in names:
        monkeypatch.setenv(name, "7 per minute")
    cfg = config_module.load(str(tmp_path))
    assert all(cfg[name] == "7 per minute" for name in names)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@h:5432/d",
        "postgresql+asyncpg://u:p@h:5432/d",
        "postgres://u:p@h:5432/d",
    ],
)
def test_legacy_database_urls_map_to_psycopg(url, caplog):
    assert config_module.normalise_database_url(url) == "postgresql+psycopg://u:p@h:5432/d"
    assert "postgresql+psycopg" in caplog.text


# --- headers, errors, health -------------------------------------------------------------------


def test_security_headers_on_every_response(client):
    for path in ("/", "/courses", "/login", "/no-such-page", "/healthz"):
        resp = client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"]
        assert resp.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_signed_in_pages_are_not_cached(client, student):
    from tests.conftest import login_as

    assert "no-store" not in client.get("/courses").headers.get("Cache-Control", "")
    login_as(client, student)
    assert client.get("/courses").headers["Cache-Control"] == "no-store"


def test_home_page_renders_shell(client):
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'class="skip-link"' in html and 'aria-live="polite"' in html
    assert "/static/vendor/htmx-2.0.11.min." in html
    assert '"selfRequestsOnly":true' in html and '"allowEval":false' in html
    assert '"historyCacheSize":0' in html and '"includeIndicatorStyles":false' in html


def test_404_page_has_request_id_and_no_traceback(client):
    resp = client.get("/nope")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404
    assert resp.headers["X-Request-ID"] in html
    assert "Traceback" not in html and "<html" in html


def test_404_fragment_for_htmx(client):
    resp = client.get("/nope", headers={"HX-Request": "true"})
    assert resp.status_code == 404
    assert "<html" not in resp.get_data(as_text=True)
    assert "HX-Request" in resp.headers["Vary"]


def test_405_and_413(client, app):
    assert client.post("/healthz").status_code == 405
    app.config["MAX_CONTENT_LENGTH"] = 10
    assert client.post("/login", data={"email": "x" * 100}).status_code == 413


def test_500_page_rolls_back_and_hides_internals(app):
    @app.get("/boom")
    def boom():
        db.session.add(User(email="half@example.com", name="Half", role="student"))
        db.session.flush()
        raise RuntimeError("secret internals")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = app.test_client().get("/boom")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 500
    assert "secret internals" not in html and "Traceback" not in html
    assert db.session.query(User).filter_by(email="half@example.com").count() == 0


def test_healthz_touches_nothing(client, count_queries):
    with count_queries() as q:
        resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json == {"status": "ok"}
    assert q.count == 0


def test_readyz_reports_ready(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["checks"] == {"database": True, "sessions": True}


def test_readyz_503_when_redis_unreachable():
    import redis

    from tests.conftest import base_config

    dead = redis.Redis(host="127.0.0.1", port=1, socket_timeout=0.2, socket_connect_timeout=0.2)
    app = create_app(base_config(REDIS_CLIENT=dead))
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"]["sessions"] is False
    assert "127.0.0.1" not in resp.get_data(as_text=True)


# --- constraints ------------------------------------------------------------------------------


def _expect_integrity_error(fn):
    # PostgreSQL refuses an over-long VARCHAR with DataError before any CHECK runs.
    with pytest.raises((IntegrityError, DataError)):
        fn()
        db.session.flush()
    db.session.rollback()


def test_email_unique_case_insensitively(app):
    make_user(email="ann@example.com")
    _expect_integrity_error(
        lambda: db.session.execute(
            text(
                "INSERT INTO users (email, name, role, is_active, session_epoch, created_at) "
                "VALUES ('Ann@Example.com', 'Ann', 'student', false, 0, CURRENT_TIMESTAMP)"
            )
        )
    )
    _expect_integrity_error(lambda: db.session.add(User(email="ann@example.com", name="Two")))


def test_role_must_be_known(app):
    _expect_integrity_error(
        lambda: db.session.add(User(email="r@example.com", name="R", role="superuser"))
    )


def test_enrolment_unique(app, teacher, student):
    course = make_course(teacher)
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.commit()
    _expect_integrity_error(
        lambda: db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    )


def test_completion_unique_and_grade_range(app, teacher, student):
    course = make_course(teacher)
    block = course.sections[0].blocks[0]
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block.id))
    db.session.commit()
    _expect_integrity_error(
        lambda: db.session.add(
            CompletedContentBlock(student_id=student.id, content_block_id=block.id)
        )
    )
    other = course.sections[0].blocks[1]
    for bad in (101, -1):
        _expect_integrity_error(
            lambda bad=bad: db.session.add(
                CompletedContentBlock(student_id=student.id, content_block_id=other.id, grade=bad)
            )
        )


def test_blank_or_long_titles_refused(app, teacher):
    course = make_course(teacher, sections=1, blocks=1)
    block = course.sections[0].blocks[0]
    block.title = "   "
    _expect_integrity_error(lambda: None)
    block = db.session.get(ContentBlock, block.id)
    block.title = "x" * 201
    _expect_integrity_error(lambda: None)


def test_deleting_a_user_who_owns_courses_is_refused(app, teacher):
    make_course(teacher)
    _expect_integrity_error(lambda: db.session.execute(delete(User).where(User.id == teacher.id)))


def test_deleting_a_student_cascades_enrolments_and_completions(app, teacher, student):
    course = make_course(teacher)
    block = course.sections[0].blocks[0]
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block.id))
    db.session.commit()
    db.session.execute(delete(User).where(User.id == student.id))
    db.session.commit()
    assert db.session.query(StudentCourse).count() == 0
    assert db.session.query(CompletedContentBlock).count() == 0


def test_deleting_a_course_cascades(app, teacher, student):
    course = make_course(teacher)
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.commit()
    db.session.delete(course)
    db.session.commit()
    assert db.session.query(ContentBlock).count() == 0
    assert db.session.query(StudentCourse).count() == 0


def test_timestamps_are_timezone_aware(app):
    user = make_user()
    db.session.expire_all()
    assert db.session.get(User, user.id).created_at.tzinfo is not None


# --- CLI and migrations ------------------------------------------------------------------------


def test_create_admin_and_seed_demo(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-admin", "boss@example.com", "--password", "a-long-password"]
    )
    assert result.exit_code == 0, result.output
    boss = db.session.query(User).filter_by(email="boss@example.com").one()
    assert boss.role == Role.ADMIN and boss.is_active
    short = runner.invoke(args=["create-admin", "x@example.com", "--password", "short"])
    assert short.exit_code != 0

    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "already present" in first.output  # boss exists


def test_create_admin_checks_the_email_and_the_password_policy(app):
    runner = app.test_cli_runner()
    bad_email = runner.invoke(
        args=["create-admin", "not-an-email", "--password", "a-long-password"]
    )
    assert bad_email.exit_code != 0 and "valid email" in bad_email.output
    common = runner.invoke(args=["create-admin", "boss@example.com", "--password", "password123"])
    assert common.exit_code != 0 and "common" in common.output
    typed = runner.invoke(
        args=["create-admin", "Boss@Example.com"], input="a-long-password\na-long-password\n"
    )
    assert typed.exit_code == 0, typed.output  # prompted twice, stored normalised
    assert db.session.query(User).filter_by(email="boss@example.com").one().is_admin


def test_create_admin_on_a_pending_sign_up_cannot_be_taken_over_by_a_later_sign_up(app):
    """Promoting a never-activated account activates it for good: a later sign-up of the same
    address must not replace its password (as it does for a pending account)."""
    from werkzeug.security import check_password_hash

    make_user(email="early@example.com", active=False)
    result = app.test_cli_runner().invoke(
        args=["create-admin", "early@example.com", "--password", "the admin passphrase"]
    )
    assert result.exit_code == 0, result.output
    data = {
        "name": "Intruder",
        "email": "early@example.com",
        "password": "intruder passphrase",
        "confirm": "intruder passphrase",
        "role": "student",
    }
    assert app.test_client().post("/signup", data=data).status_code == 303
    user = db.session.query(User).filter_by(email="early@example.com").one()
    assert user.is_admin and user.is_active and user.activated_at is not None
    assert check_password_hash(user.password_hash, "the admin passphrase")


def test_seed_demo_on_empty_database(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "student@example.com" in result.output
    assert db.session.query(User).count() == 6
    types = {b.type for b in db.session.query(ContentBlock)}
    assert types == {"lesson", "quiz", "assignment", "video", "link"}
    # two students part-way through the first course, with a quiz and an assignment to grade
    from webapp.models import Course, StudentCourse
    from webapp.services import grading

    course = db.session.query(Course).order_by(Course.id).first()
    assert db.session.query(StudentCourse).filter_by(course_id=course.id).count() == 2
    assert grading.queue_count(course.id) == 2
    again = runner.invoke(args=["seed-demo"])
    assert "already present" in again.output
    assert db.session.query(User).count() == 6


def test_database_defaults_make_a_pending_student_a_draft_and_an_open_enrolment(app):
    """Rows written by hand (not through the models) start as the model says."""
    from sqlalchemy import text

    with db.engine.begin() as conn:
        uid = conn.execute(
            text("INSERT INTO users (email, name) VALUES ('raw@example.com', 'Raw') RETURNING id")
        ).scalar_one()
        cid = conn.execute(
            text(
                "INSERT INTO courses (title, description, user_id)"
                " VALUES ('Raw', '', :u) RETURNING id"
            ),
            {"u": uid},
        ).scalar_one()
        conn.execute(
            text("INSERT INTO student_courses (student_id, course_id) VALUES (:u, :c)"),
            {"u": uid, "c": cid},
        )
        user = conn.execute(
            text("SELECT role, is_active, session_epoch, created_at FROM users")
        ).one()
        course = conn.execute(
            text("SELECT is_published, created_at, updated_at FROM courses")
        ).one()
        enrolment = conn.execute(text("SELECT completed, enrolled_at FROM student_courses")).one()
    assert (user.role, bool(user.is_active), user.session_epoch) == ("student", False, 0)
    assert user.created_at is not None
    assert not course.is_published and course.created_at and course.updated_at
    assert not enrolment.completed and enrolment.enrolled_at


@pytest.mark.skipif(
    DATABASE_URL.startswith("postgresql"), reason="CI runs upgrade+check on PostgreSQL"
)
def test_migrations_upgrade_and_match_models_on_sqlite(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade

    from tests.conftest import base_config

    app = create_app(base_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'm.sqlite'}"))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == []
        db.engine.dispose()


def test_course_completion_sync(app, teacher, student):
    from webapp.services.progress import sync_course_completion

    course = make_course(teacher, sections=1, blocks=2)
    blocks = course.sections[0].blocks
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=blocks[0].id))
    db.session.commit()
    sync_course_completion(course.id)
    db.session.commit()
    enrolment = db.session.query(StudentCourse).one()
    assert not enrolment.completed and enrolment.completed_at is None
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=blocks[1].id))
    sync_course_completion(course.id, student.id)
    db.session.commit()
    db.session.refresh(enrolment)
    assert enrolment.completed and enrolment.completed_at is not None


@pytest.mark.parametrize("code", [400, 403, 404, 405, 413, 429, 500, 503])
def test_error_pages_render_for_each_code(app, code):
    from werkzeug.exceptions import abort

    @app.get(f"/fail-{code}")
    def fail():
        abort(code)

    from webapp.errors import MESSAGES

    client = app.test_client()
    page = client.get(f"/fail-{code}")
    html = page.get_data(as_text=True)
    assert page.status_code == code and "<html" in html
    assert MESSAGES[code][0] in html and "Traceback" not in html
    assert page.headers["X-Request-ID"] in html
    fragment = client.get(f"/fail-{code}", headers={"HX-Request": "true"})
    assert fragment.status_code == code and "<html" not in fragment.get_data(as_text=True)
    assert MESSAGES[code][0] in fragment.get_data(as_text=True)


def test_missing_csrf_token_is_refused(app, student):
    from tests.conftest import login_as

    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    login_as(client, student)
    resp = client.post("/logout")
    assert resp.status_code == 400
    assert client.get("/learn").status_code == 200  # still signed in


def test_domain_errors_fall_back_to_status_pages(app):
    from webapp.services import Conflict, NotAllowed, NotFound

    cases = {"404": NotFound, "403": NotAllowed, "409": Conflict}

    @app.get("/domain/<code>")
    def domain(code):
        raise cases[code]("Nope.")

    client = app.test_client()
    for code in cases:
        resp = client.get(f"/domain/{code}")
        assert resp.status_code == int(code) and "Nope." in resp.get_data(as_text=True)
