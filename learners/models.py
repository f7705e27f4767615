"""Graph neural networks for graph-level prediction, behind one constructor.

``GraphModel(kind=..., in_dim=..., edge_dim=..., task=..., n_outputs=...)`` builds a node encoder,
``layers`` message-passing layers of the chosen kind (PyTorch Geometric convolutions, with
residual connections), a readout that pools nodes per graph, and an MLP head. AttentiveFP is
PyG's complete model (its own attentive readout).

References
----------
- GCN: Kipf & Welling, ICLR 2017. GIN / GINE: Xu et al., ICLR 2019; Hu et al., ICLR 2020.
- GAT (v2, with edge features): Brody, Alon & Yahav, ICLR 2022.
- Edge-conditioned MPNN (NNConv): Gilmer et al., ICML 2017.
- AttentiveFP: Xiong et al., J. Med. Chem. 63, 8749 (2020).
- GLAMOUR (Mohapatra, An & Gomez-Bombarelli, arXiv:2103.02565) trained GCN, GAT, MPNN, Weave and
  AttentiveFP from DGL-LifeSci on the same glycan graphs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from learners.errors import InputError
from learners.metrics import TASKS

__all__ = ["GraphModel", "MODEL_KINDS", "READOUTS", "task_loss", "graph_inputs"]

#: Message-passing kinds, and whether each uses edge features.
MODEL_KINDS = {"gcn": False, "gin": False, "gine": True, "gat": True, "nnconv": True, "attentivefp": True}
READOUTS = ("mean", "sum", "max")


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


def _conv(kind: str, hidden: int, edge_dim: int | None, heads: int) -> nn.Module:
    from torch_geometric import nn as gnn

    if kind == "gcn":
        return gnn.GCNConv(hidden, hidden)
    if kind == "gin":
        return gnn.GINConv(_mlp(hidden, hidden, hidden), train_eps=True)
    if kind == "gine":
        return gnn.GINEConv(_mlp(hidden, hidden, hidden), train_eps=True, edge_dim=edge_dim)
    if kind == "gat":
        # Concatenated heads of hidden // heads channels keep the width at ``hidden``.
        return gnn.GATv2Conv(hidden, hidden // heads, heads=heads, edge_dim=edge_dim, add_self_loops=True)
    # Edge-conditioned convolution: an MLP maps each edge feature vector to a hidden x hidden
    # matrix (Gilmer et al.'s "edge network"); mean aggregation as in DGL-LifeSci's MPNN.
    return gnn.NNConv(hidden, hidden, _mlp(edge_dim, hidden, hidden * hidden), aggr="mean")


class GraphModel(nn.Module):
    """A graph-level GNN: encoder, message passing, readout, head.

    Parameters
    ----------
    kind : {"gcn", "gin", "gine", "gat", "nnconv", "attentivefp"}
        Message-passing layer. ``gine``, ``gat``, ``nnconv`` and ``attentivefp`` use edge
        features (``edge_dim`` required); ``gcn`` and ``gin`` ignore them.
    in_dim : int
        Node feature width (128 for glycan graphs' Morgan fingerprints).
    edge_dim : int, optional
        Edge feature width.
    n_outputs : int
        Classes (multiclass), labels (multilabel) or targets (regression).
    task : {"multiclass", "multilabel", "regression"}
        Only recorded here (outputs are raw logits / values); it picks the loss in
        :func:`task_loss` and the metrics of the trainer.
    hidden : int
        Width of node embeddings.
    layers : int
        Message-passing layers.
    readout : {"mean", "sum", "max"}
        Node pooling per graph (ignored by ``attentivefp``, which has its own attentive readout).
    dropout : float
        Dropout on node embeddings after each layer and in the head.
    heads : int
        Attention heads of ``gat`` (``hidden`` must be divisible by it).
    seed : int
        Seed of the weight initialisation (the global torch RNG is left untouched).
    device, dtype
        Where and in which float type the weights live; default CPU, float32.

    Example
    -------
    >>> m = GraphModel(kind="gine", in_dim=128, edge_dim=40, n_outputs=3)
    >>> m(x, edge_index, edge_attr, batch).shape  # doctest: +SKIP
    torch.Size([n_graphs, 3])
    """

    def __init__(
        self,
        *,
        kind: str = "gine",
        in_dim: int,
        edge_dim: int | None = None,
        n_outputs: int,
        task: str = "multiclass",
        hidden: int = 64,
        layers: int = 3,
        readout: str = "mean",
        dropout: float = 0.0,
        heads: int = 4,
        seed: int = 0,
        device: Any = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if kind not in MODEL_KINDS:
            raise InputError(f"unknown model kind {kind!r}; choose one of {sorted(MODEL_KINDS)}")
        if task not in TASKS:
            raise InputError(f"unknown task {task!r}; choose one of {TASKS}")
        if readout not in READOUTS:
            raise InputError(f"unknown readout {readout!r}; choose one of {READOUTS}")
        for name, value in (("in_dim", in_dim), ("n_outputs", n_outputs), ("hidden", hidden), ("layers", layers)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if MODEL_KINDS[kind] and (not isinstance(edge_dim, int) or edge_dim < 1):
            raise InputError(f"model kind {kind!r} uses edge features: give edge_dim >= 1, got {edge_dim!r}")
        if kind == "gat" and hidden % heads:
            raise InputError(f"hidden={hidden} must be divisible by heads={heads} for kind 'gat'")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {dropout}")
        self.kind, self.task, self.readout = kind, task, readout
        self.in_dim, self.edge_dim, self.n_outputs = in_dim, edge_dim if MODEL_KINDS[kind] else None, n_outputs
        self.dropout = dropout
        with torch.random.fork_rng(devices=[]):
            # Seed only the CPU generator the initialisation draws from: torch.manual_seed would also
            # reseed every CUDA generator, which fork_rng(devices=[]) does not restore.
            torch.default_generator.manual_seed(seed)
            if kind == "attentivefp":
                from torch_geometric.nn.models import AttentiveFP

                self.net = AttentiveFP(in_dim, hidden, n_outputs, edge_dim, num_layers=layers, num_timesteps=2, dropout=dropout)
            else:
                self.encoder = nn.Linear(in_dim, hidden)
                self.convs = nn.ModuleList(_conv(kind, hidden, edge_dim, heads) for _ in range(layers))
                self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_outputs))
        self.to(device=torch.device(device), dtype=dtype)

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor | None = None,
        batch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Graph outputs ``(n_graphs, n_outputs)``: logits (classification) or values (regression).

        ``batch`` assigns each node to its graph (PyG's convention); None means one graph.
        """
        from torch_geometric import nn as gnn

        dtype = self.encoder.weight.dtype if self.kind != "attentivefp" else next(self.net.parameters()).dtype
        if x.dtype != dtype or (edge_attr is not None and edge_attr.dtype != dtype):
            # One precision per computation (docs/rules.md): never a float64 input through float32 weights.
            raise InputError(f"node/edge features are {x.dtype}/{None if edge_attr is None else edge_attr.dtype} but "
                             f"the model is {dtype}; cast the features or build the model with dtype={dtype}")
        if x.shape[-1] != self.in_dim:
            raise InputError(f"node features have width {x.shape[-1]}, the model expects in_dim={self.in_dim}")
        if self.edge_dim is not None and (edge_attr is None or edge_attr.shape[-1] != self.edge_dim):
            got = None if edge_attr is None else edge_attr.shape[-1]
            raise InputError(f"edge features have width {got}, the model expects edge_dim={self.edge_dim}")
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        if self.kind == "attentivefp":
            return self.net(x, edge_index, edge_attr, batch)
        h = self.encoder(x)
        for conv in self.convs:
            m = conv(h, edge_index, edge_attr) if self.edge_dim is not None else conv(h, edge_index)
            h = h + nn.functional.dropout(torch.relu(m), self.dropout, self.training)
        pool = {"mean": gnn.global_mean_pool, "sum": gnn.global_add_pool, "max": gnn.global_max_pool}[self.readout]
        return self.head(pool(h, batch))


def graph_inputs(batch) -> tuple:
    """The positional inputs of :meth:`GraphModel.forward` from a PyG ``Batch``."""
    return batch.x, batch.edge_index, batch.edge_attr, batch.batch


def task_loss(task: str, outputs: torch.Tensor, target: torch.Tensor, class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Training loss of ``task``: cross-entropy, binary cross-entropy on logits, or mean squared error."""
    f = nn.functional
    if task == "multiclass":
        return f.cross_entropy(outputs, target.long(), weight=class_weight)
    if task == "multilabel":
        return f.binary_cross_entropy_with_logits(outputs, target.to(outputs.dtype))
    if task == "regression":
        return f.mse_loss(outputs, target.to(outputs.dtype).reshape(outputs.shape))
    raise InputError(f"unknown task {task!r}; choose one of {TASKS}")
