"""Integrated gradients: exact on a linear model, completeness on GNNs, monomer mapping, PNG."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import torch

from learners import GNNClassifier
from learners.attribution import draw_attribution, integrated_gradients, monomer_attribution
from learners.data import graphs_to_data
from learners.errors import InputError, NotFittedError
from learners.models import GraphModel
from reprs.glycans import glycan_graph

GLYCAN = "Fuc(a1-2)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man(a1-3)[Man(a1-6)]Man(b1-4)GlcNAc"


class _SumLinear(torch.nn.Module):
    """F(x) = sum over nodes of w . x_i: integrated gradients are exactly x_i * w (analytic)."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x, edge_index, edge_attr, batch, edge_dir=None):
        n_graphs = int(batch.max()) + 1
        return torch.zeros(n_graphs, 1, dtype=x.dtype).index_add_(0, batch, (x @ self.w)[:, None])


def test_linear_model_attribution_is_exact():
    (data,) = graphs_to_data([glycan_graph(GLYCAN)], dtype=torch.float64)
    w = torch.linspace(-1, 1, 128, dtype=torch.float64)
    scores, out, base = integrated_gradients(_SumLinear(w), data, steps=3)
    np.testing.assert_allclose(scores, (data.x * w).numpy(), rtol=1e-12, atol=1e-12)
    assert base == 0.0 and out == pytest.approx(float((data.x @ w).sum()))


@pytest.mark.parametrize("kind", ["gine", "gat", "attentivefp"])
def test_completeness_on_gnns(kind):
    (data,) = graphs_to_data([glycan_graph(GLYCAN)], dtype=torch.float64)
    model = GraphModel(kind=kind, in_dim=128, edge_dim=40, n_outputs=2, hidden=16, layers=2, dtype=torch.float64, seed=1)
    scores, out, base = integrated_gradients(model, data, target=1, steps=128)
    coarse, *_ = integrated_gradients(model, data, target=1, steps=8)
    # Completeness (Sundararajan et al. 2017, Prop. 1) up to quadrature error, which shrinks
    # with more steps (ReLU kinks make the path integrand only piecewise smooth).
    gap, coarse_gap = abs(scores.sum() - (out - base)), abs(coarse.sum() - (out - base))
    assert gap <= 1e-2 * abs(out - base)
    assert gap < coarse_gap
    with torch.no_grad():
        direct = model(data.x, data.edge_index, data.edge_attr, None)[0, 1]
    assert out == pytest.approx(float(direct), rel=1e-12)


def test_monomer_attribution_finds_the_fucoses(fucose_task, tmp_path):
    train_g, train_y, *_ = fucose_task
    clf = GNNClassifier(kind="gine", hidden=16, layers=2, epochs=25, batch_size=16, lr=5e-3, dtype=torch.float64).fit(train_g, train_y)
    graph = glycan_graph(GLYCAN)
    att = monomer_attribution(clf, graph, target=1, steps=64)
    assert att.labels == [graph.nodes[n]["label"] for n in graph]
    assert abs(att.completeness_gap) <= 1e-2 * abs(att.output - att.baseline_output)
    # The fucosylation class is explained by the two fucoses more than by any other residue on average.
    fuc = np.array(att.labels) == "Fuc"
    assert att.node_scores[fuc].mean() > att.node_scores[~fuc].mean()
    png = draw_attribution(graph, att, tmp_path / "attr.png")
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0


def test_bad_attribution_input(fucose_task, tmp_path):
    graph = glycan_graph(GLYCAN)
    with pytest.raises(NotFittedError):
        monomer_attribution(GNNClassifier(), graph)
    with pytest.raises(InputError, match="one score per node"):
        draw_attribution(graph, np.zeros(3), tmp_path / "x.png")
    (data,) = graphs_to_data([graph], dtype=torch.float64)
    model = _SumLinear(torch.ones(128, dtype=torch.float64))
    with pytest.raises(InputError, match="target"):
        integrated_gradients(model, data, target=4)
    with pytest.raises(InputError, match="steps"):
        integrated_gradients(model, data, steps=0)


@pytest.mark.parametrize("output", ["log_proba", "log_odds"])
def test_class_outputs_of_one_head_of_a_multitask_model(output):
    (data,) = graphs_to_data([glycan_graph(GLYCAN)], dtype=torch.float64)
    model = GraphModel(kind="gine", in_dim=128, edge_dim=40, n_outputs=[2, 4, 3], task="multitask", hidden=16,
                       layers=2, dtype=torch.float64, seed=2)
    scores, out, base = integrated_gradients(model, data, target=4, steps=128, output=output)
    with torch.no_grad():
        z = model(data.x, data.edge_index, data.edge_attr, None, data.edge_dir)[0, 2:6]  # the second head
        z0 = model(torch.zeros_like(data.x), data.edge_index, data.edge_attr, None, data.edge_dir)[0, 2:6]

    def f(logits):  # class 2 of the head, written out
        p = torch.softmax(logits, 0)[2]
        return float(torch.log(p) if output == "log_proba" else torch.log(p / (1 - p)))

    assert out == pytest.approx(f(z), rel=1e-10) and base == pytest.approx(f(z0), rel=1e-10)
    assert abs(scores.sum() - (out - base)) <= 1e-2 * abs(out - base)
    with pytest.raises(InputError, match="output must be one of"):
        integrated_gradients(model, data, target=4, output="proba")


def test_monomer_attribution_explains_log_odds_by_default(fucose_task):
    train_g, train_y, *_ = fucose_task
    clf = GNNClassifier(kind="gin", hidden=8, layers=1, epochs=2, dtype=torch.float64).fit(train_g, train_y)
    graph = glycan_graph(GLYCAN)
    att = monomer_attribution(clf, graph, target=1)
    p = clf.predict_proba([graph])[0, 1]
    assert att.kind == "log_odds" and att.output == pytest.approx(np.log(p / (1 - p)), rel=1e-8)
    logit = monomer_attribution(clf, graph, target=1, output="logit", baseline=np.full(128, 0.5))
    assert logit.kind == "logit" and logit.baseline_output != att.baseline_output


def test_regressor_attribution_is_in_the_target_units():
    # GNNRegressor's model predicts standardised targets; the attribution was reported in those units
    # (output 0.12 for a prediction of 9665). Now output is predict's value, the baseline output the
    # prediction for the same graph with every node feature zeroed (the default baseline), and the
    # scores sum to their difference.
    from learners import GNNRegressor

    graphs = [glycan_graph(s) for s in (GLYCAN, "Gal(b1-4)GlcNAc", "Man(a1-3)[Man(a1-6)]Man", "Fuc(a1-2)Gal",
                                        "Neu5Ac(a2-3)Gal(b1-4)GlcNAc", "GlcNAc(b1-4)GlcNAc")]
    y = 1000.0 * np.array([g.number_of_nodes() for g in graphs]) + 5000.0
    reg = GNNRegressor(kind="gin", hidden=8, layers=1, epochs=3, batch_size=32, dtype=torch.float64).fit(graphs, y)
    att = monomer_attribution(reg, graphs[0], steps=128)
    blank = graphs[0].copy()
    for n in blank:
        blank.nodes[n]["x"] = np.zeros_like(blank.nodes[n]["x"])
    assert att.output == pytest.approx(float(reg.predict([graphs[0]])[0]), rel=1e-12)
    assert att.baseline_output == pytest.approx(float(reg.predict([blank])[0]), rel=1e-12)
    assert abs(att.completeness_gap) <= 2e-2 * abs(att.output - att.baseline_output)
