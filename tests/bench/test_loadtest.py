"""The load tester: target checks, search and accounting logic, and short runs against a real server."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time

import pytest

from voxserve.bench.loadtest import (
    Sample,
    _underrun,
    add_loadtest_arguments,
    check_target,
    find_max_concurrency,
    main,
    summarize,
)
from voxserve.errors import InvalidInput


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_loadtest_arguments(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:9", "http://127.4.5.6"]
)
def test_loopback_targets_allowed(url):
    assert check_target(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1:8000", "http://192.168.1.2", "https://example.com", "http://8.8.8.8", "http://0.0.0.0"],
)
def test_other_targets_refused_unless_allowed(url):
    with pytest.raises(InvalidInput, match="allow-remote"):
        check_target(url)
    assert check_target(url, allow_remote=True)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:8000", "http://"])
def test_malformed_targets_refused(url):
    with pytest.raises(InvalidInput):
        check_target(url)


@pytest.mark.parametrize(
    "limit,max_c", [(0, 16), (1, 16), (5, 16), (11, 16), (16, 16), (40, 16), (3, 3), (7, 10)]
)
def test_search_finds_highest_passing_level(limit, max_c):
    async def measure(c):
        ttfa = 100.0 if c <= limit else 500.0
        return {"concurrency": c, "ok": 3, "errors": {}, "ttfa_ms": {"p99": ttfa}}

    best, levels = asyncio.run(find_max_concurrency(measure, 150.0, max_c))
    assert best == min(limit, max_c)
    tried = [lv["concurrency"] for lv in levels]
    assert len(tried) == len(set(tried)) and max(tried) <= max_c
    assert len(tried) <= 2 * max_c.bit_length() + 1


def test_search_treats_errors_as_failure():
    async def measure(c):
        return {"concurrency": c, "ok": 3, "errors": {"503": 1} if c > 2 else {}, "ttfa_ms": {"p99": 1.0}}

    assert asyncio.run(find_max_concurrency(measure, 150.0, 8))[0] == 2


def test_underrun_counts_late_pieces():
    s = Sample(status=200, ttfa=0.1, audio_s=2.0, arrivals=[(0.1, 0.0), (0.5, 1.0), (1.6, 1.5)])
    # Playback from 0.1: second piece needed at 1.1 (early), third at 1.6 (on time).
    assert _underrun(s, 0.1) == 0.0
    s.arrivals[2] = (2.0, 1.5)  # needed at 1.6: waits 0.4
    assert _underrun(s, 0.1) == pytest.approx(0.4)


def test_summarize_percentiles_and_errors():
    ok = [Sample(status=200, ttfa=t / 1e3, e2e=2 * t / 1e3, audio_s=1.0) for t in range(1, 101)]
    bad = [
        Sample(status=503, error="busy"),
        Sample(status=0, error="timeout"),
        Sample(status=200, error="empty audio"),
    ]
    r = summarize(ok + bad, concurrency=4, wall_s=10.0, paced=False)
    assert r["ok"] == 100 and r["requests"] == 103
    assert r["errors"] == {"503": 1, "error:timeout": 1, "error:empty audio": 1}
    assert r["ttfa_ms"]["p50"] == pytest.approx(50.5) and r["ttfa_ms"]["p99"] == pytest.approx(99.01)
    assert r["e2e_ms"]["p99"] == pytest.approx(198.02)
    assert r["audio_s_per_s"] == 10.0 and r["requests_per_s"] == 10.0


@pytest.fixture(scope="module")
def server_url(tts):
    """The real server and serving engine on the session's voice, under uvicorn on a free loopback port."""
    import uvicorn

    from voxserve.engine.runtime import Engine
    from voxserve.server.app import create_app
    from voxserve.server.config import ServerConfig

    app = create_app(ServerConfig(ui=False, api_keys=()), engine=Engine(tts, voices=["baker"]))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=60)


def _check_level(lv, paced):
    assert lv["requests"] == lv["ok"] > 0 and lv["errors"] == {}
    t, e = lv["ttfa_ms"], lv["e2e_ms"]
    assert 0 < t["p50"] <= t["p95"] <= t["p99"]
    assert t["p50"] <= e["p50"] and t["p99"] <= e["p99"]
    assert lv["audio_s"] > 0.5 * lv["ok"]  # every sentence is at least a second of speech
    assert lv["audio_s_per_s"] > 0 and lv["requests_per_s"] > 0
    assert lv["missing_sample_rate"] == 0
    assert ("underruns" in lv) is paced


def test_unpaced_run_writes_results(server_url, tmp_path):
    out = tmp_path / "lt"
    args = _args(
        server_url, "-c", "4", "--unpaced", "--duration", "4", "--max-requests", "16", "--out", str(out)
    )
    result = main(args)
    _check_level(result["levels"][0], paced=False)
    assert result["levels"][0]["concurrency"] == 4 and result["levels"][0]["requests"] <= 16
    assert json.loads((out / "loadtest.json").read_text("utf-8"))["levels"] == result["levels"]
    assert "| 4 |" in (out / "loadtest.md").read_text("utf-8")


@pytest.mark.parametrize("stream_format", ["audio", "sse", "none"])
def test_paced_run(server_url, stream_format):
    args = _args(server_url, "-c", "2", "--duration", "3", "--max-requests", "6", "--mix", "short")
    args.stream_format = stream_format
    result = main(args)
    _check_level(result["levels"][0], paced=True)
    assert result["config"]["stream_format"] == (None if stream_format == "none" else stream_format)


def test_client_errors_are_counted(server_url):
    args = _args(
        server_url, "-c", "2", "--unpaced", "--duration", "2", "--max-requests", "4", "--voice", "nobody"
    )
    lv = main(args)["levels"][0]
    assert lv["ok"] == 0 and lv["errors"] == {"404": 4}


def test_search_returns_a_level(server_url):
    generous = main(
        _args(
            server_url,
            "--search",
            "--slo-ms",
            "60000",
            "--max-concurrency",
            "2",
            "--duration",
            "2",
            "--mix",
            "short",
        )
    )
    assert generous["search"]["best"] == 2
    assert [lv["concurrency"] for lv in generous["levels"]] == [1, 2]
    impossible = main(
        _args(
            server_url,
            "--search",
            "--slo-ms",
            "0.001",
            "--max-concurrency",
            "4",
            "--duration",
            "2",
            "--mix",
            "short",
        )
    )
    assert impossible["search"]["best"] == 0 and len(impossible["levels"]) == 1


def test_clients_spread_over_processes_share_the_budget(server_url):
    args = _args(
        server_url, "-c", "4", "--procs", "2", "--duration", "4", "--max-requests", "6", "--mix", "short"
    )
    lv = main(args)["levels"][0]
    _check_level(lv, paced=True)
    assert lv["concurrency"] == 4 and lv["requests"] <= 6
