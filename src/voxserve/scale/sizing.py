"""The committed sizing tables and the capacity curve read from them.

A sizing table (``docs/benchmarks/sizing/<gpu>.json``, one per GPU kind) holds what one GPU
running one voxserve server measured with the project's own tools: p99 time to first audio
(TTFA) at each concurrency of paced streams (``voxserve loadtest --search``), the one-stream
TTFA, offline throughput and memory (``voxserve bench``). ``sizing_report`` writes these tables
from a GPU run; this module reads and checks them and answers "how many streams does one GPU
hold at a p99 TTFA target": ``capacity_at``.

The load test's levels are noisy (a level with few requests can show a high p99), so the curve
is fitted first: a weighted isotonic regression of p99 TTFA on concurrency (weights: requests
per level), which is the closest non-decreasing curve. A level with errors counts as failing
every target. Between two measured levels the capacity is interpolated linearly; beyond the
highest level nothing is extrapolated.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxserve.errors import InvalidInput, VoxserveError

SCHEMA = 1
TABLES_ENV = "VOXSERVE_SIZING_TABLES"
"""Environment variable naming the directory of sizing tables (default: the repository's)."""


class SizingError(VoxserveError):
    """A sizing table is missing or malformed; the message names the file and key."""

    status = 500
    code = "sizing_error"


@dataclass(frozen=True)
class Level:
    """One load level: ``concurrency`` paced streams for a fixed time."""

    concurrency: int
    requests: int
    errors: int
    ttfa_p50_ms: float
    ttfa_p99_ms: float
    audio_s_per_s: float
    """Seconds of audio delivered per second, all streams together."""
    underruns: int = 0
    """Answers whose listener ran out of audio at least once (a stall; 0 in tables before it was kept)."""


@dataclass(frozen=True)
class SizingTable:
    """What one GPU kind measured (see the module docstring). Built with ``from_dict``; checked there."""

    gpu: str
    """Short name used by ``voxserve plan --gpu`` (``h100``, ``h200``)."""
    device: str
    """The GPU as nvidia-smi names it."""
    measured: str
    """Date of the run (YYYY-MM-DD)."""
    software: str
    """Driver, torch and CUDA versions of the run."""
    voice: str
    backend: str
    workload: str
    """What the streams asked for (texts, pacing, stream format), in words."""
    one_stream_p50_ms: float
    one_stream_p99_ms: float
    """p99 TTFA of a single stream: no load reaches a lower target."""
    levels: tuple[Level, ...]
    search_slo_ms: float
    search_streams: int
    """What the load test's own search reported at ``search_slo_ms``."""
    offline_audio_s_per_s: float | None
    """Best batched throughput of the models alone (``voxserve bench``), seconds of audio per second."""
    offline_batch: int | None
    server_gpu_mib: float | None
    """GPU memory in use with the server loaded, after the load test (nvidia-smi)."""
    torch_peak_mib: float | None
    """Peak torch allocation of the backend during the benchmark's batch sweep."""
    source: str = ""
    """The file this table was read from."""

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> SizingTable:
        """Check ``d`` (a parsed table) and build the table; ``SizingError`` names the bad key."""

        def get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
            if not isinstance(obj, dict) or key not in obj:
                raise SizingError(f"{source}: missing key {where}{key}")
            value = obj[key]
            if value is None or isinstance(value, bool) or not isinstance(value, kind):
                raise SizingError(f"{source}: {where}{key} must be {kind}, got {value!r}")
            return value

        if d.get("schema") != SCHEMA:
            raise SizingError(f"{source}: schema must be {SCHEMA}, got {d.get('schema')!r}")
        num = (int, float)
        raw_levels = get(d, "levels", list)
        levels = []
        for i, lv in enumerate(raw_levels):
            w = f"levels[{i}]."
            levels.append(
                Level(
                    get(lv, "concurrency", int, w),
                    get(lv, "requests", int, w),
                    get(lv, "errors", int, w),
                    float(get(lv, "ttfa_p50_ms", num, w)),
                    float(get(lv, "ttfa_p99_ms", num, w)),
                    float(get(lv, "audio_s_per_s", num, w)),
                    int(lv.get("underruns", 0)),
                )
            )
        if not levels:
            raise SizingError(f"{source}: levels is empty")
        if any(lv.concurrency < 1 or lv.requests < 0 for lv in levels):
            raise SizingError(f"{source}: levels need concurrency >= 1 and requests >= 0")
        one = get(d, "one_stream_ttfa_ms", dict)
        search = get(d, "search", dict)
        thr = d.get("throughput") or {}
        mem = d.get("memory") or {}

        def opt(obj: dict[str, Any], key: str) -> Any:
            value = obj.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, num)):
                raise SizingError(f"{source}: {key} must be a number or null, got {value!r}")
            return value

        return cls(
            gpu=get(d, "gpu", str),
            device=get(d, "device", str),
            measured=get(d, "measured", str),
            software=get(d, "software", str),
            voice=get(d, "voice", str),
            backend=get(d, "backend", str),
            workload=get(d, "workload", str),
            one_stream_p50_ms=float(get(one, "p50", num, "one_stream_ttfa_ms.")),
            one_stream_p99_ms=float(get(one, "p99", num, "one_stream_ttfa_ms.")),
            levels=tuple(sorted(levels, key=lambda lv: lv.concurrency)),
            search_slo_ms=float(get(search, "slo_ms", num, "search.")),
            search_streams=get(search, "streams", int, "search."),
            offline_audio_s_per_s=opt(thr, "offline_audio_s_per_s"),
            offline_batch=opt(thr, "offline_batch"),
            server_gpu_mib=opt(mem, "server_gpu_mib"),
            torch_peak_mib=opt(mem, "torch_peak_mib"),
            source=source,
        )


