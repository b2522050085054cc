"""Errors a user can cause; the web layer turns each kind into its status code."""


class DomainError(Exception):
    """A rule was broken; the message says which, in words a user understands."""

    status = 400
    title = "Bad request"


class Invalid(DomainError):
    status = 400
    title = "Invalid input"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Throttled(DomainError):
    """Too many failed attempts; try again after `retry_after` seconds."""

    status = 429
    title = "Too Many Requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
