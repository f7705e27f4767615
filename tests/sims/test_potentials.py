"""Potentials against ASE calculators and brute-force references; the contract every potential meets
(gradients, invariances, dtype, cutoff) is tests/potential_contract.py, run by test_potentials_contract.py."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.lj import LennardJones as AseLJ
from ase.calculators.morse import MorsePotential as AseMorse
from ase.stress import full_3x3_to_voigt_6_stress
from ase.units import Bohr, Hartree

import sims
from reprs.errors import InputError
from sims.errors import SimsInputError
from sims.potentials import BKS, Buckingham, LennardJones, Morse, TabulatedPair

F64 = torch.float64


def _skewed(atoms, seed=0):
    """A triclinic, rattled copy, so no symmetry hides a wrong sign."""
    atoms = atoms.copy()
    rng = np.random.default_rng(seed)
    atoms.set_cell(atoms.cell[:] + rng.uniform(-0.4, 0.4, (3, 3)), scale_atoms=True)
    atoms.rattle(0.08, seed=seed)
    return atoms


def _silica(n_units=8, seed=0, density=2.2):
    """Random SiO2 without close contacts (a test configuration, not a glass)."""
    rng = np.random.default_rng(seed)
    n = 3 * n_units
    mass = n_units * (28.0855 + 2 * 15.999) * 1.66054  # 1e-24 g
    box = (mass / density) ** (1 / 3)  # Å
    pos = []
    while len(pos) < n:
        p = rng.uniform(0, box, 3)
        if all(np.linalg.norm((p - q + box / 2) % box - box / 2) > 1.5 for q in pos):
            pos.append(p)
    return Atoms("Si%dO%d" % (n_units, 2 * n_units), positions=pos, cell=[box] * 3, pbc=True)


def test_lj_equals_ase(argon_liquid):
    atoms = _skewed(argon_liquid)
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, shift=True, dtype=F64)
    e, f, s = sims.energy_and_forces(pot, atoms, stress=True, dtype=F64)
    atoms.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5, smooth=False)
    assert abs(e - atoms.get_potential_energy()) < 1e-10
    np.testing.assert_allclose(f, atoms.get_forces(), atol=1e-10)
    np.testing.assert_allclose(full_3x3_to_voigt_6_stress(s), atoms.get_stress(), atol=1e-10)


def test_saved_potential_loads_in_its_dtype(argon_liquid, tmp_path):
    from sims.potentials import load_potential, save_potential

    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, shift=True, dtype=F64)
    save_potential(pot, tmp_path / "lj.pt")
    # no dtype named: the saved precision is kept, so a computation that names none runs in float64
    # (it loaded as float32 before s12: energy 1e-7 relative off ASE's)
    loaded = load_potential(tmp_path / "lj.pt")
    assert loaded.dtype == F64
    e, f = sims.energy_and_forces(loaded, argon_liquid)
    argon_liquid.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5, smooth=False)
    assert abs(e - argon_liquid.get_potential_energy()) < 1e-10
    np.testing.assert_allclose(f, argon_liquid.get_forces(), atol=1e-10)
    assert load_potential(tmp_path / "lj.pt", dtype=torch.float32).dtype == torch.float32  # a named dtype wins
    # a file written before the dtype was saved loads as it did, in float32
    payload = torch.load(tmp_path / "lj.pt", weights_only=True)
    del payload["dtype"]
    torch.save(payload, tmp_path / "old.pt")
    assert load_potential(tmp_path / "old.pt").dtype == torch.float32


def test_morse_equals_ase(argon_liquid):
    atoms = _skewed(argon_liquid, seed=4)
    pot = Morse(epsilon=0.2, rho0=5.0, r0=3.9, cutoff=2.7 * 3.9, cutoff_start=1.9 * 3.9, dtype=F64)
    e, f, s = sims.energy_and_forces(pot, atoms, stress=True, dtype=F64)
    atoms.calc = AseMorse(epsilon=0.2, rho0=5.0, r0=3.9)
    assert abs(e - atoms.get_potential_energy()) < 1e-10
    np.testing.assert_allclose(f, atoms.get_forces(), atol=1e-10)
    np.testing.assert_allclose(full_3x3_to_voigt_6_stress(s), atoms.get_stress(), atol=1e-10)


def _buck(r, a, b, c):
    return a * math.exp(-b * r) - c / r**6


def _core30(r, eps, sig):
    return 4 * eps * ((sig / r) ** 30 - (sig / r) ** 6)


def _brute_force_bks(atoms, rc_short=5.5, rc_coul=10.0, alpha=0.2):
    """BKS energy summed over explicit periodic images with scalar formulas (independent reference)."""
    k = Hartree * Bohr  # ASE CODATA 2014 value, 14.3996453 eV Å
    q = {"Si": 2.4, "O": -1.2}
    buck = {("O", "O"): (1388.7730, 2.76, 175.0), ("Si", "O"): (18003.7572, 4.87318, 133.5381)}
    core = {("O", "O"): (1.2e-3, 1.779), ("Si", "O"): (3.0e-3, 1.313)}
    sym, pos, cell = atoms.get_chemical_symbols(), atoms.positions, atoms.cell[:]
    reach = [int(math.ceil(rc_coul / h)) for h in 1 / np.linalg.norm(np.linalg.inv(cell).T, axis=1)]
    shifts = np.array(list(itertools.product(*[range(-r, r + 1) for r in reach]))) @ cell
    erfc_rc = math.erfc(alpha * rc_coul)
    slope = erfc_rc / rc_coul**2 + 2 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * rc_coul) ** 2) / rc_coul
    energy = 0.0
    for a in range(len(atoms)):
        for b in range(len(atoms)):
            key = tuple(sorted((sym[a], sym[b]), reverse=True))
            for r in np.linalg.norm(pos[b] + shifts - pos[a], axis=1):
                if r < 1e-9:
                    continue
                if r < rc_coul:
                    energy += 0.5 * k * q[sym[a]] * q[sym[b]] * (
                        math.erfc(alpha * r) / r - erfc_rc / rc_coul + slope * (r - rc_coul))
                if r < rc_short and key in buck:
                    energy += 0.5 * (_buck(r, *buck[key]) - _buck(rc_short, *buck[key])
                                     + _core30(r, *core[key]) - _core30(rc_short, *core[key]))
    return energy


def test_bks_equals_brute_force():
    atoms = _silica(4, seed=1)  # a 12-atom box smaller than the 10 Å Coulomb cutoff: many images
    e, _ = sims.energy_and_forces(BKS(dtype=F64), atoms, dtype=F64)
    assert e == pytest.approx(_brute_force_bks(atoms), abs=1e-9)


def test_bks_core_correction_removes_collapse():
    # Without the correction the Si-O pair energy falls without bound as r -> 0 (Buckingham's C/r^6).
    pot = BKS(dtype=F64)
    r = torch.linspace(0.3, 3.0, 400, dtype=F64)
    si, o = torch.full_like(r, 14).long(), torch.full_like(r, 8).long()
    total = sum(term.pair_energy(r, si, o) for term in pot.terms)
    buck_coul = sum(term.pair_energy(r, si, o) for term in pot.terms[:2])
    assert buck_coul[0] < -1e3
    well = int(total.argmin())
    assert (torch.diff(total[: well + 1]) < 0).all()  # purely repulsive inside the bond length
    # The pair well of plain BKS (1.38 Å; the 1.6 Å bond of the solid needs the O-O repulsion) survives.
    outer = r > 1.2
    plain_well = r[outer][buck_coul[outer].argmin()]
    assert abs(r[well] - plain_well) < 0.02 and total[well] < -10


def test_tabulated_reproduces_lj_and_learns(argon_liquid):
    r = np.linspace(3.0, 8.5, 1101)
    lj = 4 * 0.0104 * ((3.4 / r) ** 12 - (3.4 / r) ** 6)
    tab = TabulatedPair(r_min=3.0, cutoff=8.5, values=lj - lj[-1], dtype=F64)
    ref = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, dtype=F64)
    e_tab, f_tab = sims.energy_and_forces(tab, argon_liquid, dtype=F64)
    e_ref, f_ref = sims.energy_and_forces(ref, argon_liquid, dtype=F64)
    assert e_tab == pytest.approx(e_ref, rel=1e-6)
    np.testing.assert_allclose(f_tab, f_ref, atol=1e-5)
    # dE/d(values) is the per-knot hat-weight sum: positive and finite wherever pairs are.
    state = sims.State.from_atoms(argon_liquid, dtype=F64)
    pairs = sims.build_pairs(state.positions, state.cell, state.pbc, 8.5, half=True)
    tab(state.positions, state.cell, state.numbers, pairs).backward()
    assert tab.values.grad is not None and tab.values.grad.sum() == pytest.approx(len(pairs.i), rel=1e-9)


def test_bad_parameters_and_atoms():
    with pytest.raises(SimsInputError):
        LennardJones(sigma=-1.0)
    with pytest.raises(SimsInputError):
        Morse(cutoff=2.0, cutoff_start=3.0)
    with pytest.raises(SimsInputError, match="unknown element"):
        Buckingham({("Xx", "O"): (1.0, 1.0, 1.0)}, cutoff=5.0)
    with pytest.raises(InputError, match="non-finite position"):
        sims.energy_and_forces(LennardJones(), Atoms("H2", positions=[[0, 0, 0], [np.inf, 0, 0]]))


def test_float32_built_potential_evaluated_in_float64_is_exact(argon_liquid):
    """A requested dtype is honoured end to end: a potential built in the default float32 and
    evaluated in float64 used to compute with float32-rounded sigma and epsilon (2e-8 relative
    error against ASE); its parameters are now float64 as given, cast to the computation's dtype."""
    atoms = _skewed(argon_liquid)
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, shift=True)  # dtype float32
    e, f = sims.energy_and_forces(pot, atoms, dtype=F64)
    atoms.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5, smooth=False)
    assert e == pytest.approx(atoms.get_potential_energy(), rel=1e-12, abs=0)
    np.testing.assert_allclose(f, atoms.get_forces(), rtol=0, atol=1e-12)
    # The tensors of the computation carry the requested dtype; without one, the potential's.
    state = sims.State.from_atoms(atoms, dtype=F64)
    pairs = sims.build_pairs(state.positions, state.cell, state.pbc, pot.cutoff, half=True)
    for dtype in (torch.float32, F64):
        # One pair list (built in float64) serves both precisions.
        energy, forces, stress = sims.compute(pot, state.positions.to(dtype), state.cell.to(dtype), state.numbers,
                                              pairs, stress=True)
        assert energy.dtype == forces.dtype == stress.dtype == dtype and energy.dim() == 0
    md = sims.MD(atoms, pot, sims.VelocityVerlet(1.0), record_every=0)
    assert md.state.positions.dtype == torch.float32 and md.energy.dtype == torch.float32
    assert sims.MD(atoms, pot, sims.VelocityVerlet(1.0), dtype=F64, record_every=0).energy.dtype == F64
    with pytest.raises(SimsInputError, match="State is torch.float64"):
        sims.MD(state, pot, sims.VelocityVerlet(1.0), dtype=torch.float32)


