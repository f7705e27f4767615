"""Training neural potentials on Lennard-Jones argon from sims, and running NN-potential MD in sims.

Reference data: LJ argon (sigma 3.4 Å, epsilon 0.0104 eV; Rowley, Nicholson & Parsonage,
J. Comput. Phys. 17, 401 (1975)) cut and shifted at 6 Å, sampled by sims' Langevin MD at several
temperatures, one trajectory per temperature, stored in an ASE database.
"""

from __future__ import annotations

from functools import partial

import ase.db
import numpy as np
import pytest
import torch
from ase.build import bulk
from torch.utils.data import Subset

import sims
from learners.errors import InputError
from learners.potentials import (AtomsDataset, Calculator, Committee, PaiNN, PotentialLoss, SchNet,
                                 UncertaintyExceeded, UncertaintyMonitor, collate_atoms, fit_potential,
                                 trajectory_split)
from learners.potentials.training import potential_metrics
from learners.trainer import Trainer

CUTOFF = 6.0
TEMPERATURES = (30.0, 60.0, 90.0, 45.0)


def _lj(dtype=torch.float64):
    return sims.potentials.LennardJones(sigma=3.4, epsilon=0.0104, cutoff=CUTOFF, shift=True, dtype=dtype)


def _argon(seed: int):
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True).repeat(2)  # 32 atoms
    atoms.rattle(0.05, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def lj_db(tmp_path_factory):
    """Four LJ argon trajectories (20 frames each, 50 fs apart) in an ASE database."""
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    path = tmp_path_factory.mktemp("lj") / "argon.db"
    db = ase.db.connect(str(path))
    for k, temperature in enumerate(TEMPERATURES):
        md = sims.MD(_argon(k), _lj(), sims.Langevin(timestep=5.0, temperature=temperature, friction=0.02),
                     temperature=temperature, seed=k, record_every=10, dtype=torch.float64)
        for frame in md.run(200).trajectory:
            db.write(frame, trajectory=k, T_target=temperature)
    return path


@pytest.fixture(scope="module")
def splits(lj_db):
    data = AtomsDataset(lj_db)
    train, val, test = trajectory_split(data, (0.5, 0.25, 0.25), key="trajectory", seed=0)
    return data, Subset(data, train), Subset(data, val), Subset(data, test)


@pytest.fixture(scope="module")
def trained(splits):
    """A tiny PaiNN trained for a few epochs, with its validation metrics before and after."""
    torch.set_num_threads(1)
    data, train, val, _ = splits
    model = PaiNN(cutoff=CUTOFF, n_features=16, n_interactions=2, n_rbf=10, seed=0)
    trainer = Trainer(epochs=6, batch_size=8, lr=5e-3, eval_grad=True, seed=0)
    loss = PotentialLoss(w_energy=1.0, w_forces=1.0)
    collate = partial(collate_atoms, cutoff=CUTOFF, dtype=torch.float64)
    model.fit_shifts(train)
    _, outputs, targets = trainer.run_eval(model, val, loss, collate)
    before = potential_metrics(targets, outputs)
    trainers = fit_potential(model, train, val, trainer=trainer, loss=loss)
    return model, trainers[0], before


def test_dataset_and_split_by_trajectory(splits, lj_db):
    data, train, val, test = splits
    assert len(data) == 80
    groups = np.asarray(data.info("trajectory"))
    sides = [set(groups[s.indices]) for s in (train, val, test)]
    assert sum(len(s) for s in sides) == len(TEMPERATURES) and not (sides[0] & sides[1] or sides[0] & sides[2])
    atoms = data[3]
    assert atoms.info["trajectory"] == groups[3]
    # Stored labels are the LJ potential's own values (ASE database round trip).
    e, f = sims.energy_and_forces(_lj(), atoms, dtype=torch.float64)
    assert atoms.get_potential_energy() == pytest.approx(e, rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), f, atol=1e-12)
    batch = collate_atoms([data[0], data[1]], CUTOFF)
    assert batch.energy.shape == (2,) and batch.forces.shape == (64, 3)
    assert len(AtomsDataset(lj_db, selection="T_target>50")) == 40
    with pytest.raises(InputError, match="no 'seed'"):
        trajectory_split(data, key="seed")
    with pytest.raises(InputError, match="does not exist"):
        AtomsDataset(lj_db.parent / "missing.db")


