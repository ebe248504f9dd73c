"""The official ``openai`` client against a real uvicorn server: every format, whole and streamed, SSE, extensions."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from audio_check import decode

from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig

openai = pytest.importorskip("openai")

TEXT = "今天天气很好。我们一起去公园散步吧！"
FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
# Lossy codecs pad the end (MP3 and AAC by up to ~2 frames); lengths may differ by this much.
SLACK_S = 0.15


@pytest.fixture(scope="module")
def url(tts, serve_app, make_engine):
    config = ServerConfig(ui=False, api_keys=())
    with serve_app(create_app(config, engine=make_engine(tts, config))) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def reference(client):
    """Length in seconds of TEXT as a whole WAV (the yardstick for every other format)."""
    data = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav").content
    samples, rate = decode(data, "wav")
    assert rate == 24000 and len(samples) > rate  # two sentences: well over a second
    return len(samples) / rate


def _check(data: bytes, fmt: str, reference: float) -> np.ndarray:
    samples, rate = decode(data, fmt)
    assert rate == 24000
    assert abs(len(samples) / rate - reference) < SLACK_S, (fmt, len(samples) / rate, reference)
    assert np.abs(samples).max() > 0.05  # speech, not silence
    return samples


@pytest.mark.parametrize("fmt", FORMATS)
def test_whole_file(client, reference, fmt):
    resp = client.audio.speech.with_raw_response.create(
        model="gpt-4o-mini-tts", voice="baker", input=TEXT, response_format=fmt
    )
    assert resp.http_response.headers["content-length"] == str(len(resp.content))
    assert resp.http_response.headers["x-sample-rate"] == "24000"
    _check(resp.content, fmt, reference)


@pytest.mark.parametrize("fmt", FORMATS)
def test_streamed_file_is_valid_when_concatenated(client, reference, fmt):
    pieces = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input=TEXT, response_format=fmt, stream_format="audio"
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers.get("transfer-encoding") == "chunked" and "content-length" not in resp.headers
        assert resp.headers["x-accel-buffering"] == "no"
        assert resp.headers["x-sample-rate"] == "24000"
        pieces = [p for p in resp.iter_bytes() if p]
    _check(b"".join(pieces), fmt, reference)


def _sse(client, **kw) -> list[dict]:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="baker", input=TEXT, stream_format="sse", **kw
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines), lines[:3]
    return [json.loads(line[len("data: ") :]) for line in lines]


@pytest.mark.parametrize("fmt", ["wav", "mp3", "pcm"])
def test_sse_events(client, reference, fmt):
    events = _sse(client, response_format=fmt)
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done" and set(kinds[:-1]) == {"speech.audio.delta"}
    usage = events[-1]["usage"]
    assert (
        usage["input_tokens"] == len(TEXT)
        and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    )
    assert abs(usage["output_tokens"] / 50 - reference) < 0.05  # 20 ms per output token
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    _check(audio, fmt, reference)


def test_sse_timestamps_cover_the_characters(client, reference):
    events = _sse(client, response_format="pcm", extra_body={"timestamps": True})
    stamps = [t for e in events[:-1] for t in e.get("timestamps", [])]
    spoken = [c for c in TEXT if c not in "。！"]
    assert [t["text"] for t in stamps] == spoken
    starts = [t["start"] for t in stamps]
    assert starts == sorted(starts) and all(t["end"] > t["start"] for t in stamps)
    assert stamps[-1]["end"] <= reference + 0.01


def _pcm(client, **kw) -> np.ndarray:
    data = client.audio.speech.create(
        model="tts-1", voice="baker", input="你好，世界。", response_format="pcm", **kw
    )
    return decode(data.content, "pcm")[0]


def test_extensions_through_extra_body(client):
    base = _pcm(client)
    quiet = _pcm(client, extra_body={"volume": 0.5})
    assert len(quiet) == len(base) and np.allclose(quiet, base * 0.5, atol=2 / 32768)
    fast = _pcm(client, speed=2.0)
    assert 0.4 < len(fast) / len(base) < 0.65
    high = _pcm(client, extra_body={"pitch": 1.3, "energy": 1.2})
    assert len(high) == len(base) and not np.array_equal(high, base)
    sad = _pcm(client, extra_body={"emotion": "悲伤"})
    assert len(sad) > len(base)  # the sad preset is slower


@pytest.mark.parametrize(
    "instructions,emotion",
    [
        ("用开心的语气说", "开心"),
        ("Say it angrily!", "angry"),
        ("in a sad voice", "sad"),
        ("sound surprised", "惊讶"),
    ],
)
def test_instructions_choose_the_emotion(client, instructions, emotion):
    by_text = _pcm(client, instructions=instructions)
    by_name = _pcm(client, extra_body={"emotion": emotion})
    assert np.array_equal(by_text, by_name)
    assert not np.array_equal(by_text, _pcm(client))


def test_openai_errors_raise_typed_exceptions(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.speech.create(model="tts-1", voice="baker", input="你好", speed=5.0)
    assert e.value.body["param"] == "speed"
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="tts-1", voice="nobody", input="你好")
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.speech.create(model="tts-1", voice="baker", input="你好", extra_body={"spead": 2})
    assert e.value.body["code"] == "unknown_parameter"


def test_listings(client, url):
    import httpx

    assert "tts-1" in [m.id for m in client.models.list()]
    voices = httpx.get(f"{url}/v1/audio/voices").json()["voices"]
    baker = next(v for v in voices if v["id"] == "baker")
    assert baker["language"] == "zh" and baker["default"] and "开心" in baker["emotions"]


@pytest.fixture(scope="module")
def keyed_url(tts, serve_app, make_engine):
    config = ServerConfig(ui=False, api_keys=("k-one", "k-two"))
    with serve_app(create_app(config, engine=make_engine(tts, config))) as base:
        yield base


@pytest.mark.parametrize("key,ok", [(None, False), ("wrong", False), ("k-one", True), ("k-two", True)])
def test_api_keys(keyed_url, key, ok):
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.post(
        f"{keyed_url}/v1/audio/speech", json={"input": "你好。", "response_format": "wav"}, headers=headers
    )
    assert r.status_code == (200 if ok else 401), r.text
    if not ok:
        assert r.json()["error"]["code"] == "invalid_api_key" and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{keyed_url}/v1/models", headers=headers).status_code == (200 if ok else 401)
    assert httpx.get(f"{keyed_url}/health").status_code == 200  # probes stay open


def test_openai_client_with_key(keyed_url):
    good = openai.OpenAI(base_url=f"{keyed_url}/v1", api_key="k-two", max_retries=0)
    assert len(good.audio.speech.create(model="tts-1", voice="baker", input="你好。").content) > 1000
    bad = openai.OpenAI(base_url=f"{keyed_url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.audio.speech.create(model="tts-1", voice="baker", input="你好。")
