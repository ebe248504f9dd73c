"""Building blocks of FastSpeech2: FFT blocks, variance predictors, the postnet, the length regulator.

Every block takes a padded batch plus a float mask ``[B, T, 1]`` (1 on real
positions) and keeps padding from leaking into real positions: attention masks
padded keys, and each convolution's input is zeroed past the item's length, so a
padded item computes exactly what it would alone (where "same" padding also
reads zeros). Blocks hold no dropout: they are inference modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Added to attention scores of padded keys, as in the source graph. Finite (not
# -inf) so that a row with no real key stays finite instead of NaN; clipped to the
# dtype's range so half precision does not turn it into -inf either.
MASKED_SCORE = 1e9


def key_bias(mask: torch.Tensor) -> torch.Tensor:
    """Additive attention bias ``[B, 1, 1, T]`` from a float mask ``[B, T, 1]``: 0 to keep, about -1e9 to drop."""
    big = min(MASKED_SCORE, torch.finfo(mask.dtype).max)
    return ((mask - 1.0) * big).transpose(1, 2).unsqueeze(1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection. No dropout, no causal mask."""

    def __init__(self, hidden: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(hidden, 3 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, hidden)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out(y.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class FFTBlock(nn.Module):
    """Post-norm transformer block with a convolutional feed-forward (conv → mish → conv).

    Matches TensorFlowTTS's ``TFFastSpeechLayer``: the attention output, the
    feed-forward output and the block output are each multiplied by the mask.
    """

    def __init__(self, hidden: int, heads: int, head_dim: int, ffn_dim: int, kernel: int, eps: float) -> None:
        super().__init__()
        self.attn = SelfAttention(hidden, heads, head_dim)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.conv1 = nn.Conv1d(hidden, ffn_dim, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(ffn_dim, hidden, kernel, padding=kernel // 2)
        self.ffn_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        h = self.attn_norm(x + self.attn(x, bias)) * mask
        y = F.mish(self.conv1(h.transpose(1, 2))) * mask.transpose(1, 2)
        y = self.conv2(y).transpose(1, 2) * mask
        return self.ffn_norm(h + y) * mask


class VariancePredictor(nn.Module):
    """Per-symbol scalar predictor: ``layers`` × (conv → ReLU → LayerNorm), then a linear map. Zero on padding."""

    def __init__(self, hidden: int, channels: int, kernel: int, layers: int, eps: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden if i == 0 else channels, channels, kernel, padding=kernel // 2)
            for i in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(channels, eps=eps) for _ in range(layers))
        self.out = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` [B, T, hidden] already zero on padding → [B, T]."""
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(F.relu(conv(x.transpose(1, 2)).transpose(1, 2))) * mask
        return (self.out(x) * mask).squeeze(-1)


class Postnet(nn.Module):
    """Residual mel refiner: convs with tanh between them; batch norm is folded into each conv's weights."""

    def __init__(self, n_mels: int, channels: int, kernel: int, layers: int) -> None:
        super().__init__()
        sizes = [n_mels] + [channels] * (layers - 1) + [n_mels]
        self.convs = nn.ModuleList(
            nn.Conv1d(sizes[i], sizes[i + 1], kernel, padding=kernel // 2) for i in range(layers)
        )

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``mel`` [B, F, n_mels] → the residual [B, F, n_mels], zero on padding."""
        mask_t = mask.transpose(1, 2)
        x = mel.transpose(1, 2) * mask_t
        for conv in self.convs[:-1]:
            x = torch.tanh(conv(x)) * mask_t
        return self.convs[-1](x).transpose(1, 2) * mask


def length_regulate(
    x: torch.Tensor, durations: torch.Tensor, max_frames: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat each symbol's vector ``durations`` times: [B, T, H] → ([B, F, H], mel_lengths [B]).

    Vectorized: frame f of an item takes symbol i = the number of symbols that
    end at or before f (a compare-and-sum over [B, F, T] rather than
    ``searchsorted``, which ONNX lacks; the tensor is small next to the decoder's
    activations). ``F`` is the longest item (at least 1) or ``max_frames`` when
    given (a static shape for captured graphs; longer items are cut). Frames past
    an item's length are zero.
    """
    b, t, h = x.shape
    ends = durations.cumsum(1)
    mel_lengths = ends[:, -1]
    frames = max(int(mel_lengths.max()), 1) if max_frames is None else max_frames
    if max_frames is not None:
        mel_lengths = mel_lengths.clamp(max=max_frames)
    grid = torch.arange(frames, device=x.device, dtype=ends.dtype)
    index = (ends.unsqueeze(1) <= grid.view(1, frames, 1)).sum(-1).clamp_(max=t - 1)
    out = torch.gather(x, 1, index.unsqueeze(-1).expand(b, frames, h))
    valid = grid.unsqueeze(0) < mel_lengths.unsqueeze(1)
    return out * valid.unsqueeze(-1).to(x.dtype), mel_lengths
