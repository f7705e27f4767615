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
core), ``--mode medium`` (quick's students, rounds and production on a teacher set about 7 times
quick's: 4 CHGNet runs of 1500 steps at 300-1200 K and 20 strained frames; about 2 h, estimated from
its measured pieces, not run end to end) or without either for the full protocol.

Results
-------
Teacher data volume (session 13, 7 Dec 2026 19:22-20:45, 1 torch thread under ``nice -n 5``, load
average 2-6.5 from other jobs; scripts outside the repository, /work/runs/s13/lgps/). The question:
is quick's teacher set (34 frames) what keeps the student unphysical above 600 K? Teacher: the full
mode's CHGNet runs (its exact ``sims.generate`` configs in /work/runs/lgps_full, so
``lgps_transport.py -o /work/runs/lgps_full`` resumes them), run 500 steps at a time in turn on one
core, 0.16 s per step at load 2 and 0.25-0.5 s at load 5-6; stopped at 20:03 with 600/900/1200 K at
1500 of their 2500 sampled steps (60 frames each, 50 fs apart), 300 K at 1000 (40 frames), the
held-out 900 K run (seed 1) at 500 (20 frames), plus the full mode's 20 strained frames: 240
training frames, 7 times quick's. Student: a K = 2 committee of PaiNN 16 / 2 built and trained as
:func:`train_students` does (float64, 5 Å, ZBL, seeds 0 and 1, ``_trainer``/``_loss``: w_F = 10
w_E), 40 epochs (1200 optimiser steps per member against quick's 500; 668 s for both at load 5), no
active learning. The quick-set committee was retrained the same way for comparison (100 epochs, 425
s; it reproduces the "ZBL, no AL" row of the table further down to the 0.01 Å).

* Held-out (the full held-out run's 20 frames): forces 0.066 eV/Å, energy 1.8 meV/atom, bias 0.0
  (quick set: 0.117 eV/Å, 6.2 meV/atom, bias -5.5); on quick's held-out frames 0.053 eV/Å and 2.3
  (+2.3) against the quick set's 0.090 and 2.8 (+2.0).
* Training fit: energy MAE 1.7 / 2.2 / 2.5 / 3.5 meV/atom at 300 / 600 / 900 / 1200 K (mean signed
  +1.3 / +1.6 / +0.3 / -2.3), strained 9.6 (-1.9); forces 0.041-0.079 eV/Å. The frames are fit.
* MD on the 200-atom supercell, quick production's protocol (0.2 ps Langevin + 1.0 ps Nose-Hoover
  from the unrelaxed cell, seed 0, a frame every 10 fs). Besides the shortest contact over the run
  (an extreme value that grows with the number of atoms and frames looked at), the share of S atoms
  whose nearest S is under 2.5 Å, of Li whose nearest S is under 2.0 Å and of Li whose nearest Li
  is under 2.0 Å (per mille, pooled over frames: independent of the cell size), the share of frames
  past the committee's 200-atom threshold, and CHGNet on 10 of the frames (forces MAE eV/Å, mean
  signed energy error meV/atom):

  | MD | T (K) | shortest S-S / Li-S / Li-Li (Å) | S-S < 2.5 / Li-S / Li-Li < 2.0 (‰) | past | CHGNet on it |
  |---|---|---|---|---|---|
  | quick set, no AL | 900 | 1.77 / 1.90 / 1.80 | 224 / 8.1 / 2.2 | 94 % of 0.696 | 0.320, -107 |
  | full set (240 frames), no AL | 900 | 2.33 / 1.79 / 1.86 | 2.7 / 9.5 / 1.8 | 24 % of 0.362 | 0.096, -15.7 |
  | same | 750 | 2.53 / 1.86 / 1.88 | 0.0 / 3.6 / 0.8 | 2 % | 0.070, -4.5 |
  | same | 600 | 2.75 / 1.93 / 1.99 | 0.0 / 1.5 / 0.5 | 6 % | 0.058, -2.9 |
  | 34 frames from the long runs, no AL | 900 | 1.82 / 1.88 / 1.84 | 165 / 4.9 / 2.8 | 100 % of 0.327 | 0.300, -132 |
  | same | 750 | 1.77 / 1.86 / 1.78 | 65 / 3.2 / 1.8 | 92 % | 0.224, -86 |
  | 64 frames from the long runs, no AL | 900 | 1.77 / 1.88 / 1.71 | 11.9 / 8.4 / 1.2 | 60 % of 0.358 | 0.116, -17.5 |
  | quick set + 20 labels (round 5 below) | 900 | 2.48 / 1.90 / 1.88 | 0.2 / 4.8 / 0.8 | 51 % of 0.320 | labels 17.5 under |
  | fourth run's production (9 labels, relaxed start) | 600 | 2.43 / 1.95 / 2.17 | 0.6 / 1.1 / 0 | 75 % | labels 30 under |
  | same | 750 | 2.40 / 1.87 / 1.90 | 1.7 / 2.5 / 0.5 | 87 % | |
  | same | 900 | 2.39 / 1.85 / 1.92 | 5.8 / 9.6 / 0.8 | 100 % | |
  | CHGNet, the same MD on 200 atoms (500 s) | 900 | 2.46 / 1.90 / 1.90 | 0.8 / 8.6 / 1.2 | - | - |
  | same (306 s) | 750 | 2.55 / 1.93 / 1.99 | 0.0 / 4.0 / 0.2 | - | - |
  | CHGNet teacher runs (50 atoms, 60 frames) | 600 | 2.62 / 1.97 / 2.21 | 0 / 4.2 / 0 | - | - |
  | same | 900 | 2.36 / 1.84 / 2.12 | 2.8 / 8.3 / 0 | - | - |
  | same | 1200 | 2.22 / 1.88 / 1.93 | 4.2 / 26.7 / 1.7 | - | - |
  | CHGNet quick teacher runs (10 frames) | 600 | 2.90 / 1.99 / 2.31 | 0 / 10 / 0 | - | - |
  | same | 900 | 2.85 / 1.97 / 2.17 | 0 / 10 / 0 | - | - |
  | same | 1200 | 2.79 / 1.96 / 1.97 | 0 / 25 / 10 | - | - |

