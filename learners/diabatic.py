"""A diabatic neural network (DANN): a PaiNN that predicts a small diabatic Hamiltonian.

The model maps a structure to a symmetric ``n x n`` matrix ``H_d`` (eV; PaiNN per-atom outputs
summed over atoms, one output per upper-triangle element). Everything else follows from it, through
autograd and never a second formula:

- adiabatic energies ``E_k``: the eigenvalues of ``H_d`` (closed form for 2 x 2, else ``eigh``);
- adiabatic gradients by Hellmann-Feynman, ``dE_k/dR = (U^T dH_d/dR U)_kk`` (eV/Å);
- coupling numerators ``h_kl = (U^T dH_d/dR U)_kl = <k|dH_d/dR|l>`` (eV/Å) and nonadiabatic
  couplings ``d_kl = h_kl / (E_l - E_k)`` (1/Å).

Training (:class:`DiabaticLoss` through :class:`learners.trainer.Trainer`, :func:`fit_diabatic`)
uses energies, gradients, the gap and the coupling numerators (smooth through a conical
intersection where ``d_kl`` diverges) with a per-frame, per-pair sign correction (the sign of an
eigenvector, and so of ``h_kl``, is arbitrary in the reference), and optionally the diabatic
matrix itself. :class:`DANNHamiltonian` puts a trained model behind the
:class:`sims.surface_hopping.DiabaticModel` interface (atomic units), so
:class:`sims.surface_hopping.FSSH` runs on it.

References
----------
S. Axelrod, E. Shakhnovich and R. Gómez-Bombarelli, "Excited state non-adiabatic dynamics of large
photoswitchable molecules using a chemically transferable machine learning potential", Nat.
Commun. 13, 3440 (2022), arXiv:2108.04879 (the diabatic readout, Eqs. 1-4; the phase-corrected
coupling loss). Schütt, Unke & Gastegger, ICML 2021 (PaiNN).
"""

from __future__ import annotations

import math
import os
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator as ASECalculator
from ase.calculators.calculator import all_changes
from torch import nn

from learners.errors import InputError
from learners.metrics import mae
from learners.trainer import Trainer
from reprs.config import check_keys
from reprs.fileio import atomic_open
from sims.integrators import make_generator, seeded_init
from sims.potentials import read_model_file, saved_dtype
from sims.surface_hopping import DegenerateStatesWarning, DiabaticModel

from .potentials.batch import AtomsBatch, _dense_pairs, collate_atoms, full_pairs, pair_vectors
from .potentials.painn import PaiNN

__all__ = ["DiabaticPaiNN", "evaluate_diabatic", "eigh2", "label_frames", "collate_diabatic", "DiabaticLoss",
           "diabatic_metrics", "GapWeightedSampler", "fit_diabatic", "save_diabatic", "load_diabatic", "DiabaticCalculator",
           "DANNHamiltonian", "hopping_model_from_config", "HARTREE_EV", "BOHR_ANGSTROM"]

#: eV per hartree and Å per bohr (CODATA 2018).
HARTREE_EV = 27.211386245988
BOHR_ANGSTROM = 0.529177210903


