"""``voxserve batch INPUT -o OUTDIR``: argument definitions and the command.

Prints a progress bar on standard error (sentences done, audio seconds, × real time, ETA) and
one summary line on standard output; ``--report PATH`` also writes the run's measurements as JSON
(for benchmarks, with ``timings``: seconds per pipeline step); ``--profile PATH`` profiles the run
(``voxserve.batch.profiling``). User errors (bad input, markup, voice, disk full) end with one line and exit 2
through the top-level CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``voxserve batch`` (no heavy imports)."""
    p.add_argument("input", help="document: .txt, .md or .epub (UTF-8 text)")
    p.add_argument("-o", "--output", required=True, help="output directory (created; re-runs resume)")
    p.add_argument("--voice", default="baker", help="default voice (markup spans may switch)")
    p.add_argument(
        "--emotion", default=None, help="default emotion: 普通 生气 开心 ... or neutral, angry, ..."
    )
    p.add_argument("--speed", type=float, default=None, help="tempo multiplier, 0.25-4.0")
    p.add_argument("--pitch", type=float, default=None, help="pitch multiplier, 0.5-2.0")
    p.add_argument("--energy", type=float, default=None, help="energy multiplier, 0.25-4.0")
    p.add_argument("--volume", type=float, default=None, help="output gain, 0.0-4.0")
    p.add_argument(
        "--format", default="mp3", choices=("mp3", "opus", "aac", "flac", "wav", "pcm"), help="audio format"
    )
    p.add_argument(
        "--lexicon", default=None, help="pronunciation file: word<TAB>pinyin (or ARPAbet) per line"
    )
    p.add_argument("--type", dest="kind", default=None, choices=("txt", "md", "epub"), help="input type")
    p.add_argument("--backend", default="torch", help="how models run (torch, cuda, onnxruntime, ...)")
    p.add_argument("--device", default=None, help="device for the backend (default: cuda for cuda, else cpu)")
    p.add_argument(
        "--batch-size", type=int, default=None, help="sentences per model call (default 64 GPU, 16 CPU)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads encoding and writing chapters (default: CPUs - 1, 1-8)",
    )
    p.add_argument(
        "--frontend-procs",
        type=int,
        default=None,
        help="processes that phonemize, off the renderer's GIL (default: CPUs // 4, at most 4; 0 below 4 CPUs)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-titles", action="store_true", help="do not speak chapter titles")
    p.add_argument("--report", default=None, help="also write the run's measurements as JSON to this path")
    p.add_argument(
        "--profile",
        default=None,
        metavar="PATH",
        help="profile the run: cProfile (pstats) to PATH, every thread's sampled stacks to PATH.stacks.txt",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


class _Bar:
    """tqdm over sentences with audio seconds, × real time and ETA; a plain stderr line without tqdm."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._bar: Any = None
        self._last = 0.0

    def __call__(self, progress: Any) -> None:
        if self.quiet:
            return
        eta = progress.eta_seconds
        post = f"{progress.audio_seconds:.0f}s audio, {progress.speed:.1f}x, ch {progress.chapters_done}/{progress.chapters_total}"
        try:
            from tqdm import tqdm  # type: ignore[import-untyped]
        except ImportError:
            now = time.monotonic()
            if now - self._last >= 1.0:
                self._last = now
                left = "?" if eta is None else f"{eta:.0f}s"
                sys.stderr.write(
                    f"\r{progress.sentences_done}/{progress.sentences_total} sentences, {post}, ETA {left}"
                )
            return
        if self._bar is None:
            self._bar = tqdm(total=progress.sentences_total, unit="sent", file=sys.stderr, mininterval=0.5)
        self._bar.update(progress.sentences_done - self._bar.n)
        self._bar.set_postfix_str(post, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif not self.quiet and self._last:
            sys.stderr.write("\n")


def main(args: argparse.Namespace) -> None:
    from voxserve.batch.documents import read_document
    from voxserve.batch.lexicon import Lexicon, read_lexicon
    from voxserve.batch.manifest import sha256
    from voxserve.batch.runner import BatchJob, BatchSettings

    device = args.device or ("cuda" if args.backend == "cuda" else "cpu")
    batch_size = args.batch_size or (64 if device.startswith("cuda") else 16)
    t0 = time.perf_counter()
    doc = read_document(args.input, args.kind)
    settings = BatchSettings(
        voice=args.voice,
        emotion=args.emotion,
        speed=args.speed,
        pitch=args.pitch,
        energy=args.energy,
        volume=args.volume,
        format=args.format,
        batch_size=batch_size,
        lexicon=read_lexicon(args.lexicon) if args.lexicon else Lexicon(),
        speak_titles=not args.no_titles,
        workers=args.workers or max(1, min(8, (os.cpu_count() or 2) - 1)),
        frontend_processes=_frontend_processes(args.frontend_procs),
    )
    settings.validate()
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    source = {"name": Path(args.input).name, "sha256": sha256(Path(args.input).read_bytes())}
    job = BatchJob(doc, args.output, settings, backend=args.backend, device=device, source=source)
    job.validate()  # every voice, emotion and markup error surfaces here, before any synthesis
    bar = _Bar(args.quiet)
    try:
        if args.profile:
            from voxserve.batch.profiling import RunProfile

            with RunProfile(args.profile):
                report = job.run(on_progress=bar)
        else:
            report = job.run(on_progress=bar)
    finally:
        bar.close()
    total = time.perf_counter() - t0
    print(
        f"{args.output}: {report.chapters_rendered} chapters written, {report.chapters_skipped} already done; "
        f"{report.audio_seconds:.1f} s of audio in {report.wall_seconds:.1f} s "
        f"({report.realtime_factor:.1f}x real time)"
    )
    if args.report:
        out = {**report.to_dict(), "total_seconds": round(total, 3), "machine": _machine(device)}
        Path(args.report).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", "utf-8")


def _frontend_processes(asked: int | None) -> int:
    if asked is not None:
        return asked
    cpus = os.cpu_count() or 1
    # A process costs a core and ~1 s to start: worth it where cores are spare, not on a laptop.
    return 0 if cpus < 4 else min(4, cpus // 4)


def _machine(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info
