"""HTTP routes: ``create_app(config)`` builds the FastAPI app and ``run(config)`` serves it.

Nothing loads at import or in ``create_app``: the engine starts (loads and warms
voices) in the app's lifespan, and ``/ready`` answers 503 until it has. Errors leave
in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` (errors.py in
this package); a request never gets a 500 for bad input.

Routes: ``POST /v1/audio/speech``, ``GET /v1/audio/voices``, ``GET /v1/models``
(these three need a bearer key when keys are configured), ``GET /health``,
``GET /ready``, ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer

from voxserve.cloning.registry import open_registry
from voxserve.engine.interface import AudioChunk, ServingEngine, SpeechStream
from voxserve.errors import VoxserveError
from voxserve.server.batch_routes import add_batch_routes
from voxserve.server.config import ServerConfig
from voxserve.server.errors import (
    ERROR_RESPONSES,
    Unauthorized,
    error_payload,
    install_error_handlers,
    tidy_openapi,
)
from voxserve.server.guard import RequestGuard
from voxserve.server.protocol import SSE_EVENTS, Health, ModelList, Readiness, SpeechRequest, VoiceList
from voxserve.server.serving import SpeechPlan, SpeechService, build_engine, sse_frame
from voxserve.server.voice_routes import add_voice_routes, registered_voice_infos

log = logging.getLogger("voxserve.server")
T = TypeVar("T")

AUDIO_MEDIA_TYPES = ("audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav", "audio/pcm")


class ApiKeyCheck:
    """FastAPI dependency: the request must carry ``Authorization: Bearer <one of keys>``."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = [k.encode() for k in keys]

    async def __call__(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing API key (send Authorization: Bearer <key>)")
        given = token.strip().encode("utf-8", "surrogateescape")
        # Compare with every key in constant time, so timing reveals nothing about them.
        if not sum(hmac.compare_digest(given, k) for k in self.keys):
            raise Unauthorized("incorrect API key")


class ClientGone(Exception):
    """The client disconnected before its response was ready."""


async def _until_disconnect(request: Request, work: Awaitable[T], on_disconnect: Callable[[], None]) -> T:
    """Await ``work`` unless the client leaves first; then call ``on_disconnect`` and raise ClientGone."""

    async def wait_disconnect() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_disconnect())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        on_disconnect()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    on_disconnect()
    task.cancel()
    raise ClientGone


