"""The domain layer: one module per aggregate. Services own the transaction."""

from sqlalchemy.dialects import postgresql, sqlite

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
