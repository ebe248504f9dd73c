"""Build sizing tables from a GPU run, and the plots and Markdown of ``docs/benchmarks/sizing.md``.

``python -m voxserve.scale.sizing_report table RUN_DIR --gpu h100 --out docs/benchmarks/sizing/h100.json``
reads what ``scripts/gpu_sizing.sh`` leaves in ``RUN_DIR`` (``gpu.csv``, ``one-stream/loadtest.json``,
``search/loadtest.json``, ``bench/bench-*-cuda.json``) and writes one table (``sizing.py`` reads it).

``python -m voxserve.scale.sizing_report report [--tables DIR] [--doc docs/benchmarks/sizing.md]``
draws ``sizing-ttfa.png`` and ``sizing-capacity.png`` beside the tables and rewrites the generated
block of the document (between ``<!-- sizing:begin -->`` and ``<!-- sizing:end -->``). It never
touches measured numbers by hand: everything comes from the tables. Needs matplotlib.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from voxserve.scale.sizing import SCHEMA, SizingError, SizingTable, capacity_at, fitted_curve, load_tables

BEGIN, END = "<!-- sizing:begin -->", "<!-- sizing:end -->"
REPORT_SLOS_MS = (50.0, 100.0, 150.0, 200.0, 300.0)
"""p99 TTFA targets in the generated capacity table."""


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text("utf-8"))  # type: ignore[no-any-return]
    except FileNotFoundError:
        raise SizingError(f"{path}: missing from the run directory") from None


def _gpu_csv(path: Path) -> dict[str, Any]:
    """name, driver, total memory, software line and memory.used from the run's ``gpu.csv``."""
    lines = [ln.strip() for ln in path.read_text("utf-8").splitlines() if ln.strip()]
    out: dict[str, Any] = {"software": "", "used_mib": None}
    for i, line in enumerate(lines):
        if line.startswith("name,"):
            name, driver, total = (p.strip() for p in lines[i + 1].split(","))
            out |= {"device": name, "driver": driver, "total": total}
        elif line.startswith("torch "):
            out["software"] = line
        elif line.startswith("memory.used") and i + 1 < len(lines):
            out["used_mib"] = float(lines[i + 1].split()[0])
    if "device" not in out:
        raise SizingError(f"{path}: no nvidia-smi name line")
    return out


def _bench(run: Path, explicit: Path | None) -> dict[str, Any] | None:
    candidates = (
        [explicit]
        if explicit
        else [*sorted(run.glob("bench/bench-*-cuda.json")), *sorted(run.glob("baker/bench-*-cuda.json"))]
    )
    for path in candidates:
        if path is not None and path.exists():
            data = _json(path)
            for b in data.get("backends", []):
                if b.get("name") == "cuda" and b.get("status") == "ok":
                    return b  # type: ignore[no-any-return]
    return None


def _serve_flags(run: Path) -> str:
    """The extra ``voxserve serve`` flags of a run (``serve-flags.txt``; none before it was written)."""
    path = run / "serve-flags.txt"
    flags = path.read_text("utf-8").strip().removeprefix("serve flags:").strip() if path.exists() else ""
    return "" if flags in ("", "none") else flags


def build_table(
    run: Path, gpu: str, measured: str | None = None, bench: Path | None = None
) -> dict[str, Any]:
    """The sizing table (a JSON-ready dict) of one GPU run directory."""
    info = _gpu_csv(run / "gpu.csv")
    search = _json(run / "search" / "loadtest.json")
    one = _json(run / "one-stream" / "loadtest.json")
    cfg = search["config"]
    levels = [
        {
            "concurrency": lv["concurrency"],
            "requests": lv["requests"],
            "errors": lv["requests"] - lv["ok"],
            "ttfa_p50_ms": lv["ttfa_ms"]["p50"],
            "ttfa_p99_ms": lv["ttfa_ms"]["p99"],
            "audio_s_per_s": lv["audio_s_per_s"],
            "underruns": lv.get("underruns") or 0,
        }
        for lv in search["levels"]
        if lv["ttfa_ms"]["p99"] is not None
    ]
    one_level = one["levels"][0]
    b = _bench(run, bench)
    best = max(b["throughput"], key=lambda t: t["audio_s_per_s"]) if b else None
    table = {
        "schema": SCHEMA,
        "gpu": gpu,
        "device": info["device"],
        "measured": measured or dt.date.today().isoformat(),
        "software": f"driver {info['driver']}, {info['software']}".strip(", "),
        "voice": cfg.get("voice") or "baker",
        "backend": "cuda",
        "server": _serve_flags(run),
        "workload": (
            f"{'paced' if cfg['paced'] else 'unpaced'} streams, {len(cfg['texts'])} Mandarin texts "
            f"(short and medium), stream_format {cfg['stream_format']} (pcm), {cfg['duration_s']:g} s per level"
        ),
        "one_stream_ttfa_ms": {
            "p50": one_level["ttfa_ms"]["p50"],
            "p99": one_level["ttfa_ms"]["p99"],
            "requests": one_level["requests"],
        },
        "levels": levels,
        "search": {"slo_ms": search["search"]["slo_ms"], "streams": search["search"]["best"]},
        "throughput": {
            "offline_audio_s_per_s": round(best["audio_s_per_s"], 1) if best else None,
            "offline_batch": best["batch"] if best else None,
        },
        "memory": {
            "server_gpu_mib": info["used_mib"],
            "torch_peak_mib": round(b["memory"]["gpu_peak_mib"], 1) if b else None,
        },
    }
    SizingTable.from_dict(table, str(run))  # refuse to write what sizing.py could not read
    return table


