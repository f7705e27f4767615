"""PaiNN: polarizable atom interaction neural network, with scalar and vector (equivariant) features.

Schütt, Unke & Gastegger, "Equivariant message passing for the prediction of tensorial properties
and molecular spectra", ICML 2021 (arXiv:2102.03150). Each atom carries scalars ``s`` (F) and
vectors ``v`` (3 x F), initially zero. A message block (eqs. 7-8, Fig. 2b) adds
``sum_j phi(s_j) o W(r_ij)`` split three ways: a scalar update, a gate on ``v_j`` and a gate on the
unit vector ``r_ij / |r_ij|``; an update block (eqs. 9-10, Fig. 2c) mixes channels with
``U v``, ``V v`` and gates them by a network of ``(s, ||V v||)``. Filters ``W`` are linear in the
``sin(n pi r / r_c) / r`` radial basis times a cosine cutoff. The architecture is the one of
NeuralForceField's PaiNN (used as backbone in arXiv:2108.04879 and arXiv:2101.11588).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from learners.errors import InputError
from sims.integrators import seeded_init

from .base import MAX_Z, NeuralPotential
from .layers import BesselRBF, cosine_cutoff

__all__ = ["PaiNN"]

# Added under the square root of ||V v||: its gradient is infinite at v = 0 (every atom's start).
_NORM_EPS = 1e-8


class _Message(nn.Module):
    def __init__(self, n_features: int, n_rbf: int) -> None:
        super().__init__()
        self.n = n_features
        self.phi = nn.Sequential(nn.Linear(n_features, n_features), nn.SiLU(), nn.Linear(n_features, 3 * n_features))
        self.filter = nn.Linear(n_rbf, 3 * n_features)

    def forward(self, s, v, rbf, fcut, unit, i, j):
        """``v=None`` stands for all-zero vectors (every atom's start): the gate on ``v_j`` then adds
        exactly nothing, and skipping it saves a gather, a product and a sum of ``(P, 3, F)`` pair
        tensors, forward and backward."""
        x = self.phi(s)[j] * (self.filter(rbf) * fcut[:, None])
        ds, dvv, dvs = torch.split(x, self.n, dim=-1)
        dv = dvs[:, None, :] * unit[:, :, None]
        if v is None:
            v = torch.zeros((s.shape[0], 3, self.n), dtype=s.dtype, device=s.device)
        else:
            dv = dvv[:, None, :] * v[j] + dv
        return s.index_add(0, i, ds), v.index_add(0, i, dv)


class _Update(nn.Module):
    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n = n_features
        self.U = nn.Linear(n_features, n_features, bias=False)
        self.V = nn.Linear(n_features, n_features, bias=False)
        self.a = nn.Sequential(nn.Linear(2 * n_features, n_features), nn.SiLU(), nn.Linear(n_features, 3 * n_features))

    def forward(self, s, v):
        uv, vv = self.U(v), self.V(v)
        norm = torch.sqrt((vv * vv).sum(1) + _NORM_EPS)
        a_vv, a_sv, a_ss = torch.split(self.a(torch.cat([s, norm], -1)), self.n, dim=-1)
        return s + a_ss + a_sv * (uv * vv).sum(1), v + a_vv[:, None, :] * uv


class PaiNN(NeuralPotential):
    """PaiNN interatomic potential (energy per structure; forces and stress by autograd).

    Parameters
    ----------
    cutoff : float
        Å (5 Å in the paper and in NFF).
    n_features : int
        Scalar and vector channels (128, as the paper and NFF).
    n_rbf : int
        Radial basis functions (20, as the paper and NFF).
    n_interactions : int
        Message + update blocks (NFF's guide value 5; the paper uses 3 for QM9 and MD17).
    seed : int
        Seeds the weight initialisation.
    repulsion : {"zbl", None}
        A short-range pair repulsion added to the energy (see :class:`NeuralPotential`).
    compiled : bool
        Run the network (everything after the radial basis) through ``torch.compile`` (dynamic
        shapes: one compilation, about 30 s on one CPU thread, serves every member, pair count and
        structure) when the model is in eval mode (``model.eval()``; :func:`fit_potential` leaves it
        so); in train mode it runs eager, since training on forces differentiates twice, which
        compiled graphs do not support (so does ``evaluate(..., create_graph=True)``: use train mode
        or ``compiled=False`` for it). Forces equal the eager ones to round-off; MD of a 3-member
        committee of 16 features / 2 interactions on 200 Li10GeP2S12 atoms took 1.3-1.9x less CPU
        time a step than eager, one such model 1.25-1.4x (``benchmarks/lgps_cost.py``, one thread).
        A runtime setting, not saved with the model: ``load_potential(..., compiled=True)``.
    device, dtype
        Of the parameters.

    References
    ----------
    Schütt, Unke & Gastegger, ICML 2021, arXiv:2102.03150.

    Examples
    --------
    >>> from ase.build import molecule
    >>> model = PaiNN(cutoff=5.0)
    >>> model.predict(molecule("CH4"))["forces"].shape
    torch.Size([5, 3])
    """

    def __init__(self, cutoff: float = 5.0, *, n_features: int = 128, n_rbf: int = 20, n_interactions: int = 5,
                 seed: int = 0, repulsion: str | None = None, compiled: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(cutoff, repulsion)
        self.compiled = bool(compiled)
        for name, v in (("n_features", n_features), ("n_rbf", n_rbf), ("n_interactions", n_interactions)):
            if not isinstance(v, int) or v < 1:
                raise InputError(f"{name} must be a positive int, got {v!r}")
        self.hparams = {"cutoff": self.cutoff, "n_features": n_features, "n_rbf": n_rbf,
                        "n_interactions": n_interactions}
        if repulsion is not None:  # only when set: files of models without it stay as they were
            self.hparams["repulsion"] = repulsion
        self.n_features = n_features
        with seeded_init(seed):
            self.embedding = nn.Embedding(MAX_Z + 1, n_features)
            self.rbf = BesselRBF(n_rbf, self.cutoff)
            self.messages = nn.ModuleList(_Message(n_features, n_rbf) for _ in range(n_interactions))
            self.updates = nn.ModuleList(_Update(n_features) for _ in range(n_interactions))
            self.readout = nn.Sequential(nn.Linear(n_features, max(n_features // 2, 1)), nn.SiLU(),
                                         nn.Linear(max(n_features // 2, 1), 1))
        self.to(device=device, dtype=dtype)

    def atomic_outputs(self, numbers, i, j, vectors):
        return self.member_outputs([self], numbers, i, j, vectors)[:, 0]

    @classmethod
    def member_outputs(cls, models, numbers, i, j, vectors):
        """``(N, K)``: the members share the pairs' unit vectors, radial basis and cutoff function."""
        r = torch.linalg.norm(vectors, dim=-1)
        unit = vectors / r[:, None]
        rbf, fcut = models[0].rbf(r), cosine_cutoff(r, models[0].cutoff)
        return torch.stack([(_compiled_network() if m.compiled and not m.training else PaiNN._network)(
            m, numbers, i, j, unit, rbf, fcut) for m in models], 1)

    def _network(self, numbers, i, j, unit, rbf, fcut):
        s, v = self.embedding(numbers), None
        for message, update in zip(self.messages, self.updates):
            s, v = update(*message(s, v, rbf, fcut, unit, i, j))
        return self.readout(s).squeeze(-1)


@functools.cache
def _compiled_network():
    """:meth:`PaiNN._network` compiled once for every model: parameters are inputs of the graph, and
    pair and atom counts are dynamic, so new members, neighbour lists and structures reuse it."""
    return torch.compile(PaiNN._network, dynamic=True)
