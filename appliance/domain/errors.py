"""Errors a user can cause; the web layer turns each kind into its status code."""


class DomainError(Exception):
    """A rule was broken; the message says which, in words a user understands.

    The message may hold %(name)s placeholders filled from keyword values: the
    API shows it filled in English, the pages translate `template` first.
    """

    status = 400
    title = "Bad request"

    def __init__(self, message: str = "", /, **values: object) -> None:
        super().__init__(message % values if values else message)
        self.template, self.values = message, values


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

    def __init__(self, message: str, retry_after: int, **values: object) -> None:
        super().__init__(message, **values)
        self.retry_after = retry_after
