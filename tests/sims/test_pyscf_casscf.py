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
from sims.pyscf_casscf import CASSCFModel, _casscf, casscf_frames, label_dataset, sa_casscf_labels  # noqa: E402

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


@pytest.fixture(scope="module")
def three_geometries():
    return [_twisted_ethylene(angle) for angle in (20.0, 70.0, 110.0)]


@pytest.fixture(scope="module")
def direct(three_geometries):
    return [sa_casscf_labels(atoms, basis=BASIS) for atoms in three_geometries]


def test_label_dataset_matches_direct_calls_and_resumes(three_geometries, direct, tmp_path, monkeypatch):
    import sims.pyscf_casscf as pc

    structures = three_geometries
    frames = label_dataset(structures, tmp_path / "labels", chunk_size=2, basis=BASIS)
    assert [f.info["label_index"] for f in frames] == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "labels").glob("chunk_*.npz")) == ["chunk_00000.npz", "chunk_00001.npz"]
    for frame, atoms, labels in zip(frames, structures, direct):
        np.testing.assert_allclose(frame.positions, atoms.positions)
        np.testing.assert_allclose(frame.info["energies"], labels["energies"], atol=1e-6)
        np.testing.assert_allclose(frame.arrays["gradients"], labels["gradients"], atol=1e-4)
        # a separate CASSCF run may flip the relative phase of the two states
        h, ref = frame.arrays["coupling_numerators"], labels["coupling_numerators"]
        assert min(np.abs(h - ref).max(), np.abs(h + ref).max()) < 1e-4
    # Resume: the chunks on disk are read, nothing is recomputed.
    monkeypatch.setattr(pc, "sa_casscf_labels", lambda *a, **k: pytest.fail("recomputed a stored label"))
    again = label_dataset(structures, tmp_path / "labels", chunk_size=2, basis=BASIS)
    for a, b in zip(frames, again):
        np.testing.assert_array_equal(a.arrays["gradients"], b.arrays["gradients"])
    # A crash after the first chunk: "skip" reads what is there, "label" would finish the rest.
    (tmp_path / "labels" / "chunk_00001.npz").unlink()
    assert [f.info["label_index"] for f in label_dataset(structures, tmp_path / "labels", chunk_size=2,
                                                           basis=BASIS, missing="skip")] == [0, 1]
    with pytest.raises(SimsInputError, match="other structures or settings"):
        label_dataset(structures[:2], tmp_path / "labels", chunk_size=2, basis=BASIS)
    with pytest.raises(SimsInputError, match="same atoms"):
        label_dataset([structures[0], molecule("H2O")], tmp_path / "other", basis=BASIS)
    with pytest.raises(SimsInputError, match="missing must be"):
        label_dataset(structures, tmp_path / "labels", chunk_size=2, basis=BASIS, missing="later")


def test_label_dataset_keeps_unconverged_structures_out(three_geometries, tmp_path, monkeypatch):
    import sims.pyscf_casscf as pc

    real = pc.sa_casscf_labels
    calls = []

    def flaky(atoms, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SimsInputError("SA-2-CASSCF(2,2) did not converge")
        return real(atoms, **kwargs)

    monkeypatch.setattr(pc, "sa_casscf_labels", flaky)
    frames = label_dataset(three_geometries[:2], tmp_path, chunk_size=2, basis=BASIS)
    assert [f.info["label_index"] for f in frames] == [0]
    with np.load(tmp_path / "chunk_00000.npz") as data:
        assert data["converged"].tolist() == [True, False]
        assert np.isnan(data["energies"][1]).all() and np.isfinite(data["energies"][0]).all()


def test_casscf_model_in_atomic_units_and_precomputed_modes(three_geometries, direct, monkeypatch):
    import torch

    from sims.hopping_ensemble import normal_mode_sample
    from sims.surface_hopping import AMU

    atoms = three_geometries[1]
    model = CASSCFModel(atoms.numbers, basis=BASIS)
    x = torch.as_tensor(atoms.positions.reshape(1, -1) / Bohr)
    ad = model.adiabatic(x)
    ref = direct[1]
    hartree = 27.211386245988
    np.testing.assert_allclose(ad.energies[0].numpy() * hartree, ref["energies"], atol=1e-6)
    np.testing.assert_allclose(ad.gradients[0].numpy().reshape(6, 3, 2).transpose(0, 2, 1) * hartree / Bohr,
                               ref["gradients"], atol=1e-4)
    d = ad.couplings[0].numpy().reshape(6, 3, 2, 2).transpose(0, 2, 3, 1) / Bohr
    assert min(np.abs(d - ref["couplings"]).max(), np.abs(d + ref["couplings"]).max()) < 1e-4
    assert model.mass[0] == pytest.approx(12.011 * AMU, rel=1e-4)
    with pytest.raises(SimsInputError, match="phases"):
        model.adiabatic(x, reference=ad.vectors)
    with pytest.raises(SimsInputError, match="masses has 1 entries"):
        CASSCFModel(atoms.numbers, masses=[1.0])
    # Precomputed modes give the samples of the model's own Hessian (here of a cheap model), without it.
    import sims.hopping_ensemble as he
    from sims.surface_hopping import TorsionalIsomerisation

    tors = TorsionalIsomerisation()
    modes = he.normal_modes(tors, tors.geometry())
    a = normal_mode_sample(tors, tors.geometry(), 5, seed=1)
    monkeypatch.setattr(he, "normal_modes", lambda *a, **k: pytest.fail("recomputed the Hessian"))
    b = normal_mode_sample(tors, tors.geometry(), 5, seed=1, modes=modes)
    torch.testing.assert_close(a, b)
    with pytest.raises(SimsInputError, match="modes must be"):
        normal_mode_sample(tors, tors.geometry(), 5, seed=1, modes=(modes[0], modes[1][:3]))


def test_averaging_over_more_states_than_labelled():
    """SA-3 orbitals, labels of the lowest two states: energies as the full SA-3 call's first two,
    S0/S1 gradients equal to central differences of the SA-3 state energies."""
    mol = _twisted_ethylene(30.0)
    labels = sa_casscf_labels(mol, basis=BASIS, average_states=3)
    full = sa_casscf_labels(mol, basis=BASIS, n_states=3)
    assert labels["energies"].shape == (2,) and labels["coupling_numerators"].shape == (6, 2, 2, 3)
    np.testing.assert_allclose(labels["energies"], full["energies"][:2], rtol=0, atol=1e-7)
    np.testing.assert_allclose(labels["gradients"], full["gradients"][:, :2], rtol=0, atol=1e-5)
    h = 1e-3
    energies = []
    for sign in (1, -1):
        moved = mol.copy()
        moved.positions[2, 1] += sign * h
        energies.append(np.asarray(_casscf(moved, 3, 2, 2, BASIS, 1e-11)[1].e_states)[:2] * 27.211386245988)
    np.testing.assert_allclose(labels["gradients"][2, :, 1], (energies[0] - energies[1]) / (2 * h), atol=2e-4, rtol=1e-3)
    with pytest.raises(SimsInputError, match="average_states must be an integer >= n_states"):
        sa_casscf_labels(mol, basis=BASIS, average_states=1)
