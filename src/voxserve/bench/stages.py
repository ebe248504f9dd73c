"""One request through a backend, end to end, with optional per-stage timing.

:func:`run_request` is the unit the benchmark times: frontend (text → ids per
sentence), acoustic model (all sentences of the request as one padded batch, as
the engine's ``Voice.render`` does), vocoder, trimming and joining, and encoding
to a WAV file in memory. Without a :class:`StageTimer` nothing extra happens, so
its wall time is the request's latency. With one, the device is synchronized
after every stage and each stage's time is recorded under :data:`STAGES` — for
the breakdown only, since synchronizing costs time of its own.

The acoustic model is split into encoder / variance adaptor / decoder when the
backend can run it in stages: the eager torch reference can (its modules have
``encode``/``adapt``/``decode``), and any backend may offer the same through an
``acoustic_staged(ids, lengths, controls, speaker, style, mark)`` method that
calls ``mark("encoder")``, ``mark("variance_adaptor")``, ``mark("decoder")`` after
synchronizing its device at the end of each stage and returns an
``AcousticOutput`` on the CPU. Other backends get one ``acoustic`` stage.

Sentences are joined without the pauses the engine puts between them, so audio
seconds (and the real-time factor) count speech only. Time to first audio comes
from :func:`engine_first_audio` (the serving engine) or :func:`first_audio` (a
simple streaming path for workloads the engine cannot speak).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.bench.presets import Item, Workload
from voxserve.engine.audio import Audio
from voxserve.models.interface import AcousticOutput, Controls

JOB_DEADLINE_S = 3600.0
"""Deadline of the engine jobs that measure time to first audio: long texts on slow CPUs must not time out."""

STAGES = ("frontend", "encoder", "variance_adaptor", "decoder", "acoustic", "vocoder", "encoding")
"""Stage names in pipeline order; ``acoustic`` is used only for backends that cannot split it."""


class StageTimer:
    """Wall time per stage in ms, accumulated over calls; ``mark(name)`` ends the current stage.

    ``device`` (a torch device) is synchronized before each mark when it is a CUDA device.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.ms: dict[str, float] = {}
        self._t = time.perf_counter()

    def start(self) -> None:
        """Begin a new request: the next mark measures from now."""
        sync(self.device)
        self._t = time.perf_counter()

    def mark(self, stage: str) -> None:
        sync(self.device)
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self._t) * 1e3
        self._t = now


def sync(device: torch.device | str) -> None:
    """Wait for queued work on ``device`` (a no-op on the CPU)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@dataclass
class Rendered:
    """A request's audio and, per sentence, what parity compares (CPU numpy arrays)."""

    samples: np.ndarray
    durations: list[np.ndarray]
    mels: list[np.ndarray]
    encoded_bytes: int

    def audio_s(self, sample_rate: int) -> float:
        return len(self.samples) / sample_rate


