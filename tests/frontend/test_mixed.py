"""MixedFrontend: Mandarin, English and mixed text to EmotiVoice symbols."""

from __future__ import annotations

import random
import re

import pytest

from voxserve.errors import InvalidInput
from voxserve.frontend.interface import Frontend, PhoneSequence
from voxserve.frontend.mixed import MixedFrontend
from voxserve.frontend.mixed_text import normalize_mixed, normalize_runs, shadow
from voxserve.frontend.symbols.emotivoice import tokens
from voxserve.frontend.zh.charsets import CJK

CORPUS = (
    "我今天用iPhone打电话给Tom，他说OK。",
    "Hello world, 你好世界!",
    "我有3个苹果，2024年买的。",
    "I have 3 apples and 2 oranges. They cost $5.",
    "iPhone 15 Pro的价格是¥7999，比去年贵了10%。",
    "Mr. Smith说：“Hello, how are you?”",
    "明天下午3点，我们在Starbucks见面，don't be late!",
    "这是GDP、CPI和AI的缩写。",
    "5G网络的速度达到了1.5Gbps，比4G快了很多。",
    "The meeting is at 10:30 am on 2024-03-05, room No. 7.",
    "Zorblax和Qwghlm都是不存在的词。",
    "一会儿到哪儿玩儿？",
    "Tom & Jerry是一部很有名的卡通片。",
    "温度是-5°C，速度100km/h。",
)


@pytest.fixture(scope="module")
def fe() -> MixedFrontend:
    frontend = MixedFrontend()
    frontend.warmup()
    return frontend


def _speak(fe: MixedFrontend, text: str) -> list[PhoneSequence]:
    return [fe.phonemize(s) for s in fe.split(text)]


def test_implements_the_protocol(fe):
    frontend: Frontend = fe
    assert frontend.symbol_set == "emotivoice"
    assert fe.symbols == tokens()


def test_only_symbol_sets_with_english(fe):
    with pytest.raises(InvalidInput) as info:
        MixedFrontend("baker")
    assert info.value.param == "symbol_set"
    with pytest.raises(InvalidInput):
        MixedFrontend(max_chars=1)


@pytest.mark.parametrize("text", CORPUS)
def test_everything_maps_into_the_tokenlist(fe, text):
    valid = set(tokens())
    sequences = _speak(fe, text)
    assert sequences
    for seq in sequences:
        assert set(seq.symbols) <= valid
        assert seq.symbols[0] == seq.symbols[-1] == "<sos/eos>"
        assert not any(s.startswith(("uncased", "sym")) or s == "_" for s in seq.symbols)
        assert seq.text == fe.normalize(seq.text)  # split's output is already normalized
        index = [i for i in seq.char_index if i >= 0]
        assert index == sorted(index) and all(0 <= i < len(seq.text) for i in index)


def test_mixed_sentence(fe):
    (seq,) = _speak(fe, "我今天用iPhone打电话给Tom，他说OK。")
    text = " ".join(seq.symbols)
    assert "iong4 sp2 [AY1] [F] [OW2] [N] eng_cn_sp d a3" in text
    assert "[T] [AA1] [M] eng_cn_sp t a1" in text
    assert text.endswith("sh uo1 sp1 [OW1] [K] [EY1] <sos/eos>")
    # The four phones of "iPhone" are spread over its six letters, in order.
    start = seq.text.index("iPhone")
    first = seq.symbols.index("[AY1]")
    assert seq.char_index[first : first + 4] == (start, start + 1, start + 3, start + 4)


def test_english_then_mandarin(fe):
    (seq,) = _speak(fe, "Hello world, 你好世界!")
    assert seq.text == "Hello world, 你好世界！"
    assert " ".join(seq.symbols) == (
        "<sos/eos> [HH] [AH0] [L] [OW1] engsp1 [W] [ER1] [L] [D] eng_cn_sp n i2 sp0 h ao3 sp1 sh iii4 sp0 j ie4 <sos/eos>"
    )


def test_english_sentences_and_punctuation(fe):
    assert fe.split("Hello, world! How are you?") == ["Hello, world!", "How are you?"]
    seq = fe.phonemize("Hello, world!")
    assert " ".join(seq.symbols) == "<sos/eos> [HH] [AH0] [L] [OW1] engsp4 [W] [ER1] [L] [D] <sos/eos>"


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("我有3个苹果", "我有三个苹果"),
        ("I have 3 apples", "I have three apples"),
        ("iPhone 15 Pro很贵", "iPhone fifteen Pro很贵"),  # English on both sides
        ("用iPhone15打电话", "用iPhone十五打电话"),  # a CJK character right next to it
        ("5G网络", "五G网络"),
        ("重3kg的箱子", "重三千克的箱子"),  # a unit stays with its Mandarin number
        ("It weighs 3kg", "It weighs three kilograms"),
        ("Price: $5", "Price: five dollars"),
        ("123", "一百二十三"),  # a bare number reads in Mandarin, as the release does
        ("Tom，他说", "Tom,他说"),  # a mark goes with the word before it
        ("ＯＫ，好的！", "OK,好的！"),
    ],
)
def test_numbers_read_in_the_language_around_them(text, normalized):
    assert normalize_mixed(text) == normalized


