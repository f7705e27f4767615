"""Benchmark: graph edit distance, ours (graphs.ged) against networkx on the same graph pairs.

Rows:
1. random labelled 10-node trees (unit costs on labels): networkx's exact A* against our exact
   MILP; the two distances must agree on every pair.
2. small real glycans (6-8 residues, glycowork via ``reprs.glycan_graph``) with GLAMOUR's
   fingerprint costs (``ChemicalCosts()``): networkx against ours, distances must agree.
3. 20-residue real glycan pairs (ours only: networkx does not finish): proven-optimal exact GED,
   median and maximum seconds, search nodes and LP iterations; every value is checked to lie
   between our cheaper bounds (method "bipartite" and "bounds"), which are timed too.

Run: ``.venv/bin/python benchmarks/ged.py [--tree-pairs 5] [--small-pairs 5] [--glycan-pairs 100]``.
networkx takes 5-120 s per 10-node tree pair, so row 1 alone needs a few minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from importlib.metadata import version

import networkx as nx
import numpy as np
import scipy
from scipy.spatial.distance import rogerstanimoto

from graphs.costs import ChemicalCosts, UniformCosts
from graphs.ged import GAP_TOL, graph_edit_distance


def labelled_tree(rng: np.random.Generator, n: int) -> nx.Graph:
    """Random labelled tree: node labels from 3 letters, edge labels from 2."""
    G = nx.random_labeled_tree(n, seed=int(rng.integers(2**31)))
    for v in G:
        G.nodes[v]["label"] = "ABC"[int(rng.integers(3))]
    for e in G.edges:
        G.edges[e]["label"] = "xy"[int(rng.integers(2))]
    return G


def networkx_costs(costs) -> dict:
    """The same edit costs as plain callables for networkx."""
    if isinstance(costs, UniformCosts):
        return dict(
            node_subst_cost=lambda a, b: costs.node_sub * (a["label"] != b["label"]),
            node_del_cost=lambda a: costs.node_indel, node_ins_cost=lambda a: costs.node_indel,
            edge_subst_cost=lambda a, b: costs.edge_sub * (a["label"] != b["label"]),
            edge_del_cost=lambda a: costs.edge_indel, edge_ins_cost=lambda a: costs.edge_indel,
        )

    def sub(a, b):
        return costs.sub * rogerstanimoto(a["x"].astype(bool), b["x"].astype(bool))

    return dict(node_subst_cost=sub, edge_subst_cost=sub,
                node_del_cost=lambda a: costs.indel, node_ins_cost=lambda a: costs.indel,
                edge_del_cost=lambda a: costs.indel, edge_ins_cost=lambda a: costs.indel)


def glycans_with(n_residues: range, count: int, seed: int) -> list[nx.DiGraph]:
    """Real glycans from glycowork's table whose graphs have a size in ``n_residues``."""
    from reprs import glycan_graph
    from reprs.datasets import load_glycans

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = load_glycans()
    rough = table["glycan"].str.count(r"\(") + 1  # residues ~ linkages + 1; checked below
    names = table["glycan"][rough.between(min(n_residues) - 1, max(n_residues) + 1)].tolist()
    graphs = []
    for name in np.random.default_rng(seed).permutation(names):
        try:
            G = glycan_graph(str(name))
        except ValueError:  # monomers outside the library: skipped, as in any screen
            continue
        if len(G) in n_residues and nx.is_weakly_connected(G):
            graphs.append(G)
        if len(graphs) == count:
            break
    return graphs


def versus_networkx(title: str, pairs, costs) -> str:
    kw = networkx_costs(costs)
    t_nx, t_ours, nodes = [], [], []
    for G1, G2 in pairs:
        start = time.perf_counter()
        ref = nx.graph_edit_distance(G1, G2, **kw)
        t_nx.append(time.perf_counter() - start)
        r = graph_edit_distance(G1, G2, costs=costs)
        t_ours.append(r.seconds)
        nodes.append(r.search_nodes)
        assert r.optimal and abs(r.distance - ref) <= GAP_TOL, (title, r, ref)
    ratio = np.array(t_nx) / np.array(t_ours)
    return (f"| {title} | {len(pairs)} | {np.median(t_nx):.2f} | {np.median(t_ours):.4f} | "
            f"{np.median(nodes):.0f} | all equal | "
            f"{np.median(ratio):.0f} (min {ratio.min():.0f}) |")


def glycan_screen(graphs: list[nx.DiGraph]) -> list[str]:
    pairs = list(zip(graphs[0::2], graphs[1::2]))
    rows = {m: [] for m in ("exact", "bounds", "bipartite")}
    for G1, G2 in pairs:
        exact = graph_edit_distance(G1, G2)
        assert exact.optimal, exact
        rows["exact"].append(exact)
        for method in ("bounds", "bipartite"):
            b = graph_edit_distance(G1, G2, method=method)
            assert b.lower_bound - GAP_TOL <= exact.distance <= b.upper_bound + GAP_TOL
            rows[method].append(b)
    out = []
    for method, results in rows.items():
        t = np.array([r.seconds for r in results])
        d = np.array([r.distance for r in rows["exact"]])
        lo = np.array([r.lower_bound for r in results])
        hi = np.array([r.upper_bound for r in results])
        proven = np.mean([r.optimal for r in results])
        nodes = np.array([r.search_nodes for r in results])
        its = np.array([r.lp_iterations or 0 for r in results])
        out.append(
            f"| {method} | {len(pairs)} | {np.median(t):.3f} | {np.percentile(t, 90):.3f} | "
            f"{t.max():.2f} | {proven:.0%} | {np.median(nodes):.0f} / {nodes.max()} | "
            f"{np.median(its):.0f} | {np.mean((d - lo) / d):.1%} / {np.mean((hi - d) / d):.1%} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree-pairs", type=int, default=5)
    parser.add_argument("--small-pairs", type=int, default=5)
    parser.add_argument("--glycan-pairs", type=int, default=100)
    parser.add_argument("--glycan-size", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"# {platform.node()} {os.cpu_count()} cores, python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__} (HiGHS), networkx {nx.__version__}, "
          f"glycowork {version('glycowork')}")
    print("| case | pairs | networkx median (s) | ours median (s) | ours B&B nodes (median) | "
          "distances | speed-up median (min) |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(args.seed)
    if args.tree_pairs:
        trees = [(labelled_tree(rng, 10), labelled_tree(rng, 10)) for _ in range(args.tree_pairs)]
        print(versus_networkx("random labelled 10-node trees, UniformCosts()", trees,
                              UniformCosts()), flush=True)
    if args.small_pairs:
        small = glycans_with(range(6, 9), 2 * args.small_pairs, args.seed)
        print(versus_networkx("real glycans, 6-8 residues, ChemicalCosts()",
                              list(zip(small[0::2], small[1::2])), ChemicalCosts()), flush=True)
    size = args.glycan_size
    big = glycans_with(range(size, size + 1), 2 * args.glycan_pairs, args.seed)
    print(f"\n{size}-residue glycowork glycan pairs, ChemicalCosts() (GLAMOUR's costs), ours only:")
    print("| method | pairs | median (s) | 90th pct (s) | max (s) | proven optimal | "
          "B&B nodes median / max | LP iterations median | mean rel. gap below / above exact |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in glycan_screen(big):
        print(row, flush=True)


if __name__ == "__main__":
    main()
