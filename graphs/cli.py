"""Subcommands of ``matrep`` that belong to :mod:`graphs`: ``similar``, ``index build``, ``matrix``
and ``dmeasure``."""

from __future__ import annotations

import argparse
import contextlib
import time

from graphs.errors import InputError
from reprs.config import add_progress_flags, int_at_least, positive_float, progress_wanted

_DEFAULT_QUERY = "Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man"


@contextlib.contextmanager
def _client(args: argparse.Namespace):
    """A Dask client for --scheduler ADDRESS or --workers N, else None (serial)."""
    if args.scheduler and args.workers:
        raise InputError("give either --scheduler or --workers N, not both")
    if not (args.scheduler or args.workers):
        yield None
        return
    from dask.distributed import Client, LocalCluster

    if args.scheduler:
        try:
            client = Client(args.scheduler)
        except (OSError, ValueError) as err:  # a malformed address, or no scheduler listening there
            raise InputError(f"--scheduler {args.scheduler}: cannot connect to a Dask scheduler: {err}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield client


def _metric_params(args: argparse.Namespace) -> dict:
    """The GED solver settings of --metric ged. --ged-method and --timeout default to None so that
    a search they do not steer (another metric, or the certified --exact search, which picks its own
    solvers) refuses them by name instead of ignoring them."""
    given = " and ".join(flag for flag, value in (("--ged-method", args.ged_method), ("--timeout", args.timeout))
                         if value is not None)
    applies, sets, them = ("apply", "set", "them") if " and " in given else ("applies", "sets", "it")
    if given and args.metric != "ged":
        raise InputError(f"{given} {applies} to --metric ged, not --metric {args.metric}; leave {them} out")
    if given and getattr(args, "exact", False):
        raise InputError(f"{given} {sets} the plain GED search; --exact (the certified search) picks its own "
                         f"GED solvers and is bounded by --time-budget S: leave {them} out")
    if args.metric != "ged":
        return {}
    return {"method": args.ged_method or "exact", "timeout": 1.0 if args.timeout is None else args.timeout}


def _uses_index(args: argparse.Namespace) -> bool:
    """Whether `similar` answers from an index: always for --exact or --index, and for the WL
    kernel on the bundled glycans unless a Dask cluster is asked for."""
    _metric_params(args)  # refuses GED flags this search would not use
    if args.exact and args.metric != "ged":
        raise InputError(f"--exact applies to --metric ged, not --metric {args.metric}")
    if args.time_budget is not None and not args.exact:
        raise InputError("--time-budget applies with --metric ged --exact (the certified search); "
                         "without --exact bound each GED with --timeout")
    if args.exact or args.index:
        cluster = " and ".join(f for f, v in (("--workers", args.workers), ("--scheduler", args.scheduler)) if v)
        if cluster:  # the index answers in this process: the cluster was never started
            raise InputError(f"{cluster} spread a search without an index; {'--exact' if args.exact else '--index'} "
                             "answers from the index in this process: leave one of them out")
        if args.metric not in ("ged", "wl"):
            raise InputError(f"--index answers --metric wl or --metric ged --exact, not --metric {args.metric}")
        if args.metric == "ged" and not args.exact:
            raise InputError("--index with --metric ged needs --exact (the certified search)")
        return True
    return args.metric == "wl" and args.dataset == "glycans" and not (args.workers or args.scheduler)


def _similar(args: argparse.Namespace) -> None:
    import sys

    from graphs.index import dataset_index
    from graphs.query import top_k
    from reprs import glycan_graph
    from reprs.commands import cli_unknown_monomer
    from reprs.errors import UnknownMonomerError

    start = time.perf_counter()
    try:
        query = glycan_graph(args.glycan)
    except UnknownMonomerError as err:  # `similar` has no --on-unknown to suggest
        raise cli_unknown_monomer(err) from None
    if _uses_index(args):
        index = dataset_index(
            args.dataset, level=args.level, path=args.index, log=lambda m: print(m, file=sys.stderr),
            progress=progress_wanted(args),
        )
        names, labels, n = index.names, index.labels, index.n_graphs
        loaded, what = time.perf_counter() - start, "opening the index, or building it on first use"
        if args.top > n:
            raise InputError(f"--top {args.top} exceeds the {n} glycans of {args.dataset}")
        result = top_k(query, index, args.metric, args.top, time_budget=args.time_budget)
    else:
        from reprs.datasets import glycan_graph_dataset

        graphs, table = glycan_graph_dataset(args.dataset, level=args.level)
        loaded, what = time.perf_counter() - start, "building the dataset's graphs"
        names, n = table["glycan"].tolist(), len(graphs)
        column = "labels" if "labels" in table.columns else None
        labels = None if column is None else [", ".join(v) if isinstance(v, tuple) else str(v) for v in table[column]]
        with _client(args) as client:
            result = top_k(
                query, graphs, args.metric, args.top, metric_params=_metric_params(args), client=client,
                progress=progress_wanted(args),
            )
    seconds = time.perf_counter() - start
    order = "higher is more alike" if result.similarity else "lower is more alike"
    print(f"query: {args.glycan}")
    print(f"dataset: {args.dataset} ({n} glycans); metric: {result.metric} ({order})")
    rows = [("rank", "score", "glycan", "")]
    for rank, (index_, score, exact) in enumerate(zip(result.indices, result.scores, result.exact), 1):
        shown = labels[index_] if labels is not None else ""
        rows.append((str(rank), f"{score:.4f}" + ("" if exact else " (bound)"), names[index_], shown))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for rank, score, glycan, shown in rows:
        print(f"{rank:>{widths[0]}}  {score:>{widths[1]}}  {glycan}" + (f"  [{shown}]" if shown else ""))
    if hasattr(result, "certified") and result.metric == "ged":
        state = "certified exact" if result.certified else "NOT certified (time budget ran out)"
        print(f"{state}: {result.n_exact} exact GED solves, {result.n_lp} LP bounds, {result.n_bounds} BRANCH bounds")
    elif not result.exact.all():
        print(f"{int((~result.exact).sum())} scores are GED bounds, not proven optimal within the timeout")
    print(f"time: {seconds:.1f} s ({loaded:.1f} s {what})")


def _index_build(args: argparse.Namespace) -> None:
    from graphs.costs import ChemicalCosts, UniformCosts
    from graphs.index import build_dataset_index

    _output_folder(args.output)
    costs = {"chemical": ChemicalCosts(), "uniform": UniformCosts(), "none": None}[args.ged_costs]
    index = build_dataset_index(
        args.dataset, args.output, level=args.level, kernels=() if args.no_wl else ("wl",), ged_costs=costs,
        progress=progress_wanted(args),
    )
    print(f"indexed {index.n_graphs} glycans of {args.dataset} in {index.path} (key {index.key[:16]})")


def _matrix(args: argparse.Namespace) -> None:
    from graphs.maps import similarity_map
    from reprs.datasets import glycan_graph_dataset

    _output_folder(args.output)
    graphs, table = glycan_graph_dataset(args.dataset, level=args.level)
    if args.limit and len(graphs) > args.limit:
        picked = table.sample(args.limit, random_state=args.seed).index.sort_values()
        graphs, table = [graphs[i] for i in picked], table.loc[picked].reset_index(drop=True)
    labels = table["label"].astype(str).tolist() if "label" in table.columns else None
    with _client(args) as client:
        result = similarity_map(
            graphs, args.metric, args.output, labels=labels, metric_params=_metric_params(args), client=client,
            progress=progress_wanted(args), seed=args.seed,
        )
    print(f"{len(graphs)} x {len(graphs)} {args.metric} matrix; wrote " + ", ".join(str(p) for p in result.paths.values()))
    if not result.exact.all():
        print(f"{int((~result.exact).sum())} entries are GED bounds, not proven optimal within the timeout")


_DATASET_HELP = "'glycans' (bundled), a CSV with a glycan column, or graphs.jsonl"


def _cutoffs(texts: list[str] | None) -> dict:
    """``["Si-O=2.0", "Al-O=rdf"]`` -> {("Si", "O"): 2.0, ("Al", "O"): "rdf"}; default Si-O from the RDF."""
    if not texts:
        return {("Si", "O"): "rdf"}
    cutoffs = {}
    for text in texts:
        pair, _, value = text.partition("=")
        species = tuple(pair.split("-"))
        if len(species) != 2 or not all(species) or not value:
            raise InputError(f"--cutoff {text!r}: write SPECIES-SPECIES=DISTANCE (Å) or SPECIES-SPECIES=rdf, e.g. Si-O=2.0")
        try:
            cutoffs[species] = value if value == "rdf" else float(value)
        except ValueError:
            raise InputError(f"--cutoff {text!r}: {value!r} is neither a distance in Å nor 'rdf'") from None
        if value != "rdf" and not 0 < cutoffs[species] < float("inf"):
            raise InputError(f"--cutoff {text!r}: the distance must be a positive number of Å")
    return cutoffs


def _output_folder(path: str) -> None:
    """Refuse an -o that names an existing file (the outputs are a folder of files)."""
    from pathlib import Path

    if Path(path).exists() and not Path(path).is_dir():
        raise InputError(f"-o {path} is an existing file; give a folder for matrix.npy, labels.csv and the figures")


def _networks(path: str, args: argparse.Namespace, index: str, flag: str) -> tuple[list, list]:
    """:func:`_read_networks`, with a file type ASE does not know reported against its argument."""
    from ase.io.formats import UnknownFileTypeError

    try:
        return _read_networks(path, args, index)
    except UnknownFileTypeError as err:
        raise InputError(
            f"{flag}{path}: ASE cannot read files of type {str(err)!r}; give a structure file ase.io.read "
            "knows (extxyz, xyz, cif, POSCAR/vasp, traj, ASE .db, ...)"
        ) from None


def _read_networks(path: str, args: argparse.Namespace, index: str) -> tuple[list, list]:
    from pathlib import Path

    from reprs.fileio import read_frames
    from reprs.glass import network

    if not Path(path).is_file():
        raise InputError(f"no structure file at {path}")
    # A database's key-value pairs, like an extxyz file's info, become frame info (labels of --matrix).
    frames = read_frames(path, index=index)
    if not frames:
        raise InputError(f"{path} holds no structures")
    cutoffs = _cutoffs(args.cutoff)
    graphs = [network(atoms, cutoffs, bridge=args.bridge) for atoms in frames]
    for pair in (p for p, value in cutoffs.items() if value == "rdf"):  # say what "rdf" chose
        used = sorted({g.graph["cutoffs"][tuple(sorted(pair))] for g in graphs})
        shown = f"{used[0]:.2f}" if len(used) == 1 else f"{used[0]:.2f}-{used[-1]:.2f}"
        print(f"{'-'.join(pair)} cutoff: {shown} Å (first minimum of g(r)) in {path}")
    return graphs, frames


def _dmeasure(args: argparse.Namespace) -> None:
    from graphs.dmeasure import d_measure

    if args.matrix:
        from graphs.maps import similarity_map

        if args.structures:
            raise InputError("give either two structure files or --matrix DB, not both")
        if not args.output:
            raise InputError("--matrix needs -o OUT (the folder for matrix.npy and the figures)")
        _output_folder(args.output)
        graphs, frames = _networks(args.matrix, args, ":", "--matrix ")
        key = args.label
        if key and not any(key in f.info for f in frames):
            keys = sorted({k for f in frames for k in f.info})
            raise InputError(f"--label {key!r}: no frame of {args.matrix} has this key; keys: {keys or 'none'}")
        labels = [str(f.info.get(key, "")) for f in frames] if key else None
        with _client(args) as client:
            result = similarity_map(
                graphs, "dmeasure", args.output, labels=labels, client=client, progress=progress_wanted(args)
            )
        print(f"{len(graphs)} x {len(graphs)} D-measure matrix; wrote " + ", ".join(str(p) for p in result.paths.values()))
        return
    if len(args.structures) != 2:
        raise InputError("matrep dmeasure compares two structure files (A B), or a database with --matrix DB -o OUT")
    # they steer the --matrix run only: with two files they were accepted and ignored (no folder written)
    given = [flag for flag, value in (("-o", args.output), ("--label", args.label), ("--workers", args.workers),
                                      ("--scheduler", args.scheduler)) if value is not None]
    if given:
        raise InputError(f"{', '.join(given)} set a --matrix run; comparing two structure files prints D and writes "
                         "nothing: leave them out, or give --matrix DB -o OUT")
    (g1,), _ = _networks(args.structures[0], args, "-1", "")
    (g2,), _ = _networks(args.structures[1], args, "-1", "")
    parts = d_measure(g1, g2, components=True)
    print(f"D = {parts.distance:.6f}")
    print(f"  node-distance term {parts.node_distance:.6f}, dispersion term {parts.dispersion:.6f}, "
          f"alpha-centrality term {parts.centrality:.6f} (weights 0.45, 0.45, 0.10)")
    print(f"  networks: {g1.number_of_nodes()} nodes / {g1.number_of_edges()} bonds vs "
          f"{g2.number_of_nodes()} nodes / {g2.number_of_edges()} bonds")


def _dask_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=int_at_least(1), default=None, metavar="N", help="run on a local Dask cluster with N workers"
    )
    parser.add_argument("--scheduler", default=None, help="address of a Dask scheduler to run on")
    add_progress_flags(parser)