def eigh2(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric 2 x 2 matrices ``(..., 2, 2)`` in closed form.

    ``E = (a + b)/2 -+ sqrt(((a - b)/2)^2 + c^2)``; with ``theta = atan2(2c, a - b) / 2`` the lower
    eigenvector is ``(-sin theta, cos theta)`` and the upper ``(cos theta, sin theta)``. Twice
    differentiable away from the degeneracy ``a = b, c = 0`` (where no basis is defined).
    """
    a, b, c = h[..., 0, 0], h[..., 1, 1], h[..., 0, 1]
    mean = 0.5 * (a + b)
    half = torch.sqrt((0.5 * (a - b)) ** 2 + c * c)
    theta = 0.5 * torch.atan2(2 * c, a - b)
    cos, sin = torch.cos(theta), torch.sin(theta)
    vectors = torch.stack([torch.stack([-sin, cos], -1), torch.stack([cos, sin], -1)], -1)
    return torch.stack([mean - half, mean + half], -1), vectors


class DiabaticPaiNN(nn.Module):
    """PaiNN backbone with a readout of the symmetric ``n_states x n_states`` diabatic matrix (eV).

    ``H_d = scale * sum_atoms o_i + diag(shift)``, ``o_i`` the PaiNN per-atom outputs
    (``n (n + 1) / 2`` of them, filling the upper triangle); ``shift`` (per state, eV) and
    ``scale`` (eV) come from :meth:`fit_scale` so the network learns order-one numbers.

    Parameters
    ----------
    n_states : {2, 3}
    cutoff : float
        Å.
    n_features, n_rbf, n_interactions : int
        Of the PaiNN backbone (:class:`learners.potentials.PaiNN`).
    seed : int
        Seeds the weight initialisation: the backbone as ``PaiNN(seed=seed)``, the head from the
        stream ``(seed, 1)`` (:func:`sims.integrators.make_generator`).
    device, dtype
        Of the parameters; inputs in another dtype are refused.

    Examples
    --------
    >>> from ase.build import molecule
    >>> model = DiabaticPaiNN(n_states=2, n_features=16, n_interactions=2)
    >>> out = evaluate_diabatic(model, collate_atoms([molecule("C2H4")], 5.0, labels=False))
    >>> out["energies"].shape, out["couplings"].shape
    (torch.Size([1, 2]), torch.Size([6, 2, 2, 3]))
    """

    def __init__(self, n_states: int = 2, cutoff: float = 5.0, *, n_features: int = 64, n_rbf: int = 20,
                 n_interactions: int = 3, seed: int = 0, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if n_states not in (2, 3) or isinstance(n_states, bool):
            raise InputError(f"n_states must be 2 or 3, got {n_states!r}")
        self.n_states = n_states
        self.backbone = PaiNN(cutoff, n_features=n_features, n_rbf=n_rbf, n_interactions=n_interactions, seed=seed)
        self.cutoff = self.backbone.cutoff
        n_out = n_states * (n_states + 1) // 2
        # The head's own stream (seed, 1), not seed + 1: that is the backbone stream of the model
        # seeded seed + 1, so Committee.build members (seeds s, s + 1, ...) started correlated.
        with seeded_init(make_generator((seed, 1)).initial_seed()):
            hidden = max(n_features // 2, 1)
            self.backbone.readout = nn.Sequential(nn.Linear(n_features, hidden), nn.SiLU(), nn.Linear(hidden, n_out))
        self.hparams = {"n_states": n_states, **self.backbone.hparams}
        self.register_buffer("shift", torch.zeros(n_states))
        self.register_buffer("scale", torch.ones(()))
        rows, cols = torch.triu_indices(n_states, n_states)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)
        self.to(device=device, dtype=dtype)

    @torch.no_grad()
    def fit_scale(self, energies: torch.Tensor | np.ndarray) -> "DiabaticPaiNN":
        """Set ``shift`` to the mean reference energy of each state and ``scale`` to their spread (eV); return self."""
        e = torch.as_tensor(np.asarray(energies, dtype=np.float64))
        if e.ndim != 2 or e.shape[1] != self.n_states or e.shape[0] < 1:
            raise InputError(f"energies must have shape (frames, {self.n_states}), got {tuple(e.shape)}")
        self.shift.copy_(e.mean(0))
        spread = float((e - e.mean(0)).std()) if e.shape[0] > 1 else 1.0
        self.scale.fill_(spread if spread > 0 else 1.0)
        return self

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor, pairs,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        """Diabatic matrices ``(B, n, n)`` eV (``B = 1`` without ``batch``); arguments as
        :meth:`learners.potentials.NeuralPotential.forward`."""
        self.backbone.check_inputs(positions, numbers)
        i, j, shifts = full_pairs(pairs)
        vec = pair_vectors(positions, cell, i, j, shifts, batch)
        with torch.no_grad():
            inside = (vec * vec).sum(-1) < self.cutoff ** 2
        out = self.backbone.atomic_outputs(numbers, i[inside], j[inside], vec[inside])
        if batch is None:
            batch = torch.zeros(numbers.shape[0], dtype=torch.long, device=numbers.device)
        n_struct = cell.shape[0] if cell.dim() == 3 else 1
        pooled = torch.zeros(n_struct, out.shape[-1], dtype=out.dtype, device=out.device).index_add(0, batch, out)
        pooled = pooled * self.scale.to(out.dtype)
        h = torch.zeros(n_struct, self.n_states, self.n_states, dtype=out.dtype, device=out.device)
        h[:, self._rows, self._cols] = pooled
        h = h + torch.triu(h, 1).transpose(-1, -2)
        return h + torch.diag_embed(self.shift.to(out.dtype)).unsqueeze(0)


def evaluate_diabatic(model: DiabaticPaiNN, batch: AtomsBatch, *, create_graph: bool = False,
                      min_gap: float = 1e-4) -> dict[str, torch.Tensor]:
    """Diabatic matrix, adiabatic energies, Hellmann-Feynman gradients and couplings of a batch.

    Parameters
    ----------
    model : DiabaticPaiNN
    batch : AtomsBatch
    create_graph : bool
        Keep the graph (training on gradients and couplings needs it).
    min_gap : float
        eV. Where two adiabatic energies are closer, ``couplings`` use this floor in place of the
        gap and a :class:`sims.surface_hopping.DegenerateStatesWarning` is issued (the numerators
        ``coupling_numerators`` are finite everywhere).

    Returns
    -------
    dict
        ``diabatic`` (B, n, n) eV; ``energies`` (B, n) eV; ``vectors`` (B, n, n) (eigenvectors as
        columns); ``gradients`` (N, n, 3) eV/Å (``dE_k/dR``; forces are minus these);
        ``coupling_numerators`` (N, n, n, 3) eV/Å; ``couplings`` (N, n, n, 3) 1/Å,
        ``d_kl = <k|d/dR|l>``, antisymmetric.
    """
    pos = batch.positions.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        h = model(pos, batch.cell, batch.numbers, batch.pairs, batch.batch)
        n = h.shape[-1]
        rows, cols = torch.triu_indices(n, n).tolist()
        grads = [torch.autograd.grad(h[:, r, c].sum(), pos, create_graph=create_graph, retain_graph=True)[0]
                 for r, c in zip(rows, cols)]
        dh = torch.stack(grads, -1)  # (N, 3, n(n+1)/2)
        full = torch.zeros(pos.shape + (n, n), dtype=pos.dtype, device=pos.device)
        full[:, :, rows, cols] = dh
        full = full + torch.triu(full, 1).transpose(-1, -2)
        energies, vectors = eigh2(h) if n == 2 else torch.linalg.eigh(h)
        u = vectors[batch.batch].unsqueeze(1)  # (N, 1, n, n)
        m = u.transpose(-1, -2) @ full @ u  # (N, 3, n, n)
        gradients = torch.diagonal(m, dim1=-2, dim2=-1).transpose(1, 2)  # (N, n, 3)
        gap = (energies.unsqueeze(-2) - energies.unsqueeze(-1))[batch.batch]  # [k, l] = E_l - E_k
        off = ~torch.eye(n, dtype=torch.bool, device=pos.device)
        small = (gap.abs() < min_gap) & off
        if bool(small.any()):
            warnings.warn(f"adiabatic states closer than min_gap={min_gap} eV: their couplings use the floor",
                          DegenerateStatesWarning, stacklevel=2)
            gap = torch.where(small, torch.where(gap >= 0, 1.0, -1.0).to(gap.dtype) * min_gap, gap)
        numerators = m.permute(0, 2, 3, 1)  # (N, n, n, 3)
        numerators = numerators * off.unsqueeze(-1)
        couplings = numerators / torch.where(off, gap, 1.0).unsqueeze(-1)
    out = {"diabatic": h, "energies": energies, "vectors": vectors, "gradients": gradients,
           "coupling_numerators": numerators, "couplings": couplings}
    if not create_graph:
        out = {k: v.detach() for k, v in out.items()}
    return out


def label_frames(model: DiabaticModel, positions: torch.Tensor, numbers: Sequence[int]) -> list[Atoms]:
    """Label geometries with a :class:`sims.surface_hopping.DiabaticModel` (the labeler), in eV and Å.

    Parameters
    ----------
    model : DiabaticModel
        Atomic units, coordinates ``(B, 3 N)`` bohr (e.g. :class:`~sims.surface_hopping.TorsionalIsomerisation`).
    positions : torch.Tensor
        ``(B, 3 N)`` bohr.
    numbers : sequence of int
        Atomic numbers of the ``N`` atoms.

    Returns
    -------
    list of ase.Atoms
        Positions in Å; ``info["energies"]`` (n,) eV, ``info["diabatic"]`` (n, n) eV,
        ``arrays["gradients"]`` (N, n, 3) eV/Å, ``arrays["coupling_numerators"]`` (N, n, n, 3) eV/Å
        (each eigenvector's sign as ``eigh`` returns it: arbitrary, as from quantum chemistry).
    """
    x = torch.as_tensor(positions, dtype=torch.float64)
    ad = model.adiabatic(x)
    n_atoms = len(numbers)
    b, n = x.shape[0], ad.energies.shape[-1]
    gap = (ad.energies.unsqueeze(-2) - ad.energies.unsqueeze(-1)).unsqueeze(1)  # (B, 1, n, n)
    num = (ad.couplings * gap).reshape(b, n_atoms, 3, n, n).permute(0, 1, 3, 4, 2)
    grads = ad.gradients.reshape(b, n_atoms, 3, n).permute(0, 1, 3, 2)
    h = model.diabatic(x)
    force_unit = HARTREE_EV / BOHR_ANGSTROM
    frames = []
    for k in range(b):
        atoms = Atoms(numbers=list(numbers), positions=(x[k].reshape(n_atoms, 3) * BOHR_ANGSTROM).numpy())
        atoms.info["energies"] = (ad.energies[k] * HARTREE_EV).numpy()
        atoms.info["diabatic"] = (h[k] * HARTREE_EV).detach().numpy()
        atoms.arrays["gradients"] = (grads[k] * force_unit).numpy()
        atoms.arrays["coupling_numerators"] = (num[k] * force_unit).numpy()
        frames.append(atoms)
    return frames


def collate_diabatic(structures: Sequence[Atoms], cutoff: float, *, dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None,
                     centre: bool | torch.dtype = True) -> tuple[AtomsBatch, dict[str, torch.Tensor]]:
    """A batch and its multi-state targets (the ``info``/``arrays`` entries of :func:`label_frames`);
    ``centre`` as :func:`learners.potentials.batch.collate_atoms`."""
    batch = collate_atoms(structures, cutoff, dtype=dtype, device=device, labels=False, centre=centre)
    target = {}
    for key, where in (("energies", "info"), ("diabatic", "info"), ("gradients", "arrays"),
                       ("coupling_numerators", "arrays")):
        values = [getattr(a, where).get(key) for a in structures]
        if all(v is not None for v in values):
            arr = np.stack(values) if where == "info" else np.concatenate(values)
            target[key] = torch.as_tensor(arr, dtype=dtype, device=device)
    if "energies" not in target:
        raise InputError("training frames need info['energies'] (per-state energies, eV): see label_frames")
    return batch, target


def _sign_corrected(pred: torch.Tensor, ref: torch.Tensor, batch: torch.Tensor, n_struct: int) -> torch.Tensor:
    """``ref`` with each frame's and pair's sign flipped where that brings it closer to ``pred`` (N, n, n, 3)."""
    plus = torch.zeros((n_struct,) + pred.shape[1:3], dtype=pred.dtype, device=pred.device)
    minus = plus.clone()
    plus = plus.index_add(0, batch, ((pred - ref) ** 2).sum(-1))
    minus = minus.index_add(0, batch, ((pred + ref) ** 2).sum(-1))
    sign = torch.where(minus < plus, -1.0, 1.0).to(pred.dtype)
    return ref * sign[batch].unsqueeze(-1)


class DiabaticLoss:
    """The ``step`` hook of :class:`~learners.trainer.Trainer` for :class:`DiabaticPaiNN`.

    ``loss = w_energy MSE(E) + w_gradients MSE(dE/dR) + w_gap MSE(E_1 - E_0 ...)
    + w_couplings MSE_sign(h_kl) + w_diabatic MSE(H_d)`` (eV^2, eV^2/Å^2), where ``MSE_sign``
    compares each frame's coupling numerators ``h_kl`` (k < l) with the reference or its negative,
    whichever is closer (the per-frame phase correction of arXiv:2108.04879); the gap terms are the
    consecutive gaps ``E_{k+1} - E_k``. ``w_diabatic`` needs ``info["diabatic"]`` targets.
    """

    def __init__(self, *, w_energy: float = 1.0, w_gradients: float = 1.0, w_gap: float = 1.0,
                 w_couplings: float = 1.0, w_diabatic: float = 0.0) -> None:
        weights = {"w_energy": w_energy, "w_gradients": w_gradients, "w_gap": w_gap, "w_couplings": w_couplings,
                   "w_diabatic": w_diabatic}
        if any(not (math.isfinite(w) and w >= 0) for w in weights.values()) or sum(weights.values()) == 0:
            raise InputError(f"loss weights must be finite, >= 0 and not all zero, got {weights}")
        self.weights = {k: float(v) for k, v in weights.items()}

    def __call__(self, model: DiabaticPaiNN, data):
        batch, target = data
        w = self.weights
        need = [k for k, key in (("w_gradients", "gradients"), ("w_couplings", "coupling_numerators"),
                                 ("w_diabatic", "diabatic")) if w[k] > 0 and key not in target]
        if need:
            raise InputError(f"loss weights {need} are > 0 but the frames lack those targets")
        out = evaluate_diabatic(model, batch, create_graph=model.training)
        pred = {"energies": out["energies"], "gap": out["energies"].diff(dim=-1)}
        ref = {"energies": target["energies"], "gap": target["energies"].diff(dim=-1)}
        if "gradients" in target:
            pred["gradients"], ref["gradients"] = out["gradients"], target["gradients"]
        if "coupling_numerators" in target:
            n = out["energies"].shape[-1]
            rows, cols = torch.triu_indices(n, n, 1).tolist()
            p = out["coupling_numerators"][:, rows, cols]
            r = _sign_corrected(p.unsqueeze(1), target["coupling_numerators"][:, rows, cols].unsqueeze(1),
                                batch.batch, batch.n_structures).squeeze(1)
            pred["couplings"], ref["couplings"] = p, r
        if w["w_diabatic"] > 0:
            pred["diabatic"], ref["diabatic"] = out["diabatic"], target["diabatic"]
        return self._total(pred, ref), pred, ref

    def _total(self, pred: dict, ref: dict):
        """The weighted sum of the terms' mean squared errors (torch tensors or numpy arrays)."""
        w = self.weights
        weight = {"energies": w["w_energy"], "gap": w["w_gap"], "gradients": w["w_gradients"],
                  "couplings": w["w_couplings"], "diabatic": w["w_diabatic"]}
        return sum(weight[k] * ((pred[k] - ref[k]) ** 2).mean() for k in pred)

    def whole_loss(self, target: dict, outputs: dict) -> float:
        """The loss of a whole set from its concatenated targets and outputs (numpy dicts, as
        :meth:`learners.trainer.Trainer.run_eval` collects them; the couplings' references are already
        sign-corrected frame by frame): the gradient and coupling terms are means over all the set's
        atoms, so that a validation loss of molecules of different sizes does not depend on how they
        were batched (a mean of batch losses weighted by frames weighs the atoms of small molecules
        more in small batches)."""
        return float(self._total(outputs, target))


def diabatic_metrics(target: dict, outputs: dict) -> dict[str, float]:
    """MAE of energies (eV), gaps (eV), gradients (eV/Å) and sign-corrected coupling numerators (eV/Å)."""
    scores = {}
    for name in ("energies", "gap", "gradients", "couplings"):
        if name in target:
            t, o = (np.reshape(np.asarray(d[name]), (len(d[name]), -1)) for d in (target, outputs))
            scores[f"{name}_mae"] = mae(t, o)
    return scores


class GapWeightedSampler(torch.utils.data.Sampler):
    """Draw training frames with replacement, near-degenerate ones more often (weights from the adiabatic gap).

    Frame ``i`` with smallest adiabatic gap ``g_i`` (eV, over consecutive states) is drawn with
    probability ``w_i = fraction * p_i / sum_j p_j + (1 - fraction) / N``, ``p_i = exp(-g_i^2 / (2 sigma^2))``:
    a Gaussian of the gap, as in the balanced sampling of the DANN paper's code (NeuralForceField,
    where it stands for a Zhu-Nakamura-like hopping probability), mixed with uniform draws so that
    every frame keeps a share. Where the states are close the couplings are large and the dynamics
    hops, yet such frames are rare in any data set; the paper oversamples them (arXiv:2108.04879,
    Methods). Each epoch draws ``num_samples`` indices with :func:`torch.multinomial` from a
    generator seeded by ``(seed, epoch)``, so a run is reproducible and a resumed one draws what
    the uninterrupted run would.

    Parameters
    ----------
    energies : array-like, shape (N, n)
        Adiabatic energies (eV) of the frames, ascending per frame.
    sigma : float
        eV; the gap scale of the weights.
    fraction : float
        Share of the draws that follow the gap weights (0: uniform, 1: only the gap weights).
    num_samples : int, optional
        Draws per epoch; default ``N``.
    seed : int

    Attributes
    ----------
    weights : torch.Tensor, shape (N,)
        The draw probabilities (float64, summing to 1).
    epoch : int
        Epoch whose draws :meth:`__iter__` yields (set by :func:`fit_diabatic` through the trainer).
    """

    def __init__(self, energies: np.ndarray | torch.Tensor, *, sigma: float = 0.5, fraction: float = 0.5,
                 num_samples: int | None = None, seed: int = 0) -> None:
        e = np.asarray(energies, dtype=np.float64)
        if e.ndim != 2 or e.shape[0] < 1 or e.shape[1] < 2 or not np.isfinite(e).all():
            raise InputError(f"energies must be finite with shape (frames, states >= 2), got shape {e.shape}")
        if not (math.isfinite(sigma) and sigma > 0):
            raise InputError(f"sigma must be > 0 eV, got {sigma!r}")
        if not (math.isfinite(fraction) and 0 <= fraction <= 1):
            raise InputError(f"fraction must be in [0, 1], got {fraction!r}")
        if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, int)
                                        or num_samples < 1):
            raise InputError(f"num_samples must be an integer >= 1, got {num_samples!r}")
        gap = np.diff(np.sort(e, axis=1), axis=1).min(1)
        p = np.exp(-gap ** 2 / (2 * sigma ** 2))
        w = fraction * p / p.sum() + (1 - fraction) / len(p)
        self.weights = torch.as_tensor(w / w.sum())
        self.num_samples = len(p) if num_samples is None else num_samples
        self.seed = int(seed)
        self.epoch = 1

    def draw(self, epoch: int) -> torch.Tensor:
        """The ``num_samples`` frame indices (with replacement) of ``epoch``."""
        gen = torch.Generator().manual_seed(int(np.random.default_rng([self.seed, epoch]).integers(2 ** 62)))
        return torch.multinomial(self.weights, self.num_samples, replacement=True, generator=gen)

    def __iter__(self):
        return iter(self.draw(self.epoch).tolist())

    def __len__(self) -> int:
        return self.num_samples


