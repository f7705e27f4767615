"""Converters from matrep's networkx graphs to other libraries' graph types.

Graphs follow the exchange convention of ``DESIGN.md``: node ``label`` (str) and ``x`` (1-D
array), edge ``label`` and ``x``, graph ``name``.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from reprs.errors import EmptyGraphError, InputError, InputTypeError

__all__ = ["to_pyg", "to_grakel", "from_glycowork", "node_index", "float_dtype"]


def _check_graph(graph: Any) -> None:
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(f"expected a networkx Graph or DiGraph, got {type(graph).__name__}")
    if graph.number_of_nodes() == 0:
        raise EmptyGraphError(f"graph {graph.graph.get('name')!r} has no nodes")


def node_index(graph: nx.Graph) -> dict[Any, int]:
    """Node -> row index, in ``graph.nodes`` order (the order of ``x`` rows in every converter)."""
    return {node: i for i, node in enumerate(graph.nodes)}


def _stack(graph: nx.Graph, items, what: str) -> np.ndarray:
    rows = [data.get("x") for *_, data in items]
    if any(row is None for row in rows):
        raise InputError(f"every {what} of graph {graph.graph.get('name')!r} needs an 'x' feature vector")
    widths = {np.shape(row) for row in rows}
    if len(widths) > 1:
        raise InputError(f"{what} feature vectors of graph {graph.graph.get('name')!r} differ in shape: {widths}")
    return np.asarray(rows, dtype=np.float64)


def float_dtype(dtype: Any = None):
    """The torch float type a PyG builder's ``dtype=`` names: None (``torch.float32``, the default),
    ``torch.float32`` / ``torch.float64`` or their names ``"float32"`` / ``"float64"``.

    Raises
    ------
    InputError
        Anything else (an integer or half type, an unknown name).
    """
    import torch

    if dtype is None:
        return torch.float32
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if resolved not in (torch.float32, torch.float64):
        raise InputError(f"dtype must be torch.float32 or torch.float64 (or 'float32', 'float64'), got {dtype!r}")
    return resolved


def to_pyg(graph: nx.Graph, *, dtype: Any = None, undirected: bool | None = None):
    """Convert to a PyTorch Geometric ``Data``.

    Parameters
    ----------
    graph : networkx.Graph or DiGraph
        With node ``x`` (and edge ``x`` where edges exist).
    dtype : torch.dtype or str, optional
        Float type of ``x`` and ``edge_attr`` (:func:`float_dtype`); default ``torch.float32``.
    undirected : bool, optional
        Store each edge in both directions (PyG's convention for undirected graphs; a self-loop
        once). Default: True for ``nx.Graph``, False for ``nx.DiGraph`` (edges child -> parent as
        stored).

    Returns
    -------
    torch_geometric.data.Data
        ``x`` (n_nodes, F), ``edge_index`` (2, n_edges) int64, ``edge_attr`` (n_edges, F_e),
        ``num_nodes``, plus ``name`` and the node and edge ``labels`` as Python lists.

    Raises
    ------
    reprs.errors.InputError
        ``undirected=True`` on a DiGraph that already holds some edge in both directions (the pair
        would be stored twice), or missing or ragged ``x`` features.
    """
    import torch
    from torch_geometric.data import Data

    _check_graph(graph)
    dtype = float_dtype(dtype)
    index = node_index(graph)
    x = torch.as_tensor(_stack(graph, graph.nodes(data=True), "node"), dtype=dtype)
    edges = list(graph.edges(data=True))
    if undirected is None:
        undirected = not graph.is_directed()
    if edges:
        pairs = np.array([(index[u], index[v]) for u, v, _ in edges], dtype=np.int64).T
        attr = _stack(graph, edges, "edge")
        if undirected and graph.is_directed():
            both = [(u, v) for u, v, _ in edges if u != v and graph.has_edge(v, u)]
            if both:
                raise InputError(f"undirected=True stores each edge in both directions, but this DiGraph already "
                                 f"has both {both[0][0]!r} -> {both[0][1]!r} and back ({len(both) // 2} such "
                                 "pair(s)): the pair would be stored twice. Pass undirected=False, or make it an "
                                 "nx.Graph with one edge per pair")
        if undirected:
            # A self-loop is its own reverse: stored once (as PyG's from_networkx stores it), or a
            # node's message to itself would count twice.
            mirror = pairs[0] != pairs[1]
            pairs = np.concatenate([pairs, pairs[::-1, mirror]], axis=1)
            attr = np.concatenate([attr, attr[mirror]], axis=0)
        edge_index = torch.as_tensor(pairs)
        edge_attr = torch.as_tensor(attr, dtype=dtype)
    else:
        edge_index = torch.zeros((2, 0), dtype=torch.int64)
        edge_attr = None
    data = Data(x=x, edge_index=edge_index, edge_attr=edge_attr, num_nodes=len(index))
    data.name = graph.graph.get("name")
    data.node_labels = [str(d.get("label")) for _, d in graph.nodes(data=True)]
    return data


def to_grakel(graph: nx.Graph, *, node_attr: str = "label", edge_attr: str | None = "label"):
    """Convert to a GraKeL ``Graph`` (undirected, as GraKeL's kernels assume).

    Parameters
    ----------
    graph : networkx.Graph or DiGraph
        Directed edges are symmetrised.
    node_attr : {"label", "x"}
        Node labels given to GraKeL: the discrete ``label`` (WL, shortest path, ...) or the
        continuous ``x`` vectors (PropagationAttr, GraphHopper).
    edge_attr : str or None
        Edge attribute used as GraKeL edge labels, or None for none.

    Returns
    -------
    grakel.Graph
        Nodes numbered ``0..n-1`` in ``graph.nodes`` order.
    """
    from grakel import Graph

    _check_graph(graph)
    if node_attr not in ("label", "x"):
        raise InputError(f"node_attr must be 'label' or 'x', got {node_attr!r}")
    index = node_index(graph)
    if node_attr == "x":
        features = _stack(graph, graph.nodes(data=True), "node")
        node_labels = {i: features[i] for i in range(len(index))}
    else:
        node_labels = {index[n]: str(d.get("label")) for n, d in graph.nodes(data=True)}
    # Dict-of-dicts adjacency, so that isolated nodes (floating substituents) stay in the graph.
    adjacency: dict[int, dict[int, float]] = {i: {} for i in range(len(index))}
    edge_labels = {}
    for u, v, d in graph.edges(data=True):
        for a, b in ((index[u], index[v]), (index[v], index[u])):
            adjacency[a][b] = 1.0
            if edge_attr is not None:
                edge_labels[(a, b)] = str(d.get(edge_attr))
    return Graph(adjacency, node_labels=node_labels, edge_labels=edge_labels or None, graph_format="dictionary")


def from_glycowork(graph: nx.Graph) -> nx.DiGraph:
    """Convert a graph of glycowork's ``glycan_to_nxGraph`` to matrep's glycan convention.

    glycowork makes every linkage a node of its own (``string_labels`` such as ``"b1-4"``) between
    parent and child. Here each linkage node becomes an edge child -> parent labelled with the
    linkage, as :func:`reprs.glycan_graph` builds them; a linkage without a parent (a floating
    substituent) is dropped and its residue stays isolated. Topology and labels only: no features.

    Parameters
    ----------
    graph : networkx.Graph or DiGraph
        As returned by ``glycowork.motif.graph.glycan_to_nxGraph`` (edges point parent -> child
        in a DiGraph; an undirected graph is read with lower node ids as children, glycowork's
        string order).

    Returns
    -------
    networkx.DiGraph
        Node ``label`` = residue name, edge ``label`` = linkage text.
    """
    from reprs.iupac import _LINKAGE

    if not isinstance(graph, nx.Graph):
        raise InputTypeError(f"expected a networkx graph from glycowork, got {type(graph).__name__}")
    labels = nx.get_node_attributes(graph, "string_labels")
    if len(labels) != graph.number_of_nodes():
        raise InputError("every node of a glycowork graph carries 'string_labels'")
    is_link = {n: _LINKAGE.fullmatch(text) is not None for n, text in labels.items()}
    out = nx.DiGraph()
    out.add_nodes_from((n, {"label": labels[n]}) for n in graph if not is_link[n])
    for link in (n for n in graph if is_link[n]):
        if graph.is_directed():
            parents, children = list(graph.predecessors(link)), list(graph.successors(link))
        else:
            neighbours = sorted(graph.neighbors(link))
            children, parents = neighbours[:1], neighbours[1:]
        if len(children) != 1 or len(parents) > 1:
            raise InputError(f"linkage node {link} of the glycowork graph joins {len(parents) + len(children)} residues")
        if parents:
            out.add_edge(children[0], parents[0], label=labels[link])
    return out
