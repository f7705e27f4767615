"""Subcommands of ``matrep`` that belong to :mod:`reprs`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the :mod:`reprs` subcommands to the ``matrep`` parser."""
