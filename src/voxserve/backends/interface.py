"""How a voice's stages run: the one seam between the engine and a runtime.

Who calls what: the engine builds a backend for a loaded pack, calls ``load``
once, ``warmup`` once before serving, then ``acoustic`` and ``vocoder`` with
padded batches from any number of requests. Tensors crossing this seam are CPU
torch tensors (ids int64, everything else float32); a backend moves them to its
device and back. A backend knows nothing about text or HTTP.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from voxserve.models.interface import AcousticOutput, Controls
from voxserve.packs.pack import Pack


class Backend(ABC):
    """Runs one pack's acoustic model and vocoder."""

    name: str = "backend"
    """Short name used on the command line and in metrics (``torch``, ``cuda``, ``onnxruntime``)."""

    @abstractmethod
    def load(self, pack: Pack) -> None:
        """Build the stages from the pack's weights. Called once, before anything else."""

    def warmup(self, speaker: torch.Tensor | None = None, style: torch.Tensor | None = None) -> None:
        """Run representative shapes once so the first request pays no one-time costs.

        ``speaker`` [1] / [1, D] and ``style`` [1, S] are one row of conditioning for
        models that need it (the engine passes its voice's neutral row); backends that
        warm up from their own static buffers may ignore them.
        """
        ids = torch.ones(1, 16, dtype=torch.int64)
        out = self.acoustic(ids, torch.tensor([16]), Controls.neutral(1), speaker, style)
        self.vocoder(out.mel[:, : max(1, int(out.mel_lengths.max()))])

    @abstractmethod
    def acoustic(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> AcousticOutput:
        """Symbols [B, T] → mel and durations, as ``AcousticModel.forward``; outputs on the CPU.

        ``speaker`` is [B] int64 (rows of the speaker table) or [B, D] float32 (embeddings),
        ``style`` [B, S] float32; each row conditions its own item (None: a model without them).
        """

    @abstractmethod
    def vocoder(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel [B, F, n_mels] → waveform [B, F * hop] on the CPU."""
