"""HF / DFT reference data from PySCF: the ASE calculator, its forces, and MD datasets through sims.

References: PySCF called directly on the same coordinates (energies and analytic gradients), and
central finite differences of the energy for the forces.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.units import Bohr, Hartree

from sims.errors import SimsInputError
from sims.generate import generate, read_frames
from sims.md import energy_and_forces
from sims.potentials import CalculatorPotential

pyscf = pytest.importorskip("pyscf")
from pyscf import dft, gto, scf  # noqa: E402

from sims.pyscf_calculator import PySCFCalculator  # noqa: E402


def _direct(atoms, method: str, basis: str) -> tuple[float, np.ndarray]:
    mol = gto.M(atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist())), basis=basis, verbose=0)
    if method == "HF":
        mf = scf.RHF(mol)
    else:
        mf = dft.RKS(mol)
        mf.xc = method
    mf.conv_tol = 1e-10
    energy = mf.kernel()
    return energy, mf.nuc_grad_method().kernel()


@pytest.mark.parametrize("method", ["HF", "B3LYP"])
def test_calculator_equals_pyscf_called_directly(method):
    atoms = molecule("H2O")
    atoms.calc = PySCFCalculator(method=method, basis="6-31G")
    energy, gradient = _direct(atoms, method, "6-31G")
    assert atoms.get_potential_energy() == pytest.approx(energy * Hartree, abs=1e-7)
    np.testing.assert_allclose(atoms.get_forces(), -gradient * Hartree / Bohr, atol=1e-6)


def test_forces_equal_finite_differences_through_sims():
    atoms = molecule("CH3OH")
    atoms.rattle(0.03, seed=1)
    pot = CalculatorPotential(PySCFCalculator(method="HF", basis="STO-3G"))
    _, forces = energy_and_forces(pot, atoms, dtype=torch.float64)
    forces = np.asarray(forces)
    h = 1e-3  # Å
    for i, a in [(0, 0), (1, 2), (3, 1)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, a] += h
        minus.positions[i, a] -= h
        fd = -(energy_and_forces(pot, plus, dtype=torch.float64)[0] - energy_and_forces(pot, minus, dtype=torch.float64)[0]) / (2 * h)
        # the analytic gradient holds to the SCF's orbital-gradient tolerance, sqrt(conv_tol) = 1e-5
        assert float(fd) == pytest.approx(forces[i, a], abs=1e-4)


def test_md_dataset_with_kind_pyscf(tmp_path):
    config = {
        "seed": 0,
        "system": {"builder": "molecule", "name": "H2O"},
        "potential": {"kind": "pyscf", "method": "HF", "basis": "STO-3G"},
        "md": {"dtype": "float64"},
        "stages": [{"ensemble": "langevin", "timestep": 0.5, "temperature": 300.0, "steps": 6, "sample_every": 3}],
        "output": {"path": str(tmp_path / "water.db")},
    }
    frames = read_frames(generate(config))
    assert [f.info["step"] for f in frames] == [3, 6]
    for frame in frames:
        energy, gradient = _direct(frame, "HF", "STO-3G")
        assert frame.get_potential_energy() == pytest.approx(energy * Hartree, abs=1e-6)
        np.testing.assert_allclose(frame.get_forces(), -gradient * Hartree / Bohr, atol=1e-5)


def test_bad_input():
    atoms = molecule("H2O")
    with pytest.raises(SimsInputError, match="unknown PySCFCalculator parameters"):
        PySCFCalculator(functional="B3LYP")
    for params, message in [
        ({"method": "NOT-A-FUNCTIONAL"}, "rejected method"),
        ({"basis": "no-such-basis"}, "cannot build the molecule"),
        ({"spin": 1}, "cannot build the molecule"),
    ]:
        atoms.calc = PySCFCalculator(**params)
        with pytest.raises(SimsInputError, match=message):
            atoms.get_potential_energy()
    periodic = atoms.copy()
    periodic.cell, periodic.pbc = [8.0, 8.0, 8.0], True
    periodic.calc = PySCFCalculator()
    with pytest.raises(SimsInputError, match="molecules only"):
        periodic.get_potential_energy()
