"""Who speaks: a request's ``voice`` resolved to a pack and the conditioning of its batch row.

The names a request's ``voice`` may carry:

- a pack name (``baker``, ``emotivoice``): that pack's default speaker;
- a speaker of a multi-speaker pack (EmotiVoice's speaker list), as ``<pack>:<speaker>``;
- a registered (cloned) voice id such as ``voice_3f9a...``, which a ``VoiceDirectory`` (the voice
  registry) resolves to the cloning pack plus the voice's d-vector.

A ``Speaker`` is what travels with a job down to the backends: each batch row carries its own
speaker, so requests for different voices of one pack share a batch. This module only defines
the contract; the engine resolves names and the registry implements ``VoiceDirectory``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Speaker:
    """The pack to render with and, for multi-speaker packs, which speaker.

    ``row`` is a row of the pack's speaker table (EmotiVoice); ``embedding`` a float32
    d-vector (cloned voices). At most one of them is set; neither means the pack's default.
    ``voice_id`` is the public name the request used (for logs, caches and metrics).
    """

    pack: str
    row: int | None = None
    embedding: np.ndarray | None = field(default=None, compare=False, hash=False)
    voice_id: str = ""

    def cache_key(self) -> str:
        """A stable string that tells speakers apart in caches (embeddings by their voice id)."""
        if self.embedding is not None:
            return f"{self.pack}/emb:{self.voice_id}"
        return f"{self.pack}/row:{self.row}" if self.row is not None else self.pack


class VoiceDirectory(Protocol):
    """Resolves voice ids that are not pack names (registered voices). The registry implements it."""

    def lookup(self, voice_id: str) -> Speaker | None:
        """The speaker registered as ``voice_id``, or None when this directory does not know it."""
        ...
