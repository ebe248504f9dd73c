"""The fixed texts cover what they claim to cover."""

from __future__ import annotations

import re

from voxserve.bench.sentences import BENCH_SENTENCES, QUALITY_SENTENCES


def test_quality_sentences_cover_the_hard_cases():
    assert len(QUALITY_SENTENCES) >= 24
    assert len(set(QUALITY_SENTENCES)) == len(QUALITY_SENTENCES)
    joined = "\n".join(QUALITY_SENTENCES)
    for needle in ("%", "年", "元", ":", "？", "！", "；", "、", "“", "——"):
        assert needle in joined, needle
    assert re.search(r"\d+\.\d+", joined)  # a decimal
    assert re.search(r"1\d{10}", joined)  # a mobile number
    for word in ("银行", "行走", "长大", "重新", "快乐", "音乐", "还是", "觉得", "睡觉"):
        assert word in joined, word
    longest = max(QUALITY_SENTENCES, key=len)
    assert 130 <= len(longest) <= 180 and longest.count("。") >= 3


def test_bench_sentences_have_three_size_classes():
    assert set(BENCH_SENTENCES) == {"short", "medium", "long"}
    bounds = {"short": (7, 14), "medium": (40, 60), "long": (160, 230)}
    for cls, texts in BENCH_SENTENCES.items():
        assert texts
        low, high = bounds[cls]
        for text in texts:
            assert low <= len(text) <= high, (cls, len(text), text)
