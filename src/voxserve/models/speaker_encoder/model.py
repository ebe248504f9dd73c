"""The GE2E d-vector network: mel frames of partial utterances in, unit d-vectors out."""

from __future__ import annotations

import torch
from torch import nn

from voxserve.models.speaker_encoder.config import Config


class Model(nn.Module):
    """A stacked LSTM read at its last step, a linear layer, ReLU and L2 normalisation.

    ``forward(mels)`` embeds each partial of a batch on its own; averaging partials into one
    utterance embedding is the caller's (``voxserve.cloning.encoder``). Parameter names match
    the pretrained state dict (``lstm.*``, ``linear.*``). Tensor-only; reads no files.
    """

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = config = config or Config()
        self.lstm = nn.LSTM(config.n_mels, config.hidden_size, config.num_layers, batch_first=True)
        self.linear = nn.Linear(config.hidden_size, config.embedding_size)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """``mels`` [B, frames, n_mels] -> [B, embedding_size], each row of unit length (all >= 0)."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        # A row that ReLU zeroed entirely stays zero instead of becoming NaN.
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)
