"""The outbox for admins: the messages still waiting (pending) and those the worker gave up,
counted and paged, and retrying them (audited).

Nothing here ever reads a message's body: the bodies hold live activation, reset and invitation
links, so the rows are loaded with the columns the page shows and no others. A row is
*pending* while ``sent_at`` is null and the worker will try it again; *given up* when
``next_attempt_at`` is ``mail.GAVE_UP`` (its ``last_error`` then starts "gave up").

Retrying a row (one, or every given-up one) puts it back in the queue as if it were new:
``attempts`` 0, ``next_attempt_at`` now, and its last error kept behind the prefix ``RETRIED``
until the next attempt replaces it (cleared when it is sent, the new error when it fails
again); the prefix keeps it from reading as "gave up". A row that was sent meanwhile is never
touched (``Conflict``); one the worker is sending at this very moment (its row lock held) is
refused at once rather than waited for. Both record an audit event in the same transaction and
wake the development server's worker after the commit; a ``flask outbox run`` worker finds the
rows at its next poll.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, literal, select, tuple_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import load_only

from .. import mail
from ..extensions import db
from ..models import OutboxMessage, User, utcnow
from . import Conflict, NotFound, after_commit, audit, id_or_404, unit_of_work
from .users import COUNT_CAP

PAGE_SIZE = 50
SHOWS = ("pending", "given-up")
RETRIED = "retried by an admin; before: "
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for FOR UPDATE NOWAIT on a locked row

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.recipient,
    OutboxMessage.subject,
    OutboxMessage.created_at,
    OutboxMessage.attempts,
    OutboxMessage.next_attempt_at,
    OutboxMessage.sent_at,
    OutboxMessage.last_error,
)
_UNSENT = OutboxMessage.sent_at.is_(None)
_PENDING = (_UNSENT, OutboxMessage.next_attempt_at < mail.GAVE_UP)
_GIVEN_UP = (_UNSENT, OutboxMessage.next_attempt_at == mail.GAVE_UP)


class AlreadySent(Conflict):
    """The message went out before the retry: nothing to do."""


@dataclass(frozen=True)
class OutboxRow:
    """What the page shows of a message: never its bodies."""

    id: int
    recipient: str
    subject: str
    created_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str
    due: bool  # pending and its next attempt has come: the worker takes it at its next poll

    @property
    def state(self) -> str:
        if self.sent_at is not None:
            return "sent"
        return "given-up" if self.next_attempt_at == mail.GAVE_UP else "pending"


def _row(values, now: dt.datetime) -> OutboxRow:
    return OutboxRow(*values, due=values.sent_at is None and values.next_attempt_at <= now)


def age_words(delta: dt.timedelta) -> str:
    """A waiting time in a few words: "under a minute", "12 min", "3 h 5 min", "2 days 4 h"."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxSummary:
    pending: int  # at most COUNT_CAP: counts stop there ("10,000+")
    given_up: int
    pending_capped: bool
    given_up_capped: bool
    oldest_pending_at: dt.datetime | None
    now: dt.datetime

    @property
    def empty(self) -> bool:
        return not self.pending and not self.given_up

    @property
    def oldest_pending_age(self) -> str | None:
        if self.oldest_pending_at is None:
            return None
        return age_words(self.now - self.oldest_pending_at)


@dataclass(frozen=True)
class OutboxPage:
    rows: list[OutboxRow]
    show: str  # "pending" (the next to go first) or "given-up" (the latest first)
    after: str | None  # this page's cursor: None on the first page
    next_after: str | None  # the cursor of the next page; None on the last one
    summary: OutboxSummary


