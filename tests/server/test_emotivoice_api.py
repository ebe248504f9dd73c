"""An EmotiVoice pack served over HTTP, driven by the official ``openai`` client.

The pack has random weights (converted from a random release in the official layout into
a temporary VOXSERVE_HOME): the audio is not speech, so these tests check what the API
does with speakers, emotions and prompts (lengths, formats, errors), not how it sounds.
"""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from audio_check import decode

from voxserve.engine.controls import EMOTIONS
from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig

openai = pytest.importorskip("openai")

TEXT = "今天天气很好。Hello, 我们去公园吧！"
SPEAKERS = tuple(str(1000 + i) for i in range(6))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from voxserve.packs.emotivoice.layout import write_random_pack

    root = tmp_path_factory.mktemp("ev-server-home")
    write_random_pack(root / "packs" / "emotivoice", small=True, seed=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXSERVE_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def ev_tts(home):
    from voxserve import TTS

    return TTS(voice="emotivoice")


@pytest.fixture(scope="module")
def url(ev_tts, serve_app, make_engine):
    config = ServerConfig(voice="emotivoice", ui=False, api_keys=())
    with serve_app(create_app(config, engine=make_engine(ev_tts, config))) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


def _seconds(data: bytes) -> float:
    samples, rate = decode(data, "wav")
    assert rate == 16000
    return len(samples) / rate


def test_voices_list_the_speakers(url):
    voices = httpx.get(f"{url}/v1/audio/voices", timeout=60).json()["voices"]
    by_id = {v["id"]: v for v in voices}
    pack = by_id["emotivoice"]
    assert pack["default"] and pack["language"] == "zh-en" and pack["instructions"]
    for s in SPEAKERS:
        v = by_id[f"emotivoice:{s}"]
        assert v["name"] == s and v["language"] == "zh-en" and v["emotions"] == list(EMOTIONS)
        assert v["sample_rate"] == 16000 and v["instructions"] and not v["default"]


def test_speaker_with_instructions_and_with_emotion(client, ev_tts):
    for kw in ({"instructions": "用开心的语气说"}, {"extra_body": {"emotion": "happy"}}, {}):
        data = client.audio.speech.create(
            model="tts-1", voice="emotivoice:1003", input=TEXT, response_format="wav", **kw
        ).content
        ref = ev_tts.synthesize(
            TEXT,
            voice="emotivoice:1003",
            instructions=kw.get("instructions"),
            emotion=kw.get("extra_body", {}).get("emotion"),
        )
        assert abs(_seconds(data) - ref.duration) < 1e-3, kw  # the same speaker, style and durations


def test_bare_speaker_name_and_openai_voice_names(client):
    bare = client.audio.speech.create(model="tts-1", voice="1003", input=TEXT, response_format="wav")
    full = client.audio.speech.create(
        model="tts-1", voice="emotivoice:1003", input=TEXT, response_format="wav"
    )
    assert bare.content == full.content
    default = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav")
    assert _seconds(default.content) > 0.5


def test_streams_audio_and_sse(client):
    whole = client.audio.speech.create(
        model="tts-1", voice="emotivoice:1001", input=TEXT, response_format="pcm", instructions="悲伤"
    ).content
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="emotivoice:1001",
        input=TEXT,
        response_format="pcm",
        stream_format="audio",
        instructions="悲伤",
    ) as resp:
        assert resp.status_code == 200 and resp.headers["x-sample-rate"] == "16000"
        streamed = b"".join(resp.iter_bytes())
    assert len(streamed) == len(whole)
    a, b = (np.frombuffer(x, np.int16).astype(np.float64) for x in (whole, streamed))
    assert np.abs(a - b).max() <= 2  # chunked vocoding with context: equal up to rounding
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="emotivoice:1001",
        input=TEXT,
        response_format="pcm",
        stream_format="sse",
        extra_body={"emotion": "sad"},
    ) as resp:
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert len(audio) == len(whole)


@pytest.mark.parametrize("voice", ["emotivoice:nobody", "nobody", "baker:1000"])
def test_unknown_voice_is_404_in_openai_shape(client, voice):
    with pytest.raises(openai.NotFoundError) as info:
        client.audio.speech.create(model="tts-1", voice=voice, input=TEXT)
    error = info.value.body
    assert info.value.status_code == 404
    assert error["code"] == "not_found" and error["param"] == "voice"
    assert any(part in error["message"] for part in voice.split(":"))


def test_ui_menu_offers_the_speakers(home):
    from voxserve.server.serving import voice_names

    names = voice_names(ServerConfig(voice="emotivoice:1002", ui=False, api_keys=()))
    assert names[0] == "emotivoice:1002" and "emotivoice" in names
    assert all(f"emotivoice:{s}" in names for s in SPEAKERS) and len(names) == len(set(names))
