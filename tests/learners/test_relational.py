"""Relational GNN kinds (rgcn, compgcn), the multi-task classifier and its loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from learners.data import graphs_to_data
from learners.errors import InputError
from learners.estimators import GNNClassifier, GNNMultiTaskClassifier, load_estimator, save_estimator
from learners.models import GraphModel, graph_inputs, multitask_loss, relation_table
from reprs.glycans import glycan_graph


def _batch(strings, dtype=torch.float64):
    from torch_geometric.data import Batch

    return Batch.from_data_list(graphs_to_data([glycan_graph(s) for s in strings], dtype=dtype))


def _loop_forward(model: GraphModel, batch, conv_by_hand) -> torch.Tensor:
    """GraphModel's forward with each layer computed by ``conv_by_hand``: encoder, residual ReLU
    layers, mean readout per graph, head."""
    rel = model.relation_ids(batch.edge_attr).tolist()
    direction = batch.edge_dir.tolist()
    edges = [(int(u), int(v), r, d) for (u, v), r, d in zip(batch.edge_index.T.tolist(), rel, direction)]
    h = model.encoder(batch.x)
    z = model.relation_embedding.weight if model.kind == "compgcn" else None
    for conv in model.convs:
        m, z = conv_by_hand(conv, h, edges, z)
        h = h + torch.relu(m)
    b = batch.batch
    pooled = torch.stack([h[b == g].mean(0) for g in range(int(b.max()) + 1)])
    return model.head(pooled)


def _rgcn_by_hand(n_relations: int):
    """Schlichtkrull et al. (2018) eq. 2, one edge at a time: h_i' = W_0 h_i + b + sum over relations
    r (each linkage and its inverse) of 1/c_{i,r} sum_{j in N_i^r} W_r h_j, with c_{i,r} = |N_i^r|
    and W_r = sum_b a_rb V_b (eq. 3) when the layer has bases."""

    def conv(layer, h, edges, z):
        if layer.num_bases is None:
            weights = [layer.weight[t] for t in range(2 * n_relations)]
        else:
            weights = [sum(layer.comp[t, k] * layer.weight[k] for k in range(layer.num_bases))
                       for t in range(2 * n_relations)]
        out = []
        for i in range(h.shape[0]):
            total = h[i] @ layer.root + layer.bias
            for t in range(2 * n_relations):
                nbrs = [u for u, v, r, d in edges if v == i and r + n_relations * d == t]
                if nbrs:
                    total = total + sum(h[u] @ weights[t] for u in nbrs) / len(nbrs)
            out.append(total)
        return torch.stack(out), z

    return conv


def _corr_by_hand(a, b):
    d = a.shape[0]
    return torch.stack([sum(a[i] * b[(i + k) % d] for i in range(d)) for k in range(d)])


def _compgcn_by_hand(conv, h, edges, z):
    """Vashishth et al. (2020) eqs. 4-5, one edge at a time, with the normalisation documented in
    CompGCNConv (each direction's messages averaged) and circular correlation as an explicit sum."""
    phi = {"sub": lambda a, b: a - b, "mult": lambda a, b: a * b, "corr": _corr_by_hand}[conv.composition]
    n_rel = z.shape[0] // 2
    w = {0: conv.w_orig.weight, 1: conv.w_inv.weight}
    out = []
    for v in range(h.shape[0]):
        total = conv.w_self.weight @ phi(h[v], conv.self_relation) + conv.w_self.bias
        for d in (0, 1):
            into = [(u, r) for u, t, r, dd in edges if t == v and dd == d]
            for u, r in into:
                total = total + w[d] @ phi(h[u], z[r + n_rel * d]) / len(into)
        out.append(total)
    return torch.stack(out), z @ conv.w_rel.weight.T


HAND_GLYCANS = ["Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc", "Gal(b1-4)Glc", "Man(a1-3)[Man(a1-6)]Man(b1-4)GlcNAc",
                "Fuc(a1-2)Gal(b1-3)GalNAc"]


@pytest.mark.parametrize("num_bases", [None, 3])
def test_rgcn_equals_a_per_edge_loop_of_schlichtkrull_eq_2(num_bases):
    batch = _batch(HAND_GLYCANS)
    table = relation_table(batch.edge_attr[batch.edge_dir == 0][:-2])  # the last linkage: "other"
    r = table.shape[0] + 1
    model = GraphModel(kind="rgcn", in_dim=128, edge_dim=table.shape[1], n_outputs=3, relations=table, hidden=6,
                       layers=2, num_bases=num_bases, dtype=torch.float64, seed=3)
    assert model.convs[0].num_relations == 2 * r and model.convs[0].num_bases == num_bases
    with torch.no_grad():
        np.testing.assert_allclose(model(*graph_inputs(batch)).numpy(),
                                   _loop_forward(model, batch, _rgcn_by_hand(r)).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("composition", ["sub", "mult", "corr"])
def test_compgcn_equals_a_per_edge_loop_of_vashishth_eqs_4_5(composition):
    batch = _batch(HAND_GLYCANS)
    table = relation_table(batch.edge_attr)
    model = GraphModel(kind="compgcn", in_dim=128, edge_dim=table.shape[1], n_outputs=3, relations=table, hidden=5,
                       layers=2, composition=composition, dtype=torch.float64, seed=4)
    with torch.no_grad():
        np.testing.assert_allclose(model(*graph_inputs(batch)).numpy(),
                                   _loop_forward(model, batch, _compgcn_by_hand).numpy(), rtol=1e-10, atol=1e-12)


def test_circular_correlation_matches_numpy():
    from learners.models import compose

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))
    # numpy's correlate in "full" mode on a wrapped copy gives the circular correlation
    ref = np.stack([np.array([np.dot(a[i], np.roll(b[i], -k)) for k in range(7)]) for i in range(3)])
    np.testing.assert_allclose(compose(torch.tensor(a), torch.tensor(b), "corr").numpy(), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(InputError, match="composition"):
        GraphModel(kind="compgcn", in_dim=4, edge_dim=3, n_outputs=2, relations=torch.zeros(1, 3), composition="add")


def test_edge_dir_marks_the_stored_child_to_parent_edges():
    graph = glycan_graph("Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc")
    (data,) = graphs_to_data([graph], dtype=torch.float64)
    stored = {(u, v) for u, v in graph.edges}
    for (u, v), d in zip(data.edge_index.T.tolist(), data.edge_dir.tolist()):
        assert ((u, v) in stored) == (d == 0)
    (blind,) = graphs_to_data([graph.to_undirected()], dtype=torch.float64)
    assert blind.edge_index.shape == data.edge_index.shape and not blind.edge_dir.any()


@pytest.mark.parametrize("num_bases", [None, 4])
def test_rgcn_layer_equals_pyg_rgcnconv_on_the_same_weights(num_bases):
    from torch_geometric.nn import RGCNConv

    from learners.models import RGCNLayer

    gen = torch.Generator().manual_seed(0)
    n, n_edges, r = 30, 80, 9
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    ei = torch.randint(0, n - 3, (2, n_edges), generator=gen)  # the last 3 nodes receive nothing
    types = torch.randint(0, r - 1, (n_edges,), generator=gen)  # relation r - 1 is never used
    ours = RGCNLayer(5, 4, r, num_bases=num_bases).double()
    peer = RGCNConv(5, 4, r, num_bases=num_bases, aggr="mean").double()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in peer.state_dict().items()}
    peer.load_state_dict(ours.state_dict())
    expected = peer(x, ei, types)
    got = ours(x, ei, types)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    # and the gradients with respect to every weight
    for a, b in zip(torch.autograd.grad(got.square().sum(), list(ours.parameters())),
                    torch.autograd.grad(expected.square().sum(), list(peer.parameters()))):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    # a graph without edges: the root term alone
    none = torch.zeros((2, 0), dtype=torch.long)
    np.testing.assert_allclose(ours(x, none, types[:0]).detach().numpy(), (x @ ours.root + ours.bias).detach().numpy())


