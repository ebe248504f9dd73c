"""Lexicon files and the frontends' lexicon hook: a user entry changes the phone sequence."""

from __future__ import annotations

import pytest

from voxserve.batch.lexicon import Lexicon, frontend_with_lexicon, parse_lexicon_text, read_lexicon
from voxserve.errors import InvalidInput
from voxserve.frontend.mandarin import MandarinFrontend
from voxserve.frontend.mixed import MixedFrontend


def test_parse_pinyin_and_arpabet_lines():
    lex = parse_lexicon_text(
        "# comment\n\n银行\tyin2 xing2\niPhone\tai1 feng4\nvoxserve\tV AA1 K S S ER0 V\n"
    )
    assert lex.pinyin == {"银行": ("yin2", "xing2"), "iPhone": ("ai1", "feng4")}
    assert lex.phones == {"voxserve": ("V", "AA1", "K", "S", "S", "ER0", "V")}
    assert lex.digest() != Lexicon().digest()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("银行 yin2 xing2", "word<TAB>reading"),
        ("银行\tyin2", "1 syllables for 2"),
        ("好\thao", "toned pinyin"),
    ],
)
def test_bad_lines_name_the_line(line, message):
    with pytest.raises(InvalidInput, match=f"lex.tsv, line 2: .*{message}"):
        parse_lexicon_text(f"# header\n{line}\n", "lex.tsv")


def test_read_lexicon_errors(tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        read_lexicon(tmp_path / "missing.tsv")
    (tmp_path / "bad.tsv").write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        read_lexicon(tmp_path / "bad.tsv")


def test_mandarin_lexicon_changes_phones():
    base = MandarinFrontend("baker")
    custom = frontend_with_lexicon(base, parse_lexicon_text("银行\tyin2 xing2\n"), "baker")
    before = base.phonemize("我去银行。").symbols
    after = custom.phonemize("我去银行。").symbols
    assert "ang2" in before and "ang2" not in after
    assert "x" in after and "ing2" in after
    # the original frontend is untouched
    assert base.phonemize("我去银行。").symbols == before


def test_english_phones_need_an_english_frontend():
    lex = parse_lexicon_text("voxserve\tV OW1 K S\n")
    with pytest.raises(InvalidInput, match=r"voice 'baker'.*no English phones"):
        frontend_with_lexicon(MandarinFrontend("baker"), lex, "baker")
    base = MixedFrontend("emotivoice")
    mixed = frontend_with_lexicon(base, lex, "emotivoice")
    assert "[OW1]" not in base.phonemize("voxserve.").symbols
    assert mixed.phonemize("voxserve.").symbols[1:-1] == ("[V]", "[OW1]", "[K]", "[S]")


def test_syllable_outside_symbol_set_is_rejected():
    with pytest.raises(InvalidInput, match="not a syllable"):
        frontend_with_lexicon(MandarinFrontend("baker"), parse_lexicon_text("好\tqx1\n"), "baker")
