"""Certified exact-GED 10-nearest-neighbour rows of the bundled glycans: two checkouts of matrep
side by side, to measure a change of the GED search's speed in one run.

Each checkout runs in its own worker process (``PYTHONPATH`` set to it), which keeps its caches
(index, neighbour table, pair solver) across blocks, as a worker of ``knn_graph`` does. The rows
are those of ``benchmarks/ged_knn.py`` (``--sample`` random glycans, seed 1; ``--start`` skips the
first ones, so that a 40-row sample can run in halves); they go in blocks of ``--block`` rows to
both workers, alternately first, so that both see the same load. Each block is
``knn_graph(index, 10, out, rows=block, neighbours=m)``. Checks every row is certified and both
give the same distances; prints per-query seconds without table work (as ``ged_knn.py``), the
table seconds, the tier counts, the wall and CPU time of all blocks, and the 2-core projection of
the query part (mean x 23,522 / 2), also scaled by the CPU share the workers got (blocks' CPU /
wall time), an estimate for two dedicated cores.

Usage: python benchmarks/ged_knn_compare.py OLD_CHECKOUT NEW_CHECKOUT [--sample 20] [--start 0]
       [--block 4] [--neighbours 25]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

FIELDS = ("seconds", "table_seconds", "n_bounds", "n_lp", "n_exact", "distances", "certified")


def worker(neighbours: int) -> None:
    """Answer blocks of rows read from stdin, one JSON line each."""
    from graphs.index import dataset_index
    from graphs.search import knn_graph

    index = dataset_index("glycans")
    folder = tempfile.mkdtemp()
    print(json.dumps({"ready": True}), flush=True)
    for b, line in enumerate(sys.stdin):
        rows = np.array(json.loads(line), dtype=np.int64)
        cpu, wall = time.process_time(), time.perf_counter()
        r = knn_graph(index, 10, os.path.join(folder, f"k{b}.npz"), rows=rows, chunk=len(rows),
                      neighbours=neighbours)
        out = {name: r[name][rows].tolist() for name in FIELDS}
        out["cpu"], out["wall"] = time.process_time() - cpu, time.perf_counter() - wall
        print(json.dumps(out), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--block", type=int, default=4)
    parser.add_argument("--neighbours", type=int, default=25)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    procs = {}
    for name, tree in trees.items():
        procs[name] = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", str(args.neighbours)],
            cwd=tree, env=dict(env, PYTHONPATH=tree), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        json.loads(procs[name].stdout.readline())
    n = 23522
    rows = np.sort(np.random.default_rng(1).choice(n, 40, replace=False))
    rows = rows[args.start:args.start + args.sample]
    res = {name: [] for name in trees}
    loads = []
    for b in range(0, len(rows), args.block):
        block = rows[b:b + args.block].tolist()
        for name in list(trees) if (b // args.block) % 2 == 0 else list(trees)[::-1]:
            procs[name].stdin.write(json.dumps(block) + "\n")
            procs[name].stdin.flush()
            res[name].append(json.loads(procs[name].stdout.readline()))
        loads.append(os.getloadavg()[0])
        print(f"rows {b + len(block)}: " + ", ".join(
            f"{k} {sum(r['wall'] for r in v):.0f} s wall" for k, v in res.items())
            + f", load {loads[-1]:.1f}", flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()
    merged = {k: {f: np.concatenate([np.asarray(r[f]) for r in v]) for f in FIELDS}
              for k, v in res.items()}
    assert all(m["certified"].all() for m in merged.values())
    np.testing.assert_allclose(merged["new"]["distances"], merged["old"]["distances"], atol=2e-6)
    print(f"rows {args.start}-{args.start + len(rows) - 1} of the 40: all certified, distances "
          f"equal; load average {min(loads):.1f}-{max(loads):.1f}")
    for k, r in merged.items():
        q = r["seconds"] - r["table_seconds"]
        print(f"{k}: per-query mean {q.mean():.2f} s, median {np.median(q):.2f}, 95th pct "
              f"{np.percentile(q, 95):.1f}, max {q.max():.1f}; table {r['table_seconds'].mean():.2f}"
              f" s/query; BRANCH/LP/MILP {r['n_bounds'].mean():.0f}/{r['n_lp'].mean():.0f}/"
              f"{r['n_exact'].mean():.1f}; blocks {sum(x['wall'] for x in res[k]):.0f} s wall, "
              f"{sum(x['cpu'] for x in res[k]):.0f} s CPU; query part on 2 cores "
              f"{q.mean() * n / 2 / 3600:.1f} h")
        # On shared cores a process gets a fraction of a core: the blocks' CPU / wall ratio
        # turns the wall seconds into what two dedicated cores would take (an estimate).
        share = sum(x["cpu"] for x in res[k]) / sum(x["wall"] for x in res[k])
        print(f"{k}: CPU share {share:.2f}, query part on 2 dedicated cores (estimate) "
              f"{q.mean() * share * n / 2 / 3600:.1f} h")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(int(sys.argv[2]))
    else:
        main()
