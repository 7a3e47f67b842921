"""Teachers' sign-up by TEACHER_SIGNUP: open, approval (the default: a student with a request
that admins approve or refuse from the users page, audited, the person emailed) or closed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import base_config, login_as
from tests.test_auth import signup
from tests.test_teaching_progress import texts
from webapp import create_app
from webapp.config import ConfigError
from webapp.extensions import db
from webapp.models import AuditEvent, OutboxMessage, User


def user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def mail_to(address: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == address)))


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", {})


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    login_as(client, admin)
    return client


def test_the_default_is_approval(app):
    assert app.config["TEACHER_SIGNUP"] == "approval"


def test_an_unknown_setting_stops_the_start(monkeypatch):
    monkeypatch.setenv("TEACHER_SIGNUP", "maybe")
    with pytest.raises(ConfigError, match="TEACHER_SIGNUP must be open, approval or closed"):
        create_app(base_config())


@pytest.mark.parametrize("config_overrides", [{"TEACHER_SIGNUP": "open"}], indirect=True)
def test_open_makes_teachers_at_once(client):
    assert signup(client, email="t@example.com", role="teacher").status_code == 303
    t = user("t@example.com")
    assert (t.role, t.teacher_requested_at) == ("teacher", None)


@pytest.mark.parametrize("config_overrides", [{"TEACHER_SIGNUP": "closed"}], indirect=True)
def test_closed_offers_students_only(client):
    page = client.get("/signup").get_data(as_text=True)
    assert "I am a teacher" not in page
    resp = signup(client, email="t@example.com", role="teacher")
    assert resp.status_code == 422
    assert user("t@example.com") is None


def test_approval_starts_as_a_student_with_a_request(client):
    page = client.get("/signup").get_data(as_text=True)
    assert "teacher accounts are approved first" in page
    assert signup(client, email="t@example.com", role="teacher").status_code == 303
    t = user("t@example.com")
    assert (t.role, t.teacher_requested_at is not None) == ("student", True)
    [event] = events("signup")
    assert event.details == {"role": "student", "teacher_request": True}


def _ask(client) -> User:
    signup(client, email="t@example.com", role="teacher")
    t = user("t@example.com")
    t.is_active = True
    db.session.commit()
    return t


def test_admins_find_requests_on_the_users_page(app, admin_client, student):
    t = _ask(app.test_client())
    html = admin_client.get("/admin/users?status=requested").get_data(as_text=True)
    assert [e.strip() for e in texts(html, "a", id=f"u{t.id}")] == ["t@example.com"]
    assert f'id="u{student.id}"' not in html
    assert "Asks to be a teacher" in html
    actions = admin_client.get(
        f"/admin/users/{t.id}/actions", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert f"/admin/users/{t.id}/approve-teacher" in actions
    assert f"/admin/users/{t.id}/refuse-teacher" in actions


def test_approve_makes_a_teacher_audited_and_emailed(app, admin_client, admin):
    t = _ask(app.test_client())
    resp = admin_client.post(
        f"/admin/users/{t.id}/approve-teacher",
        headers={"HX-Request": "true", "HX-Target": f"user-{t.id}"},
    )
    assert resp.status_code == 200 and "Now a teacher" in resp.get_data(as_text=True)
    t = user("t@example.com")
    assert (t.role, t.teacher_requested_at, t.session_epoch) == ("teacher", None, 1)
    [event] = events("admin.teacher_approved")
    assert (event.actor_id, event.target_user_id) == (admin.id, t.id)
    assert [m.subject for m in mail_to("t@example.com")][-1] == "You are a teacher on Lectern"


def test_refuse_keeps_a_student_audited_and_emailed(app, admin_client, admin):
    t = _ask(app.test_client())
    resp = admin_client.post(f"/admin/users/{t.id}/refuse-teacher")
    assert resp.status_code == 303
    t = user("t@example.com")
    assert (t.role, t.teacher_requested_at) == ("student", None)
    [event] = events("admin.teacher_refused")
    assert (event.actor_id, event.target_user_id) == (admin.id, t.id)
    assert [m.subject for m in mail_to("t@example.com")][-1] == "Your request to teach on Lectern"
    again = admin_client.post(f"/admin/users/{t.id}/approve-teacher")  # no open request now
    assert again.status_code == 303 and user("t@example.com").role == "student"
