"""Documents for batch synthesis: plain text, Markdown and EPUB read into chapters of paragraphs.

Chapter rules (the same for files and uploads):

- **txt**: a line that is a chapter heading starts a chapter: ``第一章 …`` / ``第12回`` (第 + number +
  章节回卷部篇集), ``Chapter 1 …`` / ``CHAPTER IV`` / ``Part Two`` / ``Book 3`` (word + number or roman
  numeral or number word), or one of 序章 楔子 序言 前言 引子 尾声 后记, alone on a line of at most
  60 characters. Text before the first heading becomes an untitled chapter. Without any heading
  line, sections separated by two or more blank lines become chapters, untitled. Every non-empty
  line is a paragraph.
- **md**: ATX headings (``#`` … ``######``). Chapters start at the shallowest heading level that
  occurs more than once (or, if none repeats, the shallowest level present); one shallower heading
  before the first chapter becomes the document's title; deeper headings stay in the text as
  paragraphs. Paragraphs are blocks separated by blank lines; code blocks, HTML tags, images,
  tables' pipes, list and quote markers, emphasis and link targets are dropped (link text stays).
- **epub**: see ``voxserve.batch.epub``.

Text is kept as written, markup included (``[voice:…]`` spans are parsed later, per chapter).
Nothing here synthesizes or normalizes text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from voxserve.errors import InvalidInput

KINDS = ("txt", "md", "epub")
_SUFFIXES = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".epub": "epub"}


class DocumentError(InvalidInput):
    """The input cannot be read as a document: missing, not UTF-8, a corrupt EPUB, or no text."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="input")


@dataclass(frozen=True)
class Chapter:
    """One chapter: its title ("" when the source has none) and its paragraphs, in order."""

    title: str
    paragraphs: tuple[str, ...]

    @property
    def text(self) -> str:
        """The paragraphs joined by blank lines (what markup positions refer to)."""
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True)
class Document:
    """A whole input: a title ("" if unknown), its non-empty chapters, and where it came from."""

    title: str
    chapters: tuple[Chapter, ...]
    source: str


def kind_of(name: str) -> str:
    """The document kind for a file name by its suffix; ``DocumentError`` for an unknown suffix."""
    kind = _SUFFIXES.get(Path(name).suffix.lower())
    if kind is None:
        raise DocumentError(f"{name}: unknown document type; use .txt, .md or .epub")
    return kind


