"""Training neural potentials on energies and forces, through the shared :class:`learners.trainer.Trainer`.

Loss per batch (as NFF and SchNetPack, arXiv:2101.11588 Methods)::

    w_E * mean_s ((E_s - E_s^ref) / N_s)^2 + w_F * mean_{i,a} (F_ia - F_ia^ref)^2 [+ w_S * mean (sigma - sigma^ref)^2]

Energies per atom make structures of different sizes count alike. With per-structure weights
``w_s`` (:attr:`AtomsBatch.weight`, e.g. from ``fit_potential(weights=...)``) each mean becomes the
weighted mean over the batch's structures (forces: over their atoms, each atom carrying its
structure's weight), normalised by the sum of the weights: for an integer ``w_s`` the loss equals
the loss of the batch in which structure ``s`` appears ``w_s`` times. Datasets are read from the
ASE databases :func:`sims.generate.generate` writes (:class:`AtomsDataset`), and split by
trajectory (:func:`trajectory_split`): frames of one MD run are correlated, so a frame split would
test on near-copies of training frames.
"""

from __future__ import annotations

import copy
import os
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms

from learners.data import frames_digest
from learners.errors import InputError
from learners.metrics import mae, rmse
from learners.splits import group_split
from learners.trainer import Trainer
from reprs.atoms import as_atoms
from reprs.fileio import read_frames

from .base import NeuralPotential, evaluate
from .batch import AtomsBatch, _reference, check_weights, collate_atoms
from .committee import Committee

__all__ = ["AtomsDataset", "trajectory_split", "PotentialLoss", "potential_metrics", "frame_errors", "fit_potential"]


class AtomsDataset(Sequence):
    """Frames of an ASE database or an extended-XYZ file (read once, by :func:`reprs.fileio.read_frames`).

    Parameters
    ----------
    path : path
        ``.db`` (ASE SQLite database) or ``.extxyz``/``.xyz``.
    selection : str, optional
        ASE database query (``"T_target>3000"``); databases only.

    Items are ``ase.Atoms`` with the stored energy, forces (and stress) in ``atoms.calc.results``
    and the row's key-value pairs in ``atoms.info``.
    """

    def __init__(self, path: str | os.PathLike, *, selection: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"dataset {str(self.path)!r} does not exist")
        self._frames = read_frames(self.path, selection=selection)
        self._info = [dict(a.info) for a in self._frames]
        if len(self) == 0:
            where = f" matching {selection!r}" if selection else ""
            raise InputError(f"dataset {str(self.path)!r} has no frames{where}")

    def __len__(self) -> int:
        return len(self._info)

    def __getitem__(self, k: int) -> Atoms:
        return self._frames[k]

    def info(self, key: str) -> list[Any]:
        """The metadata ``key`` of every frame (read without loading the structures)."""
        missing = [k for k, d in enumerate(self._info) if key not in d]
        if missing:
            raise InputError(f"frames {missing[:10]} have no {key!r} entry; "
                             f"known keys: {sorted(self._info[missing[0]])}")
        return [d[key] for d in self._info]


