"""``voxserve train corpus OUTDIR``: arguments and handler (the work is in ``build``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from voxserve.errors import InvalidInput


def add_corpus_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``corpus`` to the ``train`` subparsers ``sub``; returns the new parser."""
    p = sub.add_parser("corpus", help="synthesize the multi-speaker training corpus from the teacher voices")
    p.add_argument("outdir", help="corpus directory to write (meta.json, utts.jsonl, shards)")
    p.add_argument(
        "--minutes", type=float, default=75.0, help="target minutes of training audio (default 75)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for blends, texts, emotions, tempo (default 0)")
    p.add_argument(
        "--blends", type=int, default=48, help="Kokoro style blends, held-out ones included (default 48)"
    )
    p.add_argument(
        "--held-out-blends", type=int, default=8, help="blends kept for evaluation only (default 8)"
    )
    p.add_argument(
        "--baker-pitches",
        default="",
        help="comma-separated F0 multipliers, one baker variant speaker each (default: none)",
    )
    p.add_argument(
        "--voice-spread",
        type=float,
        default=0.0,
        help="per-blend F0 level/range and rate spread s in [0, 0.5) (default 0: the packs' own)",
    )
    p.add_argument(
        "--shares",
        default="0.2,0.12,0.2,0.48",
        help="fractions of --minutes for baker (+ variants), piper, the Kokoro voices, the blends",
    )
    p.add_argument(
        "--max-cer",
        type=float,
        default=None,
        help="leave out Kokoro Mandarin training takes the ASR judge misreads beyond this CER (default: keep all)",
    )
    p.add_argument(
        "--deadline", type=float, default=35.0, help="stop rendering after this many minutes (default 35)"
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes, one thread each (default 2)")
    p.add_argument(
        "--clips", default=None, help="directory for the held-out FLAC reference clips + manifest.json"
    )
    p.add_argument(
        "--max-mib", type=float, default=38.0, help="stop when mel data reaches this size (default 38)"
    )
    p.add_argument(
        "--resume", action="store_true", help="keep the shards already in OUTDIR and skip their jobs"
    )
    p.set_defaults(train_func=corpus_command)
    return p


def corpus_command(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the options and build the corpus; returns the build summary."""
    from voxserve.train.corpus.build import build
    from voxserve.train.corpus.plan import Options

    for name in ("minutes", "deadline", "max_mib"):
        if getattr(args, name) <= 0:
            raise InvalidInput(f"--{name.replace('_', '-')} must be positive", param=name)
    if args.workers < 1:
        raise InvalidInput("--workers must be at least 1", param="workers")
    if not 0 <= args.held_out_blends <= args.blends:
        raise InvalidInput("--held-out-blends must be between 0 and --blends", param="held_out_blends")
    try:
        pitches = tuple(float(x) for x in args.baker_pitches.split(",") if x.strip())
    except ValueError:
        raise InvalidInput(
            "--baker-pitches must be numbers separated by commas", param="baker_pitches"
        ) from None
    if any(not 0.5 <= x <= 2.0 for x in pitches):
        raise InvalidInput("--baker-pitches must lie between 0.5 and 2", param="baker_pitches")
    try:
        shares = tuple(float(x) for x in args.shares.split(","))
    except ValueError:
        raise InvalidInput("--shares must be four numbers separated by commas", param="shares") from None
    if len(shares) != 4 or any(x < 0 for x in shares) or abs(sum(shares) - 1) > 1e-3:
        raise InvalidInput("--shares must be four non-negative fractions summing to 1", param="shares")
    if not 0 <= args.voice_spread < 0.5:
        raise InvalidInput("--voice-spread must be in [0, 0.5)", param="voice_spread")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    opts = Options(
        minutes=args.minutes,
        blends=args.blends,
        held_out_blends=args.held_out_blends,
        seed=args.seed,
        baker_pitches=pitches,
        voice_spread=args.voice_spread,
        shares=shares,  # type: ignore[arg-type]  # length checked above
    )
    return build(
        Path(args.outdir),
        opts,
        deadline_minutes=args.deadline,
        workers=args.workers,
        clips_dir=Path(args.clips) if args.clips else None,
        resume=args.resume,
        max_cer=args.max_cer,
        max_mib=args.max_mib,
    )
