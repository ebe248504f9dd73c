"""The cloning voice: an EmotiVoice-class acoustic model conditioned on a speaker d-vector and emotion.

``Config`` and ``Model`` follow the family contract of :mod:`voxserve.models.registry`
(family ``clone``). Its vocoder is the ``hifigan`` family in
:mod:`voxserve.models.clone.vocoder`. Trained by :mod:`voxserve.train`.
"""

from voxserve.models.clone.config import SIZES, TINY, Config
from voxserve.models.clone.model import Model, Prosody, TrainOutput

__all__ = ["SIZES", "TINY", "Config", "Model", "Prosody", "TrainOutput"]
