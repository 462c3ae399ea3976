"""The gateway's errors: ``{"error": {"code", "message", "param"}}`` with a
lower_snake code (an engine failure code in lower case where one applies),
never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.api import Error, ErrorDetail, api_code
from schemas.codes import invalid_code
from services.errors import InfrastructureError

log = logging.getLogger("paystream.gateway")

# The gateway's own codes (not payment failures): each with its HTTP status.
CODES = {
    "authentication_required": 401,
    "invalid_api_key": 401,
    "api_key_revoked": 401,
    "insufficient_scope": 403,
    "no_mandate": 403,
    "amount_over_mandate": 403,
    "not_merchant_payee": 422,
    # A body that does not validate: the code the engine would give it.
    "invalid_schema": 422,
    "invalid_amount": 422,
    "invalid_address": 422,
    "unknown_currency": 422,
    "idempotency_key_reuse": 409,
    "idempotency_key_in_use": 409,
    "not_in_review": 409,
    "rate_limited": 429,
    "engine_busy": 429,
    "invalid_cursor": 400,
    "resource_missing": 404,
    "body_too_large": 413,
    "invalid_json": 400,
    "invalid_request": 422,
    "method_not_allowed": 405,
    "not_published": 503,
    "balance_unavailable": 503,
    "store_unavailable": 503,
    "internal_error": 500,
}


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = CODES[code]
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}


def body(code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return Error(error=ErrorDetail(code=code, message=message, param=param)).model_dump()


def error_response(err: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else {}
    return JSONResponse(
        body(err.code, err.message, err.param), err.status, headers={**headers, **err.headers}
    )


# Any route may answer these: a bad key or scope, a request it cannot read,
# a body too large, a service down.
COMMON = (
    "rate_limited",
    "authentication_required",
    "insufficient_scope",
    "invalid_json",
    "invalid_request",
    "body_too_large",
    "store_unavailable",
    "internal_error",
)


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a route's errors: ``codes`` and the common ones."""
    statuses: dict[int, list[str]] = {}
    for code in (*COMMON, *codes):
        statuses.setdefault(CODES[code], []).append(code)
    return {
        status: {"model": Error, "description": "Error codes: " + ", ".join(found)}
        for status, found in sorted(statuses.items())
    }


def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    fields = {str(e["loc"][1]) for e in errors if len(e["loc"]) > 1 and e["loc"][0] == "body"}
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first["loc"]]
    param = ".".join(loc[1:]) or None
    if loc and loc[0] == "body":
        if first.get("type") == "json_invalid" or loc == ["body"]:
            message = "the body must be a JSON object (Content-Type: application/json)"
            return JSONResponse(body("invalid_json", message), 400)
        code = api_code(invalid_code(fields))
    else:
        code = "invalid_request"
    message = f"{param or 'request'}: {first['msg']}"
    return JSONResponse(body(code, message[:500], param), 422)


def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "resource_missing", 405: "method_not_allowed"}.get(
        exc.status_code, "invalid_request"
    )
    return JSONResponse(body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error answering a request: %r", exc, exc_info=exc)
    return JSONResponse(body("internal_error", "an unexpected error; nothing more is said"), 500)


def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("a request found a service down: %s", exc)
    message = "PostgreSQL or Kafka did not answer; try again (with the same Idempotency-Key)"
    return JSONResponse(body("store_unavailable", message), 503)


def _api(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(InfrastructureError, _unavailable)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
