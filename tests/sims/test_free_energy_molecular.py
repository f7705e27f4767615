"""A molecular case: ammonia inversion with GFN2-xTB (tblite), umbrella sampling on sims Langevin
dynamics, exact vs FEP barriers for two CVs from the same MBAR-weighted frames.

Slow (GFN2-xTB costs tens of ms per step here); the numbers of one run are in docs/free_energy.md.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from sims.cv import Custom, Dihedral, cv_and_inverse_mass
from sims.free_energy import activation_free_energy

T = 300.0


def umbrella_height(positions: torch.Tensor, cell=None) -> torch.Tensor:
    """Signed height of N (atom 0) above the plane of H1, H2, H3, Å: the inversion coordinate."""
    n, h1, h2, h3 = positions[:, 0], positions[:, 1], positions[:, 2], positions[:, 3]
    normal = torch.linalg.cross(h2 - h1, h3 - h1)
    return ((n - h1) * normal).sum(-1) / torch.linalg.norm(normal, dim=-1)


def ammonia_umbrella(*, windows: int = 21, n_steps: int = 1000, equilibrate: int = 100, seed: int = 0):
    """Umbrella sampling of NH3 inversion along the N height (21 windows of 30 eV/Å^2, 0.5 fs steps,
    a frame every 1 fs after 50 fs): about 23k GFN2-xTB force calls."""
    pytest.importorskip("tblite")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ase.build import molecule
    from tblite.ase import TBLite

    from sims.potentials import CalculatorPotential
    from sims.umbrella import umbrella_sampling

    nh3 = molecule("NH3")
    if umbrella_height(torch.as_tensor(nh3.positions)[None])[0] > 0:
        nh3.positions[:, 2] *= -1                                    # start on the negative side, windows go up
    height = Custom(umbrella_height, unit="Å")
    pot = CalculatorPotential(TBLite(method="GFN2-xTB", verbosity=0))
    us = umbrella_sampling(nh3, pot, height, centers=np.linspace(-0.5, 0.5, windows), spring=30.0, temperature=T,
                           n_steps=n_steps, timestep=0.5, friction=0.02, equilibrate=equilibrate, record_every=2,
                           seed=seed)
    return us


@pytest.mark.slow
def test_ammonia_inversion_two_cvs():
    us = ammonia_umbrella()
    block = 100         # 100 frames = 100 fs of one window's trajectory, about three umbrella vibrations
    res_h = activation_free_energy(us.cv, inverse_mass=us.inverse_mass, weights=us.weights, ts=0.0, temperature=T,
                                   bins=50, n_bootstrap=200, block=block, cv_unit="Å")
    # the same frames through a second CV: the H1-H2-H3-N improper dihedral, its inverse mass by autograd
    phi, m_phi, _ = cv_and_inverse_mass(Dihedral(1, 2, 3, 0), us.positions, us.masses)
    res_phi = activation_free_energy(phi.numpy(), inverse_mass=m_phi.numpy(), weights=us.weights, ts=0.0,
                                     temperature=T, bins=50, n_bootstrap=200, block=block, cv_unit="rad")
    print("\nN height:\n" + res_h.table() + "\nimproper dihedral:\n" + res_phi.table())
    for res in (res_h, res_phi):
        assert res.reaction == pytest.approx(0.0, abs=3 * res.reaction_error + 0.5)   # mirror images: dA = 0
    # both CVs divide at the planar geometry (h = 0 is phi = 0), so P_A and the flux through it agree: the
    # exact barriers agree up to sqrt(<m^-1>) vs <sqrt(m^-1)> on the surface; the FEP barriers need not
    assert res_h.forward == pytest.approx(res_phi.forward, abs=3 * np.hypot(res_h.forward_error, res_phi.forward_error) + 0.5)
    assert 15.0 < res_h.forward < 35.0                                                  # GFN2 barrier ~26 kJ/mol
