"""The joint EmotiVoice model: acoustic model (``am``) + HiFi-GAN (``generator``).

Its ``state_dict`` has the keys and shapes of the ``generator`` entry of
EmotiVoice's released ``g_*`` checkpoint (the training script's ``JETSGenerator``),
so that entry loads with ``strict=True``. Tensors in, tensors out; no text, no
files. Prompt and content embeddings come from
:class:`voxserve.models.emotivoice.style.PromptEmbedder`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from voxserve.models.emotivoice.acoustic import Acoustic, Adapted
from voxserve.models.emotivoice.config import Config
from voxserve.models.emotivoice.hifigan import Generator
from voxserve.models.interface import Controls


class Output(NamedTuple):
    """One synthesized batch.

    mel: [B, F, n_mels] log-mel, zero past ``mel_lengths``. mel_lengths: [B] int64.
    durations: [B, T] int64 frames per symbol. pitch, energy: [B, T] after controls.
    wav: [B, F * hop] in [-1, 1]; item b is valid up to ``wav_lengths[b]`` samples.
    """

    mel: torch.Tensor
    mel_lengths: torch.Tensor
    durations: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor
    wav: torch.Tensor
    wav_lengths: torch.Tensor


class Model(nn.Module):
    """EmotiVoice text-to-waveform, in stages: ``encode`` → ``adapt`` → ``decode`` → ``vocode``.

    Inputs: ``ids`` [B, T] int64 symbol ids padded with anything (0 is fine),
    ``lengths`` [B] int64 (≥ 1), ``speaker`` [B] int64 rows of the speaker table,
    ``style`` [B, bert_dim] prompt embeddings, ``content`` [B, bert_dim] embeddings
    of the sentence text, ``controls`` (see :class:`Controls`). Deterministic in
    eval mode and batch-independent: each item's durations and mel equal its
    unbatched run (to float rounding). It does not cut the waveform per item;
    use ``wav_lengths``.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.am = Acoustic(config)
        self.generator = Generator(config)

    def encode(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        speaker: torch.Tensor,
        style: torch.Tensor,
        content: torch.Tensor,
    ) -> torch.Tensor:
        """Symbols and conditioning → [B, T, hidden] symbol states."""
        return self.am.encode(ids, lengths, speaker, torch.cat([style, content], dim=-1))

    def adapt(self, h: torch.Tensor, lengths: torch.Tensor, controls: Controls) -> Adapted:
        """Symbol states → frame states, with predicted durations, pitch and energy."""
        return self.am.adapt(h, lengths, controls)

    def decode(self, frames: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """Frame states → mel [B, F, n_mels]."""
        return self.am.decode(frames, mel_lengths)

    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel [B, F, n_mels] → waveform [B, F * hop]."""
        return self.generator(mel)

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor,
        style: torch.Tensor,
        content: torch.Tensor,
    ) -> Output:
        a = self.adapt(self.encode(ids, lengths, speaker, style, content), lengths, controls)
        mel = self.decode(a.frames, a.mel_lengths)
        wav = self.vocode(mel)
        return Output(
            mel, a.mel_lengths, a.durations, a.pitch, a.energy, wav, a.mel_lengths * self.config.hop_length
        )

    def fold_weight_norm(self) -> Model:
        """Bake HiFi-GAN's weight norm into plain weights for inference; returns self.

        After this the vocoder keys read ``weight`` and the release checkpoint no
        longer loads into this instance; outputs are unchanged (to float rounding).
        """
        self.generator.fold_weight_norm()
        return self
