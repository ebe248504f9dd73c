"""HTTP routes of registered (cloned) voices: upload reference clips, read, delete.

- ``POST /v1/audio/voices`` (``multipart/form-data``: ``name`` and one or more ``files``) -> 201
  and the voice object; its ``id`` works as ``voice`` in ``/v1/audio/speech``.
- ``GET /v1/audio/voices/{voice_id}``, ``DELETE /v1/audio/voices/{voice_id}``.
- ``registered_voice_infos`` adds registered voices to ``GET /v1/audio/voices``.

Statuses: 400 bad field, malformed id, corrupt audio or too many files; 404 unknown id; 413
over the size limits; 415 not multipart, or a file that is not wav/flac/mp3/ogg; 422 audio
that decodes but is silent or holds too little or too much speech; 503 voice store down.
A refused upload never changes the registry. Embedding runs in a worker thread.

The server's ``RequestGuard`` admits only JSON bodies of a few hundred KB; this module registers
the upload path with it (``app.state.upload_limits`` / ``upload_types``), so POSTs there may be
multipart up to the registry's upload limit and everything else is treated as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Path, Request, Response, UploadFile
from pydantic import BaseModel, Field

from voxserve.cloning.errors import UnsupportedAudio
from voxserve.cloning.names import MAX_NAME_CHARS, VOICE_ID_PATTERN
from voxserve.cloning.registry import VoiceRegistry, open_registry
from voxserve.cloning.store import StoreError, VoiceRecord
from voxserve.errors import InvalidInput
from voxserve.server.config import ServerConfig
from voxserve.server.errors import ERROR_RESPONSES, error_response
from voxserve.server.protocol import ErrorResponse, VoiceInfo
from voxserve.server.serving import SpeechService

log = logging.getLogger("voxserve.server")

VOICES_PATH = "/v1/audio/voices"
AUDIO_PART_TYPES = ("audio/", "video/ogg", "application/ogg", "application/octet-stream")
"""Declared part types a reference file may carry (the bytes decide the format; these only refuse
parts that say they are something else, such as text or images)."""
MAX_CONCURRENT_REGISTRATIONS = 2
"""Uploads decoded and embedded at once; more wait (embedding is CPU-bound)."""
VoiceId = Annotated[str, Path(pattern=VOICE_ID_PATTERN, description="voice_ and 12 hex digits")]


class VoiceObject(BaseModel):
    """A registered voice."""

    id: str = Field(..., description="use as `voice` in /v1/audio/speech")
    object: Literal["voice"] = "voice"
    name: str
    created_at: int = Field(..., description="Unix time of registration, seconds")
    files: int = Field(..., description="reference clips averaged into the voice")
    speech_seconds: float = Field(..., description="speech in those clips after silence was cut, seconds")
    model: str = Field(..., description="the pack that renders this voice")


class VoiceDeleted(BaseModel):
    id: str
    object: Literal["voice.deleted"] = "voice.deleted"
    deleted: bool = True


def _voice_object(record: VoiceRecord, pack: str) -> VoiceObject:
    return VoiceObject(
        id=record.id,
        name=record.name,
        created_at=int(record.created_at),
        files=record.files,
        speech_seconds=record.speech_seconds,
        model=pack,
    )


_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in ERROR_RESPONSES.items() if k not in (429, 504)},
    400: {"model": ErrorResponse, "description": "invalid field, corrupt audio, or too many files"},
    413: {"model": ErrorResponse, "description": "a file or the whole upload is over the size limit"},
    415: {"model": ErrorResponse, "description": "not multipart/form-data, or a file that is not audio"},
    422: {"model": ErrorResponse, "description": "audio is silent, or too little or too much speech"},
}
_ID_ERRORS: dict[int | str, dict[str, Any]] = {
    k: v for k, v in ERROR_RESPONSES.items() if k in (400, 401, 404, 503)
}


def _admit_uploads(app: FastAPI, limit: int) -> None:
    """Let ``RequestGuard`` admit multipart bodies up to ``limit`` bytes on the upload path (see guard.py)."""
    for attr, value in (("upload_limits", limit), ("upload_types", ("multipart/form-data",))):
        if getattr(app.state, attr, None) is None:
            setattr(app.state, attr, {})
        getattr(app.state, attr)[VOICES_PATH] = value


def registered_voice_infos(app: FastAPI, packs: list[VoiceInfo]) -> list[VoiceInfo]:
    """Registered voices for ``GET /v1/audio/voices``, with the cloning pack's facts when it is listed.

    A store that cannot be read is logged and left out, so the packs are still listed.
    """
    registry: VoiceRegistry | None = getattr(app.state, "voice_registry", None)
    if registry is None:
        return []
    try:
        records = registry.list()
    except StoreError as e:
        log.warning("registered voices not listed: %s", e)
        return []
    pack = next((p for p in packs if p.id == registry.config.pack), None)
    facts: dict[str, Any] = {}
    if pack is not None:
        facts = {"language": pack.language, "emotions": pack.emotions, "sample_rate": pack.sample_rate}
    return [VoiceInfo(id=r.id, name=r.name, **facts) for r in records]


def _part_type_ok(content_type: str | None) -> bool:
    main = (content_type or "").split(";", 1)[0].strip().lower()
    return not main or main.startswith(AUDIO_PART_TYPES)


def add_voice_routes(
    app: FastAPI,
    service: SpeechService,
    auth: list[Any],
    config: ServerConfig,
    registry: VoiceRegistry | None = None,
) -> VoiceRegistry:
    """Add the voice routes to ``app`` on ``registry`` (default: ``open_registry()``, shared with the
    engine); returns the registry, also kept as ``app.state.voice_registry``. Opens nothing yet."""
    registry = registry or open_registry()
    app.state.voice_registry = registry
    _admit_uploads(app, registry.limits.max_upload_bytes)
    gate = asyncio.Semaphore(MAX_CONCURRENT_REGISTRATIONS)
    pack = registry.config.pack

    @app.post(
        VOICES_PATH, status_code=201, response_model=VoiceObject, dependencies=auth, responses=_UPLOAD_ERRORS
    )
    async def create_voice(
        name: Annotated[str, Form(min_length=1, max_length=MAX_NAME_CHARS, description="display name")],
        files: Annotated[
            list[UploadFile], File(description="reference clips of one speaker: wav, flac, mp3, ogg")
        ],
    ) -> VoiceObject:
        """Register a voice from 3-30 s of speech per file; several files of one speaker are averaged."""
        if len(files) > registry.limits.max_files:
            raise InvalidInput(f"{len(files)} files; at most {registry.limits.max_files} per voice", "files")
        blobs = []
        for i, part in enumerate(files):
            if not _part_type_ok(part.content_type):
                raise UnsupportedAudio(f"files[{i}] is declared {part.content_type!r}, not audio", "files")
            blobs.append(await part.read())
        async with gate:
            record = await asyncio.to_thread(registry.register, name, blobs)
        log.info("registered voice %s (%d files, %.1f s)", record.id, record.files, record.speech_seconds)
        return _voice_object(record, pack)

    @app.get(VOICES_PATH + "/{voice_id}", response_model=VoiceObject, dependencies=auth, responses=_ID_ERRORS)
    async def get_voice(voice_id: VoiceId) -> VoiceObject:
        """A registered voice."""
        return _voice_object(await asyncio.to_thread(registry.get, voice_id), pack)

    @app.delete(
        VOICES_PATH + "/{voice_id}", response_model=VoiceDeleted, dependencies=auth, responses=_ID_ERRORS
    )
    async def delete_voice(voice_id: VoiceId) -> VoiceDeleted:
        """Forget a registered voice."""
        await asyncio.to_thread(registry.delete, voice_id)
        return VoiceDeleted(id=voice_id)

    _refuse_other_methods(app, VOICES_PATH, ("GET", "POST"))
    _refuse_other_methods(app, VOICES_PATH + "/{voice_id}", ("GET", "DELETE"))
    return registry


def _refuse_other_methods(app: FastAPI, path: str, allowed: tuple[str, ...]) -> None:
    """405 with ``Allow`` naming every method of ``path``: Starlette's own 405 names only the first
    route that matched the path, and GET and DELETE here are separate routes."""
    # FastAPI routes do not answer HEAD on GET routes, so HEAD is refused here too.
    others = [m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS") if m not in allowed]

    @app.api_route(path, methods=others, include_in_schema=False)
    async def method_not_allowed(request: Request) -> Response:
        message = f"{request.method} is not allowed on {path}; use {' or '.join(allowed)}"
        return error_response(405, message, None, "method_not_allowed", {"Allow": ", ".join(allowed)})
