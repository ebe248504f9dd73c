"""``voxserve bench WHAT``: run a benchmark, print a table, optionally write JSON and Markdown."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any


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
    from voxserve import TTS
    from voxserve.bench.cpu import bench_cpu, to_markdown

    r = bench_cpu(TTS(threads=args.threads), threads=args.threads, repeat=args.repeat or 3)
    _write(args.out, "cpu-baker", r, to_markdown(r))


def main(args: argparse.Namespace) -> None:
    {"frontend": _frontend, "cpu": _cpu}[args.what](args)