def test_dataset_from_sims_generate_splits_by_config(tmp_path):
    """Frames written by sims.generate carry config_hash, the default trajectory key."""
    from sims.generate import generate

    paths = []
    for seed in (1, 2, 3):
        cfg = {"seed": seed, "system": {"builder": "bulk", "symbol": "Ar", "crystal": "fcc", "a": 5.4, "rattle": 0.05},
               "potential": {"kind": "lj", "sigma": 3.4, "epsilon": 0.0104, "cutoff": CUTOFF},
               "md": {"dtype": "float64"},
               "stages": [{"ensemble": "langevin", "steps": 8, "timestep": 5.0, "temperature": 50.0,
                           "sample_every": 4}],
               "output": {"path": str(tmp_path / f"run{seed}.extxyz"), "checkpoint_every": 100}}
        paths.append(generate(cfg))
    frames = [a for p in paths for a in AtomsDataset(p)]
    parts = trajectory_split(frames, (0.33, 0.33, 0.34), seed=1)
    hashes = [{frames[i].info["config_hash"] for i in part} for part in parts]
    assert all(len(h) == 1 for h in hashes) and len(set.union(*hashes)) == 3
    with pytest.raises(InputError, match="empty"):
        trajectory_split(frames, (0.5, 0.3, 0.2))


def test_training_lowers_the_loss_clearly(trained, splits):
    model, trainer, before = trained
    history = trainer.history_
    assert len(history) == 6
    assert history[-1]["val_loss"] < 0.3 * history[0]["val_loss"]
    after = {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")}
    # Independent baseline: predicting zero force everywhere (the force MAE of the data itself).
    _, _, val, _ = splits
    zero_mae = np.mean([np.abs(val[k].get_forces()).mean() for k in range(len(val))])
    assert before["forces_mae"] > 0.8 * zero_mae
    assert after["forces_mae"] < 0.4 * zero_mae
    assert after["forces_mae"] < 0.4 * before["forces_mae"]


def test_nn_md_in_sims_conserves_energy_and_monitor(trained):
    """NVE MD driven by the trained model in sims: the total energy stays put."""
    model = trained[0]
    model64 = PaiNN(cutoff=CUTOFF, n_features=16, n_interactions=2, n_rbf=10, dtype=torch.float64)
    model64.load_state_dict(model.state_dict())
    md = sims.MD(_argon(7), model64, sims.VelocityVerlet(timestep=5.0), temperature=60.0, seed=3,
                 dtype=torch.float64, record_every=5)
    totals, potentials = [], []
    for _ in range(40):
        md.run(1)
        totals.append(md.conserved_energy())
        potentials.append(float(md.energy))
    assert np.std(totals) < 0.05 * np.std(potentials)
    assert len(md.trajectory) == 8
    # A committee drives MD too (mean forces) and the monitor writes its spread into the frames.
    other = PaiNN(cutoff=CUTOFF, n_features=16, n_interactions=2, n_rbf=10, dtype=torch.float64, seed=5)
    other.load_state_dict({k: v for k, v in model64.state_dict().items()}, strict=True)
    with torch.no_grad():
        other.readout[-1].weight.mul_(1.5)
    committee = Committee([model64, other])
    monitor = UncertaintyMonitor(committee, threshold=1e-12, every=2)
    md = sims.MD(_argon(8), committee, sims.VelocityVerlet(timestep=5.0), temperature=60.0, seed=3,
                 dtype=torch.float64, record_every=2, callback=monitor)
    md.run(4)
    assert [r[0] for r in monitor.records] == [2, 4] and monitor.flagged == [2, 4]
    frame = md.trajectory[-1]
    calc_atoms = frame.copy()
    calc_atoms.calc = Calculator(committee)
    calc_atoms.get_forces()
    assert frame.info["forces_std_max"] == pytest.approx(
        np.linalg.norm(calc_atoms.calc.results["forces_std"], axis=1).max(), rel=1e-9)
    assert frame.info["uncertain"] is True
    stopper = UncertaintyMonitor(committee, threshold=1e-12, stop=True)
    md = sims.MD(_argon(8), committee, sims.VelocityVerlet(timestep=5.0), temperature=60.0, seed=3,
                 dtype=torch.float64, callback=stopper)
    with pytest.raises(UncertaintyExceeded, match="at step 1"):
        md.run(3)


def test_nan_model_stops_md_with_the_step():
    model = SchNet(cutoff=CUTOFF, n_features=8, n_interactions=1, dtype=torch.float64)

    def poison(md):
        if md.step_count == 3:
            with torch.no_grad():
                model.readout[-1].bias.fill_(float("nan"))

    md = sims.MD(_argon(0), model, sims.VelocityVerlet(timestep=2.0), temperature=30.0, seed=0,
                 dtype=torch.float64, callback=poison, record_every=1)
    with pytest.raises(sims.SimsInputError, match="at step 4"):
        md.run(10)
    assert len(md.trajectory) == 3 and all(np.isfinite(a.get_potential_energy()) for a in md.trajectory)
    with pytest.raises(InputError, match="float32"):
        sims.MD(_argon(0), SchNet(cutoff=CUTOFF, n_features=8, n_interactions=1), sims.VelocityVerlet(timestep=2.0),
                dtype=torch.float64)


def test_loss_and_trainer_errors(splits):
    with pytest.raises(InputError, match="weights"):
        PotentialLoss(w_energy=0.0, w_forces=0.0)
    with pytest.raises(InputError, match="eval_grad"):
        fit_potential(SchNet(cutoff=CUTOFF, n_features=4, n_interactions=1), splits[1], trainer=Trainer(epochs=1))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["painn", "schnet"])
