"""Benchmark: a DANN trained on the torsional isomerisation model gives its quantum yield, and what it costs.

Steps (all on CPU, one thread):

1. Data: FSSH trajectories of :class:`sims.surface_hopping.TorsionalIsomerisation` (Wigner at
   300 K, Langevin bath 1/100 fs, EDC), geometries every 20 steps, labelled with energies,
   Hellmann-Feynman gradients and coupling numerators (:func:`learners.diabatic.label_frames`).
   Training and validation split by trajectory (:func:`learners.splits.group_split`, 1/6 of the
   trajectories validate): the snapshots of one trajectory are 20 steps (5 fs) apart, so a
   frame-wise split validates on neighbours of training frames, which made the validation error
   (and the best epoch it picks) optimistic.
2. Train :class:`learners.diabatic.DiabaticPaiNN` (float32) through the Trainer; the weights are
   kept in ``--out`` under a name with a digest of the training and validation geometries, and
   reused by a rerun on the same data.
3. Yields: the same initial conditions (Wigner, 300 K) run with FSSH on the analytic model and on the
   DANN (:class:`learners.diabatic.DANNHamiltonian`), same settings; the yield is the trans fraction
   at the end, with its binomial standard error. The analytic model also runs a larger ensemble.
4. Cost: one FSSH step of the batch with each model, and the cost of one labelled geometry
   (energies, gradients, couplings of two states) for the analytic model, the DANN and a quantum
   chemistry labeler, PySCF SA-2-CASSCF(2,2)/6-31G on ethylene (6 atoms, like the DANN's input size
   here; energies, two nuclear gradients and the 0-1 coupling).

Run: ``.venv/bin/python benchmarks/dann_yield.py [--out /tmp/dann_bench] [--epochs 30]
[--n-data 100] [--n-yield 200] [--n-analytic 1000] [--duration 300]``.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from learners.diabatic import (DANNHamiltonian, DiabaticPaiNN, evaluate_diabatic, fit_diabatic, label_frames,
                               load_diabatic, save_diabatic)
from learners.data import data_digest
from learners.potentials.batch import collate_atoms
from learners.splits import group_split
from learners.trainer import Trainer
from sims.hopping_ensemble import normal_mode_sample
from sims.surface_hopping import AU_TIME_FS, FSSH, TorsionalIsomerisation

STEP = 10.0  # a.u. (0.24 fs)
BATH = dict(friction=0.01 * AU_TIME_FS, temperature=300.0, decoherence="edc")


def training_geometries(model, n_traj, duration, seed):
    """``(n_snapshots * n_traj, 3 N)`` bohr geometries and the ``(n_snapshots * n_traj,)`` trajectory of each."""
    x, p = normal_mode_sample(model, model.geometry(), n_traj, temperature=300.0, seed=(seed, 0))
    fssh = FSSH(model, x, p, initial_state=1, timestep=STEP, seed=(seed, 1), **BATH)
    snaps = []
    for k in range(int(duration / AU_TIME_FS / STEP)):
        fssh.step()
        if k % 20 == 0:
            snaps.append(fssh.x.clone())
    return torch.cat(snaps), np.tile(np.arange(n_traj), len(snaps))


def weights_file(out: Path, args: argparse.Namespace, train: torch.Tensor, val: torch.Tensor) -> Path:
    """Where the DANN of these settings fitted on ``train`` and validated on ``val`` (geometries, bohr) is
    kept: named by a digest of both, so that weights of other data (another split, duration or seed;
    those of the frame-wise split of before) are never read back for these."""
    digest = data_digest(train.numpy(), val.numpy())[:12]
    return out / f"dann_{args.features}_{args.epochs}_{args.seed}_{digest}.dann.pt"


def run_yield(model, x, p, n_steps, seed, dtype):
    fssh = FSSH(model, x.to(dtype), p.to(dtype), initial_state=1, timestep=STEP, seed=seed, dtype=dtype, **BATH)
    start = time.perf_counter()
    for _ in range(n_steps):
        fssh.step()
    seconds = time.perf_counter() - start
    trans = TorsionalIsomerisation().is_product(fssh.x.double())
    y = float(trans.double().mean())
    return y, math.sqrt(y * (1 - y) / x.shape[0]), float(fssh.populations()[0][1]), seconds / n_steps, fssh


def pyscf_label_seconds(repeat=1):
    from ase.build import molecule

    from sims.pyscf_casscf import sa_casscf_labels

    atoms = molecule("C2H4")
    return min(_timed(lambda: sa_casscf_labels(atoms, basis="6-31g")) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/dann_bench")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--n-data", type=int, default=100, help="trajectories giving training geometries")
    parser.add_argument("--n-yield", type=int, default=200, help="trajectories per model in the paired comparison")
    parser.add_argument("--n-analytic", type=int, default=1000, help="trajectories of the larger analytic run")
    parser.add_argument("--duration", type=float, default=300.0, help="fs per trajectory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-pyscf", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = TorsionalIsomerisation()
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)")

    start = time.perf_counter()
    geoms, trajectory = training_geometries(model, args.n_data, args.duration, args.seed)
    frames = label_frames(model, geoms, model.numbers)
    fit, held = group_split(trajectory, (5 / 6, 1 / 6), seed=args.seed)
    train, val = [frames[i] for i in fit], [frames[i] for i in held]
    print(f"data: {len(train)} training + {len(val)} validation geometries (trajectories "
          f"{len(np.unique(trajectory[fit]))} + {len(np.unique(trajectory[held]))}) in {time.perf_counter() - start:.1f} s")

    net = DiabaticPaiNN(2, cutoff=5.0, n_features=args.features, n_interactions=3, seed=args.seed, dtype=torch.float32)
    weights = weights_file(out, args, geoms[fit], geoms[held])
    if weights.exists():
        net = load_diabatic(weights)
        print(f"weights read from {weights}")
    else:
        start = time.perf_counter()
        trainer = Trainer(epochs=args.epochs, batch_size=50, lr=2e-3, eval_grad=True, monitor="energies_mae")
        fit_diabatic(net, train, val, trainer=trainer)
        save_diabatic(net, weights)
        print(f"training: {args.epochs} epochs in {time.perf_counter() - start:.0f} s; best epoch {trainer.best_epoch_}")
    net.eval()
    vb = collate_atoms(val, net.cutoff, dtype=torch.float32, labels=False)
    pred = evaluate_diabatic(net, vb)
    ref_e = torch.as_tensor(np.stack([f.info["energies"] for f in val]))
    ref_g = torch.as_tensor(np.concatenate([f.arrays["gradients"] for f in val]))
    print(f"validation MAE: energies {float((pred['energies'].double() - ref_e).abs().mean()) * 1000:.1f} meV, "
          f"gap {float((pred['energies'].diff().double() - ref_e.diff()).abs().mean()) * 1000:.1f} meV, "
          f"gradients {float((pred['gradients'].double() - ref_g).abs().mean()):.3f} eV/Å "
          f"(reference spread: energies {float(ref_e.std(0).mean()):.2f} eV, gradients {float(ref_g.abs().mean()):.2f} eV/Å)")

    dann = DANNHamiltonian(net, model.numbers, masses=model.masses, like=model)
    n_steps = int(args.duration / AU_TIME_FS / STEP)
    x, p = normal_mode_sample(model, model.geometry(), max(args.n_yield, args.n_analytic), temperature=300.0,
                              seed=(args.seed, 7))
    ya, ea, s1a, step_a, _ = run_yield(model, x[:args.n_yield], p[:args.n_yield], n_steps, (args.seed, 8), torch.float64)
    yd, ed, s1d, step_d, _ = run_yield(dann, x[:args.n_yield], p[:args.n_yield], n_steps, (args.seed, 8), torch.float32)
    yl, el, s1l, _, _ = run_yield(model, x, p, n_steps, (args.seed, 9), torch.float64)
    print(f"\n| model | trajectories | trans yield | S1 left at {args.duration:.0f} fs | s per FSSH step of the batch |")
    print("|---|---|---|---|---|")
    print(f"| analytic | {args.n_yield} | {ya:.3f} +- {ea:.3f} | {s1a:.3f} | {step_a:.4f} |")
    print(f"| DANN | {args.n_yield} (same initial conditions) | {yd:.3f} +- {ed:.3f} | {s1d:.3f} | {step_d:.4f} |")
    print(f"| analytic | {x.shape[0]} | {yl:.3f} +- {el:.3f} | {s1l:.3f} | — |")
    se = math.hypot(ed, el)
    # yields of 0 or 1 on both sides have no binomial error: say so rather than divide by it
    z = f"{(yd - yl) / se:+.1f} combined standard errors" if se > 0 else "both yields without a binomial error"
    print(f"DANN - analytic ({x.shape[0]}): {yd - yl:+.3f} ({z})")

    # Cost of one labelled geometry: energies, gradients and couplings of both states.
    xb = x[:200]
    best_a = min(_timed(lambda: model.adiabatic(xb)) for _ in range(3)) / xb.shape[0]
    best_d = min(_timed(lambda: dann.adiabatic(xb.float())) for _ in range(3)) / xb.shape[0]
    print(f"\nper geometry (batch of 200): analytic {best_a * 1e6:.1f} us, DANN {best_d * 1e6:.1f} us "
          f"(analytic / DANN {best_a / best_d:.2f})")
    if not args.skip_pyscf:
        t_pyscf = pyscf_label_seconds()
        print(f"PySCF SA-2-CASSCF(2,2)/6-31G on ethylene: {t_pyscf:.2f} s per geometry "
              f"(PySCF / DANN {t_pyscf / best_d:.3g})")


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
