"""The three exportable stages of a voice, and where the graph is cut.

A non-autoregressive voice has one data-dependent shape: the number of mel
frames, which is the sum of the predicted durations. The export cuts the
pipeline there, so every stage has shapes that follow from its inputs' shapes
alone (what TensorRT needs to build an engine for a min/opt/max profile):

* ``encoder``: ``ids`` [B, T] int64, ``lengths`` [B] int64, ``controls`` [B, 4]
  float32 (the :class:`~voxserve.models.interface.Controls` fields in order:
  duration, pitch, pitch_range, energy) and, for conditioned families, ``speaker``
  ([B] int64 table rows for EmotiVoice, [B, D] float32 d-vectors for the clone
  family) and ``style`` [B, S] float32 → ``states`` [B, T, H] (symbol states
  with the pitch and energy embeddings added, zero on padding), ``durations`` [B, T]
  int64, ``pitch`` and ``energy`` [B, T] float32. Encoder + variance predictors.
* ``decoder``: ``states``, ``durations`` (and ``lengths`` for families whose
  upsampling must mask padded symbols) and ``frame_ids`` [F] int64 → ``mel``
  [B, F, n_mels] and ``mel_lengths`` [B] int64. Length regulation happens inside;
  only the *length* of ``frame_ids`` is read (pass ``arange(F)``), which makes
  the frame count an input dimension instead of a value computed in the graph.
  The host picks F = the longest item (or a larger bucket); an item longer than
  F is cut, as ``max_frames`` does in the models.
* ``vocoder``: ``mel`` [B, F, n_mels] → ``wav`` [B, F * hop]. Inputs shorter
  than ``min_frames`` are the caller's to extend (the models do it in Python).

Between encoder and decoder the host reads the durations (B×T integers) to
choose F: the one host sync of an acoustic call. No graph has a data-dependent
output shape, and every op is in TensorRT 10's ONNX set at opset 18 (``Mish`` is
written as pointwise math, see ``onnx_export``); ``trt.py`` writes the profiles. These modules are thin
wrappers over the models' own stage methods; they hold no weights of their own
and are used for export only (eager inference goes through the models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from voxserve.backends.onnx_export import STAGE_NAMES
from voxserve.errors import PackError
from voxserve.models.interface import Controls

STAGES = STAGE_NAMES
"""Stage names, in pipeline order (also the file names, ``<stage>.onnx``)."""


def _controls(c: torch.Tensor) -> Controls:
    return Controls(*c.unbind(1))


class FastSpeech2Encoder(nn.Module):
    """FastSpeech2 ``encode`` + the variance predictors of ``adapt``, without length regulation."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.m: Any = model

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, controls: torch.Tensor):
        m = self.m
        hidden, mask = m.encode(ids, lengths)
        # One frame: the predictions and controls come from ``adapt`` itself; the expansion is skipped.
        _, _, durations, pitch, energy = m.adapt(hidden, mask, _controls(controls), max_frames=1)
        pitch_emb = m.pitch_embed(pitch.unsqueeze(1)).transpose(1, 2)
        energy_emb = m.energy_embed(energy.unsqueeze(1)).transpose(1, 2)
        states = (hidden + (pitch_emb + energy_emb)) * mask.unsqueeze(-1).to(hidden.dtype)
        return states, durations, pitch, energy


class FastSpeech2Decoder(nn.Module):
    """Length regulation to ``len(frame_ids)`` frames, then FastSpeech2 ``decode``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.m: Any = model

    def forward(self, states: torch.Tensor, durations: torch.Tensor, frame_ids: torch.Tensor):
        from voxserve.models.fastspeech2.layers import length_regulate

        frames, mel_lengths = length_regulate(states, durations, frame_ids.shape[0])
        return self.m.decode(frames, mel_lengths), mel_lengths


class EmotiVoiceEncoder(nn.Module):
    """EmotiVoice ``Acoustic.encode`` + ``Acoustic.predict`` (the prosody half of ``adapt``).

    Also wraps the clone family's model, which has the same stage methods and signatures.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.m: Any = model

    def forward(self, ids, lengths, controls, speaker, style):
        m = self.m
        return tuple(m.predict(m.encode(ids, lengths, speaker, style), lengths, _controls(controls)))


