"""The active-learning loop on a classical ground truth (ASE's Morse potential) for an 8-atom cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase.calculators.morse import MorsePotential

from learners.active import ActiveLearning
from learners.errors import InputError, InputTypeError
from learners.potentials import Committee, PaiNN, PotentialLoss
from learners.trainer import Trainer
from reprs.fileio import read_frames
from sims.potentials import CalculatorPotential
from tests.learners.test_adversarial import MORSE, md_frames


def factory(seed: int, n_features: int = 8, n_interactions: int = 1) -> Committee:
    return Committee.build(PaiNN, k=3, seed=seed, cutoff=5.0, n_features=n_features, n_rbf=8,
                           n_interactions=n_interactions, dtype=torch.float64)


def accurate_factory(seed: int) -> Committee:
    # 16 features and 2 interactions reach a force MAE of ~0.07 eV/Å (mean |F| ~0.4) on the hot
    # test frames; the 8-feature, 1-interaction default (~0.2 eV/Å) is too weak to show data helping.
    return factory(seed, n_features=16, n_interactions=2)


@pytest.fixture(scope="module")
def data():
    # Training frames from one 300 K trajectory; held-out test geometries from a hotter one.
    return md_frames(12, seed=0), md_frames(8, seed=3, temperature_K=1200.0)


class FlakyMorse(MorsePotential):
    """A ground truth that fails on every third geometry, as an SCF that does not converge."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("SCF did not converge")
        super().calculate(atoms, properties, system_changes)


ATTACK = dict(kT=0.05, attack_steps=20, attack_lr=2e-2)  # the adversarial sampler's settings


def loop(data, workdir, *, labeler=None, generations=2, sampler="adversarial", accurate=False):
    train, test = data
    return ActiveLearning(accurate_factory if accurate else factory, labeler or CalculatorPotential(MorsePotential(**MORSE)),
                          train, test, generations=generations, per_generation=6, sampler=sampler, seed=0,
                          workdir=workdir, **(ATTACK if sampler == "adversarial" else {}),
                          trainer=Trainer(epochs=40 if accurate else 12, batch_size=8, lr=5e-3, eval_grad=True,
                                          dtype=torch.float64, seed=0))


def test_loop_labels_with_provenance_and_does_not_get_worse(data, tmp_path):
    al = loop(data, tmp_path, accurate=True).run()
    log = al.log_
    assert [e["generation"] for e in log] == [0, 1, 2]
    assert [e["labels_used"] for e in log] == [0, 6, 12]
    # Each generation retrains from new initialisations, whose scatter at this size is larger than
    # what 6 labels change: over loop seeds 0-3 the generation-2 / generation-0 force MAE ratio was
    # 1.25, 1.25, 0.97, 1.19 (0.83, 0.55, 0.91, 1.42 before the shifts were fitted under the network's
    # output), energy MAE 5.4 -> 9.9 -> 8.9 meV/atom for seed 0. One run cannot show an improvement;
    # it checks that the loop does not degrade the committee beyond that scatter.
    assert log[-1]["forces_mae"] <= 1.5 * log[0]["forces_mae"], [e["forces_mae"] for e in log]
    assert log[-1]["energy_mae"] <= 2.0 * log[0]["energy_mae"], [e["energy_mae"] for e in log]
    labels = read_frames(tmp_path / "labels.db")
    assert [f.info["generation"] for f in labels] == [0] * 6 + [1] * 6
    assert all(f.info["sampler"] == "adversarial" and 0 <= f.info["parent"] < 12 + 6 for f in labels)
    # Selection: at or above the generation's uncertainty percentile, and no near-copies (min_rmsd).
    assert all(f.info["uncertainty"] >= log[f.info["generation"]]["threshold"] for f in labels)
    positions = np.stack([f.positions for f in data[0] + labels])
    rmsd = np.sqrt(((positions[:, None] - positions[None]) ** 2).sum(-1).mean(-1))
    assert (rmsd[12:][:, np.r_[0:12]] >= al.min_rmsd).all()
    assert (rmsd[12:, 12:] + np.eye(len(labels)) >= al.min_rmsd).all()
    # The stored labels are the ground truth's, recomputed independently.
    for f in labels[:3]:
        ref = f.copy()
        ref.calc = MorsePotential(**MORSE)
        np.testing.assert_allclose(f.get_forces(), ref.get_forces(), rtol=1e-10, atol=1e-12)
    saved = json.loads((tmp_path / "log.json").read_text())
    assert len(saved["generations"]) == 3 and saved["settings"]["sampler"] == "adversarial"


