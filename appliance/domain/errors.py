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