@pytest.mark.parametrize("kind", ["rgcn", "compgcn"])
def test_permuting_relations_with_their_weights_leaves_outputs_unchanged(kind):
    batch = _batch(["Man(a1-3)[Man(a1-6)]Man(b1-4)GlcNAc", "Fuc(a1-2)Gal(b1-3)GlcNAc", "Neu5Ac(a2-3)Gal(b1-4)Glc"])
    table = relation_table(batch.edge_attr)
    r = table.shape[0]
    assert r >= 4
    kw = dict(kind=kind, in_dim=128, edge_dim=table.shape[1], n_outputs=2, hidden=8, layers=2,
              dtype=torch.float64, num_bases=None, seed=1)
    a = GraphModel(relations=table, **kw)
    perm = torch.randperm(r, generator=torch.Generator().manual_seed(5))
    b = GraphModel(relations=table[perm], **kw)
    state = a.state_dict()
    # the "other" relation stays last; the inverses (rows r + 1 ...) follow their relations
    full = torch.cat([perm, torch.tensor([r]), perm + r + 1, torch.tensor([2 * r + 1])])
    for key in list(state):
        if kind == "rgcn" and key.endswith(".weight") and key.startswith("convs."):
            state[key] = state[key][full]
        if kind == "compgcn" and key == "relation_embedding.weight":
            state[key] = state[key][full]
    state["relations"] = table[perm]
    b.load_state_dict(state)
    with torch.no_grad():
        np.testing.assert_allclose(a(*graph_inputs(batch)).numpy(), b(*graph_inputs(batch)).numpy(), rtol=1e-10)
        # and the relation matters: shuffling the relation embeddings / weights without the table changes outputs
        state[("convs.0.weight" if kind == "rgcn" else "relation_embedding.weight")] = \
            state["convs.0.weight" if kind == "rgcn" else "relation_embedding.weight"].flip(0)
        b.load_state_dict(state)
        assert not np.allclose(a(*graph_inputs(batch)).numpy(), b(*graph_inputs(batch)).numpy())