# --- report -----------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def markdown(tables: dict[str, SizingTable]) -> str:
    """The generated block of sizing.md: per-GPU figures and capacity at several targets."""
    rows = [
        "| GPU | device | streams at p99 TTFA ≤ 150 ms | one stream TTFA p50 / p99 | audio s/s at capacity "
        "| stalled answers at capacity | streams, < 1 % stalled (measured) "
        "| offline throughput (× real time) | GPU memory: server / torch peak | measured |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in sorted(tables.items()):
        cap = capacity_at(t, 150.0) if t.one_stream_p99_ms <= 150.0 else None
        knee = max(
            (lv for lv in t.levels if cap and lv.concurrency <= cap.streams and not lv.errors),
            key=lambda lv: lv.concurrency,
            default=None,
        )
        offline = (
            f"{_fmt(t.offline_audio_s_per_s)} (batch {t.offline_batch})" if t.offline_audio_s_per_s else "–"
        )
        smooth = max(
            (
                lv.concurrency
                for lv in t.levels
                if not lv.errors and lv.ttfa_p99_ms <= 150.0 and lv.underruns < 0.01 * max(lv.requests, 1)
            ),
            default=None,
        )
        stalled = f"{100 * knee.underruns / max(knee.requests, 1):.1f} %" if knee else "–"
        rows.append(
            f"| {name} | {t.device} | {cap.streams if cap else '–'} | "
            f"{t.one_stream_p50_ms:.1f} / {t.one_stream_p99_ms:.1f} ms | "
            f"{_fmt(knee.audio_s_per_s if knee else None, digits=1)} | {stalled} | {_fmt(smooth)} | {offline} | "
            f"{_fmt(t.server_gpu_mib, ' MiB')} / {_fmt(t.torch_peak_mib, ' MiB')} | {t.measured} |"
        )
    rows += [
        "",
        "Streams per GPU at each p99 TTFA target (fitted curve, interpolated; `–`: below one stream's TTFA):",
        "",
    ]
    rows.append("| GPU | " + " | ".join(f"≤ {s:g} ms" for s in REPORT_SLOS_MS) + " |")
    rows.append("| --- |" + " --- |" * len(REPORT_SLOS_MS))
    for name, t in sorted(tables.items()):
        cells = []
        for slo in REPORT_SLOS_MS:
            if slo < t.one_stream_p99_ms:
                cells.append("–")
                continue
            c = capacity_at(t, slo)
            cells.append(f"≥ {c.streams}" if c.how == "at_least" else str(c.streams))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    rows += [
        "",
        "![p99 TTFA against concurrent streams](sizing/sizing-ttfa.png)",
        "![streams per GPU against the TTFA target](sizing/sizing-capacity.png)",
    ]
    return "\n".join(rows) + "\n"


def plots(tables: dict[str, SizingTable], out: Path) -> list[Path]:
    """``sizing-ttfa.png`` (measured and fitted p99 TTFA per concurrency) and ``sizing-capacity.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, t in sorted(tables.items()):
        xs = [lv.concurrency for lv in t.levels]
        (line,) = ax.plot(
            *zip(*[(c, v) for c, v in fitted_curve(t.levels) if math.isfinite(v)], strict=True),
            label=f"{name} fitted",
        )
        ax.scatter(
            xs, [lv.ttfa_p99_ms for lv in t.levels], color=line.get_color(), s=14, label=f"{name} measured"
        )
    ax.axhline(150, color="grey", linestyle=":", linewidth=1, label="150 ms")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="concurrent paced streams (one GPU)",
        ylabel="p99 TTFA (ms)",
        title="Time to first audio under load",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(out / "sizing-ttfa.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, t in sorted(tables.items()):
        top = max(lv.ttfa_p99_ms for lv in t.levels if not lv.errors)
        slos = [t.one_stream_p99_ms + (top - t.one_stream_p99_ms) * i / 200 for i in range(201)]
        ax.plot(slos, [capacity_at(t, s).streams for s in slos], label=name)
    ax.set(
        xscale="log",
        xlabel="p99 TTFA target (ms)",
        ylabel="streams per GPU",
        title="Capacity of one GPU at a TTFA target",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(out / "sizing-capacity.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def update_doc(doc: Path, block: str) -> None:
    """Replace the text between the markers of ``doc`` with ``block``."""
    text = doc.read_text("utf-8")
    if BEGIN not in text or END not in text:
        raise SizingError(f"{doc}: needs the markers {BEGIN} and {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{block}{END}{tail}", "utf-8")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m voxserve.scale.sizing_report", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="write one sizing table from a gpu_sizing.sh run directory")
    t.add_argument("run", type=Path)
    t.add_argument("--gpu", required=True, help="short name: h100, h200")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--measured", default=None, help="date of the run (default today)")
    t.add_argument(
        "--bench", type=Path, default=None, help="bench JSON (default: found in the run directory)"
    )
    r = sub.add_parser("report", help="plots and the generated block of sizing.md from the tables")
    r.add_argument("--tables", type=Path, default=None)
    r.add_argument("--doc", type=Path, default=None, help="document to update (default: beside the tables)")
    args = p.parse_args(argv)
    if args.cmd == "table":
        table = build_table(args.run, args.gpu, args.measured, args.bench)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(table, ensure_ascii=False, indent=1) + "\n", "utf-8")
        print(f"wrote {args.out}: {table['search']['streams']} streams at {table['search']['slo_ms']:g} ms")
        return
    from voxserve.scale.sizing import default_tables_dir

    directory = args.tables or default_tables_dir()
    tables = load_tables(directory)
    for path in plots(tables, directory):
        print(f"wrote {path}")
    doc = args.doc or directory.parent / "sizing.md"
    update_doc(doc, markdown(tables))
    print(f"updated {doc}")


if __name__ == "__main__":
    main()
