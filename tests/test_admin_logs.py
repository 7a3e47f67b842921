"""No password or token is ever written to the audit log or to the application log.

Every log record of every logger (DEBUG and up) and everything printed is captured while people
sign up, activate, log in (wrongly and rightly), reset and change their password, and while an
admin invites someone who then sets a password. Then each secret of those flows is looked for in
the captured text, in every audit record and on the audit page.
"""

from __future__ import annotations

import json
import logging
import re

from sqlalchemy import select

from tests.conftest import login_as, make_user
from webapp.extensions import db
from webapp.models import AuditEvent, OutboxMessage, Role, User

LINK = re.compile(r"http://lectern\.test(/\S+)")
SIGNUP_PW = "first passphrase of Nia"
WRONG_PW = "not the passphrase at all"
RESET_PW = "second passphrase of Nia"
CHANGED_PW = "third passphrase of Nia"
INVITE_PW = "passphrase of an invitee"


def latest_link(to: str, kind: str) -> str:
    """The path of the newest link of this kind sent to ``to`` (read from the outbox)."""
    bodies = db.session.scalars(
        select(OutboxMessage.text_body)
        .where(OutboxMessage.recipient == to)
        .order_by(OutboxMessage.id.desc())
    )
    for body in bodies:
        for path in LINK.findall(body):
            if kind in path:
                return path
    raise AssertionError(f"no {kind} link sent to {to}")


def cookie(client) -> str:
    c = client.get_cookie("session")
    return c.value if c is not None else ""


def test_no_password_or_token_reaches_the_logs_or_the_audit(app, caplog, capsys, admin):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("webapp.services").debug("capture check")
    secrets: set[str] = {SIGNUP_PW, WRONG_PW, RESET_PW, CHANGED_PW, INVITE_PW}
    nia = app.test_client()

    # sign up and activate
    resp = nia.post(
        "/signup",
        data={
            "name": "Nia Park",
            "email": "nia@example.com",
            "password": SIGNUP_PW,
            "confirm": SIGNUP_PW,
            "role": "student",
        },
    )
    assert resp.status_code == 303
    activate = latest_link("nia@example.com", "/activate/")
    secrets.add(activate.rsplit("/", 1)[1])
    assert nia.get(activate).status_code == 200
    assert nia.post(activate).status_code == 303

    # a wrong password, then the right one
    bad = nia.post("/login", data={"email": "nia@example.com", "password": WRONG_PW})
    assert bad.status_code == 422
    resp = nia.post("/login", data={"email": "nia@example.com", "password": SIGNUP_PW})
    assert resp.status_code == 303
    secrets.add(cookie(nia))
    assert nia.post("/logout").status_code in (302, 303)

    # forgotten password: the reset link, a new password, log in with it
    assert nia.post("/password/forgot", data={"email": "nia@example.com"}).status_code == 303
    reset = latest_link("nia@example.com", "/password/reset/")
    secrets.add(reset.rsplit("/", 1)[1])
    assert nia.get(reset).status_code == 303
    resp = nia.post("/password/reset", data={"password": RESET_PW, "confirm": RESET_PW})
    assert resp.status_code == 303
    resp = nia.post("/login", data={"email": "nia@example.com", "password": RESET_PW})
    assert resp.status_code == 303
    secrets.add(cookie(nia))

    # change it while signed in
    resp = nia.post(
        "/account/password",
        data={
            "pw-current_password": RESET_PW,
            "pw-new_password": CHANGED_PW,
            "pw-confirm": CHANGED_PW,
        },
    )
    assert resp.status_code == 303
    secrets.add(cookie(nia))

    # an admin invites someone, who sets a password from the link
    boss = app.test_client()
    secrets.add(login_as(boss, admin))
    secrets.add(cookie(boss))
    resp = boss.post(
        "/admin/users/new", data={"email": "ivo@example.com", "name": "Ivo", "role": "teacher"}
    )
    assert resp.status_code == 303
    invite = latest_link("ivo@example.com", "/invite/")
    secrets.add(invite.rsplit("/", 1)[1])
    ivo = app.test_client()
    assert ivo.get(invite).status_code == 303
    resp = ivo.post("/invite", data={"password": INVITE_PW, "confirm": INVITE_PW})
    assert resp.status_code == 303
    # and an admin-sent reset link for someone else
    kay = make_user(Role.STUDENT, email="kay@example.com")
    assert boss.post(f"/admin/users/{kay.id}/send-reset").status_code == 303
    secrets.add(latest_link("kay@example.com", "/password/reset/").rsplit("/", 1)[1])

    for user in db.session.scalars(select(User)):
        if user.password_hash:
            secrets.add(user.password_hash)
            secrets.add(user.password_hash.split("$")[-1])
    secrets.discard("")

    events = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert {"signup", "login.failure", "login.success", "password.reset", "password.changed"} <= {
        e.action for e in events
    }
    audit_text = "\n".join(
        json.dumps([e.action, e.ip, e.details], default=str, ensure_ascii=False) for e in events
    )
    audit_page = boss.get("/admin/audit").text
    printed = capsys.readouterr()
    logged = caplog.text
    assert "capture check" in logged  # DEBUG records of the app's loggers are captured
    for secret in secrets:
        assert secret not in logged, f"a secret reached the application log: {secret[:6]}…"
        assert secret not in printed.out + printed.err, f"a secret was printed: {secret[:6]}…"
        assert secret not in audit_text, f"a secret reached the audit log: {secret[:6]}…"
        assert secret not in audit_page


