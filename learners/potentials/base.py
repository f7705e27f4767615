"""The part every neural potential shares: pair geometry in, per-structure energy out, derivatives by autograd.

A model maps each atom's neighbourhood to a number ``o_i``; the energy of a structure is
``E = sum_i (scale * o_i + shift[Z_i])``, with per-element ``shift`` fitted by least squares on the
training energies and one ``scale`` from the training forces (:meth:`NeuralPotential.fit_shifts`),
so the network learns an order-one residual. With ``repulsion="zbl"`` a fixed short-range pair
repulsion is added to ``E`` (:func:`learners.potentials.layers.zbl_energy`, switched off smoothly
at the sum of the two atoms' covalent radii, as in MACE, NequIP and Allegro): it keeps atoms apart
where training data never go, and the network learns the rest. Forces are ``-dE/dR`` and the stress the strain
derivative divided by the volume, by autograd in :func:`evaluate` (the same definitions as
:func:`sims.md.compute`), never a second formula.

Called as ``model(positions, cell, numbers, pairs)`` a model is a :mod:`sims` potential (one
structure, scalar energy), so :class:`sims.MD` runs it like a classical potential; with
``batch`` (the structure index of each atom) and a ``(B, 3, 3)`` cell it returns ``(B,)`` energies.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import covalent_radii
from torch import nn

from learners.errors import InputError
from sims.neighbors import PairList

from .batch import AtomsBatch, collate_atoms, full_pairs, pair_vectors
from .layers import zbl_energy

__all__ = ["NeuralPotential", "evaluate", "member_energies", "MAX_Z"]

#: Largest atomic number a model's element tables cover.
MAX_Z = 100
#: The short-range priors ``NeuralPotential(repulsion=...)`` knows.
REPULSIONS = ("zbl",)


class NeuralPotential(nn.Module):
    """Base class: subclasses implement :meth:`atomic_outputs`.

    Attributes
    ----------
    cutoff : float
        Å; neighbours beyond it do not contribute (a longer pair list, e.g. with an MD skin, is fine).
    atom_energy : torch.Tensor
        Buffer ``(MAX_Z + 1,)``: per-element energy shift, eV.
    energy_scale : torch.Tensor
        Buffer, scalar: eV per unit of network output.
    known_elements : torch.Tensor
        Buffer ``(MAX_Z + 1,)`` bool: elements seen by :meth:`fit_shifts`. Once fitted, structures
        with other elements are refused (the network never learnt them).
    repulsion : str or None
        ``"zbl"``: the ZBL screened nuclear repulsion of every pair closer than the sum of the two
        covalent radii (ASE's table, Cordero et al. 2008) is added to the energy, through
        :func:`learners.potentials.layers.zbl_energy` with its polynomial envelope (p = 6); None:
        the network alone. Subclasses put it in ``hparams`` (when set) so it is saved with the model.
    """

    def __init__(self, cutoff: float, repulsion: str | None = None) -> None:
        super().__init__()
        if not (isinstance(cutoff, (int, float)) and np.isfinite(cutoff) and cutoff > 0):
            raise InputError(f"cutoff must be a finite number > 0 Å, got {cutoff!r}")
        if repulsion is not None and repulsion not in REPULSIONS:
            raise InputError(f"repulsion must be one of {list(REPULSIONS)} or None, got {repulsion!r}")
        self.cutoff = float(cutoff)
        self.repulsion = repulsion
        self.register_buffer("atom_energy", torch.zeros(MAX_Z + 1))
        self.register_buffer("energy_scale", torch.ones(()))
        self.register_buffer("known_elements", torch.zeros(MAX_Z + 1, dtype=torch.bool))
        # Not in the state dict: a constant table, so files of models without it load unchanged.
        self.register_buffer("covalent_radii", torch.as_tensor(covalent_radii[: MAX_Z + 1], dtype=torch.float64),
                             persistent=False)

    def atomic_outputs(self, numbers: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                       vectors: torch.Tensor) -> torch.Tensor:
        """``(N,)`` per-atom outputs from atomic numbers and the full pair list ``i -> j`` with
        vectors ``r_j - r_i`` (Å), all pairs within the cutoff."""
        raise NotImplementedError

    def check_inputs(self, positions: torch.Tensor, numbers: torch.Tensor) -> None:
        """Raise :class:`InputError` for a dtype other than the model's, no atoms, or atomic numbers
        outside ``1..MAX_Z`` or unseen in training."""
        dtype = self.atom_energy.dtype
        if positions.dtype != dtype:
            raise InputError(f"positions are {positions.dtype} but the model is {dtype}; "
                             f"convert one of them (model.to(dtype=...) or the MD/batch dtype)")
        if numbers.numel() == 0:
            raise InputError("the structure has no atoms")
        lo, hi = int(numbers.min()), int(numbers.max())
        if lo < 1 or hi > MAX_Z:
            raise InputError(f"atomic numbers must lie in 1..{MAX_Z}, got {lo}..{hi}")
        known = self.known_elements
        if bool(known.any()):
            bad = torch.unique(numbers[~known[numbers]])
            if bad.numel():
                from ase.data import chemical_symbols

                seen = [chemical_symbols[z] for z in torch.nonzero(known).flatten().tolist()]
                raise InputError(f"element(s) {[chemical_symbols[z] for z in bad.tolist()]} were not in the "
                                 f"training data (seen: {seen}); the model cannot predict them")
        if self.repulsion is not None:
            reach = 2.0 * float(self.covalent_radii[numbers].max())
            if reach > self.cutoff:
                raise InputError(f"the {self.repulsion} repulsion reaches {reach:.2f} Å (twice the largest covalent "
                                 f"radius present), beyond the cutoff {self.cutoff} Å; use a cutoff of at least "
                                 f"{reach:.2f} Å or repulsion=None")

    @classmethod
    def member_outputs(cls, models: Sequence["NeuralPotential"], numbers: torch.Tensor, i: torch.Tensor,
                       j: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """``(N, K)`` the :meth:`atomic_outputs` of ``K`` models of this class with equal ``hparams``
        on one pair list; a subclass may evaluate them together (:class:`~learners.potentials.PaiNN` does)."""
        return torch.stack([m.atomic_outputs(numbers, i, j, vectors) for m in models], 1)

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor, pairs: PairList,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        """Energy, eV: a scalar (one structure, the :mod:`sims` interface) or ``(B,)`` when ``batch`` is given.

        Parameters
        ----------
        positions : torch.Tensor
            ``(N, 3)`` Å.
        cell : torch.Tensor
            ``(3, 3)``, or ``(B, 3, 3)`` with ``batch``; Å.
        numbers : torch.Tensor
            ``(N,)`` atomic numbers.
        pairs : sims.neighbors.PairList
            Half or full list built with a cutoff of at least :attr:`cutoff`.
        batch : torch.Tensor, optional
            ``(N,)`` structure index of each atom.
        """
        return member_energies([self], positions, cell, numbers, pairs, batch)[0]

    def _outputs(self, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor, pairs: PairList,
                 batch: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(N,)`` per-atom network outputs ``o_i`` (before scale and shift) of checked inputs, and
        ``(N,)`` per-atom repulsion energies (eV; half of each pair's to each atom), None without one."""
        i, j, vec = _edges(self.cutoff, positions, cell, pairs, batch)
        return self.atomic_outputs(numbers, i, j, vec), self._repulsion(numbers, i, j, vec)

    def _repulsion(self, numbers: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                   vec: torch.Tensor) -> torch.Tensor | None:
        """``(N,)`` per-atom repulsion energies (eV) on the full pair list ``i -> j``, None without one."""
        if self.repulsion is None:
            return None
        zi, zj = numbers[i], numbers[j]
        radii = self.covalent_radii.to(vec.dtype)
        # The full list holds each pair twice (i -> j and j -> i): half of the pair energy each time.
        pair = zbl_energy(torch.linalg.norm(vec, dim=-1), zi, zj, r_max=radii[zi] + radii[zj])
        return torch.zeros(numbers.shape, dtype=vec.dtype, device=vec.device).index_add(0, i, 0.5 * pair)

    @torch.no_grad()
    def fit_shifts(self, structures: Iterable[Atoms]) -> "NeuralPotential":
        """Fit per-element energy shifts and the energy scale from reference data; return self.

        The scale is the RMS of the reference force components (or, without forces, the RMS
        residual energy per atom of a shift-only fit), so a network output of order one means a
        typical force. The shifts then solve ``min sum_s (E_s - scale * O_s - sum_Z n_sZ mu_Z)^2``
        (least squares on the composition counts ``n_sZ``, as the atom references of SchNetPack and
        NFF) where ``O_s = sum_i o_i`` is the network's present output summed over structure ``s``
        (and ``E_s`` is less the repulsion energy of a model with ``repulsion``; the scale stays the
        RMS of the reference forces, where the repulsion's are nearly zero for physical frames):
        the model's energies on ``structures`` are then the best any shifts give, with no mean error
        per composition, and the network learns an order-one residual. Without ``O_s`` an untrained
        network's mean output stays in every energy (measured on CHGNet-labelled Li10GeP2S12: -77
        and -186 meV/atom for PaiNN seeds 0 and 1, of which 25 epochs at ``w_F = 10 w_E`` removed
        only part). Refitting a trained network on the data it was trained on re-centres its
        energies without moving its forces; on other data the scale changes too (their force RMS)
        and multiplies every force by the ratio (x2.2 measured for data with twice the force RMS),
        so continue training a fitted model with ``fit_potential(..., fit_shifts=False)``. Streams
        over ``structures`` once (the network sees them in chunks of 32).

        Raises
        ------
        InputError
            No structures, or a structure without a reference energy.
        """
        counts, energies, network, f2, n_f = [], [], [], 0.0, 0
        chunk: list[Atoms] = []
        for k, atoms in enumerate(structures):
            results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
            if "energy" not in results:
                raise InputError(f"structure {k} has no reference energy (atoms.calc.results['energy'])")
            counts.append(np.bincount(atoms.numbers, minlength=MAX_Z + 1)[: MAX_Z + 1])
            energies.append(float(results["energy"]))
            if "forces" in results:
                f = np.asarray(results["forces"], dtype=np.float64)
                f2 += float((f * f).sum())
                n_f += f.size
            chunk.append(atoms)
            if len(chunk) == 32:
                network.append(self._summed_outputs(chunk))
                chunk = []
        if not energies:
            raise InputError("fit_shifts needs at least one structure")
        if chunk:
            network.append(self._summed_outputs(chunk))
        a = np.asarray(counts, dtype=np.float64)
        e = np.asarray(energies)
        present = a.sum(0) > 0
        if n_f:
            scale = np.sqrt(f2 / n_f)
        else:
            mu = np.linalg.lstsq(a[:, present], e, rcond=None)[0]
            scale = np.sqrt(np.mean(((e - a[:, present] @ mu) / a.sum(1)) ** 2))
        scale = float(scale) if scale > 0 else 1.0
        mu = np.zeros(MAX_Z + 1)
        network, repulsion = (np.concatenate(x) for x in zip(*network))
        mu[present] = np.linalg.lstsq(a[:, present], e - repulsion - scale * network, rcond=None)[0]
        self.atom_energy.copy_(torch.as_tensor(mu))
        self.energy_scale.fill_(scale)
        self.known_elements.copy_(torch.as_tensor(present))
        return self

    def _summed_outputs(self, structures: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray]:
        """``(B,)`` the network outputs summed over each structure's atoms (:meth:`fit_shifts`' ``O_s``)
        and ``(B,)`` each structure's repulsion energy (eV; zeros without a repulsion)."""
        device, dtype = self._device_dtype()
        batch = collate_atoms(structures, self.cutoff, device=device, dtype=dtype, labels=False)
        out, repulsion = self._outputs(batch.positions, batch.cell, batch.numbers, batch.pairs, batch.batch)
        if repulsion is None:
            repulsion = torch.zeros_like(out)
        sums = torch.zeros((2, batch.n_structures), dtype=out.dtype, device=out.device)
        sums = sums.index_add(1, batch.batch, torch.stack([out, repulsion]))
        return tuple(sums.detach().cpu().double().numpy())

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.parameters())
        return p.device, p.dtype

    def predict(self, structures: AtomsBatch | Sequence[Atoms] | Atoms, *, forces: bool = True,
                stress: bool = False, create_graph: bool = False) -> dict[str, torch.Tensor]:
        """Energies (eV, ``(B,)``), forces (eV/Å, ``(N, 3)``) and stress (eV/Å^3, ``(B, 3, 3)``).

        ``structures`` is a batch or ASE structures (batched here with the model's device and dtype).
        See :func:`evaluate`.
        """
        return {k: v[0] for k, v in evaluate([self], _as_batch(self, structures), forces=forces, stress=stress,
                                             create_graph=create_graph).items()}


