"""The access log's writer: the same lines as the logging formatters, written off the caller's thread,
all of them by the time the process exits, none held without bound while the stream is stuck."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from typing import Any

import pytest

from service.observability import (
    TEXT_FORMAT,
    AccessRecord,
    JsonFormatter,
    LogWriter,
    TextFormatter,
    access_sample_rate,
    logging_config,
)

FIELDS = ("created", "method", "path", "route", "status", "seconds", "batch_size", "client", "request_id")
FACTS: dict[str, Any] = {
    "created": 1_796_000_000.25,
    "method": "POST",
    "path": "/v1/cross-entropy\n\x1b[31mforged",
    "route": "/v1/cross-entropy",
    "status": 422,
    "seconds": 0.000123,
    "batch_size": 3,
    "client": ("127.0.0.1", 50000),
    "request_id": "req-1",
}


def record(**changes: Any) -> AccessRecord:
    facts = FACTS | changes
    made: AccessRecord = tuple(facts[name] for name in FIELDS)
    return made


RECORD = record()


def _as_log_record(facts: dict[str, Any]) -> logging.LogRecord:
    """What the middleware's logging path makes of the same facts (``_log_access``)."""
    log_record = logging.LogRecord(
        "service.access",
        logging.INFO,
        "",
        0,
        "%s %s %d",
        (facts["method"], facts["path"], facts["status"]),
        None,
    )
    log_record.created = facts["created"]
    log_record.msecs = 250.0
    extra = {
        "method": facts["method"],
        "path": facts["path"],
        "route": facts["route"],
        "status": facts["status"],
        "duration_ms": round(facts["seconds"] * 1000, 3),
        "batch_size": facts["batch_size"],
        "client": facts["client"][0],
        "request_id": facts["request_id"],
    }
    for key, value in extra.items():  # in the middleware's order
        setattr(log_record, key, value)
    return log_record


def _written(style: str, *records: AccessRecord) -> list[str]:
    stream = io.StringIO()
    writer = LogWriter(stream, style=style)  # type: ignore[arg-type]
    for record in records:
        writer.access(record)
    writer.close()
    return stream.getvalue().splitlines()


def test_a_json_line_has_the_fields_of_the_logging_formatter() -> None:
    (line,) = _written("json", RECORD)
    assert line == JsonFormatter().format(_as_log_record(FACTS))  # byte for byte
    assert json.loads(line)["path"] == FACTS["path"]


def test_a_text_line_is_the_logging_formatters_line_with_controls_escaped() -> None:
    (line,) = _written("text", RECORD)
    log_record = _as_log_record(FACTS)
    assert line == TextFormatter(TEXT_FORMAT).format(log_record)
    assert line.endswith("INFO service.access [req-1] POST /v1/cross-entropy\\x0a\\x1b[31mforged 422")
    assert "\x1b" not in line


def test_log_records_and_access_records_keep_their_order() -> None:
    stream = io.StringIO()
    writer = LogWriter(stream, style="json")
    writer.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.log_writer")
    logger.addHandler(writer)
    logger.propagate = False
    try:
        for index in range(50):
            logger.warning("line %d", index)
            writer.access(record(status=200 + index))
    finally:
        logger.removeHandler(writer)
        logger.propagate = True
        writer.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("status") for line in lines[1::2]] == [200 + index for index in range(50)]
    assert [line["message"] for line in lines[::2]] == [f"line {index}" for index in range(50)]


class _SlowStream(io.StringIO):
    """A stream that takes a while over each write, and can be held shut."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()

    def write(self, text: str) -> int:
        assert self.open.wait(timeout=10)
        threading.Event().wait(0.001)
        return super().write(text)


def test_closing_writes_every_line_that_was_handed_over() -> None:
    stream = _SlowStream()
    writer = LogWriter(stream)
    for index in range(5000):
        writer.access(record(batch_size=index))
    writer.close()  # as logging.shutdown does when the process exits
    sizes = [json.loads(line)["batch_size"] for line in stream.getvalue().splitlines()]
    assert sizes == list(range(5000))


def test_a_stuck_stream_drops_access_lines_and_says_how_many() -> None:
    stream = _SlowStream()
    stream.open.clear()
    writer = LogWriter(stream, max_pending=100)
    writer.access(RECORD)  # the writer thread takes it, then waits on the stream
    for _ in range(1000):  # at most 10 s, until the writer thread has taken it
        if not writer._pending:
            break
        time.sleep(0.01)
    for _ in range(1000):
        writer.access(RECORD)
    assert writer.dropped == 900
    stream.open.set()
    writer.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 + 100 + 1
    assert (
        json.loads(lines[-1])["message"] == "900 access-log lines dropped: the log's reader did not keep up"
    )


@pytest.mark.parametrize(
    ("setting", "rate"), [("on", 1.0), ("off", 0.0), ("sample:0.1", 0.1), ("sample:1", 1.0)]
)
def test_access_log_settings(setting: str, rate: float) -> None:
    assert access_sample_rate(setting) == rate


@pytest.mark.parametrize("setting", ["yes", "sample:", "sample:1.5", "sample:-0.1", "sample:nan", "ON"])
def test_bad_access_log_settings_are_refused(setting: str) -> None:
    with pytest.raises(ValueError, match="is not on, off or sample:R"):
        access_sample_rate(setting)


@pytest.mark.parametrize("level", ["warning", "info", "debug"])
def test_the_access_log_level_is_its_own(level: str) -> None:
    loggers = logging_config(level)["loggers"]
    assert loggers["service.access"]["level"] == "INFO"
    assert loggers["service"]["level"] == level.upper()
    assert logging_config(level, access_log="off")["loggers"]["service.access"]["level"] == "CRITICAL"
