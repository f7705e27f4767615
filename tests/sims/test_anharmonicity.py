"""sims.anharmonicity: force constants against ASE's finite-difference Hessian and an analytic one;
sigma^A (Knoop et al. 2020) of Langevin MD in a quartic well against quadrature of the Boltzmann density."""

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.lj import LennardJones as AseLJ
from ase.calculators.singlepoint import SinglePointCalculator
from ase.vibrations import Vibrations
from scipy import integrate

import sims
from sims.anharmonicity import anharmonicity, force_constants
from sims.errors import SimsInputError
from sims.batch import _takes_batch
from sims.potentials import CalculatorPotential, DoubleWell, LennardJones

SIGMA, EPS, RC = 3.4, 0.0104, 8.5


def _ase_hessian(atoms: Atoms, tmp_path) -> np.ndarray:
    atoms = atoms.copy()
    atoms.calc = AseLJ(sigma=SIGMA, epsilon=EPS, rc=RC, smooth=False)
    vib = Vibrations(atoms, name=str(tmp_path / "vib"), delta=0.01, nfree=2)
    vib.run()
    h = vib.get_vibrations().get_hessian_2d()
    return 0.5 * (h + h.T)


@pytest.mark.parametrize("periodic", [False, True])
def test_force_constants_equal_ase_vibrations(periodic, tmp_path):
    if periodic:  # cutoff beyond half the cell: each pair summed over several images
        atoms = bulk("Ar", "fcc", a=5.3, cubic=True)
    else:
        atoms = Atoms("Ar6", positions=[[0, 0, 0], [3.8, 0, 0], [0, 3.8, 0], [0, 0, 3.8], [3.8, 3.8, 0], [1.9, 1.9, 3.2]])
    atoms.rattle(0.05, seed=1)
    ours = force_constants(LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=RC), atoms, dtype=torch.float64)
    ref = _ase_hessian(atoms, tmp_path)
    assert ours.shape == ref.shape == (3 * len(atoms), 3 * len(atoms))
    np.testing.assert_allclose(ours, ref, atol=1e-7 * np.abs(ref).max())
    # one copy per batch gives the same
    single = force_constants(LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=RC), atoms, batch_size=1,
                             dtype=torch.float64)
    np.testing.assert_allclose(single, ours, rtol=0, atol=1e-12)
    # a potential that takes no batch (an ASE calculator): one energy_and_forces call per copy
    calc = CalculatorPotential(AseLJ(sigma=SIGMA, epsilon=EPS, rc=RC, smooth=False))
    assert not _takes_batch(calc)
    np.testing.assert_allclose(force_constants(calc, atoms), ref, atol=1e-7 * np.abs(ref).max())


A, B, K_YZ = 1.0, 1.0, 8.0  # eV/Å^4, Å, eV/Å^2: a well at x = b with curvature 8 a b^2 = 8 eV/Å^2


def test_force_constants_of_the_quartic_well_are_its_curvatures():
    atoms = Atoms("H3", positions=[[B, 0, 0]] * 3)
    phi = force_constants(DoubleWell(a=A, b=B, k_y=K_YZ, k_z=K_YZ), atoms, delta=1e-3)
    # d^2/dx^2 a (x^2 - b^2)^2 at x = b is 8 a b^2; FD error a * delta^2 * 2 (from the x^4 term)
    np.testing.assert_allclose(phi, np.kron(np.eye(3), np.diag([8 * A * B ** 2, K_YZ, K_YZ])), atol=1e-5)


def _quadrature_sigma(temperature: float) -> float:
    """sigma^A of independent particles in the well at x = b, exactly from the Boltzmann density."""
    kt = units.kB * temperature
    k = 8 * A * B ** 2

    def weight(x):
        return np.exp(-A * (x * x - B * B) ** 2 / kt)

    def force(x):
        return -4 * A * x * (x * x - B * B)

    def mean(fn):  # the right well only: the barrier a b^4 = 1 eV is 12 kT at 1000 K
        return integrate.quad(lambda x: fn(x) * weight(x), 0, 3 * B)[0] / integrate.quad(weight, 0, 3 * B)[0]

    rest = mean(lambda x: (force(x) + k * (x - B)) ** 2)
    total = mean(lambda x: force(x) ** 2) + 2 * K_YZ * kt  # y and z: <(k y)^2> = k kT
    return float(np.sqrt(rest / total))


