"""graphs: similarity between graphs.

Graph edit distance (certified exact, bipartite and LP bounds, chemistry-informed costs), the
D-measure network dissimilarity, graph
kernels (GraKeL-backed, with an explicit sparse Weisfeiler-Lehman map), pairwise matrices and top-k
queries run serially, on local processes or on a Dask cluster, similarity maps, and a persisted
graph index with certified exact GED search (filter-and-verify).
"""

from __future__ import annotations

from reprs.lazy import lazy_exports

# Loaded on first use (reprs.lazy): `import graphs` and the matrep command stay cheap.
_LAZY = {
    "CallableCosts": ("graphs.costs", "CallableCosts"),
    "ChemicalCosts": ("graphs.costs", "ChemicalCosts"),
    "CostModel": ("graphs.costs", "CostModel"),
    "EditCosts": ("graphs.costs", "EditCosts"),
    "UniformCosts": ("graphs.costs", "UniformCosts"),
    "DMeasureComponents": ("graphs.dmeasure", "DMeasureComponents"),
    "DMeasureSignature": ("graphs.dmeasure", "DMeasureSignature"),
    "d_measure": ("graphs.dmeasure", "d_measure"),
    "d_measure_matrix": ("graphs.dmeasure", "d_measure_matrix"),
    "GEDResult": ("graphs.ged", "GEDResult"),
    "graph_edit_distance": ("graphs.ged", "graph_edit_distance"),
    "KERNELS": ("graphs.kernel_kinds", "KERNELS"),
    "GraphKernel": ("graphs.kernels", "GraphKernel"),
    "WLFeatureMap": ("graphs.kernels", "WLFeatureMap"),
    "normalize_gram": ("graphs.wl", "normalize_gram"),
    "PairMetric": ("graphs.query", "PairMetric"),
    "TopK": ("graphs.query", "TopK"),
    "metric_names": ("graphs.query", "metric_names"),
    "pairwise": ("graphs.query", "pairwise"),
    "top_k": ("graphs.query", "top_k"),
    "GraphIndex": ("graphs.index", "GraphIndex"),
    "SearchResult": ("graphs.search", "SearchResult"),
    "within": ("graphs.search", "within"),
    "knn_graph": ("graphs.search", "knn_graph"),
    "NeighbourTable": ("graphs.search", "NeighbourTable"),
}

__all__ = list(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
