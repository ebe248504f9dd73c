"""The ``voxserve train`` subcommand group: ``corpus`` (build the synthetic corpus), ``run`` and ``export``.

Each subcommand module adds its parser to the group with one call and sets ``train_func`` to its
handler; a handler returns a JSON-able summary (printed) or None. Nothing heavy is imported here.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_train_arguments(parser: argparse.ArgumentParser) -> Any:
    """Create the ``train`` subparsers on ``parser`` and register every train subcommand."""
    from voxserve.train.commands import add_export_parser, add_run_parser
    from voxserve.train.corpus.cli import add_corpus_parser

    sub = parser.add_subparsers(dest="train_cmd", required=True, parser_class=type(parser))
    add_corpus_parser(sub)
    add_run_parser(sub)
    add_export_parser(sub)
    return sub


def main(args: argparse.Namespace) -> None:
    """Run the chosen train subcommand and print its summary as JSON."""
    result = args.train_func(args)
    if result is not None:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
