"""ASGI middleware in front of the app: request-size limit, content type, and per-route counts.

The body limit is enforced before any parsing: a declared Content-Length over the
limit is refused without reading, and a chunked body is read only up to the limit.
A body that passes is replayed to the app unchanged, and after it the app's
``receive`` goes back to the real channel (so disconnects are still seen).

Routes that parse their own bodies (uploads) register their exact path in
``app.state.upload_limits`` (path → byte limit): on that path a POST gets that limit instead of
``max_body_bytes``, and, when ``app.state.upload_types`` names the path, its Content-Type must be
one of those (415 otherwise; with no entry the route checks the type). Other methods on an upload
path pass unread, so the router answers them (405).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from voxserve.server.metrics import HttpMetrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
DISCARD_CAP = 8 * 1024 * 1024
"""Bytes of an oversized body read and dropped before answering 413 (larger uploads are cut off)."""


def _error_body(status: int, message: str, code: str) -> bytes:
    err = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return json.dumps({"error": err}).encode()


async def send_error(send: Send, status: int, message: str, code: str) -> None:
    """Answer with an OpenAI-shaped error from ASGI level (before the app is reached)."""
    body = _error_body(status, message, code)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _is_json(content_type: str) -> bool:
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or (main.startswith("application/") and main.endswith("+json"))


def _upload_rule(scope: Scope) -> tuple[int, tuple[str, ...]] | None:
    """(byte limit, allowed content types or ()) an upload route registered for this path, else None."""
    state = getattr(scope.get("app"), "state", None)
    limits = getattr(state, "upload_limits", None)
    if not limits or scope.get("path") not in limits:
        return None
    types = getattr(state, "upload_types", None) or {}
    return limits[scope["path"]], tuple(types.get(scope["path"], ()))


class RequestGuard:
    """Stamps arrival time, limits body size (413), requires JSON bodies (415), and counts responses."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: HttpMetrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["t0"] = time.perf_counter()
        status_box = [0]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            await send(message)

        try:
            upload = _upload_rule(scope)
            if upload is not None and scope["method"] != "POST":
                pass  # an upload path takes POST only: the router's 405 needs no body
            elif scope["method"] in _BODY_METHODS:
                replay = await self._read_body(scope, receive, counting_send, upload)
                if replay is None:
                    return
                receive = replay
            await self.app(scope, receive, counting_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.inc(route=route, status=str(status_box[0] or 499))

    async def _read_body(
        self, scope: Scope, receive: Receive, send: Send, upload: tuple[int, tuple[str, ...]] | None
    ) -> Receive | None:
        """The whole body within the limit as a replaying ``receive``; None if an error was sent."""
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        main_type = content_type.split(";", 1)[0].strip().lower()
        if upload is not None and upload[1] and main_type not in upload[1]:
            message = f"Content-Type must be {' or '.join(upload[1])}, got {content_type!r}"
            await send_error(send, 415, message, "unsupported_media_type")
            return None
        declared = headers.get(b"content-length")
        limit = self.max_body_bytes if upload is None else upload[0]
        too_big = f"request body is larger than this server's limit of {limit} bytes"
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await send_error(send, 400, "Content-Length is not a number", "invalid_request")
                return None
            if n > limit:
                await self._discard(receive, n)
                await send_error(send, 413, too_big, "request_too_large")
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                if message.get("more_body", False):
                    await self._discard(receive, None)
                await send_error(send, 413, too_big, "request_too_large")
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        if data and content_type and upload is None and not _is_json(content_type):
            await send_error(
                send,
                415,
                f"Content-Type must be application/json, got {content_type!r}",
                "unsupported_media_type",
            )
            return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return replay

    async def _discard(self, receive: Receive, declared: int | None) -> None:
        # Reading what the client is still uploading (up to a cap) lets it see the 413
        # instead of a reset connection; past the cap the server stops listening.
        cap = max(DISCARD_CAP, 4 * self.max_body_bytes)
        if declared is not None and declared > cap:
            return
        seen = 0
        while seen <= cap:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