def test_committee_training_held_out_trajectory(splits, kind):
    """A 3-member committee trained longer: held-out-trajectory force MAE well under the force scale."""
    torch.set_num_threads(1)
    _, train, val, test = splits
    cls = PaiNN if kind == "painn" else SchNet
    committee = Committee.build(cls, k=3, cutoff=CUTOFF, n_features=32, n_interactions=3)
    fit_potential(committee, train, val, trainer=Trainer(epochs=40, batch_size=8, lr=3e-3, eval_grad=True))
    frames = [test[k] for k in range(len(test))]
    out = committee.predict(collate_atoms(frames, CUTOFF))
    ref_f = np.concatenate([a.get_forces() for a in frames])
    mae = np.abs(out["forces"].numpy() - ref_f).mean()
    assert mae < 0.15 * np.abs(ref_f).mean()
    assert float(out["forces_std"].mean()) > 0


def test_loss_value_matches_its_definition():
    """w_E MSE(E/atom) + w_F MSE(F) + w_S MSE(stress), recomputed by hand from predict()."""
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for k in range(3):
        atoms = _argon(k).repeat((1, 1, 1 + k % 2))
        e, f, s = sims.energy_and_forces(_lj(), atoms, stress=True, dtype=torch.float64)
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f, stress=s)
        frames.append(atoms)
    model = SchNet(cutoff=CUTOFF, n_features=8, n_interactions=1, dtype=torch.float64)
    batch = collate_atoms(frames, CUTOFF, dtype=torch.float64)
    loss, pred, target = PotentialLoss(w_energy=2.0, w_forces=3.0, w_stress=5.0)(model, batch)
    out = model.predict(frames, stress=True)
    n = torch.tensor([len(a) for a in frames], dtype=torch.float64)
    e_ref = torch.tensor([a.get_potential_energy() for a in frames], dtype=torch.float64)
    f_ref = torch.tensor(np.concatenate([a.get_forces() for a in frames]))
    s_ref = torch.stack([torch.tensor(a.calc.results["stress"]) for a in frames])
    expected = (2.0 * ((out["energy"] - e_ref) / n).pow(2).mean() + 3.0 * (out["forces"] - f_ref).pow(2).mean()
                + 5.0 * (out["stress"] - s_ref).pow(2).mean())
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-10)
    assert set(pred) == set(target) == {"energy_per_atom", "forces", "stress"}
    with pytest.raises(InputError, match="stress"):
        PotentialLoss(w_stress=1.0)(model, collate_atoms([_argon(0)], CUTOFF))


