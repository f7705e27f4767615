"""``BatchMD(compiled=True)``: the fused step of ``sims.MD(compiled=True)`` (:func:`sims.md._fused_kernel`) for a whole
batch, against the integrators' eager steps and the eager batched runs.

The fast tests run the fused kernel and the fused driver without ``torch.compile`` (the ``eager_kernel`` fixture
hands the driver the same function uncompiled: compiling takes tens of seconds cold); the slow tests compile it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

import sims
import sims.md
from sims.barostats import CellRescaling
from sims.batch import BatchMD
from sims.errors import SimsInputError
from sims.md import _fused_kernel
from sims.neighbors import image_vectors
from sims.potentials import LennardJones

F64 = torch.float64


def _pot():
    return LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, dtype=F64)


def _systems():
    """Argon systems of different sizes and shapes: 32 atoms in a cube, 27 in a triclinic primitive cell, 48 in a
    box, 16 in a slab periodic in two directions."""
    out = [bulk("Ar", "fcc", a=5.8, cubic=True).repeat(2), bulk("Ar", "fcc", a=5.6).repeat(3),
           bulk("Ar", "fcc", a=5.7, cubic=True).repeat((2, 2, 3)), bulk("Ar", "fcc", a=5.7, cubic=True).repeat((2, 2, 1))]
    out[3].pbc = (True, True, False)
    for k, atoms in enumerate(out):
        atoms.rattle(0.05, seed=k)
    return out


def _integrator(thermostat: bool):
    return sims.Langevin(5.0, 60.0, friction=0.02) if thermostat else sims.VelocityVerlet(5.0)


@pytest.fixture
def eager_kernel(monkeypatch):
    """Fused runs call :func:`sims.md._fused_kernel` itself instead of its ``torch.compile`` d form: the same
    arithmetic and driver, in seconds."""
    monkeypatch.setattr(sims.md, "_fused_step", lambda: _fused_kernel)


@pytest.mark.parametrize("thermostat", [False, True])
def test_fused_kernel_on_a_batch_is_the_integrators_step(thermostat):
    """One call of the fused kernel on a batch (eager here) gives the positions, velocities, per-system energies and
    forces of ``VelocityVerlet.step`` / ``Langevin.step`` with the same per-system noise, and each system's largest
    squared displacement from the list's reference positions and in this step."""
    integ = _integrator(thermostat)
    md = BatchMD(_systems(), _pot(), integ, temperature=[40, 50, 60, 70], seed=[3, 1, 4, 1], dtype=F64)
    md.run(3)
    st, run = md.state, md._integrator_vars
    pairs, ref = md.neighbors.pairs, md.neighbors.reference_positions
    assert pairs.image_index is not None
    x0 = st.positions
    extra = ()
    if thermostat:
        copies = []
        for g in run["generators"]:
            copies.append(torch.Generator())
            copies[-1].set_state(g.get_state())
        noise = sims.Langevin.noise({"generators": copies, "sizes": run["sizes"]}, x0)
        extra = (x0.new_tensor(integ.decay), run["kT"].expand(-1, 3).reshape(-1), noise)
    inv_m = (1.0 / st.masses[:, None]).expand(-1, 3).reshape(-1)
    with torch.no_grad():
        x, e, f, v, check = _fused_kernel(md._terms, x0, st.velocities, md.forces, inv_m, x0.new_tensor(integ.dt),
                                          pairs.i, pairs.j, image_vectors(st.cell, pairs).T.contiguous(), st.numbers,
                                          ref, *extra, image=pairs.image_index, system=st.system, n_systems=4)
    ref_state, e_ref, f_ref = integ.step(st, md.energy, md.forces, md._force_fn, run)
    torch.testing.assert_close(x, ref_state.positions, rtol=0, atol=1e-13)
    torch.testing.assert_close(v, ref_state.velocities, rtol=0, atol=1e-15)
    torch.testing.assert_close(f, f_ref, rtol=0, atol=1e-13)
    torch.testing.assert_close(e, e_ref, rtol=1e-13, atol=0)
    assert check.shape == (3, 4) and torch.equal(check[2], e)
    for b in range(4):
        mine = st.system == b
        assert float(check[0, b]) == pytest.approx(float(((x - ref)[mine] ** 2).sum(1).max()), rel=1e-12)
        assert float(check[1, b]) == pytest.approx(float(((x - x0)[mine] ** 2).sum(1).max()), rel=1e-12)


