"""Enrolling an address without an account invites the person; a teacher's address is refused
with its reason (issue 16, item 10)."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import func, select

from tests.conftest import PASSWORD, login_as, make_course, make_user
from webapp.extensions import db
from webapp.models import AuditEvent, OutboxMessage, Role, StudentCourse, User
from webapp.services import accounts, roster

HX = {"HX-Request": "true", "HX-Target": "enrol"}


def enrolled_emails(course) -> list[str]:
    return sorted(
        db.session.scalars(
            select(User.email)
            .join(StudentCourse, StudentCourse.student_id == User.id)
            .where(StudentCourse.course_id == course.id)
        )
    )


def test_address_without_account_is_invited_enrolled_and_can_start(app, client, teacher, mailbox):
    course = make_course(teacher, title="Rivers", sections=1, blocks=1)
    login_as(client, teacher)
    resp = client.post(
        f"/teach/courses/{course.id}/students", data={"emails": "New.Person@School.org"}, headers=HX
    )
    assert resp.status_code == 200
    assert f"new.person@school.org</span>: {roster.INVITED}" in resp.text
    user = accounts.find_by_email("new.person@school.org")
    assert (user.role, user.status, user.password_hash, user.name) == (
        "student", "pending", None, "new.person",
    )  # fmt: skip
    assert enrolled_emails(course) == ["new.person@school.org"]
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "teacher.student_invited")
    ).all()
    assert (event.actor_id, event.target_user_id) == (teacher.id, user.id)
    assert event.details["course_id"] == course.id

    [msg] = mailbox.to("new.person@school.org")
    text = mailbox.text(msg)
    assert "Rivers" in msg["Subject"] and teacher.name in text
    link = re.search(r"http://lectern\.test(/\S+)", text).group(1)
    invitee = app.test_client()
    form = invitee.get(link, follow_redirects=True)
    assert form.status_code == 200 and 'type="password"' in form.text
    done = invitee.post("/invite", data={"password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 303
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.status == "active"
    login_as(invitee, user)
    mine = invitee.get("/learn")
    assert mine.status_code == 200 and "Rivers" in mine.text
    assert (
        invitee.get(f"/courses/{course.id}/blocks/{course.sections[0].blocks[0].id}").status_code
        == 200
    )


def test_pasting_an_invited_address_again_sends_the_invitation_again(client, teacher):
    course = make_course(teacher, sections=1, blocks=1)
    login_as(client, teacher)
    for _ in range(2):
        resp = client.post(
            f"/teach/courses/{course.id}/students", data={"emails": "again@school.org"}, headers=HX
        )
        assert resp.status_code == 200 and roster.INVITED in resp.text
    assert (
        db.session.scalar(select(func.count(User.id)).where(User.email == "again@school.org")) == 1
    )
    sent = db.session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.recipient == "again@school.org")
    )
    assert sent == 2


def test_teacher_and_admin_addresses_say_why_they_cannot_be_enrolled(client, teacher):
    course = make_course(teacher, sections=1, blocks=1)
    make_user(Role.TEACHER, email="prof@school.org")
    make_user(Role.ADMIN, email="boss@school.org")
    login_as(client, teacher)
    resp = client.post(
        f"/teach/courses/{course.id}/students",
        data={"emails": "prof@school.org boss@school.org"},
        headers=HX,
    )
    assert resp.status_code == 200
    shown = unescape(resp.text)
    assert "prof@school.org</span>: a teacher's account: only student accounts" in shown
    assert "boss@school.org</span>: an admin's account: only student accounts" in shown
    assert enrolled_emails(course) == []
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_deactivated_student_is_not_enrolled(client, teacher):
    course = make_course(teacher, sections=1, blocks=1)
    gone = make_user(Role.STUDENT, email="gone@school.org")
    gone.is_active = False
    db.session.commit()
    login_as(client, teacher)
    resp = client.post(
        f"/teach/courses/{course.id}/students", data={"emails": "gone@school.org"}, headers=HX
    )
    assert f"gone@school.org</span>: {roster.DEACTIVATED}" in resp.text
    assert enrolled_emails(course) == []
