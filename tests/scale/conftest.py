"""Scale-out fixtures: one local Ray cluster (with Serve) for all Ray tests, and a real redis-server.

The cluster is package-scoped: started by the first Ray test, shut down after the last test in
tests/scale, so other test directories never run beside it. Replicas import ``fake_engine``
from this directory (``PYTHONPATH`` in the cluster's runtime environment).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    """A running local Ray cluster with Serve's HTTP proxy at ``url``."""

    url: str
    fake_dir: Path
    """Where the fake engine looks for hold flags and writes stop records."""


@pytest.fixture(scope="package")
def ray_cluster(tmp_path_factory) -> Iterator[Cluster]:
    import ray
    from ray import serve

    fake_dir = tmp_path_factory.mktemp("fake-engine")
    env = {
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "VOXSERVE_HOME": os.environ["VOXSERVE_HOME"],
        "VOXSERVE_FAKE_ENGINE_DIR": str(fake_dir),
        # Two cores: keep each replica's torch from spawning threads it cannot use.
        "OMP_NUM_THREADS": "1",
    }
    ray.init(
        num_cpus=4,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
        configure_logging=False,
    )
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield Cluster(f"http://127.0.0.1:{port}", fake_dir)
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="package")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """URL of a throwaway redis-server (no persistence); skipped only when redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    import redis

    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*args, "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
