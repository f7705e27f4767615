"""Silica glass as networks compared with the D-measure (the study of arXiv:2111.07452).

A BKS silica glass is made with the sims melt-quench protocol, every stage at constant pressure
(1 bar; MTK barostat with Nose-Hoover chains, on the LAMMPS engine ``fix npt ... iso``):
beta-cristobalite start, melt at 7000 K, linear quench to 300 K, then linear heating to 6000 K.
Melt and quench run at 1 bar as well, so the glass has the density of its own quench rather than
the crystal's box (our choice: the paper's MD protocol, with a force-matched potential, could not be
read here, only its abstract). Each frame gives its volume and density (g/cm^3), and its Si-O bond
network (``reprs.glass.network``, cutoff at the first minimum of the Si-O partial RDF of the 300 K
glass). The D-measure (``graphs.dmeasure``) compares

* each frame's whole network with the 300 K glass (D against temperature), and
* the local environment of every Si (the atoms within ``k`` bonds) with the Si environments of
  the crystalline polymorphs alpha-quartz, beta-cristobalite and coesite: the mean D to each
  polymorph and the fraction of Si whose closest polymorph it is (ties share the atom).

Several seeds (``--seeds``) make several glasses; density and polymorph shares are averaged per
temperature bin (``--bin-width``), first over each seed's frames, then over seeds, with the
standard error over seeds.

Output in ``--out``: per seed ``seed_N/frames.extxyz`` (the trajectory), ``seed_N/dmeasure.csv``
(one row per frame) and ``seed_N/dmeasure.png``; ``binned.csv`` and ``density.png`` (mean +- s.e.
per bin). ``--frames A B ...`` analyses existing frame files (one per seed; ``info["T_target"]`` or
``info["temperature"]`` in K, cells as saved) instead of simulating.

Equilibrium states (``--ladder``): a heating ramp as fast as the one above is not equilibrium (the
liquid lags it), so the density question is asked again of equilibrium NPT states. After the glass
branch (300 K glass, ramp to the first ladder temperature, binned as above) each temperature of
``--temperatures`` (default 3000-6500 K in 500 K steps) is held for ``--equilibrate-steps`` (no
frames) and then ``--production-steps`` with a frame every ``--production-every`` steps, each
state continuing from the previous one (heating), MTK ``Pdamp`` 0.5 ps. Per state and seed the
density is block-averaged (:func:`sims.analysis.block_average`, ten blocks: mean, standard error,
drift = second half minus first half); the polymorph shares are averaged over every
``--analyse-every``-th frame. Over seeds: mean, standard error over seeds and the block errors
combined (``ladder.csv``, ``ladder.png``, and per seed ``seed_N/ladder.csv``); printed with the
temperature of the highest mean density and its height above both ends of the ladder, paired per
seed.

Coulomb term: our BKS (:func:`sims.potentials.BKS`) uses damped shifted-force Coulomb (alpha 0.2
/ Å, 10 Å), the literature's BKS the Ewald sum (Saika-Voivod, Sciortino & Poole, Phys. Rev. E 63,
011202 (2000), with the 30-6 core term that ours has too; Shell, Debenedetti & Panagiotopoulos,
Phys. Rev. E 66, 011202 (2002)). ``--kspace pppm`` (``--kspace-accuracy``, relative force error)
runs the same charges with LAMMPS's PPPM Ewald sum instead (``md.kspace`` of :mod:`sims.generate`);
the short-range terms stay ours (Buckingham shifted at 5.5 Å, 30-6 core). The two are different
potentials: on a strained 48-atom cell DSF puts the pressure 0.45 GPa above Ewald
(``tests/sims/test_lammps_kspace.py``).

Run: ``python examples/silica_dmeasure.py --quick -o out`` (192 atoms, 12000 steps per seed, three
seeds: 3 min wall, 96 s CPU on one core with LAMMPS). The default (648 atoms, 24000 steps, three
seeds, ``k = 6``) needs about 4.7e7 atom-steps: 30-40 min wall on 2 cores shared with five other
jobs (LAMMPS serial, ``nice 19``).

``--ladder --quick`` (three seeds, four 1 + 3 ps states at 3000-6000 K): 208 s CPU, 6.4 min wall
on 2 cores at load ~5 (7 Dec 2026); too short to resolve anything (errors 0.01-0.05 g/cm^3).

What the equilibrium states show (7 Dec 2026, LAMMPS serial, ``nice 5``, 2 cores with load 4.5-5.7;
``--ladder --repeat 2 -k 4 --melt-steps 3000 --quench-steps 3000 --heat-steps 6000 --sample-every
200 --equilibrate-steps 8000 --production-steps 24000 --production-every 100 --seeds 7 8``, once as
it is (DSF) and once with ``--kspace pppm --kspace-accuracy 1e-4``: 192 atoms, 8 ps + 24 ps per
state, 240 frames per state and seed; 550-585 s CPU per DSF seed, 415-430 s per PPPM seed, about
1.3e5 and 2e5 atom-steps per CPU second). Density, g/cm^3, mean over the two seeds +- standard
error over seeds / from the block errors; coesite-like share of Si (``k = 4``) +- s.e. over seeds:

======  ============================  ============================  ==========  ==========
T (K)   DSF density                   PPPM (Ewald) density          DSF coes.   PPPM coes.
======  ============================  ============================  ==========  ==========
3000    2.286 +- 0.093 / 0.005        2.238 +- 0.034 / 0.005        0.38        0.30
3500    2.231 +- 0.037 / 0.004        2.225 +- 0.080 / 0.005        0.32        0.29
4000    2.229 +- 0.039 / 0.009        2.217 +- 0.065 / 0.008        0.42        0.33
4500    2.301 +- 0.033 / 0.010        2.310 +- 0.013 / 0.008        0.50        0.48
5000    2.286 +- 0.008 / 0.011        2.326 +- 0.001 / 0.010        0.62        0.65
5500    2.289 +- 0.002 / 0.009        2.277 +- 0.015 / 0.014        0.74        0.75
6000    2.252 +- 0.018 / 0.007        2.250 +- 0.008 / 0.013        0.82        0.80
6500    2.157 +- 0.013 / 0.013        2.202 +- 0.003 / 0.009        0.88        0.88
======  ============================  ============================  ==========  ==========

(coesite shares +- 0.001-0.08 over seeds.) The glass branch (300 K glass) is 2.42 +- 0.02 (DSF)
and 2.29 +- 0.02 g/cm^3 (PPPM).

Reading. With the Ewald sum BKS has a density maximum at 5000 K: both seeds are highest there, 0.124
+- 0.004 g/cm^3 above 6500 K and 0.088 +- 0.033 above 3000 K (paired per seed), resolved on both
sides; on our 500 K grid that is the known BKS maximum near 4700-4800 K at about 0 GPa (Saika-Voivod
et al.; Shell et al., above). With DSF Coulomb the liquid is less dense at 5000 K (2.286 against
2.326: DSF puts the pressure higher) and its maximum is a plateau at 4500-5500 K (2.29-2.30),
resolved against 6500 K (0.144 +- 0.046 above) but not against the low-temperature states (0.015 +-
0.126 above 3000 K). Below 4500 K the states are not equilibrium: they are reached from the glass,
differ by seed by 0.07-0.19 g/cm^3, and in seed 7 the drift (second half minus first half) at 3000 K
is -0.03 (DSF) and -0.04 (PPPM), twice its noise: the glass expands there. So on heating the mean
density falls from the glass to its lowest at 3500-4000 K (2.22-2.23 with both Coulomb treatments)
and rises to the maximum at 4500-5000 K: the shape of a density minimum on heating (the paper's)
below the BKS maximum. The rise out of it is resolved only for Ewald against 3000 K (+0.088 +- 0.033
paired); from the 4000 K states it is 0.07 (DSF, to 4500 K) and 0.11 (Ewald, to 5000 K), 1.4 and 1.7
standard errors of the seed scatter. Its depth and place depend on the glass (the two seeds differ
by more than the effect): a kinetic feature of heating a fast-quenched glass, not an equilibrium
property at these time scales. The coesite-like share does not follow the density: it is lowest
(0.29-0.42) at 3000-4000 K where the density is lowest and rises monotonically through the maximum
to 0.88 at 6500 K, steepest at 4000-5500 K, while alpha-quartz/cristobalite-like Si fall; it tracks
temperature and the breaking of the network, not the density. Error bars: two seeds only (the seed
scatter is itself poorly known); block errors 0.004-0.014 per state. Not done: a cooling ladder
(hysteresis of the low-temperature states), larger cells.

A third Ewald seed (the PPPM command above with ``--seeds 7 8 9``, same folder; seed 9 about 390 s
CPU): mean of three seeds +- s.e. over seeds / from blocks, 3000-6500 K: 2.239 +- 0.020 / 0.003,
2.226 +- 0.046 / 0.004, 2.236 +- 0.042 / 0.008, 2.294 +- 0.018 / 0.007, 2.309 +- 0.017 / 0.007
(5000 K), 2.285 +- 0.012 / 0.010, 2.244 +- 0.007 / 0.009, 2.186 +- 0.016 / 0.008; each seed's
highest state at 5000, 5000 and 5500 K; 5000 K minus 6500 K +0.123 +- 0.003, minus 3000 K +0.070
+- 0.026 g/cm^3 (paired): the maximum at 5000 K holds with three seeds. The largest half-to-half
drift of a seed per state is 0.02-0.09 g/cm^3 (0.093 at 4000 K, seed 9), a few times the block
errors: 24 ps states are only roughly equilibrated, most of all below 4500 K, where the minimum on
heating (3500 K, 2.226) stays within the seed scatter.

Heating ramps, default run (7 Dec 2026, ``python examples/silica_dmeasure.py -o out`` with
``--seeds 7 8 9`` and again with ``--seeds 10 11 12``: 648 atoms, six seeds, ``k = 6``; quench
7000 -> 300 K at 1.1e15 K/s, heating 300 -> 6000 K in 12 ps, 4.8e14 K/s, 49 frames per seed).
Glass at 300 K: 2.34 +- 0.02 g/cm^3 (2.29-2.41 by seed), 96 % of O bridging. Density per 500 K bin
(mean +- s.e. over the six seeds): 2.34 +- 0.02 (0-500 K), 2.33 +- 0.01 (1000-1500), 2.30 +- 0.02
(2000-2500), 2.28 +- 0.02 (3000-3500), 2.27 +- 0.02 (3500-4000), 2.26 +- 0.02 (4000-4500), 2.27 +-
0.01 (4500-5000), 2.29 +- 0.01 (5000-5500), 2.28 +- 0.02 (5500-6000). The comparison declared for
the 192-atom runs below (density at 4500-5500 K minus that at 3000-4500 K, per seed) was +0.007,
+0.027 and +0.029 for seeds 7-9 (+0.021 +- 0.007: it looked resolved) but -0.059, +0.056 and -0.007
for seeds 10-12: **+0.009 +- 0.016 over six seeds, no density minimum resolved**; 5500-6000 minus
4500-5500 K: -0.001 +- 0.016, no maximum either. The equilibrium BKS density maximum near 4800 K
(Shell et al., below) would need an equilibrated liquid (here it lags a 4.8e14 K/s ramp) and
their Ewald BKS. Seed-to-seed scatter (glasses 2.29-2.41 g/cm^3) is as large as any feature, so
the next step is more seeds or slower ramps, not bigger cells. The coesite-like share (``k = 6``,
where the three polymorphs' environments differ) rises steadily from 0.53 +- 0.02 in the glass to
0.56-0.57 (+- 0.01-0.03) at 2000-4000 K, 0.61 +- 0.03 at 4000-5000 K and 0.66 +- 0.03 at 5500-6000
K, while alpha-quartz-like Si fall from 0.18 to 0.08 and bridging O from 96 % to 84 %: coesite-like
environments grow with temperature as the network opens, and without a density minimum there is
nothing to tie them to.

Earlier, smaller runs (6 Dec 2026, LAMMPS serial, seeds 7, 8, 9, 192 atoms, ``k = 4``; within 4 bonds
the alpha-quartz and beta-cristobalite environments are the same, so those two share equally):

* "Longer" run (``--quick --melt-steps 4000 --quench-steps 5000 --heat-steps 20000 --sample-every
  250``: quench at 1.3e15 K/s, heating at 2.9e14 K/s, 81 frames per seed; 9.3 min wall, about 245 s
  CPU, on 2 shared cores, then binned again from the saved frames with ``--frames``, 81 s). Glass
  at 300 K: 2.42 +- 0.03 g/cm^3, 94.5 % of O bridging, 91 % of Si four-fold. Density per 500 K bin (mean +- s.e. over seeds): 2.40 +- 0.04 (0-500 K), 2.37 +- 0.02
  (1000-1500), 2.33 +- 0.02 (2000-2500), 2.27 +- 0.03 (3000-3500), 2.28 +- 0.02 (4000-4500), 2.31 +-
  0.02 (4500-5000), 2.33 +- 0.03 (5000-5500), 2.25 +- 0.01 (5500-6000). Per seed, the density at
  4500-5500 K minus that at 3000-4500 K is +0.046, -0.042 and +0.118: +0.04 +- 0.05, and the drop
  from 4500-5500 to 5500-6000 K is -0.07 +- 0.02.
* ``--quick`` run (quench 2.2e15 K/s, heating 9.5e14 K/s, 31 frames per seed): glass 2.38 +- 0.06
  g/cm^3; 2.37 +- 0.06 (1000-1500 K), 2.31 +- 0.04 (3000-3500), 2.30 +- 0.06 (4500-5000), 2.22 +-
  0.05 (5500-6000); the same per-seed difference is -0.02 +- 0.03.

Reading of the 192-atom runs: on heating at 1 bar the density falls from the glass (about 2.4) to about 2.25 at 6000 K.
No density minimum on heating is resolved: the lowest bins (3000-4500 K) are within one to two
standard errors of their neighbours. BKS has a density maximum near 4800 K at 0 GPa in the
equilibrium liquid (Shell, Debenedetti & Panagiotopoulos, Phys. Rev. E 66, 011202 (2002)). The
slower heating shows a bump at 4500-5500 K in the right place, but one seed of three goes the
other way and the rise is one standard error: a maximum is not resolved either. Neither, within
the error bars. Reasons the test is weak: 192 atoms (seed-to-seed glass densities differ by
0.1-0.2 g/cm^3), MTK volume oscillations (1 ps barostat period) sampled every 0.25 ps, heating too fast for
the liquid to equilibrate below ~4500 K, and our BKS variant (DSF Coulomb, 5.5 Å shifted
Buckingham, 30-6 core; Shell et al. used Ewald sums) whose equation of state differs somewhat.

Coesite-like share against the density curve (longer run): 0.49-0.50 up to 2500 K, lowest (0.42
+- 0.07, 0.43 +- 0.05) at 2500-3500 K where the density is lowest, then rising to 0.57 +- 0.05
at 5000-5500 K and 0.74 +- 0.03 at 5500-6000 K, while the bridging O fall to 82 % at 6000 K.
The paper finds coesite-like environments growing where the density passes its minimum; we see no
resolved minimum and no coesite peak near the lowest density (its dip there is about one standard
error); its rise comes with the network breaking up in the hot liquid. The 648-atom default run
above (six seeds) resolves neither a minimum nor a maximum either. Not tested: slower quenches
and heating, more than six seeds.
"""

