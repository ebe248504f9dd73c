"""The pre-norm transformer stacks of EmotiVoice's encoder (over symbols) and decoder (over frames).

EmotiVoice's released config names depthwise kernels as if these were conformer
blocks, but the released network is ESPnet's plain ``Encoder``: a learned-scale
sinusoidal position encoding, then blocks of (LayerNorm → self-attention →
residual, LayerNorm → conv feed-forward with GELU → residual), then a final
LayerNorm. Submodule names follow that code so state-dict keys match the
checkpoint key for key (``embed.0.alpha``, ``encoders.{i}.self_attn.linear_q``,
``encoders.{i}.feed_forward.w_1``, ``encoders.{i}.norm1``, ``after_norm``).

Unlike the original, padded positions are zeroed before each feed-forward conv,
so an item's output does not depend on what it is batched with; for an unpadded
item the result is the same computation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-12
"""ESPnet's LayerNorm epsilon, used everywhere in the acoustic model."""


class LayerNorm(nn.LayerNorm):
    """LayerNorm with ESPnet's epsilon, over the last dim or, with ``dim=1``, over channels of [B, C, T]."""

    def __init__(self, size: int, dim: int = -1) -> None:
        super().__init__(size, eps=LAYER_NORM_EPS)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dim == -1:
            return super().forward(x)
        return super().forward(x.transpose(self.dim, -1)).transpose(self.dim, -1)


class ScaledPositionalEncoding(nn.Module):
    """Adds ``alpha * sinusoid(position)``; ``alpha`` is learned. Input is not rescaled."""

    pe: torch.Tensor

    def __init__(self, dim: int, max_len: int = 5000) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.tensor(1.0))
        # Not persistent: the checkpoint has no table, and it is a pure function of (dim, length).
        self.register_buffer("pe", self._table(max_len), persistent=False)

    def _table(self, length: int) -> torch.Tensor:
        position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, self.dim, 2, dtype=torch.float32) * -(math.log(10000.0) / self.dim))
        pe = torch.zeros(length, self.dim)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        return pe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.size(1)
        pe = self.pe
        if pe.size(0) < length:  # longer than ever seen: extend once, keep for later calls
            pe = self._table(length).to(device=pe.device)
            self.pe = pe
        return x + self.alpha * pe[:length].to(x.dtype)


class MultiHeadedAttention(nn.Module):
    """Self-attention with separate q/k/v/out projections; keys at padded positions are ignored."""

    def __init__(self, heads: int, dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` [B, T, D]; ``key_mask`` [B, 1, 1, T] bool, True where a key is real (None: all real)."""
        b, t, d = x.shape
        q = self.linear_q(x).view(b, t, self.heads, -1).transpose(1, 2)
        k = self.linear_k(x).view(b, t, self.heads, -1).transpose(1, 2)
        v = self.linear_v(x).view(b, t, self.heads, -1).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        return self.linear_out(y.transpose(1, 2).reshape(b, t, d))


class ConvFeedForward(nn.Module):
    """conv(k) → GELU → conv(k) over time, hidden ``expansion`` × wider; padded positions are zeroed first."""

    def __init__(self, dim: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.w_1 = nn.Conv1d(dim, hidden, kernel, padding=(kernel - 1) // 2)
        self.w_2 = nn.Conv1d(hidden, dim, kernel, padding=(kernel - 1) // 2)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """``x`` [B, T, D]; ``keep`` [B, 1, T] float, 1 on real positions (None: all real)."""
        h = x.transpose(1, 2)
        if keep is not None:
            h = h * keep
        h = F.gelu(self.w_1(h))
        if keep is not None:
            h = h * keep
        return self.w_2(h).transpose(1, 2)


class EncoderLayer(nn.Module):
    """One pre-norm block: x + attn(norm1(x)), then x + ffn(norm2(x))."""

    def __init__(self, dim: int, heads: int, ffn_hidden: int, kernel: int) -> None:
        super().__init__()
        self.self_attn = MultiHeadedAttention(heads, dim)
        self.feed_forward = ConvFeedForward(dim, ffn_hidden, kernel)
        self.norm1 = LayerNorm(dim)
        self.norm2 = LayerNorm(dim)

    def forward(
        self, x: torch.Tensor, key_mask: torch.Tensor | None, keep: torch.Tensor | None
    ) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x), key_mask)
        return x + self.feed_forward(self.norm2(x), keep)


class Encoder(nn.Module):
    """Position encoding, ``layers`` pre-norm blocks, final LayerNorm. Used for both encoder and decoder."""

    def __init__(self, dim: int, heads: int, layers: int, ffn_hidden: int, kernel: int) -> None:
        super().__init__()
        # A one-element Sequential, so the parameter is named ``embed.0.alpha`` as in the checkpoint.
        self.embed = nn.Sequential(ScaledPositionalEncoding(dim))
        self.encoders = nn.ModuleList(EncoderLayer(dim, heads, ffn_hidden, kernel) for _ in range(layers))
        self.after_norm = LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` [B, T, D]; ``mask`` [B, T] bool, True on real positions (None: no padding)."""
        key_mask = keep = None
        if mask is not None:
            key_mask = mask[:, None, None, :]
            keep = mask[:, None, :].to(x.dtype)
        x = self.embed(x)
        for layer in self.encoders:
            x = layer(x, key_mask, keep)
        return self.after_norm(x)
