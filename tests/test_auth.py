"""Accounts: sign-up, activation, log in and out, enumeration, throttling, redirects, CSRF."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from tests.conftest import DATABASE_URL, PASSWORD, at_once, base_config, login_as, make_user
from webapp import create_app, sessions, tokens
from webapp.extensions import db
from webapp.models import AuditEvent, OutboxMessage, User
from webapp.services import accounts

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"http://lectern\.test/\S+")


def links(msg) -> list[str]:
    from tests.conftest import Mailbox

    return LINK.findall(Mailbox.text(msg))


def normalise(html: str, *words: str) -> str:
    """A page body without what legitimately differs between two requests."""
    # the whole hidden input, whatever its attributes' order (the token's time part may differ)
    html = re.sub(r'<input\b[^>]*\bname="csrf_token"[^>]*>', "", html)
    html = re.sub(r'"X-CSRFToken": "[^"]*"', "", html)
    html = re.sub(r"Request ID[^<]*", "", html)
    for word in words:
        html = html.replace(word, "WORD")
    return html


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def signup(
    client, email="new@example.com", password=NEW_PASSWORD, role="student", confirm=None, **kw
):
    data = {"name": "New Person", "email": email, "password": password}
    data.update(confirm=password if confirm is None else confirm, role=role)
    return client.post("/signup", data=data, **kw)


# --- sign up -------------------------------------------------------------------------------


def test_signup_page_renders(client):
    resp = client.get("/signup")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    for label in ("Name", "Email", "Password", "Confirm password", "I am a student"):
        assert label in body
    assert "admin" not in body.lower().replace("administrator", "")
    assert 'hx-post="/signup/validate/email"' in body


def test_signup_activation_login_journey(client, mailbox):
    resp = signup(client, email="New@Example.com")
    assert resp.status_code == 303 and resp.headers["Location"] == "/signup/sent"
    user = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert user is not None and not user.is_active and user.activated_at is None
    assert user.role == "student" and user.password_hash.startswith("scrypt")
    assert "signup" in actions()

    (msg,) = mailbox.to("new@example.com")
    assert msg["Subject"] == "Activate your Lectern account"
    assert msg.get_body(preferencelist=("html",)) is not None
    (url,) = links(msg)
    assert "/activate/" in url
    # Not active yet: a right password says so and re-sends the link.
    resp = client.post("/login", data={"email": "new@example.com", "password": NEW_PASSWORD})
    assert resp.status_code == 422
    assert "not activated yet" in resp.get_data(as_text=True)
    assert len(mailbox.to("new@example.com")) == 2

    # Opening the link only shows a button (mail scanners open links); the POST activates.
    page = client.get(url.removeprefix("http://lectern.test"))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Activate your account" in body
    assert f'action="{url.removeprefix("http://lectern.test")}"' in body
    db.session.refresh(user)
    assert not user.is_active and user.activated_at is None
    resp = client.post(url.removeprefix("http://lectern.test"))
    assert resp.status_code == 303 and resp.headers["Location"] == "/login"
    db.session.refresh(user)
    assert user.is_active and user.activated_at is not None
    # A second use gets a clear page with a form for a new link.
    again = client.get(url.removeprefix("http://lectern.test"))
    assert again.status_code == 410
    body = again.get_data(as_text=True)
    assert "already used" in body and 'action="/activate/resend"' in body

    resp = client.post("/login", data={"email": "new@example.com", "password": NEW_PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"] == "/learn"
    assert client.get("/learn").status_code == 200


def test_signup_as_teacher_and_never_as_admin(client):
    """By default (TEACHER_SIGNUP=approval) a teacher's sign-up asks an admin first
    (tests/test_teacher_signup.py has each setting)."""
    assert signup(client, email="t@example.com", role="teacher").status_code == 303
    user = db.session.scalar(select(User).where(User.email == "t@example.com"))
    assert user.role == "student" and user.teacher_requested_at is not None
    resp = signup(client, email="a@example.com", role="admin")
    assert resp.status_code == 422
    assert db.session.scalar(select(User).where(User.email == "a@example.com")) is None


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short", "short", "at least 10 characters"),
        ("x" * 257, "x" * 257, "at most 256"),
        ("1234567890", "1234567890", "most common"),
        ("password123", "password123", "most common"),
        ("Basketball", "Basketball", "most common"),
        ("new@example.com", "new@example.com", "not be your email"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "do not match"),
    ],
)
def test_signup_password_policy(client, password, confirm, message):
    resp = signup(client, password=password, confirm=confirm)
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_common_password_list_is_shipped():
    from webapp.services.accounts import COMMON_PASSWORDS_FILE as COMMON_FILE
    from webapp.services.accounts import common_passwords

    words = common_passwords()
    assert len(COMMON_FILE.read_text().splitlines()) == 10_000
    assert len(words) > 9_900  # compared case-insensitively
    assert {"123456", "password", "qwerty"} <= words


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com", ""])
def test_signup_invalid_email(client, email):
    resp = signup(client, email=email)
    assert resp.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_signup_with_registered_email_looks_the_same_and_mails_the_owner(client, mailbox):
    owner = make_user(email="owner@example.com")
    known = signup(client, email="owner@example.com")
    unknown = signup(client, email="fresh@example.com")
    assert known.status_code == unknown.status_code == 303
    assert known.headers["Location"] == unknown.headers["Location"]
    assert known.get_data() == unknown.get_data()
    page_known = client.get(known.headers["Location"]).get_data(as_text=True)
    page_unknown = client.get(unknown.headers["Location"]).get_data(as_text=True)
    assert normalise(page_known) == normalise(page_unknown)
    db.session.refresh(owner)
    assert owner.password_hash.startswith("pbkdf2")  # untouched
    (msg,) = mailbox.to("owner@example.com")
    assert msg["Subject"] == "You already have a Lectern account"
    assert any("/password/reset/" in u for u in links(msg))


def test_signup_invalid_shows_the_same_form_for_registered_and_unknown(client):
    make_user(email="owner@example.com")
    a = signup(client, email="owner@example.com", password="short", confirm="short")
    b = signup(client, email="other@example.com", password="short", confirm="short")
    assert a.status_code == b.status_code == 422
    assert normalise(a.get_data(as_text=True), "owner") == normalise(
        b.get_data(as_text=True), "other"
    )


@pytest.mark.parametrize(
    ("field", "data", "expect"),
    [
        ("email", {"email": "nope"}, "valid email"),
        ("email", {"email": "fine@example.com"}, ""),
        ("password", {"password": "short"}, "at least 10"),
        ("password", {"password": "violet staircase"}, ""),
        ("password", {"password": "qwertyuiop"}, "most common"),
        ("password", {"email": "me@example.com", "password": "me@example.com"}, "your email"),
        ("confirm", {"password": NEW_PASSWORD, "confirm": "other thing"}, "do not match"),
        ("confirm", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, ""),
        ("name", {"name": "x" * 200}, "120"),
    ],
)
def test_inline_validation(client, field, data, expect):
    resp = client.post(f"/signup/validate/{field}", data=data, headers={"HX-Request": "true"})
    assert resp.status_code == 200
    body = resp.get_data(as_text=True).strip()
    if expect:
        assert expect in body and body.startswith('<p class="error">')
    else:
        assert body == ""


def test_inline_validation_never_reveals_registration(client):
    make_user(email="owner@example.com")
    a = client.post("/signup/validate/email", data={"email": "owner@example.com"})
    b = client.post("/signup/validate/email", data={"email": "other@example.com"})
    assert a.status_code == b.status_code == 200
    assert a.get_data() == b.get_data() == b""
    assert client.post("/signup/validate/role", data={}).status_code == 404


# --- activation links --------------------------------------------------------------------


def _activation_token(user) -> str:
    return tokens.make(
        "activate", uid=user.id, email=user.email, pw=tokens.password_digest(user.password_hash)
    )


def test_expired_activation_link(client, app):
    user = make_user(active=False)
    token = _activation_token(user)
    app.config["ACTIVATION_MAX_SECONDS"] = -1
    for resp in (client.get(f"/activate/{token}"), client.post(f"/activate/{token}")):
        assert resp.status_code == 410 and "expired" in resp.get_data(as_text=True)
    db.session.refresh(user)
    assert not user.is_active


def test_tampered_and_cross_purpose_activation_links(client):
    user = make_user(active=False)
    token = _activation_token(user)
    for bad in (token[:-2] + "xx", "garbage", tokens.make("reset", uid=user.id, pw="x")):
        for resp in (client.get(f"/activate/{bad}"), client.post(f"/activate/{bad}")):
            assert resp.status_code == 400
            assert "not valid" in resp.get_data(as_text=True)
    db.session.refresh(user)
    assert not user.is_active


def test_activation_link_bound_to_the_address(client):
    user = make_user(active=False, email="first@example.com")
    token = _activation_token(user)
    user.email = "second@example.com"
    db.session.commit()
    assert client.get(f"/activate/{token}").status_code == 400
    assert client.post(f"/activate/{token}").status_code == 400


def test_activation_link_cannot_reactivate_a_deactivated_account(client):
    user = make_user(active=False)
    token = _activation_token(user)
    assert client.post(f"/activate/{token}").status_code == 303
    db.session.refresh(user)
    user.is_active = False  # an admin deactivates them
    db.session.commit()
    assert client.get(f"/activate/{token}").status_code == 410
    assert client.post(f"/activate/{token}").status_code == 410
    db.session.refresh(user)
    assert not user.is_active


def test_opening_an_activation_link_changes_nothing(client):
    """Mail scanners fetch every link in a message: GET and HEAD only show the button."""
    user = make_user(active=False)
    token = _activation_token(user)
    for _ in range(2):
        assert client.get(f"/activate/{token}").status_code == 200
        assert client.head(f"/activate/{token}").status_code == 200
    db.session.refresh(user)
    assert not user.is_active and user.activated_at is None
    assert "account.activated" not in actions()


def test_activation_link_without_the_password_digest_is_refused(client):
    user = make_user(active=False)
    token = tokens.make("activate", uid=user.id, email=user.email)  # as made before the digest
    for resp in (client.get(f"/activate/{token}"), client.post(f"/activate/{token}")):
        assert resp.status_code == 410
        body = resp.get_data(as_text=True)
        assert "already used" in body and 'action="/activate/resend"' in body
    db.session.refresh(user)
    assert not user.is_active


def _signup_as(client, email, password, name, role):
    data = {"name": name, "email": email, "password": password, "confirm": password, "role": role}
    return client.post("/signup", data=data)


def test_signup_for_a_pending_address_replaces_the_earlier_one(client, mailbox):
    """Pre-hijacking: someone signs up first with the victim's address and their own password.
    The victim's sign-up replaces password, name and role, and the first link dies."""
    attacker_pw = "mallory owns this now"
    first = _signup_as(client, "victim@example.com", attacker_pw, "Mallory", "teacher")
    second = _signup_as(client, "victim@example.com", NEW_PASSWORD, "Victor", "student")
    fresh = _signup_as(client, "someone@example.com", NEW_PASSWORD, "Victor", "student")
    assert first.status_code == second.status_code == fresh.status_code == 303
    assert second.headers["Location"] == fresh.headers["Location"] == "/signup/sent"
    assert second.get_data() == fresh.get_data()
    (user,) = db.session.scalars(select(User).where(User.email == "victim@example.com"))
    assert (user.name, user.role, user.is_active) == ("Victor", "student", False)
    assert check_password_hash(user.password_hash, NEW_PASSWORD)
    assert not check_password_hash(user.password_hash, attacker_pw)
    old_link, new_link = (
        links(m)[0].removeprefix("http://lectern.test") for m in mailbox.to("victim@example.com")
    )
    # The first sign-up's link no longer works, on GET or POST.
    for resp in (client.get(old_link), client.post(old_link)):
        assert resp.status_code == 410 and "already used" in resp.get_data(as_text=True)
    db.session.refresh(user)
    assert not user.is_active
    assert client.post(new_link).status_code == 303
    db.session.refresh(user)
    assert user.is_active
    bad = client.post("/login", data={"email": "victim@example.com", "password": attacker_pw})
    assert bad.status_code == 422
    ok = client.post("/login", data={"email": "victim@example.com", "password": NEW_PASSWORD})
    assert ok.status_code == 303
    # Once active, a sign-up no longer replaces anything.
    _signup_as(client.application.test_client(), "victim@example.com", attacker_pw, "M", "student")
    db.session.refresh(user)
    assert check_password_hash(user.password_hash, NEW_PASSWORD) and user.name == "Victor"


