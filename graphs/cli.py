"""Subcommands of ``matrep`` that belong to :mod:`graphs`: ``similar`` and ``matrix``."""

from __future__ import annotations

import argparse
import contextlib
import time

from graphs.errors import InputError

_DEFAULT_QUERY = "Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man"


@contextlib.contextmanager
def _client(args: argparse.Namespace):
    """A Dask client for --scheduler ADDRESS or --workers N, else None (serial)."""
    if args.scheduler and args.workers:
        raise InputError("give either --scheduler or --workers, not both")
    if not (args.scheduler or args.workers):
        yield None
        return
    from dask.distributed import Client, LocalCluster

    if args.scheduler:
        with Client(args.scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield client


def _metric_params(args: argparse.Namespace) -> dict:
    if args.metric == "ged":
        return {"method": args.ged_method, "timeout": args.timeout}
    return {}


def _similar(args: argparse.Namespace) -> None:
    from graphs.query import top_k
    from reprs import glycan_graph
    from reprs.datasets import glycan_graph_dataset

    start = time.perf_counter()
    query = glycan_graph(args.glycan)
    graphs, table = glycan_graph_dataset(args.dataset, level=args.level)
    loaded = time.perf_counter() - start
    with _client(args) as client:
        result = top_k(
            query, graphs, args.metric, args.top, metric_params=_metric_params(args), client=client, progress=args.progress
        )
    seconds = time.perf_counter() - start
    order = "higher is more alike" if result.similarity else "lower is more alike"
    print(f"query: {args.glycan}")
    print(f"dataset: {args.dataset} ({len(graphs)} glycans); metric: {result.metric} ({order})")
    label_column = "labels" if "labels" in table.columns else None
    rows = [("rank", "score", "glycan", label_column or "")]
    for rank, (index, score, exact) in enumerate(zip(result.indices, result.scores, result.exact), 1):
        labels = table.iloc[index][label_column] if label_column else ""
        shown = ", ".join(labels) if isinstance(labels, tuple) else str(labels)
        rows.append((str(rank), f"{score:.4f}" + ("" if exact else " (bound)"), table.iloc[index]["glycan"], shown))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for rank, score, glycan, labels in rows:
        print(f"{rank:>{widths[0]}}  {score:>{widths[1]}}  {glycan}" + (f"  [{labels}]" if labels else ""))
    if not result.exact.all():
        print(f"{int((~result.exact).sum())} scores are GED bounds, not proven optimal within the timeout")
    print(f"time: {seconds:.1f} s ({loaded:.1f} s building the dataset's graphs)")


def _matrix(args: argparse.Namespace) -> None:
    from graphs.maps import similarity_map
    from reprs.datasets import glycan_graph_dataset

    graphs, table = glycan_graph_dataset(args.dataset, level=args.level)
    if args.limit and len(graphs) > args.limit:
        picked = table.sample(args.limit, random_state=args.seed).index.sort_values()
        graphs, table = [graphs[i] for i in picked], table.loc[picked].reset_index(drop=True)
    labels = table["label"].astype(str).tolist() if "label" in table.columns else None
    with _client(args) as client:
        result = similarity_map(
            graphs, args.metric, args.output, labels=labels, metric_params=_metric_params(args), client=client,
            progress=args.progress, seed=args.seed,
        )
    print(f"{len(graphs)} x {len(graphs)} {args.metric} matrix; wrote " + ", ".join(str(p) for p in result.paths.values()))
    if not result.exact.all():
        print(f"{int((~result.exact).sum())} entries are GED bounds, not proven optimal within the timeout")


_DATASET_HELP = "'glycans' (bundled), a CSV with a glycan column, or graphs.jsonl"


def _common(parser: argparse.ArgumentParser) -> None:
    from graphs.query import metric_names

    parser.add_argument("--metric", default="wl", choices=metric_names(), help="similarity or distance (default wl)")
    parser.add_argument("--level", default="Kingdom", help="taxonomy level of the bundled glycans")
    parser.add_argument("--ged-method", default="exact", choices=("exact", "bipartite", "bounds"), help="GED solver")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per exact GED before bounds are returned")
    parser.add_argument("--workers", type=int, default=0, help="run on a local Dask cluster with N workers")
    parser.add_argument("--scheduler", default=None, help="address of a Dask scheduler to run on")
    parser.add_argument("--progress", action="store_true", default=None, help="show progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the :mod:`graphs` subcommands to the ``matrep`` parser."""
    p = subparsers.add_parser("similar", help="the glycans of a dataset most similar to a query")
    p.add_argument("glycan", nargs="?", default=_DEFAULT_QUERY, help=f"IUPAC-condensed query (default {_DEFAULT_QUERY})")
    p.add_argument("--top", type=int, default=10, help="number of results")
    p.add_argument("--dataset", default="glycans", help=_DATASET_HELP)
    _common(p)
    p.set_defaults(func=_similar)

    p = subparsers.add_parser("matrix", help="pairwise matrix, heatmap and 2-D embedding of a dataset")
    p.add_argument("dataset", help=_DATASET_HELP)
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--limit", type=int, default=500, help="random subset of at most N graphs (0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset and the embedding")
    _common(p)
    p.set_defaults(func=_matrix)
