"""Parse and featurise every unique glycowork glycan: matrep vs glycowork's glycan_to_nxGraph.

glycowork builds the topology only (linkages as nodes, string labels); matrep builds the topology
and the monomer / bond fingerprints. Both run on the same glycans in one process; the topologies are
checked to agree on a sample before timing. Usage: ``python benchmarks/glycan_graphs.py [--n N]``.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import networkx as nx


def main() -> None:
    import glycowork
    from glycowork.motif.graph import glycan_to_nxGraph

    from reprs import glycan_graph
    from reprs.convert import from_glycowork
    from reprs.datasets import load_glycans
    from reprs.macromolecules import monomer_fingerprint

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=0, help="number of glycans (0: all)")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glycans = load_glycans(level="Domain")["glycan"].tolist()
    if args.n:
        glycans = glycans[: args.n]

    for g in glycans[:: max(1, len(glycans) // 300)]:  # answers agree before anything is timed
        ours, theirs = glycan_graph(g, on_unknown="zero"), from_glycowork(glycan_to_nxGraph(g))
        assert nx.is_isomorphic(ours, theirs, node_match=lambda a, b: a["label"] == b["label"]), g

    monomer_fingerprint.cache_clear()  # cold start: every monomer fingerprint is computed in the run
    start = time.perf_counter()
    for g in glycans:
        glycan_graph(g, on_unknown="zero")
    ours = time.perf_counter() - start

    start = time.perf_counter()
    for g in glycans:
        glycan_to_nxGraph(g)
    theirs = time.perf_counter() - start

    print(f"# {platform.processor() or platform.machine()}, glycowork {glycowork.__version__}")
    print("| task | glycans | matrep (s) | glycowork (s) | glycowork / matrep |")
    print("|---|---|---|---|---|")
    print(f"| parse + graph (+ fingerprints for matrep) | {len(glycans)} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
