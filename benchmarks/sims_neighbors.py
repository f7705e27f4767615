"""Benchmark: neighbour-list build, ours (sims.neighbor_list, cell list in torch) against
``ase.neighborlist.neighbor_list`` (C-accelerated binning in numpy) on the same systems.

Rows: liquid-density argon (0.021 1/Å^3) in cubic and triclinic boxes at N = 864, 4000, 13500,
cutoff 8.5 Å. Pair sets must be equal. Ours runs on one torch thread.

Run: ``.venv/bin/python benchmarks/sims_neighbors.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from importlib.metadata import version

import numpy as np
import torch
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

import sims


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"ase {version('ase')}, 1 thread")
    print("| N | cell | pairs | ASE (s) | ours (s) | ratio ASE/ours |")
    print("|---|---|---|---|---|---|")
    for reps in (6, 10, 15):
        for shape in ("cubic", "triclinic"):
            atoms = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(reps)
            if shape == "triclinic":
                cell = atoms.cell[:].copy()
                cell[2] += 0.3 * cell[0] + 0.2 * cell[1]
                atoms.set_cell(cell, scale_atoms=True)
            atoms.rattle(0.3, seed=0)
            t_ase, ref = best_time(lambda: ase_neighbor_list("ijS", atoms, 8.5), args.repeat)
            t_ours, got = best_time(lambda: sims.neighbor_list(atoms, 8.5), args.repeat)
            assert len(got[0]) == len(ref[0])
            key = lambda i, j, S: np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i))  # noqa: E731
            a, b = key(*got), key(*ref)
            assert all(np.array_equal(x[a], y[b]) for x, y in zip(got, ref)), "pair sets differ"
            print(f"| {len(atoms)} | {shape} | {len(ref[0])} | {t_ase:.3f} | {t_ours:.3f} | {t_ase / t_ours:.1f}x |")


if __name__ == "__main__":
    main()