def test_stress_labels_of_sims_frames_in_a_database(tmp_path, lj_db):
    """Stress labels read from ASE databases of sims frames are the frames' 3x3 stresses, ready for
    ``PotentialLoss(w_stress=...)``: frames that sims writes now (Voigt), and rows of older databases whose 3x3
    came back as nine numbers (collated as (B, 9) against the model's (B, 3, 3), which made the loss fail)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = [AtomsDataset(lj_db)[k] for k in (0, 25, 50)]
    old = ase.db.connect(str(tmp_path / "old.db"))
    for frame in frames:
        copy = frame.copy()
        copy.calc = SinglePointCalculator(copy, energy=frame.get_potential_energy(), forces=frame.get_forces(),
                                          stress=frame.get_stress(voigt=False))  # a 3x3, as sims stored it before
        old.write(copy)
    older = [row.toatoms() for row in old.select(sort="id")]
    assert np.shape(older[0].calc.results["stress"]) == (9,)
    expected = np.stack([sims.energy_and_forces(_lj(), f, stress=True, dtype=torch.float64)[2] for f in frames])
    for structures in (frames, older):
        batch = collate_atoms(structures, CUTOFF, dtype=torch.float64)
        np.testing.assert_allclose(batch.stress.numpy(), expected, rtol=0, atol=1e-10)
    model = SchNet(cutoff=CUTOFF, n_features=8, n_interactions=1, dtype=torch.float64)
    loss, pred, target = PotentialLoss(w_stress=1.0)(model, batch)
    assert pred["stress"].shape == target["stress"].shape == (3, 3, 3) and torch.isfinite(loss)


def test_frame_errors_equal_a_direct_comparison(trained, splits):
    """frame_errors against stored labels equals the MAE computed by hand from model.predict."""
    from learners.potentials.training import frame_errors

    model, _, _ = trained
    test = [splits[3][k] for k in range(len(splits[3]))]
    scores = frame_errors(model, test)
    ref_f = np.concatenate([f.get_forces() for f in test])
    pred_f = np.concatenate([model.predict(f)["forces"].numpy() for f in test])
    assert scores["forces_mae"] == pytest.approx(np.mean(np.abs(pred_f - ref_f)), rel=1e-12)
    assert scores["forces_mean_abs"] == pytest.approx(np.mean(np.abs(ref_f)), rel=1e-12)
    ref_e = np.array([f.get_potential_energy() / len(f) for f in test])
    pred_e = np.array([float(model.predict(f)["energy"][0]) / len(f) for f in test])
    assert scores["energy_mae"] == pytest.approx(np.mean(np.abs(pred_e - ref_e)), rel=1e-12)
    assert scores["energy_bias"] == pytest.approx(np.mean(pred_e - ref_e), rel=1e-12)


def test_potential_metrics_by_hand():
    target = {"energy_per_atom": np.array([1.0, 2.0]), "forces": np.zeros((2, 3)), "stress": np.zeros((1, 3, 3))}
    outputs = {"energy_per_atom": np.array([1.5, 1.5]), "forces": np.array([[3.0, 0, 0], [0, 0, -1.0]]),
               "stress": np.full((1, 3, 3), 0.2)}
    scores = potential_metrics(target, outputs)
    assert scores == pytest.approx({"energy_mae": 0.5, "energy_rmse": 0.5, "forces_mae": 4 / 6,
                                    "forces_rmse": np.sqrt(10 / 6), "stress_mae": 0.2, "stress_rmse": 0.2})


@pytest.mark.parametrize("seed", range(5))
def test_batched_molecule_pairs_equal_a_cell_list_per_structure(seed):
    # The one-pass search over same-structure pairs of non-periodic batches against sims' cell list.
    from learners.potentials.batch import DENSE_MAX, batch_pairs
    from sims.neighbors import build_pairs

    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 40, size=rng.integers(1, 6))
    counts[0] = DENSE_MAX if seed == 0 else counts[0]
    positions = torch.as_tensor(rng.uniform(0.0, 8.0, (counts.sum(), 3)))
    batch = torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts))
    cell, pbc = torch.zeros(len(counts), 3, 3, dtype=torch.float64), torch.zeros(len(counts), 3, dtype=torch.bool)
    pairs = batch_pairs(positions, cell, pbc, batch, 2.5)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    expected = set()
    for b, n in enumerate(counts):
        one = build_pairs(positions[offsets[b]:offsets[b] + n], cell[b], pbc[b], 2.5)
        expected |= {(int(i) + offsets[b], int(j) + offsets[b]) for i, j in zip(one.i, one.j)}
    got = list(zip(pairs.i.tolist(), pairs.j.tolist()))
    assert set(got) == expected and len(got) == len(expected)
    assert not pairs.half and float(pairs.shifts.abs().sum()) == 0.0


def test_validation_loss_of_mixed_sizes_does_not_depend_on_the_batch_size():
    """The validation loss was the mean of the batch losses weighted by their structures; the force term
    is a mean over the atoms of a batch, so on frames of 4 and 32 atoms the atoms of small frames weighed
    more in small batches (here 0.0111 at batch size 1 against 0.0084 for the set), and the best epoch and
    early stopping of fit_potential followed batch_size. Reference: the loss's means over all structures
    and all atoms of the set, from single-frame predictions."""
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for k, repeat in enumerate((1, 2, 1, 2, 2)):
        atoms = bulk("Ar", "fcc", a=5.4, cubic=True).repeat(repeat)
        atoms.rattle(0.1, seed=k)
        e, f = sims.energy_and_forces(_lj(), atoms, dtype=torch.float64)
        atoms.calc = SinglePointCalculator(atoms, energy=float(e), forces=np.asarray(f))
        frames.append(atoms)
    model = PaiNN(cutoff=CUTOFF, n_features=8, n_interactions=1, n_rbf=6, seed=0, dtype=torch.float64)
    model.fit_shifts(frames)
    loss = PotentialLoss(w_energy=1.0, w_forces=10.0)
    out = [model.predict(a) for a in frames]
    energy = np.array([(float(o["energy"][0]) - a.get_potential_energy()) / len(a) for o, a in zip(out, frames)])
    forces = np.concatenate([o["forces"].detach().numpy() - a.get_forces() for o, a in zip(out, frames)])
    reference = np.mean(energy ** 2) + 10.0 * np.mean(forces ** 2)
    collate = partial(collate_atoms, cutoff=CUTOFF, dtype=torch.float64)
    for batch_size in (1, 2, 5):
        value, *_ = Trainer(batch_size=batch_size, eval_grad=True).run_eval(model, frames, loss, collate)
        assert value == pytest.approx(reference, rel=1e-10), batch_size


def test_a_resume_over_other_frames_is_refused(tmp_path):
    """fit_potential passed no data key to the trainer: a second fit with resume=True into the same
    run_dir on other frames (energies and forces 5 times larger) resumed the first fit's finished
    checkpoint and returned its weights unchanged. The checkpoint now records a digest of the frames."""
    from ase.calculators.singlepoint import SinglePointCalculator

    def frames(seed, scale):
        out = []
        for k in range(4):
            atoms = bulk("Ar", "fcc", a=5.4, cubic=True)
            atoms.rattle(0.1, seed=seed * 10 + k)
            e, f = sims.energy_and_forces(_lj(), atoms, dtype=torch.float64)
            atoms.calc = SinglePointCalculator(atoms, energy=scale * float(e), forces=scale * np.asarray(f))
            out.append(atoms)
        return out

    def fit(train, weights=None):
        model = PaiNN(cutoff=CUTOFF, n_features=8, n_interactions=1, n_rbf=6, seed=0)
        trainer = Trainer(epochs=1, batch_size=2, lr=5e-3, eval_grad=True, seed=0, run_dir=tmp_path, resume=True)
        fit_potential(model, train, trainer=trainer, weights=weights)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    first = fit(frames(1, 1.0))
    for other in (frames(2, 5.0), frames(1, 5.0)):
        with pytest.raises(InputError, match="other training or validation data"):
            fit(other)
    with pytest.raises(InputError, match="other training or validation data"):
        fit(frames(1, 1.0), weights=[1.0, 2.0, 1.0, 1.0])
    assert torch.equal(fit(frames(1, 1.0)), first)  # the same frames resume the finished run


def test_a_resume_with_another_loss_or_model_setting_is_refused(tmp_path):
    """The trainer's checkpoint recorded neither the loss (the step) nor the model's hyperparameters:
    a second fit into the same run_dir with w_forces 10 instead of 1, or a cutoff of 4.5 Å instead of
    6, resumed the first fit's finished checkpoint and returned its weights as the fit asked for."""
    from ase.calculators.singlepoint import SinglePointCalculator

    train = []
    for k in range(4):
        atoms = bulk("Ar", "fcc", a=5.4, cubic=True)
        atoms.rattle(0.1, seed=k)
        e, f = sims.energy_and_forces(_lj(), atoms, dtype=torch.float64)
        atoms.calc = SinglePointCalculator(atoms, energy=float(e), forces=np.asarray(f))
        train.append(atoms)

    def fit(loss=None, cutoff=CUTOFF):
        model = PaiNN(cutoff=cutoff, n_features=8, n_interactions=1, n_rbf=6, seed=0)
        trainer = Trainer(epochs=1, batch_size=2, lr=5e-3, eval_grad=True, seed=0, run_dir=tmp_path, resume=True)
        fit_potential(model, train, trainer=trainer, loss=loss)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    first = fit()
    with pytest.raises(InputError, match=r"step w_forces 1\.0 \(now 10\.0\)"):
        fit(PotentialLoss(w_forces=10.0))
    with pytest.raises(InputError, match=r"model cutoff 6\.0 \(now 4\.5\)"):
        fit(cutoff=4.5)
    assert torch.equal(fit(PotentialLoss()), first)  # the same settings resume the finished run


