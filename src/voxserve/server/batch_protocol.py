"""Request and response bodies of the batch-job routes (``/v1/audio/batches``), pydantic.

A job is created either from JSON text (``BatchTextRequest``) or from a multipart upload
(a ``file`` part plus the same settings as form fields, see batch_routes.py). Unknown
fields are rejected, as in protocol.py; settings left out mean the server's default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voxserve.engine.controls import RANGES
from voxserve.server.protocol import ResponseFormat

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class BatchSettingsIn(BaseModel):
    """How to speak a document: voice, emotion, controls, audio format, titles, lexicon (subtitles always)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    voice: str | None = Field(None, min_length=1, max_length=128, description="voice; omitted: the default")
    emotion: str | None = Field(None, max_length=32, description="emotion label (开心) or name (happy)")
    speed: float | None = Field(None, ge=RANGES["speed"][0], le=RANGES["speed"][1], description="tempo")
    pitch: float | None = Field(None, ge=RANGES["pitch"][0], le=RANGES["pitch"][1], description="pitch")
    energy: float | None = Field(None, ge=RANGES["energy"][0], le=RANGES["energy"][1], description="energy")
    volume: float | None = Field(None, ge=RANGES["volume"][0], le=RANGES["volume"][1], description="gain")
    response_format: ResponseFormat = Field("mp3", description="audio format of each chapter file")
    speak_titles: bool = Field(True, description="speak each chapter's title before its text")
    lexicon: str | None = Field(
        None, max_length=1_000_000, description="pronunciations, one 'word<TAB>reading' per line"
    )


class BatchTextRequest(BatchSettingsIn):
    """``POST /v1/audio/batches`` with a JSON body: the document is ``input``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    input: str = Field(..., min_length=1, description="the document's text (markup allowed)")
    input_format: Literal["txt", "md"] = Field("txt", description="how to find chapters: txt or md")
    name: str | None = Field(None, max_length=255, description="a name for the document (shown in listings)")


class BatchProgress(BaseModel):
    """Where a job stands. Counts are 0 until the runner has planned the document."""

    chapters_total: int = 0
    chapters_done: int = Field(0, description="chapters finished (rendered now or kept from an earlier run)")
    chapters_skipped: int = Field(0, description="chapters an earlier run had finished (not rendered again)")
    sentences_total: int = 0
    sentences_done: int = 0
    audio_seconds: float = 0.0
    speed: float | None = Field(None, description="audio seconds produced per wall second")
    eta_seconds: float | None = None
    percent: float = Field(0.0, description="sentences done over sentences total, 0-100")


class BatchInput(BaseModel):
    name: str
    format: str = Field(..., description="txt, md or epub")
    bytes: int


class BatchError(BaseModel):
    message: str
    code: str | None = None


class BatchJob(BaseModel):
    """One batch job. ``result_url`` is set once the job is done (a zip of every output file)."""

    id: str
    object: Literal["audio.batch"] = "audio.batch"
    status: JobStatus
    created_at: float = Field(..., description="Unix time, seconds")
    started_at: float | None = None
    finished_at: float | None = None
    input: BatchInput
    settings: dict[str, Any]
    progress: BatchProgress
    runs: int = Field(..., description="times a worker started it (more than 1: resumed after a restart)")
    error: BatchError | None = None
    result_url: str | None = None


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchJob]
    has_more: bool


class BatchDeleted(BaseModel):
    """``DELETE`` of a finished job: its record and files are gone."""

    id: str
    object: Literal["audio.batch.deleted"] = "audio.batch.deleted"
    deleted: bool = True
