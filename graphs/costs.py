"""Edit-cost models for graph edit distance: chemistry-informed, uniform and user-defined.

A cost model turns the nodes (or edges) of two graphs into three arrays at once, an
:class:`EditCosts`: the substitution matrix ``sub[i, k]`` (cost of turning element ``i`` of the
first graph into element ``k`` of the second), the deletion costs ``delete[i]`` and the insertion
costs ``insert[k]``. The solvers in :mod:`graphs.ged` only ever see these arrays, so every model is
evaluated once per graph pair with array operations, never once per node pair from Python.

Any object with the two methods of :class:`CostModel` (``node_costs`` and ``edge_costs``) is a
"cost-matrix provider" and can be passed as ``costs=`` to :func:`graphs.ged.graph_edit_distance`;
:class:`CallableCosts` wraps plain per-element callables with networkx's signatures for costs that
cannot be vectorised.

References
----------
.. [1] Mohapatra, An and Gomez-Bombarelli, "Chemistry-informed macromolecule graph representation
   for similarity computation, unsupervised and supervised learning", Mach. Learn.: Sci. Technol.
   3, 015028 (2022), arXiv:2103.02565 (GLAMOUR): fingerprint-based substitution costs with
   multiplier 3 and insertion/deletion cost 3.
.. [2] Rogers and Tanimoto, "A computer program for classifying plants", Science 132, 1115 (1960);
   the dissimilarity as implemented by ``scipy.spatial.distance.rogerstanimoto``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Callable, Hashable, Mapping, NamedTuple, Sequence

import numpy as np

from graphs.errors import InputError, UnknownMetricError

__all__ = ["EditCosts", "CostModel", "ChemicalCosts", "UniformCosts", "CallableCosts"]

#: ``(node, attributes)`` pairs, as yielded by ``G.nodes(data=True)``.
NodeItems = Sequence[tuple[Hashable, Mapping[str, Any]]]
#: ``(u, v, attributes)`` triples, as yielded by ``G.edges(data=True)``.
EdgeItems = Sequence[tuple[Hashable, Hashable, Mapping[str, Any]]]


class EditCosts(NamedTuple):
    """Edit costs between the elements (nodes or edges) of two graphs.

    Attributes
    ----------
    sub : numpy.ndarray, shape (n1, n2)
        ``sub[i, k]``: cost of substituting element ``i`` of the first graph by element ``k`` of
        the second.
    delete : numpy.ndarray, shape (n1,)
        Cost of deleting each element of the first graph.
    insert : numpy.ndarray, shape (n2,)
        Cost of inserting each element of the second graph.
    """

    sub: np.ndarray
    delete: np.ndarray
    insert: np.ndarray


class CostModel(ABC):
    """Provider of edit-cost arrays for the nodes and edges of two graphs.

    Subclass it (or write any class with the same two methods) to define new costs. Costs must be
    finite and non-negative; :func:`graphs.ged.graph_edit_distance` checks the arrays it receives.
    For graph edit distance to be symmetric, ``sub`` must be symmetric in its two arguments and
    deletion must cost the same as insertion of the same element.
    """

    @abstractmethod
    def node_costs(self, nodes1: NodeItems, nodes2: NodeItems) -> EditCosts:
        """Costs between the nodes of two graphs.

        Parameters
        ----------
        nodes1, nodes2 : sequence of (node, attributes)
            The nodes of each graph with their attribute dicts, in a fixed order.

        Returns
        -------
        EditCosts
            ``sub`` of shape ``(len(nodes1), len(nodes2))``, ``delete`` and ``insert``.
        """

    @abstractmethod
    def edge_costs(self, edges1: EdgeItems, edges2: EdgeItems) -> EditCosts:
        """Costs between the edges of two graphs.

        Parameters
        ----------
        edges1, edges2 : sequence of (u, v, attributes)
            The edges of each graph with their attribute dicts, in a fixed order.

        Returns
        -------
        EditCosts
            ``sub`` of shape ``(len(edges1), len(edges2))``, ``delete`` and ``insert``.
        """


def _check_cost(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite, non-negative cost, got {value!r}")
    return value


def _element_name(item: tuple) -> str:
    return f"node {item[0]!r}" if len(item) == 2 else f"edge ({item[0]!r}, {item[1]!r})"


def _fingerprints(items: Sequence[tuple], attr: str, where: str) -> np.ndarray:
    """Stack the binary fingerprints ``attrs[attr]`` of nodes or edges into a bool matrix."""
    rows = []
    for item in items:  # one pass over elements (not pairs) to collect and check their vectors
        attrs = item[-1]
        if attr not in attrs:
            raise InputError(
                f"{_element_name(item)} of {where} has no {attr!r} attribute; ChemicalCosts needs "
                f"a binary fingerprint (1-D array of 0/1) on every node and edge"
            )
        rows.append(np.asarray(attrs[attr], dtype=float))
    if not rows:
        return np.zeros((0, 0), dtype=bool)
    bad = [i for i, r in enumerate(rows) if r.ndim != 1 or r.shape != rows[0].shape]
    if bad:
        item, shape = items[bad[0]], rows[bad[0]].shape
        raise InputError(
            f"{_element_name(item)} of {where}: {attr!r} has shape {shape}, expected a 1-D "
            f"fingerprint of the same length as the others, {rows[0].shape}"
        )
    x = np.stack(rows)
    nonbinary = ~np.isin(x, (0.0, 1.0))
    if nonbinary.any():
        row = int(np.nonzero(nonbinary.any(axis=1))[0][0])
        raise InputError(
            f"{_element_name(items[row])} of {where}: {attr!r} is not binary (values "
            f"{np.unique(x[row][nonbinary[row]])[:5]}); ChemicalCosts compares bit fingerprints, "
            f"binarise counts first (x > 0)"
        )
    return x.astype(bool)


def _binary_distance(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """All-pairs Rogers-Tanimoto or Jaccard dissimilarity between rows of two bool matrices.

    Same definitions as ``scipy.spatial.distance.rogerstanimoto`` / ``jaccard``: with ``R`` the
    number of positions where exactly one vector is set and ``n`` the length, Rogers-Tanimoto is
    ``2R / (n + R)``; Jaccard is ``R / (R + c_TT)``, 0 when both vectors are all zero.
    """
    if a.shape[1] != b.shape[1]:
        raise InputError(
            f"fingerprints of the two graphs have different lengths ({a.shape[1]} and "
            f"{b.shape[1]}); compare graphs built with the same featurizer"
        )
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    both = a @ b.T  # c_TT by matrix product: the vectorised form of the pairwise bit counts
    mismatch = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - 2.0 * both
    if kind == "rogerstanimoto":
        return 2.0 * mismatch / (a.shape[1] + mismatch)
    union = mismatch + both
    return np.divide(mismatch, union, out=np.zeros_like(union), where=union > 0)


class ChemicalCosts(CostModel):
    """GLAMOUR's chemistry-informed costs on binary fingerprints.

    Node (edge) substitution costs ``sub`` times the Rogers-Tanimoto (or Jaccard) dissimilarity
    between the two fingerprints stored under attribute ``"x"``, hence 0 between identical
    fingerprints; insertion and deletion of any node or edge cost ``indel``.

    Parameters
    ----------
    sub : float, default 3.0
        Multiplier of the fingerprint dissimilarity (in [0, 1]) for substitutions.
    indel : float, default 3.0
        Cost of inserting or deleting one node or edge.
    distance : {"rogerstanimoto", "jaccard"}, default "rogerstanimoto"
        Dissimilarity between fingerprints, as in ``scipy.spatial.distance``.

    Notes
    -----
    The defaults are those of GLAMOUR [1]_ (``sub_mul=3``, ``indel_mul=3``). GLAMOUR's code
    (``utils/macro_unsupervised.py``) passes ``sub_mul * (1 - rogerstanimoto)`` to networkx, i.e. a
    cost that grows with *similarity*; following the paper's text and this project's design we use
    ``sub * rogerstanimoto``, which is 0 for identical monomers and largest for unrelated ones.

    Fingerprints must be 1-D arrays of 0/1 values of the same length for all nodes (and for all
    edges); anything else raises :class:`graphs.errors.InputError`.

    Examples
    --------
    >>> import numpy as np, networkx as nx
    >>> G = nx.DiGraph(); G.add_node(0, x=np.array([1, 0, 1, 0]))
    >>> H = nx.DiGraph(); H.add_node(0, x=np.array([1, 1, 0, 0]))
    >>> ChemicalCosts().node_costs(list(G.nodes(data=True)), list(H.nodes(data=True))).sub
    array([[2.]])
    """

    def __init__(self, *, sub: float = 3.0, indel: float = 3.0, distance: str = "rogerstanimoto"):
        self.sub = sub
        self.indel = indel
        self.distance = distance
        _check_cost("sub", sub)
        _check_cost("indel", indel)
        if distance not in ("rogerstanimoto", "jaccard"):
            raise UnknownMetricError(
                f"unknown fingerprint distance {distance!r}; choose 'rogerstanimoto' or 'jaccard'"
            )

    def __repr__(self) -> str:
        return f"ChemicalCosts(sub={self.sub}, indel={self.indel}, distance={self.distance!r})"

    def _costs(self, items1: Sequence[tuple], items2: Sequence[tuple], what: str) -> EditCosts:
        a = _fingerprints(items1, "x", f"the first graph's {what}")
        b = _fingerprints(items2, "x", f"the second graph's {what}")
        if len(items1) and len(items2):
            sub = float(self.sub) * _binary_distance(a, b, self.distance)
        else:
            sub = np.zeros((len(items1), len(items2)))
        return EditCosts(
            sub, np.full(len(items1), float(self.indel)), np.full(len(items2), float(self.indel))
        )

    def node_costs(self, nodes1: NodeItems, nodes2: NodeItems) -> EditCosts:
        """Fingerprint-based node costs (see the class docstring)."""
        return self._costs(nodes1, nodes2, "nodes")

    def edge_costs(self, edges1: EdgeItems, edges2: EdgeItems) -> EditCosts:
        """Fingerprint-based edge costs (see the class docstring)."""
        return self._costs(edges1, edges2, "edges")


def _label_codes(items1: Sequence[tuple], items2: Sequence[tuple], what: str) -> tuple:
    """Integer codes of the ``"label"`` attributes, equal codes for equal labels."""
    codes: dict[Hashable, int] = {}
    out = []
    for where, items in (("first", items1), ("second", items2)):
        arr = np.empty(len(items), dtype=np.int64)
        for n, item in enumerate(items):  # one pass over elements to intern their labels
            if "label" not in item[-1]:
                raise InputError(
                    f"{_element_name(item)} of the {where} graph's {what} has no 'label' "
                    f"attribute; UniformCosts compares labels"
                )
            arr[n] = codes.setdefault(item[-1]["label"], len(codes))
        out.append(arr)
    return tuple(out)


class UniformCosts(CostModel):
    """Label-matching costs: fixed prices for each kind of edit.

    Substituting a node (edge) costs ``node_sub`` (``edge_sub``) when the two ``"label"``
    attributes differ and 0 when they are equal; inserting or deleting a node (edge) costs
    ``node_indel`` (``edge_indel``). With all four costs 1 this is the classic unit-cost graph edit
    distance on labelled graphs.

    Parameters
    ----------
    node_sub, node_indel, edge_sub, edge_indel : float, default 1
        Non-negative costs of the four kinds of edit.

    Examples
    --------
    >>> import networkx as nx
    >>> G = nx.Graph(); G.add_node(0, label="C")
    >>> H = nx.Graph(); H.add_node(0, label="N")
    >>> UniformCosts().node_costs(list(G.nodes(data=True)), list(H.nodes(data=True))).sub
    array([[1.]])
    """

    def __init__(
        self,
        *,
        node_sub: float = 1.0,
        node_indel: float = 1.0,
        edge_sub: float = 1.0,
        edge_indel: float = 1.0,
    ):
        self.node_sub = node_sub
        self.node_indel = node_indel
        self.edge_sub = edge_sub
        self.edge_indel = edge_indel
        for name in ("node_sub", "node_indel", "edge_sub", "edge_indel"):
            _check_cost(name, getattr(self, name))

    def __repr__(self) -> str:
        return (
            f"UniformCosts(node_sub={self.node_sub}, node_indel={self.node_indel}, "
            f"edge_sub={self.edge_sub}, edge_indel={self.edge_indel})"
        )

    @staticmethod
    def _costs(items1, items2, sub: float, indel: float, what: str) -> EditCosts:
        c1, c2 = _label_codes(items1, items2, what)
        return EditCosts(
            float(sub) * (c1[:, None] != c2[None, :]),
            np.full(len(items1), float(indel)),
            np.full(len(items2), float(indel)),
        )

    def node_costs(self, nodes1: NodeItems, nodes2: NodeItems) -> EditCosts:
        """Label-based node costs (see the class docstring)."""
        return self._costs(nodes1, nodes2, self.node_sub, self.node_indel, "nodes")

    def edge_costs(self, edges1: EdgeItems, edges2: EdgeItems) -> EditCosts:
        """Label-based edge costs (see the class docstring)."""
        return self._costs(edges1, edges2, self.edge_sub, self.edge_indel, "edges")


AttrCost = Callable[[Mapping[str, Any]], float]
PairCost = Callable[[Mapping[str, Any], Mapping[str, Any]], float]


def _unit_cost(attrs: Mapping[str, Any]) -> float:
    """networkx's default insertion/deletion cost."""
    return 1.0


