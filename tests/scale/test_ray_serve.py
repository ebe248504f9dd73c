"""voxserve on a local Ray Serve cluster, two CPU replicas of a fake engine whose timing the test holds.

Covers: the OpenAI API through Ray's proxy, requests spread over replicas, streaming not buffered
by the proxy, health, a replica killed while streams are in flight (no hang: every client call
ends within its timeout; new requests succeed), and graceful drain when the app is deleted.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from voxserve.scale.options import DEPLOYMENT_NAME, RayOptions
from voxserve.scale.ray_app import REPLICA_HEADER, build_app
from voxserve.server.config import ServerConfig

APP = "fake"
CHUNK_BYTES = 2400 * 2  # one fake chunk as pcm s16
CLIENT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


@pytest.fixture(scope="module")
def fake_app(ray_cluster):
    from ray import serve

    config = ServerConfig(ui=False, max_queue=16, drain_timeout_s=15.0)
    options = RayOptions(
        replicas=2,
        num_cpus=0.5,
        engine_factory="fake_engine:make_engine",
        health_check_period_s=1.0,
        graceful_shutdown_s=15.0,
    )
    serve.run(build_app(config, options), name=APP, route_prefix="/")
    yield ray_cluster
    serve.delete(APP)  # a no-op when the drain test already deleted it


def speech(text: str, **extra) -> dict:
    return {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "pcm", **extra}


def release(cluster, name: str) -> None:
    (cluster.fake_dir / name).touch()


def replica_actor(tag: str):
    import ray

    return ray.get_actor(f"SERVE_REPLICA::{APP}#{DEPLOYMENT_NAME}#{tag}", namespace="serve")


def wait_running(replicas: int, timeout: float = 90.0) -> None:
    """Until the app is RUNNING with ``replicas`` running replicas (Ray replaced a lost one)."""
    from ray import serve

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app = serve.status().applications.get(APP)
        if app is not None and app.status == "RUNNING":
            counts = app.deployments[DEPLOYMENT_NAME].replica_states
            if counts.get("RUNNING", 0) == replicas and sum(counts.values()) == replicas:
                return
        time.sleep(0.25)
    raise AssertionError(f"app {APP} did not get back to {replicas} running replicas")


def test_openai_api_through_ray_proxy(fake_app):
    with httpx.Client(base_url=fake_app.url, timeout=CLIENT_TIMEOUT) as c:
        r = c.post("/v1/audio/speech", json=speech("你好", response_format="wav"))
        assert r.status_code == 200, r.text
        assert r.content[:4] == b"RIFF" and r.headers["x-sample-rate"] == "24000"
        assert r.headers[REPLICA_HEADER]
        bad = c.post("/v1/audio/speech", json=speech(""))
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "input"
        assert c.get("/health").json() == {"status": "ok"}
        ready = c.get("/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert b"voxserve_http_requests_total" in c.get("/metrics").content


def test_requests_spread_over_both_replicas(fake_app):
    def one(_: int) -> str:
        with httpx.Client(base_url=fake_app.url, timeout=CLIENT_TIMEOUT) as c:
            r = c.post("/v1/audio/speech", json=speech("你好"))
            assert r.status_code == 200 and len(r.content) == 2 * CHUNK_BYTES
            return r.headers[REPLICA_HEADER]

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(one, range(24)))
    assert len(set(seen)) == 2, seen


def test_stream_is_not_buffered_by_the_proxy(fake_app):
    # The engine holds the second chunk until the flag exists, and the flag is made only after
    # the client got the first chunk: a buffering proxy would stall here until the read timeout.
    name = f"stream-{uuid.uuid4().hex}"
    body = speech(f"hold:{name}", stream_format="audio")
    timeout = httpx.Timeout(10.0, connect=5.0)
    with httpx.stream("POST", f"{fake_app.url}/v1/audio/speech", json=body, timeout=timeout) as r:
        assert r.status_code == 200
        pieces = r.iter_bytes()
        got = b""
        while len(got) < CHUNK_BYTES:
            got += next(pieces)
        release(fake_app, name)
        got += b"".join(pieces)
    assert len(got) == 2 * CHUNK_BYTES


class HeldStream:
    """A streaming request, read in a thread: what arrived, how it ended, on which replica."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.first = threading.Event()
        self.replica = ""
        self.received = 0
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url: str) -> None:
        body = speech(f"hold:{self.name}", stream_format="audio")
        try:
            with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=CLIENT_TIMEOUT) as r:
                r.raise_for_status()
                self.replica = r.headers[REPLICA_HEADER]
                for piece in r.iter_bytes():
                    self.received += len(piece)
                    if self.received >= CHUNK_BYTES:
                        self.first.set()
        except Exception as e:  # the outcome under test: any client-side failure is recorded
            self.error = e
        finally:
            self.first.set()

    @property
    def complete(self) -> bool:
        return self.error is None and self.received == 2 * CHUNK_BYTES


