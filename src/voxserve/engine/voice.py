"""A loaded voice: its pack, frontend and backend, and batched synthesis of many sentences.

``Voice.render`` is where batching across sentences happens: sequences are
sorted by length, cut into batches, padded, and run through the acoustic model
and vocoder once per batch. Each item's output equals its unbatched output (the
models mask padding), which the tests check.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.engine.controls import SynthesisParams
from voxserve.engine.speakers import Speaker
from voxserve.errors import PackError
from voxserve.frontend.interface import Frontend, PhoneSequence
from voxserve.models.interface import Controls
from voxserve.packs.pack import Pack


def frontend_for(pack: Pack) -> Frontend:
    """The frontend named by the pack's config."""
    name = pack.config.frontend
    if name == "mandarin-baker":
        from voxserve.frontend.mandarin import MandarinFrontend

        return MandarinFrontend("baker")
    if name == "emotivoice":
        from voxserve.frontend.mixed import MixedFrontend

        return MixedFrontend("emotivoice")
    raise PackError(f"{pack.path}: unknown frontend {name!r} in config.json")


@dataclass
class Rendered:
    """One sentence's waveform (trimmed to its own length) and per-symbol frame durations."""

    samples: np.ndarray
    durations: np.ndarray


class Voice:
    """One pack ready to synthesize: frontend, symbol ids, style source and a loaded backend.

    ``style_device`` is where a style encoder runs (default: the backend's device, else the CPU).
    """

    def __init__(
        self, pack: Pack, backend: Backend, max_batch: int = 16, style_device: str | None = None
    ) -> None:
        from voxserve.engine.conditioning import style_source

        self.pack = pack
        self.config = pack.config
        self.frontend = frontend_for(pack)
        self.symbol_ids = {s: i for i, s in enumerate(pack.config.symbols)}
        self.backend = backend
        self.max_batch = max_batch
        backend.load(pack)
        self.style = style_source(pack, style_device or _device_of(backend))

    @property
    def name(self) -> str:
        return self.config.name

    def ids(self, seq: PhoneSequence) -> list[int]:
        try:
            return [self.symbol_ids[s] for s in seq.symbols]
        except KeyError as e:
            raise PackError(f"frontend emitted symbol {e.args[0]!r} not in pack {self.name!r}") from None

    def speaker_value(self, speaker: Speaker | None) -> int | np.ndarray | None:
        """This pack's speaker input for one row (None speaker: the pack's default)."""
        from voxserve.engine.conditioning import speaker_value

        return speaker_value(self.pack, speaker or Speaker(self.name))

    def style_vector(self, params: SynthesisParams, sentence: str) -> np.ndarray | None:
        """This pack's style row for ``sentence`` with ``params`` (None for packs without style)."""
        return self.style.vector(params, sentence)

    def warmup_inputs(self) -> dict[str, torch.Tensor | None]:
        """Neutral ``speaker`` and ``style`` for ``Backend.warmup`` (None where the model takes none)."""
        from voxserve.engine.conditioning import neutral_inputs

        return neutral_inputs(self.pack, self.style)

    def render(
        self,
        seqs: list[PhoneSequence],
        controls: dict[str, float],
        stages: dict[str, float] | None = None,
        speakers: Sequence[int | np.ndarray | None] | None = None,
        styles: Sequence[np.ndarray | None] | None = None,
    ) -> list[Rendered]:
        """Synthesize each sequence; outputs keep the input order. Adds stage times (ms) to ``stages``.

        ``speakers`` and ``styles`` (one per sequence, from ``speaker_value`` and
        ``style_vector``) condition each row; omitted, every row gets the pack's defaults.
        """
        from voxserve.engine.batch import conditioning_tensors

        stages = stages if stages is not None else {}
        hop = self.config.hop_length
        if speakers is None:
            speakers = [self.speaker_value(None)] * len(seqs)
        if styles is None:
            styles = [self.style_vector(SynthesisParams(), seq.text) for seq in seqs]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i].symbols))
        out: list[Rendered | None] = [None] * len(seqs)
        for start in range(0, len(order), self.max_batch):
            chunk = order[start : start + self.max_batch]
            id_lists = [self.ids(seqs[i]) for i in chunk]
            lengths = torch.tensor([len(x) for x in id_lists], dtype=torch.int64)
            ids = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.int64)
            for row, x in enumerate(id_lists):
                ids[row, : len(x)] = torch.tensor(x, dtype=torch.int64)
            ctl = Controls(*(torch.full((len(chunk),), float(controls[k])) for k in Controls._fields))
            speaker, style = conditioning_tensors([speakers[i] for i in chunk], [styles[i] for i in chunk])

            t0 = time.perf_counter()
            ac = self.backend.acoustic(ids, lengths, ctl, speaker, style)
            t1 = time.perf_counter()
            frames = int(ac.mel_lengths.max())
            wav = self.backend.vocoder(ac.mel[:, : max(frames, 1)])
            t2 = time.perf_counter()
            stages["acoustic"] = stages.get("acoustic", 0.0) + (t1 - t0) * 1e3
            stages["vocoder"] = stages.get("vocoder", 0.0) + (t2 - t1) * 1e3

            for row, i in enumerate(chunk):
                n = int(ac.mel_lengths[row]) * hop
                out[i] = Rendered(
                    samples=wav[row, :n].numpy().astype(np.float32, copy=False),
                    durations=ac.durations[row, : int(lengths[row])].numpy(),
                )
        return [r for r in out if r is not None]


def _device_of(backend: Backend) -> str:
    device = getattr(backend, "device", "cpu")
    return str(device) if str(device).startswith(("cpu", "cuda")) else "cpu"
