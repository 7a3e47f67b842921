"""Forgotten password, invitations, and the account page: name, password, email, deletion."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, login_as, make_course, make_user
from tests.test_auth import actions, insert_meanwhile, links, normalise
from webapp import sessions, tokens
from webapp.extensions import db
from webapp.models import CompletedContentBlock, OutboxMessage, StudentCourse, User
from webapp.services import accounts, profile

NEW = "a completely new passphrase"


def path(url: str) -> str:
    return url.removeprefix("http://lectern.test")


def reset_link(mailbox, email: str) -> str:
    (msg,) = [m for m in mailbox.to(email) if m["Subject"] == "Reset your Lectern password"]
    (url,) = links(msg)
    return path(url)


# --- forgotten password --------------------------------------------------------------------


def test_forgot_page(client):
    resp = client.get("/password/forgot")
    assert resp.status_code == 200
    assert 'action="/password/forgot"' in resp.get_data(as_text=True)


def test_forgot_same_answer_for_known_and_unknown(client, mailbox):
    make_user(email="known@example.com")
    a = client.post("/password/forgot", data={"email": "known@example.com"})
    b = client.post("/password/forgot", data={"email": "unknown@example.com"})
    assert a.status_code == b.status_code == 303
    assert a.headers["Location"] == b.headers["Location"] == "/password/forgot/sent"
    assert a.get_data() == b.get_data()
    assert normalise(client.get("/password/forgot/sent").get_data(as_text=True))
    assert len(mailbox.to("known@example.com")) == 1
    assert mailbox.to("unknown@example.com") == []
    # Invalid input gives the same form whichever the address.
    x = client.post("/password/forgot", data={"email": ""})
    assert x.status_code == 422


def test_reset_journey(client, mailbox, student):
    other = client.application.test_client()
    login_as(other, student)
    mine = client.application.test_client()
    login_as(mine, student)
    client.post("/password/forgot", data={"email": student.email})
    link = reset_link(mailbox, student.email)
    assert "/password/reset/" in link

    resp = client.get(link)
    # The token moves into the session; the page itself has no token in its URL.
    assert resp.status_code == 303 and resp.headers["Location"] == "/password/reset"
    page = client.get("/password/reset")
    assert page.status_code == 200
    assert link.rsplit("/", 1)[1] not in page.get_data(as_text=True)
    assert "Choose a new password" in page.get_data(as_text=True)

    resp = client.post("/password/reset", data={"password": "short", "confirm": "short"})
    assert resp.status_code == 422
    resp = client.post("/password/reset", data={"password": NEW, "confirm": NEW})
    assert resp.status_code == 303 and resp.headers["Location"] == "/login"
    # Not logged in, and told so.
    page = client.get("/login")
    assert page.status_code == 200
    assert "every session was signed out" in page.get_data(as_text=True)
    # Every session of the user ended, durable (epoch) and in the store.
    db.session.refresh(student)
    assert student.session_epoch == 1
    assert sessions.store().list_for_user(student.id) == []
    for c in (other, mine):
        assert c.get("/account").status_code == 303
    # Old password refused, new one works.
    assert (
        client.post("/login", data={"email": student.email, "password": PASSWORD}).status_code
        == 422
    )
    ok = client.post("/login", data={"email": student.email, "password": NEW})
    assert ok.status_code == 303
    assert {"password.reset", "login.success"} <= set(actions())
    changed = [m for m in mailbox.to(student.email) if "was changed" in m["Subject"]]
    assert len(changed) == 1
    # The link works once.
    again = client.application.test_client()
    again.get(link)
    resp = again.get("/password/reset")
    assert resp.status_code == 410 and "already used" in resp.get_data(as_text=True)
    assert 'action="/password/forgot"' in resp.get_data(as_text=True)


def test_reset_page_without_a_token(client):
    resp = client.get("/password/reset")
    assert resp.status_code == 400
    assert client.post("/password/reset", data={"password": NEW, "confirm": NEW}).status_code == 400


def test_reset_link_expired_tampered_and_cross_purpose(client, app, student):
    good = tokens.make("reset", uid=student.id, pw=tokens.password_digest(student.password_hash))
    activation = tokens.make("activate", uid=student.id, email=student.email)
    invite = tokens.make(
        "invite", uid=student.id, email=student.email, pw=tokens.password_digest(None)
    )
    for bad in (good[:-3] + "abc", activation, invite):
        client.get(f"/password/reset/{bad}")
        assert client.get("/password/reset").status_code == 400
        resp = client.post("/password/reset", data={"password": NEW, "confirm": NEW})
        assert resp.status_code == 400
    app.config["RESET_MAX_SECONDS"] = -1
    client.get(f"/password/reset/{good}")
    resp = client.get("/password/reset")
    assert resp.status_code == 410 and "expired" in resp.get_data(as_text=True)
    db.session.refresh(student)
    assert student.session_epoch == 0


def test_reset_link_dies_when_the_password_changes_another_way(client, student):
    token = tokens.make("reset", uid=student.id, pw=tokens.password_digest(student.password_hash))
    student.password_hash = accounts.hash_password("some other password")
    db.session.commit()
    client.get(f"/password/reset/{token}")
    assert client.get("/password/reset").status_code == 410


def test_reset_refused_for_a_deactivated_account(client, mailbox):
    user = make_user(email="gone@example.com")
    token = tokens.make("reset", uid=user.id, pw=tokens.password_digest(user.password_hash))
    user.is_active = False
    db.session.commit()
    client.post("/password/forgot", data={"email": "gone@example.com"})
    assert mailbox.to("gone@example.com") == []
    client.get(f"/password/reset/{token}")
    assert client.get("/password/reset").status_code == 400


def test_forgot_for_a_pending_account_sends_the_activation_link(client, mailbox):
    make_user(email="pending@example.com", active=False)
    client.post("/password/forgot", data={"email": "pending@example.com"})
    (msg,) = mailbox.to("pending@example.com")
    assert msg["Subject"] == "Activate your Lectern account"


# --- invitations (accounts made by an admin) -----------------------------------------------


def test_invitation_sets_the_password_and_activates(client, mailbox, admin):
    user = accounts.create_user("invited@example.com", "Invited Person", None, "teacher")
    db.session.flush()
    accounts.send_invitation_email(user)
    db.session.commit()
    (msg,) = mailbox.to("invited@example.com")
    (url,) = links(msg)
    resp = client.get(path(url))
    assert resp.status_code == 303 and resp.headers["Location"] == "/invite"
    page = client.get("/invite").get_data(as_text=True)
    assert "Set your password" in page and "invited@example.com" in page
    resp = client.post("/invite", data={"password": "password123", "confirm": "password123"})
    assert resp.status_code == 422
    resp = client.post("/invite", data={"password": NEW, "confirm": NEW})
    assert resp.status_code == 303 and resp.headers["Location"] == "/login"
    db.session.refresh(user)
    assert user.is_active and user.activated_at is not None
    assert client.post("/login", data={"email": user.email, "password": NEW}).status_code == 303
    # Once only.
    fresh = client.application.test_client()
    fresh.get(path(url))
    assert fresh.get("/invite").status_code == 410


def test_admin_can_queue_activation_and_reset_emails(app, mailbox):
    user = make_user(email="someone@example.com", active=False)
    accounts.send_activation_email(user)
    accounts.send_password_reset_email(user)
    db.session.commit()
    subjects = sorted(m["Subject"] for m in mailbox.to("someone@example.com"))
    assert subjects == ["Activate your Lectern account", "Reset your Lectern password"]


def test_outbox_row_is_in_the_callers_transaction(app):
    user = make_user(email="someone@example.com", active=False)
    accounts.send_activation_email(user)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


# --- the account page ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["student", "teacher", "admin"])
def test_account_page_for_each_role(client, role):
    user = make_user(role)
    login_as(client, user)
    resp = client.get("/account")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert user.email in body and 'action="/account/password"' in body
    assert ('action="/account/delete"' in body) == (role == "student")
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "path_",
    ["/account/name", "/account/password", "/account/email", "/account/delete"],
)
def test_account_posts_need_a_user(client, path_):
    resp = client.post(path_, data={})
    assert resp.status_code == 303 and "/login" in resp.headers["Location"]


def test_change_name(client, student):
    login_as(client, student)
    resp = client.post("/account/name", data={"profile-name": "  Ada Lovelace "})
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    db.session.refresh(student)
    assert student.name == "Ada Lovelace"
    resp = client.post("/account/name", data={"profile-name": "   "})
    assert resp.status_code == 422
    db.session.refresh(student)
    assert student.name == "Ada Lovelace"


def _pw(current=PASSWORD, new=NEW, confirm=None):
    return {"pw-current_password": current, "pw-new_password": new, "pw-confirm": confirm or new}


def test_change_password_ends_other_sessions_but_keeps_this_one(client, mailbox, student):
    other = client.application.test_client()
    login_as(other, student)
    login_as(client, student)
    resp = client.post("/account/password", data=_pw())
    assert resp.status_code == 303
    db.session.refresh(student)
    assert accounts.authenticate(student.email, NEW).outcome == "ok"
    assert student.session_epoch == 1
    assert client.get("/account").status_code == 200  # this session goes on
    assert other.get("/account").status_code == 303  # the other one is over
    assert len(sessions.store().list_for_user(student.id)) == 1
    assert "password.changed" in actions()
    assert any("was changed" in m["Subject"] for m in mailbox.to(student.email))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_pw(current="wrong password"), "not your current password"),
        (_pw(new="qwertyuiop"), "most common"),
        (_pw(confirm="something else!"), "do not match"),
    ],
)
def test_change_password_refusals(client, student, data, message):
    login_as(client, student)
    resp = client.post("/account/password", data=data)
    assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    db.session.refresh(student)
    assert student.session_epoch == 0


def test_change_password_with_htmx_returns_the_form_fragment(client, student):
    login_as(client, student)
    headers = {"HX-Request": "true", "HX-Target": "password-form"}
    bad = client.post("/account/password", data=_pw(current="nope nope"), headers=headers)
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    assert body.lstrip().startswith("<form") and 'id="password-form"' in body
    assert "<html" not in body
    ok = client.post("/account/password", data=_pw(), headers=headers)
    assert ok.status_code == 200
    assert "other sessions were signed out" in ok.get_data(as_text=True)
    assert "announce" in ok.headers["HX-Trigger"]
    assert "HX-Target" in ok.headers["Vary"]
    assert client.get("/account").status_code == 200


def test_email_change_journey(client, mailbox, student):
    login_as(client, student)
    old = student.email
    resp = client.post(
        "/account/email", data={"em-email": "New@Example.com", "em-password": PASSWORD}
    )
    assert resp.status_code == 303
    db.session.refresh(student)
    assert student.email == old  # not until confirmed
    (msg,) = mailbox.to("new@example.com")
    (url,) = links(msg)
    # Opening the link only shows a button (mail scanners open links); the POST changes it.
    page = client.get(path(url))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Confirm your new email address" in body and "new@example.com" in body
    assert f'action="{path(url)}"' in body
    db.session.refresh(student)
    assert student.email == old
    resp = client.post(path(url))
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    db.session.refresh(student)
    assert student.email == "new@example.com"
    (notice,) = mailbox.to(old)
    assert "new@example.com" in mailbox.text(notice)
    assert "email.changed" in actions()
    assert client.get(path(url)).status_code == 410  # once
    assert client.post(path(url)).status_code == 410


def test_email_change_needs_the_password_and_a_free_address(client, mailbox, student):
    login_as(client, student)
    make_user(email="taken@example.com")
    resp = client.post("/account/email", data={"em-email": "x@example.com", "em-password": "bad!"})
    assert resp.status_code == 422 and "not your password" in resp.get_data(as_text=True)
    taken = client.post(
        "/account/email", data={"em-email": "taken@example.com", "em-password": PASSWORD}
    )
    free = client.post(
        "/account/email", data={"em-email": "free@example.com", "em-password": PASSWORD}
    )
    assert taken.status_code == free.status_code == 303  # no enumeration
    assert mailbox.to("taken@example.com") == []
    # An address taken between request and confirmation is refused at confirmation.
    (msg,) = mailbox.to("free@example.com")
    make_user(email="free@example.com")
    assert client.get(path(links(msg)[0])).status_code == 410
    assert client.post(path(links(msg)[0])).status_code == 410
    db.session.refresh(student)
    assert student.email.startswith("student")


def _email_change_token(user, new: str) -> str:
    return tokens.make("email-change", uid=user.id, old=user.email, new=new)


def test_email_change_confirmation_race_is_answered_as_taken(client, student, monkeypatch):
    """The address is taken between the check and the commit: a clear page, not a 500."""
    token = _email_change_token(student, "contested@example.com")
    assert client.get(f"/account/email/confirm/{token}").status_code == 200
    insert_meanwhile(monkeypatch, "contested@example.com", misses=None)
    resp = client.post(f"/account/email/confirm/{token}")
    assert resp.status_code == 410
    assert "now belongs to another account" in resp.get_data(as_text=True)
    db.session.refresh(student)
    assert student.email.startswith("student")
    assert "email.changed" not in actions()


def test_confirm_email_change_service_turns_the_unique_violation_into_taken(
    app, student, monkeypatch
):
    token = _email_change_token(student, "contested@example.com")
    insert_meanwhile(monkeypatch, "contested@example.com", misses=None)
    with pytest.raises(tokens.TokenError) as caught:
        profile.confirm_email_change(token, "127.0.0.1")
    assert caught.value.reason == "taken"
    db.session.refresh(student)
    assert student.email.startswith("student")


def test_opening_an_email_change_link_changes_nothing(client, student):
    token = _email_change_token(student, "elsewhere@example.com")
    for _ in range(2):
        assert client.get(f"/account/email/confirm/{token}").status_code == 200
        assert client.head(f"/account/email/confirm/{token}").status_code == 200
    db.session.refresh(student)
    assert student.email.startswith("student")
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_email_change_button_needs_the_csrf_token(student):
    from tests.conftest import IsolatedClient, base_config
    from webapp import create_app

    strict = create_app(base_config(WTF_CSRF_ENABLED=True))
    strict.test_client_class = IsolatedClient
    c = strict.test_client()
    token = _email_change_token(student, "elsewhere@example.com")
    assert c.post(f"/account/email/confirm/{token}").status_code == 400
    db.session.refresh(student)
    assert student.email.startswith("student")
    page = c.get(f"/account/email/confirm/{token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = c.post(f"/account/email/confirm/{token}", data={"csrf_token": csrf})
    assert resp.status_code == 303
    db.session.refresh(student)
    assert student.email == "elsewhere@example.com"


def test_delete_account_takes_enrolments_and_completions(client, teacher, student):
    course = make_course(teacher)
    db.session.add(StudentCourse(student_id=student.id, course_id=course.id))
    block = course.sections[0].blocks[0]
    db.session.add(CompletedContentBlock(student_id=student.id, content_block_id=block.id))
    db.session.commit()
    student_id = student.id
    login_as(client, student)
    bad = client.post("/account/delete", data={"del-password": "not it at all"})
    assert bad.status_code == 422
    assert db.session.get(User, student_id) is not None
    resp = client.post("/account/delete", data={"del-password": PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    db.session.expire_all()
    assert db.session.get(User, student_id) is None
    assert db.session.scalar(select(func.count()).select_from(StudentCourse)) == 0
    assert db.session.scalar(select(func.count()).select_from(CompletedContentBlock)) == 0
    assert sessions.store().list_for_user(student_id) == []
    assert "account.deleted" in actions()
    assert client.get("/account").status_code == 303


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_only_students_delete_themselves(client, role):
    user = make_user(role)
    login_as(client, user)
    resp = client.post("/account/delete", data={"del-password": PASSWORD})
    assert resp.status_code == 403
    assert "Only student accounts" in resp.get_data(as_text=True)
    assert db.session.get(User, user.id) is not None


def test_no_password_or_token_in_the_audit_log(client, mailbox, student):
    client.post("/login", data={"email": student.email, "password": "the wrong password"})
    client.post("/password/forgot", data={"email": student.email})
    link = reset_link(mailbox, student.email)
    client.get(link)
    client.post("/password/reset", data={"password": NEW, "confirm": NEW})
    from webapp.models import AuditEvent

    dump = repr([e.details for e in db.session.scalars(select(AuditEvent))])
    for secret in ("the wrong password", NEW, link.rsplit("/", 1)[1], PASSWORD):
        assert secret not in dump
    assert re.search("password.reset", repr(actions()))


def test_smtp_down_never_fails_the_request_nor_loses_the_message(client, app, mailbox):
    from tests.conftest import free_port
    from webapp.mail import deliver_pending

    working_port = app.config["MAIL_PORT"]  # the fixture's aiosmtpd server
    app.config.update(MAIL_PORT=free_port(), MAIL_TIMEOUT=0.5)  # nothing listens there
    resp = client.post(
        "/signup",
        data={
            "name": "Offline",
            "email": "offline@example.com",
            "password": NEW,
            "confirm": NEW,
            "role": "student",
        },
    )
    assert resp.status_code == 303
    assert deliver_pending() == (0, 1)
    row = db.session.scalar(select(OutboxMessage))
    assert row.sent_at is None and row.attempts == 1 and row.last_error
    # The server is back: the message goes out on a later run.
    app.config.update(MAIL_PORT=working_port)
    row.next_attempt_at = row.created_at
    db.session.commit()
    (msg,) = mailbox.to("offline@example.com")
    assert msg["Subject"] == "Activate your Lectern account"


def test_account_page_query_budget(client, student, count_queries):
    login_as(client, student)
    with count_queries() as q:
        assert client.get("/account").status_code == 200
    assert q.count <= 2


def test_change_email_with_htmx_returns_the_form_fragment(client, mailbox, student):
    login_as(client, student)
    headers = {"HX-Request": "true", "HX-Target": "email-form"}
    bad = client.post(
        "/account/email", data={"em-email": "nope", "em-password": PASSWORD}, headers=headers
    )
    assert bad.status_code == 422
    assert 'id="email-form"' in bad.get_data(as_text=True)
    assert "<html" not in bad.get_data(as_text=True)
    ok = client.post(
        "/account/email",
        data={"em-email": "fresh@example.com", "em-password": PASSWORD},
        headers=headers,
    )
    assert ok.status_code == 200
    assert "confirmation link" in ok.get_data(as_text=True)
    assert "announce" in ok.headers["HX-Trigger"]
    assert len(mailbox.to("fresh@example.com")) == 1


@pytest.mark.parametrize("path_", ["/signup", "/login"])
def test_signed_in_users_are_sent_home_from_signup_and_login(client, student, path_):
    login_as(client, student)
    resp = client.get(path_)
    assert resp.status_code == 303 and resp.headers["Location"] == "/learn"


# --- throttles on the account forms --------------------------------------------------------


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", {})


def settings(**values):
    return pytest.mark.parametrize("config_overrides", [values], indirect=True)


def _change_email(client, new: str, password: str = PASSWORD):
    return client.post("/account/email", data={"em-email": new, "em-password": password})


@settings(EMAIL_LIMIT_USER="2 per hour")
def test_change_email_is_throttled_per_user(app, student):
    c = app.test_client()
    login_as(c, student)
    assert _change_email(c, "one@example.com").status_code == 303
    assert _change_email(c, "two@example.com").status_code == 303
    resp = _change_email(c, "three@example.com")
    assert resp.status_code == 429 and 0 < int(resp.headers["Retry-After"]) <= 3600
    other = app.test_client()
    login_as(other, make_user())
    assert _change_email(other, "four@example.com").status_code == 303


@settings(EMAIL_LIMIT_ADDRESS="2 per hour")
def test_change_email_is_throttled_per_target_address(app):
    answers = []
    for _ in range(3):
        c = app.test_client()
        login_as(c, make_user())
        answers.append(_change_email(c, "Inbox@Example.com").status_code)
    assert answers == [303, 303, 429]
    assert _change_email(c, "another@example.com").status_code == 303


@settings(EMAIL_LIMIT_IP="2 per hour")
def test_change_email_is_throttled_per_ip(app):
    answers = []
    for n in range(3):
        c = app.test_client()
        login_as(c, make_user())
        answers.append(_change_email(c, f"n{n}@example.com").status_code)
    assert answers == [303, 303, 429]


def _wrong(client, form: str):
    data = {
        "password": _pw(current="not my password"),
        "email": {"em-email": "x@example.com", "em-password": "not my password"},
        "delete": {"del-password": "not my password"},
    }[form]
    return client.post(f"/account/{form}", data=data)


def test_password_checks_of_a_signed_in_user_are_throttled(client, student):
    """A stolen session gets 10 guesses of the password per 15 minutes, across the three forms
    that ask for it; then even the right password is refused (429) and the lockout audited."""
    login_as(client, student)
    for n in range(10):
        assert _wrong(client, ("password", "email", "delete")[n % 3]).status_code == 422
    resp = client.post("/account/password", data=_pw())
    assert resp.status_code == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 900
    assert "try again" in resp.get_data(as_text=True).lower()
    assert _change_email(client, "x@example.com").status_code == 429
    assert client.post("/account/delete", data={"del-password": PASSWORD}).status_code == 429
    db.session.refresh(student)
    assert student.session_epoch == 0  # nothing changed
    assert actions().count("password.locked") == 3
    from webapp.models import AuditEvent

    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "password.locked"))
    assert event.target_user_id == student.id and event.actor_id == student.id
    # Another user is not affected.
    other_user = make_user()
    other = client.application.test_client()
    login_as(other, other_user)
    assert other.post("/account/password", data=_pw()).status_code == 303


@settings(PASSWORD_CHECK_LIMIT="2 per 15 minutes")
def test_only_wrong_passwords_count_towards_the_password_throttle(client, student):
    login_as(client, student)
    for _ in range(3):  # refused for another reason: the current password was right
        resp = client.post("/account/password", data=_pw(new="qwertyuiop"))
        assert resp.status_code == 422 and "most common" in resp.get_data(as_text=True)
    for n in range(3):  # right password, the change goes through
        assert _change_email(client, f"n{n}@example.com").status_code == 303
    assert _wrong(client, "email").status_code == 422
    assert _wrong(client, "email").status_code == 422
    assert _change_email(client, "later@example.com").status_code == 429


@settings(PASSWORD_CHECK_LIMIT="1 per 15 minutes")
def test_password_throttle_with_htmx_answers_429(client, student):
    login_as(client, student)
    headers = {"HX-Request": "true", "HX-Target": "password-form"}
    assert (
        client.post("/account/password", data=_pw(current="nope nope"), headers=headers).status_code
        == 422
    )
    resp = client.post("/account/password", data=_pw(), headers=headers)
    assert resp.status_code == 429 and "<html" not in resp.get_data(as_text=True)
    assert "Retry-After" in resp.headers