class _Drawn(Sequence):
    """The training frames of the trainer's current epoch as a :class:`GapWeightedSampler` draws them.

    The trainer shuffles indices ``0..len-1`` of this view each epoch (a permutation of i.i.d. draws
    changes nothing); the epoch is the trainer's (its history's length + 1), so resuming from a
    checkpoint continues the same draws.
    """

    def __init__(self, items: Sequence[Atoms], sampler: GapWeightedSampler, trainer: Trainer) -> None:
        self.items, self.sampler, self.trainer = items, sampler, trainer
        self._cache: tuple[int, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, i):
        epoch = len(self.trainer.history_) + 1
        if self._cache is None or self._cache[0] != epoch:
            self.sampler.epoch = epoch
            self._cache = (epoch, list(self.sampler))
        return self.items[self._cache[1][i]]


def fit_diabatic(model: DiabaticPaiNN, train: Sequence[Atoms], val: Sequence[Atoms] | None = None, *,
                 trainer: Trainer | None = None, loss: DiabaticLoss | None = None,
                 fit_scale: bool = True, sampler: GapWeightedSampler | None = None) -> Trainer:
    """Train ``model`` in place on labelled frames (:func:`label_frames`) through the project's Trainer.

    Parameters
    ----------
    trainer : Trainer, optional
        Must have ``eval_grad=True`` (validation gradients are derivatives); default
        ``Trainer(epochs=100, batch_size=32, lr=1e-3, eval_grad=True, monitor="energies_mae")``.
    loss : DiabaticLoss, optional
    fit_scale : bool
        :meth:`DiabaticPaiNN.fit_scale` on the training energies first.
    sampler : GapWeightedSampler, optional
        Built on ``train``'s energies: each epoch trains on its draws (near-degenerate frames
        oftener) instead of on every frame once.

    With a trainer's ``run_dir``, the checkpoint records a digest of the frames (species,
    positions, cell, periodicity and the targets :func:`collate_diabatic` reads) and of the
    sampler's draws: ``resume`` over other frames is refused.
    """
    if trainer is None:
        trainer = Trainer(epochs=100, batch_size=32, lr=1e-3, eval_grad=True, monitor="energies_mae")
    if not trainer.eval_grad:
        raise InputError("the trainer needs eval_grad=True: validation gradients are derivatives of the energies")
    if fit_scale:
        model.fit_scale(np.stack([a.info["energies"] for a in train]))
    if sampler is not None:
        if not isinstance(sampler, GapWeightedSampler) or len(sampler.weights) != len(train):
            raise InputError(f"sampler must be a GapWeightedSampler built on the {len(train)} training frames' "
                             "energies")
    key = None if trainer.run_dir is None else _frames_key(train, val, sampler)
    if sampler is not None:
        train = _Drawn(train, sampler, trainer)
    # built in float64 and cast by the trainer; centred for a computation below float64 (the trainer's dtype,
    # which it casts the model to, or the model's own), as its predictions are
    collate = partial(collate_diabatic, cutoff=model.cutoff, dtype=torch.float64, centre=trainer._dtype(model))
    return trainer.fit(model, train, val, step=loss or DiabaticLoss(), collate=collate, metrics=diabatic_metrics,
                       data_key=key)


