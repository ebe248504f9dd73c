"""Batch synthesis jobs over HTTP: ``/v1/audio/batches`` (create, list, status, results zip, cancel).

Routes (all behind the server's bearer keys when configured):

- ``POST /v1/audio/batches``: JSON ``{"input": text, "input_format": "txt"|"md", ...settings}``, or
  multipart with a ``file`` part (.txt, .md, .epub) and the settings as form fields (``lexicon``
  may be a text field or a file part). The document is parsed before the job is queued, so a
  corrupt or empty upload is a 400 now, not a failed job later. Answers 202 with the job.
- ``GET /v1/audio/batches``: newest first (``limit``, ``after``, ``status``).
- ``GET /v1/audio/batches/{id}``: status and progress.
- ``GET /v1/audio/batches/{id}/content``: the results (chapters, subtitles, manifest.json) as a
  zip, streamed as it is built; 409 until the job is done.
- ``DELETE /v1/audio/batches/{id}``: cancels a queued or running job (returns it, ``cancelled``);
  on a job already finished, deletes its record and files.

``BatchJobs`` owns the store and the worker; the app's lifespan starts it after the engine and
stops it before the engine. This module parses HTTP and nothing else: jobs.py stores, worker.py runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from voxserve.batch.jobs import DONE, STATES, JobRecord, JobsBusy, JobStateError, JobStore
from voxserve.batch.worker import JobWorker, RunJob, run_batch_job
from voxserve.engine.interface import ShuttingDown
from voxserve.errors import InvalidInput, NotFound, VoxserveError
from voxserve.server.batch_protocol import (
    BatchDeleted,
    BatchError,
    BatchInput,
    BatchJob,
    BatchList,
    BatchProgress,
    BatchSettingsIn,
    BatchTextRequest,
)
from voxserve.server.config import ServerConfig
from voxserve.server.errors import ERROR_RESPONSES
from voxserve.server.serving import SpeechService
from voxserve.server.zipstream import zip_stream

log = logging.getLogger("voxserve.server")

BATCHES_PATH = "/v1/audio/batches"
UPLOAD_KINDS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".epub": "epub"}


class UnsupportedDocument(VoxserveError):
    """The upload is not a document type batch jobs read, or the body is not JSON or multipart (415)."""

    status = 415
    code = "unsupported_media_type"


class UploadTooLarge(VoxserveError):
    """The document is larger than ``max_upload_bytes`` (413)."""

    status = 413
    code = "request_too_large"


class JobsUnavailable(VoxserveError):
    """Batch jobs are not running on this server now (starting, stopped, or the directory is busy)."""

    status = 503
    code = "jobs_unavailable"


_ALL_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: {"model": ERROR_RESPONSES[400]["model"], "description": "the job is not in a state that allows it"},
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI error responses of one route (401 always: keys may be configured)."""
    return {k: _ALL_ERRORS[k] for k in sorted({401, 503, *statuses})}


class BatchJobs:
    """The store and worker of one app. ``start``/``stop`` run in the app's lifespan."""

    def __init__(self, config: ServerConfig, service: SpeechService) -> None:
        self.config, self.service = config, service
        self.root = Path(config.jobs_dir).expanduser() if config.jobs_dir else _default_root()
        self.make_tts: Callable[[], Any] = self._make_tts
        """Builds the models jobs render with (tests swap it to share a loaded voice)."""
        self.run_job: RunJob = run_batch_job
        """What runs one job (tests swap it)."""
        self.store: JobStore | None = None
        self.worker: JobWorker | None = None
        self.unavailable = "batch jobs are starting"
        self.stopping = False

    def _make_tts(self) -> Any:
        from voxserve.engine.tts import TTS

        c = self.config
        return TTS(voice=c.voice, backend=c.backend, device=c.device)

    async def start(self) -> None:
        """Open the store (resuming jobs left running) and start the worker; a busy directory only warns."""
        if not self.config.jobs:
            return
        try:
            self.store = await asyncio.to_thread(JobStore, self.root)
        except JobsBusy as e:
            log.warning("batch jobs disabled: %s", e)
            self.unavailable = f"batch jobs are unavailable: {e}"
            return
        self.worker = JobWorker(
            self.store,
            self.run_job,
            self.make_tts,
            engine_load(self.service.engine),
            self.config.jobs_slice_ms,
        )
        await asyncio.to_thread(self.worker.start)

    async def stop(self) -> None:
        """Stop the worker (its job goes back to the queue) and close the store."""
        self.unavailable, self.stopping = "batch jobs are stopping", True
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop, self.config.drain_timeout_s)
        if self.store is not None:
            self.store.close()

    def ready(self) -> tuple[JobStore, JobWorker]:
        if self.store is None or self.worker is None or self.stopping:
            raise JobsUnavailable(self.unavailable)
        return self.store, self.worker


