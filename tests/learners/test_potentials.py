"""Neural potentials (SchNet, PaiNN, Committee): derivatives, symmetries, periodic images, interfaces.

One contract suite runs over every model. References are independent of our code: ASE's own
finite-difference forces and stress (``Calculator.calculate_numerical_forces/_stress``), exact
symmetry operations, the supercell identity E(n x n x n) = n^3 E, and the members run one by one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.optimize import BFGS
from scipy.spatial.transform import Rotation

import sims
from learners.errors import InputError
from learners.potentials import Calculator, Committee, PaiNN, SchNet, collate_atoms, evaluate
from sims.neighbors import build_pairs

F64 = torch.float64
TINY = {"n_features": 8, "n_interactions": 2}


def _schnet(seed=0, dtype=F64):
    return SchNet(cutoff=4.0, n_rbf=12, seed=seed, dtype=dtype, **TINY)


def _painn(seed=0, dtype=F64):
    return PaiNN(cutoff=4.0, n_rbf=8, seed=seed, dtype=dtype, **TINY)


def _committee(seed=0, dtype=F64):
    return Committee([_painn(seed, dtype), _painn(seed + 1, dtype), _schnet(seed + 2, dtype)])


def _painn_zbl(seed=0, dtype=F64):
    return PaiNN(cutoff=4.0, n_rbf=8, seed=seed, dtype=dtype, repulsion="zbl", **TINY)


MODELS = {"schnet": _schnet, "painn": _painn, "committee": _committee, "painn_zbl": _painn_zbl}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    return MODELS[request.param]()


def _cluster(seed=0, n=6) -> Atoms:
    """A random H/C/O cluster with no two atoms closer than 0.9 Å."""
    rng = np.random.default_rng(seed)
    pos = [rng.uniform(0, 3.0, 3)]
    while len(pos) < n:
        p = rng.uniform(0, 3.0, 3)
        if min(np.linalg.norm(p - q) for q in pos) > 0.9:
            pos.append(p)
    return Atoms(numbers=rng.choice([1, 6, 8], n), positions=pos)


def _crystal() -> Atoms:
    """Rattled rock-salt MgO (8 atoms, cubic cell) with a slight shear, so nothing vanishes by symmetry."""
    atoms = bulk("MgO", "rocksalt", a=4.2, cubic=True)
    atoms.set_cell(atoms.cell[:] + np.array([[0, 0.1, 0], [0, 0, 0.15], [0.05, 0, 0]]), scale_atoms=True)
    atoms.rattle(0.1, seed=1)
    return atoms


def _predict(model, atoms, stress=False):
    out = model.predict(atoms, stress=stress)
    return {k: v.numpy() for k, v in out.items()}


def test_forces_and_stress_equal_ase_finite_differences(model):
    atoms = _cluster()
    atoms.calc = Calculator(model)
    np.testing.assert_allclose(atoms.get_forces(), atoms.calc.calculate_numerical_forces(atoms, d=1e-5),
                               atol=1e-7, rtol=1e-6)
    crystal = _crystal()
    crystal.calc = Calculator(model)
    np.testing.assert_allclose(crystal.get_forces(), crystal.calc.calculate_numerical_forces(crystal, d=1e-5),
                               atol=1e-7, rtol=1e-6)
    np.testing.assert_allclose(crystal.get_stress(), crystal.calc.calculate_numerical_stress(crystal, d=1e-6),
                               atol=1e-7, rtol=1e-5)


def test_rotation_translation_permutation(model):
    atoms = _cluster(seed=3, n=7)
    ref = _predict(model, atoms)
    rot = Rotation.random(random_state=5).as_matrix()
    moved = atoms.copy()
    moved.positions = atoms.positions @ rot.T + np.array([1.5, -7.0, 3.2])
    out = _predict(model, moved)
    np.testing.assert_allclose(out["energy"], ref["energy"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["forces"], ref["forces"] @ rot.T, atol=1e-10)
    perm = np.random.default_rng(2).permutation(len(atoms))
    out = _predict(model, atoms[perm])
    np.testing.assert_allclose(out["energy"], ref["energy"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["forces"], ref["forces"][perm], atol=1e-10)


def test_periodic_crystal_rotation_and_supercell(model):
    crystal = _crystal()
    ref = _predict(model, crystal, stress=True)
    # A rigid rotation of cell and atoms: same energy, rotated forces and stress.
    rot = Rotation.random(random_state=7).as_matrix()
    turned = crystal.copy()
    turned.set_cell(crystal.cell[:] @ rot.T, scale_atoms=True)
    out = _predict(model, turned, stress=True)
    np.testing.assert_allclose(out["energy"], ref["energy"], rtol=1e-10)
    np.testing.assert_allclose(out["forces"], ref["forces"] @ rot.T, atol=1e-10)
    np.testing.assert_allclose(out["stress"][0], rot @ ref["stress"][0] @ rot.T, atol=1e-10)
    # Periodic images: a supercell has the same environments, so n times the energy, tiled forces, same stress.
    for reps in ((2, 1, 1), (2, 2, 1)):
        sup = _predict(model, crystal.repeat(reps), stress=True)
        n = int(np.prod(reps))
        np.testing.assert_allclose(sup["energy"], n * ref["energy"], rtol=1e-10)
        np.testing.assert_allclose(sup["forces"], np.tile(ref["forces"], (n, 1)), atol=1e-10)
        np.testing.assert_allclose(sup["stress"], ref["stress"], atol=1e-10)


def test_batch_equals_structures_one_by_one(model):
    structures = [_cluster(seed=1, n=4), _crystal(), _cluster(seed=2, n=5)]
    batch = collate_atoms(structures, model.cutoff, dtype=F64)
    together = model.predict(batch)
    start = 0
    for b, atoms in enumerate(structures):
        alone = model.predict(atoms)
        assert torch.allclose(together["energy"][b], alone["energy"][0], rtol=1e-12, atol=1e-12)
        assert torch.allclose(together["forces"][start:start + len(atoms)], alone["forces"], atol=1e-12)
        start += len(atoms)


def test_sims_interface_with_half_list_and_skin(model):
    """As a sims potential (half list built with a skin): same energy and forces as the calculator."""
    crystal = _crystal()
    crystal.calc = Calculator(model)
    e, f = sims.energy_and_forces(model, crystal, dtype=F64)
    assert e == pytest.approx(crystal.get_potential_energy(), rel=1e-12)
    np.testing.assert_allclose(f, crystal.get_forces(), atol=1e-12)
    pos = torch.tensor(crystal.positions, dtype=F64)
    cell = torch.tensor(crystal.cell[:], dtype=F64)
    pairs = build_pairs(pos, cell, torch.tensor([True] * 3), model.cutoff + 1.5, half=True)
    energy = model(pos, cell, torch.tensor(crystal.numbers), pairs)
    assert energy.dim() == 0
    assert float(energy.detach()) == pytest.approx(crystal.get_potential_energy(), rel=1e-12)


def test_committee_mean_and_std_equal_looping_the_members():
    committee = _committee()
    structures = [_crystal(), _cluster()]
    out = committee.predict(structures, stress=False)
    members = [m.predict(structures) for m in committee.models]
    energies = torch.stack([m["energy"] for m in members])
    forces = torch.stack([m["forces"] for m in members])
    assert torch.allclose(out["energy"], energies.mean(0), atol=1e-12)
    assert torch.allclose(out["energy_std"], torch.sqrt(((energies - energies.mean(0)) ** 2).mean(0)), atol=1e-12)
    assert torch.allclose(out["forces"], forces.mean(0), atol=1e-12)
    assert torch.allclose(out["forces_std"], forces.std(0, unbiased=False), atol=1e-12)
    assert (out["forces_std"] > 0).any() and (out["energy_std"] > 0).all()
    # Identical members: zero spread.
    same = Committee([_painn(seed=4), _painn(seed=4)]).predict(structures)
    assert float(same["energy_std"].abs().max()) == 0.0 and float(same["forces_std"].abs().max()) == 0.0
    assert len(Committee.build(PaiNN, cutoff=3.0, n_features=4, n_interactions=1)) == 5


def test_committees_of_adjacent_seeds_share_no_member():
    # Replicates seeded 0 and 1 must start from independent members; with member m seeded
    # seed + m they shared k - 1 of k (the same weights, shifted by one place).
    def start(seed):
        committee = Committee.build(PaiNN, k=3, seed=seed, cutoff=3.0, n_features=4, n_interactions=1)
        return [torch.cat([p.detach().flatten() for p in m.parameters()]) for m in committee.models]
    a, b = start(0), start(1)
    assert not any(torch.equal(x, y) for x in a for y in b)
    assert all(torch.equal(x, y) for x, y in zip(a, start(0)))
    with pytest.raises(InputError, match="non-negative int"):
        Committee.build(PaiNN, k=2, seed=-1, cutoff=3.0)


def test_ase_calculator_results_and_optimiser():
    committee = _committee()
    atoms = _crystal()
    atoms.calc = Calculator(committee)
    ref = committee.predict(atoms, stress=True)
    assert atoms.get_potential_energy() == pytest.approx(float(ref["energy"][0]), rel=1e-12)
    assert atoms.calc.results["energy_std"] == pytest.approx(float(ref["energy_std"][0]), rel=1e-12)
    np.testing.assert_allclose(atoms.calc.results["forces_std"], ref["forces_std"].numpy())
    from ase.constraints import full_3x3_to_voigt_6_stress

    np.testing.assert_allclose(atoms.get_stress(), full_3x3_to_voigt_6_stress(ref["stress"][0].numpy()))
    # ASE's own optimiser drives the model down in energy.
    mol = _cluster(seed=4, n=5)
    mol.calc = Calculator(_painn())
    e0 = mol.get_potential_energy()
    BFGS(mol, logfile=None).run(fmax=1e-3, steps=30)
    assert mol.get_potential_energy() < e0
    assert np.abs(mol.get_forces()).max() < np.abs(Calculator(_painn()).get_forces(_cluster(seed=4, n=5))).max()
    with pytest.raises(Exception, match="periodic"):
        mol.get_stress()


def test_isolated_atoms_have_no_neighbours(model):
    """An empty neighbour list is valid: the energy is the sum of atomic terms, forces are zero."""
    atoms = Atoms("HO", positions=[[0, 0, 0], [10.0, 0, 0]])
    out = _predict(model, atoms)
    assert np.isfinite(out["energy"]).all()
    assert np.abs(out["forces"]).max() == 0.0
    single = _predict(model, Atoms("H"))["energy"] + _predict(model, Atoms("O"))["energy"]
    np.testing.assert_allclose(out["energy"], single, rtol=1e-12)


def test_element_shifts_and_unseen_elements():
    model = _painn()
    rng = np.random.default_rng(0)
    mu = {1: -13.6, 8: -430.0, 6: -1000.0}
    frames = []
    for k in range(8):
        n = int(rng.integers(2, 6))
        atoms = Atoms(numbers=rng.choice([1, 6, 8], n), positions=rng.uniform(0, 5, (n, 3)))
        atoms.calc = SinglePointCalculator(atoms, energy=sum(mu[z] for z in atoms.numbers),
                                           forces=np.full((n, 3), 0.3))
        frames.append(atoms)
    silent = _painn()
    with torch.no_grad():       # a network whose output is 0 everywhere: the shifts alone are the energies
        silent.readout[-1].weight.zero_()
        silent.readout[-1].bias.zero_()
    silent.fit_shifts(frames)
    # Energies that are exactly additive are recovered exactly by the least-squares shifts.
    for z, value in mu.items():
        assert float(silent.atom_energy[z]) == pytest.approx(value, rel=1e-10)
    assert float(silent.energy_scale) == pytest.approx(0.3)
    model.fit_shifts(frames)
    assert float(model.energy_scale) == pytest.approx(0.3)
    with pytest.raises(InputError, match=r"\['N'\] were not in the training data"):
        model.predict(molecule("NH3"))
    with pytest.raises(InputError, match="cutoff"):
        PaiNN(cutoff=-1.0)
    with pytest.raises(InputError, match="at least 2"):
        Committee([_painn()])
    with pytest.raises(InputError, match="cutoff"):
        Committee([_painn(), SchNet(cutoff=3.0, **TINY)])


@pytest.mark.parametrize("make", [_painn, _schnet])
def test_fitted_shifts_leave_no_mean_energy_error_under_the_untrained_network(make):
    # Before, the shifts were fitted to the reference energies alone, so an untrained network's own
    # mean output stayed in every prediction (on CHGNet Li10GeP2S12 -77 and -186 meV/atom for two
    # PaiNN seeds, the error of a committee's member after training). With the network's output
    # subtracted, the residuals satisfy the least-squares normal equations: no mean error per
    # element count, here two compositions of water clusters with energies not additive.
    rng = np.random.default_rng(1)
    frames = []
    for k in range(10):
        atoms = molecule("H2O") if k % 2 else Atoms("H2O2", positions=molecule("H2O2").positions)
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        energy = -14.0 * len(atoms) + 0.5 * rng.normal()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=rng.normal(0, 1.0, (len(atoms), 3)))
        frames.append(atoms)
    model = make().fit_shifts(frames)
    predicted = np.array([float(model.predict(f)["energy"][0]) for f in frames])
    residual = predicted - np.array([f.get_potential_energy() for f in frames])
    counts = np.array([[np.sum(f.numbers == z) for z in (1, 8)] for f in frames], dtype=float)
    np.testing.assert_allclose(counts.T @ residual, 0.0, atol=1e-9)
    # Forces are the network's alone: the shifts do not move them.
    untouched = make()
    np.testing.assert_allclose(model.predict(frames[0])["forces"], untouched.predict(frames[0])["forces"] *
                               float(model.energy_scale), rtol=1e-10, atol=1e-12)


def test_fitted_shifts_over_several_chunks_match_a_direct_least_squares_fit():
    # fit_shifts runs the network on chunks of 32 structures: 70 structures of mixed sizes and
    # compositions span three chunks. Reference: the network's summed outputs O_s read one structure
    # at a time from an unfitted copy (shift 0, scale 1: its energy is O_s), then numpy's lstsq of
    # E_s - scale O_s on the element counts. A second call changes nothing (the outputs O_s do not
    # depend on the shifts).
    rng = np.random.default_rng(2)
    frames = []
    for k in range(70):
        n = int(rng.integers(2, 7))
        atoms = Atoms(numbers=rng.choice([1, 6, 8], n), positions=rng.uniform(0, 4, (n, 3)))
        atoms.calc = SinglePointCalculator(atoms, energy=-5.0 * n + rng.normal(), forces=rng.normal(0, 0.7, (n, 3)))
        frames.append(atoms)
    unfitted = _painn(seed=2)
    outputs = np.array([float(unfitted.predict(f, forces=False)["energy"][0]) for f in frames])
    model = _painn(seed=2).fit_shifts(frames)
    scale = np.sqrt(np.mean(np.concatenate([f.get_forces().ravel() for f in frames]) ** 2))
    counts = np.array([[np.sum(f.numbers == z) for z in (1, 6, 8)] for f in frames], dtype=float)
    energies = np.array([f.get_potential_energy() for f in frames])
    mu = np.linalg.lstsq(counts, energies - scale * outputs, rcond=None)[0]
    assert float(model.energy_scale) == pytest.approx(scale, rel=1e-12)
    np.testing.assert_allclose(model.atom_energy[[1, 6, 8]].numpy(), mu, rtol=1e-10)
    before = (model.atom_energy.clone(), model.energy_scale.clone())
    model.fit_shifts(iter(frames))
    assert torch.equal(model.atom_energy, before[0]) and torch.equal(model.energy_scale, before[1])


def test_spread_threshold_holds_its_quantile_on_larger_structures():
    # Reference: the empirical fraction of 4-block structures (4 independent held-out-like clusters
    # 20 Å apart, beyond the cutoff, so each block's spreads are its own) whose largest spread stays
    # under the threshold calibrated for their size on other clusters of one block.
    committee = Committee([_painn(0), _painn(1)])
    rng = np.random.default_rng(0)

    def cluster():
        return Atoms("H2O", positions=molecule("H2O").positions + rng.normal(0, 0.15, (3, 3)))

    held_out = [cluster() for _ in range(400)]
    blocks = [[cluster() for _ in range(4)] for _ in range(300)]
    joined = [Atoms("H2OH2OH2OH2O",
                    positions=np.concatenate([b.positions + [20.0 * k, 0, 0] for k, b in enumerate(bs)]))
              for bs in blocks]
    largest = committee.largest_force_spread(held_out)
    manual = [float(torch.linalg.norm(committee.predict(a)["forces_std"], dim=1).max()) for a in held_out[:3]]
    np.testing.assert_allclose(largest[:3], manual, rtol=1e-12)
    assert committee.spread_threshold(held_out, quantile=0.8) == pytest.approx(np.quantile(largest, 0.8), rel=1e-12)
    threshold = committee.spread_threshold(held_out, quantile=0.8, n_atoms=12)
    under = np.mean(committee.largest_force_spread(joined) <= threshold)
    assert under == pytest.approx(0.8, abs=0.07)        # binomial sd of 300 draws: 0.023
    # The threshold of the single block applied to the joined structures flags far more than 20 %.
    assert np.mean(committee.largest_force_spread(joined) <= np.quantile(largest, 0.8)) < 0.55
    for kwargs, message in (({"quantile": 1.0}, r"quantile must lie in \(0, 1\)"),
                            ({"n_atoms": 0}, "n_atoms must be a positive int")):
        with pytest.raises(InputError, match=message):
            committee.spread_threshold(held_out, **kwargs)
    with pytest.raises(InputError, match="one size"):
        committee.spread_threshold([held_out[0], joined[0]])


def test_defaults_device_and_dtype():
    model = PaiNN(cutoff=5.0)
    assert model.hparams == {"cutoff": 5.0, "n_features": 128, "n_rbf": 20, "n_interactions": 5}
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
    out = model.predict(molecule("H2O"))
    assert out["energy"].dtype == torch.float32 and out["forces"].shape == (3, 3)
    assert PaiNN(cutoff=5.0, seed=1).state_dict()["embedding.weight"].ne(model.state_dict()["embedding.weight"]).any()
    m64 = SchNet(cutoff=5.0, dtype=torch.float64, device="cpu")
    assert m64.predict(molecule("H2O"))["forces"].dtype == torch.float64
    # float32 and float64 copies of the same weights agree to float32 precision.
    m32 = SchNet(cutoff=5.0)
    assert torch.allclose(m32.predict(molecule("H2O"))["energy"].double(), m64.predict(molecule("H2O"))["energy"],
                          rtol=1e-5)


def test_evaluate_members_on_one_batch():
    committee = _committee()
    batch = collate_atoms([_crystal()], committee.cutoff, dtype=F64)
    out = evaluate(list(committee.models), batch, stress=True)
    assert out["energy"].shape == (3, 1) and out["forces"].shape == (3, 8, 3) and out["stress"].shape == (3, 1, 3, 3)
    alone = committee.models[1].predict(batch, stress=True)
    assert torch.allclose(out["stress"][1], alone["stress"], atol=1e-12)


def test_save_and_load_round_trip(tmp_path):
    from learners.potentials import load_potential, save_potential

    committee = _committee()
    committee.models[0].atom_energy[8] = -5.0
    save_potential(committee, tmp_path / "c.pt")
    loaded = load_potential(tmp_path / "c.pt", dtype=F64)
    assert isinstance(loaded, Committee) and [type(m) for m in loaded.models] == [PaiNN, PaiNN, SchNet]
    a, b = committee.predict(_crystal()), loaded.predict(_crystal())
    assert torch.equal(a["energy"], b["energy"]) and torch.equal(a["forces_std"], b["forces_std"])
    save_potential(committee.models[2], tmp_path / "s.pt")
    # no dtype named: the saved precision is kept (float64 here; it loaded as float32 before s12)
    single = load_potential(tmp_path / "s.pt")
    assert isinstance(single, SchNet) and single.atom_energy.dtype == F64
    assert all(p.dtype == F64 for p in load_potential(tmp_path / "c.pt").parameters())
    assert torch.equal(single.predict(_crystal())["energy"], committee.models[2].predict(_crystal())["energy"])
    assert load_potential(tmp_path / "s.pt", dtype=torch.float32).atom_energy.dtype == torch.float32
    with pytest.raises(InputError, match="no potential file"):
        load_potential(tmp_path / "missing.pt")
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a matrep potential"):
        load_potential(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a matrep potential file"):
        load_potential(tmp_path / "junk.pt")


def test_each_model_file_reader_names_the_reader_of_another_kind_of_file(tmp_path):
    """A pair-potential file given to the NN reader, or the reverse, is refused with the reader to use."""
    from learners.potentials import load_potential, save_potential
    from sims.potentials import LennardJones
    from sims.potentials import load_potential as load_pair
    from sims.potentials import save_potential as save_pair

    save_pair(LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5), tmp_path / "lj.pt")
    with pytest.raises(InputError, match=r"pair potential: read it with sims.potentials.load_potential \(kind = \"file\""):
        load_potential(tmp_path / "lj.pt")
    save_potential(_committee(), tmp_path / "nn.pt")
    with pytest.raises(sims.SimsInputError, match=r"read it with learners.potentials.load_potential \(kind = \"nn\""):
        load_pair(tmp_path / "nn.pt")


def test_one_precision_per_computation():
    """A learned potential computes in its own dtype: asked for it, outputs carry it; asked for
    another, a clear error (never float64 positions through float32 weights)."""
    water = molecule("H2O")
    m64 = PaiNN(cutoff=4.0, n_features=8, n_interactions=1, dtype=torch.float64)
    m32 = PaiNN(cutoff=4.0, n_features=8, n_interactions=1)
    state = sims.State.from_atoms(water, dtype=torch.float64)
    pairs = build_pairs(state.positions, state.cell, state.pbc, 4.0, half=True)
    energy, forces, _ = sims.compute(m64, state.positions, state.cell, state.numbers, pairs)
    assert energy.dtype == forces.dtype == torch.float64
    e_default, _ = sims.energy_and_forces(m64, water)  # no dtype named: the model's
    assert e_default == pytest.approx(float(energy), rel=1e-12)
    water.calc = Calculator(m64)
    assert water.get_potential_energy() == pytest.approx(float(energy), rel=1e-12)
    with pytest.raises(InputError, match="float64 but the model is torch.float32"):
        sims.energy_and_forces(m32, molecule("H2O"), dtype=torch.float64)
    with pytest.raises(InputError, match="share one dtype"):
        Committee([m32, m64])


def test_nn_potential_config_refuses_unknown_keys_with_a_suggestion(tmp_path):
    from learners.potentials.store import potential_from_config
    from reprs.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown key 'pth' in potential; did you mean 'path'"):
        potential_from_config({"pth": "model.pt"}, base=tmp_path)


def test_float32_models_far_from_the_origin_are_as_precise_as_at_it():
    """collate_atoms cast the positions to float32 as given: 10^4 Å from the origin they are rounded by up
    to 6e-4 Å and a float32 PaiNN's forces were 2.4e-3 (relative) from float64's. Each structure is now
    moved about its centroid in float64 first (the models are translation invariant). Reference: the
    same weights in float64 at the origin."""
    import copy

    model = PaiNN(cutoff=4.0, n_rbf=8, seed=0, dtype=torch.float32, **TINY)
    exact = copy.deepcopy(model).to(F64)
    atoms = _crystal()
    ref = _predict(exact, atoms, stress=True)
    for shift in ([0.0, 0.0, 0.0], [1e4, -1e4, 5e3]):
        moved = atoms.copy()
        moved.positions += shift
        out = _predict(model, moved, stress=True)
        scale = np.abs(ref["forces"]).max()
        assert np.abs(out["forces"] - ref["forces"]).max() < 1e-5 * scale, shift
        assert abs(out["energy"][0] - ref["energy"][0]) < 1e-6 * abs(ref["energy"][0]) + 1e-6, shift
        assert np.abs(out["stress"] - ref["stress"]).max() < 1e-5 * np.abs(ref["stress"]).max(), shift
    # the labels of the structures stay (the centred copy has no calculator)
    from ase.calculators.singlepoint import SinglePointCalculator

    moved.calc = SinglePointCalculator(moved, energy=1.5, forces=np.ones((len(moved), 3)))
    labelled = collate_atoms([moved], 4.0)
    assert float(labelled.energy[0]) == 1.5 and float(labelled.forces.sum()) == 3 * len(moved)
    # the batch of an attack keeps the positions it was given
    assert np.array_equal(collate_atoms([moved], 4.0, labels=False, centre=False).positions.numpy(),
                          moved.positions.astype(np.float32))