def test_unseen_edge_features_take_the_other_relation():
    batch = _batch(["Gal(b1-4)GlcNAc", "Gal(b1-3)GlcNAc"])
    table = relation_table(batch.edge_attr[:1])
    model = GraphModel(kind="rgcn", in_dim=128, edge_dim=table.shape[1], n_outputs=2, relations=table, dtype=torch.float64)
    ids = model.relation_ids(batch.edge_attr)
    b14 = (batch.edge_attr == batch.edge_attr[0]).all(1)
    assert (ids[b14] == 0).all() and (ids[~b14] == 1).all()


def _linkage_pairs():
    """Glycans that differ only in a linkage position: same residues, same tree, same anomers."""
    arms = ["Gal", "Glc", "Man", "GlcNAc", "GalNAc", "Fuc", "Xyl"]
    strings, labels = [], []
    for a in arms:
        for b in arms:
            for pos, label in (("3", 0), ("6", 1)):
                strings.append(f"{a}(b1-4){b}(b1-{pos})Man")
                labels.append(label)
    return strings, np.array(labels)


@pytest.mark.parametrize("kind", ["rgcn", "compgcn"])
def test_relational_kinds_learn_what_linkage_blind_kinds_cannot(kind):
    strings, y = _linkage_pairs()
    graphs = [glycan_graph(s) for s in strings]
    blind = GNNClassifier(kind="gin", hidden=16, layers=2, epochs=60, lr=1e-2, seed=0).fit(graphs, y)
    proba = blind.predict_proba(graphs)
    # GIN ignores edge features: the two members of each pair are the same input, so the same output.
    np.testing.assert_allclose(proba[0::2], proba[1::2], atol=1e-6)
    assert blind.score(graphs, y) <= 0.5
    relational = GNNClassifier(kind=kind, hidden=16, layers=2, epochs=60, lr=1e-2, seed=0,
                               min_relation_count=1).fit(graphs, y)
    assert relational.score(graphs, y) == 1.0


