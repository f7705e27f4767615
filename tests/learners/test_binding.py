"""The glycan-protein pair regressor of the binding task."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_pair_model_bad_input():
    graphs, proteins, pairs, y = _task()
    model = BindingRegressor(kind="gin", epochs=1)
    with pytest.raises(NotFittedError):
        model.predict(pairs)
    with pytest.raises(InputError, match="out of range"):
        model.fit(graphs, proteins, pairs + [0, 1], y)
    with pytest.raises(InputError, match="pairs must be"):
        model.fit(graphs, proteins, pairs, y[:-1])


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
