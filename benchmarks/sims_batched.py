"""Benchmark: many small replicas in one batched run (sims.batch.BatchMD) against one sims.MD run each.

256 replicas of 64 LJ argon atoms (simple cubic start at liquid density 0.021 1/Å^3, rattled per
replica; sigma 3.4 Å, epsilon 0.0104 eV, cutoff 8.5 Å, skin 1 Å or ``--skin``), Langevin at 90 K (friction
0.02/fs, 5 fs steps), one seed per replica. The batched run and the sequential runs do the same
steps on the same replicas; every run's final positions must agree with the eager batched run's to
1e-8 Å (float64: the same dynamics, see :mod:`sims.batch`). Both are timed after a two-step warm-up.
The issue's goal is a ratio of at least 20x. ``--npt`` wraps the thermostat in stochastic cell
rescaling (:class:`sims.barostats.CellRescaling`, 100 bar, tau_p 500 fs, each replica its own cell):
the batched barostat against the same barostat run replica by replica.

``--compile`` adds the compiled runs: ``BatchMD(compiled=True)`` (the fused step for the whole batch) and one
``sims.MD(compiled=True)`` per replica (the fused single-system step), so that the batched compiled run is set
against both the issue's baseline (sequential eager ``sims.MD``) and the like-for-like one (sequential compiled);
compiling is in the untimed warm-up. ``--npt`` is eager only (the fused step takes no barostat).

Times are CPU seconds (``process_time``: the machine's cores are shared, wall time swings with the load; wall
seconds are printed too). ``--repeats R`` times every variant R times, interleaved (fresh runs each time, the same
steps), and prints the range.

``--breakdown`` (with ``--compile``) then runs the batched compiled run once more with CPU timers around the three
calls that do most of a step and prints where its steps go (:func:`breakdown`): the fused step's compiled call (and
its time per pair of the list), the Langevin noise draws, the neighbour-list updates (the patches of rebuilt systems'
parts) and the rest (the driver's Python).

Run: ``.venv/bin/python benchmarks/sims_batched.py [--replicas 256] [--atoms-side 4] [--steps 100]
[--threads 1] [--device cuda] [--dtype float64] [--check-every 10] [--skin 1.0] [--batch-skin S] [--compile]
[--repeats 1] [--breakdown] [--npt]``. ``--batch-skin`` gives the batched runs another skin than the sequential ones
(the skin is a setting of each run: a batch of many small systems rebuilds some system's list on almost every step at
1 Å).
With ``--sequential-sample K`` only K of the sequential runs are timed and the sequential time is scaled to all
replicas (the check of equal positions then covers those K).
"""

from __future__ import annotations

import argparse
import platform
import time
from importlib.metadata import version

import numpy as np
import torch
from ase import Atoms

import sims
from sims.batch import BatchMD
from sims.potentials import LennardJones

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def replicas(n: int, side: int) -> list[Atoms]:
    """``n`` boxes of ``side**3`` argon atoms on a simple cubic lattice at 0.021 1/Å^3, each rattled by its own
    seed."""
    spacing = (1 / 0.021) ** (1 / 3)
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3) * spacing
    out = []
    for k in range(n):
        atoms = Atoms(f"Ar{side ** 3}", positions=grid, cell=np.eye(3) * side * spacing, pbc=True)
        atoms.rattle(0.1, seed=k)
        out.append(atoms)
    return out


def sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed_run(md, steps: int, device) -> tuple[float, float]:
    """CPU and wall seconds of ``md.run(steps)`` after two warm-up steps (a sims.MD or a BatchMD)."""
    md.run(2)
    sync(device)
    cpu, wall = time.process_time(), time.perf_counter()
    md.run(steps)
    sync(device)
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=256)
    parser.add_argument("--atoms-side", type=int, default=4, help="atoms per replica = side^3 (default 64)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=sorted(_DTYPES))
    parser.add_argument("--check-every", type=int, default=10)
    parser.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin of every run, Å")
    parser.add_argument("--batch-skin", type=float, default=None,
                        help="another skin for the batched runs only, Å (default --skin)")
    parser.add_argument("--sequential-sample", type=int, default=0,
                        help="time only this many sequential runs and scale (0: all)")
    parser.add_argument("--compile", action="store_true", help="also the compiled runs (batched and sequential)")
    parser.add_argument("--repeats", type=int, default=1, help="time every variant this many times, interleaved")
    parser.add_argument("--breakdown", action="store_true",
                        help="with --compile: where the batched compiled run's steps go (CPU timers)")
    parser.add_argument("--npt", action="store_true", help="constant pressure: CellRescaling around the thermostat")
    args = parser.parse_args()
    if args.breakdown and not args.compile:
        parser.error("--breakdown profiles the batched compiled run: add --compile")
    if args.npt and args.compile:
        parser.error("--npt runs eagerly only: the fused compiled step takes VelocityVerlet or Langevin, no barostat")
    torch.set_num_threads(args.threads)
    dtype, device = _DTYPES[args.dtype], args.device
    systems = replicas(args.replicas, args.atoms_side)
    seeds = list(range(args.replicas))
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, dtype=dtype, device=device)
    n_seq = args.sequential_sample or args.replicas
    batch_skin = args.skin if args.batch_skin is None else args.batch_skin

    def integrator():
        thermostat = sims.Langevin(timestep=5.0, temperature=90.0, friction=0.02)
        if not args.npt:
            return thermostat
        from sims.barostats import CellRescaling

        return CellRescaling(thermostat, pressure=100.0, tau_p=500.0, compressibility=1e-4)

    def batched(compiled: bool):
        md = BatchMD(systems, pot, integrator(), temperature=90.0, seed=seeds, check_every=args.check_every,
                     skin=batch_skin, compiled=compiled, device=device, dtype=dtype)
        cpu, wall = timed_run(md, args.steps, device)
        return cpu, wall, torch.split(md.state.positions.detach().cpu().double(), md.state.atoms_per_system().tolist())

    def sequential(compiled: bool):
        cpu = wall = 0.0
        final = []
        for k in range(n_seq):
            md = sims.MD(systems[k], pot, integrator(), temperature=90.0, seed=seeds[k], check_every=args.check_every,
                         skin=args.skin, compiled=compiled, device=device, dtype=dtype)
            c, w = timed_run(md, args.steps, device)
            cpu, wall = cpu + c, wall + w
            final.append(md.state.positions.detach().cpu().double())
        scale = args.replicas / n_seq
        return cpu * scale, wall * scale, final

    variants = {"batched": lambda: batched(False), "sequential": lambda: sequential(False)}
    if args.compile:
        variants |= {"batched compiled": lambda: batched(True), "sequential compiled": lambda: sequential(True)}
        # Compile once, untimed (about a minute cold on this machine, seconds with inductor's cache warm).
        BatchMD(systems[:2], pot, integrator(), temperature=90.0, seed=seeds[:2], skin=batch_skin, compiled=True,
                device=device, dtype=dtype).run(3)
        sims.MD(systems[0], pot, integrator(), temperature=90.0, seed=0, skin=args.skin, compiled=True,
                device=device, dtype=dtype).run(3)
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    max_dx = 0.0
    for _ in range(args.repeats):
        finals = {}
        for name, run in variants.items():
            c, w, finals[name] = run()
            cpu[name].append(c)
            wall[name].append(w)
        reference = finals["batched"]  # every variant against the eager batched run, replica by replica
        for name, final in finals.items():
            max_dx = max(max_dx, max(float((x - reference[k]).abs().max()) for k, x in enumerate(final)))
    if dtype == torch.float64:
        assert max_dx < 1e-8, f"the runs disagree by {max_dx} Å"
    n_atoms = args.replicas * args.atoms_side ** 3
    dev = torch.cuda.get_device_name() if device.startswith("cuda") else (platform.processor() or platform.machine())
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {dev}, torch {torch.__version__}, ase {version('ase')}, "
          f"{args.threads} thread(s), {args.dtype}, skin {args.skin} Å (batched {batch_skin} Å), "
          f"check_every={args.check_every}"
          f"{', NPT' if args.npt else ''}; {args.replicas} x {args.atoms_side ** 3} atoms, {args.steps} steps, "
          f"sequential runs timed: {n_seq} of {args.replicas}; {args.repeats} interleaved repeat(s); max dx of every "
          f"run against the eager batched one {max_dx:.1e} Å")

    def span(values: list[float], fmt: str = ".2f") -> str:
        lo, hi = min(values), max(values)
        return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}-{hi:{fmt}}"

    print("| run | CPU s | wall s | atom-steps/CPU s |")
    print("|---|---|---|---|")
    for name in variants:
        rate = [n_atoms * args.steps / c for c in cpu[name]]
        print(f"| {name} | {span(cpu[name])} | {span(wall[name])} | {span(rate, '.3g')} |")
    print("| ratio (CPU time, each repeat's own pair) | range |")
    print("|---|---|")
    pairs = [("sequential", "batched")]
    if args.compile:
        pairs += [("sequential", "batched compiled"), ("sequential compiled", "batched compiled"),
                  ("batched", "batched compiled"), ("sequential", "sequential compiled")]
    for slow, fast in pairs:
        print(f"| {slow} / {fast} | {span([a / b for a, b in zip(cpu[slow], cpu[fast])], '.1f')}x |")
    if args.breakdown:
        print(breakdown(BatchMD(systems, pot, integrator(), temperature=90.0, seed=seeds, check_every=args.check_every,
                                skin=batch_skin, compiled=True, device=device, dtype=dtype), args.steps))