def default_tables_dir() -> Path:
    """``$VOXSERVE_SIZING_TABLES``, else ``docs/benchmarks/sizing`` of the source tree this module is in."""
    env = os.environ.get(TABLES_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "docs" / "benchmarks" / "sizing"


def load_table(path: str | Path) -> SizingTable:
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise SizingError(f"{path}: no such sizing table") from None
    except json.JSONDecodeError as e:
        raise SizingError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise SizingError(f"{path}: must hold a JSON object")
    return SizingTable.from_dict(data, str(path))


def load_tables(directory: str | Path | None = None) -> dict[str, SizingTable]:
    """Every ``*.json`` table in ``directory`` (default ``default_tables_dir()``), by GPU name."""
    directory = Path(directory) if directory is not None else default_tables_dir()
    if not directory.is_dir():
        raise SizingError(f"no sizing tables at {directory} (set ${TABLES_ENV} or pass --tables)")
    tables: dict[str, SizingTable] = {}
    for path in sorted(directory.glob("*.json")):
        table = load_table(path)
        if table.gpu in tables:
            raise SizingError(f"{path}: gpu {table.gpu!r} also in {tables[table.gpu].source}")
        tables[table.gpu] = table
    if not tables:
        raise SizingError(f"no sizing tables (*.json) in {directory}")
    return tables


def fitted_curve(levels: tuple[Level, ...] | list[Level]) -> list[tuple[int, float]]:
    """(concurrency, fitted p99 TTFA ms), non-decreasing: weighted isotonic regression (pool adjacent violators).

    Levels with errors become infinite (they fail every target); weights are requests per level.
    """
    ordered = sorted(levels, key=lambda lv: lv.concurrency)
    # Blocks of pooled levels: [mean, weight, count]
    blocks: list[list[float]] = []
    for lv in ordered:
        value = math.inf if lv.errors else lv.ttfa_p99_ms
        blocks.append([value, float(max(lv.requests, 1)), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            mean = math.inf if math.inf in (v1, v2) else (v1 * w1 + v2 * w2) / (w1 + w2)
            blocks.append([mean, w1 + w2, n1 + n2])
    values = [b[0] for b in blocks for _ in range(int(b[2]))]
    return [(lv.concurrency, v) for lv, v in zip(ordered, values, strict=True)]


@dataclass(frozen=True)
class Capacity:
    """Streams one GPU holds at a p99 TTFA target, and how that number was found."""

    streams: int
    slo_ms: float
    how: str
    """``interpolated`` between two levels, ``measured`` at a level, ``at_least`` (the highest level
    met the target: no more was tried), or ``single`` (the target sits between the one-stream
    TTFA and the lowest level's fitted value)."""
    below: tuple[int, float] | None
    """The highest level meeting the target (concurrency, fitted p99 ms)."""
    above: tuple[int, float] | None
    """The lowest level missing it."""


def capacity_at(table: SizingTable, slo_ms: float) -> Capacity:
    """Streams per GPU at p99 TTFA <= ``slo_ms``; ``InvalidInput`` below the one-stream p99 TTFA."""
    if not (isinstance(slo_ms, (int, float)) and math.isfinite(slo_ms) and slo_ms > 0):
        raise InvalidInput(f"the TTFA target must be a positive number of ms, got {slo_ms!r}", param="slo_ms")
    if slo_ms < table.one_stream_p99_ms:
        raise InvalidInput(
            f"a p99 TTFA of {slo_ms:g} ms is below what one stream measured on {table.gpu} "
            f"({table.one_stream_p99_ms:g} ms p99): no number of GPUs reaches it",
            param="slo_ms",
        )
    curve = fitted_curve(table.levels)
    meeting = [i for i, (_, v) in enumerate(curve) if v <= slo_ms]
    if not meeting:
        return Capacity(1, slo_ms, "single", None, curve[0])
    i = meeting[-1]
    lo = curve[i]
    if i == len(curve) - 1:
        return Capacity(lo[0], slo_ms, "at_least", lo, None)
    hi = curve[i + 1]
    if math.isinf(hi[1]) or hi[1] == lo[1]:
        return Capacity(lo[0], slo_ms, "measured", lo, hi)
    streams = lo[0] + (slo_ms - lo[1]) / (hi[1] - lo[1]) * (hi[0] - lo[0])
    return Capacity(max(lo[0], math.floor(streams)), slo_ms, "interpolated", lo, hi)
