"""The MandarinFrontend API."""

from __future__ import annotations

import random

import pytest

from voxserve.errors import InvalidInput, NotFound
from voxserve.frontend.interface import Frontend, PhoneSequence
from voxserve.frontend.mandarin import MandarinFrontend


def test_implements_the_protocol(frontend):
    fe: Frontend = frontend
    assert fe.symbol_set == "baker"
    assert len(frontend.symbols) == 219


def test_unknown_symbol_set_names_the_known_ones():
    with pytest.raises(NotFound, match="baker"):
        MandarinFrontend("nope")


def test_bad_lexicon_is_invalid_input():
    with pytest.raises(InvalidInput) as info:
        MandarinFrontend("baker", lexicon={"重庆": ["chong2"]})
    assert info.value.param == "lexicon"
    with pytest.raises(InvalidInput):
        MandarinFrontend("baker", lexicon={"重庆": ["xyz2", "qing4"]})


def test_lexicon_overrides_reading_and_segmentation():
    fe = MandarinFrontend("baker", lexicon={"长孙": ["zhang3", "sun1"]})
    words = fe.analyze("长孙无忌。").words
    assert words[0].text == "长孙"
    assert [s.pinyin for s in words[0].syllables] == ["zhang3", "sun1"]


def test_split_then_phonemize(frontend):
    sentences = frontend.split("你好！我有3个苹果，2024年买的。")
    assert sentences == ["你好！", "我有三个苹果，二零二四年买的。"]
    seq = frontend.phonemize(sentences[1])
    assert isinstance(seq, PhoneSequence)
    assert seq.text == sentences[1]


def test_phonemize_normalizes_raw_text(frontend):
    assert frontend.phonemize("3个").text == "三个"


def test_nothing_speakable(frontend):
    assert frontend.split("😀😀，。！") == []
    assert frontend.split("兙。") == []  # a CJK character with no known reading
    with pytest.raises(InvalidInput):
        frontend.phonemize("😀")


def test_emoji_and_control_characters_are_dropped(frontend):
    seq = frontend.phonemize("你\x00好😀\u200b。")
    assert seq.text == "你好。"
    assert seq.symbols == ("sil", "n", "i2", "#0", "h", "ao3", "sil", "eos")


def test_random_garbage_never_crashes(frontend):
    rng = random.Random(7)
    pool = (
        [chr(c) for c in range(0x20, 0x2FF)]
        + list("，。！？、：；…—“”（）《》😀\n\t")
        + ["中", "文", "一", "不"]
    )
    for _ in range(50):
        text = "".join(rng.choice(pool) for _ in range(200))
        for sentence in frontend.split(text):
            assert len(sentence) <= frontend.max_chars
            frontend.phonemize(sentence)


def test_split_output_is_normalized(frontend):
    for sentence in frontend.split("价格是¥12.5，时间14:30，增长50%！"):
        assert frontend.phonemize(sentence).text == sentence
