"""The domain layer: one module per aggregate. Services own the transaction.

Every business operation runs inside ``unit_of_work()``: it commits once at the end, rolls back
on any error, and only after a successful commit runs the hooks registered with
``after_commit()`` (ending sessions in the store, waking the outbox). Nothing else in the app
commits or rolls back, except the error handler and the long-running workers' own loops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from ..extensions import db


class DomainError(Exception):
    """Base of the errors services raise; routes turn them into responses."""

    def __init__(self, message: str = "", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotAllowed(DomainError):
    pass


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class Invalid(DomainError):
    pass


MAX_ID = 2**31 - 1  # ids beyond an INTEGER column would be a database error, not a 404


def id_or_404(value, what: str) -> int:
    """``value`` as a row id; NotFound for anything that is not a positive INTEGER."""
    try:
        value = int(value)
    except (TypeError, ValueError, OverflowError):
        raise NotFound(f"No such {what}.") from None
    if not 0 < value <= MAX_ID:
        raise NotFound(f"No such {what}.")
    return value


def insert(model):
    """INSERT for this database, with ``on_conflict_do_nothing`` available (PostgreSQL, SQLite)."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


# --- the unit of work --------------------------------------------------------------------------

_DEPTH = "uow_depth"
_HOOKS = "uow_after_commit"


def after_commit(hook: Callable[[], object]) -> None:
    """Run ``hook`` once the current unit of work has committed (never if it rolls back)."""
    db.session.info.setdefault(_HOOKS, []).append(hook)


def discard() -> None:
    """Roll back whatever the session holds and forget pending after-commit hooks."""
    db.session.rollback()
    db.session.info.pop(_HOOKS, None)


@contextmanager
def unit_of_work(*, missing: str | None = None) -> Iterator[None]:
    """One business operation: all of it commits, or none of it does.

    Nested units join the outermost one (a service that calls another commits once). On any
    exception the transaction is rolled back, so row locks are released and nothing
    half-written remains. ``missing``: a row deleted by someone else while this operation waited
    for its lock (a foreign-key failure on insert, an update that found its row gone) becomes
    ``NotFound(missing)``, the same 404 a later request would get.
    """
    info = db.session.info
    depth = info.get(_DEPTH, 0)
    info[_DEPTH] = depth + 1
    try:
        yield
        if depth == 0:
            db.session.commit()
    except BaseException as exc:
        if depth == 0:
            discard()
            if missing is not None and _is_missing_parent(exc):
                raise NotFound(missing) from exc
        raise
    finally:
        info[_DEPTH] = depth
    if depth == 0:
        for hook in info.pop(_HOOKS, []):
            hook()


def _is_missing_parent(exc: BaseException) -> bool:
    """A row this operation wrote or refers to was deleted by someone else meanwhile."""
    if isinstance(exc, StaleDataError | ObjectDeletedError):
        return True
    return isinstance(exc, IntegrityError) and "foreign key" in str(exc.orig).lower()
