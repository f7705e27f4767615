"""The ``matrep`` command line.

The CLI is thin: each subcommand parses its arguments and calls one public function. Subcommands
are contributed by the packages through the ``matrep.commands`` entry-point group (each entry is a
``register(subparsers)`` function), so that ``reprs`` never imports the packages built on it.

The rules every subcommand keeps (``docs/rules.md``, "Command line"): a user mistake ends with one
line ``matrep COMMAND: error: ...`` on stderr and exit status 2, never a traceback; numbers are
checked when the arguments are parsed (:func:`reprs.config.int_at_least`, :func:`reprs.config.positive_float`), so messages
name the flag; long jobs show progress on a terminal and ``--quiet`` silences it
(:func:`reprs.config.add_progress_flags`, :func:`reprs.config.progress_wanted`).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from typing import Sequence

from reprs.errors import MatrepError

__all__ = ["main", "build_parser"]


def _library_input_error(err: Exception) -> str | None:
    """The message of an exception from a library that always means bad user input, else None.

    Errors the user can fix (a file that is missing, unreadable or of an unknown type, a table
    with no columns) are raised by pandas, ASE and the OS with their own classes; reporting
    them is the CLI's job wherever they surface. Modules are looked up, never imported, here.
    """
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)):
        name = f" {err.filename}" if err.filename else ""
        return f"{err.strerror or err}:{name}"
    kinds = []
    if "pandas" in sys.modules:
        errors = sys.modules["pandas"].errors
        kinds += [errors.EmptyDataError, errors.ParserError]
    if "ase.io.formats" in sys.modules:
        kinds.append(sys.modules["ase.io.formats"].UnknownFileTypeError)
    if kinds and isinstance(err, tuple(kinds)):
        return f"{err} ({type(err).__name__})"
    return None


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
    """Run the ``matrep`` command line; return the exit status (2 for a user mistake)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except MatrepError as err:
        message = str(err)
    except BrokenPipeError:  # `matrep ... | head`
        return 0
    except Exception as err:
        message = _library_input_error(err)
        if message is None:  # a bug: the traceback is what a report needs
            raise
    else:
        return 0
    print(f"matrep {args.command}: error: {message}", file=sys.stderr)
    return 2

