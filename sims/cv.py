"""Collective variables (CVs) as differentiable torch functions of positions, and their inverse mass.

A CV maps a batch of frames, positions ``(F, N, 3)`` in Å, to ``(F,)`` values; its Cartesian
gradient comes from autograd, never from a second hand-written formula. The inverse CV mass of a
frame (Dietschreit et al., J. Chem. Phys. 157, 084113 (2022), arXiv:2206.02893, eq. 27)

    m_xi^-1 = sum_i |d xi / d r_i|^2 / m_i        [CV unit^2 / (amu Å^2)]

is what turns a CV density into an activation free energy (:mod:`sims.free_energy`). For a
Cartesian coordinate of one atom it is ``1/m``; for a distance ``1/m_1 + 1/m_2``.

Units: distances and positions in Å, angles and dihedrals in radians, coordination numbers
dimensionless. With a ``cell`` (rows are cell vectors, Å) bond vectors follow the minimum-image
convention (exact for any triclinic cell: the nearest of the 27 neighbouring images of the
Minkowski-reduced cell is taken).

Examples
--------
>>> import torch
>>> pos = torch.tensor([[[0.0, 0, 0], [1.5, 0, 0]]], dtype=torch.float64)
>>> xi, m_inv, _ = cv_and_inverse_mass(Distance(0, 1), pos, torch.tensor([1.0, 16.0], dtype=torch.float64))
>>> round(float(xi[0]), 3), round(float(m_inv[0]), 4)
(1.5, 1.0625)
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Callable, Sequence

import numpy as np
import torch

from .errors import SimsInputError

__all__ = ["CollectiveVariable", "Position", "Distance", "Angle", "Dihedral", "Coordination", "Linear", "Custom",
           "cv_and_inverse_mass", "gradient_alignment", "parse_cv", "minimum_image", "wrapping_cell"]


def _images(cell: torch.Tensor) -> torch.Tensor:
    """The 27 lattice translations ``n @ cell`` with ``n`` in {-1, 0, 1}^3, shape ``(27, 3)`` or ``(F, 27, 3)``."""
    n = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=cell.dtype, device=cell.device)
    return n @ cell


@functools.lru_cache(maxsize=256)
def _reduction(cell_bytes: bytes) -> np.ndarray:
    """The integer ``op`` of :func:`ase.geometry.minkowski_reduce` for a float64 3x3 cell given as bytes
    (cached: a run at constant volume, or a trajectory's frames, reduce one cell once)."""
    from ase.geometry import minkowski_reduce

    return minkowski_reduce(np.frombuffer(cell_bytes, dtype=np.float64).reshape(3, 3))[1]


def _reduced(cell: torch.Tensor) -> torch.Tensor:
    """The Minkowski-reduced basis ``op @ cell`` of the same lattice (``op`` integer, found on the
    host; the product keeps ``cell``'s gradient)."""
    host = np.ascontiguousarray(cell.detach().cpu().double().numpy())
    if host.ndim == 2:
        op = _reduction(host.tobytes())
    else:
        unique, inverse = np.unique(host.reshape(len(host), 9), axis=0, return_inverse=True)
        op = np.stack([_reduction(np.ascontiguousarray(u).tobytes()) for u in unique])[inverse.reshape(-1)]
    return torch.as_tensor(op, dtype=cell.dtype, device=cell.device) @ cell


def minimum_image(vectors: torch.Tensor, cell: torch.Tensor | None) -> torch.Tensor:
    """Return ``vectors`` ``(F, ..., 3)`` (Å) replaced by their shortest periodic images.

    ``cell`` is ``(3, 3)`` or per frame ``(F, 3, 3)`` (rows are cell vectors); ``None`` means no
    periodicity. The cell is Minkowski-reduced (the same lattice, its shortest basis), vectors are
    wrapped in its fractional coordinates, then the nearest of the 27 neighbouring images is chosen:
    the minimum image for any cell (as ASE's ``find_mic``; the 27 images of a skewed, unreduced cell
    can all miss it). The choice is piecewise constant, so gradients pass unchanged.
    """
    if cell is None:
        return vectors
    cell = _reduced(cell.to(vectors))
    shape = vectors.shape
    flat = vectors.reshape(shape[0], -1, 3) if cell.dim() == 3 else vectors.reshape(-1, 3)
    frac = flat @ torch.linalg.inv(cell)
    wrapped = flat - torch.round(frac).detach() @ cell
    cand = wrapped.unsqueeze(-2) + _images(cell).unsqueeze(-3)          # (..., 27, 3)
    best = torch.argmin((cand * cand).sum(-1).detach(), dim=-1)
    out = torch.gather(cand, -2, best[..., None, None].expand(*best.shape, 1, 3)).squeeze(-2)
    return out.reshape(shape)


def wrapping_cell(cell, pbc, reach: float) -> np.ndarray | None:
    """Cell(s) for :func:`minimum_image` that wrap along the periodic axes only (a slab, a wire).

    :func:`minimum_image` wraps along all three cell vectors, so the rows of the non-periodic axes
    are replaced by orthonormal vectors perpendicular to the periodic rows, scaled to
    ``2 reach + 1`` Å: every image along them is then farther than the vector itself, and the
    minimum image is taken in the periodic plane (or along the periodic line) alone, as ASE's
    ``find_mic(v, cell, pbc)`` means to take it (ASE 3.26 misses it on skewed partly periodic cells,
    by up to 2.5 Å in tests/sims/test_cv.py and, on a strongly skewed one, returning 257.6 Å for a
    51.2 Å vector whose shortest image is 50.8 Å; brute force over the periodic rows agrees with this).

    Parameters
    ----------
    cell : array-like
        ``(3, 3)`` or per frame ``(F, 3, 3)``, rows are cell vectors, Å.
    pbc : sequence of 3 bool
        Periodic axes.
    reach : float
        Longest vector that will be wrapped, Å (e.g. the diagonal of the atoms' bounding box).

    Returns
    -------
    numpy.ndarray or None
        The cell(s) to pass to the CVs; ``cell`` itself when all axes are periodic, None when none is.

    Raises
    ------
    SimsInputError
        When the periodic axes lack independent cell vectors.
    """
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    cell = np.asarray(cell, dtype=np.float64)
    if not pbc.any():
        return None
    if pbc.all():
        return cell
    periodic = cell[..., pbc, :]
    if np.any(np.linalg.matrix_rank(periodic) < pbc.sum()):
        raise SimsInputError(f"the periodic axes {np.flatnonzero(pbc).tolist()} need independent cell vectors, "
                             f"got rows {periodic.tolist() if periodic.ndim == 2 else '(per frame)'}; set the cell")
    # The rows of vt past the rank of the periodic rows span their orthogonal complement.
    complement = np.linalg.svd(periodic)[2][..., int(pbc.sum()):, :]
    out = cell.copy()
    out[..., ~pbc, :] = complement * (2.0 * float(reach) + 1.0)
    return out


class CollectiveVariable:
    """Base class: ``cv(positions, cell=None) -> (F,)`` for positions ``(F, N, 3)`` Å.

    Subclasses implement :meth:`__call__` with torch operations only, so that autograd gives the
    gradient; ``unit`` names the CV's unit (``"Å"``, ``"rad"``, ``"1"``).
    """

    unit: str = "1"
    #: atom indices the CV reads (for range checks); ``None`` when unknown (user callables)
    atoms: tuple[int, ...] | None = None
    #: period of the CV's values (CV unit), ``None`` for a CV on a line: biases take differences
    #: the short way round it (read through :func:`cv_period`)
    period: float | None = None
    #: whether the CV reads relative positions only (moving every atom by one vector leaves it
    #: unchanged), so that a bias on it exerts no net force and conserves the total momentum;
    #: False unless a subclass knows (a CV on absolute coordinates, such as :class:`Position`, does not)
    translation_invariant: bool = False

    def __call__(self, positions: torch.Tensor, cell: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def check(self, n_atoms: int) -> None:
        """Raise :class:`SimsInputError` when the CV names an atom a system of ``n_atoms`` lacks."""
        if self.atoms is not None and self.atoms and max(self.atoms) >= n_atoms:
            raise SimsInputError(f"{self!r} uses atom {max(self.atoms)}, but the frames have {n_atoms} atoms "
                                 f"(indices 0..{n_atoms - 1})")


def _indices(values: Sequence[int], n: int, name: str) -> tuple[int, ...]:
    idx = tuple(int(v) for v in values)
    if len(idx) != n or any(i < 0 for i in idx) or len(set(idx)) != n:
        raise SimsInputError(f"{name} needs {n} distinct non-negative atom indices, got {list(values)}")
    return idx


def _bond(positions: torch.Tensor, i: int, j: int, cell) -> torch.Tensor:
    """Vector from atom ``i`` to atom ``j`` per frame, ``(F, 3)``, minimum image."""
    return minimum_image(positions[:, j] - positions[:, i], cell)


class Position(CollectiveVariable):
    """Cartesian coordinate ``axis`` (0, 1, 2 or "x", "y", "z") of atom ``atom``, Å (no wrapping)."""

    unit = "Å"

    def __init__(self, atom: int, axis: int | str = 0) -> None:
        axes = {"x": 0, "y": 1, "z": 2}
        self.axis = axes.get(axis, axis) if isinstance(axis, str) else int(axis)
        if self.axis not in (0, 1, 2):
            raise SimsInputError(f"axis must be 0, 1, 2 or 'x', 'y', 'z', got {axis!r}")
        self.atoms = _indices([atom], 1, "Position")

    def __call__(self, positions, cell=None):
        return positions[:, self.atoms[0], self.axis]

    def __repr__(self) -> str:
        return f"Position({self.atoms[0]}, {'xyz'[self.axis]!r})"


class Distance(CollectiveVariable):
    """Distance between atoms ``i`` and ``j``, Å."""

    unit = "Å"

    translation_invariant = True  # bond vectors only

    def __init__(self, i: int, j: int) -> None:
        self.atoms = _indices([i, j], 2, "Distance")

    def __call__(self, positions, cell=None):
        return torch.linalg.norm(_bond(positions, *self.atoms, cell), dim=-1)

    def __repr__(self) -> str:
        return f"Distance{self.atoms}"


class Angle(CollectiveVariable):
    """Angle i-j-k at atom ``j``, radians in [0, pi].

    Computed as ``atan2(|a x b|, a . b)``, whose gradient stays finite near 0 and pi where the
    ``acos`` form's diverges.
    """

    unit = "rad"

    translation_invariant = True  # bond vectors only

    def __init__(self, i: int, j: int, k: int) -> None:
        self.atoms = _indices([i, j, k], 3, "Angle")

    def __call__(self, positions, cell=None):
        i, j, k = self.atoms
        a, b = _bond(positions, j, i, cell), _bond(positions, j, k, cell)
        return torch.atan2(torch.linalg.norm(torch.linalg.cross(a, b), dim=-1), (a * b).sum(-1))

    def __repr__(self) -> str:
        return f"Angle{self.atoms}"


class Dihedral(CollectiveVariable):
    """Dihedral angle i-j-k-l, radians in (-pi, pi], IUPAC sign convention.

    ``atan2(|b2| b1 . (b2 x b3), (b1 x b2) . (b2 x b3))`` with ``b1 = r_j - r_i`` etc. (Blondel &
    Karplus, J. Comput. Chem. 17, 1132 (1996)); ASE's ``get_dihedral`` gives the same angle in
    degrees mapped to [0, 360).
    """

    unit = "rad"
    period = 2 * math.pi

    translation_invariant = True  # bond vectors only

    def __init__(self, i: int, j: int, k: int, l: int) -> None:  # noqa: E741 (the usual dihedral letters)
        self.atoms = _indices([i, j, k, l], 4, "Dihedral")

    def __call__(self, positions, cell=None):
        i, j, k, l = self.atoms  # noqa: E741
        b1, b2, b3 = _bond(positions, i, j, cell), _bond(positions, j, k, cell), _bond(positions, k, l, cell)
        n1, n2 = torch.linalg.cross(b1, b2), torch.linalg.cross(b2, b3)
        y = torch.linalg.norm(b2, dim=-1) * (b1 * n2).sum(-1)
        return torch.atan2(y, (n1 * n2).sum(-1))

    def __repr__(self) -> str:
        return f"Dihedral{self.atoms}"


class Coordination(CollectiveVariable):
    """Coordination number ``sum_{i in A, j in B} s(r_ij)``, ``s(r) = 1 / (1 + (r/r0)^n)``.

    ``s`` is PLUMED's rational switching function ``(1 - x^n) / (1 - x^2n)`` in the closed form
    that has no 0/0 at ``r = r0``; it is smooth, 1/2 at ``r0``. Each unordered pair counts once,
    also when the groups overlap; an atom is never paired with itself.

    Parameters
    ----------
    group_a, group_b : sequence of int
        Atom indices.
    r0 : float
        Switching distance, Å.
    n : int
        Exponent (6 is PLUMED's default, with ``m = 2n = 12``).
    """

    unit = "1"

    translation_invariant = True  # bond vectors only

    def __init__(self, group_a: Sequence[int], group_b: Sequence[int], *, r0: float, n: int = 6) -> None:
        a, b = np.asarray(list(group_a), dtype=np.int64), np.asarray(list(group_b), dtype=np.int64)
        if a.size == 0 or b.size == 0 or (a < 0).any() or (b < 0).any():
            raise SimsInputError(f"Coordination needs non-empty groups of non-negative indices, got {a.tolist()}, {b.tolist()}")
        if not (np.isfinite(r0) and r0 > 0) or int(n) < 1:
            raise SimsInputError(f"Coordination needs r0 > 0 Å and n >= 1, got r0={r0}, n={n}")
        ii, jj = np.meshgrid(a, b, indexing="ij")
        pairs = np.unique(np.sort(np.stack([ii.ravel(), jj.ravel()], 1), axis=1), axis=0)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        if len(pairs) == 0:
            raise SimsInputError("Coordination groups give no pair of distinct atoms")
        self.pairs = torch.as_tensor(pairs)
        self.r0, self.n = float(r0), int(n)
        self.atoms = tuple(int(v) for v in np.union1d(a, b))

    def __call__(self, positions, cell=None):
        vec = minimum_image(positions[:, self.pairs[:, 1]] - positions[:, self.pairs[:, 0]], cell)
        x = torch.linalg.norm(vec, dim=-1) / self.r0
        return (1.0 / (1.0 + x ** self.n)).sum(-1)

    def __repr__(self) -> str:
        return f"Coordination({len(self.pairs)} pairs, r0={self.r0}, n={self.n})"


class Linear(CollectiveVariable):
    """``sum_k c_k xi_k`` of other CVs (unit: theirs when they agree, else ``"mixed"``)."""

    def __init__(self, cvs: Sequence[CollectiveVariable], coefficients: Sequence[float]) -> None:
        self.cvs = list(cvs)
        self.coefficients = [float(c) for c in coefficients]
        if not self.cvs or len(self.cvs) != len(self.coefficients):
            raise SimsInputError(f"Linear needs as many coefficients as CVs, got {len(self.coefficients)} "
                                 f"for {len(self.cvs)}")
        if not all(np.isfinite(self.coefficients)):
            raise SimsInputError(f"Linear coefficients must be finite, got {self.coefficients}")
        units = {cv.unit for cv in self.cvs}
        self.unit = units.pop() if len(units) == 1 else "mixed"
        known = [cv.atoms for cv in self.cvs]
        self.atoms = None if any(a is None for a in known) else tuple(sorted(set().union(*known)))

    def __call__(self, positions, cell=None):
        return sum(c * cv(positions, cell) for c, cv in zip(self.coefficients, self.cvs))

    @property
    def translation_invariant(self) -> bool:
        """True when every component is."""
        return all(cv.translation_invariant for cv in self.cvs)

    @property
    def period(self) -> None:
        """None (a CV on a line); refused when a component is periodic: the sum jumps by
        ``c_k * period_k`` where that component wraps, so a bias on it would jump too."""
        periodic = [cv for cv in self.cvs if cv_period(cv) is not None]
        if periodic:
            raise SimsInputError(
                f"{self!r} combines periodic CVs ({', '.join(map(repr, periodic))}): its value jumps where one "
                "wraps, so a bias on it would jump; bias the periodic CVs themselves, or write the combination "
                "as Custom(fn, period=P) with the period P of its values"
            )
        return None

    def __repr__(self) -> str:
        return "Linear(" + " + ".join(f"{c:g}*{cv!r}" for c, cv in zip(self.coefficients, self.cvs)) + ")"


class Custom(CollectiveVariable):
    """Any user callable ``fn(positions (F, N, 3), cell) -> (F,)`` written with torch operations.

    ``period`` (CV unit) declares a periodic CV, e.g. ``2 * math.pi`` for an angle from ``atan2``:
    the umbrella and metadynamics biases then take its differences the short way round, as for a
    :class:`Dihedral`; without it the CV is taken to lie on a line. ``translation_invariant=True``
    declares that ``fn`` reads relative positions only (then a bias on it conserves the total
    momentum and Nose-Hoover chains may run with it); by default it is taken to read absolute ones.
    """

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], *, unit: str = "1",
                 period: float | None = None, translation_invariant: bool = False) -> None:
        if not callable(fn):
            raise SimsInputError(f"Custom needs a callable, got {type(fn).__name__}")
        if period is not None and not (isinstance(period, (int, float)) and math.isfinite(period) and period > 0):
            raise SimsInputError(f"Custom period must be a positive number (CV unit) or None, got {period!r}")
        self.fn, self.unit = fn, str(unit)
        self.period = None if period is None else float(period)
        self.translation_invariant = bool(translation_invariant)

    def __call__(self, positions, cell=None):
        return self.fn(positions, cell)

    def __repr__(self) -> str:
        period = "" if self.period is None else f", period={self.period:g}"
        return f"Custom({getattr(self.fn, '__name__', self.fn)!r}, unit={self.unit!r}{period})"


