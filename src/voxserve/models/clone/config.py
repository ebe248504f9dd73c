"""Load-time configuration of the cloning acoustic model (d-vector + emotion conditioned).

The defaults are the ``base`` size trained by ``voxserve train run``; :data:`TINY` is a
few-thousand-parameter model with the same structure for CPU tests. Validation names
the key (and, through ``where``, the file) of any bad value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from voxserve.errors import PackError

_PAIRS = ("pitch_stats", "energy_stats")


@dataclass(frozen=True)
class Config:
    """Shapes and feature facts of one cloning acoustic model.

    It does not describe the vocoder (``voxserve.models.clone.vocoder``) or the
    training-only aligner (``voxserve.train.aligner``).
    """

    n_vocab: int = 502
    """Rows of the symbol table: EmotiVoice's tokenlist (count)."""
    hidden: int = 192
    """Width of symbol embeddings, encoder, decoder and conditioning (channels)."""
    encoder_layers: int = 4
    """Transformer blocks over symbols (count)."""
    encoder_heads: int = 2
    """Attention heads per encoder block (count)."""
    decoder_layers: int = 6
    """Transformer blocks over frames (count)."""
    decoder_heads: int = 2
    """Attention heads per decoder block (count)."""
    ffn_expansion: int = 2
    """Feed-forward width as a multiple of ``hidden`` (ratio)."""
    encoder_ffn_kernel: int = 3
    """Taps of the feed-forward convs in encoder blocks (symbols, odd)."""
    decoder_ffn_kernel: int = 3
    """Taps of the feed-forward convs in decoder blocks (frames, odd)."""
    variance_hidden: int = 192
    """Channels of the duration, pitch and energy predictors (channels)."""
    variance_layers: int = 2
    """Conv layers of each variance predictor (count)."""
    variance_kernel: int = 3
    """Taps of the variance predictor convs (symbols, odd)."""
    variance_embed_kernel: int = 9
    """Taps of the convs that embed pitch and energy back into ``hidden`` (symbols, odd)."""
    dropout: float = 0.1
    """Dropout on symbol embeddings and on the states entering the predictors and the decoder, in
    training only; inference is deterministic (probability)."""
    duration_offset: float = 1.0
    """Log-duration offset: the predictor outputs log(frames + offset) (frames)."""
    upsampling_delta: float = 0.1
    """Sharpness of Gaussian upsampling: weight ∝ exp(-delta * (frame - centre)²) (1/frames²)."""
    speaker_dim: int = 256
    """Width of the speaker d-vector the model is conditioned on (channels)."""
    n_speakers: int = 1
    """Rows of the built-in speaker table (mean d-vectors of training speakers; row 0 is the default)."""
    n_emotions: int = 7
    """Width of the style vector: one weight per emotion label of the pack (count)."""
    neutral_emotion: int = 0
    """Index of the neutral label, used when no style is given (index)."""
    n_mels: int = 80
    """Mel bins per frame (count)."""
    sample_rate: int = 22050
    """Sample rate of the audio the mels describe (Hz)."""
    hop_length: int = 256
    """Samples per mel frame (samples)."""
    pitch_stats: tuple[float, ...] = (5.3, 0.3)
    """Mean and standard deviation of per-symbol log-F0 that normalize the pitch targets (ln Hz)."""
    energy_stats: tuple[float, ...] = (0.0, 1.0)
    """Mean and standard deviation of per-symbol frame energy, log of the summed mel magnitude (ln)."""

    def __post_init__(self) -> None:
        for key in _PAIRS:
            object.__setattr__(self, key, tuple(float(v) for v in getattr(self, key)))
        where = "clone config"
        for key, heads in (("encoder_heads", self.encoder_heads), ("decoder_heads", self.decoder_heads)):
            if self.hidden % heads:
                raise PackError(f"{where}: key {key!r} ({heads}) must divide hidden ({self.hidden})")
        for key in ("encoder_ffn_kernel", "decoder_ffn_kernel", "variance_kernel", "variance_embed_kernel"):
            if getattr(self, key) % 2 == 0:
                raise PackError(f"{where}: key {key!r} must be odd to keep lengths")
        for key in _PAIRS:
            value = getattr(self, key)
            if len(value) != 2 or value[1] <= 0:
                raise PackError(f"{where}: key {key!r} must be [mean, positive std]")
        if not 0.0 <= self.dropout < 1.0:
            raise PackError(f"{where}: key 'dropout' must be in [0, 1)")
        if not 0 <= self.neutral_emotion < self.n_emotions:
            raise PackError(f"{where}: key 'neutral_emotion' must index one of {self.n_emotions} emotions")

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "clone config") -> Config:
        """Build from a parsed JSON object; unknown keys, wrong types and bad values name the key."""
        if not isinstance(d, dict):
            raise PackError(f"{where}: must be an object")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in fields:
                raise PackError(f"{where}: unknown key {key!r}; known: {', '.join(fields)}")
            kwargs[key] = _check(where, key, value, fields[key].default)
        try:
            return cls(**kwargs)
        except PackError as e:
            raise PackError(str(e).replace("clone config", where, 1)) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` reads back to an equal Config."""
        d = dataclasses.asdict(self)
        for key in _PAIRS:
            d[key] = list(getattr(self, key))
        return d


def _check(where: str, key: str, value: Any, default: Any) -> Any:
    if key in _PAIRS:
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise PackError(f"{where}: key {key!r} must be a list of numbers")
        return tuple(float(v) for v in value)
    if isinstance(default, int):
        minimum = 0 if key == "neutral_emotion" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PackError(f"{where}: key {key!r} must be an integer ≥ {minimum}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PackError(f"{where}: key {key!r} must be a non-negative number")
    return float(value)


TINY = Config(
    hidden=32,
    encoder_layers=1,
    encoder_heads=2,
    decoder_layers=2,
    decoder_heads=2,
    variance_hidden=32,
    variance_embed_kernel=3,
)
"""A tiny model with the base structure, for CPU tests (trains in seconds)."""

SIZES: dict[str, Config] = {"base": Config(), "tiny": TINY}
"""Named sizes ``voxserve train run --size`` accepts."""