def test_unknown_english_word_is_spoken(fe):
    (seq,) = _speak(fe, "Zorblax是什么？")
    english = [s for s in seq.symbols if s.startswith("[")]
    assert len(english) >= 4
    assert seq.symbols[len(english) + 1] == "eng_cn_sp"


def test_mandarin_lexicon_reads_a_latin_word_as_pinyin():
    fe = MixedFrontend(lexicon={"GDP": ["ji4", "di4", "pi1"]})
    seq = fe.phonemize("GDP增长")
    assert seq.symbols[1:3] == ("j", "i4")
    with pytest.raises(InvalidInput):
        MixedFrontend(lexicon={"重庆": ["chong2"]})


def test_english_lexicon():
    fe = MixedFrontend(english_lexicon={"voxserve": "V AA1 K S S ER0 V"})
    assert fe.phonemize("voxserve很快").symbols[1:4] == ("[V]", "[AA1]", "[K]")


class TestExplicitSymbols:
    def test_pinyin_and_tokens(self, fe):
        seq = fe.phonemize("你好{n i3 h ao3}世界")
        assert seq.text == "你好{n i3 h ao3}世界"
        assert "sp1 n i3 h ao3 sp1 sh iii4" in " ".join(seq.symbols)
        # Each explicit symbol points at its own characters.
        assert seq.char_index[seq.symbols.index("i3")] == seq.text.index("i3")

    def test_conveniences(self, fe):
        seq = fe.phonemize("{HH AH0 [L] OW1 ni3 [LAUGH]}")
        assert seq.symbols == (
            "<sos/eos>",
            "[HH]",
            "[AH0]",
            "[L]",
            "[OW1]",
            "n",
            "i3",
            "[LAUGH]",
            "<sos/eos>",
        )

    def test_explicit_break(self, fe):
        seq = fe.phonemize("我说{sp3}好的")
        assert " ".join(seq.symbols) == "<sos/eos> uo3 sp1 sh uo1 sp3 h ao3 sp1 d e5 <sos/eos>"

    def test_inside_english(self, fe):
        seq = fe.phonemize("Say {HH AH0 L OW1} please")
        assert " ".join(seq.symbols[:9]) == "<sos/eos> [S] [EY1] engsp1 [HH] [AH0] [L] [OW1] engsp1"

    @pytest.mark.parametrize(
        ("text", "bad"), [("{HH XX0}", "XX0"), ("好{ni9}", "ni9"), ("{AH}", "AH"), ("{hello}", "hello")]
    )
    def test_bad_symbol_is_invalid_input(self, fe, text, bad):
        for call in (fe.split, fe.phonemize):
            with pytest.raises(InvalidInput, match=f"unknown symbol {bad!r}") as info:
                call(text)
            assert info.value.param == "input"

    def test_groups_are_not_cut(self, fe):
        fe_short = MixedFrontend(max_chars=20)
        group = "{" + " ".join(["n i3"] * 20) + "}"
        sentences = fe_short.split(f"开始{group}结束")
        assert any(group in s for s in sentences)
        for s in sentences:
            fe_short.phonemize(s)

    def test_empty_and_unmatched_braces(self, fe):
        assert fe.split("Hello {} world") == ["Hello world"]
        assert fe.split("{") == []
        assert set(fe.phonemize("好{的").symbols) <= set(tokens())


def test_nothing_speakable(fe):
    assert fe.split("😀😀，。！") == []
    with pytest.raises(InvalidInput):
        fe.phonemize("😀")


def test_shadow_keeps_length_and_words():
    text = "I don't know, {n i3} 好。"
    view = shadow(text)
    assert len(view) == len(text)
    assert view == "I donxt know， QQQQQQ 好。"


def test_random_text_never_breaks(fe):
    """Random mixtures: normalization is idempotent, both normalization paths agree, symbols are valid."""
    valid = set(tokens())
    rng = random.Random(0)
    pieces = list("abcXYZ 你好世界一二三，。！？,.!?;:'\"-()[]0123456789$%&@#😀\n\t　ＡＢ１２儿")
    pieces += [
        "Hello",
        "iPhone",
        "{sp1}",
        "{HH AH0}",
        "2024",
        "3.14",
        "don't",
        "Mr.",
        "U.S.",
        "kg",
        "students'",
    ]
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        normalized = normalize_mixed(text)
        assert normalize_mixed(normalized) == normalized, text
        if text.isascii() or re.fullmatch(rf"[{CJK}，。！？]*", text):
            assert normalize_runs(text) == normalized, text
        for sentence in fe.split(text):
            seq = fe.phonemize(sentence)
            assert seq.text == sentence and set(seq.symbols) <= valid, text
