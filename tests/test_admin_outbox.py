"""/admin/outbox: pending and given-up messages with their last error, never a body; counts,
the empty state, keyset pages; Retry (one row, "try now", all given up), audited, never for a
sent row; htmx row swaps; and a message given up while SMTP was down, retried from the page and
delivered exactly once to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.conftest import DATABASE_URL, free_port, login_as, make_user
from tests.test_admin import assert_refused
from tests.test_authoring_menu import Tree
from tests.test_teaching_budget import measure, rows_read
from webapp import mail
from webapp.extensions import db
from webapp.models import AuditEvent, OutboxMessage, Role, utcnow
from webapp.services import outbox as svc
from webapp.services.users import COUNT_CAP

SECRET = "BODY-TOKEN-7f3a9c1e5d"  # in every body: must never reach a page or a fragment
on_postgres = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgresql"), reason="needs PostgreSQL (row locks, EXPLAIN)"
)


def hx(target: str) -> dict:
    return {"HX-Request": "true", "HX-Target": target}


def add(recipient: str, state: str = "pending", **values) -> OutboxMessage:
    """A message in ``state``: pending (tried and failed once), given-up, fresh or sent."""
    now = utcnow()
    row = OutboxMessage(
        recipient=recipient,
        subject=f"Reset your password, {recipient}",
        text_body=f"Open http://lectern.test/password/reset/{SECRET}\n",
        html_body=f'<a href="http://lectern.test/password/reset/{SECRET}">reset</a>',
        created_at=now - dt.timedelta(hours=2),
    )
    if state == "pending":
        row.attempts, row.last_error = 1, "ConnectionRefusedError: [Errno 111] Connection refused"
        row.next_attempt_at = now + dt.timedelta(minutes=5)
    elif state == "given-up":
        row.attempts, row.next_attempt_at = 30, mail.GAVE_UP
        row.last_error = "gave up after 30 attempts: SMTPRecipientsRefused: 550 no such user"
    elif state == "sent":
        row.attempts, row.sent_at, row.text_body, row.html_body = 1, now, "", ""
    for key, value in values.items():
        setattr(row, key, value)
    db.session.add(row)
    db.session.commit()
    return row


def fresh(message_id: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, message_id)


def events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


class El:
    """An element of a parsed answer (tests/test_authoring_menu.Tree, html.parser)."""

    def __init__(self, node):
        self.tag, self.attrs, self._children, self._text = node

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]

    def has(self, name: str) -> bool:
        return name in self.attrs

    @property
    def text(self) -> str:
        return " ".join("".join(self._text).split())

    @property
    def children(self) -> list[El]:
        return [El(c) for c in self._children]

    def all(self, tag: str | None = None, cls: str | None = None, **attrs) -> list[El]:
        """Descendants with this tag, class and attributes (``attr=True``: present)."""
        found = []
        for child in self.children:
            classes = (child.attrs.get("class") or "").split()
            if (
                (tag is None or child.tag == tag)
                and (cls is None or all(c in classes for c in cls.split()))
                and all(
                    (k in child.attrs) if v is True else child.attrs.get(k) == v
                    for k, v in {k.replace("_", "-"): v for k, v in attrs.items()}.items()
                )
            ):
                found.append(child)
            found += child.all(tag, cls, **attrs)
        return found

    def one(self, tag: str | None = None, cls: str | None = None, **attrs) -> El | None:
        found = self.all(tag, cls, **attrs)
        return found[0] if found else None


def soup(resp) -> El:
    tree = Tree()
    tree.feed(resp.get_data(as_text=True))
    return El(tree.root)


def listed(resp) -> dict[int, dict[str, str]]:
    """The rows of the page's table: message id → {column label: text}."""
    rows = {}
    body = soup(resp).one("tbody", id="outbox-rows")
    for tr in body.all("tr") if body else []:
        cells = {td["data-label"]: td.text for td in tr.all("td", data_label=True)}
        cells["Recipient"] = tr.one("th").text
        button = tr.one("button")
        cells["button"] = button.text if button else ""
        rows[int(tr["id"].removeprefix("message-"))] = cells
    return rows


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    login_as(client, admin)
    return client