def breakdown(md: BatchMD, steps: int) -> str:
    """Where ``md.run(steps)`` (a ``BatchMD(compiled=True)``, after two warm-up steps) spends its CPU time, ms a step:
    the fused step's compiled call (``sims.md._fused_step()``'s function, with the host read of its result), the
    Langevin noise draws (``md.integrator.noise``) and the neighbour-list updates (``md._pairs``: the patches of
    rebuilt systems' parts), each timed around its call for this run only; the rest is the driver's own Python."""
    import sims.md

    spent = {"fused step (compiled call)": 0.0, "Langevin noise": 0.0, "neighbour-list updates": 0.0}

    def timed(name: str, fn):
        def call(*a, **k):
            start = time.process_time()
            out = fn(*a, **k)
            if name.startswith("fused"):
                out[4].tolist()  # the driver's one host read a step: the step's work is done by then
            spent[name] += time.process_time() - start
            return out
        return call

    kernel, fused_step = sims.md._fused_step(), sims.md._fused_step
    md.integrator.noise = timed("Langevin noise", md.integrator.noise)
    md._pairs = timed("neighbour-list updates", md._pairs)
    sims.md._fused_step = lambda: timed("fused step (compiled call)", kernel)
    try:
        md.run(2)
        spent.update(dict.fromkeys(spent, 0.0))
        builds = md.neighbors.n_partial_builds + md.neighbors.n_builds
        start = time.process_time()
        md.run(steps)
        total = time.process_time() - start
    finally:
        sims.md._fused_step = fused_step
    builds = md.neighbors.n_partial_builds + md.neighbors.n_builds - builds
    n_pairs = int(md.neighbors.pairs.i.numel())
    per_pair = spent["fused step (compiled call)"] / steps / n_pairs * 1e9
    rows = [f"| {name} | {t / steps * 1e3:.2f} |" for name, t in spent.items()]
    rows.append(f"| rest | {(total - sum(spent.values())) / steps * 1e3:.2f} |")
    return "\n".join([f"# breakdown (CPU time): {total / steps * 1e3:.2f} ms a step; {n_pairs} pairs, "
                      f"{per_pair:.1f} ns a pair in the fused step; {builds} list patches or builds in {steps} steps",
                      "| part | ms a step |", "|---|---|", *rows])


if __name__ == "__main__":
    main()
