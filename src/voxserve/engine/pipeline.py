"""The engine's execution: worker threads, per-stage dynamic batching, fallback, and each job's progress.

Who calls what: ``Engine`` (runtime.py) builds one ``Pipeline``, ``start``s it with the
voices it serves, ``admit``s validated jobs and, on shutdown, ``drain``s and ``close``s it.
A job flows through three stages, each fed by a ``Scheduler`` queue per (stage, voice):
the frontend (split the text, look the audio up in the cache, phonemize each sentence and
compute its style row),
the acoustic model (one item per sentence) and the vocoder (one item per mel chunk).
Threads: one frontend thread runs text work; one executor thread owns every model call
(models are not thread-safe; torch parallelizes inside each call); one writer thread
stores finished audio in the cache. Chunks reach each job's ``JobStream`` through the
caller's event loop. A stream job runs only its first chunk's work until that chunk is
out, then queues its other sentences, and its vocoder chunks one at a time, in order.
It does not validate requests, load voices or know about HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.engine.batch import (
    ChunkWork,
    SentenceOut,
    SentenceWork,
    controls_tuple,
    run_acoustic,
    run_vocoder,
)
from voxserve.engine.cache import AudioCache, CachedAudio, audio_key
from voxserve.engine.interface import AudioChunk, DeadlineExceeded, Overloaded, ShuttingDown, SpeechJob
from voxserve.engine.metrics import EngineMetrics
from voxserve.engine.scheduler import Scheduler, WorkItem
from voxserve.engine.speakers import Speaker
from voxserve.engine.streaming import Assembler, ChunkPlan, JobStream
from voxserve.engine.voice import Voice
from voxserve.errors import InvalidInput, VoxserveError
from voxserve.frontend.interface import PhoneSequence

logger = logging.getLogger(__name__)

FRONTEND, ACOUSTIC, VOCODER = "frontend", "acoustic", "vocoder"
SLOW_BATCH_S = 0.25
"""A batch that holds the executor longer than this is logged (everything queued waited for it)."""
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
class Job:
    """The record of one admitted job (also the scheduler's ``JobRef``). Changed under the pipeline lock."""

    id: int
    spec: SpeechJob
    served: Served
    controls: tuple[float, ...]
    arrival: float
    deadline: float
    stream: JobStream
    speaker: Speaker
    """Who speaks: the pack and its speaker row or embedding, resolved at submit."""
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
    play_start: float = 0.0
    """Monotonic time the first chunk went out (a stream's listener starts playing then)."""
    sent_s: float = 0.0
    """Seconds of audio handed to the stream so far."""
    started: bool = False
    done: bool = False

    @property
    def priority(self) -> int:
        return self.spec.priority


class Pipeline:
    """Admitted jobs, the stage schedulers and the threads that run them. See the module doc."""

    def __init__(
        self,
        metrics: EngineMetrics,
        max_wait_s: float,
        chunking: ChunkPlan,
        cache: AudioCache | None,
        cache_max_chars: int,
    ) -> None:
        self.metrics, self.chunking = metrics, chunking
        self.cache, self.cache_max_chars = cache, cache_max_chars
        self.served: dict[str, Served] = {}
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._latency_ewma = 1.0
        self._frontend = Scheduler(max_batch=1, max_wait_s=0.0)
        self._models = Scheduler(
            max_batch=self._batch_limit, max_wait_s=max_wait_s, expect=self._expect, max_cost=self._cost_limit
        )
        self._threads: list[threading.Thread] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voxserve-cache")

    def _batch_limit(self, key: Hashable) -> int:
        return self.served[cast(tuple[str, str], key)[1]].max_batch

    def _cost_limit(self, key: Hashable) -> int | None:
        """Mel frames one vocoder call may take (``ChunkPlan.call_s`` at the voice's frame rate)."""
        stage, name = cast(tuple[str, str], key)
        if stage != VOCODER or self.chunking.call_s is None:
            return None
        cfg = self.served[name].voice.config
        return max(1, round(self.chunking.call_s * cfg.sample_rate / cfg.hop_length))

    def _expect(self, key: Hashable) -> bool:
        """Whether more model work for ``key`` is on its way, so its queue should wait out the batch window.

        Acoustic work comes from text queued for the frontend; vocoder work from queued
        acoustic work. With nothing upstream (one request alone, or the tail of a burst) the
        batch runs at once; the text being processed right now notifies when its work lands.
        Called by the model scheduler under its lock; reads the frontend queue (a leaf lock).
        """
        stage, voice = cast(tuple[str, str], key)
        if stage == ACOUSTIC:
            return self._frontend.pending(key=(FRONTEND, voice)) > 0
        return self._models.pending(key=(ACOUSTIC, voice)) > 0

    # --- control (engine side) ----------------------------------------------------------------------

    def start(self, served: dict[str, Served]) -> None:
        self.served = served
        for target, name in (
            (self._frontend_loop, "voxserve-frontend"),
            (self._model_loop, "voxserve-executor"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def admit(
        self,
        spec: SpeechJob,
        served: Served,
        deadline_s: float,
        loop: asyncio.AbstractEventLoop,
        max_queue: int,
        speaker: Speaker | None = None,
    ) -> JobStream:
        """Register a validated job and queue its first work, or raise ``Overloaded`` when full.

        ``speaker`` is the job's resolved voice (None: the voice's default speaker).
        """
        now = time.monotonic()
        with self._lock:
            if len(self._jobs) >= max_queue:
                retry = max(1.0, round(self._latency_ewma, 1))
                raise Overloaded(f"{len(self._jobs)} requests are in progress; retry in {retry:g} s", retry)
            controls = controls_tuple(spec.params.model_controls(served.voice.config.prosody_presets))
            deadline = now + deadline_s
            # The callbacks run later, once ``job`` is bound.
            stream = JobStream(
                loop, deadline, lambda: self._cancel(job), lambda: self._fail(job, _deadline())
            )
            speaker = speaker or Speaker(served.voice.name, voice_id=served.voice.name)
            job = Job(next(self._ids), spec, served, controls, now, deadline, stream, speaker)
            self._jobs[job.id] = job
        self._frontend.add([WorkItem(job, (FRONTEND, served.voice.name), _SPLIT, first=spec.stream)])
        return job.stream

    def drain(self, timeout: float | None) -> None:
        """Wait until every admitted job has finished (or ``timeout`` seconds)."""
        with self._idle:
            self._idle.wait_for(lambda: not self._jobs, timeout)

    def close(self) -> None:
        """Fail what is left with ``ShuttingDown``, stop the threads and flush cache writes."""
        with self._lock:
            left = list(self._jobs.values())
        for job in left:
            self._fail(job, ShuttingDown("the engine is shutting down"))
        self._frontend.close()
        self._models.close()
        for thread in self._threads:
            thread.join()
        self._writer.shutdown(wait=True)

    def flush_cache(self) -> None:
        """Block until every finished audio handed to the cache writer is stored."""
        self._writer.submit(lambda: None).result()

    def queued(self, stage: str, voice: str) -> int:
        """Work items waiting in one stage's queue for one voice."""
        return (self._frontend if stage == FRONTEND else self._models).pending(key=(stage, voice))

    def running(self) -> float:
        with self._lock:
            return float(sum(job.started for job in self._jobs.values()))

    def waiting(self) -> float:
        with self._lock:
            return float(sum(not job.started for job in self._jobs.values()))

    # --- frontend thread -------------------------------------------------------------------------

    def _frontend_loop(self) -> None:
        while (batch := self._frontend.next_batch()) is not None:
            self._expire(batch.expired)
            for item in batch.items:
                job = cast(Job, item.job)
                if job.done:
                    continue
                try:
                    if item.payload == _SPLIT:
                        self._split(job)
                    else:
                        self._phonemize(job, cast(int, item.payload))
                except VoxserveError as e:
                    self._fail(job, e)
                except Exception as e:  # a frontend bug fails its job, not the engine
                    logger.exception("text processing failed")
                    self._fail(job, VoxserveError(f"text processing failed: {e}"))

    def _split(self, job: Job) -> None:
        voice = job.served.voice
        sentences = voice.frontend.split(job.spec.text)
        if not sentences:
            raise InvalidInput(
                "input has nothing to speak (only punctuation, symbols or emoji)", param="input"
            )
        key = None
        if self.cache is not None and len(job.spec.text) <= self.cache_max_chars:
            key = audio_key(job.speaker.cache_key(), sentences, job.spec.params)
            hit = self.cache.get(key)
            (self.metrics.cache_hits if hit else self.metrics.cache_misses).inc()
            if hit is not None:
                chars = hit.chars if job.spec.timestamps else ()
                with self._lock:
                    if not job.done:
                        self._emit(job, AudioChunk(hit.samples, hit.sample_rate, 0, True, chars))
                return
        cfg = voice.config
        with self._lock:
            if job.done:
                return
            job.sentences, job.seqs, job.cache_key = sentences, [None] * len(sentences), key
            job.assembler = Assembler(
                len(sentences),
                cfg.sample_rate,
                cfg.hop_length,
                job.spec.params,
                job.spec.stream,
                job.spec.timestamps,
                keep=key is not None,  # only audio going to the cache is kept whole
            )
        self._frontend.add(
            WorkItem(job, (FRONTEND, voice.name), k, first=job.spec.stream and k == 0)
            for k in range(len(sentences))
        )

    def _phonemize(self, job: Job, k: int) -> None:
        voice = job.served.voice
        seq = voice.frontend.phonemize(job.sentences[k])
        # The style row (a style encoder's forward for prompt-styled packs; cached) is text work too.
        style = voice.style_vector(job.spec.params, seq.text)
        speaker = voice.speaker_value(job.speaker)
        work = SentenceWork(tuple(voice.ids(seq)), job.controls, k, speaker, style)
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
            items = [it for it in batch.items if not cast(Job, it.job).done]
            if not items:
                continue
            stage, name = cast(tuple[str, str], batch.key)
            now = time.monotonic()
            with self._lock:
                for it in items:
                    cast(Job, it.job).started = True
            waited = self.metrics.queue_time.labels(stage).observe
            for it in items:
                waited(now - it.enqueued)
            results = self._run_stage(stage, self.served[name], [it.payload for it in items])
            took = time.monotonic() - now
            self.metrics.batch_time.labels(stage).observe(took)
            if took > SLOW_BATCH_S:  # every queued request waited behind it: worth a line in the log
                sizes = [
                    len(cast(SentenceWork, it.payload).ids)
                    if stage == ACOUSTIC
                    else int(cast(ChunkWork, it.payload).mel.shape[0])
                    for it in items
                ]
                unit = "symbols" if stage == ACOUSTIC else "frames"
                logger.warning(
                    "slow %s batch: %d items (%d-%d %s) took %.0f ms",
                    stage,
                    len(items),
                    min(sizes),
                    max(sizes),
                    unit,
                    took * 1e3,
                )
            for it, result in zip(items, results, strict=True):
                job = cast(Job, it.job)
                if isinstance(result, VoxserveError):
                    self._fail(job, VoxserveError(str(result)))  # one exception object per stream
                    continue
                try:
                    with self._lock:
                        if job.done:
                            continue
                        if stage == ACOUSTIC:
                            self._on_acoustic(job, cast(SentenceWork, it.payload), cast(SentenceOut, result))
                        else:
                            self._on_vocoded(job, cast(ChunkWork, it.payload), result)
                except Exception as e:  # a bookkeeping bug fails its job, not the engine
                    logger.exception("handling a %s result failed", stage)
                    self._fail(job, VoxserveError(f"{stage} result handling failed: {e}"))

    def _run_stage(self, stage: str, served: Served, payloads: list[object]) -> list[object]:
        """One batched call on the primary backend, retried on the fallback if it raises RuntimeError.

        Returns one result per payload, or the same ``VoxserveError`` for each if both failed.
        """
        observe = self.metrics.batch_size.labels(stage).observe

        def run(backend: Backend) -> list[object]:
            if stage == ACOUSTIC:
                return list(run_acoustic(backend, cast(list[SentenceWork], payloads), observe))
            works = cast(list[ChunkWork], payloads)
            return list(run_vocoder(backend, works, served.voice.config.hop_length, served.context, observe))

        error: Exception
        try:
            return run(served.primary)
        except RuntimeError as e:  # includes torch.cuda.OutOfMemoryError
            error = e
            if served.fallback is not None:
                reason = "oom" if isinstance(e, torch.cuda.OutOfMemoryError) else "error"
                logger.warning(
                    "%s batch of %d failed (%s); retrying on the fallback", stage, len(payloads), e
                )
                self.metrics.fallbacks.labels(stage, reason).inc()
                try:
                    return run(served.fallback)
                except Exception as e2:
                    error = e2
        except Exception as e:
            error = e
        logger.error("%s batch of %d failed: %s", stage, len(payloads), error, exc_info=error)
        failed = VoxserveError(f"{stage} failed: {error}")
        return [failed] * len(payloads)

    # --- job progress (under self._lock) ---------------------------------------------------------

    def _on_acoustic(self, job: Job, work: SentenceWork, out: SentenceOut) -> None:
        k, served, stream = work.sentence, job.served, job.spec.stream
        cfg = served.voice.config
        frames_per_s = cfg.sample_rate / cfg.hop_length
        spans = self.chunking.spans(int(out.mel.shape[0]), frames_per_s, served.context, stream, first=k == 0)
        key = (VOCODER, served.voice.name)
        items = [
            WorkItem(
                job,
                key,
                ChunkWork(out.mel[s.lo : s.hi], s.start - s.lo, s.end - s.start, k, c),
                first=stream and k == 0 and c == 0,
                cost=s.hi - s.lo,
            )
            for c, s in enumerate(spans)
        ]
        seq, assembler = job.seqs[k], job.assembler
        if seq is None or assembler is None:
            raise VoxserveError(f"sentence {k} came back before it was phonemized")
        chunks = assembler.expect(k, seq, out.durations, len(spans))
        self._release(job, items)
        for chunk in chunks:
            self._emit(job, chunk)

    def _on_vocoded(self, job: Job, work: ChunkWork, samples: object) -> None:
        if job.assembler is None:
            raise VoxserveError("a chunk came back for a job with no sentences")
        job.chunk_queued = False
        for chunk in job.assembler.add(work.sentence, work.chunk, cast(np.ndarray, samples)):
            self._emit(job, chunk)
        self._release(job, [])  # after emitting: the next chunk's due time counts this one's audio

    def _release(self, job: Job, items: list[WorkItem]) -> None:
        """Queue model work. A stream holds its other sentences back until its first chunk is out, and
        queues its vocoder chunks one at a time, in order: batching a stream's growing chunks together
        would make each wait for the largest, so chunk 2 would come no sooner than the whole sentence.
        """
        if not job.spec.stream:
            self._models.add(items)
            return
        # Later work of a stream is due when its listener would run out of audio: the earliest
        # due runs first, so a new stream's second chunk (0.4 s of slack) does not wait behind
        # old streams' chunks that have seconds of audio still playing.
        due = job.play_start + job.sent_s if job.first_out else None
        for it in items:
            it.due = due
        now = []
        for it in items:
            if cast(tuple[str, str], it.key)[0] == VOCODER:
                job.chunks.append(it)
            elif it.first or job.first_out:
                now.append(it)
            else:
                job.held.append(it)
        if job.chunks and not job.chunk_queued:
            job.chunks.sort(
                key=lambda it: (cast(ChunkWork, it.payload).sentence, cast(ChunkWork, it.payload).chunk)
            )
            nxt = job.chunks.pop(0)
            nxt.due = due
            now.append(nxt)
            job.chunk_queued = True
        if now:
            self._models.add(now)

    def _emit(self, job: Job, chunk: AudioChunk) -> None:
        """Account for ``chunk`` and hand it to the job's stream (last, so a reader sees the metrics)."""
        now = time.monotonic()
        label = str(job.spec.stream).lower()
        job.sent_s += len(chunk.samples) / chunk.sample_rate
        if not job.first_out:
            job.first_out, job.play_start = True, now
            self.metrics.time_to_first_audio.labels(label).observe(now - job.arrival)
            if job.held:
                for it in job.held:
                    it.due = now + job.sent_s
                self._models.add(job.held)
                job.held = []
        if chunk.final:
            latency = now - job.arrival
            self.metrics.latency.labels(label).observe(latency)
            self.metrics.jobs.labels("ok").inc()
            self._latency_ewma = 0.8 * self._latency_ewma + 0.2 * latency
            if job.assembler is not None and job.assembler.samples_out:
                self.metrics.real_time_factor.observe(latency * chunk.sample_rate / job.assembler.samples_out)
            if job.assembler is not None and job.assembler.audio is not None:
                samples, chars = job.assembler.audio
                if job.cache_key is not None and self.cache is not None:
                    audio = CachedAudio(samples, chunk.sample_rate, chars)
                    self._writer.submit(self.cache.put, job.cache_key, audio)
            self._finish(job)
        job.stream.push(chunk)

    def _finish(self, job: Job) -> None:
        job.done = True
        self._jobs.pop(job.id, None)
        self._idle.notify_all()

    # --- ending jobs (any thread) ----------------------------------------------------------------

    def _fail(self, job: Job, error: VoxserveError) -> None:
        """End ``job`` with ``error`` (raised from its stream) and drop its queued work; counted by error code."""
        if self._end(job):
            self.metrics.failures.labels(error.code).inc()
            self.metrics.jobs.labels("failed").inc()
            job.stream.push(error)

    def _cancel(self, job: Job) -> None:
        if self._end(job):
            self.metrics.jobs.labels("cancelled").inc()
            job.stream.push(None)

    def _end(self, job: Job) -> bool:
        with self._lock:
            if job.done:
                return False
            self._finish(job)
        self._frontend.cancel(job.id)
        self._models.cancel(job.id)
        return True

    def _expire(self, items: list[WorkItem]) -> None:
        for job in {id(it.job): cast(Job, it.job) for it in items}.values():
            self._fail(job, _deadline())


def _deadline() -> DeadlineExceeded:
    return DeadlineExceeded("the request did not finish before its deadline")