# --- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [None, Role.STUDENT, Role.TEACHER])
def test_only_admins_reach_the_outbox_and_nothing_changes(app, client, role):
    """Anonymous: to the login page. Students and teachers: 404, as every admin page answers
    them (guards.admin_required: an admin page does not tell others it exists)."""
    given_up = add("gone@example.org", "given-up")
    if role is not None:
        login_as(client, make_user(role))
    requests = [
        ("get", "/admin/outbox", {}),
        ("get", "/admin/outbox?show=given-up", {}),
        ("post", f"/admin/outbox/{given_up.id}/retry", {}),
        ("post", f"/admin/outbox/{given_up.id}/retry", hx(f"message-{given_up.id}")),
        ("post", "/admin/outbox/retry-given-up", {}),
    ]
    for method, url, headers in requests:
        resp = getattr(client, method)(url, headers=headers)
        assert_refused(resp, role, url)
        assert "gone@example.org" not in resp.get_data(as_text=True)
    row = fresh(given_up.id)
    assert (row.attempts, row.next_attempt_at) == (30, mail.GAVE_UP)
    assert events("admin.outbox_retried") == events("admin.outbox_retried_all") == []


def test_admin_gets_the_page_from_the_admin_navigation(admin_client):
    resp = admin_client.get("/admin/users")
    link = soup(resp).one("nav", cls="admin-nav").one("a", href="/admin/outbox")
    assert link is not None and link.text == "Outbox"
    page = admin_client.get("/admin/outbox")
    assert page.status_code == 200
    current = soup(page).one("nav", cls="admin-nav").one("a", aria_current="page")
    assert current.text == "Outbox"


# --- the lists -----------------------------------------------------------------------------------


def test_lists_pending_and_given_up_with_their_errors_and_never_a_body(admin_client):
    pending = add("waiting@example.org", "pending")
    fresh_row = add("new@example.org", "fresh", attempts=0)
    given_up = add("gone@example.org", "given-up")
    sent = add("done@example.org", "sent")
    page = admin_client.get("/admin/outbox")
    assert page.status_code == 200
    rows = listed(page)
    assert list(rows) == [fresh_row.id, pending.id]  # the next to go first; nothing else
    p = rows[pending.id]
    assert p["Recipient"] == "waiting@example.org"
    assert p["Subject"] == "Reset your password, waiting@example.org"
    assert p["Attempts"] == "1" and p["button"] == "Try now"
    assert "Connection refused" in p["Last error"]
    assert p["Next attempt"] == pending.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S")
    assert rows[fresh_row.id]["Next attempt"] == "Due now"
    assert rows[fresh_row.id]["Last error"] == "none"
    gave = admin_client.get("/admin/outbox?show=given-up")
    rows = listed(gave)
    assert list(rows) == [given_up.id]
    g = rows[given_up.id]
    assert g["Last error"].startswith("gave up after 30 attempts: SMTPRecipientsRefused")
    assert g["Next attempt"] == "Given up" and g["button"] == "Retry" and g["Attempts"] == "30"
    for resp in (page, gave):
        html = resp.get_data(as_text=True)
        assert SECRET not in html and "/password/reset/" not in html
        assert "done@example.org" not in html and str(sent.id) not in listed(resp)
    counts = soup(page)
    assert counts.one(id="count-pending").text == "2"
    assert counts.one(id="count-given-up").text == "1"
    assert counts.one(id="oldest-pending").text.startswith("2 h")
    assert counts.one("form", action="/admin/outbox/retry-given-up") is None  # on its list
    retry_all = soup(gave).one("form", action="/admin/outbox/retry-given-up").one("button")
    assert retry_all.text == "Retry all given up (1)"


