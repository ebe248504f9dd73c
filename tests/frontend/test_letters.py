"""Latin letters inside Mandarin text are spelled, never dropped."""

from __future__ import annotations

from voxserve.frontend.mandarin import MandarinFrontend
from voxserve.frontend.zh.letters import LETTER_PINYIN, spell


def test_every_letter_has_a_reading():
    assert sorted(LETTER_PINYIN) == [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    assert spell("GDP", 3) == [("ji4", 3), ("di4", 4), ("pi1", 5)]
    assert spell("w") == [("da2", 0), ("bu5", 0), ("liu5", 0)]


def test_acronym_is_one_word_spelled_letter_by_letter(frontend):
    words = frontend.analyze("GDP增长了。").words
    assert words[0].text == "GDP" and words[0].latin
    assert [s.pinyin for s in words[0].syllables] == ["ji4", "di4", "pi1"]
    seq = frontend.phonemize("GDP增长了。")
    assert seq.symbols[:8] == ("sil", "j", "i4", "#0", "d", "i4", "#0", "p")


def test_english_words_and_digits_do_not_vanish(frontend):
    seq = frontend.phonemize("我用iPhone15和MP3听歌。")
    spoken = {seq.text[i] for i in seq.char_index if i >= 0}
    assert set("iPhoneMP") <= spoken
    assert "十" in seq.text and "三" in seq.text


def test_lexicon_gives_latin_words_a_reading():
    fe = MandarinFrontend("baker", lexicon={"iPhone": ["ai4", "feng4"]})
    words = fe.analyze("我的iphone坏了。").words
    latin = next(w for w in words if w.latin)
    assert [s.pinyin for s in latin.syllables] == ["ai4", "feng4"]
    assert [s.char_index for s in latin.syllables] == [2, 5]


def test_letters_only_sentence(frontend):
    assert frontend.split("OK") == ["OK"]
    assert frontend.phonemize("OK").symbols[1:3] == ("^", "ou1")