def test_resume_after_a_crash_gives_the_same_run(data, tmp_path):
    full = loop(data, tmp_path / "full", generations=2, sampler="random").run()
    part = tmp_path / "part"
    loop(data, part, generations=1, sampler="random").run()
    # A crash after labels of generation 1 were written but before its log entry: rows beyond the log go.
    saved = json.loads((part / "log.json").read_text())
    saved["generations"] = saved["generations"][:1]
    (part / "log.json").write_text(json.dumps(saved))
    resumed = loop(data, part, generations=2, sampler="random").run()
    assert [e["labels_used"] for e in resumed.log_] == [0, 6, 12]
    a, b = read_frames(tmp_path / "full" / "labels.db"), read_frames(part / "labels.db")
    assert len(a) == len(b) == 12
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    assert resumed.log_[-1]["forces_mae"] == pytest.approx(full.log_[-1]["forces_mae"], rel=1e-9)
    with pytest.raises(InputError, match="other settings .*sampler"):
        loop(data, part, generations=2, sampler="md").run()
    train, test = data  # other frames of the same count: resumed as one run before
    with pytest.raises(InputError, match=r"other settings \(frames_sha256 differ\)"):
        loop(([test[0], *train[1:]], test), part, generations=2, sampler="random").run()
    # the same frames with a stress label (trained on when loss.w_stress > 0): one digest before
    from ase.calculators.singlepoint import SinglePointCalculator

    stressed = []
    for f in train:
        g = f.copy()
        g.calc = SinglePointCalculator(g, energy=f.get_potential_energy(), forces=f.get_forces(),
                                       stress=np.array([1e-3, 1e-3, 1e-3, 0.0, 0.0, 0.0]))
        stressed.append(g)
    with pytest.raises(InputError, match=r"other settings \(frames_stress_pbc_sha256 differ\)"):
        loop((stressed, test), part, generations=2, sampler="random").run()


def test_resume_without_the_logged_labels_is_refused(data, tmp_path):
    # labels.db deleted (or replaced) with log.json kept: the resume cut "back" to the logged mark, read
    # no labels and trained the next generations on the initial frames alone (measured: n_train 12,
    # labels_used 0 where the log's generation 0 had labelled 6).
    loop(data, tmp_path, generations=1, sampler="random").run()
    (tmp_path / "labels.db").unlink()
    with pytest.raises(InputError, match="fewer labels than"):
        loop(data, tmp_path, generations=2, sampler="random").run()


def test_fewer_generations_than_the_workdir_holds_are_refused(data, tmp_path):
    # Before, run() with generations=0 on a workdir of one labelled generation returned that run's log of
    # two entries and its last committee (trained on the labels) as if generation 0 alone had been asked.
    done = loop(data, tmp_path, generations=1, sampler="random").run()
    saved = (tmp_path / "log.json").read_text()
    with pytest.raises(InputError, match=r"labelled 1 generation\(s\), more than generations = 0; ask for "
                                         r"generations >= 1"):
        loop(data, tmp_path, generations=0, sampler="random").run()
    assert (tmp_path / "log.json").read_text() == saved and len(read_frames(tmp_path / "labels.db")) == 6
    again = loop(data, tmp_path, generations=1, sampler="random").run()
    assert again.log_ == done.log_


