"""``voxserve train run`` and ``voxserve train export``: arguments and handlers.

``train/cli.py`` (the ``train`` subcommand group) registers these with one call each
(:func:`add_run_parser`, :func:`add_export_parser`). Errors the user can fix raise
``InvalidInput``; the top-level CLI prints them as one line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from voxserve.errors import InvalidInput


def add_run_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``run`` to the ``train`` subparsers ``sub``; returns the new parser."""
    p = sub.add_parser("run", help="train the cloning voice for a time budget (resumable)")
    p.add_argument("--corpus", required=True, help="corpus directory (voxserve train corpus)")
    p.add_argument(
        "--out", required=True, help="run directory: checkpoint parts, train.log, history.csv, curve.svg"
    )
    p.add_argument(
        "--minutes", type=float, required=True, help="wall-clock budget; stops and checkpoints before it"
    )
    p.add_argument(
        "--resume",
        default=None,
        help="run directory to continue from exactly (may equal --out), or a light checkpoint file",
    )
    p.add_argument(
        "--new-corpus", action="store_true", help="resume on a changed corpus, from its first batch"
    )
    p.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="TEACHER:LANG",
        help="skip this teacher's training utterances in this language (repeatable; e.g. kokoro:zh)",
    )
    p.add_argument("--size", default="base", help="model size for a new run: base (default) or tiny")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--frames-per-batch", type=int, default=None, help="padded mel frames per batch (new run)")
    p.add_argument("--max-batch", type=int, default=None, help="most utterances per batch (new run)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (new run)")
    p.add_argument("--warmup-steps", type=int, default=None, help="warm-up steps (new run)")
    p.add_argument("--seed", type=int, default=None, help="seed (new run)")
    p.set_defaults(train_func=run_command)
    return p


def add_export_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``export`` to the ``train`` subparsers ``sub``; returns the new parser."""
    p = sub.add_parser("export", help="checkpoint → fp16 inference weights (+ model card) for the clone pack")
    p.add_argument("checkpoint", help="run directory (ckpt-II-of-NN.part files) or a light checkpoint file")
    p.add_argument(
        "--out", default=None, help="weights directory (default: the clone pack's, in the source tree)"
    )
    p.add_argument("--card", default=None, help="also write the model card here (e.g. docs/models/clone.md)")
    p.set_defaults(train_func=export_command)
    return p


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    """Train for ``args.minutes``; prints log lines and returns the run summary."""
    import dataclasses

    import torch

    from voxserve.models.clone import SIZES
    from voxserve.train.data import load_corpus
    from voxserve.train.report import write_run_files
    from voxserve.train.trainer import TrainConfig, Trainer

    if args.minutes <= 0:
        raise InvalidInput("--minutes must be positive", param="minutes")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise InvalidInput(f"--device {device}: this torch build sees no CUDA device", param="device")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "train.log").open("a", encoding="utf-8")
    started = time.perf_counter()

    def log(line: str) -> None:
        stamped = f"[{time.perf_counter() - started:7.1f}s] {line}"
        print(stamped, flush=True)
        log_file.write(stamped + "\n")
        log_file.flush()

    try:
        t0 = time.perf_counter()
        leave_out = []
        for spec in args.leave_out:
            teacher, _, lang = spec.partition(":")
            if not teacher or lang not in ("zh", "en"):
                raise InvalidInput(
                    f"--leave-out {spec!r}: expected TEACHER:zh or TEACHER:en", param="leave_out"
                )
            leave_out.append((teacher, lang))
        data = load_corpus(args.corpus, device=device, leave_out=leave_out)
        log(
            f"corpus {args.corpus}: {len(data)} utterances ({int(data.is_train.sum())} train), "
            f"{int(data.n_frames.sum())} frames, fingerprint {data.fingerprint}, loaded in "
            f"{time.perf_counter() - t0:.1f}s on {device}"
        )
        if args.resume:
            trainer = Trainer.resume(args.resume, data, device, new_corpus=args.new_corpus)
        else:
            if args.size not in SIZES:
                raise InvalidInput(f"--size {args.size!r}; known: {', '.join(SIZES)}", param="size")
            overrides = {
                k: v
                for k, v in {
                    "frames_per_batch": args.frames_per_batch,
                    "max_batch": args.max_batch,
                    "lr": args.lr,
                    "warmup_steps": args.warmup_steps,
                    "seed": args.seed,
                }.items()
                if v is not None
            }
            train = dataclasses.replace(TrainConfig(), **overrides)
            trainer = Trainer.create(data, SIZES[args.size], train, device)
        # Leave the budget's own startup (corpus load, model build) out of the training time.
        minutes = args.minutes - (time.perf_counter() - started) / 60.0
        summary = trainer.run(minutes, out, log)
        write_run_files(out, trainer.history)
        (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", "utf-8")
        return summary
    finally:
        log_file.close()


def export_command(args: argparse.Namespace) -> dict[str, Any]:
    """Export a checkpoint; returns where the files went (the group's ``main`` prints it)."""
    from voxserve.packs.clone.convert import weights_dir
    from voxserve.train.export import INFO_FILE, WEIGHTS_FILE, export

    out = Path(args.out) if args.out else weights_dir()
    info = export(args.checkpoint, out, args.card)
    return {
        "weights": str(out / WEIGHTS_FILE),
        "info": str(out / INFO_FILE),
        "mib": round(info["weights_bytes"] / 2**20, 2),
        "parameters": info["parameters"],
        "step": info["training"]["step"],
        "card": args.card,
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m voxserve.train.commands run|export ...``: the same commands without the full CLI's
    imports (the GPU machine has torch, numpy and safetensors, not the server's dependencies)."""
    parser = argparse.ArgumentParser(prog="python -m voxserve.train.commands")
    sub = parser.add_subparsers(dest="train_cmd", required=True)
    add_run_parser(sub)
    add_export_parser(sub)
    args = parser.parse_args(argv)
    try:
        result = args.train_func(args)
    except InvalidInput as e:
        parser.exit(2, f"error: {e}\n")
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