@pytest.mark.parametrize("thermostat, look_ahead", [(False, True), (True, True), (True, False)])
def test_fused_batch_follows_the_eager_batch(thermostat, look_ahead, eager_kernel, monkeypatch):
    """80 steps of eight systems of different sizes and shapes (list parts rebuilt on the way): the fused run follows
    the eager one to round-off, each system its own seed and temperature (changed half-way under Langevin); also
    with the look-ahead switched off, where every rebuild comes after an atom passed half the skin and the step is
    taken again."""
    if not look_ahead:
        monkeypatch.setattr(sims.md, "_LIST_TRIGGER", 0.0)
        monkeypatch.setattr(sims.md, "_LIST_BATCH", 0.0)
    runs = {}
    for compiled in (False, True):
        temperatures = [40, 50, 60, 70, 45, 55, 65, 75]
        md = BatchMD(_systems() + _systems(), _pot(), _integrator(thermostat), temperature=temperatures,
                     target_temperature=temperatures if thermostat else None, seed=[3, 1, 4, 1, 5, 9, 2, 6], dtype=F64,
                     skin=0.8, compiled=compiled)
        assert md._fused is compiled
        md.run(40)
        if thermostat:  # a new target temperature for every system between two runs (a ramp's step)
            md.set_target_temperature([t + 20 for t in temperatures])
        md.run(40)
        runs[compiled] = md
    eager, fused = runs[False], runs[True]
    assert eager.neighbors.n_partial_builds > 3 and fused.neighbors.n_partial_builds > 3
    torch.testing.assert_close(fused.state.positions, eager.state.positions, rtol=0, atol=1e-11)
    torch.testing.assert_close(fused.state.velocities, eager.state.velocities, rtol=0, atol=1e-12)
    torch.testing.assert_close(fused.energy, eager.energy, rtol=0, atol=1e-10)
    torch.testing.assert_close(fused.forces, eager.forces, rtol=0, atol=1e-10)


def test_fused_batch_replicas_are_their_lone_runs(eager_kernel):
    """System ``b`` of a fused Langevin batch with seed ``s_b`` follows the lone eager ``sims.MD`` run with seed
    ``s_b`` (the same velocities and noise), and the fused batch repeats itself bit for bit; a batch of one system
    (whose list has no image table) runs fused too."""
    systems, seeds = _systems()[:3], [7, 2, 9]

    def batch(which):
        md = BatchMD([systems[k] for k in which], _pot(), _integrator(True), temperature=50.0,
                     seed=[seeds[k] for k in which], dtype=F64, skin=0.3, compiled=True)
        return md.run(40)

    first, again, alone = batch([0, 1, 2]), batch([0, 1, 2]), batch([1])
    assert torch.equal(first.state.positions, again.state.positions)
    assert torch.equal(first.state.velocities, again.state.velocities)
    parts = torch.split(first.state.positions, first.state.atoms_per_system().tolist())
    for k in range(3):
        lone = sims.MD(systems[k], _pot(), _integrator(True), temperature=50.0, seed=seeds[k], dtype=F64).run(40)
        torch.testing.assert_close(parts[k], lone.state.positions, rtol=0, atol=1e-11)
    torch.testing.assert_close(alone.state.positions, parts[1], rtol=0, atol=1e-11)


def test_fused_batch_stops_on_a_non_finite_energy(eager_kernel):
    systems = _systems()
    systems[2].positions[1] = systems[2].positions[0]  # two atoms on one site: an infinite energy
    md = BatchMD(systems, _pot(), sims.VelocityVerlet(5.0), dtype=F64, min_distance=None, compiled=True)
    with pytest.raises(SimsInputError, match=r"system\(s\) \[2\] became non-finite at step\(s\) \[1\]"):
        md.run(5)


@pytest.mark.parametrize("integrator", [sims.NoseHooverChain(5.0, 60.0),
                                        CellRescaling(sims.Langevin(5.0, 60.0), pressure=1.0, tau_p=500.0)])
def test_compiled_batch_refuses_what_it_cannot_fuse(integrator):
    with pytest.raises(SimsInputError, match="compiled=True runs VelocityVerlet or Langevin"):
        BatchMD(_systems(), _pot(), integrator, dtype=F64, compiled=True)


@pytest.mark.slow
@pytest.mark.parametrize("thermostat", [False, True])
def test_compiled_batch_follows_the_eager_batch(thermostat):
    """The compiled fused step (torch.compile; tens of seconds to compile cold): 120 steps of four systems of
    different sizes with list patches follow the eager batched run to round-off."""
    runs = {}
    for compiled in (False, True):
        md = BatchMD(_systems(), _pot(), _integrator(thermostat), temperature=[40, 50, 60, 70], seed=[3, 1, 4, 1],
                     dtype=F64, skin=0.3, compiled=compiled)
        runs[compiled] = md.run(120)
    eager, fused = runs[False], runs[True]
    assert fused.neighbors.n_builds + fused.neighbors.n_partial_builds > 3
    assert np.abs(fused.state.positions.numpy() - eager.state.positions.numpy()).max() < 1e-10
    torch.testing.assert_close(fused.energy, eager.energy, rtol=0, atol=1e-9)
