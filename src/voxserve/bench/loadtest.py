"""``voxserve loadtest URL``: concurrent streaming clients against a running voxserve server.

Each client posts ``/v1/audio/speech`` with ``response_format=pcm`` (16-bit mono),
reads the body as it streams, and times the first audio byte (TTFA) and the last
(end-to-end). Audio length comes from the byte count and the ``X-Sample-Rate``
header. Two client kinds:

- paced: a listener. It plays each answer in real time from its first byte, asks
  for the next sentence ``lookahead`` before the current one ends, and counts an
  underrun whenever audio is not there when playback needs it. Concurrency is
  the number of such streams ("concurrent streams per GPU").
- unpaced: sends the next request as soon as the last one finished (raw throughput).

``--search`` finds the highest concurrency whose p99 TTFA meets ``--slo-ms`` with no
errors: doubling from 1, then bisecting, one bounded run per level.

Every run is bounded: no new request after ``--duration`` seconds or after
``--max-requests``; each request gives up after ``--timeout``. Only loopback
targets are accepted unless ``--allow-remote``. This measures a server; it does
not start one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ipaddress
import json
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voxserve.errors import InvalidInput

DEFAULT_MIX = ("short", "medium")


@dataclass(frozen=True)
class LoadConfig:
    """One load run's settings (see ``add_loadtest_arguments`` for each flag)."""

    url: str
    texts: tuple[str, ...]
    paced: bool = True
    duration_s: float = 20.0
    """No request starts after this many seconds from the run's start."""
    max_requests: int = 1000
    """Requests per run, across all clients."""
    timeout_s: float = 60.0
    """A request that has not finished by then counts as an error ("timeout")."""
    lookahead_s: float = 0.3
    """Paced: how long before the current audio ends a stream asks for its next sentence."""
    ramp_s: float = 1.0
    """Clients start evenly spread over this many seconds."""
    voice: str | None = None
    stream_format: str | None = "audio"
    """"audio": chunked raw body; "sse": base64 audio events; None: one whole file (TTFA ~ e2e)."""
    fallback_sample_rate: int = 24000
    """Used, and counted, when a response has no X-Sample-Rate header."""
    seed: int = 0


@dataclass
class Sample:
    """One request as a client saw it. Times in seconds from the request's start."""

    status: int
    """HTTP status, or 0 when the request failed before one (see ``error``)."""
    ttfa: float | None = None
    e2e: float = 0.0
    audio_s: float = 0.0
    error: str | None = None
    underrun_s: float = 0.0
    """Paced: total time playback waited for this sentence's audio."""
    rate_from_header: bool = True
    arrivals: list[tuple[float, float]] = field(default_factory=list, repr=False)
    """(time, audio seconds received before this piece) per body piece."""


