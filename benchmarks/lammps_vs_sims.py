"""Benchmark: LJ argon and BKS silica NVE on LAMMPS (driven by sims.lammps), ASE and our torch engine (sims.MD).

Rows: N = 864, 4000 and 32000 argon atoms (fcc at liquid density 0.021 1/Å^3, rattled, 60 K start),
sigma 3.4 Å, epsilon 0.0104 eV, cutoff 8.5 Å (shifted), 5 fs velocity-Verlet steps, skin 1 Å; and
BKS silica (648 atoms of beta-cristobalite at 3000 K, Buckingham + DSF Coulomb + 30-6 core, 1 fs
steps), the production system of ``sims/data/silica_melt_quench.toml``. Throughput in
atom-steps per second of CPU time, all three engines in this one process, one after the other:
the 2 cores here are shared with other jobs, and CPU time does not charge an engine for the time
it waits for a core (wall-clock ratios swung by 2x between runs under load; CPU-time ratios held).

- LAMMPS runs serially (1 MPI rank); its time is the "Loop time" LAMMPS logs for the MD run times
  the "% CPU use" it logs, so writing the inputs, reading the data file and the setup (first
  neighbour list and forces) are not counted.
- Ours: one torch thread, float64 and float32, ``record_every=0``, two warm-up steps not timed
  (the first neighbour list and forces, like LAMMPS's setup); neighbour-list rebuilds during the
  run are timed, as LAMMPS's are.
- ``--compile`` adds ours in float64 with ``sims.MD(compiled=True)`` (velocity Verlet and the pair pass as one
  ``torch.compile``d step, the list of small orthorhombic cells by a compiled all-pairs pass; compiling
  happens in the untimed warm-up, its time is printed apart).
- ASE: ``ase.md.verlet.VelocityVerlet`` with ``ase.calculators.lj.LennardJones`` (numpy), LJ only
  (ASE has no BKS calculator), ``--ase-steps`` steps after two warm-up steps.

Checks: the initial energies of LAMMPS and ours agree to 1e-9 (relative) and the float64 final
positions to 1e-6 Å (both are velocity Verlet on the same potential, so the trajectories coincide
over a short run); ASE's initial forces equal ours to 1e-9 eV/Å (``benchmarks/sims_md.py`` checks
whole ASE trajectories).

Run: ``.venv/bin/python benchmarks/lammps_vs_sims.py [--steps 100] [--big-steps 100]
[--sizes 864 4000 32000] [--bks-steps 100] [--ase-steps 10] [--compile]``; sizes above 4000 run
``--big-steps`` steps (the same 100 by default).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.calculators.lj import LennardJones as AseLJ
from ase.md.verlet import VelocityVerlet as AseVerlet

import sims
from sims import lammps as sl
from sims.potentials import BKS, LennardJones
from sims.silica import beta_cristobalite

#: fcc repeats giving N = 4 reps^3 argon atoms.
REPEATS = {256: 4, 864: 6, 2048: 8, 4000: 10, 13500: 15, 32000: 20}


def system(n: int):
    atoms = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(REPEATS[n])
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
    m = re.search(r"Loop time of (\S+) on 1 procs for %d steps.*?([\d.]+)%% CPU use" % steps, log, re.S)
    return len(atoms) * steps / (float(m.group(1)) * float(m.group(2)) / 100), start, final


def ours(atoms, steps, dtype, kind="lj", timestep=5.0, compiled=False):
    t = time.perf_counter()
    kw = {"compiled": True} if compiled else {}  # (leaves the script runnable on sims without the option)
    md = sims.MD(atoms, potential(dtype, kind), sims.VelocityVerlet(timestep=timestep), dtype=dtype, record_every=0,
                 **kw)
    e0, f0 = float(md.energy), md.forces.detach().double().numpy()
    md.run(2)  # warm-up (and compilation)
    warm = time.perf_counter() - t
    t = time.process_time()
    md.run(steps - 2)
    dt = time.process_time() - t
    return len(atoms) * (steps - 2) / dt, e0, f0, md, warm


def ase_run(atoms, steps):
    atoms = atoms.copy()
    atoms.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5)
    f0 = atoms.get_forces()
    dyn = AseVerlet(atoms, timestep=5.0 * units.fs)
    dyn.run(2)
    t = time.process_time()
    dyn.run(steps)
    return len(atoms) * steps / (time.process_time() - t), f0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--big-steps", type=int, default=100, help="steps for sizes above 4000")
    parser.add_argument("--sizes", type=int, nargs="+", default=[864, 4000, 32000])
    parser.add_argument("--bks-steps", type=int, default=100)
    parser.add_argument("--ase-steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also time sims.MD(compiled=True) in float64")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start, lammps {version('lammps')}, "
          f"ase {version('ase')}, torch {torch.__version__}, 1 thread / 1 MPI rank")
    print("| system | N | steps | LAMMPS | ASE | ours f64 | ours f32 | ours f64 compiled | LAMMPS / ours f64 "
          "| ours f64 / ASE | LAMMPS / ours f32 | LAMMPS / ours f64 compiled | dE0 (eV) | max dx (Å) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    cases = [("LJ argon, 5 fs", system(n), args.steps if n <= 4000 else args.big_steps, "lj", 5.0)
             for n in args.sizes]
    if args.bks_steps:
        cases.append(("BKS SiO2, 1 fs", silica(), args.bks_steps, "bks", 1.0))
    for name, atoms, steps, kind, dt in cases:
        r_lmp, start, final = lammps_run(atoms, steps, kind, dt)
        r64, e64, f64, md64, _ = ours(atoms, steps, torch.float64, kind, dt)
        r32 = ours(atoms, steps, torch.float32, kind, dt)[0]
        rc_cell, rc_ratio = "–", "–"
        if args.compile:
            rc, _, _, mdc, warm = ours(atoms, steps, torch.float64, kind, dt, compiled=True)
            dxc = float(np.abs(mdc.positions_array() - final.positions).max())
            assert dxc < 1e-6, f"LAMMPS and ours compiled disagree by {dxc} Å after {steps} steps"
            rc_cell, rc_ratio = f"{rc:.3g} (warm-up {warm:.0f} s)", f"{r_lmp / rc:.1f}x"
        de = abs(start.get_potential_energy() - e64)
        dx = float(np.abs(md64.positions_array() - final.positions).max())
        assert de < 1e-9 * max(1.0, abs(e64)), f"initial energies differ by {de} eV"
        assert dx < 1e-6, f"LAMMPS and ours disagree by {dx} Å after {steps} steps"
        ase_cell, ase_ratio = "–", "–"
        if kind == "lj" and args.ase_steps:
            r_ase, f_ase = ase_run(atoms, args.ase_steps)
            df = float(np.abs(f_ase - f64).max())
            assert df < 1e-9, f"ASE and ours disagree on the initial forces by {df} eV/Å"
            ase_cell, ase_ratio = f"{r_ase:.3g}", f"{r64 / r_ase:.1f}x"
        print(f"| {name} | {len(atoms)} | {steps} | {r_lmp:.3g} | {ase_cell} | {r64:.3g} | {r32:.3g} | {rc_cell} "
              f"| {r_lmp / r64:.1f}x | {ase_ratio} | {r_lmp / r32:.1f}x | {rc_ratio} | {de:.1e} | {dx:.1e} |",
              flush=True)


if __name__ == "__main__":
    main()
