"""The seam between the server and the serving engine (scheduler, streaming, caches, fallback).

Who calls what: the server builds one ``ServingEngine`` at startup, awaits
``start()`` (loads and warms voices), then for every HTTP request calls
``submit(job)`` and iterates the returned ``SpeechStream`` for audio chunks. On
client disconnect it calls ``stream.cancel()``. On SIGTERM it awaits
``stop(drain=True)``: in-flight jobs finish, new submits raise ``ShuttingDown``.
The engine never sees HTTP; the server never sees tensors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from voxserve.engine.audio import Timing
from voxserve.engine.controls import SynthesisParams
from voxserve.errors import VoxserveError


class Overloaded(VoxserveError):
    """The queue is full: refused at once, before any work (HTTP 429 with Retry-After)."""

    status = 429
    code = "overloaded"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(VoxserveError):
    """The job could not finish before its deadline; its remaining work was dropped (HTTP 504)."""

    status = 504
    code = "deadline_exceeded"


class ShuttingDown(VoxserveError):
    """The engine is draining or stopped and takes no new work (HTTP 503)."""

    status = 503
    code = "shutting_down"


@dataclass(frozen=True)
class SpeechJob:
    """One request's work. ``deadline_s`` is seconds from submit (None: the engine's default)."""

    text: str
    voice: str | None = None
    params: SynthesisParams = field(default_factory=SynthesisParams)
    stream: bool = False
    """True: deliver audio chunk by chunk as soon as each is ready (first chunk early)."""
    deadline_s: float | None = None
    priority: int = 0
    """Higher runs first among equals; batch/offline work uses negative values."""
    timestamps: bool = False
    """Include per-character timings in chunks."""


@dataclass(frozen=True)
class AudioChunk:
    """A piece of a job's audio, in order. The last chunk of a job has ``final=True``."""

    samples: np.ndarray
    """float32 mono in [-1, 1]."""
    sample_rate: int
    index: int
    final: bool
    chars: tuple[Timing, ...] = ()
    """Character timings that end inside this chunk (times on the job's audio clock)."""


class SpeechStream(Protocol):
    """What ``submit`` returns: an async iterator of chunks that can be cancelled."""

    def __aiter__(self) -> AsyncIterator[AudioChunk]: ...

    def cancel(self) -> None:
        """Drop this job's queued work (the client went away). Idempotent."""
        ...


class ServingEngine(Protocol):
    """Batches work from all requests per stage and streams results back."""

    async def start(self) -> None: ...

    async def stop(self, drain: bool = True) -> None: ...

    def submit(self, job: SpeechJob) -> SpeechStream:
        """Validate and enqueue, or raise InvalidInput/NotFound/Overloaded/ShuttingDown at once."""
        ...

    @property
    def ready(self) -> bool:
        """True once voices are loaded and warmed and the engine is not draining."""
        ...