def test_resume_with_other_trainer_or_loss_settings_is_refused(data, tmp_path):
    # Before, settings() left the trainer and the loss out: a workdir resumed through the Python API
    # with another learning rate, epoch count or loss weights trained its new generations differently
    # and returned one log for two runs.
    train, test = data
    loop(data, tmp_path, generations=1, sampler="random").run()
    saved = json.loads((tmp_path / "log.json").read_text())["settings"]
    assert saved["trainer"]["lr"] == 5e-3 and saved["trainer"]["epochs"] == 12 and saved["fine_tune_trainer"] is None
    assert saved["loss"] == {"w_energy": 1.0, "w_forces": 1.0, "w_stress": 0.0}     # PotentialLoss()'s defaults

    def resumed(**kwargs):
        options = dict(generations=2, per_generation=6, sampler="random", seed=0, workdir=tmp_path)
        trainer = Trainer(epochs=12, batch_size=8, lr=5e-3, eval_grad=True, dtype=torch.float64, seed=0)
        return ActiveLearning(factory, CalculatorPotential(MorsePotential(**MORSE)), train, test,
                              **{**options, "trainer": trainer, **kwargs})

    other_lr = Trainer(epochs=12, batch_size=8, lr=1e-3, eval_grad=True, dtype=torch.float64, seed=0)
    with pytest.raises(InputError, match=r"other settings \(trainer differ\)"):
        resumed(trainer=other_lr).run()
    with pytest.raises(InputError, match=r"other settings \(loss differ\)"):
        resumed(loss=PotentialLoss(w_energy=1.0, w_forces=10.0)).run()
    with pytest.raises(InputError, match=r"other settings \(fine_tune, fine_tune_trainer differ\)"):
        resumed(fine_tune=other_lr).run()
    with pytest.raises(InputTypeError, match="loss must be a learners.potentials.PotentialLoss"):
        resumed(loss={"w_forces": 10.0})
    # The loss given explicitly with the default weights is the run it was.
    assert len(resumed(loss=PotentialLoss()).run().log_) == 3


def test_failing_labeler_is_logged_and_the_loop_goes_on(data, tmp_path, capsys):
    al = loop(data, tmp_path, labeler=FlakyMorse(**MORSE), generations=1, sampler="md").run(progress=True)
    assert "generations" in capsys.readouterr().err  # the progress bar, on stderr
    failed = al.log_[0]["failed"]
    assert len(failed) == 2 and all("SCF did not converge" in f["error"] for f in failed)
    assert len(read_frames(tmp_path / "labels.db")) == al.log_[0]["selected"] - 2 == 4


def test_bad_input(data, tmp_path):
    train, test = data
    with pytest.raises(InputError, match="unknown sampler 'mdd'"):
        ActiveLearning(factory, MorsePotential(), train, test, generations=1, per_generation=2, sampler="mdd",
                       seed=0, workdir=tmp_path)
    with pytest.raises(InputError, match="kT must be"):
        ActiveLearning(factory, MorsePotential(), train, test, generations=1, per_generation=2, seed=0,
                       workdir=tmp_path, kT=0.0)
    # another sampler's settings were accepted and never read; refused as matrep active configs refuse
    # them (fails on the old code, checked); a sampler's own settings, defaults included, are accepted
    for sampler, other in (("random", dict(attack_steps=500)), ("random", dict(kT=5.0)), ("adversarial",
                           dict(temperature=5000.0)), ("md", dict(displacement=0.05)), ("adversarial", dict(md_steps=20))):
        name, = other
        with pytest.raises(InputError, match=rf"{name} is read by sampler='\w+' only, not by sampler='{sampler}'"):
            ActiveLearning(factory, MorsePotential(), train, test, generations=1, per_generation=2, seed=0,
                           workdir=tmp_path, sampler=sampler, **other)
    own = ActiveLearning(factory, MorsePotential(), train, test, generations=1, per_generation=2, seed=0,
                         workdir=tmp_path, sampler="random", displacement=0.05)
    assert (own.displacement, own.kT, own.attack_steps, own.md_steps, own.temperature) == (0.05, 0.1, 30, 20, 300.0)
    with pytest.raises(InputTypeError, match="labeler must be an ASE calculator"):
        ActiveLearning(factory, "xtb", train, test, generations=1, per_generation=2, seed=0, workdir=tmp_path)
    bare = [f.copy() for f in test]
    with pytest.raises(InputError, match="test frames .* no stored energy"):
        ActiveLearning(factory, MorsePotential(), train, bare, generations=1, per_generation=2, seed=0,
                       workdir=tmp_path)
    foreign = [f.copy() for f in test]
    for f, ref in zip(foreign, test):
        f.numbers[0] = 8  # an oxygen among the cluster's atoms
        f.calc = ref.calc
    with pytest.raises(InputError, match=r"test frames hold element\(s\) \['O'\]"):
        ActiveLearning(factory, MorsePotential(), train, foreign, generations=1, per_generation=2, seed=0,
                       workdir=tmp_path)