def read_document(path: str | Path, kind: str | None = None) -> Document:
    """Read a document file; ``kind`` (txt, md, epub) defaults to the file's suffix."""
    path = Path(path)
    kind = kind or kind_of(path.name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DocumentError(f"{path}: is a directory, not a document") from None
    except OSError as e:
        raise DocumentError(f"{path}: cannot read ({e.strerror or e})") from None
    return parse_document(data, kind, name=str(path))


def parse_document(data: bytes, kind: str, name: str = "input") -> Document:
    """Parse a document held in memory (an upload); ``name`` appears in error messages."""
    if kind == "epub":
        from voxserve.batch.epub import parse_epub

        doc = parse_epub(data, name)
    elif kind in ("txt", "md"):
        text = decode_text(data, name)
        doc = parse_markdown(text, name) if kind == "md" else parse_txt(text, name)
    else:
        raise DocumentError(f"{name}: unknown document kind {kind!r}; known: {', '.join(KINDS)}")
    if not doc.chapters:
        raise DocumentError(f"{name}: the document has no text")
    return doc


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (a BOM allowed) to text; ``DocumentError`` naming the byte offset otherwise."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DocumentError(f"{name}: not UTF-8 text (bad byte at offset {e.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


_NUMBER = r"[0-9０-９零〇一二三四五六七八九十百千两壹贰叁肆伍陆柒捌玖拾佰仟]+"
_WORD_NUMBER = (
    r"(?:[0-9]+|[IVXLCDM]+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|first|second|third|last)"
)
TXT_HEADING = re.compile(
    rf"^(?:第{_NUMBER}[章节回卷部篇集](?:[\s:：.、].*)?|(?i:chapter|part|book)\s+{_WORD_NUMBER}\b.*"
    r"|序章|楔子|序言|前言|引子|尾声|后记)$"
)
"""A txt line (stripped) that starts a chapter; see the module docstring."""


def parse_txt(text: str, name: str = "input") -> Document:
    """Plain text to chapters by heading lines, else by runs of two or more blank lines."""
    lines = [line.strip() for line in text.split("\n")]
    chapters: list[Chapter] = []
    if any(len(line) <= 60 and TXT_HEADING.match(line) for line in lines):
        title, paragraphs = "", list[str]()
        for line in lines:
            if len(line) <= 60 and TXT_HEADING.match(line):
                _add(chapters, title, paragraphs)
                title, paragraphs = line, []
            elif line:
                paragraphs.append(line)
        _add(chapters, title, paragraphs)
    else:
        for section in re.split(r"\n[ \t\u3000]*\n(?:[ \t\u3000]*\n)+", text):
            _add(chapters, "", [line.strip() for line in section.split("\n") if line.strip()])
    return Document("", tuple(chapters), name)


def _add(chapters: list[Chapter], title: str, paragraphs: list[str]) -> None:
    if paragraphs or title:
        chapters.append(Chapter(title, tuple(paragraphs)))


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_INLINE = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links keep their text
    (re.compile(r"<[^>\n]+>"), ""),  # HTML tags
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"(\*\*|__|\*|~~)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
]
_MD_LINE_MARK = re.compile(r"^\s*(?:>\s*)*(?:[-*+]\s+|\d+[.)]\s+)?")
_MD_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")


def markdown_inline(line: str) -> str:
    """One Markdown line without its block markers and inline syntax."""
    line = _MD_LINE_MARK.sub("", line)
    for pattern, repl in _MD_INLINE:
        line = pattern.sub(repl, line)
    return line.replace("|", " ").strip()


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines: nothing between CJK characters, a space elsewhere."""
    out = ""
    for line in lines:
        if out and not (_wide(out[-1]) and _wide(line[0])):
            out += " "
        out += line
    return out


def _wide(c: str) -> bool:
    return ord(c) >= 0x2E80


def parse_markdown(text: str, name: str = "input") -> Document:
    """Markdown to chapters at its chapter-level headings (see the module docstring)."""
    blocks: list[tuple[int, str]] = []  # (heading level or 0 for a paragraph, text)
    lines: list[str] = []
    fenced = False

    def flush() -> None:
        if lines:
            blocks.append((0, join_lines(lines)))
            lines.clear()

    for raw in text.split("\n"):
        if _FENCE.match(raw):
            flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        heading = _MD_HEADING.match(raw)
        if heading:
            flush()
            blocks.append((len(heading[1]), markdown_inline(heading[2])))
        elif not raw.strip() or _MD_RULE.match(raw):
            flush()
        else:
            line = markdown_inline(raw)
            if line:
                lines.append(line)
    flush()
    levels = [level for level, _ in blocks if level]
    if not levels:
        return Document("", (Chapter("", tuple(t for _, t in blocks)),) if blocks else (), name)
    repeated = [lv for lv in set(levels) if levels.count(lv) > 1]
    chapter_level = min(repeated) if repeated else min(levels)
    doc_title = ""
    chapters: list[Chapter] = []
    title, paragraphs = "", list[str]()
    for level, content in blocks:
        if level == chapter_level:
            _add(chapters, title, paragraphs)
            title, paragraphs = content, []
        elif 0 < level < chapter_level and not chapters and not paragraphs and not title and not doc_title:
            doc_title = content
        elif content:
            paragraphs.append(content)
    _add(chapters, title, paragraphs)
    return Document(doc_title, tuple(chapters), name)
