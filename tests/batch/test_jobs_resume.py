"""Kill-and-resume of an HTTP batch job: ``voxserve serve`` killed (SIGKILL) mid-book resumes after restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SHORT = "第一章 开始\n今天天气很好。我们去公园。\n"
LONG = "今天天气很好，我们一起去公园散步吧。" * 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(home: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "voxserve.cli", "serve", "--port", str(port), "--no-ui", "--jobs"]
    cmd += ["--log-level", "warning"]
    env = {**os.environ, "VOXSERVE_HOME": str(home), "VOXSERVE_API_KEYS": ""}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while True:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert time.monotonic() - t0 < 180, "server did not become ready"
        time.sleep(0.1)


def _job(url: str, job_id: str) -> dict:
    r = httpx.get(f"{url}/v1/audio/batches/{job_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_killed_server_resumes_without_redoing_finished_chapters(tts, tmp_path):
    from voxserve.packs import store

    home = tmp_path / "home"
    home.mkdir()
    for name in ("packs", "jieba"):  # the converted voice and jieba's cache, not rebuilt
        if (store.home() / name).is_dir():
            (home / name).symlink_to(store.home() / name, target_is_directory=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    book = SHORT + "".join(f"第{k}章\n{LONG}\n" for k in ("二", "三"))
    proc = _start(home, port)
    try:
        r = httpx.post(f"{url}/v1/audio/batches", json={"input": book, "response_format": "wav"}, timeout=30)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        t0 = time.monotonic()
        while (job := _job(url, job_id))["progress"]["chapters_done"] < 1:
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() - t0 < 180
            time.sleep(0.02)
        assert job["status"] == "running" and job["progress"]["chapters_done"] < 3, job
        out = home / "jobs" / job_id / "out"
        first = out / "chapter-001.wav"
        stamp = first.stat().st_mtime_ns
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert not (out / "chapter-003.wav").exists()

        proc = _start(home, port)
        t0 = time.monotonic()
        while (job := _job(url, job_id))["status"] in ("queued", "running"):
            assert time.monotonic() - t0 < 300
            time.sleep(0.1)
        assert job["status"] == "done", job["error"]
        assert job["runs"] == 2  # started again after the kill
        assert job["progress"]["chapters_skipped"] >= 1 and job["progress"]["chapters_done"] == 3
        assert first.stat().st_mtime_ns == stamp  # chapter 1 was not rendered again
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["complete"] and [c["status"] for c in manifest["chapters"]] == ["done"] * 3
        for chapter in manifest["chapters"]:
            assert (out / chapter["audio"]["path"]).stat().st_size == chapter["audio"]["bytes"]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
