"""Classical potentials as ``torch.nn.Module``: a total energy from positions and cell.

Every potential is called as ``potential(positions, cell, numbers, pairs) -> energy`` (eV), where
``pairs`` is a :class:`~sims.neighbors.PairList` built with a cutoff of at least
``potential.cutoff`` (a larger list is fine: each pair term filters its own cutoff). Forces and
stress are derivatives of this one function (:func:`sims.md.compute`). For speed, pair potentials
also give ``phi'(r)`` in closed form (:meth:`PairPotential.pair_energy_and_derivative`), which
:func:`pair_energy_forces` turns into forces and virial without a backward pass; each closed form
is tested against autograd of ``pair_energy`` (``tests/sims/test_pair_forces.py``), so it cannot
drift from the energy unnoticed. Any other module with the same call signature and a ``cutoff``
attribute (for instance a learned potential) plugs into :class:`sims.MD` the same way.

A batch of systems (:mod:`sims.batch`) calls ``potential(positions, cell, numbers, pairs, batch)``
with ``cell`` ``(B, 3, 3)`` and ``batch`` the ``(N,)`` system index of each atom, and gets the ``(B,)``
energies of the systems back (the interface of :mod:`learners.potentials`' neural potentials).

Parameters are ``torch.nn.Parameter`` s, so a loss on a trajectory can be differentiated with
respect to them. They are stored in float64, exactly as given, whatever ``dtype`` the potential is
built with, and cast to the dtype and device of the positions inside ``forward``: a computation
runs wholly in the dtype it is asked for (``docs/rules.md``, "Precision and seeds"), and a potential
built in float32 and evaluated in float64 is exact, not float32 parameters in a float64 sum.
A potential's ``dtype`` is the precision :func:`sims.energy_and_forces` and :class:`sims.MD` use
when the caller names none.
"""

from __future__ import annotations

import copy
import functools
import math
import pickle
from typing import Mapping, Sequence

import numpy as np
import torch
from ase.data import atomic_numbers
from ase.units import Bohr, Hartree
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

from reprs.errors import InputError

from .errors import SimsInputError
from .neighbors import PairList, pair_vectors

__all__ = ["Potential", "PairPotential", "LennardJones", "Morse", "Buckingham", "DSFCoulomb",
           "CoreRepulsion", "LennardJonesMixture", "TabulatedPair", "NeuralPair", "SumPotential", "BKS",
           "CalculatorPotential", "with_structure_pbc", "DoubleWell", "MuellerBrown", "COULOMB_CONSTANT",
           "potential_dtype", "conserves_momentum", "save_potential", "load_potential", "pair_energy_forces"]

#: 1 / (4 pi eps0) in eV Å / e^2 (from ASE's CODATA constants).
COULOMB_CONSTANT = Hartree * Bohr


def _param(value: float, device, name: str, *, positive: bool = False) -> nn.Parameter:
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise SimsInputError(f"{name} must be {'> 0 and ' if positive else ''}finite, got {value}")
    # float64 whatever the potential's dtype: forward casts to the computation's dtype (see module doc).
    return nn.Parameter(torch.tensor(value, device=device, dtype=torch.float64))


def conserves_momentum(potential: nn.Module) -> bool:
    """False when ``potential`` (or a term of a sum) is an external field (``translation_invariant``
    False) or a bias on a collective variable that reads absolute positions (a :class:`sims.cv.Position`,
    a :class:`sims.cv.Custom` not declared ``translation_invariant``): the total momentum of its
    atoms is then not conserved. Other modules (pair, neural and calculator potentials, biases on
    distances, angles, dihedrals, coordination numbers) count as translation invariant."""
    if not getattr(potential, "translation_invariant", True):
        return False
    cvs = [potential.cv] if hasattr(potential, "cv") else list(getattr(potential, "cvs", ()))
    return all(cv.translation_invariant for cv in cvs)


def translation_safe(potential: nn.Module) -> bool:
    """Whether moving every atom by one vector leaves ``potential``'s energy, forces and stress unchanged, so
    that a computation below float64 may take the positions about their centroid (:func:`sims.state.centred`).

    False for an external field (:func:`conserves_momentum`) and for any term that reads collective
    variables (biases: a :class:`sims.cv.Position` reads absolute coordinates; a user CV may too).
    """
    if isinstance(potential, SumPotential):
        return all(translation_safe(t) for t in potential.terms)
    return conserves_momentum(potential) and not (hasattr(potential, "cv") or hasattr(potential, "cvs"))


