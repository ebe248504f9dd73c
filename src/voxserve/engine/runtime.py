"""The serving engine: admission, per-stage dynamic batching, streaming, fallback, caching, metrics.

``Engine`` implements ``ServingEngine``. A job flows through three stages, each fed by a
``Scheduler`` queue per (stage, voice): the frontend (split the text, look the audio up in
the cache, phonemize each sentence), the acoustic model (one item per sentence) and the
vocoder (one item per mel chunk). Threads: the caller's event loop submits and iterates;
one frontend thread runs text work; one executor thread owns every model call (models are
not thread-safe; torch parallelizes inside each call); one writer thread stores finished
audio in the cache. Results go back to each job's ``JobStream`` via the event loop.

A stream job runs only the work of its first chunk (first sentence, first short vocoder
chunk) until that chunk is out; then the rest of its work is released. It does not load
voices on demand: the voices it serves are loaded and warmed by ``start``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

import torch

from voxserve.backends.interface import Backend
from voxserve.engine.batch import ChunkWork, SentenceWork, controls_tuple, run_acoustic, run_vocoder
from voxserve.engine.cache import AudioCache, CachedAudio, audio_key, open_audio_cache
from voxserve.engine.controls import SynthesisParams
from voxserve.engine.interface import AudioChunk, DeadlineExceeded, Overloaded, ShuttingDown, SpeechJob
from voxserve.engine.metrics import EngineMetrics
from voxserve.engine.scheduler import Scheduler, WorkItem
from voxserve.engine.streaming import Assembler, ChunkPlan, JobStream, receptive_frames
from voxserve.engine.tts import MAX_INPUT_CHARS, TTS
from voxserve.engine.voice import Voice
from voxserve.errors import InvalidInput, NotFound, VoxserveError
from voxserve.frontend.interface import PhoneSequence

logger = logging.getLogger(__name__)

FRONTEND, ACOUSTIC, VOCODER = "frontend", "acoustic", "vocoder"
_SPLIT = -1  # frontend payload: split the job's text (else: the index of a sentence to phonemize)


@dataclass
class Served:
    """One voice as the engine runs it."""

    voice: Voice
    primary: Backend
    fallback: Backend | None
    context: int
    """Vocoder context frames on each side of a chunk (its receptive field)."""
    max_batch: int
    """Items per batched model call for this voice."""


@dataclass(eq=False)
class _Job:
    """The engine's record of one admitted job (also the scheduler's ``JobRef``)."""

    id: int
    spec: SpeechJob
    served: Served
    controls: tuple[float, ...]
    arrival: float
    deadline: float
    stream: JobStream | None = None
    sentences: list[str] = field(default_factory=list)
    seqs: list[PhoneSequence | None] = field(default_factory=list)
    assembler: Assembler | None = None
    cache_key: str | None = None
    held: list[WorkItem] = field(default_factory=list)
    """A stream's acoustic work waiting for its first chunk to be out."""
    chunks: list[WorkItem] = field(default_factory=list)
    """A stream's vocoder work not yet queued, in audio order."""
    chunk_queued: bool = False
    """A stream has a vocoder chunk queued or running."""
    first_out: bool = False
    started: bool = False
    done: bool = False

    @property
    def priority(self) -> int:
        return self.spec.priority


