"""Streaming: how sentences' mels are cut into vocoder chunks, and how pieces become AudioChunks.

Who calls what: after the acoustic model has run a sentence, the engine asks a
``ChunkPlan`` for its spans and queues one vocoder item per span, each with
``context`` extra frames on both sides (the vocoder's receptive field) whose samples
are cut afterwards, so concatenated chunks equal vocoding the whole mel at once. As
pieces finish (in any order) the engine hands them to the job's ``Assembler``, which
emits ``AudioChunk``s in order: for a stream, one per piece as soon as it is next in
line; otherwise one final chunk built by ``engine.tts.assemble``. ``JobStream`` is what
``submit`` returns: an async iterator fed from worker threads through the event loop.
Nothing here runs models or touches the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.engine.audio import Timing
from voxserve.engine.controls import SynthesisParams
from voxserve.engine.interface import AudioChunk, DeadlineExceeded
from voxserve.engine.tts import assemble, char_timings, sentence_pause
from voxserve.engine.voice import Rendered
from voxserve.errors import InvalidInput
from voxserve.frontend.interface import PhoneSequence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Span:
    """Frames ``[start, end)`` of a sentence's mel are kept; ``[lo, hi)`` go to the vocoder."""

    start: int
    end: int
    lo: int
    hi: int


