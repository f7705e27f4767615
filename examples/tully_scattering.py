"""Tully's three models: FSSH against exact wavepacket dynamics, one plot per model.

For each model (``sims.surface_hopping.tully_model``) and each initial momentum k (atomic units),
the exact split-operator result (``exact_scattering``) and an FSSH ensemble (``fssh_scattering``,
Wigner sampling of the same packet, no decoherence, Tully's "keep" rule for frustrated hops) give
the probabilities of transmission and reflection on each adiabatic state. Output in ``--out``:
``tully_scattering.csv`` (one row per model, momentum, method and channel, with the FSSH standard
error) and ``tully_model_{1,2,3}.png`` (lines: exact; points with error bars: FSSH).

Run: ``python examples/tully_scattering.py -o tully_out`` (12 momenta, 200 trajectories each: 4 min
on one core; ``--trajectories 1000`` for the slow test's statistics). The numbers of a run
are in ``docs/surface_hopping.md``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path

from reprs.fileio import atomic_write, save_figure
from sims.surface_hopping import CHANNELS, exact_scattering, fssh_scattering, tully_model

MOMENTA = {1: (10.0, 15.0, 20.0, 30.0), 2: (20.0, 30.0, 40.0, 50.0), 3: (5.0, 10.0, 20.0, 25.0)}


def run(out: Path, n_trajectories: int, seed: int) -> list[dict]:
    """Compute every point, write the CSV and the figures; return the rows."""
    from matplotlib.figure import Figure

    rows = []
    for number, momenta in MOMENTA.items():
        model = tully_model(number)
        for k in momenta:
            exact = exact_scattering(model, k)
            fssh = fssh_scattering(model, k, n_trajectories=n_trajectories, seed=seed)
            for c in CHANNELS:
                rows.append({"model": number, "momentum": k, "channel": c, "exact": exact[c], "fssh": fssh[c],
                             "fssh_se": math.sqrt(fssh[c] * (1 - fssh[c]) / n_trajectories)})
            print(f"model {number} k={k:5.1f}: " + "  ".join(
                f"{c} {exact[c]:.3f}/{fssh[c]:.3f}" for c in CHANNELS), flush=True)
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        for c, colour in zip(CHANNELS, ("C0", "C1", "C2", "C3")):
            sel = [r for r in rows if r["model"] == number and r["channel"] == c]
            ax.plot([r["momentum"] for r in sel], [r["exact"] for r in sel], "-", color=colour, label=f"{c} (exact)")
            ax.errorbar([r["momentum"] for r in sel], [r["fssh"] for r in sel], yerr=[r["fssh_se"] for r in sel],
                        fmt="o", color=colour, ms=4, capsize=2)
        ax.set_xlabel("initial momentum k (a.u.)")
        ax.set_ylabel("probability")
        ax.set_title(f"Tully model {number}: exact (lines) and FSSH (points, {n_trajectories} trajectories)")
        ax.legend(fontsize=7)
        save_figure(fig, out / f"tully_model_{number}.png", dpi=120, bbox_inches="tight")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "tully_scattering.csv", buf.getvalue())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    parser.add_argument("--trajectories", type=int, default=200, help="FSSH trajectories per momentum")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file, not a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    run(args.out, args.trajectories, args.seed)


if __name__ == "__main__":
    main()
