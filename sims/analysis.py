"""Trajectory analysis: RDF, coordination, bond angles, MSD, diffusivities, Haven ratio, Arrhenius, VDOS.

Frames are ``ase.Atoms`` (or arrays where said). Units: Å, fs, K, eV; diffusivities in Å^2/fs
(multiply by 0.1 for cm^2/s), frequencies in THz.

Analyses configure once and ``compute(...)`` returns self, with results as read-only properties
(the freud style): ``rdf = RDF(r_max=10.0, bins=200).compute(frames); rdf.r, rdf.g``.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from ase import Atoms, units
from ase.data import atomic_numbers

from reprs.atoms import as_frames
from reprs.structure import RadialDistribution, coordination_numbers
from reprs.structure import rdf as structure_rdf

from .errors import SimsError, SimsInputError
from .neighbors import neighbor_list

__all__ = ["RDF", "coordination_numbers", "bond_angles", "bond_angle_distribution", "unwrap", "MSD",
           "DiffusionResult", "tracer_diffusivity", "collective_diffusivity", "haven_ratio", "nernst_einstein_conductivity",
           "ArrheniusResult", "SlopeChangeResult", "arrhenius_slope_change",
           "arrhenius_fit", "vdos", "vacf", "BlockAverage", "block_average"]


def _species_mask(atoms: Atoms, species: str | int | None) -> np.ndarray:
    if species is None:
        return np.ones(len(atoms), bool)
    z = atomic_numbers.get(species, species) if isinstance(species, str) else int(species)
    if isinstance(z, str):
        raise SimsInputError(f"unknown element {species!r}")
    return atoms.numbers == z


class RDF:
    """Radial distribution function, total or partial, under periodic boundaries.

    A freud-style wrapper of :func:`reprs.structure.rdf`, whose docstring states the
    normalisation: ``g_ab(r) = n_ab(r) / (N_a rho_b 4/3 pi (r_hi^3 - r_lo^3))`` with
    ``rho_b = (N_b - N_ab / N_a) / V`` (the other ``b`` atoms seen from an ``a`` atom), freud's
    ``normalization_mode="finite_size"`` for a total RDF and ``"exact"`` for two disjoint species.
    Averaged over frames.

    Parameters
    ----------
    r_max : float
        Å.
    bins : int
        Number of bins on ``[r_min, r_max)``.
    r_min : float
        Å.
    species : (str, str), optional
        ``("Si", "O")`` for a partial RDF; None for all atoms.

    Examples
    --------
    >>> rdf = RDF(r_max=8.0, bins=160).compute(frames)   # doctest: +SKIP
    >>> rdf.r, rdf.g                                    # doctest: +SKIP
    """

    def __init__(self, *, r_max: float, bins: int = 200, r_min: float = 0.0,
                 species: tuple[str, str] | None = None) -> None:
        if not 0 <= r_min < r_max or bins < 1:
            raise SimsInputError(f"need 0 <= r_min < r_max and bins >= 1, got {r_min}, {r_max}, {bins}")
        self.r_max, self.bins, self.r_min, self.species = float(r_max), int(bins), float(r_min), species
        self._result: RadialDistribution | None = None

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, Å."""
        return np.linspace(self.r_min, self.r_max, self.bins + 1)

    @property
    def r(self) -> np.ndarray:
        """Bin centres, Å."""
        e = self.edges
        return 0.5 * (e[1:] + e[:-1])

    @property
    def g(self) -> np.ndarray:
        """g(r), dimensionless."""
        if self._result is None:
            raise SimsError("call compute() first")
        return self._result.g

    @property
    def n_r(self) -> np.ndarray:
        """Running coordination number: mean number of ``b`` neighbours of an ``a`` atom within r (bin right edges)."""
        if self._result is None:
            raise SimsError("call compute() first")
        return self._result.n_r

    def compute(self, frames: Atoms | Iterable[Atoms]) -> "RDF":
        """Accumulate over ``frames`` (periodic, with cells); return self."""
        self._result = structure_rdf(as_frames(frames), r_max=self.r_max, bins=self.bins, r_min=self.r_min,
                                     species=self.species)
        return self


