"""Integrated-gradient attributions of a multi-task taxonomy RGCN on known glycan motifs, as PNG.

Trains the multi-task RGCN of ``benchmarks/glycan_benchmark.py`` (``taxonomy-mtl``) on the training
part of the shipped structure split, then explains its kingdom head (:mod:`learners.attribution`,
integrated gradients with an all-zero fingerprint baseline) on test-part glycans carrying motifs
whose taxonomic meaning is known:

- sialic acid (``Neu5Ac`` / ``Neu5Gc``): in deuterostome animals (and some of their pathogens),
  explained for the ``Animalia`` logit;
- alpha1-6 fucose on a reducing-end GlcNAc (the core fucose of animal N-glycans), explained for
  ``Animalia``; alpha1-3 fucose on a reducing-end GlcNAc (the core fucose of plant and insect
  N-glycans; a fucose on another reducing-end residue, such as milk oligosaccharides' Fuc(a1-3)Glc,
  is not core fucose) and beta1-2 xylose, explained for ``Plantae``.

Besides the drawings it counts, over every test glycan of each group, how often the motif's residues
receive the largest attribution of any residue, which is the quantitative form of "the attribution
highlights the motif" (chance: motif residues / all residues), and the rank of the best-ranked motif
residue (chance: ``(n + 1) / (k + 1)`` for ``k`` motif residues among ``n``) and the motif's share of
the residues' absolute attributions (chance: ``k / n``). Each explained output
(``--outputs``: the class's raw logit, log-probability or log-odds, see :mod:`learners.attribution`)
and baseline (``--baseline``: all-zero fingerprints, or the mean training residue) is scored.
Independently of any attribution method, an occlusion test says whether the model uses the motif
at all: the glycan with the motif residues removed is scored again, and the drop of the class's
log-odds is reported (positive: the motif supports the class).

Usage::

    python benchmarks/glycan_attribution.py [--out benchmarks/figures/glycan_attribution] [--epochs 15]
        [--model saved.pt]   # train once and save, later runs load it
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from learners.attribution import OUTPUTS, draw_attribution, monomer_attribution
from learners.estimators import GNNMultiTaskClassifier, load_estimator, save_estimator
from learners.splits import read_split_file
from reprs.glycan_taxonomy import TAXONOMY_LEVELS
from reprs.glycan_tasks import load_task, task_graphs

HERE = Path(__file__).resolve().parent


def _sialic(graph) -> list[int]:
    return [n for n, lab in graph.nodes(data="label") if lab in ("Neu5Ac", "Neu5Gc")]


def _core_fucose(graph, linkage: str) -> list[int]:
    # An N-glycan core: the fucose on a reducing-end GlcNAc (not, e.g., milk oligosaccharides' Fuc(a1-3)Glc).
    root = graph.graph["root"]
    if graph.nodes[root]["label"] != "GlcNAc":
        return []
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
    p.add_argument("--outputs", nargs="+", choices=OUTPUTS, default=["log_odds", "logit", "log_proba"],
                   help="explained outputs, all scored; the first is drawn")
    p.add_argument("--baseline", choices=("zero", "mean"), default="zero",
                   help="IG baseline: all-zero fingerprints or the mean training residue's")
    p.add_argument("--model", type=Path, help="a saved model (save_estimator) to explain; trained and saved there "
                   "when the file does not exist")
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
    if args.model is not None and args.model.is_file():
        model = load_estimator(args.model)
    else:
        model = GNNMultiTaskClassifier(kind="rgcn", hidden=args.hidden, layers=3, dropout=0.1, epochs=args.epochs,
                                       lr=3e-3, seed=args.seed, monitor="accuracy")
        model.fit([graphs[i] for i in train], y[train], val=([graphs[i] for i in val], y[val]))
        if args.model is not None:
            save_estimator(model, args.model)
    kingdom = TAXONOMY_LEVELS.index("Kingdom")
    offset = sum(len(c) for c in model.classes_[:kingdom])
    pred = model.predict([graphs[i] for i in test])
    baseline = None
    if args.baseline == "mean":
        baseline = np.mean([x for i in train for _, x in graphs[i].nodes(data="x")], axis=0)
    summary = {"test_accuracy": {lv: float(np.mean(pred[:, k] == y[test, k])) for k, lv in enumerate(TAXONOMY_LEVELS)},
               "groups": {}, "budget": vars(args) | {"out": str(args.out), "model": str(args.model)}}
    for group, (find, kingdom_name) in GROUPS.items():
        k_col = int(np.flatnonzero(model.classes_[kingdom] == kingdom_name)[0])
        column = offset + k_col
        members = [i for i in test if find(graphs[i]) and graphs[i].number_of_nodes() >= 3][:args.per_group]
        top = {o: [] for o in args.outputs}
        rank = {o: [] for o in args.outputs}
        share = {o: [] for o in args.outputs}
        chance, chance_rank, drop, proba, drawn, top_labels = [], [], [], [], [], []
        for j, i in enumerate(members):
            graph = graphs[i]
            motif = find(graph)
            at = [list(graph.nodes).index(v) for v in motif]  # positions of the motif's nodes in the scores
            n, k = graph.number_of_nodes(), len(motif)
            chance.append(k / n)
            chance_rank.append((n + 1) / (k + 1))
            for output in args.outputs:
                att = monomer_attribution(model, graph, target=column, output=output, baseline=baseline)
                order = np.argsort(-att.node_scores, kind="stable")
                top[output].append(order[0] in at)
                rank[output].append(1 + int(np.flatnonzero(np.isin(order, at))[0]))
                magnitude = np.abs(att.node_scores)
                share[output].append(magnitude[at].sum() / magnitude.sum())
                if output == args.outputs[0]:
                    node = list(graph.nodes)[order[0]]
                    top_labels.append("root " + att.labels[order[0]] if node == graph.graph["root"] else att.labels[order[0]])
                if j < args.draw and output == args.outputs[0]:
                    path = args.out / f"{group.replace(' ', '_')}_{j}.png"
                    draw_attribution(graph, att, path, title=f"{kingdom_name} {output} ({group}; true kingdom "
                                     f"{y[i, kingdom]}, predicted {pred[list(test).index(i), kingdom]})\n{graph.graph['name']}")
                    drawn.append(path.name)
            # Occlusion: the same glycan without the motif residues, scored by the model.
            rest = graph.subgraph([v for v in graph if v not in motif]).copy()
            p_full = model.predict_proba([graph])[kingdom][0, k_col]
            p_rest = model.predict_proba([rest])[kingdom][0, k_col]
            drop.append(float(np.log(p_full / (1 - p_full)) - np.log(p_rest / (1 - p_rest))))
            proba.append(float(p_full))
        summary["groups"][group] = {
            "explained": kingdom_name, "n": len(members),
            "motif_top_fraction": {o: float(np.mean(v)) if v else None for o, v in top.items()},
            "chance": float(np.mean(chance)) if chance else None,
            "motif_rank": {o: float(np.mean(v)) if v else None for o, v in rank.items()},
            "chance_rank": float(np.mean(chance_rank)) if chance_rank else None,
            "motif_abs_share": {o: float(np.mean(v)) if v else None for o, v in share.items()},
            "mean_proba": float(np.mean(proba)) if proba else None,
            "occlusion_log_odds_drop": float(np.mean(drop)) if drop else None,
            "occlusion_lowers_fraction": float(np.mean(np.array(drop) > 0)) if drop else None,
            "top_residues": dict(Counter(top_labels).most_common()),
            "drawn": drawn}
        print(group, json.dumps(summary["groups"][group]), flush=True)
    print(json.dumps(summary["test_accuracy"]))
    return summary


if __name__ == "__main__":
    main()
