"""Benchmark: constant-pressure LJ argon, ours (sims.MTK, sims.CellRescaling) against ASE's IsotropicMTKNPT.

Rows: N = 256 and 864 argon atoms (fcc at liquid density, rattled, 60 K velocities), sigma 3.4 Å,
epsilon 0.0104 eV, cutoff 8.5 Å, 5 fs steps, 100 K and 100 bar, tau = 100 fs, tau_p = 1000 fs.
Throughput in atom-steps per second, float64, one torch thread (ASE's numpy is single-threaded too);
also our NVE (velocity Verlet) on the same system, so the barostat's own overhead shows.
Check: both engines start from the same state, and the first step's instantaneous pressure of ours
(virial by autograd plus kinetic part) equals ASE's ``get_stress(include_ideal_gas=True)`` to 1e-9
bar. The trajectories are not compared: ASE's MTK thermostats 3N degrees of freedom and ours 3N - 3
(the centre of mass is at rest; see :class:`sims.barostats.MTK`).

Run: ``.venv/bin/python benchmarks/sims_npt.py [--steps 20] [--sizes 256 864]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from importlib.metadata import version

import numpy as np
import torch
from ase import units
from ase.calculators.lj import LennardJones as AseLJ
from ase.md.nose_hoover_chain import IsotropicMTKNPT

import sims
from sims.potentials import LennardJones
from sims_md import system  # the same argon systems as the NVE benchmark (this folder is on sys.path)

TEMPERATURE, PRESSURE = 100.0, 100.0  # K, bar


def ours(atoms, steps, integrator):
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, shift=False)
    md = sims.MD(atoms, pot, integrator, dtype=torch.float64, record_every=0)
    pressure = md.pressure() / units.bar
    md.run(2)
    t = time.perf_counter()
    md.run(steps)
    return len(atoms) * steps / (time.perf_counter() - t), pressure


def ase_run(atoms, steps):
    atoms = atoms.copy()
    atoms.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5, smooth=False)
    pressure = -np.trace(atoms.get_stress(voigt=False, include_ideal_gas=True)) / 3 / units.bar
    dyn = IsotropicMTKNPT(atoms, timestep=5.0 * units.fs, temperature_K=TEMPERATURE,
                          pressure_au=PRESSURE * units.bar, tdamp=100 * units.fs, pdamp=1000 * units.fs)
    dyn.run(2)
    t = time.perf_counter()
    dyn.run(steps)
    return len(atoms) * steps / (time.perf_counter() - t), pressure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 864])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"ase {version('ase')}, 1 thread, float64")
    print("| N | ASE MTK | ours MTK | ours C-rescale | ours NVE | MTK ours/ASE | MTK / NVE (ours) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        atoms = system(n)
        r_ase, p_ase = ase_run(atoms, args.steps)
        r_mtk, p_ours = ours(atoms, args.steps, sims.MTK(5.0, temperature=TEMPERATURE, pressure=PRESSURE,
                                                          tau=100.0, tau_p=1000.0))
        assert abs(p_ours - p_ase) < 1e-9, f"start pressures differ: ours {p_ours} bar, ASE {p_ase} bar"
        rescale = sims.CellRescaling(sims.NoseHooverChain(5.0, TEMPERATURE, tau=100.0), pressure=PRESSURE,
                                     tau_p=1000.0, compressibility=1e-4)
        r_cr, _ = ours(atoms, args.steps, rescale)
        r_nve, _ = ours(atoms, args.steps, sims.VelocityVerlet(5.0))
        print(f"| {n} | {r_ase:.3g} | {r_mtk:.3g} | {r_cr:.3g} | {r_nve:.3g} | {r_mtk / r_ase:.1f}x "
              f"| {r_mtk / r_nve:.2f} |")


if __name__ == "__main__":
    main()