def pad(sentences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Symbol id lists → (ids [B, T] int64 padded with 0, lengths [B])."""
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.int64)
    ids = torch.zeros(len(sentences), int(lengths.max()), dtype=torch.int64)
    for row, s in enumerate(sentences):
        ids[row, : len(s)] = torch.tensor(s, dtype=torch.int64)
    return ids, lengths


def acoustic(
    workload: Workload,
    backend: Backend,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    timer: StageTimer | None = None,
) -> AcousticOutput:
    """The backend's acoustic model on one padded batch, split into stages when timed and possible."""
    n = ids.shape[0]
    controls = Controls.neutral(n)
    speaker = workload.speaker(n) if workload.speaker else None
    style = workload.style(n) if workload.style else None
    if timer is None:
        return backend.acoustic(ids, lengths, controls, speaker, style)
    staged = getattr(backend, "acoustic_staged", None)
    if callable(staged):
        out: AcousticOutput = staged(ids, lengths, controls, speaker, style, timer.mark)
        return out
    split = _torch_staged(backend, ids, lengths, controls, speaker, style, timer.mark)
    if split is not None:
        return split
    out = backend.acoustic(ids, lengths, controls, speaker, style)
    timer.mark("acoustic")
    return out


def run_request(
    workload: Workload, backend: Backend, item: Item, timer: StageTimer | None = None
) -> Rendered:
    """Synthesize one request end to end (see the module docstring); timed per stage with ``timer``."""
    mark = timer.mark if timer else _no_mark
    if timer:
        timer.start()
    ids, lengths = pad(workload.sentences(item))
    mark("frontend")
    out = acoustic(workload, backend, ids, lengths, timer)
    wav = backend.vocoder(out.mel[:, : max(1, int(out.mel_lengths.max()))])
    mark("vocoder")
    hop = workload.hop_length
    samples = np.concatenate(
        [wav[row, : int(out.mel_lengths[row]) * hop].numpy() for row in range(ids.shape[0])]
    ).astype(np.float32, copy=False)
    encoded = Audio(samples, workload.sample_rate).wav()
    mark("encoding")
    return Rendered(
        samples=samples,
        durations=[out.durations[r, : int(lengths[r])].numpy() for r in range(ids.shape[0])],
        mels=[out.mel[r, : int(out.mel_lengths[r])].numpy() for r in range(ids.shape[0])],
        encoded_bytes=len(encoded),
    )


def first_audio(
    workload: Workload, backend: Backend, item: Item, first_s: float, context: int
) -> tuple[float, int]:
    """Seconds until the first streamed chunk's PCM bytes exist, and that chunk's byte count.

    The simple streaming path, as the engine streams: frontend of the first sentence
    only, its acoustic model, the vocoder on its first ``first_s`` seconds of frames
    plus ``context`` frames of right context (cut off afterwards), and 16-bit PCM
    encoding. Used when no serving runtime measures time to first audio.
    """
    t0 = time.perf_counter()
    ids, lengths = pad(workload.sentences(item, first_only=True))
    out = acoustic(workload, backend, ids, lengths)
    total = max(1, int(out.mel_lengths[0]))
    frames = min(total, max(1, round(first_s * workload.sample_rate / workload.hop_length)))
    wav = backend.vocoder(out.mel[:, : min(total, frames + context)])
    samples = wav[0, : frames * workload.hop_length].numpy().astype(np.float32, copy=False)
    chunk = Audio(samples, workload.sample_rate).pcm16()
    return time.perf_counter() - t0, len(chunk)


def engine_first_audio(
    workload: Workload, backend: Backend, classes: dict[str, list[Item]], repeats: int
) -> dict[str, list[float]]:
    """Seconds to the first streamed chunk through the serving engine, ``repeats`` times per item, by class.

    Runs one :class:`voxserve.engine.runtime.Engine` (default settings, no audio
    cache) on the already loaded and warmed ``backend``, one stream at a time; each
    job is read to its end before the next starts, so jobs never overlap. Needs a
    voice with a pack and a frontend: raises ``TypeError`` for random-token workloads.
    """
    import asyncio

    from voxserve.engine.interface import SpeechJob
    from voxserve.engine.runtime import Engine
    from voxserve.engine.voice import Voice

    if workload.split is None or any(i.text is None for items in classes.values() for i in items):
        raise TypeError(f"workload {workload.name!r} has no text for the engine to speak")
    voice = Voice(workload.pack, _Loaded(backend))
    engine = Engine([voice])

    async def first(text: str) -> float:
        t0 = time.perf_counter()
        seconds = float("nan")
        job = SpeechJob(text=text, voice=voice.name, stream=True, deadline_s=JOB_DEADLINE_S)
        async for _chunk in engine.submit(job):
            if seconds != seconds:  # the first chunk; the rest is drained untimed
                seconds = time.perf_counter() - t0
        return seconds

    async def measure() -> dict[str, list[float]]:
        return {
            cls: [await first(i.text or "") for i in items for _ in range(repeats)]
            for cls, items in classes.items()
        }

    engine.start_sync()
    try:
        return asyncio.run(measure())
    finally:
        engine.stop_sync()


class _Loaded(Backend):
    """An already loaded and warmed backend handed to ``Voice``/``Engine``: loading and warming are no-ops.

    Everything else (``batch_buckets``, ``receptive_frames``…) is the wrapped backend's.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, attr: str) -> object:
        return getattr(self.inner, attr)

    def load(self, pack: object) -> None:
        """Already loaded by the benchmark."""

    def warmup(self) -> None:
        """Already warmed by the benchmark."""

    def acoustic(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> AcousticOutput:
        return self.inner.acoustic(ids, lengths, controls, speaker, style)

    def vocoder(self, mel: torch.Tensor) -> torch.Tensor:
        return self.inner.vocoder(mel)


def _no_mark(stage: str) -> None:
    """Stage marks cost nothing when no breakdown is asked for."""


def _torch_staged(
    backend: Backend,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    controls: Controls,
    speaker: torch.Tensor | None,
    style: torch.Tensor | None,
    mark: Callable[[str], None],
) -> AcousticOutput | None:
    """The eager torch backend's acoustic model run stage by stage; None for anything else."""
    from voxserve.backends.torch_eager import TorchBackend
    from voxserve.models.emotivoice.acoustic import Acoustic as EmotiVoiceAcoustic
    from voxserve.models.fastspeech2.model import Model as FastSpeech2

    if type(backend) is not TorchBackend:  # a subclass may run something else under the same modules
        return None
    model, dev = backend.acoustic_model, backend.device
    ids, lengths = ids.to(dev), lengths.to(dev)
    controls = Controls(*(c.to(dev) for c in controls))
    with torch.inference_mode():
        if isinstance(model, FastSpeech2):
            hidden, mask = model.encode(ids, lengths)
            mark("encoder")
            frames, mel_lengths, durations, pitch, energy = model.adapt(hidden, mask, controls)
            mark("variance_adaptor")
            mel = model.decode(frames, mel_lengths)
        elif isinstance(model, EmotiVoiceAcoustic) and speaker is not None and style is not None:
            h = model.encode(ids, lengths, speaker.to(dev), style.to(dev))
            mark("encoder")
            a = model.adapt(h, lengths, controls)
            mark("variance_adaptor")
            mel, mel_lengths, durations, pitch, energy = (
                model.decode(a.frames, a.mel_lengths),
                a.mel_lengths,
                a.durations,
                a.pitch,
                a.energy,
            )
        else:
            return None
        out = AcousticOutput(*(t.cpu() for t in (mel, mel_lengths, durations, pitch, energy)))
    mark("decoder")
    return out
