"""Checks of the graphs every similarity function takes (one place, so every metric says the same).

Kept free of heavy imports: the warm path of ``matrep similar`` passes through here.
"""

from __future__ import annotations

import networkx as nx

from graphs.errors import EmptyDatasetError, EmptyGraphError, InputError, InputTypeError

__all__ = ["check_graphs", "node_values"]


def check_graphs(graphs: object, what: str = "graphs", *, kernel: bool = True) -> list[nx.Graph]:
    """Return ``graphs`` as a list of networkx graphs, or raise naming the first bad entry.

    ``kernel=True`` (graph kernels) also refuses multigraphs and graphs without nodes;
    :mod:`graphs.query` and :mod:`graphs.index` pass ``kernel=False``, where any metric may take
    them.
    """
    if isinstance(graphs, (nx.Graph, str)):
        raise InputTypeError(f"{what} must be a sequence of networkx graphs, not one graph")
    try:
        graphs = list(graphs)  # type: ignore[call-overload]
    except TypeError:
        raise InputTypeError(
            f"{what} must be a sequence of networkx graphs, got {type(graphs).__name__}"
        ) from None
    if not graphs:
        raise EmptyDatasetError(f"{what} is empty: at least one graph is required")
    for i, g in enumerate(graphs):
        if not isinstance(g, nx.Graph):
            raise InputTypeError(f"{what}[{i}] is {type(g).__name__}, not a networkx graph")
        if not kernel:
            continue
        if g.is_multigraph():
            raise InputTypeError(f"{what}[{i}] is a multigraph; kernels take Graph or DiGraph")
        if g.number_of_nodes() == 0:
            raise EmptyGraphError(f"{what}[{i}] has no nodes; kernels need at least one")
    return graphs


def node_values(g: nx.Graph, index: int, attr: str) -> list:
    """Node attribute ``attr`` of every node of graph number ``index``, or raise naming the node."""
    values = []
    for node, value in g.nodes(data=attr):
        if value is None:
            raise InputError(f"graph {index}: node {node!r} has no {attr!r} attribute")
        values.append(value)
    return values
