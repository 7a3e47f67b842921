"""The outbox against a real SMTP server (aiosmtpd): one transaction per message, any failure
kept to its own row, giving up after MAIL_MAX_ATTEMPTS, non-ASCII addresses, several workers at
once, and production refusing to start without a mail server."""

from __future__ import annotations

import email
import email.policy
import threading

import pytest
from sqlalchemy import select, update

from tests.conftest import DATABASE_URL, free_port
from webapp import config as config_module
from webapp import mail
from webapp.extensions import db
from webapp.models import OutboxMessage, utcnow


def queue(*recipients: str) -> list[int]:
    rows = [
        OutboxMessage(
            recipient=r, subject=f"Hello {r}", text_body=f"Dear {r}\n", html_body=f"<p>{r}</p>"
        )
        for r in recipients
    ]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def rows() -> dict[str, OutboxMessage]:
    db.session.expire_all()
    return {r.recipient: r for r in db.session.scalars(select(OutboxMessage))}


def make_due() -> None:
    """Let every row that is waiting for its backoff be tried again (not those given up)."""
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at != mail.GAVE_UP)
        .values(next_attempt_at=utcnow())
    )
    db.session.commit()


class Recorder:
    """An aiosmtpd handler keeping each envelope: sender, recipients, MAIL options, message."""

    def __init__(self):
        self.envelopes = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.envelopes.append((envelope.rcpt_tos, envelope.mail_options, msg))
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 No such mailbox"
        if address.startswith("busy@"):
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def recipients(self) -> list[str]:
        return [r for rcpts, _, _ in self.envelopes for r in rcpts]


@pytest.fixture
def smtp_server(app):
    """Start an SMTP server (``smtputf8`` says whether it offers SMTPUTF8) the app sends to."""
    from aiosmtpd.controller import Controller

    controllers = []

    def start(smtputf8: bool = False) -> Recorder:
        recorder = Recorder()
        port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
        controller.start()
        controllers.append(controller)
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=5)
        return recorder

    yield start
    for controller in controllers:
        controller.stop()


# --- delivery ------------------------------------------------------------------------------------


def test_sends_each_message_once_with_both_parts(app, smtp_server):
    server = smtp_server()
    queue("ann@example.com", "bob@example.com")
    assert mail.deliver_pending() == (2, 0)
    assert mail.deliver_pending() == (0, 0)
    assert sorted(server.recipients()) == ["ann@example.com", "bob@example.com"]
    _, _, msg = server.envelopes[0]
    assert msg["To"] == "ann@example.com" and msg["Subject"] == "Hello ann@example.com"
    assert msg["Date"] and msg["Message-ID"].endswith("@localhost>")
    assert msg.get_body(preferencelist=("plain",)).get_content().strip() == "Dear ann@example.com"
    assert "<p>ann@example.com</p>" in msg.get_body(preferencelist=("html",)).get_content()
    assert all(r.sent_at and r.attempts == 1 and r.last_error == "" for r in rows().values())


def test_a_sent_message_keeps_no_link_in_the_outbox(app, smtp_server):
    """The reset link went out; the row keeps who, what and when, never the live link."""
    from tests.conftest import make_user

    server = smtp_server()
    user = make_user(email="reset-me@example.com")
    assert app.test_client().post("/password/forgot", data={"email": user.email}).status_code == 303
    (row,) = rows().values()
    assert "http://lectern.test/password/reset/" in row.text_body  # queued with its link
    assert mail.deliver_pending() == (1, 0)
    ((rcpts, _, msg),) = server.envelopes
    assert rcpts == ["reset-me@example.com"]
    assert "http://lectern.test/password/reset/" in msg.get_body(("plain",)).get_content()
    assert "http://lectern.test/password/reset/" in msg.get_body(("html",)).get_content()
    (row,) = rows().values()
    assert (row.text_body, row.html_body) == ("", "")
    assert row.recipient == "reset-me@example.com"
    assert row.subject == "Reset your Lectern password"
    assert row.created_at and row.sent_at and row.attempts == 1


def test_a_row_not_sent_yet_keeps_its_bodies_for_the_next_attempt(app, smtp_server):
    queue("ann@example.com")
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_TIMEOUT=0.5)  # down
    assert mail.deliver_pending() == (0, 1)
    row = rows()["ann@example.com"]
    assert row.text_body == "Dear ann@example.com\n" and row.html_body == "<p>ann@example.com</p>"
    server = smtp_server()
    make_due()
    assert mail.deliver_pending() == (1, 0)
    assert "Dear ann@example.com" in server.envelopes[0][2].get_body(("plain",)).get_content()
    assert rows()["ann@example.com"].text_body == ""


