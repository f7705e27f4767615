"""Lennard-Jones energy and pressure against reference equations of state (teqp), slow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms, units

import sims
from sims.potentials import LennardJones

SIGMA, EPS, MASS = 3.4, 0.0104, 39.948  # Å, eV, amu (argon)


def _teqp_reference(t_red: float, rho_red: float) -> tuple[float, float]:
    """Residual energy per particle u*/N and pressure p* from Thol et al., J. Phys. Chem. Ref. Data 45,
    023101 (2016) (accuracy about 0.5 % in pressure and energy in the fluid) through teqp."""
    teqp = pytest.importorskip("teqp")
    model = teqp.make_model({"kind": "LJ126_TholJPCRD2016", "model": {}})
    z = np.array([1.0])
    u_res = t_red * model.get_Ar10(t_red, rho_red, z)  # Ar10 = u_res / (k T)
    p = rho_red * t_red * (1 + model.get_Ar01(t_red, rho_red, z))
    return u_res, p


@pytest.mark.slow
@pytest.mark.parametrize("t_red, rho_red", [(2.0, 0.7), (1.5, 0.5)])
def test_lj_energy_and_pressure_match_equation_of_state(t_red, rho_red):
    n, rc_red = 500, 3.5
    box = (n / rho_red) ** (1 / 3) * SIGMA
    rng = np.random.default_rng(0)
    grid = (np.stack(np.meshgrid(*[np.arange(8)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n] + 0.5) * box / 8
    atoms = Atoms("Ar%d" % n, positions=grid + rng.normal(0, 0.05, grid.shape), cell=[box] * 3, pbc=True)
    temperature = t_red * EPS / units.kB
    pot = LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=rc_red * SIGMA, shift=False)  # truncated, not shifted
    md = sims.MD(atoms, pot, sims.Langevin(timestep=8.0, temperature=temperature, friction=0.01),
                 temperature=temperature, seed=1, record_every=0, skin=1.5)
    md.run(1500)
    energies, pressures = [], []
    volume = box ** 3
    for _ in range(400):
        md.run(10)
        _, _, stress = sims.compute(pot, md.state.positions, md.state.cell, md.state.numbers,
                                    md.neighbors.update(md.state.positions, md.state.cell, md.state.pbc),
                                    forces=False, stress=True)
        energies.append(float(md.energy) / n)
        pressures.append(n * units.kB * temperature / volume - float(torch.trace(stress)) / 3)
    # Standard long-range corrections for g(r) = 1 beyond rc (Allen & Tildesley, eq. 2.144).
    rho = n / volume
    sr3 = (1 / rc_red) ** 3
    u_tail = 8 / 3 * math.pi * rho * EPS * SIGMA ** 3 * (sr3 ** 3 / 3 - sr3)
    p_tail = 16 / 3 * math.pi * rho ** 2 * EPS * SIGMA ** 3 * (2 / 3 * sr3 ** 3 - sr3)
    u_red = (np.mean(energies) + u_tail) / EPS
    p_red = (np.mean(pressures) + p_tail) * SIGMA ** 3 / EPS
    u_ref, p_ref = _teqp_reference(t_red, rho_red)
    assert u_red == pytest.approx(u_ref, rel=0.01)
    assert p_red == pytest.approx(p_ref, rel=0.03, abs=0.03)