def _direction_pairs():
    """Disaccharides A(b1-4)B and B(b1-4)A, labelled by whether the reducing-end residue B is a
    hexosamine: the two members of a pair hold the same residues joined by the same linkage, so only
    the edge's direction tells them apart."""
    amines, others = ["GlcNAc", "GalNAc", "ManNAc"], ["Gal", "Glc", "Man", "Fuc", "Xyl"]
    strings, labels = [], []
    for a in amines:
        for b in others:
            strings += [f"{b}(b1-4){a}", f"{a}(b1-4){b}"]
            labels += [1, 0]
    return strings, np.array(labels)


@pytest.mark.parametrize("kind", ["rgcn", "compgcn"])
def test_relational_kinds_learn_a_direction_only_task(kind):
    strings, y = _direction_pairs()
    graphs = [glycan_graph(s) for s in strings]
    kw = dict(kind=kind, hidden=16, layers=2, epochs=80, lr=1e-2, seed=0, min_relation_count=1)
    # The same graphs without their direction (nx.Graph: no inverse relations) are the same input twice.
    blind = GNNClassifier(**kw).fit([g.to_undirected() for g in graphs], y)
    proba = blind.predict_proba([g.to_undirected() for g in graphs])
    np.testing.assert_allclose(proba[0::2], proba[1::2], atol=1e-6)
    assert blind.score([g.to_undirected() for g in graphs], y) == 0.5
    assert GNNClassifier(**kw).fit(graphs, y).score(graphs, y) == 1.0


def test_compgcn_round_trips_through_save_with_its_composition(tmp_path):
    strings, y = _direction_pairs()
    graphs = [glycan_graph(s) for s in strings]
    clf = GNNClassifier(kind="compgcn", composition="corr", hidden=8, layers=2, epochs=2, min_relation_count=1)
    clf.fit(graphs, y)
    loaded = load_estimator(save_estimator(clf, tmp_path / "c.pt"))
    assert loaded.model_.convs[0].composition == "corr" and loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(graphs), clf.predict_proba(graphs))


def test_relational_estimator_round_trips_through_save(tmp_path):
    strings, y = _linkage_pairs()
    graphs = [glycan_graph(s) for s in strings[:20]]
    clf = GNNClassifier(kind="rgcn", hidden=8, layers=1, epochs=2, min_relation_count=1).fit(graphs, y[:20])
    loaded = load_estimator(save_estimator(clf, tmp_path / "e.pt"))
    np.testing.assert_allclose(loaded.predict_proba(graphs), clf.predict_proba(graphs))


def test_relational_kinds_need_relations_of_the_edge_width():
    with pytest.raises(InputError, match="needs relations"):
        GraphModel(kind="rgcn", in_dim=4, edge_dim=3, n_outputs=2)
    with pytest.raises(InputError, match="edge_dim=3"):
        GraphModel(kind="compgcn", in_dim=4, edge_dim=3, n_outputs=2, relations=torch.zeros(2, 5))


def test_multitask_loss_is_chance_scaled_and_balanced():
    gen = torch.Generator().manual_seed(0)
    sizes = (2, 5)
    out = torch.randn(6, 7, generator=gen, dtype=torch.float64)
    y = torch.tensor([[0, 1], [1, 4], [0, 0], [1, 2], [0, 3], [1, -1]])
    f = torch.nn.functional
    l0 = f.cross_entropy(out[:, :2], y[:, 0]) / math.log(2)
    l1 = f.cross_entropy(out[:5, 2:], y[:5, 1]) / math.log(5)  # -1: ignored
    assert float(multitask_loss(out, y, sizes, temperature=None)) == pytest.approx(float(l0 + l1), rel=1e-12)
    w = 2 * torch.softmax(torch.stack([l0, l1]) / 0.5, 0)
    assert float(multitask_loss(out, y, sizes, temperature=0.5)) == pytest.approx(float(w[0] * l0 + w[1] * l1), rel=1e-12)
    # a very high temperature approaches equal weights
    assert float(multitask_loss(out, y, sizes, temperature=1e9)) == pytest.approx(float(l0 + l1), rel=1e-6)


