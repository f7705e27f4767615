"""Lists of networkx graphs -> lists of PyG ``Data`` ready for batching, with checked feature widths."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

import networkx as nx
import numpy as np
import torch

from learners.errors import InputError, InputTypeError

__all__ = ["graphs_to_data", "feature_widths", "data_digest", "graph_data_digest"]


def feature_widths(graphs: Sequence[Any]) -> tuple[int, int | None]:
    """Node and edge feature widths shared by all ``graphs``.

    Raises
    ------
    InputTypeError
        If ``graphs`` is not a sequence of networkx graphs.
    InputError
        If it is empty, a graph has no nodes, or two graphs' (or a graph's) widths differ.
    """
    if isinstance(graphs, nx.Graph) or not isinstance(graphs, Sequence):
        raise InputTypeError(f"expected a list of networkx graphs, got {type(graphs).__name__}")
    if len(graphs) == 0:
        raise InputError("the list of graphs is empty")
    node_w, edge_w = set(), set()
    for i, g in enumerate(graphs):
        if not isinstance(g, nx.Graph):
            raise InputTypeError(f"item {i} is a {type(g).__name__}, not a networkx graph")
        if g.number_of_nodes() == 0:
            raise InputError(f"graph {i} ({g.graph.get('name')!r}) has no nodes")
        node_w.update(np.shape(x)[-1] if x is not None else None for _, x in g.nodes(data="x"))
        edge_w.update(np.shape(x)[-1] if x is not None else None for *_, x in g.edges(data="x"))
        if len(node_w) > 1 or len(edge_w) > 1:
            raise InputError(
                f"feature widths differ at graph {i} ({g.graph.get('name')!r}): node widths {node_w}, "
                f"edge widths {edge_w}; every graph needs node 'x' (and edge 'x') of one width"
            )
    (n,), e = node_w, (edge_w.pop() if edge_w else None)
    if n is None:
        raise InputError("nodes need an 'x' feature vector")
    return int(n), None if e is None else int(e)


def _unanswered(graph: nx.DiGraph) -> torch.Tensor:
    """Mask of the stored edges ``u -> v`` (in ``graph.edges`` order) that no stored ``v -> u`` answers.

    Edges that carry an ``image`` (crystal graphs: the edge to the periodic image ``S`` of ``v``)
    are answered by the edge from ``v`` to image ``-S`` of ``u`` (loops to an atom's own images
    answer each other); other edges by any ``v -> u`` edge, one to one, a loop by itself.
    """
    from collections import Counter

    edges = list(graph.edges(data="image"))
    if edges and all(image is not None for *_, image in edges):
        from reprs.featurizers.crystal_graph import unanswered_edges

        u, v, image = zip(*edges)
        return torch.as_tensor(unanswered_edges(np.array(u), np.array(v), np.array(image)))
    counts, seen, out = Counter((u, v) for u, v, _ in edges), Counter(), []
    for u, v, _ in edges:
        seen[(u, v)] += 1
        out.append(u != v and seen[(u, v)] > counts[(v, u)])
    return torch.tensor(out, dtype=torch.bool)


def graphs_to_data(
    graphs: Sequence[Any],
    y: np.ndarray | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    undirected: bool = True,
    edge_dim: int | None = None,
) -> list:
    """Convert graphs (and per-graph targets) to PyG ``Data`` objects.

    Parameters
    ----------
    graphs : sequence of networkx.Graph
        Node ``x`` required, edge ``x`` where edges exist (see :func:`reprs.convert.to_pyg`).
    y : array, optional
        One row per graph, stored as ``data.y`` with a leading axis of 1 so that batches stack.
    dtype : torch.dtype
        Float type of features.
    undirected : bool
        Messages flow both ways along each bond (glycan graphs are stored child -> parent; a
        one-way graph would let information reach the reducing end only). A directed graph gets
        a reverse copy of each edge that has no reverse edge stored: every edge of a one-way
        graph, none of a graph that holds both directions (the crystal graphs of
        :class:`reprs.featurizers.CrystalGraph`), and in a crystal graph cut by ``max_neighbors``
        the edges whose reverse was cut (each image pair then appears once each way).
    edge_dim : int, optional
        Edge feature width to give edgeless graphs when no graph in the list has an edge.

    Returns
    -------
    list of torch_geometric.data.Data
        With ``x``, ``edge_index``, ``edge_attr`` (``(0, edge_dim)`` for graphs without edges), ``y``,
        and ``edge_dir`` (int64 per edge): 1 on the reverse copies added to a directed graph
        (for glycans, the parent -> child edges), 0 on the edges as stored. An undirected
        ``nx.Graph`` or a directed graph that already holds both directions has no stored
        direction: all its edges are 0. Relational models read it (inverse relations).
    """
    from torch_geometric.data import Data

    from reprs.convert import to_pyg

    _, edge_w = feature_widths(graphs)
    edge_w = edge_w if edge_w is not None else edge_dim
    if y is not None and len(y) != len(graphs):
        raise InputError(f"got {len(graphs)} graphs but {len(y)} targets")
    out = []
    for i, g in enumerate(graphs):
        d = to_pyg(g, dtype=dtype, undirected=undirected and not g.is_directed())
        edge_index, edge_attr = d.edge_index, d.edge_attr
        edge_dir = torch.zeros(edge_index.shape[1], dtype=torch.int64)
        if undirected and g.is_directed() and edge_index.shape[1]:
            # Reverse copies of the edges without one (all of a one-way glycan graph; those whose
            # partner max_neighbors dropped in a crystal graph), appended after the stored edges.
            # Copying every edge of a partly symmetric graph would count most neighbours twice.
            add = _unanswered(g)
            edge_index = torch.cat([edge_index, edge_index[:, add].flip(0)], dim=1)
            edge_attr = torch.cat([edge_attr, edge_attr[add]])  # edges exist, so features do
            edge_dir = torch.cat([edge_dir, torch.ones(int(add.sum()), dtype=torch.int64)])
        data_keys = {"x": d.x, "edge_index": edge_index, "edge_dir": edge_dir}
        if edge_w is not None:
            data_keys["edge_attr"] = edge_attr if edge_attr is not None else torch.zeros((0, edge_w), dtype=dtype)
        item = Data(**data_keys, num_nodes=d.num_nodes)
        if y is not None:
            item.y = torch.as_tensor(np.asarray(y[i])).unsqueeze(0)
        out.append(item)
    return out


def data_digest(*parts: Sequence[Any] | np.ndarray) -> str:
    """SHA-256 of arrays (inputs, labels, index arrays): numbers by their bytes and dtype, strings and
    objects by their JSON text, each part length-prefixed so that parts cannot run into each other."""
    h = hashlib.sha256()
    for part in parts:
        arr = np.asarray(part)
        if arr.dtype == object or arr.dtype.kind == "U":
            blob = json.dumps(arr.tolist(), default=str).encode()
        else:
            blob = np.ascontiguousarray(arr).tobytes() + str(arr.dtype).encode()
        h.update(len(blob).to_bytes(8, "little") + blob)
    return h.hexdigest()


def frames_digest(named: Sequence[tuple[str, Sequence[Any]]], labels: Any, *tail: Any) -> str:
    """:func:`data_digest` of named sets of ASE frames: per set its name, per frame the species,
    positions, cell and periodicity and the ``(name, value)`` pairs ``labels(atoms)`` gives (a missing
    value as ``"no <name>"``), then the ``tail`` parts (weights, a sampler's draws). The key a trainer
    checkpoint records of the frames a fit reads."""
    parts: list[Any] = []
    for name, frames in named:
        parts.append(np.array([name]))
        for atoms in frames:
            parts += [atoms.numbers, atoms.positions, atoms.cell[:], atoms.pbc]
            parts += [np.array([f"no {key}"]) if value is None else value for key, value in labels(atoms)]
    return data_digest(*parts, *tail)


def graph_data_digest(*datasets: Sequence[Any] | None) -> str:
    """:func:`data_digest` of lists of PyG ``Data`` (of :func:`graphs_to_data`; None for none): per list the
    node and edge counts, the concatenated ``x``, ``edge_index``, ``edge_attr``, ``edge_dir`` and ``y``."""
    parts: list[Any] = []
    for data in datasets:
        if data is None:
            parts.append(np.zeros(0))
            continue
        parts += [[d.num_nodes for d in data], [d.edge_index.shape[1] for d in data]]
        for key in ("x", "edge_index", "edge_attr", "edge_dir", "y"):
            tensors = [d[key] for d in data if d.get(key) is not None]
            parts.append(torch.cat([t.reshape(-1) for t in tensors]).detach().cpu().numpy() if tensors else np.zeros(0))
    return data_digest(*parts)
