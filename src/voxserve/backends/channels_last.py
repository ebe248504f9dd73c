"""1-D convolutions that keep activations channels-last (time-major) between layers.

cuDNN's fp16 tensor-core convolutions work on NHWC data. A vocoder's activations are
``(batch, channels, time)`` tensors, so before and after every convolution cuDNN converts
layouts: on an H100 that was 245 conversion kernels and 1.17 ms of a 5.5 ms EmotiVoice-size
request (``docs/benchmarks/h100-s4/kernel-profile.md``). :func:`to_channels_last` swaps each
``nn.Conv1d`` / ``nn.ConvTranspose1d`` of a module for a 2-D convolution with a ``(1, k)``
kernel on channels-last data. Its output is still a ``(batch, channels, time)`` tensor, but
stored time-major; element-wise layers keep that layout, so the next convolution reads it
without a conversion. The arithmetic is the same convolution (outputs equal up to the
kernels' own rounding). It does not touch functional convolutions, and leaves convolutions
with a padding mode other than zeros as they were.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Conv1dNHWC(nn.Module):
    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            conv.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last),
            requires_grad=False,
        )
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        pad = conv.padding
        self.padding: str | tuple[int, int] = pad if isinstance(pad, str) else (0, pad[0])
        self.stride, self.dilation, self.groups = (1, conv.stride[0]), (1, conv.dilation[0]), conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # no copy when already time-major
        y = F.conv2d(x4, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return y.squeeze(2)


class _ConvTranspose1dNHWC(nn.Module):
    def __init__(self, conv: nn.ConvTranspose1d) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            conv.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last),
            requires_grad=False,
        )
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        self.stride, self.padding = (1, conv.stride[0]), (0, conv.padding[0])
        self.output_padding, self.dilation = (0, conv.output_padding[0]), (1, conv.dilation[0])
        self.groups = conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        y = F.conv_transpose2d(
            x4,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )
        return y.squeeze(2)


def to_channels_last(module: nn.Module) -> int:
    """Replace, in place, every zero-padded ``Conv1d``/``ConvTranspose1d`` below ``module``; returns how many.

    Call it on an inference copy with weight norm already folded (it copies the plain weights).
    """
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Conv1d) and child.padding_mode == "zeros":
            setattr(module, name, _Conv1dNHWC(child))
            count += 1
        elif isinstance(child, nn.ConvTranspose1d) and child.padding_mode == "zeros":
            setattr(module, name, _ConvTranspose1dNHWC(child))
            count += 1
        else:
            count += to_channels_last(child)
    return count