def test_no_body_in_any_answer_after_a_retry_either(admin_client):
    given_up = add("gone@example.org", "given-up")
    pending = add("waiting@example.org", "pending")
    gid = given_up.id
    answers = [
        admin_client.post(f"/admin/outbox/{gid}/retry", headers=hx(f"message-{gid}")),
        admin_client.post(f"/admin/outbox/{pending.id}/retry", follow_redirects=True),
        admin_client.post("/admin/outbox/retry-given-up", follow_redirects=True),
        admin_client.get("/admin/outbox?show=given-up"),
    ]
    for resp in answers:
        assert resp.status_code == 200
        assert SECRET not in resp.get_data(as_text=True)


def test_empty_state(admin_client):
    add("done@example.org", "sent")
    page = soup(admin_client.get("/admin/outbox"))
    empty = page.one(id="outbox-empty")
    assert empty.text == "Nothing waiting: every email has gone out."
    assert page.all("table") == [] and page.one(id="oldest-pending").text == "none"
    assert page.all("form", action="/admin/outbox/retry-given-up") == []


def test_an_empty_list_says_so_while_the_other_has_messages(admin_client):
    add("gone@example.org", "given-up")
    page = soup(admin_client.get("/admin/outbox"))
    assert page.one(id="outbox-empty") is None and page.all("table") == []
    assert "No message is waiting to be sent." in page.one("main").text


def _walk(client, url: str) -> tuple[list[int], int]:
    ids, pages = [], 0
    while url:
        resp = client.get(url)
        assert resp.status_code == 200
        rows = listed(resp)
        assert len(rows) <= svc.PAGE_SIZE
        ids += list(rows)
        pages += 1
        link = soup(resp).one(id="outbox-pager").one("a", rel="next")
        url = link["href"] if link else None
    return ids, pages


