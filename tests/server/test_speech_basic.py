"""The minimal HTTP path: POST /v1/audio/speech returns WAV; bad input gets OpenAI-shaped 4xx."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from voxserve.server.app import create_app


@pytest.fixture(scope="module")
def client(tts):
    app = create_app(warmup=False)
    app.state.service.tts = tts  # share the session's loaded voice
    with TestClient(app) as c:
        yield c


def test_speech_returns_wav(client):
    r = client.post("/v1/audio/speech", json={"model": "voxserve", "input": "你好，世界。", "voice": "baker"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    data, sr = sf.read(io.BytesIO(r.content))
    assert sr == 24000 and len(data) > 0.5 * sr


def test_instructions_pick_emotion(client):
    a = client.post("/v1/audio/speech", json={"input": "你好，世界。", "instructions": "用悲伤的语气说"})
    b = client.post("/v1/audio/speech", json={"input": "你好，世界。"})
    assert a.status_code == b.status_code == 200 and len(a.content) > len(b.content)  # sad is slower


@pytest.mark.parametrize(
    "body,status,param",
    [
        ({"input": ""}, 400, "input"),
        ({"input": "   "}, 400, "input"),
        ({"input": "。。"}, 400, "input"),
        ({"input": "好" * 5000}, 400, "input"),
        ({"input": "你好", "voice": "nobody"}, 404, "voice"),
        ({"input": "你好", "voice": "../../etc"}, 404, "voice"),
        ({"input": "你好", "emotion": "grumpy"}, 404, "emotion"),
        ({"input": "你好", "speed": 10}, 400, "speed"),
        ({"input": "你好", "response_format": "mp4"}, 400, "response_format"),
        ({"input": 5}, 400, "input"),
        ({}, 400, "input"),
    ],
)
def test_bad_input_openai_error_shape(client, body, status, param):
    r = client.post("/v1/audio/speech", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"] and err["param"] == param


def test_malformed_json(client):
    r = client.post("/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
