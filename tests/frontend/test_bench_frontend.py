from __future__ import annotations

from voxserve.bench.frontend import SENTENCES, bench_frontend


def test_bench_frontend_reports_numbers(frontend):
    result = bench_frontend(["你好，世界。", "今天是2024年3月5日。"], repeat=2)
    assert result["sentences"] == 2 and result["repeat"] == 2
    assert 0 < result["p50_ms"] <= result["p95_ms"]
    assert result["cold_ms"] > 0 and result["symbols_per_sentence"] > 10


def test_builtin_sentences_are_about_fifty_characters():
    assert len(SENTENCES) >= 20
    assert all(40 <= len(s) <= 60 for s in SENTENCES)
