"""Study: adversarial vs MD vs random sampling in the active-learning loop, ammonia inversion, GFN2-xTB.

The claim of Schwalbe-Koda, Tan & Gómez-Bombarelli (Nat. Commun. 12, 5104 (2021), arXiv:2101.11588):
a committee trained on thermal frames of one well, grown by labelling geometries that adversarial
attacks on its uncertainty propose, learns the barrier faster (per label) than one grown from MD at
the training temperature or from random displacements of training frames.

Why ammonia: its inversion is a real barrier (GFN2-xTB: 25.6 kJ/mol = 0.27 eV = 10 kT at 300 K,
docs/free_energy.md), so 300 K MD in one pyramidal well never reaches the planar transition state,
and with 4 atoms the GFN2-xTB labels (about 3 ms each, ``tblite``) and the five-member committee
stay cheap enough for 5 seeds x 3 samplers on 2 cores. Butane's torsion would need 14 atoms and
dihedral attacks; the N-height of ammonia is reached by plain Cartesian attacks.

Per seed:

- **training data**: GFN2-xTB Langevin MD at 300 K (``sims.MD`` on
  :class:`sims.potentials.CalculatorPotential`), 0.5 fs steps, a frame every 10 fs after 1 ps,
  all in one well (checked: the N height keeps its sign);
- **test set** (shared by all seeds and samplers): a relaxed GFN2-xTB scan of the inversion
  coordinate (21 heights of N above the H plane, from the pyramid through the planar transition
  state to the mirror pyramid), so it measures errors *along* the barrier (no thermal copies: those
  would favour the random sampler, whose displacements look like them);
- **loop** (:class:`learners.active.ActiveLearning`): a committee of 5 PaiNNs, ``generations``
  rounds of ``per_generation`` labels, each sampler with the same training frames, committee seeds
  and label budget.

Prints the force and energy MAE on the barrier set per generation (mean and spread over seeds) and
the markdown table of ``benchmarks/README.md``. Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/active_learning_xtb.py [--seeds 5] [--out al_xtb]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

SAMPLERS = ("adversarial", "md", "random")


def gfn2():
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", verbosity=0)


def labelled(atoms, calc):
    """A copy of ``atoms`` holding ``calc``'s energy and forces."""
    from ase.calculators.singlepoint import SinglePointCalculator

    out = atoms.copy()
    out.calc = calc
    energy, forces = out.get_potential_energy(), out.get_forces()
    out.calc = SinglePointCalculator(out, energy=energy, forces=forces)
    return out


def height(positions: np.ndarray) -> np.ndarray:
    """Signed height (Å) of N (atom 0) above the plane of the three H: the inversion coordinate."""
    p = np.asarray(positions).reshape(-1, 4, 3)
    normal = np.cross(p[:, 2] - p[:, 1], p[:, 3] - p[:, 1])
    return ((p[:, 0] - p[:, 1]) * normal).sum(-1) / np.linalg.norm(normal, axis=-1)


def minimum():
    from ase.build import molecule
    from ase.optimize import BFGS

    nh3 = molecule("NH3")
    nh3.calc = gfn2()
    BFGS(nh3, logfile=None).run(fmax=1e-3)
    nh3.calc = None
    return nh3


def barrier_set(*, points: int = 21):
    """A relaxed GFN2-xTB scan of the N height through the planar geometry, labelled: the geometries
    along the barrier, from one pyramid through the planar transition state to its mirror image.

    At each height the N atom is fixed and the three H move in the plane ``height`` below it
    (ASE ``FixAtoms`` + ``FixedPlane``), so BFGS relaxes everything but the inversion coordinate.
    """
    from ase.constraints import FixAtoms, FixedPlane
    from ase.optimize import BFGS

    start = minimum()
    h_eq = float(height(start.positions)[0])
    calc = gfn2()
    scan = []
    for h in np.linspace(abs(h_eq), -abs(h_eq), points):
        atoms = start.copy()
        plane = atoms.positions[1:, 2].mean()
        atoms.positions[0, 2] = plane + h * np.sign(h_eq)     # the H plane's normal is z (ase's NH3)
        atoms.set_constraint([FixAtoms([0]), FixedPlane([1, 2, 3], (0, 0, 1))])
        atoms.calc = calc
        BFGS(atoms, logfile=None).run(fmax=1e-3, steps=300)
        atoms.set_constraint()
        scan.append(labelled(atoms, calc))
    return scan