def test_any_exception_stays_with_its_row_and_the_batch_goes_on(app, smtp_server, monkeypatch):
    server = smtp_server()
    queue("first@example.com", "boom@example.com", "last@example.com")
    real_send = mail._send_smtp

    def send(row):
        if row.recipient == "boom@example.com":
            raise ValueError("a bug in building this one message")
        real_send(row)

    monkeypatch.setattr(mail, "_send_smtp", send)
    assert mail.deliver_pending() == (2, 1)
    assert sorted(server.recipients()) == ["first@example.com", "last@example.com"]
    boom = rows()["boom@example.com"]
    assert boom.sent_at is None and boom.attempts == 1
    assert boom.last_error == "ValueError: a bug in building this one message"
    assert boom.next_attempt_at > utcnow()  # backoff, as for an SMTP error


def test_a_sent_message_is_committed_before_the_next_one_is_tried(app, smtp_server, monkeypatch):
    """Even an exception nobody catches (a worker killed mid-batch) cannot re-send the first."""
    server = smtp_server()
    queue("first@example.com", "second@example.com")
    real_send = mail._send_smtp

    def send(row):
        if row.recipient == "second@example.com":
            raise KeyboardInterrupt
        real_send(row)

    monkeypatch.setattr(mail, "_send_smtp", send)
    with pytest.raises(KeyboardInterrupt):
        mail.deliver_pending()
    db.session.rollback()
    state = rows()
    assert state["first@example.com"].sent_at is not None
    assert state["second@example.com"].sent_at is None
    assert state["second@example.com"].attempts == 0  # its transaction was rolled back

    monkeypatch.setattr(mail, "_send_smtp", real_send)
    assert mail.deliver_pending() == (1, 0)
    assert sorted(server.recipients()) == ["first@example.com", "second@example.com"]


def test_gives_up_after_max_attempts_and_keeps_the_row(app, smtp_server):
    app.config.update(MAIL_MAX_ATTEMPTS=3)
    queue("ann@example.com")
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_TIMEOUT=0.5)  # down
    for attempt in (1, 2):
        assert mail.deliver_pending() == (0, 1)
        row = rows()["ann@example.com"]
        assert row.attempts == attempt and not row.last_error.startswith("gave up")
        make_due()
    assert mail.deliver_pending() == (0, 1)
    row = rows()["ann@example.com"]
    assert row.attempts == 3 and row.sent_at is None
    assert row.next_attempt_at == mail.GAVE_UP
    assert row.last_error.startswith("gave up after 3 attempts: ConnectionRefusedError")
    # Given up for good: not tried again, even once the server is back and the row looks due.
    server = smtp_server()
    db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert mail.deliver_pending() == (0, 0)
    assert rows()["ann@example.com"].attempts == 3 and server.envelopes == []


def test_a_recipient_refused_for_good_is_given_up_at_once_a_busy_one_retried(app, smtp_server):
    """550 (no such mailbox) cannot change by retrying: given up at the first attempt. 450
    (try later) is retried with backoff like any other failure."""
    server = smtp_server()
    queue("nobody@example.com", "busy@example.com", "ann@example.com")
    assert mail.deliver_pending() == (1, 2)
    found = rows()
    assert found["nobody@example.com"].next_attempt_at == mail.GAVE_UP
    assert found["nobody@example.com"].last_error == (
        "gave up after 1 attempts: SMTPRecipientsRefused: 550 5.1.1 No such mailbox"
    )
    assert found["busy@example.com"].next_attempt_at != mail.GAVE_UP
    assert found["busy@example.com"].last_error == (
        "SMTPRecipientsRefused: 450 4.2.1 Mailbox busy, try later"
    )
    assert server.recipients() == ["ann@example.com"]
    make_due()
    assert mail.deliver_pending() == (0, 1)  # only the busy one is tried again
    assert rows()["busy@example.com"].attempts == 2


