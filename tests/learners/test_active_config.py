"""``matrep active CONFIG -o OUT`` on the Morse cluster of test_adversarial (ASE's Morse as ground truth)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from learners.active import ActiveLearning
from learners.potentials import load_potential
from reprs.cli import main
from reprs.fileio import FrameWriter, read_frames
from tests.learners.test_adversarial import MORSE, md_frames


def _toml(cfg: dict) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    for name, table in cfg.items():
        if isinstance(table, dict):
            lines.append(f"[{name}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    for name, data in (("train.extxyz", md_frames(12, seed=0)), ("test.extxyz", md_frames(6, seed=3, temperature_K=1200.0))):
        writer = FrameWriter(folder / name)
        for atoms in data:
            writer.write(atoms, {})
    return folder


def config(frames, **loop) -> dict:
    return {"seed": 0,
            "data": {"train": str(frames / "train.extxyz"), "test": str(frames / "test.extxyz")},
            "labeler": {"kind": "ase", "calculator": "ase.calculators.morse:MorsePotential", **MORSE},
            "committee": {"kind": "painn", "members": 3, "dtype": "float64", "cutoff": 5.0, "n_features": 8,
                          "n_rbf": 8, "n_interactions": 1},
            "trainer": {"epochs": 8, "batch_size": 8, "lr": 5e-3},
            "loop": {"sampler": "random", "generations": 1, "per_generation": 4, "displacement": 0.05, **loop}}


def test_matrep_active_runs_resumes_and_refuses_another_config(frames, tmp_path, capsys):
    path = tmp_path / "al.toml"
    path.write_text(_toml(config(frames)))
    out = tmp_path / "out"
    assert main(["active", str(path), "-o", str(out), "--quiet"]) in (None, 0)
    summary = json.loads(capsys.readouterr().out)
    for name in ("labels.db", "log.json", "committee.pt", "errors.png", "config.json"):
        assert (out / name).is_file(), name
    assert summary["labels_used"] == 4 and summary["generation"] == 1
    labels = read_frames(out / "labels.db")
    assert len(labels) == 4 and all(f.info["sampler"] == "random" for f in labels)
    # The stored labels are ASE's Morse values for those geometries.
    from ase.calculators.morse import MorsePotential

    for f in labels:
        g = f.copy()
        g.calc = MorsePotential(**MORSE)
        assert f.get_potential_energy() == pytest.approx(g.get_potential_energy(), abs=1e-10)
    # The saved committee is the last generation's: its test error is the logged one.
    committee = load_potential(out / "committee.pt", dtype=torch.float64)
    from learners.potentials.training import frame_errors

    errors = frame_errors(committee, read_frames(frames / "test.extxyz"))
    assert errors["forces_mae"] == pytest.approx(summary["forces_mae"], rel=1e-9)
    # Rerun: nothing to do, same answer; more generations extend the run; another sampler is refused.
    assert main(["active", str(path), "-o", str(out), "--quiet"]) in (None, 0)
    assert json.loads(capsys.readouterr().out)["forces_mae"] == pytest.approx(summary["forces_mae"], rel=1e-12)
    path.write_text(_toml(config(frames, generations=2)))
    assert main(["active", str(path), "-o", str(out), "--quiet"]) in (None, 0)
    assert json.loads(capsys.readouterr().out)["labels_used"] == 8
    # Fewer generations than the folder's run labelled: refused, and config.json still records that run.
    path.write_text(_toml(config(frames, generations=1)))
    assert main(["active", str(path), "-o", str(out), "--quiet"]) == 2
    assert "labelled 2 generation(s), more than generations = 1" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["loop"]["generations"] == 2
    md = config(frames, sampler="md")
    del md["loop"]["displacement"]  # the random sampler's
    path.write_text(_toml(md))
    assert main(["active", str(path), "-o", str(out), "--quiet"]) == 2
    assert "another config" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda c: c["loop"].update(samplr="md"), "unknown key 'samplr' in loop; did you mean 'sampler'"),
    (lambda c: c["committee"].update(n_feature=8), "unknown key 'n_feature' in committee; did you mean 'n_features'"),
    (lambda c: c["committee"].update(kind="mace"), "committee.kind must be one of"),
    (lambda c: c["committee"].update(members=1), "committee.members must be >= 2"),
    (lambda c: c["labeler"].update(kind="xtbb"), "unknown potential kind 'xtbb'"),
    (lambda c: c.pop("labeler"), r"needs a \[labeler\] table"),
    (lambda c: c["data"].update(test="missing.extxyz"), "data.test = 'missing.extxyz': no such file"),
    (lambda c: c["loop"].update(sampler="adversarail"), "did you mean 'adversarial'"),
    (lambda c: c.update(fine_tune={"epoch": 3}), "unknown key 'epoch' in fine_tune; did you mean 'epochs'"),
    (lambda c: c["loop"].update(new_label_weight=0), "loop.new_label_weight must be a finite number > 0"),
    (lambda c: c["loop"].update(max_label_energi=1.0), "did you mean 'max_label_energy'"),
    (lambda c: c["committee"].update(initial="missing.pt"), "committee.initial = 'missing.pt': no such file"),
    # another sampler's settings were accepted and never read (random candidates bit-identical with
    # attack_steps = 500, md_steps = 1000): refused (checked on the old code)
    (lambda c: c["loop"].update(attack_steps=500), "loop.attack_steps is read by sampler = 'adversarial' only"),
    (lambda c: c["loop"].update(sampler="md"), "loop.displacement is read by sampler = 'random' only"),
])
def test_config_mistakes_are_one_line_errors(frames, tmp_path, capsys, change, message):
    cfg = config(frames)
    change(cfg)
    path = tmp_path / "al.toml"
    path.write_text(_toml(cfg))
    assert main(["active", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("matrep active: error: ") and err.count("\n") == 1, err
    import re

    assert re.search(message, err), err


def test_fine_tune_and_initial_committee_from_the_config_resume_unchanged(frames, tmp_path, capsys):
    from learners.potentials import Committee, PaiNN, save_potential
    from learners.potentials.training import fit_potential, frame_errors
    from learners.trainer import Trainer

    train, test = read_frames(frames / "train.extxyz"), read_frames(frames / "test.extxyz")
    initial = Committee.build(PaiNN, k=3, seed=5, cutoff=5.0, n_features=8, n_rbf=8, n_interactions=1,
                              dtype=torch.float64)
    fit_potential(initial, train, trainer=Trainer(epochs=8, batch_size=8, lr=5e-3, eval_grad=True,
                                                  dtype=torch.float64, seed=0))
    save_potential(initial, tmp_path / "gen0.pt")

    def run(generations: int, out: str, **committee) -> int:
        cfg = config(frames, generations=generations, new_label_weight=2.0, max_label_energy=50.0)
        cfg["committee"].update(initial="gen0.pt", **committee)     # relative: read from the config's folder
        cfg["fine_tune"] = {"epochs": 3, "batch_size": 8, "lr": 2e-3}
        (tmp_path / "al.toml").write_text(_toml(cfg))
        return main(["active", str(tmp_path / "al.toml"), "-o", str(tmp_path / out), "--quiet"])

    assert run(2, "full") in (None, 0)
    capsys.readouterr()
    log = json.loads((tmp_path / "full" / "log.json").read_text())
    assert log["settings"]["fine_tune"] and log["settings"]["initial_committee"]
    assert log["settings"]["new_label_weight"] == 2.0 and log["settings"]["max_label_energy"] == 50.0
    # Generation 0 is the given committee; later ones are fine-tuned from it (one file per generation).
    assert log["generations"][0]["forces_mae"] == pytest.approx(frame_errors(initial, test)["forces_mae"], rel=1e-12)
    assert all((tmp_path / "full" / f"committee_{g}.pt").is_file() for g in range(3))
    # A run stopped after one generation and extended to two ends as the straight run.
    assert run(1, "part") in (None, 0) and run(2, "part") in (None, 0)
    capsys.readouterr()
    part = json.loads((tmp_path / "part" / "log.json").read_text())["generations"]
    assert [g["forces_mae"] for g in part] == pytest.approx([g["forces_mae"] for g in log["generations"]], rel=1e-9)
    # A committee file of another size is refused by name; so is a changed file under the same name.
    assert run(2, "other", members=2) == 2
    assert "holds 3 painn model(s), but [committee] says 2 of kind 'painn'" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
    save_potential(Committee.build(PaiNN, k=3, seed=6, cutoff=5.0, n_features=8, n_rbf=8, n_interactions=1,
                                   dtype=torch.float64), tmp_path / "gen0.pt")
    assert run(2, "part") == 2
    assert "another config" in capsys.readouterr().err


def test_a_sims_potential_labels_through_sims_and_clustering_spreads_the_labels(tmp_path):
    # A torch potential of sims as ground truth: its energies are sims.energy_and_forces' own.
    from sims import energy_and_forces
    from tests.learners.test_active import factory

    truth = LennardJones_truth()
    train = md_frames(12, seed=0)
    label = ActiveLearning._ground_truth(truth)
    e, f = label(train[0])
    e_ref, f_ref = energy_and_forces(truth, train[0], dtype=torch.float64)
    assert e == e_ref and np.array_equal(f, f_ref)
    relabelled = []
    for atoms in train:
        from ase.calculators.singlepoint import SinglePointCalculator

        g = atoms.copy()
        energy, forces = label(g)
        g.calc = SinglePointCalculator(g, energy=energy, forces=forces)
        relabelled.append(g)
    from learners.trainer import Trainer

    al = ActiveLearning(factory, truth, relabelled[:8], relabelled[8:], generations=1, per_generation=3,
                        sampler="random", displacement=0.1, cluster=True, percentile=0.0, seed=0,
                        workdir=tmp_path, trainer=Trainer(epochs=4, batch_size=8, eval_grad=True,
                                                          dtype=torch.float64, seed=0)).run()
    labels = read_frames(tmp_path / "labels.db")
    assert len(labels) == 3 == al.log_[0]["selected"]
    for g in labels:
        assert g.get_potential_energy() == pytest.approx(energy_and_forces(truth, g, dtype=torch.float64)[0],
                                                         abs=1e-12)


def test_clustering_labels_one_geometry_per_cluster(tmp_path):
    # Five jittered copies of one geometry are the most uncertain candidates, two distinct ones follow:
    # ranked by uncertainty alone three copies would be labelled; one per cluster takes A, B and C.
    from tests.learners.test_active import factory
    from tests.learners.test_adversarial import morse_cluster

    data = md_frames(4, seed=0)
    al = ActiveLearning(factory, LennardJones_truth(), data, data, generations=1, per_generation=3,
                        cluster=True, min_rmsd=0.0, seed=0, workdir=tmp_path)
    rng = np.random.default_rng(1)
    a, b, c = morse_cluster(seed=10), morse_cluster(seed=11), morse_cluster(seed=12)
    b.positions *= 1.3
    c.positions[:, 0] *= 1.6
    candidates = [a.copy() for _ in range(5)] + [b, c]
    for x in candidates[:5]:
        x.positions += rng.normal(0, 0.01, x.positions.shape)
    heads = al._cluster_heads(np.arange(7), candidates, [], seed=0)
    assert sorted(heads.tolist()) == [0, 5, 6]


def LennardJones_truth():
    from sims.potentials import LennardJones

    return LennardJones(sigma=2.2, epsilon=0.3, cutoff=5.0, dtype=torch.float64)


def test_clip_norm_false_turns_clipping_off(frames):
    import tomllib

    from learners.active_config import ActiveConfig

    cfg = config(frames)
    cfg["trainer"]["clip_norm"] = False
    spec = ActiveConfig.from_config(tomllib.loads(_toml(cfg)))
    assert spec.trainer.given()["clip_norm"] is None and "clip_norm" not in ActiveConfig.from_config(config(frames)).trainer.given()


def test_a_run_recorded_with_another_samplers_settings_resumes(frames, tmp_path, capsys):
    """A folder written before another sampler's [loop] settings were refused may record them (kT beside
    sampler = 'random': accepted and never read). The config without them is the same run: it resumed
    as 'another config' before (checked on the old code), and with them the config is refused."""
    path, out = tmp_path / "al.toml", tmp_path / "out"
    quick = {**config(frames), "trainer": {"epochs": 2, "batch_size": 8, "lr": 5e-3}}
    path.write_text(_toml(quick))
    assert main(["active", str(path), "-o", str(out), "--quiet"]) in (None, 0)
    first = json.loads(capsys.readouterr().out)
    record = json.loads((out / "config.json").read_text())
    record["loop"]["kT"] = 0.05
    (out / "config.json").write_text(json.dumps(record))
    assert main(["active", str(path), "-o", str(out), "--quiet"]) in (None, 0)
    assert json.loads(capsys.readouterr().out)["forces_mae"] == pytest.approx(first["forces_mae"], rel=1e-12)
    # A setting the recorded sampler reads still makes another config.
    path.write_text(_toml({**quick, "loop": {**quick["loop"], "displacement": 0.07}}))
    assert main(["active", str(path), "-o", str(out), "--quiet"]) == 2
    assert "another config" in capsys.readouterr().err
