"""The service's error tree and the one error body of api.md: `{"error": {"code", "message"}, "detail"?}`.

Routes raise `ServiceError` subclasses; `install_error_handlers` turns them, Starlette's own HTTP
errors (404, 405) and anything unexpected into that body, so no input ever gets a stack trace back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("reward_service.errors")

INTERNAL_ERROR_MESSAGE = "unexpected error; see the service log"

# Codes for the statuses Starlette itself may answer with (unknown path, wrong method, ...).
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "overloaded",
    500: "internal_error",
    503: "unavailable",
}


class ServiceError(Exception):
    """An error with its HTTP status, a stable machine-readable code and a message for humans."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        detail: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = list(detail) if detail is not None else None
        self.headers = dict(headers or {})


class BadJSON(ServiceError):
    status, code = 400, "bad_json"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str = "missing or wrong bearer token") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class InvalidRequest(ServiceError):
    """422: the body breaks the schema, or a reference or the config override is invalid."""

    status, code = 422, "validation_error"


class Overloaded(ServiceError):
    status, code = 429, "overloaded"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class Unavailable(ServiceError):
    """503: starting, draining, or (OpenRLHF protocol) an item that could not be scored."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, retry_after_s: int = 1, code: str = "unavailable") -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})
        self.code = code


def error_body(code: str, message: str, detail: Sequence[Mapping[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if detail is not None:
        body["detail"] = list(detail)
    return orjson.dumps(body)


def error_response(
    status: int,
    code: str,
    message: str,
    detail: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(error_body(code, message, detail), status, headers=dict(headers or {}),
                    media_type="application/json")


def clean_validation_errors(errors: Sequence[Any], prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors as api.md's `detail`: loc, msg, type only; the offending input is never echoed."""
    return [
        {"loc": [*prefix, *err.get("loc", ())], "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
        for err in errors
    ]


async def _service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status, exc.code, exc.message, exc.detail, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = clean_validation_errors(exc.errors())
    return error_response(422, "validation_error", "request does not match the schema", detail)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _internal_error(_: Request, exc: Exception) -> Response:
    """What Starlette's ServerErrorMiddleware sends for an unexpected fault (then it re-raises it, for
    the service's middleware to log): api.md's body, not Starlette's plain text."""
    return error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
