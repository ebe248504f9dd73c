"""EmotiVoice's style encoder: a SimBERT (BERT-base, Chinese) fine-tuned with prompt classifiers.

The released ``checkpoint_*`` holds ``model`` = the state dict of a module with
``bert`` (a Hugging Face ``BertModel``) and five heads: ``pitch_clf``,
``speed_clf``, ``energy_clf``, ``emotion_clf`` (each ``.classifier`` = Linear to
its label count) and ``style_embed_proj`` (Linear to 128). Keys carry the
``module.`` prefix of DistributedDataParallel. At inference EmotiVoice uses only
BERT's pooler output (768 wide): once for the style prompt, once for the
sentence text (the "content" embedding). The heads are loaded and kept so the
checkpoint round-trips, but do not shape the embeddings.

:class:`StyleEncoder` is tensor-only. :class:`PromptEmbedder` is the one place
where text enters: it tokenizes with the BERT directory's vocabulary and caches
embeddings by text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from voxserve.errors import PackError

STYLE_DIM = 128
"""Width of ``style_embed_proj`` in the release (unused at inference)."""


@dataclass(frozen=True)
class StyleHeads:
    """Label counts of the classifier heads (rows of the pitch/speed/energy/emotion lists)."""

    pitch: int = 3
    """Pitch prompt labels (count)."""
    speed: int = 3
    """Speed prompt labels (count)."""
    energy: int = 3
    """Energy (volume) prompt labels (count)."""
    emotion: int = 7
    """Emotion labels (count)."""
    style_dim: int = STYLE_DIM
    """Output width of ``style_embed_proj`` (channels)."""


class _Head(nn.Module):
    # One classifier head; the wrapper exists only to name the weight ``*.classifier.weight``.
    def __init__(self, hidden: int, labels: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden, labels)


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise PackError(
            "the EmotiVoice style encoder needs the 'transformers' package (pip install transformers)"
        ) from e
    return transformers


def read_bert_config(bert_dir: str | Path) -> Any:
    """The ``BertConfig`` of a local Hugging Face BERT directory (never the network)."""
    path = Path(bert_dir) / "config.json"
    if not path.is_file():
        raise PackError(f"{path}: missing (a BERT directory needs config.json and vocab.txt)")
    try:
        return _transformers().BertConfig.from_pretrained(str(bert_dir), local_files_only=True)
    except (OSError, ValueError) as e:
        raise PackError(f"{path}: not a readable BERT config ({e})") from e


class StyleEncoder(nn.Module):
    """Token ids → pooled BERT embedding [B, hidden]; built from a BERT config, weights loaded separately.

    ``state_dict`` keys are the release checkpoint's minus the ``module.`` prefix
    and minus ``bert.embeddings.position_ids`` (a constant older ``transformers``
    saved). Deterministic in eval mode.
    """

    def __init__(self, bert_config: Any, heads: StyleHeads = StyleHeads()) -> None:
        super().__init__()
        self.bert = _transformers().BertModel(bert_config, add_pooling_layer=True)
        hidden = bert_config.hidden_size
        self.pitch_clf = _Head(hidden, heads.pitch)
        self.speed_clf = _Head(hidden, heads.speed)
        self.energy_clf = _Head(hidden, heads.energy)
        self.emotion_clf = _Head(hidden, heads.emotion)
        self.style_embed_proj = nn.Linear(hidden, heads.style_dim)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.pooler_output


class PromptEmbedder:
    """Text → 768-d embeddings through a :class:`StyleEncoder`, with an LRU cache keyed by text.

    Thread-safe. Texts are embedded in one padded batch per call (cache misses
    only); padding does not change an embedding beyond float rounding. It does
    not normalize text: callers pass exactly what EmotiVoice would (the prompt,
    or the sentence for the content embedding).
    """

    def __init__(self, encoder: StyleEncoder, bert_dir: str | Path, cache_size: int = 1024) -> None:
        vocab = Path(bert_dir) / "vocab.txt"
        if not vocab.is_file():
            raise PackError(f"{vocab}: missing (the style encoder's tokenizer needs it)")
        try:
            self.tokenizer = _transformers().BertTokenizerFast.from_pretrained(
                str(bert_dir), local_files_only=True
            )
        except (OSError, ValueError) as e:
            raise PackError(f"{bert_dir}: cannot build the BERT tokenizer ({e})") from e
        self.encoder = encoder.eval()
        self.cache_size = cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.max_tokens = int(encoder.bert.config.max_position_embeddings)

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """[len(texts), hidden] float32 on the encoder's device; repeated texts hit the cache."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            # Texts longer than BERT's position table are cut, as a 512-token limit must be.
            batch = self.tokenizer(
                missing, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
            ).to(self.device)
            # no_grad, not inference_mode: cached rows must stay usable in any later grad mode.
            with torch.no_grad():
                pooled = self.encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            with self._lock:
                for text, row in zip(missing, pooled, strict=True):
                    self._cache[text] = row.clone()
                    self._cache.move_to_end(text)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                fresh = dict(zip(missing, pooled, strict=True))
        else:
            fresh = {}
        with self._lock:
            rows = []
            for t in texts:
                if t in self._cache:
                    self._cache.move_to_end(t)
                    rows.append(self._cache[t])
                else:  # evicted between the two locked sections by a tiny cache: use this call's result
                    rows.append(fresh[t])
        return torch.stack(rows)

    def cache_info(self) -> dict[str, int]:
        """Current and maximum cache entries."""
        with self._lock:
            return {"size": len(self._cache), "max": self.cache_size}
