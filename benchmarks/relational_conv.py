"""Benchmark: one R-GCN layer, ours (:class:`learners.models.RGCNLayer`, one scatter for all relations)
against PyG's ``RGCNConv(aggr="mean")`` (one propagation per relation), same weights, same input.

Input: a batch of glycan graphs from glycowork's taxonomy table (the first ``--glycans`` buildable
ones), both edge directions, relations = the linkage types seen at least 5 times plus "other",
each with its inverse (as :class:`learners.models.GraphModel` builds them); width ``--hidden``.
Timed: forward + backward (sum of squares), best of ``--repeat``; outputs must agree to 1e-9
(float64). Rows: full relation matrices and 8 bases.

Run: ``python benchmarks/relational_conv.py [--glycans 256] [--hidden 64] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import torch

from learners.data import graphs_to_data
from learners.models import GraphModel, RGCNLayer, relation_table


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return min(times)


def main(argv=None) -> list[dict]:
    from torch_geometric import __version__ as pyg_version
    from torch_geometric.data import Batch
    from torch_geometric.nn import RGCNConv

    from reprs.glycan_tasks import load_task, task_graphs

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--glycans", type=int, default=256)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graphs, _, _ = task_graphs(load_task("taxonomy"), warn=False)
    batch = Batch.from_data_list(graphs_to_data(graphs[:args.glycans], dtype=torch.float64))
    table = relation_table(batch.edge_attr[batch.edge_dir == 0], min_count=5)
    model = GraphModel(kind="rgcn", in_dim=batch.x.shape[1], edge_dim=table.shape[1], n_outputs=2, relations=table,
                       dtype=torch.float64)
    n_rel = table.shape[0] + 1
    types = model.relation_ids(batch.edge_attr) + n_rel * batch.edge_dir
    x = torch.randn(batch.x.shape[0], args.hidden, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"PyG {pyg_version}, 1 thread; {args.glycans} glycans, {x.shape[0]} nodes, {batch.edge_index.shape[1]} "
          f"edges, {2 * n_rel} relations, width {args.hidden}")
    print("| weights | ours (ms) | PyG RGCNConv (ms) | PyG / ours |")
    print("|---|---|---|---|")
    rows = []
    for bases in (None, 8):
        ours = RGCNLayer(args.hidden, args.hidden, 2 * n_rel, num_bases=bases).double()
        peer = RGCNConv(args.hidden, args.hidden, 2 * n_rel, num_bases=bases, aggr="mean").double()
        peer.load_state_dict(ours.state_dict())
        np.testing.assert_allclose(ours(x, batch.edge_index, types).detach().numpy(),
                                   peer(x, batch.edge_index, types).detach().numpy(), rtol=1e-9, atol=1e-9)
        t_ours = best_time(lambda: ours(x, batch.edge_index, types).square().sum().backward(), args.repeat)
        t_peer = best_time(lambda: peer(x, batch.edge_index, types).square().sum().backward(), args.repeat)
        label = "full" if bases is None else f"{bases} bases"
        print(f"| {label} | {1e3 * t_ours:.1f} | {1e3 * t_peer:.1f} | {t_peer / t_ours:.1f} |", flush=True)
        rows.append({"weights": label, "ours_s": t_ours, "pyg_s": t_peer})
    return rows


if __name__ == "__main__":
    main()