from __future__ import annotations

import argparse
import csv
import functools
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import units

from graphs.dmeasure import DMeasureSignature, d_measure_matrix
from reprs.fileio import atomic_open, save_figure
from reprs.glass import (
    CRYSTAL_REFERENCES,
    bridging_fractions,
    coordination_statistics,
    crystal_reference,
    local_environments,
    network,
    partial_rdf,
    rdf_first_minimum,
)

#: Supercells of the references whose width (> 18.5 Å) exceeds the diameter of a 6-bond shell.
REFERENCE_REPEATS = {
    "alpha-quartz": (4, 4, 4),
    "beta-cristobalite": (3, 3, 3),
    "coesite": (3, 2, 3),
}


#: Barostat settings of every stage: MTK (LAMMPS ``fix npt``), one strain for the volume.
NPT = {"ensemble": "npt", "barostat": "mtk", "coupling": "isotropic", "tau": 100.0, "tau_p": 1000.0}


def protocol(out: Path, *, repeat: int = 3, melt_steps: int = 6000, quench_steps: int = 6000,
             heat_steps: int = 12000, sample_every: int = 250, seed: int = 7, t_melt: float = 7000.0,
             t_max: float = 6000.0, pressure: float = 1.0, engine: str = "lammps",
             kspace: str | None = None, kspace_accuracy: float = 1e-5) -> dict[str, Any]:
    """The sims config, every stage at constant pressure (1 fs steps).

    Melt at ``t_melt``, quench ``t_melt`` -> 300 K, one frame at 300 K, heat 300 K -> ``t_max``, all
    ``npt`` with the MTK barostat and Nose-Hoover chains at ``pressure`` (bar): on ``engine =
    "lammps"`` that is ``fix npt ... iso`` (``Tdamp`` 0.1 ps, ``Pdamp`` 1 ps). The glass gets the
    density of its own quench at 1 bar instead of the crystal's. The beta-cristobalite start
    superheats: at 7000 K a quarter of its Si-O bonds survive 4 ps (192 atoms, at constant volume),
    so the melt lasts 6 ps by default. ``kspace`` (``"pppm"``, ``"ewald"``; LAMMPS only) replaces
    the DSF Coulomb term of BKS by an Ewald sum (relative force accuracy ``kspace_accuracy``), as in
    the BKS literature.
    """
    def stage(steps, temperature, sample=0):
        return {**NPT, "steps": steps, "timestep": 1.0, "temperature": temperature,
                "pressure": pressure, "sample_every": sample}

    return {
        "seed": seed,
        "engine": engine,
        "system": {"builder": "beta_cristobalite", "repeat": repeat},
        "potential": {"kind": "bks"},
        "md": {"dtype": "float64" if engine == "lammps" else "float32", "skin": 1.0, "n_procs": 1,
               **({"kspace": kspace, "kspace_accuracy": kspace_accuracy} if kspace is not None else {})},
        "stages": [
            stage(melt_steps, [t_melt, t_melt]),
            stage(quench_steps, [t_melt, 300.0]),
            stage(sample_every, [300.0, 300.0], sample_every),  # one frame of the 300 K glass
            stage(heat_steps, [300.0, t_max], sample_every),
        ],
        "output": {"path": str(out / "frames.extxyz"), "checkpoint_every": 500},
    }