def fine_loop(data, workdir, *, generations=2, fine_tune=None, initial=None):
    train, test = data
    return ActiveLearning(factory, CalculatorPotential(MorsePotential(**MORSE)), train, test, generations=generations,
                          per_generation=6, sampler="random", seed=0, workdir=workdir,
                          trainer=Trainer(epochs=12, batch_size=8, lr=5e-3, eval_grad=True, dtype=torch.float64, seed=0),
                          fine_tune=fine_tune, initial_committee=initial)


def test_fine_tune_continues_the_previous_committee(data, tmp_path):
    # A fine-tuning step too small to move the weights: generation 1 must predict as generation 0 did,
    # which holds only if it starts from generation 0's weights *and* keeps its energy shifts and scale
    # (refitting the shifts on the grown set, or a fresh committee, changes the errors at the percent level).
    still = Trainer(epochs=1, batch_size=8, lr=1e-12, eval_grad=True, dtype=torch.float64, seed=0)
    log = fine_loop(data, tmp_path / "still", generations=1, fine_tune=still).run().log_
    assert log[1]["forces_mae"] == pytest.approx(log[0]["forces_mae"], rel=1e-8)
    assert log[1]["energy_mae"] == pytest.approx(log[0]["energy_mae"], rel=1e-8)
    scratch = fine_loop(data, tmp_path / "scratch", generations=1).run().log_
    assert abs(scratch[1]["forces_mae"] / scratch[0]["forces_mae"] - 1) > 1e-3
    assert (tmp_path / "still" / "committee_0.pt").exists() and (tmp_path / "still" / "committee_1.pt").exists()


def test_fine_tuned_run_resumes_from_the_saved_committee(data, tmp_path):
    tune = Trainer(epochs=4, batch_size=8, lr=2e-3, eval_grad=True, dtype=torch.float64, seed=1)
    full = fine_loop(data, tmp_path / "full", fine_tune=tune).run()
    part = tmp_path / "part"
    fine_loop(data, part, generations=1, fine_tune=tune).run()
    # Raising generations re-runs the former last generation, which now starts from committee_0.pt.
    resumed = fine_loop(data, part, fine_tune=tune).run()
    assert [e["forces_mae"] for e in resumed.log_] == pytest.approx([e["forces_mae"] for e in full.log_], rel=1e-9)
    (part / "committee_1.pt").unlink()
    saved = json.loads((part / "log.json").read_text())
    saved["generations"] = saved["generations"][:2]
    (part / "log.json").write_text(json.dumps(saved))
    with pytest.raises(InputError, match="committee_1.pt is missing"):
        fine_loop(data, part, fine_tune=tune).run()


def test_initial_committee_is_used_as_generation_zero_and_left_alone(data, tmp_path):
    from learners.potentials.training import fit_potential, frame_errors

    train, test = data
    initial = factory(seed=7)
    fit_potential(initial, train, trainer=Trainer(epochs=12, batch_size=8, lr=5e-3, eval_grad=True,
                                                  dtype=torch.float64, seed=0))
    before = {k: v.clone() for k, v in initial.state_dict().items()}
    log = fine_loop(data, tmp_path, generations=1, initial=initial).run().log_
    assert log[0]["forces_mae"] == pytest.approx(frame_errors(initial, test)["forces_mae"], rel=1e-12)
    assert all(torch.equal(before[k], v) for k, v in initial.state_dict().items())
    with pytest.raises(InputTypeError, match="initial_committee must be a trained Committee"):
        fine_loop(data, tmp_path / "x", initial=initial.models[0])


