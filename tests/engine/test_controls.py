"""Parameter validation and emotion names (no models needed)."""

from __future__ import annotations

import math

import pytest

from voxserve.engine.controls import EMOTIONS, SynthesisParams, resolve_emotion
from voxserve.errors import InvalidInput, NotFound


@pytest.mark.parametrize(
    "alias,label",
    [
        ("neutral", "普通"),
        ("Angry", "生气"),
        ("happy", "开心"),
        ("surprised", "惊讶"),
        ("sad", "悲伤"),
        ("disgusted", "厌恶"),
        ("fearful", "恐惧"),
        ("开心", "开心"),
        (" sad ", "悲伤"),
    ],
)
def test_emotion_aliases(alias, label):
    assert resolve_emotion(alias) == label


def test_unknown_emotion_lists_labels():
    with pytest.raises(NotFound) as e:
        resolve_emotion("grumpy")
    assert all(label in str(e.value) for label in EMOTIONS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"speed": 0.1},
        {"speed": 5},
        {"speed": math.nan},
        {"pitch": 3},
        {"pitch": 0.0},
        {"energy": -1},
        {"volume": 10},
        {"volume": math.inf},
        {"speed": "fast"},
        {"pitch": True},
    ],
)
def test_out_of_range_controls(kwargs):
    with pytest.raises(InvalidInput) as e:
        SynthesisParams.create(**kwargs)
    assert e.value.param == next(iter(kwargs))


def test_emotion_combines_with_user_controls():
    presets = {"悲伤": {"pitch": 0.9, "pitch_range": 0.6, "energy": 0.75, "speed": 0.8}}
    c = SynthesisParams.create(speed=2.0, pitch=1.1, emotion="sad").model_controls(presets)
    assert c["duration"] == pytest.approx(1 / (2.0 * 0.8))
    assert c["pitch"] == pytest.approx(1.1 * 0.9)
    assert c["pitch_range"] == 0.6 and c["energy"] == 0.75
    assert SynthesisParams.create().model_controls(presets) == {
        "duration": 1.0,
        "pitch": 1.0,
        "pitch_range": 1.0,
        "energy": 1.0,
    }
