"""Photoisomerisation quantum yield of the torsional model: populations and the trans fraction over time.

``sims.surface_hopping.TorsionalIsomerisation`` (a C-N=N-C chain with a conical intersection) is
excited vertically from Wigner-sampled cis geometries at 300 K and run with FSSH (EDC, a Langevin
bath of 1/100 fs that stands for the modes a real molecule would dump its energy into) through
``sims.hopping_ensemble.run_ensemble``. Output in ``--out``: the per-trajectory Parquet chunks,
``summary.json`` and ``torsional_yield.png`` (active and amplitude populations of S1, and the trans
fraction, against time).

Run: ``python examples/torsional_yield.py -o torsion_out`` (500 trajectories, 300 fs: about a minute
on one core). A rerun reads the finished chunks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reprs.fileio import atomic_write, save_figure
from sims.hopping_ensemble import run_ensemble
from sims.surface_hopping import TorsionalIsomerisation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default="torsion_out")
    parser.add_argument("--trajectories", type=int, default=500)
    parser.add_argument("--duration", type=float, default=300.0, help="fs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    result = run_ensemble(TorsionalIsomerisation(), args.trajectories, duration=args.duration, timestep=0.25,
                          sampler="wigner", temperature=300.0, friction=0.01, output=out, seed=args.seed)
    atomic_write(out / "summary.json", json.dumps(result.to_json(), indent=1))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(result.times, result.active_populations[:, 1], label="S1, fraction of trajectories")
    ax.plot(result.times, result.amplitude_populations[:, 1], "--", label="S1, mean |c_1|^2")
    ax.plot(result.times, result.product_fraction, label="trans fraction")
    ax.set_xlabel("time (fs)")
    ax.set_ylabel("population")
    ax.set_title(f"quantum yield {result.quantum_yield:.3f} ± {result.yield_error:.3f} "
                 f"({args.trajectories} trajectories)")
    ax.legend()
    save_figure(fig, out / "torsional_yield.png")
    print(f"trans yield {result.quantum_yield:.3f} +- {result.yield_error:.3f}; S1 population at the end "
          f"{result.active_populations[-1, 1]:.3f}; results in {out}")


if __name__ == "__main__":
    main()
