"""Benchmark: many small replicas in one batched run (sims.batch.BatchMD) against one sims.MD run each.

256 replicas of 64 LJ argon atoms (simple cubic start at liquid density 0.021 1/Å^3, rattled per
replica; sigma 3.4 Å, epsilon 0.0104 eV, cutoff 8.5 Å, skin 1 Å), Langevin at 90 K (friction
0.02/fs, 5 fs steps), one seed per replica. The batched run and the sequential runs do the same
steps on the same replicas; the first replicas' final positions must agree to 1e-8 Å (float64: the
batched run is the same dynamics, see :mod:`sims.batch`). Both are timed after a two-step warm-up.
The issue's goal is a ratio of at least 20x. ``--npt`` wraps the thermostat in stochastic cell
rescaling (:class:`sims.barostats.CellRescaling`, 100 bar, tau_p 500 fs, each replica its own cell):
the batched barostat against the same barostat run replica by replica.

Run: ``.venv/bin/python benchmarks/sims_batched.py [--replicas 256] [--atoms-side 4] [--steps 100]
[--threads 1] [--device cuda] [--dtype float64] [--check-every 10] [--npt]``. With ``--sequential-sample K``
only K of the sequential runs are timed and the sequential time is scaled to all replicas (the
check of equal positions then covers those K).
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
    """``n`` boxes of ``side**3`` argon atoms on a simple cubic lattice at 0.021 1/Å^3, each rattled by its own seed."""
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


def timed_run(md, steps: int, device) -> float:
    """Seconds of ``md.run(steps)`` after two warm-up steps (a sims.MD or a BatchMD)."""
    md.run(2)
    sync(device)
    t = time.perf_counter()
    md.run(steps)
    sync(device)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=256)
    parser.add_argument("--atoms-side", type=int, default=4, help="atoms per replica = side^3 (default 64)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=sorted(_DTYPES))
    parser.add_argument("--check-every", type=int, default=10)
    parser.add_argument("--sequential-sample", type=int, default=0,
                        help="time only this many sequential runs and scale (0: all)")
    parser.add_argument("--npt", action="store_true", help="constant pressure: CellRescaling around the thermostat")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype, device = _DTYPES[args.dtype], args.device
    systems = replicas(args.replicas, args.atoms_side)
    seeds = list(range(args.replicas))
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, dtype=dtype, device=device)

    def integrator():
        thermostat = sims.Langevin(timestep=5.0, temperature=90.0, friction=0.02)
        if not args.npt:
            return thermostat
        from sims.barostats import CellRescaling

        return CellRescaling(thermostat, pressure=100.0, tau_p=500.0, compressibility=1e-4)

    batch = BatchMD(systems, pot, integrator(), temperature=90.0, seed=seeds, check_every=args.check_every,
                    device=device, dtype=dtype)
    t_batch = timed_run(batch, args.steps, device)

    n_seq = args.sequential_sample or args.replicas
    t_seq, max_dx = 0.0, 0.0
    sizes = batch.state.atoms_per_system().tolist()
    final = torch.split(batch.state.positions.detach().cpu().double(), sizes)
    for k in range(n_seq):
        md = sims.MD(systems[k], pot, integrator(), temperature=90.0, seed=seeds[k], check_every=args.check_every,
                     device=device, dtype=dtype)
        t_seq += timed_run(md, args.steps, device)
        max_dx = max(max_dx, float((md.state.positions.detach().cpu().double() - final[k]).abs().max()))
    t_seq *= args.replicas / n_seq
    if dtype == torch.float64:
        assert max_dx < 1e-8, f"batched and sequential runs disagree by {max_dx} Å"
    n_atoms = args.replicas * args.atoms_side ** 3
    dev = torch.cuda.get_device_name() if device.startswith("cuda") else (platform.processor() or platform.machine())
    print(f"# {time.strftime('%Y-%m-%d')}, {dev}, torch {torch.__version__}, ase {version('ase')}, "
          f"{args.threads} thread(s), {args.dtype}, check_every={args.check_every}{', NPT' if args.npt else ''}")
    print("| replicas x atoms | steps | sequential sims.MD (s) | batched BatchMD (s) | ratio | batched atom-steps/s "
          "| max dx (Å) | sequential timed |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.replicas} x {args.atoms_side ** 3} | {args.steps} | {t_seq:.2f} | {t_batch:.2f} | "
          f"{t_seq / t_batch:.1f}x | {n_atoms * args.steps / t_batch:.3g} | {max_dx:.1e} | "
          f"{n_seq} of {args.replicas} |")


if __name__ == "__main__":
    main()