def test_multitask_classifier_learns_two_tasks_and_refuses_a_single_class():
    strings, y = _linkage_pairs()
    graphs = [glycan_graph(s) for s in strings]
    first = np.array([s.split("(")[0] for s in strings])
    labels = np.stack([y, first], axis=1)
    clf = GNNMultiTaskClassifier(kind="rgcn", hidden=16, layers=2, epochs=60, lr=1e-2, min_relation_count=1).fit(graphs, labels)
    assert clf.predict(graphs).shape == (len(graphs), 2)
    from sklearn.base import clone

    assert clone(clf).get_params() == clf.get_params() and clf.get_params()["temperature"] == 2.0
    assert clf.score(graphs, labels) == 1.0
    with pytest.raises(InputError, match="single class"):
        GNNMultiTaskClassifier(kind="gin", epochs=1).fit(graphs, np.stack([y, np.zeros_like(y)], axis=1))


def test_multitask_classifier_round_trips_through_save(tmp_path):
    import pandas as pd

    strings, y = _linkage_pairs()
    graphs = [glycan_graph(s) for s in strings[:40]]
    first = np.array([s.split("(")[0] for s in strings[:40]])
    last = np.array([s.split(")")[1].split("(")[0] for s in strings[:40]])
    labels = pd.DataFrame({"position": y[:40], "first": first, "middle": last})
    clf = GNNMultiTaskClassifier(kind="rgcn", hidden=8, layers=1, epochs=3, lr=1e-2, min_relation_count=1,
                                 temperature=0.5).fit(graphs, labels)
    assert clf.task_names_ == ["position", "first", "middle"]
    loaded = load_estimator(save_estimator(clf, tmp_path / "mt.pt"))
    assert type(loaded) is GNNMultiTaskClassifier and loaded.get_params() == clf.get_params()
    assert loaded.task_names_ == clf.task_names_ and loaded.model_.head_sizes == (2, len(set(first)), len(set(last))) == (2, 3, 7)
    for before, after, classes, loaded_classes in zip(clf.predict_proba(graphs), loaded.predict_proba(graphs),
                                                       clf.classes_, loaded.classes_):
        np.testing.assert_array_equal(after, before)  # every level, bit for bit
        assert list(loaded_classes) == list(classes)
    np.testing.assert_array_equal(loaded.predict(graphs), clf.predict(graphs))
    # Another kind of torch file (a trainer checkpoint, an estimator class this matrep does not know) is
    # refused with a message, not a KeyError.
    torch.save({"epoch": 3, "model": clf.model_.state_dict()}, tmp_path / "checkpoint.pt")
    with pytest.raises(InputError, match="not a matrep estimator file"):
        load_estimator(tmp_path / "checkpoint.pt")
    payload = torch.load(tmp_path / "mt.pt", weights_only=True)
    torch.save({**payload, "class": "GNNFutureEstimator"}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="holds a 'GNNFutureEstimator', which load_estimator does not read; it reads "
                                         "GNNClassifier, GNNRegressor, GNNMultiTaskClassifier, BindingRegressor"):
        load_estimator(tmp_path / "other.pt")


