"""EPUB to chapters, with ebooklib (the container and spine) and lxml (each XHTML document).

Rule: the spine's documents are read in reading order (the navigation document is skipped). Each
document with text starts a chapter; its title is its first ``h1``/``h2``, else the table of
contents' label for that document, else "". Every further ``h1``/``h2`` inside a document starts
another chapter. Paragraphs are the text of block elements (p, li, blockquote, h3–h6, pre, dd, dt,
td, figcaption, and div/section without block children), whitespace collapsed; script, style and
ruby annotations (rt, rp) are dropped. Documents without any text (covers, blank pages) yield no
chapter.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from voxserve.batch.documents import Chapter, Document, DocumentError

_HEADINGS = {"h1", "h2"}
_BLOCKS = {"p", "li", "blockquote", "h3", "h4", "h5", "h6", "pre", "dd", "dt", "td", "th", "figcaption"}
_CONTAINERS = {"div", "section", "article", "body", "aside", "header", "footer", "main"}
_DROP = {"script", "style", "rt", "rp", "head", "title"}
_SPACE = re.compile(r"\s+")


def parse_epub(data: bytes, name: str = "input") -> Document:
    """An EPUB file's bytes to a ``Document``; ``DocumentError`` if it is not a readable EPUB."""
    import ebooklib  # type: ignore[import-untyped]
    from ebooklib import epub  # type: ignore[import-untyped]
    from lxml import etree  # type: ignore[import-untyped]

    try:
        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": False})
    except (epub.EpubException, zipfile.BadZipFile, KeyError, OSError, ValueError, etree.LxmlError) as e:
        raise DocumentError(f"{name}: not a readable EPUB ({type(e).__name__}: {e})") from None
    toc = _toc_titles(book.toc)
    chapters: list[Chapter] = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        if isinstance(item, epub.EpubNav):
            continue
        try:
            sections = _sections(item.get_content())
        except (etree.LxmlError, ValueError) as e:
            raise DocumentError(f"{name}: {item.get_name()} is not readable XHTML ({e})") from None
        for k, (title, paragraphs) in enumerate(sections):
            if k == 0 and not title:
                title = toc.get(item.get_name(), "")
            if paragraphs or title:
                chapters.append(Chapter(title, tuple(paragraphs)))
    titles = book.get_metadata("DC", "title")
    return Document(titles[0][0] if titles else "", tuple(chapters), name)


def _toc_titles(toc: Any) -> dict[str, str]:
    """File name (without fragment) → first TOC label pointing at it."""
    out: dict[str, str] = {}
    for entry in toc:
        if isinstance(entry, tuple):  # (Section, [children])
            section, children = entry
            href = getattr(section, "href", "") or ""
            if href and section.title:
                out.setdefault(href.split("#")[0], section.title)
            for k, v in _toc_titles(children).items():
                out.setdefault(k, v)
        else:
            href = getattr(entry, "href", "") or ""
            if href and entry.title:
                out.setdefault(href.split("#")[0], entry.title)
    return out


def _text(el: Any) -> str:
    """Element text without dropped children, whitespace collapsed."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if _local(node) in _DROP:
            return
        if node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    return _SPACE.sub(" ", "".join(parts)).strip()


def _local(el: Any) -> str:
    tag = el.tag
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _has_block(el: Any) -> bool:
    return any(
        _local(d) in _BLOCKS or _local(d) in _HEADINGS or _local(d) in _CONTAINERS
        for d in el.iter()
        if d is not el
    )


def _sections(content: bytes) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) per h1/h2 section of one XHTML document; the first may be untitled."""
    import lxml.html  # type: ignore[import-untyped]

    if not content.strip():
        return []
    root = lxml.html.document_fromstring(content)
    sections: list[tuple[str, list[str]]] = [("", [])]

    def walk(el: Any) -> None:
        tag = _local(el)
        if tag in _DROP:
            return
        if tag in _HEADINGS:
            title = _text(el)
            if title:
                sections.append((title, []))
            return
        if tag in _BLOCKS or (tag in _CONTAINERS and not _has_block(el)):
            text = _text(el)
            if text:
                sections[-1][1].append(text)
            return
        if el.text and el.text.strip() and tag in _CONTAINERS:
            sections[-1][1].append(_SPACE.sub(" ", el.text).strip())
        for child in el:
            walk(child)
            if child.tail and child.tail.strip() and tag in _CONTAINERS:
                sections[-1][1].append(_SPACE.sub(" ", child.tail).strip())

    body = root.find(".//body")
    walk(body if body is not None else root)
    return [s for s in sections if s[0] or s[1]]
