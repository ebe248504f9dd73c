"""The tensor-only contracts every model family implements.

Who calls what: a backend (``voxserve.backends``) builds a model from a pack's
config and weights, then calls ``forward`` (or the stage methods, for per-stage
timing and per-stage backends) with padded batches. Models never see text,
files or dicts: everything in and out is a tensor, which is what lets the same
module run eagerly, under CUDA graphs, or as exported ONNX.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class Controls(NamedTuple):
    """Per-item prosody controls, each a float tensor of shape [B]; 1.0 is the model's default.

    ``duration`` multiplies predicted phone durations (2.0 = twice as long, i.e. slower).
    ``pitch`` multiplies the predicted pitch contour (the model's own f0 ratio).
    ``pitch_range`` scales the contour's deviation around its per-utterance mean.
    ``energy`` multiplies the predicted energy.
    """

    duration: torch.Tensor
    pitch: torch.Tensor
    pitch_range: torch.Tensor
    energy: torch.Tensor

    @staticmethod
    def neutral(batch: int, device: torch.device | str = "cpu") -> Controls:
        one = torch.ones(batch, device=device)
        return Controls(one, one, one, one)


class AcousticOutput(NamedTuple):
    """What an acoustic model returns for a padded batch.

    mel: [B, F, n_mels] log-mel frames, zero past ``mel_lengths``.
    mel_lengths: [B] int64 frames per item.
    durations: [B, T] int64 frames per input symbol (0 on padding).
    pitch: [B, T] predicted per-symbol pitch after controls (model units).
    energy: [B, T] predicted per-symbol energy after controls (model units).
    """

    mel: torch.Tensor
    mel_lengths: torch.Tensor
    durations: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor


class AcousticModel(nn.Module):
    """Symbols → mel frames. Subclasses implement ``forward``.

    ``ids`` is [B, T] int64 padded with 0, ``lengths`` [B] int64.
    ``speaker`` is [B] int64 (table row) or [B, D] float (an embedding);
    ``style`` is [B, S] float or None for models without learned style.
    Must be deterministic in eval mode (no dropout at inference).
    """

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> AcousticOutput:
        raise NotImplementedError


class Vocoder(nn.Module):
    """Mel frames → waveform. ``forward(mel [B, F, n_mels]) -> wav [B, F * hop]`` in [-1, 1].

    Frames past an item's length are padding; the caller trims each waveform to
    ``mel_lengths * hop``. Audio near the padded end may differ from an unbatched
    run by the receptive field only inside the trimmed region's last few ms.
    """

    hop_length: int

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
