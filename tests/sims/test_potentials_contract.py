"""The shared potential contract (tests/potential_contract.py) over every potential of sims.potentials.

The cases are checked against an enumeration of the module (every public ``nn.Module`` class and
every public function returning a potential), so a new potential without a case fails here.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from ase.calculators.lj import LennardJones as AseLJ

import sims.potentials as sp
from tests.potential_contract import CHECKS, F64, PotentialCase, applicable

#: Base classes that are not potentials by themselves.
ABSTRACT = {"Potential", "PairPotential"}
R = np.linspace(1.6, 5.0, 40)

def _near_mueller_brown():
    """Six argon atoms on the Müller-Brown surface, where it stays finite in float32."""
    from ase import Atoms

    rng = np.random.default_rng(3)
    pos = np.column_stack([rng.uniform(-1.2, 0.8, 6), rng.uniform(-0.2, 1.8, 6), rng.uniform(-0.5, 0.5, 6)])
    return Atoms("Ar6", positions=pos, cell=np.eye(3) * 8.0, pbc=True)


CASES = {
    "LennardJones": PotentialCase(lambda dtype, device: sp.LennardJones(sigma=2.0, epsilon=0.05, cutoff=5.0,
                                                                        dtype=dtype, device=device)),
    "Morse": PotentialCase(lambda dtype, device: sp.Morse(epsilon=0.3, rho0=4.0, r0=2.2, cutoff=5.0,
                                                          cutoff_start=4.0, dtype=dtype, device=device)),
    "Buckingham": PotentialCase(lambda dtype, device: sp.Buckingham(
        {("Si", "O"): (1800.0, 0.3, 10.0), ("O", "O"): (1388.773, 0.362, 175.0)}, cutoff=5.0, dtype=dtype,
        device=device)),
    "CoreRepulsion": PotentialCase(lambda dtype, device: sp.CoreRepulsion(sp.BKS_CORE, cutoff=5.5, dtype=dtype,
                                                                          device=device)),
    "LennardJonesMixture": PotentialCase(lambda dtype, device: sp.LennardJonesMixture(
        {("Si", "O"): (0.05, 1.6), ("O", "O"): (0.02, 2.4), ("Si", "Si"): (0.03, 2.8)}, cutoff=5.0, dtype=dtype,
        device=device)),
    "DSFCoulomb": PotentialCase(lambda dtype, device: sp.DSFCoulomb({"Si": 1.0, "O": -0.5}, cutoff=6.0,
                                                                    dtype=dtype, device=device)),
    # The last value is zero, so the energy is continuous at the cutoff.
    "TabulatedPair": PotentialCase(lambda dtype, device: sp.TabulatedPair(
        r_min=1.6, cutoff=5.0, values=0.05 * np.cos(R) * (5.0 - R), dtype=dtype, device=device)),
    "NeuralPair": PotentialCase(lambda dtype, device: sp.NeuralPair(cutoff=5.0, n_basis=12, hidden=(8, 8),
                                                                    prior=(0.05, 1.5), dtype=dtype, device=device)),
    "SumPotential": PotentialCase(lambda dtype, device: sp.SumPotential([
        sp.LennardJones(sigma=2.0, epsilon=0.05, cutoff=5.0, dtype=dtype, device=device),
        sp.DSFCoulomb({"Si": 1.0, "O": -0.5}, cutoff=6.0, dtype=dtype, device=device)])),
    "BKS": PotentialCase(lambda dtype, device: sp.BKS(dtype=dtype, device=device)),
    "DoubleWell": PotentialCase(lambda dtype, device: sp.DoubleWell(a=0.05, b=1.0, tilt=0.01, k_y=0.2, k_z=0.1,
                                                                    dtype=dtype, device=device),
                                dimer=None, external_field=True),
    # dim=2: every atom a particle (dim=5 pairs atoms, so a swap is no symmetry; tests/sims/test_mueller_brown.py).
    "MuellerBrown": PotentialCase(lambda dtype, device: sp.MuellerBrown(dtype=dtype, device=device),
                                  structure=lambda: _near_mueller_brown(), dimer=None, external_field=True),
    # The calculator finds its own neighbours: no cutoff of ours to check.
    "CalculatorPotential": PotentialCase(
        lambda dtype, device: sp.CalculatorPotential(AseLJ(sigma=2.0, epsilon=0.05, rc=5.0, smooth=True)), dimer=None),
}


def _public_potentials() -> set[str]:
    names = set()
    for name, obj in vars(sp).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and obj.__module__ == sp.__name__:
            names.add(name)
        elif inspect.isfunction(obj) and obj.__module__ == sp.__name__ \
                and "Potential" in str(inspect.signature(obj).return_annotation):
            names.add(name)
    return names - ABSTRACT


def test_every_potential_has_a_case():
    public = _public_potentials()
    assert {"BKS", "CoreRepulsion", "CalculatorPotential", "LennardJones"} <= public  # the enumeration works
    assert public == set(CASES), f"add a PotentialCase for {sorted(public - set(CASES))}"
    assert public <= set(sp.__all__)
    for name, case in CASES.items():
        pot = case.make(F64, None)
        factory = getattr(sp, name)
        assert isinstance(pot, factory) if inspect.isclass(factory) else isinstance(pot, sp.Potential)


@pytest.mark.parametrize("name,check", applicable(CASES))
def test_contract(name, check):
    CHECKS[check](CASES[name])
