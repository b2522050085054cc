"""Every error as problem+json (RFC 9457): status, title, detail."""

from __future__ import annotations

import errno
import logging
import sqlite3
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from appliance.directory import DirectoryUnavailable
from appliance.domain.errors import DomainError
from appliance.storage.ballot_writer import VoteTimeout

log = logging.getLogger("appliance.web")
storage_log = logging.getLogger("appliance")  # not a fault of the web code: the operator's to act on
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """A problem+json response."""
    return Response({"status": status, "title": title, "detail": detail},
                    status_code=status, media_type=PROBLEM, headers=headers)


def domain_error(_: Request, error: DomainError) -> Response:
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return problem(error.status, error.title, str(error), headers)


def directory_unavailable(request: Request, error: DirectoryUnavailable) -> Response:
    # The reason (which server, which error) is for the operator's log, not for whoever signs in.
    log.warning("directory unreachable on %s %s: %s", request.method, request.url.path, error)
    return problem(503, "Service Unavailable", "directory unreachable: try again in a moment",
                   headers={"Retry-After": "10"})


class SafeRequest(Request):
    """A request whose malformed JSON body is a 400, never a 500."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except (UnicodeDecodeError, RecursionError):
            raise ClientException("the request body is not valid JSON (UTF-8, reasonably nested)") from None


def http_error(request: Request, error: HTTPException) -> Response:
    if error.status_code >= 500:
        return unexpected_error(request, error)
    title = HTTPStatus(error.status_code).phrase
    detail = error.detail
    if isinstance(error, ValidationException):
        title, detail = "Invalid input", describe_validation(error.extra) or detail
    return problem(error.status_code, title, detail, error.headers)


def disk_full(error: Exception) -> bool:
    """A database write refused for want of space."""
    return (getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or (isinstance(error, OSError) and error.errno == errno.ENOSPC))


def busy_error(request: Request, error: Exception) -> Response:
    """The database stayed busy, or its disk is full: 503, try again; any other database error is a 500."""
    if disk_full(error):
        where = getattr(error, "filename", None) or "storage.data_dir"  # a round key's disk may be another
        storage_log.error("disk full: %s %s could not be stored; free space on the disk of %s"
                          " (appliance doctor shows how much is left)", request.method, request.url.path, where)
        return problem(503, "Service Unavailable", "the appliance cannot store anything now: its disk is full;"
                       " try again later", headers={"Retry-After": "60"})
    busy = isinstance(error, VoteTimeout) or getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
    if not busy:
        return unexpected_error(request, error)
    log.warning("database busy on %s %s", request.method, request.url.path)
    return problem(503, "Service Unavailable", "the appliance is busy; try again in a moment",
                   headers={"Retry-After": "2"})


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
        if not isinstance(item, dict):
            continue
        key, message = item.get("key") or "body", item.get("message") or "invalid"
        if key == "data" and message.strip("'") == "data":
            parts.append("a JSON body is required")
        else:
            parts.append(f"{key}: {message}")
    return "; ".join(parts)


EXCEPTION_HANDLERS = {
    DomainError: domain_error,
    DirectoryUnavailable: directory_unavailable,
    HTTPException: http_error,
    sqlite3.OperationalError: busy_error,
    OSError: busy_error,  # a full disk; any other is a 500
    VoteTimeout: busy_error,
    Exception: unexpected_error,
}
