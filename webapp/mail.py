"""The outbox: queue_email() in the caller's transaction; delivery after commit, with retries.

An SMTP outage never fails a user's request and never loses a message: rows stay in the outbox
until they are sent, retried with backoff. A sent row keeps its recipient, subject and times and
loses its bodies, so no live link stays in the table. Each message is claimed, sent and recorded
in its own transaction, so one bad row never holds up or re-sends the others. After
MAIL_MAX_ATTEMPTS failures (or at once, for an address the server cannot take) a row is given up:
it stays in the table with ``last_error`` starting "gave up" and ``next_attempt_at`` = GAVE_UP.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import smtplib
import threading
import time
from contextlib import suppress
from email.utils import make_msgid, parseaddr

from flask import current_app, render_template
from flask_mail import Message
from sqlalchemy import event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .extensions import db
from .models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=1)
GAVE_UP = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)  # next_attempt_at of a row given up
_wakeup = threading.Event()


class PermanentFailure(Exception):
    """Retrying cannot help (e.g. an address with a non-ASCII local part)."""


def render_email(recipient: str, template: str, **ctx) -> dict[str, str]:
    """The outbox row's values for templates/email/<template>.{txt,html} (nothing queued)."""
    ctx.setdefault("base_url", current_app.config["BASE_URL"])
    text = render_template(f"email/{template}.txt", **ctx)
    subject, _, body = text.partition("\n")
    return {
        "recipient": recipient,
        "subject": subject.removeprefix("Subject:").strip(),
        "text_body": body.lstrip("\n"),
        "html_body": render_template(f"email/{template}.html", **ctx),
    }


def queue_email(recipient: str, template: str, **ctx) -> OutboxMessage:
    """Render templates/email/<template>.{txt,html} and queue it; the caller commits."""
    msg = OutboxMessage(**render_email(recipient, template, **ctx))
    db.session.add(msg)
    return msg


def ascii_domain(address: str) -> str:
    """``address`` with an internationalised domain in its ASCII (IDNA) form, when it has one;
    then only a non-ASCII local part needs SMTPUTF8."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address  # left as it is: sent with SMTPUTF8 or refused


def build_message(row: OutboxMessage, sender: str, recipient: str) -> Message:
    """The message as Flask-Mail builds it: plain text and HTML alternatives, UTF-8."""
    message = Message(
        subject=row.subject,
        recipients=[recipient],
        body=row.text_body,
        html=row.html_body or None,
        sender=sender,
    )
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message.msgId = make_msgid(domain=domain)  # not getfqdn(): it may wait on DNS
    return message


def _send_smtp(row: OutboxMessage) -> None:
    """Send one row through Flask-Mail's message over our own SMTP connection (Flask-Mail's has
    no timeout)."""
    cfg = current_app.config
    sender = cfg["MAIL_DEFAULT_SENDER"]
    recipient = ascii_domain(row.recipient)
    if not recipient.isascii():
        # Sign-up refuses such addresses (SMTPUTF8 is not universally supported); a row
        # queued before that rule cannot be sent and retrying will not help.
        raise PermanentFailure(f"non-ASCII address {row.recipient!r} needs SMTPUTF8")
    message = build_message(row, sender, recipient)
    smtp_class = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    with smtp_class(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"]) as smtp:
        if cfg["MAIL_USE_TLS"]:
            smtp.starttls()
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        smtp.sendmail(parseaddr(sender)[1], [recipient], message.as_bytes())


def _print(row: OutboxMessage) -> None:
    """Development without MAIL_SERVER (production refuses to start without one)."""
    bar = "-" * 72
    print(
        f"\n{bar}\nTo: {row.recipient}\nSubject: {row.subject}\n\n{row.text_body}\n{bar}",
        flush=True,
    )


def _claim_next(now: dt.datetime, max_attempts: int) -> OutboxMessage | None:
    """The oldest due row, locked (FOR UPDATE SKIP LOCKED on PostgreSQL) until the commit."""
    return db.session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.attempts < max_attempts,
        )
        .order_by(OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()


def _permanent(exc: Exception) -> bool:
    """Retrying cannot help: our own PermanentFailure, or the server refused the recipient
    with a 5xx (no such mailbox, say). Other 5xx (a refused sender, a failed login) are the
    server's configuration, which an operator fixes: those are retried."""
    if isinstance(exc, PermanentFailure):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        return all(500 <= code < 600 for code, _ in exc.recipients.values())
    return False


