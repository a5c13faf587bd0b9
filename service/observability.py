"""Logs that operators can search: one JSON object per line, each with the request id it belongs to.

``REQUEST_ID`` holds the id of the request being handled (``"-"`` outside one); the middleware sets it
and every log record picks it up, including records written from worker threads (contextvars follow
the work into the thread pool). ``logging_config`` is the ``logging.config.dictConfig`` for the whole
process, uvicorn's loggers included; request bodies are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import time
from contextvars import ContextVar
from typing import Any, Final, Literal

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID",
    "JsonFormatter",
    "RequestIdFilter",
    "TextFormatter",
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


def logging_config(level: str, style: Literal["json", "text"] = "json") -> dict[str, Any]:
    """A dictConfig for the service and uvicorn; uvicorn's own access log is replaced by ours."""
    formatter = (
        {"()": JsonFormatter}
        if style == "json"
        else {"()": TextFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "default",
        "filters": ["request_id"],
    }
    loud = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "service": {"handlers": ["default"], "level": loud, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": loud, "propagate": False},
            "uvicorn.error": {"level": loud},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