def _edges(cutoff: float, positions: torch.Tensor, cell: torch.Tensor, pairs: PairList,
           batch: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(i, j, vectors)``: the full pair list ``i -> j`` cut to ``cutoff`` (Å) and its vectors ``r_j - r_i`` (Å)."""
    i, j, shifts = full_pairs(pairs)
    vec = pair_vectors(positions, cell, i, j, shifts, batch)
    # Lists built with a skin hold pairs beyond the cutoff; they contribute nothing, so drop them.
    with torch.no_grad():
        inside = (vec * vec).sum(-1) < cutoff ** 2
    return i[inside], j[inside], vec[inside]


def member_energies(models: Sequence[NeuralPotential], positions: torch.Tensor, cell: torch.Tensor,
                    numbers: torch.Tensor, pairs: PairList, batch: torch.Tensor | None = None) -> torch.Tensor:
    """Energies of ``K`` potentials of one cutoff on one structure or batch, eV: ``(K,)``, or ``(K, B)`` with ``batch``.

    Each model's ``forward`` is the case ``K = 1``. The full pair list, the pair vectors, the cutoff
    mask and the repulsion are computed once for all members, and members of one class with equal
    ``hparams`` are handed over together (:meth:`NeuralPotential.member_outputs`: PaiNN members share
    their radial basis). Arguments as :meth:`NeuralPotential.forward`.
    """
    checked: list[NeuralPotential] = []
    for m in models:   # once for members that check_inputs judges alike (a committee: once in all)
        if not any(_checked_alike(m, c) for c in checked):
            m.check_inputs(positions, numbers)
            checked.append(m)
    i, j, vec = _edges(models[0].cutoff, positions, cell, pairs, batch)
    outputs: list[torch.Tensor | None] = [None] * len(models)
    groups: dict[tuple, list[int]] = {}
    for k, m in enumerate(models):
        groups.setdefault((type(m), repr(sorted(m.hparams.items())) if hasattr(m, "hparams") else k), []).append(k)
    for members in groups.values():
        out = type(models[members[0]]).member_outputs([models[k] for k in members], numbers, i, j, vec)
        for c, k in enumerate(members):
            outputs[k] = out[:, c]
    repulsions: dict[str, torch.Tensor | None] = {}
    energies = []
    for m, out in zip(models, outputs):
        if m.repulsion not in repulsions:
            repulsions[m.repulsion] = m._repulsion(numbers, i, j, vec)
        atomic = out * m.energy_scale.to(out.dtype) + m.atom_energy.to(out.dtype)[numbers]
        if repulsions[m.repulsion] is not None:
            atomic = atomic + repulsions[m.repulsion]
        energies.append(atomic)
    atomic = torch.stack(energies)
    if batch is None:
        return atomic.sum(1)
    n = cell.shape[0] if cell.dim() == 3 else int(batch.max()) + 1
    return torch.zeros((len(models), n), dtype=atomic.dtype, device=atomic.device).index_add(1, batch, atomic)


def _checked_alike(a: NeuralPotential, b: NeuralPotential) -> bool:
    """Whether :meth:`NeuralPotential.check_inputs` of ``a`` and ``b`` decide alike on any input: the
    same dtype, elements seen in training, repulsion and cutoff (the covalent radii are one table)."""
    return (a.atom_energy.dtype == b.atom_energy.dtype and a.repulsion == b.repulsion and a.cutoff == b.cutoff
            and torch.equal(a.known_elements, b.known_elements))


def _as_batch(model: nn.Module, structures) -> AtomsBatch:
    if isinstance(structures, AtomsBatch):
        return structures
    if isinstance(structures, Atoms):
        structures = [structures]
    p = next(model.parameters())
    return collate_atoms(structures, float(model.cutoff), device=p.device, dtype=p.dtype, labels=False)


def evaluate(models: Sequence[nn.Module], batch: AtomsBatch, *, forces: bool = True, stress: bool = False,
             create_graph: bool = False, differentiable: bool = False) -> dict[str, torch.Tensor]:
    """Energies of ``K`` models on one batch (one shared pair list) and their derivatives.

    Each model runs its forward and backward pass in turn: one graph alive at a time keeps the
    memory of a single model, and measured on CPU this beats one backward through all K graphs
    (benchmarks/nn_md.py) as well as ``torch.func.vmap`` over stacked weights (about 6x
    slower here).

    Parameters
    ----------
    models : sequence of NeuralPotential
    batch : AtomsBatch
    forces, stress : bool
        What to differentiate. The stress is ``(1/V) dE/d(eps)`` under ``R -> R (1 + eps)`` of
        positions and cell: :func:`sims.md.compute`'s convention (ASE's sign), no kinetic part.
    create_graph : bool
        Keep the graph of the derivatives (training on forces needs it).
    differentiable : bool
        Keep the batch's positions and cell in the graph instead of detaching them, so that
        whatever they were computed from (an attack's displacement, a strain) receives gradients
        of the results (:func:`learners.adversarial.attack`).

    Returns
    -------
    dict
        ``energy`` ``(K, B)`` eV, ``forces`` ``(K, N, 3)`` eV/Å, ``stress`` ``(K, B, 3, 3)`` eV/Å^3.

    Raises
    ------
    InputError
        Stress asked for a structure that is not periodic in all three directions.
    """
    if stress and not bool(batch.pbc.all()):
        raise InputError("the stress needs structures periodic in all three directions")
    outs = [_derive(m, batch, forces, stress, create_graph, differentiable) for m in models]
    return {k: torch.stack([o[k] for o in outs]) for k in outs[0]}


def _derive(model: nn.Module, batch: AtomsBatch, forces: bool, stress: bool,
            create_graph: bool, differentiable: bool) -> dict[str, torch.Tensor]:
    pos = batch.positions if differentiable else batch.positions.detach()
    cell = batch.cell
    inputs = []
    if forces:
        if not pos.requires_grad:
            pos = pos.clone().requires_grad_(True)
        inputs.append(pos)
    pos_in = pos
    if stress:
        strain = torch.zeros((batch.n_structures, 3, 3), dtype=pos.dtype, device=pos.device, requires_grad=True)
        deform = torch.eye(3, dtype=pos.dtype, device=pos.device) + strain
        pos_in = torch.einsum("ni,nij->nj", pos, deform[batch.batch])
        cell = cell @ deform
        inputs.append(strain)
    with torch.set_grad_enabled(bool(inputs) or torch.is_grad_enabled()):
        energy = model(pos_in, cell, batch.numbers, batch.pairs, batch.batch)
        out = {"energy": energy}
        if inputs:
            grads = torch.autograd.grad(energy.sum(), inputs, create_graph=create_graph)
            if forces:
                out["forces"] = -grads[0]
            if stress:
                out["stress"] = grads[-1] / torch.abs(torch.linalg.det(batch.cell))[:, None, None]
    if not (create_graph or differentiable):
        out = {k: v.detach() for k, v in out.items()}
    return out
