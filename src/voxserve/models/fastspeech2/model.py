"""FastSpeech2 acoustic model (TensorFlowTTS layout), as a tensor-only PyTorch module.

Three stages, each callable on its own for per-stage backends and timing:

* ``encode``: symbol ids → per-symbol hidden states (embedding + positions + FFT blocks);
* ``adapt``: predict duration, pitch and energy, apply the prosody controls, add
  the pitch/energy embeddings and expand symbols to frames;
* ``decode``: frames → mel (FFT blocks, linear projection, residual postnet).

The model is single-speaker and has no learned style: ``speaker`` and ``style``
are accepted for the interface and ignored. It never applies dropout; the source
graph drops half of the pitch/energy embedding at inference, which parity tests
reproduce by passing the interpreter's masks to ``adapt``/``forward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from voxserve.models.fastspeech2.config import Config
from voxserve.models.fastspeech2.layers import FFTBlock, Postnet, VariancePredictor, key_bias, length_regulate
from voxserve.models.interface import AcousticModel, AcousticOutput, Controls


def _mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """Bool [B, size]: True at positions before each item's length."""
    return torch.arange(size, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class Model(AcousticModel):
    """FastSpeech2 built from a :class:`Config`; weights come from a pack (``load_state_dict``).

    Units: ``durations`` are mel frames per symbol; ``pitch`` is the per-symbol
    average of the speaker-normalized F0 (z-score over the training corpus,
    ``(Hz - mean) / std`` with unvoiced frames counted as 0), so 0 is the
    speaker's mean pitch, not silence; ``energy`` is normalized the same way.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        c = self.config = config
        self.embed = nn.Embedding(c.vocab_size, c.hidden)
        self.positions = nn.Embedding(c.max_positions + 1, c.hidden)

        def blocks(n: int) -> nn.ModuleList:
            return nn.ModuleList(
                FFTBlock(c.hidden, c.heads, c.head_dim, c.ffn_dim, c.ffn_kernel, c.layer_norm_eps)
                for _ in range(n)
            )

        def predictor() -> VariancePredictor:
            return VariancePredictor(
                c.hidden, c.variance_channels, c.variance_kernel, c.variance_layers, c.layer_norm_eps
            )

        self.encoder = blocks(c.encoder_layers)
        self.duration = predictor()
        self.pitch = predictor()
        self.energy = predictor()
        k = c.variance_embed_kernel
        self.pitch_embed = nn.Conv1d(1, c.hidden, k, padding=k // 2)
        self.energy_embed = nn.Conv1d(1, c.hidden, k, padding=k // 2)
        self.decoder = blocks(c.decoder_layers)
        self.mel_out = nn.Linear(c.hidden, c.n_mels)
        self.postnet = Postnet(c.n_mels, c.postnet_channels, c.postnet_kernel, c.postnet_layers)
        # Scaling a z-scored quantity's real value by r maps z to r * z + (r - 1) * mean / std.
        self.f0_offset = 0.0 if c.f0_mean_hz is None or c.f0_std_hz is None else c.f0_mean_hz / c.f0_std_hz
        self.energy_offset = (
            0.0 if c.energy_mean is None or c.energy_std is None else c.energy_mean / c.energy_std
        )

    def _positions(self, size: int, mask: torch.Tensor) -> torch.Tensor:
        # Positions count from 1 (row 0 is padding); past the table we reuse its last row.
        pos = torch.arange(1, size + 1, device=mask.device).clamp_(max=self.config.max_positions)
        return self.positions(pos.unsqueeze(0) * mask.long())

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [B, T] int64, lengths [B] → (hidden [B, T, H] zero on padding, mask [B, T] bool).

        Padding is where ``lengths`` says (the source graph used ``ids != 0``;
        the same for real input, which never contains the pad symbol).
        """
        mask = _mask(lengths, ids.shape[1])
        m = mask.unsqueeze(-1).to(self.embed.weight.dtype)
        bias = key_bias(m)
        x = self.embed(ids) + self._positions(ids.shape[1], torch.ones_like(mask))
        for block in self.encoder:
            x = block(x, m, bias)
        return x, mask

    def adapt(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        controls: Controls,
        *,
        pitch_dropout: torch.Tensor | None = None,
        energy_dropout: torch.Tensor | None = None,
        durations: torch.Tensor | None = None,
        max_frames: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Variance adaptor: → (frames [B, F, H], mel_lengths [B], durations [B, T], pitch [B, T], energy [B, T]).

        Controls, each [B]: ``duration`` multiplies the predicted frame counts
        before rounding (``round(relu(exp(log_d) - 1) * duration)``, as the source
        graph's speed ratio); ``pitch_range`` scales each item's pitch deviation
        around its own mean over real symbols; then ``pitch`` multiplies F0 in Hz
        when the config knows the speaker's F0 mean and std (``pitch * z + (pitch
        - 1) * mean / std``). Without them it multiplies the z-score, as the
        source graph's f0 ratio does, which widens the contour around the
        speaker's mean rather than raising it. ``energy`` works the same way on
        frame energy (``energy_mean``/``energy_std``; else the graph's energy ratio).

        ``pitch_dropout``/``energy_dropout`` ([B, T, H], for parity tests only)
        multiply the pitch/energy embeddings: pass ``keep / (1 - rate)`` to
        reproduce a dropout draw. ``durations`` ([B, T] int64) replaces the
        predicted frame counts (teacher forcing: parity tests, forced alignment);
        the duration control is then not applied. ``max_frames`` fixes F (see
        ``length_regulate``).
        """
        m = mask.unsqueeze(-1).to(hidden.dtype)
        valid = m.squeeze(-1)
        if durations is None:
            log_d = self.duration(hidden, m)
            # In float32 whatever the model's dtype: rounding decides whole frames.
            scaled = F.relu(torch.exp(log_d.float()) - 1.0) * controls.duration.float().unsqueeze(1)
            durations = torch.round(scaled).long()
        durations = durations * mask

        pitch = self.pitch(hidden, m)
        mean = (pitch * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp(min=1.0)
        pitch = (mean + (pitch - mean) * controls.pitch_range.to(valid.dtype).unsqueeze(1)) * valid
        ratio = controls.pitch.to(valid.dtype).unsqueeze(1)
        pitch = (pitch * ratio + (ratio - 1.0) * self.f0_offset) * valid
        ratio = controls.energy.to(valid.dtype).unsqueeze(1)
        energy = (self.energy(hidden, m) * ratio + (ratio - 1.0) * self.energy_offset) * valid

        pitch_emb = self.pitch_embed(pitch.unsqueeze(1)).transpose(1, 2)
        energy_emb = self.energy_embed(energy.unsqueeze(1)).transpose(1, 2)
        if pitch_dropout is not None:
            pitch_emb = pitch_emb * pitch_dropout
        if energy_dropout is not None:
            energy_emb = energy_emb * energy_dropout
        frames, mel_lengths = length_regulate(hidden + (pitch_emb + energy_emb), durations, max_frames)
        return frames, mel_lengths, durations, pitch, energy

    def decode(self, frames: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """frames [B, F, H], mel_lengths [B] → mel [B, F, n_mels] (after the postnet), zero past each length."""
        mask = _mask(mel_lengths, frames.shape[1])
        m = mask.unsqueeze(-1).to(frames.dtype)
        bias = key_bias(m)
        x = frames + self._positions(frames.shape[1], mask)
        for block in self.decoder:
            x = block(x, m, bias)
        mel = self.mel_out(x)
        return (mel + self.postnet(mel, m)) * m

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
        *,
        pitch_dropout: torch.Tensor | None = None,
        energy_dropout: torch.Tensor | None = None,
        durations: torch.Tensor | None = None,
        max_frames: int | None = None,
    ) -> AcousticOutput:
        """encode → adapt → decode. ``speaker``/``style`` are ignored (one speaker, no style).

        The keyword-only arguments are passed to :meth:`adapt`; all default to the model's own predictions.
        """
        hidden, mask = self.encode(ids, lengths)
        frames, mel_lengths, durations, pitch, energy = self.adapt(
            hidden,
            mask,
            controls,
            pitch_dropout=pitch_dropout,
            energy_dropout=energy_dropout,
            durations=durations,
            max_frames=max_frames,
        )
        return AcousticOutput(self.decode(frames, mel_lengths), mel_lengths, durations, pitch, energy)
