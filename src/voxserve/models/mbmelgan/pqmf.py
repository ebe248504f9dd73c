"""PQMF synthesis: merge critically sampled sub-bands back into one full-rate signal."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PQMFSynthesis(nn.Module):
    """Upsample each of ``subbands`` bands by zero insertion and filter it with its synthesis filter.

    The textbook form is two steps: a stride-``subbands`` transposed conv with an identity kernel
    (zero insertion, gain ``subbands``), then a same-length conv with the ``taps``-long filter
    bank. Only every ``subbands``-th input of that conv is non-zero, so both steps are one
    stride-``subbands`` transposed conv with the filter bank as its kernel; we run that, which
    does a quarter of the multiply-adds and never builds the zero-stuffed signal.

    The filters are a buffer loaded with the weights (``filters`` [subbands, taps], oriented for the
    conv of the two-step form, i.e. as the TFLite file stores them); they are not designed here.
    Does not do PQMF analysis.
    """

    filters: torch.Tensor

    def __init__(self, subbands: int, taps: int) -> None:
        super().__init__()
        self.subbands = subbands
        self.taps = taps
        self.register_buffer("filters", torch.zeros(subbands, taps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, subbands, T] sub-band signals → [B, 1, T * subbands] waveform."""
        # A conv correlates, a transposed conv convolves: the same taps, reversed.
        weight = (self.filters.flip(-1) * self.subbands).unsqueeze(1)  # [subbands (in), 1 (out), taps]
        pad = self.taps // 2
        # The full transposed conv has (T-1)*s + taps samples; sample n of the output is sample
        # n + pad of that. padding crops ``pad`` on each side, output_padding restores the s-1
        # samples at the end that the symmetric crop took (they are valid, not extrapolated).
        return F.conv_transpose1d(
            x, weight, stride=self.subbands, padding=pad, output_padding=self.subbands - 1
        )
