"""Cloned voices end to end over HTTP: register a voice, speak with it through the official client.

The server runs under uvicorn with a temporary VOXSERVE_HOME whose ``packs/clone`` is the
tiny random clone pack (``packs/clone/tiny.py``), under the name the voice registry renders
with (``VoiceConfig.pack``, ``clone``). The reference clips are real speech (baker, through
``voxserve.TTS``), so the real speaker encoder embeds them; the clone pack's random weights
make noise, so these tests check what the server does with voices (ids, batching, caching,
errors, equality with unbatched runs), not how the voices sound.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf

from voxserve.backends.onnx_export import corr
from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig

openai = pytest.importorskip("openai")

TEXT = "今天天气很好。Hello, 我们去公园吧！"
TEXTS = ("你好，欢迎使用语音合成。", "明天上午九点开会。", "Good morning, 大家好。")
RATE = 22050
REFERENCE_TEXT = "今天天气很好，我们一起去公园散步吧。然后再去吃饭，晚上早点回家休息。"


@pytest.fixture(scope="module")
def clips(tts) -> dict[str, bytes]:
    """Two reference clips of baker speech (the second a fifth higher: another d-vector), as WAV."""
    out = {}
    for name, pitch in (("low", 1.0), ("high", 1.5)):
        audio = tts.synthesize(REFERENCE_TEXT, pitch=pitch)
        buf = io.BytesIO()
        sf.write(buf, np.asarray(audio.samples, dtype=np.float32), audio.sample_rate, format="WAV")
        out[name] = buf.getvalue()
    return out


@pytest.fixture(scope="module")
def home(clips, tmp_path_factory):
    """A VOXSERVE_HOME holding only the tiny clone pack, installed as ``clone``."""
    from voxserve.cloning.registry import VoiceConfig
    from voxserve.packs.clone.tiny import write_tiny_pack

    root = tmp_path_factory.mktemp("clone-home")
    write_tiny_pack(root / "packs" / VoiceConfig().pack, name=VoiceConfig().pack, seed=5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXSERVE_HOME", str(root))
        mp.delenv("VOXSERVE_VOICE_STORE", raising=False)
        mp.delenv("VOXSERVE_CLONE_PACK", raising=False)
        # The trained weights in the tree would make the store rebuild ``clone`` from them.
        mp.setenv("VOXSERVE_CLONE_WEIGHTS", str(root / "no-trained-weights"))
        yield root


@pytest.fixture(scope="module")
def app(home):
    # A batching window wide enough that concurrent requests share model calls on a busy machine.
    return create_app(ServerConfig(voice="clone", ui=False, api_keys=(), max_wait_ms=150.0))


@pytest.fixture(scope="module")
def url(app, serve_app):
    with serve_app(app) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


def register(url: str, name: str, clip: bytes) -> str:
    r = httpx.post(
        f"{url}/v1/audio/voices",
        data={"name": name},
        files=[("files", ("ref.wav", clip, "audio/wav"))],
        timeout=120,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def voices(url, clips) -> tuple[str, str]:
    return register(url, "Low 低", clips["low"]), register(url, "High 高", clips["high"])


def speak(client, voice: str, text: str = TEXT, **kw) -> np.ndarray:
    data = client.audio.speech.create(
        model="tts-1", voice=voice, input=text, response_format="pcm", **kw
    ).content
    return np.frombuffer(data, "<i2").astype(np.int32)


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal lengths and samples within 2 LSB (int16): a batch may round a sample differently."""
    return len(a) == len(b) and int(np.abs(a - b).max(initial=0)) <= 2


def test_a_registered_voice_speaks_like_the_python_api(client, voices, app):
    from voxserve import TTS

    low, high = voices
    wav = client.audio.speech.create(model="tts-1", voice=low, input=TEXT, response_format="wav").content
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    assert rate == RATE
    registry = app.state.voice_registry
    ref = TTS(voice="clone", directories=[registry]).synthesize(TEXT, voice=low)
    assert len(samples) == len(ref.samples)  # the same d-vector: the same durations
    # The server vocodes in chunks with context, the Python API whole sentences: equal but near seams.
    assert corr(samples, ref.samples) > 0.99
    assert not close(speak(client, low), speak(client, high))  # two voices, two outputs


def test_streaming_equals_whole(client, voices):
    low, _ = voices
    whole = speak(client, low, extra_body={"emotion": "开心"})
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice=low,
        input=TEXT,
        response_format="pcm",
        extra_body={"stream_format": "audio", "emotion": "开心"},
    ) as resp:
        assert resp.status_code == 200 and resp.headers["x-sample-rate"] == str(RATE)
        streamed = np.frombuffer(b"".join(resp.iter_bytes()), "<i2").astype(np.int32)
    assert close(whole, streamed)


