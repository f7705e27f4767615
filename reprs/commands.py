"""Subcommands of ``matrep`` that belong to :mod:`reprs`: ``glycan``, ``featurize``, ``dataset``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from reprs.config import add_progress_flags, int_at_least, progress_wanted


def _glycan(args: argparse.Namespace) -> None:
    from reprs.errors import UnknownMonomerError
    from reprs.glycans import glycan_graph
    from reprs.graphio import format_graph

    try:
        graph = glycan_graph(args.glycan, linkage=args.linkage, on_unknown=args.on_unknown)
    except UnknownMonomerError as err:
        raise cli_unknown_monomer(err, "--on-unknown zero gives it a zero vector") from None
    print(format_graph(graph, width=args.width))


def cli_unknown_monomer(err: Exception, hint: str | None = None) -> Exception:
    """The error of an unknown monomer for the command line: the library's advice names the Python
    argument ``on_unknown``; a command gives its own flag as ``hint``, or no advice if it has none."""
    from reprs.errors import UnknownMonomerError

    message = str(err).split(". Pass on_unknown")[0]
    return UnknownMonomerError(f"{message}; {hint}" if hint else message)


def _featurize(args: argparse.Namespace) -> None:
    from reprs.featurizers import featurize_inputs

    inputs = args.input[0] if len(args.input) == 1 else args.input
    print(
        featurize_inputs(
            inputs,
            args.repr,
            args.output,
            column=args.column,
            id_column=args.id_column,
            n_jobs=args.n_jobs,
            progress=progress_wanted(args),
            skip_errors=args.skip_errors,
            sparse=args.sparse,
        )
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
    p.add_argument("--width", type=int_at_least(0), default=16, help="feature entries shown per vector (0: all)")
    p.set_defaults(func=_glycan)

    p = subparsers.add_parser(
        "featurize",
        help="build representations for a table, structure files or an ASE database",
        description="NAME[:k=v,...] is any name of reprs.featurizers.available_featurizers(), e.g. "
        "morgan:radius=2,n_bits=2048, glycan_graph:linkage=anomer,on_unknown=zero or "
        "soap:species=Si,O,r_cut=5.0,n_max=8,l_max=6,periodic=True,average=inner. The suffix of OUT picks "
        "the format: .npz/.npy/.parquet for vectors, .jsonl/.pkl/.pt for graphs.",
    )
    p.add_argument("input", type=Path, nargs="+", help="CSV/TSV table, structure files or folder, or ASE .db")
    p.add_argument("--repr", required=True, help="representation NAME[:k=v,...]")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (.npz, .npy, .parquet, .jsonl, .pkl, .pt)")
    p.add_argument("--column", default=None, help="table column holding the inputs (default: guessed)")
    p.add_argument("--id-column", default=None, help="table column of identifiers")
    p.add_argument("--n-jobs", type=int_at_least(1, also=-1), default=1, help="worker processes (-1: all cores)")
    p.add_argument("--skip-errors", action="store_true", help="skip and record bad inputs instead of stopping")
    p.add_argument("--sparse", action="store_true", help="write sparse CSR arrays to .npz")
    add_progress_flags(p)
    p.set_defaults(func=_featurize)

    p = subparsers.add_parser("dataset", help="summarise a bundled dataset (glycans: graphs for all of them)")
    p.add_argument("name", choices=("glycans",))
    p.add_argument("--level", default="Kingdom", help="taxonomy level (Domain ... Species)")
    p.set_defaults(func=_dataset)