#: Temperatures of the equilibrium ladder, K: from the end of the glass branch through the liquid.
LADDER = tuple(float(t) for t in range(3000, 7000, 500))


def ladder_protocol(out: Path, *, temperatures: Sequence[float] = LADDER, equilibrate_steps: int = 10000,
                    production_steps: int = 30000, production_every: int = 100, tau_p: float = 500.0,
                    **kwargs) -> dict[str, Any]:
    """:func:`protocol` with its heating ramp ending at ``temperatures[0]``, then one equilibrium state
    per temperature, in ascending order, each continuing from the previous one.

    Per temperature: ``equilibrate_steps`` at constant T (no frames), then ``production_steps`` at
    the same T with a frame every ``production_every`` steps (1 fs steps, MTK ``fix npt``, ``Pdamp
    = tau_p`` fs: 0.5 ps decorrelates the volume faster than the ramp's 1 ps and leaves the NPT
    ensemble as it is). ``kwargs`` go to :func:`protocol` (``heat_steps``: the glass branch, 300 K
    -> ``temperatures[0]``).
    """
    temperatures = [float(t) for t in temperatures]
    if not temperatures or sorted(temperatures) != temperatures or temperatures[0] <= 300.0:
        raise ValueError(f"temperatures must ascend from above the 300 K glass, got {temperatures}")
    if min(equilibrate_steps, production_steps, production_every) < 1 or production_steps < 10 * production_every:
        raise ValueError("need equilibrate_steps, production_every >= 1 and production_steps >= 10 production_every "
                         f"(ten blocks of at least one frame), got {equilibrate_steps}, {production_steps}, "
                         f"{production_every}")
    cfg = protocol(out, t_max=temperatures[0], **kwargs)
    hold = {**NPT, "tau_p": tau_p, "timestep": 1.0, "pressure": cfg["stages"][0]["pressure"]}
    for t in temperatures:
        cfg["stages"] += [{**hold, "steps": equilibrate_steps, "temperature": [t, t], "sample_every": 0},
                          {**hold, "steps": production_steps, "temperature": [t, t], "sample_every": production_every}]
    return cfg


