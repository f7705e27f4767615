"""The Müller-Brown surface: stationary points found by scipy against the published ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.optimize import root

import sims
from sims.errors import SimsInputError
from sims.potentials import MuellerBrown

#: Müller & Brown, Theor. Chim. Acta 53, 75 (1979), Table 1: (x, y, V) of the minima and saddles
#: (as quoted to three decimals in every later use of the surface).
MINIMA = [(-0.558, 1.442, -146.70), (0.623, 0.028, -108.17), (-0.050, 0.467, -80.77)]
SADDLES = [(-0.822, 0.624, -40.66), (0.212, 0.293, -72.25)]


def _v(pot, x, y):
    with torch.no_grad():
        return float(pot.surface(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)))


def _grad_hess(pot, xy):
    p = torch.tensor(xy, dtype=torch.float64, requires_grad=True)
    e = pot.surface(p[0], p[1])
    g = torch.autograd.grad(e, p, create_graph=True)[0]
    h = torch.stack([torch.autograd.grad(g[i], p, retain_graph=True)[0] for i in range(2)])
    return g.detach().numpy(), h.detach().numpy()


@pytest.mark.parametrize("point,n_negative", [(m, 0) for m in MINIMA] + [(s, 1) for s in SADDLES])
def test_stationary_points_match_published(point, n_negative):
    pot = MuellerBrown(energy_scale=1.0)
    x, y, v = point
    # Newton from a guess 0.03 Å off: the root is found, not assumed.
    sol = root(lambda z: _grad_hess(pot, z)[0], [x + 0.03, y - 0.03], jac=lambda z: _grad_hess(pot, z)[1], tol=1e-12)
    assert sol.success
    assert sol.x == pytest.approx([x, y], abs=1.5e-3)
    energy = _v(pot, *sol.x)
    assert energy == pytest.approx(v, abs=0.02)
    assert (np.linalg.eigvalsh(_grad_hess(pot, sol.x)[1]) < 0).sum() == n_negative


def test_energy_scale_and_springs():
    atoms = Atoms("Ar2", positions=[[-0.558, 1.442, 0.3], [0.1, -0.2, 0.4]])
    pot5 = MuellerBrown(dim=5, energy_scale=0.01, spring=2.0)
    e5, f5 = sims.energy_and_forces(pot5, atoms, dtype=torch.float64)
    unit = MuellerBrown(energy_scale=1.0)
    ref = 0.01 * _v(unit, -0.558, 1.442)
    assert e5 == pytest.approx(ref + 0.5 * 2.0 * (0.3 ** 2 + 0.1 ** 2 + 0.2 ** 2 + 0.4 ** 2), rel=1e-12)
    np.testing.assert_allclose(f5[1], [-0.2, 0.4, -0.8], atol=1e-12)   # harmonic coordinates only
    pot2 = MuellerBrown(energy_scale=0.01, spring=2.0)
    e2, _ = sims.energy_and_forces(pot2, atoms, dtype=torch.float64)   # two independent 2-D particles
    assert e2 == pytest.approx(ref + 0.01 * _v(unit, 0.1, -0.2) + 0.5 * 2.0 * (0.3 ** 2 + 0.4 ** 2), rel=1e-12)


def test_bad_arguments():
    with pytest.raises(SimsInputError, match="dim must be 2 or 5"):
        MuellerBrown(dim=3)
    with pytest.raises(SimsInputError, match="spring"):
        MuellerBrown(spring=-1.0)
    with pytest.raises(SimsInputError, match="even number of atoms"):
        sims.energy_and_forces(MuellerBrown(dim=5), Atoms("Ar3", positions=np.zeros((3, 3)) + [0, 0.5, 0]),
                               dtype=torch.float64)


def test_five_dimensional_forces_are_the_gradient():
    rng = np.random.default_rng(0)
    atoms = Atoms("Ar4", positions=rng.uniform(-0.5, 1.0, (4, 3)))
    pot = MuellerBrown(dim=5)
    _, forces = sims.energy_and_forces(pot, atoms, dtype=torch.float64)
    h = 1e-6
    for a in range(4):
        for c in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, c] += h
            minus.positions[a, c] -= h
            fd = -(sims.energy_and_forces(pot, plus, dtype=torch.float64)[0]
                   - sims.energy_and_forces(pot, minus, dtype=torch.float64)[0]) / (2 * h)
            assert forces[a, c] == pytest.approx(fd, abs=1e-7)
