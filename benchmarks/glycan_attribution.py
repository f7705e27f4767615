"""Integrated-gradient attributions of a multi-task taxonomy RGCN on known glycan motifs, as PNG.

Trains the multi-task RGCN of ``benchmarks/glycan_benchmark.py`` (``taxonomy-mtl``) on the training
part of the shipped structure split, then explains its kingdom head (:mod:`learners.attribution`,
integrated gradients with an all-zero fingerprint baseline) on test-part glycans carrying motifs
whose taxonomic meaning is known:

- sialic acid (``Neu5Ac`` / ``Neu5Gc``): in deuterostome animals (and some of their pathogens),
  explained for the ``Animalia`` logit;
- alpha1-6 fucose on the reducing-end residue (the core fucose of animal N-glycans), explained for
  ``Animalia``; alpha1-3 fucose on the reducing-end residue (the core fucose of plant and insect
  N-glycans, but the finder also matches milk oligosaccharides' Fuc(a1-3)Glc) and beta1-2 xylose,
  explained for ``Plantae``.

Besides the drawings it counts, over every test glycan of each group, how often the motif's residues
receive the largest attribution of any residue, which is the quantitative form of "the attribution
highlights the motif" (chance: motif residues / all residues).

Usage::

    python benchmarks/glycan_attribution.py [--out benchmarks/figures/glycan_attribution] [--epochs 15]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from learners.attribution import draw_attribution, monomer_attribution
from learners.estimators import GNNMultiTaskClassifier
from learners.splits import read_split_file
from reprs.glycan_taxonomy import TAXONOMY_LEVELS
from reprs.glycan_tasks import load_task, task_graphs

HERE = Path(__file__).resolve().parent


def _sialic(graph) -> list[int]:
    return [n for n, lab in graph.nodes(data="label") if lab in ("Neu5Ac", "Neu5Gc")]


def _core_fucose(graph, linkage: str) -> list[int]:
    root = graph.graph["root"]
    return [u for u, v, d in graph.in_edges(root, data=True) if graph.nodes[u]["label"] == "Fuc" and d["linkage"] == linkage]


def _xylose(graph) -> list[int]:
    return [u for u, v, d in graph.edges(data=True) if graph.nodes[u]["label"] == "Xyl" and d["linkage"] == "b1-2"]


#: group -> (motif finder, kingdom explained)
GROUPS = {
    "sialic acid": (_sialic, "Animalia"),
    "core a1-6 fucose": (lambda g: _core_fucose(g, "a1-6"), "Animalia"),
    "core a1-3 fucose": (lambda g: _core_fucose(g, "a1-3"), "Plantae"),
    "b1-2 xylose": (_xylose, "Plantae"),
}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "figures" / "glycan_attribution")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--train-subsample", type=int, default=4000)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--per-group", type=int, default=40, help="test glycans scored per motif group")
    p.add_argument("--draw", type=int, default=2, help="drawings per motif group")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graphs, table, _ = task_graphs(load_task("taxonomy"), warn=False)
    train, val, test = read_split_file(HERE / "glycan_splits" / "taxonomy.csv.gz", [g.graph["name"] for g in graphs],
                                       "structure")
    rng = np.random.default_rng(args.seed)
    train = np.sort(rng.choice(train, min(args.train_subsample, len(train)), replace=False))
    y = table[list(TAXONOMY_LEVELS)].to_numpy().astype(str)
    model = GNNMultiTaskClassifier(kind="rgcn", hidden=args.hidden, layers=3, dropout=0.1, epochs=args.epochs, lr=3e-3,
                                   seed=args.seed, monitor="accuracy")
    model.fit([graphs[i] for i in train], y[train], val=([graphs[i] for i in val], y[val]))
    kingdom = TAXONOMY_LEVELS.index("Kingdom")
    offset = sum(len(c) for c in model.classes_[:kingdom])
    pred = model.predict([graphs[i] for i in test])
    summary = {"test_accuracy": {lv: float(np.mean(pred[:, k] == y[test, k])) for k, lv in enumerate(TAXONOMY_LEVELS)},
               "groups": {}, "budget": vars(args) | {"out": str(args.out)}}
    for group, (find, kingdom_name) in GROUPS.items():
        column = offset + int(np.flatnonzero(model.classes_[kingdom] == kingdom_name)[0])
        members = [i for i in test if find(graphs[i]) and graphs[i].number_of_nodes() >= 3][:args.per_group]
        top_hits, chance, drawn = 0, [], []
        for j, i in enumerate(members):
            graph = graphs[i]
            att = monomer_attribution(model, graph, target=column)
            motif = find(graph)
            top_hits += int(np.argmax(att.node_scores) in motif)
            chance.append(len(motif) / graph.number_of_nodes())
            if j < args.draw:
                path = args.out / f"{group.replace(' ', '_')}_{j}.png"
                draw_attribution(graph, att, path, title=f"{kingdom_name} logit ({group}; true kingdom "
                                 f"{y[i, kingdom]}, predicted {pred[list(test).index(i), kingdom]})\n{graph.graph['name']}")
                drawn.append(path.name)
        summary["groups"][group] = {"explained": kingdom_name, "n": len(members),
                                    "motif_top_fraction": top_hits / max(len(members), 1),
                                    "chance": float(np.mean(chance)) if chance else None, "drawn": drawn}
        print(group, json.dumps(summary["groups"][group]), flush=True)
    print(json.dumps(summary["test_accuracy"]))
    return summary


if __name__ == "__main__":
    main()
