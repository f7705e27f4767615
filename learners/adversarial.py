"""Adversarial attacks on a committee's uncertainty: displacements that the committee disagrees on most.

Schwalbe-Koda, Tan & Gómez-Bombarelli, "Differentiable sampling of molecular geometries with
uncertainty-based adversarial attacks", Nat. Commun. 12, 5104 (2021) (arXiv:2101.11588), Eqs. 3-5:
a displacement ``delta`` of the atoms maximises the committee's force variance weighted by the
Boltzmann probability of the displaced geometry, so the attack finds geometries that are both
uncertain and thermodynamically reachable. Gradient ascent (Adam) on ``delta`` through the
committee, with forces by autograd and a second derivative through them.

Conventions written out against the authors' code (learningmatter-mit/Atomistic-Adversarial-Attacks,
``robust/loss.py`` ``AdvLoss`` and ``robust/schnet/attacker.py``):

- The variance over members is the population variance (``unbiased=False``), as
  :meth:`learners.potentials.Committee.predict`'s spread; the authors' ``Tensor.var`` is the
  unbiased one (a factor ``K / (K - 1)``, which changes neither the optimum nor the path of Adam).
- The energy in the Boltzmann factor is the committee's mean energy per atom (the authors'
  attacker divides by the atom count) unless ``energy_scale="total"``.
- ``Z`` is the mean Boltzmann factor of the reference (training) energies, as the authors'
  ``partition_fn``; computed in log space here (see :class:`AdversarialLoss`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from learners.errors import InputError, InputTypeError, MatrepError
from learners.potentials.base import evaluate
from learners.potentials.batch import AtomsBatch, batch_pairs, collate_atoms
from learners.potentials.committee import Committee, structure_force_variance
from reprs.atoms import as_frames
from sims.integrators import make_generator

__all__ = ["AdversarialLoss", "AttackWarning", "attack", "ENERGY_SCALES", "UNCERTAINTIES"]

ENERGY_SCALES = ("per_atom", "total")
UNCERTAINTIES = ("forces", "energy")


class AttackWarning(UserWarning):
    """An attacked structure was dropped (overlapping atoms or a non-finite position); the message names it."""


def _check_committee(committee) -> Committee:
    if not isinstance(committee, Committee):
        raise InputTypeError(f"committee must be a learners.potentials.Committee of >= 2 models (a single model "
                             f"has no spread to attack), got {type(committee).__name__}")
    return committee


def _check_kT(kT) -> float:
    if isinstance(kT, bool) or not isinstance(kT, (int, float)) or not (math.isfinite(kT) and kT > 0):
        raise InputError(f"kT must be a finite number > 0 eV, got {kT!r}")
    return float(kT)


class AdversarialLoss:
    """``L = -sigma^2(x) p(x)``, ``p(x) = exp(-E(x) / kT) / Z`` (arXiv:2101.11588, Eqs. 3-4).

    ``sigma^2`` is the committee's force variance over members, averaged over the atoms and the
    Cartesian components of each structure (eV^2/Å^2), or with ``uncertainty="energy"`` the
    variance of the members' energies (eV^2, per atom^2 with ``energy_scale="per_atom"``). ``E``
    is the committee's mean energy. Minimising ``L`` maximises the uncertainty a geometry of
    reasonable Boltzmann weight carries.

    ``Z`` is estimated from the reference energies ``E_r`` (``r = 1..n``, the training set) as
    their mean Boltzmann factor, ``Z = (1/n) sum_r exp(-E_r / kT)``, as the authors' code does. So
    ``log p(x) = -E(x)/kT - (logsumexp_r(-E_r/kT) - log n)``, evaluated in log space: total
    energies of hundreds of eV over a kT of a tenth of an eV would overflow ``exp``. With
    ``p`` normalised this way a geometry as likely as a typical training geometry has ``p ~ 1``.

    Choosing kT: it sets how far uphill in energy the attack may go. The paper chooses it per
    system (Methods, "Adversarial attacks", and the values in its SI): too small, and ``p``
    pins the attack to the bottom of the training well (nothing new is sampled); too large,
    and the attack climbs to high-energy, unphysical geometries that are uncertain for a trivial
    reason. A rule that follows from the loss: take kT of the order of the energy range you want
    sampled, e.g. the barrier height to be crossed (per atom with ``energy_scale="per_atom"``),
    and well above the thermal energy of the training MD (0.026 eV at 300 K), which only
    reaches the bottom of the well.

    Parameters
    ----------
    committee : Committee
        At least two members (the spread of one model is undefined).
    kT : float
        eV (per atom with ``energy_scale="per_atom"``); > 0.
    reference : sequence of ase.Atoms or array-like, optional
        The energies ``Z`` is estimated from: labelled frames (their stored energies, divided by
        their atom counts with ``energy_scale="per_atom"``) or the energies themselves, already
        on the chosen scale (eV). Without it :func:`attack` gives each structure its own ``Z``, its
        starting energy's Boltzmann factor (see there); ``log_Z`` is then a ``(B,)`` tensor.
    energy_scale : {"per_atom", "total"}
        Which energy enters the Boltzmann factor.
    uncertainty : {"forces", "energy"}
        Which variance is ``sigma^2``.

    Raises
    ------
    InputTypeError
        ``committee`` is not a :class:`Committee`.
    InputError
        ``kT <= 0``, an unknown option, or empty or non-finite reference energies.

    References
    ----------
    Schwalbe-Koda, Tan & Gómez-Bombarelli, Nat. Commun. 12, 5104 (2021), Eqs. 3-5.

    Examples
    --------
    >>> loss = AdversarialLoss(committee, kT=0.05, reference=train_frames)  # doctest: +SKIP
    >>> loss.log_probability(torch.tensor([-3.1]))                        # doctest: +SKIP
    """

    def __init__(self, committee: Committee, kT: float, *, reference=None, energy_scale: str = "per_atom",
                 uncertainty: str = "forces") -> None:
        self.committee = _check_committee(committee)
        self.kT = _check_kT(kT)
        if energy_scale not in ENERGY_SCALES:
            raise InputError(f"energy_scale must be one of {ENERGY_SCALES}, got {energy_scale!r}")
        if uncertainty not in UNCERTAINTIES:
            raise InputError(f"uncertainty must be one of {UNCERTAINTIES}, got {uncertainty!r}")
        self.energy_scale, self.uncertainty = energy_scale, uncertainty
        self.log_Z = None if reference is None else self._log_partition(self.reference_energies(reference))

    def reference_energies(self, reference) -> np.ndarray:
        """Reference energies on this loss's scale (eV or eV/atom) from frames or numbers."""
        if len(reference) and isinstance(reference[0], Atoms):
            e = np.array([f.get_potential_energy() for f in reference], dtype=np.float64)
            if self.energy_scale == "per_atom":
                e = e / np.array([len(f) for f in reference])
        else:
            e = np.asarray(reference, dtype=np.float64).ravel()
        if e.size == 0 or not np.isfinite(e).all():
            raise InputError(f"reference energies must be a non-empty set of finite numbers, got {e.size} values "
                             f"({int((~np.isfinite(e)).sum())} non-finite)")
        return e

    def _log_partition(self, energies: np.ndarray) -> float:
        x = torch.as_tensor(-energies / self.kT, dtype=torch.float64)
        return float(torch.logsumexp(x, 0) - math.log(x.numel()))

    def scaled_energy(self, energy: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
        """``energy`` (eV, ``(..., B)``) on this loss's scale."""
        return energy / n_atoms.to(energy.dtype) if self.energy_scale == "per_atom" else energy

    def log_probability(self, energy: torch.Tensor) -> torch.Tensor:
        """``log p = -E / kT - log Z`` for energies on this loss's scale."""
        if self.log_Z is None:
            raise InputError("the loss has no reference energies for Z: pass reference= (the training frames)")
        return -energy / self.kT - self.log_Z

    def variance(self, energies: torch.Tensor, forces: torch.Tensor, batch: torch.Tensor,
                 n_atoms: torch.Tensor) -> torch.Tensor:
        """``(B,)`` ``sigma^2`` from members' energies ``(K, B)`` (eV) and forces ``(K, N, 3)`` (eV/Å)."""
        if self.uncertainty == "energy":
            return self.scaled_energy(energies, n_atoms).var(0, unbiased=False)
        return structure_force_variance(forces, batch, n_atoms)

    def terms(self, energies: torch.Tensor, forces: torch.Tensor, batch: torch.Tensor,
              n_atoms: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per structure ``(B,)``: ``loss``, ``variance``, ``energy`` (scaled mean), ``log_p``."""
        var = self.variance(energies, forces, batch, n_atoms)
        energy = self.scaled_energy(energies.mean(0), n_atoms)
        log_p = self.log_probability(energy)
        return {"loss": -var * torch.exp(log_p), "variance": var, "energy": energy, "log_p": log_p}


def _check_elements(committee: Committee, frames: Sequence[Atoms]) -> None:
    known = committee.models[0].known_elements
    if not bool(known.any()):
        return
    from ase.data import chemical_symbols

    for k, f in enumerate(frames):
        present = np.unique(f.numbers)
        inside = present < len(known)
        unseen = np.zeros(len(present), dtype=bool)
        unseen[inside] = ~known.cpu().numpy()[present[inside]]
        bad = present[~inside | unseen].tolist()
        if bad:
            seen = [chemical_symbols[z] for z in torch.nonzero(known).flatten().tolist()]
            raise InputError(f"structure {k} has element(s) {[chemical_symbols[z] for z in bad]} that the committee "
                             f"was not trained on (seen: {seen})")


def _rotating_sides(atoms: Atoms, dihedrals: Sequence[Sequence[int]]) -> np.ndarray:
    """``(D, N)`` bool: for dihedral ``(i, j, k, l)``, the atoms on ``k``'s side of the ``j-k`` bond.

    Bonds are ASE's covalent-radius rule (:func:`ase.neighborlist.natural_cutoffs`, radii x 1.2).
    """
    from ase.neighborlist import natural_cutoffs, neighbor_list
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(atoms)
    a, b = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
    sides = np.zeros((len(dihedrals), n), dtype=bool)
    for d, quad in enumerate(dihedrals):
        if len(quad) != 4 or len(set(int(q) for q in quad)) != 4 or not all(0 <= int(q) < n for q in quad):
            raise InputError(f"dihedral {d} must be 4 distinct atom indices in 0..{n - 1}, got {tuple(quad)!r}")
        j, k = int(quad[1]), int(quad[2])
        keep = ~(((a == j) & (b == k)) | ((a == k) & (b == j)))
        graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        if label[j] == label[k]:
            raise InputError(f"dihedral {d} {tuple(quad)}: atoms {j} and {k} stay connected without their bond "
                             f"(a ring, or not bonded at all); a rotation about it would break bonds")
        sides[d] = label == label[k]
    return sides


def _rotate(positions: torch.Tensor, j: int, k: int, side: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """``(B, N, 3)`` positions with the atoms of ``side`` rotated by ``angle`` ``(B,)`` (rad) about the j-k axis
    (Rodrigues' formula), so bond lengths and angles within each side are unchanged."""
    axis = positions[:, k] - positions[:, j]
    u = (axis / torch.linalg.norm(axis, dim=-1, keepdim=True))[:, None, :]
    p = positions - positions[:, k:k + 1]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    rotated = p * cos + torch.linalg.cross(u.expand_as(p), p, dim=-1) * sin + u * (u * p).sum(-1, keepdim=True) * (1 - cos)
    return torch.where(side[None, :, None], rotated + positions[:, k:k + 1], positions)


def _min_distance(atoms: Atoms) -> float:
    if len(atoms) < 2:
        return math.inf
    d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    return float(d[np.triu_indices(len(atoms), 1)].min())


def _random_starts(frames: list[Atoms], seed: int | None, n_angles: int | None) -> torch.Tensor:
    """Standard-normal start variables of the structures: ``(sum N, 3)`` displacements, or
    ``(B, n_angles)`` angles.

    Each structure draws from its own local generator seeded by ``(seed, its digest, how many identical
    structures came before it)``, so a structure starts the same whatever else is attacked with it
    (a subset, another order), and repeated copies of one structure still get different starts.
    """
    seen: dict[int, int] = {}
    out = []
    for frame in frames:
        h = hashlib.sha256()
        for a in (frame.numbers.astype(np.int64), frame.positions.astype(np.float64),
                  np.asarray(frame.cell, dtype=np.float64), frame.pbc.astype(np.int8)):
            h.update(np.ascontiguousarray(a).tobytes())
        key = int.from_bytes(h.digest()[:8], "little")
        seen[key] = seen.get(key, -1) + 1
        # None draws OS entropy into a local generator; the global state is never touched.
        generator = make_generator(None if seed is None else (seed, key, seen[key]))
        shape = (n_angles,) if n_angles is not None else (len(frame), 3)
        out.append(torch.randn(shape, generator=generator, dtype=torch.float64))
    return torch.stack(out) if n_angles is not None else torch.cat(out)


def attack(committee: Committee, structures: Sequence[Atoms] | Atoms, *, kT: float, steps: int = 60,
           lr: float = 1e-2, init_scale: float = 0.01, max_displacement: float | None = None, seed: int | None,
           strain: bool = False, dihedrals: Sequence[Sequence[int]] | None = None, reference=None,
           energy_scale: str = "per_atom", uncertainty: str = "forces", min_distance: float = 0.5) -> list[Atoms]:
    """Adversarial displacements of ``structures`` maximising the committee's Boltzmann-weighted spread.

    Every structure gets a displacement ``delta`` (``(N, 3)`` Å), drawn from a normal of standard
    deviation ``init_scale`` and optimised by Adam on :class:`AdversarialLoss` (summed over
    structures, so each structure's gradient is its own); all structures go through one
    committee evaluation per step (one batch, the pair list rebuilt at each step's geometry).
    Each result is the geometry of the step with the lowest loss of its structure.

    Parameters
    ----------
    committee : Committee
        Trained, at least two members.
    structures : ase.Atoms or sequence of ase.Atoms
        Starting geometries (usually training frames). Elements must be among the training ones.
    kT : float
        eV (per atom by default); see :class:`AdversarialLoss` for how to choose it.
    steps : int
        Adam steps.
    lr : float
        Adam learning rate, Å per step (order of magnitude).
    init_scale : float
        Å; standard deviation of the initial random displacement (zero gives the gradient at the
        starting geometry, which vanishes at a symmetric one).
    max_displacement : float, optional
        Å; each atom's displacement is projected back onto a ball of this radius after every step.
    seed : int or None
        Seeds the initial displacements (local ``torch.Generator`` s, no global state). A structure's
        start depends only on ``seed`` and the structure (and, for repeated identical structures, on
        which copy it is), not on the other structures attacked with it.
    strain : bool
        Also attack the cell of structures periodic in all directions: a symmetric strain ``eps``
        (``(3, 3)``) deforms positions and cell, ``x -> x (1 + eps)``.
    dihedrals : sequence of (i, j, k, l), optional
        Attack these dihedral angles instead of the Cartesian positions (the collective-variable
        attack of the paper's alanine dipeptide): the variables are one angle per dihedral and
        structure (rad; ``init_scale`` and ``lr`` in rad), each rotating the atoms on ``k``'s side
        of the ``j-k`` bond rigidly about it, in the order given. All structures must be the same
        molecule (same atomic numbers in the same order); bonds by covalent radii of the first.
        Not with ``strain`` or ``max_displacement``.
    reference : sequence of ase.Atoms or array-like, optional
        Energies ``Z`` is estimated from (see :class:`AdversarialLoss`). Default: each structure's
        own, ``Z = exp(-E(x_0) / kT)`` of the committee's mean energy at its start ``x_0``, so
        ``p = exp(-(E - E(x_0)) / kT)`` (``log_p`` 0 at the start) and a structure's result does not
        depend on the other structures of the call. A ``Z`` shared by the call did: a structure
        higher in energy than the others got ``p`` so small (an underflow to 0 with a small kT) that
        it was not attacked at all. The paper's ``Z`` is over the training set: pass it here
        (:class:`learners.active.ActiveLearning` does).
    energy_scale, uncertainty : str
        See :class:`AdversarialLoss`.
    min_distance : float
        Å; an attacked structure with two atoms closer than this is dropped with an
        :class:`AttackWarning`, as is one with a non-finite position.

    Returns
    -------
    list of ase.Atoms
        One per kept structure, with ``info``: ``parent`` (index into ``structures``),
        ``attack_step`` (the step kept; 0 is the initial displacement), ``uncertainty_before`` and
        ``uncertainty_after`` (``sigma^2`` at the starting and the kept geometry: eV^2/Å^2, or
        the energy variance), ``energy`` (committee mean energy, eV, total), ``log_p``, ``kT``,
        ``seed``.

    Raises
    ------
    InputTypeError
        ``committee`` is not a :class:`Committee`.
    InputError
        ``kT <= 0``, non-positive ``steps``/``lr``, negative ``init_scale``, a non-finite
        starting position, elements the committee was not trained on, or ``strain`` on a structure that is
        not periodic in all directions, or ``dihedrals`` that are not four distinct indices of a
        rotatable bond or come with structures of different molecules.

    Examples
    --------
    >>> attacked = attack(committee, train_frames[:8], kT=0.05, seed=0)  # doctest: +SKIP
    >>> [a.info["uncertainty_after"] > a.info["uncertainty_before"] for a in attacked]  # doctest: +SKIP
    """
    _check_committee(committee)
    kT = _check_kT(kT)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InputError(f"steps must be an int >= 1, got {steps!r}")
    for name, value, low in (("lr", lr, "> 0"), ("init_scale", init_scale, ">= 0"), ("min_distance", min_distance, ">= 0")):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 if low == "> 0" else value >= 0)):
            raise InputError(f"{name} must be a finite number {low}, got {value!r}")
    if max_displacement is not None and not (math.isfinite(max_displacement) and max_displacement > 0):
        raise InputError(f"max_displacement must be a number > 0 Å or None, got {max_displacement!r}")
    try:
        frames = as_frames(structures)
    except MatrepError as err:
        raise type(err)(f"attack: {err}") from None
    _check_elements(committee, frames)
    if strain and not all(bool(f.pbc.all()) for f in frames):
        bad = [k for k, f in enumerate(frames) if not f.pbc.all()]
        raise InputError(f"strain=True needs structures periodic in all directions; structures {bad} are not")
    sides = None
    if dihedrals is not None:
        if strain or max_displacement is not None:
            raise InputError("dihedrals= attacks angles only; it does not combine with strain or max_displacement")
        if any(len(f) != len(frames[0]) or not np.array_equal(f.numbers, frames[0].numbers) for f in frames):
            raise InputError("dihedrals= needs every structure to be the same molecule (atomic numbers in one order)")
        dihedrals = [tuple(int(q) for q in quad) for quad in dihedrals]
        if not dihedrals:
            raise InputError("dihedrals= is empty; pass at least one (i, j, k, l) or None")
        sides = _rotating_sides(frames[0], dihedrals)
    loss_fn = AdversarialLoss(committee, kT, reference=reference, energy_scale=energy_scale, uncertainty=uncertainty)

    p = next(committee.parameters())
    device, dtype = p.device, p.dtype
    base: AtomsBatch = collate_atoms(frames, committee.cutoff, device=device, dtype=dtype, labels=False, centre=False)
    n_atoms = base.n_atoms
    delta = (init_scale * _random_starts(frames, seed, None if sides is None else len(dihedrals))).to(device, dtype)
    delta.requires_grad_(True)
    side_masks = None if sides is None else torch.as_tensor(sides, device=device)
    params = [delta]
    eps = None
    if strain:
        eps = torch.zeros((base.n_structures, 3, 3), dtype=dtype, device=device, requires_grad=True)
        params.append(eps)
    optimizer = torch.optim.Adam(params, lr=lr)

    def geometry():
        cell = base.cell
        if side_masks is not None:
            pos = base.positions.reshape(base.n_structures, -1, 3)
            for d, (_, j, k, _) in enumerate(dihedrals):
                pos = _rotate(pos, j, k, side_masks[d], delta[:, d])
            return pos.reshape(-1, 3), cell
        pos = base.positions + delta
        if eps is not None:
            deform = torch.eye(3, dtype=dtype, device=device) + 0.5 * (eps + eps.transpose(1, 2))
            pos = torch.einsum("ni,nij->nj", pos, deform[base.batch])
            cell = cell @ deform
        return pos, cell

    def evaluate_at(pos, cell, create_graph):
        pairs = batch_pairs(pos, cell, base.pbc, base.batch, committee.cutoff)
        at = dataclasses.replace(base, positions=pos, cell=cell, pairs=pairs)
        out = evaluate(committee.models, at, create_graph=create_graph, differentiable=True)
        energies, forces = out["energy"], out["forces"]
        if loss_fn.log_Z is None:  # the first evaluation is at the starting geometries
            # each structure's own Z, so that no structure's loss depends on the others of the call
            loss_fn.log_Z = -loss_fn.scaled_energy(energies.mean(0), n_atoms).detach() / loss_fn.kT
        return loss_fn.terms(energies, forces, base.batch, n_atoms)

    def rows(mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A per-structure ``(B,)`` mask broadcast to the rows of a variable ``t``."""
        if t is eps:
            return mask[:, None, None]
        return mask[:, None] if side_masks is not None else mask[base.batch][:, None]

    def non_finite(t: torch.Tensor) -> torch.Tensor:
        """``(B,)``: structures with a non-finite entry of the variable ``t``."""
        bad = ~torch.isfinite(t).reshape(t.shape[0], -1).all(1)
        if t is eps or side_masks is not None:
            return bad
        return torch.zeros(base.n_structures, dtype=torch.bool, device=device).index_put_((base.batch,), bad,
                                                                                           accumulate=True)

    # A structure whose loss or variables stop being finite (an exp(-E/kT) overflow for a kT far too
    # small, an exploding step) is frozen at its last finite variables and dropped at the end.
    frozen = torch.zeros(base.n_structures, dtype=torch.bool, device=device)
    diverged_at = torch.full((base.n_structures,), -1, dtype=torch.long)
    hold = [v.detach().clone() for v in params]

    with torch.enable_grad():
        start = base.positions.detach().clone().requires_grad_(True)
        before = {k: v.detach() for k, v in evaluate_at(start, base.cell, False).items()}
        best_loss = torch.full((base.n_structures,), math.inf, dtype=dtype, device=device)
        best_pos, best_cell = base.positions.clone(), base.cell.clone()
        best = {k: v.clone() for k, v in before.items()}
        best_step = torch.zeros(base.n_structures, dtype=torch.long)
        for step in range(steps + 1):
            pos, cell = geometry()
            terms = evaluate_at(pos, cell, create_graph=step < steps)
            with torch.no_grad():
                bad = ~torch.isfinite(terms["loss"].detach()) & ~frozen
                if bool(bad.any()):
                    diverged_at[bad.cpu()] = step
                    hold = [torch.where(rows(bad, v), v.detach(), h) for v, h in zip(params, hold)]
                    frozen |= bad
                # Keep each structure's best geometry so far (the step's loss is of the current geometry).
                better = (terms["loss"].detach() < best_loss) & ~frozen
                if bool(better.any()):
                    best_loss = torch.where(better, terms["loss"].detach(), best_loss)
                    atoms_better = better[base.batch]
                    best_pos = torch.where(atoms_better[:, None], pos.detach(), best_pos)
                    best_cell = torch.where(better[:, None, None], cell.detach(), best_cell)
                    for k in best:
                        best[k] = torch.where(better, terms[k].detach(), best[k])
                    best_step[better.cpu()] = step
            if step == steps:
                break
            # autograd.grad, not backward(): the committee's parameters get no .grad from an attack.
            objective = torch.where(frozen, torch.zeros_like(terms["loss"]), terms["loss"]).sum()
            for v, g in zip(params, torch.autograd.grad(objective, params)):
                v.grad = g
            previous = [v.detach().clone() for v in params]
            optimizer.step()
            with torch.no_grad():
                if max_displacement is not None:
                    norm = torch.linalg.norm(delta, dim=1, keepdim=True)
                    delta.mul_(torch.clamp(max_displacement / norm.clamp_min(1e-300), max=1.0))
                bad = torch.stack([non_finite(v) for v in params]).any(0) & ~frozen
                if bool(bad.any()):
                    diverged_at[bad.cpu()] = step + 1
                    hold = [torch.where(rows(bad, v), p, h) for v, p, h in zip(params, previous, hold)]
                    frozen |= bad
                for v, h in zip(params, hold):
                    v.copy_(torch.where(rows(frozen, v), h, v))

    results = []
    offsets = np.concatenate([[0], np.cumsum(n_atoms.cpu().numpy())])
    best_pos, best_cell = best_pos.detach().cpu().double().numpy(), best_cell.detach().cpu().double().numpy()
    for k, frame in enumerate(frames):
        out = Atoms(numbers=frame.numbers, positions=best_pos[offsets[k]:offsets[k + 1]], cell=best_cell[k],
                    pbc=frame.pbc)
        if bool(frozen[k]) or not np.isfinite(out.positions).all():
            warnings.warn(f"attack: structure {k} dropped: the attack diverged at step {int(diverged_at[k])} "
                          f"(a non-finite loss or displacement; raise kT or lower lr)", AttackWarning, stacklevel=2)
            continue
        d_min = _min_distance(out)
        if d_min < min_distance:
            warnings.warn(f"attack: structure {k} dropped: atoms {d_min:.3f} Å apart, closer than min_distance="
                          f"{min_distance} Å", AttackWarning, stacklevel=2)
            continue
        n = int(n_atoms[k])
        scale = n if energy_scale == "per_atom" else 1
        out.info.update(parent=k, attack_step=int(best_step[k]), uncertainty_before=float(before["variance"][k]),
                        uncertainty_after=float(best["variance"][k]), energy=float(best["energy"][k]) * scale,
                        log_p=float(best["log_p"][k]), kT=kT, seed=-1 if seed is None else int(seed))
        results.append(out)
    return results
