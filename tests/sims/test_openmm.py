"""sims.openmm_potential: OpenMM's amber14 alanine dipeptide as a sims potential, and its force Jacobian products."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("openmm")

import sims  # noqa: E402
from sims.cv import Dihedral  # noqa: E402
from sims.errors import SimsInputError  # noqa: E402
from sims.openmm_potential import PHI, PSI, alanine_dipeptide  # noqa: E402

F64 = torch.float64


@pytest.fixture(scope="module")
def c7eq():
    return alanine_dipeptide("C7eq")


def test_minima_are_the_known_conformers(c7eq):
    atoms, pot = c7eq
    ax, _ = alanine_dipeptide("C7ax")
    phi_eq, psi_eq = np.degrees([float(Dihedral(*d)(torch.tensor(atoms.positions)[None])) for d in (PHI, PSI)])
    phi_ax, psi_ax = np.degrees([float(Dihedral(*d)(torch.tensor(ax.positions)[None])) for d in (PHI, PSI)])
    # C7eq near (-83, 73), C7ax near (70, -70) in vacuum (Bolhuis, Dellago & Chandler, PNAS 97, 5877 (2000))
    assert -100 < phi_eq < -60 and 40 < psi_eq < 90
    assert 50 < phi_ax < 90 and -90 < psi_ax < -30
    e_eq, f_eq = sims.energy_and_forces(pot, atoms, dtype=F64)
    e_ax, _ = sims.energy_and_forces(pot, ax, dtype=F64)
    assert np.abs(f_eq).max() < 1e-4                      # a minimum
    assert 0.02 < e_ax - e_eq < 0.2                        # C7ax above C7eq, eV


def test_forces_are_the_energy_gradient_and_copies_add(c7eq):
    atoms, pot = c7eq
    rng = np.random.default_rng(0)
    x = atoms.positions + rng.normal(0, 0.05, atoms.positions.shape)
    e, f = pot.evaluate(x)
    h = 1e-5
    for a, c in [(0, 0), (7, 1), (21, 2)]:
        xp, xm = x.copy(), x.copy()
        xp[a, c] += h
        xm[a, c] -= h
        assert -(pot.evaluate(xp)[0] - pot.evaluate(xm)[0]) / (2 * h) == pytest.approx(f[a, c], rel=1e-5, abs=1e-6)
    e2, f2 = pot.evaluate(np.concatenate([x, atoms.positions]))
    assert e2 == pytest.approx(e + pot.evaluate(atoms.positions)[0], rel=1e-12)
    np.testing.assert_allclose(f2[:22], f, rtol=1e-12)
    with pytest.raises(SimsInputError, match="whole copies"):
        pot.evaluate(x[:21])


def test_force_jacobian_product_is_symmetric_linear_and_converged(c7eq):
    atoms, pot = c7eq
    rng = np.random.default_rng(1)
    x = torch.tensor(atoms.positions + rng.normal(0, 0.03, (22, 3)))
    u, v = torch.tensor(rng.normal(size=(22, 3))), torch.tensor(rng.normal(size=(22, 3)))
    ju, jv = pot.force_jacobian_product(x, u), pot.force_jacobian_product(x, v)
    assert float((u * jv).sum()) == pytest.approx(float((v * ju).sum()), rel=1e-5)   # J = -Hessian
    torch.testing.assert_close(pot.force_jacobian_product(x, 3.0 * v), 3.0 * jv, rtol=1e-10, atol=1e-10)
    fine = pot.force_jacobian_product(x, v, eps=2e-5)
    assert float((fine - jv).norm()) < 1e-5 * float(jv.norm())
    # the Hessian of a minimum is positive: u . (-J u) > 0
    x0 = torch.tensor(atoms.positions)
    assert float((u * pot.force_jacobian_product(x0, u)).sum()) < 0


@pytest.mark.slow
def test_alanine_dipeptide_learned_bias_drives_c7eq_to_c7ax():
    """Done-means of issue 14 on alanine dipeptide: under the learned bias fresh trajectories go
    C7eq -> C7ax, unbiased ones of the same length never leave C7eq."""
    from sims.enhanced import BiasPathOptimizer

    opt = BiasPathOptimizer.alanine_dipeptide(seed=0)
    history = opt.fit().history
    assert history.success_rate.iloc[0] == 0.0
    frames, ended = opt.sample(16, seed=77)
    reached = opt.reached(frames)
    assert float(reached.double().mean()) >= 0.9 and float(ended.double().mean()) >= 0.9
    unbiased, _ = opt.sample(16, seed=78, bias=False)
    assert not bool(opt.reached(unbiased).any())
    # Every path crosses phi = 0 upwards (the phi ~ 0 channel, not round through phi = 180), near
    # the lowest saddle between the two basins on the amber14 adiabatic map (computed here:
    # (0°, -30°), 0.40 eV above C7eq on a 10° grid). Measured: crossings at psi -9° to +13°, at most
    # 0.04 eV above the saddle on the map.
    from sims.openmm_potential import adiabatic_map, lowest_saddle

    atoms, pot = alanine_dipeptide("C7eq")
    grid, energies = adiabatic_map(pot, atoms)

    def cell(v):
        return int(np.argmin(np.abs((grid - v + np.pi) % (2 * np.pi) - np.pi)))

    eq, ax = opt.start_basin.center.numpy(), opt.target_basin.center.numpy()
    sa, sb = lowest_saddle(energies, (cell(eq[0]), cell(eq[1])), (cell(ax[0]), cell(ax[1])))
    assert abs(np.degrees(grid[sa])) < 15 and 0.3 < energies[sa, sb] - energies.min() < 0.5
    d = opt.descriptors(frames).numpy()
    for b in np.flatnonzero(reached.numpy()):
        phi, psi = d[:, b, 0], d[:, b, 1]
        k = np.flatnonzero((phi[:-1] < 0) & (phi[1:] >= 0) & (phi[:-1] > -np.pi / 2))
        assert k.size, f"trajectory {b} does not cross phi = 0 upwards"
        crossing = psi[k[0]]
        assert energies[cell(0.0), cell(crossing)] - energies[sa, sb] < 0.05
        assert abs(np.degrees((crossing - grid[sb] + np.pi) % (2 * np.pi) - np.pi)) < 50


def test_lowest_saddle_is_the_bottleneck_of_a_periodic_map():
    from sims.openmm_potential import lowest_saddle

    x = np.linspace(-np.pi, np.pi, 40, endpoint=False)
    # two wells at x = -pi/2 and +pi/2 along the first axis; the pass between them over x = 0 is
    # lowest at y = 1.0 (height 0.5), the way round over x = pi is higher (1.0)
    energies = (np.cos(2 * x)[:, None] + 1) * (0.25 + 0.25 * (1 - np.cos(x[None, :] - 1.0)))
    energies = energies + 0.25 * (1 - np.cos(x))[:, None]
    a, b = lowest_saddle(energies, (10, 26), (30, 26))
    assert x[a] == pytest.approx(0.0, abs=0.2) and x[b] == pytest.approx(1.0, abs=0.2)


def test_peptide_has_amber_hydrogens_residues_and_a_finite_minimised_energy():
    """Gly-Ala-Gly, charged termini: C7H13N3O4 (the neutral formula; the zwitterion has the same atoms)."""
    from sims.openmm_potential import peptide

    atoms, potential = peptide("GAG", implicit_solvent="obc2")
    assert atoms.get_chemical_formula(mode="hill") == "C7H13N3O4"
    np.testing.assert_array_equal(np.unique(atoms.arrays["residuenumbers"]), [0, 1, 2])
    assert (atoms.arrays["atomtypes"] == "CA").sum() == 3 and "OXT" in atoms.arrays["atomtypes"]
    x = torch.tensor(atoms.positions, dtype=F64, requires_grad=True)
    energy = potential(x)
    (grad,) = torch.autograd.grad(energy, x)
    assert torch.isfinite(energy) and grad.abs().max() < 0.05  # minimised: forces below 0.05 eV/Å
    with pytest.raises(SimsInputError, match="implicit_solvent must be None or one of"):
        peptide("GAG", implicit_solvent="water")
