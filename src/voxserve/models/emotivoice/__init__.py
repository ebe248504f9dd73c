"""EmotiVoice (netease-youdao): multi-speaker, prompt-controlled Mandarin/English TTS.

``Config`` and ``Model`` follow the family contract of
:mod:`voxserve.models.registry`; ``Model`` loads the released ``g_*`` checkpoint
strictly. The BERT style encoder lives in :mod:`voxserve.models.emotivoice.style`
and is imported on demand (it needs ``transformers``).
"""

from voxserve.models.emotivoice.config import Config
from voxserve.models.emotivoice.model import Model, Output

PARTS = {"acoustic": "am", "vocoder": "generator"}
"""Which part of the joint model each pack stage is (one checkpoint holds both; see ``Pack.build_stage``)."""

__all__ = ["PARTS", "Config", "Model", "Output"]