@pytest.mark.parametrize("weighted", [False, True])
def test_float32_training_far_from_the_origin_sees_the_forces_it_predicts(weighted):
    """fit_potential builds its batches in float64 and the trainer casts them to the model's dtype: the
    positions of frames 10^4 Å from the origin were rounded by up to 6e-4 Å there, and a float32 model
    was trained and validated on forces up to 5e-3 (relative) off the ones it predicts (predictions centre
    each structure first). The batches are now centred in float64 for a model below float64. Reference: the
    validation force MAE of the same frames at the origin (where rounding costs ~1e-6)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    def frames(shift):
        out = []
        for seed in range(4):
            atoms = _argon(seed)
            atoms.positions += shift
            e, f = sims.energy_and_forces(_lj(), atoms)  # labels: LJ in float64 (translation invariant)
            atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
            out.append(atoms)
        return out

    # A float32 model; and a float64 model that a Trainer(dtype=float32) casts down, whose batches went uncentred
    # (the model's own dtype chose) into the float32 computation.
    for model_dtype, trainer_dtype in ((torch.float32, None), (torch.float64, torch.float32)):
        maes = []
        for shift in ([0.0, 0.0, 0.0], [1e4, -1e4, 5e3]):
            model = PaiNN(cutoff=4.0, n_rbf=8, n_features=8, n_interactions=1, seed=0, dtype=model_dtype)
            data = frames(shift)
            trainer = Trainer(epochs=1, batch_size=2, lr=1e-12, eval_grad=True, dtype=trainer_dtype)
            t, = fit_potential(model, data[:2], data[2:], trainer=trainer, fit_shifts=False,
                               loss=PotentialLoss(w_energy=0.0, w_forces=1.0), weights=[1.0, 2.0] if weighted else None)
            maes.append(t.history_[-1]["val_forces_mae"])
        # (uncentred: 2.8e-5 apart; centred: 8e-11)
        assert maes[1] == pytest.approx(maes[0], rel=1e-6), model_dtype
