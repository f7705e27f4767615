"""Benchmark: DiffSim (sims.fit.diffsim) against Iterative Boltzmann Inversion (sims.fit.ibi) on LJ targets.

Targets: 108 argon-like LJ atoms (sigma 3.405 Å, epsilon 0.0104 eV, cutoff 8.5 Å), our own NVT
reference runs at (rho sigma^3, T) = (0.8, 120 K) and (0.7, 150 K); a held-out state (0.75, 135 K)
judges transferability. Cases:

- ``single``: fit the 120 K state alone;
- ``joint``: fit both states at once (DiffSim: one loss over both; IBI: averaged updates, MS-IBI).

Methods: ``diffsim`` (LJ family, RDF loss), ``diffsim+P`` (the same plus the true pressure at
state a as a target: a non-pair observable IBI cannot see), ``ibi`` and ``ibi-lammps`` (the same
IBI with its simulations run by LAMMPS, ``pair_style table``). For each: iterations (epochs), wall time, final RDF error (RMS of g - g_target over the
fitted states, from the fit's last simulation), the virial pressure error at the 120 K state (the
fitted potential's pressure minus the true potential's, in bar, from separate NVT runs), the error
of U(r) (RMS where g > 0.1, in units of epsilon), and the RDF error at the held-out state.
IBI fits a table that reproduces g(r) but not the pressure (it sees only structure); DiffSim on
the LJ family recovers the potential itself.

Run: ``.venv/bin/python benchmarks/diffsim_vs_ibi.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from ase import units
from ase.build import bulk

import sims
from reprs.structure import rdf
from sims.fit import RDFTarget, diffsim, ibi
from sims.potentials import LennardJones

SIGMA, EPSILON, CUTOFF = 3.405, 0.0104, 8.5
F64 = torch.float64
TRUE = LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, dtype=F64)


def liquid(density):
    return bulk("Ar", "fcc", a=(4 / (density / SIGMA ** 3)) ** (1 / 3), cubic=True).repeat(3)


def run(potential, density, temperature, steps, seed=0):
    md = sims.MD(liquid(density), potential, sims.NoseHooverChain(10.0, temperature), temperature=temperature,
                 seed=seed, record_every=0)
    md.run(500)
    md.record_every = 10
    md.run(steps)
    return md.trajectory


def target(density, temperature, steps):
    return RDFTarget.from_frames(run(TRUE, density, temperature, steps), r_max=8.0, bins=80, temperature=temperature)


def pressure(potential, frames, temperature):
    """Mean virial pressure, bar: N kT / V minus a third of the trace of the potential's stress."""
    values = []
    for atoms in frames:
        _, _, stress = sims.energy_and_forces(potential, atoms, stress=True, dtype=F64)
        values.append(len(atoms) * units.kB * temperature / atoms.get_volume() - np.trace(stress) / 3)
    return float(np.mean(values)) / units.bar


def u_error(potential, tgt):
    r = np.linspace(tgt.r[0], CUTOFF - 0.5, 200)
    r = torch.tensor(r[np.interp(r, tgt.r, tgt.g) > 0.1])
    with torch.no_grad():
        du = potential.pair_energy(r, None, None) - TRUE.pair_energy(r, None, None)
    return float(torch.sqrt((du ** 2).mean())) / EPSILON


def rdf_error(potential, tgt, density, steps):
    g = rdf(run(potential, density, tgt.temperature, steps, seed=5), r_max=8.0, bins=80).g
    return float(np.sqrt(np.mean((g - tgt.g) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test, numbers noisy)")
    parser.add_argument("--cases", nargs="+", default=["single", "joint"], choices=["single", "joint"])
    parser.add_argument("--methods", nargs="+", default=["diffsim", "diffsim+P", "ibi", "ibi-lammps"],
                        choices=["diffsim", "diffsim+P", "ibi", "ibi-lammps"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = 800 if args.quick else 3000
    epochs = 8 if args.quick else 30
    iters = 3 if args.quick else 10
    states = {"a": (0.8, 120.0), "b": (0.7, 150.0), "held": (0.75, 135.0)}
    targets = {k: target(d, t, steps) for k, (d, t) in states.items()}
    p_true = pressure(TRUE, run(TRUE, *states["a"], steps, seed=5), states["a"][1])
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}; true pressure at state a: {p_true:.1f} bar")
    print("| case | method | iterations | wall (s) | RDF error (fitted states) | pressure error at a (bar) | "
          "U(r) error (epsilon) | RDF error held-out |")
    print("|---|---|---|---|---|---|---|---|")
    for case, keys in (("single", ["a"]), ("joint", ["a", "b"])):
        if case not in args.cases:
            continue
        fits = [t for k, t in targets.items() if k in keys]
        for method in args.methods:
            t0 = time.perf_counter()
            if method == "diffsim+P":
                fits_p = [RDFTarget(t.r, t.g, t.atoms, t.temperature, pressure=p_true if k == 0 else None)
                          for k, t in enumerate(fits)]
                pot = LennardJones(sigma=0.9 * SIGMA, epsilon=1.15 * EPSILON, cutoff=CUTOFF, dtype=F64)
                res = diffsim(pot, fits_p, epochs=epochs, steps_per_epoch=100, equilibration=50, timestep=10.0,
                              lr={"sigma": 0.03, "epsilon": 1e-4}, seed=1)
                n = epochs
            elif method == "diffsim":
                pot = LennardJones(sigma=0.9 * SIGMA, epsilon=1.15 * EPSILON, cutoff=CUTOFF, dtype=F64)
                res = diffsim(pot, fits, epochs=epochs, steps_per_epoch=100, equilibration=50, timestep=10.0,
                              lr={"sigma": 0.03, "epsilon": 1e-4}, seed=1)
                n = epochs
            else:
                res = ibi(fits, iterations=iters, steps=steps // 2, equilibration=200, timestep=10.0, cutoff=CUTOFF,
                          engine="lammps" if method == "ibi-lammps" else "sims")
                n = iters
            wall = time.perf_counter() - t0
            err = float(np.mean([res.history[-1][f"rdf_rmse_{k}"] for k in range(len(fits))]))
            p_fit = pressure(res.potential, run(res.potential, *states["a"], steps, seed=5), states["a"][1])
            held = rdf_error(res.potential, targets["held"], states["held"][0], steps)
            print(f"| {case} | {method} | {n} | {wall:.0f} | {err:.3f} | {p_fit - p_true:+.0f} | "
                  f"{u_error(res.potential, targets['a']):.3f} | {held:.3f} |", flush=True)


if __name__ == "__main__":
    main()