class CallableCosts(CostModel):
    """Costs given by plain Python callables on attribute dicts, as in networkx.

    The signatures and defaults are those of ``networkx.graph_edit_distance``: substitution
    callables take the two attribute dicts, deletion and insertion callables take one. Missing
    substitution costs default to 0 and missing insertion/deletion costs to 1.

    The callables are evaluated once per pair of elements from Python; prefer a vectorised
    :class:`CostModel` (like :class:`ChemicalCosts`) for large screens.

    Parameters
    ----------
    node_subst_cost, edge_subst_cost : callable(attrs1, attrs2) -> float, optional
    node_del_cost, node_ins_cost, edge_del_cost, edge_ins_cost : callable(attrs) -> float, optional

    Examples
    --------
    >>> costs = CallableCosts(node_subst_cost=lambda a, b: float(a["label"] != b["label"]))
    """

    def __init__(
        self,
        *,
        node_subst_cost: PairCost | None = None,
        node_del_cost: AttrCost | None = None,
        node_ins_cost: AttrCost | None = None,
        edge_subst_cost: PairCost | None = None,
        edge_del_cost: AttrCost | None = None,
        edge_ins_cost: AttrCost | None = None,
    ):
        self.node_subst_cost = node_subst_cost
        self.node_del_cost = node_del_cost
        self.node_ins_cost = node_ins_cost
        self.edge_subst_cost = edge_subst_cost
        self.edge_del_cost = edge_del_cost
        self.edge_ins_cost = edge_ins_cost
        for name, f in vars(self).items():
            if f is not None and not callable(f):
                raise InputError(f"{name} must be callable or None, got {type(f).__name__}")

    @staticmethod
    def _costs(items1, items2, subst, delete, insert) -> EditCosts:
        a1 = [item[-1] for item in items1]
        a2 = [item[-1] for item in items2]
        if subst is None:
            sub = np.zeros((len(a1), len(a2)))
        else:  # user-defined Python callables: the per-pair loop is the price of generality
            sub = np.array([[subst(p, q) for q in a2] for p in a1], dtype=float)
            sub = sub.reshape(len(a1), len(a2))
        return EditCosts(
            sub,
            np.array([(delete or _unit_cost)(p) for p in a1], dtype=float),
            np.array([(insert or _unit_cost)(q) for q in a2], dtype=float),
        )

    def node_costs(self, nodes1: NodeItems, nodes2: NodeItems) -> EditCosts:
        """Node costs from the node callables."""
        return self._costs(nodes1, nodes2, self.node_subst_cost, self.node_del_cost,
                           self.node_ins_cost)

    def edge_costs(self, edges1: EdgeItems, edges2: EdgeItems) -> EditCosts:
        """Edge costs from the edge callables."""
        return self._costs(edges1, edges2, self.edge_subst_cost, self.edge_del_cost,
                           self.edge_ins_cost)
