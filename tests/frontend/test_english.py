"""English G2P (CMUdict, suffixes, compounds, letter-to-sound rules), numbers and normalization."""

from __future__ import annotations

import re

import pytest

from voxserve.errors import InvalidInput
from voxserve.frontend.english import LETTER_NAMES, EnglishG2P, check_phones
from voxserve.frontend.english_lts import letter_to_sound
from voxserve.frontend.english_numbers import cardinal, decimal, digits, money, ordinal, year
from voxserve.frontend.english_text import normalize_english

ARPABET = re.compile(
    r"^(?:(?:AA|AE|AH|AO|AW|AY|EH|ER|EY|IH|IY|OW|OY|UH|UW)[012]|B|CH|D|DH|F|G|HH|JH|K|L|M|N|NG|P|R|S|SH|T|TH|V|W|Y|Z|ZH)$"
)


@pytest.fixture(scope="module")
def g2p() -> EnglishG2P:
    return EnglishG2P()


def _valid(phones: tuple[str, ...]) -> bool:
    return bool(phones) and all(ARPABET.match(p) for p in phones)


@pytest.mark.parametrize(
    ("word", "phones"),
    [
        ("hello", "HH AH0 L OW1"),
        ("Hello", "HH AH0 L OW1"),
        ("WORLD", "W ER1 L D"),  # four capitals with a vowel: a word, not letters
        ("iPhone", "AY1 F OW2 N"),
        ("OK", "OW1 K EY1"),
        ("A", "AH0"),
        ("USA", "Y UW1 EH1 S EY1"),
        ("GDP", "JH IY1 D IY1 P IY1"),  # spelled, not CMUdict's "G IY1 ..."
        ("HTML", "EY1 CH T IY1 EH1 M EH1 L"),
        ("don't", "D OW1 N T"),
        ("Tom's", "T AA1 M Z"),
    ],
)
def test_dictionary_and_initialisms(g2p, word, phones):
    assert " ".join(g2p.word(word)) == phones


@pytest.mark.parametrize(
    ("word", "phones"),
    [
        ("googling", "G UW1 G L IH0 NG"),  # google + ing, final e dropped
        ("PowerPoint", "P AW1 ER0 P OY2 N T"),  # camelCase pieces
        ("voicebots", "V OY1 S B AO2 T S"),  # compound, second stress demoted
        ("students'", "S T UW1 D AH0 N T S"),
    ],
)
def test_words_built_from_dictionary_pieces(g2p, word, phones):
    assert " ".join(g2p.word(word)) == phones


@pytest.mark.parametrize(
    "word", ["Zorblax", "emotivoice", "xkcdq", "zzz", "aaaaaa", "q", "brrr", "Qwghlm", "ngx"]
)
def test_unknown_words_are_never_dropped(g2p, word):
    phones = g2p.word(word)
    assert _valid(phones), phones
    assert any(p[-1] in "012" for p in phones)  # at least one syllable
    assert g2p.word(word) == phones  # deterministic (and cached)


def test_no_letters_no_phones(g2p):
    assert g2p.word("'") == ()
    assert letter_to_sound("123") == ()


@pytest.mark.parametrize(
    ("word", "phones"),
    [
        ("cat", "K AE1 T"),
        ("bake", "B EY1 K"),
        ("phone", "F OW1 N"),
        ("city", "S IH1 T IY0"),
        ("fly", "F L AY1"),
    ],
)
def test_letter_to_sound_rules(word, phones):
    assert " ".join(letter_to_sound(word)) == phones


def test_letter_names_are_arpabet():
    assert sorted(LETTER_NAMES) == [chr(c) for c in range(ord("a"), ord("z") + 1)]
    assert all(_valid(p) for p in LETTER_NAMES.values())


def test_user_lexicon_comes_first():
    g2p = EnglishG2P({"Hello": "HH EH1 L OW0", "voxserve": ["V", "AA1", "K", "S", "S", "ER0", "V"]})
    assert " ".join(g2p.word("Hello")) == "HH EH1 L OW0"
    assert " ".join(g2p.word("hello")) == "HH EH1 L OW0"  # falls back to lower case
    assert g2p.word("VoxServe")[:2] == ("V", "AA1")


@pytest.mark.parametrize("bad", [["HH", "XX1"], ["AH"], ["B2"], []])
def test_bad_lexicon_names_the_phone(bad):
    with pytest.raises(InvalidInput) as info:
        EnglishG2P({"word": bad})
    assert info.value.param == "lexicon"
    if bad:
        assert repr(bad[-1]) in str(info.value)


def test_check_phones_accepts_stressed_arpabet():
    assert check_phones(["HH", "AH0", "L", "OW1"], "x") == ("HH", "AH0", "L", "OW1")


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (21, "twenty one"),
        (100, "one hundred"),
        (105, "one hundred five"),
        (1234, "one thousand two hundred thirty four"),
        (1_000_000, "one million"),
        (2_000_500_017, "two billion five hundred thousand seventeen"),
        (-7, "minus seven"),
    ],
)
def test_cardinal(n, words):
    assert cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty first"),
        (100, "one hundredth"),
    ],
)
def test_ordinal(n, words):
    assert ordinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1984, "nineteen eighty four"),
        (1905, "nineteen oh five"),
        (1900, "nineteen hundred"),
        (2005, "two thousand five"),
        (2024, "twenty twenty four"),
        (2000, "two thousand"),
    ],
)
def test_year(n, words):
    assert year(n) == words


def test_digits_decimal_money():
    assert digits("007") == "zero zero seven"
    assert decimal("3", "14") == "three point one four"
    assert money("$", "1") == "one dollar"
    assert money("$", "2.50") == "two dollars fifty cents"
    assert money("€", "5", "million") == "five million euros"
    assert money("£", "0.01") == "zero pounds one penny"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello world, how are you?", "Hello world, how are you?"),
        (
            "Mr. Smith met Dr. Jones at 10:30 a.m. on St. Patrick's day.",
            "Mister Smith met Doctor Jones at ten thirty AM on Saint Patrick's day.",
        ),
        (
            "I paid $2.50 for 3 apples (about 50%).",
            "I paid two dollars fifty cents for three apples (about fifty percent).",
        ),
        ("It costs $5 million.", "It costs five million dollars."),
        ("Call 555-1234 now!", "Call five five five, one two three four now!"),
        ("The 1990s and '80s.", "The nineteen nineties and eighties."),
        ("Born in 1984, came 2nd.", "Born in nineteen eighty four, came second."),
        ("Go to www.google.com & search", "Go to www dot google dot com and search"),
        ("It's -5 degrees, i.e. cold...", "It's minus five degrees, that is, cold…"),
        ("MP3 players and 4K TVs", "MP three players and four K TVs"),
        ("Use 3/4 cup — done", "Use three quarters cup, done"),
        ("On 2024-03-05 we met", "On March fifth, twenty twenty four we met"),
        ("The U.S.A. is big", "The USA is big"),
        ('"Quoted" text -- dashes', "Quoted text, dashes"),
        (
            "I have 1,234 pies and 3.14 cakes",
            "I have one thousand two hundred thirty four pies and three point one four cakes",
        ),
        ("It weighs 5kg", "It weighs five kilograms"),
        ("Room No. 5, #3", "Room number five, number three"),
        ("$1A", "one dollar A"),
    ],
)
def test_normalize_english(text, expected):
    assert normalize_english(text) == expected
    assert normalize_english(expected) == expected  # idempotent
