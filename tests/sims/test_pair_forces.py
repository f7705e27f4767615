"""Closed-form pair forces (sims.potentials.pair_energy_forces) equal the autograd route.

Three levels, each against autograd on the same energy function: the derivative ``phi'(r)`` of every
pair potential's override, the energy, forces and stress of whole structures (half and full lists,
triclinic cell), and gradients with respect to potential parameters and start positions through a
few MD steps (which need the derivatives of the forces themselves).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import sims
import sims.potentials as sp
from tests.potential_contract import silica_like

F64 = torch.float64
R = np.linspace(1.6, 5.0, 40)


def _tabulated(dtype=F64):
    return sp.TabulatedPair(r_min=1.6, cutoff=5.0, values=0.05 * np.cos(R) * (5.0 - R), dtype=dtype)


POTENTIALS = {
    "lj": lambda: sp.LennardJones(sigma=2.0, epsilon=0.05, cutoff=5.0, dtype=F64),
    "lj-unshifted": lambda: sp.LennardJones(sigma=2.0, epsilon=0.05, cutoff=5.0, shift=False, dtype=F64),
    "lj-mixture": lambda: sp.LennardJonesMixture({("Si", "O"): (0.05, 1.6), ("O", "O"): (0.02, 2.4),
                                                  ("Si", "Si"): (0.03, 2.8)}, cutoff=5.0, dtype=F64),
    "morse": lambda: sp.Morse(epsilon=0.3, rho0=4.0, r0=2.2, cutoff=5.0, cutoff_start=4.0, dtype=F64),
    "buckingham": lambda: sp.Buckingham({("Si", "O"): (1800.0, 0.3, 10.0), ("O", "O"): (1388.773, 0.362, 175.0)},
                                        cutoff=5.0, dtype=F64),
    "core": lambda: sp.CoreRepulsion(sp.BKS_CORE, cutoff=5.5, dtype=F64),
    "dsf": lambda: sp.DSFCoulomb({"Si": 1.0, "O": -0.5}, cutoff=6.0, dtype=F64),
    "tabulated": _tabulated,
    "neural": lambda: sp.NeuralPair(cutoff=5.0, n_basis=12, hidden=(8, 8), prior=(0.05, 1.5), dtype=F64),
    "bks": lambda: sp.BKS(dtype=F64),
}


class Opaque(nn.Module):
    """The same energy behind a ``forward`` of its own: :func:`sims.compute` takes the autograd route."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.cutoff, self.dtype = inner, inner.cutoff, F64

    def forward(self, positions, cell, numbers, pairs):
        return self.inner(positions, cell, numbers, pairs)


def _terms(pot):
    return list(pot.terms) if isinstance(pot, sp.SumPotential) else [pot]


