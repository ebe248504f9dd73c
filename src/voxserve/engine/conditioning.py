"""A pack's per-row conditioning: its speaker input and its style vector, as the pack's config says.

Who calls what: a ``Voice`` builds one ``StyleSource`` from its pack (``style_source``) and,
per sentence, asks it for that row's style vector from the request's parameters and the
sentence text; ``speaker_value`` turns a resolved ``Speaker`` into the row's speaker input.
The engine puts both on each batch row, so rows of different speakers and emotions share a
batch. A pack's ``style`` entry picks the kind:

- ``none`` (baker): no style input; an emotion changes prosody through ``prosody_presets``.
- ``emotivoice-prompt``: EmotiVoice's prompt and content embeddings, each the pooled output
  of the pack's BERT style encoder: the prompt is the request's ``instructions`` (free text,
  e.g. 用开心的语气说) or else its emotion label (开心), or 普通; the content is the sentence.
- ``emotion-table``: a vector over the pack's ``emotions``: one-hot of the request's emotion
  (the ``neutral`` label when none), or soft weights through :meth:`EmotionTable.vector`.

New kinds plug in here with one entry in ``STYLE_KINDS``. This module does not resolve
voice names (``resolve.py``) or batch (``batch.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from voxserve.engine.controls import SynthesisParams
from voxserve.engine.speakers import Speaker
from voxserve.errors import InvalidInput, PackError
from voxserve.packs.pack import Pack

NEUTRAL = "普通"
"""The neutral label (EmotiVoice's, and the default prompt)."""


class StyleSource(ABC):
    """The style vector of one batch row. Thread-safe; may cache."""

    dim: int = 0
    """Width of the vector (0: the model takes no style)."""

    @abstractmethod
    def vector(self, params: SynthesisParams, sentence: str) -> np.ndarray | None:
        """The style row [dim] float32 for ``sentence`` spoken with ``params``; None when ``dim`` is 0.

        Raises InvalidInput when ``params`` ask for something this pack cannot do.
        """

    def key(self, params: SynthesisParams) -> str:
        """What of ``params`` this source reads, as a cache-key string (audio caches use it)."""
        return ""


class NoStyle(StyleSource):
    """Packs without a style input (emotion, if any, acts through prosody presets)."""

    def vector(self, params: SynthesisParams, sentence: str) -> None:
        return None


class PromptStyle(StyleSource):
    """EmotiVoice: BERT(prompt) ‖ BERT(sentence), through the pack's style encoder, cached by text.

    The prompt is ``params.instructions`` when given, else the emotion label, else 普通.
    Loads the encoder (BERT) at construction, on ``device``.
    """

    def __init__(self, pack: Pack, device: str = "cpu", cache_size: int = 4096) -> None:
        from voxserve.packs.emotivoice.convert import load_style_embedder

        spec = pack.config.style.get("encoder")
        if not isinstance(spec, dict):
            raise PackError(f"{pack.path / 'config.json'}: key 'style.encoder' must be an object")
        self.embedder = load_style_embedder(pack.path, spec, device=device, cache_size=cache_size)
        self.dim = 2 * int(self.embedder.encoder.bert.config.hidden_size)

    @staticmethod
    def prompt(params: SynthesisParams) -> str:
        """The prompt text EmotiVoice's style encoder reads for ``params``."""
        return params.instructions or params.emotion or NEUTRAL

    def vector(self, params: SynthesisParams, sentence: str) -> np.ndarray:
        rows = self.embedder.embed([self.prompt(params), sentence])
        return rows.reshape(-1).float().cpu().numpy()

    def key(self, params: SynthesisParams) -> str:
        return "prompt:" + self.prompt(params)


class EmotionTable(StyleSource):
    """A vector over the pack's emotion labels: one-hot of the request's emotion, or soft weights.

    Settings (the pack's ``style`` entry): ``neutral``, the label used when a request
    names no emotion (default 普通 when listed, else the first label).
    """

    def __init__(self, pack: Pack) -> None:
        self.labels = tuple(pack.config.emotions)
        if not self.labels:
            raise PackError(f"{pack.path / 'config.json'}: style kind 'emotion-table' needs 'emotions'")
        neutral = pack.config.style.get("neutral", NEUTRAL if NEUTRAL in self.labels else self.labels[0])
        if neutral not in self.labels:
            raise PackError(f"{pack.path / 'config.json'}: key 'style.neutral' {neutral!r} is not an emotion")
        self.neutral = str(neutral)
        self.dim = len(self.labels)

    def vector(self, params: SynthesisParams, sentence: str) -> np.ndarray:
        return self.weights({params.emotion or self.neutral: 1.0})

    def weights(self, mix: Mapping[str, float]) -> np.ndarray:
        """A soft vector: ``mix`` (label → non-negative weight) normalized to sum 1."""
        out = np.zeros(self.dim, dtype=np.float32)
        for label, w in mix.items():
            if label not in self.labels:
                raise InvalidInput(
                    f"emotion {label!r} is not one of this voice's: {', '.join(self.labels)}", param="emotion"
                )
            if not np.isfinite(w) or w < 0:
                raise InvalidInput(
                    f"emotion weight of {label!r} must be a non-negative number", param="emotion"
                )
            out[self.labels.index(label)] += w
        total = float(out.sum())
        if total <= 0:
            raise InvalidInput("emotion weights must not all be zero", param="emotion")
        return out / total

    def key(self, params: SynthesisParams) -> str:
        return "emotion:" + (params.emotion or self.neutral)


STYLE_KINDS: dict[str, Callable[..., StyleSource]] = {
    "none": lambda pack, device="cpu": NoStyle(),
    "emotivoice-prompt": lambda pack, device="cpu": PromptStyle(pack, device),
    "emotion-table": lambda pack, device="cpu": EmotionTable(pack),
}
"""Style kind (a pack's ``style.kind``) → builder taking the pack and a device."""


def style_source(pack: Pack, device: str = "cpu") -> StyleSource:
    """The style source the pack's config names; PackError listing the kinds for an unknown one."""
    kind = pack.config.style.get("kind", "none")
    builder = STYLE_KINDS.get(kind)
    if builder is None:
        raise PackError(
            f"{pack.path / 'config.json'}: unknown style kind {kind!r}; known: {', '.join(STYLE_KINDS)}"
        )
    return builder(pack, device)


def speaker_value(pack: Pack, speaker: Speaker) -> int | np.ndarray | None:
    """A row's speaker input for ``pack``: a table row, an embedding [D] float32, or None (no input)."""
    kind = pack.config.speaker_input
    if kind == "none":
        return None
    if kind == "table":
        return speaker.row if speaker.row is not None else pack.speaker_row()
    if speaker.embedding is None:
        raise InvalidInput(
            f"voice {pack.name!r} speaks only with a registered voice's embedding; pass its voice id",
            param="voice",
        )
    return np.asarray(speaker.embedding, dtype=np.float32).reshape(-1)


def neutral_inputs(pack: Pack, style: StyleSource) -> dict[str, Any]:
    """One row of neutral conditioning as backend tensors (``speaker``, ``style``), for warm-up."""
    import torch

    out: dict[str, Any] = {"speaker": None, "style": None}
    kind = pack.config.speaker_input
    if kind == "table":
        out["speaker"] = torch.tensor([pack.speaker_row()], dtype=torch.int64)
    elif kind == "embedding":
        out["speaker"] = torch.zeros(1, pack.config.speaker_dim)
    if style.dim:
        row = style.vector(SynthesisParams(), "你好。")
        out["style"] = torch.from_numpy(np.asarray(row, dtype=np.float32))[None]
    return out
