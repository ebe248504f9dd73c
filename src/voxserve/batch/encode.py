"""A chapter's audio file encoded from its pieces (sentences and silences), with no chapter-sized array.

``encode_parts(fmt, parts, rate)`` gives the same bytes as ``server.encoding.encode_file(fmt,
np.concatenate(parts), rate)`` (the tests check every format): PCM and WAV are elementwise, and
libsndfile (FLAC) and PyAV's encoders (MP3, Opus, AAC) buffer samples into their own frames, so
the cut between writes does not show. Why bother: a chapter is often 100+ MB of float32, and on
a virtual machine every megabyte of memory a process touches for the first time costs ~2 ms
(page faults into a fresh guest), so one concatenated copy plus one clipped copy per chapter
cost more than encoding it. Sentences are small and their memory is reused.

Does not write files (``manifest.atomic_write`` does) or decide formats (``settings.FORMATS``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import numpy as np

from voxserve.batch.plan import ChapterPlan

_ZEROS = np.zeros(1 << 16, dtype=np.float32)


def silence(n: int) -> Iterator[np.ndarray]:
    """``n`` zero samples as read-only views of one shared buffer (no allocation)."""
    while n > 0:
        k = min(n, len(_ZEROS))
        yield _ZEROS[:k]
        n -= k


def chapter_parts(
    plan: ChapterPlan, samples: list[np.ndarray], sample_rate: int, volume: float = 1.0
) -> Iterator[np.ndarray]:
    """The chapter in order: its lead silence, then each sentence followed by its gap (none after the last).

    The same samples as ``render.assemble``; ``volume`` scales and clips each piece as it clips the whole.
    """
    yield from silence(round(plan.lead * sample_rate))
    last = len(plan.sentences) - 1
    for k, (s, wav) in enumerate(zip(plan.sentences, samples, strict=True)):
        yield wav if volume == 1.0 else np.clip(wav * volume, -1.0, 1.0)
        if k < last:
            yield from silence(round(s.gap_after * sample_rate))


def encode_parts(fmt: str, parts: Iterable[np.ndarray], sample_rate: int) -> bytes:
    """One complete file of ``fmt`` holding ``parts`` played in order (see the module docstring)."""
    from voxserve.server.encoding import FORMATS, AvEncoder, to_pcm16, wav_header

    if fmt in ("pcm", "wav"):
        data = b"".join(to_pcm16(p) for p in parts)
        return data if fmt == "pcm" else wav_header(sample_rate, len(data)) + data
    if fmt == "flac":  # as encode_file: libsndfile, 16-bit
        import soundfile as sf  # type: ignore[import-untyped]

        buf = io.BytesIO()
        with sf.SoundFile(buf, "w", sample_rate, 1, "PCM_16", format="FLAC") as f:
            for p in parts:
                if len(p):
                    f.write(np.clip(p, -1.0, 1.0))
        return buf.getvalue()
    if fmt not in FORMATS:
        raise KeyError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    enc = AvEncoder(fmt, sample_rate, seekable=True)
    for p in _coalesce(parts, 1 << 16):
        enc.encode(p)
    return enc.finish()


def _coalesce(parts: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Pieces of at least ``size`` samples (the last may be shorter): fewer, larger encoder calls."""
    held: list[np.ndarray] = []
    n = 0
    for p in parts:
        held.append(p)
        n += len(p)
        if n >= size:
            yield np.concatenate(held)
            held, n = [], 0
    if n:
        yield np.concatenate(held)