@pytest.mark.parametrize("name", sorted(POTENTIALS))
def test_pair_derivative_equals_autograd(name):
    r = torch.linspace(0.9, 6.5, 400, dtype=F64)  # below r_min of the table, across the smooth cutoffs
    zi = torch.tensor([14, 8] * 200)
    zj = torch.tensor([8, 8] * 200)
    for term in _terms(POTENTIALS[name]()):
        phi, dphi = term.pair_energy_and_derivative(r, zi, zj)
        phi_ref, dphi_ref = sp.PairPotential.pair_energy_and_derivative(term, r, zi, zj)
        torch.testing.assert_close(phi, term.pair_energy(r, zi, zj), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(phi, phi_ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(dphi, dphi_ref, rtol=1e-10, atol=1e-10)


def test_every_pair_potential_is_covered():
    covered = {type(t).__name__ for make in POTENTIALS.values() for t in _terms(make())}
    pair_classes = {name for name, obj in vars(sp).items()
                    if isinstance(obj, type) and issubclass(obj, sp.PairPotential)
                    and obj.__module__ == sp.__name__ and not name.startswith("_")} - {"PairPotential"}
    assert pair_classes <= covered


def _tensors(atoms, cutoff, half):
    state = sims.State.from_atoms(atoms, dtype=F64)
    pairs = sims.build_pairs(state.positions, state.cell, state.pbc, cutoff, half=half)
    return state.positions, state.cell, state.numbers, pairs


@pytest.mark.parametrize("half", [True, False], ids=["half", "full"])
@pytest.mark.parametrize("name", sorted(POTENTIALS))
def test_energy_forces_stress_equal_autograd(name, half):
    pot = POTENTIALS[name]()
    atoms = silica_like(seed=3, n_units=6, box=7.0)  # skewed cell, cutoffs beyond half of it: images
    tensors = _tensors(atoms, pot.cutoff + 0.7, half)  # a list with a skin, as MD builds it
    assert sp.pair_energy_forces(pot, *tensors) is not None
    e, f, s = sims.compute(pot, *tensors, stress=True)
    e_ref, f_ref, s_ref = sims.compute(Opaque(pot), *tensors, stress=True)
    assert float(e) == pytest.approx(float(e_ref), rel=1e-12, abs=1e-12)
    torch.testing.assert_close(f, f_ref, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(s, s_ref, rtol=1e-10, atol=1e-12)
    assert not (e.requires_grad or f.requires_grad or s.requires_grad)


def test_other_potentials_take_the_autograd_route():
    tensors = _tensors(silica_like(), 5.0, True)
    assert sp.pair_energy_forces(Opaque(sp.LennardJones(sigma=2.0, cutoff=5.0)), *tensors) is None
    mixed = sp.SumPotential([sp.LennardJones(sigma=2.0, epsilon=0.05, cutoff=5.0, dtype=F64),
                             sp.DoubleWell(a=0.05, b=1.0)])
    assert sp.pair_energy_forces(mixed, *tensors) is None
    e, f, _ = sims.compute(mixed, *tensors)
    e_ref, f_ref, _ = sims.compute(Opaque(mixed), *tensors)
    torch.testing.assert_close(f, f_ref, rtol=1e-12, atol=1e-12)


def _trajectory_loss(pot, atoms, x0, steps=6):
    """A loss on the end of a short NVT run: energy, a position term and the virial stress."""
    state = sims.State.from_atoms(atoms, dtype=F64).with_(positions=x0)
    md = sims.MD(state, pot, sims.Langevin(timestep=1.0, temperature=600.0, friction=0.02), seed=3,
                 requires_grad=True, record_every=0, skin=0.5)
    md.run(steps)
    st = md.state
    pairs = md.neighbors.update(st.positions, st.cell, st.pbc)
    _, _, stress = sims.compute(pot, st.positions, st.cell, st.numbers, pairs, forces=False, stress=True,
                                create_graph=True)
    return md.energy + 0.05 * (st.positions[:, 0] ** 2).sum() + 10.0 * stress.trace()


@pytest.mark.parametrize("name", ["lj", "lj-mixture", "tabulated", "bks"])
def test_gradients_through_md_equal_autograd(name):
    pot = POTENTIALS[name]()
    atoms = silica_like(seed=5, n_units=4, box=6.5)
    if name.startswith("lj") or name == "tabulated":
        atoms.positions *= 1.25  # the species tables / LJ well sit at longer range
        atoms.set_cell(atoms.cell * 1.25)
    atoms.set_velocities(np.random.default_rng(0).normal(0, 0.01, (len(atoms), 3)))
    params = [p for p in pot.parameters() if p.requires_grad]
    x0 = torch.as_tensor(atoms.positions, dtype=F64).requires_grad_(True)
    grads = torch.autograd.grad(_trajectory_loss(pot, atoms, x0), params + [x0])
    grads_ref = torch.autograd.grad(_trajectory_loss(Opaque(pot), atoms, x0), params + [x0])
    for g, g_ref in zip(grads, grads_ref):
        assert float(g_ref.abs().max()) > 0  # the loss does depend on every parameter
        torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-10 * float(g_ref.abs().max()))


def test_list_constants_follow_the_cell():
    """The cached image shifts are recomputed when the cell changes under the same list."""
    pot = POTENTIALS["lj"]()
    pos, cell, numbers, pairs = _tensors(silica_like(), 5.7, True)
    sims.compute(pot, pos, cell, numbers, pairs)
    strained = cell @ torch.tensor([[1.01, 0.002, 0.0], [0.0, 0.995, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    e, f, s = sims.compute(pot, pos, strained, numbers, pairs, stress=True)
    e_ref, f_ref, s_ref = sims.compute(Opaque(pot), pos, strained, numbers, pairs, stress=True)
    torch.testing.assert_close(f, f_ref, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(s, s_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_compiled_pass_equals_the_eager_one():
    """``compiled=True`` (torch.compile of the pair pass) gives the eager numbers to round-off; slow:
    the first call compiles for tens of seconds."""
    for name in ("lj", "bks"):
        pot = POTENTIALS[name]()
        tensors = _tensors(silica_like(seed=3, n_units=6, box=7.0), pot.cutoff + 0.7, True)
        e, f, s = sims.compute(pot, *tensors, stress=True)
        e_c, f_c, s_c = sims.compute(pot, *tensors, stress=True, compiled=True)
        assert float(e_c) == pytest.approx(float(e), rel=1e-12, abs=1e-12)
        torch.testing.assert_close(f_c, f, rtol=1e-10, atol=1e-11)
        torch.testing.assert_close(s_c, s, rtol=1e-10, atol=1e-12)


def test_a_subclass_redefining_the_energy_keeps_consistent_forces():
    """A subclass that changes ``pair_energy`` but not the closed form gets autograd's ``phi'``."""

    class SoftLJ(sp.LennardJones):
        def pair_energy(self, r, zi, zj):
            return 0.5 * super().pair_energy(r, zi, zj) + 0.01 * torch.exp(-r)

    pot = SoftLJ(sigma=2.0, epsilon=0.05, cutoff=5.0, dtype=F64)
    tensors = _tensors(silica_like(), 5.7, True)
    e, f, s = sims.compute(pot, *tensors, stress=True)
    e_ref, f_ref, s_ref = sims.compute(Opaque(pot), *tensors, stress=True)
    assert float(e) == pytest.approx(float(e_ref), rel=1e-12)
    torch.testing.assert_close(f, f_ref, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(s, s_ref, rtol=1e-10, atol=1e-12)