_KINDS = {"position": (Position, 2), "distance": (Distance, 2), "angle": (Angle, 3), "dihedral": (Dihedral, 4)}


def parse_cv(spec: str | CollectiveVariable) -> CollectiveVariable:
    """Build a CV from a string such as ``"dihedral:4,6,8,14"`` (0-based atom indices).

    Kinds: ``distance:i,j``, ``angle:i,j,k``, ``dihedral:i,j,k,l``, ``position:i,x`` (Cartesian
    coordinate ``x``, ``y`` or ``z`` of atom ``i``). Coordination numbers, linear combinations and
    callables are built in Python (:class:`Coordination`, :class:`Linear`, :class:`Custom`).

    Raises
    ------
    SimsInputError
        Unknown kind or wrong number of indices.
    """
    if isinstance(spec, CollectiveVariable):
        return spec
    kind, _, args = str(spec).partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        raise SimsInputError(f"unknown CV kind {kind!r} in {spec!r}; known: {', '.join(_KINDS)} "
                             "(e.g. 'dihedral:4,6,8,14')")
    cls, n = _KINDS[kind]
    parts = [p.strip() for p in args.split(",") if p.strip()]
    if len(parts) != n:
        raise SimsInputError(f"CV {spec!r}: {kind} needs {n} comma-separated values, got {len(parts)}")
    try:
        values = [int(parts[0]), parts[1]] if kind == "position" else [int(p) for p in parts]
    except ValueError:
        raise SimsInputError(f"CV {spec!r}: atom indices must be integers") from None
    return cls(*values)