def test_a_relational_model_saved_with_other_weight_shapes_is_refused(tmp_path):
    strings, y = _direction_pairs()
    graphs = [glycan_graph(s) for s in strings]
    clf = GNNClassifier(kind="compgcn", hidden=8, layers=1, epochs=1, min_relation_count=1).fit(graphs, y)
    path = save_estimator(clf, tmp_path / "c.pt")
    payload = torch.load(path, weights_only=True)
    # a relation embedding without inverse rows, as compgcn files of earlier matrep versions hold
    payload["state_dict"]["relation_embedding.weight"] = payload["state_dict"]["relation_embedding.weight"][:2]
    torch.save(payload, path)
    with pytest.raises(InputError, match="another architecture.*train the model again"):
        load_estimator(path)


def test_min_relation_count_counts_each_linkage_once():
    # a1-3 on four stored edges, b1-4 on three: graphs_to_data doubles both (reverse copies), which
    # must not make b1-4 reach a threshold of four.
    strings = ["Gal(a1-3)Gal"] * 4 + ["Gal(b1-4)Glc"] * 3
    graphs = [glycan_graph(s) for s in strings]
    y = np.array([0, 1, 0, 1, 0, 1, 0])
    batch = _batch(strings)
    assert int((batch.edge_dir == 1).sum()) == 7  # each linkage is there twice
    once = relation_table(batch.edge_attr, min_count=4, edge_dir=batch.edge_dir)
    np.testing.assert_array_equal(once.numpy(), relation_table(batch.edge_attr[:1]).numpy())  # a1-3 only
    assert len(relation_table(batch.edge_attr, min_count=3, edge_dir=batch.edge_dir)) == 2
    for kind in ("rgcn", "compgcn"):
        clf = GNNClassifier(kind=kind, hidden=4, layers=1, epochs=1, min_relation_count=4, seed=0,
                            validation_fraction=0).fit(graphs, y)
        assert len(clf.relations_) == 1
    with pytest.raises(InputError, match="one entry per edge"):
        relation_table(batch.edge_attr, edge_dir=batch.edge_dir[:-1])
    # Continuous edge features: relation_ids would take an edge 0.3 away from a relation for that
    # relation (it matches within 0.5, exact for 0/1 rows only); refused instead of merged silently.
    with pytest.raises(InputError, match="discrete 0/1 edge features"):
        relation_table(batch.edge_attr * 0.7)


def test_multitask_labels_in_a_dataframe_are_matched_by_column_name(tmp_path):
    """Validation and scoring labels given as a DataFrame with the tasks in another order were taken by
    position: each task's labels met another task's classes, none of which they are, so every validation
    label counted as unseen (measured here: epoch 1 validation loss 0.0 and accuracy 0.0 instead of 2.17
    and 0.25; the loss stayed 0.0, so early stopping kept epoch 1), with no error. Matched by name now."""
    import pandas as pd

    strings, y = _linkage_pairs()
    graphs = [glycan_graph(s) for s in strings[:40]]
    labels = pd.DataFrame({"position": y[:40], "first": [s.split("(")[0] for s in strings[:40]]})
    swapped = labels[["first", "position"]]
    fits = [GNNMultiTaskClassifier(kind="gin", hidden=8, layers=1, epochs=3, lr=1e-2)
            .fit(graphs[:30], labels.iloc[:30], val=(graphs[30:], val.iloc[30:])) for val in (labels, swapped)]
    keys = ("val_loss", "val_accuracy", "val_accuracy_0", "val_accuracy_1")
    assert [[r[k] for k in keys] for r in fits[0].history_] == [[r[k] for k in keys] for r in fits[1].history_]
    clf = fits[0]
    assert clf.score(graphs, swapped) == clf.score(graphs, labels) == clf.score(graphs, labels.to_numpy())
    loaded = load_estimator(save_estimator(clf, tmp_path / "mt.pt"))
    assert loaded.score(graphs, swapped) == clf.score(graphs, labels)
    with pytest.raises(InputError, match=r"label columns \['position', 'level'\] are not the tasks"):
        clf.score(graphs, labels.rename(columns={"first": "level"}))
