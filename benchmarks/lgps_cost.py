"""Benchmark: cost of one MD step of Li10GeP2S12 on the teacher (CHGNet) and on PaiNN students.

The same Langevin MD (2 fs, 600 K, float64 positions) on the ordered 50-atom cell
(:func:`learners.potentials.teachers.lgps_cell`) and on its 2 x 2 x 1 supercell (200 atoms), in one
process: ``sims.MD`` driven by CHGNet 0.3.0 through :class:`sims.potentials.CalculatorPotential`
(CHGNet's own graph and autograd forces, float32 inside) and by PaiNN students of the sizes the
example ``examples/lgps_transport.py`` trains (5 Å cutoff; 16 features / 2 interactions, with and
without the ZBL short-range repulsion the example's students carry, 32 / 2, and a 3-member
committee of the first; untrained: the cost does not depend on the weights). Rows
give seconds per step, atom-steps/s and teacher / student (above 1: the student is faster). For
scale, a classical pair potential on LAMMPS runs 3.8e4 atom-steps/s for BKS silica and 1.5e6 for
LJ argon on this machine (``benchmarks/lammps_vs_sims.py``, benchmarks/README.md).

Times are the best of ``--repeat-timing`` runs after one warm-up step.

A second table (``--compare``; ``--compare-only`` skips the first) times the students' step against
the code before the committee shared its work (``tests/learners/painn_reference.py``: each member
with its own pair vectors and radial basis, and the full first vector message) on the 200-atom
supercell: reference, eager and ``PaiNN(compiled=True)`` (eval mode), single model and K=3
committee, runs interleaved (``--rounds`` rounds of ``--steps-compare`` steps, best of) since the
machine is shared; process CPU time and wall time per step, their ratios, and the final positions'
largest difference from the reference after all rounds (the same Langevin noise: round-off only). Run:
``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lgps_cost.py [--steps-teacher 5] [--steps-student 40] [--compare]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

import sims
from learners.potentials import Committee, PaiNN
from learners.potentials.teachers import chgnet_calculator, lgps_cell
from sims.potentials import CalculatorPotential

# The reference is test-support code shared with tests/learners/test_potentials_members.py; the
# repository root makes it importable when this file runs as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.learners.painn_reference import ReferencePotential  # noqa: E402

F64 = torch.float64


def seconds_per_step(atoms, potential, steps: int, repeat: int, dtype) -> float:
    best = float("inf")
    for _ in range(repeat):
        md = sims.MD(atoms.copy(), potential, sims.Langevin(timestep=2.0, temperature=600.0, friction=0.02),
                     temperature=600.0, seed=0, record_every=0, dtype=dtype)
        md.run(1)  # warm-up: first neighbour list, lazy initialisation
        start = time.perf_counter()
        md.run(steps)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def compare(atoms, steps: int, rounds: int) -> None:
    """Reference vs eager vs compiled student steps on ``atoms``, interleaved rounds, best of."""
    members = Committee.build(PaiNN, k=3, seed=0, cutoff=5.0, n_features=16, n_interactions=2, dtype=F64).eval()
    compiled = Committee.build(PaiNN, k=3, seed=0, cutoff=5.0, n_features=16, n_interactions=2, compiled=True,
                               dtype=F64).eval()
    runs = {}
    for label, ref, eager, comp in (("PaiNN 16 / 2", ReferencePotential([members.models[0]]), members.models[0],
                                     compiled.models[0]),
                                    ("committee K=3 of PaiNN 16 / 2", ReferencePotential(list(members.models)),
                                     members, compiled)):
        for kind, potential in (("reference", ref), ("eager", eager), ("compiled", comp)):
            start = time.perf_counter()
            md = sims.MD(atoms.copy(), potential, sims.Langevin(timestep=2.0, temperature=600.0, friction=0.02),
                         temperature=600.0, seed=0, record_every=0, dtype=F64)
            md.run(1)  # warm-up (compiled: the compilation, once for every member)
            if kind == "compiled" and label.startswith("PaiNN"):
                print(f"# compilation and first step: {time.perf_counter() - start:.1f} s", flush=True)
            runs[label, kind] = [md, float("inf"), float("inf")]
    load = [os.getloadavg()]
    for _ in range(rounds):
        for run in runs.values():
            cpu, wall = time.process_time(), time.perf_counter()
            run[0].run(steps)
            run[1] = min(run[1], (time.process_time() - cpu) / steps)
            run[2] = min(run[2], (time.perf_counter() - wall) / steps)
    load.append(os.getloadavg())
    print(f"# load average (1, 5, 15 min) before {load[0]}, after {load[1]}; {rounds} rounds of {steps} steps")
    print("| atoms | potential | path | CPU s/step | wall s/step | atom-steps/s (CPU) | reference / this (CPU) "
          "| (wall) | max |dx| vs reference (Å) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (label, kind), (md, cpu, wall) in runs.items():
        ref_md, ref_cpu, ref_wall = runs[label, "reference"]
        dx = float((md.state.positions - ref_md.state.positions).abs().max())
        print(f"| {len(atoms)} | {label} | {kind} | {cpu:.4f} | {wall:.4f} | {len(atoms) / cpu:.3g} | "
              f"{ref_cpu / cpu:.2f} | {ref_wall / wall:.2f} | {dx:.1e} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-teacher", type=int, default=5)
    parser.add_argument("--steps-student", type=int, default=40)
    parser.add_argument("--repeat-timing", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compare", action="store_true", help="also time reference vs eager vs compiled")
    parser.add_argument("--compare-only", action="store_true", help="only the comparison table")
    parser.add_argument("--steps-compare", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compare or args.compare_only:
        print(f"# {platform.platform()}, torch {torch.__version__}, {args.threads} thread(s); Langevin 2 fs at 600 K")
        compare(lgps_cell(seed=0).repeat((2, 2, 1)), args.steps_compare, args.rounds)
        if args.compare_only:
            return
    students = {"PaiNN 16 features / 2 interactions": PaiNN(cutoff=5.0, n_features=16, n_interactions=2, seed=0,
                                                            dtype=F64),
                "PaiNN 32 features / 2 interactions": PaiNN(cutoff=5.0, n_features=32, n_interactions=2, seed=0,
                                                            dtype=F64),
                "PaiNN 16 / 2 with ZBL repulsion": PaiNN(cutoff=5.0, n_features=16, n_interactions=2, seed=0,
                                                         repulsion="zbl", dtype=F64),
                "committee K=3 of PaiNN 16 / 2": Committee.build(PaiNN, k=3, seed=0, cutoff=5.0, n_features=16,
                                                                 n_interactions=2, dtype=F64)}
    teacher = CalculatorPotential(chgnet_calculator())
    print(f"# {platform.platform()}, torch {torch.__version__}, {args.threads} thread(s); Langevin 2 fs at 600 K")
    print("| cell | atoms | potential | s/step | atom-steps/s | CHGNet / this |")
    print("|---|---|---|---|---|---|")
    for label, atoms in (("unit cell", lgps_cell(seed=0)), ("2x2x1 supercell", lgps_cell(seed=0).repeat((2, 2, 1)))):
        t_teacher = seconds_per_step(atoms, teacher, args.steps_teacher, args.repeat_timing, F64)
        print(f"| {label} | {len(atoms)} | CHGNet 0.3.0 | {t_teacher:.4f} | {len(atoms) / t_teacher:.3g} | 1 |",
              flush=True)
        for name, model in students.items():
            t = seconds_per_step(atoms, model, args.steps_student, args.repeat_timing, F64)
            print(f"| {label} | {len(atoms)} | {name} | {t:.4f} | {len(atoms) / t:.3g} | {t_teacher / t:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
