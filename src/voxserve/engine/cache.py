"""Caches: an LRU of speaker/style embeddings, and a cache of finished audio (in memory or Redis).

Who calls what: the engine looks finished audio up by ``audio_key`` before
synthesizing a short request and stores the result after; model families that
compute speaker or style embeddings keep them in an ``EmbeddingCache``. Caches count
hits and misses. A cache failure (Redis down) is a miss, never a failed request.
They do not decide what is worth caching (the engine's size limit does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields
from typing import Generic, TypeVar, cast

import numpy as np
import torch

from voxserve.engine.audio import Timing
from voxserve.engine.controls import SynthesisParams
from voxserve.errors import InvalidInput

logger = logging.getLogger(__name__)

V = TypeVar("V")

KEY_VERSION = 1
"""Bumped when what a key covers or the stored layout changes, so old entries are never read."""


class _LRU(Generic[V]):
    """Thread-safe map bounded by entry count and total size; evicts least recently used first."""

    def __init__(self, max_items: int, max_bytes: int, size: Callable[[V], int]) -> None:
        if max_items < 1 or max_bytes < 1:
            raise InvalidInput(
                "cache limits must be positive", param="max_items" if max_items < 1 else "max_bytes"
            )
        self.max_items, self.max_bytes, self._size = max_items, max_bytes, size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        n = self._size(value)
        if n > self.max_bytes:
            return  # would evict everything and still not fit
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.nbytes -= self._size(old)
            self._data[key] = value
            self.nbytes += n
            while len(self._data) > self.max_items or self.nbytes > self.max_bytes:
                _, evicted = self._data.popitem(last=False)
                self.nbytes -= self._size(evicted)

    def __len__(self) -> int:
        return len(self._data)


class EmbeddingCache:
    """Speaker/style embeddings by key (e.g. a hash of reference audio), bounded by count and bytes.

    Stores tensors as given (callers pass CPU tensors they will not modify). Thread-safe.
    """

    def __init__(self, max_items: int = 1024, max_bytes: int = 64 << 20) -> None:
        self._lru: _LRU[torch.Tensor] = _LRU(max_items, max_bytes, lambda t: t.numel() * t.element_size())

    def get(self, key: Hashable) -> torch.Tensor | None:
        return self._lru.get(key)

    def put(self, key: Hashable, value: torch.Tensor) -> None:
        self._lru.put(key, value)

    def get_or_compute(self, key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached tensor, or ``compute()`` stored under ``key`` (two racing callers may both compute)."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    @property
    def hits(self) -> int:
        return self._lru.hits

    @property
    def misses(self) -> int:
        return self._lru.misses

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes

    def __len__(self) -> int:
        return len(self._lru)


@dataclass(frozen=True)
class CachedAudio:
    """A finished job's audio: float32 mono samples, their rate, and character timings."""

    samples: np.ndarray
    sample_rate: int
    chars: tuple[Timing, ...] = ()


