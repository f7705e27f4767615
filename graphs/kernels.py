"""Graph kernels on networkx graphs: a scikit-learn transformer over GraKeL, and an explicit WL map.

:class:`GraphKernel` turns lists of networkx graphs (node ``"label"`` str, node ``"x"`` 1-D float
array, edge ``"label"``; see ../shared/DESIGN.md) into Gram matrices with the usual ``fit`` /
``transform`` / ``fit_transform`` contract, so that ``sklearn.svm.SVC(kernel="precomputed")`` and
``sklearn.decomposition.KernelPCA(kernel="precomputed")`` take its output directly. Every kind is
computed by GraKeL (Siglidis et al., JMLR 21(54), 2020) with GraKeL's own parameters and defaults,
so its values are GraKeL's. GLAMOUR (arXiv:2103.02565) used PropagationAttr on the monomers'
fingerprint attributes; that is ``kind="propagation_attr"`` here.

Kernels see every graph as undirected: a DiGraph (a glycan, edges child -> parent) is
symmetrised, as :func:`reprs.convert.to_grakel` hands it to GraKeL. A WL neighbourhood then holds
a monomer's parent and children, not its parent alone.

The Weisfeiler-Lehman subtree kernel (Shervashidze et al., JMLR 12, 2539, 2011) also has an
explicit feature map of our own, :class:`WLFeatureMap`: a sparse (graphs x subtree patterns) count
matrix built with vectorised relabelling, whose Gram matrix ``Phi Phi^T`` equals GraKeL's
``WeisfeilerLehman(base_graph_kernel=VertexHistogram)`` (normalised too). GraKeL relabels with a
Python loop over nodes and string credentials; the explicit map scales to the whole glycan set
and lets a query be scored with one sparse product, without an N x N matrix.

Example
-------
>>> import networkx as nx
>>> g = nx.path_graph(3); nx.set_node_attributes(g, "C", "label")
>>> GraphKernel(kind="wl", n_iter=2).fit_transform([g, g]).round(6).tolist()
[[1.0, 1.0], [1.0, 1.0]]
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import networkx as nx
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from graphs.errors import InputError, UnknownMetricError
from graphs.kernel_kinds import KERNELS, KernelSpec
from graphs.validation import check_graphs, node_values
from graphs.wl import normalize_gram, wl_features

__all__ = ["GraphKernel", "WLFeatureMap", "KERNELS"]


# Arguments of GraKeL kernels that GraphKernel sets itself rather than passing through.
_MANAGED = {"n_jobs", "normalize", "verbose", "random_state"}
_BACKENDS = ("auto", "explicit", "grakel")


@contextmanager
def _quiet_grakel():
    # GraKeL warns on every internal change of graph format; that is not the user's business.
    # Its 0/0 in normalisation is reported once, by GraphKernel._finite.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.filterwarnings("ignore", message="changing format", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*zero self similarities", category=UserWarning)
        yield


def _grakel_class(kind: str) -> type:
    import grakel.kernels  # imported here: only kernel users pay for GraKeL's import

    return getattr(grakel.kernels, KERNELS[kind].grakel_class)


def _check_attributes(graphs: list[nx.Graph], spec: KernelSpec) -> None:
    """Every node has the attribute the kernel reads (and every edge its label), or raise.

    Checked here because a missing value must not silently become the string "None".
    """
    width = None
    for i, g in enumerate(graphs):
        if spec.node_input == "label":
            node_values(g, i, "label")
        elif spec.node_input == "x":
            for node, x in zip(g.nodes, node_values(g, i, "x")):
                shape = np.shape(x)
                if len(shape) != 1 or (width is not None and shape[0] != width):
                    raise InputError(
                        f"graph {i}: node {node!r} has 'x' of shape {shape}; every node needs a "
                        f"1-D vector of one length ({width if width is not None else 'any'})"
                    )
                width = shape[0]
        if spec.edge_labels:
            for u, v, lab in g.edges(data="label"):
                if lab is None:
                    raise InputError(f"graph {i}: edge {(u, v)!r} has no 'label' attribute")
        if spec.requires == "edges" and g.number_of_edges() == 0:
            raise InputError(f"graph {i} has no edges; GraKeL's {spec.grakel_class} needs one")
        if spec.requires == "no_isolated" and any(deg == 0 for _, deg in g.degree()):
            # GraKeL 0.1.x fails on one-node components under numpy >= 2.
            raise InputError(
                f"graph {i} has an isolated node; GraKeL's {spec.grakel_class} needs every node "
                "to have an edge"
            )


class WLFeatureMap(TransformerMixin, BaseEstimator):
    """Explicit Weisfeiler-Lehman subtree features: sparse counts of relabelled nodes.

    Iteration 0 counts node labels; iteration ``h`` gives each node the pair (its label at
    ``h-1``, the sorted multiset of its neighbours' labels at ``h-1``), compressed to an
    integer per distinct pair, and counts those. Features of all ``n_iter + 1`` iterations are
    stacked, so ``Phi @ Phi.T`` is the WL subtree kernel of Shervashidze et al. (JMLR 12, 2539,
    2011, eq. 3 with the vertex-histogram base kernel), entry for entry GraKeL's
    ``WeisfeilerLehman(n_iter=n_iter)`` (whose ``n_iter`` also yields ``n_iter + 1`` histograms)
    on the same graphs made undirected (DiGraph edges symmetrised, as for every kernel here).

    Parameters
    ----------
    n_iter : int, default 5
        Number of relabelling iterations (GraKeL's default).

    Attributes
    ----------
    n_features_ : int
        Number of distinct subtree patterns seen in ``fit`` (columns of :meth:`transform`).
    block_sizes_ : tuple of int
        Columns per iteration ``0 .. n_iter``.

    Notes
    -----
    Relabelling (:func:`graphs.wl.wl_features`) is vectorised: nodes are grouped by degree, each group's (label, sorted
    neighbour labels) rows are compressed with ``np.unique``, and new graphs are matched to the
    fitted patterns with ``np.searchsorted``. Patterns unseen in ``fit`` get no column (they cannot
    match a fitted graph) but do count in a new graph's own squared norm, as in GraKeL's diagonal.

    Example
    -------
    >>> import networkx as nx
    >>> g = nx.star_graph(3); nx.set_node_attributes(g, "A", "label")
    >>> WLFeatureMap(n_iter=1).fit_transform([g]).toarray().tolist()
    [[4.0, 3.0, 1.0]]
    """

    def __init__(self, *, n_iter: int = 5):
        if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
            raise InputError(f"n_iter must be a positive integer, got {n_iter!r}")
        self.n_iter = n_iter

    def fit(self, graphs: Sequence[nx.Graph], y: object = None) -> WLFeatureMap:
        """Learn the subtree patterns of ``graphs``; returns self."""
        self._fit_transform(check_graphs(graphs))
        return self

    def fit_transform(self, graphs: Sequence[nx.Graph], y: object = None) -> sp.csr_matrix:
        """Fit on ``graphs`` and return their (n_graphs, n_features_) float64 count matrix."""
        return self._fit_transform(check_graphs(graphs))

    def transform(
        self, graphs: Sequence[nx.Graph], *, return_norms: bool = False
    ) -> sp.csr_matrix | tuple[sp.csr_matrix, np.ndarray]:
        """Count the fitted subtree patterns in ``graphs``.

        Parameters
        ----------
        graphs : sequence of networkx graphs
            Nodes need a ``"label"``.
        return_norms : bool
            Also return each graph's squared norm over all its patterns, fitted or not (the
            diagonal ``k(G, G)`` used to normalise).

        Returns
        -------
        scipy.sparse.csr_matrix, shape (n_graphs, n_features_)
            Pattern counts (float64).
        numpy.ndarray, shape (n_graphs,)
            Only with ``return_norms``.
        """
        check_is_fitted(self, "tables_")
        features, norms, _ = wl_features(check_graphs(graphs), self.n_iter, self.tables_)
        return (features, norms) if return_norms else features

    def _fit_transform(self, graphs: list[nx.Graph]) -> sp.csr_matrix:
        features, _, self.tables_ = wl_features(graphs, self.n_iter)
        self.block_sizes_ = tuple(size for _, size in self.tables_)
        self.n_features_ = int(sum(self.block_sizes_))
        return features


# --------------------------------------------------------------------------------------------
# scikit-learn transformer
# --------------------------------------------------------------------------------------------


class GraphKernel(TransformerMixin, BaseEstimator):
    """Gram matrices of a graph kernel between lists of networkx graphs.

    Parameters
    ----------
    kind : str, default "wl"
        One of :data:`KERNELS`: ``"wl"``, ``"wl_oa"``, ``"shortest_path"``,
        ``"neighborhood_hash"``, ``"propagation"``, ``"propagation_attr"`` (node ``"x"``),
        ``"graph_hopper"`` (node ``"x"``), ``"vertex_histogram"``, ``"edge_histogram"`` (edge
        ``"label"``), ``"odd_sth"``.
    normalize : bool, default True
        Return ``k(G, H) / sqrt(k(G, G) k(H, H))`` (cosine normalisation), as GraKeL's
        ``normalize=True``. Where ``k(G, G) = 0`` (e.g. a graph without edges under
        ``"shortest_path"`` or ``"edge_histogram"``) the ratio is undefined and set to 0, the
        convention of GraKeL's WL kernel (its other kernels return NaN there).
    backend : {"auto", "explicit", "grakel"}, default "auto"
        ``"explicit"`` computes ``"wl"`` with :class:`WLFeatureMap` (same values as GraKeL);
        ``"auto"`` picks it for ``"wl"`` and GraKeL for every other kind.
    seed : int or None, default 0
        Random state of the stochastic kinds (``neighborhood_hash``, ``propagation``,
        ``propagation_attr``); ignored by the others. None draws fresh entropy into a local
        generator (numpy's global one is never used).
    n_jobs : int or None
        Passed to GraKeL.
    **params
        Keyword arguments of the GraKeL class (e.g. ``n_iter=5`` for ``"wl"``, ``t_max``, ``w``,
        ``M`` for the propagation kernels, ``kernel_type`` for GraphHopper), with GraKeL's
        defaults.

    Attributes
    ----------
    n_graphs_fit_ : int
        Number of graphs seen in ``fit``.
    kernel_ : grakel.kernels.Kernel
        The fitted GraKeL object (GraKeL backend).
    label_codes_ : dict
        Node label -> integer code given to GraKeL (``neighborhood_hash``, ``propagation``): sorted
        label order, so that a seed reproduces the kernel in any process.
    feature_map_ : WLFeatureMap
        The fitted explicit map (explicit backend); ``features_`` holds the fitted graphs'
        counts and ``diag_`` their ``k(G, G)``.

    Raises
    ------
    UnknownMetricError
        ``kind`` is not a known kernel.
    InputError
        A parameter is not one of the GraKeL class's, or the backend does not exist.

    References
    ----------
    G. Siglidis et al., "GraKeL: A Graph Kernel Library in Python", JMLR 21(54), 2020.
    N. Shervashidze et al., "Weisfeiler-Lehman Graph Kernels", JMLR 12, 2539, 2011.
    S. Mohapatra, J. An and R. Gomez-Bombarelli (GLAMOUR), Mach. Learn.: Sci. Technol. 3, 015028
    (2022), arXiv:2103.02565 (PropagationAttr on fingerprint attributes).

    Example
    -------
    >>> import networkx as nx
    >>> a, b = nx.path_graph(3), nx.star_graph(3)
    >>> for g in (a, b): nx.set_node_attributes(g, "C", "label")
    >>> GraphKernel(kind="shortest_path").fit_transform([a, b]).shape
    (2, 2)
    """

    def __init__(
        self,
        kind: str = "wl",
        *,
        normalize: bool = True,
        backend: str = "auto",
        seed: int | None = 0,
        n_jobs: int | None = None,
        **params,
    ):
        self.kind = kind
        self.normalize = normalize
        self.backend = backend
        self.seed = seed
        self.n_jobs = n_jobs
        self.params = params
        self._validate()

    # scikit-learn's get_params reads the signature, which cannot name **params: list them too,
    # so that sklearn.base.clone and grid searches keep the kernel's own parameters.
    def get_params(self, deep: bool = True) -> dict:
        out = super().get_params(deep=False)
        out.pop("params", None)
        out.update(self.params)
        return out

    def set_params(self, **values) -> GraphKernel:
        own = {"kind", "normalize", "backend", "seed", "n_jobs"}
        for key, value in values.items():
            if key in own:
                setattr(self, key, value)
            else:
                self.params = {**self.params, key: value}
        self._validate()
        return self

    def _validate(self) -> None:
        if self.kind not in KERNELS:
            raise UnknownMetricError(
                f"unknown kernel kind {self.kind!r}; known: {', '.join(sorted(KERNELS))}"
            )
        if self.backend not in _BACKENDS:
            raise InputError(f"unknown backend {self.backend!r}; known: {', '.join(_BACKENDS)}")
        if self.backend == "explicit" and self.kind != "wl":
            raise InputError(f"backend 'explicit' exists only for kind 'wl', not {self.kind!r}")
        accepted = set(inspect.signature(_grakel_class(self.kind).__init__).parameters) - _MANAGED
        accepted.discard("self")
        bad = set(self.params) - accepted
        if bad:
            raise InputError(
                f"kernel {self.kind!r} has no parameter(s) {sorted(bad)}; "
                f"valid: {sorted(accepted) or 'none'}"
            )
        if self._explicit:
            if set(self.params) - {"n_iter"}:
                raise InputError("the explicit WL map takes only n_iter; use backend='grakel'")
            WLFeatureMap(n_iter=self.params.get("n_iter", 5))  # validates n_iter

    @property
    def explicit(self) -> bool:
        """Whether this kernel is computed with the explicit WL feature map."""
        return self._explicit

    @property
    def _explicit(self) -> bool:
        # "auto" falls back to GraKeL when a GraKeL-only WL parameter (base_graph_kernel) is set.
        return self.kind == "wl" and (
            self.backend == "explicit"
            or (self.backend == "auto" and set(self.params) <= {"n_iter"})
        )

    def _make_grakel(self):
        params = dict(self.params)
        if KERNELS[self.kind].stochastic:
            # seed=None: a RandomState of fresh OS entropy. GraKeL's random_state=None is numpy's global
            # generator, which it would read and advance.
            params["random_state"] = np.random.RandomState() if self.seed is None else self.seed
        return _grakel_class(self.kind)(normalize=self.normalize, n_jobs=self.n_jobs, **params)

    def _grakel_input(self, graphs: list[nx.Graph], *, fit: bool) -> list:
        from reprs.convert import to_grakel

        spec = KERNELS[self.kind]
        _check_attributes(graphs, spec)
        edge_attr = "label" if spec.edge_labels else None
        converted = [
            to_grakel(g, node_attr=spec.node_input or "label", edge_attr=edge_attr) for g in graphs
        ]
        if not (spec.stochastic and spec.node_input == "label"):
            return converted
        # GraKeL's Propagation and NeighborhoodHash draw one random vector per label in the
        # iteration order of a set of labels; for str labels that order follows PYTHONHASHSEED, so
        # a fixed seed would give different kernels in different processes (Dask workers). Integer
        # codes in sorted label order make the draws depend on the seed alone.
        labels = [c.get_labels(purpose="dictionary") for c in converted]
        seen = sorted({lab for lab_map in labels for lab in lab_map.values()})
        if fit:
            self.label_codes_ = {lab: i for i, lab in enumerate(seen)}
        codes = dict(self.label_codes_)
        unseen = [lab for lab in seen if lab not in codes]
        codes.update(zip(unseen, range(len(codes), len(codes) + len(unseen))))
        return [
            [c.get_edge_dictionary(), {v: codes[lab] for v, lab in lab_map.items()}]
            for c, lab_map in zip(converted, labels)
        ]

    def _finite(self, gram) -> np.ndarray:
        gram = np.asarray(gram, dtype=float)
        if self.normalize and np.isnan(gram).any():
            # Only 0/0 from normalisation gives NaN here: a graph with k(G, G) = 0 (GraKeL's own
            # warning covers the non-PSD case k(G, G) < 0).
            warnings.warn(
                f"kernel {self.kind!r}: some graphs have k(G, G) = 0 (e.g. no edges or paths to "
                "compare); their normalised similarities are set to 0",
                UserWarning,
                stacklevel=3,
            )
            return np.nan_to_num(gram, nan=0.0)
        return gram

    def _grakel_transform(self, converted: list) -> np.ndarray:
        """GraKeL's ``transform``, normalised out of place where GraKeL's base class would not.

        GraKeL's ``Kernel.transform`` (used by the histogram, propagation and GraphHopper kinds)
        normalises with ``km /= sqrt(outer(Y_diag, X_diag))``, in place: on the integer matrix of
        an ``EdgeHistogram`` stored sparse (mostly empty label histograms) it raised a numpy
        casting error. The same quotient is taken here from GraKeL's own diagonals.
        """
        from grakel.kernels import Kernel

        kernel = self.kernel_
        if not (self.normalize and type(kernel).transform is Kernel.transform):
            return kernel.transform(converted)
        kernel.normalize = False  # read by Kernel.transform only
        try:
            km = kernel.transform(converted)
        finally:
            kernel.normalize = True
        x_diag, y_diag = kernel.diagonal()
        return km / np.sqrt(np.outer(y_diag, x_diag))

    def fit(self, graphs: Sequence[nx.Graph], y: object = None) -> GraphKernel:
        """Fit the kernel on ``graphs`` (the columns of later :meth:`transform` output)."""
        self._fit(check_graphs(graphs))
        return self

    def _fit(self, graphs: list[nx.Graph]) -> np.ndarray | None:
        self.n_graphs_fit_ = len(graphs)
        if self._explicit:
            self.feature_map_ = WLFeatureMap(n_iter=self.params.get("n_iter", 5))
            self.features_ = self.feature_map_.fit_transform(graphs)
            self.diag_ = np.asarray(self.features_.multiply(self.features_).sum(axis=1)).ravel()
            return None
        self.kernel_ = self._make_grakel()
        with _quiet_grakel():
            return self.kernel_.fit_transform(self._grakel_input(graphs, fit=True))

    def fit_transform(self, graphs: Sequence[nx.Graph], y: object = None) -> np.ndarray:
        """Fit on ``graphs`` and return their (n, n) Gram matrix (float64)."""
        gram = self._fit(check_graphs(graphs))
        if gram is not None:
            return self._finite(gram)
        gram = (self.features_ @ self.features_.T).toarray()
        return normalize_gram(gram, self.diag_, self.diag_) if self.normalize else gram

    def transform(self, graphs: Sequence[nx.Graph]) -> np.ndarray:
        """Kernel values between ``graphs`` (rows) and the fitted graphs (columns).

        Returns
        -------
        numpy.ndarray, shape (len(graphs), n_graphs_fit_)
        """
        check_is_fitted(self, "n_graphs_fit_")
        graphs = check_graphs(graphs)
        if not self._explicit:
            with _quiet_grakel():
                return self._finite(self._grakel_transform(self._grakel_input(graphs, fit=False)))
        features, norms = self.feature_map_.transform(graphs, return_norms=True)
        gram = (features @ self.features_.T).toarray()
        return normalize_gram(gram, norms, self.diag_) if self.normalize else gram
