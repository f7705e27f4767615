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
- RGCN: Schlichtkrull et al., ESWC 2018 (eq. 2 with inverse relations; basis decomposition eq. 3),
  :class:`RGCNLayer`, checked against PyG's ``RGCNConv``.
- CompGCN: Vashishth et al., ICLR 2020 (eqs. 4-5: weights W_O, W_I, W_S for original, inverse and
  self-loop edges; composition by difference, element-wise product or circular correlation;
  relation embeddings transformed per layer).
- GlycanML (Xu et al., arXiv:2405.16206) found these relational GNNs, with one relation per
  glycosidic linkage type, the best graph encoders of glycans.
- GLAMOUR (Mohapatra, An & Gomez-Bombarelli, arXiv:2103.02565) trained GCN, GAT, MPNN, Weave and
  AttentiveFP from DGL-LifeSci on the same glycan graphs.
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from learners.errors import InputError
from learners.metrics import TASKS
from sims.integrators import seeded_init

__all__ = ["GraphModel", "MODEL_KINDS", "RELATIONAL_KINDS", "READOUTS", "COMPOSITIONS", "task_loss", "graph_inputs",
           "relation_table", "CompGCNConv", "RGCNLayer", "compose", "multitask_loss", "KIND_OPTIONS", "unread_option",
           "unread_settings", "check_kind_options"]

#: Message-passing kinds, and whether each uses edge features.
MODEL_KINDS = {"gcn": False, "gin": False, "gine": True, "gat": True, "nnconv": True, "attentivefp": True,
               "rgcn": True, "compgcn": True}
#: Kinds whose messages depend on a discrete relation per edge: each distinct edge feature vector
#: (for glycan graphs, each linkage such as ``b1-4``) is one relation (see :func:`relation_table`).
RELATIONAL_KINDS = ("rgcn", "compgcn")
READOUTS = ("mean", "sum", "max")
#: Settings (of :class:`GraphModel` and the estimators) that only some kinds read -> the kinds that read
#: them; the others ignore them. ``attentivefp`` has its own attentive readout.
KIND_OPTIONS = {"composition": ("compgcn",), "num_bases": ("rgcn",), "min_relation_count": RELATIONAL_KINDS,
                "readout": tuple(k for k in MODEL_KINDS if k != "attentivefp")}


def unread_option(kind: str, names: Iterable[str]) -> str | None:
    """Why model ``kind`` ignores the first of the settings ``names`` that it does not read
    (:data:`KIND_OPTIONS`), as the end of an error message; None when it reads them all."""
    for name in names:
        readers = KIND_OPTIONS.get(name, (kind,))
        if kind not in readers:
            if name == "readout":
                return f"readout is not read by kind = {kind!r} (it has its own attentive readout)"
            return f"{name} is read by kind = {' or '.join(map(repr, readers))} only, not by kind = {kind!r}"
    return None


def unread_settings(cls: type, params: Mapping[str, Any]) -> list[str]:
    """The settings in ``params`` (keyword arguments of estimator class ``cls``, with its ``kind``)
    that differ from ``cls``'s defaults and that the kind does not read (:data:`KIND_OPTIONS`).
    Defaults do not count: every kind gets the same ones."""
    # each setting's default, from the first __init__ along the class hierarchy that declares it
    defaults = {}
    for klass in cls.__mro__[::-1]:
        if "__init__" in vars(klass):
            defaults.update({name: p.default for name, p in inspect.signature(klass.__init__).parameters.items()
                             if p.default is not inspect.Parameter.empty})
    kind = params.get("kind", defaults.get("kind"))
    return [name for name in KIND_OPTIONS if name in defaults and name in params
            and params[name] != defaults[name] and unread_option(kind, [name])]


def check_kind_options(estimator: Any) -> None:
    """Refuse a model setting of ``estimator`` that its ``kind`` does not read (``num_bases`` on a
    ``gine``, ``readout`` on an ``attentivefp``: :data:`KIND_OPTIONS`), as a config run
    does. A setting left at its default value is not refused: every kind gets the same defaults.

    Raises
    ------
    InputError
        Such a setting, by name and with the kinds that read it.
    """
    settings = {name: getattr(estimator, name) for name in ("kind", *KIND_OPTIONS) if hasattr(estimator, name)}
    unread = unread_settings(type(estimator), settings)
    if unread:
        raise InputError(f"{type(estimator).__name__}: {unread_option(estimator.kind, unread)}; "
                         "leave it out for this kind")


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


