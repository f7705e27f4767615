"""Certified exact-GED 10-nearest-neighbour graph of the bundled glycans: measured per-query cost on
a random sample of rows, with and without triangle bounds, and the wall time each projects for all
rows on 2 cores and on 64 Dask workers.

Runs ``graphs.search.knn_graph(index, 10, out, rows=..., neighbours=m)`` (each row a certified
top-11 query with the glycan itself left out; GLAMOUR's costs) on ``--sample`` random glycans
(seed 1), serially, once with ``neighbours=0`` (no triangle bounds) and once with ``--neighbours``
(default 25), alternating in blocks of 4 rows so that both see the same load; checks every row is
certified and that both give the same distances.

Projection. Queries are independent (a row's answer does not depend on which rows ran before
it), so the query part is (sum of per-query seconds without table work) x (all rows / sampled
rows) / workers. Every worker first prepares its pair solver (``PairSolver.prepare``: all star
assignments, seconds), timed before the sample and added once to every projection. The neighbour table (WL lists and pair upper bounds, computed when a query needs
them) is per worker process and kept, so later queries reuse what earlier ones computed. Its part
is the smaller of two upper bounds: the table seconds of the sample scaled like the queries (as
if no query reused anything), and what a worker pays when it computes every list and every listed
pair once (all rows x (seconds per list + m x seconds per pair), added to every worker's wall).

Whole graph. ``--all OUT.npz`` instead computes every row (``knn_graph(index, 10, OUT,
n_jobs=--workers)``, default 2 local processes, chunks of 64 rows) and prints its wall time, the sum
of per-query seconds, and the rows certified; run again after a crash it resumes from ``OUT``, and
the wall time printed is that of this invocation only (the per-row seconds saved in ``OUT`` cover
all invocations).

Usage: python benchmarks/ged_knn.py [--sample 40] [--k 10] [--neighbours 25] [--block 4]
       python benchmarks/ged_knn.py --all OUT.npz [--workers 2] [--k 10] [--time-budget S]
           [--retry EARLIER.npz]  (only the rows EARLIER did not certify, one row per task)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=40)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--neighbours", type=int, default=25)
    parser.add_argument("--block", type=int, default=4)
    parser.add_argument("--all", metavar="OUT", default=None, help="compute every row into OUT.npz")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds per query with --all (rows cut are not certified)")
    parser.add_argument("--retry", metavar="DONE", default=None,
                        help="with --all: only the rows that DONE.npz (an earlier --all run) did "
                             "not certify")
    args = parser.parse_args()
    if args.all:
        whole_graph(args)
        return

    from graphs.ged_pairs import pair_solver
    from graphs.index import dataset_index
    from graphs.search import _TABLES, _opened, knn_graph

    index = dataset_index("glycans")
    n = index.n_graphs
    # What a worker does once before its first query (knn_graph's tasks do it too): timed apart,
    # so that the sample's first rows do not carry it.
    prepare = pair_solver(_opened(str(index.path), index.key)).prepare()
    print(f"pair solver prepared in {prepare:.1f} s (once per worker)")
    rows = np.sort(np.random.default_rng(1).choice(n, args.sample, replace=False))
    folder = tempfile.mkdtemp()
    runs = {0: [], args.neighbours: []}
    wall = {0: 0.0, args.neighbours: 0.0}
    for b in range(0, len(rows), args.block):
        block = rows[b:b + args.block]
        for m in runs:
            t = time.perf_counter()
            result = knn_graph(index, args.k, os.path.join(folder, f"knn{m}-{b}.npz"), rows=block,
                               chunk=args.block, neighbours=m)
            wall[m] += time.perf_counter() - t
            runs[m].append({name: value[block] for name, value in result.items()})
        print(f"rows {b + len(block)}/{len(rows)}: {wall[0]:.0f} s without, "
              f"{wall[args.neighbours]:.0f} s with triangle bounds", flush=True)
    merged = {m: {name: np.concatenate([r[name] for r in parts]) for name in parts[0]}
              for m, parts in runs.items()}
    base, tri = merged[0], merged[args.neighbours]
    assert base["certified"].all() and tri["certified"].all()
    np.testing.assert_allclose(tri["distances"], base["distances"], atol=2e-6)
    table = next(iter(_TABLES.values()))
    per_list = table.seconds_lists / max(table.built, 1)
    per_pair = (table.seconds - table.seconds_lists) / max(table.pairs, 1)
    print(f"{len(rows)} certified {args.k}-NN rows, both methods equal; neighbour table: "
          f"{table.built} lists ({per_list * 1e3:.1f} ms each), {table.pairs} pair upper bounds "
          f"({per_pair * 1e3:.1f} ms each)")
    print("| method | per-query mean (s) | median (s) | 95th pct (s) | max (s) | BRANCH / LP / MILP "
          "per query (mean) | table (s per query) | projected, 2 cores | projected, 64 Dask "
          "workers |")
    for m, r in ((0, base), (args.neighbours, tri)):
        q = r["seconds"] - r["table_seconds"]
        scale = n / len(rows)
        fixed = n * (per_list + m * per_pair)
        total = q.sum() * scale
        name = "no triangle bounds" if m == 0 else f"triangle bounds, {m}-graph lists"
        part = {w: prepare + (min(r["table_seconds"].sum() * scale / w, fixed) if m else 0.0)
                for w in (2, 64)}
        print(f"| {name} | {q.mean():.2f} | {np.median(q):.2f} | {np.percentile(q, 95):.1f} | "
              f"{q.max():.0f} | {r['n_bounds'].mean():.0f} / {r['n_lp'].mean():.0f} / "
              f"{r['n_exact'].mean():.1f} | {r['table_seconds'].mean():.2f} | "
              f"{(total / 2 + part[2]) / 3600:.1f} h | {(total / 64 + part[64]) / 60:.0f} min |")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average at the end {os.getloadavg()[0]:.1f}")


def whole_graph(args: argparse.Namespace) -> None:
    """Every row of the certified k-NN graph on ``args.workers`` local processes, timed."""
    from graphs.index import dataset_index
    from graphs.search import knn_graph

    index = dataset_index("glycans")
    start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    t = time.perf_counter()
    rows = None
    if args.retry:
        with np.load(args.retry) as earlier:
            rows = np.flatnonzero(~earlier["certified"])
    result = knn_graph(index, args.k, args.all, n_jobs=args.workers, neighbours=args.neighbours,
                       time_budget=args.time_budget, rows=rows, chunk=64 if rows is None else 1)
    wall = time.perf_counter() - t
    seconds = result["seconds"]
    total = index.n_graphs if rows is None else len(rows)
    print(f"started {start}; {total} rows, k = {args.k}, {args.workers} workers, "
          f"neighbours = {args.neighbours}, "
          f"time budget per query {args.time_budget} s")
    print(f"wall time of this invocation: {wall:.0f} s ({wall / 3600:.2f} h); load average at the end {os.getloadavg()[0]:.1f}")
    print(f"certified rows: {int(result['certified'].sum())} of {total}; rows done: "
          f"{int(np.isfinite(seconds).sum())}")
    done = seconds[np.isfinite(seconds)]
    cut = np.isfinite(seconds) & ~result["certified"]
    if cut.any():
        nodes = np.array([index.graph(i).number_of_nodes() for i in np.flatnonzero(cut)])
        print(f"rows cut by the time budget: {int(cut.sum())} (monomers: min {nodes.min()}, median "
              f"{int(np.median(nodes))}, max {nodes.max()}); exact distances in them "
              f"{int(result['exact'][cut].sum())} of {int(cut.sum()) * args.k}")
    print(f"per-query seconds (all invocations): sum {done.sum():.0f} s, mean {done.mean():.3f}, "
          f"median {np.median(done):.3f}, 95th pct {np.percentile(done, 95):.2f}, max "
          f"{done.max():.1f}; MILP solves {int(result['n_exact'].sum())}, LP "
          f"{int(result['n_lp'].sum())}, BRANCH {int(result['n_bounds'].sum())}")


if __name__ == "__main__":
    main()
