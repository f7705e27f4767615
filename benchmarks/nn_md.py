"""Benchmark: neural-potential MD in sims against the same model driven through ASE, and committee cost.

Rows (peer / ours: above 1 means ours is faster):
1. NVE MD of argon (fcc, 5.4 Å cubic cell repeated ``--repeat`` times) with untrained PaiNN, at its
   defaults (128 features, 20 radial functions, 5 interactions, 5 Å cutoff) and tiny (16 features,
   2 interactions, where per-step overheads show), ``--steps`` steps:
   ``sims.MD`` (torch state, Verlet list with a 1 Å skin, one autograd pass per step) vs ASE's
   ``VelocityVerlet`` with :class:`learners.potentials.Calculator` (one structure per call, the
   neighbour list rebuilt at each call). Same start velocities, float64; the final positions must
   agree to 1e-6 Å.
2. A committee of K = 5 default PaiNN models through one ``Calculator`` call (one neighbour list,
   the members' forward and backward passes in turn) vs K calls of single-model calculators; the
   issue's goal is committee <= 1.2 K single. The task column gives the committee cost in units
   of one single-model call.

Times are the best of ``--repeat-timing`` alternating runs (wall clock; the machine is shared). Run:
``.venv/bin/python benchmarks/nn_md.py [--repeat 3] [--steps 20] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet as AseVerlet

import sims
from learners.potentials import Calculator, Committee, PaiNN


def best_of(fns, repeat):
    best = [float("inf")] * len(fns)
    out = [None] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            out[k] = fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return out, best


def row(task, n, ours, peer, agree):
    print(f"| {task} | {n} | {ours:.3f} | {peer:.3f} | {peer / ours:.2f} | {agree} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="supercell repeats of the 4-atom cubic cell")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeat-timing", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True).repeat(args.repeat)
    atoms.rattle(0.05, seed=0)
    MaxwellBoltzmannDistribution(atoms, temperature_K=60.0, rng=np.random.default_rng(0))
    dt = 2.0
    print(f"# {platform.platform()}, torch {torch.__version__}, {args.threads} thread(s), {len(atoms)} atoms")
    print("| task | n | ours (s) | peer (s) | peer / ours | agree |")
    print("|---|---|---|---|---|---|")
    for label, kw in (("defaults", {}), ("tiny: 16 features, 2 interactions", {"n_features": 16, "n_interactions": 2})):
        model = PaiNN(cutoff=5.0, dtype=torch.float64, **kw)
        # Small outputs keep the untrained model's forces in a physical range, so MD stays stable.
        model.energy_scale.fill_(0.01)

        def ours():
            md = sims.MD(atoms.copy(), model, sims.VelocityVerlet(timestep=dt), dtype=torch.float64, record_every=0)
            md.run(args.steps)
            return md.positions_array()

        def peer():
            a = atoms.copy()
            a.calc = Calculator(model)
            AseVerlet(a, timestep=dt * units.fs).run(args.steps)
            return a.positions

        (p_ours, p_peer), (t_ours, t_peer) = best_of([ours, peer], args.repeat_timing)
        err = float(np.abs(p_ours - p_peer).max())
        row(f"PaiNN ({label}) NVE MD, {args.steps} steps: sims.MD vs ASE VelocityVerlet + Calculator", len(atoms),
            t_ours, t_peer, f"max dx {err:.1e} Å {'ok' if err < 1e-6 else 'MISMATCH'}")

    members = [PaiNN(cutoff=5.0, seed=s) for s in range(args.k)]
    committee_calc = Calculator(Committee(members))
    single_calcs = [Calculator(m) for m in members]

    def together():
        committee_calc.calculate(atoms, ["energy", "forces"])
        return committee_calc.results["forces"]

    def one_by_one():
        f = []
        for calc in single_calcs:
            calc.calculate(atoms, ["energy", "forces"])
            f.append(calc.results["forces"])
        return np.mean(f, axis=0)

    (f_c, f_s), (t_c, t_s) = best_of([together, one_by_one], args.repeat_timing)
    err = float(np.abs(f_c - f_s).max())
    row(f"Committee K={args.k} through ASE: one call vs K single-model calls "
        f"(committee = {args.k * t_c / t_s:.2f} x single)", len(atoms), t_c, t_s,
        f"max dF {err:.1e} {'ok' if err < 1e-4 else 'MISMATCH'}")

if __name__ == "__main__":
    main()
