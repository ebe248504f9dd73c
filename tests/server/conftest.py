"""Server test helpers: a real uvicorn server on a free loopback port, in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def serve(app, timeout: float = 120.0) -> Iterator[str]:
    """Run ``app`` under uvicorn (lifespan on) on 127.0.0.1:<free port>; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    t0 = time.monotonic()
    while not server.started:
        if not thread.is_alive() or time.monotonic() - t0 > timeout:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@pytest.fixture(scope="session")
def serve_app():
    """The ``serve`` context manager, as a fixture."""
    return serve


@pytest.fixture(scope="session")
def make_engine():
    """``make_engine(tts, config)``: the real serving engine for ``config``, sharing the session's voice."""
    from voxserve.server.serving import build_engine

    def make(tts, config):
        return build_engine(config, tts=tts)

    return make
