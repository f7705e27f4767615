"""Check: Knoop et al.'s sigma^A of CHGNet's own LGPS frames against CHGNet's and the student's harmonic models.

Reads an output folder of ``examples/lgps_transport.py`` (its teacher databases ``teacher_<T>K_0.db`` of
the ordered 50-atom cell, ``lgps.extxyz`` and ``student.pt``). Both potentials relax the 50-atom cell
(FIRE, fixed cell, 0.01 eV/Å); :func:`sims.anharmonicity.force_constants` gives each one's harmonic
model at its own minimum, and :func:`sims.anharmonicity.anharmonicity` the sigma^A (all atoms, Li, S)
of the teacher's frames against each. Also printed: how far the two minima lie apart and the acoustic
sum-rule violation of each force-constant matrix (a measure of how smooth the energy surface is on the
0.01 Å scale of the displacements). The numbers in the example's docstring and benchmarks/README.md
come from this script.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lgps_anharmonicity.py OUT`` (OUT: the example's
``--out`` folder; about 2 minutes on one core).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read
from ase.optimize import FIRE

from learners.potentials import load_potential
from learners.potentials.calculator import Calculator
from learners.potentials.teachers import chgnet_calculator
from reprs.fileio import read_frames
from sims.anharmonicity import anharmonicity, force_constants
from sims.potentials import CalculatorPotential


def relaxed(atoms, calculator, steps: int):
    out = atoms.copy()
    out.calc = calculator
    FIRE(out, logfile=None).run(fmax=0.01, steps=steps)
    out.calc = None
    return out


def sum_rule_violation(phi: np.ndarray) -> float:
    """Largest ``|sum_j Phi_{ia, jb}|``, eV/Å^2 (0 for an exactly translation-invariant model)."""
    n = phi.shape[0] // 3
    return float(np.abs(phi.reshape(n, 3, n, 3).sum(2)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="an output folder of examples/lgps_transport.py")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    calc = chgnet_calculator()
    cell = read(out / "lgps.extxyz")
    start = time.perf_counter()
    ref = relaxed(cell, calc, 2000)
    phi = force_constants(CalculatorPotential(calc), ref)
    print(f"CHGNet: minimum {np.abs(ref.positions - cell.positions).max():.3f} Å from the ordered cell, lowest "
          f"eigenvalues {np.round(np.linalg.eigvalsh(phi)[:3], 3)}, sum rule {sum_rule_violation(phi):.3f} eV/Å^2 "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    student = load_potential(out / "student.pt", dtype=torch.float64)
    sref = relaxed(cell, Calculator(student), 3000)
    sphi = force_constants(student, sref, dtype=torch.float64)
    print(f"student: minimum {np.abs(sref.positions - ref.positions).max():.3f} Å from CHGNet's, sum rule "
          f"{sum_rule_violation(sphi):.3f} eV/Å^2", flush=True)
    for path in sorted(out.glob("teacher_*K_0.db")):
        frames = read_frames(path)
        cells = []
        for label, r, p in (("CHGNet", ref, phi), ("student", sref, sphi)):
            res = {s: anharmonicity(frames, reference=r, force_constants=p, species=s) for s in (None, "Li", "S")}
            cells.append(label + " " + " ".join(f"{s or 'all'} {v.sigma:.2f} ± {v.stderr:.2f}"
                                                for s, v in res.items()))
        print(f"{path.stem} ({len(frames)} frames) | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
