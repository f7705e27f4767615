"""Write the split files of the GlycanML-breadth glycan benchmark (``benchmarks/glycan_splits/``).

Per task, one gzip-compressed CSV with a ``key`` column (the glycan string as glycowork or GLAMOUR
writes it; for binding the lectin's amino-acid sequence) and two splits, each of ``train`` / ``val``
/ ``test`` (:func:`learners.splits.write_split_file`):

- ``structure``: GlycanML's structure split (arXiv:2405.16206): glycowork motif-count vectors
  (:func:`reprs.glycan_tasks.motif_counts`), k-means with k = 10, eight clusters train, one
  validation, one test (:func:`learners.splits.cluster_split`, seed 0; the next seed where a part
  would hold a single class, or fewer than ``MIN_PER_CLASS`` = 5 of either class of a two-class
  task). For binding the lectins are
  clustered instead, on their amino-acid and dipeptide composition, so that test lectins are unlike
  the training ones.
- ``random``: stratified 0.8 / 0.1 / 0.1 (seed 0) on the label (taxonomy: on the kingdom; classes of
  fewer than 10 glycans are counted with the largest class for the stratification only); binding: random over distinct lectin
  sequences (samples of one sequence stay together).

Keys are the glycans whose graphs build with this checkout's monomer library
(:func:`reprs.glycan_tasks.task_graphs`); a dataset built otherwise does not match the file and
:func:`learners.splits.read_split_file` says so. The files depend on glycowork's version (1.11.0
when written) and on the monomer library; rerun this script to regenerate them::

    python benchmarks/glycan_splits.py [--out benchmarks/glycan_splits] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from learners.splits import check_split_labels, cluster_split, group_split, stratified_split, write_split_file
from reprs.errors import InputError
from reprs.fileio import atomic_write
from reprs.glycan_tasks import load_task, motif_counts, sequence_composition, task_graphs

HERE = Path(__file__).resolve().parent
GLAMOUR_IMMUNO = HERE.parents[1] / "shared" / "data" / "glamour" / "glycobase_immuno.txt"
TASKS = ("taxonomy", "glycosylation", "immunogenicity", "binding")


def _pooled(labels: np.ndarray, min_size: int = 10) -> np.ndarray:
    """Labels for stratification: classes under ``min_size`` members joined to the largest class."""
    classes, counts = np.unique(labels, return_counts=True)
    return np.where(np.isin(labels, classes[counts < min_size]), classes[counts.argmax()], labels)


#: Fewest members of either class in any part of a two-class task's split.
MIN_PER_CLASS = 5


def _check_binary_counts(labels: np.ndarray, parts) -> None:
    classes = np.unique(labels)
    if len(classes) != 2:
        return
    for name, part in zip(("train", "val", "test"), parts):
        fewest = min(int((labels[part] == c).sum()) for c in classes)
        if fewest < MIN_PER_CLASS:
            raise InputError(f"the {name} part holds {fewest} of one class (< {MIN_PER_CLASS})")


def glycan_splits(task_name: str, seed: int, immuno: Path = GLAMOUR_IMMUNO) -> tuple[list[str], dict, dict]:
    """Keys, {split: parts} and a summary of one glycan task."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = load_task(task_name, immunogenicity_path=immuno)
        graphs, table, report = task_graphs(task, warn=False)
    keys = table["glycan"].tolist()
    stratify = table["Kingdom" if task_name == "taxonomy" else "label"].to_numpy()
    counts = motif_counts(keys).to_numpy()
    splits = {"random": stratified_split(_pooled(stratify.astype(str)), (0.8, 0.1, 0.1), seed=seed)}
    # A motif cluster can hold a single class (immunogenicity: a cluster of only non-immunogenic
    # glycans), or so few of one that its scores mean nothing (one immunogenic glycan among 104);
    # then the next seed is tried, and the seed used is recorded.
    for structure_seed in range(seed, seed + 20):
        splits["structure"] = cluster_split(counts, k=10, seed=structure_seed)
        try:
            if task.kind != "multitask":
                for parts in splits.values():
                    check_split_labels(table["label"].to_numpy(), parts)
                    _check_binary_counts(table["label"].to_numpy(), parts)
            break
        except InputError as err:
            print(f"  {task_name}: structure split seed {structure_seed} refused ({err}); trying the next")
    else:
        raise InputError(f"{task_name}: no structure split of seeds {seed}..{seed + 19} has two classes (at least MIN_PER_CLASS of a two-class task's each) in every part")
    summary = {"n": len(keys), "n_failed_graphs": report["n_failed"], "dropped_before": report["dropped_before"],
               "structure_seed": structure_seed, **{name: [len(p) for p in parts] for name, parts in splits.items()}}
    return keys, splits, summary


def binding_splits(seed: int) -> tuple[list[str], dict, dict]:
    """Distinct lectin sequences and their splits."""
    task = load_task("binding")
    keys = sorted(task.table["sequence"].unique())
    splits = {
        "structure": cluster_split(sequence_composition(keys), k=10, seed=seed),
        "random": group_split(np.arange(len(keys)), (0.8, 0.1, 0.1), seed=seed),
    }
    per_key = task.table.groupby("sequence").size()
    summary = {"n": len(keys), "pairs": len(task.table),
               **{name: [int(per_key[[keys[i] for i in p]].sum()) for p in parts] for name, parts in splits.items()}}
    return keys, splits, summary


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "glycan_splits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    p.add_argument("--immuno-table", type=Path, default=GLAMOUR_IMMUNO,
                   help="GLAMOUR's glycobase_immuno.txt (default: ../shared/data/glamour beside the project)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for name in args.tasks:
        if name == "immunogenicity" and not args.immuno_table.is_file():
            print(f"note: immunogenicity skipped, GLAMOUR table not found at {args.immuno_table}")
            continue
        keys, splits, summary = (binding_splits(args.seed) if name == "binding"
                                 else glycan_splits(name, args.seed, args.immuno_table))
        write_split_file(args.out / f"{name}.csv.gz", keys, splits)
        summaries[name] = summary
        print(name, json.dumps(summary), flush=True)
    previous = args.out / "summary.json"
    if previous.is_file():  # a run over some tasks keeps the others' summaries
        summaries = {**json.loads(previous.read_text()), **summaries}
    atomic_write(previous, json.dumps({**summaries, "seed": args.seed}, indent=1) + "\n")
    return summaries


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