def _frames_key(train: Sequence[Atoms], val: Sequence[Atoms] | None, sampler: GapWeightedSampler | None) -> str:
    """Digest of what training reads from the frames and of the sampler's draws, recorded in a trainer
    checkpoint: a resume into a ``run_dir`` trained on other frames is refused (it returned that run's
    model, untrained on these frames)."""
    from learners.data import frames_digest

    def labels(atoms: Atoms) -> list[tuple[str, Any]]:
        sources = (("energies", atoms.info), ("diabatic", atoms.info), ("gradients", atoms.arrays),
                   ("coupling_numerators", atoms.arrays))
        return [(key, None if where.get(key) is None else np.asarray(where[key], dtype=np.float64))
                for key, where in sources]

    return frames_digest([("train", train), ("val", val or ())], labels,
                         np.array(["no sampler"]) if sampler is None else
                         np.concatenate([sampler.weights.numpy(), [sampler.num_samples, sampler.seed]]))


def save_diabatic(model: DiabaticPaiNN, path: str | os.PathLike) -> Path:
    """Write ``model``'s hyperparameters and weights to ``path`` (plain data, written atomically)."""
    if not isinstance(model, DiabaticPaiNN):
        raise InputError(f"save_diabatic saves a DiabaticPaiNN, got {type(model).__name__}")
    path = Path(path)
    with atomic_open(path) as handle:
        torch.save({"format": "matrep-diabatic-1", "hparams": dict(model.hparams),
                    "state_dict": model.state_dict()}, handle)
    return path


