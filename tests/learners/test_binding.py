"""The glycan-protein pair regressor of the binding task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learners.binding import BindingRegressor
from learners.errors import InputError, NotFittedError
from reprs.glycans import glycan_graph

GLYCANS = ["Fuc(a1-2)Gal(b1-4)GlcNAc", "Neu5Ac(a2-3)Gal(b1-4)GlcNAc", "Gal(b1-4)GlcNAc", "Fuc(a1-3)GlcNAc",
           "Neu5Ac(a2-6)Gal", "Man(a1-3)Man"]


def _task():
    """Protein 0 binds fucosylated glycans, protein 1 sialylated ones: the value depends on the pair,
    so neither a per-glycan nor a per-protein model can fit it."""
    pairs = np.array([(i, j) for i in range(len(GLYCANS)) for j in range(2)])
    y = np.array([float("Fuc" in GLYCANS[i]) if j == 0 else float("Neu5Ac" in GLYCANS[i]) for i, j in pairs])
    return [glycan_graph(s) for s in GLYCANS], np.eye(2), pairs, y


def test_pair_model_fits_a_protein_dependent_binding():
    graphs, proteins, pairs, y = _task()
    per_glycan = np.array([y[pairs[:, 0] == i].mean() for i in range(len(graphs))])[pairs[:, 0]]
    assert np.abs(per_glycan - y).max() == pytest.approx(0.5)  # the best any glycan-only model can do
    model = BindingRegressor(kind="rgcn", hidden=16, epochs=120, batch_size=12, lr=5e-3, min_relation_count=1)
    pred = model.fit(graphs, proteins, pairs, y).predict(pairs)
    assert np.abs(pred - y).max() < 0.2


def test_pair_layers_do_not_start_from_the_encoders_random_numbers():
    """The pair model's layers were seeded with the seed of its glycan encoder, so they drew the same
    numbers: the protein layer's first weights were the encoder's first weights times sqrt(5 / 4)
    (correlation 1.0). They draw from their own stream (seed, 1) now."""
    model = BindingRegressor(kind="gin", hidden=8, layers=1, seed=3)
    model.n_features_in_, model.edge_dim_, model.protein_dim_, model.relations_ = 5, None, 4, None
    pair = model._new_model()
    encoder, protein = pair.encoder.encoder.weight.detach().flatten(), pair.protein[0].weight.detach().flatten()
    n = min(len(encoder), len(protein))
    assert abs(np.corrcoef(encoder[:n].numpy(), protein[:n].numpy())[0, 1]) < 0.5
    again = model._new_model()
    assert all(torch.equal(a, b) for a, b in zip(pair.state_dict().values(), again.state_dict().values()))


def test_pair_model_bad_input():
    graphs, proteins, pairs, y = _task()
    model = BindingRegressor(kind="gin", epochs=1)
    with pytest.raises(NotFittedError):
        model.predict(pairs)
    with pytest.raises(InputError, match="out of range"):
        model.fit(graphs, proteins, pairs + [0, 1], y)
    with pytest.raises(InputError, match="pairs must be"):
        model.fit(graphs, proteins, pairs, y[:-1])
    # A fractional index was truncated (glycan 1.9 read as glycan 1); NaN failed in int() unnamed.
    with pytest.raises(InputError, match=r"integer indices .* row 0 is \[0\.5, 0\.5\]"):
        model.fit(graphs, proteins, pairs + 0.5, y)
    with pytest.raises(InputError, match="integer indices"):
        model.fit(graphs, proteins, np.where(pairs == 1, np.nan, pairs), y)


def test_pair_model_round_trips_through_save_and_predicts_new_inputs(tmp_path):
    import torch

    from learners.estimators import load_estimator, save_estimator

    graphs, proteins, pairs, y = _task()
    model = BindingRegressor(kind="rgcn", hidden=8, layers=1, epochs=3, batch_size=6, min_relation_count=1)
    model.fit(graphs, proteins, pairs, y)
    path = save_estimator(model, tmp_path / "binding.pt")
    assert torch.load(path, weights_only=True)["class"] == "BindingRegressor"
    loaded = load_estimator(path)
    assert type(loaded) is BindingRegressor and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(pairs, graphs, proteins), model.predict(pairs))
    # New inputs: the pairs index the graphs and proteins given, not the training ones.
    new = [graphs[3], graphs[0]]
    np.testing.assert_array_equal(loaded.predict(np.array([[0, 1], [1, 0]]), new, proteins),
                                  model.predict(np.array([[3, 1], [0, 0]])))
    with pytest.raises(InputError, match="holds no training graphs"):
        loaded.predict(pairs)
    with pytest.raises(InputError, match="out of range"):
        loaded.predict(np.array([[2, 0]]), new, proteins)
    with pytest.raises(InputError, match="protein widths"):
        loaded.predict(np.array([[0, 0]]), new, np.ones((1, 3)))


MORE_GLYCANS = GLYCANS + ["Fuc(a1-2)Gal", "Neu5Ac(a2-3)Gal", "Gal(b1-3)GalNAc", "Neu5Ac(a2-6)Gal(b1-4)GlcNAc",
                          "Fuc(a1-6)GlcNAc", "Glc(b1-4)Glc"]


def _noisy_task(n_proteins=12, seed=0):
    """Protein j binds fucose with weight p_j0 and sialic acid with p_j1, plus noise: held-out
    proteins are predictable from their features, and a long run at a high rate overfits the noise."""
    rng = np.random.default_rng(seed)
    proteins = rng.normal(size=(n_proteins, 2))
    pairs = np.array([(i, j) for i in range(len(MORE_GLYCANS)) for j in range(n_proteins)])
    fuc = np.array(["Fuc" in g for g in MORE_GLYCANS], dtype=float)[pairs[:, 0]]
    sia = np.array(["Neu5Ac" in g for g in MORE_GLYCANS], dtype=float)[pairs[:, 0]]
    y = proteins[pairs[:, 1], 0] * fuc + proteins[pairs[:, 1], 1] * sia + 0.5 * rng.normal(size=len(pairs))
    return [glycan_graph(s) for s in MORE_GLYCANS], proteins, pairs, y


def test_early_stopping_holds_out_whole_proteins_and_restores_the_best_epoch():
    import torch

    graphs, proteins, pairs, y = _noisy_task()
    kw = dict(kind="rgcn", hidden=16, layers=1, epochs=150, batch_size=16, lr=1e-2, weight_decay=0.0,
              min_relation_count=1, patience=5, validation_fraction=0.25, dtype=torch.float64, seed=1)
    model = BindingRegressor(**kw).fit(graphs, proteins, pairs, y)
    held = model.validation_index_
    train = np.setdiff1d(np.arange(len(pairs)), held)
    # whole proteins held out: 3 of 12, none of them among the training pairs'
    assert len(np.unique(pairs[held, 1])) == 3 and not set(pairs[held, 1]) & set(pairs[train, 1])
    history = model.history_
    val_loss = np.array([r["val_loss"] for r in history])
    best = model.trainer_.best_epoch_
    assert len(history) < kw["epochs"] and len(history) == best + kw["patience"]  # stopped early
    assert best == int(np.argmin(val_loss)) + 1
    # The restored weights are the best epoch's: their validation MSE (standardised targets,
    # recomputed from predictions) is that epoch's logged val_loss, not the last epoch's.
    pred = (model.predict(pairs[held]) - model.y_mean_) / model.y_std_
    target = (y[held] - model.y_mean_) / model.y_std_
    assert np.mean((pred - target) ** 2) == pytest.approx(val_loss[best - 1], rel=1e-9)
    assert val_loss[-1] > val_loss[best - 1]
    # The targets' mean and spread are the training pairs' only.
    assert model.y_mean_ == pytest.approx(y[train].mean())


def test_early_stopping_is_seed_deterministic_and_groups_by_glycan_on_request():
    graphs, proteins, pairs, y = _noisy_task()
    kw = dict(kind="gin", hidden=8, layers=1, epochs=6, batch_size=32, lr=1e-2, patience=2, validation_fraction=0.3,
              validation_groups="glycan", monitor="spearman")
    a = BindingRegressor(seed=3, **kw).fit(graphs, proteins, pairs, y)
    b = BindingRegressor(seed=3, **kw).fit(graphs, proteins, pairs, y)
    c = BindingRegressor(seed=4, **kw).fit(graphs, proteins, pairs, y)
    np.testing.assert_array_equal(a.validation_index_, b.validation_index_)
    np.testing.assert_array_equal(a.predict(pairs), b.predict(pairs))
    assert a.history_ == [{**r, "seconds": s["seconds"]} for r, s in zip(b.history_, a.history_)]
    assert not np.array_equal(a.validation_index_, c.validation_index_)
    held = a.validation_index_
    assert not set(pairs[held, 0]) & set(np.delete(pairs, held, axis=0)[:, 0])  # whole glycans held out
    assert "val_spearman" in a.history_[0] and a.trainer_.monitor == "spearman"


def test_validation_pairs_given_and_bad_validation_settings():
    graphs, proteins, pairs, y = _noisy_task()
    val = np.isin(pairs[:, 1], [0, 1])
    model = BindingRegressor(kind="gin", hidden=8, layers=1, epochs=3, batch_size=64, patience=1)
    model.fit(graphs, proteins, pairs[~val], y[~val], val=(pairs[val], y[val]))
    assert model.validation_index_ is None and "val_loss" in model.history_[0]
    with pytest.raises(InputError, match="need validation pairs"):
        BindingRegressor(kind="gin", epochs=1, patience=3).fit(graphs, proteins, pairs, y)
    with pytest.raises(InputError, match="out of range"):
        BindingRegressor(kind="gin", epochs=1).fit(graphs, proteins, pairs, y, val=(pairs + [0, 20], y))
    with pytest.raises(InputError, match="validation_groups"):
        BindingRegressor(validation_groups="lectin")
    with pytest.raises(InputError, match="monitor"):
        BindingRegressor(monitor="accuracy")
    with pytest.raises(InputError, match="validation_fraction"):
        BindingRegressor(validation_fraction=1.0)