def trajectory_split(data: Sequence[Atoms], fractions: Sequence[float] = (0.8, 0.1, 0.1), *,
                     key: str = "config_hash", seed: int = 0) -> tuple[np.ndarray, ...]:
    """Index arrays of a train/validation/test split keeping each trajectory on one side.

    Parameters
    ----------
    data : AtomsDataset or sequence of ase.Atoms
        Frames whose ``info[key]`` names their trajectory (``config_hash``, which
        :func:`sims.generate.generate` stores with every frame and which covers the seed).
    fractions : sequence of float
        Of the trajectories (:func:`learners.splits.group_split`): part ``k`` gets
        ``round(n (f_0 + ... + f_k)) - round(n (f_0 + ... + f_{k-1}))`` of the ``n`` trajectories.
    key : str
    seed : int
        Orders the trajectories.

    Raises
    ------
    InputError
        Frames without ``info[key]``, or too few trajectories to give every part one.
    """
    if isinstance(data, AtomsDataset):
        groups = data.info(key)
    else:
        missing = [k for k, a in enumerate(data) if key not in a.info]
        if missing:
            raise InputError(f"frames {missing[:10]} have no info[{key!r}] naming their trajectory")
        groups = [a.info[key] for a in data]
    if len(set(groups)) < len(fractions):
        raise InputError(f"{len(set(groups))} trajectories cannot fill {len(fractions)} parts by trajectory")
    parts = group_split(groups, fractions, seed=seed)
    empty = [k for k, part in enumerate(parts) if len(part) == 0]
    if empty:
        raise InputError(f"parts {empty} of the split are empty: {len(set(groups))} trajectories of "
                         f"{len(groups)} frames cannot fill fractions {tuple(fractions)}; use more trajectories")
    return parts


class PotentialLoss:
    """The ``step`` hook of :class:`~learners.trainer.Trainer` for potentials: energy per atom + forces (+ stress).

    Parameters
    ----------
    w_energy, w_forces, w_stress : float
        Weights of the three mean squared errors (eV^2/atom^2, eV^2/Å^2, eV^2/Å^6). The stress error is the
        mean over the nine entries of each 3x3 tensor (ASE's sign, eV/Å^3; labels stored in Voigt order are
        expanded), so a shear component counts twice against a diagonal one, as in an error of the full tensor.

    A batch with per-structure weights (:attr:`AtomsBatch.weight`) takes weighted means (see the
    module docstring): weighting a structure by an integer ``w`` gives the loss of the batch that
    holds it ``w`` times.

    Returns (when called)
    ---------------------
    ``(loss, outputs, targets)`` where outputs and targets are dicts with ``energy_per_atom``
    ``(B,)`` and ``forces`` ``(N, 3)`` (and ``stress``).
    """

    def __init__(self, *, w_energy: float = 1.0, w_forces: float = 1.0, w_stress: float = 0.0) -> None:
        weights = {"w_energy": w_energy, "w_forces": w_forces, "w_stress": w_stress}
        if any(not (np.isfinite(w) and w >= 0) for w in weights.values()) or w_energy + w_forces + w_stress == 0:
            raise InputError(f"loss weights must be finite, >= 0 and not all zero, got {weights}")
        self.w_energy, self.w_forces, self.w_stress = float(w_energy), float(w_forces), float(w_stress)

    def __call__(self, model: NeuralPotential, batch: AtomsBatch):
        if batch.energy is None or (self.w_forces and batch.forces is None) or (self.w_stress and batch.stress is None):
            raise InputError("training frames need reference energies" + (" and forces" if self.w_forces else "")
                             + (" and stress" if self.w_stress else ""))
        need_f, need_s = self.w_forces > 0, self.w_stress > 0
        out = evaluate([model], batch, forces=need_f, stress=need_s, create_graph=model.training)
        n = batch.n_atoms.to(batch.energy.dtype)
        pred = {"energy_per_atom": out["energy"][0] / n}
        target = {"energy_per_atom": batch.energy / n}
        w = batch.weight
        loss = self.w_energy * _mean((pred["energy_per_atom"] - target["energy_per_atom"]) ** 2, w)
        if need_f:
            pred["forces"], target["forces"] = out["forces"][0], batch.forces
            loss = loss + self.w_forces * _mean((pred["forces"] - batch.forces) ** 2, None if w is None else w[batch.batch])
        if need_s:
            pred["stress"], target["stress"] = out["stress"][0], batch.stress
            loss = loss + self.w_stress * _mean((pred["stress"] - batch.stress) ** 2, w)
        return loss, pred, target

    def whole_loss(self, target: dict, outputs: dict) -> float:
        """The unweighted loss of a whole set from its concatenated targets and outputs (numpy dicts, as
        :meth:`learners.trainer.Trainer.run_eval` collects them): the means over structures and over atoms
        taken over the set, so that a validation loss does not depend on how its frames were batched (a
        mean of batch losses weighted by structures weighs the atoms of small structures more in small
        batches: 0.0111 at batch size 1 against 0.0084 for the set, on argon frames of 4 and 32 atoms)."""
        weights = {"energy_per_atom": self.w_energy, "forces": self.w_forces, "stress": self.w_stress}
        return float(sum(w * np.mean((np.asarray(outputs[k]) - np.asarray(target[k])) ** 2)
                         for k, w in weights.items() if k in target))