def test_sigma_of_langevin_md_in_a_quartic_well_equals_quadrature():
    temperature, n = 1000.0, 64
    atoms = Atoms(f"H{n}", positions=[[B, 0, 0]] * n)
    potential = DoubleWell(a=A, b=B, k_y=K_YZ, k_z=K_YZ)
    md = sims.MD(atoms, potential, sims.Langevin(0.5, temperature, friction=0.05, seed=3), min_distance=None,
                 temperature=temperature, seed=3, record_every=10)
    md.run(400)
    md.trajectory.clear()  # equilibration
    md.run(8000)
    phi = force_constants(potential, atoms)
    result = anharmonicity(md.trajectory, reference=atoms, force_constants=phi, remove_drift=False, n_blocks=6)
    ref = _quadrature_sigma(temperature)
    assert 0.1 < ref < 0.3  # a measurably anharmonic case
    assert abs(result.sigma - ref) < max(4 * result.stderr, 0.02 * ref), (result.sigma, result.stderr, ref)
    assert result.stderr < 0.05 * ref
    assert result.per_frame.shape == (len(md.trajectory),)


def _frames_with_forces(atoms: Atoms, displacements: np.ndarray, forces: np.ndarray, wrap: bool = False) -> list[Atoms]:
    out = []
    for u, f in zip(displacements, forces):
        frame = atoms.copy()
        frame.positions = atoms.positions + u
        if wrap:
            frame.wrap()
        frame.calc = SinglePointCalculator(frame, forces=f)
        out.append(frame)
    return out


def test_harmonic_frames_give_zero_and_minimum_image_and_species():
    rng = np.random.default_rng(0)
    atoms = bulk("LiF", "rocksalt", a=4.0, cubic=True)
    n3 = 3 * len(atoms)
    m = rng.normal(size=(n3, n3))
    phi = m @ m.T
    u = rng.normal(scale=0.1, size=(5, len(atoms), 3))
    forces = -(u.reshape(5, -1) @ phi.T).reshape(u.shape)
    # wrapped positions (an atom across the cell face) are displacements by the minimum image
    frames = _frames_with_forces(atoms, u, forces, wrap=True)
    assert np.abs(np.stack([f.positions for f in frames]) - atoms.positions - u).max() > 1.0
    assert anharmonicity(frames, reference=atoms, force_constants=phi, remove_drift=False).sigma < 1e-12
    # a rigid shift of every frame: no force in a translation-invariant solid, removed as drift
    shifted = _frames_with_forces(atoms, u + rng.normal(size=(5, 1, 3)), forces)
    assert anharmonicity(shifted, reference=atoms, force_constants=phi, remove_drift=False).sigma > 0.5
    phi_asr = phi.copy()  # the same random model made translation invariant: rows summing to zero per axis
    blocks = phi_asr.reshape(len(atoms), 3, len(atoms), 3)
    for i in range(len(atoms)):
        blocks[i, :, i, :] -= blocks[i].sum(axis=1)
    u0 = u - u.mean(axis=1, keepdims=True)
    forces0 = -(u0.reshape(5, -1) @ phi_asr.T).reshape(u.shape)
    drift = rng.normal(size=(5, 1, 3))
    drift[1] = [1.9, -2.3, 6.1]  # past half the cell: the atoms' own minimum images split
    drifted = _frames_with_forces(atoms, u0 + drift, forces0, wrap=True)
    assert anharmonicity(drifted, reference=atoms, force_constants=phi_asr).sigma < 1e-12
    # an extra force on the Li atoms only: sigma_Li = |extra| / |F| over Li; sigma_F stays 0
    extra = np.zeros_like(forces)
    li = atoms.numbers == 3
    extra[:, li] = rng.normal(size=(5, li.sum(), 3))
    frames = _frames_with_forces(atoms, u, forces + extra)
    on_li = anharmonicity(frames, reference=atoms, force_constants=phi, species="Li", remove_drift=False, n_blocks=1)
    expect = np.sqrt((extra[:, li] ** 2).sum() / ((forces + extra)[:, li] ** 2).sum())
    assert on_li.sigma == pytest.approx(expect, rel=1e-12)
    assert np.isnan(on_li.stderr)
    assert anharmonicity(frames, reference=atoms, force_constants=phi, species="F", remove_drift=False).sigma < 1e-12


