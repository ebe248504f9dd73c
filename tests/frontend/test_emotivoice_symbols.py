"""The EmotiVoice symbol inventory and the mapper from ``Utterance`` to its symbols."""

from __future__ import annotations

import hashlib

import pytest

from voxserve.errors import VoxserveError
from voxserve.frontend.english import LETTER_NAMES, PHONES, VOWELS, bracketed
from voxserve.frontend.interface import PhoneSequence
from voxserve.frontend.symbols import MAPPERS, get_mapper
from voxserve.frontend.symbols import emotivoice as ev
from voxserve.frontend.symbols.baker import load_table
from voxserve.frontend.utterance import Syllable, Utterance, Word

# sha256 of data/youdao/text/tokenlist in netease-youdao/EmotiVoice (see the data file's header).
RELEASE_SHA256 = "d7d68a2f794b4d7563e6e6159e8c6a8c506a584590b8c1c757370c346a435244"


@pytest.fixture(scope="module")
def mapper() -> ev.EmotiVoiceMapper:
    return ev.EmotiVoiceMapper()


def test_inventory_is_the_release_tokenlist():
    tokens = ev.tokens()
    assert len(tokens) == 502 == len(set(tokens))
    assert hashlib.sha256(ev.tokenlist_text().encode()).hexdigest() == RELEASE_SHA256
    assert ev.TOKENS is tokens
    assert tokens[:2] == ("_", "<sos/eos>") and tokens[-1] == "uncased99"
    assert sum(t.startswith("[") for t in tokens) == 70  # 69 ARPAbet with stress + [LAUGH]


def test_unknown_module_attribute_still_raises():
    with pytest.raises(AttributeError):
        _ = ev.NOT_THERE  # type: ignore[attr-defined]


def test_registered_as_a_symbol_set(mapper):
    assert "emotivoice" in MAPPERS
    loaded = get_mapper("emotivoice")
    assert loaded.name == "emotivoice" and loaded.symbols == ev.tokens()


def test_every_arpabet_phone_with_stress_is_a_token():
    expected = {p + s for p in VOWELS for s in "012"} | (PHONES - VOWELS)
    assert set(bracketed(sorted(expected))) <= set(ev.tokens())
    assert {p for name in LETTER_NAMES.values() for p in bracketed(name)} <= set(ev.tokens())


def test_every_syllable_and_tone_maps_into_the_inventory(mapper):
    valid = set(ev.tokens())
    for syllable in load_table()[1]:
        for tone in "12345":
            assert mapper.covers(syllable + tone)
            assert set(mapper.syllable(syllable + tone)) <= valid, syllable + tone
    assert not mapper.covers("xyz1")


@pytest.mark.parametrize(
    ("syllable", "expected"),
    [
        ("zhong", ("zh", "ong")),
        ("ri", ("r", "ii")),  # the release writes ri with ii, not iii
        ("zi", ("z", "ii")),
        ("shi", ("sh", "iii")),
        ("yue", ("y", "ve")),  # the release keeps a y initial here
        ("yuan", ("", "van")),
        ("you", ("", "iou")),
        ("yi", ("", "i")),
        ("wu", ("", "u")),
        ("wei", ("", "uei")),
        ("ju", ("j", "v")),
        ("lve", ("l", "ve")),
        ("gui", ("g", "uei")),
        ("dun", ("d", "uen")),
        ("er", ("", "er")),
        ("n", ("", "en")),
        ("ng", ("", "eng")),
    ],
)
def test_split_pinyin(syllable, expected):
    assert ev.split_pinyin(syllable) == expected


def test_missing_tone_falls_back_to_one_the_inventory_has(mapper):
    assert "ueng5" not in ev.tokens()
    assert mapper.syllable("weng5") == ("ueng1",)
    assert mapper.syllable("ni3") == ("n", "i3")
    assert mapper.syllable("a1") == ("a1",)


def _word(text: str, start: int, pinyin: list[str], brk: int, erhua: int = -1) -> Word:
    syllables = tuple(Syllable(p, start + k, k == erhua) for k, p in enumerate(pinyin))
    return Word(text, start, syllables, brk)


def test_mandarin_layout(mapper):
    utterance = Utterance(
        "你好，世界。",
        (_word("你好", 0, ["ni2", "hao3"], 3), _word("世界", 3, ["shi4", "jie4"], 4)),
    )
    seq = mapper.map(utterance)
    assert seq.symbols == (
        "<sos/eos>",
        "n",
        "i2",
        "sp0",
        "h",
        "ao3",
        "sp3",
        "sh",
        "iii4",
        "sp0",
        "j",
        "ie4",
        "<sos/eos>",
    )
    assert seq.char_index == (-1, 0, 0, -1, 1, 1, -1, 3, 3, -1, 4, 4, -1)