Answer: yes, teacher data volume. Without a single active-learning label the 240-frame student's 900 K
MD has CHGNet's contact statistics (S-S under 2.5 Å 2.7 ‰ against CHGNet's 0.8 ‰ on 200 atoms and 2.8
‰ on 50; Li-S 9.5 against 8.6 ‰; Li-Li 1.8 against 1.2 ‰; its single shortest contacts stay a little
under CHGNet's over the same MD: S-S 2.33 against 2.46, Li-S 1.79 against 1.90 Å), and at 750 K too
(0.0 / 3.6 / 0.8 ‰ against CHGNet's 0.0 / 4.0 / 0.2 on 200 atoms), where the quick set's puts 22 % of
S atoms under 2.5 Å; its spread falls (mean largest 0.31 against 1.11 eV/Å), CHGNet's energy of its
own frames is 15.7 meV/atom above its prediction at 900 K (quick set: 107; the labelled quick
committees' labels: 17.5-30) and 2.9-4.5 at 600-750 K, and held-out errors fall (0.066 eV/Å, no energy
shift). The count of frames, not their spread over longer runs: 34 frames drawn evenly from the same
runs (10 per temperature from their 1500 steps, one per strain; 100 epochs, 126 s) bring quick's hole
back (the "34 frames from the long runs" rows; held-out 0.101 eV/Å, 3.8 meV/atom; training fit 3.0 /
5.2 / 6.2 meV/atom at 600 / 900 / 1200 K). Twice quick's count (20 per temperature, 64 frames, 100
epochs, 312 s) is not enough either: held-out 0.076 eV/Å and 2.3 meV/atom, CHGNet 17.5 meV/atom above
it on its 900 K frames, but 11.9 ‰ of S under 2.5 Å and S-S down to 1.77 Å. So the quick mode cannot
be made physical by a larger teacher set and stay minutes-scale: 240 frames cost about 40 min of
CHGNet MD at load 5 (0.16-0.5 s per step) and 11 min of training (each row above is one trajectory;
the 34- and 64-frame sets had 500 and 800 optimiser steps per member, the 240-frame set 1200). Second
finding: the teacher contacts this docstring measured every student against (S-S >= 2.68, Li-S >= 1.96
Å) come from quick's 30 frames of 0.2 ps runs; CHGNet's own MD reaches S-S 2.36 Å (900 K) and 2.22 Å
(1200 K) on 50 atoms within 3 ps, and 2.46 Å, Li-S 1.90 Å on 200 atoms at 900 K in 1.2 ps, so shortest
contacts of 2.3-2.5 Å at 750-900 K are not by themselves unphysical, and the contact rule of
:func:`active_learning` (0.9 times the teacher frames' shortest: 2.40 Å for S-S in quick mode)
relabels frames CHGNet itself visits. By the per-atom statistics the labelled quick committees were
already close to CHGNet's contacts at 900 K (round 5: 0.2 ‰; fourth run: 5.8 ‰); what the data volume
fixes beyond them is the energy of those configurations (15.7 against 17.5-30 meV/atom under CHGNet)
and the spread (24 % of frames past the threshold against 51-100 %). The full mode's teacher set was
finished afterwards (20:57; about 58 min of one core in all, load 1-6.5): /work/runs/lgps_full holds
all 420 training and 100 held-out frames, which :func:`teacher_frames` reads back in 1 s. Not
measured: a student on those 420 frames, 100 or 200 epochs, K = 3, more than one seed per MD, CHGNet's
200-atom MD at 600 K, active learning or production on this student. ``--mode medium`` is this
student's recipe (teacher runs of 1500 steps at 300-1200 K, 20 strained frames, 40 epochs) with
quick's rounds and production; it was not run end to end (time): its pieces suggest about 2 h on one
core (teacher about 25-50 min, students 20-30 min, rounds 30-45 min at this load).

Quick mode with the code as it is now (fourth run, rounds on the supercell; 7 Dec 2026 16:43-17:39,
from nothing, ``nice -n 5``, 1 torch thread on 2 cores shared with other long jobs, load average
4-6.5): 56 min wall: teacher 202 s, students 677 s, active learning 1786 s, production 570 s,
vibrations 87 s. The stages that did the same work as in the third run below ran 2.6-3.1 times
slower than there (students 677 s against 231 s; vibrations 1.4 times), so at that run's load
this one would take about 20 min (scaled, not measured); the rounds' retraining is most of it (354, 447 and 659 s: each 200-atom label adds four unit cells' worth of
atoms to every later training). Rounds (200 atoms, 0.2 ps Langevin + 1.0 ps Nose-Hoover, a frame
every 20 fs): 900 K, 50 of 50 frames past 0.359 eV/Å and 47 with a contact under 0.9 x the
teacher's shortest (S-S 1.80 Å); 750 K, 36 past 0.393, 2 short (S-S 2.37 Å); 600 K, 7 past
0.352, none short (S-S 2.55 Å); 3 frames relabelled each round (9 in all; CHGNet single points of
200 atoms 1.6-2.1 s each). Held-out forces 0.090 -> 0.076 eV/Å, energy 2.8 -> 7.3 meV/atom (a
shift: +7.3, see below); the committee's own 900 K MD of the unit cell 0.160 -> 0.114 eV/Å, 22.5
-> 9.7 meV/atom, S-S 2.14 -> 2.54 Å; production threshold 0.260 eV/Å (200 atoms).

  | T (K) | D* (cm^2/s) | D*_ab | past threshold | shortest S-S / Li-S / Li-Li (Å) | sigma^A all / Li |
  |---|---|---|---|---|---|
  | 300 | 3.5e-5 ± 0.4e-5 | 3.5e-5 ± 0.5e-5 | 12 % | 2.88 / 2.06 / 2.30 | 2.1 / 3.0 |
  | 360 | 2.7e-5 ± 0.5e-5 | 2.8e-5 ± 0.6e-5 | 11 % | 2.62 / 2.02 / 2.24 | 2.2 / 3.3 |
  | 450 | 4.5e-5 ± 0.6e-5 | 3.8e-5 ± 0.7e-5 | 28 % | 2.66 / 1.96 / 2.11 | 2.2 / 3.4 |
  | 600 | 6.4e-5 ± 0.8e-5 | 5.1e-5 ± 1.0e-5 | 75 % | 2.43 / 1.95 / 2.17 | 3.4 / 4.5 |
  | 750 | 1.10e-4 ± 0.11e-4 | 1.13e-4 ± 0.13e-4 | 87 % | 2.40 / 1.87 / 1.90 | 3.5 / 5.4 |
  | 900 | 1.20e-4 ± 0.13e-4 | 1.13e-4 ± 0.15e-4 | 100 % | 2.39 / 1.85 / 1.92 | 5.5 / 5.4 |

  Ea(D*_ab) = 0.052 ± 0.006 eV; with a bend fixed at 400 K, -0.032 ± 0.029 eV below and 0.098 ±
  0.017 eV above (F-test p = 0.061). Not the physical student the rounds were for: at 600-900 K
  S-S still reaches 2.39-2.43 Å (CHGNet >= 2.68), Li-S 1.85-1.87 Å at 750-900 K (CHGNet >= 1.96),
  only Li-Li stays at CHGNet's 1.9 Å; against the third run (50-atom rounds, 20 labels: S-S
  2.34-2.55, Li-S 1.89-1.92, Li-Li 1.78-2.03 Å at 600-900 K) Li-Li improved at 900 K (1.92 against
  1.78 Å), S-S did not, and 360-450 K got worse (S-S 2.62-2.66 against 2.74-2.83 Å; 11-28 % past
  a threshold of 0.260 eV/Å against 4-8 % past 0.290). Why: 9 labels,
  and 900 K sampled only in round 1, by the untrained committee; the loop stopped after 3 rounds
  with the 600 K round still 7 of 50 past the threshold. The relabelled frames are not learnt:
  the final committee puts them 30 ± 20 meV/atom under their CHGNet energies (the teacher frames
  +4 to +8 above theirs), so the hole is still there. More rounds cycling back to 900 K, more
  labels per round and a larger student are what is left to try. One more round by hand
  (round 4, 900 K, from this run's committee: 50 of 50 frames past 0.260 eV/Å, 5 short, S-S 2.25
  Å; 3 labels, retraining 565 s) gave held-out 0.075 eV/Å and 7.9 meV/atom (+7.9 shift), and its
  900 K MD on 200 atoms (production protocol from the unrelaxed supercell, seed 0) S-S 2.43, Li-S
  1.80, Li-Li 1.81 Å, 82 % past 0.320 eV/Å: no better; not run further here (time).
  Round 5 by hand (7 Dec 2026 18:02-18:36, 1 torch thread, load average 2.3-4.4;
  /work/runs/s12/lgps2/exp.py, not in the repository): 8 labels from round 4's 900 K MD (the most
  uncertain, 100 fs apart; none under the contact margin), 20 labels in all, K = 2 committees
  retrained from scratch, then the same 900 K MD check. PaiNN 16 / 2 (720 s of training):
  held-out 0.068 eV/Å, 11.2 meV/atom (+11.2 shift), the 20 labels still 17.5 ± 10.7 meV/atom under
  CHGNet; 900 K S-S / Li-S / Li-Li 2.48 / 1.90 / 1.88 Å, 51 % past 0.320 eV/Å. PaiNN 32 / 2 (1125 s):
  0.065 eV/Å, 7.8 meV/atom (+7.8), labels 13.1 ± 8.1 under; 2.51 / 1.79 / 1.85 Å, 45 % past 0.267.
  More 900 K labels move S-S up a little (2.43 -> 2.48-2.51 Å), the larger student fits the labels
  somewhat better but its Li-S is no better; neither reaches CHGNet's contacts (S-S >= 2.68, Li-S >=
  1.96 Å), one trajectory each, so not a default change (8 labels a round would make each quick
  round's retraining about twice as long). Round 6 was not run (time).

Third run (rounds on the 50-atom cell, ``--al-cell unit`` now; 7 Dec 2026 15:38-15:58, from
nothing, 1 torch thread, load average about 3 from other jobs): 19.6 min wall (942 s CPU): teacher 65 s, students
231 s, active learning 442 s (3 rounds: 6, 2 and 14 of 20 frames past the threshold, 0, 2 and 9
with contacts under 0.9 x the teacher's shortest; 20 frames relabelled), production 217 s (from the
relaxed supercell), vibrations 64 s. Held-out forces 0.090 -> 0.073 eV/Å, energy 2.8 -> 7.8
meV/atom; the committee's own 900 K MD (CHGNet-labelled) 0.160 -> 0.106 eV/Å, 22.5 -> 7.2
meV/atom, shortest S-S 2.14 -> 2.45 Å; production threshold 0.290 eV/Å (200 atoms).

  | T (K) | D* (cm^2/s) | D*_ab | D_sigma | past threshold | shortest S-S / Li-S / Li-Li (Å) | sigma^A all / Li |
  |---|---|---|---|---|---|---|
  | 300 | 2.7e-5 ± 0.4e-5 | 2.4e-5 ± 0.4e-5 | 4.2e-5 ± 1.9e-5 | 1 % | 2.92 / 2.07 / 2.31 | 2.2 / 3.4 |
  | 360 | 2.8e-5 ± 0.4e-5 | 2.4e-5 ± 0.5e-5 | 3.8e-5 ± 3.5e-5 | 4 % | 2.83 / 2.03 / 2.18 | 2.4 / 3.7 |
  | 450 | 4.2e-5 ± 0.6e-5 | 3.8e-5 ± 0.6e-5 | 1.1e-5 ± 5.0e-5 | 8 % | 2.74 / 2.02 / 2.22 | 2.3 / 3.7 |
  | 600 | 6.5e-5 ± 0.8e-5 | 5.0e-5 ± 0.9e-5 | 0.5e-5 ± 6.9e-5 | 49 % | 2.49 / 1.90 / 2.03 | 3.2 / 4.4 |
  | 750 | 9.2e-5 ± 1.1e-5 | 7.8e-5 ± 1.2e-5 | 2.1e-5 ± 12e-5 | 68 % | 2.55 / 1.92 / 1.98 | 4.1 / 5.6 |
  | 900 | 1.51e-4 ± 0.13e-4 | 1.39e-4 ± 0.16e-4 | 3.5e-4 ± 1.2e-4 | 94 % | 2.34 / 1.89 / 1.78 | 5.5 / 6.8 |

  Ea(D*_ab) = 0.071 ± 0.007 eV; with a bend fixed at 400 K, 0.000 ± 0.036 eV below and 0.101 ±
  0.018 eV above (F-test p = 0.13). Up to 450 K the student now stays physical (S-S >= 2.74 Å);
  from 600 K S-S reaches 2.3-2.5 Å (CHGNet: >= 2.68 Å). The caveats below (vibrational fit window,
  unconverged diffusivities, an unreliable harmonic model) apply unchanged. The two earlier runs:

Quick mode, 7 Dec 2026 (second run: ZBL prior, multi-round loop), from nothing, 1 torch thread on
2 shared cores (load average 3.5-7.5 from other jobs), under ``nice``: 33.3 min wall (876 s CPU,
43 % of a core): CHGNet teacher 337 s (4 Langevin runs of 120 steps at 600/900/1200 K and a
held-out 900 K run, 10 frames each, plus 4 strained frames), students 839 s, active learning 424 s,
production 366 s (6 x 600 steps). The first run (same day, no repulsion, one round) took 26.4 min
at a lower load; its numbers are given as "first run" below.

* Students on the held-out 900 K trajectory (34 training frames, 100 epochs, w_F = 10 w_E, ZBL):
  PaiNN 16 features / 2 interactions forces MAE 0.100 eV/Å (mean |F| 0.44), energy 3.7 meV/atom,
  3.9e3 atom-steps/s on 200 atoms; PaiNN 32 / 2 0.092 eV/Å, 1.3 meV/atom, 1.7e3 atom-steps/s
  (first run, no ZBL: 0.107 and 0.096 eV/Å, 3.9 and 2.2 meV/atom). The K = 2 committee of the
  small size before active learning: 0.090 eV/Å, 2.8 meV/atom (first run 0.098, 3.0): the prior
  does not cost accuracy on teacher-like frames.
* Active learning (this run stopped on the spread alone, the rule before the contact check):
  round 1, threshold 0.331 eV/Å, 6 of 20 frames of the committee's 900 K MD past it (first run
  without ZBL: 17 of 20), all relabelled, committee retrained: held-out forces 0.090 -> 0.078
  eV/Å, energy 2.8 -> 5.8 meV/atom; round 2: 2 of 20 past 0.439 eV/Å, so the loop stopped, yet
  that MD reached S-S contacts of 2.14 Å (teacher frames: >= 2.68 Å). The committee's own 900 K
  MD (seed 1, CHGNet-labelled): forces 0.160 -> 0.129 eV/Å, energy 22.5 -> 13.1 meV/atom (first
  run: 0.178 -> 0.144, 25.7 -> 10.4), shortest S-S 2.14 -> 2.05 Å.
