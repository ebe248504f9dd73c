"""Span markup: voice/emotion spans, nesting, pauses, and errors that say where."""

from __future__ import annotations

import pytest

from voxserve.batch.markup import MarkupError, Pause, Text, parse, position, strip


def test_plain_text_is_one_run():
    assert parse("你好。") == [Text("你好。", None, None, 0, None)]


def test_spans_nest_and_inner_keys_override_only_what_they_name():
    pieces = parse("甲[voice:a emotion:开心]乙[emotion:sad]丙[/]丁[/]戊")
    assert [(p.text, p.voice, p.emotion) for p in pieces if isinstance(p, Text)] == [
        ("甲", None, None),
        ("乙", "a", "开心"),
        ("丙", "a", "sad"),
        ("丁", "a", "开心"),
        ("戊", None, None),
    ]


def test_voice_names_may_carry_a_speaker():
    (piece,) = parse("[voice:emotivoice:8051]你好[/]")
    assert isinstance(piece, Text) and piece.voice == "emotivoice:8051"


@pytest.mark.parametrize(("tag", "seconds"), [("800ms", 0.8), ("1.5s", 1.5), ("2s", 2.0), (" 250 MS ", 0.25)])
def test_pauses(tag, seconds):
    pieces = parse(f"前。[pause:{tag}]后。")
    assert pieces[1] == Pause(seconds, 2)
    assert [p.text for p in pieces if isinstance(p, Text)] == ["前。", "后。"]


def test_other_brackets_are_text():
    assert strip("[注] 见 [1] 与 [a:b]") == "[注] 见 [1] 与 [a:b]"


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("好\n啊[pause:abc]", 2, 2, "malformed pause"),
        ("[pause:0ms]", 1, 1, "more than 0"),
        ("[pause:61s]", 1, 1, "at most 60"),
        ("一二[/]", 1, 3, "closes no open span"),
        ("一\n\n二[voice:x]三", 3, 2, "never closed"),
        ("[voice:]x[/]", 1, 1, "malformed span tag"),
        ("[voice:a voice:b]x[/]", 1, 1, "same key twice"),
        ("[ / x]", 1, 1, "malformed closing tag"),
    ],
)
def test_errors_name_line_and_column(text, line, column, message):
    with pytest.raises(MarkupError, match=message) as e:
        parse(text)
    assert (e.value.line, e.value.column) == (line, column)
    assert str(e.value).startswith(f"line {line}, column {column}: ")


def test_position():
    assert position("ab\ncd", 4) == (2, 2)


def test_text_points_at_its_innermost_open_tag():
    pieces = parse("甲[voice:a]乙[emotion:b]丙[/]丁[/]")
    assert [(p.text, p.tag) for p in pieces if isinstance(p, Text)] == [
        ("甲", None),
        ("乙", 1),
        ("丙", 11),
        ("丁", 1),
    ]
