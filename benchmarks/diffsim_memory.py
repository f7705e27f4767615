"""Benchmark: memory and time of one DiffSim update against the number of differentiated steps.

One epoch of :func:`sims.fit.diffsim` (108 LJ argon atoms, float64, Nose-Hoover chain, 10 fs steps,
RDF sampled every 5 steps) with gradient checkpointing (segments of ~sqrt(n) steps, the default)
and without (one segment: plain backpropagation through the whole window, the peer here). Each
run is a fresh process; its peak resident memory above the same process's memory after a
warm-up epoch of 5 steps is the memory of the update. Both gradients must agree to 1e-8
(checkpointing recomputes, it does not approximate).

Run: ``.venv/bin/python benchmarks/diffsim_memory.py [--steps 50 100 200 400]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from ase.build import bulk
from sims.fit import RDFTarget, diffsim
from sims.potentials import LennardJones
torch.set_num_threads(1)
steps, segment = int(sys.argv[1]), (None if sys.argv[2] == "auto" else int(sys.argv[2]))
atoms = bulk("Ar", "fcc", a=(4 / (0.8 / 3.405 ** 3)) ** (1 / 3), cubic=True).repeat(3)
r = np.linspace(0.05, 7.95, 80)
target = RDFTarget(r, np.where(r > 3.3, 1.0, 0.0), atoms, 120.0)
def epoch(n, seg):
    pot = LennardJones(sigma=3.3, epsilon=0.011, cutoff=8.5, dtype=torch.float64)
    t = time.perf_counter()
    diffsim(pot, target, epochs=1, steps_per_epoch=n, sample_every=5, segment=seg, optimizer="sgd", lr=1e-9,
            timestep=10.0, seed=0)
    return (3.3 - float(pot.sigma.detach())) / 1e-9, time.perf_counter() - t
epoch(5, None)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
grad, seconds = epoch(steps, segment)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mib": (peak - base) / 1024, "seconds": seconds, "grad": grad}))
"""


def run(steps: int, segment: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps), segment], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200, 400])
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}")
    print("| differentiated steps | checkpointed peak (MiB) | full backprop peak (MiB) | memory full / ckpt | "
          "checkpointed (s) | full (s) | time ckpt / full |")
    print("|---|---|---|---|---|---|---|")
    for n in args.steps:
        ck, full = run(n, "auto"), run(n, str(n))
        rel = abs(ck["grad"] - full["grad"]) / abs(full["grad"])
        assert rel < 1e-8, f"gradients differ: {ck['grad']} vs {full['grad']}"
        print(f"| {n} | {ck['mib']:.1f} | {full['mib']:.1f} | {full['mib'] / max(ck['mib'], 1e-3):.1f} | "
              f"{ck['seconds']:.2f} | {full['seconds']:.2f} | {ck['seconds'] / full['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
