"""Reports of a :func:`voxserve.bench.run.bench` result: terminal table, JSON, Markdown, PNG plots.

:func:`write` puts ``<stem>.json``, ``<stem>.md`` and three plots (latency per
backend and size class, throughput against batch size, per-stage stacked bars)
into a directory; :func:`table` is the short text printed on the terminal;
:func:`machine_info` describes where the numbers were taken. Plots use
matplotlib's Agg canvas directly (no pyplot, no display, no global state).
"""

from __future__ import annotations

import json
import math
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from voxserve.bench.stages import STAGES

PACKAGES = ("voxserve", "torch", "numpy", "onnxruntime", "onnx", "soundfile", "faster-whisper", "matplotlib")
"""Package versions recorded with every result."""


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU, cores, Python, package versions and, for a CUDA device, the GPU, driver and CUDA version."""
    import torch

    from voxserve.bench.cpu import machine_info as cpu_info

    info = {k: v for k, v in cpu_info().items() if k in ("cpu", "cores", "python")}
    info["packages"] = {p: _version(p) for p in PACKAGES}
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(dev)
        info["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "driver": _driver(),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            # PyTorch's defaults, under which the eager reference runs (cuDNN convs use TF32 unless off).
            "tf32": {
                "matmul": torch.backends.cuda.matmul.allow_tf32,
                "cudnn": torch.backends.cudnn.allow_tf32,
            },
        }
    return info


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _driver() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


def _f(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _e(x: Any) -> str:
    """Small differences need their exponent: 3e-06 is not 0.0000."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return "0" if x == 0 else f"{x:.2e}"


def _ok(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in result["backends"] if e["status"] == "ok"]


def _classes(result: dict[str, Any]) -> list[str]:
    return list(result["workload"]["classes"])


def table(result: dict[str, Any]) -> str:
    """A fixed-width summary: one line per backend (p50 per class, TTFA, RTF, best throughput, speedup)."""
    classes = _classes(result)
    head = [
        "backend",
        *(f"{c} p50" for c in classes),
        "TTFA p50",
        "RTF",
        "max audio s/s",
        "speedup",
        "parity",
    ]
    rows = [head]
    mid = "medium" if "medium" in classes else classes[0]
    for e in result["backends"]:
        if e["status"] != "ok":
            rows.append([e["name"], f"{e['status']}: {e['reason']}"])
            continue
        best = max((p.get("audio_s_per_s", 0.0) for p in e["throughput"]), default=0.0)
        par = e.get("parity", {})
        rows.append(
            [
                e["name"],
                *(f"{e['latency'][c]['p50_ms']:.1f} ms" for c in classes),
                f"{e['ttfa'][mid]['p50_ms']:.1f} ms",
                f"{e['rtf']:.4f}",
                f"{best:.1f}",
                f"{e.get('speedup', {}).get('latency_p50', {}).get(mid, float('nan')):.2f}x",
                f"dur {par.get('duration_equal_rate', float('nan')):.3f} "
                f"corr {par.get('mel_corr_min', float('nan')):.4f}",
            ]
        )
    widths = [max(len(r[i]) for r in rows if i < len(r) and len(r) > 2) for i in range(len(head))]
    lines = []
    for r in rows:
        if len(r) == 2:  # skipped/failed: the reason runs on
            lines.append(f"{r[0]:<{widths[0]}}  {r[1]}")
        else:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    w = result["workload"]
    return f"{w['name']} on {result['config']['device']} (speedup: {mid} p50 vs {result['reference']})\n" + (
        "\n".join(lines)
    )