def create_app(config: ServerConfig | None = None, engine: ServingEngine | None = None) -> FastAPI:
    """The app for ``config`` on ``engine`` (default: the real engine built from ``config``).

    Cheap: the engine is started by the app's lifespan (uvicorn, or ``TestClient`` as a
    context manager), and stopped there with draining.
    """
    config = config or ServerConfig()
    registry = open_registry()  # registered (cloned) voices: the routes write it, the engine resolves from it
    service = SpeechService(
        engine if engine is not None else build_engine(config, directories=[registry]), config
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        await batches.start()  # after the engine: resumed jobs yield to its requests from the start
        log.info("voxserve ready: default voice %s", config.voice)
        try:
            yield
        finally:
            await batches.stop()
            await service.stop()

    app = FastAPI(
        title="voxserve",
        version="0.1.0",
        summary="OpenAI-compatible text to speech with emotions",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.config = config
    install_error_handlers(app)
    app.add_middleware(RequestGuard, max_body_bytes=config.max_body_bytes, metrics=service.metrics)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
            expose_headers=["X-Sample-Rate", "X-Audio-Duration", "Retry-After"],
        )

    auth: list[Any] = []
    if config.auth:
        # HTTPBearer only documents the scheme in OpenAPI; ApiKeyCheck decides.
        bearer = HTTPBearer(auto_error=False, description="one of the server's API keys")
        auth = [Depends(bearer), Depends(ApiKeyCheck(config.api_keys))]

    _add_speech_route(app, service, auth)
    add_voice_routes(app, service, auth, config, registry=registry)
    batches = add_batch_routes(app, service, auth, config)

    @app.get("/v1/audio/voices", response_model=VoiceList, dependencies=auth, responses=ERROR_RESPONSES)
    async def voices() -> VoiceList:
        """Voices this server can speak with, their language, gender and emotions."""
        packs = await asyncio.to_thread(service.voices)
        return VoiceList(voices=packs + await asyncio.to_thread(registered_voice_infos, app, packs))

    @app.get("/v1/models", response_model=ModelList, dependencies=auth, responses=ERROR_RESPONSES)
    async def models() -> ModelList:
        """The model ids ``/v1/audio/speech`` accepts (OpenAI's names included)."""
        return ModelList(data=service.models())

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        """Liveness: 200 while the process serves HTTP, even when not ready."""
        return Health(status="ok")

    @app.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
    async def ready() -> JSONResponse:
        """Readiness: 200 once voices are loaded and warm; 503 while starting or draining."""
        body = Readiness(status=service.state, ready=service.ready)  # type: ignore[arg-type]
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        """Prometheus metrics: the engine's, then the HTTP layer's (time to first audio, statuses)."""
        return Response(service.render_metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    if config.ui:
        _mount_ui(app, service)
    tidy_openapi(app)
    return app


def _speech_responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of the speech route: audio media types, SSE events, and the errors."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content: dict[str, Any] = {t: binary for t in AUDIO_MEDIA_TYPES}
    # One SSE event, as OpenAPI 3.2 describes streams: ``data`` is JSON of one of the event models.
    events = [{"$ref": f"#/components/schemas/{m.__name__}"} for m in SSE_EVENTS]
    data = {"type": "string", "contentMediaType": "application/json", "contentSchema": {"oneOf": events}}
    event = {
        "type": "object",
        "properties": {"event": {"type": "string"}, "data": data},
        "required": ["data"],
    }
    content["text/event-stream"] = {"schema": event}
    description = "audio (the whole file, or chunked with stream_format=audio), or SSE events"
    return {200: {"content": content, "description": description}, **ERROR_RESPONSES}


def _add_speech_route(app: FastAPI, service: SpeechService, auth: list[Any]) -> None:
    metrics = service.metrics

    @app.post("/v1/audio/speech", response_class=Response, dependencies=auth, responses=_speech_responses())
    async def speech(req: SpeechRequest, request: Request) -> Response:
        """Speak ``input``: OpenAI's request fields plus emotion, pitch, energy, volume, timestamps."""
        t0 = getattr(request.state, "t0", time.perf_counter())
        plan = service.plan(req)
        stream = service.submit(plan)
        metrics.in_flight.inc()
        streaming = False
        try:
            if plan.stream_format is None:
                body, headers = await _until_disconnect(request, service.collect(plan, stream), stream.cancel)
                labels = {"stream": "", "format": plan.response_format}
                metrics.ttfa.observe(time.perf_counter() - t0, **labels)
                metrics.latency.observe(time.perf_counter() - t0, **labels)
                return Response(body, media_type=plan.media_type, headers=headers)
            # Wait for the first chunk before sending headers: errors before any audio keep their status.
            first, rest = await _until_disconnect(request, service.first_chunk(stream), stream.cancel)
            if first is None:
                raise VoxserveError("the engine ended the stream without audio")
            headers = service.audio_headers(first.sample_rate) | {
                "X-Accel-Buffering": "no",
                "Cache-Control": "no-cache",
            }
            streamed = _StreamedSpeech(service, plan, stream, first, rest, first.sample_rate, t0)
            streaming = True  # from here the response owns in_flight and cancellation
            return _SpeechStreamingResponse(streamed, media_type=plan.media_type, headers=headers)
        except ClientGone:
            metrics.disconnects.inc()
            return Response(status_code=499)
        finally:
            if not streaming:
                metrics.in_flight.dec()


class _StreamBroken(Exception):
    """A byte stream failed after its headers went out; the response must end unfinished."""


class _StreamedSpeech:
    """The body of a streamed response. ``close()`` runs however the response ends (even if the body
    was never iterated): it cancels the engine job unless it finished, and settles the metrics once."""

    def __init__(
        self,
        service: SpeechService,
        plan: SpeechPlan,
        stream: SpeechStream,
        first: AudioChunk | None,
        rest: AsyncIterator[AudioChunk],
        rate: int,
        t0: float,
    ) -> None:
        self.service, self.plan, self.stream = service, plan, stream
        self.first, self.rest, self.rate, self.t0 = first, rest, rate, t0
        self.finished = False
        self.closed = False

    async def body(self) -> AsyncIterator[bytes]:
        metrics = self.service.metrics
        sse = self.plan.stream_format == "sse"
        labels = {"stream": self.plan.stream_format or "", "format": self.plan.response_format}
        make = self.service.sse_events if sse else self.service.audio_bytes
        sent_any = False
        try:
            async for data, _ in make(self.plan, self.first, self.rest, self.rate):
                if not data:
                    continue
                if not sent_any:
                    metrics.ttfa.observe(time.perf_counter() - self.t0, **labels)
                    sent_any = True
                yield data
            self.finished = True
            metrics.latency.observe(time.perf_counter() - self.t0, **labels)
        except VoxserveError as e:
            # Headers are gone: SSE can still say what happened; a byte stream can only be cut short.
            log.warning("stream ended early: %s", e)
            self.finished = True  # by failure, not by the client leaving
            self.stream.cancel()
            if not sse:
                raise _StreamBroken from e
            yield sse_frame(error_payload(e))
        finally:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.finished:
            self.stream.cancel()
            self.service.metrics.disconnects.inc()
        self.service.metrics.in_flight.dec()


class _SpeechStreamingResponse(StreamingResponse):
    """A StreamingResponse that always closes its ``_StreamedSpeech``, however the connection ends."""

    def __init__(self, speech: _StreamedSpeech, **kwargs: Any) -> None:
        super().__init__(speech.body(), **kwargs)
        self.speech = speech

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except _StreamBroken:
            # Return with the body unfinished: the server then closes the connection, and the
            # client sees a broken transfer instead of a short file that looks complete.
            pass
        finally:
            self.speech.close()


def _mount_ui(app: FastAPI, service: SpeechService) -> None:
    """Mount the web UI when ``voxserve.server.ui`` and its optional dependencies (gradio) are present."""
    try:
        from voxserve.server.ui import mount_ui

        mount_ui(app, service)
    except ImportError as e:
        log.info("web UI not mounted (%s)", e)


def run(config: ServerConfig | None = None, **overrides: Any) -> None:
    """Serve until SIGINT/SIGTERM; then drain: refuse new requests (503), finish those in flight.

    ``run(ServerConfig(port=9000))`` or ``run(port=9000, voice="baker")``. With
    ``workers`` > 1, that many server processes share the port (see ``server/workers.py``).
    """
    config = (config or ServerConfig()).with_(**overrides) if overrides else (config or ServerConfig())
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if config.workers > 1:
        from voxserve.server.workers import serve_workers

        serve_workers(config, serve_one)
        return
    serve_one(config)


def serve_one(config: ServerConfig, sock: Any = None) -> None:
    """One server process: build the app and run uvicorn on ``config``'s address or on ``sock``."""
    import uvicorn

    sys.setswitchinterval(config.gil_switch_ms / 1000)
    app = create_app(config)
    service: SpeechService = app.state.service

    class DrainingServer(uvicorn.Server):
        # Mark the service draining the moment the signal lands, so requests that reach the
        # app on connections already open get 503 while uvicorn waits for the rest to finish.
        def handle_exit(self, sig: int, frame: Any) -> None:
            service.begin_drain()
            super().handle_exit(sig, frame)

    server = DrainingServer(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            timeout_graceful_shutdown=math.ceil(config.drain_timeout_s),
            timeout_keep_alive=config.keep_alive_s,
        )
    )
    server.run(sockets=[sock] if sock is not None else None)
