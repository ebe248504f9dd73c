"""SIGTERM drains: the server in a subprocess finishes the request in flight (200, whole file), then refuses new ones."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from audio_check import decode

LONG = "今天天气很好，我们一起去公园散步吧。" * 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_drains_in_flight_requests(tts):  # tts: the baker pack exists before the child starts
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    code = (
        f"from voxserve.server.app import run; run(port={port}, ui=False, api_keys=(), log_level='warning')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=dict(os.environ), stderr=subprocess.PIPE, text=True
    )
    try:
        t0 = time.monotonic()
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() - t0 < 180, "server did not become ready"
            time.sleep(0.2)
        ref = httpx.post(
            f"{url}/v1/audio/speech", json={"input": LONG, "response_format": "wav"}, timeout=120
        )
        ref_samples = len(decode(ref.content, "wav")[0])

        result: dict = {}

        def long_request() -> None:
            try:
                r = httpx.post(
                    f"{url}/v1/audio/speech", json={"input": LONG, "response_format": "wav"}, timeout=120
                )
                result["status"], result["body"] = r.status_code, r.content
            except httpx.HTTPError as e:  # recorded, then asserted on below
                result["error"] = repr(e)

        worker = threading.Thread(target=long_request)
        worker.start()
        in_flight = "voxserve_http_speech_in_flight 1"
        while in_flight not in httpx.get(f"{url}/metrics").text:
            assert worker.is_alive(), result
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert worker.is_alive()  # else the request was not in flight and nothing was drained
        # New work is refused while the old one finishes: 503 on a live connection, else no connection.
        time.sleep(0.2)
        try:
            late = httpx.post(f"{url}/v1/audio/speech", json={"input": "你好。"}, timeout=10)
            assert late.status_code == 503, late.text
        except httpx.TransportError:
            pass
        worker.join(timeout=120)
        assert result.get("status") == 200, result.get("error")
        samples, rate = decode(result["body"], "wav")
        assert rate == 24000 and len(samples) == ref_samples  # the whole file, not a cut-short one
        # uvicorn re-raises the signal it caught once shut down, so the exit is "killed by SIGTERM".
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
