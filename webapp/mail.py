"""The outbox: queue_email() in the caller's transaction; delivery after commit, with retries.

An SMTP outage never fails a user's request and never loses a message: rows stay in the outbox
until they are sent, retried with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import threading

from flask import current_app, render_template
from flask_mail import Message
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from .extensions import db
from .models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=1)
_wakeup = threading.Event()


def queue_email(recipient: str, template: str, **ctx) -> OutboxMessage:
    """Render templates/email/<template>.{txt,html} and queue it; the caller commits."""
    ctx.setdefault("base_url", current_app.config["BASE_URL"])
    text = render_template(f"email/{template}.txt", **ctx)
    subject, _, body = text.partition("\n")
    html = render_template(f"email/{template}.html", **ctx)
    msg = OutboxMessage(
        recipient=recipient,
        subject=subject.removeprefix("Subject:").strip(),
        text_body=body.lstrip("\n"),
        html_body=html,
    )
    db.session.add(msg)
    return msg


def _send_smtp(row: OutboxMessage) -> None:
    cfg = current_app.config
    message = Message(
        subject=row.subject,
        recipients=[row.recipient],
        body=row.text_body,
        html=row.html_body or None,
        sender=cfg["MAIL_DEFAULT_SENDER"],
    )
    smtp_class = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    with smtp_class(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"]) as smtp:
        if cfg["MAIL_USE_TLS"]:
            smtp.starttls()
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        smtp.sendmail(message.sender, [row.recipient], message.as_bytes())


def _print(row: OutboxMessage) -> None:
    bar = "-" * 72
    print(
        f"\n{bar}\nTo: {row.recipient}\nSubject: {row.subject}\n\n{row.text_body}\n{bar}",
        flush=True,
    )


def deliver_pending(limit: int = 50) -> tuple[int, int]:
    """Send due messages; returns (sent, failed). Safe to run in several workers at once."""
    now = utcnow()
    rows = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    sent = failed = 0
    for row in rows:
        row.attempts += 1
        try:
            if current_app.config["MAIL_SERVER"]:
                _send_smtp(row)
            else:
                _print(row)
        except (OSError, smtplib.SMTPException) as exc:
            failed += 1
            backoff = min(dt.timedelta(seconds=30 * 2 ** (row.attempts - 1)), MAX_BACKOFF)
            row.next_attempt_at = utcnow() + backoff
            row.last_error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("outbox: message %s not sent (attempt %s): %s", row.id, row.attempts, exc)
        else:
            sent += 1
            row.sent_at = utcnow()
            row.last_error = ""
    db.session.commit()
    return sent, failed


def start_worker(app) -> None:
    """Deliver in a background thread of this process (the development server)."""

    @event.listens_for(Session, "after_commit")
    def _wake(session):
        _wakeup.set()

    def loop():
        while True:
            _wakeup.wait(timeout=30)
            _wakeup.clear()
            with app.app_context():
                try:
                    while deliver_pending()[0]:
                        pass
                except Exception:  # keep the worker alive; the rows stay queued
                    log.exception("outbox worker")
                    db.session.rollback()

    threading.Thread(target=loop, name="outbox", daemon=True).start()
