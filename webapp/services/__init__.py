"""The domain layer: one module per aggregate. Services own the transaction."""


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
