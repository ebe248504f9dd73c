"""Where registered voices live: the ``VoiceStore`` interface, an SQLite store and a Redis store.

A store keeps ``VoiceRecord``s (id, name, creation time, the float32 embedding, a little
provenance) and nothing else: it does not validate names, compute embeddings or cache; the
``VoiceRegistry`` does. ``open_store(spec)`` picks the store from a path or URL.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.errors import VoxserveError


class StoreError(VoxserveError):
    """The voice store cannot be reached or holds something unreadable (HTTP 503)."""

    status = 503
    code = "voice_store_unavailable"


@dataclass(frozen=True)
class VoiceRecord:
    """One registered voice. ``embedding`` is float32 [dim], unit length, read-only."""

    id: str
    name: str
    created_at: float
    """Unix time of registration (seconds)."""
    embedding: np.ndarray = field(compare=False, repr=False)
    files: int = 1
    """How many reference clips were averaged (count)."""
    speech_seconds: float = 0.0
    """Speech in all clips after silence was cut (seconds)."""
    encoder: str = "ge2e"
    """Which speaker encoder made ``embedding`` (embeddings of different encoders do not mix)."""

    def meta(self) -> dict[str, Any]:
        """Everything but id, name, time and embedding, as JSON-ready values."""
        return {"files": self.files, "speech_seconds": self.speech_seconds, "encoder": self.encoder}

    @classmethod
    def build(cls, id: str, name: str, created_at: float, blob: bytes, meta: str | bytes) -> VoiceRecord:
        """A record from its stored form (embedding bytes and meta JSON); ``StoreError`` if malformed."""
        try:
            extra = json.loads(meta)
            embedding = np.frombuffer(blob, dtype="<f4").astype(np.float32)
            embedding.setflags(write=False)
            return cls(
                id=id,
                name=name,
                created_at=float(created_at),
                embedding=embedding,
                files=int(extra.get("files", 1)),
                speech_seconds=float(extra.get("speech_seconds", 0.0)),
                encoder=str(extra.get("encoder", "ge2e")),
            )
        except (ValueError, TypeError, AttributeError) as e:
            raise StoreError(f"voice {id}: stored record is unreadable ({e})") from e


def _blob(record: VoiceRecord) -> bytes:
    return np.ascontiguousarray(record.embedding, dtype="<f4").tobytes()


class VoiceStore(ABC):
    """Persistent id -> ``VoiceRecord`` map. Thread-safe. Called by ``VoiceRegistry`` only."""

    @abstractmethod
    def add(self, record: VoiceRecord) -> None:
        """Store a new record (its id is fresh; an existing id raises ``StoreError``)."""

    @abstractmethod
    def get(self, voice_id: str) -> VoiceRecord | None:
        """The record, or None if there is none."""

    @abstractmethod
    def list(self) -> builtins.list[VoiceRecord]:
        """All records, oldest first."""

    @abstractmethod
    def delete(self, voice_id: str) -> bool:
        """Remove a record; False if there was none."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (the store reopens on next use)."""