@dataclass(frozen=True)
class ChunkPlan:
    """Chunk sizes in seconds of audio; frames follow from each voice's sample rate and hop."""

    first_s: float = 0.4
    """A stream's first chunk (seconds): short, so the first sound comes early."""
    growth: float = 2.0
    """Each next chunk of a stream's first sentence is this many times longer (ratio >= 1)."""
    max_s: float = 3.2
    """Longest stream chunk (seconds); later sentences of a stream are cut at this size."""
    whole_s: float = 8.0
    """Non-stream sentences longer than this are vocoded in pieces of this size (seconds)."""
    call_s: float | None = 20.0
    """Most audio one batched vocoder call makes (seconds, context included; at least one chunk;
    None: only the batch size bounds it). The engine runs one call at a time, so this bounds how
    long a new stream's first chunk can wait behind other streams' later chunks."""

    def __post_init__(self) -> None:
        for name in ("first_s", "max_s", "whole_s", "call_s"):
            value = getattr(self, name)
            if name == "call_s" and value is None:
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InvalidInput(f"chunking.{name} must be a positive number of seconds", param=name)
        if not self.growth >= 1.0:
            raise InvalidInput("chunking.growth must be >= 1", param="growth")
        if self.max_s < self.first_s:
            raise InvalidInput("chunking.max_s must be >= chunking.first_s", param="max_s")

    def spans(self, frames: int, frames_per_s: float, context: int, stream: bool, first: bool) -> list[Span]:
        """Cut ``frames`` mel frames. ``first``: this is a stream's first sentence (sizes grow from first_s).

        A remainder shorter than half the first chunk is merged into the chunk before it,
        so no call vocodes a sliver.
        """

        def size(seconds: float) -> int:
            return max(1, round(seconds * frames_per_s))

        if frames <= 0:
            return []
        if not stream:
            sizes = _repeat(size(self.whole_s))
        elif first:
            sizes = _grow(size(self.first_s), self.growth, size(self.max_s))
        else:
            sizes = _repeat(size(self.max_s))
        min_tail = max(1, size(self.first_s) // 2)
        spans: list[Span] = []
        start = 0
        while start < frames:
            end = min(start + next(sizes), frames)
            if frames - end < min_tail:
                end = frames
            spans.append(Span(start, end, max(0, start - context), min(frames, end + context)))
            start = end
        return spans


def _repeat(n: int) -> Iterator[int]:
    while True:
        yield n


def _grow(first: int, growth: float, largest: int) -> Iterator[int]:
    n = float(first)
    while True:
        yield min(round(n), largest)
        n *= growth


def receptive_frames(backend: Backend, n_mels: int) -> int:
    """Context frames a chunk needs on each side: the backend's (or its vocoder's) own figure, else probed."""
    for obj in (backend, getattr(backend, "vocoder_model", None)):
        value = getattr(obj, "receptive_frames", None)
        if isinstance(value, int) and value >= 0:
            return value
    return probe_receptive_frames(backend.vocoder, n_mels)


def probe_receptive_frames(
    vocode: Callable[[torch.Tensor], torch.Tensor], n_mels: int, reach: int = 64
) -> int:
    """Measure how far one mel frame's change spreads in the vocoder's output, plus a margin of 2 frames.

    Perturbs the middle frame of a random mel and finds the furthest changed sample
    on either side. Exact for any deterministic vocoder whose effect does not vanish
    numerically; returns ``reach`` (and logs) when the spread reaches the probe's edge or
    nothing changed.
    """
    gen = torch.Generator().manual_seed(0)
    frames = 2 * reach + 1
    # Unit-variance frames: packs store normalized log-mels; a silent input could hide the spread.
    mel = torch.randn(1, frames, n_mels, generator=gen)
    base = vocode(mel)[0]
    moved = mel.clone()
    moved[0, reach] += 1.0
    changed = torch.nonzero(vocode(moved)[0] != base).flatten()
    if changed.numel() == 0:
        logger.warning("vocoder output did not react to the probe; using %d context frames", reach)
        return reach
    hop = base.shape[0] // frames
    spread = max(reach - int(changed.min()) // hop, int(changed.max()) // hop - reach)
    if spread + 2 >= reach:
        logger.warning("vocoder receptive field reaches the probe edge; using %d context frames", reach)
        return reach
    return spread + 2


class Assembler:
    """Turns one job's finished vocoder pieces into AudioChunks in order, with pauses, volume and timings.

    Not thread-safe: the engine calls it under its lock. ``expect`` announces a
    sentence (after its acoustic run) and how many pieces it has; ``add`` delivers a piece.
    Both return the chunks that became ready (with character timings if ``timestamps``). After the final chunk, ``audio`` holds the
    whole job's samples and character timings (for the audio cache).
    """

    def __init__(
        self,
        n_sentences: int,
        sample_rate: int,
        hop: int,
        params: SynthesisParams,
        stream: bool,
        timestamps: bool = False,
        keep: bool = True,
    ) -> None:
        self.n = n_sentences
        self.timestamps = timestamps
        self.keep = keep
        """Keep the whole job's audio and timings for ``audio`` (the cache wants them); a stream
        without it neither copies its chunks again nor times characters nobody asked for."""
        self.samples_out = 0
        """Samples emitted so far."""
        self.sample_rate = sample_rate
        self.hop = hop
        self.params = params
        self.stream = stream
        self._seqs: list[PhoneSequence | None] = [None] * n_sentences
        self._durations: list[np.ndarray | None] = [None] * n_sentences
        self._counts: list[int | None] = [None] * n_sentences
        self._pieces: dict[tuple[int, int], np.ndarray] = {}
        self._cursor = (0, 0)
        self._index = 0
        self._offset = 0
        self._pending_chars: list[Timing] = []
        self._kept: list[np.ndarray] = []
        self._chars: list[Timing] = []
        self.audio: tuple[np.ndarray, tuple[Timing, ...]] | None = None

    def expect(self, k: int, seq: PhoneSequence, durations: np.ndarray, pieces: int) -> list[AudioChunk]:
        self._seqs[k], self._durations[k] = seq, durations
        if pieces == 0:  # a sentence with no frames still ends with its pause
            self._pieces[(k, 0)] = np.zeros(0, dtype=np.float32)
            pieces = 1
        self._counts[k] = pieces
        return self._drain()

    def add(self, k: int, c: int, samples: np.ndarray) -> list[AudioChunk]:
        self._pieces[(k, c)] = samples
        return self._drain()

    def _drain(self) -> list[AudioChunk]:
        return self._drain_stream() if self.stream else self._drain_whole()

    def _drain_whole(self) -> list[AudioChunk]:
        counts = self._counts
        if any(n is None for n in counts) or len(self._pieces) < sum(n or 0 for n in counts):
            return []
        rendered = [
            Rendered(
                np.concatenate([self._pieces[(k, c)] for c in range(counts[k] or 0)]),
                cast(np.ndarray, self._durations[k]),
            )
            for k in range(self.n)
        ]
        seqs = cast(list[PhoneSequence], self._seqs)  # all announced: none is None
        audio = assemble(seqs, rendered, self.sample_rate, self.hop, self.params)
        self.audio = (audio.samples, tuple(audio.chars))
        self.samples_out = len(audio.samples)
        chars = tuple(audio.chars) if self.timestamps else ()
        return [AudioChunk(audio.samples, self.sample_rate, 0, True, chars)]

    def _drain_stream(self) -> list[AudioChunk]:
        out: list[AudioChunk] = []
        while True:
            k, c = self._cursor
            count = self._counts[k]
            if count is None or (k, c) not in self._pieces:
                return out
            if c == 0 and (self.timestamps or self.keep):
                self._pending_chars.extend(self._sentence_chars(k))
            parts = [self._pieces.pop((k, c))]
            last = c == count - 1
            final = last and k == self.n - 1
            if last and not final:
                parts.append(np.zeros(self._pause(k), dtype=np.float32))
            samples = np.concatenate(parts) if len(parts) > 1 else parts[0]
            if self.params.volume != 1.0:
                samples = np.clip(samples * self.params.volume, -1.0, 1.0).astype(np.float32)
            self._offset += len(samples)
            end = self._offset / self.sample_rate + 1e-6
            chars = tuple(t for t in self._pending_chars if final or t.end <= end)
            self._pending_chars = [t for t in self._pending_chars if not (final or t.end <= end)]
            out.append(
                AudioChunk(samples, self.sample_rate, self._index, final, chars if self.timestamps else ())
            )
            self.samples_out += len(samples)
            if self.keep:
                self._kept.append(samples)
                self._chars.extend(chars)
            self._index += 1
            self._cursor = (k + 1, 0) if last else (k, c + 1)
            if final:
                if self.keep:
                    self.audio = (np.concatenate(self._kept), tuple(self._chars))
                return out

    def _sentence_chars(self, k: int) -> list[Timing]:
        """Sentence k's character timings on the job's clock (it starts at the current offset)."""
        seq, durations = self._seqs[k], self._durations[k]
        assert seq is not None and durations is not None  # set by expect before the cursor gets here
        return char_timings(seq, durations, self.hop / self.sample_rate, self._offset / self.sample_rate)

    def _pause(self, k: int) -> int:
        """Samples of silence after sentence k: exactly what assemble puts between two sentences."""
        seq = self._seqs[k]
        assert seq is not None
        return sentence_pause(seq.text, self.params.speed, self.sample_rate)


_END = object()


class JobStream:
    """The ``SpeechStream`` that ``Engine.submit`` returns; worker threads ``push`` into it.

    Iteration yields chunks in order and ends after the final one; an engine-side
    failure is raised from iteration. If the job's deadline passes while waiting for
    the next chunk, iteration raises ``DeadlineExceeded`` and the engine drops the job's
    remaining work. After ``cancel`` iteration ends quietly.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        on_cancel: Callable[[], None],
        on_timeout: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._deadline = deadline
        self._on_cancel = on_cancel
        self._on_timeout = on_timeout
        self._finished = False

    def push(self, item: AudioChunk | BaseException | None) -> None:
        """Hand a chunk, an error, or None (the job was cancelled) to the consumer. Any thread."""
        # RuntimeError: the consumer's loop is closed, so nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, _END if item is None else item)

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self

    async def __anext__(self) -> AudioChunk:
        if self._finished:
            raise StopAsyncIteration
        try:
            # Work that finished in time is delivered even if the consumer is late.
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            try:
                item = await asyncio.wait_for(self._queue.get(), max(self._deadline - time.monotonic(), 0.0))
            except asyncio.TimeoutError:
                self._finished = True
                self._on_timeout()
                raise DeadlineExceeded("the request did not finish before its deadline") from None
        if item is _END:
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        assert isinstance(item, AudioChunk)
        self._finished = item.final
        return item

    def cancel(self) -> None:
        if not self._finished:
            self._finished = True
            self._on_cancel()
