"""Structured JSON logs, one object per line, carrying the request id of the request being served.

What goes into a log line is chosen by the code that logs, through `extra={"fields": {...}}`, never
by dumping a request: completions, references and keys must never reach a log.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "info") -> None:
    """Send our loggers and uvicorn's through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our middleware writes one access line per request, with route, status, duration and request id.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


class FaultLog:
    """Logs a recurring fault once per interval with the count since the last line, not once per call.

    A dead Redis fails every cache call; a line per call would flood the logs and cost CPU.
    """

    def __init__(self, logger: logging.Logger, what: str, interval_s: float) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval_s
        self._next = 0.0
        self._suppressed = 0

    def fault(self, kind: str) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        self._logger.warning(
            "%s fault: %s", self._what, kind,
            extra={"fields": {"fault": kind, "suppressed_since_last": self._suppressed}},
        )
        self._suppressed = 0
        self._next = now + self._interval