def _batch_counts(url: str) -> tuple[float, float]:
    """(acoustic calls, acoustic calls of one item) from the engine's batch-size histogram."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    count = re.search(r'^voxserve_batch_size_count\{stage="acoustic"\} (\S+)$', text, re.M)
    ones = re.search(r'^voxserve_batch_size_bucket\{le="1\.0",stage="acoustic"\} (\S+)$', text, re.M)
    assert count and ones, "no acoustic batch-size histogram in /metrics"
    return float(count.group(1)), float(ones.group(1))


def test_concurrent_voices_share_batches_and_equal_their_unbatched_runs(client, voices, url):
    jobs = [(v, t) for t in TEXTS for v in (*voices, "clone:tiny_b")]  # cloned and pack speakers mix
    alone = {job: speak(client, *job) for job in jobs}  # one at a time: batches of one request
    calls0, ones0 = _batch_counts(url)
    start = threading.Barrier(len(jobs))

    def together(job):
        start.wait()
        return job, speak(client, *job)

    shared = False
    for _ in range(3):  # on a loaded machine one round may not overlap; a few rounds will
        with ThreadPoolExecutor(len(jobs)) as pool:
            results = dict(pool.map(together, jobs))
        for job in jobs:
            assert close(results[job], alone[job]), job
        calls, ones = _batch_counts(url)
        if calls - calls0 > ones - ones0:  # some acoustic call held more than one item
            shared = True
            break
    assert shared, "concurrent requests never shared an acoustic batch"


def test_the_engine_uses_the_registry_cache(client, voices, app, monkeypatch):
    """Speaking with a registered voice reads its cached d-vector: no re-embedding, no store reads."""
    registry = app.state.voice_registry
    assert app.state.service.engine.directories == [registry]
    low, _ = voices
    speak(client, low, "好。")  # re-caches the voice if its entry outlived the cache's TTL
    calls = {"embed": 0, "store": 0}
    get = registry.store.get

    def counting_embed(wavs):
        calls["embed"] += 1
        raise AssertionError("a request re-embedded a registered voice")

    def counting_get(voice_id):
        calls["store"] += 1
        return get(voice_id)

    monkeypatch.setattr(registry, "_embed", counting_embed)
    monkeypatch.setattr(registry.store, "get", counting_get)
    hits = registry.cache.hits
    for text in ("一。", "二。", "三。"):
        speak(client, low, text)
    assert calls == {"embed": 0, "store": 0}
    assert registry.cache.hits >= hits + 3


def test_pack_speakers_as_voices(client, voices):
    default = speak(client, "clone")
    assert close(default, speak(client, "clone:tiny_a"))  # the pack's default speaker is its first
    other = speak(client, "clone:tiny_b")
    assert not close(default, other)
    assert close(other, speak(client, "tiny_b"))  # a bare training speaker's name
    with pytest.raises(openai.NotFoundError) as e:
        speak(client, "clone:nobody")
    assert e.value.body["param"] == "voice" and "tiny_a" in e.value.body["message"]


def test_unknown_voice_id_is_404_in_openai_shape(url, voices):
    r = httpx.post(
        f"{url}/v1/audio/speech",
        json={"model": "tts-1", "voice": "voice_0123456789ab", "input": TEXT},
        timeout=60,
    )
    assert r.status_code == 404
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == "voice" and "voice_0123456789ab" in error["message"]


def test_a_deleted_voice_is_404(client, url, clips):
    vid = register(url, "Short-lived", clips["low"])
    assert len(speak(client, vid, "好。")) > 0
    assert httpx.delete(f"{url}/v1/audio/voices/{vid}", timeout=30).status_code == 200
    with pytest.raises(openai.NotFoundError) as e:
        speak(client, vid, "好。")
    assert e.value.status_code == 404 and e.value.body["param"] == "voice"


def test_cli_synth_with_a_registered_voice(home, voices, client, tmp_path):
    low, _ = voices
    out = tmp_path / "low.wav"
    env = {**os.environ, "VOXSERVE_HOME": str(home)}
    cmd = [sys.executable, "-m", "voxserve", "synth", TEXT, "--voice", low, "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    samples, rate = sf.read(out, dtype="int16")
    served = speak(client, low)
    assert rate == RATE and len(samples) == len(served) and corr(samples, served) > 0.99  # as the API's
    r = subprocess.run(
        [*cmd[:-4], "voice_0123456789ab", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 2 and "voice_0123456789ab" in r.stderr