def to_markdown(result: dict[str, Any], plots: list[str] | None = None) -> str:
    """The full report: machine, then one table per measurement, then skipped backends and plots."""
    w, cfg, m = result["workload"], result["config"], result["machine"]
    classes, ok = _classes(result), _ok(result)
    mid = "medium" if "medium" in classes else classes[0]
    plan = cfg["plan"]
    lines = [
        f"# Benchmark: {w['name']} on {cfg['device']}",
        "",
        f"{w['description']}. Reference: eager fp32 `{result['reference']}` on the same device, measured "
        "first in the same run; every backend is loaded, measured and freed in turn.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores usable; Python {m['python']}",
    ]
    if "gpu" in m:
        g = m["gpu"]
        lines.append(
            f"- GPU: {g['name']} ({g['memory_gib']} GiB, sm {g['capability']}), driver {g['driver']}, "
            f"CUDA {g['cuda']}, cuDNN {g['cudnn']}; TF32 matmul {g['tf32']['matmul']}, "
            f"cuDNN {g['tf32']['cudnn']} (PyTorch defaults for the eager reference)"
        )
    lines += [
        "- Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"- Plan: {plan['repeats']} timed requests per item after {plan['warmup']} warm-up, "
        f"items per class {', '.join(f'{c} {n}' for c, n in w['classes'].items())}; "
        f"batch sizes {', '.join(map(str, plan['batch_sizes']))}",
        "",
        "## Latency at batch 1, ms (frontend + acoustic + vocoder + WAV encoding)",
        "",
        "| backend | " + " | ".join(f"{c} p50 / p95 / p99" for c in classes) + " | RTF | speedup p50 |",
        "| --- |" + " ---: |" * (len(classes) + 2),
    ]
    for e in ok:
        cells = [
            f"{_f(e['latency'][c]['p50_ms'])} / {_f(e['latency'][c]['p95_ms'])} / "
            f"{_f(e['latency'][c]['p99_ms'])}"
            for c in classes
        ]
        sp = e.get("speedup", {}).get("latency_p50", {})
        lines.append(
            f"| {e['name']} | "
            + " | ".join(cells)
            + f" | {e['rtf']:.4f} | "
            + ", ".join(f"{c} {_f(sp.get(c), 2)}×" for c in classes)
            + " |"
        )
    lines += [
        "",
        "## Time to first audio, streaming, ms",
        "",
        "`engine`: a stream job through the serving engine (`voxserve.engine.runtime`), one at a time. "
        f"`simple`: the first sentence's acoustic model, then its first {plan['stream_first_s']} s "
        "vocoded with the vocoder's receptive field as right context, as 16-bit PCM.",
        "",
        "| backend | " + " | ".join(f"{c} p50 / p99" for c in classes) + " | path |",
        "| --- |" + " ---: |" * len(classes) + " --- |",
    ]
    for e in ok:
        t = e["ttfa"]
        lines.append(
            f"| {e['name']} | "
            + " | ".join(f"{_f(t[c]['p50_ms'])} / {_f(t[c]['p99_ms'])}" for c in classes)
            + f" | {t[classes[0]]['source']} |"
        )
    batches = plan["batch_sizes"]
    lines += [
        "",
        f"## Throughput, seconds of audio per second ({mid} requests; acoustic + vocoder on padded "
        "batches, frontend and encoding excluded)",
        "",
        "| backend | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "| --- |" + " ---: |" * len(batches),
    ]
    for e in ok:
        by = {p["batch"]: p for p in e["throughput"]}
        lines.append(
            f"| {e['name']} | "
            + " | ".join(_f(by[b].get("audio_s_per_s")) if b in by else "–" for b in batches)
            + " |"
        )
    shown = [s for s in STAGES if any(s in e["stages_ms"][mid] for e in ok)]
    lines += [
        "",
        f"## Per-stage time, {mid} request, ms (device synchronized between stages)",
        "",
        "| backend | " + " | ".join(s.replace("_", " ") for s in shown) + " | total |",
        "| --- |" + " ---: |" * (len(shown) + 1),
    ]
    for e in ok:
        st = e["stages_ms"][mid]
        lines.append(
            f"| {e['name']} | "
            + " | ".join(_f(st.get(s), 2) for s in shown)
            + f" | {_f(sum(st.values()), 1)} |"
        )
    lines += [
        "",
        "## Memory and start-up",
        "",
        "RSS is the whole process's, so it includes what earlier backends left allocated; "
        "compare the growth from before to after loading.",
        "",
        "| backend | load s | warm-up s | GPU peak MiB (torch) | RSS before / after load MiB | RSS peak MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in ok:
        mem = e["memory"]
        lines.append(
            f"| {e['name']} | {_f(e['load_s'], 2)} | {_f(e['warmup_s'], 2)} | {_f(mem.get('gpu_peak_mib'))} | "
            f"{_f(mem.get('before_load_rss_mib'))} / {_f(mem.get('after_load_rss_mib'))} | "
            f"{_f(mem.get('rss_peak_mib'))} |"
        )
    lines += [
        "",
        f"## Parity with `{result['reference']}` (the reference row compares two of its own runs)",
        "",
        "| backend | durations equal | mel lengths equal | mel corr min / mean | mel max abs diff | CER | ΔCER |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in ok:
        p, a = e.get("parity", {}), e.get("asr", {})
        cer = _f(a.get("cer"), 3) if "cer" in a else ("skipped" if "skipped" in a else "not asked")
        lines.append(
            f"| {e['name']} | {_f(p.get('duration_equal_rate'), 4)} | {_f(p.get('mel_length_equal_rate'), 3)} | "
            f"{_f(p.get('mel_corr_min'), 6)} / {_f(p.get('mel_corr_mean'), 6)} | "
            f"{_e(p.get('mel_max_abs_diff'))} | {cer} | {_f(a.get('cer_delta'), 3)} |"
        )
    others = [e for e in result["backends"] if e["status"] != "ok"]
    if others:
        lines += ["", "## Not measured", ""]
        lines += [f"- **{e['name']}** ({e['status']}): {e['reason']}" for e in others]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>-latency.png``, ``-throughput.png`` and ``-stages.png``; returns their paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok, classes = _ok(result), _classes(result)
    title = f"{result['workload']['name']} on {result['config']['device']}"
    paths = []

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(ok), 1)
    for k, e in enumerate(ok):
        p50 = [e["latency"][c]["p50_ms"] for c in classes]
        p99 = [e["latency"][c]["p99_ms"] for c in classes]
        xs = [i + (k - (len(ok) - 1) / 2) * width for i in range(len(classes))]
        ax.bar(
            xs,
            p50,
            width,
            label=e["name"],
            yerr=[[0] * len(p50), [b - a for a, b in zip(p50, p99, strict=True)]],
            capsize=3,
        )
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yscale("log")
    ax.set_ylabel("latency, ms (bar p50, whisker p99)")
    ax.set_title(f"End-to-end latency at batch 1 — {title}")
    _legend(ax)
    paths.append(_save(fig, FigureCanvasAgg, out_dir / f"{stem}-latency.png"))

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for e in ok:
        pts = [p for p in e["throughput"] if "audio_s_per_s" in p]
        ax.plot([p["batch"] for p in pts], [p["audio_s_per_s"] for p in pts], marker="o", label=e["name"])
    ax.set_xscale("log", base=2)
    batches = result["config"]["plan"]["batch_sizes"]
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel("seconds of audio per second")
    ax.set_title(f"Throughput — {title}")
    _legend(ax)
    paths.append(_save(fig, FigureCanvasAgg, out_dir / f"{stem}-throughput.png"))

    mid = "medium" if "medium" in classes else classes[0]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    bottoms = [0.0] * len(ok)
    for s in STAGES:
        vals = [e["stages_ms"][mid].get(s, 0.0) for e in ok]
        if any(vals):
            label = "acoustic (not split)" if s == "acoustic" else s.replace("_", " ")
            ax.bar([e["name"] for e in ok], vals, 0.5, bottom=bottoms, label=label)
            bottoms = [a + b for a, b in zip(bottoms, vals, strict=True)]
    ax.set_ylabel("ms per request")
    ax.set_title(f"Per-stage time, {mid} request — {title}")
    _legend(ax)
    paths.append(_save(fig, FigureCanvasAgg, out_dir / f"{stem}-stages.png"))
    return paths


def _legend(ax: Any) -> None:
    # Outside the axes, so it never hides a bar or a line.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")


def _save(fig: Any, canvas: Any, path: Path) -> Path:
    canvas(fig).print_png(str(path))
    return path


def _finite(x: Any) -> Any:
    """``x`` with NaN and infinities as None: strict JSON has no words for them."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def write(result: dict[str, Any], out_dir: str | Path, stem: str | None = None) -> list[Path]:
    """Write JSON, Markdown and plots into ``out_dir`` (created); returns the files written."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    stem = stem or f"bench-{result['workload']['name']}-{result['config']['device'].replace(':', '')}"
    pngs = plot(result, d, stem) if _ok(result) else []
    js, md = d / f"{stem}.json", d / f"{stem}.md"
    js.write_text(json.dumps(_finite(result), ensure_ascii=False, indent=1, allow_nan=False), "utf-8")
    md.write_text(to_markdown(result, [str(p) for p in pngs]), "utf-8")
    return [js, md, *pngs]
