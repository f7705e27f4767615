"""Batches of atomistic structures for the neural potentials, with neighbour lists from :mod:`sims`.

A batch concatenates the atoms of ``B`` structures (``N`` atoms in all) and keeps, per structure,
the cell and periodic flags; its pair list holds every structure's pairs with atom indices
offset into the concatenation, in the ``(i, j, S)`` convention of :mod:`sims.neighbors`
(``r_ij = r_j - r_i + S @ cell``). The lists of all structures are built in one vectorised pass
(:func:`sims.neighbors.build_batch_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable, Sequence

import numpy as np
import torch
from ase import Atoms

from learners.errors import InputError, MatrepError
from reprs.atoms import as_atoms
from sims.neighbors import PairList, build_batch_pairs
from sims.state import centred

__all__ = ["AtomsBatch", "collate_atoms", "full_pairs", "pair_vectors"]


@dataclass
class AtomsBatch:
    """``B`` structures, ``N`` atoms in all, as tensors on one device.

    Attributes
    ----------
    positions : torch.Tensor
        ``(N, 3)`` Å.
    numbers : torch.Tensor
        ``(N,)`` int64 atomic numbers.
    cell : torch.Tensor
        ``(B, 3, 3)`` Å, cell vectors as rows (zero rows along non-periodic directions).
    pbc : torch.Tensor
        ``(B, 3)`` bool.
    batch : torch.Tensor
        ``(N,)`` int64 index of each atom's structure.
    pairs : sims.neighbors.PairList
        Full pair list (both orders) of the whole batch.
    energy : torch.Tensor, optional
        ``(B,)`` reference energies, eV.
    forces : torch.Tensor, optional
        ``(N, 3)`` reference forces, eV/Å.
    stress : torch.Tensor, optional
        ``(B, 3, 3)`` reference stress, eV/Å^3 (ASE's sign convention).
    weight : torch.Tensor, optional
        ``(B,)`` positive weight of each structure in a training loss
        (:class:`learners.potentials.PotentialLoss`); None weighs all alike.
    """

    positions: torch.Tensor
    numbers: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    batch: torch.Tensor
    pairs: PairList
    energy: torch.Tensor | None = None
    forces: torch.Tensor | None = None
    stress: torch.Tensor | None = None
    weight: torch.Tensor | None = None

    @property
    def n_structures(self) -> int:
        """Number of structures ``B``."""
        return int(self.cell.shape[0])

    @property
    def n_atoms(self) -> torch.Tensor:
        """``(B,)`` atoms per structure."""
        return torch.bincount(self.batch, minlength=self.n_structures)

    def apply(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "AtomsBatch":
        """Return a copy with ``fn`` applied to every tensor (the hook :func:`learners.trainer.move_batch` uses)."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, PairList):
                changes[f.name] = PairList(fn(value.i), fn(value.j), fn(value.shifts), value.half)
            elif isinstance(value, torch.Tensor):
                changes[f.name] = fn(value)
        return replace(self, **changes)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "AtomsBatch":
        """Move to ``device``; floating tensors to ``dtype``."""
        return self.apply(lambda t: t.to(device=device, dtype=dtype if (dtype and t.is_floating_point()) else t.dtype))


def full_pairs(pairs: PairList) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(i, j, S)`` of a full list: a half list gets each pair's reverse ``(j, i, -S)`` appended.

    Message passing sends messages both ways along a bond, so the models need both orders even
    when :class:`sims.MD` hands them the half lists the classical pair potentials use.
    """
    if not pairs.half:
        return pairs.i, pairs.j, pairs.shifts
    return (torch.cat([pairs.i, pairs.j]), torch.cat([pairs.j, pairs.i]), torch.cat([pairs.shifts, -pairs.shifts]))


def pair_vectors(positions: torch.Tensor, cell: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                 shifts: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
    """``(P, 3)`` vectors ``r_j - r_i + S @ cell`` (Å); ``cell`` is ``(3, 3)`` or per structure ``(B, 3, 3)``."""
    if cell.dim() == 2:
        offset = shifts.to(cell.dtype) @ cell
    else:
        offset = torch.einsum("pk,pkl->pl", shifts.to(cell.dtype), cell[batch[i]])
    return positions[j] - positions[i] + offset


def _reference(atoms: Atoms, name: str):
    """The stored value of ``name`` on ``atoms`` (its calculator's results), or None."""
    calc = atoms.calc
    if calc is None or name not in getattr(calc, "results", {}):
        return None
    value = np.asarray(calc.results[name], dtype=np.float64)
    if name == "stress" and value.shape == (6,):
        from ase.constraints import voigt_6_to_full_3x3_stress

        value = voigt_6_to_full_3x3_stress(value)
    elif name == "stress" and value.shape == (9,):
        # a 3x3 stored in an ASE database comes back flattened (sims frames written before they stored Voigt)
        value = value.reshape(3, 3)
    return value


def check_weights(weights: Sequence[float], n: int, what: str = "structure") -> np.ndarray:
    """``weights`` as a float64 array, checked to be one finite number > 0 per ``what`` (``n`` of them).

    Raises
    ------
    InputError
        Another length, or a weight that is not finite and positive.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,) or not (np.isfinite(weights).all() and (weights > 0).all()):
        raise InputError(f"weights must be one finite number > 0 per {what} ({n}), got shape "
                         f"{weights.shape} with values {weights.ravel()[:5].tolist()}")
    return weights


def collate_atoms(structures: Sequence[Atoms], cutoff: float, *, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32, labels: bool = True,
                  weights: Sequence[float] | None = None, centre: bool | torch.dtype = True) -> AtomsBatch:
    """Concatenate ``structures`` into an :class:`AtomsBatch` with full pair lists within ``cutoff`` (Å).

    Parameters
    ----------
    structures : sequence of ase.Atoms
        pymatgen structures are converted. Reference energy, forces and stress are taken from each
        structure's calculator results (``atoms.calc.results``, as ASE databases and extxyz files
        restore them) when every structure has them.
    cutoff : float
        Neighbour-list cutoff, Å (the model's).
    device, dtype
        Of the tensors.
    labels : bool
        Collect the reference values.
    weights : sequence of float, optional
        One finite weight > 0 per structure, kept as :attr:`AtomsBatch.weight` (the loss weight of
        each structure; see :class:`learners.potentials.PotentialLoss`).
    centre : bool or torch.dtype
        Below float64, move each structure about its centroid (in float64, before the cast:
        :func:`sims.state.centred`), so that a float32 model sees pair vectors as precise 10^4 Å from
        the origin as at it. Every model of :mod:`learners.potentials` is translation invariant; pass
        False where the batch's positions themselves are the result (:func:`learners.adversarial.attack`).
        A dtype: the precision the batch is computed in when it is built in float64 and cast later
        (a trainer's batches, :func:`learners.potentials.fit_potential`); centred below float64.

    Raises
    ------
    InputError
        An empty sequence, a structure without atoms or with a non-finite position
        (:func:`reprs.atoms.as_atoms`; the message names the structure), or weights that are not
        one finite positive number per structure.
    MissingCellError
        A periodic direction without a cell vector.
    """
    if len(structures) == 0:
        raise InputError("no structures to batch")
    if weights is not None:
        weights = check_weights(weights, len(structures))
    pos, num, cells, pbcs, idx = [], [], [], [], []
    ref = {"energy": [], "forces": [], "stress": []}
    for b, item in enumerate(structures):
        try:
            atoms = as_atoms(item)
        except MatrepError as err:  # name the structure of the batch
            raise type(err)(f"structure {b}: {err}") from None
        # (the centred copy has no calculator: the labels below are read from ``atoms``)
        placed = atoms if centre is False else centred(atoms, dtype if centre is True else centre)
        p = torch.as_tensor(np.asarray(placed.positions, dtype=np.float64), dtype=torch.float64)
        c = torch.as_tensor(np.asarray(atoms.cell[:], dtype=np.float64), dtype=torch.float64)
        periodic = torch.as_tensor(np.asarray(atoms.pbc, dtype=bool))
        pos.append(p)
        num.append(torch.as_tensor(atoms.numbers, dtype=torch.long))
        cells.append(c)
        pbcs.append(periodic)
        idx.append(torch.full((len(atoms),), b, dtype=torch.long))
        if labels:
            for name in ref:
                ref[name].append(_reference(atoms, name))

    def t(x):
        return x.to(device=device, dtype=dtype)

    out = {}
    if labels:
        for name, values in ref.items():
            if values and all(v is not None for v in values):
                arr = np.stack(values) if name != "forces" else np.concatenate(values)
                out[name] = t(torch.as_tensor(arr))
    if weights is not None:
        out["weight"] = t(torch.as_tensor(weights))
    positions, cell, pbc, index = torch.cat(pos), torch.stack(cells), torch.stack(pbcs), torch.cat(idx)
    full = batch_pairs(positions, cell, pbc, index, cutoff)  # in float64, before the cast
    pairs = PairList(full.i.to(device), full.j.to(device), t(full.shifts), False)
    return AtomsBatch(positions=t(positions), numbers=torch.cat(num).to(device), cell=t(cell),
                      pbc=pbc.to(device), batch=index.to(device), pairs=pairs, **out)


def batch_pairs(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, batch: torch.Tensor,
                cutoff: float) -> PairList:
    """Full pair list (both orders) of a batch of structures within ``cutoff`` (Å).

    Parameters
    ----------
    positions : torch.Tensor
        ``(N, 3)`` Å, the structures' atoms one after the other (``batch`` sorted).
    cell, pbc : torch.Tensor
        ``(B, 3, 3)`` Å and ``(B, 3)`` bool.
    batch : torch.Tensor
        ``(N,)`` structure index of each atom.

    Returns
    -------
    PairList
        Atom indices into the whole batch; shifts in the dtype of ``positions``; pairs never cross
        structures. A batch of small non-periodic structures (molecules, clusters: at most
        ``DENSE_MAX`` atoms each) is searched in one vectorised pass over every same-structure pair;
        otherwise all structures' lists come from one :func:`sims.neighbors.build_batch_pairs` (a cell
        list per structure, searched together). Gradients do not flow into the list (it is rebuilt, not
        differentiated).
    """
    counts_t = torch.bincount(batch, minlength=cell.shape[0])
    if not bool(pbc.any()) and int(counts_t.max()) <= DENSE_MAX:
        return _dense_pairs(positions.detach(), batch, counts_t, float(cutoff))
    pl = build_batch_pairs(positions.detach(), cell.detach(), pbc, batch, float(cutoff), half=False)
    return PairList(pl.i, pl.j, pl.shifts.to(positions.dtype), False)


DENSE_MAX = 128


@torch.no_grad()
def _dense_pairs(positions: torch.Tensor, batch: torch.Tensor, counts: torch.Tensor, cutoff: float) -> PairList:
    """Every ordered same-structure pair closer than ``cutoff``, sorted by ``i`` then ``j`` (no periodic images)."""
    device = positions.device
    offsets = torch.cumsum(counts, 0) - counts
    per_atom = counts[batch]                                   # candidates of each atom: its structure's atoms
    i = torch.repeat_interleave(torch.arange(positions.shape[0], device=device), per_atom)
    start = torch.repeat_interleave(torch.cumsum(per_atom, 0) - per_atom, per_atom)
    j = offsets[batch[i]] + torch.arange(i.shape[0], device=device) - start
    d = torch.linalg.norm(positions[j] - positions[i], dim=1)
    keep = (i != j) & (d < cutoff)
    i, j = i[keep], j[keep]
    return PairList(i, j, torch.zeros((i.shape[0], 3), dtype=positions.dtype, device=device), False)

