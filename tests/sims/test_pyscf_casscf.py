"""sims.pyscf_casscf: SA-CASSCF labels of twisted ethylene against finite differences.

Independent references: central differences of the SA-CASSCF state energies for the gradients, and
central differences of the overlaps of the CASSCF wavefunctions at displaced geometries
(``<Psi_k(R)|Psi_l(R +- h)>``, active-space CI overlaps with the non-orthogonal orbitals' overlap
matrix, ``pyscf.fci.addons.overlap``) for the full derivative couplings.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule
from ase.units import Bohr

pytest.importorskip("pyscf")

from sims.errors import SimsInputError  # noqa: E402
from sims.pyscf_casscf import _casscf, casscf_frames, sa_casscf_labels  # noqa: E402

BASIS = "sto-3g"


def _twisted_ethylene(angle=60.0):
    """Ethylene (C=C along z in ASE's g2 geometry) with the CH2 group of atom 1 twisted by ``angle`` degrees."""
    mol = molecule("C2H4")
    t = np.radians(angle)
    rot = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    mol.positions[4:] = mol.positions[4:] @ rot.T  # H 4 and 5 sit on C 1
    mol.positions[0] += [0.02, -0.03, 0.01]  # break the symmetry that zeroes couplings
    return mol


def _wavefunction_overlap(mc_a, mol_a, mc_b, mol_b, k, l):
    from pyscf import gto
    from pyscf.fci.addons import overlap

    ncore, ncas = mc_a.ncore, mc_a.ncas
    s_ao = gto.intor_cross("int1e_ovlp", mol_a, mol_b)
    ca, cb = mc_a.mo_coeff[:, ncore:ncore + ncas], mc_b.mo_coeff[:, ncore:ncore + ncas].copy()
    s = ca.T @ s_ao @ cb
    signs = np.sign(np.diag(s))
    cb *= signs  # continuous orbital phases
    s = ca.T @ s_ao @ cb
    ci_b = [c.copy() for c in mc_b.ci]
    for m in range(len(ci_b)):  # flipping orbital signs changes the CI vectors' signs per determinant
        from pyscf.fci.addons import transform_ci_for_orbital_rotation

        ci_b[m] = transform_ci_for_orbital_rotation(mc_b.ci[m], ncas, mc_b.nelecas, np.diag(signs))
    ov = overlap(mc_a.ci[k], ci_b[l], ncas, mc_a.nelecas, s)
    same = overlap(mc_a.ci[l], ci_b[l], ncas, mc_a.nelecas, s)
    return ov * np.sign(same)  # continuous state phase of l


def test_sa_casscf_gradients_and_couplings_match_finite_differences():
    mol = _twisted_ethylene()
    labels = sa_casscf_labels(mol, basis=BASIS)
    assert labels["energies"][1] > labels["energies"][0]
    d = labels["couplings"]
    np.testing.assert_allclose(d, -d.transpose(0, 2, 1, 3), atol=1e-12)
    np.testing.assert_allclose(labels["coupling_numerators"][:, 0, 1],
                               d[:, 0, 1] * (labels["energies"][1] - labels["energies"][0]), rtol=1e-12)
    h = 1e-3  # Å
    for atom, axis in ((0, 2), (2, 0)):
        energies, runs = [], []
        for sign in (1, -1):
            moved = mol.copy()
            moved.positions[atom, axis] += sign * h
            m, mc = _casscf(moved, 2, 2, 2, BASIS, 1e-11)
            energies.append(np.asarray(mc.e_states) * 27.211386245988)
            runs.append((m, mc))
        fd = (energies[0] - energies[1]) / (2 * h)
        np.testing.assert_allclose(labels["gradients"][atom, :, axis], fd, atol=2e-4, rtol=1e-3)
        m0, mc0 = _casscf(mol, 2, 2, 2, BASIS, 1e-11)
        plus = _wavefunction_overlap(mc0, m0, runs[0][1], runs[0][0], 0, 1)
        minus = _wavefunction_overlap(mc0, m0, runs[1][1], runs[1][0], 0, 1)
        fd_d = (plus - minus) / (2 * h)  # <0|d1/dR>, 1/Å
        assert abs(d[atom, 0, 1, axis]) > 1e-3
        # Measured 0.04667 vs 0.04680 and 0.24243 vs 0.24243 1/Å; the overall sign is a phase convention.
        assert abs(abs(d[atom, 0, 1, axis]) - abs(fd_d)) < 0.02 * abs(fd_d), (d[atom, 0, 1, axis], fd_d)


def test_casscf_frames_and_bad_input():
    mol = _twisted_ethylene(80.0)
    (frame,) = casscf_frames([mol], basis=BASIS)
    assert frame.info["energies"].shape == (2,)
    assert frame.arrays["gradients"].shape == (6, 2, 3)
    assert frame.arrays["coupling_numerators"].shape == (6, 2, 2, 3)
    with pytest.raises(SimsInputError, match="n_states must be an integer >= 2"):
        sa_casscf_labels(mol, n_states=1)
    assert Bohr == pytest.approx(0.529177, rel=1e-6)
