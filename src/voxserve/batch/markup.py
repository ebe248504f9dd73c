"""The per-span markup inside batch texts: voice and emotion spans, and pauses.

Syntax:

- ``[voice:NAME emotion:LABEL]…[/]`` speaks the enclosed text with that voice and/or emotion;
  NAME is any voice name the API accepts (``baker``, ``emotivoice:8051``); either key may be left out (``[emotion:开心]…[/]``). Spans nest: an inner span overrides only the
  keys it names and ``[/]`` closes the innermost open span. Spans may cross paragraphs but not
  chapters: every span must be closed in the chapter that opens it.
- ``[pause:800ms]``, ``[pause:1.5s]``, ``[pause:2s]``: that much silence, 0 < length ≤ 60 s. A pause
  replaces the punctuation pause at that place (the gap between the sentences around it is
  exactly the pause); text on both sides of a pause becomes separate sentences.
- A ``[`` that does not start ``[voice:``, ``[emotion:``, ``[pause:`` or ``[/]`` is ordinary text.

A malformed tag, an unclosed span or a stray ``[/]`` raises ``MarkupError`` with the line and
column (1-based) in the chapter's text. Names are not checked here (voices and emotions are
validated with the loaded voices, before synthesis, by ``plan``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxserve.errors import InvalidInput

MAX_PAUSE_S = 60.0
"""Longest pause one tag may ask for, seconds."""

_TAG = re.compile(r"\[\s*(?:(?P<close>/)|(?P<key>voice|emotion|pause)\s*:)", re.IGNORECASE)
_PAUSE = re.compile(r"\[\s*pause\s*:\s*(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|s)\s*\]", re.IGNORECASE)
_CLOSE = re.compile(r"\[\s*/\s*\]")
_OPEN = re.compile(r"\[\s*((?:(?:voice|emotion)\s*:\s*[^\s\[\]]+\s*)+)\]", re.IGNORECASE)
_PAIR = re.compile(r"(voice|emotion)\s*:\s*([^\s\[\]]+)", re.IGNORECASE)


class MarkupError(InvalidInput):
    """Malformed markup; ``line`` and ``column`` (1-based) locate it in the chapter text."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}", param="input")
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Text:
    """Text spoken with ``voice``/``emotion`` (None: the job's default); ``start`` is its offset.

    ``tag`` is the offset of the innermost open span tag (None outside spans): where errors about
    the span's voice or emotion point.
    """

    text: str
    voice: str | None
    emotion: str | None
    start: int
    tag: int | None = None


@dataclass(frozen=True)
class Pause:
    """Silence of ``seconds`` at offset ``start``."""

    seconds: float
    start: int


Piece = Text | Pause


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _error(text: str, offset: int, message: str) -> MarkupError:
    return MarkupError(message, *position(text, offset))


def parse(text: str) -> list[Piece]:
    """Split ``text`` into spoken runs and pauses (see the module docstring); empty runs are dropped."""
    pieces: list[Piece] = []
    stack: list[tuple[str | None, str | None, int]] = []
    voice: str | None = None
    emotion: str | None = None
    run_start = 0
    buf: list[str] = []
    pos = 0

    def flush(next_start: int) -> None:
        nonlocal run_start
        chunk = "".join(buf)
        if chunk.strip():
            pieces.append(Text(chunk, voice, emotion, run_start, stack[-1][2] if stack else None))
        buf.clear()
        run_start = next_start

    for m in _TAG.finditer(text):
        buf.append(text[pos : m.start()])
        if m["close"]:
            close = _CLOSE.match(text, m.start())
            if close is None:
                raise _error(text, m.start(), "malformed closing tag; write [/]")
            if not stack:
                raise _error(text, m.start(), "[/] closes no open span")
            flush(close.end())
            voice, emotion, _ = stack.pop()
            pos = close.end()
        elif m["key"].lower() == "pause":
            pause = _PAUSE.match(text, m.start())
            if pause is None:
                raise _error(text, m.start(), "malformed pause; write [pause:800ms] or [pause:1.5s]")
            seconds = float(pause["value"]) / (1000.0 if pause["unit"].lower() == "ms" else 1.0)
            if not 0.0 < seconds <= MAX_PAUSE_S:
                raise _error(text, m.start(), f"pause must be more than 0 and at most {MAX_PAUSE_S:g} s")
            flush(pause.end())
            pieces.append(Pause(seconds, m.start()))
            pos = pause.end()
        else:
            opening = _OPEN.match(text, m.start())
            if opening is None:
                raise _error(
                    text, m.start(), "malformed span tag; write [voice:NAME emotion:LABEL] (either key)"
                )
            pairs = [(k.lower(), v) for k, v in _PAIR.findall(opening[1])]
            keys = [k for k, _ in pairs]
            if len(set(keys)) != len(keys):
                raise _error(text, m.start(), "a span tag names the same key twice")
            flush(opening.end())
            stack.append((voice, emotion, m.start()))
            values = dict(pairs)
            voice = values.get("voice", voice)
            emotion = values.get("emotion", emotion)
            pos = opening.end()
    buf.append(text[pos:])
    flush(len(text))
    if stack:
        raise _error(text, stack[-1][2], "span is never closed; end it with [/]")
    return pieces


def strip(text: str) -> str:
    """``text`` without its markup (pauses and tags removed); raises ``MarkupError`` like ``parse``."""
    return "".join(p.text for p in parse(text) if isinstance(p, Text))