def test_new_label_weight_trains_the_labels_as_repeated_frames(data, tmp_path):
    # Fine-tuning with every frame in one batch: weighting the labels by 3 must give the committee that
    # training generation 0's on the initial frames plus three copies of each label gives.
    from learners.potentials import load_potential
    from learners.potentials.training import fit_potential

    train, test = data
    tune = Trainer(epochs=3, batch_size=64, lr=2e-3, eval_grad=True, dtype=torch.float64, seed=0)
    ActiveLearning(factory, CalculatorPotential(MorsePotential(**MORSE)), train, test, generations=1, per_generation=6,
                   sampler="random", seed=0, workdir=tmp_path, fine_tune=tune, new_label_weight=3,
                   trainer=Trainer(epochs=4, batch_size=8, lr=5e-3, eval_grad=True, dtype=torch.float64, seed=0)).run()
    labels = read_frames(tmp_path / "labels.db")
    assert len(labels) == 6

    def energies(committee):
        return committee.predict(test, forces=False)["energy"].detach().numpy()

    tuned = energies(load_potential(tmp_path / "committee_1.pt", dtype=torch.float64))
    for copies, same in ((3, True), (1, False)):
        ref = load_potential(tmp_path / "committee_0.pt", dtype=torch.float64)
        fit_potential(ref, train + labels * copies, trainer=tune, fit_shifts=False)
        close = np.allclose(energies(ref), tuned, rtol=0, atol=1e-9)
        assert close == same, (copies, np.abs(energies(ref) - tuned).max())


