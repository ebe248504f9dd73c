"""EmotiVoice's acoustic model (``PromptTTS`` in its code): symbols + speaker + prompt → mel.

Inference runs in three stages that a backend can time or place separately:

* ``encode``: symbol embeddings → transformer encoder → concatenate the speaker
  row, the style (prompt) embedding and the content embedding to every symbol →
  linear projection back to ``hidden``.
* ``adapt``: predict pitch, energy and log-duration per symbol, apply the
  controls, add conv embeddings of pitch and energy, and spread symbols over
  frames with Gaussian upsampling.
* ``decode``: transformer decoder over frames → linear to mel.

Submodule names are the checkpoint's (``src_word_emb``, ``spk_tokenizer``,
``embed_projection1``, ``pitch_embed.0``…), under the ``am.`` prefix of the
joint model. Differences from the released code, all of which leave an
unpadded single item unchanged: padding is masked wherever a conv or attention
could see it (the original lets the decoder attend to padded frames), and the
controls exist (the original has none at inference).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from voxserve.models.emotivoice.config import Config
from voxserve.models.emotivoice.transformer import Encoder
from voxserve.models.emotivoice.variance import (
    AlignmentModule,
    DurationPredictor,
    VariancePredictor,
    gaussian_upsample,
)
from voxserve.models.interface import AcousticModel, AcousticOutput, Controls


class Prosody(NamedTuple):
    """What ``predict`` returns: the symbol half of ``adapt``, all zero past each item's length.

    states: [B, T, hidden] symbol states with the pitch and energy embeddings added.
    durations: [B, T] int64 frames per symbol. pitch, energy: [B, T] after controls.
    """

    states: torch.Tensor
    durations: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor


class Adapted(NamedTuple):
    """What ``adapt`` hands to ``decode``.

    frames: [B, F, hidden] upsampled states, zero past ``mel_lengths``.
    mel_lengths: [B] int64. durations: [B, T] int64 frames per symbol.
    pitch, energy: [B, T] predicted values after controls (normalized units).
    """

    frames: torch.Tensor
    mel_lengths: torch.Tensor
    durations: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, max_len] bool, True on the first ``lengths[b]`` positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def _embed_conv(hidden: int, kernel: int) -> nn.Sequential:
    # A one-element Sequential so the conv is named ``*.0`` as in the checkpoint (dropout had no weights).
    return nn.Sequential(nn.Conv1d(1, hidden, kernel, padding=(kernel - 1) // 2))


class Acoustic(AcousticModel):
    """Padded symbol batches → mel frames; deterministic (no dropout anywhere).

    ``forward`` follows :class:`~voxserve.models.interface.AcousticModel`:
    ``speaker`` is [B] int64 rows of the speaker table, and ``style`` is the style
    embedding and the content embedding concatenated, [B, 2 * bert_dim]. Every
    item needs at least one symbol. It does not tokenize prompts: embeddings come
    from :mod:`voxserve.models.emotivoice.style`.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        c = config
        self.config = c
        self.encoder = Encoder(
            c.hidden, c.encoder_heads, c.encoder_layers, c.hidden * c.ffn_expansion, c.encoder_ffn_kernel
        )
        self.decoder = Encoder(
            c.hidden, c.decoder_heads, c.decoder_layers, c.hidden * c.ffn_expansion, c.decoder_ffn_kernel
        )
        self.duration_predictor = DurationPredictor(
            c.hidden, c.duration_layers, c.variance_hidden, c.duration_kernel, c.duration_offset
        )
        self.pitch_predictor = VariancePredictor(c.hidden, c.pitch_layers, c.variance_hidden, c.pitch_kernel)
        self.pitch_embed = _embed_conv(c.hidden, c.variance_embed_kernel)
        self.energy_predictor = VariancePredictor(
            c.hidden, c.energy_layers, c.variance_hidden, c.energy_kernel
        )
        self.energy_embed = _embed_conv(c.hidden, c.variance_embed_kernel)
        self.alignment_module = AlignmentModule(c.hidden, c.n_mels)
        self.to_mel = nn.Linear(c.hidden, c.n_mels)
        self.spk_tokenizer = nn.Embedding(c.n_speakers, c.hidden)
        self.src_word_emb = nn.Embedding(c.n_vocab, c.hidden)
        self.embed_projection1 = nn.Linear(2 * c.hidden + 2 * c.bert_dim, c.hidden)

    def encode(
        self, ids: torch.Tensor, lengths: torch.Tensor, speaker: torch.Tensor, style: torch.Tensor
    ) -> torch.Tensor:
        """[B, T] ids → [B, T, hidden] conditioned symbol states (padding positions hold junk)."""
        b, t = ids.shape
        mask = length_mask(lengths, t)
        x = self.encoder(self.src_word_emb(ids), mask)
        cond = torch.cat([self.spk_tokenizer(speaker), style.to(x.dtype)], dim=-1)
        x = torch.cat([x, cond[:, None, :].expand(b, t, -1)], dim=-1)
        return self.embed_projection1(x)

    def predict(self, h: torch.Tensor, lengths: torch.Tensor, controls: Controls) -> Prosody:
        """Predict prosody per symbol, apply ``controls``, and add the pitch and energy embeddings.

        The symbol half of ``adapt``: no host sync and static shapes, so backends that
        cut the graph at the frame count (CUDA graphs, ONNX) call this directly.
        """
        c = self.config
        mask = length_mask(lengths, h.size(1))
        keep = mask.to(h.dtype)
        pitch = self.pitch_predictor(h, keep)
        energy = self.energy_predictor(h, keep)
        durations = self.duration_predictor.frames(h, keep, controls.duration.to(h.dtype))

        # Controls act on Hz-like values, but the model predicts (v - mean) / std. These
        # forms are exact identities at ratio 1 (no round trip through Hz).
        p_mean, p_std = c.pitch_stats
        e_mean, e_std = c.energy_stats
        ratio, spread = controls.pitch.to(h.dtype)[:, None], controls.pitch_range.to(h.dtype)[:, None]
        utt_mean = (pitch * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True)
        pitch = ratio * pitch + ratio * (spread - 1) * (pitch - utt_mean) + (ratio - 1) * (p_mean / p_std)
        gain = controls.energy.to(h.dtype)[:, None]
        energy = gain * energy + (gain - 1) * (e_mean / e_std)
        pitch, energy = pitch * keep, energy * keep

        x = (
            h
            + self.pitch_embed(pitch[:, None, :]).transpose(1, 2)
            + self.energy_embed(energy[:, None, :]).transpose(1, 2)
        )
        # An item whose every symbol rounds to 0 frames gets 1 frame per symbol, as the original does.
        silent = durations.sum(1, keepdim=True) == 0
        durations = torch.where(silent & mask, torch.ones_like(durations), durations)
        return Prosody(x * keep[..., None], durations, pitch, energy)

    def expand(
        self, states: torch.Tensor, durations: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian upsampling of ``predict``'s states to ``n_frames`` frames → (frames, mel_lengths).

        ``n_frames`` is normally the largest total duration; an item longer than it is
        cut (its ``mel_lengths`` too). Frames past each item's length are zero.
        """
        mask = length_mask(lengths, states.size(1))
        mel_lengths = durations.sum(1).clamp(max=n_frames)
        frames = gaussian_upsample(states, durations, mask, n_frames, self.config.upsampling_delta)
        frames = frames * length_mask(mel_lengths, n_frames)[..., None].to(frames.dtype)
        return frames, mel_lengths

    def adapt(self, h: torch.Tensor, lengths: torch.Tensor, controls: Controls) -> Adapted:
        """Predict prosody, apply ``controls``, and upsample to frames (see the module docstring)."""
        p = self.predict(h, lengths, controls)
        # One host sync per batch: the frame count is a shape.
        n_frames = int(p.durations.sum(1).max())
        frames, mel_lengths = self.expand(p.states, p.durations, lengths, n_frames)
        return Adapted(frames, mel_lengths, p.durations, p.pitch, p.energy)

    def decode(self, frames: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """[B, F, hidden] → mel [B, F, n_mels], zero past ``mel_lengths``."""
        mask = length_mask(mel_lengths, frames.size(1))
        mel = self.to_mel(self.decoder(frames, mask))
        return mel * mask[..., None].to(mel.dtype)

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> AcousticOutput:
        if speaker is None or style is None:
            raise ValueError(
                "EmotiVoice needs speaker ids [B] and style ‖ content embeddings [B, 2*bert_dim]"
            )
        a = self.adapt(self.encode(ids, lengths, speaker, style), lengths, controls)
        return AcousticOutput(
            self.decode(a.frames, a.mel_lengths), a.mel_lengths, a.durations, a.pitch, a.energy
        )
