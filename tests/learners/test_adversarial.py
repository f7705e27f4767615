"""Adversarial attacks on a committee trained briefly on MD frames of a Morse cluster (ASE's own calculator)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.morse import MorsePotential
from ase.calculators.singlepoint import SinglePointCalculator

from learners.adversarial import AdversarialLoss, AttackWarning, attack
from learners.errors import InputError, InputTypeError
from learners.potentials import Committee, PaiNN, fit_potential
from learners.trainer import Trainer

MORSE = {"epsilon": 0.5, "r0": 2.5, "rho0": 6.0, "rcut1": 4.0, "rcut2": 5.0}


def morse_cluster(n: int = 6, seed: int = 0) -> Atoms:
    """``n`` atoms on a jittered simple-cubic lattice at the Morse minimum distance."""
    rng = np.random.default_rng(seed)
    grid = np.array([(i, j, k) for i in range(2) for j in range(2) for k in range(2)], float)[:n] * MORSE["r0"]
    return Atoms(f"Ar{n}", positions=grid + 0.05 * rng.normal(size=grid.shape))


def labelled(frames: list[Atoms]) -> list[Atoms]:
    """Copies with the Morse energy and forces stored, as frames read from a database."""
    out = []
    for f in frames:
        g = f.copy()
        g.calc = MorsePotential(**MORSE)
        e, forces = g.get_potential_energy(), g.get_forces()
        g.calc = SinglePointCalculator(g, energy=e, forces=forces)
        out.append(g)
    return out


def md_frames(n_frames: int, seed: int, temperature_K: float = 300.0) -> list[Atoms]:
    """Langevin frames of the cluster (ASE's integrator on the Morse calculator, local generator)."""
    from ase import units
    from ase.md.langevin import Langevin

    atoms = morse_cluster(seed=seed)
    atoms.calc = MorsePotential(**MORSE)
    md = Langevin(atoms, 2 * units.fs, temperature_K=temperature_K, friction=0.05, rng=np.random.default_rng(seed))
    frames = []
    for _ in range(n_frames):
        md.run(10)
        frames.append(atoms.copy())
    return labelled(frames)


def train_committee(frames: list[Atoms], *, k: int = 3, epochs: int = 15, seed: int = 0) -> Committee:
    committee = Committee.build(PaiNN, k=k, seed=seed, cutoff=5.0, n_features=8, n_rbf=8, n_interactions=1,
                                dtype=torch.float64)
    fit_potential(committee, frames, trainer=Trainer(epochs=epochs, batch_size=8, lr=5e-3, eval_grad=True,
                                                     dtype=torch.float64, seed=seed))
    return committee


@pytest.fixture(scope="module")
def trained():
    frames = md_frames(24, seed=0)
    return train_committee(frames), frames


def mean_force_std(committee: Committee, frames: list[Atoms]) -> np.ndarray:
    """Mean over atoms of |forces_std| per structure, from the committee's own predict (independent of the loss)."""
    return np.array([float(torch.linalg.norm(committee.predict(f)["forces_std"], dim=1).mean()) for f in frames])


def test_attack_raises_uncertainty_for_every_seed(trained):
    committee, frames = trained
    start = frames[::4]
    before = mean_force_std(committee, start)
    for seed in range(3):
        attacked = attack(committee, start, kT=0.5, steps=30, lr=2e-2, seed=seed)
        assert [a.info["parent"] for a in attacked] == list(range(len(start)))
        after = mean_force_std(committee, attacked)
        assert after.mean() > before.mean(), (seed, before, after)
        assert all(a.info["uncertainty_after"] > a.info["uncertainty_before"] for a in attacked)


def test_info_matches_committee_predict(trained):
    committee, frames = trained
    (a,) = attack(committee, frames[:1], kT=0.5, steps=5, seed=0)
    out = committee.predict(a)
    # The loss's sigma^2 is the population variance over members, mean over atoms and components.
    assert a.info["uncertainty_after"] == pytest.approx(float((out["forces_std"] ** 2).mean()), rel=1e-9)
    assert a.info["energy"] == pytest.approx(float(out["energy"][0]), rel=1e-9)


def test_attack_is_deterministic_and_leaves_global_state(trained):
    committee, frames = trained
    state = torch.random.get_rng_state()
    a = attack(committee, frames[:3], kT=0.5, steps=5, seed=7)
    b = attack(committee, frames[:3], kT=0.5, steps=5, seed=7)
    c = attack(committee, frames[:3], kT=0.5, steps=5, seed=8)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    assert not np.array_equal(a[0].positions, c[0].positions)


def test_batched_structures_do_not_interact(trained):
    committee, frames = trained
    # Different sizes in one batch: each structure's path must be the one it takes alone (Adam is
    # elementwise and the summed loss separates), given the same Z and no random start.
    small = frames[5][:5]
    kwargs = {"kT": 0.5, "steps": 8, "seed": 0, "init_scale": 0.0, "reference": frames}
    together = attack(committee, [frames[3], small], **kwargs)
    alone = attack(committee, [frames[3]], **kwargs) + attack(committee, [small], **kwargs)
    for x, y in zip(together, alone):
        np.testing.assert_allclose(x.positions, y.positions, rtol=0, atol=1e-10)
        assert x.info["uncertainty_after"] == pytest.approx(y.info["uncertainty_after"], rel=1e-9)


def test_random_start_depends_only_on_seed_and_structure(trained):
    committee, frames = trained
    # With Z fixed by reference= the structures are independent, so a structure attacked in a subset,
    # in another order or alone must land where it lands in the full call (the old code drew one
    # normal over all atoms of the call: frames[4]'s start moved when frames[3] was left out).
    kwargs = {"kT": 0.5, "steps": 4, "seed": 3, "init_scale": 0.02, "reference": frames}
    full = attack(committee, frames[3:6], **kwargs)
    subset = attack(committee, [frames[5], frames[4]], **kwargs)
    for x, y in zip(full[1:], subset[::-1]):
        np.testing.assert_allclose(x.positions, y.positions, rtol=0, atol=1e-10)
    # Two copies of one structure in one call still start apart.
    twice = attack(committee, [frames[3], frames[3]], **kwargs)
    assert np.abs(twice[0].positions - twice[1].positions).max() > 1e-3
    np.testing.assert_allclose(twice[0].positions, full[0].positions, rtol=0, atol=1e-10)


def test_default_partition_function_is_each_structures_own(trained):
    committee, frames = trained
    # Without reference= the structures of a call shared one Z (their mean Boltzmann factor), so a
    # structure's log_p and path depended on the others of the call (s12: log_p -0.62 with five
    # others, -0.49 alone). Each structure's Z is now its own start's: the call gives what each gets alone.
    kwargs = {"kT": 0.5, "steps": 4, "seed": 3, "init_scale": 0.02}
    for x in attack(committee, frames[3:6], **kwargs):
        start = frames[3 + x.info["parent"]]
        (y,) = attack(committee, [start], **kwargs)
        np.testing.assert_allclose(x.positions, y.positions, rtol=0, atol=1e-10)
        # log p = -(E - E_start) / kT per atom, E from the committee's own predict
        e_start = float(committee.predict(start)["energy"][0])
        assert x.info["log_p"] == pytest.approx(-(x.info["energy"] - e_start) / len(start) / 0.5, rel=1e-9)
    # Total energies and a small kT: with a shared Z the higher structure's p underflowed to 0 next to the
    # lowest one and it was not attacked at all (kept step 0); alone it moves.
    e = np.array([float(committee.predict(f)["energy"][0]) for f in frames])
    low, high = frames[int(np.argmin(e))], frames[int(np.argmax(e))]
    assert (e.max() - e.min()) / 0.001 > 800  # exp(-800) is 0 in float64
    kwargs = {"kT": 0.001, "steps": 6, "lr": 2e-2, "seed": 3, "energy_scale": "total"}
    (alone,) = attack(committee, [high], **kwargs)
    together = attack(committee, [low, high], **kwargs)[1]
    assert together.info["attack_step"] == alone.info["attack_step"] > 0
    np.testing.assert_allclose(together.positions, alone.positions, rtol=0, atol=1e-10)


def test_energy_variance_option(trained):
    committee, frames = trained
    (a,) = attack(committee, frames[:1], kT=0.5, steps=5, seed=0, uncertainty="energy")
    out = committee.predict(a)
    assert a.info["uncertainty_after"] == pytest.approx(float(out["energy_std"][0] / len(a)) ** 2, rel=1e-9)
    assert a.info["uncertainty_after"] > a.info["uncertainty_before"]


def test_max_displacement_bounds_every_atom(trained):
    committee, frames = trained
    attacked = attack(committee, frames[:2], kT=0.5, steps=20, lr=0.1, max_displacement=0.05, seed=0)
    for a in attacked:
        shift = np.linalg.norm(a.positions - frames[a.info["parent"]].positions, axis=1)
        assert shift.max() <= 0.05 + 1e-9


def test_strain_attack_changes_the_cell_of_a_periodic_structure(trained):
    committee, frames = trained
    from ase.build import bulk

    crystal = bulk("Ar", "fcc", a=MORSE["r0"] * np.sqrt(2), cubic=True)
    (plain,) = attack(committee, [crystal], kT=0.5, steps=10, lr=1e-2, seed=0)
    (strained,) = attack(committee, [crystal], kT=0.5, steps=10, lr=1e-2, seed=0, strain=True)
    np.testing.assert_array_equal(plain.cell[:], crystal.cell[:])
    assert not np.allclose(strained.cell[:], crystal.cell[:])
    # A symmetric strain: the deformation cell0^-1 cell is symmetric.
    deform = np.linalg.solve(crystal.cell[:], strained.cell[:])
    np.testing.assert_allclose(deform, deform.T, atol=1e-12)
    assert strained.info["uncertainty_after"] == pytest.approx(
        float((committee.predict(strained)["forces_std"] ** 2).mean()), rel=1e-9)


def chain(n: int = 6) -> Atoms:
    """A helical Ar chain: neighbours 2.51 Å apart (bonded by ASE's covalent-radius rule, < 2.54 Å),
    all others more than 3.3 Å apart."""
    k = np.arange(n)
    angle = np.radians(100.0) * k
    return Atoms(f"Ar{n}", positions=np.stack([1.5 * np.cos(angle), 1.5 * np.sin(angle), 1.0 * k], 1))


def test_dihedral_attack_rotates_one_side_rigidly(trained):
    committee, _ = trained
    start = chain()
    (a,) = attack(committee, [start], kT=0.5, steps=15, lr=0.05, init_scale=0.05, seed=0, dihedrals=[(0, 1, 2, 3)])
    np.testing.assert_allclose(a.positions[:3], start.positions[:3], atol=1e-12)  # 0, 1 and the axis atom 2
    d0, d1 = start.get_all_distances(), a.get_all_distances()
    np.testing.assert_allclose(d1[2:, 2:], d0[2:, 2:], atol=1e-10)  # the rotated side is rigid
    np.testing.assert_allclose(d1[1, 2:], d0[1, 2:], atol=1e-10)  # so are its distances to the axis atom 1
    assert abs(a.get_dihedral(0, 1, 2, 3) - start.get_dihedral(0, 1, 2, 3)) > 1.0  # degrees
    assert a.info["uncertainty_after"] > a.info["uncertainty_before"]
    with pytest.raises(InputError, match=r"dihedral 0 \(0, 1, 3, 4\): atoms 1 and 3 stay connected"):
        attack(committee, [start], kT=0.5, seed=0, dihedrals=[(0, 1, 3, 4)])
    with pytest.raises(InputError, match="same molecule"):
        attack(committee, [start, chain(5)], kT=0.5, seed=0, dihedrals=[(0, 1, 2, 3)])


def test_partition_function_in_log_space(trained):
    committee, frames = trained
    energies = np.array([-300.0, -299.5, -299.0])  # exp(300 / 0.01) overflows; log-sum-exp does not
    loss = AdversarialLoss(committee, 0.01, reference=energies, energy_scale="total")
    expected = 300.0 / 0.01 + math.log(np.mean(np.exp((energies.min() - energies) / 0.01)))
    assert loss.log_Z == pytest.approx(expected, rel=1e-12)
    assert float(loss.log_probability(torch.tensor(-300.0, dtype=torch.float64))) == pytest.approx(
        -math.log(np.mean(np.exp((-300.0 - energies) / 0.01))), rel=1e-9)


def test_overlapping_result_is_dropped_with_a_warning(trained):
    committee, frames = trained
    with pytest.warns(AttackWarning, match="structure 0 dropped: atoms"):
        out = attack(committee, frames[:1], kT=0.5, steps=2, seed=0, min_distance=100.0)
    assert out == []


def test_diverging_structure_is_dropped_and_the_others_kept(trained):
    committee, frames = trained
    big, small = frames[0], frames[1][:3]
    e_big, e_small = (float(committee.predict(f)["energy"][0]) for f in (big, small))
    # Z from one energy, e_small, and kT so small that the bigger cluster's log p is 1000: exp
    # overflows to an infinite loss for it, while the small one starts at p = 1.
    kT = (e_small - e_big) / 1000.0
    assert kT > 0
    for p in committee.parameters():  # training leaves gradients behind; the attack must add none
        p.grad = None
    with pytest.warns(AttackWarning, match=r"structure 0 dropped: the attack diverged at step 0"):
        out = attack(committee, [big, small], kT=kT, steps=5, seed=0, energy_scale="total", reference=[e_small])
    assert [a.info["parent"] for a in out] == [1]
    assert np.isfinite(out[0].positions).all()
    assert all(p.grad is None for p in committee.parameters())


def test_bad_input(trained):
    committee, frames = trained
    with pytest.raises(InputError, match="at least 2 models"):
        Committee([committee.models[0]])
    with pytest.raises(InputTypeError, match="single model has no spread"):
        attack(committee.models[0], frames[:1], kT=0.5, seed=0)
    for kT in (0.0, -1.0, math.nan):
        with pytest.raises(InputError, match="kT must be"):
            attack(committee, frames[:1], kT=kT, seed=0)
    with pytest.raises(InputError, match=r"element\(s\) \['Cu'\].*seen: \['Ar'\]"):
        attack(committee, [Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]])], kT=0.5, seed=0)
    bad = frames[0].copy()
    bad.positions[2, 1] = np.nan
    with pytest.raises(InputError, match="atom 2 .* non-finite position"):
        attack(committee, [frames[1], bad], kT=0.5, seed=0)
    with pytest.raises(InputError, match="strain=True needs"):
        attack(committee, frames[:1], kT=0.5, seed=0, strain=True)