def _mean(squares: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``squares``; with ``weight`` (one per leading row) the weighted mean, normalised by the weights' sum."""
    if weight is None:
        return torch.mean(squares)
    rows = squares.reshape(squares.shape[0], -1)
    return (weight[:, None] * rows).sum() / (weight.sum() * rows.shape[1])


def potential_metrics(target: dict, outputs: dict) -> dict[str, float]:
    """MAE and RMSE of energy per atom (eV/atom) and of force components (eV/Å)."""
    scores = {}
    for name, short in (("energy_per_atom", "energy"), ("forces", "forces"), ("stress", "stress")):
        if name in target:
            # Rows of components: sklearn's metrics take at most 2-D arrays (stress is (B, 3, 3)).
            t, o = (np.reshape(np.asarray(d[name]), (len(d[name]), -1)) for d in (target, outputs))
            scores[f"{short}_mae"], scores[f"{short}_rmse"] = mae(t, o), rmse(t, o)
    return scores


def frame_errors(model: NeuralPotential | Committee, frames: Sequence[Atoms]) -> dict[str, float]:
    """Errors of ``model`` against the energies and forces stored on labelled frames.

    Returns the :func:`potential_metrics` of energy per atom (eV/atom) and force components (eV/Å),
    plus ``forces_mean_abs``: the mean absolute reference force component (eV/Å), the scale a force
    MAE is judged against, and ``energy_bias``: the mean signed error of the energy per atom
    (predicted minus reference, eV/atom). An energy MAE equal to ``|energy_bias|`` is a constant
    offset over the frames, not an error of their differences.
    """
    ref_f = np.concatenate([f.get_forces() for f in frames])
    ref_e = np.array([f.get_potential_energy() / len(f) for f in frames])
    out = [model.predict(f) for f in frames]
    pred_f = np.concatenate([o["forces"].detach().cpu().numpy() for o in out])
    pred_e = np.array([float(o["energy"][0]) / len(f) for o, f in zip(out, frames)])
    scores = potential_metrics({"energy_per_atom": ref_e, "forces": ref_f}, {"energy_per_atom": pred_e, "forces": pred_f})
    scores["forces_mean_abs"] = float(np.mean(np.abs(ref_f)))
    scores["energy_bias"] = float(np.mean(pred_e - ref_e))
    return scores


def fit_potential(model: NeuralPotential | Committee, train: Sequence[Atoms], val: Sequence[Atoms] | None = None, *,
                  trainer: Trainer | None = None, loss: PotentialLoss | None = None,
                  fit_shifts: bool = True, weights: Sequence[float] | None = None) -> list[Trainer]:
    """Fit the energy shifts on ``train`` and train ``model`` (each member of a committee) with ``trainer``.

    Parameters
    ----------
    model : NeuralPotential or Committee
        Trained in place; a committee's members are trained one after the other on the same data
        (their independent initialisations make them differ).
    train, val : sequences of ase.Atoms
        With reference energies and forces (an :class:`AtomsDataset` or a subset of one).
    trainer : Trainer, optional
        Must have ``eval_grad=True`` (validation forces need autograd); default
        ``Trainer(epochs=100, batch_size=16, lr=5e-4, eval_grad=True)``. With a ``run_dir``,
        member ``m`` of a committee writes to ``run_dir/member_m``, and the checkpoint records a
        digest of the frames and weights: ``resume`` over other frames is refused.
    loss : PotentialLoss, optional
        Default ``PotentialLoss(w_energy=1, w_forces=1)``.
    fit_shifts : bool
        Fit per-element shifts and the scale first (:meth:`NeuralPotential.fit_shifts`, unweighted:
        they only centre and scale the outputs).
    weights : sequence of float, optional
        A finite weight > 0 per training frame in the loss (:class:`PotentialLoss`; an integer
        weight ``w`` counts a frame as ``w`` copies of it in its batch). The validation frames
        weigh alike.

    Returns
    -------
    list of Trainer
        One per trained model, with ``history_`` (losses and MAEs per epoch).

    Raises
    ------
    InputError
        A trainer without ``eval_grad``; a resume from a checkpoint of other frames, weights or
        settings (:class:`learners.trainer.Trainer`).
    """
    trainer = Trainer(epochs=100, batch_size=16, lr=5e-4, eval_grad=True) if trainer is None else trainer
    if not trainer.eval_grad:
        raise InputError("the trainer needs eval_grad=True: validation forces are derivatives of the energy")
    loss = PotentialLoss() if loss is None else loss
    items: Sequence[Any] = train
    val_items: Sequence[Any] | None = val
    if weights is not None:
        items = list(zip(train, check_weights(weights, len(train), "training frame").tolist()))
        # The trainer batches validation frames with the training collate: (frame, weight) pairs, weight 1 each.
        val_items = None if val is None else [(atoms, 1.0) for atoms in val]
    members = list(model.models) if isinstance(model, Committee) else [model]
    trainers, key = [], None
    for m, member in enumerate(members):
        if fit_shifts:
            member.fit_shifts(train)
        t = copy.copy(trainer)
        if trainer.run_dir is not None and len(members) > 1:
            t.run_dir = trainer.run_dir / f"member_{m}"
        # Batches are built in float64 and cast by the trainer, so positions keep full precision until then;
        # centred for a computation below float64 as its predictions are (cast as given, frames 10^4 Å from
        # the origin trained a float32 model on forces 5e-3 (relative) off the ones it predicts there). The
        # trainer's dtype, which it casts the model to, where it names one.
        centre = t._dtype(member)
        collate = partial(collate_atoms, cutoff=member.cutoff, dtype=torch.float64, centre=centre)
        train_collate = collate if weights is None else partial(_collate_weighted, cutoff=member.cutoff,
                                                                centre=centre)
        if key is None and trainer.run_dir is not None:
            key = _frames_key(train, val, weights)
        t.fit(member, items, val_items, step=loss, collate=train_collate, metrics=potential_metrics, data_key=key)
        trainers.append(t)
    return trainers


def _frames_key(train: Sequence[Any], val: Sequence[Any] | None, weights: Sequence[float] | None) -> str:
    """Digest of what training reads from the frames (as :func:`collate_atoms` does: species, positions,
    cell, periodicity, stored energy, forces and stress) and of the weights, recorded in a trainer
    checkpoint: a resume into a ``run_dir`` trained on other frames is refused (it returned that run's
    model, untrained on these frames)."""
    return frames_digest([("train", [as_atoms(item) for item in train]),
                          ("val", [as_atoms(item) for item in val or ()])],
                         lambda atoms: [(label, _reference(atoms, label)) for label in ("energy", "forces", "stress")],
                         np.array(["no weights"]) if weights is None else np.asarray(weights, dtype=float))


def _collate_weighted(items: Sequence[tuple[Atoms, float]], cutoff: float,
                      centre: bool | torch.dtype = True) -> AtomsBatch:
    """A batch of ``(atoms, weight)`` training items (``fit_potential(weights=...)``), in float64
    (``centre`` as :func:`collate_atoms`)."""
    return collate_atoms([a for a, _ in items], cutoff, dtype=torch.float64, weights=[w for _, w in items],
                         centre=centre)
