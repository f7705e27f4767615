"""Reading and writing collections of graphs as JSON lines (one node-link graph per line).

Attributes keep their types: numpy arrays (dtype and shape), tuples, dicts with tuple keys.
Writes are atomic (:func:`reprs.fileio.atomic_write`): the file appears complete under its name or
not at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import networkx as nx
import numpy as np

from reprs.errors import InputError
from reprs.fileio import atomic_write

__all__ = ["write_graphs", "read_graphs", "format_graph"]


#: Tags of values JSON has no type for. A dict holding one of them as its only key (or
#: ``__array__`` with ``dtype`` and ``shape``) is read back as that type.
_ARRAY, _TUPLE, _MAPPING = "__array__", "__tuple__", "__dict__"


def _encode(value):
    """A JSON-able form of a graph, node or edge attribute (or node id, edge key), recursively.

    numpy arrays keep dtype and shape, tuples stay tuples (node ids, multigraph keys, species
    pairs), and dicts with other than string keys (``{("O", "Si"): 2.0}``) become key-value
    lists; numpy scalars become Python numbers.
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise InputError(
                f"cannot write a numpy array of dtype {value.dtype} to a graph file; "
                "bool, integer and float arrays are written"
            )
        return {_ARRAY: value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not {_ARRAY, _TUPLE, _MAPPING} & set(value):
            return {k: _encode(v) for k, v in value.items()}
        return {_MAPPING: [[_encode(k), _encode(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise InputError(
        f"cannot write a {type(value).__module__}.{type(value).__qualname__} attribute to a graph "
        "file; attributes must be numbers, strings, None, numpy arrays, or lists, tuples and "
        "dicts of them"
    )


def _decode(value):
    """Inverse of :func:`_encode` (files from before dtypes were kept read arrays as float64)."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if _ARRAY in value:
        array = np.asarray(value[_ARRAY], dtype=np.dtype(value.get("dtype", "<f8")))
        return array.reshape(value["shape"]) if "shape" in value else array
    if _TUPLE in value:
        return tuple(_decode(v) for v in value[_TUPLE])
    if _MAPPING in value:
        return {_decode(k): _decode(v) for k, v in value[_MAPPING]}
    return {k: _decode(v) for k, v in value.items()}


def write_graphs(graphs: Iterable[nx.Graph], path: str | os.PathLike) -> Path:
    """Write graphs to ``path`` as JSON lines of networkx node-link data (atomically).

    Every attribute (graph, node, edge), node id and multigraph edge key is written so that
    :func:`read_graphs` returns it with its type: numpy arrays with their dtype and shape,
    tuples as tuples, dicts with tuple keys (a glass network's ``cutoffs``) as such.

    Raises
    ------
    InputError
        For an attribute of another type (a set, an object array, an arbitrary object).
    """
    lines = [
        json.dumps(_encode(nx.node_link_data(graph, edges="edges")), separators=(",", ":"))
        for graph in graphs
    ]
    return atomic_write(path, "\n".join(lines) + ("\n" if lines else ""))


def read_graphs(path: str | os.PathLike) -> list[nx.Graph]:
    """Read graphs written by :func:`write_graphs`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no graph file at {path}")
    graphs = []
    with path.open() as stream:
        for line in stream:
            if not line.strip():
                continue
            graphs.append(nx.node_link_graph(_decode(json.loads(line)), edges="edges"))
    return graphs


def format_graph(graph: nx.Graph, width: int = 16) -> str:
    """Human-readable listing of a graph's nodes, edges and attributes.

    Parameters
    ----------
    width : int
        Entries of each feature vector shown (the rest summarised); 0 shows all.
    """

    def show(key, value):
        if isinstance(value, np.ndarray):
            body = value if not width or value.size <= width else value[:width]
            text = np.array2string(body, precision=3, separator=" ", max_line_width=10**6)
            more = f" ... ({value.size} values, {int(np.count_nonzero(value))} nonzero)" if body is not value else ""
            return f"{key}={text}{more}"
        return f"{key}={value}"

    name = graph.graph.get("name")
    kind = "directed" if graph.is_directed() else "undirected"
    lines = [f"{name}: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges ({kind})", "nodes:"]
    lines += [f"  {n}: " + ", ".join(show(k, v) for k, v in d.items()) for n, d in graph.nodes(data=True)]
    lines.append("edges:")
    arrow = "->" if graph.is_directed() else "--"
    lines += [f"  {u} {arrow} {v}: " + ", ".join(show(k, val) for k, val in d.items()) for u, v, d in graph.edges(data=True)]
    return "\n".join(lines)
