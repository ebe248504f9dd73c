"""The real engine (baker voice, torch on CPU) on two Ray Serve replicas sharing a Redis audio cache.

One app for the module; the fake-engine tests (test_ray_serve.py) use the same cluster before or
after, never at the same time.
"""

from __future__ import annotations

import io
import re
import time

import httpx
import pytest
import soundfile as sf

from voxserve.scale.options import RayOptions
from voxserve.scale.ray_app import REPLICA_HEADER, build_app
from voxserve.server.config import ServerConfig

APP = "real"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


@pytest.fixture(scope="module")
def real_app(ray_cluster, redis_url):
    from ray import serve

    config = ServerConfig(ui=False, threads=1, cache=redis_url, max_queue=16)
    with pytest.MonkeyPatch.context() as mp:
        # The voice registry's store: build_app forwards it to every replica.
        mp.setenv("VOXSERVE_VOICE_STORE", redis_url)
        serve.run(build_app(config, RayOptions(replicas=2, num_cpus=0.5)), name=APP, route_prefix="/")
    yield ray_cluster
    serve.delete(APP)


def until_replica(client: httpx.Client, method: str, path: str, want: str, **kw) -> httpx.Response:
    """Repeat a request until the replica ``want`` answers it (Ray picks replicas; tries are bounded).

    Only for requests that may be repeated (reads, or writes whose repeats change nothing)."""
    for _ in range(60):
        r = client.request(method, path, **kw)
        if r.headers.get(REPLICA_HEADER) == want:
            return r
    raise AssertionError(f"replica {want} never answered {path}")


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing"
    return float(found.group(1))


def test_real_speech_on_both_replicas(real_app):
    seen: dict[str, bytes] = {}
    with httpx.Client(base_url=real_app.url, timeout=TIMEOUT) as c:
        for i in range(40):
            body = {
                "model": "tts-1",
                "input": f"第{i}句话。",
                "response_format": "wav",
                "stream_format": "audio",
            }
            r = c.post("/v1/audio/speech", json=body)
            assert r.status_code == 200, r.text
            seen.setdefault(r.headers[REPLICA_HEADER], r.content)
            if len(seen) == 2:
                break
    assert len(seen) == 2, "requests never reached the second replica"
    for wav in seen.values():
        samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
        assert rate == 24000 and len(samples) > rate // 4 and abs(samples).max() > 0.01


def test_audio_cached_by_one_replica_is_hit_on_the_other(real_app, redis_url):
    import redis

    text = "共享缓存的句子。"
    body = {"model": "tts-1", "input": text, "response_format": "pcm"}
    store = redis.Redis.from_url(redis_url)
    with httpx.Client(base_url=real_app.url, timeout=TIMEOUT) as c:
        first = c.post("/v1/audio/speech", json=body)
        assert first.status_code == 200
        maker = first.headers[REPLICA_HEADER]
        end = time.monotonic() + 20
        while not store.keys("voxserve:audio:*"):  # the engine stores finished audio in the background
            assert time.monotonic() < end, "nothing was stored in Redis"
            time.sleep(0.05)
        other = next(
            r.headers[REPLICA_HEADER]
            for r in (c.get("/health") for _ in range(60))
            if r.headers[REPLICA_HEADER] != maker
        )
        before = metric(until_replica(c, "GET", "/metrics", other).text, "voxserve_cache_hits_total")
        again = until_replica(c, "POST", "/v1/audio/speech", other, json=body)
        assert again.content == first.content  # the other replica served the stored audio
        after = metric(until_replica(c, "GET", "/metrics", other).text, "voxserve_cache_hits_total")
    store.close()
    assert after >= before + 1


@pytest.fixture(scope="module")
def reference_wav(tts) -> bytes:
    """Eight seconds or so of baker speech at 16 kHz: a reference clip the registry accepts."""
    import numpy as np

    from voxserve.cloning.audio import resample

    a = tts.synthesize("今天天气很好，我们一起去公园散步吧。然后再去吃饭。")
    speech = resample(np.asarray(a.samples, dtype=np.float32), a.sample_rate, 16000)
    gap = np.zeros(4000, dtype=np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.concatenate([gap, speech, gap]), 16000, format="WAV")
    return buf.getvalue()


def test_voice_registered_through_one_replica_is_seen_by_every_replica(real_app, reference_wav):
    with httpx.Client(base_url=real_app.url, timeout=TIMEOUT) as c:
        r = c.post(
            "/v1/audio/voices",
            data={"name": "共享"},
            files=[("files", ("ref.wav", reference_wav, "audio/wav"))],
        )
        assert r.status_code == 201, r.text
        voice, maker = r.json(), r.headers[REPLICA_HEADER]
        other = next(
            h.headers[REPLICA_HEADER]
            for h in (c.get("/health") for _ in range(60))
            if h.headers[REPLICA_HEADER] != maker
        )
        for replica in (maker, other):
            got = until_replica(c, "GET", f"/v1/audio/voices/{voice['id']}", replica)
            assert got.status_code == 200 and got.json() == voice
        listings = [until_replica(c, "GET", "/v1/audio/voices", replica).json() for replica in (maker, other)]
        assert listings[0] == listings[1]
        assert voice["id"] in [v["id"] for v in listings[0]["voices"]]
        gone = c.delete(f"/v1/audio/voices/{voice['id']}")  # on whichever replica Ray picks
        assert gone.status_code == 200
        for replica in (maker, other):
            assert until_replica(c, "GET", f"/v1/audio/voices/{voice['id']}", replica).status_code == 404