def load_diabatic(path: str | os.PathLike, *, device: torch.device | str | None = None,
                  dtype: torch.dtype | None = None) -> DiabaticPaiNN:
    """Read a file of :func:`save_diabatic` (``weights_only`` loading: no code runs from the file).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_diabatic`.
    device : torch.device or str, optional
        Where the model lives; default CPU.
    dtype : torch.dtype, optional
        Precision of the loaded model. Default: the precision it was saved in, so a float64 model
        stays float64; a given dtype converts the weights.

    Raises
    ------
    InputError
        A missing file or one :func:`save_diabatic` did not write.
    """
    payload = read_model_file(path, "matrep-diabatic-1", what="DANN", writer="learners.diabatic.save_diabatic")
    hp = dict(payload["hparams"])
    dtype = dtype or saved_dtype(payload["state_dict"])
    model = DiabaticPaiNN(hp.pop("n_states"), hp.pop("cutoff"), **hp, device=device, dtype=dtype)
    model.load_state_dict(payload["state_dict"])
    return model.to(device=device, dtype=dtype)


class DiabaticCalculator(ASECalculator):
    """ASE calculator of a :class:`DiabaticPaiNN` (or a committee: a list of them): per-state results.

    ``energy`` and ``forces`` are those of the adiabatic state ``state`` (eV, eV/Å), so ASE
    dynamics and optimisers run on it; ``results`` also holds ``energies`` (n,) eV, ``state_forces``
    (n, N, 3) eV/Å and ``couplings`` (N, n, n, 3) 1/Å (``<k|d/dR|l>``). A committee reports the
    members' mean and its spread ``energies_std`` (n,) and ``state_forces_std`` (n, N, 3), the
    uncertainty as for ground-state committees (arXiv:2101.11588); its couplings are the first
    member's (each member's eigenvector signs are its own, so couplings are not averaged).

    Parameters
    ----------
    model : DiabaticPaiNN or sequence of DiabaticPaiNN
        Members share ``n_states``, cutoff, device and dtype.
    state : int
        Adiabatic state of ``energy``/``forces`` (0: ground).
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model: DiabaticPaiNN | Sequence[DiabaticPaiNN], *, state: int = 0, **kwargs) -> None:
        members = [model] if isinstance(model, DiabaticPaiNN) else list(model)
        if not members or not all(isinstance(m, DiabaticPaiNN) for m in members):
            raise InputError("model must be a DiabaticPaiNN or a non-empty sequence of them")
        n = members[0].n_states
        if any(m.n_states != n or m.cutoff != members[0].cutoff for m in members):
            raise InputError("committee members must share n_states and cutoff")
        if isinstance(state, bool) or not isinstance(state, int) or not 0 <= state < n:
            raise InputError(f"state must be an adiabatic state index 0..{n - 1}, got {state!r}")
        super().__init__(**kwargs)
        self.members, self.state = members, state

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        p = next(self.members[0].parameters())
        batch = collate_atoms([self.atoms], self.members[0].cutoff, device=p.device, dtype=p.dtype, labels=False)
        outs = [evaluate_diabatic(m, batch) for m in self.members]
        energies = np.stack([o["energies"][0].cpu().double().numpy() for o in outs])  # (K, n)
        forces = np.stack([-o["gradients"].cpu().double().numpy().transpose(1, 0, 2) for o in outs])  # (K, n, N, 3)
        e, f = energies.mean(0), forces.mean(0)
        self.results = {"energy": float(e[self.state]), "free_energy": float(e[self.state]),
                        "forces": f[self.state], "energies": e, "state_forces": f,
                        "couplings": outs[0]["couplings"].cpu().double().numpy()}
        if len(self.members) > 1:
            self.results["energies_std"] = energies.std(0)
            self.results["state_forces_std"] = forces.std(0)


class DANNHamiltonian(DiabaticModel):
    """A trained :class:`DiabaticPaiNN` as a :class:`sims.surface_hopping.DiabaticModel` (atomic units).

    Coordinates ``(B, 3 N)`` bohr are converted to Å, the model's ``H_d`` (eV) to hartree; adiabatic
    energies, Hellmann-Feynman gradients and couplings then come from the base class (autograd of
    :meth:`diabatic`), so :class:`sims.surface_hopping.FSSH` runs on the network.

    Parameters
    ----------
    model : DiabaticPaiNN
    numbers : sequence of int
        Atomic numbers of the molecule's ``N`` atoms.
    masses : sequence of float, optional
        u; default ASE's standard atomic masses.
    like : DiabaticModel, optional
        A model whose geometric helpers (``geometry``, ``descriptor``, ``is_product``) this one
        borrows (they depend on coordinates only), e.g. the analytic model it was trained on.
    """

    def __init__(self, model: DiabaticPaiNN, numbers: Sequence[int], *, masses: Sequence[float] | None = None,
                 like: DiabaticModel | None = None) -> None:
        from ase.data import atomic_masses

        from sims.surface_hopping import AMU

        self.net = model
        self.numbers = tuple(int(z) for z in numbers)
        self.n_states = model.n_states
        self.ndim = 3 * len(self.numbers)
        masses = [float(atomic_masses[z]) for z in self.numbers] if masses is None else [float(m) for m in masses]
        if len(masses) != len(self.numbers):
            raise InputError(f"masses has {len(masses)} entries for {len(self.numbers)} atoms")
        self.mass = [m * AMU for m in masses for _ in range(3)]
        self.like = like
        for name in ("geometry", "descriptor", "is_product"):
            if like is not None and hasattr(like, name):
                setattr(self, name, getattr(like, name))

    def diabatic(self, x: torch.Tensor) -> torch.Tensor:
        b, n_atoms = x.shape[0], len(self.numbers)
        pos = (x * BOHR_ANGSTROM).reshape(b * n_atoms, 3)
        device = x.device
        numbers = torch.tensor(self.numbers, device=device).repeat(b)
        index = torch.arange(b, device=device).repeat_interleave(n_atoms)
        counts = torch.full((b,), n_atoms, device=device)
        pairs = _dense_pairs(pos.detach(), index, counts, self.net.cutoff)
        cell = torch.zeros(b, 3, 3, dtype=x.dtype, device=device)
        return self.net(pos, cell, numbers, pairs, index) / HARTREE_EV


def hopping_model_from_config(params: Mapping[str, Any], *, base: str | os.PathLike = ".",
                              device: torch.device | str | None = None,
                              dtype: torch.dtype = torch.float64) -> DANNHamiltonian:
    """The ``kind = "dann"`` model of a ``matrep hop`` config (entry point ``sims.hopping_models``).

    ``[model] kind = "dann", path = "dann.pt"`` loads a file of :func:`save_diabatic` on ``device``
    in ``dtype`` (a relative ``path`` is read from the config's folder ``base``) behind
    :class:`DANNHamiltonian`. ``[model.like]`` (a model table, e.g. ``kind = "torsional"``, built
    by sims before this is called) lends the geometric helpers: the ground-state minimum the
    initial conditions are sampled around, the product descriptor and test; ``numbers`` defaults
    to its own, and ``masses`` (u) to its own where ``numbers`` is not given (else ASE's standard
    masses).

    Raises
    ------
    InputError
        Unknown keys (``reprs.errors.ConfigError``, with a did-you-mean), no ``path`` or ``like``,
        no ``numbers`` where ``like`` has none, or a file :func:`load_diabatic` refuses.
    """
    check_keys(params, ("path", "like", "numbers", "masses"), "model")
    if params.get("path") is None:
        raise InputError('model kind "dann" needs path = "<file written by learners.diabatic.save_diabatic>"')
    like = params.get("like")
    if like is None:
        raise InputError('model kind "dann" needs a [model.like] table (e.g. kind = "torsional"): the model whose '
                         "ground-state minimum, product descriptor and product test the ensemble uses")
    numbers = params.get("numbers", getattr(like, "numbers", None))
    if numbers is None:
        raise InputError(f"model kind \"dann\" needs numbers (atomic numbers): {type(like).__name__} has none")
    masses = params.get("masses", getattr(like, "masses", None) if "numbers" not in params else None)
    path = Path(params["path"])
    net = load_diabatic(path if path.is_absolute() else Path(base) / path, device=device, dtype=dtype)
    return DANNHamiltonian(net, numbers, masses=masses, like=like)
