"""The ``matrep`` command line.

The CLI is thin: each subcommand parses its arguments and calls one public function. Subcommands
are contributed by the packages through the ``matrep.commands`` entry-point group (each entry is a
``register(subparsers)`` function), so that ``reprs`` never imports the packages built on it.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from typing import Sequence

from reprs.errors import MatrepError

__all__ = ["main", "register"]


def build_parser() -> argparse.ArgumentParser:
    """Return the ``matrep`` parser with the subcommands of every installed package."""
    parser = argparse.ArgumentParser(
        prog="matrep",
        description="Representations, similarity, learners and simulation for molecules and materials.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in sorted(entry_points(group="matrep.commands"), key=lambda e: e.name):
        entry.load()(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``matrep`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except MatrepError as err:
        print(f"matrep {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `matrep ... | head`
        return 0
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the subcommands of :mod:`reprs` (filled in by the modules that own them)."""
    from reprs import commands

    commands.register(subparsers)