def _array(a):
    """``a`` ready for ``torch.as_tensor``: tensors and None as given, numpy arrays copied (read-only arrays,
    frozen results, cannot back a tensor safely), anything else (lists) as float64 numpy arrays. A list
    went to torch's default dtype: float32 masses or cell in a float64 computation."""
    if a is None or isinstance(a, torch.Tensor):
        return a
    return np.array(a) if isinstance(a, np.ndarray) else np.asarray(a, dtype=np.float64)


def cv_and_inverse_mass(cv: CollectiveVariable, positions, masses, cell=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CV values, inverse CV masses and Cartesian CV gradients of a batch of frames, by autograd.

    Parameters
    ----------
    cv : CollectiveVariable
    positions : array-like
        ``(F, N, 3)`` Å (a single frame ``(N, 3)`` is taken as ``F = 1``).
    masses : array-like
        ``(N,)`` amu, all > 0.
    cell : array-like, optional
        ``(3, 3)`` or ``(F, 3, 3)`` Å for minimum-image bond vectors.

    Returns
    -------
    values : torch.Tensor
        ``(F,)`` in the CV's unit.
    inverse_mass : torch.Tensor
        ``(F,)`` ``m_xi^-1 = sum_i |grad_i xi|^2 / m_i`` in CV unit^2 / (amu Å^2) (paper eq. 27).
    gradient : torch.Tensor
        ``(F, N, 3)`` ``d xi / d r`` in CV unit / Å.

    Raises
    ------
    SimsInputError
        Bad shapes, non-finite positions, non-positive masses, atoms out of range, a CV that
        does not return one finite value per frame.

    Notes
    -----
    Frames are independent, so the gradient of the sum of the CV values over frames is the
    per-frame gradient: one backward pass serves the whole batch.
    """
    positions, masses, cell = (_array(a) for a in (positions, masses, cell))
    pos = torch.as_tensor(positions)
    pos = pos.to(torch.float64) if not pos.is_floating_point() else pos
    if pos.dim() == 2:
        pos = pos[None]
    if pos.dim() != 3 or pos.shape[-1] != 3 or pos.shape[0] == 0:
        raise SimsInputError(f"positions must have shape (frames, atoms, 3), got {tuple(pos.shape)}")
    if not bool(torch.isfinite(pos).all()):
        raise SimsInputError("positions contain NaN or inf")
    m = torch.as_tensor(masses).to(pos)
    if m.shape != pos.shape[1:2] or not bool((m > 0).all()):
        raise SimsInputError(f"masses must be ({pos.shape[1]},) values > 0 amu, got shape {tuple(m.shape)} "
                             f"with minimum {float(m.min()) if m.numel() else 'n/a'}")
    cv.check(pos.shape[1])
    c = None if cell is None else torch.as_tensor(cell).to(pos)
    pos = pos.detach().requires_grad_(True)
    with torch.enable_grad():
        xi = cv(pos, c)
        if xi.shape != pos.shape[:1]:
            raise SimsInputError(f"{cv!r} returned shape {tuple(xi.shape)}; expected one value per frame ({pos.shape[0]},)")
        (grad,) = torch.autograd.grad(xi.sum(), pos, allow_unused=True)
    grad = torch.zeros_like(pos) if grad is None else grad
    if not bool(torch.isfinite(xi).all()):
        raise SimsInputError(f"{cv!r} is not finite on some frames (e.g. frame {int(torch.nonzero(~torch.isfinite(xi))[0])})")
    inverse_mass = ((grad * grad).sum(-1) / m).sum(-1)
    return xi.detach(), inverse_mass.detach(), grad.detach()


def gradient_alignment(energy_gradient, cv_gradient) -> torch.Tensor:
    """Per frame ``|grad U . grad xi| / (|grad U| |grad xi|)``, the quantity averaged in D_s (paper eq. 45).

    Both inputs are ``(F, N, 3)``; ``grad U = -forces``. A frame where either gradient vanishes
    gives NaN (the angle is undefined), which :func:`sims.free_energy.cv_quality` skips.
    """
    gu, gx = torch.as_tensor(_array(energy_gradient)), torch.as_tensor(_array(cv_gradient))
    gu, gx = gu.reshape(gu.shape[0], -1).to(torch.float64), gx.reshape(gx.shape[0], -1).to(torch.float64)
    if gu.shape != gx.shape:
        raise SimsInputError(f"energy and CV gradients differ in shape: {tuple(gu.shape)} vs {tuple(gx.shape)}")
    norm = torch.linalg.norm(gu, dim=-1) * torch.linalg.norm(gx, dim=-1)
    dot = (gu * gx).sum(-1).abs()
    return torch.where(norm > 0, dot / torch.where(norm > 0, norm, 1.0), torch.nan)


def cv_period(cv: CollectiveVariable) -> float | None:
    """The CV's period (2 pi for a dihedral, an angle in (-pi, pi]; what a :class:`Custom` declares);
    None for a CV on a line.

    Raises
    ------
    SimsInputError
        For a :class:`Linear` combination with a periodic component (its value jumps).
    """
    return cv.period


def wrapped_difference(a, b, period: float | None):
    """``a - b`` (numpy arrays or tensors); for a periodic CV the short way round, in
    ``[-period/2, period/2)``: without it a bias on a dihedral near +-pi jumps where the angle wraps."""
    d = a - b
    return d if period is None else (d + period / 2) % period - period / 2
