"""The corpus's mel front end (HiFi-GAN convention) and YIN F0."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from voxserve.train.corpus.features import (
    MelSpec,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
    to_corpus_audio,
    trim_silence,
    yin_f0,
)

SR = 22050


def _harmonic(f0: np.ndarray, sr: int = SR) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(f0) / sr
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


def test_mel_scale_is_slaney_and_invertible():
    assert hz_to_mel(1000.0) == pytest.approx(15.0)
    assert hz_to_mel(200.0) == pytest.approx(3.0)
    f = np.array([0.0, 440.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-6)


def test_filterbank_shape_and_area_normalization():
    fb = mel_filterbank(SR, 1024, 80, 0.0, 8000.0)
    assert fb.shape == (80, 513) and fb.min() >= 0
    freqs = np.linspace(0, SR / 2, 513)
    assert fb[:, freqs > 8000.5].max() == 0  # nothing above fmax
    assert (fb.max(axis=1) > 0).all()  # no empty filter
    # Slaney area normalization: each triangle has (approximately) unit area in Hz... times 2/width
    widths = np.diff(freqs)[0]
    areas = fb.sum(axis=1) * widths
    np.testing.assert_allclose(areas[10:], 1.0, rtol=0.1)


@pytest.mark.skipif(importlib.util.find_spec("librosa") is None, reason="librosa not installed")
def test_filterbank_matches_librosa():
    import librosa

    ref = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=80, fmin=0, fmax=8000)
    np.testing.assert_allclose(mel_filterbank(SR, 1024, 80, 0.0, 8000.0), ref, atol=1e-7)


def test_log_mel_frames_floor_and_peak_band():
    t = np.arange(SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[: 86 * 256]
    mel = MelSpec()(x).numpy()
    assert mel.shape == (86, 80)
    silence = MelSpec()(np.zeros(256 * 10, np.float32)).numpy()
    assert silence.shape == (10, 80) and np.allclose(silence, np.log(1e-5))
    band = int(np.argmax(mel[40]))
    centers = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(8000), 82))[1:-1]
    assert abs(centers[band] - 1000) < 60
    # Magnitude (not power): doubling the amplitude adds log(2) in the peak band.
    louder = MelSpec()(2 * x).numpy()
    assert louder[40, band] - mel[40, band] == pytest.approx(np.log(2), abs=1e-3)


def test_yin_tracks_a_glide_and_finds_silence():
    n = 2 * SR
    f0_true = np.linspace(110, 330, n)
    x = _harmonic(f0_true)
    x[: SR // 4] = 0
    x = x[: (len(x) // 256) * 256]
    f0 = yin_f0(x)
    assert len(f0) == len(x) // 256
    frames = np.arange(len(f0)) * 256
    voiced = f0 > 0
    assert not voiced[:15].any()  # the silent first quarter second
    assert voiced[30:].mean() > 0.97
    err = np.abs(f0[voiced] - f0_true[frames[voiced]]) / f0_true[frames[voiced]]
    assert np.median(err) < 0.01 and np.percentile(err, 95) < 0.03


def test_yin_of_noise_is_mostly_unvoiced():
    x = np.random.default_rng(0).normal(scale=0.1, size=256 * 100).astype(np.float32)
    assert (yin_f0(x) > 0).mean() < 0.1


def test_corpus_audio_resamples_and_trims_to_hop():
    y = to_corpus_audio(_harmonic(np.full(24000, 200.0), 24000), 24000)
    assert len(y) % 256 == 0 and abs(len(y) - SR) < 256
    assert np.abs(y).max() == pytest.approx(10 ** (-1 / 20), rel=1e-3)


def test_trim_silence_keeps_speech():
    x = np.zeros(SR * 2, np.float32)
    x[SR // 2 : SR] = _harmonic(np.full(SR // 2, 150.0))
    y = trim_silence(x, SR, keep=0.05)
    assert abs(len(y) - (SR // 2 + int(0.1 * SR))) < int(0.03 * SR)


def test_octave_jumps_are_halved_but_smooth_rises_stay():
    from voxserve.train.corpus.features import fix_octave_jumps

    contour = np.linspace(100, 180, 60).astype(np.float32)
    broken = contour.copy()
    broken[20:23] *= 2
    broken[40] = 0  # unvoiced frames are left alone
    fixed = fix_octave_jumps(broken)
    np.testing.assert_allclose(fixed[20:23], contour[20:23], rtol=1e-6)
    assert fixed[40] == 0
    np.testing.assert_array_equal(fix_octave_jumps(contour), contour)
    rise = np.concatenate([np.full(30, 150.0), np.linspace(150, 290, 30)]).astype(np.float32)
    np.testing.assert_array_equal(fix_octave_jumps(rise), rise)
