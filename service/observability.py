"""Logs that operators can search: one JSON object per line, each with the request id it belongs to.

``REQUEST_ID`` holds the id of the request being handled (``"-"`` outside one); the middleware sets it
and every log record picks it up, including records written from worker threads (contextvars follow
the work into the thread pool). ``logging_config`` is the ``logging.config.dictConfig`` for the whole
process, uvicorn's loggers included; request bodies are never logged.

Every line goes out through one ``LogWriter``: a background thread that writes what it is handed in
batches, so that no request waits for the stream. The access log, one line per request, does not even
make a ``LogRecord``: the middleware hands the writer a tuple of the line's facts (``AccessRecord``)
and the writer thread formats it, the same fields as ``JsonFormatter`` and the same line as
``TextFormatter`` would give (see ``access_log_line``). ``XENT_ACCESS_LOG`` switches it on, off, or
to a sample of the successful requests, whatever ``XENT_LOG_LEVEL`` says (``access_sample_rate``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from contextvars import ContextVar
from typing import IO, Any, Final, Literal

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID",
    "AccessRecord",
    "JsonFormatter",
    "LogWriter",
    "RequestIdFilter",
    "TextFormatter",
    "access_log_line",
    "access_sample_rate",
    "logging_config",
]

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
ACCESS_LOGGER: Final = "service.access"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "color_message"}
)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was written for."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "pid", "message", "request_id", ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


#: C0 and C1 control characters (and DEL): a percent-decoded path may carry any of them.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with every control character written as ``\\xNN``: one record stays one line, and no
    terminal escape sequence reaches whoever reads the log."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


class TextFormatter(logging.Formatter):
    """The plain-text line; what a client sent (a path, say) cannot forge a line or an escape sequence.
    A traceback, which is the service's own text, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return escape_controls(super().formatMessage(record))


TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


#: The facts of one access-log line (never a body) as the middleware hands them to the writer: when the
#: request was answered (``time.time()``), method, path, route template, status, seconds taken, batch
#: size, the client's address (host, port) or None, request id. A plain tuple, the cheapest thing to
#: make; the writer thread rounds, picks and formats.
AccessRecord = tuple[float, str, str, str, int, float, int, "tuple[str, int] | None", str]


class _Clock:
    """The time stamps of both formats, worked out once per second rather than once per line."""

    def __init__(self) -> None:
        self._second = -1
        self._utc = ""
        self._local = ""

    def _turn(self, second: int) -> None:
        self._second = second
        self._utc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))

    def utc(self, created: float) -> str:
        """``2026-12-02T02:38:00.123Z``, as ``JsonFormatter`` writes the time."""
        second = int(created)
        if second != self._second:
            self._turn(second)
        return f"{self._utc}.{int((created - second) * 1000):03d}Z"

    def local(self, created: float) -> str:
        """``2026-12-02 02:38:00,123``, as ``logging.Formatter`` writes ``asctime``."""
        second = int(created)
        if second != self._second:
            self._turn(second)
        return f"{self._local},{int((created - second) * 1000):03d}"


#: A JSON string literal of a text, as ``json.dumps(text, ensure_ascii=False)`` writes it.
_quote: Final = json.JSONEncoder(ensure_ascii=False).encode


def access_log_line(record: AccessRecord, style: Literal["json", "text"], pid: int, clock: _Clock) -> str:
    """One access-log line: the object ``JsonFormatter`` writes for the middleware's record (the same
    fields in the same order, the same separators), or ``TEXT_FORMAT``'s line with its control
    characters escaped. Written out field by field, which costs a fraction of ``json.dumps`` of a
    dict: the path, which a client chose, is quoted; the rest are numbers or tokens that need no
    quoting (a method the HTTP parser accepted, a route template, a request id that passed
    ``_SANE_REQUEST_ID``, an IP address)."""
    created, method, path, route, status, seconds, batch_size, client, request_id = record
    if style == "text":
        line = f"{clock.local(created)} INFO {ACCESS_LOGGER} [{request_id}] {method} {path} {status}"
        return escape_controls(line)
    quoted_path = _quote(path)
    return (
        f'{{"time": "{clock.utc(created)}", "level": "info", "logger": "{ACCESS_LOGGER}", "pid": {pid}, '
        f'"message": "{method} {quoted_path[1:-1]} {status}", "request_id": "{request_id}", '
        f'"method": "{method}", "path": {quoted_path}, "route": "{route}", "status": {status}, '
        f'"duration_ms": {round(seconds * 1000, 3)!r}, "batch_size": {batch_size}, '
        f'"client": "{client[0] if client else "-"}"}}'
    )


