"""GE2E speaker encoder: power mel frames in, a 256-d unit d-vector out (the cloning voice's condition).

``Config`` holds the shape and the front end's facts; ``Model`` is the tensor-only network;
``MelFrontend`` turns 16 kHz samples into the mel frames the network reads. Weights are loaded
elsewhere (``voxserve.cloning.encoder``): nothing here reads a file.
"""

from voxserve.models.speaker_encoder.config import Config
from voxserve.models.speaker_encoder.mel import MelFrontend, slaney_mel_filters
from voxserve.models.speaker_encoder.model import Model

__all__ = ["Config", "MelFrontend", "Model", "slaney_mel_filters"]
