"""Every error as problem+json (RFC 9457): status, title, detail."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from appliance.domain.errors import DomainError

log = logging.getLogger("appliance.web")
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """A problem+json response."""
    return Response({"status": status, "title": title, "detail": detail},
                    status_code=status, media_type=PROBLEM, headers=headers)


def domain_error(_: Request, error: DomainError) -> Response:
    return problem(error.status, error.title, str(error))


def http_error(_: Request, error: HTTPException) -> Response:
    title = error.__class__.__name__.removesuffix("Exception") or "Error"
    detail = error.detail
    if isinstance(error, ValidationException):
        title, detail = "Invalid input", describe_validation(error.extra) or detail
    return problem(error.status_code, _spaced(title), detail, error.headers)


def unexpected_error(request: Request, error: Exception) -> Response:
    # The path is logged, never the body: it may hold a vote or a proposal.
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "Internal error", "something went wrong on our side")


def describe_validation(extra: Any) -> str:
    """Validation errors as one readable line: `field: message; ...`."""
    if not isinstance(extra, list):
        return ""
    parts = []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key") or "body"
            parts.append(f"{key}: {item.get('message', 'invalid')}")
    return "; ".join(parts)


def _spaced(name: str) -> str:
    """'NotAuthorized' -> 'Not authorized'."""
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return words[:1].upper() + words[1:]


EXCEPTION_HANDLERS = {
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
