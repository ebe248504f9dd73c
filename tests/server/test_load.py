"""Overload, deadlines and disconnects against a real uvicorn server on the real engine."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from audio_check import decode

from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig

SHORT = "今天天气很好，我们一起去公园散步吧。"
LONG = "今天天气很好，我们一起去公园散步吧。" * 30  # about 2 minutes of speech: seconds of work on CPU
MAX_QUEUE = 2


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of the server's /metrics (0 if absent)."""
    text = httpx.get(f"{url}/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = (
        rf"^{re.escape(name)}(?:\{{{re.escape(want)}\}})? (\S+)$" if want else rf"^{re.escape(name)} (\S+)$"
    )
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def wait_for(pred, timeout: float = 30.0) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def app_config():
    return ServerConfig(ui=False, api_keys=(), max_queue=MAX_QUEUE)


@pytest.fixture(scope="module")
def url(tts, serve_app, make_engine, app_config):
    with serve_app(create_app(app_config, engine=make_engine(tts, app_config))) as base:
        yield base


def test_overload_gives_only_200_and_429(url):
    ref = httpx.post(f"{url}/v1/audio/speech", json={"input": SHORT, "response_format": "wav"}, timeout=60)
    ref_s = len(decode(ref.content, "wav")[0]) / 24000
    formats = ["wav", "mp3", "opus", "flac", "aac", "pcm"]

    async def one(client: httpx.AsyncClient, i: int) -> tuple[int, dict, bytes, str]:
        fmt = formats[i % len(formats)]
        body = {"input": SHORT, "response_format": fmt}
        if i % 2:
            body["stream_format"] = "audio"
        r = await client.post(f"{url}/v1/audio/speech", json=body)
        return r.status_code, dict(r.headers), r.content, fmt

    async def burst() -> list:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            return await asyncio.gather(*(one(client, i) for i in range(10 * MAX_QUEUE)))

    results = asyncio.run(burst())
    statuses = [r[0] for r in results]
    assert set(statuses) <= {200, 429}, statuses
    assert 429 in statuses and 200 in statuses, statuses
    for status, headers, content, fmt in results:
        if status == 429:
            assert int(headers["retry-after"]) >= 1
            import json

            assert json.loads(content)["error"]["code"] == "overloaded"
        else:
            samples, rate = decode(content, fmt)
            assert rate == 24000 and abs(len(samples) / rate - ref_s) < 0.15, fmt
    assert metric(url, "voxserve_http_requests_total", route="/v1/audio/speech", status="429") >= 1


def test_disconnect_during_stream_cancels_the_job(url):
    before = metric(url, "voxserve_jobs_total", outcome="cancelled")
    with (
        httpx.Client(timeout=60) as client,
        client.stream(
            "POST",
            f"{url}/v1/audio/speech",
            json={"input": LONG, "response_format": "pcm", "stream_format": "audio"},
        ) as r,
    ):
        assert r.status_code == 200
        first = next(r.iter_bytes())
        assert first
    # Leaving the block closed the connection mid-stream.
    assert wait_for(lambda: metric(url, "voxserve_jobs_total", outcome="cancelled") == before + 1)
    assert wait_for(lambda: metric(url, "voxserve_jobs_running") + metric(url, "voxserve_jobs_waiting") == 0)
    assert metric(url, "voxserve_http_client_disconnects_total") >= 1
    assert metric(url, "voxserve_http_speech_in_flight") == 0


def test_disconnect_while_waiting_for_a_whole_file_cancels_the_job(url):
    before = metric(url, "voxserve_jobs_total", outcome="cancelled")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/audio/speech", json={"input": LONG, "response_format": "wav"}, timeout=0.5)
    assert wait_for(lambda: metric(url, "voxserve_jobs_total", outcome="cancelled") == before + 1)
    assert wait_for(lambda: metric(url, "voxserve_http_speech_in_flight") == 0)


@pytest.fixture(scope="module")
def hurried_url(tts, serve_app, make_engine):
    config = ServerConfig(ui=False, api_keys=(), deadline_s=0.05)
    with serve_app(create_app(config, engine=make_engine(tts, config))) as base:
        yield base


@pytest.mark.parametrize("stream_format", [None, "audio", "sse"])
def test_deadline_gives_504(hurried_url, stream_format):
    body = {"input": LONG, "response_format": "wav"}
    if stream_format:
        body["stream_format"] = stream_format
    r = httpx.post(f"{hurried_url}/v1/audio/speech", json=body, timeout=60)
    if stream_format is None:
        assert r.status_code == 504, r.text
    else:
        # A stream either fails before its first chunk (504) or is cut short after it: never a 500.
        assert r.status_code in (200, 504), r.text
    if r.status_code == 504:
        assert r.json()["error"]["code"] == "deadline_exceeded"


def test_draining_refuses_new_requests(tts, make_engine):
    from fastapi.testclient import TestClient

    config = ServerConfig(ui=False, api_keys=())
    with TestClient(create_app(config, engine=make_engine(tts, config))) as client:
        assert client.get("/ready").status_code == 200
        client.app.state.service.begin_drain()
        r = client.get("/ready")
        assert r.status_code == 503 and r.json()["status"] == "draining"
        r = client.post("/v1/audio/speech", json={"input": SHORT})
        assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down"
