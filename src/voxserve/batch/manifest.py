"""The output directory's ``manifest.json``, atomic file writes, and the check that a chapter is done.

A chapter counts as finished when the manifest has an entry for its index whose ``hash`` equals
the chapter's current hash (its title and text plus the job's settings fingerprint) and whose
files exist with the recorded SHA-256 (status "done"), or that has nothing speakable (status
"empty": no files are written for it). Files are written to a temporary name in the same directory,
flushed to disk, then renamed over the final name, so a crash leaves either the old file or the new
one; the manifest is rewritten the same way after every finished chapter. A crash therefore loses
at most the chapter being rendered.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from voxserve.batch.documents import Chapter
from voxserve.errors import VoxserveError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class BatchIOError(VoxserveError):
    """Output could not be written (disk full, permissions, a missing directory); names the path."""

    status = 507
    code = "storage_error"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's content, or None when it cannot be read."""
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def chapter_hash(chapter: Chapter, fingerprint: str) -> str:
    """Content hash of a chapter as rendered with settings ``fingerprint``."""
    blob = json.dumps([chapter.title, list(chapter.paragraphs), fingerprint], ensure_ascii=False)
    return sha256(blob.encode("utf-8"))[:32]


def _write_file(path: Path, data: bytes) -> None:
    """Write and flush ``data`` to ``path`` (the one place that touches the disk; tests patch it)."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; ``BatchIOError`` ("disk full" for ENOSPC) on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_file(tmp, data)
        os.replace(tmp, path)
    except OSError as e:
        # Nothing may have been created, or the disk refuses even that; the error below says why.
        with contextlib.suppress(OSError):
            tmp.unlink()
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise BatchIOError(f"disk full writing {path} ({len(data)} bytes)") from None
        raise BatchIOError(f"cannot write {path}: {e.strerror or e}") from None


def load(out_dir: Path) -> dict[str, Any] | None:
    """The manifest in ``out_dir``, or None if absent or unreadable (then every chapter is redone)."""
    try:
        data = json.loads((out_dir / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        return None
    return data


def save(out_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write(out_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))


def finished(entry: dict[str, Any] | None, out_dir: Path, expected_hash: str) -> bool:
    """Whether ``entry`` describes a finished chapter with this hash whose files are intact."""
    if not entry or entry.get("hash") != expected_hash:
        return False
    if entry.get("status") == "empty":  # nothing speakable: no files to check
        return True
    if entry.get("status") != "done":
        return False
    audio = entry.get("audio") or {}
    if not audio.get("path") or file_sha256(out_dir / audio["path"]) != audio.get("sha256"):
        return False
    return all((out_dir / p).is_file() for p in (entry.get("subtitles") or {}).values())


def chapter_entries(manifest: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    """Chapter entries of a manifest by index."""
    if not manifest:
        return {}
    return {c["index"]: c for c in manifest.get("chapters", []) if isinstance(c, dict) and "index" in c}