class Engine:
    """Serves the voices of a ``TTS`` (or given ``Voice``s) to many concurrent requests. See module doc.

    ``backend(voice)`` returns the loaded backend to use for a voice (default: the voice's
    own). ``fallback`` is a backend name (built on the CPU and loaded per voice) or a
    function like ``backend``; a batch whose primary call raises ``RuntimeError`` (CUDA OOM
    included) is retried there. ``max_batch`` defaults to the largest of the backend's
    ``batch_buckets`` if it has them, else 16. ``max_queue`` bounds admitted jobs: beyond it
    ``submit`` raises ``Overloaded``. ``cache`` is None, "memory", a redis:// URL or an
    ``AudioCache``; only texts up to ``cache_max_chars`` characters are cached.
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
    ) -> None:
        _positive("max_wait_ms", max_wait_ms, allow_zero=True)
        _positive("default_deadline_s", default_deadline_s)
        for name, value in (
            ("max_queue", max_queue),
            ("max_batch", max_batch),
            ("cache_max_chars", cache_max_chars),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInput(f"{name} must be a positive integer, got {value!r}", param=name)
        self._tts = tts_or_voices if isinstance(tts_or_voices, TTS) else None
        given = tts_or_voices.values() if isinstance(tts_or_voices, Mapping) else tts_or_voices
        self._given: dict[str, Voice] = {} if self._tts is not None else {v.name: v for v in given}  # type: ignore[union-attr]
        self._names = list(voices) if voices is not None else _default_names(tts_or_voices)
        self._backend_fn, self._fallback_spec = backend, fallback
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_ms / 1e3, max_queue
        self.default_deadline_s = default_deadline_s
        self._owns_cache = isinstance(cache, str)
        self.cache = open_audio_cache(cache)
        self.cache_max_chars = cache_max_chars
        self.chunking = chunking or ChunkPlan()
        self.metrics = EngineMetrics()
        self.metrics.track_jobs(self._count_running, self._count_waiting)
        self._served: dict[str, Served] = {}
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        self._state = "new"
        self._latency_ewma = 1.0
        self._frontend = Scheduler(max_batch=1, max_wait_s=0.0)
        self._models = Scheduler(
            max_batch=lambda key: self._served[key[1]].max_batch, max_wait_s=self.max_wait_s
        )
        self._threads: list[threading.Thread] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voxserve-cache")

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load and warm the voices and start the worker threads (off the event loop)."""
        await asyncio.to_thread(self.start_sync)

    def start_sync(self) -> None:
        """``start`` for synchronous callers. Idempotent while running."""
        with self._lock:
            if self._state != "new":
                if self._state == "running":
                    return
                raise ShuttingDown("this engine was stopped; build a new one")
        for name in self._names:
            self._served[name] = self._serve(name)
        for target, name in (
            (self._frontend_loop, "voxserve-frontend"),
            (self._model_loop, "voxserve-executor"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        with self._lock:
            self._state = "running"

    def _serve(self, name: str) -> Served:
        if self._tts is not None:
            voice = self._tts.voice(name)
        elif name in self._given:
            voice = self._given[name]
        else:
            raise NotFound(f"voice {name!r} was not given to the engine; given: {', '.join(self._given)}")
        primary = self._backend_fn(voice) if self._backend_fn else voice.backend
        fallback = None
        if isinstance(self._fallback_spec, str):
            from voxserve.backends.registry import create

            fallback = create(self._fallback_spec, device="cpu")
            fallback.load(voice.pack)
        elif self._fallback_spec is not None:
            fallback = self._fallback_spec(voice)
        primary.warmup()
        if fallback is not None and fallback is not primary:
            fallback.warmup()
        buckets = getattr(primary, "batch_buckets", None)
        max_batch = self.max_batch or (max(buckets) if buckets else 16)
        context = receptive_frames(primary, int(voice.config.mel.get("n_mels", 80)))
        logger.info("serving voice %s: max_batch %d, vocoder context %d frames", name, max_batch, context)
        return Served(voice, primary, fallback, context, max_batch)

    async def stop(self, drain: bool = True, timeout: float | None = None) -> None:
        """Refuse new work; with ``drain`` let admitted jobs finish (up to ``timeout`` s), else fail them."""
        await asyncio.to_thread(self.stop_sync, drain, timeout)

    def stop_sync(self, drain: bool = True, timeout: float | None = None) -> None:
        with self._lock:
            if self._state in ("new", "stopped"):
                self._state = "stopped"
                return
            self._state = "draining"
            if drain:
                self._idle.wait_for(lambda: not self._jobs, timeout)
            left = list(self._jobs.values())
        for job in left:
            self._fail(job, ShuttingDown("the engine is shutting down"), "shutdown")
        self._frontend.close()
        self._models.close()
        for thread in self._threads:
            thread.join()
        self._writer.shutdown(wait=True)
        if self._owns_cache and self.cache is not None:
            self.cache.close()
        with self._lock:
            self._state = "stopped"

    def __enter__(self) -> Engine:
        self.start_sync()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop_sync()

    @property
    def ready(self) -> bool:
        """True once voices are loaded and warmed and the engine is not draining."""
        return self._state == "running"

    def batch_limit(self, voice: str | None = None) -> int:
        """Items per batched model call for ``voice`` (default: the first served voice); after ``start``."""
        return self._served[voice or self._names[0]].max_batch

    @property
    def voices(self) -> list[str]:
        """Names of the voices this engine serves (after ``start``)."""
        return list(self._served)

    # --- requests ------------------------------------------------------------------------------

    def submit(self, job: SpeechJob) -> JobStream:
        """Validate and admit ``job`` or raise at once; call from the event loop that will iterate."""
        if self._state != "running":
            raise ShuttingDown(
                "the engine is not running" if self._state == "new" else "the engine is shutting down"
            )
        served = self._validate(job)
        deadline_s = job.deadline_s if job.deadline_s is not None else self.default_deadline_s
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        with self._lock:
            if self._state != "running":
                raise ShuttingDown("the engine is shutting down")
            if len(self._jobs) >= self.max_queue:
                self.metrics.failures.labels("overloaded").inc()
                retry = max(1.0, round(self._latency_ewma, 1))
                raise Overloaded(f"{len(self._jobs)} requests are in progress; retry in {retry:g} s", retry)
            controls = controls_tuple(job.params.model_controls(served.voice.config.prosody_presets))
            state = _Job(next(self._ids), job, served, controls, now, now + deadline_s)
            state.stream = JobStream(
                loop,
                state.deadline,
                on_cancel=lambda: self._cancel(state),
                on_timeout=lambda: self._fail(state, _deadline(), "deadline"),
            )
            self._jobs[state.id] = state
        self._frontend.add([WorkItem(state, (FRONTEND, served.voice.name), _SPLIT, first=job.stream)])
        return state.stream

    def speak(self, job: SpeechJob) -> list[AudioChunk]:
        """Submit and collect every chunk, blocking (a helper for tests and scripts; not from a running loop)."""

        async def collect() -> list[AudioChunk]:
            return [chunk async for chunk in self.submit(job)]

        return asyncio.run(collect())

    def _validate(self, job: SpeechJob) -> Served:
        if not isinstance(job.text, str):
            raise InvalidInput("input must be a string", param="input")
        if not job.text.strip():
            raise InvalidInput("input is empty", param="input")
        if len(job.text) > MAX_INPUT_CHARS:
            raise InvalidInput(
                f"input is {len(job.text)} characters; the limit is {MAX_INPUT_CHARS} per call", param="input"
            )
        if not isinstance(job.params, SynthesisParams):
            raise InvalidInput("params must be SynthesisParams (use SynthesisParams.create)", param="params")
        if job.deadline_s is not None:
            _positive("deadline_s", job.deadline_s)
        name = job.voice or self._names[0]
        if name not in self._served:
            raise NotFound(f"unknown voice {name!r}; served: {', '.join(self._served)}", param="voice")
        return self._served[name]

    # --- frontend thread -------------------------------------------------------------------------

    def _frontend_loop(self) -> None:
        while (batch := self._frontend.next_batch()) is not None:
            self._expire(batch.expired)
            for item in batch.items:
                job: _Job = item.job  # type: ignore[assignment]
                try:
                    if item.payload == _SPLIT:
                        self._split(job)
                    else:
                        self._phonemize(job, int(item.payload))  # type: ignore[call-overload]
                except VoxserveError as e:
                    self._fail(job, e, "invalid" if isinstance(e, InvalidInput) else "error")
                except Exception as e:  # a frontend bug fails its job, not the engine
                    logger.exception("text processing failed")
                    self._fail(job, VoxserveError(f"text processing failed: {e}"), "error")

    def _split(self, job: _Job) -> None:
        voice = job.served.voice
        sentences = voice.frontend.split(job.spec.text)
        if not sentences:
            raise InvalidInput(
                "input has nothing to speak (only punctuation, symbols or emoji)", param="input"
            )
        key = None
        if self.cache is not None and len(job.spec.text) <= self.cache_max_chars:
            key = audio_key(voice.name, sentences, job.spec.params)
            hit = self.cache.get(key)
            (self.metrics.cache_hits if hit else self.metrics.cache_misses).inc()
            if hit is not None:
                with self._lock:
                    if not job.done:
                        self._emit(job, AudioChunk(hit.samples, hit.sample_rate, 0, True, _chars(job, hit)))
                return
        with self._lock:
            if job.done:
                return
            job.sentences, job.seqs, job.cache_key = sentences, [None] * len(sentences), key
            cfg = voice.config
            job.assembler = Assembler(
                len(sentences),
                cfg.sample_rate,
                cfg.hop_length,
                job.spec.params,
                job.spec.stream,
                job.spec.timestamps,
            )
        self._frontend.add(
            WorkItem(job, (FRONTEND, voice.name), k, first=job.spec.stream and k == 0)
            for k in range(len(sentences))
        )

    def _phonemize(self, job: _Job, k: int) -> None:
        voice = job.served.voice
        seq = voice.frontend.phonemize(job.sentences[k])
        work = SentenceWork(tuple(voice.ids(seq)), job.controls, k)
        with self._lock:
            if not job.done:
                job.seqs[k] = seq
                self._release(
                    job, [WorkItem(job, (ACOUSTIC, voice.name), work, first=job.spec.stream and k == 0)]
                )

    # --- executor thread -------------------------------------------------------------------------

    def _model_loop(self) -> None:
        while (batch := self._models.next_batch()) is not None:
            self._expire(batch.expired)
            items = [it for it in batch.items if not it.job.done]  # type: ignore[attr-defined]
            if not items:
                continue
            stage, name = batch.key  # type: ignore[misc]
            now = time.monotonic()
            with self._lock:
                for it in items:
                    it.job.started = True  # type: ignore[attr-defined]
            for it in items:
                self.metrics.queue_time.labels(stage).observe(now - it.enqueued)
            results = self._run_stage(stage, self._served[name], [it.payload for it in items])
            if isinstance(results, VoxserveError):
                for job in {id(it.job): it.job for it in items}.values():
                    self._fail(job, results, "error")  # type: ignore[arg-type]
                continue
            with self._lock:
                for it, result in zip(items, results, strict=True):
                    job = it.job
                    if job.done:  # type: ignore[attr-defined]
                        continue
                    if stage == ACOUSTIC:
                        self._on_acoustic(job, it.payload, result)  # type: ignore[arg-type]
                    else:
                        self._on_vocoded(job, it.payload, result)  # type: ignore[arg-type]

    def _run_stage(self, stage: str, served: Served, payloads: list) -> list | VoxserveError:  # type: ignore[type-arg]
        """One batched call on the primary backend, retried on the fallback if it raises RuntimeError."""

        observe = self.metrics.batch_size.labels(stage).observe

        def run(backend: Backend) -> list:  # type: ignore[type-arg]
            if stage == ACOUSTIC:
                return run_acoustic(backend, payloads, observe)
            return run_vocoder(backend, payloads, served.voice.config.hop_length, served.context, observe)

        try:
            return run(served.primary)
        except RuntimeError as e:  # includes torch.cuda.OutOfMemoryError
            if served.fallback is None:
                logger.exception("%s batch of %d failed", stage, len(payloads))
                return VoxserveError(f"{stage} failed: {e}")
            reason = "oom" if isinstance(e, torch.cuda.OutOfMemoryError) else "error"
            logger.warning(
                "%s batch of %d failed (%s: %s); retrying on the fallback", stage, len(payloads), reason, e
            )
            self.metrics.fallbacks.labels(stage, reason).inc()
            try:
                return run(served.fallback)
            except Exception as e2:
                logger.exception("%s batch failed on the fallback too", stage)
                return VoxserveError(f"{stage} failed: {e2}")
        except Exception as e:
            logger.exception("%s batch of %d failed", stage, len(payloads))
            return VoxserveError(f"{stage} failed: {e}")

    # --- job bookkeeping (under self._lock) ------------------------------------------------------

    def _on_acoustic(self, job: _Job, work: SentenceWork, out: object) -> None:
        k, served, stream = work.sentence, job.served, job.spec.stream
        mel, durations = out.mel, out.durations  # type: ignore[attr-defined]
        cfg = served.voice.config
        spans = self.chunking.spans(
            int(mel.shape[0]), cfg.sample_rate / cfg.hop_length, served.context, stream, first=k == 0
        )
        items = [
            WorkItem(
                job,
                (VOCODER, served.voice.name),
                ChunkWork(mel[s.lo : s.hi], s.start - s.lo, s.end - s.start, k, c),
                first=stream and k == 0 and c == 0,
            )
            for c, s in enumerate(spans)
        ]
        seq = job.seqs[k]
        assert job.assembler is not None and seq is not None  # both set before the sentence was queued
        chunks = job.assembler.expect(k, seq, durations, len(spans))
        self._release(job, items)
        for chunk in chunks:
            self._emit(job, chunk)

    def _on_vocoded(self, job: _Job, work: ChunkWork, samples: object) -> None:
        assert job.assembler is not None
        job.chunk_queued = False
        self._release(job, [])
        for chunk in job.assembler.add(work.sentence, work.chunk, samples):  # type: ignore[arg-type]
            self._emit(job, chunk)

    def _release(self, job: _Job, items: list[WorkItem]) -> None:
        """Queue model work. A stream holds its other sentences back until its first chunk is out, and
        queues its vocoder chunks one at a time, in order: batching a stream's growing chunks together
        would make each wait for the largest, so chunk 2 would come no sooner than the whole sentence.
        """
        if not job.spec.stream:
            self._models.add(items)
            return
        now = []
        for it in items:
            if it.key[0] == VOCODER:  # type: ignore[index]
                job.chunks.append(it)
            elif it.first or job.first_out:
                now.append(it)
            else:
                job.held.append(it)
        if job.chunks and not job.chunk_queued:
            job.chunks.sort(key=lambda it: (it.payload.sentence, it.payload.chunk))  # type: ignore[attr-defined]
            now.append(job.chunks.pop(0))
            job.chunk_queued = True
        if now:
            self._models.add(now)

    def _emit(self, job: _Job, chunk: AudioChunk) -> None:
        now = time.monotonic()
        label = str(job.spec.stream).lower()
        if not job.first_out:
            job.first_out = True
            self.metrics.time_to_first_audio.labels(label).observe(now - job.arrival)
            if job.held:
                self._models.add(job.held)
                job.held = []
        assert job.stream is not None
        job.stream.push(chunk)
        if not chunk.final:
            return
        latency = now - job.arrival
        self.metrics.latency.labels(label).observe(latency)
        self.metrics.jobs.labels("ok").inc()
        self._latency_ewma = 0.8 * self._latency_ewma + 0.2 * latency
        if job.assembler is not None and job.assembler.audio is not None:
            samples, chars = job.assembler.audio
            if len(samples):
                self.metrics.real_time_factor.observe(latency * chunk.sample_rate / len(samples))
            if job.cache_key is not None and self.cache is not None:
                self._writer.submit(
                    self.cache.put, job.cache_key, CachedAudio(samples, chunk.sample_rate, chars)
                )
        self._finish(job)

    def _finish(self, job: _Job) -> None:
        job.done = True
        self._jobs.pop(job.id, None)
        self._idle.notify_all()

    def _fail(self, job: _Job, error: VoxserveError, reason: str) -> None:
        """End ``job`` with ``error`` (raised from its stream) and drop its queued work. Any thread."""
        with self._lock:
            if job.done:
                return
            self._finish(job)
        self._frontend.cancel(job.id)
        self._models.cancel(job.id)
        self.metrics.failures.labels(reason).inc()
        self.metrics.jobs.labels("failed").inc()
        assert job.stream is not None
        job.stream.push(error)

    def _cancel(self, job: _Job) -> None:
        with self._lock:
            if job.done:
                return
            self._finish(job)
        self._frontend.cancel(job.id)
        self._models.cancel(job.id)
        self.metrics.jobs.labels("cancelled").inc()
        assert job.stream is not None
        job.stream.push(None)

    def _expire(self, items: list[WorkItem]) -> None:
        for job in {id(it.job): it.job for it in items}.values():
            self._fail(job, _deadline(), "deadline")  # type: ignore[arg-type]

    def _count_running(self) -> float:
        with self._lock:
            return float(sum(job.started for job in self._jobs.values()))

    def _count_waiting(self) -> float:
        with self._lock:
            return float(sum(not job.started for job in self._jobs.values()))


def _deadline() -> DeadlineExceeded:
    return DeadlineExceeded("the request did not finish before its deadline")


def _chars(job: _Job, hit: CachedAudio) -> tuple:  # type: ignore[type-arg]
    return hit.chars if job.spec.timestamps else ()


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise InvalidInput(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} number", param=name
        )


def _default_names(source: TTS | Mapping[str, Voice] | Sequence[Voice]) -> list[str]:
    if isinstance(source, TTS):
        return [source.default_voice]
    if isinstance(source, Mapping):
        return [v.name for v in source.values()]
    return [v.name for v in source]
