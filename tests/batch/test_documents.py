"""Document readers: chapter rules for txt, md and epub, and clear errors for unreadable input."""

from __future__ import annotations

import pytest

from voxserve.batch.documents import DocumentError, parse_document, parse_markdown, parse_txt, read_document


def make_epub(chapters: list[tuple[str, list[str]]], title: str = "测试之书", heading: bool = True) -> bytes:
    """A small EPUB built with ebooklib: one XHTML document per chapter, with a TOC and a cover page."""
    import io

    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("voxserve-test")
    book.set_title(title)
    book.set_language("zh")
    cover = epub.EpubHtml(title="cover", file_name="cover.xhtml", lang="zh")
    cover.content = "<html><body><img src='cover.png'/></body></html>"
    book.add_item(cover)
    items = []
    for k, (name, paragraphs) in enumerate(chapters, 1):
        item = epub.EpubHtml(title=name, file_name=f"ch{k}.xhtml", lang="zh")
        head = f"<h1>{name}</h1>" if heading else ""
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        item.content = f"<html><body>{head}<div>{body}</div></body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", cover, *items]
    buf = io.BytesIO()
    epub.write_epub(buf, book)
    return buf.getvalue()


def test_txt_chapters_from_heading_lines():
    doc = parse_txt("序言\n前面的话。\n\n第一章 开始\n第一段。\n第二段。\n\nChapter 2 The End\nlast line.\n")
    assert [c.title for c in doc.chapters] == ["序言", "第一章 开始", "Chapter 2 The End"]
    assert doc.chapters[1].paragraphs == ("第一段。", "第二段。")
    assert doc.chapters[2].paragraphs == ("last line.",)


def test_txt_without_headings_splits_at_double_blank_lines():
    doc = parse_txt("一。\n二。\n\n三。\n\n\n四。\n")
    assert [c.paragraphs for c in doc.chapters] == [("一。", "二。", "三。"), ("四。",)]
    assert all(c.title == "" for c in doc.chapters)


def test_txt_long_line_is_not_a_heading():
    doc = parse_txt("第一章" + "很长的句子" * 20 + "\n正文。")
    assert len(doc.chapters) == 1


def test_markdown_chapters_title_and_inline_syntax():
    text = (
        "# 书名\n\n## 第一章\n\n这是 **粗体** 和 [链接](http://x) 。\n续行。\n\n"
        "```\ncode();\n```\n\n### 小节\n\n- 列表项\n\n## 第二章\n\n> 引用 `代码`\n"
    )
    doc = parse_markdown(text)
    assert doc.title == "书名"
    assert [c.title for c in doc.chapters] == ["第一章", "第二章"]
    assert doc.chapters[0].paragraphs == ("这是 粗体 和 链接 。续行。", "小节", "列表项")
    assert doc.chapters[1].paragraphs == ("引用 代码",)


def test_markdown_keeps_span_markup():
    doc = parse_markdown("# 一\n\n[voice:baker emotion:开心]你好[/][pause:1s]再见。\n")
    assert doc.chapters[0].paragraphs == ("[voice:baker emotion:开心]你好[/][pause:1s]再见。",)


def test_epub_chapters_in_spine_order_with_titles():
    data = make_epub([("第一章", ["甲。", "乙。"]), ("第二章", ["丙。"])])
    doc = parse_document(data, "epub", "book.epub")
    assert doc.title == "测试之书"
    assert [(c.title, c.paragraphs) for c in doc.chapters] == [
        ("第一章", ("甲。", "乙。")),
        ("第二章", ("丙。",)),
    ]


def test_epub_title_from_toc_when_no_heading():
    doc = parse_document(make_epub([("序", ["一。"]), ("跋", ["二。"])], heading=False), "epub")
    assert [c.title for c in doc.chapters] == ["序", "跋"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.txt", b"\xff\xfe\x00bad", "not UTF-8"),
        ("a.epub", b"PK\x03\x04 this is not a zip", "not a readable EPUB"),
        ("a.md", b"   \n\n", "no text"),
    ],
)
def test_unreadable_input_is_a_clear_error(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentError, match=message):
        read_document(path)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(DocumentError, match="no such file"):
        read_document(tmp_path / "missing.txt")
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    with pytest.raises(DocumentError, match="unknown document type"):
        read_document(tmp_path / "a.pdf")
