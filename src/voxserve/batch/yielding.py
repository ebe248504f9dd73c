"""How a batch job gives way to interactive requests: every model call it makes waits for an idle engine.

``YieldingTTS`` wraps the ``TTS`` a job renders with. Its voices render through a twin of each
voice whose backend is a ``GatedBackend``: before **each** model call the job's thread waits
until the engine holds no request (``Gate``), and the calls are kept short:

- the sentences of a render call go in slices sized so the acoustic model takes about
  ``slice_ms`` (from the measured time per sentence; at least one sentence, at most ``max_slice``);
- the vocoder (most of the work on a CPU) runs on time chunks of the slice's mel, with the
  vocoder's receptive field as context on both sides, in calls of one power-of-two length sized
  to about ``slice_ms``; the kept samples are the ones a whole call gives (up to float rounding),
  since each chunk sees all the context that reaches its kept frames and nothing is padded.

A request that arrives while a call runs waits for at most that one call, about ``slice_ms``,
whatever the device: tens of sentences per call on a GPU (large batches still), one sentence
and a fraction of its frames on two CPU cores. When the engine is idle the calls run back to
back. ``stop`` (cancel, shutdown) raises ``Stopped`` at the next call. Nothing here knows about
jobs or HTTP; worker.py decides when to stop and what to do with the result.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads with the first job, not with the server's routes
    import torch

DEFAULT_SLICE_MS = 50.0
"""Target duration of one gated model call, milliseconds."""
MAX_SLICE = 64
"""Most sentences in one slice."""
POLL_S = 0.005
"""How often a waiting job checks whether the engine is idle, seconds."""


class Stopped(Exception):
    """Raised inside a job's render call when its stop flag is set; unwinds the runner at once."""


class Gate:
    """Lets the job's next model call start only while the engine is idle; ``load()`` counts its requests."""

    def __init__(self, load: Callable[[], float] | None, poll_s: float = POLL_S) -> None:
        self.load = load
        self.poll_s = poll_s
        self.waits = 0
        """Model calls that found the engine busy and waited (counted when the wait begins)."""
        self.waited_s = 0.0
        """Total time calls waited for the engine (how much the jobs yielded), updated while waiting."""

    def wait(self, stop: threading.Event) -> None:
        """Block until the engine holds no request; raise ``Stopped`` if ``stop`` is set meanwhile."""
        if stop.is_set():
            raise Stopped
        if self.load is None or self.load() <= 0:
            return
        self.waits += 1
        last = time.monotonic()
        while True:
            stop.wait(self.poll_s)
            now = time.monotonic()
            self.waited_s += now - last
            last = now
            if stop.is_set():
                raise Stopped
            if self.load() <= 0:
                return


