"""``voxserve serve --workers 2``: two real server processes on one port, spread, drained together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from voxserve.server.config import ConfigError, ServerConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_workers():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxserve", "serve", "--workers", "2", "--port", str(port), "--no-ui"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "VOXSERVE_CLONE_PACK": "none"},
    )
    url = f"http://127.0.0.1:{port}"
    seen: set[str] = set()
    deadline = time.monotonic() + 300
    # Ready once both workers answer: each new connection lands on one listening worker.
    while len(seen) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"workers did not start: {proc.stdout.read().decode()[-3000:]}")
        try:
            with httpx.Client(timeout=5) as c:
                text = c.get(f"{url}/metrics").text
            seen |= {line.split('"')[1] for line in text.splitlines() if line.startswith("voxserve_worker{")}
        except httpx.HTTPError:
            time.sleep(0.5)
    yield proc, url
    if proc.poll() is None:
        proc.kill()


def speak(url: str, text: str) -> tuple[int, bytes]:
    with httpx.Client(timeout=120) as c:  # a new connection per request: the kernel picks a worker
        r = c.post(
            f"{url}/v1/audio/speech", json={"model": "voxserve", "input": text, "response_format": "wav"}
        )
    return r.status_code, r.content


def test_both_workers_serve_complete_audio(two_workers):
    _, url = two_workers
    texts = ["你好。", "今天天气很好。", "谢谢大家。", "我们去公园吧。"] * 2
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda t: speak(url, t), texts))
    assert all(status == 200 and body[:4] == b"RIFF" and len(body) > 10_000 for status, body in results)


def test_sigterm_drains_every_worker_and_exits_cleanly(two_workers):
    proc, url = two_workers
    with ThreadPoolExecutor(1) as pool:
        inflight = pool.submit(speak, url, "春天来了，公园里的花都开了，到处都是游客。")
        time.sleep(0.3)  # the request is in flight when the signal lands
        proc.send_signal(signal.SIGTERM)
        status, body = inflight.result(timeout=120)
    assert proc.wait(timeout=120) == 0
    assert status == 200 and body[:4] == b"RIFF"  # admitted before the signal: finished, not dropped


def test_jobs_need_a_single_worker():
    with pytest.raises(ConfigError, match="workers"):
        ServerConfig(jobs=True, workers=2)
    with pytest.raises(ConfigError, match="workers"):
        ServerConfig(workers=0)


def test_stream_chunk_settings_reach_the_engine():
    from voxserve.server.serving import build_engine

    config = ServerConfig(
        stream_first_s=0.3, stream_growth=3.0, stream_max_s=4.8, vocoder_call_s=6.0, ui=False
    )
    engine = build_engine(config)
    plan = engine._pipeline.chunking
    assert (plan.first_s, plan.growth, plan.max_s, plan.call_s) == (0.3, 3.0, 4.8, 6.0)
    with pytest.raises(ConfigError, match="vocoder_call_s"):
        ServerConfig(vocoder_call_s=0)
    with pytest.raises(ConfigError, match="keep_alive_s"):
        ServerConfig(keep_alive_s=0)
    with pytest.raises(ConfigError, match="gil_switch_ms"):
        ServerConfig(gil_switch_ms=-1)
    with pytest.raises(ConfigError, match="growth"):
        ServerConfig(stream_growth=0.5)
    with pytest.raises(ConfigError, match="first"):
        ServerConfig(stream_first_s=5.0)