def simulate(out: Path, *, ladder: dict[str, Any] | None = None, **kwargs) -> list:
    """Run (or resume) the protocol with sims; return its frames (300 K glass, then heating).

    ``ladder``: the keywords of :func:`ladder_protocol` to append its equilibrium states.
    """
    from sims.generate import generate, read_frames

    cfg = protocol(out, **kwargs) if ladder is None else ladder_protocol(out, **ladder, **kwargs)
    return read_frames(generate(cfg))


def equilibrium_states(frames: list, *, k: int = 4, analyse_every: int = 10,
                       n_blocks: int = 10) -> list[dict[str, float]]:
    """One row per production stage of :func:`ladder_protocol` (frames with ``info["stage"] >= 4``).

    Density: block average over all the stage's frames (:func:`sims.analysis.block_average`,
    ``n_blocks``), with its standard error and drift (second half minus first half). Network
    columns of :func:`analyse` (polymorph shares, bridging O, four-fold Si): means over every
    ``analyse_every``-th frame, the Si-O cutoff from the first frame (the 300 K glass).
    """
    from sims.analysis import block_average

    stages = np.array([f.info["stage"] for f in frames])
    rows = []
    for stage in sorted(set(stages[stages >= 4].tolist())):
        sel = [f for f, s in zip(frames, stages) if s == stage]
        rho = block_average([density(f) for f in sel], n_blocks=n_blocks)
        net = analyse([frames[0], *sel[analyse_every - 1::analyse_every]], k=k)[1:]
        row = {"temperature_K": float(sel[0].info["T_target"]), "n_frames": len(sel),
               "density_g_cm3": rho.mean, "density_sem": rho.sem, "density_drift": rho.drift}
        for col in [c for c in net[0] if c.startswith("closest_")] + ["o_bridging", "si_fourfold"]:
            row[col] = float(np.mean([r[col] for r in net]))
        rows.append(row)
    return rows