def test_signup_for_an_invited_address_sends_the_invitation_again(client, mailbox):
    user = accounts.create_user("invited@example.com", "Invited Person", None, "teacher")
    db.session.commit()
    resp = signup(client, email="invited@example.com")
    assert resp.status_code == 303 and resp.headers["Location"] == "/signup/sent"
    db.session.refresh(user)
    assert user.password_hash is None and not user.is_active
    assert (user.name, user.role) == ("Invited Person", "teacher")
    (msg,) = mailbox.to("invited@example.com")
    assert msg["Subject"] == "You are invited to Lectern"
    (url,) = links(msg)
    assert client.get(url.removeprefix("http://lectern.test")).headers["Location"] == "/invite"
    resp = client.post("/invite", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert resp.status_code == 303
    db.session.refresh(user)
    assert user.is_active and user.role == "teacher"


def insert_meanwhile(monkeypatch, email: str, misses: int | None = 1):
    """The check-then-insert race, made deterministic: ``accounts.find_by_email`` misses
    ``email`` (``misses`` times; None: always) while another connection commits a user with it."""
    real = accounts.find_by_email
    state = {"calls": 0}

    def find(address):
        if accounts.normalise_email(address) != email:
            return real(address)
        state["calls"] += 1
        if state["calls"] == 1:
            with db.engine.begin() as conn:
                conn.execute(
                    User.__table__.insert().values(
                        email=email,
                        name="Quicker",
                        password_hash=generate_password_hash("quicker passphrase", "pbkdf2"),
                        role="student",
                        is_active=False,
                        session_epoch=0,
                    )
                )
        if misses is None or state["calls"] <= misses:
            return None
        return real(address)

    monkeypatch.setattr(accounts, "find_by_email", find)


def test_signup_race_on_a_new_address_is_answered_as_usual(client, mailbox, monkeypatch):
    insert_meanwhile(monkeypatch, "race@example.com")
    resp = signup(client, email="race@example.com")
    assert resp.status_code == 303 and resp.headers["Location"] == "/signup/sent"
    (user,) = db.session.scalars(select(User).where(User.email == "race@example.com"))
    # Answered as a sign-up for a pending address: this submission replaced the other.
    assert user.name == "New Person" and check_password_hash(user.password_hash, NEW_PASSWORD)
    (msg,) = mailbox.to("race@example.com")
    assert client.post(links(msg)[0].removeprefix("http://lectern.test")).status_code == 303


def test_resend_activation_same_answer_whatever_the_email(client, mailbox):
    make_user(active=False, email="pending@example.com")
    make_user(email="active@example.com")
    answers = [
        client.post("/activate/resend", data={"email": e})
        for e in ("pending@example.com", "active@example.com", "nobody@example.com")
    ]
    assert {r.status_code for r in answers} == {303}
    assert {r.headers["Location"] for r in answers} == {"/activate/sent"}
    assert len({r.get_data() for r in answers}) == 1
    assert len(mailbox.to("pending@example.com")) == 1
    assert mailbox.to("active@example.com") == []
    assert client.get("/activate/sent").status_code == 200


# --- log in --------------------------------------------------------------------------------


def test_login_page(client):
    resp = client.get("/login")
    assert resp.status_code == 200
    assert 'name="remember"' in resp.get_data(as_text=True)


@pytest.mark.parametrize("case", ["unknown", "wrong", "deactivated"])
def test_login_failures_share_one_generic_answer(client, case):
    make_user(email="known@example.com")
    make_user(email="gone@example.com", active=True)
    gone = db.session.scalar(select(User).where(User.email == "gone@example.com"))
    gone.is_active = False
    db.session.commit()
    email, password = {
        "unknown": ("nobody@example.com", PASSWORD),
        "wrong": ("known@example.com", "not the password"),
        "deactivated": ("gone@example.com", PASSWORD),
    }[case]
    resp = client.post("/login", data={"email": email, "password": password})
    assert resp.status_code == 422
    assert "do not match an active account" in resp.get_data(as_text=True)
    with client.session_transaction() as sess:
        assert sessions.AUTH_KEY not in sess
    assert actions()[-1] == "login.failure"


def test_login_enumeration_identical_bodies(client):
    make_user(email="known@example.com")
    a = client.post("/login", data={"email": "known@example.com", "password": "wrong one!"})
    b = client.post("/login", data={"email": "zzzzz@example.com", "password": "wrong one!"})
    assert a.status_code == b.status_code == 422
    assert normalise(a.get_data(as_text=True), "known") == normalise(
        b.get_data(as_text=True), "zzzzz"
    )


@pytest.mark.slow
def test_email_forms_take_the_same_time_for_registered_and_unknown_addresses(app):
    """Forgot and resend queue an email only for a registered address, sign-up mails the owner:
    every answer waits out EMAIL_FORM_MIN_SECONDS, so the extra work does not show."""
    import time

    make_user(email="known@example.com")
    make_user(email="pending@example.com", active=False)
    client = app.test_client()

    def took(path: str, **data) -> float:
        started = time.monotonic()
        resp = client.post(path, data=data)
        assert resp.status_code == 303, (path, resp.status_code)
        return time.monotonic() - started

    pw = {"name": "N", "password": "a long passphrase", "confirm": "a long passphrase"}
    # (floor, registered, unknown, samples): sign-up pays scrypt on both paths, which on a busy
    # machine alone can take a few hundred milliseconds, so its floor here is higher.
    cases = {
        "/password/forgot": (0.3, {"email": "known@example.com"}, {"email": "no{}@example.com"}, 2),
        "/activate/resend": (
            0.3,
            {"email": "pending@example.com"},
            {"email": "x{}@example.com"},
            2,
        ),
        "/signup": (
            1.0,
            {**pw, "role": "student", "email": "known@example.com"},
            {**pw, "role": "student", "email": "new{}@example.com"},
            1,
        ),
    }
    for path, (floor, known, unknown, samples) in cases.items():
        app.config["EMAIL_FORM_MIN_SECONDS"] = floor
        registered = [took(path, **known) for _ in range(samples)]
        other = [
            took(path, **{**unknown, "email": unknown["email"].format(i)}) for i in range(samples)
        ]
        assert min(registered + other) >= floor, path
        # the floor hides milliseconds of work; allow for a busy machine's jitter
        assert abs(sum(registered) - sum(other)) / samples < 0.1, (path, registered, other)


def test_login_uses_the_dummy_hash_for_unknown_emails(client, monkeypatch):
    from webapp.services import accounts

    checked = []
    real = accounts.check_password_hash
    monkeypatch.setattr(
        accounts, "check_password_hash", lambda h, p: checked.append(h) or real(h, p)
    )
    client.post("/login", data={"email": "nobody@example.com", "password": "whatever!!"})
    assert checked == [accounts._DUMMY_HASH]


def test_login_success_records_and_issues_a_fresh_session(client, student):
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    before = client.get_cookie("lectern").value
    resp = client.post("/login", data={"email": student.email, "password": PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"] == "/learn"
    after = client.get_cookie("lectern").value
    assert after != before
    with client.session_transaction() as sess:
        assert "planted" not in sess and sessions.AUTH_KEY in sess
        assert not sess.permanent
    db.session.refresh(student)
    assert student.last_login_at is not None
    assert actions()[-1] == "login.success"
    assert len(sessions.store().list_for_user(student.id)) == 1


def test_keep_me_signed_in_makes_a_lasting_cookie(client, student):
    client.post("/login", data={"email": student.email, "password": PASSWORD, "remember": "y"})
    cookie = client.get_cookie("lectern")
    assert cookie.expires is not None
    with client.session_transaction() as sess:
        assert sess.permanent


def test_login_with_htmx_answers_hx_redirect(client, student):
    resp = client.post(
        "/login",
        data={"email": student.email, "password": PASSWORD},
        headers={"HX-Request": "true"},
    )
    assert resp.status_code == 204 and resp.headers["HX-Redirect"] == "/learn"


def test_signed_in_user_visiting_login_goes_home(client, teacher):
    login_as(client, teacher)
    resp = client.get("/login")
    assert resp.status_code == 303 and resp.headers["Location"] == "/teach"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "\t//evil.example",
        "javascript:alert(1)",
        "https://evil.example/x",
        " /courses",
        "/\t/evil.example",
    ],
)
def test_next_refuses_open_redirects(client, student, target):
    resp = client.post(
        "/login",
        query_string={"next": target},
        data={"email": student.email, "password": PASSWORD},
    )
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/learn"


def test_next_honours_same_site_paths(client, student):
    resp = client.post(
        "/login?next=/courses?page=2",
        data={"email": student.email, "password": PASSWORD},
    )
    assert resp.headers["Location"] == "/courses?page=2"


def test_login_required_page_sends_to_login_with_next(client):
    resp = client.get("/account")
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/login?next=")
    assert "account" in resp.headers["Location"]
    resp = client.get("/account/sessions", headers={"HX-Request": "true"})
    assert resp.status_code == 204 and resp.headers["HX-Redirect"].startswith("/login")


# --- log out -------------------------------------------------------------------------------


def test_logout_is_post_only_and_the_old_cookie_is_refused_after(client, student):
    client.post("/login", data={"email": student.email, "password": PASSWORD})
    stolen = client.get_cookie("lectern").value
    assert client.get("/logout").status_code == 405
    resp = client.post("/logout")
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert sessions.store().list_for_user(student.id) == []
    # Replay the cookie from before the logout.
    client.set_cookie("lectern", stolen)
    resp = client.get("/account")
    assert resp.status_code == 303 and "/login" in resp.headers["Location"]


def test_logout_form_on_every_page_for_a_signed_in_user(client, student):
    login_as(client, student)
    for path in ("/learn", "/account", "/courses"):
        body = client.get(path).get_data(as_text=True)
        assert 'action="/logout"' in body, path


# --- CSRF ----------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(app):
    strict = create_app(base_config(WTF_CSRF_ENABLED=True))
    from tests.conftest import IsolatedClient

    strict.test_client_class = IsolatedClient
    return strict.test_client()


def test_login_and_logout_need_the_csrf_token(csrf_client, student):
    resp = csrf_client.post("/login", data={"email": student.email, "password": PASSWORD})
    assert resp.status_code == 400
    assert actions() == []
    page = csrf_client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = csrf_client.post(
        "/login", data={"email": student.email, "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code == 303
    assert csrf_client.post("/logout").status_code == 400
    assert len(sessions.store().list_for_user(student.id)) == 1
    page = csrf_client.get("/learn").get_data(as_text=True)
    header = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    resp = csrf_client.post("/logout", headers={"X-CSRFToken": header})
    assert resp.status_code == 303
    assert sessions.store().list_for_user(student.id) == []


@pytest.mark.parametrize(
    "path",
    [
        "/signup",
        "/password/forgot",
        "/activate/resend",
        "/account/password",
        "/account/email",
        "/account/delete",
    ],
)
def test_state_changing_posts_refuse_a_missing_token(csrf_client, path):
    assert csrf_client.post(path, data={"email": "x@example.com"}).status_code == 400


def test_activation_button_needs_the_csrf_token(csrf_client):
    user = make_user(active=False)
    token = _activation_token(user)
    assert csrf_client.post(f"/activate/{token}").status_code == 400
    db.session.refresh(user)
    assert not user.is_active
    page = csrf_client.get(f"/activate/{token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = csrf_client.post(f"/activate/{token}", data={"csrf_token": csrf})
    assert resp.status_code == 303 and resp.headers["Location"] == "/login"
    db.session.refresh(user)
    assert user.is_active


# --- throttling ----------------------------------------------------------------------------


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", {})


def settings(**values):
    return pytest.mark.parametrize("config_overrides", [values], indirect=True)


def _fail(client, email="victim@example.com", **kw):
    return client.post("/login", data={"email": email, "password": "wrong password"}, **kw)


@settings(LOGIN_LIMIT_ACCOUNT="3 per 15 minutes", LOGIN_LIMIT_IP="100 per hour")
def test_account_limit_counts_failures_and_then_refuses_even_the_right_password(client):
    make_user(email="victim@example.com")
    for _ in range(3):
        assert _fail(client).status_code == 422
    resp = client.post("/login", data={"email": "victim@example.com", "password": PASSWORD})
    assert resp.status_code == 429
    retry = int(resp.headers["Retry-After"])
    assert 0 < retry <= 900
    assert "try again" in resp.get_data(as_text=True).lower()
    assert "login.locked" in actions()
    # Other accounts from the same address are not affected.
    other = make_user(email="other@example.com")
    resp = client.post("/login", data={"email": other.email, "password": PASSWORD})
    assert resp.status_code == 303


@settings(LOGIN_LIMIT_ACCOUNT="3 per 15 minutes")
def test_successful_logins_do_not_count(client, student):
    for _ in range(5):
        c = client.application.test_client()
        resp = c.post("/login", data={"email": student.email, "password": PASSWORD})
        assert resp.status_code == 303


@settings(LOGIN_LIMIT_ACCOUNT="3 per 15 minutes")
def test_account_limit_is_the_same_for_unknown_emails(client):
    for _ in range(3):
        assert _fail(client, "ghost@example.com").status_code == 422
    assert _fail(client, "ghost@example.com").status_code == 429


@settings(LOGIN_LIMIT_IP="3 per 15 minutes", LOGIN_LIMIT_ACCOUNT="100 per hour")
def test_ip_limit_cannot_be_dodged_with_a_spoofed_forwarded_for(client):
    for n in range(3):
        resp = _fail(client, f"u{n}@example.com", headers={"X-Forwarded-For": f"10.0.0.{n}"})
        assert resp.status_code == 422
    resp = _fail(client, "u9@example.com", headers={"X-Forwarded-For": "10.9.9.9"})
    assert resp.status_code == 429


@settings(LOGIN_LIMIT_IP="3 per 15 minutes", LOGIN_LIMIT_ACCOUNT="100 per hour", TRUSTED_PROXIES=1)
def test_ip_limit_follows_forwarded_for_behind_a_trusted_proxy(client):
    for _ in range(3):
        assert _fail(client, headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 422
    assert _fail(client, headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 429
    assert _fail(client, headers={"X-Forwarded-For": "10.0.0.2"}).status_code == 422


@settings(EMAIL_LIMIT_ADDRESS="2 per hour")
def test_email_sending_forms_are_throttled_per_address(client):
    for _ in range(2):
        assert client.post("/password/forgot", data={"email": "a@example.com"}).status_code == 303
    assert client.post("/password/forgot", data={"email": "a@example.com"}).status_code == 429
    assert client.post("/password/forgot", data={"email": "b@example.com"}).status_code == 303


# --- links come from BASE_URL --------------------------------------------------------------


def test_links_in_emails_ignore_a_poisoned_host_header(client, mailbox):
    make_user(email="victim@example.com")
    headers = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    client.post("/password/forgot", data={"email": "victim@example.com"}, headers=headers)
    signup(client, email="newbie@example.com", headers=headers)
    msgs = mailbox.to("victim@example.com") + mailbox.to("newbie@example.com")
    assert len(msgs) == 2
    for msg in msgs:
        text = mailbox.text(msg) + msg.get_body(preferencelist=("html",)).get_content()
        assert "evil.example" not in text
        assert links(msg) and all(u.startswith("http://lectern.test/") for u in links(msg))


# --- races on PostgreSQL -------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(
    not DATABASE_URL.startswith("postgresql"), reason="real concurrency needs PostgreSQL"
)
@settings(EMAIL_LIMIT_ADDRESS="100 per hour", EMAIL_LIMIT_IP="100 per hour")
def test_concurrent_signups_of_one_address_make_one_account(app):
    """20 sign-ups of one address at once, in different letter cases: one account, no 5xx."""
    n = 20
    cases = ["same@example.com", "Same@Example.com", "SAME@EXAMPLE.COM", "same@EXAMPLE.com"]
    password = {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "role": "student"}

    def sign_up(c, i):
        return c.post(
            "/signup", data={"name": f"Person {i}", "email": cases[i % len(cases)], **password}
        )

    statuses = at_once(app, [app.test_client() for _ in range(n)], sign_up)
    assert statuses == [303] * n
    db.session.expire_all()
    users = list(db.session.scalars(select(User).where(User.email == "same@example.com")))
    assert len(users) == 1
    # Every sign-up was answered and sent its link; only the last password's link works.
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == n


@pytest.mark.skipif(
    not DATABASE_URL.startswith("postgresql"), reason="real concurrency needs PostgreSQL"
)
def test_one_activation_link_accepted_20_times_at_once_activates_once(app):
    user = make_user(active=False)
    token, n = _activation_token(user), 20
    clients = [app.test_client() for _ in range(n)]
    statuses = at_once(app, clients, lambda c, _: c.post(f"/activate/{token}"))
    assert all(s < 500 for s in statuses) and statuses.count(303) >= 1, statuses
    assert set(statuses) <= {303, 410}, statuses  # the others: "already used"
    db.session.expire_all()
    assert db.session.get(User, user.id).is_active
    assert actions().count("account.activated") == 1  # activated once, audited once