def engine_load(engine: Any) -> Callable[[], float] | None:
    """Requests in the engine now (running + waiting gauges), or None if the engine has no such gauges."""
    metrics = getattr(engine, "metrics", None)
    gauges = [getattr(metrics, name, None) for name in ("running", "waiting")]
    if any(g is None or not hasattr(g, "collect") for g in gauges):
        return None
    # Reading one gauge's samples costs microseconds; the registry-wide lookup would cost far more.
    return lambda: sum(g.collect()[0].samples[0].value for g in gauges)  # type: ignore[union-attr]


def _default_root() -> Path:
    from voxserve.packs.store import home

    return home() / "jobs"


def add_batch_routes(
    app: FastAPI, service: SpeechService, auth: list[Any], config: ServerConfig
) -> BatchJobs:
    """Add the ``/v1/audio/batches`` routes (when ``config.jobs``); returns the jobs object to start/stop."""
    jobs = BatchJobs(config, service)
    app.state.batch_jobs = jobs
    if not config.jobs:
        return jobs
    # RequestGuard admits uploads on registered paths (see guard.py): the document plus form fields.
    if getattr(app.state, "upload_limits", None) is None:
        app.state.upload_limits = {}
    app.state.upload_limits[BATCHES_PATH] = config.max_upload_bytes + 64 * 1024

    @app.post(
        BATCHES_PATH,
        status_code=202,
        response_model=BatchJob,
        dependencies=auth,
        responses=_errors(400, 404, 413, 415),
        openapi_extra={"requestBody": _request_body_doc()},
    )
    async def create_batch(request: Request) -> JSONResponse:
        """Queue a document for synthesis: JSON text, or a multipart upload of a .txt, .md or .epub file."""
        store, worker = jobs.ready()
        if service.draining:
            raise ShuttingDown("the server is shutting down; submit the job again after it restarts")
        data, name, kind, settings = await _read_submission(request, config)
        await asyncio.to_thread(_check_document, data, kind, name, settings)
        record = await asyncio.to_thread(store.create, data, name, kind, settings)
        worker.wake()
        body = _job(record).model_dump(mode="json")
        return JSONResponse(body, status_code=202, headers={"Location": f"{BATCHES_PATH}/{record.id}"})

    @app.get(BATCHES_PATH, response_model=BatchList, dependencies=auth, responses=_errors(400, 404))
    async def list_batches(
        limit: int = Query(20, ge=1, le=100),
        after: str | None = Query(None, description="a job id: list jobs created before it"),
        status: str | None = Query(None, description="only jobs in this status"),
    ) -> BatchList:
        """Jobs, newest first."""
        store, _ = jobs.ready()
        if status is not None and status not in STATES:
            raise InvalidInput(f"status must be one of {', '.join(STATES)}", param="status")
        records = await asyncio.to_thread(store.list_jobs, limit + 1, status, after)
        return BatchList(data=[_job(r) for r in records[:limit]], has_more=len(records) > limit)

    @app.get(BATCHES_PATH + "/{batch_id}", response_model=BatchJob, dependencies=auth, responses=_errors(404))
    async def get_batch(batch_id: str) -> BatchJob:
        """A job's status and progress."""
        store, _ = jobs.ready()
        return _job(await asyncio.to_thread(store.get, batch_id))

    @app.get(
        BATCHES_PATH + "/{batch_id}/content",
        response_class=StreamingResponse,
        dependencies=auth,
        responses={
            200: {"content": {"application/zip": {}}, "description": "the results"},
            **_errors(404, 409),
        },
    )
    async def batch_content(batch_id: str) -> StreamingResponse:
        """A done job's files (chapters, subtitles, manifest.json) as one zip, streamed."""
        store, _ = jobs.ready()
        record = await asyncio.to_thread(store.get, batch_id)
        if record.status != DONE:
            raise JobStateError(f"batch job {batch_id} is {record.status}; results exist once it is done")
        headers = {"Content-Disposition": f'attachment; filename="{batch_id}.zip"'}
        return StreamingResponse(
            zip_stream(store.out_dir(batch_id)), media_type="application/zip", headers=headers
        )

    @app.delete(
        BATCHES_PATH + "/{batch_id}",
        response_model=BatchJob | BatchDeleted,
        dependencies=auth,
        responses=_errors(404),
    )
    async def delete_batch(batch_id: str) -> BatchJob | BatchDeleted:
        """Cancel a queued or running job; delete a finished one (record and files)."""
        store, worker = jobs.ready()
        record = await asyncio.to_thread(store.get, batch_id)
        if record.terminal:
            await asyncio.to_thread(store.delete, batch_id)
            return BatchDeleted(id=batch_id)
        return _job(await asyncio.to_thread(worker.cancel, batch_id))

    return jobs


# --- requests ---------------------------------------------------------------------------------------