class YieldingTTS:
    """A ``TTS`` look-alike for the chapter runner whose voices make only short, gated model calls.

    ``on_slice(n)`` hears of each finished slice of ``n`` sentences; ``clock`` times the calls.
    Everything but ``voice`` is the wrapped TTS's.
    """

    def __init__(
        self,
        tts: Any,
        gate: Gate,
        stop: threading.Event,
        slice_ms: float = DEFAULT_SLICE_MS,
        max_slice: int = MAX_SLICE,
        clock: Callable[[], float] = time.perf_counter,
        on_slice: Callable[[int], None] | None = None,
    ) -> None:
        self.tts, self.gate, self.stop, self.clock = tts, gate, stop, clock
        self.budget_s = slice_ms / 1e3
        self.max_slice = max_slice
        self.on_slice = on_slice
        self.slice = 1
        """Sentences per slice now (starts at one: the first call measures the cost)."""
        self.calls = 0
        """Gated model calls made so far."""
        self._twins: dict[int, Any] = {}

    def voice(self, name: str | None = None) -> _YieldingVoice:
        return _YieldingVoice(self._twin(self.tts.voice(name)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tts, name)

    def _twin(self, voice: Any) -> Any:
        """A shallow copy of ``voice`` whose backend is gated (the original serves others untouched)."""
        twin = self._twins.get(id(voice))
        if twin is None:
            twin = copy.copy(voice)
            twin.backend = GatedBackend(voice.backend, self, int(voice.config.mel.get("n_mels", 80)))
            self._twins[id(voice)] = twin
        return twin

    def render(self, twin: Any, seqs: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """``twin.render`` slice by slice; per-row arguments (speakers, styles) are sliced alike."""
        out: list[Any] = []
        start = 0
        while start < len(seqs):
            end = start + self.slice
            part_kwargs = {k: v[start:end] if isinstance(v, list | tuple) else v for k, v in kwargs.items()}
            part = seqs[start:end]
            out.extend(twin.render(part, *args, **part_kwargs))
            start += len(part)
            if self.on_slice is not None:
                self.on_slice(len(part))
        return out

    def gated(self, call: Callable[[], Any]) -> tuple[Any, float]:
        """Run one model call once the engine is idle; returns its result and its duration (seconds)."""
        self.gate.wait(self.stop)
        t0 = self.clock()
        result = call()
        self.calls += 1
        return result, max(self.clock() - t0, 1e-6)


class _YieldingVoice:
    """What the runner gets for a voice: ``render`` slices through ``YieldingTTS``; all else is the voice's."""

    def __init__(self, twin: Any) -> None:
        self._twin = twin

    def render(self, seqs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        owner: YieldingTTS = self._twin.backend.owner
        return owner.render(self._twin, list(seqs), *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._twin, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_twin":
            object.__setattr__(self, name, value)
        else:  # e.g. the runner raising max_batch: the twin renders, so it must see it
            setattr(self._twin, name, value)


class GatedBackend:
    """A backend whose every call waits for an idle engine and takes about the owner's time budget.

    ``acoustic`` adapts the owner's sentences per slice; ``vocoder`` cuts the frame axis into
    chunks with the vocoder's receptive field as context each side (read on first use).
    """

    def __init__(self, backend: Any, owner: YieldingTTS, n_mels: int) -> None:
        self.backend, self.owner, self.n_mels = backend, owner, n_mels
        self.frame_cost_s: float | None = None
        """Measured seconds per mel frame and batch row of the vocoder (None until the first call)."""
        self._context: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def acoustic(self, ids: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        owner = self.owner
        out, took = owner.gated(partial(self.backend.acoustic, ids, *args, **kwargs))
        per_sentence = took / max(int(ids.shape[0]), 1)
        owner.slice = max(1, min(owner.max_slice, int(owner.budget_s / per_sentence + 1e-6)))
        return out

    def call_frames(self, rows: int, context: int) -> int:
        """Mel frames per vocoder call of ``rows`` rows so that it takes about the budget.

        A power of two (few distinct shapes: backends cache their kernels per shape), and at
        least four times the context (kept frames at least half of each call). Unbounded before
        the first measurement: the first call runs whole and measures.
        """
        if self.frame_cost_s is None:
            return 1 << 30
        fits = self.owner.budget_s / (self.frame_cost_s * rows)
        size = 1 << max(int(fits), 1).bit_length() - 1
        return max(size, 1 << (4 * context - 1).bit_length())

    def vocoder(self, mel: torch.Tensor) -> torch.Tensor:
        """The waveform of ``mel`` [B, F, n_mels], in gated calls of equal length when one would be too long.

        Every call but a whole one reads the same number of frames: the last is aligned to the
        end (re-reading frames already done) rather than shortened. Each kept frame has the
        vocoder's receptive field of real input on both sides, so no kept sample changes.
        """
        import torch

        if self._context is None:
            from voxserve.engine.streaming import receptive_frames

            self._context = receptive_frames(self.backend, self.n_mels)
        context, rows, frames = self._context, int(mel.shape[0]), int(mel.shape[1])
        floor = 1 << (4 * context - 1).bit_length()
        if self.frame_cost_s is not None and rows > 1 and frames > floor:
            # Even the shortest chunk of all rows would overrun: fewer rows per call (rows are independent).
            cap = max(1, int(self.owner.budget_s / (self.frame_cost_s * floor)))
            if cap < rows:
                return torch.cat([self.vocoder(mel[i : i + cap]) for i in range(0, rows, cap)], dim=0)
        size = self.call_frames(rows, context)
        if frames <= size:
            out, took = self.owner.gated(partial(self.backend.vocoder, mel))
            self.frame_cost_s = took / max(rows * frames, 1)
            return out
        parts: list[torch.Tensor] = []
        start = 0
        while start < frames:
            lo = max(0, min(start - context, frames - size))
            hi = lo + size
            end = frames if hi >= frames else hi - context
            wav, took = self.owner.gated(partial(self.backend.vocoder, mel[:, lo:hi]))
            self.frame_cost_s = took / (rows * size)
            hop = int(wav.shape[1]) // size
            parts.append(wav[:, (start - lo) * hop : (end - lo) * hop])
            start = end
        return torch.cat(parts, dim=1)