* Production (committee, 200 atoms, 0.2 ps Langevin + 1.0 ps Nose-Hoover, frames every 10 fs;
  threshold 0.465 eV/Å calibrated for 200 atoms; this run started from the unrelaxed supercell,
  the code now starts from the one relaxed on the student, see Vibrations below):

  | T (K) | D* (cm^2/s) | D*_ab | D_sigma | Haven | past threshold | shortest S-S / Li-S / Li-Li (Å) |
  |---|---|---|---|---|---|---|
  | 300 | 3.4e-5 ± 0.4e-5 | 2.7e-5 ± 0.4e-5 | 2.4e-5 ± 3.1e-5 | 1.4 ± 1.9 | 0 % | 2.92 / 2.05 / 2.34 |
  | 360 | 4.8e-5 ± 0.5e-5 | 3.4e-5 ± 0.5e-5 | 1.7e-5 ± 3.2e-5 | 3 ± 6 | 0 % | 2.85 / 2.03 / 2.21 |
  | 450 | 6.0e-5 ± 0.6e-5 | 5.4e-5 ± 0.7e-5 | 5.2e-5 ± 6.6e-5 | 1.1 ± 1.5 | 0 % | 2.81 / 2.00 / 2.17 |
  | 600 | 9.7e-5 ± 0.9e-5 | 9.2e-5 ± 1.1e-5 | 3.4e-5 ± 7.1e-5 | 3 ± 6 | 5 % | 2.04 / 1.93 / 2.00 |
  | 750 | 1.22e-4 ± 0.11e-4 | 1.25e-4 ± 0.14e-4 | 2.3e-4 ± 1.2e-4 | 0.5 ± 0.3 | 89 % | 1.80 / 1.84 / 1.93 |
  | 900 | 1.60e-4 ± 0.13e-4 | 1.48e-4 ± 0.16e-4 | 0.9e-4 ± 0.9e-4 | 1.7 ± 1.6 | 94 % | 1.86 / 1.85 / 1.87 |

  Arrhenius: Ea(D*) = 0.060 ± 0.004 eV, Ea(D*_ab) = 0.070 ± 0.006 eV; with a bend fixed at 400 K,
  D*_ab 0.044 ± 0.023 eV below and 0.081 ± 0.011 eV above (F-test p = 0.017).