def test_bad_input_is_refused():
    atoms = bulk("LiF", "rocksalt", a=4.0, cubic=True)
    phi = np.eye(3 * len(atoms))
    frames = _frames_with_forces(atoms, np.full((3, len(atoms), 3), 0.01), np.ones((3, len(atoms), 3)))
    with pytest.raises(SimsInputError, match="species 'Na' is not in the reference"):
        anharmonicity(frames, reference=atoms, force_constants=phi, species="Na")
    with pytest.raises(SimsInputError, match=r"must be a finite \(24, 24\)"):
        anharmonicity(frames, reference=atoms, force_constants=np.eye(6))
    with pytest.raises(SimsInputError, match="n_blocks"):
        anharmonicity(frames, reference=atoms, force_constants=phi, n_blocks=4)
    assert anharmonicity(frames, reference=atoms, force_constants=phi).n_blocks == 3
    bare = atoms.copy()
    with pytest.raises(SimsInputError, match="frame 0 has no forces"):
        anharmonicity([bare], reference=atoms, force_constants=phi)
    strained = frames[1].copy()
    strained.calc = SinglePointCalculator(strained, forces=np.ones((len(atoms), 3)))
    strained.set_cell(strained.cell * 1.01, scale_atoms=True)
    with pytest.raises(SimsInputError, match="frame 1 has another cell"):
        anharmonicity([frames[0], strained], reference=atoms, force_constants=phi)
    with pytest.raises(SimsInputError, match="frame 0 holds other atoms"):
        anharmonicity(frames, reference=bulk("NaCl", "rocksalt", a=5.6, cubic=True), force_constants=phi)
    with pytest.raises(SimsInputError, match="delta"):
        force_constants(LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=RC), atoms, delta=0.0)


def test_a_slab_without_a_cell_row_along_its_normal():
    # ase.build's slabs with vacuum=None have a zero third cell row: the fractional displacements
    # inverted the cell and raised numpy's LinAlgError. In-plane wraps and drifts are taken as in bulk.
    from ase.build import fcc111

    rng = np.random.default_rng(4)
    slab = fcc111("Cu", (2, 2, 2), vacuum=None)
    assert not slab.cell.array[2].any()
    n = len(slab)
    m = rng.normal(size=(3 * n, 3 * n))
    phi = m @ m.T
    blocks = phi.reshape(n, 3, n, 3)  # translation invariant: each row block sums to zero
    for i in range(n):
        blocks[i, :, i, :] -= blocks[i].sum(axis=1)
    u = rng.normal(scale=0.1, size=(4, n, 3))
    u -= u.mean(axis=1, keepdims=True)
    forces = -(u.reshape(4, -1) @ phi.T).reshape(u.shape)
    drift = np.array([[0.0, 0.0, 0.0], [3.1, -1.4, 0.7], [-2.6, 2.9, -1.5], [0.2, 0.1, 4.0]])[:, None]
    frames = _frames_with_forces(slab, u + drift, forces, wrap=True)
    assert anharmonicity(frames, reference=slab, force_constants=phi).sigma < 1e-12
    still = _frames_with_forces(slab, u, forces, wrap=True)
    assert anharmonicity(still, reference=slab, force_constants=phi, remove_drift=False).sigma < 1e-12


def test_constrained_atoms_are_refused():
    # force_constants displaced FixAtoms atoms (ASE's Vibrations leaves them out: a 12 x 12 Hessian for 4 free
    # of 6 atoms, ours was 18 x 18), and a frame's get_forces() zeroes the fixed atoms' forces: harmonic frames
    # (exact sigma^A = 0) gave 0.0092 with two atoms fixed
    from ase.constraints import FixAtoms

    atoms = Atoms("Ar6", positions=[[0, 0, 0], [3.8, 0, 0], [0, 3.8, 0], [0, 0, 3.8], [3.8, 3.8, 0], [1.9, 1.9, 3.2]])
    atoms.rattle(0.05, seed=1)
    pot = LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=RC)
    phi = force_constants(pot, atoms, dtype=torch.float64)
    frame = atoms.copy()
    frame.positions += np.random.default_rng(0).normal(0, 0.02, frame.positions.shape)
    frame.calc = SinglePointCalculator(frame, forces=-(phi @ (frame.positions - atoms.positions).ravel()).reshape(-1, 3))
    assert anharmonicity([frame], reference=atoms, force_constants=phi, remove_drift=False).sigma < 1e-12
    fixed = atoms.copy()
    fixed.set_constraint(FixAtoms(indices=[0, 1]))
    with pytest.raises(SimsInputError, match="FixAtoms"):
        force_constants(pot, fixed, dtype=torch.float64)
    with pytest.raises(SimsInputError, match="FixAtoms"):
        anharmonicity([frame], reference=fixed, force_constants=phi)
    frame.set_constraint(FixAtoms(indices=[0, 1]))
    with pytest.raises(SimsInputError, match="FixAtoms"):
        anharmonicity([frame], reference=atoms, force_constants=phi, remove_drift=False)
