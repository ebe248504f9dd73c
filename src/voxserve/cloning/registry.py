"""``VoiceRegistry``: register reference clips as a voice, find, list and delete voices.

It validates names and ids, prepares and embeds the clips (``reference``, ``encoder``),
averages the per-clip embeddings, and keeps records in a ``VoiceStore``. It is also the
engine's ``VoiceDirectory``: ``lookup("voice_...")`` gives the ``Speaker`` to render with,
from a small LRU cache in front of the store. It does not synthesize anything.
"""

from __future__ import annotations

import builtins
import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from voxserve.cloning.errors import AudioError
from voxserve.cloning.names import check_voice_id, is_voice_id, new_voice_id, validate_name
from voxserve.cloning.reference import ReferenceLimits, check_upload, prepare
from voxserve.cloning.store import VoiceRecord, VoiceStore, open_store
from voxserve.engine.speakers import Speaker
from voxserve.errors import NotFound

STORE_ENV = "VOXSERVE_VOICE_STORE"
"""Environment variable naming the voice store (a path, ``sqlite:///path`` or ``redis://`` URL)."""
PACK_ENV = "VOXSERVE_CLONE_PACK"
"""Environment variable naming the pack cloned voices render with."""
ENCODER_NAME = "ge2e-resemblyzer-0.1.4"


def default_store_path() -> Path:
    """``$VOXSERVE_HOME/voices.sqlite`` (the packs' cache root)."""
    from voxserve.packs.store import home

    return home() / "voices.sqlite"


@dataclass(frozen=True)
class VoiceConfig:
    """Load-time settings of the voice registry."""

    store: str | None = None
    """Where voices are kept: a path, ``sqlite:///path`` or ``redis://`` URL (None: ``default_store_path()``)."""
    pack: str = "clone"
    """Pack a registered voice renders with (the cloning acoustic model)."""
    limits: ReferenceLimits = field(default_factory=ReferenceLimits)
    """What uploads may be (sizes, counts, seconds of speech)."""
    cache_items: int = 1024
    """Embeddings kept in memory for ``lookup`` (count)."""
    cache_ttl_s: float = 60.0
    """How long a cached embedding is trusted before the store is asked again (seconds); bounds how
    long a voice deleted by another process (CLI, another server on Redis) stays usable here."""

    @classmethod
    def from_env(cls) -> VoiceConfig:
        """Defaults, with ``$VOXSERVE_VOICE_STORE`` and ``$VOXSERVE_CLONE_PACK`` when set."""
        return cls(store=os.environ.get(STORE_ENV) or None, pack=os.environ.get(PACK_ENV) or "clone")


class _SpeakerCache:
    """Thread-safe LRU of ``Speaker``s by voice id, each trusted for ``ttl_s`` seconds."""

    def __init__(self, max_items: int, ttl_s: float) -> None:
        self.max_items, self.ttl_s = max_items, ttl_s
        self._data: OrderedDict[str, tuple[float, Speaker]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> Speaker | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None or time.monotonic() - entry[0] > self.ttl_s:
                self._data.pop(key, None)
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: str, speaker: Speaker) -> None:
        with self._lock:
            self._data[key] = (time.monotonic(), speaker)
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


Embedder = Callable[[list[np.ndarray]], np.ndarray]
"""Prepared clips -> one unit embedding (``SpeakerEncoder.embed_many``)."""


def _default_embedder(wavs: list[np.ndarray]) -> np.ndarray:
    from voxserve.cloning.encoder import SpeakerEncoder

    return SpeakerEncoder.load().embed_many(wavs)


class VoiceRegistry:
    """Registered (cloned) voices over a ``VoiceStore``; implements ``VoiceDirectory``. Thread-safe."""

    def __init__(
        self,
        store: VoiceStore,
        config: VoiceConfig | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.store = store
        self.config = config or VoiceConfig()
        self._embed = embedder or _default_embedder
        self.cache = _SpeakerCache(self.config.cache_items, self.config.cache_ttl_s)

    @property
    def limits(self) -> ReferenceLimits:
        return self.config.limits

    def register(self, name: str, files: Sequence[bytes]) -> VoiceRecord:
        """Validate, prepare and embed ``files`` (one speaker), store the voice, return its record.

        Every check happens before the store is touched: a refused upload leaves it unchanged.
        Errors name the bad file (``files[i]``). CPU-heavy: call it off the event loop.
        """
        clean = validate_name(name)
        check_upload([len(f) for f in files], self.limits)
        refs = []
        for i, data in enumerate(files):
            try:
                refs.append(prepare(data, self.limits))
            except AudioError as e:
                raise type(e)(f"files[{i}]: {e}", "files") from e
        embedding = self._embed([r.samples for r in refs]).astype(np.float32)
        embedding.setflags(write=False)
        record = VoiceRecord(
            id=new_voice_id(),
            name=clean,
            created_at=time.time(),
            embedding=embedding,
            files=len(refs),
            speech_seconds=round(sum(r.speech_seconds for r in refs), 3),
            encoder=ENCODER_NAME,
        )
        self.store.add(record)
        self.cache.put(record.id, self._speaker(record))
        return record

    def get(self, voice_id: str) -> VoiceRecord:
        """The voice's record; ``InvalidInput`` for a malformed id, ``NotFound`` for an unknown one."""
        record = self.store.get(check_voice_id(voice_id))
        if record is None:
            raise NotFound(f"no voice {voice_id!r}", "voice_id")
        return record

    def list(self) -> builtins.list[VoiceRecord]:
        """Every registered voice, oldest first."""
        return self.store.list()

    def delete(self, voice_id: str) -> None:
        """Forget a voice (store and cache); ``NotFound`` if there is none."""
        check_voice_id(voice_id)
        self.cache.drop(voice_id)
        if not self.store.delete(voice_id):
            raise NotFound(f"no voice {voice_id!r}", "voice_id")

    def lookup(self, voice_id: str) -> Speaker | None:
        """``VoiceDirectory``: the speaker for a registered voice id, None for any other name."""
        if not is_voice_id(voice_id):
            return None
        speaker = self.cache.get(voice_id)
        if speaker is None:
            record = self.store.get(voice_id)
            if record is None:
                return None
            speaker = self._speaker(record)
            self.cache.put(voice_id, speaker)
        return speaker

    def _speaker(self, record: VoiceRecord) -> Speaker:
        return Speaker(pack=self.config.pack, embedding=record.embedding, voice_id=record.id)

    def close(self) -> None:
        self.store.close()


def open_registry(config: VoiceConfig | None = None) -> VoiceRegistry:
    """The registry for ``config`` (default: ``VoiceConfig.from_env()``), one per config per process,
    so the HTTP routes and the engine's directory share it (and its cache)."""
    config = config or VoiceConfig.from_env()
    if config.store is None:  # pin the default path now, so a changed $VOXSERVE_HOME opens a new store
        config = replace(config, store=str(default_store_path()))
    return _open(config)


@functools.lru_cache(maxsize=8)
def _open(config: VoiceConfig) -> VoiceRegistry:
    return VoiceRegistry(open_store(config.store or default_store_path()), config)
