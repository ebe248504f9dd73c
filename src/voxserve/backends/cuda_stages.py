"""How each acoustic-model family splits at the one point where a host must look at the data.

A non-autoregressive acoustic model runs in two halves around a single
data-dependent shape: the symbol half (encoder, duration/pitch/energy
predictors) has the input's shape, and the frame half (length regulation,
decoder) has as many frames as the durations add up to. A :class:`StagePlan`
exposes those halves so the CUDA backend can capture each at fixed shapes:

* ``tokens`` runs the symbol half in float32 (a duration is a rounded float, and
  half precision would move some of them by a frame) and returns the symbol
  states the frame half expands, with durations, pitch and energy;
* ``frames`` expands those states to a given, static number of frames and
  decodes them in the backend's dtype.

Plans call the models' own stage methods (EmotiVoice's ``adapt`` is split into
``predict`` and ``expand`` around its host sync for this), and the tests check
them against the model's ``forward``. A model family without a plan
runs eagerly.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import torch

from voxserve.models.interface import Controls


class TokenStates(NamedTuple):
    """The symbol half's output, all [B, T] or [B, T, H] on the device, zero past each length.

    states: float32 symbol states the frame half expands. durations: int64 frames
    per symbol. pitch, energy: float32 per-symbol predictions after controls.
    """

    states: torch.Tensor
    durations: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor


class StagePlan(ABC):
    """An acoustic model split into a float32 symbol half and a frame half in ``dtype``."""

    hidden: int
    """Channels of ``TokenStates.states``."""
    n_mels: int
    """Mel bands of the frame half's output."""

    def __init__(self, model: Any, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.front: Any = model.float()
        # A second copy in the fast dtype for the frame half; the symbol half stays float32.
        self.back: Any = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)

    @abstractmethod
    def tokens(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None,
        style: torch.Tensor | None,
    ) -> TokenStates:
        """ids [B, T], lengths [B] (each at least 1) → the symbol half's outputs."""

    @abstractmethod
    def frames(
        self, states: torch.Tensor, durations: torch.Tensor, lengths: torch.Tensor, n_frames: int
    ) -> torch.Tensor:
        """Symbol states → float32 mel [B, n_frames, n_mels], zero past each item's total duration.

        ``n_frames`` must be at least the largest total duration of a real item.
        """


class FastSpeech2Plan(StagePlan):
    """FastSpeech2: encode + adapt on symbols; length regulation + decode on frames."""

    def __init__(self, model: Any, dtype: torch.dtype) -> None:
        super().__init__(model, dtype)
        self.hidden = model.config.hidden
        self.n_mels = model.config.n_mels

    def tokens(self, ids, lengths, controls, speaker, style) -> TokenStates:
        m = self.front
        hidden, mask = m.encode(ids, lengths)
        # One frame cap: only the predictions are wanted here, not the expansion.
        _, _, durations, pitch, energy = m.adapt(hidden, mask, controls, max_frames=1)
        # With one frame per symbol, length regulation is the identity, so this hands back the
        # symbol states with the pitch and energy embeddings added: what the frame half expands.
        states = m.adapt(hidden, mask, controls, durations=mask.long(), max_frames=ids.shape[1])[0]
        return TokenStates(states, durations, pitch, energy)

    def frames(self, states, durations, lengths, n_frames) -> torch.Tensor:
        from voxserve.models.fastspeech2.layers import length_regulate

        frames, mel_lengths = length_regulate(states, durations, n_frames)
        return self.back.decode(frames.to(self.dtype), mel_lengths).float()


class EmotiVoicePlan(StagePlan):
    """EmotiVoice's acoustic model: encode + prosody prediction on symbols; Gaussian upsampling + decode on frames.

    ``tokens`` is ``Acoustic.encode`` + ``Acoustic.predict`` (``adapt`` up to its host
    sync, the frame count); ``frames`` is ``Acoustic.expand`` + ``decode``. ``style`` is the style and content embeddings concatenated, as
    ``Acoustic.forward`` takes them.
    """

    def __init__(self, model: Any, dtype: torch.dtype) -> None:
        super().__init__(model, dtype)
        self.hidden = model.config.hidden
        self.n_mels = model.config.n_mels

    def tokens(self, ids, lengths, controls, speaker, style) -> TokenStates:
        m = self.front
        return TokenStates(*m.predict(m.encode(ids, lengths, speaker, style), lengths, controls))

    def frames(self, states, durations, lengths, n_frames) -> torch.Tensor:
        frames, mel_lengths = self.front.expand(states, durations, lengths, n_frames)
        return self.back.decode(frames.to(self.dtype), mel_lengths).float()


def plan_for(model: torch.nn.Module, dtype: torch.dtype) -> StagePlan | None:
    """The plan for an acoustic model of a known family, or None (the backend then runs it eagerly)."""
    from voxserve.models.clone.model import Model as Clone
    from voxserve.models.emotivoice.acoustic import Acoustic
    from voxserve.models.fastspeech2.model import Model as FastSpeech2

    if isinstance(model, FastSpeech2):
        return FastSpeech2Plan(model, dtype)
    if isinstance(model, (Acoustic, Clone)):
        # The clone model has EmotiVoice's stage methods (encode/predict/expand/decode) and inputs.
        return EmotiVoicePlan(model, dtype)
    return None
