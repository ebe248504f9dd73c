"""Server pieces without a server: emotion from instructions, config validation, encoders, metrics text."""

from __future__ import annotations

import argparse
import io

import numpy as np
import pytest
from audio_check import decode

from voxserve.server.config import ConfigError, ServerConfig, add_serve_arguments
from voxserve.server.encoding import FORMATS, encode_file, stream_encoder
from voxserve.server.instructions import emotion_from_instructions
from voxserve.server.metrics import HttpMetrics


@pytest.mark.parametrize(
    "text,label",
    [
        ("用开心的语气说", "开心"),
        ("请用悲伤的声音朗读", "悲伤"),
        ("生气", "生气"),
        ("他很不开心", "悲伤"),
        ("有点害怕", "恐惧"),
        ("say it angrily", "生气"),
        ("In a SAD voice", "悲伤"),
        ("speak happily and warmly", "开心"),
        ("sound surprised", "惊讶"),
        ("disgusted tone", "厌恶"),
        ("fearfully, like a ghost is near", "恐惧"),
        ("calm and neutral", "普通"),
        ("unhappy", "悲伤"),
        ("sadly, then happily", "悲伤"),
        ("开心 then angry", "开心"),
        ("Speak like a pirate.", None),
        ("madam, please read slowly", None),  # 'mad' only as a whole word
        ("", None),
        (None, None),
    ],
)
def test_emotion_from_instructions(text, label):
    assert emotion_from_instructions(text) == label


def test_config_validates_and_reads_env(monkeypatch):
    monkeypatch.setenv("VOXSERVE_API_KEYS", " a1, ,b2 ")
    assert ServerConfig().api_keys == ("a1", "b2") and ServerConfig().auth
    assert ServerConfig(api_keys=()).auth is False
    for bad in (
        {"port": 70000},
        {"max_queue": 0},
        {"cache": "mongo://x"},
        {"deadline_s": 0},
        {"api_keys": ("a b",)},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            ServerConfig(**bad)
    assert ServerConfig(cache="redis://localhost:6379/0").cache.startswith("redis://")


def test_serve_arguments_round_trip(monkeypatch):
    monkeypatch.delenv("VOXSERVE_API_KEYS", raising=False)
    p = argparse.ArgumentParser()
    add_serve_arguments(p)
    c = ServerConfig.from_args(p.parse_args([]))
    assert c == ServerConfig()
    c = ServerConfig.from_args(
        p.parse_args(["--port", "9001", "--api-key", "x", "--api-key", "y", "--max-queue", "3", "--no-ui"])
    )
    assert (c.port, c.api_keys, c.max_queue, c.ui) == (9001, ("x", "y"), 3, False)


def _tone(seconds: float, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("rate", [24000, 22050, 16000])
def test_streamed_pieces_make_one_file(fmt, rate):
    x = _tone(1.5, rate)
    enc = stream_encoder(fmt, rate)
    pieces = [enc.encode(x[:1000]), enc.encode(x[1000:20000]), enc.encode(x[20000:]), enc.finish()]
    for data in (b"".join(pieces), encode_file(fmt, x, rate)):
        y, got_rate = decode(data, fmt, pcm_rate=rate)
        if fmt == "opus" and rate == 22050:
            assert got_rate == 24000  # Opus has no 22.05 kHz mode: resampled up
        else:
            assert got_rate == rate
        assert abs(len(y) / got_rate - 1.5) < 0.15
        # Same tone back: loudness within lossy-codec tolerance.
        assert abs(np.sqrt(np.mean(y**2)) - 0.4 / np.sqrt(2)) < 0.03


def test_first_stream_piece_arrives_before_the_end():
    # A streaming encoder must hand bytes out as audio comes in, not hold the file back.
    for fmt in FORMATS:
        enc = stream_encoder(fmt, 24000)
        first = enc.encode(_tone(0.5))
        assert len(first) > 0, fmt


def test_whole_wav_has_exact_sizes():
    data = encode_file("wav", _tone(0.5), 24000)
    import soundfile as sf

    info = sf.info(io.BytesIO(data))
    assert info.frames == 12000 and int.from_bytes(data[40:44], "little") == 24000


def test_metrics_text():
    m = HttpMetrics()
    m.requests.inc(route="/v1/audio/speech", status="200")
    m.ttfa.observe(0.012, stream="audio", format="pcm")
    m.ttfa.observe(3.0, stream="audio", format="pcm")
    text = m.render().decode()
    assert 'voxserve_http_requests_total{route="/v1/audio/speech",status="200"} 1' in text
    assert (
        'voxserve_http_time_to_first_audio_seconds_bucket{format="pcm",stream="audio",le="0.015"} 1' in text
    )
    assert 'voxserve_http_time_to_first_audio_seconds_bucket{format="pcm",stream="audio",le="+Inf"} 2' in text
    assert 'voxserve_http_time_to_first_audio_seconds_count{format="pcm",stream="audio"} 2' in text
    assert "voxserve_http_speech_in_flight 0" in text
