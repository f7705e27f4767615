"""Gradients through short trajectories equal finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

import sims
from sims.potentials import Morse

F64 = torch.float64


def _atoms():
    rng = np.random.default_rng(11)
    grid = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3) * 2.6
    atoms = Atoms("Ar8", positions=grid + rng.normal(0, 0.1, (8, 3)), cell=np.eye(3) * 5.2, pbc=True)
    atoms.set_velocities(rng.normal(0, 0.02, (8, 3)))
    return atoms


def _loss(epsilon: torch.Tensor, r0: torch.Tensor, x0: torch.Tensor, integrator_factory) -> torch.Tensor:
    """Final potential energy plus a final-position term after 15 steps."""
    pot = Morse(epsilon=1.0, rho0=4.0, r0=1.0, cutoff=4.5, cutoff_start=3.5, dtype=F64)
    # Plug in the (possibly grad-tracking) values as the module's parameters.
    del pot.epsilon, pot.r0
    pot.epsilon, pot.r0 = epsilon, r0
    state = sims.State.from_atoms(_atoms(), dtype=F64)
    state = state.with_(positions=x0)
    md = sims.MD(state, pot, integrator_factory(), requires_grad=True, record_every=0, seed=5)
    md.run(15)
    return md.energy + 0.1 * (md.state.positions[:, 0] ** 2).sum()


@pytest.mark.parametrize("integrator_factory", [
    lambda: sims.VelocityVerlet(timestep=4.0),
    lambda: sims.Langevin(timestep=4.0, temperature=300.0, friction=0.05),
    lambda: sims.NoseHooverChain(timestep=4.0, temperature=300.0, tau=40.0),
], ids=["verlet", "langevin", "nose-hoover-chain"])
def test_trajectory_gradient_matches_finite_differences(integrator_factory):
    eps = torch.tensor(0.05, dtype=F64, requires_grad=True)
    r0 = torch.tensor(2.9, dtype=F64, requires_grad=True)
    x0 = torch.as_tensor(_atoms().positions, dtype=F64).requires_grad_(True)
    loss = _loss(eps, r0, x0, integrator_factory)
    g_eps, g_r0, g_x = torch.autograd.grad(loss, [eps, r0, x0])

    h = 1e-6

    def value(e, r, x):
        return float(_loss(torch.tensor(e, dtype=F64), torch.tensor(r, dtype=F64), x, integrator_factory).detach())

    x_plain = x0.detach()
    fd_eps = (value(0.05 + h, 2.9, x_plain) - value(0.05 - h, 2.9, x_plain)) / (2 * h)
    fd_r0 = (value(0.05, 2.9 + h, x_plain) - value(0.05, 2.9 - h, x_plain)) / (2 * h)
    assert float(g_eps) == pytest.approx(fd_eps, rel=1e-5, abs=1e-8)
    assert float(g_r0) == pytest.approx(fd_r0, rel=1e-5, abs=1e-8)
    for a, c in [(0, 0), (3, 1), (7, 2)]:
        dx = torch.zeros_like(x_plain)
        dx[a, c] = h
        fd = (value(0.05, 2.9, x_plain + dx) - value(0.05, 2.9, x_plain - dx)) / (2 * h)
        assert float(g_x[a, c]) == pytest.approx(fd, rel=1e-5, abs=1e-8)
    assert abs(float(g_eps)) > 1e-3  # the loss does depend on the parameter


def test_production_runs_keep_no_graph():
    md = sims.MD(_atoms(), Morse(epsilon=0.05, rho0=4.0, r0=2.9, cutoff=4.5, cutoff_start=3.5, dtype=F64),
                 sims.VelocityVerlet(timestep=4.0), dtype=F64, record_every=0)
    md.run(5)
    assert not md.state.positions.requires_grad and md.state.positions.grad_fn is None
