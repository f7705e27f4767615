"""graphs: similarity between graphs.

Graph edit distance (certified exact, bipartite and LP bounds, chemistry-informed costs), graph
kernels (GraKeL-backed, with an explicit sparse Weisfeiler-Lehman map), pairwise matrices and top-k
queries run serially, on local processes or on a Dask cluster, and similarity maps.
"""

from __future__ import annotations

from graphs.costs import CallableCosts, ChemicalCosts, CostModel, EditCosts, UniformCosts
from graphs.ged import GEDResult, graph_edit_distance
from graphs.kernels import KERNELS, GraphKernel, WLFeatureMap, normalize_gram
from graphs.query import PairMetric, TopK, metric_names, pairwise, top_k

__all__ = [
    "CallableCosts",
    "ChemicalCosts",
    "CostModel",
    "EditCosts",
    "UniformCosts",
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
]
