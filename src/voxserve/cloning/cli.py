"""``voxserve voices`` subcommands for registered (cloned) voices: ``add``, ``rm``, ``list``.

``voxserve voices`` alone (or ``voices list``) lists the packs, as it always has, and then the
registered voices. The store is the one the server uses (``$VOXSERVE_VOICE_STORE``, else
``$VOXSERVE_HOME/voices.sqlite``); ``--store`` picks another.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from voxserve.errors import InvalidInput

if TYPE_CHECKING:
    from voxserve.cloning.registry import VoiceRegistry


def add_voices_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``add``, ``rm`` and ``list`` under ``voxserve voices`` (all optional: bare ``voices`` lists)."""
    parser.add_argument(
        "--store", default=None, help="voice store: a path or redis:// URL (default: the server's)"
    )
    sub = parser.add_subparsers(dest="voices_cmd", required=False, parser_class=type(parser))
    a = sub.add_parser("add", help="register a voice from reference clips (3-30 s of speech each)")
    a.add_argument("name", help="display name")
    a.add_argument("files", nargs="+", help="audio files of one speaker: wav, flac, mp3 or ogg")
    r = sub.add_parser("rm", help="delete a registered voice")
    r.add_argument("voice_id", help="id printed by add or list (voice_...)")
    sub.add_parser("list", help="packs and registered voices")


def _registry(args: argparse.Namespace) -> VoiceRegistry:
    from dataclasses import replace

    from voxserve.cloning.registry import VoiceConfig, open_registry

    config = VoiceConfig.from_env()
    if getattr(args, "store", None):
        config = replace(config, store=args.store)
    return open_registry(config)


def voices_command(args: argparse.Namespace) -> bool:
    """Run ``add`` or ``rm`` and return True; return False for listing (the caller lists packs first)."""
    cmd = getattr(args, "voices_cmd", None)
    if cmd == "add":
        registry = _registry(args)
        blobs = []
        for name in args.files:
            path = Path(name)
            if not path.is_file():
                raise InvalidInput(f"no such file: {name}", "files")
            if path.stat().st_size > registry.limits.max_file_bytes:
                raise InvalidInput(f"{name} is over {registry.limits.max_file_bytes} bytes", "files")
            blobs.append(path.read_bytes())
        record = registry.register(args.name, blobs)
        print(f"{record.id}\t{record.name}\t{record.files} file(s), {record.speech_seconds:.1f} s of speech")
        return True
    if cmd == "rm":
        _registry(args).delete(args.voice_id)
        print(f"deleted {args.voice_id}")
        return True
    return False


def print_registered(args: argparse.Namespace) -> None:
    """One line per registered voice: id, name, ``registered``."""
    for record in _registry(args).list():
        print(f"{record.id}\t{record.name}\tregistered")
