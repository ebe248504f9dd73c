"""Tone sandhi and neutral tones, read through the full analysis."""

from __future__ import annotations

import pytest

CASES = [
    ("一个", "yi2 ge4"),
    ("一天", "yi4 tian1"),
    ("一起", "yi4 qi3"),
    ("一年", "yi4 nian2"),
    ("第一", "di4 yi1"),
    ("统一", "tong3 yi1"),
    ("看一看", "kan4 yi5 kan4"),
    ("一九九八年", "yi1 jiu2 jiu3 ba1 nian2"),
    ("一月一日", "yi1 yue4 yi1 ri4"),
    ("十一", "shi2 yi1"),
    ("一百", "yi4 bai3"),
    ("一万", "yi2 wan4"),
    ("一点五", "yi1 dian2 wu3"),
    ("九百九十九", "jiu2 bai3 jiu3 shi2 jiu3"),
    ("不是", "bu2 shi4"),
    ("不对", "bu2 dui4"),
    ("不好", "bu4 hao3"),
    ("好不好", "hao3 bu5 hao3"),
    ("对不起", "dui4 bu5 qi3"),
    ("你好", "ni2 hao3"),
    ("展览馆", "zhan2 lan2 guan3"),
    ("小老虎", "xiao3 lao2 hu3"),
    ("很好", "hen2 hao3"),
    ("看看", "kan4 kan5"),
    ("爸爸", "ba4 ba5"),
    ("我们", "wo3 men5"),
    ("桌子", "zhuo1 zi5"),
    ("跑得快", "pao3 de5 kuai4"),
    ("慢慢地走", "man4 man4 de5 zou3"),
    ("吃过饭", "chi1 guo5 fan4"),
    ("他得了冠军", "ta1 de2 le5 guan4 jun1"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_sandhi(flat_pinyin, text, expected):
    assert flat_pinyin(text + "。") == expected


def test_third_tone_chain_across_words_of_one_prosodic_word(flat_pinyin):
    # 展览馆 + the clitic 里 form one prosodic word: 3-3-3-3 → 2-2-2-3.
    assert flat_pinyin("展览馆里。") == "zhan2 lan2 guan2 li3"


def test_lao_li_mai_hao_jiu(flat_pinyin):
    # Two prosodic words, 老李 | 买好酒: 老 → 2 before 李; 李 keeps 3 at the boundary;
    # inside 买好酒 the chain 3-3-3 → 2-2-3; the last syllable keeps its 3rd tone.
    assert flat_pinyin("老李买好酒。") == "lao2 li3 mai2 hao2 jiu3"


def test_sandhi_does_not_touch_user_lexicon_words():
    from voxserve.frontend.mandarin import MandarinFrontend

    fe = MandarinFrontend("baker", lexicon={"你好": ["ni3", "hao3"]})
    words = fe.analyze("你好。").words
    assert [s.pinyin for s in words[0].syllables] == ["ni3", "hao3"]
