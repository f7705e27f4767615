"""GraphModel: shapes, permutation invariance, seeds, device/dtype plumbing, bad input."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

from learners.data import graphs_to_data
from learners.errors import InputError, InputTypeError
from learners.models import MODEL_KINDS, RELATIONAL_KINDS, GraphModel, graph_inputs, relation_table
from learners.trainer import pyg_collate, resolve_device
from reprs.glycans import glycan_graph

GLYCAN = "Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man(a1-3)[Man(a1-6)]Man(b1-4)GlcNAc"


def _model(kind: str, **kw) -> GraphModel:
    if kind in RELATIONAL_KINDS:
        # the glycan's linkages but its rarest: that one takes the "other" relation
        edges = graphs_to_data([glycan_graph(GLYCAN)], dtype=torch.float64)[0].edge_attr
        kw["relations"] = relation_table(edges)[:-1]
    return GraphModel(kind=kind, in_dim=128, edge_dim=40, n_outputs=3, hidden=16, layers=2, dtype=torch.float64, **kw)


def _relabelled(graph: nx.DiGraph, seed: int) -> nx.DiGraph:
    """The same graph with its nodes inserted in a shuffled order (rows of x permuted)."""
    order = list(graph.nodes)
    torch.manual_seed(seed)
    order = [order[i] for i in torch.randperm(len(order)).tolist()]
    g = nx.DiGraph(**graph.graph)
    g.add_nodes_from((n, graph.nodes[n]) for n in order)
    g.add_edges_from(graph.edges(data=True))
    return g


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_outputs_are_invariant_to_node_order(kind):
    graph = glycan_graph(GLYCAN)
    model = _model(kind).eval()
    ref = model(*graph_inputs(pyg_collate(graphs_to_data([graph], dtype=torch.float64))))
    out = model(*graph_inputs(pyg_collate(graphs_to_data([_relabelled(graph, 3)], dtype=torch.float64))))
    assert ref.shape == (1, 3)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_batched_outputs_equal_one_graph_at_a_time(kind):
    graphs = [glycan_graph(s) for s in (GLYCAN, "Gal(b1-4)GlcNAc", "Glc")]
    model = _model(kind).eval()
    batched = model(*graph_inputs(pyg_collate(graphs_to_data(graphs, dtype=torch.float64, edge_dim=40))))
    single = torch.cat([model(*graph_inputs(pyg_collate(graphs_to_data([g], dtype=torch.float64, edge_dim=40)))) for g in graphs])
    torch.testing.assert_close(batched, single, rtol=1e-9, atol=1e-9)


def cuda_rng_state() -> list:
    """The CUDA generators' states on a GPU machine; elsewhere the seeding torch queues for when CUDA
    starts (``torch.cuda._lazy_seed_tracker``, private: where a ``torch.manual_seed`` leaks to)."""
    if torch.cuda.is_available():
        return [s.numpy().tobytes() for s in torch.cuda.get_rng_state_all()]
    return [c and c[0] for c in torch.cuda._lazy_seed_tracker.get_calls()]


def test_seed_fixes_the_initial_weights_and_leaves_global_rng_alone():
    from learners.potentials import PaiNN, SchNet

    state, cuda = torch.get_rng_state(), cuda_rng_state()
    a, b, c = _model("gine", seed=7), _model("gine", seed=7), _model("gine", seed=8)
    PaiNN(cutoff=3.0, n_features=4, n_interactions=1, seed=2), SchNet(cutoff=3.0, n_features=4, seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    assert cuda_rng_state() == cuda  # torch.manual_seed used to reseed every CUDA generator
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def _binding_model():
    from learners.binding import BindingRegressor

    fitted = BindingRegressor(kind="gin", hidden=8, layers=1, seed=3, dtype=torch.float64)
    fitted.n_features_in_, fitted.edge_dim_, fitted.protein_dim_, fitted.relations_ = 5, None, 4, None
    return fitted._new_model()


def _cgvae():
    import numpy as np
    from ase import Atoms

    from learners.backmap import CGVAE
    from reprs.cg_mapping import alpha_carbon_mapping

    mapping = alpha_carbon_mapping(Atoms("C3", positions=np.eye(3)), residues=[0, 1, 2], alpha_carbons=[0, 1, 2])
    return CGVAE(mapping, [6, 6, 6], n_features=4, seed=5, dtype=torch.float64)


def _seeded_builders():
    from learners.diabatic import DiabaticPaiNN
    from learners.potentials import PaiNN, SchNet
    from sims.enhanced import BasisSetBias

    return {"gine": lambda: _model("gine", seed=4), "rgcn": lambda: _model("rgcn", seed=4),
            "attentivefp": lambda: _model("attentivefp", seed=4),
            "painn": lambda: PaiNN(cutoff=3.0, n_features=4, n_interactions=1, seed=2, dtype=torch.float64),
            "schnet": lambda: SchNet(cutoff=3.0, n_features=4, seed=2, dtype=torch.float64),
            "diabatic": lambda: DiabaticPaiNN(n_features=4, n_interactions=1, seed=2, dtype=torch.float64),
            "binding": _binding_model, "cgvae": _cgvae,
            "basis_set_bias": lambda: BasisSetBias(["position:0,x"], lower=[-1.0], upper=[1.0], n_basis=4, hidden=4,
                                                   seed=5)}


@pytest.mark.parametrize("name", sorted(_seeded_builders()))
def test_seeded_weights_do_not_depend_on_the_default_dtype(name):
    """A seed fixes the initial weights whatever torch's global default dtype: they were drawn in it, and
    torch's CPU sampler reads its stream differently per dtype (GraphModel's encoder moved by up to 1.1,
    PaiNN's embedding by 5, under torch.set_default_dtype(torch.float64)). They are drawn in float32 now,
    the default dtype restored afterwards."""
    build = _seeded_builders()[name]
    reference = build().state_dict()
    try:
        torch.set_default_dtype(torch.float64)
        under_float64 = build().state_dict()
        assert torch.get_default_dtype() == torch.float64  # restored, not left at float32
    finally:
        torch.set_default_dtype(torch.float32)
    assert reference.keys() == under_float64.keys()
    for key, value in reference.items():
        assert torch.equal(value, under_float64[key]), key


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_plumbing(dtype):
    model = GraphModel(kind="nnconv", in_dim=128, edge_dim=40, n_outputs=2, hidden=8, layers=1, device="cpu", dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {dtype}
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    batch = pyg_collate(graphs_to_data([glycan_graph(GLYCAN)], dtype=dtype))
    assert model(*graph_inputs(batch)).dtype == dtype
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_forward_matches_cpu():
    batch = pyg_collate(graphs_to_data([glycan_graph(GLYCAN)], dtype=torch.float64))
    cpu = _model("gine").eval()
    gpu = _model("gine", device="cuda").eval()
    torch.testing.assert_close(gpu(*graph_inputs(batch.to("cuda"))).cpu(), cpu(*graph_inputs(batch)))


def test_bad_constructor_arguments():
    with pytest.raises(InputError, match="unknown model kind 'sage'"):
        GraphModel(kind="sage", in_dim=4, n_outputs=2)
    with pytest.raises(InputError, match="edge_dim"):
        GraphModel(kind="gine", in_dim=4, n_outputs=2)
    with pytest.raises(InputError, match="readout"):
        GraphModel(kind="gcn", in_dim=4, n_outputs=2, readout="median")
    with pytest.raises(InputError, match="divisible"):
        GraphModel(kind="gat", in_dim=4, edge_dim=2, n_outputs=2, hidden=10, heads=4)
    with pytest.raises(InputError, match="task"):
        GraphModel(kind="gcn", in_dim=4, n_outputs=2, task="ranking")


def test_mismatched_feature_widths():
    model = _model("gine")
    batch = pyg_collate(graphs_to_data([glycan_graph(GLYCAN)], dtype=torch.float64))
    with pytest.raises(InputError, match="in_dim=128"):
        model(batch.x[:, :64], batch.edge_index, batch.edge_attr, batch.batch)
    with pytest.raises(InputError, match="edge_dim=40"):
        model(batch.x, batch.edge_index, None, batch.batch)
    g = glycan_graph("Gal(b1-4)GlcNAc")
    g.nodes[0]["x"] = g.nodes[0]["x"][:10]
    with pytest.raises(InputError, match="widths differ"):
        graphs_to_data([glycan_graph(GLYCAN), g])
    with pytest.raises(InputError, match="empty"):
        graphs_to_data([])
    with pytest.raises(InputTypeError):
        graphs_to_data(["Gal(b1-4)GlcNAc"])


def test_features_of_another_dtype_are_refused():
    model = GraphModel(kind="nnconv", in_dim=128, edge_dim=40, n_outputs=2, hidden=8, layers=1)  # float32
    batch = pyg_collate(graphs_to_data([glycan_graph(GLYCAN)], dtype=torch.float64))
    with pytest.raises(InputError, match="torch.float64.*model is torch.float32"):
        model(*graph_inputs(batch))


@pytest.mark.parametrize("kind", ["gin", "rgcn", "attentivefp"])
def test_a_graph_without_nodes_at_the_end_of_a_batch_keeps_its_row(kind):
    """The readout sized itself from the node-to-graph vector, so a PyG batch whose last graph has no
    nodes gave one row fewer than graphs (measured: 1 row for 2 graphs), silently misaligning
    predictions and targets after it. graph_inputs passes the batch's num_graphs now; attentivefp,
    whose readout is PyG's own, refuses such a batch."""
    from torch_geometric.data import Batch, Data

    (full,) = graphs_to_data([glycan_graph(GLYCAN)], dtype=torch.float64, edge_dim=40)
    empty = Data(x=torch.zeros(0, 128, dtype=torch.float64), edge_index=torch.zeros(2, 0, dtype=torch.long),
                 edge_attr=torch.zeros(0, 40, dtype=torch.float64), edge_dir=torch.zeros(0, dtype=torch.long),
                 num_nodes=0)
    model = _model(kind).eval()
    batch = Batch.from_data_list([full, empty])
    if kind == "attentivefp":
        with pytest.raises(InputError, match="last graph.*have no nodes"):
            model(*graph_inputs(batch))
        return
    out = model(*graph_inputs(batch))
    assert out.shape[0] == 2
    torch.testing.assert_close(out[0], model(*graph_inputs(Batch.from_data_list([full])))[0])
    # a graph without nodes pools to zeros: its output is the head's at 0
    torch.testing.assert_close(out[1], model.head(torch.zeros(1, 16, dtype=torch.float64))[0])
