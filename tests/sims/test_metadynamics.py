"""Well-tempered metadynamics with reweighted frames (sims.metadynamics) against quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase import units
from scipy.special import logsumexp

from sims.cv import Dihedral, Position
from sims.errors import SimsInputError
from sims.free_energy import activation_free_energy
from sims.metadynamics import MetadynamicsBias, metadynamics
from sims.potentials import DoubleWell

from .test_free_energy import assert_matches, exact

A, TILT, MASS, T, WALKERS = 0.2, 0.02, 16.0, 300.0, 32        # barrier about 9 kT (22 kJ/mol)


def test_grid_bias_equals_sum_of_hills():
    bias = MetadynamicsBias(Position(0, "x"), sigma=0.1, grid=(-2.0, 2.0, 801))
    rng = np.random.default_rng(0)
    s, h = torch.as_tensor(rng.uniform(-1, 1, 50)), torch.as_tensor(rng.uniform(0.001, 0.01, 50))
    bias.deposit(s, h)
    q = torch.as_tensor(rng.uniform(-1.5, 1.5, 200))
    direct = (h * torch.exp(-0.5 * ((q[:, None] - s) / 0.1) ** 2)).sum(-1)
    # linear interpolation on a grid of sigma/20: error <= spacing^2/8 * max|V''| (about 1e-4 relative)
    assert torch.allclose(bias.bias(q), direct, atol=2e-4 * float(h.sum()))
    assert float(bias.bias(torch.tensor([3.0], dtype=torch.float64))) == 0.0 and bias.n_hills == 50
    # forces on two walkers of one atom each come from the same shared bias
    pos = torch.tensor([[0.3, 0, 0], [-0.2, 0, 0]], dtype=torch.float64, requires_grad=True)
    walkers = MetadynamicsBias(Position(0, "x"), sigma=0.1, grid=(-2.0, 2.0, 801), atoms_per_replica=1)
    walkers.deposit(s, h)
    (grad,) = torch.autograd.grad(walkers(pos), pos)
    expected = (-(pos.detach()[:, :1] - s) / 0.01 * h * torch.exp(-0.5 * ((pos.detach()[:, :1] - s) / 0.1) ** 2)).sum(-1)
    # the slope of a linear interpolant is off by at most spacing/2 * max|V''| <= spacing/2 * sum(h)/sigma^2
    assert torch.allclose(grad[:, 0], expected, rtol=0, atol=0.5 * 0.005 * float(h.sum()) / 0.1 ** 2)


def test_dihedral_hills_wrap_round_the_circle():
    bias = MetadynamicsBias(Dihedral(0, 1, 2, 3), sigma=0.1, grid=(-math.pi, math.pi, 721))
    bias.deposit(torch.tensor([math.pi - 0.02], dtype=torch.float64), torch.tensor([0.01], dtype=torch.float64))
    # 0.04 rad from the hill the short way round, across +-pi; ends of the grid are one angle
    across = float(bias.bias(torch.tensor([-math.pi + 0.02], dtype=torch.float64)))
    assert across == pytest.approx(0.01 * math.exp(-0.5 * 0.4 ** 2), rel=1e-3)
    assert float(bias.values[0]) == pytest.approx(float(bias.values[-1]), rel=1e-12)


def test_a_periodic_cv_grid_spans_one_period():
    """A dihedral grid of (-4, 4) rad repeats the angles beyond +-pi, which c(t) then counted twice: with hills in
    two basins, one near pi, the reweighting factor between an early and a late frame came out 0.77 times the one
    of the (-pi, pi) grid. A narrower grid leaves part of the circle without bias."""
    for grid in ((-4.0, 4.0, 917), (-3.0, 3.0, 721)):
        with pytest.raises(SimsInputError, match=r"periodic \(period 6\.28319\): its grid must span one period"):
            MetadynamicsBias(Dihedral(0, 1, 2, 3), sigma=0.1, grid=grid)
    # any one period: a dihedral's values in (-pi, pi] are read modulo 2 pi on a grid of (0, 2 pi)
    shifted = MetadynamicsBias(Dihedral(0, 1, 2, 3), sigma=0.1, grid=(0.0, 2 * math.pi, 721))
    centred = MetadynamicsBias(Dihedral(0, 1, 2, 3), sigma=0.1, grid=(-math.pi, math.pi, 721))
    hill, height = torch.tensor([-1.0], dtype=torch.float64), torch.tensor([0.01], dtype=torch.float64)
    for b in (shifted, centred):
        b.deposit(hill, height)
    s = torch.tensor([-1.05, -1.0, 0.5, 3.1], dtype=torch.float64)
    expected = 0.01 * torch.exp(-0.5 * ((s + 1.0) / 0.1) ** 2)
    assert torch.allclose(shifted.bias(s), expected, atol=1e-5) and torch.allclose(centred.bias(s), expected, atol=1e-5)


def test_reweighted_metadynamics_reproduces_quadrature():
    ref = exact(A, 1.0, TILT, temperature=T, mass=MASS)
    atoms = Atoms(f"He{WALKERS}", positions=[[-1.0, 0.0, 0.0]] * WALKERS)
    atoms.set_masses([MASS] * WALKERS)
    ms = metadynamics(atoms, DoubleWell(a=A, b=1.0, tilt=TILT), Position(0, "x"), sigma=0.08, height=0.001,
                      bias_factor=5.0, pace=25, temperature=T, n_steps=6000, equilibrate=2000, timestep=2.0,
                      friction=0.05, record_every=5, atoms_per_replica=1, grid=(-2.5, 2.5, 501), seed=0)
    assert ms.weights.sum() == pytest.approx(1.0) and ms.n_hills == 8000 // 25 * WALKERS
    # the converged well-tempered bias is -(1 - 1/gamma) F(s) + const in the sampled range
    g = ms.grid
    sel = (g > -1.2) & (g < 1.2)
    f = A * (g ** 2 - 1) ** 2 + TILT * g
    resid = (ms.bias + (1 - 1 / ms.bias_factor) * f)[sel]
    assert np.ptp(resid) < 0.25 * np.ptp(f[sel]) and np.ptp(ms.bias[sel]) > 4 * units.kB * T
    per_walker = ms.cv.size // WALKERS
    res = activation_free_energy(ms.cv, inverse_mass=ms.inverse_mass, weights=ms.weights, ts=ref["ts"], temperature=T,
                                 bins=100, n_bootstrap=100, block=per_walker // 4, seed=1)   # 3 ps blocks
    assert_matches(res, ref, max_error=1.0)


def test_frames_are_weighted_by_the_bias_they_were_sampled_under():
    # Tiwary & Parrinello (2015), eq. 3: w_t ~ exp(beta (V(s_t, t) - c(t))) with the bias in force
    # while s_t was sampled, i.e. the hills deposited before step t (PLUMED's rbias does the same).
    # Rebuilt here from the frames' CVs with numpy: hills at every pace-th step, heights well-tempered.
    atoms = Atoms("He", positions=[[-1.0, 0.0, 0.0]])
    atoms.set_masses([MASS])
    height, gamma, sigma, pace = 0.01, 5.0, 0.1, 3
    ms = metadynamics(atoms, DoubleWell(a=A, b=1.0), Position(0, "x"), sigma=sigma, height=height, bias_factor=gamma,
                      pace=pace, temperature=T, n_steps=60, timestep=2.0, friction=0.05, record_every=1,
                      grid=(-2.5, 2.5, 501), seed=3)
    beta = 1 / (units.kB * T)
    g, v, c, log_w = ms.grid, np.zeros_like(ms.grid), 0.0, []
    for t, s in enumerate(ms.cv, start=1):
        log_w.append(beta * (np.interp(s, g, v) - c))
        if t % pace == 0:
            v = v + height * np.exp(-beta * np.interp(s, g, v) / (gamma - 1)) * np.exp(-0.5 * ((g - s) / sigma) ** 2)
            c = (logsumexp(gamma / (gamma - 1) * beta * v) - logsumexp(beta * v / (gamma - 1))) / beta
    expected = np.exp(np.array(log_w) - logsumexp(log_w))
    assert np.allclose(ms.bias, v, rtol=1e-10, atol=1e-14)
    assert np.allclose(ms.weights, expected, rtol=1e-8, atol=0)


def test_bad_input():
    with pytest.raises(SimsInputError, match="spacing"):
        MetadynamicsBias(Position(0, "x"), sigma=0.1, grid=(-2.0, 2.0, 21))
    atoms = Atoms("He", positions=[[0.0, 0, 0]])
    with pytest.raises(SimsInputError, match="bias_factor"):
        metadynamics(atoms, DoubleWell(a=A, b=1.0), Position(0, "x"), sigma=0.1, height=0.001, bias_factor=1.0,
                     pace=10, temperature=T, n_steps=10, grid=(-2, 2, 401))
