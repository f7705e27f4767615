"""Reading and writing collections of graphs as JSON lines (one node-link graph per line).

Arrays (``x`` attributes) are written as lists and read back as float64 numpy arrays. Writes are
atomic (:func:`reprs.fileio.atomic_write`): the file appears complete under its name or not at all.
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


def _plain(value):
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist()}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def _restore(attributes: dict) -> dict:
    return {
        k: np.asarray(v["__array__"], dtype=np.float64) if isinstance(v, dict) and "__array__" in v else v
        for k, v in attributes.items()
    }


def write_graphs(graphs: Iterable[nx.Graph], path: str | os.PathLike) -> Path:
    """Write graphs to ``path`` as JSON lines of networkx node-link data (atomically)."""
    lines = []
    for graph in graphs:
        data = nx.node_link_data(graph, edges="edges")
        data["graph"] = {k: _plain(v) for k, v in data["graph"].items()}
        data["nodes"] = [{k: _plain(v) for k, v in n.items()} for n in data["nodes"]]
        data["edges"] = [{k: _plain(v) for k, v in e.items()} for e in data["edges"]]
        lines.append(json.dumps(data, separators=(",", ":")))
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
            data = json.loads(line)
            data["nodes"] = [_restore(n) for n in data["nodes"]]
            data["edges"] = [_restore(e) for e in data["edges"]]
            graphs.append(nx.node_link_graph(data, edges="edges"))
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
