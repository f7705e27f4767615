"""Benchmark: a NeuralPair fitted to LJ targets with DiffSim's reweighted gradient, judged on U(r).

Targets are our own NVT runs of argon-like LJ (sigma 3.405 Å, epsilon 0.0104 eV, cutoff 8.5 Å):
a liquid (rho sigma^3 = 0.8, 120 K, 108 atoms) and a supercritical gas (0.2, 180 K, 256 atoms).
A :class:`sims.potentials.NeuralPair` (Gaussian basis, SiLU MLP, soft ``r^-12`` prior) starts from
the Boltzmann inversion of the gas target (of the liquid for a liquid-alone fit, or ``--start``),
``-kT ln g(r)`` (IBI's first table, continued linearly below the first sampled bin), fitted by
least squares (:func:`sims.fit.fit_pair_energy`),
then ``diffsim(gradient="reweight")`` fits it to one or both targets. Every epoch's row, with the
error of U(r) against the true LJ (RMS over the r where the liquid's g > 0.1, both potentials zero
at the cutoff, in units of epsilon), is appended to ``history.jsonl``; at the end the fitted
potential's g at each state (and at a held-out state, ``--held-out``) from a fresh run is
compared with the target's, next to the truth's own run-to-run difference (the noise floor).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diffsim_neural.py --out DIR [--states joint]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

import sims
from reprs.structure import rdf
from sims.fit import RDFTarget, boltzmann_inversion, diffsim, fit_pair_energy
from sims.potentials import LennardJones, NeuralPair, load_potential, save_potential

SIGMA, EPSILON, CUTOFF = 3.405, 0.0104, 8.5
F64 = torch.float64
TRUE = LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, dtype=F64)
#: (rho sigma^3, T [K], fcc repeats, reference steps) of each state point.
STATES = {"liquid": (0.8, 120.0, 3, 4000), "gas": (0.2, 180.0, 4, 8000), "held_out": (0.5, 150.0, 3, 4000)}


def lattice(density: float, repeat: int):
    return bulk("Ar", "fcc", a=(4 / (density / SIGMA ** 3)) ** (1 / 3), cubic=True).repeat(repeat)


def run(potential, state: str, steps: int, seed: int):
    density, temperature, repeat, _ = STATES[state]
    md = sims.MD(lattice(density, repeat), potential, sims.NoseHooverChain(10.0, temperature),
                 temperature=temperature, seed=seed, record_every=0)
    md.run(500)
    md.record_every = 10
    md.run(steps)
    return md.trajectory


def reference(state: str, cache: Path, seed: int = 0, scale: int = 1) -> RDFTarget:
    """The truth's target at ``state`` from ``scale`` times the state's reference steps (cached:
    the g and the last frame)."""
    density, temperature, repeat, steps = STATES[state]
    steps *= scale
    path = cache / f"target_{state}_{steps}_{seed}.npz"
    if path.exists():
        data = np.load(path)
        atoms = lattice(density, repeat)
        atoms.positions = data["positions"]
        return RDFTarget(data["r"], data["g"], atoms, temperature)
    t = RDFTarget.from_frames(run(TRUE, state, steps, seed), r_max=8.0, bins=80, temperature=temperature)
    np.savez(path, r=t.r, g=t.g, positions=t.atoms.positions)
    return t


def u_error(potential, liquid: RDFTarget) -> float:
    """RMS of U - U_LJ over the r where the liquid's g > 0.1, in units of epsilon."""
    r = np.linspace(liquid.r[0], CUTOFF - 0.5, 200)
    r = torch.tensor(r[np.interp(r, liquid.r, liquid.g) > 0.1])
    with torch.no_grad():
        du = potential.pair_energy(r, None, None) - TRUE.pair_energy(r, None, None)
    return float(torch.sqrt((du ** 2).mean())) / EPSILON


