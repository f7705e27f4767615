"""The one contract every potential meets, classical (:mod:`sims.potentials`) or learned
(:mod:`learners.potentials`).

A potential is ``potential(positions, cell, numbers, pairs) -> energy`` with a ``cutoff`` (Å).
Each check below takes a :class:`PotentialCase` and asserts one property, through the public
drivers :func:`sims.compute` and :func:`sims.energy_and_forces`:

- ``energy_dtype``: the energy is a scalar, energy and forces have the dtype asked for (float32 and
  float64); a potential built in one dtype and asked for another is exact in it (classical: the
  parameters are float64 as given) or refuses with an error naming both dtypes (learned models).
- ``gradients``: forces are ``-dE/dR`` and the stress ``(1/V) dE/d(strain)``, by central finite
  differences of the energy in float64.
- ``translation``, ``permutation`` (swapping two atoms of one species), ``periodic_image`` (moving
  an atom by a lattice vector): energy unchanged, forces unchanged (or permuted).
- ``cutoff_continuity``: two atoms just inside and just outside ``cutoff`` have the same energy
  (where a cutoff exists: a calculator finds its own neighbours).
- ``determinism``: the same call twice gives the same bits.
- ``nan_refused``: a NaN position is an error, not a NaN energy.
- ``device``: ``device="cpu"`` is accepted by the constructor (where it has one) and the driver.

The test files enumerate their package's potentials and fail when one is missing from their
cases, so a new potential is checked like the others (as tests/reprs/test_featurizers_contract.py
does for featurizers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
from ase import Atoms

import sims

F32, F64 = torch.float32, torch.float64


def silica_like(seed: int = 7, n_units: int = 4, box: float = 6.0) -> Atoms:
    """``Si{n}O{2n}`` at random positions at least 1.5 Å apart in a skewed periodic cell."""
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * box + np.triu(rng.uniform(-0.8, 0.8, (3, 3)), 1)
    frac: list[np.ndarray] = []
    while len(frac) < 3 * n_units:
        p = rng.uniform(0, 1, 3)
        d = (np.asarray(frac) - p + 0.5) % 1 - 0.5 if frac else np.zeros((0, 3))
        if all(np.linalg.norm(x @ cell) > 1.5 for x in d):
            frac.append(p)
    return Atoms(f"Si{n_units}O{2 * n_units}", scaled_positions=frac, cell=cell, pbc=True)


@dataclass
class PotentialCase:
    """How to build one potential for the contract.

    Attributes
    ----------
    make : callable
        ``make(dtype, device) -> potential``.
    structure : callable
        A periodic test structure (with at least two atoms of one species).
    dimer : tuple of str, optional
        Species of the pair for the cutoff-continuity check; None where there is no cutoff.
    exact_in_any_dtype : bool
        Classical potentials: built in float32, evaluated in float64, they equal the float64 build.
        False: the potential refuses a dtype other than its own with an error naming both.
    external_field : bool
        A field fixed in space (model surfaces): no translation or periodic-image invariance.
    """

    make: Callable[[torch.dtype, str | None], torch.nn.Module]
    structure: Callable[[], Atoms] = silica_like
    dimer: tuple[str, str] | None = ("Si", "O")
    exact_in_any_dtype: bool = True
    external_field: bool = False


def _tensors(atoms: Atoms, dtype: torch.dtype, cutoff: float):
    state = sims.State.from_atoms(atoms, dtype=dtype)
    pairs = sims.build_pairs(state.positions, state.cell, state.pbc, cutoff, half=True)
    return state.positions, state.cell, state.numbers, pairs


def _evaluate(pot, atoms: Atoms, dtype: torch.dtype = F64, stress: bool = False):
    return sims.compute(pot, *_tensors(atoms, dtype, float(pot.cutoff)), stress=stress)


def _energy(pot, atoms: Atoms) -> float:
    return float(_evaluate(pot, atoms)[0])


def energy_dtype(case: PotentialCase) -> None:
    atoms = case.structure()
    for dtype in (F32, F64):
        pot = case.make(dtype, None)
        energy, forces, stress = _evaluate(pot, atoms, dtype, stress=True)
        assert energy.dim() == 0 and energy.dtype == forces.dtype == stress.dtype == dtype
        assert forces.shape == (len(atoms), 3) and stress.shape == (3, 3)
        assert bool(torch.isfinite(energy)) and bool(torch.isfinite(forces).all())
    built32, ref = case.make(F32, None), float(_evaluate(case.make(F64, None), atoms, F64)[0])
    if case.exact_in_any_dtype:
        energy = _evaluate(built32, atoms, F64)[0]
        assert energy.dtype == F64 and float(energy) == pytest.approx(ref, rel=1e-12, abs=1e-12)
        e, _ = sims.energy_and_forces(built32, atoms, dtype=F64)
        assert e == pytest.approx(ref, rel=1e-12, abs=1e-12)
    else:
        with pytest.raises(ValueError, match="float64.*float32"):
            sims.energy_and_forces(built32, atoms, dtype=F64)


def gradients(case: PotentialCase) -> None:
    pot, atoms = case.make(F64, None), case.structure()
    _, forces, stress = _evaluate(pot, atoms, stress=True)
    h = 1e-5
    for a, c in [(0, 0), (1, 2), (len(atoms) - 1, 1)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[a, c] += h
        minus.positions[a, c] -= h
        fd = -(_energy(pot, plus) - _energy(pot, minus)) / (2 * h)
        assert float(forces[a, c]) == pytest.approx(fd, abs=1e-6, rel=1e-6)
    for a, b in [(0, 0), (0, 1), (2, 1)]:
        eps = np.zeros((3, 3))
        eps[a, b] = h
        plus, minus = atoms.copy(), atoms.copy()
        plus.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
        minus.set_cell(atoms.cell[:] @ (np.eye(3) - eps), scale_atoms=True)
        fd = (_energy(pot, plus) - _energy(pot, minus)) / (2 * h)
        assert float(stress[a, b]) * atoms.get_volume() == pytest.approx(fd, abs=1e-6, rel=1e-6)


def _same(pot, atoms: Atoms, other: Atoms, order: np.ndarray | None = None) -> None:
    e0, f0, _ = _evaluate(pot, atoms)
    e1, f1, _ = _evaluate(pot, other)
    assert float(e1) == pytest.approx(float(e0), rel=1e-10, abs=1e-10)
    f0 = f0.numpy() if order is None else f0.numpy()[order]
    np.testing.assert_allclose(f1.numpy(), f0, rtol=1e-8, atol=1e-9)


def translation(case: PotentialCase) -> None:
    atoms = case.structure()
    moved = atoms.copy()
    moved.positions += [0.3, -1.1, 2.0]
    _same(case.make(F64, None), atoms, moved)


def permutation(case: PotentialCase) -> None:
    atoms = case.structure()
    same = np.flatnonzero(atoms.numbers == atoms.numbers[0])
    assert len(same) >= 2, "the case's structure needs two atoms of one species"
    order = np.arange(len(atoms))
    order[[same[0], same[-1]]] = order[[same[-1], same[0]]]
    _same(case.make(F64, None), atoms, atoms[order], order)


def periodic_image(case: PotentialCase) -> None:
    atoms = case.structure()
    assert atoms.pbc.all(), "the case's structure must be periodic"
    moved = atoms.copy()
    moved.positions[0] += atoms.cell[0] - 2 * atoms.cell[2]
    _same(case.make(F64, None), atoms, moved)


def cutoff_continuity(case: PotentialCase) -> None:
    pot = case.make(F64, None)
    rc = float(pot.cutoff)
    assert rc > 0

    def dimer(r: float) -> float:
        return sims.energy_and_forces(pot, Atoms(case.dimer, positions=[[0, 0, 0], [r, 0, 0]]), dtype=F64)[0]

    assert dimer(rc - 1e-7) == pytest.approx(dimer(rc + 1e-7), abs=1e-6)
    assert dimer(rc + 1e-7) == pytest.approx(dimer(rc + 1.0), abs=1e-12)  # nothing beyond the cutoff


def determinism(case: PotentialCase) -> None:
    pot, atoms = case.make(F64, None), case.structure()
    (e0, f0, _), (e1, f1, _) = _evaluate(pot, atoms), _evaluate(pot, atoms)
    assert torch.equal(e0, e1) and torch.equal(f0, f1)
    again = case.make(F64, None)  # a second build (seeded weights) gives the same numbers
    assert torch.equal(_evaluate(again, atoms)[0], e0)


def nan_refused(case: PotentialCase) -> None:
    atoms = case.structure()
    atoms.positions[1, 2] = np.nan
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        sims.energy_and_forces(case.make(F64, None), atoms, dtype=F64)


def device(case: PotentialCase) -> None:
    atoms = case.structure()
    pot = case.make(F64, "cpu")
    e, f = sims.energy_and_forces(pot, atoms, device="cpu", dtype=F64)
    e_ref, f_ref = sims.energy_and_forces(case.make(F64, None), atoms, dtype=F64)
    assert e == pytest.approx(e_ref, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(f, f_ref, rtol=1e-10, atol=1e-12)


#: Every check of the contract, by name.
CHECKS: dict[str, Callable[[PotentialCase], None]] = {
    f.__name__: f for f in (energy_dtype, gradients, translation, permutation, periodic_image,
                            cutoff_continuity, determinism, nan_refused, device)}


def applicable(cases: dict[str, PotentialCase]) -> list[tuple[str, str]]:
    """``(case, check)`` pairs to run: all of them, but no cutoff check where there is no cutoff and
    no translation or periodic-image check in an external field."""
    return [(name, check) for name, case in sorted(cases.items()) for check in CHECKS
            if not (check == "cutoff_continuity" and case.dimer is None)
            and not (check in ("translation", "periodic_image") and case.external_field)]
