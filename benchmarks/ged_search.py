"""Certified exact GED top-10 over the whole bundled glycan set, against brute force.

Part 1: 20 random glycowork glycans (seed 0) as queries, certified top-10 by GED (GLAMOUR's costs,
``ChemicalCosts()``) over all 23,522 indexed glycans (graphs.search.index_top_k): wall time per
query, exact solves, BRANCH bounds, certified or not. The index is the one ``matrep similar``
caches (built here on first use).

Part 2 (the check, and the peer): brute force, exact GED of the query against every glycan of a
random 2,000-glycan subset (``--subset``), for the first ``--brute`` queries; the certified top-10
over an index of that subset must give the same ten distances. Prints the ratio brute / ours.

Usage: python benchmarks/ged_search.py [--queries 20] [--subset 2000] [--brute 3]
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
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--brute", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    from graphs.costs import ChemicalCosts
    from graphs.ged import graph_edit_distance
    from graphs.index import GraphIndex, dataset_index
    from graphs.search import index_top_k

    t = time.perf_counter()
    index = dataset_index("glycans")
    print(f"index: {index.n_graphs} glycans, opened in {time.perf_counter() - t:.2f} s ({index.path})")
    rng = np.random.default_rng(0)
    picks = rng.choice(index.n_graphs, args.queries, replace=False)
    times, solves, bounds, lps, certified = [], [], [], [], []
    for q in picks:
        query = index.graph(int(q))
        r = index_top_k(query, index, "ged", args.k)
        times.append(r.seconds)
        solves.append(r.n_exact)
        bounds.append(r.n_bounds)
        lps.append(r.n_lp)
        certified.append(r.certified)
        print(f"  query {int(q):>5} ({len(query):>2} residues): {r.seconds:7.2f} s, {r.n_bounds:>5} "
              f"BRANCH bounds, {r.n_lp:>4} LP bounds, "
              f"{r.n_exact:>4} exact solves, certified={r.certified}, "
              f"10th distance {r.scores[-1]:.3f}")
    print(f"certified top-{args.k} over {index.n_graphs}: median {np.median(times):.2f} s, "
          f"max {np.max(times):.2f} s, median exact (MILP) solves {np.median(solves):.0f}, median LP "
          f"bounds {np.median(lps):.0f}, median BRANCH bounds {np.median(bounds):.0f}, all certified: "
          f"{all(certified)}")

    subset = np.sort(rng.choice(index.n_graphs, args.subset, replace=False))
    graphs = index.graphs(subset)
    small = GraphIndex.build(graphs, tempfile.mkdtemp(), kernels=())
    ours_t, brute_t = [], []
    for q in picks[: args.brute]:
        query = index.graph(int(q))
        r = index_top_k(query, small, "ged", args.k)
        ours_t.append(r.seconds)
        t = time.perf_counter()
        d = np.array([graph_edit_distance(query, g, costs=ChemicalCosts()).distance for g in graphs])
        brute_t.append(time.perf_counter() - t)
        same = np.allclose(np.sort(d)[: args.k], r.scores, atol=1e-6)
        print(f"  subset query {int(q)}: ours {r.seconds:.2f} s, brute force {brute_t[-1]:.1f} s, "
              f"top-{args.k} distances equal: {same}")
        assert same, (np.sort(d)[: args.k], r.scores)
    print(f"| certified top-{args.k}, {args.queries} queries over {index.n_graphs} | median "
          f"{np.median(times):.2f} s | all certified: {all(certified)} |")
    print(f"| {args.brute} queries over a {args.subset} subset | ours median {np.median(ours_t):.2f} s | "
          f"brute force median {np.median(brute_t):.1f} s | brute / ours "
          f"{np.median(brute_t) / np.median(ours_t):.0f} | top-{args.k} equal |")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
