"""Collective variables and their inverse mass (sims.cv) against closed forms, finite differences and ASE."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from sims.cv import (Angle, Coordination, Custom, Dihedral, Distance, Linear, Position, cv_and_inverse_mass,
                     gradient_alignment, minimum_image, parse_cv,
                     wrapping_cell)
from sims.errors import SimsInputError


@pytest.fixture
def frames():
    """20 random frames of 5 atoms (Å) and their masses (amu)."""
    rng = np.random.default_rng(4)
    return rng.normal(0.0, 1.5, (20, 5, 3)), np.array([1.008, 12.011, 14.007, 15.999, 32.06])


def _fd_gradient(cv, pos, cell=None, h=1e-6):
    """Central finite-difference gradient of ``cv`` for each frame, (F, N, 3)."""
    p = torch.as_tensor(pos, dtype=torch.float64)
    c = None if cell is None else torch.as_tensor(cell, dtype=torch.float64)
    g = np.zeros(p.shape)
    for a in range(p.shape[1]):
        for d in range(3):
            dp = torch.zeros_like(p)
            dp[:, a, d] = h
            g[:, a, d] = ((cv(p + dp, c) - cv(p - dp, c)) / (2 * h)).numpy()
    return g


def test_distance_inverse_mass_is_reduced_mass_inverse(frames):
    pos, m = frames
    xi, m_inv, _ = cv_and_inverse_mass(Distance(1, 3), pos, m)
    assert np.allclose(xi.numpy(), np.linalg.norm(pos[:, 3] - pos[:, 1], axis=1), rtol=1e-13)
    assert np.allclose(m_inv.numpy(), 1 / m[1] + 1 / m[3], rtol=1e-13)


def test_list_inputs_are_float64_whatever_the_default_dtype(frames):
    """Lists (masses, cell, positions, gradients) went through torch.as_tensor to the global default dtype,
    so float64 positions met float32-rounded masses and cell (m_inv 2.6e-8 relative off, minimum-image
    distances 1e-7 Å) and a list of positions gave float32 values. They are read as float64 now."""
    pos, m = frames
    cell = np.diag([3.7, 4.1, 3.3])
    ref, ref_inv, ref_grad = cv_and_inverse_mass(Distance(1, 3), pos, m, cell)
    xi, m_inv, grad = cv_and_inverse_mass(Distance(1, 3), pos.tolist(), m.tolist(), cell.tolist())
    assert xi.dtype == torch.float64
    assert torch.equal(xi, ref) and torch.equal(m_inv, ref_inv) and torch.equal(grad, ref_grad)
    forces = np.random.default_rng(0).normal(size=pos.shape)
    assert torch.equal(gradient_alignment(forces.tolist(), grad.tolist()), gradient_alignment(forces, grad))


def test_position_inverse_mass_is_one_over_m(frames):
    pos, m = frames
    xi, m_inv, _ = cv_and_inverse_mass(Position(2, "y"), pos, m)
    assert np.allclose(xi.numpy(), pos[:, 2, 1]) and np.allclose(m_inv.numpy(), 1 / m[2])


def test_angle_and_dihedral_match_ase(frames):
    pos, m = frames
    ang, _, _ = cv_and_inverse_mass(Angle(0, 1, 2), pos, m)
    dih, _, _ = cv_and_inverse_mass(Dihedral(0, 1, 2, 3), pos, m)
    for f in range(len(pos)):
        atoms = Atoms("H5", positions=pos[f])
        assert np.degrees(float(ang[f])) == pytest.approx(atoms.get_angle(0, 1, 2), abs=1e-9)
        assert np.degrees(float(dih[f])) % 360 == pytest.approx(atoms.get_dihedral(0, 1, 2, 3), abs=1e-9)


@pytest.mark.parametrize("cv", [Distance(0, 4), Angle(0, 1, 2), Dihedral(0, 1, 2, 3), Dihedral(4, 2, 1, 0),
                                Coordination([0, 1], [1, 2, 3, 4], r0=1.8),
                                Linear([Distance(0, 1), Angle(1, 2, 3)], [0.5, -2.0])])
def test_gradient_and_inverse_mass_match_finite_differences(frames, cv):
    pos, m = frames
    _, m_inv, grad = cv_and_inverse_mass(cv, pos, m)
    fd = _fd_gradient(cv, pos)
    assert np.allclose(grad.numpy(), fd, atol=1e-7)
    assert np.allclose(m_inv.numpy(), ((fd ** 2).sum(-1) / m).sum(-1), rtol=1e-6)


def test_angle_inverse_mass_closed_form():
    # Right angle, bonds r1 = 1.1 and r2 = 0.9 Å: |grad_i theta| = 1/r1, |grad_k theta| = 1/r2 and
    # grad_j = -(grad_i + grad_k), so m^-1 = 1/(m_i r1^2) + 1/(m_k r2^2) + (1/r1^2 + 1/r2^2)/m_j
    # (Wilson, Decius & Cross, Molecular Vibrations (1955), the G-matrix element of a bend).
    pos = np.array([[[1.1, 0, 0], [0, 0, 0], [0, 0.9, 0]]])
    m = np.array([1.0, 16.0, 2.0])
    _, m_inv, _ = cv_and_inverse_mass(Angle(0, 1, 2), pos, m)
    expected = 1 / (1.0 * 1.1 ** 2) + 1 / (2.0 * 0.9 ** 2) + (1 / 1.1 ** 2 + 1 / 0.9 ** 2) / 16.0
    assert float(m_inv[0]) == pytest.approx(expected, rel=1e-12)


def test_dihedral_inverse_mass_closed_form():
    # Planar-trans-free geometry with right angles: atoms i and l move perpendicular to their
    # planes with |grad| = 1 / (r sin(angle)) (Wilson's torsion G-element for its end atoms).
    pos = np.array([[[1.0, 0, 0], [0, 0, 0], [0, 0, 1.5], [0, 2.0, 1.5]]])
    m = np.array([3.0, 1e12, 1e12, 5.0])          # heavy centre atoms isolate the end-atom terms
    xi, m_inv, _ = cv_and_inverse_mass(Dihedral(0, 1, 2, 3), pos, m)
    assert abs(float(xi[0])) == pytest.approx(np.pi / 2, abs=1e-12)
    assert float(m_inv[0]) == pytest.approx(1 / (3.0 * 1.0 ** 2) + 1 / (5.0 * 2.0 ** 2), rel=1e-9)


def test_coordination_switching_values():
    pos = np.array([[[0, 0, 0], [1.5, 0, 0], [0, 3.0, 0]]], dtype=float)
    cv = Coordination([0], [1, 2], r0=1.5, n=6)
    xi, _, _ = cv_and_inverse_mass(cv, pos, np.ones(3))
    assert float(xi[0]) == pytest.approx(0.5 + 1 / (1 + 2.0 ** 6), rel=1e-12)
    # overlapping groups count each unordered pair once
    assert len(Coordination([0, 1, 2], [0, 1, 2], r0=1.0).pairs) == 3


def test_minimum_image_in_triclinic_cell():
    cell = np.array([[5.0, 0, 0], [2.0, 4.5, 0], [1.0, 1.0, 6.0]])
    rng = np.random.default_rng(0)
    pos = rng.uniform(-3, 8, (30, 2, 3))
    xi, m_inv, _ = cv_and_inverse_mass(Distance(0, 1), pos, np.array([2.0, 3.0]), cell)
    shifts = np.array(np.meshgrid(*[np.arange(-3, 4)] * 3, indexing="ij")).reshape(3, -1).T @ cell
    brute = np.linalg.norm((pos[:, 1] - pos[:, 0])[:, None] + shifts[None], axis=-1).min(1)
    assert np.allclose(xi.numpy(), brute, rtol=1e-12)
    assert np.allclose(m_inv.numpy(), 1 / 2 + 1 / 3)
    # per-frame cells give the same answer
    xi2, _, _ = cv_and_inverse_mass(Distance(0, 1), pos, np.array([2.0, 3.0]), np.repeat(cell[None], 30, 0))
    assert np.allclose(xi2.numpy(), brute, rtol=1e-12)
    # an angle across the boundary equals the unwrapped one
    v = torch.tensor([[4.8, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(minimum_image(v, torch.as_tensor(cell)), torch.tensor([[-0.2, 0.0, 0.0]], dtype=torch.float64))


def test_minimum_image_of_a_slab_and_a_wire():
    """Along the periodic axes only: a slab as ASE's find_mic(v, cell, pbc); a wire and a slab whose
    non-periodic row is skewed as the shortest of all lattice translations (brute force), where
    find_mic, wrapping in fractional coordinates of the full cell, misses the minimum by up to 2.5 Å.
    The non-periodic row may be zero (as for many slabs) and is never wrapped along."""
    from ase.geometry import find_mic

    rng = np.random.default_rng(3)
    cell = np.array([[9.0, 0.0, 0.0], [3.5, 8.0, 0.0], [0.0, 0.0, 0.0]])
    v = rng.uniform(-25, 25, (400, 3))
    got = minimum_image(torch.as_tensor(v), torch.as_tensor(wrapping_cell(cell, [True, True, False], 50.0))).numpy()
    ref, length = find_mic(v, cell, pbc=[True, True, False])
    np.testing.assert_allclose(got, ref, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), length, rtol=1e-12)
    for pbc in ([True, False, False], [False, True, True]):
        full = cell + np.diag([0.0, 0.0, 11.0])
        got = minimum_image(torch.as_tensor(v), torch.as_tensor(wrapping_cell(full, pbc, reach=50.0))).numpy()
        rows = full[np.array(pbc)]
        shifts = np.array([np.array(n) @ rows for n in itertools.product(range(-6, 7), repeat=len(rows))])
        np.testing.assert_allclose(np.linalg.norm(got, axis=1),
                                   np.linalg.norm(v[:, None] + shifts[None], axis=-1).min(1), rtol=1e-12)
        n = np.linalg.lstsq(rows.T, (got - v).T, rcond=None)[0]  # the shift: whole periodic rows only
        assert np.allclose(rows.T @ n, (got - v).T, atol=1e-9) and np.allclose(n, np.rint(n), atol=1e-9)
    assert wrapping_cell(cell, [False] * 3, reach=1.0) is None
    with pytest.raises(SimsInputError, match=r"periodic axes \[0, 2\] need independent cell vectors"):
        wrapping_cell(cell, [True, False, True], reach=1.0)


def test_minimum_image_in_skewed_unreduced_cells_matches_ase():
    """A skewed cell whose rows are not its shortest lattice vectors: the 27 images around the wrapped
    vector missed the minimum image (144 of these 2000 vectors, up to 3.1 Å too long); the
    Minkowski-reduced cell finds it, as ASE's find_mic does, per frame too."""
    from ase.geometry import find_mic

    rng = np.random.default_rng(0)
    cells, vectors = [], []
    while len(cells) < 40:
        cell = np.diag(rng.uniform(4, 10, 3)) + rng.uniform(-6, 6, (3, 3))
        if abs(np.linalg.det(cell)) > 20:
            cells.append(cell)
            vectors.append(rng.uniform(-20, 20, (50, 3)))
    for cell, v in zip(cells, vectors):
        got = minimum_image(torch.as_tensor(v), torch.as_tensor(cell)).numpy()
        ref, length = find_mic(v, cell, pbc=True)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), length, rtol=1e-12)
        assert np.allclose(np.linalg.solve(cell.T, (got - v).T), np.rint(np.linalg.solve(cell.T, (got - v).T)))
    per_frame = minimum_image(torch.as_tensor(np.stack(vectors)), torch.as_tensor(np.stack(cells))).numpy()
    lengths = np.stack([find_mic(v, c, pbc=True)[1] for v, c in zip(vectors, cells)])
    np.testing.assert_allclose(np.linalg.norm(per_frame, axis=-1), lengths, rtol=1e-12)
    cell = torch.as_tensor(cells[0], dtype=torch.float64).requires_grad_(True)
    d = Distance(0, 1)(torch.as_tensor(np.stack([np.zeros(3), vectors[0][0]]))[None], cell)
    d.sum().backward()
    assert cell.grad is not None and torch.isfinite(cell.grad).all()


