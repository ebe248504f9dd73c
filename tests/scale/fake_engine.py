"""A ServingEngine for the Ray tests whose timing the test controls (loaded in Ray replicas by import path).

Text ``hold:NAME`` sends one chunk, then waits until the file ``NAME`` exists in
``$VOXSERVE_FAKE_ENGINE_DIR`` and sends the last chunk (after ``HOLD_LIMIT_S`` without the file it
fails the stream, so a broken test cannot hang). ``break-engine`` makes the engine stop being
ready (as a failed engine would). Any other text gets two chunks at once. ``stop``
records ``stopped-<pid>-drain=<bool>`` in that directory, after waiting for streams in flight
when draining. The audio is a quiet tone; nothing here loads a model.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from voxserve.engine.interface import AudioChunk, DeadlineExceeded, ShuttingDown, SpeechJob

RATE = 24000
CHUNK = (0.1 * np.sin(np.arange(2400) * 2 * np.pi * 440 / RATE)).astype(np.float32)
HOLD_LIMIT_S = 40.0
DIR_ENV = "VOXSERVE_FAKE_ENGINE_DIR"


class FakeStream:
    def __init__(self, engine: FakeEngine, job: SpeechJob) -> None:
        self.engine, self.job = engine, job
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    async def __aiter__(self) -> AsyncIterator[AudioChunk]:
        self.engine.active += 1
        try:
            yield AudioChunk(CHUNK, RATE, 0, False)
            if self.job.text.startswith("hold:"):
                flag = self.engine.dir / self.job.text[len("hold:") :]
                waited = 0.0
                while not flag.exists() and not self.cancelled:
                    if waited > HOLD_LIMIT_S:
                        raise DeadlineExceeded(f"{flag.name} never appeared")
                    await asyncio.sleep(0.02)
                    waited += 0.02
            if not self.cancelled:
                yield AudioChunk(CHUNK, RATE, 1, True)
        finally:
            self.engine.active -= 1


class FakeEngine:
    def __init__(self) -> None:
        self.dir = Path(os.environ[DIR_ENV])
        self.state = "new"
        self.active = 0

    async def start(self) -> None:
        self.state = "running"

    async def stop(self, drain: bool = True) -> None:
        self.state = "draining"
        while drain and self.active:
            await asyncio.sleep(0.02)
        self.state = "stopped"
        (self.dir / f"stopped-{os.getpid()}-drain={drain}").touch()

    def submit(self, job: SpeechJob) -> FakeStream:
        if self.state != "running":
            raise ShuttingDown("the fake engine is not running")
        if job.text == "break-engine":
            self.state = "broken"  # no longer ready: the replica's health check must fail
            raise ShuttingDown("the fake engine broke on request")
        return FakeStream(self, job)

    @property
    def ready(self) -> bool:
        return self.state == "running"


def make_engine(config: object) -> FakeEngine:
    """The ``engine_factory`` the tests name: ``fake_engine:make_engine``."""
    return FakeEngine()
