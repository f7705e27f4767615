"""The graph kernel kinds :class:`graphs.kernels.GraphKernel` offers, and what each reads.

A table without heavy imports: command-line parsing and metric lookup read the kinds' names
without importing scikit-learn or GraKeL.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KERNELS", "KernelSpec"]


@dataclass(frozen=True)
class KernelSpec:
    """How one kernel kind maps onto GraKeL.

    ``node_input`` is the node attribute GraKeL receives as its "node labels": ``"label"`` for
    discrete kernels, ``"x"`` for kernels on continuous attributes (GraKeL takes the vectors in the
    same slot). ``edge_labels`` says whether the edge ``"label"`` is passed as well.
    """

    grakel_class: str
    node_input: str | None
    edge_labels: bool = False
    stochastic: bool = False
    doc: str = ""
    #: GraKeL 0.1.x fails on some graphs with an opaque numpy error; we check first and say why.
    #: "no_isolated": every node has an edge; "edges": every graph has one.
    requires: str | None = None


#: Kernel kinds and what they read. Parameters are those of the GraKeL class, with its defaults.
KERNELS: dict[str, KernelSpec] = {
    "wl": KernelSpec("WeisfeilerLehman", "label", doc="WL subtree (Shervashidze 2011)"),
    "wl_oa": KernelSpec(
        "WeisfeilerLehmanOptimalAssignment", "label", doc="WL optimal assignment (Kriege 2016)"
    ),
    "shortest_path": KernelSpec("ShortestPath", "label", doc="shortest path (Borgwardt 2005)"),
    "neighborhood_hash": KernelSpec(
        "NeighborhoodHash", "label", stochastic=True, doc="neighborhood hash (Hido 2009)"
    ),
    "propagation": KernelSpec(
        "Propagation", "label", stochastic=True, doc="propagation on labels (Neumann 2016)"
    ),
    "propagation_attr": KernelSpec(
        "PropagationAttr", "x", stochastic=True, doc="propagation on node 'x' (GLAMOUR's kernel)"
    ),
    "graph_hopper": KernelSpec(
        "GraphHopper", "x", doc="GraphHopper on node 'x' (Feragen 2013)", requires="no_isolated"
    ),
    "vertex_histogram": KernelSpec("VertexHistogram", "label", doc="node label histogram"),
    "edge_histogram": KernelSpec(
        "EdgeHistogram", None, True, doc="edge label histogram", requires="edges"
    ),
    "odd_sth": KernelSpec("OddSth", "label", doc="ODD-STh (Da San Martino 2012)"),
}
