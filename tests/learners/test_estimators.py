"""GNNClassifier / GNNRegressor on small glycan tasks built in code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from learners import MODEL_KINDS, GNNClassifier, GNNRegressor
from learners.errors import InputError, NotFittedError
from reprs.glycans import glycan_graph

from .conftest import random_glycans

SMALL = dict(hidden=16, layers=2, epochs=25, batch_size=16, lr=5e-3, seed=0)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_model_beats_the_majority_class_clearly(kind, fucose_task):
    train_g, train_y, test_g, test_y = fucose_task
    names = np.where(train_y == 1, "fucosylated", "plain")
    clf = GNNClassifier(kind=kind, **SMALL).fit(train_g, names)
    majority = max(np.mean(test_y), 1 - np.mean(test_y))
    accuracy = clf.score(test_g, np.where(test_y == 1, "fucosylated", "plain"))
    assert accuracy >= majority + 0.3, f"{kind}: accuracy {accuracy:.2f} vs majority {majority:.2f}"
    proba = clf.predict_proba(test_g)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert list(clf.classes_) == ["fucosylated", "plain"]
    assert set(clf.predict(test_g)) <= set(clf.classes_)


def test_fit_is_deterministic_and_clone_keeps_parameters(fucose_task):
    train_g, train_y, test_g, _ = fucose_task
    a = GNNClassifier(kind="gine", **SMALL).fit(train_g, train_y)
    b = clone(a).fit(train_g, train_y)
    assert b.get_params()["kind"] == "gine"
    np.testing.assert_array_equal(a.predict_proba(test_g), b.predict_proba(test_g))


def test_validation_fraction_early_stopping_and_float64(fucose_task, tmp_path):
    train_g, train_y, test_g, test_y = fucose_task
    clf = GNNClassifier(
        kind="gcn", validation_fraction=0.25, patience=5, dtype=torch.float64, run_dir=str(tmp_path), **SMALL
    ).fit(train_g, train_y)
    assert clf.trainer_.monitor == "balanced_accuracy"
    assert {p.dtype for p in clf.model_.parameters()} == {torch.float64}
    assert (tmp_path / "log.jsonl").exists() and (tmp_path / "checkpoint.pt").exists()
    assert clf.score(test_g, test_y) > 0.8


def test_multilabel(fucose_task):
    train_g, train_y, test_g, test_y = fucose_task
    has_man = np.array([any(d == "Man" for _, d in g.nodes(data="label")) for g in train_g + test_g])
    y = np.stack([np.r_[train_y, test_y], has_man.astype(int)], axis=1)
    clf = GNNClassifier(kind="gine", **SMALL).fit(train_g, y[:80])
    pred = clf.predict(test_g)
    assert pred.shape == (40, 2) and clf.task_ == "multilabel"
    assert (pred == y[80:]).mean() > 0.85
    # With a validation set the default monitor is macro F1: the multiclass default, balanced accuracy,
    # is no multilabel score, and fit raised after the first epoch.
    held = GNNClassifier(kind="gin", hidden=8, layers=1, epochs=2, validation_fraction=0.25).fit(train_g, y[:80])
    assert held.trainer_.monitor == "macro_f1" and held.trainer_.best_score_ == max(
        r["val_macro_f1"] for r in held.history_)


def test_a_float64_multilabel_classifier_fits_as_the_float32_one(fucose_task):
    """The multilabel indicator was always encoded float32, which the trainer refuses for a float64 model
    (InputError at the first batch): a float64 multilabel GNNClassifier could not be fitted. Now it trains,
    and from the same start as the float32 one (seeded_init) it gives its probabilities to float32 precision."""
    graphs, y = fucose_task[0][:40], fucose_task[1][:40]
    indicator = np.stack([y, 1 - y], axis=1)
    small = dict(kind="gin", hidden=8, layers=1, epochs=2, batch_size=8)
    p64 = GNNClassifier(dtype=torch.float64, **small).fit(graphs, indicator).predict_proba(graphs)
    p32 = GNNClassifier(dtype=torch.float32, **small).fit(graphs, indicator).predict_proba(graphs)
    assert p64.shape == (40, 2)
    np.testing.assert_allclose(p64, p32, atol=1e-5)


def test_regressor_learns_the_number_of_residues():
    strings, _ = random_glycans(100, seed=2)
    graphs = [glycan_graph(s) for s in strings]
    size = np.array([g.number_of_nodes() for g in graphs], dtype=float)
    reg = GNNRegressor(kind="gin", readout="sum", hidden=16, layers=2, epochs=40, lr=1e-2, batch_size=16).fit(graphs[:70], size[:70])
    assert reg.predict(graphs[70:]).shape == (30,)
    assert reg.score(graphs[70:], size[70:]) > 0.9


def test_bad_input(fucose_task):
    train_g, train_y, *_ = fucose_task
    with pytest.raises(NotFittedError):
        GNNClassifier().predict(train_g)
    with pytest.raises(InputError, match="empty"):
        GNNClassifier().fit([], [])
    with pytest.raises(InputError, match="targets"):
        GNNClassifier().fit(train_g, train_y[:-1])
    with pytest.raises(InputError, match="2 classes"):
        GNNClassifier().fit(train_g[:3], ["a", "a", "a"])
    with pytest.raises(InputError, match="one member"):
        GNNClassifier(validation_fraction=0.2, epochs=1).fit(train_g[:5], ["a", "a", "b", "b", "c"])
    with pytest.raises(InputError, match="finite numeric"):
        GNNRegressor().fit(train_g[:2], [1.0, np.nan])
    clf = GNNClassifier(kind="gine", epochs=1).fit(train_g[:4], [0, 1, 0, 1])
    g = glycan_graph("Gal(b1-4)GlcNAc")
    for n in g:
        g.nodes[n]["x"] = g.nodes[n]["x"][:64]
    with pytest.raises(InputError, match="fitted on"):
        clf.predict([g])


def test_regressor_on_molecular_graphs_learns_crippen_refractivity():
    # Chains of random fragments (every sequence is valid SMILES); the target, Wildman-Crippen molar
    # refractivity as RDKit computes it, is a sum of atom-type contributions that a sum readout can learn.
    from rdkit import Chem
    from rdkit.Chem import Crippen

    from reprs.featurizers import MolecularGraph

    rng = np.random.default_rng(5)
    fragments = ["C", "O", "N", "C(F)", "C(Cl)", "C(C)", "C(=O)", "c1ccccc1"]
    smiles = sorted({"".join(rng.choice(fragments, rng.integers(2, 8))) for _ in range(200)})[:150]
    graphs = MolecularGraph().featurize_many(smiles, progress=False)
    mr = np.array([Crippen.MolMR(Chem.MolFromSmiles(s)) for s in smiles])
    reg = GNNRegressor(kind="gine", readout="sum", hidden=32, layers=2, epochs=60, lr=5e-3, batch_size=16, seed=0)
    reg.fit(graphs[:110], mr[:110])
    assert reg.score(graphs[110:], mr[110:]) > 0.9


def test_a_float64_regressor_trains_on_its_float64_targets():
    from learners.data import graphs_to_data
    from learners.estimators import _forward

    graphs = [glycan_graph(s) for s in random_glycans(12, seed=0)[0]]
    y = np.linspace(0.0, 1.0, 12) ** 3 + 1 / 3
    reg = GNNRegressor(kind="gine", hidden=8, layers=1, epochs=1, batch_size=32, lr=1e-3, dtype=torch.float64,
                       seed=0).fit(graphs, y)
    # The first epoch's loss is taken before the first update: the MSE of the seeded initial model
    # against the standardised targets, all in float64 (the targets went through float32 before).
    start = reg._new_model(1)
    out = reg.trainer_.predict(start, graphs_to_data(graphs, dtype=torch.float64, edge_dim=reg.edge_dim_), _forward)
    z = (y - y.mean()) / y.std()
    assert reg.history_[0]["train_loss"] == pytest.approx(np.mean((out[:, 0] - z) ** 2), rel=1e-13, abs=0)


def test_regressor_standardises_targets_on_the_training_part_only():
    # The held-out part must not shape its own targets: mean and scale come from the rows
    # random_split keeps for training (before, from every row, the held-out ones included).
    from learners.splits import random_split

    graphs = [glycan_graph(s) for s in random_glycans(16, seed=0)[0]]
    y = np.arange(16.0) ** 2
    reg = GNNRegressor(kind="gin", hidden=8, layers=1, epochs=1, batch_size=32, validation_fraction=0.25,
                       seed=3).fit(graphs, y)
    train, val = random_split(16, (0.75, 0.25), seed=3)
    np.testing.assert_allclose(reg.y_mean_, [y[train].mean()], rtol=1e-15)
    np.testing.assert_allclose(reg.y_std_, [y[train].std()], rtol=1e-15)
    with pytest.raises(InputError, match="finite numeric"):
        GNNRegressor(epochs=1).fit(graphs[:4], y[:4], val=(graphs[4:6], [1.0, np.nan]))


def test_an_estimator_trained_on_a_gpu_loads_onto_its_device_or_the_one_given(fucose_task, tmp_path):
    """load_estimator built the model on the CPU while its trainer sent batches to the saved device: a
    CUDA-trained estimator could not predict after loading on a GPU machine, nor load at all on one
    without (no way to name another device). The model now goes to the trainer's device, and
    ``device=`` overrides the saved one."""
    from learners.estimators import load_estimator, save_estimator

    graphs, y, test_graphs, _ = fucose_task
    clf = GNNClassifier(kind="gin", hidden=8, layers=1, epochs=1, seed=0).fit(graphs[:20], y[:20])
    path = save_estimator(clf, tmp_path / "clf.pt")
    payload = torch.load(path, weights_only=True)
    payload["params"]["device"] = "cuda"  # as saved by a run trained on a GPU
    torch.save(payload, path)
    expected = clf.predict_proba(test_graphs)
    on_cpu = load_estimator(path, device="cpu")
    np.testing.assert_array_equal(on_cpu.predict_proba(test_graphs), expected)
    if torch.cuda.is_available():
        on_gpu = load_estimator(path)
        assert next(on_gpu.model_.parameters()).device.type == "cuda"
        np.testing.assert_allclose(on_gpu.predict_proba(test_graphs), expected, rtol=1e-4, atol=1e-6)
    else:
        with pytest.raises(InputError, match="CUDA is not available"):
            load_estimator(path)


def test_a_resume_over_other_data_is_refused(fucose_task, tmp_path):
    """Two fits with the same settings, run_dir and resume=True on other data (folds of a
    cross-validation): the second resumed the first's finished checkpoint and returned the first
    model, untrained on its own data (measured: predictions equal to the first fit's, history the
    first's). The checkpoint now records a digest of the training and validation data."""
    graphs, y, *_ = fucose_task
    params = dict(kind="gin", hidden=8, layers=1, epochs=2, run_dir=str(tmp_path), resume=True)
    first = GNNClassifier(**params).fit(graphs[:30], y[:30])
    with pytest.raises(InputError, match="other training or validation data"):
        GNNClassifier(**params).fit(graphs[30:60], y[30:60])
    with pytest.raises(InputError, match="other training or validation data"):
        GNNClassifier(**params).fit(graphs[:30], 1 - y[:30])  # same graphs, other labels
    again = GNNClassifier(**params).fit(graphs[:30], y[:30])  # the same data resumes
    np.testing.assert_array_equal(again.predict_proba(graphs), first.predict_proba(graphs))


def test_a_setting_the_model_kind_does_not_read_is_refused_by_name(fucose_task):
    """Such settings were accepted and silently ignored (a gine fitted with num_bases=2; s12), while a
    config run refused them; a grid search's set_params is caught at fit."""
    from learners.binding import BindingRegressor
    from learners.estimators import GNNMultiTaskClassifier

    graphs, y = fucose_task[:2]
    for kind, setting, match in [("gine", {"num_bases": 2}, "num_bases is read by kind = 'rgcn' only, not by kind = 'gine'"),
                                 ("rgcn", {"composition": "sub"}, "composition is read by kind = 'compgcn' only"),
                                 ("gcn", {"min_relation_count": 1}, "min_relation_count is read by kind = 'rgcn' or "
                                                                    "'compgcn' only, not by kind = 'gcn'"),
                                 ("attentivefp", {"readout": "max"}, "readout is not read by kind = 'attentivefp'")]:
        for cls in (GNNClassifier, GNNRegressor, GNNMultiTaskClassifier):
            with pytest.raises(InputError, match=f"{cls.__name__}: {match}"):
                cls(kind=kind, **setting)
    with pytest.raises(InputError, match="BindingRegressor: composition is read by kind = 'compgcn' only"):
        BindingRegressor(composition="corr")                        # its default kind is rgcn
    clf = GNNClassifier(kind="gine", epochs=1).set_params(composition="corr")
    with pytest.raises(InputError, match="composition is read by kind = 'compgcn' only, not by kind = 'gine'"):
        clf.fit(graphs, y)
    # the kinds that read them take them; defaults pass on every kind
    GNNClassifier(kind="compgcn", composition="sub", min_relation_count=1)
    GNNClassifier(kind="rgcn", num_bases=None, min_relation_count=1)
    clone(GNNClassifier(kind="attentivefp", composition="mult", num_bases=8))


def test_an_estimator_saved_with_a_setting_its_kind_does_not_read_still_loads(fucose_task, tmp_path):
    """Before s12 a gine could be fitted and saved with num_bases=2 (ignored); refusing such settings made
    load_estimator refuse the file, though its model is valid. The setting is dropped with a warning."""
    from learners.estimators import load_estimator, save_estimator

    graphs, y, test_graphs, _ = fucose_task
    clf = GNNClassifier(kind="gine", hidden=8, layers=1, epochs=1, seed=0).fit(graphs[:20], y[:20])
    path = save_estimator(clf, tmp_path / "clf.pt")
    payload = torch.load(path, weights_only=True)
    payload["params"].update(num_bases=2, composition="corr")  # as the old code saved such a fit
    torch.save(payload, path)
    with pytest.warns(UserWarning, match=r"GNNClassifier\(kind='gine'\) was saved with composition='corr', "
                                         r"num_bases=2, which this kind does not read"):
        loaded = load_estimator(path)
    np.testing.assert_array_equal(loaded.predict_proba(test_graphs), clf.predict_proba(test_graphs))
    assert loaded.get_params()["num_bases"] == GNNClassifier().num_bases
    # a new estimator still refuses it
    with pytest.raises(InputError, match="num_bases is read by kind = 'rgcn' only"):
        GNNClassifier(**dict(loaded.get_params(), num_bases=2))


def test_a_resume_with_other_model_settings_is_refused(fucose_task, tmp_path):
    """A resume with another readout or dropout (no parameter changes shape) loaded the first fit's
    weights and history (measured: readout 'sum' resumed the 'mean' fit, training losses 0.718,
    0.715 where a fresh 'sum' fit gives 0.761, 0.738). The checkpoint now records the model's
    plain attributes."""
    graphs, y, *_ = fucose_task
    params = dict(kind="gin", hidden=8, layers=1, epochs=2, run_dir=str(tmp_path), resume=True)
    GNNClassifier(**params).fit(graphs[:30], y[:30])
    with pytest.raises(InputError, match="model readout 'mean' \\(now 'sum'\\)"):
        GNNClassifier(**params, readout="sum").fit(graphs[:30], y[:30])
    with pytest.raises(InputError, match="model dropout 0.0 \\(now 0.5\\)"):
        GNNClassifier(**params, dropout=0.5).fit(graphs[:30], y[:30])