def test_the_audit_drops_secret_looking_keys_whatever_their_spelling(app):
    from webapp.services import audit

    event = audit.record(
        "x.test",
        password="a",
        new_password="b",
        reset_token="c",
        access_token="d",
        csrf_token="e",
        jti="f",
        api_secret="g",
        note="kept",
    )
    assert event.details == {"note": "kept"}
    db.session.rollback()


def test_gunicorn_access_log_redacts_the_tokens_of_email_links(app, tmp_path):
    """The production server's access log (gunicorn.conf.py) never holds a link's token."""
    import contextlib
    import urllib.error
    import urllib.request

    from tests.servers import gunicorn

    with gunicorn(tmp_path) as (base, _, log_path):
        secrets = {}
        for path in ("/activate/", "/password/reset/", "/invite/", "/account/email/confirm/"):
            token = f"eyJ1aWQiOjF9.SeCrEt{len(secrets)}xTOKEN.AbCd-_"
            secrets[path] = token
            req = urllib.request.Request(
                f"{base}{path}{token}?x=1", headers={"Referer": f"{base}{path}{token}"}
            )
            # a made-up token is refused; the request is logged all the same
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(req, timeout=5).close()
        urllib.request.urlopen(base + "/activate/resend", timeout=5).close()
        # a link inside a query string, slashes encoded
        urllib.request.urlopen(
            base + "/login?next=%2Finvite%2FeyJ.SeCrEtXtoken.Zz9&x=1", timeout=5
        ).close()
    text = log_path.read_text()
    assert "SeCrEt" not in text, text
    for path in secrets:
        assert f"{path}[redacted]" in text, text
    assert "GET /activate/resend " in text  # ordinary paths are logged as they are
    assert "/login?next=%2Finvite%2F[redacted]&x=1" in text


def test_a_failed_sql_statement_is_logged_without_its_parameters(app, caplog):
    """errors.py logs an unhandled exception whole; SQLAlchemy would print the statement's bound
    values in it (a password hash, a session jti in the SQL store). The engine hides them."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    secret = "scrypt:32768:8:1$SeCrEtSaLt$0123456789abcdef"
    with pytest.raises(DBAPIError) as failure:
        db.session.execute(text("SELECT :pw FROM no_such_table"), {"pw": secret})
    db.session.rollback()
    logging.getLogger("webapp.errors").error("unhandled", exc_info=failure.value)
    assert "SeCrEt" not in str(failure.value)
    assert "SeCrEt" not in caplog.text
