"""HTTP routes: ``create_app(...)`` builds the FastAPI app; nothing loads at import.

Errors leave in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``
with a 4xx status for anything the client can fix; a request never sees a 500
for bad input.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from voxserve.engine.tts import TTS
from voxserve.errors import VoxserveError
from voxserve.server.protocol import SpeechRequest
from voxserve.server.serving import MEDIA_TYPES, SpeechService

log = logging.getLogger("voxserve.server")


def _error(
    status: int, message: str, type_: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": type_, "param": param, "code": code}},
    )


def create_app(voice: str = "baker", backend: str = "torch", warmup: bool = True) -> FastAPI:
    """The app, serving ``voice`` by default; loads and warms it at startup when ``warmup``."""
    service = SpeechService(TTS(voice=voice, backend=backend))

    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        if warmup:
            service.warmup(voice)
        else:
            service.ready = True
        yield

    app = FastAPI(title="voxserve", version="0.1.0", lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(x) for x in first.get("loc", []) if x != "body"]
        return _error(
            400,
            f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid request')}",
            "invalid_request_error",
            ".".join(loc) or None,
            "invalid_value",
        )

    @app.exception_handler(VoxserveError)
    async def _voxserve_error(request: Request, exc: VoxserveError) -> JSONResponse:
        return _error(exc.status, str(exc), exc.code, getattr(exc, "param", None), exc.code)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/audio/speech")
    async def speech(req: SpeechRequest) -> Response:
        body, headers = await service.speech(req)
        return Response(body, media_type=MEDIA_TYPES[req.response_format], headers=headers)

    return app


def run(host: str = "127.0.0.1", port: int = 8000, voice: str = "baker", backend: str = "torch") -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(voice=voice, backend=backend), host=host, port=port, log_level="info")