def test_custom_and_linear_combination(frames):
    pos, m = frames
    cv = Custom(lambda p, c: (p[:, 0, 0] ** 2), unit="Å^2")
    xi, m_inv, _ = cv_and_inverse_mass(cv, pos, m)
    assert np.allclose(m_inv.numpy(), 4 * pos[:, 0, 0] ** 2 / m[0])
    lin = Linear([Position(0, 0), Position(0, 1)], [np.cos(0.3), np.sin(0.3)])
    _, m_inv, _ = cv_and_inverse_mass(lin, pos, m)
    assert lin.unit == "Å" and np.allclose(m_inv.numpy(), 1 / m[0])


def test_parse_cv():
    assert parse_cv("dihedral:4,6,8,14").atoms == (4, 6, 8, 14)
    assert parse_cv("distance: 0, 1").atoms == (0, 1)
    assert parse_cv("position:3,z").axis == 2
    with pytest.raises(SimsInputError, match="unknown CV kind 'torsion'"):
        parse_cv("torsion:1,2,3,4")
    with pytest.raises(SimsInputError, match="needs 3"):
        parse_cv("angle:1,2")
    with pytest.raises(SimsInputError, match="distinct"):
        parse_cv("distance:1,1")


def test_bad_input(frames):
    pos, m = frames
    with pytest.raises(SimsInputError, match="uses atom 7"):
        cv_and_inverse_mass(Distance(0, 7), pos, m)
    with pytest.raises(SimsInputError, match="masses"):
        cv_and_inverse_mass(Distance(0, 1), pos, np.zeros(5))
    bad = pos.copy()
    bad[3, 1, 0] = np.nan
    with pytest.raises(SimsInputError, match="NaN"):
        cv_and_inverse_mass(Distance(0, 1), bad, m)
    with pytest.raises(SimsInputError, match="one value per frame"):
        cv_and_inverse_mass(Custom(lambda p, c: p.sum()), pos, m)