class ShiftingMorse(MorsePotential):
    """Morse, 5 eV higher on every second geometry it labels: labels far above the training well."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        if self.calls % 2 == 0:
            self.results["energy"] += 5.0


def test_max_label_energy_filters_candidates_and_logs_skipped_labels(data, tmp_path):
    from learners.potentials.training import fit_potential

    train, test = data
    initial = factory(seed=7)
    fit_potential(initial, train, trainer=Trainer(epochs=12, batch_size=8, lr=5e-3, eval_grad=True,
                                                  dtype=torch.float64, seed=0))
    # The training energies span 1.3 eV; the cap is the median of the committee's energies of the
    # training frames above the lowest, so that it keeps some candidates (small displacements of
    # those frames) and drops others whatever the committee's initial weights.
    lowest = min(f.get_potential_energy() for f in train)
    predicted_train = initial.predict(train, forces=False)["energy"].detach().numpy()
    truth, cap = ShiftingMorse(**MORSE), float(np.median(predicted_train - lowest))
    al = ActiveLearning(factory, truth, train, test, generations=1, per_generation=6, sampler="random",
                        displacement=0.05, percentile=0.0, seed=0, workdir=tmp_path, initial_committee=initial,
                        max_label_energy=cap, trainer=Trainer(epochs=2, batch_size=8, eval_grad=True,
                                                              dtype=torch.float64, seed=0)).run()
    report = al.log_[0]
    kept, skipped = read_frames(tmp_path / "labels.db"), report["skipped"]
    # Candidates above the cap by the committee were never labelled; every geometry that was labelled
    # lies within it by the committee; the labeler ran once per selected geometry.
    assert report["over_cap"] > 0 and report["selected"] == 6
    assert truth.calls == report["selected"] == len(kept) + len(skipped) and not report["failed"]
    sent = [f.positions for f in kept] + [np.array(s["positions"]) for s in skipped]
    predicted = initial.predict([atoms_like(train[0], p) for p in sent], forces=False)["energy"].detach().numpy()
    assert (predicted - lowest <= cap + 1e-9).all()
    # Labels above the cap by their true energy (every shifted one at least) are logged with that
    # energy and the reason, and not trained on; those within it are.
    assert len(kept) > 0 and len(skipped) >= truth.calls // 2
    assert all(f.get_potential_energy() - lowest <= cap for f in kept)
    morse = MorsePotential(**MORSE)
    for s in skipped:
        ref = atoms_like(train[0], np.array(s["positions"]))
        ref.calc = morse
        assert min(abs(s["energy"] - ref.get_potential_energy() - shift) for shift in (0.0, 5.0)) < 1e-10
        assert s["above_lowest"] == pytest.approx(s["energy"] - lowest, abs=1e-10) and s["above_lowest"] > cap
        assert f"exceeds max_label_energy = {cap} eV" in s["reason"]
    assert al.log_[1]["n_train"] == len(train) + len(kept)


def atoms_like(template, positions):
    from ase import Atoms

    return Atoms(numbers=template.numbers, positions=positions)


def test_resume_with_another_committee_or_initial_committee_is_refused(data, tmp_path):
    # settings() recorded neither what the factory builds nor the weights of a given initial committee: a
    # workdir resumed through the Python API with a factory of 16 features and 2 interactions (instead of
    # 8 and 1) trained its new generations with that architecture under the same log.
    train, test = data

    def run(committee_factory=factory, initial=None, generations=1, workdir=tmp_path / "a"):
        return ActiveLearning(committee_factory, CalculatorPotential(MorsePotential(**MORSE)), train, test,
                              generations=generations, per_generation=6, sampler="random", seed=0, workdir=workdir,
                              trainer=Trainer(epochs=12, batch_size=8, lr=5e-3, eval_grad=True, dtype=torch.float64,
                                              seed=0), initial_committee=initial).run()

    first = run()
    with pytest.raises(InputError, match=r"other settings \(committee differ\)"):
        run(accurate_factory, generations=2)
    assert run().log_ == first.log_  # the same settings resume (here: finished)
    run(initial=factory(seed=1), generations=0, workdir=tmp_path / "b")
    with pytest.raises(InputError, match=r"other settings \(initial_committee_sha256 differ\)"):
        run(initial=factory(seed=5), generations=0, workdir=tmp_path / "b")


def test_runs_logged_before_the_new_settings_resume_and_other_weights_are_refused(data, tmp_path):
    loop(data, tmp_path, generations=1, sampler="random").run()
    saved = json.loads((tmp_path / "log.json").read_text())
    for key in ("new_label_weight", "max_label_energy", "frames_sha256", "frames_stress_pbc_sha256", "trainer",
                "fine_tune_trainer", "loss", "committee", "initial_committee_sha256"):
        del saved["settings"][key]
    # logged when the adversarial settings could be given to the random sampler: never read, not compared
    saved["settings"].update(kT=0.05, attack_steps=20, attack_lr=2e-2)
    (tmp_path / "log.json").write_text(json.dumps(saved))
    assert len(loop(data, tmp_path, generations=1, sampler="random").run().log_) == 2
    train, test = data
    with pytest.raises(InputError, match=r"other settings \(new_label_weight differ\)"):
        ActiveLearning(factory, MorsePotential(**MORSE), train, test, generations=1, per_generation=6,
                       sampler="random", seed=0, workdir=tmp_path,
                       trainer=Trainer(epochs=12, batch_size=8, lr=5e-3, eval_grad=True, dtype=torch.float64, seed=0),
                       new_label_weight=4).run()
    for kwargs, message in (({"new_label_weight": 0}, "new_label_weight must be a finite number > 0"),
                            ({"max_label_energy": -1.0}, "max_label_energy must be None or a finite number > 0")):
        with pytest.raises(InputError, match=message):
            ActiveLearning(factory, MorsePotential(), train, test, generations=1, per_generation=2, seed=0,
                           workdir=tmp_path / "x", **kwargs)


def test_md_sampler_runs_its_candidates_as_the_lone_runs_would(data, tmp_path):
    # The MD sampler runs all its starts in one BatchMD call; each candidate must be the end of the
    # lone sims.MD run from that start with that start's seed (the sampler's documented meaning).
    from sims import MD
    from sims.integrators import Langevin

    train, test = data
    al = loop(data, tmp_path, sampler="md")
    committee = factory(seed=3)
    starts = train[:4]
    out = al._sample(committee, starts, train, seed=5, rng=np.random.default_rng(0))
    seeds = np.random.SeedSequence((5, 1)).generate_state(len(starts))
    for k, s in enumerate(starts):
        md = MD(s.copy(), committee, Langevin(al.timestep, al.temperature, 0.01), temperature=al.temperature,
                seed=int(seeds[k]))
        md.run(al.md_steps)
        assert out[k][1] == k
        np.testing.assert_allclose(out[k][0].positions, md.positions_array(), atol=1e-9)