class SQLiteVoiceStore(VoiceStore):
    """Voices in one SQLite file (WAL journal, so readers in other processes do not block writers).

    The file and its directory are created on first use, not at construction.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS voices (id TEXT PRIMARY KEY, name TEXT NOT NULL,"
                    " created_at REAL NOT NULL, embedding BLOB NOT NULL, meta TEXT NOT NULL)"
                )
                conn.commit()
            except (sqlite3.Error, OSError) as e:
                raise StoreError(f"voice store {self.path}: {e}") from e
            self._conn = conn
        return self._conn

    def _run(
        self, sql: str, args: tuple[Any, ...] = (), write: bool = False
    ) -> builtins.list[tuple[Any, ...]]:
        with self._lock:
            if not write and self._conn is None and not self.path.exists():
                return []  # reading never creates the file
            db = self._db()
            try:
                rows = db.execute(sql, args).fetchall()
                if write:
                    db.commit()
                return rows
            except sqlite3.IntegrityError as e:
                db.rollback()
                raise StoreError(f"voice store {self.path}: {e}") from e
            except sqlite3.Error as e:
                raise StoreError(f"voice store {self.path}: {e}") from e

    def add(self, record: VoiceRecord) -> None:
        self._run(
            "INSERT INTO voices VALUES (?, ?, ?, ?, ?)",
            (record.id, record.name, record.created_at, _blob(record), json.dumps(record.meta())),
            write=True,
        )

    def get(self, voice_id: str) -> VoiceRecord | None:
        rows = self._run("SELECT * FROM voices WHERE id = ?", (voice_id,))
        return VoiceRecord.build(*rows[0]) if rows else None

    def list(self) -> builtins.list[VoiceRecord]:
        return [VoiceRecord.build(*row) for row in self._run("SELECT * FROM voices ORDER BY created_at, id")]

    def delete(self, voice_id: str) -> bool:
        with self._lock:
            if self._conn is None and not self.path.exists():
                return False
            db = self._db()
            try:
                deleted = db.execute("DELETE FROM voices WHERE id = ?", (voice_id,)).rowcount
                db.commit()
            except sqlite3.Error as e:
                raise StoreError(f"voice store {self.path}: {e}") from e
        return deleted > 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RedisVoiceStore(VoiceStore):
    """Voices in Redis: a hash per voice at ``<prefix><id>`` and a sorted set ``<prefix>index`` by time.

    For several servers sharing voices. Connection failures raise ``StoreError`` (503); the
    client connects on first use.
    """

    def __init__(self, url: str, prefix: str = "voxserve:voice:", timeout_s: float = 2.0) -> None:
        self.url, self.prefix, self.timeout_s = url, prefix, timeout_s
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            try:
                import redis
            except ImportError as e:
                raise StoreError("a redis:// voice store needs the redis package (pip install redis)") from e
            self._client = redis.Redis.from_url(
                self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
            )
        return self._client

    def _call(self, fn: Any) -> Any:
        import redis

        try:
            return fn(self._redis())
        except redis.RedisError as e:
            raise StoreError(f"voice store {self.url}: {e}") from e

    @property
    def _index(self) -> str:
        return f"{self.prefix}index"

    def add(self, record: VoiceRecord) -> None:
        key = f"{self.prefix}{record.id}"
        mapping = {
            "name": record.name.encode("utf-8"),
            "created_at": repr(record.created_at),
            "embedding": _blob(record),
            "meta": json.dumps(record.meta()),
        }

        def write(r: Any) -> None:
            if not r.hsetnx(key, "name", mapping["name"]):
                raise StoreError(f"voice store {self.url}: voice {record.id} already exists")
            pipe = r.pipeline(transaction=True)
            pipe.hset(key, mapping=mapping)
            pipe.zadd(self._index, {record.id: record.created_at})
            pipe.execute()

        self._call(write)

    def _record(self, voice_id: str, raw: dict[bytes, bytes]) -> VoiceRecord | None:
        if not raw or b"embedding" not in raw:
            return None
        try:
            name = raw[b"name"].decode("utf-8")
        except (KeyError, UnicodeDecodeError) as e:
            raise StoreError(f"voice {voice_id}: stored name is unreadable") from e
        return VoiceRecord.build(voice_id, name, float(raw.get(b"created_at", b"0")), raw[b"embedding"],
                                 raw.get(b"meta", b"{}"))  # fmt: skip

    def get(self, voice_id: str) -> VoiceRecord | None:
        return self._record(voice_id, self._call(lambda r: r.hgetall(f"{self.prefix}{voice_id}")))

    def list(self) -> builtins.list[VoiceRecord]:
        def read(r: Any) -> builtins.list[tuple[str, dict[bytes, bytes]]]:
            ids = [i.decode() for i in r.zrange(self._index, 0, -1)]
            pipe = r.pipeline(transaction=False)
            for voice_id in ids:
                pipe.hgetall(f"{self.prefix}{voice_id}")
            return list(zip(ids, pipe.execute(), strict=True))

        records = [self._record(i, raw) for i, raw in self._call(read)]
        return [r for r in records if r is not None]

    def delete(self, voice_id: str) -> bool:
        def remove(r: Any) -> int:
            pipe = r.pipeline(transaction=True)
            pipe.delete(f"{self.prefix}{voice_id}")
            pipe.zrem(self._index, voice_id)
            return int(pipe.execute()[0])

        return bool(self._call(remove))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def open_store(spec: str | Path) -> VoiceStore:
    """A store from ``redis://`` / ``rediss://`` / ``unix://`` URLs, ``sqlite:///path``, or a file path."""
    text = str(spec)
    if text.startswith(("redis://", "rediss://", "unix://")):
        return RedisVoiceStore(text)
    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://")
    if not text:
        raise StoreError("voice store: empty path")
    return SQLiteVoiceStore(text)
