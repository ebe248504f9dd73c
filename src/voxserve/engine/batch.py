"""Shape work of a batch: pad many items into one backend call and split the result per item.

Who calls what: the engine's executor thread takes a batch of work items from the
scheduler and passes their payloads here with the backend to run. Items may come from
different jobs with different controls; outputs come back in input order. The models
mask padding, so an item's result equals its unbatched result (up to the vocoder's
receptive field at a padded end, see ``Vocoder``). This module does not schedule, retry
or touch jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.models.interface import Controls


@dataclass(frozen=True)
class SentenceWork:
    """One sentence for the acoustic model."""

    ids: tuple[int, ...]
    """Symbol ids of the sentence (the pack's table)."""
    controls: tuple[float, ...]
    """Control multipliers in ``Controls._fields`` order."""
    sentence: int = 0
    """Index of the sentence in its job (engine bookkeeping; not used here)."""


@dataclass(frozen=True)
class SentenceOut:
    """The acoustic model's result for one sentence, trimmed to its own length."""

    mel: torch.Tensor
    """[frames, n_mels] float32."""
    durations: np.ndarray
    """[symbols] int64 frames per symbol."""


@dataclass(frozen=True)
class ChunkWork:
    """A span of one sentence's mel for the vocoder, with context frames on each side."""

    mel: torch.Tensor
    """[left + frames + right, n_mels] float32: context, kept frames, context."""
    left: int
    """Context frames before the kept span (their samples are cut)."""
    frames: int
    """Frames whose samples are kept."""
    sentence: int = 0
    """Index of the sentence in its job (engine bookkeeping)."""
    chunk: int = 0
    """Index of the chunk in its sentence (engine bookkeeping)."""


def controls_tuple(controls: dict[str, float]) -> tuple[float, ...]:
    """A controls dict (``SynthesisParams.model_controls``) in ``Controls._fields`` order."""
    return tuple(float(controls[k]) for k in Controls._fields)


def run_acoustic(backend: Backend, works: Sequence[SentenceWork]) -> list[SentenceOut]:
    """Pad the sentences to one [B, T] call (ids 0 past each length) and split mel and durations."""
    lengths = torch.tensor([len(w.ids) for w in works], dtype=torch.int64)
    ids = torch.zeros(len(works), int(lengths.max()), dtype=torch.int64)
    for row, w in enumerate(works):
        ids[row, : len(w.ids)] = torch.tensor(w.ids, dtype=torch.int64)
    ctl = Controls(
        *(
            torch.tensor([w.controls[i] for w in works], dtype=torch.float32)
            for i in range(len(Controls._fields))
        )
    )
    out = backend.acoustic(ids, lengths, ctl)
    results = []
    for row, w in enumerate(works):
        frames = int(out.mel_lengths[row])
        # clone: a kept view would pin the whole padded batch in memory until the job ends
        results.append(
            SentenceOut(
                mel=out.mel[row, :frames].clone(),
                durations=out.durations[row, : len(w.ids)].numpy().astype(np.int64, copy=True),
            )
        )
    return results


def run_vocoder(backend: Backend, works: Sequence[ChunkWork], hop: int) -> list[np.ndarray]:
    """Zero-pad the mel spans to one [B, F, n_mels] call and cut each item's kept samples out."""
    longest = max(w.mel.shape[0] for w in works)
    mel = torch.zeros(len(works), max(longest, 1), works[0].mel.shape[1], dtype=torch.float32)
    for row, w in enumerate(works):
        mel[row, : w.mel.shape[0]] = w.mel
    wav = backend.vocoder(mel)
    return [
        wav[row, w.left * hop : (w.left + w.frames) * hop].numpy().astype(np.float32, copy=True)
        for row, w in enumerate(works)
    ]
