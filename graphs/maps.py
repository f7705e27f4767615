"""Similarity maps of a graph collection: the matrix, a heatmap and a 2-D embedding.

The unsupervised figure of GLAMOUR (arXiv:2103.02565, Fig. 3): a pairwise matrix of all glycans
under one metric, and a 2-D embedding of it coloured by taxonomy. Kernels (similarities) are
embedded with kernel PCA on the precomputed Gram matrix, distances (GED) with metric MDS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import networkx as nx
import numpy as np

from graphs.errors import InputError
from reprs.fileio import atomic_open, save_figure

__all__ = ["SimilarityMap", "similarity_map", "embed"]


@dataclass
class SimilarityMap:
    """Files written by :func:`similarity_map` and the arrays behind them.

    Attributes
    ----------
    matrix : numpy.ndarray, shape (n, n)
        The pairwise matrix (similarity for kernels, distance for GED).
    embedding : numpy.ndarray, shape (n, 2)
    similarity : bool
        Whether larger matrix values mean more alike.
    exact : numpy.ndarray of bool
        False where a value is a bound (GED not proven optimal).
    paths : dict
        ``matrix`` (.npy), ``heatmap`` (.png), ``embedding`` (.png) and ``labels`` (.csv).
    """

    matrix: np.ndarray
    embedding: np.ndarray
    similarity: bool
    exact: np.ndarray
    paths: dict[str, Path]


def embed(matrix: np.ndarray, similarity: bool, seed: int = 0) -> np.ndarray:
    """2-D coordinates: kernel PCA of a Gram matrix, or metric MDS of a distance matrix.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (n, n)
    similarity : bool
        True for a (positive semi-definite) kernel matrix, False for distances.
    seed : int
        Random state of MDS (kernel PCA is deterministic).
    """
    from sklearn.decomposition import KernelPCA
    from sklearn.manifold import MDS

    if len(matrix) < 3:
        raise InputError(f"an embedding needs at least 3 graphs, got {len(matrix)}")
    if similarity:
        return KernelPCA(n_components=2, kernel="precomputed").fit_transform(matrix)
    import warnings

    symmetric = (matrix + matrix.T) / 2
    with warnings.catch_warnings():
        # scikit-learn 1.8-1.9 announce renamed MDS arguments; these spellings work across 1.3-1.9
        warnings.simplefilter("ignore", FutureWarning)
        mds = MDS(n_components=2, dissimilarity="precomputed", random_state=seed, n_init=1, normalized_stress="auto")
        return mds.fit_transform(symmetric)


def similarity_map(
    graphs: Sequence[nx.Graph],
    metric: str,
    out: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    metric_params: dict | None = None,
    n_jobs: int = 1,
    client=None,
    progress: bool | None = None,
    seed: int = 0,
) -> SimilarityMap:
    """Compute the pairwise matrix of ``graphs`` and write it with a heatmap and an embedding.

    Parameters
    ----------
    graphs : sequence of networkx graphs
    metric : str
        A name of :func:`graphs.query.metric_names` (``"wl"``, ``"ged"``, ...).
    out : path
        Folder receiving ``matrix.npy``, ``labels.csv`` (one row per graph: name, label, embedding
        coordinates), ``heatmap.png``, ``embedding.png``; those of an earlier run there are removed
        first, so that they never mix with this run's (a folder holding ``matrix.npy`` without
        ``labels.csv`` holds an interrupted write).
    labels : sequence of str, optional
        Class of each graph (e.g. taxonomy), used to order the heatmap and colour the embedding.
    metric_params, n_jobs, client, progress
        As in :func:`graphs.query.pairwise`.
    seed : int
        Random state of the embedding.

    Returns
    -------
    SimilarityMap
    """
    # Figures drawn without pyplot: no global state, and the user's backend stays as it was
    from matplotlib.figure import Figure
    import pandas as pd

    from graphs.query import pairwise
    from graphs.kernel_kinds import KERNELS

    if labels is not None and len(labels) != len(graphs):
        raise InputError(f"{len(labels)} labels for {len(graphs)} graphs")
    matrix, exact = pairwise(
        graphs, metric, metric_params=metric_params, n_jobs=n_jobs, client=client, progress=progress, return_exact=True
    )
    similarity = metric in KERNELS
    coords = embed(matrix, similarity, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [g.graph.get("name") for g in graphs]
    classes = np.asarray(labels if labels is not None else ["all"] * len(graphs), dtype=object)

    paths = {"matrix": out / "matrix.npy", "heatmap": out / "heatmap.png", "embedding": out / "embedding.png",
             "labels": out / "labels.csv"}
    # The files describe one run together: the previous run's go first, so that a crash part-way
    # leaves some of this run's files and none of another's (a matrix.npy beside the labels.csv of
    # other graphs). Each is written atomically, labels.csv after matrix.npy: a matrix.npy without
    # labels.csv is an interrupted write.
    for path in paths.values():
        path.unlink(missing_ok=True)
    with atomic_open(paths["matrix"]) as handle:
        np.save(handle, matrix)
    table = pd.DataFrame({"name": names, "label": classes, "x": coords[:, 0], "y": coords[:, 1], "exact_row": exact.all(axis=1)})
    with atomic_open(paths["labels"], "w", newline="") as handle:
        table.to_csv(handle, index_label="index")

    order = np.argsort(classes.astype(str), kind="stable")
    figure = Figure(figsize=(6, 5))
    axis = figure.subplots()
    image = axis.imshow(matrix[np.ix_(order, order)], cmap="viridis" if similarity else "magma_r", interpolation="nearest")
    figure.colorbar(image, ax=axis, label=f"{metric} {'similarity' if similarity else 'distance'}")
    axis.set_title(f"{len(graphs)} graphs, {metric}, ordered by label")
    axis.set_xticks([])
    axis.set_yticks([])
    save_figure(figure, paths["heatmap"], dpi=120, bbox_inches="tight")

    figure = Figure(figsize=(6, 5))
    axis = figure.subplots()
    for name in sorted(set(classes.astype(str))):
        mask = classes.astype(str) == name
        axis.scatter(coords[mask, 0], coords[mask, 1], s=8, alpha=0.7, label=f"{name} ({mask.sum()})")
    axis.set_xlabel("component 1")
    axis.set_ylabel("component 2")
    axis.set_title(f"{'kernel PCA' if similarity else 'MDS'} of the {metric} matrix")
    axis.legend(fontsize=7, markerscale=2, loc="best")
    save_figure(figure, paths["embedding"], dpi=120, bbox_inches="tight")
    return SimilarityMap(matrix, coords, similarity, exact, paths)
