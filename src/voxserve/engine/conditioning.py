"""A pack's per-row conditioning: its speaker input and its style vector, as the pack's config says.

Who calls what: a ``Voice`` builds one ``StyleSource`` from its pack (``style_source``) and,
per sentence, asks it for that row's style vector from the request's parameters and the
sentence text; ``speaker_value`` turns a resolved ``Speaker`` into the row's speaker input.
The engine puts both on each batch row, so rows of different speakers and emotions share a
batch. An ``embedding`` pack (the clone voice) takes a d-vector on every row: a registered
voice's own, or, for the pack's default and named speakers, a row of its speaker table file
(``speaker_table`` in config.json, ``speakers.safetensors``), so those rows batch with cloned
voices. A pack's ``style`` entry picks the kind:

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

import json
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
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


SPEAKER_TABLE_KEY = "embeddings"
"""Tensor name in a speaker table file: float32 [len(speakers), speaker_dim]."""


def speaker_table_file(pack: Pack) -> Path | None:
    """The file of an ``embedding`` pack's speaker vectors (config key ``speaker_table``), None without one."""
    try:
        raw = json.loads((pack.path / "config.json").read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise PackError(f"{pack.path / 'config.json'}: unreadable ({e})") from e
    name = raw.get("speaker_table") if isinstance(raw, dict) else None
    if name is None:
        return None
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise PackError(f"{pack.path / 'config.json'}: key 'speaker_table' must be a file name in the pack")
    return pack.path / name


def has_speaker_table(pack: Pack) -> bool:
    """True when ``pack`` names its speakers by vectors it ships (an ``embedding`` pack with a table file)."""
    return pack.config.speaker_input == "embedding" and _table(pack) is not None


def speaker_vectors(pack: Pack) -> np.ndarray:
    """An ``embedding`` pack's speaker table, float32 [len(speakers), speaker_dim], read-only.

    Read once per ``Pack`` object (a pack's files are fixed once loaded, as its config is).
    PackError when the pack has none, or its file does not match ``speakers`` and ``speaker_dim``.
    """
    table = _table(pack)
    if table is None:
        raise PackError(f"{pack.path / 'config.json'}: voice {pack.name!r} ships no speaker table")
    return table


_TABLES: weakref.WeakKeyDictionary[Pack, np.ndarray | None] = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def _table(pack: Pack) -> np.ndarray | None:
    with _TABLES_LOCK:
        if pack in _TABLES:
            return _TABLES[pack]
    table = _read_table(pack) if pack.config.speaker_input == "embedding" else None
    with _TABLES_LOCK:
        _TABLES[pack] = table
    return table


def _read_table(pack: Pack) -> np.ndarray | None:
    from safetensors.numpy import load_file

    path = speaker_table_file(pack)
    if path is None:
        return None
    if not path.is_file():
        raise PackError(f"{pack.path}: missing speaker table {path.name}")
    try:
        table = load_file(str(path))[SPEAKER_TABLE_KEY].astype(np.float32)
    except Exception as e:  # a corrupt file or a missing key; name the file
        raise PackError(f"{path}: unreadable speaker table ({type(e).__name__}: {e})") from e
    want = (len(pack.config.speakers), pack.config.speaker_dim)
    if table.shape != want:
        raise PackError(f"{path}: {SPEAKER_TABLE_KEY!r} is {list(table.shape)}, expected {list(want)}")
    table.setflags(write=False)
    return table


def speaker_value(pack: Pack, speaker: Speaker) -> int | np.ndarray | None:
    """A row's speaker input for ``pack``: a table row, an embedding [D] float32, or None (no input).

    An ``embedding`` pack gets the speaker's own embedding, else its row (default: the pack's
    default speaker) of the pack's speaker table; InvalidInput when the pack has no table.
    """
    kind = pack.config.speaker_input
    if kind == "none":
        return None
    if kind == "table":
        return speaker.row if speaker.row is not None else pack.speaker_row()
    if speaker.embedding is not None:
        return np.asarray(speaker.embedding, dtype=np.float32).reshape(-1)
    if not has_speaker_table(pack):
        raise InvalidInput(
            f"voice {pack.name!r} speaks only with a registered voice's embedding; pass its voice id",
            param="voice",
        )
    row = speaker.row if speaker.row is not None else pack.speaker_row()
    return speaker_vectors(pack)[row]


def neutral_inputs(pack: Pack, style: StyleSource) -> dict[str, Any]:
    """One row of neutral conditioning as backend tensors (``speaker``, ``style``), for warm-up."""
    import torch

    out: dict[str, Any] = {"speaker": None, "style": None}
    kind = pack.config.speaker_input
    if kind == "table":
        out["speaker"] = torch.tensor([pack.speaker_row()], dtype=torch.int64)
    elif kind == "embedding":  # the default speaker's vector where the pack ships a table
        vec = speaker_vectors(pack)[pack.speaker_row()] if has_speaker_table(pack) else None
        out["speaker"] = torch.zeros(1, pack.config.speaker_dim) if vec is None else torch.tensor(vec)[None]
    if style.dim:
        row = style.vector(SynthesisParams(), "你好。")
        out["style"] = torch.from_numpy(np.asarray(row, dtype=np.float32))[None]
    return out
