"""A folder as a zip archive, produced piece by piece while it is sent (no temporary file, no seeking).

``zipfile`` writes data descriptors when its file cannot seek, so the archive streams in one pass;
compressed audio is stored, text and PCM are deflated. Used for batch-job results.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path


class _Sink:
    """A write-only, unseekable file that hands what was written to a generator (zip streaming)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        parts, self.parts = self.parts, []
        if parts:
            yield b"".join(parts)


_PACKED = {".srt", ".vtt", ".json", ".wav", ".pcm"}
"""Suffixes worth deflating; compressed audio (mp3, opus, aac, flac) is stored as is."""


def zip_stream(folder: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The files under ``folder`` (temporary and hidden ones left out) as a zip, piece by piece.

    A plain generator: Starlette iterates it in a worker thread, so file reads never block the loop.
    """
    sink = _Sink()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p.relative_to(folder)))
    with zipfile.ZipFile(sink, "w") as zf:  # type: ignore[call-overload]
        for path in files:
            info = zipfile.ZipInfo.from_file(path, path.relative_to(folder).as_posix())
            info.compress_type = (
                zipfile.ZIP_DEFLATED if path.suffix.lower() in _PACKED else zipfile.ZIP_STORED
            )
            with path.open("rb") as src, zf.open(info, "w") as dst:
                while block := src.read(chunk):
                    dst.write(block)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part.endswith(".tmp") for part in rel.parts)