def combine_states(runs: Sequence[Sequence[dict[str, float]]]) -> list[dict[str, float]]:
    """Per temperature over seeds: density mean, the standard error over seeds (``std(ddof=1) /
    sqrt(n)``) and that of the seeds' block errors (``sqrt(sum sem_i^2) / n``), coesite share mean
    and its standard error over seeds. Every run must hold the same temperatures."""
    temps = [[r["temperature_K"] for r in rows] for rows in runs]
    if any(t != temps[0] for t in temps):
        raise ValueError(f"runs hold different temperatures: {temps}")
    out = []
    for i, t in enumerate(temps[0]):
        rho = np.array([rows[i]["density_g_cm3"] for rows in runs])
        blocks = np.array([rows[i]["density_sem"] for rows in runs])
        coes = np.array([rows[i]["closest_coesite"] for rows in runs])
        n = len(runs)
        out.append({"temperature_K": t, "n_seeds": n, "density_mean": float(rho.mean()),
                    "density_sem_seeds": float(rho.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
                    "density_sem_blocks": float(np.sqrt((blocks ** 2).sum()) / n),
                    "coesite_mean": float(coes.mean()),
                    "coesite_sem": float(coes.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")})
    return out


def density(frame) -> float:
    """Mass density of a periodic frame from its cell, g/cm^3."""
    if not np.all(frame.pbc):
        raise ValueError("density needs a frame periodic along all three axes (it is read from the cell)")
    grams = frame.get_masses().sum() / units.kg * 1e3
    return float(grams / (frame.get_volume() * 1e-24))


def bin_by_temperature(runs: Sequence[Sequence[dict[str, float]]], width: float,
                       columns: Sequence[str]) -> list[dict[str, float]]:
    """Mean and standard error over runs (seeds) of per-run bin means, per temperature bin.

    Each run's rows (``temperature_K`` and ``columns``) are averaged within bins
    ``(k width, (k + 1) width]`` K (closed above, so a ramp's last frame at a round ``t_max`` joins
    its bin instead of making one of its own); the seeds' bin means are then averaged, with standard error
    ``std(ddof=1) / sqrt(n)`` over the ``n`` seeds that have the bin (NaN for one seed): the
    seeds are the independent samples, frames of one trajectory are not.

    Returns
    -------
    list of dict
        One row per bin, ascending: ``T_low_K``, ``T_high_K``, ``n_seeds``, ``n_frames``, and
        ``{col}_mean``, ``{col}_sem`` for each column.
    """
    if width <= 0:
        raise ValueError(f"bin width must be > 0 K, got {width}")
    per_bin: dict[int, list[np.ndarray]] = {}
    frames: dict[int, int] = {}
    for rows in runs:
        t = np.array([r["temperature_K"] for r in rows])
        values = np.array([[r[c] for c in columns] for r in rows], dtype=float).reshape(len(rows), len(columns))
        keys = np.ceil(t / width).astype(int) - 1
        for key in np.unique(keys):
            per_bin.setdefault(int(key), []).append(values[keys == key].mean(axis=0))
            frames[int(key)] = frames.get(int(key), 0) + int(np.sum(keys == key))
    out = []
    for key in sorted(per_bin):
        means = np.array(per_bin[key])
        n = len(means)
        sem = means.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(len(columns), np.nan)
        row = {"T_low_K": key * width, "T_high_K": (key + 1) * width, "n_seeds": n, "n_frames": frames[key]}
        for c, m, e in zip(columns, means.mean(axis=0), sem):
            row[f"{c}_mean"], row[f"{c}_sem"] = float(m), float(e)
        out.append(row)
    return out


@functools.lru_cache(maxsize=8)  # seeds whose glasses give the same Si-O cutoff share them
def polymorph_signatures(k: int, cutoff: float) -> dict[str, list[DMeasureSignature]]:
    """Signatures of the distinct Si environments (k bonds) of each crystalline reference."""
    out = {}
    for name in CRYSTAL_REFERENCES:
        atoms = crystal_reference(name, repeat=REFERENCE_REPEATS[name])
        envs = local_environments(network(atoms, {("Si", "O"): cutoff}), k, element="Si")
        signatures = [DMeasureSignature.from_graph(e) for e in envs]
        # Symmetry-equivalent Si have equal environments: keep one of each kind.
        matrix = d_measure_matrix(signatures)
        out[name] = [s for i, s in enumerate(signatures) if not np.any(matrix[i, :i] < 1e-12)]
    return out


def analyse(frames: list, *, k: int = 6) -> list[dict[str, float]]:
    """One row per frame: temperature, D to the first frame, polymorph likeness, defects."""
    cutoff = rdf_first_minimum(*partial_rdf(frames[0], ("Si", "O"), r_max=5.0, bins=250))
    networks = [network(f, {("Si", "O"): cutoff}) for f in frames]
    d_first = d_measure_matrix(networks[:1], others=networks)[0]
    polymorphs = polymorph_signatures(k, cutoff)
    rows = []
    for frame, graph, d in zip(frames, networks, d_first):
        envs = [DMeasureSignature.from_graph(e) for e in local_environments(graph, k, element="Si")]
        nearest = np.column_stack(
            [d_measure_matrix(envs, others=polymorphs[name]).min(axis=1) for name in polymorphs]
        )
        # Ties (equal environments in two polymorphs) share the atom.
        closest = np.isclose(nearest, nearest.min(axis=1, keepdims=True), rtol=0, atol=1e-12)
        shares = (closest / closest.sum(axis=1, keepdims=True)).mean(axis=0)
        temperature = frame.info.get("temperature", frame.info.get("T_target", np.nan))
        row = {"temperature_K": float(temperature), "volume_A3": float(frame.get_volume()),
               "density_g_cm3": density(frame), "si_o_cutoff_A": cutoff, "d_to_first_frame": float(d)}
        for col, name in enumerate(polymorphs):
            row[f"mean_d_{name}"] = float(nearest[:, col].mean())
            row[f"closest_{name}"] = float(shares[col])
        row["si_fourfold"] = coordination_statistics(graph)["Si"].get(4, 0.0)
        row["o_bridging"] = bridging_fractions(graph)["bridging"]
        rows.append(row)
    return rows


def _csv(rows: list[dict[str, float]], path: Path) -> None:
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write(rows: list[dict[str, float]], out: Path) -> None:
    """``dmeasure.csv`` and ``dmeasure.png`` (one run, one row per frame) in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    _csv(rows, out / "dmeasure.csv")
    t = [r["temperature_K"] for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    axes[0].plot(t, [r["density_g_cm3"] for r in rows], "o-")
    axes[0].set(xlabel="T (K)", ylabel="density (g/cm$^3$)")
    axes[1].plot(t, [r["d_to_first_frame"] for r in rows], "o-")
    axes[1].set(xlabel="T (K)", ylabel="D(network, 300 K glass)")
    for name in CRYSTAL_REFERENCES:
        axes[2].plot(t, [r[f"mean_d_{name}"] for r in rows], "o-", label=name)
        axes[3].plot(t, [r[f"closest_{name}"] for r in rows], "o-", label=name)
    axes[2].set(xlabel="T (K)", ylabel="mean D, Si environment to polymorph")
    axes[3].set(xlabel="T (K)", ylabel="fraction of Si closest to polymorph")
    axes[3].legend()
    fig.tight_layout()
    save_figure(fig, out / "dmeasure.png", dpi=120)
    plt.close(fig)


#: Columns averaged per temperature bin over seeds.
BINNED = ("density_g_cm3", "d_to_first_frame", *(f"closest_{name}" for name in CRYSTAL_REFERENCES))


def write_binned(binned: list[dict[str, float]], out: Path) -> None:
    """``binned.csv`` and ``density.png`` (density and polymorph shares, mean +- s.e. over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    _csv(binned, out / "binned.csv")
    t = [(b["T_low_K"] + b["T_high_K"]) / 2 for b in binned]
    fig, axes = plt.subplots(2, 1, figsize=(6.5, 7), sharex=True)
    axes[0].errorbar(t, [b["density_g_cm3_mean"] for b in binned], [b["density_g_cm3_sem"] for b in binned],
                     fmt="o-", capsize=3)
    axes[0].set(ylabel="density (g/cm$^3$)", title=f"BKS SiO$_2$ heated at 1 bar, {binned[0]['n_seeds']} seeds")
    for name in CRYSTAL_REFERENCES:
        axes[1].errorbar(t, [b[f"closest_{name}_mean"] for b in binned],
                         [b[f"closest_{name}_sem"] for b in binned], fmt="o-", capsize=3, label=name)
    axes[1].set(xlabel="T (K)", ylabel="fraction of Si closest to polymorph")
    axes[1].legend()
    fig.tight_layout()
    save_figure(fig, out / "density.png", dpi=120)
    plt.close(fig)


def density_maximum(runs: Sequence[Sequence[dict[str, float]]]) -> dict[str, Any]:
    """Where the seeds' mean equilibrium density is highest, and how far above both ends of the
    ladder, paired per seed (mean and standard error over seeds of ``rho(T_top) - rho(T_end)``).

    A maximum inside the ladder is resolved when both differences exceed twice their standard error.
    """
    rho = np.array([[r["density_g_cm3"] for r in rows] for rows in runs])  # (seeds, temperatures)
    temps = [r["temperature_K"] for r in runs[0]]
    top = int(np.argmax(rho.mean(axis=0)))
    n = len(runs)

    def paired(end: int) -> tuple[float, float]:
        d = rho[:, top] - rho[:, end]
        return float(d.mean()), float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")

    return {"T_top_K": temps[top], "above_first": paired(0), "above_last": paired(len(temps) - 1),
            "seed_maxima_K": [temps[int(i)] for i in np.argmax(rho, axis=1)]}


def write_ladder(states: list[dict[str, float]], binned: list[dict[str, float]], out: Path) -> None:
    """``ladder.csv`` and ``ladder.png``: equilibrium density and coesite share per temperature
    (mean over seeds, error bar the larger of the two standard errors), the glass branch's bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    _csv(states, out / "ladder.csv")
    t = [s["temperature_K"] for s in states]
    err = [np.nanmax([s["density_sem_seeds"], s["density_sem_blocks"]]) for s in states]
    fig, axes = plt.subplots(2, 1, figsize=(6.5, 7), sharex=True)
    axes[0].errorbar([(b["T_low_K"] + b["T_high_K"]) / 2 for b in binned], [b["density_g_cm3_mean"] for b in binned],
                     [b["density_g_cm3_sem"] for b in binned], fmt="s:", capsize=3, label="heating ramp (bins)")
    axes[0].errorbar(t, [s["density_mean"] for s in states], err, fmt="o-", capsize=3, label="equilibrium NPT")
    axes[0].set(ylabel="density (g/cm$^3$)", title=f"BKS SiO$_2$ at 1 bar, {states[0]['n_seeds']} seeds")
    axes[0].legend()
    axes[1].errorbar(t, [s["coesite_mean"] for s in states], [s["coesite_sem"] for s in states], fmt="o-", capsize=3)
    axes[1].set(xlabel="T (K)", ylabel="fraction of Si closest to coesite")
    fig.tight_layout()
    save_figure(fig, out / "ladder.png", dpi=120)
    plt.close(fig)


#: ``--quick``: 192 atoms, short ramps (three seeds: 3 min wall on 2 shared cores with LAMMPS); with
#: ``--ladder`` four states of 1 + 3 ps.
QUICK = {"repeat": 2, "melt_steps": 3000, "quench_steps": 3000, "heat_steps": 6000, "sample_every": 200, "k": 4,
         "temperatures": [3000.0, 4000.0, 5000.0, 6000.0], "equilibrate_steps": 1000, "production_steps": 3000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("silica_dmeasure_out"))
    parser.add_argument("--frames", type=Path, nargs="+",
                        help="analyse these frame files (one per seed) instead of simulating")
    parser.add_argument("-k", type=int, default=6, help="local environment radius, bonds")
    parser.add_argument("--repeat", type=int, default=3, help="beta-cristobalite cells per side")
    parser.add_argument("--melt-steps", type=int, default=6000)
    parser.add_argument("--quench-steps", type=int, default=6000)
    parser.add_argument("--heat-steps", type=int, default=12000)
    parser.add_argument("--sample-every", type=int, default=250)
    parser.add_argument("--t-max", type=float, default=6000.0, help="end of the heating ramp, K")
    parser.add_argument("--engine", choices=("lammps", "matrep"), default="lammps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--bin-width", type=float, default=500.0, help="temperature bin, K")
    parser.add_argument("--ladder", action="store_true",
                        help="after the ramp to the first --temperatures, equilibrium NPT states at each of them")
    parser.add_argument("--temperatures", type=float, nargs="+", default=list(LADDER), help="ladder states, K")
    parser.add_argument("--equilibrate-steps", type=int, default=10000, help="per ladder state, no frames")
    parser.add_argument("--production-steps", type=int, default=30000, help="per ladder state, sampled")
    parser.add_argument("--production-every", type=int, default=100, help="steps between ladder frames")
    parser.add_argument("--analyse-every", type=int, default=10, help="network analysis on every n-th ladder frame")
    parser.add_argument("--kspace", choices=("pppm", "ewald"), help="Ewald Coulomb instead of DSF (LAMMPS)")
    parser.add_argument("--kspace-accuracy", type=float, default=1e-5, help="relative force error of --kspace")
    parser.add_argument("--quick", action="store_true", help=f"small and short defaults: {QUICK}")
    if parser.parse_args().quick:  # QUICK replaces the defaults; options given still win
        parser.set_defaults(**QUICK)
    args = parser.parse_args()
    ladder = None
    if args.ladder:
        ladder = {"temperatures": args.temperatures, "equilibrate_steps": args.equilibrate_steps,
                  "production_steps": args.production_steps, "production_every": args.production_every}
    runs = []
    if args.frames is not None:
        from ase.io import read

        for k, path in enumerate(args.frames):
            runs.append((args.out / f"run_{k}", read(path, index=":")))
    else:
        for seed in args.seeds:
            out = args.out / f"seed_{seed}"
            runs.append((out, simulate(out, repeat=args.repeat, melt_steps=args.melt_steps,
                                       quench_steps=args.quench_steps, heat_steps=args.heat_steps,
                                       sample_every=args.sample_every, seed=seed, engine=args.engine,
                                       kspace=args.kspace, kspace_accuracy=args.kspace_accuracy, ladder=ladder,
                                       **({} if ladder else {"t_max": args.t_max}))))
    all_rows, all_states = [], []
    for out, frames in runs:
        ramp = [f for f in frames if f.info.get("stage", 0) < 4] if ladder else frames
        rows = analyse(ramp, k=args.k)
        write(rows, out)
        all_rows.append(rows)
        if ladder:
            all_states.append(equilibrium_states(frames, k=args.k, analyse_every=args.analyse_every))
            _csv(all_states[-1], out / "ladder.csv")
    binned = bin_by_temperature(all_rows, args.bin_width, BINNED)
    write_binned(binned, args.out)
    for b in binned:
        print(f"{b['T_low_K']:6.0f}-{b['T_high_K']:<6.0f} K  n={b['n_seeds']}  density "
              f"{b['density_g_cm3_mean']:.4f} +- {b['density_g_cm3_sem']:.4f} g/cm3  coesite-like "
              f"{b['closest_coesite_mean']:.3f} +- {b['closest_coesite_sem']:.3f}")
    if ladder:
        states = combine_states(all_states)
        write_ladder(states, binned, args.out)
        print("equilibrium states (density +- s.e. over seeds / from blocks; largest |drift| of a seed):")
        for i, st in enumerate(states):
            drift = max(abs(rows[i]["density_drift"]) for rows in all_states)
            print(f"{st['temperature_K']:6.0f} K  density {st['density_mean']:.4f} +- {st['density_sem_seeds']:.4f} / "
                  f"{st['density_sem_blocks']:.4f}  drift {drift:.4f}  coesite-like {st['coesite_mean']:.3f} +- "
                  f"{st['coesite_sem']:.3f}")
        top = density_maximum(all_states)
        t = args.temperatures
        print(f"highest mean density at {top['T_top_K']:.0f} K; paired over seeds, minus {t[0]:.0f} K: "
              f"{top['above_first'][0]:+.4f} +- {top['above_first'][1]:.4f}, minus {t[-1]:.0f} K: "
              f"{top['above_last'][0]:+.4f} +- {top['above_last'][1]:.4f} g/cm3; each seed's highest at "
              f"{top['seed_maxima_K']} K")


if __name__ == "__main__":
    main()