def _describe(exc: Exception) -> str:
    """The error as the admin's outbox page shows it: an SMTP refusal as the server said it."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        said = "; ".join(
            f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
            for code, text in exc.recipients.values()
        )
        return f"{type(exc).__name__}: {said}"
    return f"{type(exc).__name__}: {exc}"


def _record_failure(row: OutboxMessage, exc: Exception, max_attempts: int) -> None:
    error = _describe(exc)
    if _permanent(exc) or row.attempts >= max_attempts:
        row.next_attempt_at = GAVE_UP
        row.last_error = f"gave up after {row.attempts} attempts: {error}"[:500]
        log.error("outbox: message %s given up: %s", row.id, error)
        return
    backoff = min(dt.timedelta(seconds=30 * 2 ** (row.attempts - 1)), MAX_BACKOFF)
    row.next_attempt_at = utcnow() + backoff
    row.last_error = error[:500]
    log.warning("outbox: message %s not sent (attempt %s): %s", row.id, row.attempts, error)


def _mark_sent(row: OutboxMessage) -> None:
    """Sent: keep who, what and when, but not the bodies, whose activation, reset, invitation
    and email-change links would otherwise stay live in the table until they expire."""
    row.sent_at = utcnow()
    row.last_error = ""
    row.text_body = ""
    row.html_body = ""


def deliver_pending(limit: int = 50, stop: threading.Event | None = None) -> tuple[int, int]:
    """Send up to ``limit`` due messages; returns (sent, failed). Safe in several workers at once.

    One transaction per message: claim the row, send it, mark it sent and commit at once, so a
    message that went out is never sent again because of a later row. ``stop`` set: no further
    message is claimed (the one in hand is finished and recorded).
    """
    max_attempts = current_app.config["MAIL_MAX_ATTEMPTS"]
    use_smtp = bool(current_app.config["MAIL_SERVER"])
    now = utcnow()
    sent = failed = 0
    for _ in range(limit):
        if stop is not None and stop.is_set():
            break
        row = _claim_next(now, max_attempts)
        if row is None:
            break
        row.attempts += 1
        try:
            if use_smtp:
                _send_smtp(row)
            else:
                _print(row)
        except Exception as exc:  # any failure of one message is that message's, not the batch's
            failed += 1
            _record_failure(row, exc, max_attempts)
        else:
            sent += 1
            _mark_sent(row)
        try:
            db.session.commit()
        except SQLAlchemyError:
            # The database is unreachable: stop here. A message just sent may be sent again.
            log.exception("outbox: could not record the delivery of message %s", row.id)
            db.session.rollback()
            break
    return sent, failed


MAX_PAUSE = 60.0  # seconds: the longest wait between polls while something is down


def work(
    interval: float = 5.0,
    *,
    once: bool = False,
    wake: threading.Event | None = None,
    stop: threading.Event | None = None,
):
    """The outbox worker's loop (``flask outbox run``, and the development server's thread).

    It survives anything one poll can raise: with PostgreSQL or the SMTP server down it logs,
    rolls back, drops the session's connection and waits, ``interval`` doubled after each
    failure up to MAX_PAUSE, then polls again; the rows stay queued and go out once the servers
    are back. ``once``: one poll, errors raised (cron sees them). ``wake`` cuts a wait short.
    ``stop`` set (SIGTERM, the process's exit): the message in hand is sent and recorded, then
    the loop ends; cut off mid-send instead, that message would go out again on the next poll.
    Yields (sent, failed) after each successful poll (the command prints them).
    """
    pause = interval
    while stop is None or not stop.is_set():
        try:
            sent, failed = deliver_pending(stop=stop)
        except Exception:
            with suppress(Exception):  # on a dead connection the rollback may fail too
                db.session.rollback()
            db.session.remove()
            if once:
                raise
            log.exception("outbox: poll failed; next try in %.0f s", pause)
            _wait(wake, stop, pause)
            pause = min(pause * 2, MAX_PAUSE)
            continue
        pause = interval
        yield sent, failed
        if once:
            return
        if not sent:
            _wait(wake, stop, interval)


def _wait(wake: threading.Event | None, stop: threading.Event | None, seconds: float) -> None:
    """Sleep ``seconds``, less if ``wake`` (then cleared) or ``stop`` is set meanwhile."""
    if wake is not None:
        wake.wait(timeout=seconds)
        wake.clear()
    elif stop is not None:
        stop.wait(timeout=seconds)
    else:
        time.sleep(seconds)


def wake() -> None:
    """Cut the wait of this process's worker thread short (the development server's): a row
    made due now goes out at once. A ``flask outbox run`` worker finds it at its next poll."""
    _wakeup.set()


def start_worker(app) -> None:
    """Deliver in a background thread of this process (the development server, or gunicorn's
    workers with OUTBOX_THREAD on).

    At the process's exit (a gunicorn worker leaving on SIGTERM, Ctrl-C) the thread is told to
    stop and waited for, so that the message it is sending is finished and recorded; a daemon
    thread alone would be cut off mid-send and the message sent again.
    """

    @event.listens_for(Session, "after_commit")
    def _wake(session):
        _wakeup.set()

    stop = threading.Event()

    def loop():
        with app.app_context():
            for _ in work(30, wake=_wakeup, stop=stop):
                pass

    thread = threading.Thread(target=loop, name="outbox", daemon=True)
    thread.start()

    @atexit.register
    def _finish():
        stop.set()
        _wakeup.set()
        thread.join(timeout=app.config["MAIL_TIMEOUT"] + 5)
