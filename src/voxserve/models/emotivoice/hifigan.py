"""HiFi-GAN V1 generator as EmotiVoice trained it jointly with the acoustic model.

Every conv is weight-normalized through ``torch.nn.utils.parametrizations``, as
the released code builds it, so keys read ``conv_pre.parametrizations.weight.original0``
(gain) and ``original1`` (direction). A checkpoint saved with the older
``weight_g``/``weight_v`` names loads too: PyTorch's weight-norm parametrization
renames them on load. :meth:`Generator.fold_weight_norm` bakes the weights for
inference (after which the keys are plain ``weight``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from voxserve.models.emotivoice.config import Config
from voxserve.models.interface import Vocoder

LRELU_SLOPE = 0.1
"""Slope of the leaky ReLUs inside the generator; the one before ``conv_post`` uses PyTorch's default 0.01."""


def _same_padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs with leaky ReLUs and residual adds; length-preserving."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_padding(kernel, d)))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, padding=_same_padding(kernel)))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = x + xt
        return x


class Generator(Vocoder):
    """Mel [B, F, n_mels] → waveform [B, F * hop] in [-1, 1] (tanh output).

    Does not trim: frames past an item's length are vocoded like any other, and
    audio near an item's end can depend on the padding within the receptive field.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.hop_length = config.hop_length
        self.num_kernels = len(config.resblock_kernel_sizes)
        ch = config.upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(config.n_mels, ch, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(
            zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True)
        ):
            cin, cout = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(
                weight_norm(nn.ConvTranspose1d(cin, cout, kernel, rate, padding=(kernel - rate) // 2))
            )
            for k, dil in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock1(cout, k, dil))
        self.conv_post = weight_norm(nn.Conv1d(cout, 1, 7, padding=3))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel.transpose(1, 2))
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x).squeeze(1)

    def fold_weight_norm(self) -> None:
        """Replace each weight-norm parametrization by its current weight (faster; keys become ``weight``)."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