def relation_table(edge_attr: Any, *, min_count: int = 1, max_relations: int | None = None,
                   edge_dir: Any = None) -> torch.Tensor:
    """The relations of a relational GNN: the distinct edge feature rows, most frequent first.

    Parameters
    ----------
    edge_attr : array or tensor, shape (n_edges, edge_dim)
        The training graphs' edge features (glycan graphs: one row per linkage type).
    min_count : int
        Rows seen fewer times are not relations of their own; they share the extra "other"
        relation with rows never seen in training. Counted over the stored edges: with
        ``edge_dir``, the reverse copies (1) that :func:`learners.data.graphs_to_data` adds are
        left out, so a glycan linkage counts once, not twice.
    max_relations : int, optional
        Keep at most this many (the most frequent; ties by row order of ``numpy.unique``).
    edge_dir : array or tensor, shape (n_edges,), optional
        Per edge, 0 as stored, 1 a reverse copy (``Data.edge_dir``); None: every row counts.

    Returns
    -------
    torch.Tensor, shape (n_relations, edge_dim), float64

    Raises
    ------
    InputError
        Edge features other than 0/1 (relations are discrete edge types), or none occurring
        ``min_count`` times.
    """
    import numpy as np

    rows = np.asarray(edge_attr.detach().cpu() if isinstance(edge_attr, torch.Tensor) else edge_attr, dtype=float)
    if rows.ndim != 2 or len(rows) == 0:
        raise InputError(f"edge_attr must be a non-empty (n_edges, edge_dim) array, got shape {rows.shape}")
    if not np.isin(rows, (0.0, 1.0)).all():
        # GraphModel.relation_ids matches an edge to a relation within a distance of 0.5, which tells
        # 0/1 rows apart exactly; continuous features would be merged with a nearby relation silently.
        raise InputError("relational kinds (rgcn, compgcn) need discrete 0/1 edge features (one-hot types, "
                         f"fingerprint bits); got values such as {rows[~np.isin(rows, (0.0, 1.0))][:3].tolist()}: "
                         "use an edge-aware kind (gine, gat, attentivefp) for continuous edge features")
    if edge_dir is not None:
        edge_dir = np.asarray(edge_dir.detach().cpu() if isinstance(edge_dir, torch.Tensor) else edge_dir)
        if edge_dir.shape != (len(rows),):
            raise InputError(f"edge_dir must hold one entry per edge ({len(rows)}), got shape {edge_dir.shape}")
        rows = rows[edge_dir == 0]
    unique, counts = np.unique(rows, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= min_count][:max_relations]
    if len(order) == 0:
        raise InputError(f"no edge feature row occurs at least min_count={min_count} times")
    return torch.as_tensor(unique[order])


def _glorot(tensor: torch.Tensor) -> torch.Tensor:
    # PyG's glorot: U(-a, a) with a = sqrt(6 / (fan of the last two axes)), for 2-D and 3-D weights alike.
    bound = (6.0 / (tensor.shape[-2] + tensor.shape[-1])) ** 0.5
    return nn.init.uniform_(tensor, -bound, bound)