class _Flushed:
    """A marker in the writer's queue: set once everything before it has been written."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP: Final = object()


class LogWriter(logging.Handler):
    """A handler whose lines a background thread writes, in batches, so that no caller waits for the
    stream (a terminal, a pipe, a container's log driver).

    ``emit`` formats a ``LogRecord`` in the caller's thread (its arguments and traceback are read
    there) and queues the line; ``access`` queues an ``AccessRecord`` as it is, and the writer thread
    formats it. Lines keep the order they were handed in. The thread wakes every ``interval`` seconds
    (or on ``flush``), not for each line: a request pays for a ``deque.append``, and the thread's
    work, in the same process and under the same GIL, is one batch of lines and one write at a time.
    At most ``max_pending`` access records wait at once: beyond that, while the stream is not taking
    lines, they are counted and dropped rather than held (the writer says how many once it catches
    up); other lines are never dropped. Records are formatted in ``style`` unless a formatter is set
    (``logging_config`` sets the same). ``flush`` returns once everything queued before it is
    written; ``close`` (``logging.shutdown`` calls it when the process exits) flushes and stops the
    thread.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        style: Literal["json", "text"] = "json",
        max_pending: int = 100_000,
        interval: float = 0.2,
    ) -> None:
        super().__init__()
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.style: Literal["json", "text"] = style
        self.max_pending = max_pending
        self.interval = interval
        self.dropped = 0
        self.setFormatter(JsonFormatter() if style == "json" else TextFormatter(TEXT_FORMAT))
        self._pending: deque[object] = deque()
        self._wake = threading.Event()
        self._pid = os.getpid()
        self._clock = _Clock()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record))
        except Exception:
            self.handleError(record)

    def access(self, record: AccessRecord) -> None:
        """Queue one access-log line's facts; formatted and written by the writer thread."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        self._pending.append(record)

    def flush(self) -> None:
        if not self._thread.is_alive() or threading.current_thread() is self._thread:
            return
        marker = _Flushed()
        self._pending.append(marker)
        self._wake.set()
        marker.done.wait(timeout=10.0)

    def close(self) -> None:
        self.flush()
        if self._thread.is_alive():
            self._pending.append(_STOP)
            self._wake.set()
            self._thread.join(timeout=10.0)
        super().close()

    def _run(self) -> None:
        reported = 0
        stop = False
        while not stop:
            self._wake.wait(self.interval)
            self._wake.clear()
            lines: list[str] = []
            markers: list[_Flushed] = []
            while self._pending:  # deque.popleft is atomic: the callers keep appending meanwhile
                item = self._pending.popleft()
                if isinstance(item, tuple):
                    lines.append(access_log_line(item, self.style, self._pid, self._clock))
                elif isinstance(item, str):
                    lines.append(item)
                elif isinstance(item, _Flushed):
                    markers.append(item)
                else:
                    stop = True
                    break
            if self.dropped > reported:
                lines.append(self._dropped_line(self.dropped - reported))
                reported = self.dropped
            self._write(lines)
            for marker in markers:
                marker.done.set()

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # the stream is gone (closed, a broken pipe): there is nowhere left to say so

    def _dropped_line(self, count: int) -> str:
        record = logging.LogRecord(
            ACCESS_LOGGER,
            logging.WARNING,
            __file__,
            0,
            "%d access-log lines dropped: the log's reader did not keep up",
            (count,),
            None,
        )
        record.request_id = "-"
        return self.format(record)


def access_sample_rate(setting: str) -> float:
    """The share of successful requests that ``XENT_ACCESS_LOG`` asks to log: ``on`` 1, ``off`` 0,
    ``sample:R`` R (0 <= R <= 1). Anything else is a ``ValueError``."""
    if setting == "on":
        return 1.0
    if setting == "off":
        return 0.0
    kind, _, rate = setting.partition(":")
    if kind == "sample":
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if 0.0 <= value <= 1.0:
            return value
    raise ValueError(f"{setting!r} is not on, off or sample:R with R a share between 0 and 1")


def logging_config(
    level: str, style: Literal["json", "text"] = "json", access_log: str = "on"
) -> dict[str, Any]:
    """A dictConfig for the service and uvicorn; uvicorn's own access log is replaced by ours, whose
    level is its own: INFO unless ``access_log`` is ``off`` (``XENT_ACCESS_LOG``)."""
    formatter = {"()": JsonFormatter} if style == "json" else {"()": TextFormatter, "fmt": TEXT_FORMAT}
    handler = {"()": LogWriter, "style": style, "formatter": "default", "filters": ["request_id"]}
    loud = level.upper()
    access_level = "INFO" if access_sample_rate(access_log) > 0 else "CRITICAL"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "service": {"handlers": ["default"], "level": loud, "propagate": False},
            ACCESS_LOGGER: {"handlers": ["default"], "level": access_level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": loud, "propagate": False},
            "uvicorn.error": {"level": loud},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