@pytest.mark.parametrize(("level", "symbol"), [(0, "sp1"), (1, "sp1"), (2, "sp2"), (3, "sp3")])
def test_word_breaks_are_at_least_sp1(mapper, level, symbol):
    utterance = Utterance("我们", (_word("我", 0, ["wo3"], level), _word("们", 1, ["men5"], 4)))
    assert mapper.map(utterance).symbols[2] == symbol


def test_erhua_merges_when_the_r_final_exists(mapper):
    merged = Utterance("哪儿", (_word("哪儿", 0, ["na3", "er5"], 4, erhua=1),))
    assert mapper.map(merged).symbols == ("<sos/eos>", "n", "ar3", "<sos/eos>")
    assert "iangr3" not in ev.tokens()
    separate = Utterance("想儿", (_word("想儿", 0, ["xiang3", "er5"], 4, erhua=1),))
    seq = mapper.map(separate)
    assert seq.symbols == ("<sos/eos>", "x", "iang3", "er5", "<sos/eos>")
    assert seq.char_index == (-1, 0, 0, 1, -1)


def test_erhua_in_its_own_word_joins_without_a_break(mapper):
    utterance = Utterance("玩儿", (_word("玩", 0, ["wan2"], 1), _word("儿", 1, ["er5"], 4, erhua=0)))
    assert mapper.map(utterance).symbols == ("<sos/eos>", "uanr2", "<sos/eos>")


def _segment(symbols: str, start: int) -> ev.Segment:
    parts = tuple(symbols.split())
    return ev.Segment(parts, tuple(start + k for k in range(len(parts))))


def test_language_switch_symbols(mapper):
    # 用 Tom 打 Tom ， Tom
    words = (
        _word("用", 0, ["yong4"], 1),
        Word("Tom", 1, (), 1, True),
        _word("打", 4, ["da3"], 1),
        Word("Tom", 5, (), 3, True),
        Word("Tom", 9, (), 1, True),
        Word("Tom", 13, (), 4, True),
    )
    tom = "[T] [AA1] [M]"
    segments = {i: _segment(tom, words[i].start) for i in (1, 3, 4, 5)}
    seq = mapper.map(Utterance("用Tom打Tom，Tom Tom", words), segments)
    assert " ".join(seq.symbols) == (
        f"<sos/eos> iong4 sp1 {tom} eng_cn_sp d a3 sp1 {tom} engsp4 {tom} engsp1 {tom} <sos/eos>"
    )


def test_explicit_breaks_replace_automatic_ones(mapper):
    words = (_word("我", 0, ["wo3"], 1), Word("{sp3}", 1, (), 1, True), _word("好", 6, ["hao3"], 4))
    seq = mapper.map(Utterance("我{sp3}好", words), {1: _segment("sp3", 2)})
    assert seq.symbols == ("<sos/eos>", "uo3", "sp3", "h", "ao3", "<sos/eos>")


def test_no_break_before_the_end(mapper):
    words = (_word("好", 0, ["hao3"], 1), Word("{sp1}", 1, (), 4, True))
    seq = mapper.map(Utterance("好{sp1}", words), {1: _segment("sp1", 2)})
    assert seq.symbols == ("<sos/eos>", "h", "ao3", "<sos/eos>")


def test_symbols_outside_the_inventory_are_an_internal_error(mapper):
    words = (Word("x", 0, (), 4, True),)
    with pytest.raises(VoxserveError, match="outside the tokenlist"):
        mapper.map(Utterance("x", words), {0: _segment("[XX9]", 0)})


def test_mandarin_frontend_speaks_emotivoice():
    from voxserve.frontend.mandarin import MandarinFrontend

    fe = MandarinFrontend("emotivoice")
    seq = fe.phonemize("月亮出来了。")
    assert isinstance(seq, PhoneSequence)
    assert seq.symbols[:3] == ("<sos/eos>", "y", "ve4")
    assert set(seq.symbols) <= set(ev.tokens())
    # Latin letters are spelled as pinyin letter names by the Mandarin-only frontend.
    assert set(fe.phonemize("GDP增长了。").symbols) <= set(ev.tokens())
