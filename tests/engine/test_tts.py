"""The Python API end to end with the real baker voice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from voxserve.bench.prosody import measure
from voxserve.errors import InvalidInput, NotFound

TEXT = "今天天气很好，我们一起去公园散步吧。"


def test_synthesize_returns_speech(tts):
    audio = tts.synthesize(TEXT)
    assert audio.sample_rate == 24000
    assert audio.samples.dtype == np.float32 and np.isfinite(audio.samples).all()
    assert 0.12 * len(TEXT) < audio.duration < 0.5 * len(TEXT)
    assert np.abs(audio.samples).max() > 0.05
    assert measure(audio.samples, audio.sample_rate).f0_median > 120  # a female voice speaks


def test_timings_cover_text_in_order(tts):
    audio = tts.synthesize("你好，世界。欢迎使用语音合成。")
    spoken = "".join(t.text for t in audio.chars)
    assert spoken == "你好世界欢迎使用语音合成"
    for timings in (audio.chars, audio.phones):
        starts = [t.start for t in timings]
        assert starts == sorted(starts)
        assert all(t.end > t.start for t in timings)
        assert timings[-1].end <= audio.duration + 1e-3
    # phones within a sentence are contiguous
    first = [p for p in audio.phones if p.end <= audio.chars[3].end + 1e-6]
    assert all(abs(a.end - b.start) < 1e-3 for a, b in itertools.pairwise(first))


def test_batched_sentences_equal_unbatched(tts):
    voice = tts.voice()
    sentences = ["你好。", "今天的会议改到下午三点，请大家准时参加。", "谢谢！"]
    seqs = [voice.frontend.phonemize(s) for s in sentences]
    controls = {"duration": 1.0, "pitch": 1.0, "pitch_range": 1.0, "energy": 1.0}
    batched = voice.render(seqs, controls)
    for seq, b in zip(seqs, batched, strict=True):
        (alone,) = voice.render([seq], controls)
        np.testing.assert_array_equal(b.durations, alone.durations)
        assert len(b.samples) == len(alone.samples)
        assert np.corrcoef(b.samples, alone.samples)[0, 1] > 0.999


def test_speed_and_volume(tts):
    base = tts.synthesize(TEXT)
    fast = tts.synthesize(TEXT, speed=2.0)
    slow = tts.synthesize(TEXT, speed=0.5)
    assert 0.4 < fast.duration / base.duration < 0.6
    assert 1.7 < slow.duration / base.duration < 2.3
    quiet = tts.synthesize(TEXT, volume=0.5)
    np.testing.assert_allclose(quiet.samples, base.samples * 0.5, atol=1e-6)


def test_pitch_and_energy(tts):
    base = measure(*_sr(tts.synthesize(TEXT)))
    high = measure(*_sr(tts.synthesize(TEXT, pitch=1.3)))
    low = measure(*_sr(tts.synthesize(TEXT, pitch=0.8)))
    assert high.f0_median > base.f0_median * 1.08
    assert low.f0_median < base.f0_median * 0.95
    loud = measure(*_sr(tts.synthesize(TEXT, energy=1.6)))
    soft = measure(*_sr(tts.synthesize(TEXT, energy=0.6)))
    assert loud.rms_db > base.rms_db > soft.rms_db


def _sr(audio):
    return audio.samples, audio.sample_rate


# Intended direction of each preset relative to neutral: pitch level, pitch range, energy, tempo.
# +1 up, -1 down. Tempo up means shorter audio.
DIRECTIONS = {
    "生气": (+1, +1, +1, +1),
    "开心": (+1, +1, +1, +1),
    "惊讶": (+1, +1, +1, -1),
    "悲伤": (-1, -1, -1, -1),
    "厌恶": (-1, -1, -1, -1),
    "恐惧": (+1, -1, -1, +1),
}


@pytest.mark.parametrize("emotion", list(DIRECTIONS))
def test_emotion_presets_move_prosody(tts, emotion):
    text = "这件事情我真的没有想到，你怎么会这样做呢？"
    neutral = measure(*_sr(tts.synthesize(text, emotion="neutral")))
    got = measure(*_sr(tts.synthesize(text, emotion=emotion)))
    pitch, rng, energy, tempo = DIRECTIONS[emotion]
    assert np.sign(got.f0_median - neutral.f0_median) == pitch, (got, neutral)
    assert np.sign(got.f0_range - neutral.f0_range) == rng, (got, neutral)
    assert np.sign(got.rms_db - neutral.rms_db) == energy, (got, neutral)
    assert np.sign(neutral.duration - got.duration) == tempo, (got, neutral)


@pytest.mark.parametrize(
    "text,match",
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("。，！？……", "nothing to speak"),
        ("😀🎉👍", "nothing to speak"),
        ("好" * 100_000, "limit"),
    ],
)
def test_bad_text_is_a_clear_error(tts, text, match):
    with pytest.raises(InvalidInput, match=match):
        tts.synthesize(text)


def test_documented_text_cleanup(tts):
    # Control characters and emoji are dropped; the rest is spoken.
    clean = tts.synthesize("你好世界")
    dirty = tts.synthesize("你好\x00\x07世界😀")
    assert [t.text for t in dirty.chars] == [t.text for t in clean.chars]
    # Latin letters are spelled, not dropped.
    spelled = tts.synthesize("我用GPU")
    assert "".join(t.text for t in spelled.chars).upper().endswith("GPU")


def test_unknown_voice_and_emotion(tts):
    with pytest.raises(NotFound, match="voice"):
        tts.synthesize("你好", voice="nobody")
    with pytest.raises(NotFound, match="emotion"):
        tts.synthesize("你好", emotion="grumpy")