class EmotiVoiceDecoder(nn.Module):
    """``Acoustic.expand`` (Gaussian upsampling) to ``len(frame_ids)`` frames, then ``Acoustic.decode``.

    Also wraps the clone family's model (same ``expand`` and ``decode``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.m: Any = model

    def forward(self, states, durations, lengths, frame_ids):
        frames, mel_lengths = self.m.expand(states, durations, lengths, frame_ids.shape[0])
        return self.m.decode(frames, mel_lengths), mel_lengths


@dataclass
class StageSet:
    """One voice's stages as exportable modules, with the facts a runtime needs beside the files."""

    family: str
    """Acoustic family name (``fastspeech2``, ``emotivoice``, ``clone``)."""
    modules: dict[str, nn.Module]
    """Stage name → module to export."""
    inputs: dict[str, tuple[str, ...]]
    """Stage name → graph input names, in argument order."""
    outputs: dict[str, tuple[str, ...]]
    """Stage name → graph output names."""
    facts: dict[str, int] = field(default_factory=dict)
    """hidden, n_mels, hop_length, min_frames, receptive_frames, style_dim, n_speakers, vocab, max_frames;
    ``speaker_dim`` (the clone family only): width of the float d-vector ``speaker`` input."""


def unwrap(acoustic: Any, vocoder: Any) -> tuple[Any, Any]:
    """The acoustic model and vocoder proper, from what ``Pack.build_stage`` returns.

    An EmotiVoice pack builds the joint model for both stages; this takes its
    ``am`` and its ``generator`` with weight norm folded (a plain conv exports and
    runs faster). Other modules pass through.
    """
    if hasattr(acoustic, "am") and hasattr(acoustic, "generator"):
        acoustic = acoustic.am
    if hasattr(vocoder, "am") and hasattr(vocoder, "generator"):
        vocoder = vocoder.generator
    fold = getattr(vocoder, "fold_weight_norm", None)
    if callable(fold):
        fold()
    return acoustic.eval(), vocoder.eval()


def stage_set(acoustic: Any, vocoder: Any) -> StageSet:
    """The export stages for a known acoustic family; raises PackError for any other."""
    from voxserve.models.clone.model import Model as Clone
    from voxserve.models.emotivoice.acoustic import Acoustic as EmotiVoice
    from voxserve.models.fastspeech2.model import Model as FastSpeech2

    acoustic, vocoder = unwrap(acoustic, vocoder)
    if not isinstance(acoustic, (FastSpeech2, EmotiVoice, Clone)):
        raise PackError(
            f"no ONNX export for acoustic model {type(acoustic).__name__}; known: FastSpeech2, EmotiVoice, clone"
        )
    c: Any = acoustic.config
    facts = {
        "hidden": int(c.hidden),
        "n_mels": int(c.n_mels),
        "hop_length": int(vocoder.hop_length),
        "min_frames": int(getattr(vocoder, "min_frames", 1)),
        # -1: unknown (the engine then probes the backend's vocoder)
        "receptive_frames": int(getattr(vocoder, "receptive_frames", -1)),
    }
    outputs: dict[str, tuple[str, ...]] = {
        "encoder": ("states", "durations", "pitch", "energy"),
        "decoder": ("mel", "mel_lengths"),
        "vocoder": ("wav",),
    }
    if isinstance(acoustic, FastSpeech2):
        modules = {"encoder": FastSpeech2Encoder(acoustic), "decoder": FastSpeech2Decoder(acoustic)}
        inputs: dict[str, tuple[str, ...]] = {
            "encoder": ("ids", "lengths", "controls"),
            "decoder": ("states", "durations", "frame_ids"),
        }
        facts.update(style_dim=0, n_speakers=0, vocab=int(c.vocab_size), max_frames=1 << 16)
        family = "fastspeech2"
    else:
        modules = {"encoder": EmotiVoiceEncoder(acoustic), "decoder": EmotiVoiceDecoder(acoustic)}
        inputs = {
            "encoder": ("ids", "lengths", "controls", "speaker", "style"),
            "decoder": ("states", "durations", "lengths", "frame_ids"),
        }
        # The position table's length: export specializes the model's "extend the table" branch away.
        table: Any = acoustic.decoder.embed[0].pe
        max_frames = int(table.size(0))
        facts.update(n_speakers=int(c.n_speakers), vocab=int(c.n_vocab), max_frames=max_frames)
        if isinstance(acoustic, Clone):
            # Speaker: a float d-vector per row (cloned voices, and the pack's speakers' table vectors);
            # style: a weight per emotion label.
            facts.update(style_dim=int(c.n_emotions), speaker_dim=int(c.speaker_dim))
            family = "clone"
        else:
            facts.update(style_dim=2 * int(c.bert_dim))  # style ‖ content BERT embeddings
            family = "emotivoice"
    from voxserve.backends.onnx_vocoder import polyphase

    # Upsampling as conv + phase interleave: the same outputs, less time in ONNX Runtime (onnx_vocoder.py).
    modules["vocoder"] = polyphase(vocoder)
    inputs["vocoder"] = ("mel",)
    return StageSet(family, modules, inputs, outputs, facts)