def _metric(text: str) -> str:
    """An argparse ``type`` for metric names, checked when a command runs (not when ``matrep`` starts)."""
    from graphs.query import metric_names

    if text not in metric_names():
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(metric_names())})")
    return text


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metric", default="wl", type=_metric,
                        help="similarity or distance: ged, dmeasure or a kernel of graphs.KERNELS (default wl)")
    parser.add_argument("--level", default=None, help="taxonomy level of the bundled glycans (default Kingdom; "
                        "a file dataset has its own labels and refuses it)")
    parser.add_argument("--ged-method", default=None, choices=("exact", "bipartite", "bounds"),
                        help="GED solver of --metric ged (default exact)")
    parser.add_argument(
        "--timeout", type=positive_float, default=None,
        help="with --metric ged: seconds per exact GED before bounds are returned (default 1)",
    )
    _dask_flags(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the :mod:`graphs` subcommands to the ``matrep`` parser."""
    p = subparsers.add_parser("similar", help="the glycans of a dataset most similar to a query")
    p.add_argument("glycan", nargs="?", default=_DEFAULT_QUERY, help=f"IUPAC-condensed query (default {_DEFAULT_QUERY})")
    p.add_argument("--top", type=int_at_least(1), default=10, help="number of results")
    p.add_argument("--dataset", default="glycans", help=_DATASET_HELP)
    p.add_argument("--exact", action="store_true", help="with --metric ged: certified exact top-k from the index")
    p.add_argument(
        "--index", default=None, metavar="PATH",
        help="index folder (default: built on first use in the user cache, or $MATREP_INDEX_DIR)",
    )
    p.add_argument(
        "--time-budget", type=positive_float, default=None, metavar="S",
        help="with --exact: stop after S seconds and mark what is not certified",
    )
    _common(p)
    p.set_defaults(func=_similar)

    p = subparsers.add_parser("index", help="build a persisted graph index of a glycan dataset")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = actions.add_parser("build", help="index DATASET into the folder -o PATH")
    b.add_argument("dataset", help=_DATASET_HELP)
    b.add_argument("-o", "--output", required=True, help="index folder")
    b.add_argument("--level", default=None, help="taxonomy level of the bundled glycans (default Kingdom; "
                   "a file dataset has its own labels and refuses it)")
    b.add_argument(
        "--ged-costs", default="chemical", choices=("chemical", "uniform", "none"),
        help="GED costs of the filter features (default chemical: GLAMOUR's)",
    )
    b.add_argument("--no-wl", action="store_true", help="leave out the WL kernel features")
    add_progress_flags(b)
    b.set_defaults(func=_index_build)

    p = subparsers.add_parser("matrix", help="pairwise matrix, heatmap and 2-D embedding of a dataset")
    p.add_argument("dataset", help=_DATASET_HELP)
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument(
        "--limit", type=int_at_least(0), default=500, metavar="N", help="random subset of at most N graphs (0: all)"
    )
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the subset and the embedding")
    _common(p)
    p.set_defaults(func=_matrix)

    p = subparsers.add_parser(
        "dmeasure",
        help="D-measure between the bond networks of two structures, or a matrix over a database",
        description="Builds bond networks (reprs.glass.network) and compares them with the D-measure "
        "of Schieber et al. (2017). A B: any files ASE reads (the last frame of each). --matrix DB: every "
        "frame of an ASE database or trajectory, written to OUT as matrix.npy, heatmap.png, embedding.png.",
    )
    p.add_argument("structures", nargs="*", help="two structure files")
    p.add_argument("--matrix", default=None, help="ASE database (.db) or trajectory: all frames against each other")
    p.add_argument("-o", "--output", default=None, help="output folder for --matrix")
    p.add_argument("--cutoff", action="append", help="bond cutoff SPECIES-SPECIES=Å or =rdf (repeatable); default Si-O=rdf")
    p.add_argument("--bridge", default=None, help="cation network through this bridging species (e.g. O)")
    p.add_argument("--label", default=None, help="frame info key used as the label of --matrix rows (e.g. T_target)")
    _dask_flags(p)
    p.set_defaults(func=_dmeasure)
