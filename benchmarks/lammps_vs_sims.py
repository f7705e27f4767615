"""Benchmark: LJ argon NVE on LAMMPS (driven by sims.lammps) against our torch engine (sims.MD).

Rows: N = 864 and 4000 argon atoms (fcc at liquid density 0.021 1/Å^3, rattled, 60 K start),
sigma 3.4 Å, epsilon 0.0104 eV, cutoff 8.5 Å (shifted), 5 fs velocity-Verlet steps, the system
of ``benchmarks/sims_md.py``. Throughput in atom-steps per second. LAMMPS runs serially in this
process; its time is the "Loop time" LAMMPS logs for the MD run, so writing the inputs, reading
the data file and the setup (first neighbour list and forces) are not counted. Ours
uses one torch thread, float64 and float32, after two warm-up steps.
A last row runs BKS silica (648 atoms of beta-cristobalite at 3000 K, Buckingham + DSF Coulomb +
30-6 core, 1 fs steps; ``--bks-steps``, fewer since ours is slow there), the production system of
``sims/data/silica_melt_quench.toml``.
Checks: the initial energies agree to 1e-9 (relative) and the float64 final positions to 1e-6 Å
(both are velocity Verlet on the same potential, so the trajectories coincide over a short run).

Run: ``.venv/bin/python benchmarks/lammps_vs_sims.py [--steps 100] [--sizes 864 4000] [--bks-steps 20]``.
"""

from __future__ import annotations

import argparse
import platform
import re
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

import sims
from sims import lammps as sl
from sims.potentials import BKS, LennardJones
from sims.silica import beta_cristobalite


def system(n: int):
    reps = {256: 4, 864: 6, 2048: 8, 4000: 10}[n]
    atoms = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(reps)
    atoms.rattle(0.05, seed=1)
    atoms.set_velocities(sims.maxwell_boltzmann(torch.as_tensor(atoms.get_masses()), 60.0, seed=2).numpy())
    return atoms


def silica():
    atoms = beta_cristobalite(3)
    atoms.set_velocities(sims.maxwell_boltzmann(torch.as_tensor(atoms.get_masses()), 3000.0, seed=2).numpy())
    return atoms


def potential(dtype, kind="lj"):
    if kind == "bks":
        return BKS(dtype=dtype)
    return LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, shift=True, dtype=dtype)


def lammps_run(atoms, steps, kind="lj", timestep=5.0):
    start = sl.run(atoms, potential(torch.float64, kind), []).final
    with tempfile.TemporaryDirectory() as tmp:
        final = sl.run(atoms, potential(torch.float64, kind),
                       [{"ensemble": "nve", "steps": steps, "timestep": timestep}], workdir=tmp).final
        log = (Path(tmp) / "log.lammps").read_text()
    loop = float(re.search(r"Loop time of (\S+) on 1 procs for %d steps" % steps, log).group(1))
    return len(atoms) * steps / loop, start, final


def ours(atoms, steps, dtype, kind="lj", timestep=5.0):
    md = sims.MD(atoms, potential(dtype, kind), sims.VelocityVerlet(timestep=timestep), dtype=dtype, record_every=0)
    e0 = float(md.energy)
    md.run(2)  # warm-up
    t = time.perf_counter()
    md.run(steps - 2)
    dt = time.perf_counter() - t
    return len(atoms) * (steps - 2) / dt, e0, md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="+", default=[864, 4000])
    parser.add_argument("--bks-steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, lammps {version('lammps')}, "
          f"torch {torch.__version__}, 1 thread / 1 MPI rank")
    print("| system | N | LAMMPS atom-steps/s | ours float64 | ours float32 | LAMMPS / ours f64 | LAMMPS / ours f32 "
          "| dE0 (eV) | max dx (Å) |")
    print("|---|---|---|---|---|---|---|---|---|")
    cases = [("LJ argon, 5 fs", system(n), args.steps, "lj", 5.0) for n in args.sizes]
    if args.bks_steps:
        cases.append(("BKS SiO2, 1 fs", silica(), args.bks_steps, "bks", 1.0))
    for name, atoms, steps, kind, dt in cases:
        r_lmp, start, final = lammps_run(atoms, steps, kind, dt)
        r64, e64, md64 = ours(atoms, steps, torch.float64, kind, dt)
        r32, _, _ = ours(atoms, steps, torch.float32, kind, dt)
        de = abs(start.get_potential_energy() - e64)
        dx = float(np.abs(md64.positions_array() - final.positions).max())
        assert de < 1e-9 * max(1.0, abs(e64)), f"initial energies differ by {de} eV"
        assert dx < 1e-6, f"LAMMPS and ours disagree by {dx} Å after {steps} steps"
        print(f"| {name} | {len(atoms)} | {r_lmp:.3g} | {r64:.3g} | {r32:.3g} | {r_lmp / r64:.1f}x "
              f"| {r_lmp / r32:.1f}x | {de:.1e} | {dx:.1e} |")


if __name__ == "__main__":
    main()
