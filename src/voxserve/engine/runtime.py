"""The serving engine: ``Engine`` implements ``ServingEngine`` (see engine/interface.py).

Who calls what: the server builds one ``Engine`` over a ``TTS`` (or loaded ``Voice``s),
awaits ``start`` (loads and warms the voices, starts the workers), calls ``submit`` per
request and iterates the returned stream, and awaits ``stop(drain=True)`` on shutdown.
This module owns the lifecycle, request validation and admission; the execution (dynamic
batching per stage on one executor thread, streaming, fallback, caching) is the
``Pipeline`` in pipeline.py. Voices are loaded at ``start`` only, never on demand.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from voxserve.backends.interface import Backend
from voxserve.engine.cache import AudioCache, open_audio_cache
from voxserve.engine.controls import SynthesisParams
from voxserve.engine.interface import AudioChunk, ShuttingDown, SpeechJob
from voxserve.engine.metrics import EngineMetrics
from voxserve.engine.pipeline import Pipeline, Served
from voxserve.engine.resolve import resolve_voice
from voxserve.engine.speakers import Speaker, VoiceDirectory
from voxserve.engine.streaming import ChunkPlan, JobStream, receptive_frames
from voxserve.engine.tts import MAX_INPUT_CHARS, TTS
from voxserve.engine.voice import Voice
from voxserve.errors import InvalidInput, NotFound, VoxserveError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 16
"""Items per batched model call when neither the caller nor the backend's ``batch_buckets`` say."""


