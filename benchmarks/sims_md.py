"""Benchmark: LJ argon MD, ours (sims.MD + VelocityVerlet) against ASE's VelocityVerlet + LennardJones.

Rows: N = 864 and 4000 argon atoms (fcc at liquid density 0.021 1/Å^3, rattled, 60 K start),
sigma 3.4 Å, epsilon 0.0104 eV, cutoff 8.5 Å, 5 fs steps. Throughput in atom-steps per second.
Both engines start from the same positions and velocities; the float64 run must reproduce ASE's
final positions to 1e-6 Å (a check that the two do the same dynamics), float32 is timed too.
Our runs use one torch thread, like ASE's numpy (the issue's goal: >= 10x ASE).

Run: ``.venv/bin/python benchmarks/sims_md.py [--steps 20] [--sizes 864 4000]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from importlib.metadata import version

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.calculators.lj import LennardJones as AseLJ
from ase.md.verlet import VelocityVerlet as AseVerlet

import sims
from sims.potentials import LennardJones


def system(n: int):
    reps = {864: 6, 4000: 10, 256: 4, 2048: 8}[n]
    atoms = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(reps)
    atoms.rattle(0.05, seed=1)
    v = sims.maxwell_boltzmann(torch.as_tensor(atoms.get_masses()), 60.0, seed=2)
    atoms.set_velocities(v.numpy())
    return atoms


def ours(atoms, steps, dtype):
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, dtype=dtype)
    md = sims.MD(atoms, pot, sims.VelocityVerlet(timestep=5.0), dtype=dtype, record_every=0)
    md.run(2)  # warm-up (first neighbour-list build is timed separately in sims_neighbors.py)
    t = time.perf_counter()
    md.run(steps)
    dt = time.perf_counter() - t
    return len(atoms) * steps / dt, md


def ase_run(atoms, steps):
    atoms = atoms.copy()
    atoms.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5)
    dyn = AseVerlet(atoms, timestep=5.0 * units.fs)
    dyn.run(2)
    t = time.perf_counter()
    dyn.run(steps)
    dt = time.perf_counter() - t
    return len(atoms) * steps / dt, atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[864, 4000])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"ase {version('ase')}, 1 thread")
    print("| N | ASE atom-steps/s | ours float64 | ours float32 | ratio f64/ASE | ratio f32/ASE "
          "| max dx vs ASE (Å) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        atoms = system(n)
        r_ase, ref = ase_run(atoms, args.steps)
        r64, md64 = ours(atoms, args.steps, torch.float64)
        r32, _ = ours(atoms, args.steps, torch.float32)
        dx = float(np.abs(md64.positions_array() - ref.positions).max())
        assert dx < 1e-6, f"ours and ASE disagree by {dx} Å"
        print(f"| {n} | {r_ase:.3g} | {r64:.3g} | {r32:.3g} | {r64 / r_ase:.1f}x | {r32 / r_ase:.1f}x | {dx:.1e} |")


if __name__ == "__main__":
    main()