def audio_key(voice: str, sentences: Sequence[str], params: SynthesisParams) -> str:
    """Cache key of a request: voice, the normalized sentences the frontend made, and every parameter."""
    spec = {
        "v": KEY_VERSION,
        "voice": voice,
        "text": list(sentences),
        "params": {f.name: getattr(params, f.name) for f in fields(params)},
    }
    return hashlib.sha256(json.dumps(spec, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class AudioCache(ABC):
    """Finished audio by ``audio_key``. ``hits``/``misses`` count lookups; ``errors`` failed backend calls."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.errors = 0

    @abstractmethod
    def get(self, key: str) -> CachedAudio | None:
        """The stored audio, or None (also when the store cannot be reached)."""

    @abstractmethod
    def put(self, key: str, audio: CachedAudio) -> None:
        """Store ``audio`` (best effort)."""

    def close(self) -> None:  # noqa: B027 (optional hook: most caches hold no connections)
        """Release connections."""

    def _count(self, found: CachedAudio | None) -> CachedAudio | None:
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found


class MemoryAudioCache(AudioCache):
    """In-process LRU bounded by entry count and bytes of samples."""

    def __init__(self, max_items: int = 512, max_bytes: int = 256 << 20) -> None:
        super().__init__()
        self._lru: _LRU[CachedAudio] = _LRU(max_items, max_bytes, lambda a: int(a.samples.nbytes))

    def get(self, key: str) -> CachedAudio | None:
        return self._count(self._lru.get(key))

    def put(self, key: str, audio: CachedAudio) -> None:
        self._lru.put(key, audio)

    def __len__(self) -> int:
        return len(self._lru)


class RedisAudioCache(AudioCache):
    """Redis hashes ``{prefix}{key}`` with raw little-endian float32 ``samples`` and JSON ``meta``, with a TTL.

    Several engine processes can share one Redis. Network errors and timeouts count in
    ``errors`` and behave as misses; the request is synthesized instead. After a failure
    the cache is skipped for ``retry_s`` seconds, so a Redis that is down costs each
    request nothing rather than a connect timeout.
    """

    def __init__(
        self,
        url: str,
        ttl_s: int = 24 * 3600,
        prefix: str = "voxserve:audio:",
        timeout_s: float = 0.5,
        retry_s: float = 5.0,
    ) -> None:
        import redis

        super().__init__()
        if ttl_s <= 0:
            raise InvalidInput("ttl_s must be a positive number of seconds", param="ttl_s")
        self.url, self.ttl_s, self.prefix, self.retry_s = url, int(ttl_s), prefix, retry_s
        self._down_until = 0.0
        self._redis = redis
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    def get(self, key: str) -> CachedAudio | None:
        if time.monotonic() < self._down_until:
            return self._count(None)
        try:
            fields_ = self._client.hgetall(self.prefix + key)
        except self._redis.RedisError as e:
            self._failed("get", e)
            return None
        if not fields_ or b"samples" not in fields_ or b"meta" not in fields_:
            return self._count(None)
        meta = json.loads(fields_[b"meta"])
        samples = np.frombuffer(cast(bytes, fields_[b"samples"]), dtype="<f4").astype(np.float32)
        chars = tuple(Timing(t, s, e) for t, s, e in meta["chars"])
        return self._count(CachedAudio(samples, int(meta["sample_rate"]), chars))

    def put(self, key: str, audio: CachedAudio) -> None:
        meta = {"sample_rate": audio.sample_rate, "chars": [[t.text, t.start, t.end] for t in audio.chars]}
        samples = np.ascontiguousarray(audio.samples, dtype="<f4").tobytes()
        if time.monotonic() < self._down_until:
            return
        try:
            pipe = self._client.pipeline()
            pipe.hset(
                self.prefix + key, mapping={"samples": samples, "meta": json.dumps(meta, ensure_ascii=False)}
            )
            pipe.expire(self.prefix + key, self.ttl_s)
            pipe.execute()
        except self._redis.RedisError as e:
            self._failed("put", e)

    def close(self) -> None:
        self._client.close()

    def _failed(self, op: str, error: Exception) -> None:
        self._down_until = time.monotonic() + self.retry_s
        self.errors += 1
        self.misses += op == "get"
        logger.warning("audio cache %s on %s failed: %s", op, self.url, error)


def open_audio_cache(spec: str | AudioCache | None) -> AudioCache | None:
    """An audio cache from a spec: None or "" (none), "memory", "redis://host:port/db" (or rediss://, unix://)."""
    if spec is None or isinstance(spec, AudioCache):
        return spec
    if not isinstance(spec, str):
        raise InvalidInput("cache must be a string, an AudioCache or None", param="cache")
    if spec in ("", "none"):
        return None
    if spec == "memory":
        return MemoryAudioCache()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisAudioCache(spec)
    raise InvalidInput(f"unknown cache {spec!r}; use 'memory' or a redis:// URL", param="cache")