class Engine:
    """Serves the voices of a ``TTS`` (or given ``Voice``s) to many concurrent requests.

        ``voices``: names to serve (default: the TTS's default voice, or every given Voice).
        ``backend(voice)`` returns the loaded backend that runs a voice (default: the voice's
        own). ``fallback`` is a backend name (built on the CPU and loaded per voice at start) or a
        function like ``backend``; a batch whose primary call raises ``RuntimeError`` (CUDA
        out-of-memory included) is retried there. ``max_batch`` defaults to the largest of the
        backend's ``batch_buckets`` when it has them, else 16. ``max_wait_ms`` is how long a
        stage waits for more items after the first arrives. ``max_queue`` bounds admitted
        jobs: beyond it ``submit`` raises ``Overloaded``. ``default_deadline_s`` applies to jobs
        without ``deadline_s``. ``cache`` is None, "memory", a redis:// URL or an ``AudioCache``;
        only texts of at most ``cache_max_chars`` characters are cached. ``chunking`` sets the
        stream chunk sizes. ``directories`` resolve registered voice ids (default: the TTS's).
        ``optional_voices`` are served too when they load; one that cannot (a pack missing its
        weight source) is logged and left out instead of failing the start. A job's
    ``voice`` may be a served pack, ``<pack>:<speaker>``, a speaker name, or a registered voice id.
    Does not load voices on demand or speak HTTP.
    """

    def __init__(
        self,
        tts_or_voices: TTS | Mapping[str, Voice] | Sequence[Voice],
        voices: Sequence[str] | None = None,
        backend: Callable[[Voice], Backend] | None = None,
        fallback: str | Callable[[Voice], Backend] | None = None,
        max_batch: int | None = None,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        default_deadline_s: float = 30.0,
        cache: str | AudioCache | None = None,
        cache_max_chars: int = 200,
        chunking: ChunkPlan | None = None,
        directories: Sequence[VoiceDirectory] | None = None,
        optional_voices: Sequence[str] = (),
    ) -> None:
        _check_number("max_wait_ms", max_wait_ms, allow_zero=True)
        _check_number("default_deadline_s", default_deadline_s)
        for name, value in (
            ("max_queue", max_queue),
            ("max_batch", max_batch),
            ("cache_max_chars", cache_max_chars),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInput(f"{name} must be a positive integer, got {value!r}", param=name)
        if isinstance(tts_or_voices, TTS):
            self._tts: TTS | None = tts_or_voices
            self._given: dict[str, Voice] = {}
            default = [tts_or_voices.default_voice]
        else:
            given = (
                list(tts_or_voices.values()) if isinstance(tts_or_voices, Mapping) else list(tts_or_voices)
            )
            self._tts, self._given = None, {v.name: v for v in given}
            default = list(self._given)
        names = list(voices) if voices is not None else default
        # A voice may name a speaker (``emotivoice:1003``): its pack is served, and it is the default.
        self._default_voice = names[0] if names else ""
        self._names = list(dict.fromkeys(n.split(":", 1)[0] for n in names))
        if not self._names:
            raise InvalidInput("the engine needs at least one voice", param="voices")
        self._backend_fn, self._fallback = backend, fallback
        if directories is None:
            directories = self._tts.directories if self._tts is not None else ()
        self.directories = list(directories)
        self._optional = [n for n in dict.fromkeys(optional_voices) if n not in self._names]
        self.max_batch, self.max_queue = max_batch, max_queue
        self.default_deadline_s = default_deadline_s
        self._owns_cache = isinstance(cache, str)
        self.cache = open_audio_cache(cache)
        self.metrics = EngineMetrics()
        self._pipeline = Pipeline(
            self.metrics, max_wait_ms / 1e3, chunking or ChunkPlan(), self.cache, cache_max_chars
        )
        self.metrics.track_jobs(self._pipeline.running, self._pipeline.waiting)
        self._gc_watch: GcWatch | None = None
        self._state = "new"

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load and warm the voices and start the workers, off the event loop."""
        await asyncio.to_thread(self.start_sync)

    def start_sync(self) -> None:
        """``start`` for synchronous callers. Idempotent while running."""
        if self._state == "running":
            return
        if self._state != "new":
            raise ShuttingDown("this engine was stopped; build a new one")
        served = {name: self._serve(name) for name in self._names}
        for name in self._optional:
            try:
                served[name] = self._serve(name)
            except VoxserveError as e:
                logger.warning("optional voice %s is not served: %s", name, e)
        self._pipeline.start(served)
        # What start-up allocated (modules, weights' Python objects, dictionaries) lives for the
        # process: frozen, full collections stop rescanning it. Measured on the H200 before this:
        # single stalls of 0.4-0.9 s under load with the executor otherwise idle.
        gc.collect()
        gc.freeze()
        self._gc_watch = GcWatch(self.metrics)
        self._state = "running"

    def _serve(self, name: str) -> Served:
        """Load one voice's backends, warm them, and read the batch size and vocoder context."""
        if self._tts is not None:
            voice = self._tts.voice(name)
        elif name in self._given:
            voice = self._given[name]
        else:
            raise NotFound(f"voice {name!r} was not given to the engine; given: {', '.join(self._given)}")
        primary = self._backend_fn(voice) if self._backend_fn else voice.backend
        fallback: Backend | None = None
        if isinstance(self._fallback, str):
            from voxserve.backends.registry import create

            fallback = create(self._fallback, device="cpu")
            fallback.load(voice.pack)
        elif self._fallback is not None:
            fallback = self._fallback(voice)
        # Only conditioned voices pass inputs: backends written for plain voices take none.
        conditioning = {k: v for k, v in voice.warmup_inputs().items() if v is not None}
        # Dictionaries load lazily (jieba's takes ~1 s): the first request must not pay for it.
        warm_text = getattr(voice.frontend, "warmup", None)
        if callable(warm_text):
            warm_text()
        primary.warmup(**conditioning)
        if fallback is not None and fallback is not primary:
            fallback.warmup(**conditioning)
        buckets = getattr(primary, "batch_buckets", None)
        max_batch = self.max_batch or (max(buckets) if buckets else DEFAULT_MAX_BATCH)
        context = receptive_frames(primary, int(voice.config.mel.get("n_mels", 80)))
        logger.info("serving voice %s: max_batch %d, vocoder context %d frames", name, max_batch, context)
        return Served(voice, primary, fallback, context, max_batch)

    async def stop(self, drain: bool = True, timeout: float | None = None) -> None:
        """Refuse new work; with ``drain`` let admitted jobs finish (up to ``timeout`` s), then fail the rest."""
        await asyncio.to_thread(self.stop_sync, drain, timeout)

    def stop_sync(self, drain: bool = True, timeout: float | None = None) -> None:
        """``stop`` for synchronous callers. Idempotent."""
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "draining"
        if drain:
            self._pipeline.drain(timeout)
        self._pipeline.close()
        if self._gc_watch is not None:
            self._gc_watch.close()
        if self._owns_cache and self.cache is not None:
            self.cache.close()
        self._state = "stopped"

    def __enter__(self) -> Engine:
        self.start_sync()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_sync()

    @property
    def ready(self) -> bool:
        """True once voices are loaded and warmed and the engine is not draining."""
        return self._state == "running"

    @property
    def voices(self) -> list[str]:
        """Names of the voices this engine serves (after ``start``)."""
        return list(self._pipeline.served)

    def batch_limit(self, voice: str | None = None) -> int:
        """Items per batched model call for ``voice`` (default: the first served voice); after ``start``."""
        return self._pipeline.served[voice or self._names[0]].max_batch

    def queued(self, stage: str, voice: str | None = None) -> int:
        """Work items waiting in a stage's queue (``frontend``, ``acoustic``, ``vocoder``) for a voice."""
        return self._pipeline.queued(stage, voice or self._names[0])

    def flush_cache(self) -> None:
        """Block until every finished audio handed to the cache has been stored."""
        self._pipeline.flush_cache()

    # --- requests -------------------------------------------------------------------------------

    def submit(self, job: SpeechJob) -> JobStream:
        """Validate and admit ``job`` or raise at once; call it from the event loop that will iterate.

        Raises InvalidInput, NotFound, Overloaded or ShuttingDown. Errors found later (text
        with nothing speakable, a deadline, a failed model call) are raised by the stream.
        """
        try:
            if self._state != "running":
                raise ShuttingDown(
                    "the engine is not started" if self._state == "new" else "the engine is shutting down"
                )
            served, speaker = self._validate(job)
            deadline_s = job.deadline_s if job.deadline_s is not None else self.default_deadline_s
            loop = asyncio.get_running_loop()
            return self._pipeline.admit(job, served, deadline_s, loop, self.max_queue, speaker)
        except VoxserveError as e:
            self.metrics.failures.labels(e.code).inc()
            raise

    def speak(self, job: SpeechJob) -> list[AudioChunk]:
        """Submit ``job`` and collect all its chunks, blocking. For tests and scripts; not inside a running loop."""

        async def collect() -> list[AudioChunk]:
            return [chunk async for chunk in self.submit(job)]

        return asyncio.run(collect())

    def _validate(self, job: SpeechJob) -> tuple[Served, Speaker]:
        if not isinstance(job.text, str):
            raise InvalidInput("input must be a string", param="input")
        if not job.text.strip():
            raise InvalidInput("input is empty", param="input")
        if len(job.text) > MAX_INPUT_CHARS:
            raise InvalidInput(
                f"input is {len(job.text)} characters; the limit is {MAX_INPUT_CHARS} per call", param="input"
            )
        if not isinstance(job.params, SynthesisParams):
            raise InvalidInput(
                "params must be SynthesisParams (build them with SynthesisParams.create)", param="params"
            )
        if job.deadline_s is not None:
            _check_number("deadline_s", job.deadline_s)
        served = self._pipeline.served
        speaker = self.resolve(job.voice)
        if speaker.pack not in served:
            raise NotFound(
                f"voice {speaker.pack!r} is not served here; served: {', '.join(served)}", param="voice"
            )
        return served[speaker.pack], speaker

    def resolve(self, voice: str | None) -> Speaker:
        """The speaker a request's ``voice`` means among the served packs (see ``resolve_voice``); after ``start``."""
        packs = {name: s.voice.pack for name, s in self._pipeline.served.items()}
        return resolve_voice(voice, self._default_voice, packs, self.directories)


class GcWatch:
    """Times every garbage collection into ``voxserve_gc_pause_seconds`` and logs long ones.

    A collection holds the interpreter lock: every thread (HTTP loop, frontend, executor)
    stops, so a long one shows up as a latency spike that no stage explains.
    """

    SLOW_S = 0.1

    def __init__(self, metrics: EngineMetrics) -> None:
        self._pause = metrics.gc_pause
        self._t0 = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        took = time.perf_counter() - self._t0
        self._pause.labels(str(info.get("generation", -1))).observe(took)
        if took > self.SLOW_S:
            logger.warning(
                "garbage collection (generation %s) took %.0f ms", info.get("generation"), took * 1e3
            )

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)


def _check_number(name: str, value: float, allow_zero: bool = False) -> None:
    """A finite positive number (or non-negative with ``allow_zero``), else InvalidInput naming ``name``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise InvalidInput(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} number", param=name
        )