def test_gradient_alignment():
    gu = torch.tensor([[[1.0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]], dtype=torch.float64)
    gx = torch.tensor([[[1.0, 1.0, 0], [0, 0, 0]], [[1.0, 0, 0], [0, 0, 0]]], dtype=torch.float64)
    a = gradient_alignment(gu, gx)
    assert float(a[0]) == pytest.approx(1 / np.sqrt(2)) and np.isnan(float(a[1]))


@pytest.mark.parametrize("cv", [Distance(0, 4), Angle(0, 1, 2), Dihedral(0, 1, 2, 3),
                                Coordination([0, 1], [2, 3, 4], r0=1.5)])
def test_internal_cvs_are_invariant_under_rigid_motion(frames, cv):
    pos, m = frames
    rot = Rotation.random(random_state=3).as_matrix()
    moved = pos @ rot.T + np.array([3.0, -1.0, 7.5])
    xi, m_inv, grad = cv_and_inverse_mass(cv, pos, m)
    xi2, m_inv2, grad2 = cv_and_inverse_mass(cv, moved, m)
    assert np.allclose(xi2.numpy(), xi.numpy(), atol=1e-12)
    assert np.allclose(m_inv2.numpy(), m_inv.numpy(), rtol=1e-10)
    assert np.allclose(grad2.numpy(), grad.numpy() @ rot.T, atol=1e-10)   # the gradient rotates with the frame


def test_dtype_is_honoured(frames):
    pos, m = frames
    xi, m_inv, grad = cv_and_inverse_mass(Angle(0, 1, 2), torch.as_tensor(pos, dtype=torch.float32), m)
    assert xi.dtype == m_inv.dtype == grad.dtype == torch.float32
