"""``matrep simulate CONFIG``: run a dataset-generation config (thin wrapper of :func:`sims.generate.generate`)."""

from __future__ import annotations

import argparse

from reprs.config import add_progress_flags, progress_wanted

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand to the ``matrep`` parser."""
    p = subparsers.add_parser("simulate", help="run an MD protocol from a TOML config into an ASE db or extxyz",
                              description="Run the MD protocol of CONFIG; a rerun of the same command resumes "
                                          "from the last checkpoint.")
    p.add_argument("config", help="TOML config file (see sims.generate)")
    p.add_argument("--device", default=None, help="torch device (default: the config's md.device, else cpu)")
    add_progress_flags(p)
    p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> None:
    from .generate import generate

    path = generate(args.config, device=args.device, progress=progress_wanted(args))
    print(path)