Vibrations (stage 6; added after the run above: its production rerun from the supercell relaxed on
the same committee, 307 s, then 86 s for the relaxation and 1200 force calls of the committee;
shortest contacts at 450-600 K then fell to S-S 2.01 and 1.97 Å, 45 % and 84 % past the threshold).
Knoop et al.'s sigma^A against the student's own harmonic model:

| T (K) | 300 | 360 | 450 | 600 | 750 | 900 |
|---|---|---|---|---|---|---|
| sigma^A all atoms | 3.0 ± 0.5 | 3.1 ± 0.4 | 3.3 ± 0.5 | 3.8 ± 0.5 | 3.9 ± 0.5 | 6.0 ± 0.8 |
| sigma^A Li | 5.4 ± 0.9 | 5.1 ± 0.8 | 5.9 ± 1.1 | 6.9 ± 1.1 | 6.7 ± 1.0 | 8.9 ± 1.2 |

These are not the material's anharmonicity (Knoop et al. find 0.1-0.5 for most solids): the
student's harmonic model is unreliable. Its finite-difference force constants break the acoustic sum
rule by up to 6.9 eV/Å^2 on the 50-atom cell (CHGNet's: 0.48; ``benchmarks/lgps_anharmonicity.py``)
because its energy surface is rough on the 0.01 Å scale of the displacements, and the per-frame
sigma^A (``AnharmonicityResult.per_frame``) grows through each run as the framework leaves the
relaxed structure. For scale, on CHGNet's own 600/900/1200 K frames of the 50-atom cell (0.24 ps
each, 10 frames; the same script), CHGNet's harmonic model at CHGNet's relaxed cell gives sigma^A
0.76/0.79/0.83 (Li 1.23/1.30/1.38, S 0.71/0.73/0.77) and the student's at its own minimum
1.44/1.41/1.48 (Li ~2.1): the teacher's frames are strongly anharmonic (they start from the
unrelaxed ordered cell, 1.1 Å from CHGNet's minimum), and the student's harmonic picture is about
twice as far from them. The paper's "more harmonic at low temperature" cannot be tested with this
student; the measure itself (:mod:`sims.anharmonicity`) is checked against ASE's Hessian and a
quadrature reference.

