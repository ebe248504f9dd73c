"""Polyphones read from word context, lexicons, erhua."""

from __future__ import annotations

import pytest

from voxserve.errors import InvalidInput
from voxserve.frontend.zh.pinyin import builtin_lexicon, default_reading, parse_lexicon

POLYPHONES = [
    ("他在银行工作。", "银行", ["yin2", "hang2"]),
    ("我们慢慢行走。", "行走", ["xing2", "zou3"]),
    ("孩子长大了。", "长大", ["zhang3", "da4"]),
    ("长度是三米。", "长度", ["chang2", "du4"]),
    ("这件事很重要。", "重要", ["zhong4", "yao4"]),
    ("我们重新开始。", "重新", ["chong2", "xin1"]),
    ("我喜欢音乐。", "音乐", ["yin1", "yue4"]),
    ("我们很快乐。", "快乐", ["kuai4", "le4"]),
    ("你还是去吧。", "还是", ["hai2", "shi4"]),
    ("我去银行还钱。", "还钱", ["huan2", "qian2"]),
    ("我觉得很好。", "觉得", ["jue2", "de5"]),
    ("他在睡觉。", "睡觉", ["shui4", "jiao4"]),
    ("为了明天。", "为了", ["wei4", "le5"]),
    ("因为下雨。", "因为", ["yin1", "wei4"]),
]


@pytest.mark.parametrize(("sentence", "word", "expected"), POLYPHONES, ids=[p[1] for p in POLYPHONES])
def test_polyphones(frontend, sentence, word, expected):
    start = sentence.index(word)
    utterance = frontend.analyze(sentence)
    got = [
        s.pinyin for w in utterance.words for s in w.syllables if start <= s.char_index < start + len(word)
    ]
    assert got == expected


def test_neutral_tone_words_from_the_builtin_lexicon(readings):
    words = dict(readings("东西在朋友那里，谢谢你。"))
    assert words["东西"] == ["dong1", "xi5"]
    assert words["朋友"] == ["peng2", "you5"]
    assert words["谢谢"] == ["xie4", "xie5"]


def test_builtin_entries_apply_inside_unknown_words():
    assert default_reading("爸爸妈妈") == ("ba4", "ba5", "ma1", "ma5")


def test_builtin_lexicon_is_well_formed():
    lexicon = builtin_lexicon()
    assert len(lexicon) > 100
    assert parse_lexicon(lexicon) == lexicon


def test_erhua(frontend):
    words = frontend.analyze("我们玩儿一会儿吧。").words
    erhua = [(w.text, s.pinyin) for w in words for s in w.syllables if s.erhua]
    assert erhua == [("玩儿", "er5"), ("一会儿", "er5")]
    daughter = frontend.analyze("她的女儿。").words
    assert not any(s.erhua for w in daughter for s in w.syllables)


def test_parse_lexicon_accepts_u_umlaut_and_strings():
    assert parse_lexicon({"绿": ["lü4"], "重庆": "chong2 qing4"}) == {
        "绿": ("lv4",),
        "重庆": ("chong2", "qing4"),
    }


@pytest.mark.parametrize(
    "entry",
    [
        {"重庆": ["chong2"]},
        {"重庆": ["chong", "qing4"]},
        {"重庆": ["chong7", "qing4"]},
        {"": ["a1"]},
        {"iPhone": []},
    ],
)
def test_parse_lexicon_rejects_bad_entries(entry):
    with pytest.raises(InvalidInput) as info:
        parse_lexicon(entry)
    assert info.value.param == "lexicon"


def test_fast_lookup_matches_lazy_pinyin():
    import random

    from pypinyin import Style, lazy_pinyin
    from pypinyin.phrases_dict import phrases_dict

    from voxserve.frontend.zh.pinyin import pypinyin_word

    rng = random.Random(3)
    words = rng.sample(sorted(phrases_dict), 500)
    words += ["爸爸妈妈", "中华人民共和国万岁", "跑得快", "吃过饭", "长", "的", "绿", "嗯"]
    for word in words:
        expected = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
        assert list(pypinyin_word(word)) == expected, word