def test_max_attempts_must_be_positive(monkeypatch, tmp_path):
    monkeypatch.setenv("MAIL_MAX_ATTEMPTS", "0")
    with pytest.raises(config_module.ConfigError, match="MAIL_MAX_ATTEMPTS must be at least 1"):
        config_module.load(str(tmp_path))
    monkeypatch.delenv("MAIL_MAX_ATTEMPTS")
    assert config_module.load(str(tmp_path))["MAIL_MAX_ATTEMPTS"] == 30


# --- non-ASCII addresses -------------------------------------------------------------------------


def test_sign_up_refuses_an_address_with_a_non_ascii_local_part(app):
    from webapp.services import Invalid, accounts

    with pytest.raises(Invalid) as exc:
        accounts.check_email("jöhn@example.com")
    assert exc.value.field == "email" and "ASCII" in exc.value.message
    assert accounts.check_email("Ann@Bücher.example") == "ann@bücher.example"


def test_a_queued_non_ascii_address_is_given_up_and_the_batch_goes_on(app, smtp_server):
    server = smtp_server(smtputf8=True)
    queue("jöhn@example.com", "ann@example.com")
    assert mail.deliver_pending() == (1, 1)
    assert server.recipients() == ["ann@example.com"]
    john = rows()["jöhn@example.com"]
    assert john.sent_at is None and john.attempts == 1
    assert john.next_attempt_at == mail.GAVE_UP  # retrying cannot help
    assert john.last_error.startswith("gave up after 1 attempts: PermanentFailure")
    assert "SMTPUTF8" in john.last_error


def test_international_domain_goes_out_in_its_ascii_form(app, smtp_server):
    server = smtp_server(smtputf8=False)
    queue("ann@bücher.example")
    assert mail.deliver_pending() == (1, 0)
    ((rcpts, options, msg),) = server.envelopes
    assert rcpts == ["ann@xn--bcher-kva.example"] and "SMTPUTF8" not in options
    assert msg["To"] == "ann@xn--bcher-kva.example"


# --- several workers -----------------------------------------------------------------------------


@pytest.mark.skipif(
    not DATABASE_URL.startswith("postgresql"),
    reason="real concurrency needs PostgreSQL (SQLite serialises writers itself)",
)
def test_two_workers_at_once_send_every_message_exactly_once(app, smtp_server):
    server = smtp_server()
    recipients = [f"user{i}@example.com" for i in range(40)]
    queue(*recipients)
    start = threading.Barrier(2)
    results: dict[str, tuple[int, int]] = {}

    def worker(name: str):
        with app.app_context():
            try:
                start.wait(10)
                sent = failed = 0
                while True:
                    s, f = mail.deliver_pending(limit=5)
                    sent, failed = sent + s, failed + f
                    if not s and not f:
                        break
                results[name] = (sent, failed)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(server.recipients()) == sorted(recipients)  # each once, none twice
    assert sum(s for s, _ in results.values()) == 40
    assert all(f == 0 for _, f in results.values())
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows().values())


# --- production needs a mail server --------------------------------------------------------------


def test_production_refuses_to_start_without_mail_server(monkeypatch, tmp_path):
    monkeypatch.setenv("LECTERN_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "Zx8-kQ2pL9vN4mR7tY1wE5uI3oP6aS0dF")
    monkeypatch.setenv("BASE_URL", "https://lectern.example")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.delenv("SESSION_COOKIE_NAME", raising=False)
    monkeypatch.setenv("MAIL_SERVER", "")
    with pytest.raises(config_module.ConfigError, match="^MAIL_SERVER is not set;"):
        config_module.load(str(tmp_path))
    monkeypatch.setenv("MAIL_SERVER", "smtp.lectern.example")
    assert config_module.load(str(tmp_path))["MAIL_SERVER"] == "smtp.lectern.example"


# --- development without SMTP --------------------------------------------------------------------


def test_without_mail_server_each_message_and_its_links_are_printed(app, capsys):
    from tests.conftest import make_user

    assert not app.config["MAIL_SERVER"]
    user = make_user(email="printed@example.com")
    resp = app.test_client().post("/password/forgot", data={"email": user.email})
    assert resp.status_code == 303
    assert mail.deliver_pending() == (1, 0)
    out = capsys.readouterr().out
    assert "To: printed@example.com" in out and "Subject: Reset your Lectern password" in out
    assert "http://lectern.test/password/reset/" in out  # the link, from BASE_URL
    (row,) = rows().values()
    assert row.sent_at is not None  # kept in the outbox, marked done, without its link
    assert row.subject == "Reset your Lectern password" and row.text_body == ""
