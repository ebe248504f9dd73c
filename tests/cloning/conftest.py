"""Fixtures of the cloning tests: baker speech at 16 kHz, encoded clips, and a real redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import numpy as np
import pytest

SENTENCES = (
    "今天天气很好，我们一起去公园散步吧。然后再去吃饭。",
    "这本书讲的是一个小镇上的故事，人物很多，情节也很复杂。",
    "请在下一个路口向左转，然后一直往前走，大约五分钟就到了。",
)


@pytest.fixture(scope="session")
def speech(tts) -> list[np.ndarray]:
    """Three baker utterances (one speaker), 16 kHz float32, each about 5 s with its own silences."""
    from voxserve.cloning.audio import resample

    out = []
    for text in SENTENCES:
        audio = tts.synthesize(text)
        out.append(resample(np.asarray(audio.samples, dtype=np.float32), audio.sample_rate, 16000))
    return out


@pytest.fixture(scope="session")
def encoder():
    from voxserve.cloning.encoder import SpeakerEncoder

    return SpeakerEncoder.load()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A throwaway redis-server on a free loopback port (no persistence); skipped if not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    redis = pytest.importorskip("redis")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*args, "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        end = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