class RGCNLayer(nn.Module):
    """R-GCN layer (Schlichtkrull et al., ESWC 2018, eq. 2; basis decomposition eq. 3), vectorised.

    ``h_i' = W_0 h_i + b + sum_r 1/c_{i,r} sum_{j in N_i^r} W_r h_j`` with ``c_{i,r} = |N_i^r|`` and,
    with bases, ``W_r = sum_b a_rb V_b``. The same function and parameters (``weight``, ``comp``,
    ``root``, ``bias``, Glorot-initialised) as PyG's ``RGCNConv(aggr="mean")``, which loops over the
    relations one propagation each; here one scatter averages the neighbours per (node, relation)
    for all relations at once, and each relation's block of averages is multiplied by its matrix
    (with bases, the matrices ``sum_b a_rb V_b`` are formed first, as PyG does).
    ``tests/learners/test_relational.py`` checks it against ``RGCNConv`` on the same weights and
    ``benchmarks/relational_conv.py`` times both.
    """

    def __init__(self, in_dim: int, out_dim: int, num_relations: int, num_bases: int | None = None) -> None:
        super().__init__()
        self.num_relations, self.num_bases = num_relations, num_bases
        if num_bases is None:
            self.weight = nn.Parameter(_glorot(torch.empty(num_relations, in_dim, out_dim)))
            self.register_parameter("comp", None)
        else:
            self.weight = nn.Parameter(_glorot(torch.empty(num_bases, in_dim, out_dim)))
            self.comp = nn.Parameter(_glorot(torch.empty(num_relations, num_bases)))
        self.root = nn.Parameter(_glorot(torch.empty(in_dim, out_dim)))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor) -> torch.Tensor:
        """Node features ``(n_nodes, out_dim)``; ``edge_type`` (int, ``[0, num_relations)``) per edge."""
        src, dst = edge_index
        n, r = x.shape[0], self.num_relations
        out = x @ self.root + self.bias
        if src.numel() == 0:
            return out
        weight = self.weight if self.num_bases is None else torch.einsum("rb,bio->rio", self.comp, self.weight)
        # Slots (relation, target node) ordered by relation, so that each relation's averages are one
        # block for one matmul with its matrix.
        slots, inverse = torch.unique(edge_type * n + dst, return_inverse=True)
        count = torch.bincount(inverse, minlength=len(slots)).to(x.dtype)
        mean = torch.zeros(len(slots), x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, inverse, x[src])
        blocks = torch.split(mean / count[:, None], torch.bincount(slots // n, minlength=r).tolist())
        messages = torch.cat([block @ weight[k] for k, block in enumerate(blocks) if len(block)])
        return out.index_add(0, slots % n, messages)


#: Composition operators phi(h, z) of CompGCN (Vashishth et al., ICLR 2020, section 4).
COMPOSITIONS = ("sub", "mult", "corr")


def compose(h: torch.Tensor, z: torch.Tensor, composition: str) -> torch.Tensor:
    """CompGCN's composition ``phi(h, z)`` of node features with relation embeddings, row by row.

    ``"sub"``: ``h - z`` (TransE, Bordes et al. 2013); ``"mult"``: ``h * z`` (DistMult, Yang et al.
    2015); ``"corr"``: the circular correlation ``(h * z)_k = sum_i h_i z_((i + k) mod d)`` (HolE,
    Nickel, Rosasco & Poggio 2016), computed as ``irfft(conj(rfft(h)) rfft(z))``.
    """
    if composition == "sub":
        return h - z
    if composition == "mult":
        return h * z
    if composition == "corr":
        d = h.shape[-1]
        return torch.fft.irfft(torch.conj(torch.fft.rfft(h, dim=-1)) * torch.fft.rfft(z, dim=-1), n=d, dim=-1)
    raise InputError(f"unknown composition {composition!r}; choose one of {COMPOSITIONS}")


class CompGCNConv(nn.Module):
    """CompGCN layer (Vashishth et al., ICLR 2020, eqs. 4-5) on a graph with a relation and a direction per edge.

    Every edge ``u -> v`` of relation ``r`` is an *original* edge (direction 0: as stored, for glycan
    graphs child -> parent) or an *inverse* one (direction 1: the reverse copy that
    :func:`learners.data.graphs_to_data` adds, relation ``r^-1``), and each node has a self-loop of
    relation ``T``. With ``d in {O, I}`` and ``N_d(v)`` the direction-``d`` edges into ``v``::

        h_v' = W_S phi(h_v, z_T) + sum_d 1/|N_d(v)| sum_{(u, r) in N_d(v)} W_d phi(h_u, z_r) + b
        z_r' = W_rel z_r

    ``z`` holds one embedding per relation and per direction (rows ``r`` and ``r + n_relations``),
    so ``r`` and ``r^-1`` are embedded apart, as in the paper; ``z_T`` is a parameter of the layer
    (the authors' code, ``loop_rel``). ``phi`` is :func:`compose`.

    Normalisation: eq. 4 of the paper writes a plain sum; here each direction's messages are
    averaged (``1/|N_d(v)|``, Schlichtkrull et al.'s ``c_{i,r}`` per direction), which keeps a branching
    residue's input on the scale of a chain residue's. The authors' code instead scales by
    ``deg^-1/2`` of both ends and averages the three terms (a factor 1/3 that the weights absorb).
    """

    def __init__(self, hidden: int, composition: str = "mult") -> None:
        super().__init__()
        if composition not in COMPOSITIONS:
            raise InputError(f"composition must be one of {COMPOSITIONS}, got {composition!r}")
        self.composition = composition
        self.w_orig = nn.Linear(hidden, hidden, bias=False)
        self.w_inv = nn.Linear(hidden, hidden, bias=False)
        self.w_self = nn.Linear(hidden, hidden)
        self.w_rel = nn.Linear(hidden, hidden, bias=False)
        self.self_relation = nn.Parameter(torch.empty(hidden))
        # The authors draw loop_rel with Xavier-normal; a unit-scale normal keeps "mult" away from zero.
        nn.init.normal_(self.self_relation, mean=1.0 if composition == "mult" else 0.0, std=hidden ** -0.5)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, relation: torch.Tensor, direction: torch.Tensor,
                z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Node embeddings ``(n_nodes, hidden)`` and relation embeddings ``(2 n_relations, hidden)`` after the layer.

        ``relation`` (int, ``[0, n_relations)``) and ``direction`` (0 original, 1 inverse) are per edge.
        """
        from torch_geometric.utils import scatter

        src, dst = edge_index
        n_relations = z.shape[0] // 2
        composed = compose(h[src], z[relation + n_relations * direction], self.composition)
        inverse = (direction == 1)[:, None]
        messages = torch.where(inverse, self.w_inv(composed), self.w_orig(composed))
        # 1/|N_d(v)|: in-degree of each node per direction, looked up at each edge's target.
        slot = dst * 2 + direction
        count = torch.bincount(slot, minlength=2 * h.shape[0]).to(h.dtype)
        messages = messages / count[slot][:, None]
        out = self.w_self(compose(h, self.self_relation, self.composition))
        return out + scatter(messages, dst, dim=0, dim_size=h.shape[0], reduce="sum"), self.w_rel(z)


def _conv(kind: str, hidden: int, edge_dim: int | None, heads: int, n_relations: int = 0,
          num_bases: int | None = None, composition: str = "mult") -> nn.Module:
    from torch_geometric import nn as gnn

    if kind == "rgcn":
        # Mean over each relation's neighbours plus a root weight: Schlichtkrull et al.'s eq. 2
        # with c_{i,r} = |N_i^r|, over 2 n_relations relations (each linkage and its inverse, the
        # paper's "canonical and inverse" relations); bases (eq. 3) when the relations outnumber them.
        bases = num_bases if num_bases is not None and num_bases < 2 * n_relations else None
        return RGCNLayer(hidden, hidden, 2 * n_relations, num_bases=bases)
    if kind == "compgcn":
        return CompGCNConv(hidden, composition)
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
    kind : {"gcn", "gin", "gine", "gat", "nnconv", "attentivefp", "rgcn", "compgcn"}
        Message-passing layer. ``gine``, ``gat``, ``nnconv``, ``attentivefp``, ``rgcn`` and
        ``compgcn`` use edge features (``edge_dim`` required; the relational kinds through
        ``relations``); ``gcn`` and ``gin`` ignore them.
    in_dim : int
        Node feature width (128 for glycan graphs' Morgan fingerprints).
    edge_dim : int, optional
        Edge feature width.
    n_outputs : int or sequence of int
        Classes (multiclass), labels (multilabel) or targets (regression). A sequence makes a
        multi-task model: one head per entry over the shared encoder, outputs concatenated
        (``n_heads_`` holds the sizes; see :func:`multitask_loss`).
    task : {"multiclass", "multilabel", "regression", "multitask"}
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
    relations : tensor, shape (n_relations, edge_dim)
        ``rgcn`` / ``compgcn`` only (required): the edge feature rows that are relations
        (:func:`relation_table`). An edge whose features match no row exactly takes one extra
        "other" relation. Each relation also has an inverse: an edge of direction 1 (the reverse
        copy of a stored edge, see ``edge_dir`` in :meth:`forward`) is of relation ``r^-1``, with
        its own weights (``rgcn``) or its own embedding and the weight ``W_I`` (``compgcn``).
    num_bases : int, optional
        ``rgcn``: basis decomposition of the relation weights (used when fewer bases than
        relations, inverses counted); None: a full weight matrix per relation.
    composition : {"mult", "sub", "corr"}
        ``compgcn``: how a neighbour's features meet its relation's embedding (:func:`compose`).
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
        relations: Any = None,
        num_bases: int | None = 8,
        composition: str = "mult",
        seed: int = 0,
        device: Any = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if kind not in MODEL_KINDS:
            raise InputError(f"unknown model kind {kind!r}; choose one of {sorted(MODEL_KINDS)}")
        if task not in (*TASKS, "multitask"):
            raise InputError(f"unknown task {task!r}; choose one of {(*TASKS, 'multitask')}")
        if readout not in READOUTS:
            raise InputError(f"unknown readout {readout!r}; choose one of {READOUTS}")
        head_sizes = tuple(n_outputs) if isinstance(n_outputs, (tuple, list)) else (n_outputs,)
        if not head_sizes or any(not isinstance(v, int) or v < 1 for v in head_sizes):
            raise InputError(f"n_outputs must be a positive int or a non-empty sequence of them, got {n_outputs!r}")
        n_outputs = sum(head_sizes)
        if len(head_sizes) > 1 and kind == "attentivefp":
            raise InputError("kind 'attentivefp' has its own readout and head; a multi-task model needs another kind")
        if kind == "compgcn" and composition not in COMPOSITIONS:
            raise InputError(f"unknown composition {composition!r}; choose one of {COMPOSITIONS}")
        if kind in RELATIONAL_KINDS:
            if relations is None:
                raise InputError(f"model kind {kind!r} needs relations=relation_table(training edge features)")
            relations = torch.as_tensor(relations)
            if relations.ndim != 2 or relations.shape[0] < 1 or relations.shape[1] != edge_dim:
                raise InputError(f"relations must have shape (n_relations >= 1, edge_dim={edge_dim}), got {tuple(relations.shape)}")
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
        self.head_sizes = head_sizes
        self.dropout = dropout
        with seeded_init(seed):
            if kind == "attentivefp":
                from torch_geometric.nn.models import AttentiveFP

                self.net = AttentiveFP(in_dim, hidden, n_outputs, edge_dim, num_layers=layers, num_timesteps=2, dropout=dropout)
            else:
                self.encoder = nn.Linear(in_dim, hidden)
                n_relations = 0
                if kind in RELATIONAL_KINDS:
                    self.register_buffer("relations", relations.to(torch.float64))
                    n_relations = relations.shape[0] + 1  # the last: "other"
                    if kind == "compgcn":
                        # Rows r: the relations as stored; rows r + n_relations: their inverses.
                        self.relation_embedding = nn.Embedding(2 * n_relations, hidden)
                self.convs = nn.ModuleList(_conv(kind, hidden, edge_dim, heads, n_relations, num_bases, composition)
                                           for _ in range(layers))
                heads_ = [nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, size))
                          for size in head_sizes]
                self.head = heads_[0] if len(heads_) == 1 else nn.ModuleList(heads_)
        self.to(device=torch.device(device), dtype=dtype)

    def relation_ids(self, edge_attr: torch.Tensor) -> torch.Tensor:
        """Relation index of each edge: the row of ``relations`` its features equal, else the "other" one."""
        table = self.relations.to(edge_attr.dtype)
        if edge_attr.shape[0] == 0:
            return torch.zeros(0, dtype=torch.long, device=edge_attr.device)
        distance = torch.cdist(edge_attr.detach(), table)
        nearest, index = distance.min(dim=1)
        # Features are 0/1 bits: an exact match has distance 0, any other row at least 1.
        return torch.where(nearest < 0.5, index, torch.full_like(index, table.shape[0]))

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor | None = None,
        batch: torch.Tensor | None = None,
        edge_dir: torch.Tensor | None = None,
        num_graphs: int | None = None,
    ) -> torch.Tensor:
        """Graph outputs ``(n_graphs, n_outputs)``: logits (classification) or values (regression).

        ``batch`` assigns each node to its graph (PyG's convention); None means one graph.
        ``edge_dir`` (int, per edge; :func:`learners.data.graphs_to_data` stores it) marks each edge
        as stored (0) or as the reverse copy of a stored edge (1); only ``rgcn`` and ``compgcn``
        read it, and None means every edge is as stored (no inverse relations: direction-blind).
        ``num_graphs`` (a PyG ``Batch``'s, passed by :func:`graph_inputs`) sizes the readout: from
        ``batch`` alone a graph without nodes at the end of the batch has no row, and the rows
        after it would be misaligned with their targets. Such a graph's pooled features are 0
        (``attentivefp``, whose readout is PyG's, refuses it).
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
            if num_graphs is not None and (batch.numel() == 0 or int(batch.max()) + 1 != num_graphs):
                raise InputError(f"the last graph(s) of this batch of {num_graphs} have no nodes; kind 'attentivefp' "
                                 "cannot pool an empty graph (leave empty graphs out)")
            return self.net(x, edge_index, edge_attr, batch)
        h = self.encoder(x)
        if self.kind in RELATIONAL_KINDS:
            relation = self.relation_ids(edge_attr)
            direction = torch.zeros_like(relation) if edge_dir is None else edge_dir.to(relation)
            if direction.shape != relation.shape or not ((direction == 0) | (direction == 1)).all():
                raise InputError(f"edge_dir must hold 0 or 1 per edge ({relation.shape[0]} edges), got "
                                 f"shape {tuple(direction.shape)}")
            z = self.relation_embedding.weight if self.kind == "compgcn" else None
        for conv in self.convs:
            if self.kind == "rgcn":
                m = conv(h, edge_index, relation + (self.relations.shape[0] + 1) * direction)
            elif self.kind == "compgcn":
                m, z = conv(h, edge_index, relation, direction, z)
            else:
                m = conv(h, edge_index, edge_attr) if self.edge_dim is not None else conv(h, edge_index)
            h = h + nn.functional.dropout(torch.relu(m), self.dropout, self.training)
        pool = {"mean": gnn.global_mean_pool, "sum": gnn.global_add_pool, "max": gnn.global_max_pool}[self.readout]
        pooled = pool(h, batch, size=num_graphs)
        if len(self.head_sizes) == 1:
            return self.head(pooled)
        return torch.cat([head(pooled) for head in self.head], dim=1)


def graph_inputs(batch) -> tuple:
    """The positional inputs of :meth:`GraphModel.forward` from a PyG ``Batch`` (``edge_dir``, ``num_graphs`` None where absent)."""
    return (batch.x, batch.edge_index, batch.edge_attr, batch.batch, getattr(batch, "edge_dir", None),
            getattr(batch, "num_graphs", None))


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


def multitask_loss(outputs: torch.Tensor, target: torch.Tensor, head_sizes: tuple[int, ...], *,
                   temperature: float | None = 2.0) -> torch.Tensor:
    """Balanced sum of per-task cross-entropies of a multi-head classifier.

    Task ``k``'s loss ``L_k`` (cross-entropy over its head's logits; targets ``-1`` are ignored:
    a class never seen in training) is first put on a common scale by its chance level,
    ``l_k = L_k / log C_k`` (the loss of a uniform guess over ``C_k`` classes is ``log C_k``), and the
    tasks are weighted by a temperature softmax over these scaled losses (detached),
    ``w = K softmax(l / T)``, so that tasks far from solved get more weight; ``T -> inf`` (None)
    gives equal weights on the scaled losses. A loss-based weighting in the spirit of the
    temperature-scaling balancing that GlycanML found best for its eight taxonomy tasks
    (arXiv:2405.16206, Table 4); the paper's exact rule was not available offline.

    Parameters
    ----------
    outputs : tensor, shape (n, sum(head_sizes))
    target : tensor, shape (n, K), int
    head_sizes : tuple of int
        Classes per task.
    temperature : float or None
    """
    import math

    if target.ndim != 2 or target.shape[1] != len(head_sizes):
        raise InputError(f"multi-task targets must have shape (n, {len(head_sizes)}), got {tuple(target.shape)}")
    if temperature is not None and temperature <= 0:
        raise InputError(f"temperature must be > 0 or None, got {temperature}")
    losses = []
    for k, logits in enumerate(torch.split(outputs, list(head_sizes), dim=1)):
        y = target[:, k].long()
        if (y >= 0).any():
            losses.append(nn.functional.cross_entropy(logits, y, ignore_index=-1) / math.log(max(head_sizes[k], 2)))
        else:
            losses.append(logits.sum() * 0.0)
    scaled = torch.stack(losses)
    if temperature is None:
        return scaled.sum()
    weights = len(losses) * torch.softmax(scaled.detach() / temperature, dim=0)
    return (weights * scaled).sum()