def bond_angles(atoms: Atoms, cutoff: float, *, center: str | None = None,
                neighbor: str | None = None) -> np.ndarray:
    """All angles ``j - i - k`` (degrees) at ``center`` atoms ``i`` between ``neighbor`` atoms within ``cutoff``.

    Vectorised: neighbours of each centre are packed into a padded ``(n_centres, max_degree)``
    table and all index pairs ``p < q`` of a row are taken at once.
    """
    mc, mn = _species_mask(atoms, center), _species_mask(atoms, neighbor)
    i, j, S = neighbor_list(atoms, cutoff)
    keep = mc[i] & mn[j]
    i, j, S = i[keep], j[keep], S[keep]
    if len(i) == 0:
        return np.zeros(0)
    vec = atoms.positions[j] - atoms.positions[i] + S @ atoms.cell[:]
    vec /= np.linalg.norm(vec, axis=1)[:, None]
    order = np.argsort(i, kind="stable")
    i, vec = i[order], vec[order]
    centres, start, deg = np.unique(i, return_index=True, return_counts=True)
    k = int(deg.max())
    slot = np.arange(len(i)) - np.repeat(start, deg)
    table = np.full((len(centres), k, 3), np.nan)
    table[np.repeat(np.arange(len(centres)), deg), slot] = vec
    p, q = np.triu_indices(k, 1)
    cos = np.einsum("cpx,cpx->cp", table[:, p], table[:, q])
    cos = cos[np.isfinite(cos)]
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def bond_angle_distribution(frames: Atoms | Iterable[Atoms], cutoff: float, *, center: str | None = None,
                            neighbor: str | None = None, bins: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histogram of :func:`bond_angles` over frames: ``(angle centres [deg], density [1/deg])``.

    Raises :class:`~sims.errors.SimsInputError` when no ``center`` atom has two ``neighbor`` atoms
    within ``cutoff`` (Å) in any frame: there is no angle to normalise by.
    """
    angles = np.concatenate([bond_angles(f, cutoff, center=center, neighbor=neighbor) for f in as_frames(frames)])
    if angles.size == 0:
        # An empty histogram normalised to density 0/0 was all NaN, whose argmax (silica_structure's
        # most probable angle) came out as the first bin centre, 1 degree.
        raise SimsInputError(f"no {center or 'atom'} has two {neighbor or 'atom'} neighbours within {cutoff} Å in "
                             f"any frame: no bond angle to histogram; use a larger cutoff (the first minimum of "
                             f"the RDF)")
    density, edges = np.histogram(angles, bins=bins, range=(0.0, 180.0), density=True)
    return 0.5 * (edges[1:] + edges[:-1]), density


def _frame_cells(cell, n_frames: int) -> np.ndarray:
    """``cell`` ``(3, 3)`` (fixed) or ``(T, 3, 3)`` (one per frame, a barostat's) as ``(T, 3, 3)``."""
    cells = np.asarray(cell, dtype=float)
    if cells.shape == (3, 3):
        return np.broadcast_to(cells, (n_frames, 3, 3))
    if cells.shape != (n_frames, 3, 3):
        raise SimsInputError(f"cell must be (3, 3) or one (3, 3) cell per frame ({n_frames}, 3, 3), got {cells.shape}")
    return cells


def _completed_cells(cells: np.ndarray, pbc) -> np.ndarray:
    """``(T, 3, 3)`` cells whose zero rows along non-periodic directions (a slab's or a wire's cell, as
    ASE stores it) are filled as ``ase.geometry.complete_cell`` fills them: unit vectors orthogonal to
    the given ones, the frame in which ASE wraps such a cell. Those directions are never unwrapped, so the
    filler only has to make the cell invertible without mixing motion across the plane of the others."""
    from ase.geometry import complete_cell

    periodic = np.asarray(pbc, bool)
    missing = np.linalg.norm(cells, axis=2) < 1e-12
    if (missing & periodic).any():
        t, d = np.argwhere(missing & periodic)[0]
        raise SimsInputError(f"periodic direction {d} has a zero cell vector (frame {t}): give its cell vector, "
                             f"or mark the direction non-periodic (a positions array counts as periodic in all "
                             f"three: pass frames with their pbc, or unwrap(positions, cell, pbc) and "
                             f"unwrapped=True)")
    if missing.any():
        # A fixed cell repeats in every frame: complete each distinct cell once.
        distinct, index = np.unique(cells.reshape(len(cells), 9), axis=0, return_inverse=True)
        cells = np.stack([complete_cell(c.reshape(3, 3)) for c in distinct])[index.ravel()]
    if (np.abs(np.linalg.det(cells)) < 1e-12).any():
        raise SimsInputError("a cell is singular (zero volume): give three independent cell vectors, zero rows "
                             "only along non-periodic directions")
    return cells


def _frac_steps(positions: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Displacements between consecutive frames in fractional coordinates of the later frame's cell
    (``cells`` completed, :func:`_completed_cells`)."""
    return np.einsum("tni,tij->tnj", np.diff(positions, axis=0), np.linalg.inv(cells[1:]))


def unwrap(positions: np.ndarray, cell: np.ndarray, pbc: Sequence[bool] = (True, True, True)) -> np.ndarray:
    """Undo jumps across periodic boundaries in a ``(T, N, 3)`` trajectory (Å).

    Between consecutive frames each atom is assumed to move less than half a cell (in fractional
    coordinates); a larger apparent step is a jump through the boundary and is removed. Frames must
    therefore be stored often enough. Positions from :class:`sims.MD` are already unwrapped.

    ``cell`` is one ``(3, 3)`` cell, or ``(T, 3, 3)``, each frame's own (constant pressure): each step
    is then taken as the minimum image in the later frame's cell (the "toroidal-view-preserving"
    scheme of von Bülow, Bullerjahn and Hummer, J. Chem. Phys. 153, 021101 (2020)), so a boundary
    crossing removes exactly the box length that the wrapping added. Rows of non-periodic directions
    may be zero (a slab's or a wire's cell); those directions are left as they are.
    """
    positions = np.asarray(positions, dtype=float)
    periodic = np.asarray(pbc, bool)
    cells = _completed_cells(_frame_cells(cell, len(positions)), periodic)
    frac = _frac_steps(positions, cells)
    frac[..., periodic] -= np.round(frac[..., periodic])
    step = np.einsum("tni,tij->tnj", frac, cells[1:])
    return np.concatenate([positions[:1], positions[:1] + np.cumsum(step, axis=0)])


def _autocorrelation(x: np.ndarray) -> np.ndarray:
    """``A(m) = <x(t) x(t + m)>`` over all time origins ``t`` of ``x`` ``(T, ...)``, elementwise, via
    a zero-padded FFT (Wiener-Khinchin, no circular wrap-around). Returns the shape of ``x``."""
    n = x.shape[0]
    f = np.fft.rfft(x, n=2 * n, axis=0)
    counts = (n - np.arange(n)).reshape((n,) + (1,) * (x.ndim - 1))
    return np.fft.irfft(f * np.conj(f), axis=0)[:n] / counts


def _msd_fft(x: np.ndarray) -> np.ndarray:
    """Per-particle, per-axis MSD of ``x`` ``(T, N, 3)`` averaged over all time origins, via FFT.

    ``MSD(m) = S1(m) - 2 S2(m)`` with ``S2`` the position autocorrelation (Wiener-Khinchin) and
    ``S1`` a running sum of squares: Calandrini et al., Collection SFN 12, 201 (2011), eq. 4.
    Returns ``(T, N, 3)``.
    """
    n = x.shape[0]
    s2 = _autocorrelation(x)
    sq = x ** 2
    total = 2 * sq.sum(axis=0)
    s1 = np.empty_like(x)
    for m in range(n):  # a loop over lags (not atoms): O(T) vector updates
        total = total - (sq[m - 1] if m else 0) - (sq[n - m] if m else 0)
        s1[m] = total / (n - m)
    return s1 - 2 * s2


class MSD:
    """Mean squared displacement with every frame as a time origin (FFT algorithm).

    Parameters
    ----------
    timestep : float
        Time between frames, fs (the MD time step times the record interval); frames that all carry
        ``info["time"]`` (fs, as :class:`sims.MD` records it) must be this far apart.
    species : str, optional
        Only these atoms (frames only: a positions array carries no elements, and a species with
        one raises :class:`~sims.errors.SimsInputError`).
    remove_drift : bool
        Measure displacements relative to the framework (default): every frame's mean displacement of
        the atoms that ``species`` leaves out (the host: Ge, P, S in LGPS) is subtracted from the selected
        atoms' displacements, the convention of kinisi (``Parser.correct_drift``, all other atoms, unweighted)
        and of pymatgen's ``DiffusionAnalyzer`` (a mass-weighted mean differs by the framework's bounded
        vibration, not in the long-time slope). False: displacements in the simulation's own frame. With
        nothing left out (``species=None``, or a positions array) there is no framework and nothing is
        subtracted.

    Notes
    -----
    Why the framework is the default reference: a diffusivity in a solid is measured against the
    crystal. A thermostat that acts on each atom (Langevin) lets the whole system's centre of mass
    random-walk with ``D_com = kT / (M gamma)``, which every atom's lab-frame displacement inherits
    (for 200 atoms of LGPS at 600 K, ``gamma = 0.02/fs``: 1e-6 cm^2/s added to D*, and ``N_Li`` times
    that to ``D_sigma``). Where the total momentum is conserved (Nose-Hoover chains, NVE) the framework
    instead recoils against the mobile ions, ``M_fw dR_fw = -M_Li dR_Li``, and the lab-frame charge-centre
    displacement is ``1 / (1 + M_Li / M_fw)`` of that relative to the host (LGPS: ``D_sigma`` 1.285
    times smaller). The relative one is also the right charge current: with the host's charge
    ``-Q_Li`` moving rigidly, ``sum_i q_i dr_i = Q_Li (dR_Li - dR_fw)``.

    Input frames are unwrapped with :func:`unwrap` (the minimum-image step between consecutive
    frames); pass ``unwrapped=True`` to ``compute`` when positions are already continuous.
    Checked when a cell is known: positions passed as unwrapped that jump by more than half the
    cell between frames raise :class:`~sims.errors.SimsInputError` (they are wrapped, or stored
    too rarely); wrapped ones whose largest step exceeds 0.4 of the cell warn (``RuntimeWarning``:
    the minimum image is about to become ambiguous). A ``species`` the structure lacks raises.
    """

    def __init__(self, *, timestep: float, species: str | None = None, remove_drift: bool = True) -> None:
        if not timestep > 0:
            raise SimsInputError(f"timestep must be > 0 fs, got {timestep}")
        self.timestep, self.species, self.remove_drift = float(timestep), species, bool(remove_drift)
        self._per_axis: np.ndarray | None = None
        self._drift_removed = False

    def compute(self, frames: Iterable[Atoms] | np.ndarray, *, cell: np.ndarray | None = None,
                unwrapped: bool = False) -> "MSD":
        """Compute from a list of frames (each with its own cell) or a ``(T, N, 3)`` array (then ``cell``,
        ``(3, 3)`` or one per frame ``(T, 3, 3)``, if not unwrapped)."""
        pos, self._drift_removed = _trajectory_array(frames, self.species, cell, unwrapped, self.timestep,
                                                     self.remove_drift)
        self._per_axis = _msd_fft(pos).mean(axis=1)
        self._n_atoms = pos.shape[1]
        return self

    @property
    def n_atoms(self) -> int:
        """Atoms whose displacements were averaged (independent series for the error estimate)."""
        if not hasattr(self, "_n_atoms"):
            raise SimsError("call compute() first")
        return self._n_atoms

    @property
    def lag(self) -> np.ndarray:
        """Lag times, fs."""
        return np.arange(len(self.per_axis)) * self.timestep

    @property
    def per_axis(self) -> np.ndarray:
        """``(T, 3)`` MSD along x, y, z, Å^2."""
        if self._per_axis is None:
            raise SimsError("call compute() first")
        return self._per_axis

    @property
    def msd(self) -> np.ndarray:
        """Total MSD, Å^2."""
        return self.per_axis.sum(axis=1)


#: Largest step between frames, as a fraction of the cell, that :func:`unwrap` takes at face value
#: without a warning (half the cell is where the minimum image becomes ambiguous).
_UNWRAP_SAFE_STEP = 0.4


def _largest_step(pos: np.ndarray, cell: np.ndarray, pbc, minimum_image: bool) -> tuple[float, int, int]:
    """Largest fractional step of any atom along a periodic axis between consecutive frames (its
    minimum image if asked): ``(step, frame, atom)``, the frame being the later of the two."""
    periodic = np.asarray(pbc, bool)
    if len(pos) < 2 or not periodic.any():
        return 0.0, 0, 0
    step = _frac_steps(pos, _completed_cells(_frame_cells(cell, len(pos)), periodic))[..., periodic]
    step = np.abs(step - np.round(step) if minimum_image else step).max(axis=2)
    t, i = np.unravel_index(int(np.argmax(step)), step.shape)
    return float(step[t, i]), int(t) + 1, int(i)


def _check_continuity(pos: np.ndarray, cell, pbc, unwrapped: bool) -> None:
    """Refuse wrapped positions passed as unwrapped; warn when frames are too far apart to unwrap."""
    if cell is None:
        return
    step, t, i = _largest_step(pos, cell, pbc, minimum_image=not unwrapped)
    if unwrapped and step > 0.5:
        # Moves of half a cell between stored frames are not physical; a wrapped coordinate
        # re-entering the cell jumps by a whole one. Either way the MSD would be wrong.
        raise SimsInputError(f"positions passed as unwrapped jump by {step:.2f} of the cell (atom {i}, frames "
                             f"{t - 1} -> {t}): they look wrapped into the cell; pass unwrapped=False (with the "
                             f"cell for arrays) to unwrap them, or store frames more often")
    if not unwrapped and step > _UNWRAP_SAFE_STEP:
        warnings.warn(f"atom {i} moves {step:.2f} of the cell between frames {t - 1} and {t} (largest step); "
                      f"near 0.5 the minimum image cannot tell a move from a boundary crossing and unwrapping "
                      f"may be wrong: store frames more often", RuntimeWarning, stacklevel=4)


def _check_frame_times(frames: Sequence[Atoms], timestep: float) -> None:
    """Refuse a ``timestep`` (fs) that is not the spacing of the frames' own ``info["time"]`` (fs, as
    :class:`sims.MD` and :func:`sims.generate.generate` record it), when every frame carries one."""
    if len(frames) < 2 or not all("time" in f.info for f in frames):
        return
    spacing = np.diff([float(f.info["time"]) for f in frames])
    if not np.allclose(spacing, timestep, rtol=1e-6, atol=0):
        # The usual slip: the MD time step given for frames stored every k steps, which divides every
        # diffusivity by k without a word.
        raise SimsInputError(f"timestep={timestep} fs, but the frames' info['time'] says they are "
                             f"{spacing.min():.6g} to {spacing.max():.6g} fs apart: give the time between stored "
                             f"frames (MD time step x record interval); frames joined from other runs must be "
                             f"evenly spaced (drop info['time'] only if they are)")


def _trajectory_array(frames, species, cell, unwrapped, timestep: float,
                      remove_drift: bool = True) -> tuple[np.ndarray, bool]:
    """Continuous ``(T, n, 3)`` positions (Å) of the selected atoms, and whether they were taken relative
    to the framework: with ``remove_drift`` (frames only, a species leaving atoms out) each frame's mean
    displacement of the atoms not selected by ``species`` is subtracted (see :class:`MSD`)."""
    if isinstance(frames, np.ndarray):
        pos = np.asarray(frames, dtype=float)
        if pos.ndim != 3 or pos.shape[2] != 3:
            raise SimsInputError(f"positions must have shape (T, N, 3), got {pos.shape}")
        if not np.isfinite(pos).all():
            # One NaN (a run that blew up) would make every lag's MSD, and so D, NaN without a word.
            t, i, _ = np.argwhere(~np.isfinite(pos))[0]
            raise SimsInputError(f"positions hold NaN or infinite values (first at frame {t}, atom {i}; "
                                 f"{int((~np.isfinite(pos).all(axis=2)).sum())} atom-frames in all): drop those "
                                 f"frames or atoms before the analysis")
        if cell is not None and not np.isfinite(np.asarray(cell, dtype=float)).all():
            raise SimsInputError("cell holds NaN or infinite values")
        if species is not None:
            # An array carries no elements: the selection would be dropped and every atom averaged.
            raise SimsInputError(f"species={species!r} selects atoms by element, which a positions array does not "
                                 f"carry; pass the frames (ase.Atoms), or select the atoms' columns yourself "
                                 f"(positions[:, mask]) and leave species unset")
        if not unwrapped and cell is None:
            raise SimsInputError("wrapped positions need the cell to be unwrapped (or pass unwrapped=True)")
        pbc, mask = (True, True, True), None
    else:
        if cell is not None:
            # Frames bring their own cells (and pbc), which would replace this one without a word.
            raise SimsInputError("cell= is for a positions array; frames carry their own cells: set each frame's "
                                 "cell and pbc (atoms.set_cell, atoms.pbc = True), or pass the positions as an array")
        frames = as_frames(frames)
        _check_frame_times(frames, timestep)
        mask = _species_mask(frames[0], species)
        if not mask.any():
            raise SimsInputError(f"no {species!r} atoms in the structure ({frames[0].get_chemical_formula()}); "
                                 f"pick a species it holds")
        # Every atom is unwrapped (the framework's drift is measured on continuous positions too).
        pos = np.stack([f.positions for f in frames])
        # Each frame's own cell: under a barostat a wrapped coordinate jumps by that frame's box length.
        cell, pbc = np.stack([f.cell[:] for f in frames]), frames[0].pbc
        if not np.asarray(pbc).any():
            cell = None
    _check_continuity(pos, cell, pbc, unwrapped)
    pos = pos if unwrapped or cell is None else unwrap(pos, cell, pbc)
    if mask is None:
        return pos, False
    if remove_drift and not mask.all():
        drift = pos[:, ~mask].mean(axis=1, keepdims=True)
        return pos[:, mask] - (drift - drift[:1]), True
    return pos[:, mask], False


@dataclass(frozen=True)
class DiffusionResult:
    """A diffusion coefficient from a linear fit ``MSD = 2 d D t + c``.

    Attributes
    ----------
    D : float
        Å^2/fs (x 0.1 for cm^2/s).
    stderr : float
        Standard error of ``D``, Å^2/fs, from the covariance of a random walk's MSD between the
        window's lags (see :func:`tracer_diffusivity`), never less than the least-squares error of
        the fit.
    dims : tuple of int
        Axes included (``(0, 1)`` for the ab-plane).
    fit_range : (float, float)
        Lag-time window of the fit, fs.
    framework_drift_removed : bool
        Whether the displacements were taken relative to a framework (``remove_drift`` with atoms
        left out by ``species``), or in the simulation's own frame.
    """

    D: float
    stderr: float
    dims: tuple[int, ...]
    fit_range: tuple[float, float]
    framework_drift_removed: bool = False


#: Steps of the coarse random walk on which :func:`_msd_slope_variance` evaluates longer trajectories.
_SLOPE_VARIANCE_STEPS = 200


@functools.lru_cache(maxsize=64)
def _msd_slope_variance(n_steps: int, lo: float, hi: float) -> float:
    """Relative variance of the least-squares slope of the all-origins MSD of one Gaussian random walk,
    fitted evenly over the lags ``lo .. hi`` (in steps) of a walk of ``n_steps`` steps: ``var(D) / D^2``
    for one series and one axis (divide by the number of independent series and axes).

    Exact for the discrete walk: with unit steps ``MSD_m = sum_t Delta_m(t)^2 / (T - m + 1)``,
    ``cov(Delta_m(t)^2, Delta_n(u)^2) = 2 overlap^2`` (Gaussian, overlap = shared steps), and writing the
    overlap as a sum over steps ``k, l`` turns the slope's variance ``sum_mn c_m c_n cov(MSD_m, MSD_n)``
    (``c`` the least-squares weights) into ``2 sum_kl G_kl^2`` with ``G_kl = sum_m c_m n_m(k, l) / (T - m + 1)``,
    ``n_m(k, l)`` the origins whose lag-``m`` interval holds both steps. The same covariance model of
    the MSD as kinisi's (McCluskey et al., J. Chem. Theory Comput. 20, 9035 (2024)), here for the even
    fit; cf. Bullerjahn, von Bülow and Hummer, J. Chem. Phys. 153, 024116 (2020). The result depends on
    the window's fractions of the run only, up to O(1 / T): walks longer than ``_SLOPE_VARIANCE_STEPS``
    are evaluated at that length with the same fractions, or longer (at most 1200 steps) where the
    window would hold fewer than 16 lags there (default window, 10-50 %: 1.521 against 1.535 in the
    limit, standard errors within 0.5 %). The old count of independent
    displacements, ``2 hi / T``, gave 1.0 for that window: errors 1.23 times too small.
    """
    if n_steps > _SLOPE_VARIANCE_STEPS:
        # Coarser, but with 16 lags at least in the window (a narrow window of a long run), up to 1200 steps.
        steps = min(n_steps, 1200, max(_SLOPE_VARIANCE_STEPS, math.ceil(16 * n_steps / (hi - lo))))
        lo, hi, n_steps = lo * steps / n_steps, hi * steps / n_steps, steps
    m = np.arange(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1)
    if len(m) < 2:  # a narrow window of a long run, coarsened: its two ends
        m = np.array([math.floor(lo), math.ceil(hi)])
    c = (m - m.mean()) / np.sum((m - m.mean()) ** 2)
    k = np.arange(n_steps)
    first, last = np.minimum.outer(k, k), np.maximum.outer(k, k)
    g = np.zeros((n_steps, n_steps))
    for lag, weight in zip(m, c / (n_steps - m + 1)):  # a loop over lags: O(T^2) each
        g += weight * np.maximum(np.minimum(first, n_steps - lag) - np.maximum(0, last - lag + 1) + 1, 0)
    return float(2.0 * np.sum(g * g))


def _fit_slope(t: np.ndarray, y: np.ndarray, d: int, fit_range, dims, n_series: int,
               drift_removed: bool) -> DiffusionResult:
    lo, hi = fit_range if fit_range is not None else (0.1 * t[-1], 0.5 * t[-1])
    if not 0 <= lo < hi:
        raise SimsInputError(f"fit range must satisfy 0 <= start < end (fs), got ({lo}, {hi})")
    if hi > t[-1] * (1 + 1e-12):
        raise SimsInputError(f"fit range ends at {hi} fs, beyond the trajectory's longest lag {t[-1]} fs "
                             f"({len(t)} frames); end the window at or below half of it, {0.5 * t[-1]} fs")
    sel = (t >= lo) & (t <= hi)
    if sel.sum() < 3:
        raise SimsInputError(f"fit range {lo}-{hi} fs holds fewer than 3 lag times")
    if hi > 0.5 * t[-1] * (1 + 1e-12):
        # Fewer than two non-overlapping time origins at the window's longest lag: a single
        # displacement per series there, whose scatter the error model below cannot see.
        warnings.warn(f"fit range ends at {hi} fs, more than half the trajectory ({t[-1]} fs): fewer than 2 "
                      f"independent time origins at its longest lag, so the standard error is unreliable; "
                      f"end the window at or below {0.5 * t[-1]} fs or run longer", RuntimeWarning, stacklevel=3)
    (slope, icpt), cov = np.polyfit(t[sel], y[sel], 1, cov=True)
    d_value = float(slope / (2 * d))
    # The MSD at neighbouring lags shares almost all its displacements, so the fit residuals say
    # little about the error. The slope's relative variance for a Gaussian random walk follows from
    # the exact covariance of the all-origins MSD between lags (_msd_slope_variance); n_series
    # independent series in d independent axes divide it. Its scale, D, is the larger MSD / (2 d t)
    # of the window's first positive lag and its last: not the fitted slope, nor the mean MSD / t over
    # the window, which come out low together with a low fit and shrink its error then (one series,
    # D = 0.004 fitted for a true 0.05, got an error of 0.013); and not the first lag's alone, which in a
    # window opening in the ballistic regime (MSD ~ t^2, MSD / t -> 0) made the error the least-squares
    # one (z-scores near 100 for Langevin particles). The larger of two noisy values overstates the
    # error of a single series (D_sigma) by about 20 %; with 16 series or more it is within a few %.
    t_fit, y_fit = t[sel], y[sel]
    first = int(np.argmax(t_fit > 0))
    scale = max(float(y_fit[first]) / float(t_fit[first]), float(y_fit[-1]) / float(t_fit[-1]), 0.0) / (2 * d)
    dt = float(t[1] - t[0])
    rel_var = _msd_slope_variance(len(t) - 1, float(t_fit[0]) / dt, float(t_fit[-1]) / dt)
    stderr = max(float(np.sqrt(cov[0, 0]) / (2 * d)), scale * math.sqrt(rel_var / (d * n_series)))
    return DiffusionResult(D=d_value, stderr=stderr, dims=tuple(dims), fit_range=(float(lo), float(hi)),
                           framework_drift_removed=drift_removed)


def tracer_diffusivity(msd: MSD, *, dims: Sequence[int] = (0, 1, 2),
                       fit_range: tuple[float, float] | None = None) -> DiffusionResult:
    """Tracer diffusivity ``D* = slope(MSD_dims) / (2 d)`` from a computed :class:`MSD`.

    ``dims=(0, 1)`` gives the in-plane (ab) value, ``(2,)`` the one along c. The default fit
    window is 10 % to 50 % of the longest lag (short times are ballistic, long ones noisy).

    The fit weighs the lags evenly. Its standard error is that of this fit for ``N`` independent
    Gaussian random walks: relative variance ``F / (d N)``, ``F`` from the exact covariance of the
    all-origins MSD between lags (:func:`_msd_slope_variance`, the covariance model kinisi uses;
    ``F = 1.52`` for the default window), applied to the larger ``MSD(t) / (2 d t)`` of the window's
    first positive lag and its last (in a window that opens in the ballistic regime the first is far
    below ``D*``). Calibration (tests/sims/test_analysis.py): on random walks of 16 atoms the spread
    of ``D*`` over 1000 seeds is 0.97 of the RMS stated error (the earlier count of independent
    displacements gave 1.20); a single-series ``D_sigma``'s error is conservative, RMS z-score 0.76;
    a window opening in the ballistic regime (Langevin velocities, relaxation time 50 fs, window 0 to
    1000 fs, 40 runs of 16 atoms) gives an RMS z-score of 1.3 for ``D*``.
    The least-squares error of the fit, which treats the strongly correlated MSD points as
    independent, understated the collective one up to a hundredfold. kinisi's covariance-weighted
    fit is the more efficient estimator: on the same walks its errors are about 0.8 of ours for
    ``D*`` and 0.45 for ``D_sigma`` (tests/sims/test_diffusion_kinisi.py).

    Raises :class:`~sims.errors.SimsInputError` for a window outside the trajectory; warns
    (``RuntimeWarning``) when the window ends beyond half the trajectory, where fewer than two
    independent time origins remain and the standard error means little.
    """
    dims = tuple(int(x) for x in dims)
    return _fit_slope(msd.lag, msd.per_axis[:, list(dims)].sum(axis=1), len(dims), fit_range, dims, msd.n_atoms,
                      msd._drift_removed)


def collective_diffusivity(frames: Iterable[Atoms] | np.ndarray, *, timestep: float,
                           charges: Sequence[float] | None = None, species: str | None = None,
                           dims: Sequence[int] = (0, 1, 2), cell: np.ndarray | None = None,
                           unwrapped: bool = False, fit_range: tuple[float, float] | None = None,
                           remove_drift: bool = True) -> DiffusionResult:
    """Collective (charge) diffusivity ``D_sigma = <|sum_i z_i dr_i(t)|^2> / (2 d t sum_i z_i^2)``.

    With equal charges this is the centre-of-mass diffusivity times N; ``D* / D_sigma`` is the
    Haven ratio (:func:`haven_ratio`), 1 for uncorrelated hops. The displacement of the charge
    centre has a single time series, so its MSD uses every time origin too. ``timestep`` (fs) is
    the time between frames, checked against their ``info["time"]`` as in :class:`MSD`.

    ``remove_drift`` (default True): displacements relative to the framework, the atoms ``species``
    leaves out, as :class:`MSD` takes them (see there why; kinisi's ``JumpDiffusionAnalyzer`` does the
    same). Use the same setting for ``D*`` and ``D_sigma`` of one Haven ratio: under momentum-conserving
    dynamics the lab-frame ``D_sigma`` of LGPS's Li is ``(1 + M_Li / M_fw)^-2 = 0.78`` of the relative one.
    """
    if not timestep > 0:
        raise SimsInputError(f"timestep must be > 0 fs, got {timestep}")
    pos, drift_removed = _trajectory_array(frames, species, cell, unwrapped, float(timestep), remove_drift)
    z = np.ones(pos.shape[1]) if charges is None else np.asarray(charges, dtype=float)
    if z.shape != (pos.shape[1],) or not np.isfinite(z).all():
        raise SimsInputError(f"need one finite charge per selected atom ({pos.shape[1]}), got {z.shape}: {charges!r}")
    dims = tuple(int(x) for x in dims)
    dipole = (z[None, :, None] * pos).sum(axis=1, keepdims=True)  # (T, 1, 3)
    per_axis = _msd_fft(dipole)[:, 0, :] / (z ** 2).sum()
    t = np.arange(pos.shape[0]) * float(timestep)
    return _fit_slope(t, per_axis[:, list(dims)].sum(axis=1), len(dims), fit_range, dims, 1, drift_removed)


def haven_ratio(tracer: DiffusionResult, collective: DiffusionResult) -> tuple[float, float]:
    """Haven ratio ``H = D* / D_sigma`` and its first-order propagated standard error.

    Warns (``RuntimeWarning``) when either diffusivity has a relative error above 20 %: then the
    ratio's distribution is skewed and the linearised error understates how far ``H`` may be from
    its true value (a single-series ``D_sigma`` from a short run is the usual case): run longer, or
    average ``D_sigma`` over independent runs first.

    The error treats ``D*`` and ``D_sigma`` as independent. From one trajectory they are positively
    correlated (``D_sigma`` contains every atom's own displacement), so the error is usually too large:
    with a single mobile atom ``H`` is exactly 1 yet the error is ``sqrt(2)`` times the relative one.
    For ``N`` independent walkers ``cov(D*, D_sigma) = var(D*)`` (the distinct terms of ``D_sigma`` are
    uncorrelated with the self ones), so the stated error is ``sqrt((N + 1) / (N - 1))`` times the true
    one: 2.5 % too large for LGPS's 40 Li of the 2 x 2 x 1 cell. Correlated hops change that covariance
    in ways only the data (independent runs) can measure, so no correction is applied.

    Raises :class:`~sims.errors.SimsInputError` when the two were fitted over different axes
    (``dims``): in an anisotropic conductor (LGPS, fast along c) ``D_c / D_sigma,xyz`` is not a
    Haven ratio; or when one was taken relative to a framework and the other not
    (``framework_drift_removed``): under momentum-conserving dynamics LGPS's lab-frame ``D_sigma`` is
    0.78 of the framework-relative one.
    """
    if tuple(tracer.dims) != tuple(collective.dims):
        # A ratio of an ab-plane or c-axis D* over the 3-D D_sigma (or the reverse) was returned as H
        # without a word; for a 1-D conductor it is off by the anisotropy, not by correlation.
        raise SimsInputError(f"D* was fitted over axes {tracer.dims}, D_sigma over {collective.dims}: the Haven "
                             f"ratio compares the same axes; pass dims={tracer.dims} to collective_diffusivity "
                             f"(or the same dims to tracer_diffusivity)")
    if tracer.framework_drift_removed != collective.framework_drift_removed:
        frame = {True: "relative to the framework", False: "in the simulation's frame"}
        raise SimsInputError(f"D* was taken {frame[tracer.framework_drift_removed]}, D_sigma "
                             f"{frame[collective.framework_drift_removed]}: the Haven ratio needs both in one frame; "
                             "pass the same frames, species and remove_drift to MSD and collective_diffusivity")
    h = tracer.D / collective.D
    rel = np.array([tracer.stderr / abs(tracer.D), collective.stderr / abs(collective.D)])
    if (rel > 0.2).any():
        warnings.warn(f"relative errors of D* and D_sigma are {rel[0]:.0%} and {rel[1]:.0%}: the first-order "
                      "error of their ratio is unreliable above 20 %; run longer or average D_sigma over "
                      "independent runs", RuntimeWarning, stacklevel=2)
    err = abs(h) * float(np.hypot(*rel))
    return float(h), float(err)


def nernst_einstein_conductivity(d_sigma: float, *, n_ions: int, volume: float, temperature: float,
                                 charge: float = 1.0) -> float:
    """Ionic conductivity (mS/cm) from the charge diffusivity: ``sigma = N (z e)^2 D_sigma / (V kB T)``.

    ``d_sigma`` (Å^2/fs) from :func:`collective_diffusivity` over the ``n_ions`` mobile ions of
    charge ``z = charge`` (elementary charges) in ``volume`` (Å^3) at ``temperature`` (K). With the
    tracer ``D*`` instead this is the Nernst-Einstein estimate that assumes a Haven ratio of 1.
    Formula: e.g. Marcolongo & Marzari, Phys. Rev. Mater. 1, 025402 (2017), eq. 3.
    """
    if n_ions < 1 or not _positive_finite(np.array([volume, temperature])):
        raise SimsInputError(f"need n_ions >= 1, finite volume > 0 Å^3 and temperature > 0 K, got {n_ions}, {volume}, "
                             f"{temperature}")
    if not (math.isfinite(d_sigma) and math.isfinite(charge)):  # NaN came back as a NaN conductivity
        raise SimsInputError(f"d_sigma (Å^2/fs) and charge must be finite, got {d_sigma}, {charge}")
    from scipy import constants  # e and kB exact in the 2019 SI (ase.units still holds CODATA 2014)

    sigma = n_ions * (charge * constants.e) ** 2 * d_sigma * 1e-5 / (volume * 1e-30 * constants.k * temperature)  # S/m
    return 10.0 * sigma


def _positive_finite(*arrays: np.ndarray) -> bool:
    """True when every entry of every array is finite and > 0."""
    return all(bool((np.isfinite(a) & (a > 0)).all()) for a in arrays)


@dataclass(frozen=True)
class ArrheniusResult:
    """``D = D0 exp(-Ea / (kB T))``: activation energy ``Ea`` (eV), prefactor ``D0`` (units of D), standard errors."""

    Ea: float
    Ea_err: float
    D0: float
    D0_err: float


def _weighted_lstsq(design: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, float, np.ndarray]:
    """Least squares of ``y ~ design @ coef`` with weights ``w = 1 / sigma_y``: ``(coef, chi2, cov)``.

    Without weights (``w=None``, no stated errors) ``cov`` is ``(A^T A)^-1 chi2 / dof``, the errors from
    the residuals alone. With them it is the stated errors' propagation ``(A^T W^2 A)^-1`` scaled by
    ``max(1, chi2 / dof)`` (the Birge ratio, applied only upward as the Particle Data Group scales
    errors of inconsistent data: Review of Particle Physics, Introduction, "Unconstrained averaging",
    scale factor ``S = sqrt(chi2 / dof)`` where above 1): the scatter sets
    the errors when it exceeds the stated ones (errors understated, or a model that misses the data),
    and the stated errors stay the floor when the scatter happens to be small (with a handful of
    temperatures ``chi2 / dof`` alone is too noisy to shrink them by).
    """
    stated = w is not None
    w = w if stated else np.ones_like(y)
    a = design * w[:, None]
    coef, *_ = np.linalg.lstsq(a, y * w, rcond=None)
    chi2 = float(np.sum((a @ coef - y * w) ** 2))
    birge = chi2 / (len(y) - design.shape[1])
    return coef, chi2, np.linalg.inv(a.T @ a) * (max(1.0, birge) if stated else birge)


def arrhenius_fit(temperatures: Sequence[float], values: Sequence[float],
                  errors: Sequence[float] | None = None) -> ArrheniusResult:
    """Weighted least-squares fit of ``ln D = ln D0 - Ea / (kB T)``.

    Errors of ``D`` become errors of ``ln D`` (``sigma / D``) used as weights, and the parameter
    errors are their propagation scaled by ``max(1, chi2 / dof)`` (:func:`_weighted_lstsq`, as
    :func:`arrhenius_slope_change` scales its own): points scattered more than their errors say
    widen the errors instead of being ignored. Without errors the parameter errors come from the
    residuals alone (``chi2 / dof`` with unit weights).
    """
    t = np.asarray(temperatures, dtype=float)
    d = np.asarray(values, dtype=float)
    if t.shape != d.shape or t.ndim != 1 or len(t) < 3 or not _positive_finite(t, d):
        # NaN passed the sign checks: a NaN value gave NaN parameters, a NaN temperature a bare
        # LinAlgError, and an infinite temperature was fitted as a point at 1/T = 0.
        raise SimsInputError(f"need >= 3 finite temperatures > 0 K and finite values > 0 of the same length, got "
                             f"{temperatures!r} and {values!r}")
    x = -1.0 / (units.kB * t)
    y = np.log(d)
    design = np.column_stack([x, np.ones_like(x)])
    if errors is None:
        (ea, ln_d0), _, cov = _weighted_lstsq(design, y, None)
    else:
        err = np.asarray(errors, dtype=float)
        if err.shape != d.shape or not (np.isfinite(err) & (err > 0)).all():
            raise SimsInputError(f"errors must be finite and > 0, one per value (as the values' units), got {errors!r}; "
                                 "leave errors=None to take the uncertainties from the residuals")
        (ea, ln_d0), _, cov = _weighted_lstsq(design, y, d / err)  # weights 1 / sigma_lnD
    d0 = float(np.exp(ln_d0))
    return ArrheniusResult(Ea=float(ea), Ea_err=float(np.sqrt(cov[0, 0])), D0=d0, D0_err=float(d0 * np.sqrt(cov[1, 1])))


@dataclass(frozen=True)
class SlopeChangeResult:
    """An Arrhenius line with a kink at ``t_break`` (K) against one straight line.

    ``Ea_low`` / ``Ea_high`` (eV, with standard errors) are the activation energies below and
    above ``t_break``; ``F`` and ``p_value`` the F-test of the kink (one extra parameter): a small
    ``p_value`` says one straight line does not describe the data within their errors.
    """

    t_break: float
    Ea_low: float
    Ea_low_err: float
    Ea_high: float
    Ea_high_err: float
    F: float
    p_value: float


def arrhenius_slope_change(temperatures: Sequence[float], values: Sequence[float], errors: Sequence[float], *,
                           t_break: float) -> SlopeChangeResult:
    """Test for a change of activation energy at ``t_break`` (K), as claimed for Li in LGPS near 400 K.

    Weighted least squares (weights ``D / sigma_D``, as :func:`arrhenius_fit`) of
    ``ln D = a - Ea_high x - dEa max(0, x - x_b)`` with ``x = 1 / (kB T)``: a continuous line that
    bends at ``x_b = 1 / (kB t_break)``, so ``Ea_low = Ea_high + dEa``. Against the straight line
    (``dEa = 0``) the extra parameter is judged by ``F = (chi2_line - chi2_kink) / (chi2_kink / (n - 3))``
    and its F(1, n - 3) tail probability (the nested-model F-test, e.g. Bevington & Robinson,
    *Data Reduction and Error Analysis*, ch. 11). The errors of ``Ea_low`` and ``Ea_high`` are the
    stated errors' propagation scaled by ``max(1, chi2_kink / (n - 3))``, as :func:`arrhenius_fit`'s.
    ``t_break`` must be chosen before looking at the data; scanning it for the smallest ``p_value``
    invalidates the p-value.

    Raises :class:`~sims.errors.SimsInputError` unless at least 2 temperatures lie on each side of
    ``t_break`` and at least 5 in all (three parameters and two residual degrees of freedom).
    """
    from scipy import stats

    t = np.asarray(temperatures, dtype=float)
    d = np.asarray(values, dtype=float)
    err = np.asarray(errors, dtype=float)
    if not (t.shape == d.shape == err.shape) or t.ndim != 1 or not _positive_finite(t, d, err):
        raise SimsInputError("need finite temperatures > 0 K, values > 0 and errors > 0 of the same length, got "
                             f"{temperatures!r}, {values!r}, {errors!r}")
    if not math.isfinite(t_break):
        raise SimsInputError(f"t_break must be a finite temperature in K, got {t_break}")
    below, above = int((t < t_break).sum()), int((t > t_break).sum())
    if below < 2 or above < 2 or len(t) < 5:
        raise SimsInputError(f"need >= 2 temperatures on each side of t_break = {t_break} K and >= 5 in all, got "
                             f"{below} below, {above} above")
    x = 1.0 / (units.kB * t)
    y, w = np.log(d), d / err
    hinge = np.maximum(0.0, x - 1.0 / (units.kB * t_break))
    line = np.column_stack([np.ones_like(x), -x])
    kink = np.column_stack([line, -hinge])

    _, chi2_line, _ = _weighted_lstsq(line, y, w)
    # The kinked line's covariance scaled by its reduced chi^2 where above 1 (as arrhenius_fit's).
    coef, chi2_kink, cov = _weighted_lstsq(kink, y, w)
    dof = len(t) - 3
    f_stat = (chi2_line - chi2_kink) / (chi2_kink / dof) if chi2_kink > 0 else math.inf
    ea_low_err = float(np.sqrt(cov[1, 1] + cov[2, 2] + 2 * cov[1, 2]))
    return SlopeChangeResult(t_break=float(t_break), Ea_low=float(coef[1] + coef[2]), Ea_low_err=ea_low_err,
                             Ea_high=float(coef[1]), Ea_high_err=float(np.sqrt(cov[1, 1])), F=float(f_stat),
                             p_value=float(stats.f.sf(f_stat, 1, dof)))


def _velocities(velocities) -> np.ndarray:
    """``velocities`` as a float ``(T, N, 3)`` array with ``T >= 2``, all finite, or :class:`SimsInputError`."""
    v = np.asarray(velocities, dtype=float)
    if v.ndim != 3 or v.shape[-1] != 3 or v.shape[0] < 2:
        raise SimsInputError(f"velocities must have shape (T, N, 3) with T >= 2 frames, got {v.shape}")
    if not np.isfinite(v).all():  # one NaN would make the whole spectrum NaN
        raise SimsInputError("velocities hold NaN or infinite values")
    return v


def _atom_weights(masses, n_atoms: int) -> np.ndarray:
    """Per-atom weights of a spectrum: ``masses`` (one finite value > 0 per atom), or ones."""
    w = np.ones(n_atoms) if masses is None else np.asarray(masses, dtype=float)
    if w.shape != (n_atoms,):  # one mass would broadcast over every atom without a word
        raise SimsInputError(f"masses must hold one value per atom ({n_atoms}), got shape {w.shape}")
    if not (np.isfinite(w) & (w > 0)).all():
        raise SimsInputError(f"masses must be finite and > 0 amu, got {w.tolist()[:10]}")
    return w


def vdos(velocities: np.ndarray, *, timestep: float,
         masses: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational density of states from the velocity autocorrelation (Wiener-Khinchin).

    Parameters
    ----------
    velocities : numpy.ndarray
        ``(T, N, 3)`` in any unit (the result is normalised).
    timestep : float
        Time between frames, fs.
    masses : sequence of float, optional
        Mass-weight the atoms (gives the kinetic-energy spectrum).

    Returns
    -------
    freq : numpy.ndarray
        THz (cycles per ps).
    dos : numpy.ndarray
        Normalised so that ``sum(dos) * dfreq = 1``, 1/THz.

    Raises
    ------
    SimsInputError
        Velocities of another shape or non-finite, or constant in time (all zero, or a rigid drift: the
        spectrum would be 0/0), a timestep that is not finite and > 0, masses that are not one finite
        value > 0 per atom.
    """
    v = _velocities(velocities)
    if not (math.isfinite(timestep) and timestep > 0):  # a negative one gave negative frequencies
        raise SimsInputError(f"timestep must be a finite value > 0 fs, got {timestep}")
    w = _atom_weights(masses, v.shape[1])
    v = v - v.mean(axis=0)  # drop the static part (a drifting frame, not a vibration)
    power = (np.abs(np.fft.rfft(v, axis=0)) ** 2 * w[None, :, None]).sum(axis=(1, 2))
    if not power.sum() > 0:
        # 0/0 made every bin NaN with only numpy's RuntimeWarning (as vacf refuses all-zero velocities)
        raise SimsInputError("the velocities do not change in time (all zero or a constant drift): no vibration "
                             "to normalise a spectrum by")
    freq = np.fft.rfftfreq(v.shape[0], d=timestep * 1e-3)  # fs -> ps
    return freq, power / (power.sum() * (freq[1] - freq[0]))


def vacf(velocities: np.ndarray, *, max_lag: int, masses: Sequence[float] | None = None) -> np.ndarray:
    """Normalised velocity autocorrelation ``C(k) / C(0)``, ``k = 0 .. max_lag`` frames.

    ``C(k) = sum_i w_i <v_i(t) . v_i(t + k)>``, averaged over every time origin ``t`` with ``t + k``
    inside the trajectory (FFT, :func:`_autocorrelation`), ``w_i`` the masses or 1.

    Parameters
    ----------
    velocities : numpy.ndarray
        ``(T, N, 3)``, any unit (the result is normalised), frames evenly spaced in time.
    max_lag : int
        Last lag, in frames; at most ``T - 1`` (long lags have few origins: keep ``max_lag`` well
        below ``T`` for a converged estimate).
    masses : sequence of float, optional
        Mass-weight the atoms (a kinetic-energy autocorrelation).

    Returns
    -------
    numpy.ndarray
        ``(max_lag + 1,)``, first value 1.

    Raises
    ------
    SimsInputError
        Velocities of another shape, non-finite or all zero, ``max_lag`` outside ``[1, T - 1]``, masses
        that are not one finite value > 0 per atom.
    """
    v = _velocities(velocities)
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or not 1 <= max_lag <= v.shape[0] - 1:
        raise SimsInputError(f"max_lag must be an integer in [1, {v.shape[0] - 1}] frames, got {max_lag!r}")
    w = _atom_weights(masses, v.shape[1])
    c = (_autocorrelation(v)[: max_lag + 1] * w[None, :, None]).sum(axis=(1, 2))
    if not c[0] > 0:
        raise SimsInputError("the velocities are all zero: no autocorrelation to normalise")
    return c / c[0]


@dataclass(frozen=True)
class BlockAverage:
    """Mean of a correlated time series with its standard error from block means.

    Attributes
    ----------
    mean : float
        Mean of the samples used (the last ``n_blocks * block_size``), units of the series.
    sem : float
        Standard error of ``mean``: ``std(block means, ddof=1) / sqrt(n_blocks)``.
    n_blocks, block_size : int
        Blocks and samples per block.
    drift : float
        Mean of the second half of the blocks minus that of the first half (an equilibration
        check: compare with ``2 sem``; an odd middle block is left out).
    """

    mean: float
    sem: float
    n_blocks: int
    block_size: int
    drift: float


def block_average(series: Sequence[float] | np.ndarray, *, n_blocks: int = 10) -> BlockAverage:
    """Block average of a time series (Flyvbjerg & Petersen, J. Chem. Phys. 91, 461 (1989)).

    The samples are cut into ``n_blocks`` contiguous blocks of equal size; the block means are
    close to independent once a block is much longer than the series' correlation time, so their
    scatter gives the standard error of the mean, which the per-sample ``std / sqrt(n)`` would
    underestimate by ``sqrt(2 tau_int)`` for correlated samples. When ``len(series)`` is not a
    multiple of ``n_blocks`` the first samples (nearest to the equilibration) are dropped.

    Parameters
    ----------
    series : array_like
        ``(n,)`` samples at equal time intervals, finite.
    n_blocks : int
        At least 2 and at most ``n``. Few long blocks (10-20) are safer than many short ones.

    Returns
    -------
    BlockAverage

    Raises
    ------
    SimsInputError
        A series that is not one-dimensional and finite, ``n_blocks`` not an integer in ``[2, n]``.
    """
    x = np.asarray(series, dtype=float)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise SimsInputError(f"series must be a 1-D array of finite samples, got shape {x.shape}"
                             + ("" if x.ndim != 1 else " with non-finite entries"))
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or not 2 <= n_blocks <= len(x):
        raise SimsInputError(f"n_blocks must be an integer in [2, {len(x)}] (the number of samples), got {n_blocks!r}")
    size = len(x) // n_blocks
    means = x[len(x) - n_blocks * size:].reshape(n_blocks, size).mean(axis=1)
    half = n_blocks // 2
    return BlockAverage(mean=float(means.mean()), sem=float(means.std(ddof=1) / math.sqrt(n_blocks)),
                        n_blocks=int(n_blocks), block_size=int(size),
                        drift=float(means[n_blocks - half:].mean() - means[:half].mean()))