def test_pages_walk_every_message_once_in_order(app, admin_client):
    now = utcnow()
    base = {"recipient": "x@example.org", "subject": "s", "text_body": SECRET, "attempts": 1}
    # Pending rows share next-attempt times in groups of three, so the keyset needs the id too.
    db.session.add_all(
        OutboxMessage(**base, next_attempt_at=now + dt.timedelta(seconds=i // 3))
        for i in range(121)
    )
    db.session.add_all(
        OutboxMessage(**base, next_attempt_at=mail.GAVE_UP, last_error="gave up: x")
        for _ in range(51)
    )
    db.session.add(OutboxMessage(**base, next_attempt_at=now, sent_at=now))
    db.session.commit()
    expected = list(
        db.session.scalars(
            select(OutboxMessage.id)
            .where(*svc._PENDING)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        )
    )
    ids, pages = _walk(admin_client, "/admin/outbox")
    assert ids == expected and len(ids) == 121 and pages == 3
    ids, pages = _walk(admin_client, "/admin/outbox?show=given-up")
    gave_up = db.session.scalars(select(OutboxMessage.id).where(*svc._GIVEN_UP)).all()
    assert ids == sorted(gave_up, reverse=True) and pages == 2
    second = soup(admin_client.get(f"/admin/outbox?show=given-up&after={ids[49]}"))
    first = [a for a in second.one(id="outbox-pager").all("a") if not a.has("rel")]
    assert [a["href"] for a in first] == ["/admin/outbox?show=given-up"]


@pytest.mark.parametrize(
    "query",
    ["after=abc", "after=-1", "after=1-", "after=99999999999999999999-1", "after=5-x",
     "show=given-up&after=abc", "show=given-up&after=99999999999", "after=%C2%B2-1"],
)  # fmt: skip
def test_a_cursor_no_page_can_have_answers_404(admin_client, query):
    assert admin_client.get(f"/admin/outbox?{query}").status_code == 404


def test_an_unknown_list_falls_back_to_pending(admin_client):
    pending = add("waiting@example.org", "pending")
    assert list(listed(admin_client.get("/admin/outbox?show=everything"))) == [pending.id]


# --- retrying ------------------------------------------------------------------------------------


def test_retry_resets_a_given_up_message_and_audits_it(admin_client, admin):
    given_up = add("gone@example.org", "given-up")
    before = utcnow()
    resp = admin_client.post(
        f"/admin/outbox/{given_up.id}/retry", data={"back": "/admin/outbox?show=given-up"}
    )
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/admin/outbox?show=given-up"
    row = fresh(given_up.id)
    assert row.attempts == 0 and row.sent_at is None
    assert before <= row.next_attempt_at <= utcnow()
    assert row.last_error == (
        "retried by an admin; before: gave up after 30 attempts: "
        "SMTPRecipientsRefused: 550 no such user"
    )
    assert row.text_body.startswith("Open http://lectern.test/password/reset/")  # kept to send
    (event,) = events("admin.outbox_retried")
    assert event.actor_id == admin.id and event.target_user_id is None
    assert event.details == {
        "message_id": given_up.id, "recipient": "gone@example.org",
        "subject": "Reset your password, gone@example.org", "was": "given-up", "attempts": 30,
    }  # fmt: skip
    page = admin_client.get("/admin/outbox?show=given-up")
    flash = soup(page).one(cls="flash success").text
    assert flash == "gone@example.org: Queued again: it goes out at the worker's next poll."
    assert listed(page) == {}  # no longer given up
    assert given_up.id in listed(admin_client.get("/admin/outbox"))  # pending, due now


def test_try_now_on_a_pending_message_keeps_one_prefix(admin_client):
    pending = add("waiting@example.org", "pending", attempts=4)
    for _ in range(2):
        assert admin_client.post(f"/admin/outbox/{pending.id}/retry").status_code == 303
    row = fresh(pending.id)
    assert row.attempts == 0 and row.next_attempt_at <= utcnow()
    assert row.last_error == (
        "retried by an admin; before: ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert [e.details["was"] for e in events("admin.outbox_retried")] == ["pending", "pending"]


def test_retrying_a_sent_message_changes_nothing(admin_client):
    sent = add("done@example.org", "sent")
    before = fresh(sent.id)
    snapshot = (before.attempts, before.next_attempt_at, before.sent_at, before.last_error)
    frag = admin_client.post(f"/admin/outbox/{sent.id}/retry", headers=hx(f"message-{sent.id}"))
    assert frag.status_code == 409
    tr = soup(frag).one("tr")
    assert tr["id"] == f"message-{sent.id}" and tr.one("button") is None  # sent: no Retry
    alert = tr.one(role="alert").text
    assert alert.startswith("This message was already sent (") and "nothing was changed" in alert
    assert json.loads(frag.headers["HX-Trigger"])["announce"] == alert
    plain = admin_client.post(f"/admin/outbox/{sent.id}/retry")
    assert plain.status_code == 303
    page = admin_client.get("/admin/outbox")
    assert soup(page).one(cls="flash error").text == alert
    row = fresh(sent.id)
    assert (row.attempts, row.next_attempt_at, row.sent_at, row.last_error) == snapshot
    assert events("admin.outbox_retried") == []


@pytest.mark.parametrize("bad", ["999999", "0", "99999999999"])
def test_retrying_a_message_that_does_not_exist_answers_404(admin_client, bad):
    assert admin_client.post(f"/admin/outbox/{bad}/retry").status_code == 404
    assert events("admin.outbox_retried") == []


def test_retry_all_given_up_touches_only_those(admin_client, admin):
    gone = [add(f"gone{i}@example.org", "given-up") for i in range(3)]
    pending = add("waiting@example.org", "pending")
    sent = add("done@example.org", "sent", next_attempt_at=mail.GAVE_UP)  # sent wins
    resp = admin_client.post("/admin/outbox/retry-given-up", data={"back": "/admin/outbox"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/outbox"
    for g in gone:
        row = fresh(g.id)
        assert row.attempts == 0 and row.next_attempt_at <= utcnow()
        assert row.last_error.startswith("retried by an admin; before: gave up after 30")
    p, s = fresh(pending.id), fresh(sent.id)
    assert (p.attempts, p.next_attempt_at) == (1, pending.next_attempt_at)
    assert (s.attempts, s.next_attempt_at, s.sent_at) == (1, mail.GAVE_UP, sent.sent_at)
    (event,) = events("admin.outbox_retried_all")
    assert event.actor_id == admin.id and event.details == {"count": 3}
    page = soup(admin_client.get("/admin/outbox"))
    assert page.one(cls="flash success").text == "3 given-up messages queued again."
    again = admin_client.post("/admin/outbox/retry-given-up", follow_redirects=True)
    assert soup(again).one(cls="flash info").text == "No message was given up: nothing to retry."
    assert len(events("admin.outbox_retried_all")) == 1


def test_retry_all_from_htmx_redirects(admin_client):
    add("gone@example.org", "given-up")
    resp = admin_client.post("/admin/outbox/retry-given-up", headers={"HX-Request": "true"})
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"] == "/admin/outbox?show=given-up"


def test_missing_csrf_token_is_refused_and_the_forms_carry_one(app, admin):
    app.config["WTF_CSRF_ENABLED"] = True
    given_up = add("gone@example.org", "given-up")
    client = app.test_client()
    login_as(client, admin)
    for url in (f"/admin/outbox/{given_up.id}/retry", "/admin/outbox/retry-given-up"):
        assert client.post(url).status_code == 400
    assert fresh(given_up.id).attempts == 30 and events("admin.outbox_retried") == []
    page = soup(client.get("/admin/outbox?show=given-up"))
    form = page.one(id=f"message-{given_up.id}").one("form")
    data = {i["name"]: i["value"] for i in form.all("input", type="hidden")}
    assert data["csrf_token"] and data["back"] == "/admin/outbox?show=given-up"
    assert client.post(form["action"], data=data).status_code == 303
    assert fresh(given_up.id).attempts == 0


def test_htmx_retry_swaps_the_row_and_announces_it(admin_client):
    given_up = add("gone@example.org", "given-up")
    resp = admin_client.post(
        f"/admin/outbox/{given_up.id}/retry", headers=hx(f"message-{given_up.id}")
    )
    assert resp.status_code == 200
    assert "HX-Target" in resp.headers["Vary"]
    html = soup(resp)
    assert [e.tag for e in html.children] == ["tr"]  # the row, not a page
    (tr,) = html.children
    assert tr["id"] == f"message-{given_up.id}"
    cells = {td["data-label"]: td.text for td in tr.all("td", data_label=True)}
    assert cells["Attempts"] == "0" and cells["Next attempt"] == "Due now"
    assert cells["Last error"].startswith("retried by an admin; before: gave up")
    button = tr.one("button")
    assert button.text == "Try now" and button.has("data-autofocus")
    assert button["aria-labelledby"] == f"retry-{given_up.id} to-{given_up.id}"
    form = tr.one("form")
    assert form["hx-post"] == form["action"] == f"/admin/outbox/{given_up.id}/retry"
    assert form["hx-target"] == f"#message-{given_up.id}" and form["hx-swap"] == "outerHTML"
    note = tr.one(cls="row-note ok").text
    assert json.loads(resp.headers["HX-Trigger"]) == {"announce": f"gone@example.org: {note}"}
    assert fresh(given_up.id).attempts == 0


@on_postgres
@pytest.mark.postgres
def test_a_message_being_sent_is_refused_at_once_not_waited_for(app, admin_client):
    """The worker holds the row's lock while it talks to SMTP (up to MAIL_TIMEOUT): a retry
    then answers 409 at once (FOR UPDATE NOWAIT) and changes nothing."""
    pid = add("waiting@example.org", "pending").id
    engine = create_engine(DATABASE_URL)
    locked, release = threading.Event(), threading.Event()

    def worker():
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT id FROM outbox WHERE id = :i FOR UPDATE"), {"i": pid})
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert locked.wait(5)
        resp = admin_client.post(f"/admin/outbox/{pid}/retry", headers=hx(f"message-{pid}"))
    finally:
        release.set()
        thread.join()
        engine.dispose()
    assert resp.status_code == 409
    alert = soup(resp).one(role="alert").text
    assert alert == "This message is being sent right now; look again in a moment."
    assert fresh(pid).attempts == 1 and events("admin.outbox_retried") == []


# --- end to end: SMTP down, given up, retried from the page, delivered once -----------------------


def test_given_up_while_smtp_was_down_then_retried_and_delivered_once(app, admin_client, mailbox):
    user = make_user(Role.STUDENT, email="learner@example.org")
    from webapp.mail import queue_email

    queue_email(user.email, "reset", user=user, url=f"http://lectern.test/r/{SECRET}", hours=1)
    db.session.commit()
    port = app.config["MAIL_PORT"]
    app.config.update(MAIL_PORT=free_port(), MAIL_MAX_ATTEMPTS=1)  # SMTP down: nobody listens
    assert mail.deliver_pending() == (0, 1)
    (row,) = db.session.scalars(select(OutboxMessage)).all()
    assert row.next_attempt_at == mail.GAVE_UP and row.last_error.startswith("gave up after 1")
    app.config.update(MAIL_PORT=port)  # SMTP is back; a given-up message stays given up
    assert mailbox.deliver() == []
    page = admin_client.get("/admin/outbox?show=given-up")
    assert SECRET not in page.get_data(as_text=True)
    form = soup(page).one(id=f"message-{row.id}").one("form")
    assert admin_client.post(form["action"], data={"back": "/admin/outbox"}).status_code == 303
    assert mail.deliver_pending() == (1, 0)
    assert mail.deliver_pending() == (0, 0)
    (received,) = mailbox.messages
    assert received["To"] == "learner@example.org" and SECRET in mailbox.text(received)
    row = fresh(row.id)
    assert row.sent_at is not None and row.text_body == "" and row.last_error == ""
    assert soup(admin_client.get("/admin/outbox")).one(id="outbox-empty") is not None


# --- budget and scale ----------------------------------------------------------------------------


def _seed(n_pending: int, n_given_up: int, n_sent: int) -> None:
    now = utcnow()
    base = {"recipient": "x@example.org", "subject": "s", "text_body": SECRET, "attempts": 1}
    db.session.add_all(OutboxMessage(**base, next_attempt_at=now) for _ in range(n_pending))
    db.session.add_all(
        OutboxMessage(**base, next_attempt_at=mail.GAVE_UP) for _ in range(n_given_up)
    )
    db.session.add_all(
        OutboxMessage(**base, next_attempt_at=now, sent_at=now) for _ in range(n_sent)
    )
    db.session.commit()


def test_the_page_costs_the_same_few_statements_whatever_the_outbox(admin_client, count_queries):
    """The signed-in user, the page of rows, the summary (one statement): 3, small or large."""
    urls = ["/admin/outbox", "/admin/outbox?show=given-up"]
    _seed(3, 2, 5)
    with count_queries() as small:
        for url in urls:
            assert admin_client.get(url).status_code == 200
    _seed(200, 120, 300)
    with count_queries() as big:
        for url in urls:
            assert admin_client.get(url).status_code == 200
    assert small.count == big.count <= 2 * 3, big.statements
    retry_id = db.session.scalar(select(func.min(OutboxMessage.id)).where(*svc._GIVEN_UP))
    with count_queries() as q:
        resp = admin_client.post(
            f"/admin/outbox/{retry_id}/retry", headers=hx(f"message-{retry_id}")
        )
    assert resp.status_code == 200 and q.count <= 6, q.statements


SEED_SQL = """
INSERT INTO outbox (recipient, subject, text_body, html_body, created_at, attempts,
                    next_attempt_at, sent_at, last_error)
SELECT 'person' || g || '@example.org', 'Subject ' || g, 'body', '',
       now() - ((:n + 1 - g) || ' seconds')::interval,
       CASE WHEN g <= :given_up THEN 30 ELSE 1 END,
       CASE WHEN g <= :given_up THEN timestamptz '9999-01-01 00:00:00+00'
            ELSE now() + (g % 3600 || ' seconds')::interval END,
       CASE WHEN g > :given_up AND g % 10 < :sent_tenths THEN now() END,
       CASE WHEN g <= :given_up THEN 'gave up after 30 attempts: x' ELSE '' END
FROM generate_series(1, :n) AS g
"""
N, GIVEN_UP = 100_000, 1_000


def test_the_index_of_waiting_rows_names_mail_gave_up():
    """ix_outbox_waiting_since serves the summary only if its predicate is the one the service
    asks (next_attempt_at < mail.GAVE_UP), constant included."""
    (index,) = [i for i in OutboxMessage.__table__.indexes if i.name == "ix_outbox_waiting_since"]
    where = str(index.dialect_options["postgresql"]["where"])
    constant = where.split("'")[1]
    assert dt.datetime.fromisoformat(constant) == mail.GAVE_UP


@on_postgres
@pytest.mark.postgres
@pytest.mark.parametrize("sent_tenths", [0, 8], ids=["outage-all-unsent", "mostly-sent"])
def test_100000_messages_read_a_page_not_the_table(admin_client, sent_tenths):
    """100,000 messages, the oldest 1,000 given up; then either an outage (all the others
    pending) or ordinary life (most of them sent). Every page of either list costs the same 3
    statements; its rows come from a short range of ix_outbox_unsent, and the summary reads
    at most its capped counts (10,001 each) and one entry of ix_outbox_waiting_since: never
    the 100,000 rows. Rows read are counted by replaying each statement under EXPLAIN ANALYZE
    (tests/test_teaching_budget.py)."""
    params = {"n": N, "given_up": GIVEN_UP, "sent_tenths": sent_tenths}
    with db.engine.begin() as conn:
        conn.execute(text(SEED_SQL), params)
        conn.execute(text("ANALYZE outbox"))
    first, given_up = svc.outbox_page("pending"), svc.outbox_page("given-up")
    pending_total = (N - GIVEN_UP) * (10 - sent_tenths) // 10
    assert first.summary.pending == min(pending_total, COUNT_CAP)
    assert first.summary.pending_capped == (pending_total > COUNT_CAP)
    assert (first.summary.given_up, first.summary.given_up_capped) == (GIVEN_UP, False)
    assert first.summary.oldest_pending_age == "1 day 3 h"  # the 1,001st of 100,000 seconds
    urls = [
        "/admin/outbox", f"/admin/outbox?after={first.next_after}",
        "/admin/outbox?show=given-up", f"/admin/outbox?show=given-up&after={given_up.next_after}",
    ]  # fmt: skip
    for url in urls:
        m = measure(admin_client, "get", url)
        assert m.count <= 3, (url, m.statements)
        assert len(listed(m.response)) == svc.PAGE_SIZE
        page_rows = [s for s in m.statements if "ORDER BY" in s[0]]
        summary = [s for s in m.statements if "count(" in s[0]]
        assert len(page_rows) == len(summary) == 1, m.statements
        assert rows_read(page_rows)["outbox"] <= GIVEN_UP + 2 * svc.PAGE_SIZE, url
        assert rows_read(summary)["outbox"] <= 2 * (COUNT_CAP + 1) + GIVEN_UP + 1, url