async def _read_submission(request: Request, config: ServerConfig) -> tuple[bytes, str, str, dict[str, Any]]:
    """(document bytes, name, kind, settings) from a JSON or multipart request; typed errors otherwise."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "application/json":
        try:
            req = BatchTextRequest.model_validate_json(await request.body())
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from None
        data = req.input.encode("utf-8")
        kind: str = req.input_format
        name = req.name or f"input.{kind}"
        fields: BatchSettingsIn = req
    elif content_type == "multipart/form-data":
        form = await request.form(max_files=2, max_fields=16)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("multipart body needs a 'file' part with the document", param="file")
        name = Path(upload.filename or "input").name
        kind = UPLOAD_KINDS.get(Path(name).suffix.lower(), "")
        if not kind:
            raise UnsupportedDocument(f"{name!r}: unsupported document type; send .txt, .md or .epub")
        data = await upload.read()
        raw: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key == "file":
                continue
            if key in raw:
                raise InvalidInput(f"form field {key!r} is given twice", param=key)
            raw[key] = await _form_text(key, value)
        try:
            fields = BatchSettingsIn.model_validate(raw)
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from None
    else:
        raise UnsupportedDocument(
            f"Content-Type must be application/json or multipart/form-data, got {content_type or 'none'!r}"
        )
    if len(data) > config.max_upload_bytes:
        raise UploadTooLarge(
            f"the document is {len(data)} bytes; this server's limit is {config.max_upload_bytes}"
        )
    if not data.strip():
        raise InvalidInput(
            "the document is empty", param="file" if content_type != "application/json" else "input"
        )
    settings = {
        "voice": fields.voice or config.voice,
        "emotion": fields.emotion,
        "speed": fields.speed,
        "pitch": fields.pitch,
        "energy": fields.energy,
        "volume": fields.volume,
        "format": fields.response_format,
        "speak_titles": fields.speak_titles,
        "lexicon": fields.lexicon,
    }
    return data, name, kind, settings


async def _form_text(key: str, value: Any) -> str:
    if isinstance(value, UploadFile):
        raw = await value.read()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(f"form part {key!r} is not UTF-8 text", param=key) from None
    return str(value)


def _check_document(data: bytes, kind: str, name: str, settings: dict[str, Any]) -> None:
    """Parse the document and its markup, and the settings, so bad input is a 400 now (runs in a thread)."""
    from voxserve.batch import markup
    from voxserve.batch.documents import parse_document
    from voxserve.batch.lexicon import parse_lexicon_text
    from voxserve.engine.controls import SynthesisParams
    from voxserve.packs import store

    doc = parse_document(data, kind, name)
    for k, chapter in enumerate(doc.chapters, 1):
        try:
            markup.parse(chapter.text)
        except markup.MarkupError as e:
            raise InvalidInput(f"chapter {k}, {e}", param="input") from None
    voice = store.validate_name(settings["voice"])
    if voice not in store.available():
        raise NotFound(f"unknown voice {voice!r}; available: {', '.join(store.available())}", param="voice")
    if settings["lexicon"]:
        parse_lexicon_text(settings["lexicon"], "lexicon")
    keys = ("speed", "pitch", "energy", "volume", "emotion")
    SynthesisParams.create(*(settings[k] for k in keys))


# --- responses --------------------------------------------------------------------------------------


def _job(record: JobRecord) -> BatchJob:
    p = record.progress
    total, done = int(p.get("sentences_total", 0)), int(p.get("sentences_done", 0))
    progress = BatchProgress(
        chapters_total=int(p.get("chapters_total", 0)),
        chapters_done=int(p.get("chapters_done", 0)),
        chapters_skipped=int(p.get("chapters_skipped", 0)),
        sentences_total=total,
        sentences_done=done,
        audio_seconds=float(p.get("audio_seconds", 0.0)),
        speed=p.get("speed"),
        eta_seconds=p.get("eta_seconds"),
        percent=round(100.0 * done / total, 1) if total else (100.0 if record.status == DONE else 0.0),
    )
    settings = {k: v for k, v in record.settings.items() if k != "lexicon"}
    settings["lexicon"] = bool(record.settings.get("lexicon"))
    return BatchJob(
        id=record.id,
        status=record.status,  # type: ignore[arg-type]
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        input=BatchInput(name=record.input_name, format=record.input_kind, bytes=record.input_bytes),
        settings=settings,
        progress=progress,
        runs=record.runs,
        error=BatchError(message=record.error, code=record.error_code) if record.error else None,
        result_url=f"{BATCHES_PATH}/{record.id}/content" if record.status == DONE else None,
    )


def _request_body_doc() -> dict[str, Any]:
    """OpenAPI for the two body kinds the create route reads by hand."""
    settings = BatchSettingsIn.model_json_schema()
    form = {
        "type": "object",
        "properties": {"file": {"type": "string", "format": "binary"}, **settings.get("properties", {})},
        "required": ["file"],
    }
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": BatchTextRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            "multipart/form-data": {"schema": form},
        },
    }
