"""Per-node attribution of graph-level predictions (integrated gradients), mapped onto monomers.

GLAMOUR's fourth use of its GNNs (arXiv:2103.02565, section "Attribution") highlights which
monosaccharides drive a prediction. Here the attribution of node ``i`` is the sum over its
features of integrated gradients (Sundararajan, Taly & Yan, ICML 2017, eq. 1):

    IG_i,f = (x_i,f - x'_i,f) * integral_0^1 dF(x' + a (x - x')) / dx_i,f da,

with baseline ``x' = 0`` (no monomer fingerprint bits set) by default and the integral by the
midpoint rule over ``steps`` points. All steps go through the model as one batch of copies of the
graph. By the completeness axiom the attributions sum to ``F(x) - F(x')``; the returned
``completeness_gap`` says how far the quadrature is from it.

Which ``F`` of a classifier: its raw logit (``output="logit"``) also carries what raises every
class's logit alike (a common core), which the softmax cancels; ``"log_proba"`` (log-softmax)
cancels it but saturates, its gradient vanishing as the probability nears 1, so on confidently
classified graphs it spreads little over the residues; ``"log_odds"``,
``log p_k - log(1 - p_k) = z_k - logsumexp_{j != k} z_j``, does neither and is the default of
:func:`monomer_attribution` for classifiers. (Measured in ``benchmarks/glycan_attribution.py``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch

from learners.errors import InputError, NotFittedError
from reprs.fileio import save_figure

__all__ = ["Attribution", "integrated_gradients", "monomer_attribution", "draw_attribution", "OUTPUTS"]

#: What of a classifier's outputs is explained (see the module docstring).
OUTPUTS = ("logit", "log_proba", "log_odds")


@dataclass(frozen=True)
class Attribution:
    """Integrated-gradients attribution of one graph's output.

    Attributes
    ----------
    node_scores : numpy.ndarray, shape (n_nodes,)
        Per-node attribution (sum over node features), in ``graph.nodes`` order.
    feature_scores : numpy.ndarray, shape (n_nodes, n_features)
    labels : list of str
        Node labels (monomer names) in the same order.
    target : int
        The output index explained.
    output, baseline_output : float
        ``F(x)`` and ``F(x')`` of that output (logit, log-probability or log-odds: ``kind``; for a
        regressor through :func:`monomer_attribution`, the prediction in the target's units).
    completeness_gap : float
        ``sum(node_scores) - (output - baseline_output)``: quadrature error.
    """

    node_scores: np.ndarray
    feature_scores: np.ndarray
    labels: list
    target: int
    output: float
    baseline_output: float
    completeness_gap: float
    kind: str = "logit"


def _transform(out: torch.Tensor, target: int, output: str, head: tuple[int, int]) -> torch.Tensor:
    """Column ``target`` of ``out`` as ``output``, the softmax taken over the columns ``head``."""
    if output == "logit":
        return out[:, target]
    logits = out[:, head[0]:head[1]]
    k = target - head[0]
    if output == "log_proba":
        return torch.log_softmax(logits, dim=1)[:, k]
    others = torch.cat([logits[:, :k], logits[:, k + 1:]], dim=1)
    return logits[:, k] - torch.logsumexp(others, dim=1)


def _head_of(model: torch.nn.Module, target: int, n_outputs: int) -> tuple[int, int]:
    """The columns of the classification head holding ``target``: a multi-task GraphModel's head, else all."""
    sizes = getattr(model, "head_sizes", None) or (n_outputs,)
    start = 0
    for size in sizes:
        if start <= target < start + size:
            return start, start + size
        start += size
    return 0, n_outputs


def integrated_gradients(
    model: torch.nn.Module,
    data: Any,
    *,
    target: int = 0,
    baseline: torch.Tensor | None = None,
    steps: int = 64,
    output: str = "logit",
) -> tuple[np.ndarray, float, float]:
    """Integrated gradients of output ``target`` with respect to node features of one graph.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(x, edge_index, edge_attr, batch)`` (:class:`learners.models.GraphModel`),
        with ``edge_dir=`` too when ``data`` has it.
    data : torch_geometric.data.Data
        One graph (``x``, ``edge_index``, optional ``edge_attr`` and ``edge_dir``) on the model's
        device and dtype.
    target : int
        Output column explained.
    baseline : tensor, optional
        Reference node features, shape of ``data.x``; default zeros.
    steps : int
        Midpoint-rule points along the straight path from baseline to input.
    output : {"logit", "log_proba", "log_odds"}
        ``F``: output column ``target`` as it is, or (classifiers) its class's log-probability or
        log-odds under a softmax over the head that holds it (all outputs, or one head of a
        multi-task :class:`~learners.models.GraphModel`).

    Returns
    -------
    feature_scores : numpy.ndarray, shape (n_nodes, n_features)
    output, baseline_output : float
    """
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a positive int, got {steps!r}")
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
    x, edge_index, edge_attr = data.x, data.edge_index, getattr(data, "edge_attr", None)
    n, n_edges = x.shape[0], edge_index.shape[1]
    base = torch.zeros_like(x) if baseline is None else baseline.to(x)
    if base.shape != x.shape:
        raise InputError(f"baseline has shape {tuple(base.shape)}, node features {tuple(x.shape)}")
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    # Copies 0..steps-1 are the path points, copy `steps` the input itself, `steps + 1` the baseline.
    path = torch.cat([base + alphas[:, None, None] * (x - base), x[None], base[None]]).reshape(-1, x.shape[1])
    path.requires_grad_(True)
    copies = steps + 2
    offsets = (torch.arange(copies, device=x.device) * n).repeat_interleave(n_edges)
    ei = edge_index.repeat(1, copies) + offsets
    ea = None if edge_attr is None else edge_attr.repeat(copies, 1)
    batch = torch.arange(copies, device=x.device).repeat_interleave(n)
    edge_dir = getattr(data, "edge_dir", None)
    extra = {} if edge_dir is None else {"edge_dir": edge_dir.repeat(copies)}
    was_training = model.training
    model.eval()
    try:
        out = model(path, ei, ea, batch, **extra)
    finally:
        model.train(was_training)
    if not 0 <= target < out.shape[1]:
        raise InputError(f"target {target} out of range for a model with {out.shape[1]} outputs")
    head = _head_of(model, target, out.shape[1])
    if output == "log_odds" and head[1] - head[0] < 2:
        raise InputError("output='log_odds' needs a head of at least 2 classes")
    out = _transform(out, target, output, head)
    (grad,) = torch.autograd.grad(out[:steps].sum(), path)
    mean_grad = grad.reshape(copies, n, -1)[:steps].mean(dim=0)
    scores = ((x - base) * mean_grad).detach().cpu().double().numpy()
    out = out.detach()
    return scores, float(out[steps]), float(out[steps + 1])


def monomer_attribution(estimator: Any, graph: nx.Graph, *, target: Any = None, steps: int = 64,
                        output: str | None = None, baseline: Any = None) -> Attribution:
    """Attribute a fitted :class:`~learners.GNNClassifier` / ``GNNRegressor``'s output to the nodes of ``graph``.

    Parameters
    ----------
    estimator : GNNClassifier or GNNRegressor
        Fitted.
    graph : networkx.Graph
        E.g. a glycan graph of :func:`reprs.glycans.glycan_graph`; node labels are the monomers.
    target : class label, optional
        Classifier: the class explained (default: the predicted class). Multi-task classifier:
        the output column (its heads' classes side by side). Regressor: the target column (default 0);
        its output and scores are in the target's units (``output`` equals ``predict``).
    output : {"logit", "log_proba", "log_odds"}, optional
        What of a classifier's class is explained (:func:`integrated_gradients`); default
        ``"log_odds"`` for (multi-task) multiclass classifiers, ``"logit"`` for multilabel ones (a
        sigmoid's logit is its log-odds) and for regressors (the value).
    baseline : array, shape (n_features,) or (n_nodes, n_features), optional
        Reference node features (default zeros: no fingerprint bit set); one row is used for every node.

    Example
    -------
    >>> att = monomer_attribution(clf, glycan_graph("Neu5Ac(a2-3)Gal(b1-4)GlcNAc"))  # doctest: +SKIP
    >>> dict(zip(att.labels, att.node_scores.round(2)))  # doctest: +SKIP
    """
    from learners.data import graphs_to_data

    if not hasattr(estimator, "model_"):
        raise NotFittedError("the estimator is not fitted yet; call fit(graphs, y) first")
    model = estimator.model_
    (data,) = graphs_to_data([graph], dtype=estimator.dtype, edge_dim=model.edge_dim)
    data = data.to(next(model.parameters()).device)
    if hasattr(estimator, "classes_") and model.task == "multiclass":
        if target is None:
            index = int(np.argmax(estimator.predict_proba([graph])[0]))
        else:
            hits = np.flatnonzero(estimator.classes_ == target)
            if len(hits) == 0:
                raise InputError(f"unknown class {target!r}; classes: {estimator.classes_.tolist()[:20]}")
            index = int(hits[0])
    else:
        index = 0 if target is None else int(target)
    if output is None:
        # a multilabel output is a sigmoid's logit, already its label's log-odds
        output = "log_odds" if model.task in ("multiclass", "multitask") else "logit"
    if baseline is not None:
        baseline = torch.as_tensor(np.asarray(baseline), dtype=data.x.dtype, device=data.x.device).expand_as(data.x)
    scores, out, base = integrated_gradients(model, data, target=index, steps=steps, output=output, baseline=baseline)
    if hasattr(estimator, "y_std_"):
        # A regressor's model predicts standardised targets (GNNRegressor): back to the target's own
        # units, so that ``output`` is what ``predict`` gives and the scores sum to a change of it.
        std, mean = float(np.ravel(estimator.y_std_)[index]), float(np.ravel(estimator.y_mean_)[index])
        scores, out, base = scores * std, out * std + mean, base * std + mean
    nodes = scores.sum(axis=1)
    return Attribution(
        node_scores=nodes,
        feature_scores=scores,
        labels=[str(d.get("label", n)) for n, d in graph.nodes(data=True)],
        target=index,
        output=out,
        baseline_output=base,
        completeness_gap=float(nodes.sum() - (out - base)),
        kind=output,
    )


def _tree_layout(graph: nx.Graph) -> dict:
    # Glycan drawings put the reducing end on the right and branches to the left; leaves are
    # stacked vertically and each parent sits at the mean height of its children.
    if not graph.is_directed() or any(graph.out_degree(n) > 1 for n in graph) or not nx.is_directed_acyclic_graph(graph):
        return nx.spring_layout(graph, seed=0)
    pos, next_leaf = {}, [0.0]

    def place(node, depth: int) -> float:
        children = list(graph.predecessors(node))
        y = float(np.mean([place(c, depth + 1) for c in children])) if children else next_leaf[0]
        if not children:
            next_leaf[0] += 1.0
        pos[node] = (-float(depth), -y)
        return y

    for root in (n for n in graph if graph.out_degree(n) == 0):
        place(root, 0)
        next_leaf[0] += 0.5
    return pos


def draw_attribution(graph: nx.Graph, scores: Any, path: str | Path, *, title: str | None = None) -> Path:
    """Draw ``graph`` with nodes coloured by ``scores`` (red positive, blue negative) as a PNG.

    Parameters
    ----------
    graph : networkx.Graph
        Node labels are written on the nodes, edge labels on the edges.
    scores : array, shape (n_nodes,) or Attribution
        One value per node in ``graph.nodes`` order.
    path : path
        Output ``.png`` file (its folder is created).

    Returns
    -------
    pathlib.Path
    """
    from matplotlib import colors as mcolors
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(scores.node_scores if isinstance(scores, Attribution) else scores, dtype=float)
    if values.shape != (graph.number_of_nodes(),):
        raise InputError(f"need one score per node ({graph.number_of_nodes()}), got shape {values.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pos = _tree_layout(graph)
    bound = float(np.abs(values).max()) or 1.0
    norm = mcolors.TwoSlopeNorm(vmin=-bound, vcenter=0.0, vmax=bound)
    fig = Figure(figsize=(max(4.0, 1.6 * (1 + max(-p[0] for p in pos.values()))), 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    nodes = list(graph.nodes)
    art = nx.draw_networkx_nodes(graph, pos, nodelist=nodes, node_color=values, cmap="coolwarm", vmin=-bound, vmax=bound, node_size=900, ax=ax)
    art.set_norm(norm)
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=False)
    nx.draw_networkx_labels(graph, pos, {n: str(graph.nodes[n].get("label", n)) for n in nodes}, font_size=7, ax=ax)
    nx.draw_networkx_edge_labels(graph, pos, {(u, v): str(d.get("label", "")) for u, v, d in graph.edges(data=True)}, font_size=6, ax=ax)
    fig.colorbar(art, ax=ax, label="attribution (integrated gradients)")
    ax.set_title(title or str(graph.graph.get("name", "")), fontsize=7)
    ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
