"""Every error the HTTP API returns, in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``.

Statuses: 400 invalid values or JSON, 401 missing/wrong API key, 404 unknown voice, model,
emotion or route, 405 wrong method, 413 body too large, 415 body not JSON, 429 queue full
(with Retry-After), 503 draining/not ready/model unavailable, 504 deadline passed. Like
OpenAI, every invalid request is a 400 (FastAPI's automatic 422 is not used); the one 422 is
an uploaded reference clip that decodes but cannot serve (silent, too little or too much
speech: ``POST /v1/audio/voices``). A 500 means a bug, never bad input.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxserve.engine.interface import Overloaded
from voxserve.errors import VoxserveError
from voxserve.server.protocol import SSE_EVENTS, ErrorResponse

log = logging.getLogger("voxserve.server")


class Unauthorized(VoxserveError):
    """No API key, or not one of the configured keys (HTTP 401)."""

    status = 401
    code = "invalid_api_key"


_TYPES = {401: "authentication_error", 429: "rate_limit_error"}
_CODES = {404: "not_found", 405: "method_not_allowed", 400: "invalid_request"}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "invalid value, unknown field, or invalid JSON"},
    401: {"model": ErrorResponse, "description": "missing or incorrect API key (when keys are configured)"},
    404: {"model": ErrorResponse, "description": "unknown voice, model or emotion"},
    413: {"model": ErrorResponse, "description": "request body larger than the server's limit"},
    415: {"model": ErrorResponse, "description": "request body is not JSON"},
    429: {"model": ErrorResponse, "description": "queue full; retry after the Retry-After header's seconds"},
    503: {"model": ErrorResponse, "description": "server draining, not ready, or voice unavailable"},
    504: {"model": ErrorResponse, "description": "the request's deadline passed"},
}


def error_type(status: int) -> str:
    """OpenAI's ``type`` for a status: client mistakes are ``invalid_request_error``."""
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type(status), "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON error response. ASCII-escaped JSON, so odd input (lone surrogates) cannot break encoding."""
    content = json.dumps(error_body(status, message, param, code), ensure_ascii=True)
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def error_payload(exc: VoxserveError) -> str:
    """An SSE ``error`` event's JSON (``SpeechError``) for an error after streaming began."""
    body = error_body(exc.status, str(exc), getattr(exc, "param", None), exc.code)
    return json.dumps({"type": "error", **body}, ensure_ascii=True)


def _validation_error(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(x) for x in first.get("loc", ())]
    if loc and loc[0] == "body":
        loc = loc[1:]
    kind = first.get("type", "")
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return error_response(400, f"request body is not valid JSON ({detail})", None, "invalid_json")
    if kind == "extra_forbidden" and loc:
        return error_response(
            400, f"Unrecognized request argument supplied: {loc[0]}", loc[0], "unknown_parameter"
        )
    if not loc:
        if kind == "missing":
            return error_response(400, "request body is required (a JSON object)", None, "invalid_request")
        return error_response(400, "request body must be a JSON object", None, "invalid_request")
    param = loc[0]
    return error_response(400, f"{param}: {first.get('msg', 'invalid value')}", param, "invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    """Map validation errors, voxserve's typed errors and Starlette's HTTP errors onto OpenAI's shape."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _validation_error(exc)

    @app.exception_handler(VoxserveError)
    async def _voxserve(request: Request, exc: VoxserveError) -> Response:
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if exc.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_response(exc.status, str(exc), getattr(exc, "param", None), exc.code, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request error"
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        code = _CODES.get(exc.status_code, "invalid_request")
        return error_response(exc.status_code, message, None, code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(500, "internal server error", None, "internal_error")


def tidy_openapi(app: FastAPI) -> None:
    """Drop FastAPI's automatic 422 responses from the schema: this API answers 400 instead."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
            description=app.description,
        )
        for path in schema.get("paths", {}).values():
            for op in path.values():
                responses = op.get("responses", {}) if isinstance(op, dict) else {}
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    responses.pop("422")  # FastAPI's automatic one; a route's own 422 stays
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps.pop("HTTPValidationError", None)
        comps.pop("ValidationError", None)
        # SSE event schemas are referenced only from a media type, so FastAPI does not emit them.
        _, defs = models_json_schema(
            [(m, "serialization") for m in SSE_EVENTS], ref_template="#/components/schemas/{model}"
        )
        comps.update(defs.get("$defs", {}))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
