"""The client's errors: one small tree, so a trainer can catch what it can wait out apart from its bugs.

    RewardServiceError        the service answered something this client cannot use (a 500, a broken body)
    ├── ServiceUnavailable    not reachable, or 429/502/503/504, after the retries ran out: transient, so
    │                         a trainer waits and tries again (`.status_code`, `.retry_after_s`)
    ├── InvalidRequest        400/413/422: the request is the caller's bug (`.code`, `.message`, `.detail`,
    │                         `.items`: (index, id) of each input item the server named); never retried
    └── AuthenticationError   401: a missing or wrong API key; never retried
"""

from __future__ import annotations

from typing import Any


class RewardServiceError(Exception):
    """The root of this client's errors. `status_code` and `code` are the server's, when it answered."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code


class ServiceUnavailable(RewardServiceError):
    """The service could not be reached or was busy (429/502/503/504) past the retry budget."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.retry_after_s = retry_after_s


class InvalidRequest(RewardServiceError):
    """The server refused the request (400/413/422): fix the request, do not retry it.

    `items` holds (index in the caller's input, id) of every item the server's `detail` names, e.g. the
    items whose reference is invalid.
    """

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None,
                 detail: list[dict[str, Any]] | None = None, items: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.detail = detail or []
        self.items = items or []


class AuthenticationError(RewardServiceError):
    """401: the service wants `Authorization: Bearer <key>` with one of its keys."""
