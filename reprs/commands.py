"""Subcommands of ``matrep`` that belong to :mod:`reprs`: ``glycan``, ``featurize``, ``dataset``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from reprs.errors import InputError


def _glycan(args: argparse.Namespace) -> None:
    from reprs.glycans import glycan_graph
    from reprs.graphio import format_graph

    graph = glycan_graph(args.glycan, linkage=args.linkage, on_unknown=args.on_unknown)
    print(format_graph(graph, width=args.width))


def _featurize(args: argparse.Namespace) -> None:
    from reprs.glycans import featurize_glycan_table

    name = args.repr.split(":", 1)[0]
    if name != "glycan-graph":
        raise InputError(f"unknown representation {args.repr!r}; available: glycan-graph")
    summary = featurize_glycan_table(
        args.input, args.output, column=args.column, linkage=args.linkage, on_unknown=args.on_unknown, errors=args.errors
    )
    print(
        f"wrote {summary['n_graphs']} graphs to {summary['graphs']} "
        f"({summary['n_failed']} failed, listed in {summary['index']})"
    )


def _dataset(args: argparse.Namespace) -> None:
    from reprs.glycans import glycan_dataset_summary

    start = time.perf_counter()
    summary = glycan_dataset_summary(level=args.level)
    summary["seconds"] = time.perf_counter() - start
    print(format_summary(summary))


def format_summary(summary: dict) -> str:
    """Text report of :func:`reprs.glycans.glycan_dataset_summary`."""
    lines = [
        f"glycowork glycans ({summary['level']}): {summary['n_glycans']} unique, "
        f"{summary['n_graphs']} graphs built in {summary['graph_seconds']:.1f} s",
        f"monomer vocabulary: {summary['n_monomers_resolved']}/{summary['n_monomers']} names resolved; "
        f"glycans fully resolved: {summary['n_resolved']}/{summary['n_parsed']} "
        f"({100 * summary['glycan_coverage']:.2f}%)",
        f"graph sizes: {summary['mean_nodes']:.1f} monomers on average, largest {summary['max_nodes']}",
        "classes: " + ", ".join(f"{k} {v}" for k, v in summary["classes"].items()),
        "most used unresolved monomers: "
        + ", ".join(f"{k} ({v})" for k, v in list(summary["unresolved"].items())[:5]),
    ]
    if "seconds" in summary:
        lines.append(f"total time: {summary['seconds']:.1f} s")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the :mod:`reprs` subcommands to the ``matrep`` parser."""
    linkage = dict(choices=("full", "anomer"), default="full", help="edge labels: full linkage or anomer only (GLAMOUR)")
    unknown = dict(choices=("raise", "zero"), default="raise", help="unknown monomers: error, or zero features")

    p = subparsers.add_parser("glycan", help="print the macromolecule graph of one glycan")
    p.add_argument("glycan", help="IUPAC-condensed glycan, e.g. 'Gal(b1-4)[Fuc(a1-3)]GlcNAc'")
    p.add_argument("--linkage", **linkage)
    p.add_argument("--on-unknown", **unknown)
    p.add_argument("--width", type=int, default=16, help="feature entries shown per vector (0: all)")
    p.set_defaults(func=_glycan)

    p = subparsers.add_parser("featurize", help="build representations for a table of inputs")
    p.add_argument("input", type=Path, help="CSV file with a column of glycan strings")
    p.add_argument("--repr", required=True, help="representation, e.g. glycan-graph")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--column", default=None, help="column holding the strings (default: guessed)")
    p.add_argument("--linkage", **linkage)
    p.add_argument("--on-unknown", **unknown)
    p.add_argument("--errors", choices=("raise", "skip"), default="skip", help="bad rows: stop, or skip and record")
    p.set_defaults(func=_featurize)

    p = subparsers.add_parser("dataset", help="summarise a bundled dataset (glycans: graphs for all of them)")
    p.add_argument("name", choices=("glycans",))
    p.add_argument("--level", default="Kingdom", help="taxonomy level (Domain ... Species)")
    p.set_defaults(func=_dataset)


