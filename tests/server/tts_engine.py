"""A tiny ServingEngine over ``TTS`` for server tests that must not depend on the real engine's timing.

One worker thread renders one sentence at a time; ``max_queue`` jobs may be admitted
(the rest get Overloaded), ``delay_s`` slows each sentence down so tests can catch a
request in flight, and ``cancelled`` counts jobs dropped by ``cancel()``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from voxserve.engine.audio import Timing
from voxserve.engine.interface import AudioChunk, DeadlineExceeded, Overloaded, ShuttingDown, SpeechJob
from voxserve.errors import InvalidInput


class _Stream:
    def __init__(self, engine: TTSEngine, job: SpeechJob) -> None:
        self.engine, self.job = engine, job
        self.cancelled = False
        self.t0 = time.monotonic()
        deadline = job.deadline_s if job.deadline_s is not None else engine.deadline_s
        self.deadline = self.t0 + deadline if deadline else float("inf")

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.engine.cancelled += 1

    async def __aiter__(self):
        eng, job, p = self.engine, self.job, self.job.params
        loop = asyncio.get_running_loop()
        try:
            voice = eng.tts.voice(job.voice)
            sentences = voice.frontend.split(job.text)
            if not sentences:
                raise InvalidInput("input has nothing to speak", param="input")
            offset = 0.0
            for i, sentence in enumerate(sentences):
                if self.cancelled:
                    return
                if time.monotonic() > self.deadline:
                    raise DeadlineExceeded("deadline passed")

                def render(s=sentence):
                    if eng.delay_s:
                        time.sleep(eng.delay_s)
                    return eng.tts.synthesize(
                        s,
                        voice=job.voice,
                        speed=p.speed,
                        pitch=p.pitch,
                        energy=p.energy,
                        volume=p.volume,
                        emotion=p.emotion,
                    )

                audio = await loop.run_in_executor(eng.pool, render)
                if time.monotonic() > self.deadline:
                    raise DeadlineExceeded("deadline passed")
                chars = tuple(Timing(t.text, t.start + offset, t.end + offset) for t in audio.chars)
                offset += audio.duration
                yield AudioChunk(audio.samples, audio.sample_rate, i, i == len(sentences) - 1, chars)
        finally:
            with eng.lock:
                eng.active -= 1


class TTSEngine:
    """ServingEngine protocol over TTS, for tests."""

    def __init__(self, tts, max_queue: int = 8, deadline_s: float | None = None, delay_s: float = 0.0):
        self.tts, self.max_queue, self.deadline_s, self.delay_s = tts, max_queue, deadline_s, delay_s
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.lock = threading.Lock()
        self.active = 0
        self.cancelled = 0
        self.stopping = False
        self._ready = False

    async def start(self) -> None:
        self._ready = True

    async def stop(self, drain: bool = True) -> None:
        self.stopping = True
        while drain and self.active:
            await asyncio.sleep(0.01)

    @property
    def ready(self) -> bool:
        return self._ready and not self.stopping

    def submit(self, job: SpeechJob) -> _Stream:
        if self.stopping:
            raise ShuttingDown("stopping")
        if not job.text.strip():
            raise InvalidInput("input is empty", param="input")
        self.tts.voice(job.voice)  # NotFound for unknown voices, at once
        with self.lock:
            if self.active >= self.max_queue:
                raise Overloaded("queue full", retry_after=1.0)
            self.active += 1
        return _Stream(self, job)