def test_a_potential_that_mixes_precisions_is_refused(argon_liquid):
    class Float32Only(torch.nn.Module):
        cutoff = 3.0

        def forward(self, positions, cell, numbers, pairs):
            return positions.float().sum() * 0

    with pytest.raises(SimsInputError, match="float32.*float64 positions"):
        sims.energy_and_forces(Float32Only(), argon_liquid, dtype=F64)
    with pytest.raises(SimsInputError, match="dtype"):
        LennardJones(dtype=np.float64)


def test_float32_far_from_the_origin_is_as_precise_as_at_it():
    """Positions were cast to float32 as given: 10^4 Å from the origin a coordinate is rounded by up to
    6e-4 Å, and LJ argon forces were 2e-3 (relative, 1.4e-4 at 10^3 Å) away from float64's, where they are
    2e-6 at the origin. Below float64 a translation-invariant potential now gets the positions about their
    centroid (moved in float64). Reference: the float64 computation at the origin."""
    from ase.build import bulk

    from sims.batch import batch_energy_and_forces

    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(3)
    atoms.rattle(0.1, seed=1)
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5)
    e0, f0, s0 = sims.energy_and_forces(pot, atoms, dtype=F64, stress=True)
    far = [atoms.copy() for _ in range(3)]
    far[0].positions += [1e4, -1e4, 5e3]
    far[1].positions += [-1e3, 2e3, 1e3]
    for a in far:
        e, f, s = sims.energy_and_forces(pot, a, dtype=torch.float32, stress=True)
        assert abs(e - e0) < 1e-6 * abs(e0) and np.abs(f - f0).max() < 1e-5 * np.abs(f0).max()
        np.testing.assert_allclose(s, s0, rtol=0, atol=1e-5 * np.abs(s0).max())
    energies, forces = batch_energy_and_forces(pot, far, dtype=torch.float32)
    np.testing.assert_allclose(energies, e0, rtol=1e-6)
    assert all(np.abs(f - f0).max() < 1e-5 * np.abs(f0).max() for f in forces)


def test_external_fields_and_biases_are_not_moved_to_the_centroid():
    """Only a potential whose energy a common translation leaves unchanged gets centred positions: an
    external field (DoubleWell) and a bias on a Position CV read absolute coordinates. Reference: the
    double well's formula at the given positions, U = a (x^2 - b^2)^2 per particle."""
    from sims.cv import Position
    from sims.potentials import DoubleWell, translation_safe
    from sims.umbrella import HarmonicBias

    well = DoubleWell(a=0.5, b=1.0, dtype=torch.float32)
    bias = HarmonicBias(Position(0, "x"), center=0.0, spring=1.0)
    assert not translation_safe(well) and not translation_safe(bias)
    assert translation_safe(LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5))
    atoms = Atoms("H2", positions=[[1.5, 0, 0], [0.5, 0, 0]])
    e, _ = sims.energy_and_forces(well, atoms, dtype=torch.float32)
    assert e == pytest.approx(0.5 * ((1.5 ** 2 - 1) ** 2 + (0.5 ** 2 - 1) ** 2), rel=1e-6)
