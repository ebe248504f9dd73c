"""Load-time configuration of the EmotiVoice acoustic model and its jointly trained HiFi-GAN.

Defaults are the released checkpoint (``g_00140000``): the ``model:`` section of
EmotiVoice's ``config/joint/config.yaml`` plus the sizes of its text lists. Two
release settings are absent on purpose: ``encoder_kernel_size_depthwise`` (7) and
``decoder_kernel_size_depthwise`` (31) are written in that file but the released
code never reads them (its blocks are transformer blocks with a convolutional
feed-forward, not conformer blocks), so they shape nothing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from voxserve.errors import PackError

_TUPLE_FIELDS = (
    "pitch_stats",
    "energy_stats",
    "upsample_rates",
    "upsample_kernel_sizes",
    "resblock_kernel_sizes",
)


@dataclass(frozen=True)
class Config:
    """Shape and feature settings of one EmotiVoice model (acoustic + vocoder).

    Validated by :meth:`from_dict` (unknown keys, wrong types, inconsistent values
    name the key). It does not describe the BERT style encoder, whose shape comes
    from its own ``config.json``.
    """

    n_vocab: int = 502
    """Rows of the symbol table, one per line of ``tokenlist`` (count)."""
    n_speakers: int = 2014
    """Rows of the speaker table, one per line of ``speaker2`` (count)."""
    hidden: int = 384
    """Width of token embeddings, encoder, decoder and speaker table (channels)."""
    encoder_layers: int = 4
    """Transformer blocks over symbols (count)."""
    encoder_heads: int = 8
    """Attention heads per encoder block (count)."""
    decoder_layers: int = 4
    """Transformer blocks over frames (count)."""
    decoder_heads: int = 8
    """Attention heads per decoder block (count)."""
    ffn_expansion: int = 4
    """Feed-forward width as a multiple of ``hidden`` (ratio)."""
    encoder_ffn_kernel: int = 3
    """Taps of both feed-forward convs in encoder blocks (symbols, odd)."""
    decoder_ffn_kernel: int = 3
    """Taps of both feed-forward convs in decoder blocks (frames, odd)."""
    variance_hidden: int = 384
    """Channels of the duration, pitch and energy predictors (channels)."""
    duration_layers: int = 2
    """Conv layers of the duration predictor (count)."""
    duration_kernel: int = 3
    """Taps of the duration predictor convs (symbols, odd)."""
    pitch_layers: int = 3
    """Conv layers of the pitch predictor (count)."""
    pitch_kernel: int = 3
    """Taps of the pitch predictor convs (symbols, odd)."""
    energy_layers: int = 2
    """Conv layers of the energy predictor (count)."""
    energy_kernel: int = 3
    """Taps of the energy predictor convs (symbols, odd)."""
    variance_embed_kernel: int = 9
    """Taps of the convs that embed predicted pitch and energy back into ``hidden`` (symbols, odd)."""
    duration_offset: float = 1.0
    """Added before the log in training: frames = exp(prediction) - offset (frames)."""
    upsampling_delta: float = 0.1
    """Sharpness of Gaussian upsampling: weight ∝ exp(-delta * (frame - centre)²) (1/frames²)."""
    bert_dim: int = 768
    """Width of the style (prompt) and content embeddings from the BERT pooler (channels)."""
    n_mels: int = 80
    """Mel bins per frame, the decoder's output and the vocoder's input (count)."""
    sample_rate: int = 16000
    """Output sample rate (Hz)."""
    hop_length: int = 256
    """Output samples per mel frame; must equal the product of ``upsample_rates`` (samples)."""
    n_fft: int = 1024
    """FFT size of the training mel analysis (samples)."""
    win_length: int = 1024
    """Window of the training mel analysis (samples)."""
    fmin: float = 0.0
    """Lowest mel filter edge of the training analysis (Hz)."""
    fmax: float = 8000.0
    """Highest mel filter edge of the training analysis (Hz)."""
    pitch_stats: tuple[float, ...] = (225.089, 53.78)
    """Mean and standard deviation of f0 that normalized the pitch targets (Hz)."""
    energy_stats: tuple[float, ...] = (30.610, 21.78)
    """Mean and standard deviation that normalized the energy targets (STFT magnitude norm)."""
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    """Stride of each HiFi-GAN transposed conv (output samples per input sample)."""
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    """Taps of each HiFi-GAN transposed conv (samples), one per entry of ``upsample_rates``."""
    upsample_initial_channel: int = 512
    """HiFi-GAN channels after its input conv; each upsampling halves them (channels)."""
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    """Taps of the parallel HiFi-GAN residual blocks after each upsampling (samples)."""
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    """Dilations of the three conv pairs in each residual block, one tuple per kernel size (samples)."""

    def __post_init__(self) -> None:
        # Normalize JSON lists to tuples so equality and hashing behave.
        for key in _TUPLE_FIELDS:
            object.__setattr__(self, key, tuple(getattr(self, key)))
        object.__setattr__(
            self, "resblock_dilation_sizes", tuple(tuple(d) for d in self.resblock_dilation_sizes)
        )
        where = "emotivoice config"
        if math.prod(self.upsample_rates) != self.hop_length:
            raise PackError(
                f"{where}: key 'hop_length' is {self.hop_length} but upsample_rates "
                f"{list(self.upsample_rates)} multiply to {math.prod(self.upsample_rates)}"
            )
        if len(self.upsample_kernel_sizes) != len(self.upsample_rates):
            raise PackError(f"{where}: key 'upsample_kernel_sizes' needs one entry per upsample rate")
        if len(self.resblock_dilation_sizes) != len(self.resblock_kernel_sizes):
            raise PackError(
                f"{where}: key 'resblock_dilation_sizes' needs one tuple per resblock kernel size"
            )
        if self.upsample_initial_channel % (2 ** len(self.upsample_rates)):
            raise PackError(f"{where}: key 'upsample_initial_channel' must halve evenly per upsampling")
        for key, heads in (("encoder_heads", self.encoder_heads), ("decoder_heads", self.decoder_heads)):
            if self.hidden % heads:
                raise PackError(f"{where}: key {key!r} ({heads}) must divide hidden ({self.hidden})")
        for key in (
            "encoder_ffn_kernel",
            "decoder_ffn_kernel",
            "duration_kernel",
            "pitch_kernel",
            "energy_kernel",
            "variance_embed_kernel",
        ):
            if getattr(self, key) % 2 == 0:
                raise PackError(f"{where}: key {key!r} must be odd to keep lengths")
        for key in ("pitch_stats", "energy_stats"):
            if len(getattr(self, key)) != 2 or getattr(self, key)[1] <= 0:
                raise PackError(f"{where}: key {key!r} must be [mean, positive std]")

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "emotivoice config") -> Config:
        """Build from a parsed JSON object; unknown keys, wrong types and bad values name the key."""
        if not isinstance(d, dict):
            raise PackError(f"{where}: must be an object")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in d:
            if key not in fields:
                raise PackError(f"{where}: unknown key {key!r}; known: {', '.join(fields)}")
        kwargs = {key: _check(where, key, value, fields[key].default) for key, value in d.items()}
        try:
            return cls(**kwargs)
        except PackError as e:
            raise PackError(str(e).replace("emotivoice config", where, 1)) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` reads back to an equal Config."""
        d = dataclasses.asdict(self)
        for key in _TUPLE_FIELDS:
            d[key] = list(getattr(self, key))
        d["resblock_dilation_sizes"] = [list(x) for x in self.resblock_dilation_sizes]
        return d


def _check(where: str, key: str, value: Any, default: Any) -> Any:
    """Type- and range-check one value against its field's default."""
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise PackError(f"{where}: key {key!r} must be a positive integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PackError(f"{where}: key {key!r} must be a non-negative number")
        return float(value)
    if key == "resblock_dilation_sizes":
        if not isinstance(value, (list, tuple)) or not value:
            raise PackError(f"{where}: key {key!r} must be a non-empty list of lists of positive integers")
        return tuple(_int_tuple(where, key, v) for v in value)
    if key in ("pitch_stats", "energy_stats"):
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise PackError(f"{where}: key {key!r} must be a list of numbers")
        return tuple(float(v) for v in value)
    return _int_tuple(where, key, value)


def _int_tuple(where: str, key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise PackError(f"{where}: key {key!r} must be a non-empty list of positive integers")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise PackError(f"{where}: key {key!r} must be a non-empty list of positive integers")
    return tuple(value)
