"""Log lines on stdout: one JSON object a line, or readable text (logging.format)."""

from __future__ import annotations

import io
import json
import logging
import logging.config

from appliance.logs import JsonFormatter, logging_config
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