def thermal_frames(seed: int, *, n_frames: int = 60, temperature: float = 300.0):
    """GFN2-xTB Langevin frames of one well: 1 ps equilibration, then a frame every 10 fs."""
    from sims import MD
    from sims.integrators import Langevin
    from sims.potentials import CalculatorPotential

    md = MD(minimum(), CalculatorPotential(gfn2()), Langevin(0.5, temperature, 0.02), temperature=temperature,
            seed=seed, record_every=20, dtype=torch.float64)
    md.run(2000)
    md.trajectory.clear()
    md.run(20 * n_frames)
    frames = list(md.trajectory)[-n_frames:]
    h = height(np.stack([f.positions for f in frames]))
    if not (np.all(h > 0) or np.all(h < 0)):
        raise RuntimeError("the 300 K training trajectory crossed the barrier; it must stay in one well")
    return frames


def committee_factory(seed: int):
    from learners.potentials import Committee, PaiNN

    return Committee.build(PaiNN, k=5, seed=seed, cutoff=4.0, n_features=16, n_rbf=16, n_interactions=2)


def run_one(sampler: str, seed: int, train, test, out: Path, args) -> list[dict]:
    from learners.active import ActiveLearning
    from learners.trainer import Trainer

    loop = ActiveLearning(committee_factory, gfn2(), train, test, generations=args.generations,
                          per_generation=args.per_generation, sampler=sampler, seed=seed,
                          workdir=out / f"{sampler}_{seed}", kT=args.kT, attack_steps=40, attack_lr=1e-2,
                          temperature=300.0, md_steps=args.md_steps, timestep=0.5, displacement=args.displacement,
                          cluster=args.cluster,
                          trainer=Trainer(epochs=args.epochs, batch_size=16, lr=5e-3, eval_grad=True, seed=seed))
    return loop.run(progress=False).log_


def table(results: dict, generations: int, per_generation: int) -> str:
    lines = ["| labels | " + " | ".join(f"{s} force MAE (meV/Å)" for s in SAMPLERS) + " | "
             + " | ".join(f"{s} energy MAE (meV/atom)" for s in SAMPLERS) + " |",
             "|---" * (1 + 2 * len(SAMPLERS)) + "|"]
    for g in range(generations + 1):
        cells = []
        for key in ("forces_mae", "energy_mae"):
            for s in SAMPLERS:
                v = 1000 * np.array([log[g][key] for log in results[s].values()])
                cells.append(f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f}")
        lines.append(f"| {g * per_generation} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--per-generation", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--kT", type=float, default=0.05, help="eV per atom (barrier 0.27 eV / 4 atoms)")
    parser.add_argument("--md-steps", type=int, default=100, help="0.5 fs steps of the MD sampler")
    parser.add_argument("--displacement", type=float, default=0.05, help="Å, the random sampler's spread")
    parser.add_argument("--cluster", action="store_true", help="k-means clustering in the selection")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--out", default="al_xtb")
    parser.add_argument("--report", nargs="+", metavar="DIR",
                        help="only print the table of finished runs in these --out folders (runs split over processes)")
    args = parser.parse_args()
    if args.report:
        merged: dict = {s: {} for s in SAMPLERS}
        for folder in args.report:
            for s, runs in json.loads((Path(folder) / "results.json").read_text()).items():
                merged[s].update(runs)
        print(table(merged, args.generations, args.per_generation))
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    test = barrier_set()
    h = height(np.stack([f.positions for f in test]))
    e = np.array([f.get_potential_energy() for f in test])
    print(f"scan: heights {np.round(h[[0, len(h) // 2, -1]], 3).tolist()} Å, barrier {e.max() - e[0]:.3f} eV "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    results: dict = {s: {} for s in SAMPLERS}
    saved = out / "results.json"
    if saved.exists():
        results.update(json.loads(saved.read_text()))
    for seed in range(args.seeds):
        train = thermal_frames(seed)
        for sampler in args.samplers.split(","):
            if str(seed) in results[sampler]:
                continue
            t = time.perf_counter()
            log = run_one(sampler, seed, train, test, out, args)
            results[sampler][str(seed)] = [{k: g[k] for k in ("forces_mae", "energy_mae", "labels_used")}
                                           for g in log]
            saved.write_text(json.dumps(results, indent=1))
            print(f"seed {seed} {sampler}: force MAE " + " -> ".join(f"{1000 * g['forces_mae']:.0f}" for g in log)
                  + f" meV/Å ({time.perf_counter() - t:.0f} s)", flush=True)
    done = {s: r for s, r in results.items() if r}
    print(table({s: {k: v for k, v in done[s].items()} for s in done}, args.generations, args.per_generation)
          if len(done) == len(SAMPLERS) else done)


if __name__ == "__main__":
    main()
