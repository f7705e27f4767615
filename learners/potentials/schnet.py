"""SchNet: continuous-filter convolutions on interatomic distances.

Schütt, Sauceda, Kindermans, Tkatchenko & Müller, J. Chem. Phys. 148, 241722 (2018): atom
embeddings updated by ``T`` interaction blocks, each a continuous-filter convolution
``x_i <- sum_j x_j W(r_ij)`` (eq. 4) whose filter ``W`` is a dense network on a Gaussian expansion of
the distance (eqs. 8-9), followed by atom-wise layers with shifted-softplus activations and a
residual update (Fig. 2); the filter is multiplied by a cosine cutoff so energies are smooth
where pairs enter and leave the neighbour list (as in SchNetPack).
"""

from __future__ import annotations

import torch
from torch import nn

from learners.errors import InputError
from sims.integrators import seeded_init

from .base import MAX_Z, NeuralPotential
from .layers import GaussianRBF, ShiftedSoftplus, cosine_cutoff

__all__ = ["SchNet"]


class _Interaction(nn.Module):
    def __init__(self, n_features: int, n_filters: int, n_rbf: int) -> None:
        super().__init__()
        self.filter = nn.Sequential(nn.Linear(n_rbf, n_filters), ShiftedSoftplus(), nn.Linear(n_filters, n_filters))
        self.in2f = nn.Linear(n_features, n_filters, bias=False)
        self.f2out = nn.Sequential(nn.Linear(n_filters, n_features), ShiftedSoftplus(),
                                   nn.Linear(n_features, n_features))

    def forward(self, x, rbf, fcut, i, j):
        w = self.filter(rbf) * fcut[:, None]
        messages = self.in2f(x)[j] * w
        agg = torch.zeros((x.shape[0], messages.shape[1]), dtype=x.dtype, device=x.device).index_add(0, i, messages)
        return x + self.f2out(agg)


class SchNet(NeuralPotential):
    """SchNet interatomic potential (energy per structure; forces and stress by autograd).

    Parameters
    ----------
    cutoff : float
        Å.
    n_features : int
        Width of the atom embeddings (128 in the paper).
    n_filters : int
        Width of the filters (128).
    n_rbf : int
        Gaussians in ``[0, cutoff]`` (the paper's 0.1 Å spacing over 30 Å is 300; 50 over 5 Å
        gives the same 0.1 Å spacing).
    n_interactions : int
        Interaction blocks (3 in the paper for QM9 and MD17).
    seed : int
        Seeds the weight initialisation.
    repulsion : {"zbl", None}
        A short-range pair repulsion added to the energy (see :class:`NeuralPotential`).
    device, dtype
        Of the parameters.

    References
    ----------
    Schütt et al., J. Chem. Phys. 148, 241722 (2018).

    Examples
    --------
    >>> from ase.build import molecule
    >>> model = SchNet(cutoff=5.0, n_features=16, n_interactions=2)
    >>> out = model.predict(molecule("H2O"))
    >>> out["energy"].shape, out["forces"].shape
    (torch.Size([1]), torch.Size([3, 3]))
    """

    def __init__(self, cutoff: float = 5.0, *, n_features: int = 128, n_filters: int | None = None, n_rbf: int = 50,
                 n_interactions: int = 3, seed: int = 0, repulsion: str | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(cutoff, repulsion)
        n_filters = n_features if n_filters is None else n_filters
        for name, v in (("n_features", n_features), ("n_filters", n_filters), ("n_rbf", n_rbf),
                        ("n_interactions", n_interactions)):
            if not isinstance(v, int) or v < (2 if name == "n_rbf" else 1):
                raise InputError(f"{name} must be a positive int{' >= 2' if name == 'n_rbf' else ''}, got {v!r}")
        self.hparams = {"cutoff": self.cutoff, "n_features": n_features, "n_filters": n_filters, "n_rbf": n_rbf,
                        "n_interactions": n_interactions}
        if repulsion is not None:  # only when set: files of models without it stay as they were
            self.hparams["repulsion"] = repulsion
        with seeded_init(seed):
            self.embedding = nn.Embedding(MAX_Z + 1, n_features)
            self.rbf = GaussianRBF(n_rbf, self.cutoff)
            self.interactions = nn.ModuleList(_Interaction(n_features, n_filters, n_rbf) for _ in range(n_interactions))
            self.readout = nn.Sequential(nn.Linear(n_features, max(n_features // 2, 1)), ShiftedSoftplus(),
                                         nn.Linear(max(n_features // 2, 1), 1))
        self.to(device=device, dtype=dtype)

    def atomic_outputs(self, numbers, i, j, vectors):
        r = torch.linalg.norm(vectors, dim=-1)
        rbf, fcut = self.rbf(r), cosine_cutoff(r, self.cutoff)
        x = self.embedding(numbers)
        for block in self.interactions:
            x = block(x, rbf, fcut, i, j)
        return self.readout(x).squeeze(-1)
