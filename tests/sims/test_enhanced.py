"""sims.enhanced: the truncated adjoint against backpropagation, the biases, the optimiser's checks and training."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
import torch
from ase import Atoms, units

import sims
from sims.cv import Custom
from sims.enhanced import (Basin, BasisSetBias, BiasPathOptimizer, GaussianGridBias, _Dynamics, _evaluate, force_adjoints,
                           load_bias, save_bias)
from sims.errors import SimsError, SimsInputError
from sims.integrators import Langevin, make_generator
from sims.potentials import MuellerBrown
from sims.state import State

F64 = torch.float64
XY = ["position:0,x", "position:0,y"]


def _grid_bias(seed=1):
    bias = GaussianGridBias(XY, lower=[-1.6, -0.5], upper=[1.2, 2.1], points=[8, 8], width=0.4, atoms_per_replica=1)
    with torch.no_grad():
        bias.heights.copy_(0.05 * torch.randn(64, generator=torch.Generator().manual_seed(seed), dtype=F64))
    return bias


def _basis_bias():
    bias = BasisSetBias(XY, lower=[-1.6, -0.5], upper=[1.2, 2.1], n_basis=6, hidden=8, seed=3, atoms_per_replica=1)
    with torch.no_grad():
        bias.net[-1].weight.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(4))
    return bias


def _setup(bias, temperature=300.0, friction=0.02):
    dyn = _Dynamics(MuellerBrown(), torch.tensor([2.56], dtype=F64), torch.tensor([18]),
                    Langevin(1.0, temperature, friction), 1)
    start = torch.tensor([[[-0.558, 1.442, 0.0]]], dtype=F64).repeat(4, 1, 1)
    return dyn, start


def _loss(s):
    return ((s - torch.tensor([0.2, 0.5], dtype=F64)) ** 2).sum(-1)


def _adjoint_gradient(dyn, bias, frames, index, backsteps):
    rows = torch.arange(frames.shape[1])
    x = frames[index, rows].clone().requires_grad_(True)
    seed = torch.autograd.grad(_loss(_evaluate(bias.cvs, x)).sum(), x)[0]
    pos, g = force_adjoints(dyn, bias, frames, index, seed, backsteps)
    pos = pos.reshape(-1, 3).requires_grad_(True)
    force = -torch.autograd.grad(bias(pos), pos, create_graph=True)[0]
    return torch.autograd.grad((force * g.reshape(-1, 3)).sum(), list(bias.parameters()))


@pytest.mark.parametrize("make_bias", [_grid_bias, _basis_bias])
def test_adjoint_equals_full_backpropagation(make_bias):
    bias = make_bias()
    dyn, start = _setup(bias)
    index = torch.tensor([15, 9, 4, 12])
    frames = dyn.run(start, bias, 15, (0,), 300.0, differentiable=True)
    loss = _loss(_evaluate(bias.cvs, frames[index, torch.arange(4)])).sum()
    full = torch.autograd.grad(loss, list(bias.parameters()))
    for backsteps in (15, 40):   # at least the trajectory length: exact
        adjoint = _adjoint_gradient(dyn, bias, frames.detach(), index, backsteps)
        for a, f in zip(adjoint, full):
            assert float(f.abs().max()) > 1e-5        # a real gradient, not zeros on both sides
            torch.testing.assert_close(a, f, rtol=1e-9, atol=1e-12)


def test_path_barriers_are_the_potential_energy_along_the_path():
    """The barrier term's energies (work of the forces along each path) against the Müller-Brown
    surface itself at the frames: the highest point and its height above the first frame."""
    opt = BiasPathOptimizer.mueller_brown(dim=2, seed=0, n_steps=60, n_trajectories=4, backsteps=20)
    frames = opt.dynamics.run(opt.start.expand(4, -1, -1), _grid_bias(), 60, (2,), 300.0)
    barrier, k_top = opt.barriers(frames)
    mb = MuellerBrown()
    v = torch.tensor([[float(mb(x).detach()) for x in frame] for frame in frames], dtype=F64)   # (T, B) eV, per copy
    exact = v - v[0]
    torch.testing.assert_close(barrier, exact.max(0).values, rtol=0, atol=1e-6)
    assert float(exact.max(0).values.min()) > 5e-3                          # the paths do climb
    assert bool((exact[k_top, torch.arange(4)] >= exact.max(0).values - 1e-6).all())


def test_path_barriers_on_the_reaction_surface_leave_out_the_harmonic_coordinates():
    """5-D with ``barrier_potential=MuellerBrown(dim=5, spring=0)``: the barrier is the surface on
    (x, y) along the path, against the surface itself; the full 5-D energy (the default) also
    counts the harmonic coordinates, here kicked by a bias on all five."""
    opt = BiasPathOptimizer.mueller_brown(dim=5, seed=0, n_steps=60, n_trajectories=4, backsteps=20)
    surface = opt.barrier_potential                                             # the set-up's
    bias = opt.bias
    with torch.no_grad():   # a rough bias on all five coordinates, tilted in the harmonic ones
        bias.heights.copy_(0.1 * torch.rand(bias.heights.shape, generator=torch.Generator().manual_seed(5),
                                            dtype=F64))
    frames = opt.dynamics.run(opt.start.expand(4, -1, -1), bias, 60, (2,), 300.0)
    barrier, k_top = opt.barriers(frames)
    xy = frames[:, :, 0, :2]
    v = surface.surface(xy[..., 0], xy[..., 1])                                   # (T, B) eV
    exact = v - v[0]
    torch.testing.assert_close(barrier, exact.max(0).values, rtol=0, atol=1e-6)
    assert bool((exact[k_top, torch.arange(4)] >= exact.max(0).values - 1e-6).all())
    full = BiasPathOptimizer.mueller_brown(dim=5, seed=0, n_steps=60, n_trajectories=4, backsteps=20,
                                           barrier_potential=None)
    springs = 0.5 * float(full.system.spring.detach()) * (frames[:, :, 0, 2] ** 2 + frames[:, :, 1].pow(2).sum(-1))
    torch.testing.assert_close(full.barriers(frames)[0], (exact + springs - springs[0]).max(0).values, rtol=0,
                               atol=1e-6)
    assert float((springs - springs[0]).max()) > 1e-3                         # the harmonic coordinates move
    with pytest.raises(SimsInputError, match="barrier_potential"):
        BiasPathOptimizer.mueller_brown(dim=5, seed=0, n_steps=60, n_trajectories=4, barrier_potential="surface")


def test_total_energy_barrier_adds_the_kinetic_energy_of_the_paths():
    """barrier_energy="total": potential rise plus 1/2 m v^2 with v = (x_{k+1} - x_{k-1}) / 2h,
    against the surface and the frames; a kicked path's top is its fast frames, not the potential's."""
    opt = BiasPathOptimizer.mueller_brown(dim=2, seed=0, n_steps=60, n_trajectories=4, backsteps=20,
                                          barrier_energy="total")
    frames = opt.dynamics.run(opt.start.expand(4, -1, -1), _grid_bias(), 60, (2,), 300.0)
    k_top, barrier, _, v_top = opt._barriers(frames, kinetic=True)
    mb = MuellerBrown()
    v = torch.tensor([[float(mb(x).detach()) for x in frame] for frame in frames], dtype=F64)
    dt = 1.0 * units.fs
    kin = torch.zeros_like(v)
    kin[1:-1] = 0.5 * 2.56 * (((frames[2:] - frames[:-2]) / (2 * dt)) ** 2).sum((2, 3))
    exact = (v - v[0] + kin).max(0)
    torch.testing.assert_close(barrier, exact.values, rtol=0, atol=1e-6)
    assert torch.equal(k_top, exact.indices)
    rows, inner = torch.arange(4), (k_top >= 1) & (k_top <= 59)
    assert bool(inner.any())
    central = (frames[(k_top + 1).clamp(max=60), rows] - frames[(k_top - 1).clamp(min=0), rows]) / (2 * dt)
    torch.testing.assert_close(v_top, central * inner[:, None, None])
    assert float((exact.values - opt.barriers(frames)[0]).min()) > 0        # the kinetic energy counts
    with pytest.raises(SimsInputError, match="barrier_energy"):
        BiasPathOptimizer.mueller_brown(dim=2, seed=0, n_steps=60, n_trajectories=4, barrier_energy="free")


def _detached_reference(dyn, bias, start, n_steps, index, cut, seed, temperature):
    """Backpropagation through BAOAB (sims.Langevin.step, the same noise) with the state of every
    trajectory held fixed at frame ``cut[b]``: what the truncated adjoint computes."""
    b = start.shape[0]
    masses = dyn.masses.repeat(b)
    gen = make_generator((*seed, 0))
    v = torch.randn((b, 3), generator=gen, dtype=F64) * torch.sqrt(units.kB * temperature / masses)[:, None]
    state = State(positions=start.reshape(-1, 3), velocities=v, masses=masses, numbers=dyn.numbers.repeat(b),
                  cell=torch.zeros((3, 3), dtype=F64), pbc=torch.zeros(3, dtype=torch.bool))
    state, run = dyn.integrator.start(state, (*seed, 1))

    def force_fn(x):
        return dyn.forces(x, bias, create_graph=True)

    energy, forces = force_fn(state.positions)
    frames = [state.positions]
    for step in range(1, n_steps + 1):
        state, energy, forces = dyn.integrator.step(state, energy, forces, force_fn, run)
        hold = (cut == step)[:, None]
        if bool(hold.any()):
            x = torch.where(hold, state.positions.detach(), state.positions)
            state = state.with_(positions=x, velocities=torch.where(hold, state.velocities.detach(), state.velocities))
            # the held state's own force still kicks in the next step, with the bias's gradient only
            forces = torch.where(hold, force_fn(x.detach())[1], forces)
        frames.append(state.positions)
    frames = torch.stack(frames).reshape(n_steps + 1, b, 1, 3)
    return torch.autograd.grad(_loss(_evaluate(bias.cvs, frames[index, torch.arange(b)])).sum(), list(bias.parameters()))


def test_truncated_adjoint_is_backpropagation_from_a_held_state():
    bias = _grid_bias()
    dyn, start = _setup(bias)
    index = torch.tensor([15, 9, 4, 12])
    frames = dyn.run(start, bias, 15, (0,), 300.0).detach()
    backsteps = 5
    truncated = _adjoint_gradient(dyn, bias, frames, index, backsteps)[0]
    cut = torch.clamp(index - backsteps, min=0)
    reference = _detached_reference(dyn, bias, start, 15, index, cut, (0,), 300.0)[0]
    torch.testing.assert_close(truncated, reference, rtol=1e-8, atol=1e-12)
    exact = _adjoint_gradient(dyn, bias, frames, index, 15)[0]
    # truncation drops the memory of what came before the window: a real, not a round-off, difference
    assert float((exact - truncated).norm()) > 0.05 * float(exact.norm())


def test_dynamics_sample_boltzmann_in_a_harmonic_well():
    """The batched dynamics are BAOAB at the set temperature: <x^2> = kT/k for a spring."""
    pot = MuellerBrown(spring=2.0, energy_scale=1e-9)   # the surface switched off: z is a pure spring
    dyn = _Dynamics(pot, torch.tensor([2.0], dtype=F64), torch.tensor([18]), Langevin(1.0, 300.0, 0.05), 1)
    frames = dyn.run(torch.zeros((200, 1, 3), dtype=F64), None, 400, (5,), 300.0)
    z2 = float((frames[100:, :, 0, 2] ** 2).mean())
    assert z2 == pytest.approx(units.kB * 300.0 / 2.0, rel=0.06)


# -- biases -----------------------------------------------------------------------------------------


def test_gaussian_grid_bias_is_the_formula_and_a_sims_potential(tmp_path):
    bias = _grid_bias()
    atoms = Atoms("Ar2", positions=[[0.1, 0.3, 0.0], [-0.4, 1.0, 0.2]])
    e, f = sims.energy_and_forces(GaussianGridBias(XY, lower=[-1.6, -0.5], upper=[1.2, 2.1], points=[8, 8], width=0.4,
                                                   atoms_per_replica=1), atoms, dtype=F64)
    assert e == 0.0 and not f.any()
    e, _ = sims.energy_and_forces(bias, atoms, dtype=F64)
    c, h = bias.centers.numpy(), bias.heights.detach().numpy()
    ref = sum((h * np.exp(-((p[:2] - c) ** 2).sum(1) / (2 * 0.4 ** 2))).sum() for p in atoms.positions)
    assert e == pytest.approx(ref, rel=1e-12)
    save_bias(bias, tmp_path / "bias.pt")
    again = load_bias(tmp_path / "bias.pt")
    assert sims.energy_and_forces(again, atoms, dtype=F64)[0] == pytest.approx(e, rel=1e-14)
    # reusable in a later run: the bias joins the system's potential in sims.MD
    md = sims.MD(Atoms("Ar", positions=[[-0.558, 1.442, 0]]), sims.potentials.SumPotential([MuellerBrown(), again]),
                 sims.Langevin(1.0, 10.0, 0.05), temperature=10.0, seed=0, min_distance=None, dtype=F64)
    md.run(5)
    (tmp_path / "junk.pt").write_bytes(b"not a bias")
    with pytest.raises(SimsInputError, match="not a saved bias"):
        load_bias(tmp_path / "junk.pt")


def test_gaussian_grid_bias_on_five_descriptors_and_a_dihedral_is_the_formula():
    """The grid evaluated one factor table per descriptor equals the sum over every Gaussian of the
    grid (numpy, wrapped dihedral distance), with a width per descriptor."""
    cvs = ["position:0,x", "position:0,y", "position:0,z", "position:1,x", "dihedral:0,1,2,3"]
    bias = GaussianGridBias(cvs, lower=[-1.6, -0.5, -1, -1, -math.pi], upper=[1.2, 2.1, 1, 1, math.pi],
                            points=[5, 4, 2, 3, 6], width=[0.25, 0.4, 1.0, 0.7, 0.9], atoms_per_replica=4)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        bias.heights.copy_(torch.rand(bias.heights.shape, generator=gen, dtype=F64))
    s = torch.rand((9, 5), generator=gen, dtype=F64) * 6 - 3
    c, h, w = bias.centers.numpy(), bias.heights.detach().numpy(), np.array([0.25, 0.4, 1.0, 0.7, 0.9])
    d = s.numpy()[:, None, :] - c[None]
    d[..., 4] = (d[..., 4] + np.pi) % (2 * np.pi) - np.pi
    ref = (np.exp(-0.5 * ((d / w) ** 2).sum(-1)) * h).sum(-1)
    np.testing.assert_allclose(bias.bias(s).detach().numpy(), ref, rtol=1e-12)


def test_basis_set_bias_is_periodic_on_dihedrals_and_starts_at_zero():
    bias = BasisSetBias(["dihedral:0,1,2,3", "dihedral:1,2,3,4"], n_basis=10, hidden=8, seed=0)
    s = torch.tensor([[0.3, -2.9], [-1.0, 3.1]], dtype=F64)
    assert torch.equal(bias.bias(s), torch.zeros(2, dtype=F64))
    with torch.no_grad():
        bias.net[-1].weight.normal_(generator=torch.Generator().manual_seed(0))
    shifted = s + torch.tensor([2 * math.pi, -2 * math.pi], dtype=F64)
    torch.testing.assert_close(bias.bias(shifted), bias.bias(s), rtol=1e-10, atol=1e-12)
    assert not torch.equal(bias.bias(s), torch.zeros(2, dtype=F64))
    again = BasisSetBias(["dihedral:0,1,2,3", "dihedral:1,2,3,4"], n_basis=10, hidden=8, seed=0)
    assert torch.equal(again.net[0].weight, bias.net[0].weight)   # seeded, global state untouched


def test_bias_bad_input():
    with pytest.raises(SimsInputError, match="lower < upper"):
        GaussianGridBias(XY, lower=1.0, upper=0.0, points=5)
    with pytest.raises(SimsInputError, match="non-empty list"):
        GaussianGridBias([], lower=0.0, upper=1.0, points=5)
    with pytest.raises(SimsInputError, match="too large"):
        GaussianGridBias(["position:0,x"] * 5, lower=0.0, upper=1.0, points=20)
    # The descriptor biases wrap periodic descriptors by 2 pi (basis on [-pi, pi), circular means).
    turns = Custom(lambda pos, cell: pos[:, 0, 0], unit="turn", period=1.0)
    with pytest.raises(SimsInputError, match="period 1; periodic descriptors here must be angles in radians"):
        GaussianGridBias([turns, "position:0,y"], lower=0.0, upper=1.0, points=5)
    angle = Custom(lambda pos, cell: torch.atan2(pos[:, 0, 1], pos[:, 0, 0]), unit="rad", period=2 * math.pi)
    assert GaussianGridBias([angle, "position:0,y"], lower=-1.0, upper=1.0, points=5).periodic.tolist() == [True, False]


# -- the optimiser -----------------------------------------------------------------------------------


def _small(**kw):
    settings = dict(n_steps=40, n_trajectories=4, backsteps=20, iterations=2)
    settings.update(kw)
    return BiasPathOptimizer.mueller_brown(dim=2, seed=0, **settings)


class _FlatWells(sims.potentials.Potential):
    """Two flat-bottomed wells, |x| in [0.3, 1.7] Å, walls of 10 eV/Å^2 (0.45 eV high at x = 0):
    basins about 0.4 Å wide, 2 Å apart, never crossed at 300 K."""

    cutoff = 0.0

    def forward(self, positions, cell=None, numbers=None, pairs=None):
        out = torch.relu(torch.abs(torch.abs(positions[..., 0]) - 1.0) - 0.7)
        return 5.0 * (out * out).sum() + 0.0 * positions.sum()


def test_basins_are_separated_exactly_when_their_tolerance_regions_are_disjoint():
    # Two thin ellipses tilted by 45 degrees, 2 apart along x: parallel strips 1.41 apart across
    # their half-widths of 0.24 each, disjoint. The old test added their projections on the line
    # of centres (1.74 each, more than the gap) and refused them as "meeting along the line".
    from scipy.stats import chi2

    rot = torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64) / math.sqrt(2)
    cov = rot @ torch.diag(torch.tensor([1.0, 0.01], dtype=torch.float64)) @ rot.T
    flat = torch.zeros(2, dtype=torch.bool)
    t = float(chi2.ppf(0.95, 2))

    def basin(center, c=cov):
        return Basin(torch.tensor(center, dtype=torch.float64), c, t, flat)

    assert basin([0.0, 0.0]).separated_from(basin([2.0, 0.0]))
    # Equal covariances: disjoint iff the centres' Mahalanobis distance exceeds 2 sqrt(t) (analytic).
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = rng.uniform(-5, 5, 2)
        m = float(torch.as_tensor(d) @ torch.linalg.solve(cov, torch.as_tensor(d)))
        if abs(math.sqrt(m) - 2 * math.sqrt(t)) > 1e-6:
            assert basin([0.0, 0.0]).separated_from(basin(list(d))) == (m > 4 * t)
    # Unequal covariances: "separated" is never said of regions that share a point (dense grid).
    x = torch.stack(torch.meshgrid(*[torch.linspace(-6, 6, 601, dtype=torch.float64)] * 2, indexing="ij"), -1)
    wide = torch.diag(torch.tensor([0.5, 0.2], dtype=torch.float64))
    for _ in range(30):
        a, b = basin([0.0, 0.0]), basin(list(rng.uniform(-3, 3, 2)), wide)
        shared = bool((a.contains(x) & b.contains(x)).any())
        assert not (shared and a.separated_from(b))


class _TiltedWells(sims.potentials.Potential):
    """Two harmonic wells at x = -1 and +1 Å, soft along (1, 1) (variance 0.6 Å^2 at 300 K) and
    stiff across (0.001 Å^2): parallel thin basins 1.41 Å apart across, never crossed."""

    cutoff = 0.0

    def forward(self, positions, cell=None, numbers=None, pairs=None):
        kT = units.kB * 300.0
        xy = positions[..., :2].reshape(-1, 2)
        wells = []
        for cx in (-1.0, 1.0):
            d = xy - torch.tensor([cx, 0.0], dtype=xy.dtype)
            along, across = (d[:, 0] + d[:, 1]) / math.sqrt(2), (d[:, 1] - d[:, 0]) / math.sqrt(2)
            wells.append(0.5 * kT * (along ** 2 / 0.6 + across ** 2 / 0.001))
        return torch.minimum(*wells).sum() + 0.5 * kT * (positions[..., 2] ** 2).sum()


def test_thin_tilted_basins_that_do_not_overlap_are_accepted():
    # The old check refused them: each basin's projection on the line of centres (about 1.2 Å at
    # confidence 0.99) added up to more than the 2 Å gap, though the regions are 1.2 Å apart.
    left, right = Atoms("Ar", positions=[[-1.0, 0, 0]]), Atoms("Ar", positions=[[1.0, 0, 0]])
    opt = BiasPathOptimizer(_TiltedWells(), GaussianGridBias(XY, lower=-2, upper=2, points=5, atoms_per_replica=1),
                            left, right, descriptors=XY, temperature=300, friction=0.02, timestep=2, n_steps=400,
                            n_trajectories=16)
    a, b = opt._basins()
    u = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert a.reach(u) + b.reach(u) > 2.0 and a.separated_from(b)


def test_bad_input_is_refused_before_training():
    start = Atoms("Ar", positions=[[-0.558, 1.442, 0.0]])
    start.set_masses([2.56])
    with pytest.raises(SimsInputError, match="already inside the target basin"):
        BiasPathOptimizer(
            MuellerBrown(), GaussianGridBias(XY, lower=-1, upper=1, points=4, atoms_per_replica=1), start, start.copy(),
            descriptors=XY, temperature=10, friction=0.05, timestep=1, n_steps=40, n_trajectories=4)
    left, right = Atoms("Ar", positions=[[-1.0, 0, 0]]), Atoms("Ar", positions=[[1.0, 0, 0]])
    with pytest.raises(SimsInputError, match="basins overlap"):
        BiasPathOptimizer(_FlatWells(), GaussianGridBias(["position:0,x"], lower=-2, upper=2, points=9,
                                                         atoms_per_replica=1),
                          left, right, descriptors=["position:0,x"], temperature=300, friction=0.02, timestep=2,
                          n_steps=400, n_trajectories=16)
    middle = Atoms("Ar", positions=[[-0.050, 0.467, 0.0]])
    middle.set_masses([2.56])
    frozen = Custom(lambda pos, cell: pos[:, 0, 0] * 0.0 + 1.0)
    with pytest.raises(SimsInputError, match="does not depend on the positions"):
        BiasPathOptimizer(MuellerBrown(), GaussianGridBias(XY, lower=-1, upper=1, points=4, atoms_per_replica=1),
                          start, middle, descriptors=[frozen, "position:0,y"], temperature=10, friction=0.05,
                          timestep=1, n_steps=40, n_trajectories=4)
    with pytest.raises(SimsInputError, match="even"):
        _small(n_trajectories=5, both_directions=True)
    with pytest.raises(SimsInputError, match="warmup"):
        _small(warmup=40)
    with pytest.raises(SimsInputError, match="atoms_per_replica=1"):
        _small(bias=GaussianGridBias(XY, lower=-1, upper=1, points=4))
    with pytest.raises(SimsInputError, match="backsteps must be an integer > 0"):
        _small(backsteps=0)


def test_non_finite_forces_stop_at_their_iteration():
    opt = _small()
    with torch.no_grad():
        opt.bias.heights[40] = float("nan")
    with pytest.raises(SimsError, match="iteration 0: non-finite forces"):
        opt.fit()


def test_training_lowers_the_loss_on_a_reduced_mueller_brown():
    opt = BiasPathOptimizer.mueller_brown(dim=2, seed=0, n_trajectories=8, mini_batch=32, iterations=6)
    history = opt.fit().history
    assert list(history.columns[:3]) == ["loss", "success_rate", "end_rate"] and len(history) == 6
    assert history.success_rate.iloc[0] == 0.0                       # unbiased: no transition at 10 K
    assert history.loss.iloc[-2:].mean() < 0.9 * history.loss.iloc[0]


def _saddle_distances(frames):
    xy = frames[:, :, 0, :2]
    return [(xy - torch.tensor(s, dtype=xy.dtype)).norm(dim=-1).min(0).values for s in ((-0.822, 0.624), (0.212, 0.293))]


def _fresh_paths(opt):
    """Train, then 100 fresh trajectories (new seed): issue 14's Done-means on success, and the
    fresh reactive paths."""
    result = opt.fit()
    assert result.history.success_rate.iloc[0] == 0.0
    frames, ended = opt.sample(100, seed=1234)
    reached = opt.reached(frames)
    assert float(reached.double().mean()) >= 0.9 and float(ended.double().mean()) >= 0.9
    unbiased, _ = opt.sample(100, seed=4321, bias=False)
    assert not bool(opt.reached(unbiased).any())
    return frames[:, reached]


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mueller_brown_learned_paths_pass_both_saddles(dim, seed):
    """Müller-Brown 2-D and 5-D at 10 K, three training seeds each: unbiased, no trajectory reaches the
    far basin; under the learned bias at least 90% of fresh trajectories (new seeds) do and stay, and
    the paths pass both saddle points, (-0.822, 0.624) out of the deepest basin and (0.212, 0.293) into
    the far one: median closest approach < 0.25 Å to both in 2-D, < 0.25 Å to S1 and < 0.35 Å to S2 in
    5-D (measured, docs/enhanced.md: 2-D 0.015-0.084 Å and 0.134-0.163 Å; 5-D, a Gaussian grid on all
    five coordinates and the barrier on the surface of (x, y), S1 0.013-0.149 Å, S2 0.181-0.306 Å).
    Without the barrier term the crossing is ~0.7 Å from S1; with the basis-set MLP in 5-D 0.45-0.74 Å."""
    opt = BiasPathOptimizer.mueller_brown(dim=dim, seed=seed)
    paths = _fresh_paths(opt)
    to_s1, to_s2 = _saddle_distances(paths)
    assert float(to_s1.median()) < 0.25 and float(to_s2.median()) < (0.25 if dim == 2 else 0.35)
    # the highest point of the paths on the surface is S1's 0.398 eV above the deepest minimum
    # (measured 0.397-0.422 eV), not the 0.56 eV of the straight crossing towards the target
    barrier, _ = opt.barriers(paths)
    assert 0.39 < float(barrier.median()) < 0.45


def test_cli_trains_writes_and_reuses_the_bias(tmp_path, capsys, monkeypatch):
    import matplotlib

    from reprs.cli import main

    backend = matplotlib.get_backend()
    config = tmp_path / "run.toml"
    config.write_text("[system]\nkind = 'mueller_brown'\n[training]\niterations = 2\nn_trajectories = 4\n"
                      "n_steps = 60\nbacksteps = 30\n[sampling]\nn_trajectories = 6\n")
    assert main(["enhanced", str(config), "-o", str(tmp_path / "a"), "--quiet"]) == 0
    out = tmp_path / "a"
    assert {"bias.pt", "history.csv", "summary.json", "paths.png", "bias.png"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 2 and 0.0 <= summary["fresh_success_rate"] <= 1.0
    assert "fresh trajectories reaching the target" in capsys.readouterr().out
    assert matplotlib.get_backend() == backend
    # a saved bias is the starting point of a later run (relative to the config's folder)
    trained = load_bias(out / "bias.pt")
    again = tmp_path / "again.toml"
    again.write_text(config.read_text().replace("[sampling]", "[bias]\nstart_from = 'a/bias.pt'\n[sampling]")
                     .replace("iterations = 2", "iterations = 1"))
    seen = []
    original = BiasPathOptimizer.mueller_brown

    def spy(*args, **kw):
        seen.append(kw["bias"].heights.detach().clone())
        return original(*args, **kw)

    monkeypatch.setattr(BiasPathOptimizer, "mueller_brown", spy)
    assert main(["enhanced", str(again), "-o", str(tmp_path / "b"), "--quiet"]) == 0
    assert torch.equal(seen[0], trained.heights.detach())
    bad = tmp_path / "bad.toml"
    bad.write_text("[training]\niteratons = 3\n")
    assert main(["enhanced", str(bad), "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'iterations'" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()


def test_basin_tolerance_holds_its_chi_square_probability():
    from sims.enhanced import Basin

    rng = np.random.default_rng(0)
    cov = np.array([[0.04, 0.015], [0.015, 0.01]])
    samples = torch.tensor(rng.multivariate_normal([0.3, -0.2], cov, size=20000))
    basin = Basin.from_samples(samples, torch.tensor([False, False]), 0.9)
    fresh = torch.tensor(rng.multivariate_normal([0.3, -0.2], cov, size=20000))
    assert float(basin.contains(fresh).double().mean()) == pytest.approx(0.9, abs=0.01)
    # a dihedral basin across the ±pi seam: circular mean, wrapped distances
    angles = torch.tensor(np.angle(np.exp(1j * rng.normal(np.pi, 0.1, (5000, 1)))))
    seam = Basin.from_samples(angles, torch.tensor([True]), 0.99)
    assert abs(abs(float(seam.center[0])) - math.pi) < 0.01
    assert float(seam.covariance[0, 0]) == pytest.approx(0.01, rel=0.05)


def test_both_directions_with_the_path_gap_runs_and_reports_meetings():
    opt = _small(both_directions=True, n_trajectories=4, warmup=10)
    history = opt.fit().history
    assert {"loss", "success_rate", "end_rate", "met", "pairs", "seconds"} <= set(history.columns)
    assert history.loss.notna().all() and history.met.between(0, 1).all()


def test_a_resumed_fit_repeats_an_uninterrupted_one(tmp_path):
    whole = _small(iterations=3, n_steps=60, backsteps=30).fit()
    _small(iterations=2, n_steps=60, backsteps=30).fit(checkpoint=tmp_path / "ck.pt")
    resumed = _small(iterations=3, n_steps=60, backsteps=30).fit(checkpoint=tmp_path / "ck.pt")
    assert torch.equal(resumed.bias.heights, whole.bias.heights)
    assert resumed.history.drop(columns="seconds").equals(whole.history.drop(columns="seconds"))
    with pytest.raises(SimsInputError, match="other settings"):
        _small(iterations=3, n_steps=60, backsteps=30, lr=1e-2).fit(checkpoint=tmp_path / "ck.pt")
    # fewer iterations than the checkpoint holds: its longer run was returned as if it were the one asked for
    with pytest.raises(SimsInputError, match="holds 3 iterations, more than the 2 asked for"):
        _small(iterations=3, n_steps=60, backsteps=30).fit(2, checkpoint=tmp_path / "ck.pt")


def test_a_checkpoint_of_a_run_from_another_start_bias_is_refused(tmp_path):
    """The checkpoint holds the trained bias, not the one training started from: a run started from
    other weights (``matrep enhanced``'s ``start_from``) must not resume it as its own."""
    _small(iterations=1).fit(checkpoint=tmp_path / "ck.pt")   # from the set-up's zero heights
    warm = GaussianGridBias(XY, lower=[-1.6, -0.5], upper=[1.2, 2.1], points=[15, 14], width=0.25, hills_only=True,
                            atoms_per_replica=1)
    with torch.no_grad():
        warm.heights.fill_(0.02)
    with pytest.raises(SimsInputError, match="other settings"):
        _small(bias=warm).fit(checkpoint=tmp_path / "ck.pt")
    # a fresh bias of the same hyperparameters is the same start: the checkpoint resumes
    fresh = GaussianGridBias(XY, lower=[-1.6, -0.5], upper=[1.2, 2.1], points=[15, 14], width=0.25, hills_only=True,
                             atoms_per_replica=1)
    assert len(_small(bias=fresh).fit(1, checkpoint=tmp_path / "ck.pt").history) == 1


def test_a_checkpoint_of_another_surface_is_refused(tmp_path, monkeypatch):
    """The system's repr does not show its parameters (``MuellerBrown()`` at any energy scale): a run
    on a steeper surface must not resume a checkpoint of the default one."""
    _small(iterations=1).fit(checkpoint=tmp_path / "ck.pt")
    steeper = functools.partial(MuellerBrown, energy_scale=0.005)   # the set-up builds MuellerBrown(dim=dim)
    monkeypatch.setattr(sims.potentials, "MuellerBrown", steeper)
    with pytest.raises(SimsInputError, match="other settings"):
        _small().fit(checkpoint=tmp_path / "ck.pt")
    monkeypatch.undo()
    # a checkpoint written before the system's parameters were recorded still resumes
    payload = torch.load(tmp_path / "ck.pt", weights_only=True)
    settings = json.loads(payload["settings"])
    del settings["system_state"]
    payload["settings"] = json.dumps(settings, sort_keys=True)
    torch.save(payload, tmp_path / "old.pt")
    assert len(_small().fit(1, checkpoint=tmp_path / "old.pt").history) == 1


def test_select_best_keeps_the_bias_its_history_row_measured():
    """select="best": the bias of the iteration with the highest success rate, then the lowest loss;
    that is the bias after `selected` iterations of the same run (each iteration has its own seeds)."""
    settings = dict(iterations=5, n_steps=60, backsteps=30, n_trajectories=8, lr=2e-2)
    best = _small(select="best", **settings).fit()
    history = best.history
    key = list(zip(history.success_rate, -history.loss, history.index))
    assert best.selected == max(key)[2]
    last = _small(select="last", **settings).fit()
    assert last.selected == 4 and not torch.equal(last.bias.heights, best.bias.heights)
    replay = _small(select="last", **{**settings, "iterations": max(best.selected, 1)})
    if best.selected == 0:
        assert not best.bias.heights.any()
    else:
        torch.testing.assert_close(replay.fit().bias.heights, best.bias.heights, rtol=0, atol=0)
    with pytest.raises(SimsInputError, match="select"):
        _small(select="first")


class _FiniteDifferenceMB(MuellerBrown):
    """Müller-Brown that offers force Jacobian products by differences of forces, as OpenMMPotential does."""

    def force_jacobian_product(self, positions, vectors, eps=1e-5):
        def forces(x):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                return -torch.autograd.grad(self(x), x)[0]

        return (forces(positions + eps * vectors) - forces(positions - eps * vectors)) / (2 * eps)


def test_adjoint_through_force_jacobian_products_matches_autograd():
    """The path a once-differentiable potential (OpenMM) takes: the same gradient as double backward."""
    bias = _grid_bias()
    dyn, start = _setup(bias)
    frames = dyn.run(start, bias, 15, (0,), 300.0).detach()
    index = torch.tensor([15, 9, 4, 12])
    exact = _adjoint_gradient(dyn, bias, frames, index, 15)[0]
    fd = _Dynamics(_FiniteDifferenceMB(), dyn.masses, dyn.numbers, dyn.integrator, 1)
    approx = _adjoint_gradient(fd, bias, frames, index, 15)[0]
    torch.testing.assert_close(approx, exact, rtol=1e-6, atol=1e-9)


def test_enhanced_config_refuses_a_dimension_its_system_does_not_read():
    # system.dim sets the Müller-Brown dimension; with alanine dipeptide it was ignored without a word.
    from sims.enhanced_run import EnhancedConfig
    from sims.errors import ConfigError

    assert EnhancedConfig.from_config({"system": {"kind": "mueller_brown", "dim": 5}}, where="").system.dim == 5
    with pytest.raises(ConfigError, match="does not read it"):
        EnhancedConfig.from_config({"system": {"kind": "alanine_dipeptide", "dim": 5}}, where="")


def test_settings_read_only_with_another_are_refused_without_it(tmp_path):
    """gap is read only with both_directions, barrier_energy only with barrier_weight > 0: given without
    them they were accepted and ignored (the set-ups run one direction)."""
    from sims.enhanced_run import EnhancedConfig
    from sims.errors import ConfigError

    with pytest.raises(SimsInputError, match=r"gap=False is read only with both_directions=True"):
        _small(gap=False)
    with pytest.raises(SimsInputError, match=r"barrier_energy='total' is read only by the barrier term"):
        _small(barrier_weight=0.0, barrier_energy="total")
    with pytest.raises(ConfigError, match=r"training\.gap is read only with training\.both_directions = true"):
        EnhancedConfig.from_config({"training": {"gap": True}}, where="")
    assert EnhancedConfig.from_config({"training": {"gap": False, "both_directions": True}}, where="").training.gap is False
    assert _small(both_directions=True, gap=False).gap is False
    assert _small().gap is True and _small().barrier_energy == "potential"
    # a checkpoint written before the refusal, with such a setting that never changed its numbers, resumes
    _small(iterations=1, barrier_weight=0.0).fit(checkpoint=tmp_path / "ck.pt")
    payload = torch.load(tmp_path / "ck.pt", weights_only=True)
    settings = json.loads(payload["settings"])
    settings.update(gap=False, barrier_energy="total")
    payload["settings"] = json.dumps(settings, sort_keys=True)
    torch.save(payload, tmp_path / "old.pt")
    assert len(_small(barrier_weight=0.0).fit(1, checkpoint=tmp_path / "old.pt").history) == 1
    with pytest.raises(SimsInputError, match="other settings"):   # one that changed them still does not
        _small(barrier_weight=0.0, lr=1e-2).fit(1, checkpoint=tmp_path / "old.pt")
