"""Benchmark: neighbour-list build, ours (sims.neighbor_list, cell list in torch) against
``ase.neighborlist.neighbor_list`` (C-accelerated binning in numpy) on the same systems.

Rows: liquid-density argon (0.021 1/Å^3) in cubic and triclinic boxes at N = 864, 4000, 13500,
cutoff 8.5 Å. Pair sets must be equal. Ours runs on one torch thread.

``--builders``: instead, our two builders of a small orthorhombic cell's half list at the MD list
cutoff 9.5 Å (8.5 + skin 1): the compiled all-pairs pass of ``NeighborList(compiled=True)``
(``sims.neighbors._dense_pairs``, warm: compiling is untimed) against ``build_pairs`` (the eager
small-cell search ``_small_cell_pairs`` up to its candidate limit, the cell list beyond), on fcc
argon (a = 5.8 Å, rattled 0.2 Å) of N = 256 ... 2048. Lists must be equal pair for pair.

Run: ``.venv/bin/python benchmarks/sims_neighbors.py [--repeat 3] [--builders]``.
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
    parser.add_argument("--builders", action="store_true", help="compiled all-pairs builder against build_pairs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.builders:
        builders(args.repeat)
        return
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


def builders(repeat: int) -> None:
    """The ``--builders`` table (module docstring)."""
    from sims.neighbors import _SMALL_CANDIDATES, _dense_applies, _dense_pairs, build_pairs

    reach, f64 = 9.5, torch.float64
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"1 thread, half lists at {reach} Å")
    print("| N | pairs | build_pairs route | build_pairs (ms) | compiled all-pairs (ms) | ratio |")
    print("|---|---|---|---|---|---|")
    for reps in (4, 5, 6, 7, 8):
        atoms = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(reps)
        atoms.rattle(0.2, seed=reps)
        x, cell = torch.tensor(atoms.positions, dtype=f64), torch.tensor(atoms.cell[:], dtype=f64)
        pbc = torch.ones(3, dtype=torch.bool)
        assert _dense_applies(x, cell, pbc, reach)
        _dense_pairs(x, cell, reach)  # compiles (untimed)
        t_eager, ref = best_time(lambda: build_pairs(x, cell, pbc, reach, half=True), repeat)
        t_dense, got = best_time(lambda: _dense_pairs(x, cell, reach), repeat)
        assert all(torch.equal(a, b) for a, b in zip(got[:3], ref[:3])), "lists differ"
        route = "small-cell" if len(atoms) ** 2 <= _SMALL_CANDIDATES else "cell list"  # one image a pair here
        print(f"| {len(atoms)} | {len(ref.i)} | {route} | {1e3 * t_eager:.2f} | {1e3 * t_dense:.2f} | "
              f"{t_eager / t_dense:.1f}x |")


if __name__ == "__main__":
    main()
