"""Logging on standard output, as readable lines or one JSON object a line (`logging.format`).

The appliance logs no request by itself (no access log): a log line never puts
a person or an address beside a vote or a proposal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
from datetime import datetime, timezone
from typing import Any

from appliance.settings import LoggingSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "litestar")
ACCESS_LOGGER = "uvicorn.access"  # client address, method and path of every request: never written


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class CutOffAtStop(logging.Filter):
    """At a stop, a request still running after the grace period is cut off: one warning, not two errors.

    The web server logs it as an ERROR, then the cancelled request's traceback as another ERROR
    ("Exception in ASGI application"): a log alert would page the operator for a normal `docker stop`
    while a slow client was still sending.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose arguments do not fit: the handler reports it as usual
            return True
        if "timeout graceful shutdown exceeded" in message:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "stopping: %s, cut off after the grace period"
            record.args = (message.removeprefix("Cancel ").split(",")[0].replace("task(s)", "request(s)"),)
            return True
        exception = record.exc_info[1] if record.exc_info else None
        if isinstance(exception, asyncio.CancelledError) and "graceful shutdown" in str(exception):
            return False  # the traceback of the request just said to be cut off
        return True


def logging_config(settings: LoggingSettings) -> dict[str, Any]:
    """A dictConfig for the root logger and the web server's own loggers: stdout, in the chosen format."""
    formatter: dict[str, Any] = ({"()": f"{__name__}.JsonFormatter"} if settings.format == "json"
                                 else {"format": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"appliance": formatter},
        "filters": {"cut_off_at_stop": {"()": f"{__name__}.CutOffAtStop"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "appliance",
                                "stream": "ext://sys.stdout", "filters": ["cut_off_at_stop"]}},
        "root": {"level": settings.level.upper(), "handlers": ["stdout"]},
        # The server's loggers pass their records to the root logger's handler, in the same format; its
        # access log is silenced by name: configuring "uvicorn" would otherwise make it propagate again,
        # and uvicorn writes it whenever the logger has a handler up its tree.
        "loggers": {name: {"handlers": [], "propagate": True} for name in SERVER_LOGGERS}
        | {ACCESS_LOGGER: {"handlers": [], "propagate": False}},
    }


def configure_logging(settings: LoggingSettings, force: bool = False) -> None:
    """Send log records to stdout in the configured format, unless logging is set up already."""
    if force or not logging.getLogger().handlers:
        logging.config.dictConfig(logging_config(settings))
