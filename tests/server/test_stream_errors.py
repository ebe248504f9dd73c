"""What the server does when the engine fails mid-stream, driven by a scripted stub engine (no models).

The stub plays the ServingEngine protocol: each job yields ``chunks`` synthetic chunks,
then raises ``fail_with`` if set. It records cancellations.
"""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from voxserve.engine.interface import AudioChunk, DeadlineExceeded, SpeechJob
from voxserve.server.app import create_app
from voxserve.server.config import ServerConfig


class StubStream:
    def __init__(self, engine: StubEngine) -> None:
        self.engine = engine

    def cancel(self) -> None:
        self.engine.cancelled += 1

    async def __aiter__(self):
        for i in range(self.engine.chunks):
            samples = (0.3 * np.sin(np.arange(2400) / 5)).astype(np.float32)
            yield AudioChunk(samples, 24000, i, i == self.engine.chunks - 1 and self.engine.fail_with is None)
        if self.engine.fail_with is not None:
            raise self.engine.fail_with


class StubEngine:
    def __init__(self, chunks: int = 2, fail_with: Exception | None = None) -> None:
        self.chunks, self.fail_with = chunks, fail_with
        self.cancelled = 0
        self.jobs: list[SpeechJob] = []

    async def start(self) -> None: ...

    async def stop(self, drain: bool = True) -> None: ...

    @property
    def ready(self) -> bool:
        return True

    def submit(self, job: SpeechJob) -> StubStream:
        self.jobs.append(job)
        return StubStream(self)


def _client(engine: StubEngine, **config) -> TestClient:
    return TestClient(create_app(ServerConfig(ui=False, api_keys=(), **config), engine=engine))


def test_sse_reports_an_error_event_after_audio_began():
    engine = StubEngine(chunks=1, fail_with=DeadlineExceeded("too slow"))
    with _client(engine) as c:
        r = c.post(
            "/v1/audio/speech", json={"input": "你好", "response_format": "pcm", "stream_format": "sse"}
        )
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert r.status_code == 200 and [e["type"] for e in events] == ["speech.audio.delta", "error"]
    assert len(base64.b64decode(events[0]["audio"])) == 4800
    assert events[1]["error"]["code"] == "deadline_exceeded" and events[1]["error"]["type"] == "server_error"


def test_byte_stream_is_cut_short_not_completed_after_a_late_error(serve_app):
    # The client must see a broken transfer, not a 200 that looks complete.
    engine = StubEngine(chunks=1, fail_with=DeadlineExceeded("too slow"))
    app = create_app(ServerConfig(ui=False, api_keys=()), engine=engine)
    body = {"input": "你好", "response_format": "wav", "stream_format": "audio"}
    with serve_app(app) as url, pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{url}/v1/audio/speech", json=body)
    assert app.state.service.metrics.in_flight.get() == 0


def test_error_before_the_first_chunk_keeps_its_status():
    engine = StubEngine(chunks=0, fail_with=DeadlineExceeded("too slow"))
    with _client(engine) as c:
        for stream_format in (None, "audio", "sse"):
            body = {"input": "你好"} | ({"stream_format": stream_format} if stream_format else {})
            r = c.post("/v1/audio/speech", json=body)
            assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"


def test_job_fields_from_the_request():
    engine = StubEngine()
    with _client(engine, deadline_s=7.0) as c:
        r = c.post(
            "/v1/audio/speech",
            json={
                "input": "你好",
                "voice": "shimmer",
                "speed": 1.5,
                "instructions": "please sound fearful",
                "extra": None,
            }
            | {"pitch": 1.1, "stream_format": "sse", "timestamps": True},
        )
        assert r.status_code == 400  # "extra" is not a field
        r = c.post(
            "/v1/audio/speech",
            json={"input": "你好", "voice": "shimmer", "speed": 1.5, "instructions": "please sound fearful"}
            | {"pitch": 1.1, "stream_format": "sse", "timestamps": True},
        )
    assert r.status_code == 200
    job = engine.jobs[-1]
    assert job.voice is None  # an OpenAI voice name means the default voice
    assert (job.params.speed, job.params.pitch, job.params.emotion) == (1.5, 1.1, "恐惧")
    assert job.stream and job.timestamps and job.deadline_s == 7.0


def test_cors_when_configured():
    with _client(StubEngine(), cors_origins=("https://app.example",)) as c:
        r = c.options(
            "/v1/audio/speech",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
    with _client(StubEngine()) as c:
        r = c.post("/v1/audio/speech", json={"input": "你好"}, headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in r.headers
