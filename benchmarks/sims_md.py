"""Benchmark: LJ argon MD, ours (sims.MD + VelocityVerlet) against ASE's VelocityVerlet + LennardJones.

Rows: N = 864, 4000 and 32000 argon atoms (fcc at liquid density 0.021 1/Å^3, rattled, 60 K start;
the systems of ``benchmarks/lammps_vs_sims.py``), sigma 3.4 Å, epsilon 0.0104 eV, cutoff 8.5 Å,
5 fs steps, ``record_every=0``. Throughput in atom-steps per second of CPU time (the shared cores
run other jobs; see ``lammps_vs_sims.py``). Both engines start from the same positions and
velocities; the float64 run must reproduce ASE's final positions to 1e-6 Å (a check that the two
do the same dynamics), float32 is timed too. Our runs use one torch thread, like ASE's numpy (the
issue's goal: >= 10x ASE).

Run: ``.venv/bin/python benchmarks/sims_md.py [--steps 20] [--big-steps 5] [--sizes 864 4000 32000]``;
sizes above 4000 run ``--big-steps`` steps (ASE takes about a second per step there).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.metadata import version

import numpy as np
import torch
from ase import units
from ase.calculators.lj import LennardJones as AseLJ
from ase.md.verlet import VelocityVerlet as AseVerlet
from lammps_vs_sims import system

import sims
from sims.potentials import LennardJones


def ours(atoms, steps, dtype):
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, dtype=dtype)
    md = sims.MD(atoms, pot, sims.VelocityVerlet(timestep=5.0), dtype=dtype, record_every=0)
    md.run(2)  # warm-up (first neighbour-list build is timed separately in sims_neighbors.py)
    t = time.process_time()
    md.run(steps)
    dt = time.process_time() - t
    return len(atoms) * steps / dt, md


def ase_run(atoms, steps):
    atoms = atoms.copy()
    atoms.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5)
    dyn = AseVerlet(atoms, timestep=5.0 * units.fs)
    dyn.run(2)
    t = time.process_time()
    dyn.run(steps)
    dt = time.process_time() - t
    return len(atoms) * steps / dt, atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--big-steps", type=int, default=5, help="steps for sizes above 4000")
    parser.add_argument("--sizes", type=int, nargs="+", default=[864, 4000, 32000])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f} at start, torch {torch.__version__}, ase {version('ase')}, 1 thread")
    print("| N | ASE atom-steps/s | ours float64 | ours float32 | ratio f64/ASE | ratio f32/ASE "
          "| max dx vs ASE (Å) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        atoms = system(n)
        steps = args.steps if n <= 4000 else args.big_steps
        r_ase, ref = ase_run(atoms, steps)
        r64, md64 = ours(atoms, steps, torch.float64)
        r32, _ = ours(atoms, steps, torch.float32)
        dx = float(np.abs(md64.positions_array() - ref.positions).max())
        assert dx < 1e-6, f"ours and ASE disagree by {dx} Å"
        print(f"| {n} | {r_ase:.3g} | {r64:.3g} | {r32:.3g} | {r64 / r_ase:.1f}x | {r32 / r_ase:.1f}x | {dx:.1e} |")


if __name__ == "__main__":
    main()
