"""The fused MD step of ``sims.MD(compiled=True)`` (VelocityVerlet or Langevin under a pair potential: the whole
step one compiled call between neighbour-list rebuilds) and the all-pairs list builder of small orthorhombic
cells: the same arithmetic as the integrators' steps and the same pair lists as the cell list (fast, eager), and
compiled runs that follow the eager ones (slow: compiling takes tens of seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

import sims
from sims.errors import SimsInputError
from sims.md import _fused_kernel
from sims.neighbors import _dense_applies, _dense_pairs, build_pairs
from sims.potentials import LennardJones, _list_constants

F64 = torch.float64


def _argon(repeat: int = 4, seed: int = 1, a: float = 5.8):
    atoms = bulk("Ar", "fcc", a=a, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _pot():
    return LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, shift=True, dtype=F64)


@pytest.mark.parametrize("thermostat", [False, True])
def test_fused_kernel_is_the_integrators_step(thermostat):
    """One call of the fused step (run eagerly here) gives the positions, velocities, energy and forces of
    ``VelocityVerlet.step`` / ``Langevin.step`` with the same noise, to the last bit or round-off, and beside the energy
    the largest squared displacements from the list's reference positions and in this step."""
    integ = sims.Langevin(5.0, 60.0, friction=0.02) if thermostat else sims.VelocityVerlet(5.0)
    md = sims.MD(_argon(), _pot(), integ, temperature=60.0, seed=4, record_every=0, dtype=F64)
    md.run(3)
    state, run = md.state, md._integrator_vars
    pairs, ref = md.neighbors.pairs, md.neighbors.reference_positions
    _, _, shifts = _list_constants(pairs, state.cell, state.numbers)
    x0 = state.positions
    extra = ()
    if thermostat:
        gen = torch.Generator().manual_seed(0)
        gen.set_state(run["generator"].get_state())
        noise = torch.randn(x0.shape, generator=gen, dtype=F64)
        extra = (x0.new_tensor(np.exp(-integ.friction * integ.timestep)), x0.new_tensor(integ.kT), noise)
    inv_m = (1.0 / state.masses[:, None]).expand(-1, 3).reshape(-1)
    with torch.no_grad():
        x, e, f, v, check = _fused_kernel(md._terms, x0, state.velocities, md.forces, inv_m, x0.new_tensor(integ.dt),
                                          pairs.i, pairs.j, shifts, state.numbers, ref, *extra)
    ref_state, e_ref, f_ref = integ.step(state, md.energy, md.forces, md._force_fn, run)
    torch.testing.assert_close(x, ref_state.positions, rtol=0, atol=1e-13)
    torch.testing.assert_close(v, ref_state.velocities, rtol=0, atol=1e-15)
    torch.testing.assert_close(f, f_ref, rtol=0, atol=1e-13)
    assert float(e) == pytest.approx(float(e_ref), rel=1e-13)
    worst, moved = float(((x - ref) ** 2).sum(1).max()), float(((x - x0) ** 2).sum(1).max())
    assert float(check[0]) == pytest.approx(worst, rel=1e-12) and float(check[1]) == pytest.approx(moved, rel=1e-12)
    assert float(check[2]) == float(e)


@pytest.mark.parametrize("repeat, a, scale", [(4, 5.8, 1.0), (5, 5.4, 1.0), (4, 5.8, 1.15)])
def test_all_pairs_list_equals_the_cell_list(repeat, a, scale):
    """The all-pairs half list (eager here) equals the cell list's pair for pair, in the same order and with the
    same image shifts, on orthorhombic cells with atoms far outside the cell (unwrapped MD coordinates)."""
    atoms = _argon(repeat, seed=repeat, a=a)
    cell = np.diag(np.diagonal(atoms.cell[:]) * [1.0, scale, 1.0 / scale])
    atoms.set_cell(cell, scale_atoms=True)
    rng = np.random.default_rng(0)
    positions = torch.tensor(atoms.positions + rng.integers(-3, 4, (len(atoms), 3)) @ cell, dtype=F64)
    cell_t, pbc = torch.tensor(cell, dtype=F64), torch.ones(3, dtype=torch.bool)
    reach = 9.5
    assert _dense_applies(positions, cell_t, pbc, reach)
    dense, ref = _dense_pairs(positions, cell_t, reach, compiled=False), build_pairs(positions, cell_t, pbc, reach,
                                                                                      half=True)
    assert dense.i.numel() > 1000
    assert torch.equal(dense.i, ref.i) and torch.equal(dense.j, ref.j) and torch.equal(dense.shifts, ref.shifts)


def test_all_pairs_list_only_where_it_is_exact():
    """Triclinic cells, a reach of half an edge or more, non-periodic directions and large systems take the cell
    list."""
    x = torch.zeros((10, 3), dtype=F64)
    pbc = torch.ones(3, dtype=torch.bool)
    cube = 20.0 * torch.eye(3, dtype=F64)
    assert _dense_applies(x, cube, pbc, 9.9)
    assert not _dense_applies(x, cube, pbc, 10.0)
    tilted = cube.clone()
    tilted[1, 0] = 1.0
    assert not _dense_applies(x, tilted, pbc, 5.0)
    assert not _dense_applies(x, cube, torch.tensor([True, True, False]), 5.0)
    assert not _dense_applies(torch.zeros((5000, 3), dtype=F64), 200 * torch.eye(3, dtype=F64), pbc, 5.0)


@pytest.mark.slow
@pytest.mark.parametrize("thermostat", [False, True])
def test_compiled_run_follows_the_eager_one(thermostat):
    """256 argon atoms, 200 steps with several list rebuilds: ``compiled=True`` (fused step, all-pairs list)
    follows the eager run to round-off (positions within 1e-11 Å, energies within 1e-10 eV); it rebuilds its list
    when the next steps may need it, so a few steps before the eager run does (at most two more builds)."""
    runs = {}
    for compiled in (False, True):
        integ = sims.Langevin(5.0, 60.0, friction=0.01) if thermostat else sims.VelocityVerlet(5.0)
        md = sims.MD(_argon(), _pot(), integ, temperature=60.0, seed=2, record_every=0, dtype=F64, compiled=compiled)
        assert md._fused is compiled
        md.run(200)
        runs[compiled] = md
    eager, fused = runs[False], runs[True]
    assert eager.neighbors.n_builds > 3
    assert eager.neighbors.n_builds <= fused.neighbors.n_builds <= eager.neighbors.n_builds + 2
    assert np.abs(fused.positions_array() - eager.positions_array()).max() < 1e-11
    assert float(fused.energy) == pytest.approx(float(eager.energy), abs=1e-10)
    torch.testing.assert_close(fused.state.velocities, eager.state.velocities, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_compiled_run_stops_on_a_non_finite_energy():
    atoms = _argon(seed=3)
    atoms.positions[1] = atoms.positions[0]  # two atoms on one site: an infinite energy
    md = sims.MD(atoms, _pot(), sims.VelocityVerlet(5.0), min_distance=None, record_every=0, dtype=F64, compiled=True)
    with pytest.raises(SimsInputError, match="non-finite at step 1"):
        md.run(5)
