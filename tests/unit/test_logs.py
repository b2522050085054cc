"""Log lines on stdout: one JSON object a line, or readable text (logging.format)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import sys

from appliance.logs import CutOffAtStop, JsonFormatter, logging_config
from appliance.settings import LoggingSettings


def record(message: str, *args: object, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("appliance.scheduler", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_json_line_holds_time_level_logger_and_message() -> None:
    entry = json.loads(JsonFormatter().format(record("round %s: could not %s", "r1", "open")))
    assert set(entry) == {"time", "level", "logger", "message"}
    assert entry["level"] == "warning" and entry["logger"] == "appliance.scheduler"
    assert entry["message"] == "round r1: could not open"
    assert entry["time"].endswith("+00:00")


def test_an_exception_stays_inside_its_one_json_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        import sys

        line = JsonFormatter().format(record("job failed", exc_info=sys.exc_info()))
    assert "\n" not in line
    assert "ValueError: bad\nvalue" in json.loads(line)["exception"]


def test_text_and_json_configurations_write_to_stdout_in_their_format(monkeypatch) -> None:
    for fmt, check in (("json", lambda line: json.loads(line)["message"] == "hello"),
                       ("text", lambda line: line.endswith("INFO appliance.test hello"))):
        stream = io.StringIO()
        monkeypatch.setattr("sys.stdout", stream)
        config = logging_config(LoggingSettings(level="info", format=fmt))
        assert config["root"] == {"level": "INFO", "handlers": ["stdout"]}
        root = logging.getLogger()
        saved = root.handlers[:], root.level
        try:
            logging.config.dictConfig(config)
            logging.getLogger("appliance.test").info("hello")
        finally:
            root.handlers, root.level = saved
        assert check(stream.getvalue().strip()), stream.getvalue()


def test_the_stop_filter_touches_only_the_cut_off_at_a_stop() -> None:
    stop = CutOffAtStop()

    def server(message: str, args: tuple = (), exc_info=None) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, message, args, exc_info)

    cut = server("Cancel %s running task(s), timeout graceful shutdown exceeded", (2,))
    assert stop.filter(cut) and cut.levelname == "WARNING"
    assert cut.getMessage() == "stopping: 2 running request(s), cut off after the grace period"
    try:
        raise asyncio.CancelledError("Task cancelled, timeout graceful shutdown exceeded")
    except asyncio.CancelledError:
        assert not stop.filter(server("Exception in ASGI application", exc_info=sys.exc_info()))
    try:
        raise RuntimeError("a real bug")
    except RuntimeError:
        real = server("Exception in ASGI application", exc_info=sys.exc_info())
    assert stop.filter(real) and real.levelname == "ERROR"  # a real error stays one
    assert stop.filter(server("bad %s %s", (1,)))  # arguments that do not fit: left to the handler, no crash
