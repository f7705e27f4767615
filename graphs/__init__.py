"""graphs: similarity between graphs.

Graph edit distance (certified exact, bipartite and LP bounds, chemistry-informed costs), the
D-measure network dissimilarity, graph
kernels (GraKeL-backed, with an explicit sparse Weisfeiler-Lehman map), pairwise matrices and top-k
queries run serially, on local processes or on a Dask cluster, similarity maps, and a persisted
graph index with certified exact GED search (filter-and-verify).
"""

from __future__ import annotations

from graphs.costs import CallableCosts, ChemicalCosts, CostModel, EditCosts, UniformCosts
from graphs.dmeasure import DMeasureComponents, DMeasureSignature, d_measure, d_measure_matrix
from graphs.ged import GEDResult, graph_edit_distance
from graphs.kernels import KERNELS, GraphKernel, WLFeatureMap, normalize_gram
from graphs.index import GraphIndex
from graphs.query import PairMetric, TopK, metric_names, pairwise, top_k
from graphs.search import SearchResult, knn_graph, within

__all__ = [
    "CallableCosts",
    "ChemicalCosts",
    "CostModel",
    "EditCosts",
    "UniformCosts",
    "DMeasureComponents",
    "DMeasureSignature",
    "d_measure",
    "d_measure_matrix",
    "GEDResult",
    "graph_edit_distance",
    "KERNELS",
    "GraphKernel",
    "WLFeatureMap",
    "normalize_gram",
    "PairMetric",
    "TopK",
    "metric_names",
    "pairwise",
    "top_k",
    "GraphIndex",
    "SearchResult",
    "within",
    "knn_graph",
]
