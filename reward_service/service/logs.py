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


class OutageLog:
    """Logs the start and the end of every outage of a dependency, and while it lasts one reminder per
    interval with the count of faults since the last line: never a line per fault (a dead Redis fails
    every call), never an outage unlogged (a once-per-interval log could spend its line on one slow
    call and then say nothing of a real outage that followed)."""

    def __init__(self, logger: logging.Logger, what: str, interval_s: float) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval_s
        self._since: float | None = None  # monotonic start of the current outage
        self._next = 0.0
        self._faults = 0

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    def fault(self, kind: str) -> None:
        now = time.monotonic()
        self._faults += 1
        if self._since is None:
            self._since, self._faults = now, 1
            self._logger.warning("%s outage started: %s", self._what, kind,
                                 extra={"fields": {"fault": kind, "outage": "started"}})
        elif now >= self._next:
            self._logger.warning("%s still failing: %s", self._what, kind,
                                 extra={"fields": {"fault": kind, "outage": "ongoing", "faults": self._faults,
                                                   "outage_s": round(now - self._since, 3)}})
        else:
            return
        self._next = now + self._interval

    def ok(self) -> None:
        """A call succeeded: ends the outage, if there was one."""
        if self._since is None:
            return
        seconds = time.monotonic() - self._since
        self._logger.warning("%s outage ended after %.3f s, %d faults", self._what, seconds, self._faults,
                             extra={"fields": {"outage": "ended", "faults": self._faults,
                                               "outage_s": round(seconds, 3)}})
        self._since = None
