"""Where one medium request's time goes on the GPU machine, per backend (torch profiler, CUPTI).

    python scripts/gpu_kernel_profile.py OUT_DIR [WORKLOAD ...]   (default: baker emotivoice-size)

For each workload and backend (``torch`` eager fp32, the reference; ``cuda-lean``) it runs the
benchmark's medium requests end to end (``voxserve.bench.stages.run_request``: frontend, acoustic,
vocoder, WAV encoding) under ``torch.profiler`` and reports, per request: wall time, GPU busy time
(the union of kernel and copy intervals), the number of kernels and of host-side CUDA API calls,
and the top kernels by GPU time. Writes ``kernel-profile.json`` and ``kernel-profile.md`` in
OUT_DIR. A measurement script for the benchmark docs, not part of the package.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from voxserve.bench import stages
from voxserve.bench.presets import load_workload
from voxserve.bench.run import _create

REQUESTS = 10
DEVICE = os.environ.get("KPROF_DEVICE", "cuda")
BACKENDS = os.environ.get("KPROF_BACKENDS", "torch,cuda-lean").split(
    ","
)  # "cpu": a smoke run of this script off the GPU machine


def _busy_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals, µs."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def measure(workload_name: str, backend_name: str) -> dict:
    workload = load_workload(workload_name)
    backend = _create(backend_name, DEVICE, None)
    backend.load(workload.pack)
    # The CUDA backend captures its graphs here; a conditioned model refuses the generic
    # warm-up (ValueError), and the runs below warm it up instead.
    with contextlib.suppress(ValueError):
        backend.warmup()
    items = workload.classes["medium"]
    for _ in range(3):  # warm-up at the exact shapes (graphs captured, cuDNN plans built)
        for item in items:
            stages.run_request(workload, backend, item)
    stages.sync(DEVICE)
    t0 = time.perf_counter()
    for _ in range(REQUESTS):
        stages.run_request(workload, backend, items[0])
    stages.sync(DEVICE)
    wall_ms = (time.perf_counter() - t0) * 1e3 / REQUESTS
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(REQUESTS):
            stages.run_request(workload, backend, items[0])
        stages.sync(DEVICE)
    events = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    kernels = [e for e in events if "memcpy" not in e.name.lower() and "memset" not in e.name.lower()]
    intervals = [(e.time_range.start, e.time_range.end) for e in events]
    per_kernel: dict[str, list[float]] = {}
    for e in kernels:
        per_kernel.setdefault(e.name, []).append(e.time_range.elapsed_us())
    top = sorted(per_kernel.items(), key=lambda kv: -sum(kv[1]))[:12]
    api = [e for e in prof.events() if e.device_type == DeviceType.CPU and e.name.startswith("cuda")]
    timer = stages.StageTimer(DEVICE)
    for _ in range(REQUESTS):
        stages.run_request(workload, backend, items[0], timer)
    result = {
        "workload": workload_name,
        "backend": backend_name,
        "medium_text_chars": len(getattr(items[0], "text", None) or "") or None,
        "wall_ms_per_request": round(wall_ms, 3),
        "gpu_busy_ms_per_request": round(_busy_us(intervals) / 1e3 / REQUESTS, 3),
        "kernels_per_request": len(kernels) / REQUESTS,
        "cuda_api_calls_per_request": len(api) / REQUESTS,
        "stages_ms_synchronized": {k: round(v / REQUESTS, 3) for k, v in timer.ms.items()},
        "top_kernels": [
            {
                "name": name[:90],
                "calls_per_request": len(t) / REQUESTS,
                "ms_per_request": round(sum(t) / 1e3 / REQUESTS, 4),
            }
            for name, t in top
        ],
    }
    del backend
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    return result


def markdown(results: list[dict]) -> str:
    dev = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU"
    lines = [
        "# Kernel profile: one medium request end to end (torch profiler, CUPTI)",
        "",
        f"{dev}, torch {torch.__version__}, CUDA {torch.version.cuda}. `scripts/gpu_kernel_profile.py`: "
        f"{REQUESTS} requests of the first medium benchmark sentence after warm-up; GPU busy = union of "
        "kernel and copy intervals; stages synchronized separately (`voxserve bench`'s stage split).",
        "",
        "| workload | backend | wall ms | GPU busy ms | kernels | CUDA API calls | stages (synchronized), ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        st = ", ".join(f"{k} {v:.2f}" for k, v in r["stages_ms_synchronized"].items())
        lines.append(
            f"| {r['workload']} | {r['backend']} | {r['wall_ms_per_request']:.2f} | {r['gpu_busy_ms_per_request']:.2f} "
            f"| {r['kernels_per_request']:.0f} | {r['cuda_api_calls_per_request']:.0f} | {st} |"
        )
    for r in results:
        lines += [
            "",
            f"## {r['workload']} on {r['backend']}: top kernels",
            "",
            "| kernel | calls | ms |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| `{k['name']}` | {k['calls_per_request']:g} | {k['ms_per_request']:.4f} |"
            for k in r["top_kernels"]
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    names = sys.argv[2:] or ["baker", "emotivoice-size"]
    results = []
    for name in names:
        for backend in BACKENDS if DEVICE == "cuda" else ("torch",):
            r = measure(name, backend)
            print(json.dumps({k: v for k, v in r.items() if k != "top_kernels"}), flush=True)
            results.append(r)
    (out / "kernel-profile.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "kernel-profile.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
