"""The reference backend: PyTorch eager, float32, on the CPU or one CUDA device.

Every fast path is checked against this one. It does nothing clever on purpose.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from voxserve.backends.interface import Backend
from voxserve.backends.precision import strict_fp32
from voxserve.models.interface import AcousticOutput, Controls
from voxserve.packs.pack import Pack


class TorchBackend(Backend):
    """Eager fp32 PyTorch under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, device: str = "cpu") -> None:
        self.device = torch.device(device)

    def load(self, pack: Pack) -> None:
        self.acoustic_model = pack.build_stage("acoustic").to(self.device)
        vocoder = pack.build_stage("vocoder")
        # Weight norm (EmotiVoice's HiFi-GAN) is a training device: bake it, as every other backend does.
        fold = getattr(vocoder, "fold_weight_norm", None)
        if callable(fold) and any(parametrize.is_parametrized(m) for m in vocoder.modules()):
            fold()
        self.vocoder_model = vocoder.to(self.device)

    @torch.inference_mode()
    def acoustic(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> AcousticOutput:
        dev = self.device
        with strict_fp32():  # the reference is float32, not TF32 (see backends/precision.py)
            out = self.acoustic_model(
                ids.to(dev),
                lengths.to(dev),
                Controls(*(c.to(dev) for c in controls)),
                None if speaker is None else speaker.to(dev),
                None if style is None else style.to(dev),
            )
        return AcousticOutput(*(t.cpu() for t in out))

    @torch.inference_mode()
    def vocoder(self, mel: torch.Tensor) -> torch.Tensor:
        with strict_fp32():
            return self.vocoder_model(mel.to(self.device)).cpu()