def _capped_count(*where):
    capped = select(OutboxMessage.id).where(*where).limit(COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(capped).scalar_subquery()


def summary(now: dt.datetime | None = None) -> OutboxSummary:
    """The counts at the top of the page, in one statement over ``ix_outbox_unsent``."""
    now = now or utcnow()
    oldest = select(func.min(OutboxMessage.created_at)).where(*_PENDING).scalar_subquery()
    pending, given_up, oldest_at = db.session.execute(
        select(_capped_count(*_PENDING), _capped_count(*_GIVEN_UP), oldest)
    ).one()
    return OutboxSummary(
        min(pending, COUNT_CAP),
        min(given_up, COUNT_CAP),
        pending > COUNT_CAP,
        given_up > COUNT_CAP,
        oldest_at,
        now,
    )


def _cursor(row: OutboxRow, show: str) -> str:
    if show == "given-up":
        return str(row.id)
    micros = (row.next_attempt_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}-{row.id}"


def _parse_cursor(after: str, show: str) -> tuple[dt.datetime | None, int]:
    """(next attempt, id) of the last row of the previous page; anything else is NotFound."""
    if show == "given-up":
        return None, id_or_404(after, "page of the outbox")
    micros, _, row_id = after.partition("-")
    if not micros.isascii() or not micros.isdigit() or len(micros) > 18:
        raise NotFound("No such page of the outbox.")
    try:
        at = _EPOCH + dt.timedelta(microseconds=int(micros))
    except OverflowError:
        raise NotFound("No such page of the outbox.") from None
    return at, id_or_404(row_id, "page of the outbox")


def outbox_page(show: str = "", after: str | None = None) -> OutboxPage:
    """One page of the pending messages (the next to go first, keyset on (next attempt, id)) or
    of the given-up ones (the latest first, keyset on id), with the summary: two statements,
    each a short range of ``ix_outbox_unsent`` whatever the size of the outbox."""
    show = show if show in SHOWS else "pending"
    after = after or None
    now = utcnow()
    stmt = select(*_COLUMNS).limit(PAGE_SIZE + 1)
    if show == "given-up":
        stmt = stmt.where(*_GIVEN_UP).order_by(OutboxMessage.id.desc())
    else:
        stmt = stmt.where(*_PENDING).order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
    if after is not None:
        at, row_id = _parse_cursor(after, show)
        if show == "given-up":
            stmt = stmt.where(OutboxMessage.id < row_id)
        else:
            key = tuple_(OutboxMessage.next_attempt_at, OutboxMessage.id)
            stmt = stmt.where(key > tuple_(literal(at, OutboxMessage.next_attempt_at.type), row_id))
    rows = [_row(r, now) for r in db.session.execute(stmt)]
    next_after = _cursor(rows[PAGE_SIZE - 1], show) if len(rows) > PAGE_SIZE else None
    return OutboxPage(rows[:PAGE_SIZE], show, after, next_after, summary(now))


def message_row(message_id) -> OutboxRow:
    """One message as the page shows it (a row answered after a refused retry)."""
    message_id = id_or_404(message_id, "message")
    values = db.session.execute(select(*_COLUMNS).where(OutboxMessage.id == message_id)).first()
    if values is None:
        raise NotFound("No such message.")
    return _row(values, utcnow())


# --- retrying ------------------------------------------------------------------------------------


def _locked(message_id: int) -> OutboxMessage:
    """The message, locked for this transaction; refused at once if the worker holds it."""
    stmt = (
        select(OutboxMessage)
        .options(load_only(*_COLUMNS[1:]))  # not the bodies
        .where(OutboxMessage.id == message_id)
        .with_for_update(nowait=True)
    )
    try:
        message = db.session.scalars(stmt).first()
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise Conflict("This message is being sent right now; look again in a moment.") from exc
        raise
    if message is None:
        raise NotFound("No such message.")
    return message


def _kept_error(error: str) -> str:
    if not error:
        return ""
    return (RETRIED + error.removeprefix(RETRIED))[:500]


@unit_of_work()
def retry_message(actor: User, message_id, ip: str = "") -> OutboxRow:
    """Queue one unsent message again, given up or pending ("try now"): attempts 0, due now."""
    message = _locked(id_or_404(message_id, "message"))
    now = utcnow()
    if message.sent_at is not None:
        raise AlreadySent(
            f"This message was already sent ({message.sent_at:%Y-%m-%d %H:%M} UTC); "
            "nothing was changed."
        )
    was = "given-up" if message.next_attempt_at == mail.GAVE_UP else "pending"
    audit.record(
        "admin.outbox_retried", actor=actor, ip=ip, message_id=message.id,
        recipient=message.recipient, subject=message.subject, was=was,
        attempts=message.attempts,
    )  # fmt: skip
    message.attempts = 0
    message.next_attempt_at = now
    message.last_error = _kept_error(message.last_error)
    after_commit(mail.wake)
    return OutboxRow(
        message.id, message.recipient, message.subject, message.created_at, 0, now, None,
        message.last_error, due=True,
    )  # fmt: skip


@unit_of_work()
def retry_given_up(actor: User, ip: str = "") -> int:
    """Queue every given-up message again in one statement; returns how many. Rows sent or
    pending are not touched (the WHERE says given up and unsent)."""
    kept = func.substr(literal(RETRIED) + OutboxMessage.last_error, 1, 500)
    result = db.session.execute(
        update(OutboxMessage)
        .where(*_GIVEN_UP)
        .values(attempts=0, next_attempt_at=utcnow(), last_error=kept)
        .execution_options(synchronize_session=False)
    )
    count = result.rowcount or 0
    if count:
        audit.record("admin.outbox_retried_all", actor=actor, ip=ip, count=count)
        after_commit(mail.wake)
    return count
