"""Certified exact-GED 10-nearest-neighbour graph of the bundled glycans: measured per-query cost on
a random sample of rows, and the wall time it projects for all rows on 2 cores and on 64 Dask
workers.

Runs ``graphs.search.knn_graph(index, 10, out, rows=sample)`` (each row a certified top-11 query
with the glycan itself left out; GLAMOUR's costs) on ``--sample`` random glycans (seed 1), serially,
and checks every row is certified. The projection is (sum of per-query seconds) x (all rows /
sampled rows) / workers: queries are independent, so the job scales with workers up to the
per-worker cost of opening the index once (about 0.2 s).

Usage: python benchmarks/ged_knn.py [--sample 40] [--k 10]
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
    args = parser.parse_args()

    from graphs.index import dataset_index
    from graphs.search import knn_graph

    index = dataset_index("glycans")
    rows = np.sort(np.random.default_rng(1).choice(index.n_graphs, args.sample, replace=False))
    t = time.perf_counter()
    result = knn_graph(index, args.k, os.path.join(tempfile.mkdtemp(), "knn.npz"), rows=rows, chunk=8)
    wall = time.perf_counter() - t
    seconds = result["seconds"][rows]
    assert result["certified"][rows].all()
    total = seconds.sum() * index.n_graphs / len(rows)
    print(f"{len(rows)} certified {args.k}-NN rows in {wall:.1f} s: per query mean {seconds.mean():.2f} s, "
          f"median {np.median(seconds):.2f} s, 95th percentile {np.percentile(seconds, 95):.2f} s, "
          f"max {seconds.max():.2f} s; exact solves per query median "
          f"{np.median(result['n_exact'][rows]):.0f}")
    print(f"| certified exact GED {args.k}-NN graph of {index.n_graphs} glycans | per-query mean "
          f"{seconds.mean():.2f} s (median {np.median(seconds):.2f}) over {len(rows)} sampled rows | "
          f"projected: {total / 2 / 3600:.1f} h on 2 cores, {total / 64 / 60:.0f} min on 64 Dask workers |")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
