from __future__ import annotations

import random

import pytest

from voxserve.frontend.zh.split import split_sentences


def test_splits_after_sentence_final_punctuation_and_newlines():
    text = "你好！今天天气怎么样？我很好。好的…再见\n第二行；第三句"
    assert split_sentences(text) == [
        "你好！",
        "今天天气怎么样？",
        "我很好。",
        "好的…",
        "再见",
        "第二行；",
        "第三句",
    ]


def test_closing_quote_stays_with_its_sentence():
    assert split_sentences("“真的吗？”他问。") == ["“真的吗？”", "他问。"]


def test_nothing_speakable_gives_no_sentences():
    assert split_sentences("") == []
    assert split_sentences("，。！？……") == []
    assert split_sentences("\n \n") == []


def test_long_sentence_is_cut_at_commas_within_the_limit():
    clause = "我们今天讨论的话题是人工智能的发展，"
    text = clause * 6 + "未来还会有更大的变化。"
    pieces = split_sentences(text, max_chars=40)
    assert len(pieces) > 1
    assert all(len(p) <= 40 for p in pieces)
    assert all(p.endswith(("，", "。")) for p in pieces)
    assert "".join(pieces) == text


def test_clause_without_punctuation_is_hard_cut():
    text = "这是一个没有标点符号的非常长的句子它一直写下去没有任何停顿" * 4
    pieces = split_sentences(text, max_chars=30)
    assert all(len(p) <= 30 for p in pieces)
    assert "".join(pieces) == text


def test_hard_cut_prefers_word_boundaries_when_given():
    text = "甲乙丙丁戊己庚辛" * 3

    def boundaries(window: str) -> list[int]:
        return [k for k in range(1, len(window)) if k % 4 == 0]

    pieces = split_sentences(text, max_chars=10, word_boundaries=boundaries)
    assert all(len(p) % 4 == 0 for p in pieces[:-1])


def test_hard_cut_prefers_spaces():
    text = "ABCDEFGH IJKLMNOPQR STUVWXYZ"
    assert split_sentences(text, max_chars=20) == ["ABCDEFGH IJKLMNOPQR", "STUVWXYZ"]


def test_one_hundred_thousand_characters_are_bounded():
    rng = random.Random(0)
    alphabet = "我们的人工智能发展很快，。ABC 好！？\n"
    text = "".join(rng.choice(alphabet) for _ in range(100_000))
    pieces = split_sentences(text, max_chars=60)
    assert pieces
    assert max(len(p) for p in pieces) <= 60
    uniform = split_sentences("字" * 100_000, max_chars=60)
    assert len(uniform) == -(-100_000 // 60)
    assert all(len(p) <= 60 for p in uniform)


def test_rejects_tiny_limit():
    with pytest.raises(ValueError):
        split_sentences("你好", max_chars=1)
