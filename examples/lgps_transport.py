"""Superionic Li transport in Li10GeP2S12 with a neural-network potential, from teacher labels to an Arrhenius plot.

The workflow of issue 18 after Winter & Gómez-Bombarelli, arXiv:2211.05713 (an NN potential trained
on DFT runs LGPS MD up to 40 ns; below about 400 K the ab-plane tracer diffusivity D*_ab drops
sharply and Haven ratios move toward 1), here with CHGNet 0.3.0 as the teacher instead of DFT:

1. Teacher labels (:mod:`learners.potentials.teachers`): Langevin MD of the ordered 50-atom cell
   on CHGNet at a few temperatures (``sims.generate``, resumable), plus rattled isotropically
   strained cells labelled directly. One extra trajectory (a second seed at the middle
   temperature) is held out for testing.
2. Students: PaiNN (5 Å cutoff, float64) of two sizes trained on the same frames; held-out force
   and energy MAE and atom-steps/s of MD on the 2 x 2 x 1 supercell (200 atoms). A committee of
   the smaller size (its first member the small model above) is retrained in step 3 and drives
   production. Every student carries the ZBL screened nuclear repulsion below the sum of covalent
   radii (``PaiNN(repulsion="zbl")``, ``--repulsion none`` to leave it out): without it the
   committee's MD above 600 K pushed Li onto Li and S at 0.5-0.8 Å.
3. Active learning, up to ``--al-rounds`` rounds (quick 3, full 5). Each round runs the committee's
   MD the way production runs it (``--al-cell supercell``, the default): the 2 x 2 x 1 supercell
   (200 atoms), Langevin equilibration then a Nose-Hoover chain as long as quick production's
   (full mode: 10 ps), at the round's temperature (quick 900, 750, 600 K in turn; full 900-600 K),
   a new seed each round, with ``md.uncertainty_threshold`` calibrated on the held-out teacher
   frames for 200 atoms (:meth:`Committee.spread_threshold`: 90 % of held-out-like frames stay
   under it). Frames with an S-S, Li-S or Li-Li contact shorter than 0.9 times the shortest in the
   teacher's frames come first, then frames past the threshold, the most uncertain first; at most
   ``max_relabel_supercell`` of them (quick 3), at least ``al_gap`` steps apart, are labelled by
   CHGNet (200-atom single points), added to the training set, and the committee is retrained from
   scratch on it; the rounds stop early once at most 10 % of a round's frames are past the
   threshold and none is that short. ``--al-cell unit``: the earlier rounds, Langevin MD of the
   50-atom cell at the top temperature (at most ``max_relabel`` frames). Judged on the held-out
   teacher trajectory and on the committee's own MD at the top temperature (the unit cell, another
   seed, run before the first and after the last round, labelled by CHGNet), with the shortest
   S-S, Li-S and Li-Li contacts of every MD against those of the teacher's frames. Production
   uses a threshold calibrated for the supercell's 200 atoms.
4. Production: NVT (Langevin equilibration, then a Nose-Hoover chain) with the committee on the
   2 x 2 x 1 supercell at 6+ temperatures from 300 to 900 K (``sims.generate``: checkpointed and
   resumed by rerunning the same command; ``--dask N`` runs temperatures on N local workers).
5. Analysis (:mod:`sims.analysis`): D*, D*_ab, D*_c, D_sigma (Li charge centre), Haven ratio and
   Nernst-Einstein conductivity with standard errors at every temperature, Arrhenius fits, and an
   Arrhenius plot (``arrhenius.png``).
6. Vibrations (:mod:`sims.anharmonicity`): the supercell is relaxed on the student before
   production (FIRE, fixed cell; production starts there) and its finite-difference force
   constants are the harmonic model; Knoop et al.'s anharmonicity measure sigma^A (all atoms, Li,
   S) of the production frames at every temperature, and the Li vibrational density of states
   (``vdos.png``): the paper's "more harmonic vibrations at low temperature".

Output in ``--out``: the teacher and production databases, ``student.pt``, the frames active
learning relabelled (``active_labels.extxyz``), ``transport.csv``,
``summary.json`` (all numbers and stage times), ``arrhenius.png`` and ``vdos.png``. Rerunning resumes: finished
stages are read back, unfinished MD continues from its last checkpoint.

Run: ``OMP_NUM_THREADS=1 python examples/lgps_transport.py --quick -o lgps_quick`` (20-60 min on a shared
core; checks that the pipeline runs, its student is not physical above 600 K), ``--mode medium -o
lgps_medium`` (80 min on one core, below: the smallest budget whose student keeps CHGNet's contact
statistics at 900 K), or without either for the full protocol (not run: see the end). Longer production
on a finished run: ``--mode medium -o lgps_medium --production-ps 20 --compiled --dask 2`` reads the
teacher frames, students and rounds back and writes ``production_<T>K_20ps.db`` (and ``summary_20ps.json``, ...)
beside the mode's runs. More active learning on a finished run: ``--extra-rounds 3 --round-ps 10
--round-temperatures 900,750 --round-relabel 8`` continues the rounds (numbering, seeds, labels) with
rounds of 10 ps on the supercell and writes the new student and everything it drives to files tagged
``_r4-6_10ps_900-750K_8l`` (:func:`continued_rounds`).
The record of the earlier runs (quick mode, the ZBL prior, the high-temperature hole, the teacher data
volume) is in ``docs/lgps_transport.md``.

Results
-------
Medium mode, end to end (7 Dec 2026, sessions 13-14; 1 torch thread, 2 cores shared with other jobs,
load 2-6; interrupted after the teacher stage and resumed from its checkpoints on a later commit):
teacher 2247 s, students 796 s, active learning 1398 s, production 273 s (1 ps at each temperature),
vibrations 67 s: 80 min.

* Teacher: CHGNet 0.3.0 Langevin MD of the 50-atom cell, 1500 sampled steps (3 ps) at 300, 600, 900
  and 1200 K, a frame every 25 steps, plus 20 rattled cells strained by -3 to +3 %: 260 training frames;
  a second 900 K run (another seed) gives 60 held-out frames.
* Students (held-out frames; 40 epochs): PaiNN 16 / 2 forces MAE 0.067 eV/Å (mean |F| 0.454), energy
  2.3 meV/atom, 1.07e4 atom-steps/s on 200 atoms; PaiNN 32 / 2 0.059 eV/Å, 1.7 meV/atom, 4.5e3
  atom-steps/s. The K = 2 committee of the small size drives everything after: 0.064 eV/Å, 2.0 meV/atom.
* Active learning (the production supercell and protocol, 0.2 ps Langevin + 1 ps Nose-Hoover): 900 K,
  21 of 50 frames past 0.262 eV/Å, 2 with a contact under 0.9 x the teacher's shortest (Li-Li 1.69 Å);
  750 K, 32 of 50 past 0.228, none short; 600 K, 12 of 50 past 0.206, none short; 3 frames relabelled a
  round. Held-out 0.064 -> 0.063 eV/Å, 2.0 -> 1.8 meV/atom: no energy shift (the quick mode's rounds
  left +7 to +11 meV/atom); the committee's own 900 K MD of the unit cell, labelled by CHGNet, 0.075 ->
  0.074 eV/Å, 3.8 -> 3.5 meV/atom. Production threshold 0.192 eV/Å (200 atoms).
* Production, 1 ps at each temperature (analysed with the code of session 14: displacements relative to
  the Ge-P-S framework; errors from the all-origins MSD covariance; diffusivities in cm^2/s; contacts
  as shares of atoms per mille, see :data:`CONTACT_SHARE_CUTOFFS`):

  | T (K) | D* | D*_ab | D*_c | D_sigma | past threshold | S-S < 2.5 / Li-S, Li-Li < 2.0 Å (‰) |
  |---|---|---|---|---|---|---|
  | 300 | 2.9e-5 ± 0.5e-5 | 2.4e-5 ± 0.6e-5 | 3.9e-5 ± 1.0e-5 | 2.1e-5 ± 6.1e-5 | 0 % | 0.0 / 0.0 / 0.0 |
  | 360 | 3.4e-5 ± 0.6e-5 | 2.3e-5 ± 0.7e-5 | 5.5e-5 ± 1.2e-5 | 1.1e-4 ± 0.7e-4 | 0 % | 0.0 / 0.1 / 0.0 |
  | 450 | 2.5e-5 ± 0.7e-5 | 2.1e-5 ± 0.8e-5 | 3.2e-5 ± 1.2e-5 | 1.6e-5 ± 4.9e-5 | 1 % | 0.0 / 0.1 / 0.0 |
  | 600 | 6.5e-5 ± 1.0e-5 | 5.2e-5 ± 1.1e-5 | 9.0e-5 ± 2.1e-5 | 1.0e-4 ± 0.8e-4 | 14 % | 0.0 / 1.8 / 0.0 |
  | 750 | 7.3e-5 ± 1.3e-5 | 5.5e-5 ± 1.4e-5 | 1.1e-4 ± 0.3e-4 | 3.2e-5 ± 11e-5 | 34 % | 0.0 / 4.4 / 0.2 |
  | 900 | 1.42e-4 ± 0.16e-4 | 1.36e-4 ± 0.20e-4 | 1.55e-4 ± 0.29e-4 | 3.8e-4 ± 2.5e-4 | 50 % | 2.5 / 6.5 / 0.8 |

  CHGNet's own MD of the same 200 atoms (1.2 ps, session 13): 0.8 / 8.6 / 1.2 ‰ at 900 K, 0.0 / 4.0 /
  0.2 ‰ at 750 K; the quick mode's student 224 ‰ S-S at 900 K. This student is physical by that
  measure at every temperature, the first here. A 1 ps run is vibrational (fit window 0.1-0.5 ps):
  these D are the growth of the Li rattling amplitude, not hopping (Arrhenius slope 0.062 ± 0.014 eV
  for D*, 0.070 ± 0.018 eV for D*_ab; a bend at 400 K not significant, p = 0.10).

* Production, 20 ps at each temperature (``--production-ps 20 --compiled --dask 2`` on the same folder,
  session 14: 3102 s for the six runs on two Dask workers, load 3-6; same analysis and units):

  | T (K) | D* | D*_ab | D*_c | D_sigma | past threshold | mean largest spread (eV/Å) | S-S < 2.5 / Li-S, Li-Li < 2.0 Å (‰) |
  |---|---|---|---|---|---|---|---|
  | 300 | 5.6e-6 ± 1.3e-6 | 3.5e-6 ± 1.0e-6 | 9.9e-6 ± 3.9e-6 | 1.9e-6 ± 19e-6 | 0 % | 0.10 | 0.0 / 0.0 / 0.0 |
  | 360 | 1.26e-5 ± 0.18e-5 | 9.8e-6 ± 1.5e-6 | 1.8e-5 ± 0.5e-5 | 1.9e-5 ± 3.1e-5 | 0 % | 0.11 | 0.0 / 0.1 / 0.0 |
  | 450 | 1.79e-5 ± 0.23e-5 | 1.08e-5 ± 0.20e-5 | 3.2e-5 ± 0.6e-5 | 6.7e-5 ± 4.5e-5 | 1 % | 0.12 | 0.0 / 0.3 / 0.0 |
  | 600 | 3.65e-5 ± 0.42e-5 | 2.80e-5 ± 0.41e-5 | 5.4e-5 ± 1.0e-5 | 4.8e-5 ± 5.3e-5 | 9 % | 0.14 | 0.1 / 1.4 / 0.0 |
  | 750 | 6.8e-5 ± 0.7e-5 | 6.8e-5 ± 0.8e-5 | 6.6e-5 ± 1.3e-5 | 1.3e-4 ± 1.1e-4 | 85 % | 0.38 | 8.9 / 3.7 / 0.3 |
  | 900 | 1.20e-4 ± 0.11e-4 | 1.22e-4 ± 0.13e-4 | 1.15e-4 ± 0.19e-4 | 0.6e-4 ± 2.0e-4 | 98 % | 0.86 | 149 / 7.3 / 1.2 |

  Over 20 ps the student is physical up to 600 K (S-S contacts 0.0-0.1 ‰, at most 9 % of frames past
  the threshold) but not at 750-900 K: there its MD finds the S-S hole again after the first
  picoseconds (149 ‰ of S atoms with an S neighbour under 2.5 Å at 900 K, CHGNet 0.8; 98 % of frames
  past the threshold, the mean largest spread 0.86 eV/Å against 0.10-0.14 below 600 K). The rounds
  sampled 1 ps at each temperature, too short to meet it. The monitor flags it, so the 750 and 900 K
  rows are not the student's estimate of CHGNet's transport. Arrhenius fits over 300-600 K only:
  Ea(D*) = 0.090 ± 0.011 eV, Ea(D*_ab) = 0.093 ± 0.021 eV, Ea(D*_c) = 0.086 ± 0.019 eV (all six: 0.118,
  0.135 and 0.091 eV, and no significant bend at 400 K: p = 0.28 for D*, 0.31 for D*_ab).

* Three more rounds of 10 ps (``--extra-rounds 3 --round-ps 10 --round-temperatures 900,750
  --round-relabel 8 --compiled``, session 15: 1851 s, load 2-5), then 20 ps of production with that
  student (``--production-ps 20``, 2 Dask workers: 2816 s). Round 4 (900 K) had 370 of its 500 frames
  unphysical (S-S 1.75 Å), round 5 (750 K) 1, round 6 (900 K) 3; 24 frames relabelled. Held-out errors
  0.065 eV/Å and 2.8 meV/atom (0.063 and 1.8 before), production threshold 0.277 eV/Å:

  | T (K) | D* | D*_ab | D*_c | D_sigma | past threshold | mean largest spread (eV/Å) | S-S < 2.5 / Li-S, Li-Li < 2.0 Å (‰) |
  |---|---|---|---|---|---|---|---|
  | 300 | 4.0e-6 ± 1.0e-6 | 2.5e-6 ± 0.9e-6 | 7.0e-6 ± 2.7e-6 | 0.6e-5 ± 1.7e-5 | 0 % | 0.10 | 0.0 / 0.0 / 0.0 |
  | 360 | 6.6e-6 ± 1.4e-6 | 4.6e-6 ± 1.2e-6 | 1.05e-5 ± 0.39e-5 | 0.9e-5 ± 2.0e-5 | 0 % | 0.11 | 0.0 / 0.0 / 0.0 |
  | 450 | 1.92e-5 ± 0.25e-5 | 1.43e-5 ± 0.21e-5 | 2.9e-5 ± 0.7e-5 | 0.9e-5 ± 4.8e-5 | 0 % | 0.12 | 0.0 / 0.2 / 0.0 |
  | 600 | 3.51e-5 ± 0.37e-5 | 2.57e-5 ± 0.36e-5 | 5.4e-5 ± 0.9e-5 | 1.4e-5 ± 4.2e-5 | 1 % | 0.15 | 0.1 / 1.2 / 0.0 |
  | 750 | 6.31e-5 ± 0.64e-5 | 6.29e-5 ± 0.75e-5 | 6.4e-5 ± 1.2e-5 | 1.3e-4 ± 0.9e-4 | 14 % | 0.21 | 0.9 / 3.2 / 0.4 |
  | 900 | 1.17e-4 ± 0.09e-4 | 1.19e-4 ± 0.12e-4 | 1.13e-4 ± 0.16e-4 | 2.6e-4 ± 1.7e-4 | 61 % | 0.31 | 5.0 / 7.1 / 1.2 |

  The rounds as long as production moved the hole: over 20 ps this student is physical up to 750 K
  (S-S 0.5-1.5 ‰ in each 5 ps block, 8-19 % of frames past the threshold, near the 10 % the threshold
  allows on held-out-like frames; CHGNet 0.0 / 4.0 / 0.2 ‰ at 750 K). At 900 K it is better than
  before but still drifting: the S-S share grows 3.2, 3.8, 6.1, 5.8 ‰ over the four 5 ps blocks (the
  previous student 52, 125, 179, 239) and the share of frames past the threshold 25, 68, 76, 75 %;
  the 900 K row is not used. Over the five physical temperatures (300-750 K): Ea(D*) = 0.121 ± 0.009
  eV, Ea(D*_ab) = 0.142 ± 0.014 eV, Ea(D*_c) = 0.100 ± 0.015 eV, and the 400 K slope-change test
  (two temperatures below, three above) finds none: below/above 400 K 0.124 ± 0.061 / 0.147 ± 0.025 eV
  for D*_ab, p = 0.79 (D*: p = 0.94). Numbers from the example's own table and
  ``sims.analysis.arrhenius_fit`` / ``arrhenius_slope_change`` on its ``summary_<tag>.json`` rows.

What the data say about arXiv:2211.05713's claims, and why they cannot settle them:

* Run length. At 300 K, D* = 4.0-5.6e-6 cm^2/s (the two students) puts the Li MSD at 2.4-3.4 Å^2 at the
  10 ps end of the fit window (10-50 % of the run): under one hop per Li, so the 300-360 K values are
  first estimates, not converged ones (the two students' 300 and 360 K values differ by 1.0 and 2.6
  standard errors). D_sigma (the Li charge centre: one series per run) is not resolved at any
  temperature (its relative error is 0.7-10), so neither is the Haven ratio, and neither is the
  Nernst-Einstein conductivity. The paper needed up to 40 ns near 300 K; these are 20 ps.
* The ~400 K change of D*_ab. D*_ab rises 2.8 times from 300 to 360 K and only 1.1 times from 360 to
  450 K, and D*_ab is below D*_c at every temperature up to 600 K (c is LGPS's fast direction); a drop
  of D*_ab below 400 K is what the paper reports, but one 20 ps run per temperature on 200 atoms does
  not resolve it: the first student's four physical points leave no room for a bend (the slope-change
  test needs five temperatures, two a side); the second student's five find no bend (p = 0.79 for
  D*_ab: 0.124 ± 0.061 eV below 400 K, 0.147 ± 0.025 eV above), and with errors that size a bend as
  the paper's would have to be large to show.
* The teacher. CHGNet 0.3.0 is not the paper's DFT: the student learns CHGNet's barriers (within a
  0.06 eV/Å force error on held-out frames), and no comparison with DFT diffusivities is made here.
* Vibrations (Knoop's sigma^A against the student's harmonic model) are not reported as evidence: the
  student's force constants break the acoustic sum rule (docs/lgps_transport.md), and sigma^A of 4.7-19
  over the 20 ps runs measures that, not the material's anharmonicity.

What is left: more rounds at 900 K (the second student's 900 K run still drifts), then production runs
long enough for D* at 300-400 K to converge (nanoseconds: see below) with several
seeds per temperature, before the 400 K change or the Haven-ratio trend can be tested. The full mode (a
K = 3 committee, 9 temperatures, 1 ns each after 10 ps of equilibration, 5 rounds of 10 ps) was not run:
at the compiled K = 3 committee's 32 ms a step on 200 atoms (CPU time, ``benchmarks/lgps_cost.py
--compare-only``, session 14) 1 ns takes about 4.5 h per temperature on one core, some 40 core-hours
for production (140 at session 13's eager step) plus a few hours of CHGNet labels and training. Its
teacher frames exist (``/work/runs/lgps_full`` on the machine of sessions 13-14, outside the repository).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from ase.optimize import FIRE

from learners.potentials import Committee, PaiNN, PotentialLoss, fit_potential, load_potential, save_potential
from learners.potentials.calculator import Calculator
from learners.potentials.teachers import chgnet_calculator, lgps_cell, teacher_config
from learners.potentials.training import frame_errors
from learners.trainer import Trainer
from reprs.fileio import atomic_open, read_frames, save_figure
from sims.anharmonicity import anharmonicity, force_constants
from sims.analysis import (MSD, arrhenius_fit, arrhenius_slope_change, collective_diffusivity, haven_ratio,
                           nernst_einstein_conductivity, tracer_diffusivity, vdos)
from sims.errors import SimsInputError
from sims.generate import generate, generate_many

F64 = torch.float64

_QUICK = dict(teacher_temperatures=(600.0, 900.0, 1200.0), teacher_steps=100, teacher_equilibrate=20,
              teacher_every=10, strains=(-0.02, 0.02), strain_frames=2, sizes=((16, 2), (32, 2)), k=2,
              epochs=100, al_rounds=3, al_cell="supercell", al_temperatures=(900.0, 750.0, 600.0),
              al_steps=200, al_every=10, max_relabel=12, max_relabel_supercell=3, al_gap=50,
              al_supercell_steps=500,
              production_temperatures=(300.0, 360.0, 450.0, 600.0, 750.0, 900.0), production_steps=500,
              production_equilibrate=100, production_every=5, speed_steps=10)
_FULL = dict(teacher_temperatures=(300.0, 600.0, 900.0, 1200.0), teacher_steps=2500, teacher_equilibrate=250,
             teacher_every=25, strains=(-0.03, -0.015, 0.015, 0.03), strain_frames=5,
             sizes=((16, 2), (32, 2), (64, 3)), k=3, epochs=200, al_rounds=5, al_cell="supercell",
             al_temperatures=(900.0, 800.0, 700.0, 600.0), al_steps=5000, al_every=25, max_relabel=50,
             max_relabel_supercell=12, al_gap=250, al_supercell_steps=5000,
             production_temperatures=(300.0, 350.0, 400.0, 450.0, 500.0, 600.0, 700.0, 800.0, 900.0),
             production_steps=500_000, production_equilibrate=5000, production_every=50, speed_steps=50)
#: Budgets of the modes. Times are MD steps of ``timestep`` fs. Medium: quick's students, rounds and
#: production on full's teacher temperatures and strains with 1500-step teacher runs (about 7 times
#: quick's frames), 40 epochs: without active learning this student's 900 K MD on 200 atoms has about
#: CHGNet's contact statistics (S atoms with a S neighbour under 2.5 Å: 2.7 per mille, CHGNet 0.8,
#: quick's student 224; docs/lgps_transport.md).
MODES = {
    "quick": _QUICK,
    "medium": {**_QUICK, **{k: _FULL[k] for k in ("teacher_temperatures", "teacher_equilibrate", "teacher_every",
                                                   "strains", "strain_frames")},
               "teacher_steps": 1500, "epochs": 40},
    "full": _FULL,
}
#: The settings a resumed run must share with the students it reads back.
SETTINGS = ("repulsion", "al_rounds", "al_cell")
TIMESTEP = 2.0  # fs: usual for Li sulfides (Li the lightest atom)
STUDENT_CUTOFF = 5.0  # Å
PAPER_T_BREAK = 400.0  # K: the Li sublattice change of arXiv:2211.05713


def _stage(times: dict, name: str, start: float) -> None:
    if name in times:  # a resumed run: keep the first run's time
        name += "_resumed"
    times[name] = round(time.perf_counter() - start, 1)
    print(f"[{name}: {times[name]:.1f} s]", flush=True)


def teacher_frames(out: Path, mode: dict, calc) -> tuple[list[Atoms], list[Atoms]]:
    """(training frames, held-out frames) labelled by CHGNet; MD through ``sims.generate`` (resumable)."""
    write(out / "lgps.extxyz", lgps_cell(seed=0))
    runs = [(t, 0) for t in mode["teacher_temperatures"]]
    held_out_run = (mode["teacher_temperatures"][len(runs) // 2], 1)
    frames = {}
    for temperature, seed in runs + [held_out_run]:
        cfg = teacher_config("lgps.extxyz", temperature, seed, f"teacher_{int(temperature)}K_{seed}.db",
                             steps=mode["teacher_steps"], sample_every=mode["teacher_every"],
                             equilibrate=mode["teacher_equilibrate"], timestep=TIMESTEP)
        cfg["_base"] = str(out)
        frames[(temperature, seed)] = read_frames(generate(cfg))
    train = [f for key in runs for f in frames[key]] + strained_frames(out, mode, calc)
    return train, frames[held_out_run]


def strained_frames(out: Path, mode: dict, calc) -> list[Atoms]:
    """The teacher's single points of rattled (0.05 Å), isotropically strained 50-atom cells
    (``teacher_strained.extxyz`` in ``out``, read back when there)."""
    path = out / "teacher_strained.extxyz"
    if path.exists():
        return read(path, ":")
    strained = []
    for k, eps in enumerate(mode["strains"]):
        for m in range(mode["strain_frames"]):
            atoms = lgps_cell(seed=0)
            atoms.set_cell(atoms.cell[:] * (1 + eps), scale_atoms=True)
            atoms.rattle(0.05, seed=100 * k + m)
            atoms.calc = calc
            e, f = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
            atoms.info.update(config_hash=f"strain_{eps:+.3f}", T_target=0.0, strain=eps)
            strained.append(atoms)
    with atomic_open(path, "w") as handle:
        write(handle, strained, format="extxyz")
    return strained


def atom_steps_per_second(model, atoms: Atoms, steps: int) -> float:
    """Langevin MD at 600 K with ``model`` on ``atoms`` (sims.MD, float64), after one warm-up step."""
    import sims

    md = sims.MD(atoms.copy(), model, sims.Langevin(timestep=TIMESTEP, temperature=600.0, friction=0.02),
                 temperature=600.0, seed=0, record_every=0, dtype=F64)
    md.run(1)
    start = time.perf_counter()
    md.run(steps)
    return len(atoms) * steps / (time.perf_counter() - start)


def _trainer(epochs: int) -> Trainer:
    return Trainer(epochs=epochs, batch_size=8, lr=2e-3, eval_grad=True, dtype=F64, seed=0)


def _loss() -> PotentialLoss:
    return PotentialLoss(w_energy=1.0, w_forces=10.0)


def train_students(out: Path, mode: dict, train: list[Atoms], test: list[Atoms],
                   supercell: Atoms, repulsion: str | None) -> tuple[Committee, list[dict]]:
    """Single PaiNN models of each size (errors, speed), and the committee of the smallest size."""
    table, small = [], None
    for n_features, n_interactions in mode["sizes"]:
        model = PaiNN(cutoff=STUDENT_CUTOFF, n_features=n_features, n_interactions=n_interactions, seed=0,
                      repulsion=repulsion, dtype=F64)
        fit_potential(model, train, None, trainer=_trainer(mode["epochs"]), loss=_loss())
        scores = frame_errors(model, test)
        speed = atom_steps_per_second(model, supercell, mode["speed_steps"])
        table.append({"n_features": n_features, "n_interactions": n_interactions,
                      "forces_mae": scores["forces_mae"], "energy_mae_meV_atom": 1000 * scores["energy_mae"],
                      "forces_mean_abs": scores["forces_mean_abs"], "atom_steps_per_s": speed})
        print(f"PaiNN {n_features}/{n_interactions}: held-out forces MAE {scores['forces_mae']:.3f} eV/Å "
              f"(mean |F| {scores['forces_mean_abs']:.3f}), energy MAE {1000 * scores['energy_mae']:.2f} meV/atom, "
              f"{speed:.3g} atom-steps/s on {len(supercell)} atoms", flush=True)
        if small is None:
            small = model
    n_features, n_interactions = mode["sizes"][0]
    others = [PaiNN(cutoff=STUDENT_CUTOFF, n_features=n_features, n_interactions=n_interactions, seed=s,
                    repulsion=repulsion, dtype=F64) for s in range(1, mode["k"])]
    for model in others:
        fit_potential(model, train, None, trainer=_trainer(mode["epochs"]), loss=_loss())
    return Committee([small, *others]), table


def md_config(out: Path, potential: str, system: str, output: str, temperature: float, seed: int, steps: int,
              every: int, *, equilibrate: int | None = None, threshold: float | None = None,
              compiled: bool = False) -> dict:
    """A ``sims.generate`` config of NVT MD driven by the potential file ``potential`` from ``system``
    (both in ``out``), recording a frame (and the committee's spread) every ``every`` steps.

    ``equilibrate=None``: Langevin for ``steps``. Otherwise the production protocol: ``equilibrate``
    steps of Langevin (nothing recorded), then ``steps`` of a Nose-Hoover chain (tau 100 fs).
    ``compiled``: the PaiNN members run through ``torch.compile`` (``load_potential(compiled=True)``).
    """
    langevin = {"ensemble": "langevin", "timestep": TIMESTEP, "temperature": temperature, "friction": 0.02}
    if equilibrate is None:
        stages = [dict(langevin, steps=steps, sample_every=every)]
    else:
        stages = [dict(langevin, steps=equilibrate, sample_every=0),
                  {"ensemble": "nose_hoover_chain", "timestep": TIMESTEP, "temperature": temperature, "tau": 100.0,
                   "steps": steps, "sample_every": every}]
    md = {"dtype": "float64"}
    if threshold is not None:
        md.update(uncertainty_threshold=threshold, on_uncertain="flag", uncertainty_every=every)
    return {"seed": seed, "_base": str(out), "system": {"builder": "file", "path": system},
            "potential": {"kind": "nn", "path": potential, **({"compiled": True} if compiled else {})},
            "md": md, "stages": stages,
            "output": {"path": output, "checkpoint_every": 500 if equilibrate is None else 1000}}


def committee_md(out: Path, committee: Committee, name: str, temperature: float, seed: int, steps: int, every: int,
                 threshold: float | None = None, *, system: str = "lgps.extxyz",
                 equilibrate: int | None = None, compiled: bool = False) -> list[Atoms]:
    """MD driven by ``committee`` (:func:`md_config`, ``sims.generate``: resumable), its spread recorded;
    the unit cell by default."""
    save_potential(committee, out / f"{name}.pt")
    return read_frames(generate(md_config(out, f"{name}.pt", system, f"{name}.db", temperature, seed, steps, every,
                                          equilibrate=equilibrate, threshold=threshold, compiled=compiled)))


def relabel(frames: list[Atoms], calc, tag: str) -> list[Atoms]:
    """Copies of ``frames`` with the teacher's energy and forces."""
    labelled = []
    for atoms in frames:
        atoms = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
        atoms.calc = calc
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        atoms.info.update(config_hash=tag)
        labelled.append(atoms)
    return labelled


def own_md_errors(out: Path, mode: dict, committee: Committee, name: str, calc) -> dict:
    """The committee's errors on frames of its own MD at the top temperature (a seed the rounds do not
    sample from), labelled by the teacher: where production runs go, unlike the teacher's own frames.
    Also the shortest S-S, Li-S and Li-Li distances of that MD (Å)."""
    frames = committee_md(out, committee, name, max(mode["production_temperatures"]), seed=1,
                          steps=mode["al_steps"], every=mode["al_every"])
    scores = frame_errors(committee, relabel(frames, calc, name))
    return {"forces_mae": scores["forces_mae"], "energy_mae_meV_atom": 1000 * scores["energy_mae"],
            "shortest_A": shortest_contacts(frames)}


#: The contacts that collapse first when a student leaves physical configurations (S-S, Li-S, Li-Li).
CONTACTS = {"S-S": (16, 16), "Li-S": (3, 16), "Li-Li": (3, 3)}
#: An active-learning frame with a contact shorter than this times the teacher frames' shortest is
#: unphysical (relabelled whatever the committee's spread). The teacher's own MD at 600-1200 K in
#: quick mode: S-S >= 2.68 Å, Li-S >= 1.96 Å, Li-Li >= 1.97 Å; a 10 % margin leaves room for the
#: contacts a longer MD would find. Too little in quick mode (measured, session 13): CHGNet's own
#: MD reaches S-S 2.36 Å at 900 K and 2.22 Å at 1200 K in 3 ps of the 50-atom cell, 2.46 Å at 900 K
#: in 1.2 ps of 200 atoms, so the reference comes from the mode's teacher frames, which in medium
#: and full mode hold such runs.
CONTACT_MARGIN = 0.9


#: Per-atom contact statistics (:func:`contact_statistics`): the share of atoms of the first kind whose
#: nearest atom of the second kind is closer than this (Å). CHGNet's own 200-atom MD (1.2 ps, 900 K):
#: 0.8 / 8.6 / 1.2 per mille; a quick-mode student 224 per mille S-S (session 13, docs/lgps_transport.md).
CONTACT_SHARE_CUTOFFS = {"S-S": 2.5, "Li-S": 2.0, "Li-Li": 2.0}


def contact_statistics(frames: list[Atoms]) -> tuple[dict, dict]:
    """(shortest, shares) over ``frames`` for each pair type in :data:`CONTACTS` (minimum image).

    ``shortest``: the shortest distance (Å) over all frames, an extreme value that falls with the
    number of atoms and frames looked at. ``shares``: the fraction of atoms of the first kind whose
    nearest atom of the second kind lies under :data:`CONTACT_SHARE_CUTOFFS`, pooled over frames
    (per atom and frame, so comparable between cell sizes and run lengths).
    """
    best = {name: np.inf for name in CONTACTS}
    close = {name: 0 for name in CONTACTS}
    counted = {name: 0 for name in CONTACTS}
    for atoms in frames:
        d = atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        for name, (a, b) in CONTACTS.items():
            nearest = d[np.ix_(atoms.numbers == a, atoms.numbers == b)].min(axis=1)
            best[name] = min(best[name], float(nearest.min()))
            close[name] += int((nearest < CONTACT_SHARE_CUTOFFS[name]).sum())
            counted[name] += len(nearest)
    return best, {name: close[name] / counted[name] for name in CONTACTS}


def shortest_contacts(frames: list[Atoms]) -> dict:
    """Shortest distance (Å, minimum image) of each pair type in :data:`CONTACTS` over ``frames``."""
    return contact_statistics(frames)[0]


def active_learning(out: Path, mode: dict, committee: Committee, train: list[Atoms], test: list[Atoms],
                    calc, rounds: int, labelled: Sequence[Atoms] = (), first_round: int = 1,
                    tag: str = "") -> tuple[Committee, dict]:
    """Up to ``rounds`` rounds: committee MD, uncertain or unphysical frames relabelled, the committee
    retrained; stops early once a round's MD stays under the threshold (at most 10 % of its frames
    past it, what the threshold allows on held-out-like frames) and physical.

    With ``mode["al_cell"] == "supercell"`` round ``r`` runs production's protocol
    (:func:`md_config`: ``production_equilibrate`` steps of Langevin, then ``al_supercell_steps`` of
    a Nose-Hoover chain) on the supercell ``lgps_221.extxyz`` in ``out`` at
    ``al_temperatures[(r - first_round) % len]`` and relabels at most ``max_relabel_supercell`` frames at
    least ``al_gap`` steps apart (:func:`spaced`); the 50-atom rounds stopped finding the contacts
    that 1.2 ps of 200 atoms finds (measured: rounds 4-6 of the unit cell had S-S >= 2.77 Å while
    the supercell's MD with the same committee reached 2.30 Å). With ``"unit"`` it is Langevin MD of
    the unit cell at the top temperature for ``al_steps`` (at most ``max_relabel`` frames).

    The threshold is calibrated on the held-out teacher frames for each committee and the size of
    the round's cell (:meth:`Committee.spread_threshold`: 90 % of held-out-like frames stay under it). A
    frame is unphysical when one of its :data:`CONTACTS` is shorter than :data:`CONTACT_MARGIN` times
    the shortest in the teacher's frames: the spread alone does not see the S-S hole (measured, quick
    mode 7 Dec: a round with 2 of 20 frames past the threshold reached S-S contacts of 2.14 Å, the
    teacher's shortest 2.68 Å); such frames are relabelled first. Round ``r`` runs the committee's MD from seed ``r + 1`` (seed 1 is the
    own-MD test below), so each round samples a new trajectory. Each new committee is trained from
    scratch (the same seeds and epochs) on the teacher frames and all frames relabelled so far:
    fine-tuning the trained members on them (10-20 epochs, peak rate 1e-3 or 2e-3) made the
    committee's own MD worse (docs/lgps_transport.md). The rounds are judged on two test sets: the
    held-out teacher trajectory and the committee's own MD at the top temperature from seed 1 (run
    with the first and with the last committee, each labelled by the teacher), with its shortest
    contacts. ``labelled`` and ``first_round`` continue earlier rounds (their relabelled frames);
    ``tag`` is appended to the names of the files this call's rounds write (``active_round<r><tag>.db``
    and the last committee's own MD), so rounds continued with other settings keep their own files.
    """
    top = max(mode["production_temperatures"])
    before = frame_errors(committee, test)
    own_before = own_md_errors(out, mode, committee, f"own_md_round{first_round - 1}", calc)
    reference = shortest_contacts(train + test)
    labelled, log = list(labelled), []
    supercell = mode["al_cell"] == "supercell"
    n_supercell = len(read(out / "lgps_221.extxyz")) if supercell else None
    for r in range(first_round, first_round + rounds):
        # Calibrated for the size of the cell the round's MD runs on (the largest spread grows with it).
        threshold = committee.spread_threshold(test, quantile=0.9, n_atoms=n_supercell)
        if supercell:  # production's cell and protocol, at the round's temperature
            temperature = mode["al_temperatures"][(r - first_round) % len(mode["al_temperatures"])]
            sampled = committee_md(out, committee, f"active_round{r}{tag}", temperature, seed=r + 1,
                                   steps=mode["al_supercell_steps"], every=mode["al_every"], threshold=threshold,
                                   system="lgps_221.extxyz", equilibrate=mode["production_equilibrate"],
                                   compiled=mode.get("compiled", False))
            limit, gap = mode["max_relabel_supercell"], mode["al_gap"]
        else:
            temperature = top
            sampled = committee_md(out, committee, f"active_round{r}{tag}", top, seed=r + 1, steps=mode["al_steps"],
                                   every=mode["al_every"], threshold=threshold)
            limit, gap = mode["max_relabel"], 0
        unphysical = [any(d < CONTACT_MARGIN * reference[name] for name, d in shortest_contacts([f]).items())
                      for f in sampled]
        # Unphysical frames first (the spread alone misses them), the most uncertain first within each group.
        ranked = sorted((k for k, f in enumerate(sampled) if unphysical[k] or f.info.get("uncertain")),
                        key=lambda k: (not unphysical[k], -sampled[k].info["forces_std_max"]))
        chosen = spaced([sampled[k] for k in ranked], limit, gap)
        n_uncertain = sum(bool(f.info.get("uncertain")) for f in sampled)
        entry = {"round": r, "cell_atoms": len(sampled[0]), "T": temperature, "threshold_eV_A": threshold,
                 "frames_sampled": len(sampled),
                 "frames_uncertain": n_uncertain, "frames_unphysical": sum(unphysical), "frames_relabelled": 0,
                 "shortest_A": shortest_contacts(sampled)}
        log.append(entry)
        print(f"active learning round {r} ({len(sampled[0])} atoms, {temperature:.0f} K): {n_uncertain} of "
              f"{len(sampled)} frames past {threshold:.3f} eV/Å, {sum(unphysical)} unphysical; shortest contacts "
              f"(Å) {_contacts(entry['shortest_A'])}", flush=True)
        if n_uncertain <= 0.1 * len(sampled) and not any(unphysical):
            break
        start = time.perf_counter()
        new = relabel(chosen, calc, f"active_round{r}")
        entry["label_s"] = round(time.perf_counter() - start, 1)
        labelled += new
        entry["frames_relabelled"] = len(new)
        committee = Committee([PaiNN(**m.hparams, seed=s, dtype=F64) for s, m in enumerate(committee.models)])
        start = time.perf_counter()
        fit_potential(committee, train + labelled, None, trainer=_trainer(mode["epochs"]), loss=_loss())
        entry["train_s"] = round(time.perf_counter() - start, 1)
        scores = frame_errors(committee, test)
        entry.update(forces_mae_after=scores["forces_mae"], energy_mae_meV_atom_after=1000 * scores["energy_mae"])
    after = frame_errors(committee, test)
    retrained = first_round - 1 + sum(1 for entry in log if entry["frames_relabelled"])
    # The committee before this call's rounds has its own MD under the untagged name already.
    own_after = own_md_errors(out, mode, committee, f"own_md_round{retrained}{tag if retrained >= first_round else ''}",
                              calc)
    return committee, {
        "rounds": log, "frames_relabelled": len(labelled), "forces_mae_before": before["forces_mae"],
        "forces_mae_after": after["forces_mae"], "energy_mae_meV_atom_before": 1000 * before["energy_mae"],
        "energy_mae_meV_atom_after": 1000 * after["energy_mae"], "own_md_before": own_before, "own_md_after": own_after,
        "teacher_shortest_A": reference, "labelled": labelled,
        "threshold_rule": "Committee.spread_threshold: 90 % of held-out teacher frames of the cell size stay under it"}


def spaced(frames: Sequence[Atoms], count: int, gap: int) -> list[Atoms]:
    """The first ``count`` of ``frames`` (in their order) whose MD steps (``info["step"]``) lie at least
    ``gap`` steps from every frame taken before: neighbouring frames of one run are near-copies, and
    every labelled 200-atom frame lengthens each later training by four unit cells' worth of atoms."""
    taken: list[Atoms] = []
    for atoms in frames:
        if len(taken) == count:
            break
        if all(abs(atoms.info["step"] - other.info["step"]) >= gap for other in taken):
            taken.append(atoms)
    return taken


def _contacts(shortest: dict) -> str:
    return ", ".join(f"{name} {d:.2f}" for name, d in shortest.items())


def continued_rounds(out: Path, mode: dict, extra: dict, committee: Committee, al: dict, train: list[Atoms],
                     test: list[Atoms], calc) -> tuple[Committee, dict, str]:
    """``extra["rounds"]`` more active-learning rounds after the mode's (``--extra-rounds``), each
    ``extra["steps"]`` Nose-Hoover steps on the supercell at ``extra["temperatures"]`` in turn,
    relabelling at most ``extra["relabel"]`` frames a round: the mode's 1 ps rounds do not meet what a
    longer production at 750-900 K finds (the S-S hole after a few ps, session 14).

    Returns (committee, its active-learning record, tag). The rounds continue the numbering, seeds and
    relabelled frames of the mode's rounds; the tag names the settings and is appended to every file
    of the new student and of what it drives (``student<tag>.pt``, ``students<tag>.json``,
    ``active_labels<tag>.extxyz`` with the new labels only, production runs, outputs), so the mode's
    student and runs stay as they were. Read back when ``students<tag>.json`` exists.
    """
    if mode["al_cell"] != "supercell":
        raise SystemExit("--extra-rounds runs the production supercell's protocol; the mode's rounds ran on the unit "
                         "cell (--al-cell unit): run them with --al-cell supercell in another --out folder")
    first = len(al["rounds"]) + 1
    temperatures = "-".join(f"{t:g}" for t in extra["temperatures"])
    tag = (f"_r{first}-{first + extra['rounds'] - 1}_{extra['steps'] * TIMESTEP / 1000:g}ps_{temperatures}K_"
           f"{extra['relabel']}l")
    student, record = out / f"student{tag}.pt", out / f"students{tag}.json"
    if student.exists() and record.exists():
        return load_potential(student, dtype=F64), json.loads(record.read_text())["active_learning"], tag
    earlier = read(out / "active_labels.extxyz", ":") if (out / "active_labels.extxyz").exists() else []
    round_mode = dict(mode, al_supercell_steps=extra["steps"], al_temperatures=tuple(extra["temperatures"]),
                      max_relabel_supercell=extra["relabel"])
    committee, more = active_learning(out, round_mode, committee, train, test, calc, extra["rounds"],
                                      labelled=earlier, first_round=first, tag=tag)
    save_student(out, tag, committee, more, more.pop("labelled")[len(earlier):], test,
                 len(read(out / "lgps_221.extxyz")), {"extra_rounds": extra, "settings": {k: mode[k] for k in SETTINGS}})
    return committee, more, tag


def save_student(out: Path, tag: str, committee: Committee, al: dict, labels: list[Atoms], test: list[Atoms],
                 n_atoms: int, record: dict) -> None:
    """Write a student after its active learning: ``student<tag>.pt``, the frames its rounds relabelled
    (``active_labels<tag>.extxyz``, when any), and ``students<tag>.json`` holding ``record`` and ``al``
    with the production threshold added (90 % of held-out-like frames of ``n_atoms`` atoms under it)."""
    if labels:
        with atomic_open(out / f"active_labels{tag}.extxyz", "w") as handle:
            write(handle, labels, format="extxyz")
    # The monitor flags the largest spread over the cell's atoms: calibrated for the production cell's size.
    al["production_threshold_eV_A"] = committee.spread_threshold(test, quantile=0.9, n_atoms=n_atoms)
    save_potential(committee, out / f"student{tag}.pt")
    with atomic_open(out / f"students{tag}.json", "w") as handle:
        json.dump({**record, "active_learning": al}, handle, indent=1)


def production_tag(mode: dict) -> str:
    """``_<P>ps`` for a production length other than the mode's (``--production-ps``), else empty: such runs
    get their own files, so the mode's runs stay resumable beside them."""
    return "" if "production_ps" not in mode else f"_{mode['production_ps']:g}ps"


#: The stages whose outputs carry a run's tag (:func:`production_tag` and the student's).
TAGGED_STAGES = ("production", "vibrations")


def tagged_times(out: Path, times: dict, student_tag: str, tag: str) -> dict:
    """The stage times (s) to record in ``summary<tag>.json``: ``times`` (the untagged summary's, then this
    run's so far), less the untagged summary's :data:`TAGGED_STAGES` (of the mode's student and length: this
    run's own would have been recorded as theirs resumed), with what ``summary<student_tag>.json`` (the
    extra rounds) and ``summary<tag>.json`` recorded, so that a resumed run keeps the first run's times.
    ``times`` itself for an untagged run."""
    if not tag:
        return times
    times = {k: v for k, v in times.items() if k.removesuffix("_resumed") not in TAGGED_STAGES}
    for t in dict.fromkeys((student_tag, tag)):
        path = out / f"summary{t}.json"
        if t and path.exists():
            saved = json.loads(path.read_text()).get("times_s", {})
            times.update({k: v for k, v in saved.items()
                          if t == tag or k.removesuffix("_resumed") not in TAGGED_STAGES})
    return times


def production_configs(out: Path, mode: dict, threshold: float, student_tag: str = "") -> list[dict]:
    """One NVT ``sims.generate`` config per temperature on the 2 x 2 x 1 supercell, relaxed on the student
    ``student<student_tag>.pt``."""
    tag = production_tag(mode) + student_tag
    return [md_config(out, f"student{student_tag}.pt", f"lgps_221_relaxed{student_tag}.extxyz",
                      f"production_{int(temperature)}K{tag}.db", temperature, 0, mode["production_steps"],
                      mode["production_every"], equilibrate=mode["production_equilibrate"], threshold=threshold,
                      compiled=mode.get("compiled", False))
            for temperature in mode["production_temperatures"]]


def relaxed_supercell(out: Path, committee: Committee, supercell: Atoms, tag: str = "") -> Atoms:
    """The supercell relaxed at fixed cell on the student (FIRE to 0.01 eV/Å): the start of production and
    the reference of the harmonic model (``lgps_221_relaxed<tag>.extxyz``)."""
    path = out / f"lgps_221_relaxed{tag}.extxyz"
    if path.exists():
        return read(path)
    atoms = supercell.copy()
    atoms.calc = Calculator(committee)
    FIRE(atoms, logfile=None).run(fmax=0.01, steps=3000)
    atoms.calc = None
    with atomic_open(path, "w") as handle:
        write(handle, atoms, format="extxyz")
    return atoms


def vibrations(out: Path, committee: Committee, reference: Atoms, paths: Sequence[str],
               temperatures: Sequence[float], frame_time: float, tag: str = "") -> list[dict]:
    """Knoop et al.'s anharmonicity sigma^A (all atoms, Li, S) and the Li VDOS at every temperature.

    The harmonic model is the student's own: finite-difference force constants at ``reference``
    (cached in ``force_constants<tag>.npy``, ``tag`` naming the student).
    """
    cached = out / f"force_constants{tag}.npy"
    if cached.exists():
        phi = np.load(cached)
    else:
        phi = force_constants(committee, reference, dtype=F64)
        with atomic_open(cached, "wb") as handle:
            np.save(handle, phi)
    rows = []
    for path, temperature in zip(paths, temperatures):
        frames = read_frames(path)
        row = {"T": temperature}
        for name, species in (("all", None), ("Li", "Li"), ("S", "S")):
            result = anharmonicity(frames, reference=reference, force_constants=phi, species=species)
            row[f"sigmaA_{name}"], row[f"sigmaA_{name}_err"] = result.sigma, result.stderr
        velocities = np.stack([f.get_velocities() for f in frames])[:, reference.numbers == 3]
        row["freq_THz"], row["vdos_Li"] = (x.tolist() for x in vdos(velocities, timestep=frame_time))
        rows.append(row)
    return rows


def analyse(path: Path, temperature: float, frame_time: float) -> dict:
    frames = read_frames(path)
    msd = MSD(timestep=frame_time, species="Li").compute(frames)
    row = {"T": temperature, "frames": len(frames), "time_ps": (len(frames) - 1) * frame_time / 1000}
    for name, dims in (("D", (0, 1, 2)), ("D_ab", (0, 1)), ("D_c", (2,))):
        r = tracer_diffusivity(msd, dims=dims)
        row[name], row[name + "_err"] = r.D, r.stderr
    tracer = tracer_diffusivity(msd)
    collective = collective_diffusivity(frames, timestep=frame_time, species="Li")
    row["D_sigma"], row["D_sigma_err"] = collective.D, collective.stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row["haven"], row["haven_err"] = haven_ratio(tracer, collective)
    row["haven_reliable"] = not caught
    n_li = int((frames[0].numbers == 3).sum())
    row["sigma_mS_cm"] = nernst_einstein_conductivity(collective.D, n_ions=n_li, volume=frames[0].get_volume(),
                                                      temperature=temperature)
    row["sigma_err"] = row["sigma_mS_cm"] * collective.stderr / abs(collective.D)
    row["uncertain_fraction"] = float(np.mean([bool(f.info.get("uncertain", False)) for f in frames]))
    row["forces_std_max_mean"] = float(np.mean([f.info.get("forces_std_max", np.nan) for f in frames]))
    shortest, shares = contact_statistics(frames)
    row.update({f"shortest_{name}_A": d for name, d in shortest.items()})
    row.update({f"close_{name}_per_mille": 1000.0 * share for name, share in shares.items()})
    return row


def arrhenius(rows: list[dict]) -> dict:
    fits = {}
    for name in ("D", "D_ab", "D_c", "D_sigma"):
        ok = [r for r in rows if r[name] > 0]
        if len(ok) < 3:
            fits[name] = None
            continue
        fit = arrhenius_fit([r["T"] for r in ok], [r[name] for r in ok], [r[name + "_err"] for r in ok])
        fits[name] = {"Ea_eV": fit.Ea, "Ea_err": fit.Ea_err, "D0_A2_fs": fit.D0, "n_points": len(ok)}
        try:  # the paper's claim: a change of slope of D*_ab near 400 K (t_break fixed before the data)
            kink = arrhenius_slope_change([r["T"] for r in ok], [r[name] for r in ok], [r[name + "_err"] for r in ok],
                                          t_break=PAPER_T_BREAK)
            fits[name]["slope_change_400K"] = {"Ea_low": kink.Ea_low, "Ea_low_err": kink.Ea_low_err,
                                               "Ea_high": kink.Ea_high, "Ea_high_err": kink.Ea_high_err,
                                               "p_value": kink.p_value}
        except SimsInputError as err:
            fits[name]["slope_change_400K"] = str(err)
    return fits


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, label in (("D", "D*"), ("D_ab", "D*_ab"), ("D_c", "D*_c"), ("D_sigma", "D_sigma")):
        ok = [r for r in rows if r[name] > 0]
        x = [1000.0 / r["T"] for r in ok]
        y = [0.1 * r[name] for r in ok]  # cm^2/s
        ax.errorbar(x, y, yerr=[0.1 * r[name + "_err"] for r in ok], marker="o", capsize=2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("D (cm$^2$/s)")
    ax.set_title("Li in Li10GeP2S12, PaiNN student of CHGNet")
    ax.legend()
    save_figure(fig, path, bbox_inches="tight")
    plt.close(fig)


def plot_vdos(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for r in rows:
        ax.plot(r["freq_THz"], r["vdos_Li"], label=f"{r['T']:.0f} K")
    ax.set_xlim(0, 20)
    ax.set_xlabel("frequency (THz)")
    ax.set_ylabel("Li VDOS (1/THz)")
    ax.set_title("Li vibrations in Li10GeP2S12, PaiNN student")
    ax.legend()
    save_figure(fig, path, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default="lgps_transport", help="output folder (rerun to resume)")
    parser.add_argument("--mode", choices=tuple(MODES), default=None,
                        help="budget: quick (minutes to an hour on one core; far from converged), medium (quick's "
                             "students and production on about 8 times quick's teacher frames: 80 min measured) or full "
                             "(the default; about 40 core-hours with --compiled, not run)")
    parser.add_argument("--quick", action="store_true", help="the same as --mode quick")
    parser.add_argument("--dask", type=int, default=0, help="run production temperatures on N local Dask workers")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--al-rounds", type=int, default=None,
                        help="most active-learning rounds (default: the mode's); fewer when a round's MD stays "
                             "under the threshold")
    parser.add_argument("--al-cell", choices=("supercell", "unit"), default=None,
                        help="where the active-learning rounds' MD runs: the production supercell with the production "
                             "protocol at the mode's al_temperatures (default), or the 50-atom cell (Langevin at the "
                             "top temperature)")
    parser.add_argument("--production-ps", type=float, default=None,
                        help="production length per temperature in ps after equilibration (default: the mode's); "
                             "the runs go to their own files, the earlier stages are read back")
    parser.add_argument("--extra-rounds", type=int, default=0,
                        help="after the mode's active learning, this many more rounds (on a finished folder: its "
                             "student and rounds are read back); the new student and everything it drives go to "
                             "files tagged with these settings")
    parser.add_argument("--round-ps", type=float, default=10.0,
                        help="length of each extra round's Nose-Hoover MD on the supercell (ps; default 10, the "
                             "full mode's rounds)")
    parser.add_argument("--round-temperatures", default="900,750",
                        help="comma-separated temperatures (K) of the extra rounds, in turn (default 900,750)")
    parser.add_argument("--round-relabel", type=int, default=8,
                        help="most frames relabelled by the teacher in each extra round (default 8)")
    parser.add_argument("--compiled", action="store_true",
                        help="production MD with the students compiled (torch.compile: about 30 s to compile in "
                             "each process, then about 1.6-2.3 times faster a step on CPU, the same numbers to "
                             "round-off); a run started without it resumes only without it")
    parser.add_argument("--repulsion", choices=("zbl", "none"), default="zbl",
                        help="short-range prior of the students (NeuralPotential repulsion)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick and args.mode not in (None, "quick"):
        parser.error(f"--quick is --mode quick; it contradicts --mode {args.mode}")
    args.mode = "quick" if args.quick else args.mode or "full"
    mode = dict(MODES[args.mode])
    if args.al_rounds is not None:
        if args.al_rounds < 0:
            parser.error(f"--al-rounds must be >= 0, got {args.al_rounds}")
        mode["al_rounds"] = args.al_rounds
    if args.al_cell is not None:
        mode["al_cell"] = args.al_cell
    if args.production_ps is not None:
        steps = round(args.production_ps * 1000.0 / TIMESTEP)
        if steps < 10 * mode["production_every"]:
            parser.error(f"--production-ps {args.production_ps:g} gives {steps} steps, fewer than 10 frames of "
                         f"{mode['production_every']} steps: too short for a diffusivity")
        if steps != mode["production_steps"]:
            mode["production_steps"], mode["production_ps"] = steps, args.production_ps
    if args.compiled:
        mode["compiled"] = True
    extra = None
    if args.extra_rounds:
        steps = round(args.round_ps * 1000.0 / TIMESTEP)
        try:
            temperatures = [float(t) for t in args.round_temperatures.split(",")]
        except ValueError:
            parser.error(f"--round-temperatures must be comma-separated numbers (K), got {args.round_temperatures!r}")
        if args.extra_rounds < 0 or args.round_relabel < 1 or steps < 10 * mode["al_every"] or min(temperatures) <= 0:
            parser.error(f"--extra-rounds {args.extra_rounds} must be positive, --round-relabel {args.round_relabel} "
                         f"at least 1, --round-ps {args.round_ps:g} at least {10 * mode['al_every'] * TIMESTEP / 1000:g} "
                         f"(10 frames) and --round-temperatures positive")
        extra = {"rounds": args.extra_rounds, "steps": steps, "temperatures": temperatures,
                 "relabel": args.round_relabel}
    mode["repulsion"] = None if args.repulsion == "none" else args.repulsion
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times, summary = {}, {"mode": args.mode, "settings": mode, "extra_rounds": extra}
    if (out / "summary.json").exists():  # a resumed run keeps the times of the stages it reads back
        times = json.loads((out / "summary.json").read_text()).get("times_s", {})
    calc = chgnet_calculator()
    supercell = lgps_cell(seed=0).repeat((2, 2, 1))
    write(out / "lgps_221.extxyz", supercell)

    start = time.perf_counter()
    train, test = teacher_frames(out, mode, calc)
    summary["teacher_frames"] = {"train": len(train), "held_out": len(test)}
    _stage(times, "teacher", start)

    start = time.perf_counter()
    if (out / "student.pt").exists() and (out / "students.json").exists():
        committee = load_potential(out / "student.pt", dtype=F64)
        saved = json.loads((out / "students.json").read_text())
        sizes, al = saved["sizes"], saved["active_learning"]
        if "rounds" not in al:
            raise SystemExit(f"{out / 'students.json'} was written by an older version of this example (one round "
                             f"of active learning, no short-range prior); run in a new --out folder")
        if saved.get("settings") != {k: mode[k] for k in SETTINGS}:
            raise SystemExit(f"{out / 'students.json'} holds students of other settings ({saved.get('settings')}); "
                             f"run in a new --out folder or with those settings")
    else:
        committee, sizes = train_students(out, mode, train, test, supercell, mode["repulsion"])
        _stage(times, "students", start)
        start = time.perf_counter()
        committee, al = active_learning(out, mode, committee, train, test, calc, mode["al_rounds"])
        save_student(out, "", committee, al, al.pop("labelled"), test, len(supercell),
                     {"sizes": sizes, "settings": {k: mode[k] for k in SETTINGS}})
        _stage(times, "active_learning", start)
    student_tag = ""
    if extra is not None:
        start = time.perf_counter()
        summary["active_learning_of_mode"] = al
        committee, al, student_tag = continued_rounds(out, mode, extra, committee, al, train, test, calc)
        _stage(times, "extra_rounds", start)
    # The end products of a run with a production length or student other than the mode's carry both tags.
    tag = production_tag(mode) + student_tag
    times = tagged_times(out, times, student_tag, tag)
    summary["students"], summary["active_learning"] = sizes, al
    print(f"active learning: {len(al['rounds'])} round(s), {al['frames_relabelled']} frames relabelled; "
          f"held-out forces MAE {al['forces_mae_before']:.3f} -> "
          f"{al['forces_mae_after']:.3f} eV/Å, energy {al['energy_mae_meV_atom_before']:.1f} -> "
          f"{al['energy_mae_meV_atom_after']:.1f} meV/atom", flush=True)
    own = {k: (al["own_md_before"][k], al["own_md_after"][k]) for k in ("forces_mae", "energy_mae_meV_atom")}
    print(f"on the committee's own {max(mode['production_temperatures']):.0f} K MD: forces MAE "
          f"{own['forces_mae'][0]:.3f} -> {own['forces_mae'][1]:.3f} eV/Å, energy {own['energy_mae_meV_atom'][0]:.1f} "
          f"-> {own['energy_mae_meV_atom'][1]:.1f} meV/atom; shortest contacts (Å) "
          f"{_contacts(al['own_md_before']['shortest_A'])} -> {_contacts(al['own_md_after']['shortest_A'])} "
          f"(teacher frames: {_contacts(al['teacher_shortest_A'])}); production threshold "
          f"{al['production_threshold_eV_A']:.3f} eV/Å", flush=True)

    start = time.perf_counter()
    reference = relaxed_supercell(out, committee, supercell, student_tag)
    configs = production_configs(out, mode, al["production_threshold_eV_A"], student_tag)
    if args.dask:
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=args.dask, threads_per_worker=1) as cluster, Client(cluster) as client:
            paths = generate_many(configs, client=client)
    else:
        paths = generate_many(configs)
    _stage(times, "production", start)

    frame_time = mode["production_every"] * TIMESTEP
    rows = [analyse(Path(p), t, frame_time) for p, t in zip(paths, mode["production_temperatures"])]
    summary["transport"], summary["arrhenius"] = rows, arrhenius(rows)
    columns = list(rows[0])
    with atomic_open(out / f"transport{tag}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / f"arrhenius{tag}.png")
    start = time.perf_counter()
    vib = vibrations(out, committee, reference, paths, mode["production_temperatures"], frame_time, student_tag)
    _stage(times, "vibrations", start)
    plot_vdos(vib, out / f"vdos{tag}.png")
    summary["anharmonicity"] = [{k: v for k, v in r.items() if k not in ("freq_THz", "vdos_Li")} for r in vib]
    summary["times_s"] = times
    with atomic_open(out / f"summary{tag}.json", "w") as handle:
        json.dump(summary, handle, indent=1)

    print("\n| T (K) | ps | D* | D*_ab | D*_c | D_sigma | Haven | sigma (mS/cm) | uncertain "
          "| mean max spread (eV/Å) | shortest S-S / Li-S / Li-Li (Å) | S-S < 2.5 / Li-S, Li-Li < 2.0 Å (‰) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cm = {k: f"{0.1 * r[k]:.2e} ± {0.1 * r[k + '_err']:.1e}" for k in ("D", "D_ab", "D_c", "D_sigma")}
        print(f"| {r['T']:.0f} | {r['time_ps']:.1f} | {cm['D']} | {cm['D_ab']} | {cm['D_c']} | {cm['D_sigma']} | "
              f"{r['haven']:.2f} ± {r['haven_err']:.2f}{'' if r['haven_reliable'] else ' (!)'} | "
              f"{r['sigma_mS_cm']:.3g} ± {r['sigma_err']:.2g} | {r['uncertain_fraction']:.0%} | "
              f"{r['forces_std_max_mean']:.2f} | "
              f"{' / '.join('%.2f' % r['shortest_%s_A' % name] for name in CONTACTS)} | "
              f"{' / '.join('%.1f' % r['close_%s_per_mille' % name] for name in CONTACTS)} |")
    print("(diffusivities in cm^2/s; (!): relative errors above 20 %, the Haven ratio's error is unreliable)")
    for name, fit in summary["arrhenius"].items():
        if fit is None:
            print(f"Arrhenius {name}: fewer than 3 positive values")
            continue
        kink = fit["slope_change_400K"]
        kink = (kink if isinstance(kink, str) else f"below/above 400 K: {kink['Ea_low']:.3f} ± {kink['Ea_low_err']:.3f} / "
                f"{kink['Ea_high']:.3f} ± {kink['Ea_high_err']:.3f} eV, p(one line) = {kink['p_value']:.2g}")
        print(f"Arrhenius {name}: Ea = {fit['Ea_eV']:.3f} ± {fit['Ea_err']:.3f} eV ({fit['n_points']} points); {kink}")
    print("\n| T (K) | sigma^A all | sigma^A Li | sigma^A S |  (Knoop et al. 2020; the student's harmonic model)")
    print("|---|---|---|---|")
    for r in summary["anharmonicity"]:
        print(f"| {r['T']:.0f} | " + " | ".join(f"{r[f'sigmaA_{n}']:.2f} ± {r[f'sigmaA_{n}_err']:.2f}"
                                               for n in ("all", "Li", "S")) + " |")
    print(f"stage times (s): {times}")


if __name__ == "__main__":
    main()
