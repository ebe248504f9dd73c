"""Multi-band MelGAN vocoder family: ``Config`` (load-time shape) and ``Model`` (mel → waveform)."""

from voxserve.models.mbmelgan.config import Config
from voxserve.models.mbmelgan.model import Model

__all__ = ["Config", "Model"]
