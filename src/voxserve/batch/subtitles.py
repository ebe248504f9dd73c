"""Subtitle files from sentence cues: SubRip (.srt) and WebVTT (.vtt).

Both formats get the same cues; text is written on one line (newlines become spaces). Parsing
is provided for tests and for checking files written here, not as a general subtitle reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from voxserve.batch.render import Cue


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _line(text: str) -> str:
    return " ".join(text.split())


def srt(cues: Iterable[Cue]) -> str:
    """SubRip text: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""
    blocks = [
        f"{n}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{_line(c.text)}\n"
        for n, c in enumerate(cues, 1)
    ]
    return "\n".join(blocks)


def vtt(cues: Iterable[Cue]) -> str:
    """WebVTT text: the header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{_line(c.text)}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


_TIME = re.compile(r"(\d+):(\d{2}):(\d{2})[,.](\d{3})\s*-->\s*(\d+):(\d{2}):(\d{2})[,.](\d{3})")


def parse(text: str) -> list[Cue]:
    """Cues of an SRT or WebVTT text written by this module."""
    cues = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().split("\n")
        for k, line in enumerate(lines):
            m = _TIME.search(line)
            if m:
                g = [int(x) for x in m.groups()]
                start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
                end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
                cues.append(Cue(start, end, " ".join(lines[k + 1 :])))
                break
    return cues