The high-temperature hole, before and after (the committee's own MD on the 200-atom supercell,
seed 0, 0.2 ps Langevin + 1 ps Nose-Hoover as in production; shortest contacts over the run;
frames past the 200-atom threshold of each committee; held-out teacher frames forces / energy):

| committee (K = 2, PaiNN 16 / 2) | held-out (eV/Å, meV/atom) | 750 K: S-S / Li-S / Li-Li (Å), past | 900 K: same |
|---|---|---|---|
| first run, no AL | 0.098 / 3.0 | 1.89 / 0.66 / 0.53, 99 % | 1.93 / 0.46 / 0.48, 100 % |
| first run, 1 AL round (its production) | 0.088 / 10.9 | 2.00 / 1.89 / 1.33, 96 % | 1.97 / 0.78 / 0.73, 98 % |
| ZBL, no AL | 0.090 / 2.8 | 1.81 / 1.87 / 1.92, 98 % | 1.77 / 1.90 / 1.80, 100 % |
| ZBL, 1 AL round (this run's production) | 0.078 / 5.8 | 1.80 / 1.84 / 1.93, 89 % | 1.86 / 1.85 / 1.87, 94 % |
| ZBL, 3 rounds, contact rule (20 labels) | 0.073 / 7.8 | 2.51 / 1.92 / 1.95, 74 % | 2.30 / 1.89 / 1.81, 88 % |
| ZBL, 6 rounds, contact rule (38 labels) | 0.063 / 8.3 | 2.41 / 1.92 / 1.94, 77 % | 2.30 / 1.89 / 1.79, 88 % |
| ZBL, 3 supercell rounds (9 labels; fourth run's production, relaxed start) | 0.076 / 7.3 | 2.40 / 1.87 / 1.90, 87 % | 2.39 / 1.85 / 1.92, 100 % |
| CHGNet's own MD (quick's teacher frames, 50 atoms, 600-1200 K) | - | S-S >= 2.68, Li-S >= 1.96, Li-Li >= 1.97 | |
| CHGNet's own MD on 200 atoms (session 13 above) | - | | 2.46 / 1.90 / 1.90 |

(The CHGNet rows are the yardstick the rows above were judged by; session 13 above found it too strict:
longer CHGNet runs reach S-S 2.22-2.46 Å.)

The ZBL prior removes the Li collapse (Li-Li and Li-S stay above 1.8 Å where the plain students
reached 0.46-0.78 Å) and costs nothing on held-out frames. It cannot close the S-S hole: switched
off at the sum of covalent radii (2.10 Å for S-S) it adds 14 meV per S-S pair at 2.0 Å and 0.44
eV at 1.8 Å (bare ZBL 2.8 and 4.7 eV), nothing from 2.1 Å on, and the hole lies at 1.8-2.7 Å (for
Li-Li: 10.8 eV at 0.8 Å, 1.0 eV at 1.5 Å). Data close it step by step: rounds 2 and 3 under the
contact rule (relabelling frames with contacts under 0.9 x the teacher's shortest as well as
uncertain ones; run by hand from this run's round-1 committee, the rule of the code now: round 2
found 2 of 20 frames past the threshold and 2 unphysical, round 3 14 and 9) took the committee's
own 900 K MD (unit cell, seed 1) to forces 0.106 eV/Å and energy 7.2 meV/atom with S-S >= 2.45
Å, and the 200-atom MD to the row above: S-S 2.30-2.51 Å instead of 1.80-1.86, mean largest
spread 0.35-0.51 eV/Å instead of 0.92-0.93 (its threshold, 0.291 eV/Å, is lower than this run's
0.465, so its "past" fractions are not comparable). Three more rounds (4-6, by hand, the same
rule; 4, 9 and 5 of 20 frames past thresholds of 0.29-0.24 eV/Å, none unphysical, S-S >= 2.77 Å
in their unit-cell MD) brought held-out forces to 0.063 eV/Å and the own 900 K MD to 0.095
eV/Å, 4.7 meV/atom (S-S >= 2.44 Å), and the mean largest spread at 750-900 K to 0.30-0.37 eV/Å,
but the 200-atom MD still reaches S-S 2.30-2.41 Å: 0.4 ps of the 50-atom cell per round no
longer finds the contacts that 1.2 ps of 200 atoms does. The held-out energy error after the
rounds is a shift (+7.8 meV/atom of 7.8 after 3, +8.3 of 8.3 after 6; ``frame_errors``'
``energy_bias``), and not a defect of the energy reference (checked, session 12, on the 3-round
committee): the per-element shifts only centre the untrained outputs, and after training the mean
signed error over all 54 training frames is +0.04 meV/atom, while the 20 relabelled frames sit
-7.4 ± 6.5 meV/atom under their CHGNet energies (which lie 50 meV/atom above the teacher's MD
frames) and the teacher frames +3.9 to +5.1 above theirs. Least squares cannot tell a constant
from the energy of the distortions the student does not yet represent, so it raises every frame
by what it cannot place on the relabelled ones; the held-out 900 K run sits another +3 above the
training frames (+2.0 before any label, training frames then -0.4 to -2.7). A committee retrained
from scratch on the same frames with a 100 times larger energy weight (w_E = 10 w_F) kept it
(held-out +8.3 meV/atom, labels -6.2, forces 0.079 eV/Å), so it is not the loss weights either;
left is the student's capacity (16 features, 2 interactions; not tested). Held-out forces improve (0.090 -> 0.073 -> 0.063 eV/Å).

What was wrong before (measured on the same 34/10 teacher frames, 7 Dec). (1) The energy shifts
were fitted to the teacher energies alone, so each untrained member's mean output stayed in its
energies (-77 and -186 meV/atom for seeds 0 and 1); 25 epochs removed only part (the second
member stayed 71 meV/atom off): fixed in ``NeuralPotential.fit_shifts``. (2) 25 epochs left the
energies unlearnt (5.6 meV/atom, the error of predicting the training mean, 5.5) and forces at
0.18 eV/Å; 100 epochs give 0.107/0.115 eV/Å and 3.9/2.5 meV/atom (seeds 0/1); w_E = 100 w_F
instead of w_F = 10 w_E did worse (0.134 eV/Å, 4.2 meV/atom). (3) The threshold was the 90th
percentile of the committee's spread on its own training frames (0.213 eV/Å for this committee),
where members agree best, and was applied unchanged to the 200-atom cell, whose largest per-atom
spread is larger for the same configurations; calibrated on held-out frames it is 0.369 eV/Å (50
atoms) and 0.416 eV/Å (200 atoms). On held-out frames the largest per-atom force error is about
2.5 times the largest spread (K = 2), correlation 0.29 over frames (0.65 on the committee's own
MD frames). (4) The active-learning round fine-tuned the members for 10 epochs with a new AdamW
at the first fit's peak rate. Not the schedule: the same fine-tune on the training frames alone
left the held-out errors unchanged (0.0955 eV/Å, 3.0 meV/atom). The data: the committee's 900 K
MD forms S-S contacts of 1.95-2.1 Å within its 0.4 ps, 60-100 meV/atom above its prediction, a
hole in a student trained on frames without such contacts. Fine-tuned on 6 of them, its own MD
got worse (forces 0.182 -> 0.321 eV/Å, energy 27 -> 73 meV/atom; CHGNet energy of its frames
-4.400 -> -4.329 eV/atom, CHGNet's own 900 K MD -4.47 to -4.49), likewise with 12 frames, the 12
first past the threshold, 20 epochs at 1e-3 or the labels weighted 4x; retrained from scratch on
the same 12 it improved (the first run, above). The labels were checked: frames stored by the teacher MD equal
CHGNet recomputed on them, the strained frames share the reference, and the 200-atom supercell's
energy per atom equals the unit cell's (-4.47303 eV both).

What these numbers can and cannot say. Quick-mode production runs are 1 ps per temperature on 200
atoms: far too short for converged diffusivities. The fit window (0.1-0.5 ps) sits in the
vibrational regime, so the "D" values are the growth of the Li rattling amplitude, not hopping;
the measured 12 mS/cm at room temperature (Kamaya et al. 2011) corresponds by Nernst-Einstein to
D_sigma of about 1e-7 cm^2/s, some 1000 times below our 300 K values, and our conductivities
(thousands of mS/cm) are meaningless. At 600 K and above this run's student forms S-S contacts
of 1.8-2.0 Å (above), so those rows are not even the student's estimate of CHGNet's transport.
The error bars are statistical only and say nothing about this bias; the F-test inherits it, so
its "bend" at 400 K is not a finding. What is still not met: no committee here keeps S-S at the
teacher's >= 2.68 Å at 750-900 K (a yardstick from quick's short teacher runs, too strict: see
session 13 above), and most of their frames stay past the threshold; each round
moves the hole rather than closing it at once (round 3 found S-S 2.27 Å where round 2 had found
2.14 Å), and after 6 rounds the rounds' own 50-atom MD stays physical while the 200-atom
production MD does not. Rounds that sample like production (the supercell at 900/750/600 K, the
fourth run) found that hole at once (47 of 50 frames short at 900 K), but 3 rounds of 3 labels
did not close it (S-S 2.39-2.43 Å at 600-900 K); a student for 600-900 K needs more of them,
back at the top temperature (the full mode: up to 5 rounds of 10 ps, 12 labels each). Neither
the ~400 K change of D*_ab nor the Haven-ratio trend of arXiv:2211.05713 can be tested with these data: the quick mode checks that the pipeline runs end
to end. The full mode (a K = 3 committee, 9 temperatures, 1 ns each after 10 ps of equilibration)
would take about 15 h per temperature on one core at the measured 0.11 s per step of the
committee on 200 atoms (``benchmarks/lgps_cost.py``), some 140 core-hours for production plus a
few hours of CHGNet labelling and training; it has not been run here. Even 1 ns is short of the
paper's 40 ns near 300 K, where Li hops are rare.
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
#: quick's student 224; module docstring).
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
                 equilibrate: int | None = None) -> list[Atoms]:
    """MD driven by ``committee`` (:func:`md_config`, ``sims.generate``: resumable), its spread recorded;
    the unit cell by default."""
    save_potential(committee, out / f"{name}.pt")
    return read_frames(generate(md_config(out, f"{name}.pt", system, f"{name}.db", temperature, seed, steps, every,
                                          equilibrate=equilibrate, threshold=threshold)))


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
                    calc, rounds: int, labelled: Sequence[Atoms] = (), first_round: int = 1) -> tuple[Committee, dict]:
    """Up to ``rounds`` rounds: committee MD, uncertain or unphysical frames relabelled, the committee
    retrained; stops early once a round's MD stays under the threshold (at most 10 % of its frames
    past it, what the threshold allows on held-out-like frames) and physical.

    With ``mode["al_cell"] == "supercell"`` round ``r`` runs production's protocol
    (:func:`md_config`: ``production_equilibrate`` steps of Langevin, then ``al_supercell_steps`` of
    a Nose-Hoover chain) on the supercell ``lgps_221.extxyz`` in ``out`` at
    ``al_temperatures[(r - 1) % len]`` and relabels at most ``max_relabel_supercell`` frames at
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
    committee's own MD worse (see the module docstring). The rounds are judged on two test sets: the
    held-out teacher trajectory and the committee's own MD at the top temperature from seed 1 (run
    with the first and with the last committee, each labelled by the teacher), with its shortest
    contacts. ``labelled`` and ``first_round`` continue earlier rounds (their relabelled frames).
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
            temperature = mode["al_temperatures"][(r - 1) % len(mode["al_temperatures"])]
            sampled = committee_md(out, committee, f"active_round{r}", temperature, seed=r + 1,
                                   steps=mode["al_supercell_steps"], every=mode["al_every"], threshold=threshold,
                                   system="lgps_221.extxyz", equilibrate=mode["production_equilibrate"])
            limit, gap = mode["max_relabel_supercell"], mode["al_gap"]
        else:
            temperature = top
            sampled = committee_md(out, committee, f"active_round{r}", top, seed=r + 1, steps=mode["al_steps"],
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
    own_after = own_md_errors(out, mode, committee, f"own_md_round{retrained}", calc)
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


def production_configs(out: Path, mode: dict, threshold: float) -> list[dict]:
    """One NVT ``sims.generate`` config per temperature on the 2 x 2 x 1 supercell, relaxed on the student."""
    # A length other than the mode's gets its own files, so the mode's runs stay resumable beside it.
    tag = "" if "production_ps" not in mode else f"_{mode['production_ps']:g}ps"
    return [md_config(out, "student.pt", "lgps_221_relaxed.extxyz", f"production_{int(temperature)}K{tag}.db",
                      temperature, 0, mode["production_steps"], mode["production_every"],
                      equilibrate=mode["production_equilibrate"], threshold=threshold,
                      compiled=mode.get("compiled", False))
            for temperature in mode["production_temperatures"]]


def relaxed_supercell(out: Path, committee: Committee, supercell: Atoms) -> Atoms:
    """The supercell relaxed at fixed cell on the student (FIRE to 0.01 eV/Å): the start of production and
    the reference of the harmonic model (``lgps_221_relaxed.extxyz``)."""
    path = out / "lgps_221_relaxed.extxyz"
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
               temperatures: Sequence[float], frame_time: float) -> list[dict]:
    """Knoop et al.'s anharmonicity sigma^A (all atoms, Li, S) and the Li VDOS at every temperature.

    The harmonic model is the student's own: finite-difference force constants at ``reference``
    (cached in ``force_constants.npy``).
    """
    cached = out / "force_constants.npy"
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
                             "students and production on about 7 times quick's teacher frames: about 2 h, "
                             "estimated) or full (the default; about 140 core-hours)")
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
    mode["repulsion"] = None if args.repulsion == "none" else args.repulsion
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times, summary = {}, {"mode": args.mode, "settings": mode}
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
        labels = al.pop("labelled")
        if labels:
            with atomic_open(out / "active_labels.extxyz", "w") as handle:
                write(handle, labels, format="extxyz")
        # The monitor flags the largest spread over the cell's atoms: calibrated for the supercell's size.
        al["production_threshold_eV_A"] = committee.spread_threshold(test, quantile=0.9, n_atoms=len(supercell))
        save_potential(committee, out / "student.pt")
        with atomic_open(out / "students.json", "w") as handle:
            json.dump({"sizes": sizes, "active_learning": al,
                       "settings": {k: mode[k] for k in SETTINGS}}, handle, indent=1)
        _stage(times, "active_learning", start)
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
    reference = relaxed_supercell(out, committee, supercell)
    configs = production_configs(out, mode, al["production_threshold_eV_A"])
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
    with atomic_open(out / "transport.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "arrhenius.png")
    start = time.perf_counter()
    vib = vibrations(out, committee, reference, paths, mode["production_temperatures"], frame_time)
    _stage(times, "vibrations", start)
    plot_vdos(vib, out / "vdos.png")
    summary["anharmonicity"] = [{k: v for k, v in r.items() if k not in ("freq_THz", "vdos_Li")} for r in vib]
    summary["times_s"] = times
    with atomic_open(out / "summary.json", "w") as handle:
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
