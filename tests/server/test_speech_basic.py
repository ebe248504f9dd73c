"""The HTTP contract through the ASGI app: speech basics, OpenAI-shaped 4xx for every kind of bad input."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig


@pytest.fixture(scope="module")
def client(tts, make_engine):
    config = ServerConfig(ui=False, api_keys=(), max_body_bytes=64 * 1024)
    with TestClient(create_app(config, engine=make_engine(tts, config))) as c:
        yield c


def test_speech_returns_wav(client):
    r = client.post(
        "/v1/audio/speech",
        json={"model": "voxserve", "input": "你好，世界。", "voice": "baker", "response_format": "wav"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    data, sr = sf.read(io.BytesIO(r.content))
    assert sr == 24000 and len(data) > 0.5 * sr
    assert r.headers["content-length"] == str(len(r.content))
    assert abs(float(r.headers["x-audio-duration"]) - len(data) / sr) < 1e-3


def test_default_format_is_mp3_like_openai(client):
    r = client.post("/v1/audio/speech", json={"input": "你好。"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"


def test_voice_as_object_and_openai_voice_names(client):
    a = client.post(
        "/v1/audio/speech", json={"input": "你好。", "voice": {"id": "baker"}, "response_format": "pcm"}
    )
    b = client.post("/v1/audio/speech", json={"input": "你好。", "voice": "alloy", "response_format": "pcm"})
    assert a.status_code == b.status_code == 200 and a.content == b.content


@pytest.mark.parametrize(
    "body,status,param",
    [
        ({"input": ""}, 400, "input"),
        ({"input": "   "}, 400, "input"),
        ({"input": "。。"}, 400, "input"),
        ({"input": "好" * 5000}, 400, "input"),
        ({"input": "你好", "voice": "nobody"}, 404, "voice"),
        ({"input": "你好", "voice": "../../etc"}, 404, "voice"),
        ({"input": "你好", "voice": {"id": "nobody"}}, 404, "voice"),
        ({"input": "你好", "voice": 5}, 400, "voice"),
        ({"input": "你好", "emotion": "grumpy"}, 404, "emotion"),
        ({"input": "你好", "speed": 10}, 400, "speed"),
        ({"input": "你好", "speed": "fast"}, 400, "speed"),
        ({"input": "你好", "pitch": 0.1}, 400, "pitch"),
        ({"input": "你好", "volume": -1}, 400, "volume"),
        ({"input": "你好", "response_format": "mp4"}, 400, "response_format"),
        ({"input": "你好", "stream_format": "video"}, 400, "stream_format"),
        ({"input": "你好", "timestamps": True}, 400, "timestamps"),
        ({"input": "你好", "model": "gpt-5"}, 404, "model"),
        ({"input": "你好", "spead": 2}, 400, "spead"),
        ({"input": "你好", "instructions": ["x"]}, 400, "instructions"),
        ({"input": 5}, 400, "input"),
        ({"input": {"nested": [1, {"a": None}]}}, 400, "input"),
        ({}, 400, "input"),
    ],
)
def test_bad_values_get_openai_errors(client, body, status, param):
    r = client.post("/v1/audio/speech", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"] == "invalid_request_error" and err["param"] == param


@pytest.mark.parametrize(
    "content,content_type,status",
    [
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        (b"null", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"input"', "application/json", 400),
        (b'{"input": "hi", "speed": NaN}', "application/json", 400),
        (b'{"input": "hi", "speed": Infinity}', "application/json", 400),
        (b'{"input": "\\ud800"}', "application/json", 400),
        (b'{"input": "\xff\xfe"}', "application/json", 400),
        (b"[" * 30_000 + b"]" * 30_000, "application/json", 400),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json", 400),
        (b'{"input": "' + b"x" * 70_000 + b'"}', "application/json", 413),
        (b"input=hi", "application/x-www-form-urlencoded", 415),
        (b'{"input": "hi"}', "text/plain", 415),
        (b"\x00\x01\x02", "application/octet-stream", 415),
    ],
)
def test_bad_bodies_never_500(client, content, content_type, status):
    r = client.post("/v1/audio/speech", content=content, headers={"content-type": content_type})
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


def test_chunked_body_over_the_limit_is_413(client):
    def body():
        for _ in range(100):
            yield b"x" * 1024

    r = client.post("/v1/audio/speech", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("method,path,status", [("GET", "/nope", 404), ("GET", "/v1/audio/speech", 405)])
def test_routes_and_methods(client, method, path, status):
    r = client.request(method, path)
    assert r.status_code == status and "error" in r.json()


def test_health_ready_metrics(client):
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready", "ready": True}
    assert (
        client.post("/v1/audio/speech", json={"input": "你好。", "response_format": "pcm"}).status_code == 200
    )
    text = client.get("/metrics").text
    assert 'voxserve_http_requests_total{route="/v1/audio/speech",status="200"}' in text
    # The engine's metrics and the HTTP layer's together are one valid Prometheus exposition.
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"voxserve_http_time_to_first_audio_seconds", "voxserve_time_to_first_audio_seconds"} <= names


def test_openapi_schema_has_no_422(client):
    schema = client.get("/openapi.json").json()
    responses = schema["paths"]["/v1/audio/speech"]["post"]["responses"]
    assert "422" not in responses and {"200", "400", "404", "413", "429", "503", "504"} <= set(responses)