def test_replica_killed_under_load(fake_app):
    import ray

    streams = [HeldStream(fake_app.url, f"kill-{i}-{uuid.uuid4().hex}") for i in range(8)]
    for s in streams:
        assert s.first.wait(20), "a stream got no first chunk"
    assert all(s.error is None and s.replica for s in streams), [repr(s.error) for s in streams]
    by_replica = {s.replica for s in streams}
    assert len(by_replica) == 2, "the streams should be spread over both replicas"
    victim = streams[0].replica
    ray.kill(replica_actor(victim), no_restart=True)

    # New requests right after the kill succeed (on the surviving replica or a replacement).
    with httpx.Client(base_url=fake_app.url, timeout=CLIENT_TIMEOUT) as c:
        for _ in range(6):
            r = c.post("/v1/audio/speech", json=speech("你好"))
            assert r.status_code == 200, r.text
            assert r.headers[REPLICA_HEADER] != victim

    for s in streams:
        release(fake_app, s.name)
    for s in streams:
        s.thread.join(30)
        assert not s.thread.is_alive(), "a client hung"
    on_victim = [s for s in streams if s.replica == victim]
    survivors = [s for s in streams if s.replica != victim]
    assert on_victim and survivors
    # Streams on the killed replica end with an error the client sees (not a short body that looks whole).
    for s in on_victim:
        assert not s.complete and s.error is not None, (s.received, s.error)
    for s in survivors:
        assert s.complete, (s.received, s.error)
    wait_running(2)


def test_health_check_replaces_a_replica_whose_engine_failed(fake_app):
    # "break-engine" makes one replica's fake engine stop being ready: Ray's health check (every
    # second here) must fail on it, and Ray must replace that replica.
    with httpx.Client(base_url=fake_app.url, timeout=CLIENT_TIMEOUT) as c:
        r = c.post("/v1/audio/speech", json=speech("break-engine"))
    assert r.status_code == 503
    broken = r.headers[REPLICA_HEADER]
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            replica_actor(broken)
        except ValueError:
            break  # the actor is gone
        time.sleep(0.25)
    else:
        raise AssertionError("the unhealthy replica was not replaced")
    wait_running(2)


def test_delete_drains_streams_in_flight(fake_app):
    from ray import serve

    before = set(Path(fake_app.fake_dir).glob("stopped-*"))
    stream = HeldStream(fake_app.url, f"drain-{uuid.uuid4().hex}")
    assert stream.first.wait(20) and stream.error is None
    deleting = threading.Thread(target=serve.delete, args=(APP,), daemon=True)
    deleting.start()
    time.sleep(1.0)  # the replicas are now stopping, with the stream still held
    assert stream.thread.is_alive()
    release(fake_app, stream.name)
    stream.thread.join(30)
    assert stream.complete, (stream.received, stream.error)
    deleting.join(60)
    assert not deleting.is_alive()
    drained = set(Path(fake_app.fake_dir).glob("stopped-*-drain=True")) - before
    assert len(drained) == 2, drained  # both replicas stopped their engines with drain=True
