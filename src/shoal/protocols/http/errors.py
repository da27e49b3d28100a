"""Errors as HTTP answers: every `ShoalError` code maps to one status, with the same codes as
gRPC and TCP in the body: ``{"error": {"code": "not_found", "message": "...", "field": null}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from shoal.core.errors import ShoalError

from .models import ErrorBody

__all__ = ["ERROR_RESPONSES", "STATUS_BY_CODE", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)

#: The HTTP status of each error code (the gRPC status of the same code is its twin).
STATUS_BY_CODE: dict[str, int] = {
    "invalid_argument": 422,
    "not_found": 404,
    "unknown_task": 404,
    "conflict": 409,
    "lease_lost": 409,
    "unauthenticated": 401,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "unavailable": 503,
    # A driver error is most often passing (a lock, a lost connection): worth a retry.
    "storage_error": 503,
    "config_error": 500,
    "internal": 500,
}

#: Error codes for the statuses Starlette raises itself (unknown path, wrong method, ...).
_CODE_BY_STATUS = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "unimplemented",
    409: "conflict",
    422: "invalid_argument",
    429: "resource_exhausted",
    503: "unavailable",
}

_DESCRIPTIONS = {
    400: "The request body is not valid JSON.",
    404: "The object does not exist (`not_found`, `unknown_task`).",
    409: "The object is in the wrong state (`conflict`) or the lease is stale (`lease_lost`).",
    422: "An argument is not valid (`invalid_argument`); `field` names it.",
}

#: The error answers every API route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _DESCRIPTIONS.items()
}


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    """A JSON error answer."""
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status)


async def _shoal_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShoalError)
    status = STATUS_BY_CODE.get(exc.code, 500)
    if status >= 500:
        logger.error(
            "request failed: %s", exc, exc_info=exc, extra={"event": "http.error", "code": exc.code}
        )
    response = error_response(status, exc.code, exc.message, getattr(exc, "field", None))
    if status == 401:
        response.headers["www-authenticate"] = "Bearer"
    return response


def _field_of(loc: tuple[int | str, ...]) -> str:
    # ("body", "jobs", 0, "task") -> "jobs.0.task"; ("query", "limit") -> "limit".
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
    field = _field_of(tuple(first.get("loc", ("body",))))
    message = f"{field}: {first.get('msg', 'invalid')}"
    if first.get("type") == "json_invalid":
        return error_response(400, "invalid_argument", "the body is not valid JSON", "body")
    return error_response(422, "invalid_argument", message, field)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "internal")
    response = error_response(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    # Starlette names only the first route matching the path; a path often has several
    # routes (GET and POST /jobs), and `Allow` must list all of their methods.
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match is not Match.NONE and route_methods:
            methods |= set(route_methods)
        match, _ = route.matches(request.scope)
        if match is Match.PARTIAL and route_methods:
            methods |= set(route_methods)
    return sorted(methods)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unexpected error", exc_info=exc, extra={"event": "http.error", "code": "internal"}
    )
    return error_response(500, "internal", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` answer with the shoal error body."""
    app.add_exception_handler(ShoalError, _shoal_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
