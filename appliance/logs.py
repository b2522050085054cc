"""Logging on standard output, as readable lines or one JSON object a line (`logging.format`).

The appliance logs no request by itself (no access log): a log line never puts
a person or an address beside a vote or a proposal.
"""

from __future__ import annotations

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


def logging_config(settings: LoggingSettings) -> dict[str, Any]:
    """A dictConfig for the root logger and the web server's own loggers: stdout, in the chosen format."""
    formatter: dict[str, Any] = ({"()": f"{__name__}.JsonFormatter"} if settings.format == "json"
                                 else {"format": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"appliance": formatter},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "appliance",
                                "stream": "ext://sys.stdout"}},
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
