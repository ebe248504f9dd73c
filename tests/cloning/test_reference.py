"""Reference clips: format sniffing, decoding, resampling, silence trimming, loudness, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from clip_files import encode

from voxserve.cloning.audio import resample, sniff
from voxserve.cloning.errors import CorruptAudio, UnsupportedAudio, UnusableAudio, UploadTooLarge
from voxserve.cloning.reference import (
    ReferenceLimits,
    check_upload,
    normalize_loudness,
    prepare,
    trim_silence,
)
from voxserve.errors import InvalidInput

RNG = np.random.default_rng(7)


def pad(x: np.ndarray, before_s: float, after_s: float, rate: int = 16000) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * rate)), x, np.zeros(int(after_s * rate))]).astype(
        np.float32
    )


# --- resampling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 24000, 44100, 48000, 96000, 44099])
def test_resample_keeps_a_tone_and_its_length(rate):
    t = np.arange(rate) / rate
    y = resample(np.sin(2 * np.pi * 1000 * t), rate, 16000)
    assert abs(y.size - 16000) <= 1 and y.dtype == np.float32
    ref = np.sin(2 * np.pi * 1000 * np.arange(y.size) / 16000)
    assert np.max(np.abs(y[800:-800] - ref[800:-800])) < 1e-3


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_resample_removes_what_is_above_the_new_nyquist(rate):
    t = np.arange(rate) / rate
    y = resample(np.sin(2 * np.pi * 9500 * t), rate, 16000)  # would alias to 6500 Hz
    assert np.sqrt(np.mean(y[800:-800] ** 2)) < 1e-3


def test_resample_same_rate_is_identity():
    x = RNG.normal(size=1000).astype(np.float32)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


# --- sniffing and decoding --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_sniff_names_each_format(fmt):
    data = encode(RNG.normal(0, 0.1, 16000).astype(np.float32), 16000, fmt)
    assert sniff(data) == fmt.lower()


@pytest.mark.parametrize(
    "data", [b"", b"hello world", b"\x89PNG\r\n\x1a\n" + bytes(100), b"RIFF\x00\x00\x00\x00AVI ", b"%PDF-1.7"]
)
def test_sniff_refuses_what_is_not_audio(data):
    with pytest.raises(UnsupportedAudio):
        sniff(data)


@pytest.mark.parametrize(("fmt", "rate"), [("WAV", 16000), ("FLAC", 44100), ("OGG", 48000), ("MP3", 22050)])
def test_every_format_gives_the_same_speaker(fmt, rate, speech, encoder):
    clip = pad(speech[0], 1.0, 1.5)
    base = encoder.embed(prepare(encode(clip, 16000, "WAV")).samples)
    ref = prepare(encode(resample(clip, 16000, rate), rate, fmt))
    assert ref.format == fmt.lower() and ref.source_rate == rate
    assert abs(ref.source_seconds - clip.size / 16000) < 0.1
    assert float(encoder.embed(ref.samples) @ base) > 0.99


def test_stereo_is_mixed_to_mono(speech):
    clip = pad(speech[0], 0.5, 0.5)
    ref = prepare(encode(np.stack([clip, 0.5 * clip], axis=1), 16000, "WAV"))
    mono = prepare(encode(clip, 16000, "WAV"))
    np.testing.assert_allclose(ref.samples, mono.samples, atol=1e-3)


def test_header_only_and_truncated_files_are_corrupt(speech):
    wav = encode(speech[0], 16000, "WAV")
    with pytest.raises(CorruptAudio):
        prepare(wav[:44])
    for fmt in ("FLAC", "OGG", "MP3"):
        with pytest.raises(CorruptAudio):
            prepare(encode(speech[0], 16000, fmt)[:200])


def test_nan_samples_are_corrupt():
    x = np.full(48000, np.nan, dtype=np.float32)
    data = encode(x, 16000, "WAV")  # float WAV keeps the NaNs
    with pytest.raises((CorruptAudio, UnusableAudio)):
        prepare(data)


def test_long_files_are_refused_before_decoding():
    data = encode(np.zeros(16000 * 130, dtype=np.float32), 16000, "FLAC")  # 130 s, a few KB
    with pytest.raises(UnusableAudio, match=r"130\.0 s long"):
        prepare(data)


# --- silence, speech length, loudness ---------------------------------------------------------------


def test_trim_cuts_leading_trailing_and_long_silence(speech):
    core = trim_silence(speech[0])
    padded = trim_silence(pad(speech[0], 2.0, 3.0))
    assert abs(padded.size - core.size) < 0.2 * 16000
    assert padded.size < speech[0].size  # the clip's own pauses were shortened too


def test_trim_survives_background_noise(speech):
    clip = pad(speech[0], 1.0, 1.0)
    noisy = clip + RNG.normal(0, 0.003, clip.size).astype(np.float32)
    assert abs(trim_silence(noisy).size - trim_silence(clip).size) < 0.5 * 16000


@pytest.mark.parametrize(
    ("name", "samples", "match"),
    [
        ("digital silence", np.zeros(16000 * 5), "silent"),
        ("very quiet noise", RNG.normal(0, 1e-4, 16000 * 5), "silent"),
        ("white noise", RNG.normal(0, 0.1, 16000 * 5), "no speech"),
        ("a steady tone", 0.3 * np.sin(np.arange(16000 * 5) * 0.2), "no speech"),
    ],
)
def test_no_speech_is_refused(name, samples, match):
    with pytest.raises(UnusableAudio, match=match):
        prepare(encode(samples.astype(np.float32), 16000, "WAV"))


def test_too_little_and_too_much_speech(speech):
    with pytest.raises(UnusableAudio, match="at least 3 s"):
        prepare(encode(pad(speech[0][:16000], 1.0, 1.0), 16000, "WAV"))
    long = np.concatenate([pad(s, 0.1, 0.1) for s in speech * 3])  # ~45 s of speech
    with pytest.raises(UnusableAudio, match="at most 30 s"):
        prepare(encode(long, 16000, "WAV"))


def test_loudness_is_normalized_so_gain_does_not_change_the_speaker(speech, encoder):
    clip = pad(speech[1], 0.5, 0.5)
    loud, quiet = (
        prepare(encode(clip * 0.9 / np.abs(clip).max(), 16000, "WAV")),
        prepare(encode(clip * 0.01, 16000, "WAV")),
    )
    for ref in (loud, quiet):
        assert abs(20 * np.log10(np.sqrt(np.mean(ref.samples.astype(np.float64) ** 2))) + 30) < 0.01
    assert float(encoder.embed(loud.samples) @ encoder.embed(quiet.samples)) > 0.999
    with pytest.raises(UnusableAudio):
        normalize_loudness(np.zeros(100, dtype=np.float32))


# --- limits -----------------------------------------------------------------------------------------


def test_upload_shape_checks():
    limits = ReferenceLimits(max_file_bytes=1000, max_files=2)
    check_upload([10, 1000], limits)
    with pytest.raises(InvalidInput, match="at least one"):
        check_upload([], limits)
    with pytest.raises(InvalidInput, match="at most 2"):
        check_upload([1, 1, 1], limits)
    with pytest.raises(UploadTooLarge) as e:
        check_upload([1001], limits)
    assert e.value.status == 413
    with pytest.raises(CorruptAudio, match="empty"):
        check_upload([0], limits)


def test_limits_validate_themselves():
    with pytest.raises(ValueError, match="max_files"):
        ReferenceLimits(max_files=0)
    with pytest.raises(ValueError, match="min_speech_s"):
        ReferenceLimits(min_speech_s=40.0)