def check_target(url: str, allow_remote: bool = False) -> str:
    """The base URL without a trailing slash; refuses hosts other than loopback unless ``allow_remote``."""
    import httpx

    try:
        u = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise InvalidInput(f"bad URL {url!r}: {e}", param="url") from None
    if u.scheme not in ("http", "https") or not u.host:
        raise InvalidInput(f"URL must be http(s)://HOST[:PORT], got {url!r}", param="url")
    if not allow_remote and not _is_loopback(u.host):
        raise InvalidInput(
            f"refusing non-loopback target {u.host!r}; pass --allow-remote to load a server you own",
            param="url",
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: not resolved, since it could point anywhere


async def request(client: Any, cfg: LoadConfig, text: str) -> Sample:
    """One speech request, timed from send to the first and last audio byte."""
    body: dict[str, Any] = {"model": "voxserve", "input": text, "response_format": "pcm"}
    if cfg.voice:
        body["voice"] = cfg.voice
    if cfg.stream_format:
        body["stream_format"] = cfg.stream_format
    t0 = time.perf_counter()
    s = Sample(status=0)
    try:
        await asyncio.wait_for(_read(client, cfg, body, t0, s), cfg.timeout_s)
    except asyncio.TimeoutError:
        s.error = "timeout"
    except Exception as e:  # transport failures are results here, not crashes
        s.error = type(e).__name__
    s.e2e = time.perf_counter() - t0
    return s


async def _read(client: Any, cfg: LoadConfig, body: dict[str, Any], t0: float, s: Sample) -> None:
    async with client.stream("POST", f"{cfg.url}/v1/audio/speech", json=body) as r:
        s.status = r.status_code
        if r.status_code != 200:
            s.error = (await r.aread())[:200].decode("utf-8", "replace")
            return
        rate_header = r.headers.get("x-sample-rate")
        s.rate_from_header = rate_header is not None
        bytes_per_s = 2 * (int(rate_header) if rate_header else cfg.fallback_sample_rate)
        received = 0
        async for piece in _audio_pieces(r, cfg.stream_format == "sse"):
            if not piece:
                continue
            now = time.perf_counter() - t0
            if s.ttfa is None:
                s.ttfa = now
            s.arrivals.append((now, received / bytes_per_s))
            received += len(piece)
        s.audio_s = received / bytes_per_s
        if received == 0:
            s.error = "empty audio"


async def _audio_pieces(r: Any, sse: bool) -> Any:
    if not sse:
        async for piece in r.aiter_bytes():
            yield piece
        return
    async for line in r.aiter_lines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            if payload and payload != "[DONE]":
                event = json.loads(payload)
                if event.get("audio"):
                    yield base64.b64decode(event["audio"])


def _underrun(s: Sample, start: float) -> float:
    """Seconds playback waits inside one answer whose first piece plays at ``start`` (request clock)."""
    stall = 0.0
    for t, before in s.arrivals:
        need = start + before + stall
        if t > need:
            stall += t - need
    return stall


async def _client(
    client: Any, cfg: LoadConfig, k: int, start: float, stop: float, budget: list[int], ends: list[float]
) -> list[Sample]:
    """One client's requests until ``stop`` or the shared ``budget`` runs out; appends its playback end."""
    rng = random.Random(cfg.seed * 1000 + k)
    out: list[Sample] = []
    play_end: float | None = None  # paced: when the audio queued so far finishes, perf_counter clock
    send_at = start
    while send_at < stop:
        if send_at > time.perf_counter():
            await asyncio.sleep(send_at - time.perf_counter())
        if budget[0] <= 0:
            break
        budget[0] -= 1
        t0 = time.perf_counter()
        s = await request(client, cfg, rng.choice(cfg.texts))
        out.append(s)
        if not cfg.paced:
            send_at = time.perf_counter()
            continue
        if s.ttfa is None:  # an error: this listener hears silence, then asks again
            play_end, send_at = None, time.perf_counter()
            continue
        first = t0 + s.ttfa
        play_start = first if play_end is None else max(first, play_end)
        gap = 0.0 if play_end is None else max(0.0, first - play_end)
        s.underrun_s = gap + _underrun(s, play_start - t0)
        play_end = play_start + s.audio_s + (s.underrun_s - gap)
        send_at = play_end - cfg.lookahead_s
    if play_end is not None:
        ends.append(play_end)
    return out


async def run_level(cfg: LoadConfig, concurrency: int, procs: int = 1) -> dict[str, Any]:
    """Run ``concurrency`` clients for one bounded period; the summary of what they saw.

    ``procs`` > 1 spreads the clients over that many processes (each its own event loop and
    connection pool), so that the client side is not what saturates at hundreds of streams;
    ``max_requests`` is split between them in proportion to their clients.
    """
    procs = max(1, min(procs, concurrency))
    # Clients join evenly over the ramp, as listeners would, rather than in one burst.
    if procs == 1:
        t0 = time.perf_counter()
        samples, ends = await _run_clients(cfg, list(range(concurrency)), concurrency, t0, cfg.max_requests)
    else:
        import concurrent.futures
        import multiprocessing

        shares = [list(range(concurrency))[i::procs] for i in range(procs)]
        budgets = [cfg.max_requests * len(ks) // concurrency for ks in shares]
        budgets[0] += cfg.max_requests - sum(budgets)
        # Perf_counter is the system's monotonic clock on Linux: one time base for every process.
        t0 = time.perf_counter() + 3.0  # time for the workers to start before the first client
        loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(procs, mp_context=ctx) as pool:
            parts = await asyncio.gather(
                *(
                    loop.run_in_executor(pool, _clients_in_process, cfg, ks, concurrency, t0, b)
                    for ks, b in zip(shares, budgets, strict=True)
                )
            )
        samples = [s for part, _ in parts for s in part]
        ends = [e for _, part_ends in parts for e in part_ends]
    # Paced listeners are busy until their last audio has played, which can be after the last byte.
    wall = max([time.perf_counter(), *ends]) - t0
    return summarize(samples, concurrency, wall, cfg.paced)


async def _run_clients(
    cfg: LoadConfig, ks: list[int], concurrency: int, t0: float, max_requests: int
) -> tuple[list[Sample], list[float]]:
    """Clients ``ks`` (of ``concurrency``, started on the ramp from ``t0``) sharing ``max_requests``."""
    import httpx

    limits = httpx.Limits(max_connections=len(ks), max_keepalive_connections=len(ks))
    async with httpx.AsyncClient(timeout=cfg.timeout_s, limits=limits, trust_env=False) as client:
        budget = [max_requests]
        ends: list[float] = []
        per_client = await asyncio.gather(
            *(
                _client(client, cfg, k, t0 + cfg.ramp_s * k / concurrency, t0 + cfg.duration_s, budget, ends)
                for k in ks
            )
        )
    return [s for c in per_client for s in c], ends


def _clients_in_process(
    cfg: LoadConfig, ks: list[int], concurrency: int, t0: float, max_requests: int
) -> tuple[list[Sample], list[float]]:
    """``_run_clients`` in a worker process; arrival logs are dropped (not needed after pacing)."""
    samples, ends = asyncio.run(_run_clients(cfg, ks, concurrency, t0, max_requests))
    for s in samples:
        s.arrivals = []
    return samples, ends


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100  # linear interpolation between closest ranks
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return round((v[lo] + (v[hi] - v[lo]) * (pos - lo)) * 1e3, 2)


def summarize(samples: list[Sample], concurrency: int, wall_s: float, paced: bool) -> dict[str, Any]:
    """Percentiles in milliseconds, throughput, errors by status (``error:KIND`` when no status)."""
    ok = [s for s in samples if s.status == 200 and s.error is None]
    errors = Counter(
        f"error:{s.error}" if s.status in (0, 200) else str(s.status)
        for s in samples
        if not (s.status == 200 and s.error is None)
    )
    ttfa = [s.ttfa for s in ok if s.ttfa is not None]
    e2e = [s.e2e for s in ok]
    audio = sum(s.audio_s for s in ok)
    out: dict[str, Any] = {
        "concurrency": concurrency,
        "mode": "paced" if paced else "unpaced",
        "requests": len(samples),
        "ok": len(ok),
        "errors": dict(sorted(errors.items())),
        "wall_s": round(wall_s, 3),
        "ttfa_ms": {f"p{q}": _pct(ttfa, q) for q in (50, 95, 99)},
        "e2e_ms": {f"p{q}": _pct(e2e, q) for q in (50, 95, 99)},
        "audio_s": round(audio, 3),
        "audio_s_per_s": round(audio / wall_s, 3) if wall_s > 0 else 0.0,
        "requests_per_s": round(len(ok) / wall_s, 3) if wall_s > 0 else 0.0,
        "missing_sample_rate": sum(not s.rate_from_header for s in ok),
    }
    if paced:
        out["underruns"] = sum(s.underrun_s > 0 for s in ok)
        out["underrun_s"] = round(sum(s.underrun_s for s in ok), 3)
    return out


def meets_slo(level: dict[str, Any], slo_ms: float) -> bool:
    """True when every request succeeded and the p99 TTFA is within ``slo_ms``."""
    p99 = level["ttfa_ms"]["p99"]
    return level["ok"] > 0 and not level["errors"] and p99 is not None and p99 <= slo_ms


async def find_max_concurrency(
    measure: Callable[[int], Awaitable[dict[str, Any]]], slo_ms: float, max_concurrency: int
) -> tuple[int, list[dict[str, Any]]]:
    """Highest level in 1..max_concurrency that meets the SLO (0 if none), and every level run.

    Doubles from 1 until a level fails, then bisects between the last pass and the
    first failure: at most about 2·log2(max_concurrency) + 1 levels. Assumes that
    a level above a failing one fails too.
    """
    levels: list[dict[str, Any]] = []

    async def passes(c: int) -> bool:
        levels.append(await measure(c))
        levels[-1]["meets_slo"] = meets_slo(levels[-1], slo_ms)
        return levels[-1]["meets_slo"]

    lo, hi, c = 0, max_concurrency + 1, 1
    while c < hi:
        if not await passes(c):
            hi = c
            break
        lo = c
        c = min(2 * c, max_concurrency) if c < max_concurrency else hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if await passes(mid) else (lo, mid)
    return lo, levels


def load_texts(path: str | None, mix: str) -> tuple[str, ...]:
    """Texts from a file (one per non-empty line) or from the benchmark sentence classes in ``mix``."""
    if path:
        texts = tuple(line.strip() for line in Path(path).read_text("utf-8").splitlines() if line.strip())
        if not texts:
            raise InvalidInput(f"{path}: no texts", param="texts")
        return texts
    from voxserve.bench.sentences import BENCH_SENTENCES

    names = [m.strip() for m in mix.split(",") if m.strip()]
    unknown = [n for n in names if n not in BENCH_SENTENCES]
    if unknown or not names:
        raise InvalidInput(f"--mix: unknown {unknown}; known: {', '.join(BENCH_SENTENCES)}", param="mix")
    return tuple(t for n in names for t in BENCH_SENTENCES[n])


def to_markdown(result: dict[str, Any]) -> str:
    """A table with one row per concurrency level (times in ms)."""
    cfg = result["config"]
    lines = [
        f"# Load test: {cfg['url']} ({'paced streams' if cfg['paced'] else 'unpaced'})",
        "",
        f"{len(cfg['texts'])} texts, {cfg['duration_s']} s per level, at most {cfg['max_requests']} requests.",
        "",
        "| conc. | req | ok | errors | TTFA p50 / p95 / p99 | e2e p50 / p95 / p99 | audio s/s | req/s | underruns |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in result["levels"]:
        t, e = lv["ttfa_ms"], lv["e2e_ms"]
        errs = ", ".join(f"{k}: {v}" for k, v in lv["errors"].items()) or "0"
        lines.append(
            f"| {lv['concurrency']} | {lv['requests']} | {lv['ok']} | {errs} "
            f"| {t['p50']} / {t['p95']} / {t['p99']} | {e['p50']} / {e['p95']} / {e['p99']} "
            f"| {lv['audio_s_per_s']} | {lv['requests_per_s']} | {lv.get('underruns', '-')} |"
        )
    if "search" in result:
        s = result["search"]
        lines += ["", f"Highest concurrency with p99 TTFA <= {s['slo_ms']} ms and no errors: **{s['best']}**"]
    return "\n".join(lines) + "\n"


def add_loadtest_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``voxserve loadtest``."""
    p.add_argument("url", help="server base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("-c", "--concurrency", type=int, default=4, help="clients (streams when paced)")
    p.add_argument("--unpaced", action="store_true", help="send back to back instead of pacing to playback")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per level (no new request after)")
    p.add_argument("--max-requests", type=int, default=1000, help="requests per level, all clients")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a request counts as failed")
    p.add_argument("--lookahead-ms", type=float, default=300.0, help="paced: ask this early for the next one")
    p.add_argument("--ramp", type=float, default=1.0, help="seconds over which clients start")
    p.add_argument("--mix", default=",".join(DEFAULT_MIX), help="sentence classes: short,medium,long")
    p.add_argument("--texts", default=None, help="file with one text per line (replaces --mix)")
    p.add_argument("--voice", default=None)
    p.add_argument(
        "--stream-format", choices=["audio", "sse", "none"], default="audio", help="none: ask for whole files"
    )
    p.add_argument("--warmup", type=int, default=2, help="sequential requests before measuring")
    p.add_argument("--search", action="store_true", help="find the highest concurrency meeting --slo-ms")
    p.add_argument("--slo-ms", type=float, default=150.0, help="search: p99 TTFA target")
    p.add_argument("--max-concurrency", type=int, default=64, help="search: highest level tried")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--procs",
        type=int,
        default=0,
        help="client processes (0: one per 100 clients, at most half the CPUs)",
    )
    p.add_argument("--allow-remote", action="store_true", help="allow a target other than loopback")
    p.add_argument("--out", default=None, help="directory for loadtest.json and loadtest.md")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole load test described by parsed flags; returns the result that ``main`` writes."""
    if args.procs < 0:
        raise InvalidInput("--procs must be 0 (auto) or more", param="procs")
    for name in ("concurrency", "max_requests", "max_concurrency"):
        if getattr(args, name) < 1:
            raise InvalidInput(f"--{name.replace('_', '-')} must be at least 1", param=name)
    if not (args.duration > 0 and args.timeout > 0 and 0 <= args.ramp < args.duration):
        raise InvalidInput(
            "--duration and --timeout must be positive, --ramp below --duration", param="duration"
        )
    cfg = LoadConfig(
        url=check_target(args.url, args.allow_remote),
        texts=load_texts(args.texts, args.mix),
        paced=not args.unpaced,
        duration_s=args.duration,
        max_requests=args.max_requests,
        timeout_s=args.timeout,
        lookahead_s=args.lookahead_ms / 1e3,
        ramp_s=args.ramp,
        voice=args.voice,
        stream_format=None if args.stream_format == "none" else args.stream_format,
        seed=args.seed,
    )
    procs = args.procs

    def measure(c: int) -> Awaitable[dict[str, Any]]:
        n = procs if procs > 0 else min(max(1, (os.cpu_count() or 2) // 2), -(-c // 100))
        return run_level(cfg, c, n)

    if args.warmup > 0:
        await run_level(LoadConfig(**{**asdict(cfg), "max_requests": args.warmup, "paced": False}), 1)
    result: dict[str, Any] = {"config": asdict(cfg)}
    if args.search:
        best, levels = await find_max_concurrency(measure, args.slo_ms, args.max_concurrency)
        result["search"] = {"slo_ms": args.slo_ms, "best": best, "max_concurrency": args.max_concurrency}
        result["levels"] = levels
    else:
        result["levels"] = [await measure(args.concurrency)]
    return result


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run, print the Markdown table, write JSON and Markdown under ``--out``; returns the result."""
    result = asyncio.run(run(args))
    md = to_markdown(result)
    print(md)
    if args.out:
        d = Path(args.out)
        d.mkdir(parents=True, exist_ok=True)
        (d / "loadtest.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), "utf-8")
        (d / "loadtest.md").write_text(md, "utf-8")
        print(f"wrote {d / 'loadtest.json'} and .md")
    return result