def potential_dtype(potential: nn.Module) -> torch.dtype:
    """The precision of a computation with ``potential`` when the caller names none.

    Its ``dtype`` attribute (every :class:`Potential`), else the dtype of its floating parameters
    (a learned potential), else float32.
    """
    dtype = getattr(potential, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    floats = [p.dtype for p in potential.parameters() if p.is_floating_point()]
    return floats[0] if floats else torch.float32


class Potential(nn.Module):
    """Base class: ``forward(positions, cell, numbers, pairs) -> energy`` (eV) and ``cutoff`` (Å).

    Parameters
    ----------
    dtype : torch.dtype
        Precision of computations that name none (:func:`sims.energy_and_forces`,
        :class:`sims.MD`); parameters are float64 whatever it is.
    """

    cutoff: float
    #: False for a model surface acting on absolute positions (an external field: :class:`DoubleWell`,
    #: :class:`MuellerBrown`): its forces do not sum to zero, so the total momentum is not conserved.
    translation_invariant: bool = True

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise SimsInputError(f"dtype must be a floating torch.dtype such as torch.float64, got {dtype!r}")
        self.dtype = dtype

    def __add__(self, other: "Potential") -> "SumPotential":
        return SumPotential([self, other])

    def known_numbers(self) -> torch.Tensor | None:
        """Atomic numbers this potential has parameters for, or None when it takes any element.

        A batch of systems (:class:`sims.batch.BatchMD`) refuses a system with an element outside
        this set instead of letting it feel no force.
        """
        return None


class PairPotential(Potential):
    """A sum of pair terms ``phi(r, Z_i, Z_j)`` over pairs closer than ``cutoff``.

    Subclasses implement :meth:`pair_energy`; this class finds the pairs within the cutoff and
    sums each unordered pair once whatever the list (half or full) it is given.
    """

    def pair_energy(self, r: torch.Tensor, zi: torch.Tensor, zj: torch.Tensor) -> torch.Tensor:
        """Energies (eV) of pairs at distances ``r`` (Å) between species ``zi`` and ``zj``."""
        raise NotImplementedError

    def pair_energy_and_derivative(self, r: torch.Tensor, zi: torch.Tensor,
                                   zj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(phi [eV], dphi/dr [eV/Å])`` of pairs at distances ``r`` (Å), for :func:`pair_energy_forces`.

        This default differentiates :meth:`pair_energy` by autograd (one elementwise backward pass,
        kept in the graph when gradients are enabled); subclasses with a closed form override it,
        and ``tests/sims/test_pair_forces.py`` checks each override against this autograd derivative.
        """
        graph = torch.is_grad_enabled()
        with torch.enable_grad():
            x = r if r.requires_grad else r.detach().requires_grad_(True)
            phi = self.pair_energy(x, zi, zj)
            (dphi,) = torch.autograd.grad(phi.sum(), x, create_graph=graph, allow_unused=True)
        dphi = torch.zeros_like(r) if dphi is None else dphi
        return (phi, dphi) if graph else (phi.detach(), dphi.detach())

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor,
                pairs: PairList, batch: torch.Tensor | None = None) -> torch.Tensor:
        r, zi, zj = _distances(positions, cell, numbers, pairs, batch)
        return self.energy_from_distances(r, zi, zj, pairs.half, _pair_systems(pairs, batch, cell))

    def energy_from_distances(self, r: torch.Tensor, zi: torch.Tensor, zj: torch.Tensor, half: bool,
                              systems: tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
        """Total energy (eV) of pairs at distances ``r`` (Å), those beyond ``cutoff`` ignored; with
        ``systems = (system of each pair, B)`` the ``(B,)`` energies of the systems of a batch."""
        # A mask multiply instead of boolean indexing: no nonzero() and no scatter in the backward
        # pass, which dominate the cost on CPU; pair terms are finite beyond the cutoff.
        phi = self.pair_energy(r, zi, zj) * (r < self.cutoff)
        if not half:
            phi = 0.5 * phi
        return phi.sum() if systems is None else _sum_per_system(phi, *systems)


def _distances(positions, cell, numbers, pairs: PairList, batch: torch.Tensor | None = None):
    """Distances (Å) and species of the listed pairs (the list may reach beyond the cutoffs)."""
    vec = pair_vectors(positions, cell, pairs, batch)
    r = torch.sqrt((vec * vec).sum(-1))
    return r, numbers.index_select(0, pairs.i), numbers.index_select(0, pairs.j)


#: Per pair list (keyed by the identity of its ``i`` tensor, dropped with the list): the species of
#: each pair and the Cartesian image shifts in the last cell seen, which change only when the list
#: is rebuilt or the cell changes, not at every force evaluation.
_LIST_CONSTANTS = WeakIdKeyDictionary()


def _list_constants(pairs: PairList, cell: torch.Tensor, numbers: torch.Tensor, system: torch.Tensor | None = None):
    """``(zi, zj, (sx, sy, sz))``: species of the pairs and the rows of the pairs' Cartesian image shifts
    ``(shifts @ cell).T`` (Å); a batch (``(B, 3, 3)`` cells, ``system`` the system of each atom) takes each pair's
    shift in its own system's cell."""
    entry = _LIST_CONSTANTS.get(pairs.i)
    if entry is None or (entry["numbers"] is not numbers and not torch.equal(entry["numbers"], numbers)):
        entry = {"numbers": numbers, "zi": numbers.index_select(0, pairs.i), "zj": numbers.index_select(0, pairs.j),
                 "cell": None}
        _LIST_CONSTANTS[pairs.i] = entry

    def shifts(cell: torch.Tensor) -> torch.Tensor:
        if system is None:
            return (pairs.shifts.to(cell.dtype) @ cell).T
        zero = torch.zeros((numbers.shape[0], 3), dtype=cell.dtype, device=cell.device)
        return pair_vectors(zero, cell, pairs, system).T

    if cell.requires_grad:  # a differentiated cell: shifts stay in its graph
        return entry["zi"], entry["zj"], shifts(cell)
    seen = entry["cell"]
    if seen is None or seen.dtype != cell.dtype or seen.device != cell.device or not torch.equal(seen, cell):
        entry["cell"] = cell.detach().clone()
        entry["shifts"] = shifts(entry["cell"]).contiguous()
    return entry["zi"], entry["zj"], entry["shifts"]


def _derivative(term: PairPotential):
    """``term``'s ``(phi, phi')`` method: its closed form, unless a subclass redefined ``pair_energy``
    below the class that wrote the closed form (then autograd of that ``pair_energy``)."""
    def owner(name: str) -> type:
        return next(c for c in type(term).__mro__ if name in vars(c))

    if issubclass(owner("pair_energy_and_derivative"), owner("pair_energy")):
        return term.pair_energy_and_derivative
    return functools.partial(PairPotential.pair_energy_and_derivative, term)


def _pair_terms(potential: nn.Module) -> list[PairPotential] | None:
    """The pair terms whose sum ``potential`` is, or None when it is anything else (a subclass with
    its own ``forward``, a many-body or learned term)."""
    if isinstance(potential, PairPotential) and type(potential).forward is PairPotential.forward:
        return [potential]
    if isinstance(potential, SumPotential) and type(potential).forward is SumPotential.forward:
        terms: list[PairPotential] = []
        for term in potential.terms:
            sub = _pair_terms(term)
            if sub is None:
                return None
            terms += sub
        return terms
    return None


def pair_energy_forces(potential: nn.Module, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor,
                       pairs: PairList | None, *, forces: bool = True, virial: bool = False,
                       compiled: bool = False, system: torch.Tensor | None = None):
    """Energy, forces and virial of a pair potential in closed form, or None for other potentials.

    For ``E = sum_pairs phi(r)`` with ``d = r_j - r_i + S h`` and ``g = phi'(r) / r``:
    ``F_i = sum_j g d``, ``F_j = -sum_i g d`` and the virial ``W = dE/d(strain) = sum_pairs g d d^T``,
    the same derivatives :func:`sims.md.compute` takes by autograd, written out so that a force
    evaluation is one pass over the pairs with no backward pass. Each term's ``phi'`` comes from
    :meth:`PairPotential.pair_energy_and_derivative`. Everything is torch operations, so with
    gradients enabled the results stay differentiable in positions, cell and parameters (DiffSim,
    trajectory gradients); ``tests/sims/test_pair_forces.py`` checks them against autograd.

    Parameters
    ----------
    potential : torch.nn.Module
        A :class:`PairPotential` or a :class:`SumPotential` of them (BKS); anything else gives None.
    positions, cell, numbers, pairs
        As for the potential's ``forward``; Å.
    forces, virial : bool
        Which derivatives to return.
    compiled : bool
        Run the pass over the pairs through ``torch.compile`` (inductor fuses the gathers, the pair
        terms and the products into one loop: for LJ argon on one CPU thread the pass is 2.5-3x
        faster, whole MD steps 1.3-2.5x, see ``benchmarks/README.md``). The first call compiles
        (10-30 s); used only without gradients (the compiled function is not differentiated twice),
        else the eager pass runs.

    system : torch.Tensor, optional
        A batch of ``B`` systems (:mod:`sims.batch`): ``cell`` is ``(B, 3, 3)``, ``system`` the
        ``(N,)`` system of each atom; the energy is then ``(B,)`` per system and the virial ``(B, 3, 3)``.

    Returns
    -------
    tuple or None
        ``(energy [eV], forces [eV/Å, (N, 3)] or None, virial [eV, 3x3 or (B, 3, 3)] or None)``; the
        stress is ``virial / volume``.
    """
    terms = _pair_terms(potential)
    if terms is None or pairs is None:
        return None
    if system is None:
        zi, zj, shifts = _list_constants(pairs, cell, numbers)
        kernel = _compiled_pair_kernel() if compiled and not torch.is_grad_enabled() else _pair_kernel
        return kernel(terms, positions, pairs.i, pairs.j, shifts, zi, zj, pairs.half, forces, virial)
    # A batch: each pair's Cartesian shift in its own system's cell (pairs never cross systems).
    zi, zj, shifts = _list_constants(pairs, cell, numbers, system)
    return _pair_kernel(terms, positions, pairs.i, pairs.j, shifts, zi, zj, pairs.half, forces, virial,
                        pair_system=system.index_select(0, pairs.i), n_systems=int(cell.shape[0]))


@functools.cache
def _compiled_pair_kernel():
    return torch.compile(_pair_kernel, dynamic=True)


def _pair_kernel(terms: list[PairPotential], positions: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                 shifts: torch.Tensor, zi: torch.Tensor, zj: torch.Tensor, half: bool, forces: bool, virial: bool,
                 pair_system: torch.Tensor | None = None, n_systems: int = 1):
    """The pass over the pairs of :func:`pair_energy_forces` (``shifts``: ``(3, P)`` Cartesian, Å);
    with ``pair_system`` (each pair's system) the energy is ``(n_systems,)``."""
    sx, sy, sz = shifts
    # Coordinates as rows: gathers and arithmetic on contiguous 1-D tensors are several times
    # faster on CPU than on (P, 3) rows.
    x, y, z = positions.T.contiguous()
    dx = x.index_select(0, j) - x.index_select(0, i) + sx
    dy = y.index_select(0, j) - y.index_select(0, i) + sy
    dz = z.index_select(0, j) - z.index_select(0, i) + sz
    r = torch.sqrt(dx * dx + dy * dy + dz * dz)
    groups: dict[float, list[PairPotential]] = {}
    for term in terms:
        groups.setdefault(float(term.cutoff), []).append(term)
    widest = max(groups)
    energy, dphi = r.new_zeros(() if pair_system is None else (n_systems,)), None

    def total(values: torch.Tensor, sub: torch.Tensor | None = None) -> torch.Tensor:
        """Sum of pair energies: one number, or one per system of a batch."""
        if pair_system is None:
            return values.sum()
        return energy.new_zeros(n_systems).index_add(0, pair_system if sub is None else pair_system.index_select(0, sub),
                                                     values)

    for cutoff in sorted(groups, reverse=True):  # (keys only: torch.compile traces a sort of floats, not of tuples)
        members = groups[cutoff]
        if cutoff == widest:
            # The terms the list was built for hold most pairs: a mask, no compaction.
            inside = (r < cutoff).to(r.dtype)
            for term in members:
                phi_t, dphi_t = _derivative(term)(r, zi, zj)
                energy = energy + (torch.dot(phi_t, inside) if pair_system is None else total(phi_t * inside))
                dphi = dphi_t * inside if dphi is None else dphi + dphi_t * inside
        else:
            # Shorter-ranged terms (BKS's Buckingham and core at 5.5 Å in a list built for 10 Å
            # Coulomb) act on a small share of the pairs: evaluate them on those only.
            sub = torch.nonzero(r < cutoff).flatten()
            r_s, zi_s, zj_s = r.index_select(0, sub), zi.index_select(0, sub), zj.index_select(0, sub)
            dphi_s = torch.zeros_like(r_s)
            for term in members:
                phi_t, dphi_t = _derivative(term)(r_s, zi_s, zj_s)
                energy = energy + total(phi_t, sub)
                dphi_s = dphi_s + dphi_t
            dphi = dphi.index_add(0, sub, dphi_s)
    if not half:  # a full list holds each pair twice
        energy, dphi = 0.5 * energy, 0.5 * dphi
    g = dphi / r
    fx, fy, fz = g * dx, g * dy, g * dz
    f = None
    if forces:
        n = positions.shape[0]
        f = torch.stack([positions.new_zeros(n).index_add_(0, i, c).index_add_(0, j, c, alpha=-1.0)
                         for c in (fx, fy, fz)], 1)
    w = None
    if virial and pair_system is None:
        w = torch.stack([fx, fy, fz]) @ torch.stack([dx, dy, dz]).T
    elif virial:  # each system's sum of f d^T over its own pairs, one component at a time (no (P, 9) copy)
        w = torch.stack([r.new_zeros(n_systems).index_add_(0, pair_system, fa * da)
                         for fa in (fx, fy, fz) for da in (dx, dy, dz)], 1).reshape(n_systems, 3, 3)
    return energy, f, w


def _pair_systems(pairs: PairList, batch: torch.Tensor | None, cell: torch.Tensor):
    """``(system of each pair, B)`` of a batch, or None for one system."""
    return None if batch is None else (batch.index_select(0, pairs.i), int(cell.shape[0]))


def _sum_per_system(values: torch.Tensor, index: torch.Tensor, n_systems: int) -> torch.Tensor:
    """``(B,)`` sums of ``values`` grouped by their system ``index``."""
    return torch.zeros(n_systems, dtype=values.dtype, device=values.device).index_add(0, index, values)


class LennardJones(PairPotential):
    """Lennard-Jones ``4 eps [(sigma/r)^12 - (sigma/r)^6]``, truncated (and shifted) at ``cutoff``.

    With ``shift=True`` the energy is shifted to zero at the cutoff, the definition of ASE's
    ``LennardJones(sigma, epsilon, rc, smooth=False)`` calculator, which it equals to round-off.

    Parameters
    ----------
    sigma : float
        Å.
    epsilon : float
        eV.
    cutoff : float, optional
        Å; default ``3 sigma`` (as ASE).
    shift : bool
        Subtract ``phi(cutoff)`` so the energy is continuous (forces still jump at the cutoff).
    device : torch.device or str, optional
        Of the parameters.
    dtype : torch.dtype
        Default precision of computations (parameters are float64, exact as given).

    Examples
    --------
    >>> pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, shift=True)  # argon
    """

    def __init__(self, *, sigma: float = 1.0, epsilon: float = 1.0, cutoff: float | None = None,
                 shift: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(dtype)
        self.sigma = _param(sigma, device, "sigma", positive=True)
        self.epsilon = _param(epsilon, device, "epsilon")
        self.cutoff = float(3 * sigma if cutoff is None else cutoff)
        if not self.cutoff > 0:
            raise SimsInputError(f"cutoff must be > 0 Å, got {cutoff}")
        self.shift = shift

    def _lj(self, r: torch.Tensor | float, sigma: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
        s6 = (sigma / r) ** 6
        return 4 * epsilon * (s6 * s6 - s6)

    def pair_energy(self, r, zi, zj):
        sigma, epsilon = self.sigma.to(r), self.epsilon.to(r)
        phi = self._lj(r, sigma, epsilon)
        return phi - self._lj(self.cutoff, sigma, epsilon) if self.shift else phi

    def pair_energy_and_derivative(self, r, zi, zj):
        sigma, epsilon = self.sigma.to(r), self.epsilon.to(r)
        inv_r = r.reciprocal()
        s2 = (sigma * inv_r) ** 2
        s6 = s2 * s2 * s2
        phi = 4 * epsilon * (s6 * s6 - s6)
        if self.shift:
            phi = phi - self._lj(self.cutoff, sigma, epsilon)
        return phi, -24 * epsilon * (2 * s6 * s6 - s6) * inv_r


def smooth_cutoff(r: torch.Tensor, r_on: float, r_off: float) -> torch.Tensor:
    """Quintic smoothstep from 1 (``r <= r_on``) to 0 (``r >= r_off``), C2 at both ends.

    The form of ASE's ``MorsePotential`` (ported there from JuLIP.jl): ``6s^5 - 15s^4 + 10s^3``
    with ``s = 1 - (r - r_on)/(r_off - r_on)``.
    """
    s = torch.clamp(1.0 - (r - r_on) / (r_off - r_on), 0.0, 1.0)
    return s ** 3 * (6 * s * s - 15 * s + 10)


def _smooth_cutoff_and_derivative(r: torch.Tensor, r_on: float, r_off: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`smooth_cutoff` and its derivative in ``r`` (1/Å): ``-30 s^2 (1 - s)^2 / (r_off - r_on)``,
    zero where ``s`` is clamped (the polynomial is flat at both ends)."""
    s = torch.clamp(1.0 - (r - r_on) / (r_off - r_on), 0.0, 1.0)
    s2 = s * s
    return s2 * s * (6 * s2 - 15 * s + 10), -30.0 * s2 * (1 - s) ** 2 / (r_off - r_on)


class Morse(PairPotential):
    """Morse ``eps exp(rho0(1 - r/r0)) [exp(rho0(1 - r/r0)) - 2]`` times a smooth cutoff.

    Same parameters and cutoff function as ASE's ``MorsePotential(epsilon, rho0, r0, rcut1, rcut2)``
    (cutoffs there are in units of ``r0``; here ``cutoff_start = rcut1 r0`` and ``cutoff = rcut2 r0``,
    in Å), which it equals to round-off.

    Parameters
    ----------
    epsilon : float
        Well depth, eV.
    rho0 : float
        Dimensionless stiffness.
    r0 : float
        Equilibrium distance, Å.
    cutoff, cutoff_start : float, optional
        Outer and inner radius of the smooth cutoff, Å (defaults ``2.7 r0`` and ``1.9 r0``, ASE's).
    """

    def __init__(self, *, epsilon: float = 1.0, rho0: float = 6.0, r0: float = 1.0,
                 cutoff: float | None = None, cutoff_start: float | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(dtype)
        self.epsilon = _param(epsilon, device, "epsilon")
        self.rho0 = _param(rho0, device, "rho0")
        self.r0 = _param(r0, device, "r0", positive=True)
        self.cutoff = float(2.7 * r0 if cutoff is None else cutoff)
        self.cutoff_start = float(1.9 * r0 if cutoff_start is None else cutoff_start)
        if not 0 < self.cutoff_start < self.cutoff:
            raise SimsInputError(f"need 0 < cutoff_start < cutoff, got {self.cutoff_start}, {self.cutoff}")

    def pair_energy(self, r, zi, zj):
        e = torch.exp(self.rho0.to(r) * (1.0 - r / self.r0.to(r)))
        return self.epsilon.to(r) * e * (e - 2.0) * smooth_cutoff(r, self.cutoff_start, self.cutoff)

    def pair_energy_and_derivative(self, r, zi, zj):
        rho0, r0, eps = self.rho0.to(r), self.r0.to(r), self.epsilon.to(r)
        e = torch.exp(rho0 * (1.0 - r / r0))
        fc, dfc = _smooth_cutoff_and_derivative(r, self.cutoff_start, self.cutoff)
        morse = eps * e * (e - 2.0)
        return morse * fc, -2 * eps * rho0 / r0 * e * (e - 1.0) * fc + morse * dfc


def _species_table(values: Mapping[tuple[str, str], float], n: int = 119) -> torch.Tensor:
    """A symmetric ``(n, n)`` table indexed by atomic numbers from ``{("Si", "O"): value}``."""
    table = torch.zeros((n, n), dtype=torch.float64)
    for (a, b), v in values.items():
        try:
            za, zb = atomic_numbers[a], atomic_numbers[b]
        except KeyError as err:
            raise SimsInputError(f"unknown element {err.args[0]!r} in species pair ({a!r}, {b!r})") from None
        table[za, zb] = table[zb, za] = float(v)
    return table


class _SpeciesPairPotential(PairPotential):
    """Pair terms with per-species-pair parameters stored as trainable ``(119, 119)`` tables.

    Parameters are float64, cast to the dtype and device of the distances when used.
    """

    def __init__(self, params: Mapping[str, Mapping[tuple[str, str], float]], cutoff: float, device, dtype) -> None:
        super().__init__(dtype)
        if not cutoff > 0:
            raise SimsInputError(f"cutoff must be > 0 Å, got {cutoff}")
        self.cutoff = float(cutoff)
        for name, values in params.items():
            setattr(self, name, nn.Parameter(_species_table(values).to(device=device)))

    def known_numbers(self) -> torch.Tensor:
        """Atomic numbers that appear in at least one species pair of the parameter tables."""
        tables = [p.detach() for p in self.parameters()]
        return torch.nonzero(sum((t != 0).any(0) | (t != 0).any(1) for t in tables)).flatten()

    def _lookup(self, name: str, zi, zj, like: torch.Tensor) -> torch.Tensor:
        # Symmetrised, so that a gradient reaches (a, b) and (b, a) alike and a trained table stays
        # symmetric: a pair's energy must not depend on which atom the list names first.
        table = getattr(self, name).to(like)
        return (0.5 * (table + table.T))[zi, zj]


class Buckingham(_SpeciesPairPotential):
    """Buckingham ``A exp(-r/rho) - C / r^6`` per species pair, shifted to zero at ``cutoff``.

    Parameters
    ----------
    params : mapping
        ``{("Si", "O"): (A [eV], rho [Å], C [eV Å^6]), ...}``; missing pairs do not interact.
    cutoff : float
        Å.
    shift : bool
        Subtract the value at the cutoff.
    """

    def __init__(self, params: Mapping[tuple[str, str], Sequence[float]], *, cutoff: float, shift: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        for key, v in params.items():
            if len(v) != 3 or not v[1] > 0:
                raise SimsInputError(f"Buckingham parameters for {key} must be (A, rho > 0, C), got {v}")
        super().__init__({"A": {k: v[0] for k, v in params.items()},
                          "inv_rho": {k: 1.0 / v[1] for k, v in params.items()},
                          "C": {k: v[2] for k, v in params.items()}}, cutoff, device, dtype)
        self.shift = shift

    def pair_energy(self, r, zi, zj):
        a, b, c = (self._lookup(n, zi, zj, r) for n in ("A", "inv_rho", "C"))

        def phi(x):
            return a * torch.exp(-b * x) - c / x ** 6

        return phi(r) - phi(torch.full_like(r, self.cutoff)) if self.shift else phi(r)

    def pair_energy_and_derivative(self, r, zi, zj):
        a, b, c = (self._lookup(n, zi, zj, r) for n in ("A", "inv_rho", "C"))
        rep = a * torch.exp(-b * r)
        inv_r = r.reciprocal()
        inv_r2 = inv_r * inv_r
        disp = c * inv_r2 * inv_r2 * inv_r2
        phi = rep - disp
        if self.shift:
            phi = phi - (a * torch.exp(-b * self.cutoff) - c / self.cutoff ** 6)
        return phi, -b * rep + 6 * disp * inv_r


class CoreRepulsion(_SpeciesPairPotential):
    """A steep ``4 eps [(sigma/r)^30 - (sigma/r)^6]`` term that keeps ions out of a short-range collapse.

    The 30-6 form is Saika-Voivod, Sciortino & Poole, Phys. Rev. E 63, 011202 (2001), added to BKS
    whose ``-C/r^6`` term (and Coulomb attraction) otherwise diverges to minus infinity as
    ``r -> 0``; it is negligible at bonding distances (< 0.02 eV at the Si-O bond length).
    Shifted to zero at ``cutoff``.

    Parameters
    ----------
    params : mapping
        ``{("Si", "O"): (epsilon [eV], sigma [Å]), ...}``.
    cutoff : float
        Å.
    """

    def __init__(self, params: Mapping[tuple[str, str], Sequence[float]], *, cutoff: float = 5.5,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__({"epsilon": {k: v[0] for k, v in params.items()},
                          "sigma": {k: v[1] for k, v in params.items()}}, cutoff, device, dtype)

    def pair_energy(self, r, zi, zj):
        eps, sig = self._lookup("epsilon", zi, zj, r), self._lookup("sigma", zi, zj, r)

        def phi(x):
            s6 = (sig / x) ** 6
            return 4 * eps * (s6 ** 5 - s6)

        return phi(r) - phi(torch.full_like(r, self.cutoff))

    def pair_energy_and_derivative(self, r, zi, zj):
        eps, sig = self._lookup("epsilon", zi, zj, r), self._lookup("sigma", zi, zj, r)
        inv_r = r.reciprocal()
        s2 = (sig * inv_r) ** 2
        s6 = s2 * s2 * s2
        s12 = s6 * s6
        s30 = s12 * s12 * s6
        c6 = (sig / self.cutoff) ** 6
        return 4 * eps * ((s30 - s6) - (c6 ** 5 - c6)), -4 * eps * (30 * s30 - 6 * s6) * inv_r


class LennardJonesMixture(_SpeciesPairPotential):
    """Lennard-Jones with parameters per species pair, ``4 eps_ab [(sigma_ab/r)^12 - (sigma_ab/r)^6]``,
    shifted to zero at one common ``cutoff``; every ``eps_ab`` and ``sigma_ab`` is trainable.

    The model of binary glass formers such as the Kob-Andersen mixture (W. Kob, H. C. Andersen,
    Phys. Rev. E 51, 4626 (1995): eps_AB = 1.5 eps_AA, eps_BB = 0.5 eps_AA, sigma_AB = 0.8 sigma_AA,
    sigma_BB = 0.88 sigma_AA, 80:20), here with one cutoff for all pairs instead of 2.5 sigma_ab.

    Parameters
    ----------
    params : mapping
        ``{("Ar", "Kr"): (epsilon [eV], sigma [Å]), ...}``; missing pairs do not interact.
    cutoff : float
        Å.

    Examples
    --------
    >>> ka = LennardJonesMixture({("Ar", "Ar"): (0.0104, 3.405), ("Ar", "Kr"): (0.0156, 2.724),
    ...                           ("Kr", "Kr"): (0.0052, 2.996)}, cutoff=8.5)
    """

    def __init__(self, params: Mapping[tuple[str, str], Sequence[float]], *, cutoff: float,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        for key, v in params.items():
            if len(v) != 2 or not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[1] > 0):
                raise SimsInputError(f"LennardJonesMixture parameters for {key} must be (epsilon, sigma > 0), got {v}")
        super().__init__({"epsilon": {k: v[0] for k, v in params.items()},
                          "sigma": {k: v[1] for k, v in params.items()}}, cutoff, device, dtype)

    def pair_energy(self, r, zi, zj):
        eps, sig = self._lookup("epsilon", zi, zj, r), self._lookup("sigma", zi, zj, r)
        # A pair without parameters has sigma 0: (0/r)^6 = 0, no interaction and no NaN.
        s6, c6 = (sig / r) ** 6, (sig / self.cutoff) ** 6
        return 4 * eps * ((s6 * s6 - s6) - (c6 * c6 - c6))

    def pair_energy_and_derivative(self, r, zi, zj):
        eps, sig = self._lookup("epsilon", zi, zj, r), self._lookup("sigma", zi, zj, r)
        inv_r = r.reciprocal()
        s2 = (sig * inv_r) ** 2
        s6 = s2 * s2 * s2
        c6 = (sig / self.cutoff) ** 6
        return 4 * eps * ((s6 * s6 - s6) - (c6 * c6 - c6)), -24 * eps * (2 * s6 * s6 - s6) * inv_r


class DSFCoulomb(PairPotential):
    """Damped shifted-force Coulomb (Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006), eq. 18).

    ``k q_i q_j [erfc(a r)/r - erfc(a Rc)/Rc + (erfc(a Rc)/Rc^2 + 2a/sqrt(pi) exp(-a^2 Rc^2)/Rc)(r - Rc)]``
    for ``r < Rc``: energy and force both go to zero at the cutoff, a pairwise stand-in for Ewald.

    Parameters
    ----------
    charges : mapping
        ``{"Si": 2.4, "O": -1.2}``, e.
    alpha : float
        Damping, 1/Å (0.2 is Fennell & Gezelter's choice for Rc near 10 Å).
    cutoff : float
        Rc, Å.
    """

    def __init__(self, charges: Mapping[str, float], *, alpha: float = 0.2, cutoff: float = 10.0,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(dtype)
        if not cutoff > 0 or not alpha >= 0:
            raise SimsInputError(f"need cutoff > 0 and alpha >= 0, got {cutoff}, {alpha}")
        table = torch.zeros(119, dtype=torch.float64)
        for el, q in charges.items():
            if el not in atomic_numbers:
                raise SimsInputError(f"unknown element {el!r} in charges")
            table[atomic_numbers[el]] = float(q)
        self.charges = nn.Parameter(table.to(device=device))
        self.alpha = float(alpha)
        self.cutoff = float(cutoff)

    def pair_energy(self, r, zi, zj):
        a, rc = self.alpha, self.cutoff
        erfc_rc = math.erfc(a * rc)
        slope = erfc_rc / rc ** 2 + 2 * a / math.sqrt(math.pi) * math.exp(-(a * rc) ** 2) / rc
        q = self.charges.to(r)
        return COULOMB_CONSTANT * q[zi] * q[zj] * (torch.erfc(a * r) / r - erfc_rc / rc + slope * (r - rc))

    def pair_energy_and_derivative(self, r, zi, zj):
        a, rc = self.alpha, self.cutoff
        erfc_rc = math.erfc(a * rc)
        slope = erfc_rc / rc ** 2 + 2 * a / math.sqrt(math.pi) * math.exp(-(a * rc) ** 2) / rc
        q = self.charges.to(r)
        kqq = COULOMB_CONSTANT * q[zi] * q[zj]
        inv_r = r.reciprocal()
        screened = torch.erfc(a * r) * inv_r
        gauss = (2 * a / math.sqrt(math.pi)) * torch.exp(-(a * r) ** 2) * inv_r
        return kqq * (screened - erfc_rc / rc + slope * (r - rc)), kqq * (slope - gauss - screened * inv_r)
    def known_numbers(self) -> torch.Tensor:
        """Atomic numbers given a charge (a zero charge given explicitly counts as unknown)."""
        return torch.nonzero(self.charges.detach() != 0).flatten()


class TabulatedPair(PairPotential):
    """A pair potential tabulated on a uniform grid, with trainable values (cubic Hermite spline).

    Between knots the energy is the cubic Hermite interpolant with Catmull-Rom slopes (central
    differences, one-sided at the ends), so it is C1 and linear in the values: gradients with
    respect to ``values`` are what learning a potential from structure needs. Below the first knot
    it continues linearly; at and beyond the last knot (the cutoff) it is zero, so the last value
    should be zero for a continuous energy.

    Parameters
    ----------
    r_min, cutoff : float
        First and last knot, Å.
    values : sequence of float
        Energies at the ``len(values)`` uniformly spaced knots, eV.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.linspace(2.5, 8.5, 601)
    >>> pot = TabulatedPair(r_min=2.5, cutoff=8.5, values=4 * 0.0104 * ((3.4 / r) ** 12 - (3.4 / r) ** 6))
    """

    def __init__(self, *, r_min: float, cutoff: float, values: Sequence[float],
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(dtype)
        values = torch.as_tensor(values, dtype=torch.float64).flatten()
        if values.numel() < 3 or not 0 <= r_min < cutoff or not torch.isfinite(values).all():
            raise SimsInputError(f"need >= 3 finite values and 0 <= r_min < cutoff; got {values.numel()} values, "
                                 f"r_min={r_min}, cutoff={cutoff}")
        self.r_min = float(r_min)
        self.cutoff = float(cutoff)
        self.values = nn.Parameter(values.to(device=device))

    @property
    def spacing(self) -> float:
        """Knot spacing, Å."""
        return (self.cutoff - self.r_min) / (self.values.numel() - 1)

    def pair_energy(self, r, zi, zj):
        return self.pair_energy_and_derivative(r, zi, zj)[0]

    def pair_energy_and_derivative(self, r, zi, zj):
        v = self.values.to(r)
        h = self.spacing
        slopes = torch.cat([(v[1:2] - v[0:1]) / h, (v[2:] - v[:-2]) / (2 * h), (v[-1:] - v[-2:-1]) / h])
        x = (r - self.r_min) / h
        k = torch.clamp(torch.floor(x).long(), 0, v.numel() - 2)
        t = x - k
        t2, t3 = t * t, t * t * t
        v0, v1, m0, m1 = v[k], v[k + 1], h * slopes[k], h * slopes[k + 1]
        inside = (2 * t3 - 3 * t2 + 1) * v0 + (t3 - 2 * t2 + t) * m0 + (-2 * t3 + 3 * t2) * v1 + (t3 - t2) * m1
        d_inside = ((6 * t2 - 6 * t) * (v0 - v1) + (3 * t2 - 4 * t + 1) * m0 + (3 * t2 - 2 * t) * m1) / h
        below = x < 0
        return (torch.where(below, v[0] + slopes[0] * (r - self.r_min), inside),
                torch.where(below, slopes[0].expand_as(r), d_inside))


class NeuralPair(PairPotential):
    """A learned pair potential: an MLP on a Gaussian basis of ``r``, plus an optional soft repulsive prior.

    ``phi(r) = f_c(r) [MLP(e(r)) + eps_p (sigma_p / r)^12]`` with ``e_k(r) = exp(-(r - mu_k)^2 / (2 w^2))``,
    ``n_basis`` centres ``mu_k`` evenly spaced on ``[0, cutoff]``, ``w`` their spacing, and ``f_c`` the
    quintic :func:`smooth_cutoff` from ``cutoff - smooth_width`` to ``cutoff``, so energy and force go
    to zero at the cutoff. The prior keeps atoms apart while the network is still untrained (an
    untrained MLP is soft at short range and would let atoms overlap); its ``r^-12`` form is the one of
    the repulsive prior in the RDF fit of Wang et al. (arXiv:2209.07679, section 2.3). The same
    ``phi`` acts between every pair of atoms, whatever their species (one-component systems).

    The weights are float64 parameters whatever ``dtype`` (as every potential's here), drawn from a
    local generator seeded by ``seed`` (the uniform ``±1/sqrt(fan_in)`` of ``torch.nn.Linear``).

    Parameters
    ----------
    cutoff : float
        Å.
    n_basis : int
        Gaussians of the distance basis.
    hidden : sequence of int
        Widths of the hidden layers (SiLU activations).
    prior : (float, float), optional
        ``(eps_p [eV], sigma_p [Å])`` of the repulsive prior; None: no prior.
    smooth_width : float
        Width of the cutoff taper, Å.
    seed : int
        Seeds the initial weights.
    device, dtype
        Of the parameters, and the default precision of computations.

    Examples
    --------
    >>> pot = NeuralPair(cutoff=8.5, n_basis=32, hidden=(32, 32), prior=(0.01, 3.0))

    References
    ----------
    W. Wang, Z. Wu, J. C. B. Dietschreit, R. Gómez-Bombarelli, "Learning pair potentials using
    differentiable simulations", J. Chem. Phys. 158, 044113 (2023), arXiv:2209.07679.
    """

    def __init__(self, *, cutoff: float, n_basis: int = 32, hidden: Sequence[int] = (64, 64),
                 prior: tuple[float, float] | None = None, smooth_width: float = 1.0, seed: int = 0,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(dtype)
        hidden = [int(h) for h in hidden]
        if not (math.isfinite(cutoff) and cutoff > 0) or int(n_basis) < 2 or any(h < 1 for h in hidden):
            raise SimsInputError(f"need cutoff > 0 Å, n_basis >= 2 and hidden widths >= 1; got cutoff={cutoff}, "
                                 f"n_basis={n_basis}, hidden={hidden}")
        if not 0 < smooth_width <= cutoff:
            raise SimsInputError(f"smooth_width must be in (0, cutoff] Å, got {smooth_width}")
        self.cutoff = float(cutoff)
        self.smooth_width = float(smooth_width)
        self.n_basis, self.hidden, self.seed = int(n_basis), tuple(hidden), int(seed)
        self.register_buffer("centers", torch.linspace(0.0, self.cutoff, self.n_basis, dtype=torch.float64,
                                                       device=device))
        self.basis_width = self.cutoff / (self.n_basis - 1)
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        sizes = [self.n_basis, *hidden, 1]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand((fan_out, fan_in), generator=gen, dtype=torch.float64) * 2 - 1) * bound
            b = (torch.rand((fan_out,), generator=gen, dtype=torch.float64) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w.to(device=device)))
            self.biases.append(nn.Parameter(b.to(device=device)))
        if prior is None:
            self.prior = None
        else:
            if len(prior) != 2:
                raise SimsInputError(f"prior must be (epsilon [eV], sigma [Å]), got {prior}")
            self.prior = (float(prior[0]), float(prior[1]))
            if not (self.prior[0] >= 0 and self.prior[1] > 0):
                raise SimsInputError(f"prior needs epsilon >= 0 eV and sigma > 0 Å, got {prior}")

    def pair_energy(self, r, zi, zj):
        x = torch.exp(-0.5 * ((r[:, None] - self.centers.to(r)) / self.basis_width) ** 2)
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.nn.functional.linear(x, w.to(r), b.to(r))
            if k < len(self.weights) - 1:
                x = torch.nn.functional.silu(x)
        phi = x[:, 0]
        if self.prior is not None:
            phi = phi + self.prior[0] * (self.prior[1] / r) ** 12
        return phi * smooth_cutoff(r, self.cutoff - self.smooth_width, self.cutoff)


class SumPotential(Potential):
    """The sum of several potentials; its cutoff is the largest of theirs, its dtype the widest."""

    def __init__(self, potentials: Sequence[nn.Module]) -> None:
        if not potentials:
            raise SimsInputError("SumPotential needs at least one potential")
        dtype = potential_dtype(potentials[0])
        for p in potentials[1:]:
            dtype = torch.promote_types(dtype, potential_dtype(p))
        super().__init__(dtype)
        self.terms = nn.ModuleList(potentials)
        self.cutoff = max(float(p.cutoff) for p in potentials)

    def forward(self, positions, cell, numbers, pairs, batch=None):
        if all(isinstance(t, PairPotential) for t in self.terms):
            # Pair terms share one distance computation (the costly part for a sum like BKS).
            r, zi, zj = _distances(positions, cell, numbers, pairs, batch)
            systems = _pair_systems(pairs, batch, cell)
            return sum(t.energy_from_distances(r, zi, zj, pairs.half, systems) for t in self.terms)
        if batch is None:
            return sum(term(positions, cell, numbers, pairs) for term in self.terms)
        return sum(term(positions, cell, numbers, pairs, batch) for term in self.terms)

    @property
    def translation_invariant(self) -> bool:
        """True when every term is (:func:`conserves_momentum`)."""
        return all(conserves_momentum(t) for t in self.terms)

    def known_numbers(self) -> torch.Tensor | None:
        """Elements some term has parameters for; None when a term takes any element."""
        known = [t.known_numbers() if hasattr(t, "known_numbers") else None for t in self.terms]
        if any(k is None for k in known):
            return None
        return torch.unique(torch.cat([k.cpu() for k in known]))


#: BKS parameters, van Beest, Kramer & van Santen, Phys. Rev. Lett. 64, 1955 (1990), Table I:
#: (A [eV], rho = 1/b [Å], C [eV Å^6]); Si-Si has no short-range term.
BKS_BUCKINGHAM = {("O", "O"): (1388.7730, 1 / 2.76000, 175.0000), ("Si", "O"): (18003.7572, 1 / 4.87318, 133.5381)}
BKS_CHARGES = {"Si": 2.4, "O": -1.2}
#: 30-6 core correction of Saika-Voivod, Sciortino & Poole, Phys. Rev. E 63, 011202 (2001): (epsilon [eV], sigma [Å]).
BKS_CORE = {("Si", "O"): (3.0e-3, 1.313), ("O", "O"): (1.2e-3, 1.779)}


def BKS(*, short_cutoff: float = 5.5, coulomb_cutoff: float = 10.0, alpha: float = 0.2,
        device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> SumPotential:
    """The BKS silica potential: Buckingham + damped shifted-force Coulomb + 30-6 core repulsion.

    Parameters
    ----------
    short_cutoff : float
        Cutoff of the Buckingham and core terms, Å (5.5 Å as Vollmayr, Kob & Binder,
        Phys. Rev. B 54, 15808 (1996), who shift the Buckingham term to zero there).
    coulomb_cutoff, alpha : float
        DSF Coulomb cutoff (Å) and damping (1/Å), in place of the Ewald sum of the original paper.
    device : torch.device or str, optional
        Of the parameters.
    dtype : torch.dtype
        Default precision of computations (parameters are float64, exact as given).

    Returns
    -------
    SumPotential
        Terms ``[Buckingham, DSFCoulomb, CoreRepulsion]``; charges +2.4 e (Si), -1.2 e (O).

    References
    ----------
    van Beest, Kramer & van Santen, Phys. Rev. Lett. 64, 1955 (1990) (parameters);
    Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006) (DSF Coulomb);
    Saika-Voivod, Sciortino & Poole, Phys. Rev. E 63, 011202 (2001) (30-6 correction).
    """
    kw = {"device": device, "dtype": dtype}
    return SumPotential([Buckingham(BKS_BUCKINGHAM, cutoff=short_cutoff, **kw),
                         DSFCoulomb(BKS_CHARGES, alpha=alpha, cutoff=coulomb_cutoff, **kw),
                         CoreRepulsion(BKS_CORE, cutoff=short_cutoff, **kw)])


class _CalculatorEnergy(torch.autograd.Function):
    """Energy of an ASE calculator with its forces (and stress) as the gradient.

    ``dE/dR = -F``; ``dE/dh = h^-T (V sigma + R^T F)`` for the cell ``h`` (rows are vectors), which
    follows from the strain derivative ``dE/d(eps) = R^T dE/dR + h^T dE/dh = V sigma`` (ASE's stress
    sign) under ``R -> R (1 + eps)``, ``h -> h (1 + eps)``: so :func:`sims.md.compute` gets the
    calculator's own stress back. The gradient is a constant taken from the calculator, so it is
    once differentiable only (no forces-of-forces, no training through it).
    """

    @staticmethod
    def forward(ctx, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor,
                wrapper: "CalculatorPotential") -> torch.Tensor:
        from ase import Atoms

        pos = positions.detach().cpu().double().numpy()
        h = cell.detach().cpu().double().numpy()
        atoms = Atoms(numbers=numbers.cpu().numpy(), positions=pos, cell=h, pbc=wrapper.periodic(h))
        calc = wrapper.calculator
        if wrapper.reset and calc.check_state(atoms):
            calc.reset()
        # Autograd is off inside Function.forward, but torch-based calculators (CHGNet, SevenNet,
        # our own) get their forces by autograd: turn it back on for the calculator's own graph.
        with torch.enable_grad():
            energy = float(calc.get_property(wrapper.energy_property, atoms))
            forces = torch.as_tensor(calc.get_property("forces", atoms), dtype=positions.dtype, device=positions.device)
        cell_grad = None
        if ctx.needs_input_grad[1]:
            if not atoms.pbc.all():
                raise SimsInputError("a gradient with respect to the cell (stress) needs a cell periodic in all "
                                     "three directions")
            from ase.constraints import voigt_6_to_full_3x3_stress

            with torch.enable_grad():
                sigma = np.asarray(calc.get_property("stress", atoms), dtype=np.float64)
            if sigma.shape == (6,):
                sigma = voigt_6_to_full_3x3_stress(sigma)
            virial = abs(np.linalg.det(h)) * sigma + pos.T @ forces.cpu().double().numpy()
            cell_grad = torch.as_tensor(np.linalg.solve(h.T, virial), dtype=cell.dtype, device=cell.device)
        ctx.save_for_backward(forces, cell_grad if cell_grad is not None else forces.new_zeros(0))
        return torch.tensor(energy, dtype=positions.dtype, device=positions.device)

    @staticmethod
    def backward(ctx, grad_energy: torch.Tensor):
        if torch.is_grad_enabled():
            # create_graph=True: the caller wants derivatives of the forces, which a constant cannot give.
            raise SimsInputError("CalculatorPotential is differentiable once (its forces are the calculator's "
                                 "numbers): no create_graph=True, MD(requires_grad=True) or training through forces")
        forces, cell_grad = ctx.saved_tensors
        grad_pos = -grad_energy * forces if ctx.needs_input_grad[0] else None
        grad_cell = grad_energy * cell_grad if ctx.needs_input_grad[1] else None
        return grad_pos, grad_cell, None, None


class CalculatorPotential(Potential):
    """Any ASE calculator as a :mod:`sims` potential: the labellers (classical, xTB, LAMMPS) behind one interface.

    The energy is the calculator's; its gradient with respect to the positions is minus the
    calculator's forces and, when the cell is differentiated (the stress of
    :func:`sims.md.compute`), the cell gradient is rebuilt from the calculator's stress (see
    :class:`_CalculatorEnergy`). So :class:`sims.MD`, :func:`sims.energy_and_forces` and
    :func:`sims.generate.generate` run on any calculator, with exactly its energies and forces.

    The gradient is a constant handed back by the calculator: the wrapper supports one backward
    pass (forces, stress), not a second one (``create_graph=True`` training through forces, or
    differentiating a trajectory, raises), and has no trainable parameters. Each call runs the
    calculator on the CPU in float64 and casts the result to the dtype of the positions; its
    ``dtype`` (the default precision of computations) is float64.

    Parameters
    ----------
    calculator : ase.calculators.calculator.Calculator
        Any ASE calculator implementing ``energy`` and ``forces`` (and ``stress`` for the stress).
    pbc : bool or sequence of 3 bool, optional
        Periodic directions of the structures it will see. By default those of the structure:
        :func:`sims.energy_and_forces` and :class:`sims.MD` hand the structure's flags over
        (:func:`with_structure_pbc`), so a slab or a molecule in a box that ASE marks non-periodic
        is computed as ASE's own ``atoms.calc = calculator`` computes it. Called directly, with
        positions and a cell only, a direction is periodic when its cell vector is non-zero.
    energy_property : str
        The calculator result whose gradient the forces are: ``"energy"`` for most calculators,
        ``"free_energy"`` for DFT codes with smeared occupations (ASE's convention).
    reset : bool
        Call ``calculator.reset()`` before each new geometry. Self-consistent methods otherwise
        start from the previous geometry's wavefunction, so their numbers depend on the history at
        the level of the SCF tolerance (tblite: ~1e-9 eV), and a resumed run drifts away from an
        uninterrupted one; with ``reset`` the result depends on the positions only (tblite: also
        pass ``cache_api=False``, about 1.5x the cost).

    Examples
    --------
    >>> from ase.calculators.emt import EMT
    >>> from ase.build import bulk
    >>> from sims.md import energy_and_forces
    >>> e, f = energy_and_forces(CalculatorPotential(EMT()), bulk("Cu", cubic=True), dtype=torch.float64)
    """

    def __init__(self, calculator, *, pbc: bool | Sequence[bool] | None = None,
                 energy_property: str = "energy", reset: bool = False) -> None:
        super().__init__(torch.float64)
        if not (hasattr(calculator, "get_property") and hasattr(calculator, "implemented_properties")):
            raise SimsInputError(f"calculator must be an ASE calculator, got {type(calculator).__name__}")
        if energy_property not in ("energy", "free_energy"):
            raise SimsInputError(f"energy_property must be 'energy' or 'free_energy', got {energy_property!r}")
        self.calculator = calculator
        self.pbc = None if pbc is None else np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
        self.energy_property = energy_property
        self.reset = bool(reset)
        # No pair list needed: the calculator finds its own neighbours (sims.MD skips building one).
        self.cutoff = 0.0

    def periodic(self, cell: np.ndarray) -> np.ndarray:
        """The ``(3,)`` periodic flags for ``cell`` (Å): the given ``pbc``, else its non-zero vectors."""
        if self.pbc is not None:
            return self.pbc
        return np.linalg.norm(cell, axis=1) > 1e-12

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor,
                pairs: PairList | None = None) -> torch.Tensor:
        """Energy (eV) of one structure; ``pairs`` is ignored."""
        return _CalculatorEnergy.apply(positions, cell, numbers, self)


def with_structure_pbc(potential: nn.Module, pbc) -> nn.Module:
    """``potential`` with each :class:`CalculatorPotential` in it that was given no ``pbc`` told the
    structure's periodic flags ``pbc`` (``(3,)`` bool); copies, ``potential`` itself is unchanged.

    A potential is called with positions, cell and numbers only, so a calculator left to guess its
    periodicity from the cell took a slab with vacuum or a molecule centred in a box (non-zero cell
    vectors along directions the ``ase.Atoms`` marks non-periodic) as a 3-D crystal: EMT on a
    3-layer Cu(111) slab with 4 Å of vacuum gave 2.750 eV instead of ASE's 2.854 eV. Other
    potentials read the flags through their pair list and are returned as they are.
    """
    if isinstance(potential, CalculatorPotential) and potential.pbc is None:
        bound = copy.copy(potential)  # shares the calculator
        bound.pbc = np.asarray(torch.as_tensor(pbc).cpu(), dtype=bool).reshape(3).copy()
        return bound
    if isinstance(potential, SumPotential):
        terms = [with_structure_pbc(term, pbc) for term in potential.terms]
        if any(new is not old for new, old in zip(terms, potential.terms)):
            return SumPotential(terms)
    return potential


class DoubleWell(Potential):
    """A model energy surface, every atom a particle in the same external field (no interactions):
    ``U = sum_atoms a (x^2 - b^2)^2 + tilt x + k_y y^2 / 2 + k_z z^2 / 2`` (eV).

    A quartic double well along x (minima near ``x = ±b``, barrier ``a b^4`` at ``x = 0`` without
    tilt), a linear tilt that makes the wells unequal, and harmonic confinement across it (a 2-D
    model with ``k_y > 0``; a free particle across it with ``k_y = k_z = 0``).

    Parameters
    ----------
    a : float
        eV / Å^4, > 0.
    b : float
        Å, > 0.
    tilt : float
        eV / Å.
    k_y, k_z : float
        eV / Å^2, >= 0.
    device, dtype
        Of the parameters.

    The test bed of :mod:`sims.free_energy`: the exact CV density is ``exp(-U/kT)`` up to
    normalisation, so profiles, reaction and activation free energies have quadrature references;
    ``N`` atoms are ``N`` independent replicas of one particle, sampled together by one
    :class:`sims.MD` run.

    Examples
    --------
    >>> import sims, torch
    >>> from ase import Atoms
    >>> atoms = Atoms("H4", positions=[[-1, 0, 0], [1, 0, 0], [-1, 0, 0], [1, 0, 0]])
    >>> md = sims.MD(atoms, DoubleWell(a=0.05, b=1.0), sims.Langevin(1.0, 300.0), min_distance=None,
    ...              temperature=300, seed=0)
    """

    cutoff = 0.0
    translation_invariant = False

    def __init__(self, *, a: float, b: float, tilt: float = 0.0, k_y: float = 0.0, k_z: float = 0.0,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__(dtype)
        if float(k_y) < 0 or float(k_z) < 0:
            raise SimsInputError(f"k_y and k_z must be >= 0 eV/Å^2, got {k_y}, {k_z}")
        self.a = _param(a, device, "a", positive=True)
        self.b = _param(b, device, "b", positive=True)
        self.tilt = _param(tilt, device, "tilt")
        self.k_y = _param(k_y, device, "k_y")
        self.k_z = _param(k_z, device, "k_z")

    def forward(self, positions, cell=None, numbers=None, pairs=None, batch=None):
        x, y, z = positions[..., 0], positions[..., 1], positions[..., 2]
        a, b = self.a.to(x), self.b.to(x)
        u = a * (x * x - b * b) ** 2 + self.tilt.to(x) * x + 0.5 * self.k_y.to(x) * y * y + 0.5 * self.k_z.to(x) * z * z
        return u.sum() if batch is None else _sum_per_system(u, batch, int(cell.shape[0]))


class MuellerBrown(Potential):
    """The Müller-Brown surface, every particle in the same external field (no interactions) (eV).

    ``V(x, y) = s sum_k A_k exp[a_k (x - x0_k)^2 + b_k (x - x0_k)(y - y0_k) + c_k (y - y0_k)^2]``
    with the four terms of Müller & Brown (1979), ``A = (-200, -100, -170, 15)``,
    ``a = (-1, -1, -6.5, 0.7)``, ``b = (0, 0, 11, 0.6)``, ``c = (-10, -10, -6.5, 0.7)``,
    ``x0 = (1, 0, -0.5, -1)``, ``y0 = (0, 0.5, 1.5, 1)``; ``x``, ``y`` in Å and ``s`` (eV) the energy
    of one of the paper's units. Minima lie near (-0.558, 1.442) (the deepest, ``-146.70 s``),
    (0.623, 0.028) (``-108.17 s``) and (-0.050, 0.467) (``-80.77 s``); saddles near (-0.822, 0.624)
    (``-40.66 s``) and (0.212, 0.293) (``-72.25 s``).

    - ``dim=2``: each atom is a particle; ``V`` acts on its ``(x, y)`` and a spring
      ``spring z^2 / 2`` holds ``z`` (a decoupled harmonic coordinate outside the model).
    - ``dim=5``: each pair of consecutive atoms is one particle with coordinates
      ``q = (x_1, y_1, z_1, x_2, y_2, z_2)``; ``V`` acts on ``(q_0, q_1)``, the three extra model
      coordinates ``q_2, q_3, q_4`` and the decoupled ``q_5`` are held by the spring, as in the 5-D
      variant of Šípka et al. (2023) (two coordinates that matter among five).

    Parameters
    ----------
    dim : {2, 5}
        Model dimension.
    energy_scale : float
        ``s``, eV per Müller-Brown unit. The default 0.00375 eV puts the barrier out of the deepest
        minimum (106.07 units) at 0.40 eV = 9.2 kcal/mol, the scale of Šípka et al.'s
        rarediffsim (their amplitudes ``10 x (-1.73, -0.87, -1.47, 0.13)`` kcal/mol).
    spring : float
        Stiffness of the harmonic coordinates, eV/Å^2, >= 0 (the default is rarediffsim's
        0.1 kcal/mol per squared length unit, there 1/16 of ours).
    device, dtype
        Of the parameters; the default precision of computations.

    References
    ----------
    K. Müller and L. D. Brown, Theor. Chim. Acta 53, 75 (1979) (the parameters, eq. 1);
    M. Šípka, J. C. B. Dietschreit, L. Grajciar, R. Gómez-Bombarelli, ICML 2023, arXiv:2301.03480 (5-D variant).

    Examples
    --------
    >>> import sims, torch
    >>> from ase import Atoms
    >>> atoms = Atoms("Ar", positions=[[-0.558, 1.442, 0.0]])
    >>> e, f = sims.energy_and_forces(MuellerBrown(), atoms, dtype=torch.float64)
    >>> round(e / 0.00375, 1)
    -146.7
    """

    cutoff = 0.0
    translation_invariant = False
    #: The four terms of Müller & Brown (1979), eq. 1: A, a, b, c, x0, y0.
    PARAMETERS = {"A": (-200.0, -100.0, -170.0, 15.0), "a": (-1.0, -1.0, -6.5, 0.7), "b": (0.0, 0.0, 11.0, 0.6),
                  "c": (-10.0, -10.0, -6.5, 0.7), "x0": (1.0, 0.0, -0.5, -1.0), "y0": (0.0, 0.5, 1.5, 1.0)}

    def __init__(self, *, dim: int = 2, energy_scale: float = 0.00375, spring: float = 2.2,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__(dtype)
        if dim not in (2, 5) or isinstance(dim, bool):
            raise SimsInputError(f"dim must be 2 or 5, got {dim!r}")
        if not float(spring) >= 0:
            raise SimsInputError(f"spring must be >= 0 eV/Å^2, got {spring}")
        self.dim = int(dim)
        self.energy_scale = _param(energy_scale, device, "energy_scale", positive=True)
        self.spring = _param(spring, device, "spring")
        for name, values in self.PARAMETERS.items():
            self.register_buffer(name, torch.tensor(values, dtype=torch.float64, device=device))

    @property
    def atoms_per_particle(self) -> int:
        """Atoms carrying one model particle: 1 (``dim=2``) or 2 (``dim=5``)."""
        return 1 if self.dim == 2 else 2

    def surface(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``s V(x, y)`` (eV) elementwise at ``x``, ``y`` (Å)."""
        dx, dy = x.unsqueeze(-1) - self.x0.to(x), y.unsqueeze(-1) - self.y0.to(x)
        expo = self.a.to(x) * dx * dx + self.b.to(x) * dx * dy + self.c.to(x) * dy * dy
        return self.energy_scale.to(x) * (self.A.to(x) * torch.exp(expo)).sum(-1)

    def forward(self, positions, cell=None, numbers=None, pairs=None):
        k = self.atoms_per_particle
        if positions.shape[-2] % k:
            raise SimsInputError(f"MuellerBrown(dim=5) needs an even number of atoms (two per particle), "
                                 f"got {positions.shape[-2]}")
        q = positions.reshape(*positions.shape[:-2], -1, 3 * k)
        extra = q[..., 2:]
        return self.surface(q[..., 0], q[..., 1]).sum() + 0.5 * self.spring.to(q) * (extra * extra).sum()


#: The format tag of :func:`save_potential` files.
POTENTIAL_FORMAT = "matrep.sims.potential/1"

#: Every matrep model-file format: what the file holds, the function that reads it, and how a config names it
#: (None: no config reads it).
MODEL_FILES = {
    POTENTIAL_FORMAT: ("a pair potential", "sims.potentials.load_potential", 'kind = "file"'),
    "matrep-potential-1": ("a neural-network potential or committee", "learners.potentials.load_potential",
                           'kind = "nn"'),
    "matrep-diabatic-1": ("a diabatic network (DANN)", "learners.diabatic.load_diabatic",
                          'kind = "dann" in a matrep hop config'),
    "matrep-gnn-estimator-1": ("a fitted GNN estimator", "learners.estimators.load_estimator", None),
}


def read_model_file(path, fmt: str, *, what: str, writer: str, family: str = "matrep",
                    error: type[Exception] = InputError) -> dict:
    """The plain-data payload of a model file whose ``format`` entry is ``fmt`` (``weights_only``
    loading: no code runs from the file). The one reader of every matrep model file.

    Raises
    ------
    error
        No file at ``path`` ("no {what} file at ..."), a file torch cannot read, or a file of another
        format (naming ``writer``, and the reader of that format where it is a matrep one).
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise error(f"no {what} file at {str(path)!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's own message advises weights_only=False, which we never do
        raise error(f"{str(path)!r} is not a {family} {what} file (it holds pickled Python objects, which are "
                    "not loaded: no code runs from a model file)") from None
    except Exception as err:  # a truncated or foreign file
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise error(f"{str(path)!r} is not a {family} {what} file ({type(err).__name__}: {first_line})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise error(f"{str(path)!r} is not a {family} {what} file (written by {writer}){model_file_hint(payload)}")
    return payload


def saved_dtype(state_dict: dict) -> torch.dtype:
    """The precision a model was saved in: the dtype of the first floating tensor of its state dict
    (float32 when it holds none). The default of the matrep model loaders when the caller names none."""
    return next((v.dtype for v in state_dict.values() if torch.is_tensor(v) and v.is_floating_point()),
                torch.float32)


def model_file_hint(payload) -> str:
    """``"; it holds ... : read it with ..."`` for a matrep model file given to the wrong reader, else ``""``."""
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt not in MODEL_FILES:
        return ""
    what, reader, config = MODEL_FILES[fmt]
    return f"; it holds {what}: read it with {reader}" + (f" ({config} in a config)" if config else "")


def _settings(potential: nn.Module) -> dict:
    """The constructor keywords that rebuild ``potential``'s shape (its parameters come from the state dict)."""
    if isinstance(potential, LennardJones):
        return {"sigma": float(potential.sigma.detach()), "epsilon": float(potential.epsilon.detach()),
                "cutoff": potential.cutoff, "shift": bool(potential.shift)}
    if isinstance(potential, TabulatedPair):
        return {"r_min": potential.r_min, "cutoff": potential.cutoff,
                "values": potential.values.detach().cpu().tolist()}
    if isinstance(potential, LennardJonesMixture):
        return {"cutoff": potential.cutoff, "params": {}}
    if isinstance(potential, NeuralPair):
        return {"cutoff": potential.cutoff, "n_basis": potential.n_basis, "hidden": list(potential.hidden),
                "prior": None if potential.prior is None else list(potential.prior),
                "smooth_width": potential.smooth_width, "seed": potential.seed}
    raise SimsInputError(f"cannot save a {type(potential).__name__}; savable: LennardJones, LennardJonesMixture, "
                         "TabulatedPair, NeuralPair")


def save_potential(potential: nn.Module, path) -> None:
    """Write a :class:`LennardJones`, :class:`TabulatedPair` or :class:`NeuralPair` (a fitted one,
    :mod:`sims.fit`) to ``path``: its kind, settings, ``dtype`` (default precision) and parameters as plain
    data, atomically.

    Examples
    --------
    >>> save_potential(LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5), "lj.pt")  # doctest: +SKIP
    >>> pot = load_potential("lj.pt", dtype=torch.float64)                             # doctest: +SKIP
    """
    from reprs.fileio import atomic_open

    # dtype: the potential's default precision (its parameters are float64 whatever it is), kept on load
    payload = {"format": POTENTIAL_FORMAT, "kind": type(potential).__name__, "settings": _settings(potential),
               "dtype": str(potential.dtype).removeprefix("torch."),
               "state_dict": {k: v.detach().cpu() for k, v in potential.state_dict().items()}}
    with atomic_open(path, "wb") as f:
        torch.save(payload, f)


def load_potential(path, *, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> nn.Module:
    """Read a file of :func:`save_potential` (``weights_only``: no code runs from the file).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_potential`.
    device : torch.device or str, optional
        Where the parameters live; default CPU.
    dtype : torch.dtype, optional
        Default precision of computations with the loaded potential (its parameters are float64
        whatever it is). Default: the one it was saved with (float32 for a file written before
        the dtype was saved, as those loaded); a given dtype replaces it.

    Raises
    ------
    SimsInputError
        A missing file, or one :func:`save_potential` did not write.
    """
    payload = read_model_file(path, POTENTIAL_FORMAT, what="potential", writer="sims.potentials.save_potential",
                              family="sims", error=SimsInputError)
    kinds = {"LennardJones": LennardJones, "LennardJonesMixture": LennardJonesMixture, "TabulatedPair": TabulatedPair,
             "NeuralPair": NeuralPair}
    if payload.get("kind") not in kinds:
        raise SimsInputError(f"{str(path)!r} holds a potential of unknown kind {payload.get('kind')!r}; "
                             f"known: {sorted(kinds)}")
    if dtype is None:
        dtype = getattr(torch, str(payload.get("dtype", "float32")), None)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise SimsInputError(f"{str(path)!r} names dtype {payload['dtype']!r}, not a floating torch dtype; "
                                 "pass dtype= to load it")
    settings = dict(payload["settings"])
    if settings.get("prior") is not None:
        settings["prior"] = tuple(settings["prior"])
    potential = kinds[payload["kind"]](**settings, device=device, dtype=dtype)
    potential.load_state_dict(payload["state_dict"])
    return potential