def rdf_error(potential, state: str, target: RDFTarget, seed: int) -> tuple[float, np.ndarray]:
    """RMS of g - g_target from a fresh run of the state's reference length, and that g."""
    g = rdf(run(potential, state, STATES[state][3], seed), r_max=8.0, bins=80).g
    return float(np.sqrt(np.mean((g - target.g) ** 2))), g


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--states", choices=["joint", "liquid", "gas"], default="joint")
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-decay", type=float, default=0.98)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 32])
    p.add_argument("--n-basis", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--target-scale", type=int, default=4, help="reference runs this many times longer")
    p.add_argument("--average", type=int, default=30, help="Polyak-average the parameters of the last epochs")
    p.add_argument("--start", choices=["liquid", "gas"], help="the target whose Boltzmann inversion starts the "
                   "network (default the gas when it is fitted, else the liquid)")
    p.add_argument("--no-fit", action="store_true", help="only the Boltzmann-inversion start")
    p.add_argument("--held-out", action="store_true", help="also the RDF error at (0.5, 150 K)")
    p.add_argument("--checks", nargs="+", choices=list(STATES), help="states whose RDF error is measured "
                   "(default liquid, gas and with --held-out the held-out state)")
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[5], help="seeds of the RDF-error runs")
    p.add_argument("--cache", type=Path, help="where targets and the truth's runs are kept (default --out)")
    p.add_argument("--evaluate", action="store_true", help="only measure the saved potential.pt of --out")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache = args.cache or args.out
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    t0 = time.perf_counter()
    targets = {s: reference(s, args.cache, scale=args.target_scale) for s in ("liquid", "gas")}
    print(f"# references {time.perf_counter() - t0:.0f} s")
    if args.evaluate:
        evaluate(load_potential(args.out / "potential.pt", dtype=F64), args, targets, {"states": "saved potential.pt"},
                 "result_eval.json")
        return
    pot = NeuralPair(cutoff=CUTOFF, n_basis=args.n_basis, hidden=args.hidden, prior=(0.01, 3.0), seed=args.seed,
                     dtype=F64)
    # The start knows only the fitted states: the gas's inversion when it is fitted (the dilute one
    # is closer to U), else the liquid's.
    inverted = args.start or ("liquid" if args.states == "liquid" else "gas")
    rms = fit_pair_energy(pot, boltzmann_inversion(targets[inverted], cutoff=CUTOFF), np.linspace(2.8, CUTOFF, 300))
    print(f"# NeuralPair fitted to the inversion: RMS {rms / EPSILON:.4f} epsilon")
    start = u_error(pot, targets["liquid"])
    print(f"# start (Boltzmann inversion of the {inverted}): U error {start:.4f} epsilon")
    fitted = [targets[s] for s in (["liquid", "gas"] if args.states == "joint" else [args.states])]
    log = (args.out / "history.jsonl").open("a")
    t0 = time.perf_counter()

    iterates = []

    def callback(row):
        iterates.append(torch.nn.utils.parameters_to_vector(pot.parameters()).detach().clone())
        row = dict(row, u_error=u_error(pot, targets["liquid"]), wall=time.perf_counter() - t0)
        log.write(json.dumps({k: v for k, v in row.items() if not k.startswith("weights") and not k.startswith("b")})
                  + "\n")
        log.flush()
        print(f"epoch {row['epoch']:.0f} loss {row['loss']:.3e} U error {row['u_error']:.4f} "
              f"wall {row['wall']:.0f} s", flush=True)

    if not args.no_fit:
        diffsim(pot, fitted, epochs=args.epochs, steps_per_epoch=args.steps, equilibration=50, timestep=10.0,
                lr=args.lr, lr_decay=args.lr_decay, momentum=args.momentum, gradient="reweight", width=0.01,
                seed=args.seed, checkpoint=args.out / "fit.pt", callback=callback)
    fit_wall = time.perf_counter() - t0
    u_last = u_error(pot, targets["liquid"])
    if iterates:
        # Polyak averaging: the noisy gradient makes single iterates jitter about the optimum.
        torch.nn.utils.vector_to_parameters(torch.stack(iterates[-args.average:]).mean(0), pot.parameters())
    save_potential(pot, args.out / "potential.pt")
    pot = load_potential(args.out / "potential.pt", dtype=F64)  # its MD runs in float64, as the truth's
    result = {"states": args.states, "args": {k: str(v) for k, v in vars(args).items()}, "u_error_start": start,
              "u_error_last_iterate": u_last, "u_error": u_error(pot, targets["liquid"]), "fit_wall_s": fit_wall}
    evaluate(pot, args, targets, result, "result.json")


def evaluate(pot, args, targets, result, name):
    """RDF errors of ``pot`` and of the truth (the noise floor) at the checked states, U(r) table."""
    result["u_error"] = u_error(pot, targets["liquid"])
    checks = args.checks or ["liquid", "gas"] + (["held_out"] if args.held_out else [])
    for s in checks:
        tgt = targets.get(s) or reference(s, args.cache, scale=args.target_scale)
        for label, potential in (("error", pot), ("floor", TRUE)):
            values = []
            for seed in args.eval_seeds:
                cached = args.cache / f"truth_{s}_{STATES[s][3]}_{seed}.npy"  # the truth's run, shared by fits
                if label == "floor" and cached.exists():
                    g = np.load(cached)
                    err = float(np.sqrt(np.mean((g - tgt.g) ** 2)))
                else:
                    err, g = rdf_error(potential, s, tgt, seed=seed)
                    if label == "floor":
                        np.save(cached, g)
                values.append(err)
                result[f"g_{s}_{label}_{seed}"] = g.tolist()
            result[f"rdf_{label}_{s}"] = float(np.mean(values))
            result[f"rdf_{label}_{s}_runs"] = values
            print(s, label, values, flush=True)
        result[f"g_{s}_target"] = np.column_stack([tgt.r, tgt.g]).tolist()
    r = np.linspace(3.0, CUTOFF, 56)
    with torch.no_grad():
        rt = torch.tensor(r)
        result["u_table"] = np.column_stack([r, pot.pair_energy(rt, None, None).numpy() / EPSILON,
                                             TRUE.pair_energy(rt, None, None).numpy() / EPSILON]).tolist()
    (args.out / name).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "u_table" and not k.startswith("g_")}, indent=1))


if __name__ == "__main__":
    main()
