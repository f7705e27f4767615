"""Benchmark: D-measure, ours (graphs.dmeasure) against netrd 0.3.0 on the same graphs.

Rows:
1. one pair of connected graphs with N nodes (netrd's DMeasure vs ours with alpha_iterations=50,
   which must agree to 1e-10, and ours exact);
2. an M x M matrix of smaller graphs (netrd: one call per pair; ours: M signatures);
3. ours alone: an M x M matrix of 3000-node silica-like networks (random 4-regular "Si" graph
   with every edge split by an "O", i.e. 1000 SiO4 corners fully bridged).

Run: ``.venv/bin/python benchmarks/dmeasure.py [--pair-nodes 2000] [--matrix-graphs 8]``.
netrd is installed with ``pip install --no-deps netrd``; its package import needs ortools, so the
``dmeasure`` submodule is loaded on its own when that fails (tests/graphs/netrd_loader.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import networkx as nx
import numpy as np

from graphs.dmeasure import d_measure, d_measure_matrix

# The netrd loader is test-support code shared with tests/graphs/test_dmeasure.py; the repository
# root makes it importable when this file runs as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.graphs.netrd_loader import netrd_dmeasure_class  # noqa: E402


def silica_like(n_si: int, seed: int) -> nx.Graph:
    base = nx.random_regular_graph(4, n_si, seed=seed)
    g = nx.Graph()
    for k, (u, v) in enumerate(base.edges()):
        g.add_edges_from([(u, n_si + k), (n_si + k, v)])
    return g


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair-nodes", type=int, default=2000)
    parser.add_argument("--matrix-graphs", type=int, default=8)
    parser.add_argument("--matrix-nodes", type=int, default=300)
    parser.add_argument("--silica-graphs", type=int, default=50)
    args = parser.parse_args()
    netrd_cls = netrd_dmeasure_class()
    print(f"# {platform.node()} {os.cpu_count()} cores, python {platform.python_version()}, "
          f"numpy {np.__version__}, networkx {nx.__version__}, netrd {version('netrd')}")
    print("| case | netrd (s) | ours niter=50 (s) | ours exact (s) | max abs diff | speed-up |")
    print("|---|---|---|---|---|---|")

    n = args.pair_nodes
    g = nx.connected_watts_strogatz_graph(n, 4, 0.1, seed=1)
    h = nx.barabasi_albert_graph(n, 2, seed=2)
    ref, t_netrd = timed(lambda: netrd_cls().dist(g, h))
    ours50, t50 = timed(lambda: d_measure(g, h, alpha_iterations=50))
    _, t_exact = timed(lambda: d_measure(g, h))
    diff = abs(ours50 - ref)
    assert diff < 1e-10, f"disagreement {diff} with netrd"
    print(f"| one pair, N={n} (WS vs BA) | {t_netrd:.2f} | {t50:.3f} | {t_exact:.3f} | "
          f"{diff:.1e} | {t_netrd / t50:.0f}x |")

    m, size = args.matrix_graphs, args.matrix_nodes
    graphs = [nx.connected_watts_strogatz_graph(size, 4, 0.05 * (k + 1), seed=k) for k in range(m)]

    def netrd_matrix():
        out = np.zeros((m, m))
        for i in range(m):
            for j in range(i + 1, m):
                out[i, j] = out[j, i] = netrd_cls().dist(graphs[i], graphs[j])
        return out

    ref_matrix, t_netrd = timed(netrd_matrix)
    ours_matrix, t50 = timed(lambda: d_measure_matrix(graphs, alpha_iterations=50))
    _, t_exact = timed(lambda: d_measure_matrix(graphs))
    diff = float(np.abs(ours_matrix - ref_matrix).max())
    assert diff < 1e-10, f"disagreement {diff} with netrd"
    print(f"| {m}x{m} matrix, N={size} | {t_netrd:.2f} | {t50:.3f} | {t_exact:.3f} | "
          f"{diff:.1e} | {t_netrd / t50:.0f}x |")

    networks = [silica_like(1000, seed=k) for k in range(args.silica_graphs)]
    matrix, t_exact = timed(lambda: d_measure_matrix(networks))
    print(f"| {len(networks)}x{len(networks)} matrix, 3000-node silica-like networks | - | - | "
          f"{t_exact:.2f} | - | - |")
    assert np.all((matrix >= 0) & (matrix <= 1))


if __name__ == "__main__":
    main()
