"""Break levels and the Baker sequence layout."""

from __future__ import annotations

from voxserve.frontend.zh.prosody import clause_breaks, group_words


def _breaks(frontend, sentence: str) -> list[tuple[str, int]]:
    return [(w.text, w.break_after) for w in frontend.analyze(sentence).words]


def test_sequence_layout(frontend):
    seq = frontend.phonemize("你好，世界。")
    assert seq.symbols == (
        "sil",
        "n",
        "i2",
        "#0",
        "h",
        "ao3",
        "#3",
        "sh",
        "iii4",
        "#0",
        "j",
        "ie4",
        "sil",
        "eos",
    )
    assert seq.char_index == (-1, 0, 0, -1, 1, 1, -1, 3, 3, -1, 4, 4, -1, -1)
    assert seq.text == "你好，世界。"


def test_comma_enumeration_colon_and_semicolon_are_intonation_breaks(frontend):
    words = _breaks(frontend, "苹果、香蕉，还有：橙子；葡萄。")
    assert [level for _, level in words] == [3, 3, 3, 3, 4]


def test_prosodic_words_from_segmentation(frontend):
    assert _breaks(frontend, "我们一起去公园。") == [("我们", 1), ("一起", 1), ("去", 0), ("公园", 4)]


def test_clitics_join_the_word_before(frontend):
    assert _breaks(frontend, "大家都同意了。") == [("大家", 1), ("都", 0), ("同意", 0), ("了", 4)]


def test_phrase_break_before_conjunction(frontend):
    words = dict(_breaks(frontend, "我们已经努力了但是没有成功。"))
    assert words["了"] == 2


def test_phrase_break_in_long_clause(frontend):
    levels = [level for _, level in _breaks(frontend, "这是一个非常长的句子用来测试我们的文本前端是否正确。")]
    assert 2 in levels
    assert 3 not in levels


def test_space_between_chinese_is_a_phrase_break(frontend):
    assert _breaks(frontend, "你好 世界。") == [("你好", 2), ("世界", 4)]


def test_baker_symbols_for_breaks(frontend):
    seq = frontend.phonemize("我们已经努力了但是没有成功，真可惜。")
    breaks = [s for s in seq.symbols if s.startswith("#")]
    assert set(breaks) >= {"#0", "#1", "#2", "#3"}
    assert seq.symbols[0] == "sil" and seq.symbols[-2:] == ("sil", "eos")


def test_group_words_rules():
    words = ["这", "很", "重要"]
    groups = group_words(words, [1, 1, 2], [False, False, False])
    assert groups == [[0], [1, 2]]
    words = ["我", "爱", "你"]
    assert group_words(words, [1, 1, 1], [False] * 3) == [[0, 1, 2]]
    words = ["二零二四", "年", "GDP"]
    assert group_words(words, [4, 1, 3], [False, False, True]) == [[0, 1], [2]]


def test_clause_breaks_places_phrase_break_by_length():
    words = ["我们", "一起", "去", "公园", "散步", "吧"]
    groups = [[0], [1], [2, 3], [4, 5]]
    levels = clause_breaks(words, [2, 2, 1, 2, 2, 1], groups)
    assert levels == [1, 1, 0, 2, 0, 0]
