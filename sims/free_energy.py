"""Free-energy profiles along a CV and the exact activation free energy they approximate.

The usual estimate of a barrier, the free-energy profile's maximum minus the reactant minimum
(here "FEP barrier"), is not a free-energy difference and depends on the collective variable.
The activation free energy that does not (Dietschreit, Diestler, Hulm, Ochsenfeld &
Gómez-Bombarelli, J. Chem. Phys. 157, 084113 (2022), arXiv:2206.02893) is

    dA‡(A -> B) = -RT ln( rho(z‡) lambda_xi / P_A )
    lambda_xi  = sqrt( h^2 <m_xi^-1>_z‡ / (2 pi k_B T) )
    dA         = RT ln( P_A / P_B )

with ``rho`` the normalised CV density (1 / CV unit), ``P_A`` and ``P_B`` the probabilities of
``xi < z‡`` and ``xi > z‡``, and ``<m_xi^-1>_z‡`` the inverse CV mass (:mod:`sims.cv`, paper eq.
27) averaged over frames on the dividing surface. ``rho lambda`` is dimensionless, so the barrier
is a true free-energy difference; it is the one whose Eyring rate ``(k_B T / h) exp(-dA‡/RT)`` is the
transition-state-theory rate through ``z‡``. The FEP estimates beside it are
``A(z‡) - min_{z<z‡} A(z)`` (forward), ``A(z‡) - min_{z>z‡} A(z)`` (backward) with
``A(z) = -RT ln rho(z)``. The CV-quality criterion ``D_s(z)`` of paper eq. 45 is
:func:`cv_quality`.

Conventions (checked against the authors' tutorial, learningmatter-mit/Tutorial_ActivationFreeEnergy,
whose ``activation_freeE`` works in SI units with ``m_xi^-1`` in CV unit^2 / (amu Å^2)):
constants are CODATA values from :mod:`scipy.constants`; ``m_xi^-1`` is converted to
CV unit^2 / (kg m^2), which makes ``lambda_xi`` come out in CV units. ``rho(z‡)`` and
``<m_xi^-1>_z‡`` are estimated from the frames in a window one bin wide centred on ``z‡`` (not
from the grid bin that happens to hold it), and ``P_A``, ``P_B`` from all frames on either side
(the tutorial drops the transition-state bin from both; the difference vanishes with the bin width).

``lambda_xi`` takes the square root of the averaged inverse mass, as the paper and its tutorial do.
The transition-state-theory flux through ``z‡`` strictly averages ``sqrt(m_xi^-1)`` instead; the two
agree where ``m_xi^-1`` is constant on the dividing surface (Cartesian coordinates, linear
combinations of them, distances between two atoms) and differ by Jensen's inequality elsewhere.

Error bars are bootstrap standard deviations (frames, or blocks of consecutive frames for
correlated time series, resampled with replacement; the transition-state location held at its
full-data value). Given ``weights``, these are held fixed, which for MBAR weights leaves out the
uncertainty of the window free energies (about half the error of a reaction free energy in
tests/sims/test_umbrella.py); given umbrella samples as ``mbar=``, each window's samples are
resampled and MBAR re-solved for every replicate.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> z = np.concatenate([rng.normal(-1.0, 0.4, 60000), rng.normal(1.0, 0.4, 40000)])
>>> res = activation_free_energy(z, inverse_mass=np.ones_like(z), temperature=300, bins=80, ts=0.0)
>>> round(res.reaction, 1)   # RT ln(0.6 / 0.4) at 300 K
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from scipy import constants

from reprs.atoms import as_frames
from reprs.fileio import read_frames, save_figure

from .errors import SimsInputError

__all__ = ["ENERGY_UNITS", "FreeEnergyProfile", "ActivationFreeEnergy", "free_energy_profile",
           "activation_free_energy", "de_broglie_length", "cv_quality", "free_energy_from_frames"]

#: molar gas constant divided by these gives RT in each unit (J/mol per unit)
ENERGY_UNITS = {"kJ/mol": 1000.0, "kcal/mol": 4184.0, "eV": constants.e * constants.N_A}


def _rt(temperature: float, units: str) -> float:
    """RT in ``units`` at ``temperature`` (K)."""
    if units not in ENERGY_UNITS:
        raise SimsInputError(f"unknown energy unit {units!r}; known: {', '.join(ENERGY_UNITS)}")
    return constants.R * temperature / ENERGY_UNITS[units]


def de_broglie_length(inverse_mass, temperature: float):
    """``lambda_xi = sqrt(h^2 m_xi^-1 / (2 pi k_B T))`` in CV units (arXiv:2206.02893, Sec. II).

    Parameters
    ----------
    inverse_mass : float or array
        ``<m_xi^-1>`` in CV unit^2 / (amu Å^2) (``1/m`` for a Cartesian coordinate in Å).
    temperature : float
        K.

    Examples
    --------
    >>> round(float(de_broglie_length(1.0, 300.0)), 4)   # one amu at 300 K, Å
    1.008
    """
    amu_angstrom2 = constants.physical_constants["atomic mass constant"][0] * 1e-20   # kg m^2
    si = np.asarray(inverse_mass, dtype=np.float64) / amu_angstrom2
    return np.sqrt(constants.h ** 2 * si / (2 * np.pi * constants.k * temperature))


def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class FreeEnergyProfile:
    """A free-energy profile ``A(z) = -RT ln rho(z)`` on a grid of bins.

    Attributes
    ----------
    edges : numpy.ndarray
        ``(B + 1,)`` bin edges, CV unit.
    centers : numpy.ndarray
        ``(B,)`` bin centres, CV unit.
    density : numpy.ndarray
        ``(B,)`` normalised CV density ``rho(z)``, 1 / CV unit (integrates to 1 over the grid).
    free_energy : numpy.ndarray
        ``(B,)`` ``A(z)`` in ``units``, shifted so that its minimum is 0; NaN in empty bins.
    error : numpy.ndarray
        ``(B,)`` bootstrap standard deviation of ``-RT ln rho(z)`` in each bin (the error of the
        unshifted profile, so it does not include the uncertainty of the minimum); NaN where
        undefined.
    temperature : float
        K.
    units : str
        Energy unit of ``free_energy`` and ``error``.
    offset : float
        ``-RT ln rho`` at the minimum, in ``units`` (rho in 1 / CV unit): add it to
        ``free_energy`` for the unshifted ``-RT ln rho(z)``.
    """

    edges: np.ndarray
    centers: np.ndarray
    density: np.ndarray
    free_energy: np.ndarray
    error: np.ndarray
    temperature: float
    units: str
    offset: float

    def plot(self, path: str | Path, *, ts: float | None = None, cv_label: str = "z") -> Path:
        """Write the profile with its error band to ``path`` (any matplotlib format); return the path."""
        # A Figure without pyplot: no global state, and the user's matplotlib backend stays as it was.
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5, 3.5))
        ax = fig.add_subplot()
        ax.plot(self.centers, self.free_energy, color="C0")
        ax.fill_between(self.centers, self.free_energy - self.error, self.free_energy + self.error,
                        color="C0", alpha=0.3, linewidth=0)
        if ts is not None:
            ax.axvline(ts, color="k", linestyle=":", label="z‡")
            ax.legend(frameon=False)
        ax.set_xlabel(cv_label)
        ax.set_ylabel(f"A(z) / {self.units}")
        fig.tight_layout()
        return save_figure(fig, path)


@dataclass(frozen=True)
class ActivationFreeEnergy:
    """Exact reaction and activation free energies along a CV, with the FEP estimates beside them.

    All energies are in ``units``; ``*_error`` are bootstrap standard deviations.

    Attributes
    ----------
    reaction : float
        ``dA = A_B - A_A = RT ln(P_A / P_B)`` (J. Chem. Phys. 156, 114105 (2022)).
    forward, backward : float
        Exact activation free energies A -> B and B -> A, ``-RT ln(rho(z‡) lambda_xi / P_A)``
        and the same with ``P_B`` (arXiv:2206.02893, Sec. II).
    reaction_fep : float
        Difference of the profile's minima, ``min_{z>z‡} A - min_{z<z‡} A``.
    forward_fep, backward_fep : float
        ``A(z‡)`` minus the reactant (product) minimum of the profile.
    ts : float
        Dividing surface ``z‡``, CV unit (reactant A is ``xi < z‡``).
    p_a, p_b : float
        Probabilities of the two sides.
    rho_ts : float
        ``rho(z‡)``, 1 / CV unit.
    inverse_mass_ts : float
        ``<m_xi^-1>_z‡``, CV unit^2 / (amu Å^2).
    lambda_xi : float
        CV unit.
    temperature : float
        K.
    units, cv_unit : str
    n_samples : int
    profile : FreeEnergyProfile
    """

    reaction: float
    reaction_error: float
    forward: float
    forward_error: float
    backward: float
    backward_error: float
    reaction_fep: float
    reaction_fep_error: float
    forward_fep: float
    forward_fep_error: float
    backward_fep: float
    backward_fep_error: float
    ts: float
    p_a: float
    p_a_error: float
    p_b: float
    rho_ts: float
    rho_ts_error: float
    inverse_mass_ts: float
    lambda_xi: float
    lambda_xi_error: float
    temperature: float
    units: str
    cv_unit: str
    n_samples: int
    profile: FreeEnergyProfile = field(repr=False)

    def table(self) -> str:
        """The results as a small plain-text table (exact beside FEP, with error bars)."""
        u = self.units
        rows = [("reaction dA", self.reaction, self.reaction_error, self.reaction_fep, self.reaction_fep_error),
                ("forward dA‡ (A->B)", self.forward, self.forward_error, self.forward_fep, self.forward_fep_error),
                ("backward dA‡ (B->A)", self.backward, self.backward_error, self.backward_fep, self.backward_fep_error)]
        out = [f"{'quantity':<22}{'exact / ' + u:>24}{'FEP / ' + u:>24}"]
        out += [f"{name:<22}{f'{a:.2f} ± {da:.2f}':>24}{f'{b:.2f} ± {db:.2f}':>24}" for name, a, da, b, db in rows]
        out.append(f"z‡ = {self.ts:.4g} {self.cv_unit}   P_A = {self.p_a:.4f} ± {self.p_a_error:.4f}   "
                   f"P_B = {self.p_b:.4f}   lambda_xi = {self.lambda_xi:.4g} {self.cv_unit}   T = {self.temperature:g} K")
        return "\n".join(out)


def _check_temperature(temperature) -> float:
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise SimsInputError(f"temperature must be a finite value > 0 K, got {temperature}")
    return t


def _check_samples(cv, weights, inverse_mass=None):
    z = np.asarray(cv, dtype=np.float64)
    if z.ndim != 1 or z.size < 2:
        raise SimsInputError(f"cv must be a 1-D array of at least 2 samples, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise SimsInputError(f"cv has {int((~np.isfinite(z)).sum())} NaN or inf values (first at sample "
                             f"{int(np.flatnonzero(~np.isfinite(z))[0])})")
    if weights is None:
        w = np.ones_like(z)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != z.shape:
            raise SimsInputError(f"weights must match the samples: got shape {w.shape} for {z.size} samples")
        if not np.isfinite(w).all():
            raise SimsInputError(f"weights have {int((~np.isfinite(w)).sum())} NaN or inf values (first at sample "
                                 f"{int(np.flatnonzero(~np.isfinite(w))[0])})")
        if (w < 0).any():
            i = int(np.flatnonzero(w < 0)[0])
            raise SimsInputError(f"weights must be >= 0; sample {i} has weight {w[i]}")
        if not w.sum() > 0:
            raise SimsInputError("weights are all zero")
    if inverse_mass is None:
        return z, w, None
    m = np.asarray(inverse_mass, dtype=np.float64)
    if m.shape != z.shape:
        raise SimsInputError(f"inverse_mass must match the samples: got shape {m.shape} for {z.size} samples")
    if not np.isfinite(m).all() or (m < 0).any():
        raise SimsInputError("inverse_mass must be finite and >= 0 (CV unit^2 / (amu Å^2)); "
                             f"got minimum {np.nanmin(m) if np.isfinite(m).any() else 'nan'}")
    return z, w, m


def _edges(z: np.ndarray, bins, range_) -> np.ndarray:
    if np.ndim(bins) == 0:
        if int(bins) != bins or int(bins) < 3:
            raise SimsInputError(f"bins must be an integer >= 3 or an array of edges, got {bins!r}")
        lo, hi = (z.min(), z.max()) if range_ is None else map(float, range_)
        if not hi > lo:
            raise SimsInputError(f"the CV range is empty ({lo} to {hi}); give a range or more varied samples")
        return np.linspace(lo, hi, int(bins) + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 4 or not (np.diff(edges) > 0).all() or not np.isfinite(edges).all():
        raise SimsInputError("bin edges must be a finite, strictly increasing 1-D array of at least 4 values")
    if range_ is not None:  # the edges set the grid: a range beside them was dropped without a word
        raise SimsInputError(f"give either bin edges or range={range_!r}, not both: the edges already fix the grid "
                             f"[{edges[0]:.4g}, {edges[-1]:.4g}]")
    return edges


def _bootstrap_counts(n: int, n_bootstrap: int, block: int, seed: int | None, groups: np.ndarray | None = None):
    """Yield resampling counts per sample: ``n_bootstrap`` arrays of length ``n``.

    Blocks of ``block`` consecutive samples are resampled together (moving-block bootstrap
    without overlap), which keeps the correlation within a block of a time series. With ``groups``
    (``(n,)`` labels, e.g. umbrella windows), each group's samples are resampled among themselves,
    so every group keeps its sample count.
    """
    rng = np.random.default_rng(seed)
    block = max(1, int(block))
    members = [np.arange(n)] if groups is None else [np.flatnonzero(groups == g) for g in np.unique(groups)]
    for idx in members if n_bootstrap > 0 else []:
        n_blocks = -(-idx.size // block)
        if n_blocks < 2:
            # One block resampled is the data itself every time: error bars of exactly 0.
            what = f"the {idx.size} samples" if groups is None else f"a window's {idx.size} samples"
            raise SimsInputError(f"block={block} samples leaves {n_blocks} block of {what} to resample, so every "
                                 f"bootstrap replicate equals the data and the errors would be 0; use blocks of at "
                                 f"most n / 10 = {max(1, idx.size // 10)} samples (or n_bootstrap=0 for no errors)")
    for _ in range(int(n_bootstrap)):
        counts = np.empty(n)
        for idx in members:
            n_blocks = -(-idx.size // block)
            picked = np.bincount(rng.integers(0, n_blocks, n_blocks), minlength=n_blocks)
            counts[idx] = np.repeat(picked, block)[:idx.size]
        yield counts


def _replicates(w: np.ndarray, n_bootstrap: int, block: int, seed: int | None, mbar) -> Iterator[np.ndarray]:
    """Yield each bootstrap replicate's weights: ``w`` times the resampling counts, or, with ``mbar``
    (:class:`sims.umbrella.UmbrellaSamples`), each window's samples resampled and MBAR re-solved."""
    if mbar is None:
        for counts in _bootstrap_counts(w.size, n_bootstrap, block, seed):
            yield w * counts
    else:
        for counts in _bootstrap_counts(w.size, n_bootstrap, block, seed, groups=mbar.window):
            yield mbar.reweight(counts)


def _mbar_weights(mbar, weights, n: int, temperature: float):
    """The weights to use beside ``mbar`` (its own; refused beside other ``weights``, or at another
    ``temperature``, K, than the samples')."""
    if mbar is None:
        return weights
    if weights is not None:
        raise SimsInputError("give mbar or weights, not both: with mbar (UmbrellaSamples) its weights are used")
    if not (hasattr(mbar, "reweight") and hasattr(mbar, "window")) or np.shape(mbar.weights) != (n,):
        raise SimsInputError(f"mbar must be the sims.umbrella.UmbrellaSamples of these {n} samples, got "
                             f"{type(mbar).__name__}")
    if not math.isclose(mbar.temperature, temperature, rel_tol=1e-9):
        # MBAR's weights give the samples' temperature's ensemble: -RT ln of its density at another T is the
        # free energy of neither temperature
        raise SimsInputError(f"temperature={temperature:g} K, but the umbrella samples were run and weighted at "
                             f"{mbar.temperature:g} K: give temperature={mbar.temperature:g}")
    return mbar.weights


def _bin_index(edges: np.ndarray, z: np.ndarray) -> np.ndarray:
    """1-based bin of each sample (0 below the grid, ``len(edges)`` above); the last edge belongs
    to the last bin, as in ``numpy.histogram``."""
    z_bin = np.searchsorted(edges, z, side="right")
    z_bin[z == edges[-1]] = edges.size - 1
    return z_bin


def _nanstd(reps: np.ndarray) -> np.ndarray:
    """Standard deviation over bootstrap replicates (axis 0), skipping NaN; NaN with fewer than 2 values."""
    n = np.isfinite(reps).sum(0)
    mean = np.nansum(reps, 0) / np.maximum(n, 1)
    var = np.nansum((reps - mean) ** 2, 0) / np.maximum(n - 1, 1)
    return np.where(n > 1, np.sqrt(var), np.nan)


def _density(z_bin: np.ndarray, w: np.ndarray, widths: np.ndarray) -> np.ndarray:
    hist = np.bincount(z_bin, weights=w, minlength=widths.size + 2)[1:-1]
    return hist / (w.sum() * widths)


def free_energy_profile(cv, *, weights=None, bins=100, temperature: float, units: str = "kJ/mol",
                        range: tuple[float, float] | None = None, n_bootstrap: int = 100, block: int = 1,
                        seed: int | None = 0, mbar=None) -> FreeEnergyProfile:
    """Free-energy profile ``A(z) = -RT ln rho(z)`` from (weighted) CV samples, with bootstrap errors.

    Parameters
    ----------
    cv : array-like
        ``(n,)`` CV value per sample.
    weights : array-like, optional
        ``(n,)`` non-negative statistical weights (e.g. from MBAR on biased runs,
        :func:`sims.umbrella.mbar_weights`); uniform if omitted.
    bins : int or array-like
        Number of bins over the sampled range (or ``range``), or the bin edges.
    temperature : float
        K.
    units : str
        ``"kJ/mol"`` (default), ``"kcal/mol"`` or ``"eV"``.
    range : (float, float), optional
        Grid limits, CV unit, with an integer ``bins`` (bin edges fix the grid themselves: refused
        beside them).
    n_bootstrap : int
        Bootstrap replicates for the error bars (0: none, errors NaN).
    block : int
        Resample blocks of this many consecutive samples (>1 for correlated time series); at least two
        blocks must fit in the samples (ten or more for a meaningful error).
    seed : int, optional
        Seeds the bootstrap.
    mbar : sims.umbrella.UmbrellaSamples, optional
        Umbrella samples whose MBAR weights to use (instead of ``weights``; ``cv`` may be another CV of
        their frames): each bootstrap replicate then resamples every window's samples (blocks within a
        window) and re-solves MBAR (:meth:`~sims.umbrella.UmbrellaSamples.reweight`), so the error
        bars include the uncertainty of the window free energies, which fixed weights leave out.

    Returns
    -------
    FreeEnergyProfile

    Raises
    ------
    SimsInputError
        Non-finite samples; negative, NaN or mismatched weights; bad bins or temperature; bin edges
        together with a ``range``; a bootstrap ``block`` that leaves fewer than two blocks.

    References
    ----------
    arXiv:2206.02893, Sec. II (the FEP, ``A(z) = -k_B T ln rho(z)``).
    """
    t = _check_temperature(temperature)
    rt = _rt(t, units)
    z, w, _ = _check_samples(cv, _mbar_weights(mbar, weights, np.size(cv), t))
    edges = _edges(z, bins, range)
    widths = np.diff(edges)
    z_bin = _bin_index(edges, z)
    inside = (z_bin >= 1) & (z_bin <= widths.size)
    w = np.where(inside, w, 0.0)
    if not w.sum() > 0:
        raise SimsInputError(f"no sample with non-zero weight lies in the grid [{edges[0]}, {edges[-1]}]")
    rho = _density(z_bin, w, widths)
    with np.errstate(divide="ignore"):
        a = -rt * np.log(rho)
    a[~np.isfinite(a)] = np.nan
    reps = []
    for wb in _replicates(w, n_bootstrap, block, seed, mbar):
        wb = np.where(inside, wb, 0.0)
        if wb.sum() > 0:
            with np.errstate(divide="ignore"):
                reps.append(-rt * np.log(_density(z_bin, wb, widths)))
    err = np.full_like(a, np.nan)
    if len(reps) > 1:
        reps = np.asarray(reps)
        reps[~np.isfinite(reps)] = np.nan
        err = _nanstd(reps)
        err[~np.isfinite(a)] = np.nan
    offset = float(np.nanmin(a))
    return FreeEnergyProfile(edges=_readonly(edges), centers=_readonly(0.5 * (edges[1:] + edges[:-1])),
                             density=_readonly(rho), free_energy=_readonly(a - offset), error=_readonly(err),
                             temperature=t, units=units, offset=offset)


def _locate_ts(free_energy: np.ndarray, n_eff: np.ndarray, rt: float) -> int | None:
    """Index of the profile maximum between two minima, or None when the profile has no barrier.

    A bin qualifies as a barrier when ``min(A(k) - min_{j<k} A, A(k) - min_{j>k} A) > 0`` still
    holds with every ``A`` moved 2 standard errors against it (``RT / sqrt(n_eff)`` per bin, the
    counting error), so a bump in a sparsely sampled tail is not taken for a transition state. The
    TS is then the highest bin between the two minima around the best such bin.
    """
    finite = np.isfinite(free_energy)
    sigma = 2 * rt / np.sqrt(np.where(finite, n_eff, 1.0))
    low = np.where(finite, free_energy - sigma, -np.inf)
    high = np.where(finite, free_energy + sigma, np.inf)
    left, right = np.minimum.accumulate(high), np.minimum.accumulate(high[::-1])[::-1]
    score = np.full(free_energy.size, -np.inf)
    score[1:-1] = np.minimum(low[1:-1] - left[:-2], low[1:-1] - right[2:])
    k = int(np.argmax(score))
    if not score[k] > 0:
        return None
    a = np.where(finite, free_energy, np.inf)
    i_a, i_b = int(np.argmin(a[:k])), k + 1 + int(np.argmin(a[k + 1:]))
    return i_a + 1 + int(np.argmax(np.where(finite, free_energy, -np.inf)[i_a + 1:i_b]))


def activation_free_energy(cv, *, inverse_mass, weights=None, ts: float | None = None, temperature: float,
                           bins=100, units: str = "kJ/mol", cv_unit: str = "Å", range: tuple[float, float] | None = None,
                           n_bootstrap: int = 200, block: int = 1, seed: int | None = 0,
                           mbar=None) -> ActivationFreeEnergy:
    """Reaction and exact activation free energies from CV samples (arXiv:2206.02893).

    Parameters
    ----------
    cv : array-like
        ``(n,)`` CV value per sample (reactant A: ``cv < ts``; product B: ``cv > ts``).
    inverse_mass : array-like
        ``(n,)`` inverse CV mass per sample (:func:`sims.cv.cv_and_inverse_mass`), in
        CV unit^2 / (amu Å^2): for a Cartesian coordinate in Å, ``1/m`` with ``m`` in amu.
    weights : array-like, optional
        ``(n,)`` non-negative statistical weights (from MBAR on biased runs); uniform if omitted.
    ts : float, optional
        Dividing surface ``z‡``, CV unit. Default: the profile maximum between its two minima
        (the bin centre that maximises the smaller of the forward and backward FEP barriers).
    temperature : float
        K.
    bins : int or array-like
        Profile bins (int: over the sampled range or ``range``) or edges. ``rho(z‡)`` and
        ``<m_xi^-1>_z‡`` are averages over a window one (mean) bin wide centred on ``z‡``.
    units : str
        ``"kJ/mol"`` (default), ``"kcal/mol"`` or ``"eV"``.
    cv_unit : str
        The CV's unit, recorded in the result (``CollectiveVariable.unit``).
    range : (float, float), optional
        Grid limits, CV unit, with an integer ``bins`` (refused beside bin edges).
    n_bootstrap, block, seed
        Bootstrap replicates, block length (samples) and seed for the error bars.
    mbar : sims.umbrella.UmbrellaSamples, optional
        Umbrella samples whose MBAR weights to use (instead of ``weights``; ``cv`` may be another CV of
        their frames): each bootstrap replicate then resamples every window's samples (blocks within a
        window) and re-solves MBAR (:meth:`~sims.umbrella.UmbrellaSamples.reweight`), so the error
        bars include the uncertainty of the window free energies, which fixed weights leave out.

    Returns
    -------
    ActivationFreeEnergy

    Notes
    -----
    Periodic CVs (dihedrals in (-pi, pi]) are treated as linear: reactant and product must not
    straddle the wrap-around at ±pi, or the CV must be shifted first.

    Raises
    ------
    SimsInputError
        Negative, NaN or mismatched weights; non-finite or mismatched inverse masses; no
        weight on one side of ``z‡``; ``z‡`` (given or found) at the edge of the sampled range
        or with no sample in its window; zero inverse mass at ``z‡``; no barrier found; a bootstrap
        ``block`` that leaves fewer than two blocks.

    References
    ----------
    Dietschreit et al., J. Chem. Phys. 157, 084113 (2022), arXiv:2206.02893, Sec. II: dA‡, lambda_xi
    and the FEP estimate it corrects; eq. 27: m_xi^-1. dA: Dietschreit et al.,
    J. Chem. Phys. 156, 114105 (2022).
    """
    t = _check_temperature(temperature)
    rt = _rt(t, units)
    z, w, m = _check_samples(cv, _mbar_weights(mbar, weights, np.size(cv), t), inverse_mass)
    profile = free_energy_profile(z, weights=w, bins=bins, temperature=t, units=units, range=range,
                                  n_bootstrap=0)
    edges = profile.edges
    width = float(np.mean(np.diff(edges)))
    z_bin = _bin_index(edges, z)
    if ts is None:
        sums = [np.bincount(z_bin, weights=v, minlength=edges.size + 1)[1:-1] for v in (w, w * w)]
        with np.errstate(invalid="ignore", divide="ignore"):
            n_eff = np.where(sums[1] > 0, sums[0] ** 2 / sums[1], 0.0)
        k = _locate_ts(profile.free_energy, n_eff, rt)
        if k is None:
            raise SimsInputError("no barrier between two minima found in the profile (its maximum lies at the edge "
                                 f"of the sampled range, {edges[0]:.4g} to {edges[-1]:.4g} {cv_unit}, or within the "
                                 "noise); sample both sides of the transition state or give ts")
        ts = float(profile.centers[k])
    ts = float(ts)
    side_a, side_b, window = z < ts, z > ts, np.abs(z - ts) <= width / 2
    for name, mask in (("A (cv < ts)", side_a), ("B (cv > ts)", side_b)):
        if not w[mask].sum() > 0:
            raise SimsInputError(f"no samples with non-zero weight on side {name} of z‡ = {ts:.4g} {cv_unit}")
    zw = z[w > 0]
    lo, hi = float(zw.min()), float(zw.max())
    if not (lo < ts - width / 2 and ts + width / 2 < hi):
        raise SimsInputError(f"the transition state z‡ = {ts:.4g} {cv_unit} is at the edge of the sampled range "
                             f"[{lo:.4g}, {hi:.4g}] (window ±{width / 2:.3g}); sample beyond it or choose another ts")
    if not w[window].sum() > 0:
        raise SimsInputError(f"no samples within ±{width / 2:.3g} {cv_unit} of z‡ = {ts:.4g}; use wider bins or "
                             "sample the transition region (e.g. umbrella sampling)")
    centers = profile.centers
    left_bins, right_bins = centers < ts, centers > ts
    widths = np.diff(edges)

    # Every quantity but the profile's minima is a weighted sum over samples: one product per replicate.
    features = np.stack([np.ones_like(z), side_a, side_b, window, window * m], axis=1)

    def estimate(wb: np.ndarray) -> np.ndarray:
        total, s_a, s_b, w_ts, wm_ts = wb @ features
        p_a, p_b = s_a / total, s_b / total
        rho_ts = w_ts / (total * width)
        m_ts = wm_ts / w_ts if w_ts > 0 else np.nan
        lam = de_broglie_length(m_ts, t)
        # Normalised by all the weight, as rho_ts: the FEP barriers are ratios of the two, and a
        # grid that leaves samples out would otherwise raise them by RT ln(total / in-grid weight).
        rho = np.bincount(z_bin, weights=wb, minlength=widths.size + 2)[1:-1] / (total * widths)
        rho_a = rho[left_bins].max(initial=0.0)
        rho_b = rho[right_bins].max(initial=0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.array([rt * np.log(p_a / p_b), -rt * np.log(rho_ts * lam / p_a), -rt * np.log(rho_ts * lam / p_b),
                             -rt * np.log(rho_b / rho_a), -rt * np.log(rho_ts / rho_a), -rt * np.log(rho_ts / rho_b),
                             p_a, p_b, rho_ts, m_ts, lam])

    full = estimate(w)
    if not full[9] > 0:
        raise SimsInputError(f"the inverse CV mass is zero at z‡ = {ts:.4g} {cv_unit} (the CV does not move with "
                             "the atoms there); check the CV definition and its inverse_mass")
    reps = [estimate(wb) for wb in _replicates(w, n_bootstrap, block, seed, mbar)]
    if len(reps) > 1:
        reps = np.asarray(reps)
        reps[~np.isfinite(reps)] = np.nan
        err = _nanstd(reps)
    else:
        err = np.full_like(full, np.nan)
    errs = [float(e) for e in err]
    return ActivationFreeEnergy(
        reaction=float(full[0]), reaction_error=errs[0], forward=float(full[1]), forward_error=errs[1],
        backward=float(full[2]), backward_error=errs[2], reaction_fep=float(full[3]), reaction_fep_error=errs[3],
        forward_fep=float(full[4]), forward_fep_error=errs[4], backward_fep=float(full[5]), backward_fep_error=errs[5],
        ts=ts, p_a=float(full[6]), p_a_error=errs[6], p_b=float(full[7]), rho_ts=float(full[8]), rho_ts_error=errs[8],
        inverse_mass_ts=float(full[9]), lambda_xi=float(full[10]), lambda_xi_error=errs[10], temperature=t,
        units=units, cv_unit=cv_unit, n_samples=int(z.size),
        profile=free_energy_profile(z, weights=None if mbar is not None else w, bins=edges, temperature=t,
                                    units=units, n_bootstrap=min(n_bootstrap, 100), block=block, seed=seed,
                                    mbar=mbar))


def cv_quality(cv, alignment, *, bins=100, weights=None, range: tuple[float, float] | None = None):
    """The CV-quality criterion ``D_s(z) = < |grad U . grad xi| / (|grad U| |grad xi|) >_z`` (paper eq. 45).

    Parameters
    ----------
    cv : array-like
        ``(n,)`` CV values.
    alignment : array-like
        ``(n,)`` per-sample ``|grad U . grad xi| / (|grad U| |grad xi|)``
        (:func:`sims.cv.gradient_alignment`); NaN samples are skipped.
    bins, weights, range
        As in :func:`free_energy_profile`.

    Returns
    -------
    centers, d_s : numpy.ndarray
        Bin centres (CV unit) and the conditional average (dimensionless, in [0, 1]; NaN in bins
        without samples). Near 1 at the transition state means the CV follows the force there.
    """
    z, w, _ = _check_samples(cv, weights)
    c = np.asarray(alignment, dtype=np.float64)
    if c.shape != z.shape:
        raise SimsInputError(f"alignment must match the samples: got shape {c.shape} for {z.size} samples")
    ok = np.isfinite(c)
    w, c = np.where(ok, w, 0.0), np.where(ok, c, 0.0)
    edges = _edges(z, bins, range)
    z_bin = _bin_index(edges, z)
    num = np.bincount(z_bin, weights=w * c, minlength=edges.size + 1)[1:-1]
    den = np.bincount(z_bin, weights=w, minlength=edges.size + 1)[1:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        d_s = np.where(den > 0, num / den, np.nan)
    return 0.5 * (edges[1:] + edges[:-1]), d_s


def free_energy_from_frames(frames, cv: str, *, temperature: float, bins=100, ts: float | None = None,
                            weights=None, units: str = "kJ/mol", plot: str | Path | None = None,
                            n_bootstrap: int = 200, block: int = 1, seed: int | None = 0,
                            mbar=None) -> ActivationFreeEnergy:
    """What ``matrep free-energy FRAMES --cv SPEC --temperature T`` does: read, compute, plot.

    Parameters
    ----------
    frames : str, Path or sequence of ase.Atoms
        A trajectory file ASE can read (all frames are used) or the frames themselves. Bond
        vectors take the minimum image along the frames' periodic axes (all three, a slab's two,
        a wire's one; :func:`sims.cv.wrapping_cell`).
    cv : str or CollectiveVariable
        CV spec such as ``"dihedral:4,6,8,14"`` (:func:`sims.cv.parse_cv`). A :class:`~sims.cv.Custom`
        CV of partly periodic frames receives the cell of :func:`~sims.cv.wrapping_cell`.
    temperature : float
        K.
    weights : array-like or str, optional
        Per-frame weights, or a ``.npy`` file of them (biased runs); else each frame's
        ``atoms.info["weight"]`` if all frames have one; uniform if none has (some but not all:
        refused).
    mbar : sims.umbrella.UmbrellaSamples or str or Path, optional
        The umbrella samples these frames are (in their order, positions equal), or the file
        :meth:`~sims.umbrella.UmbrellaSamples.save` wrote them to: their MBAR weights are used and
        every bootstrap replicate re-solves MBAR (as ``mbar=`` of :func:`activation_free_energy`). On
        exact Gaussian windows the fixed weights' errors were about half the seed-to-seed spread
        (RMS z 1.91, re-solved 0.89; tests/sims/test_umbrella.py), so give the samples rather than
        their weights where an umbrella run made the frames. Not beside ``weights``; frames'
        ``info["weight"]``, if all carry one, must be the samples' weights.
    plot : str or Path, optional
        Write the profile plot here.
    bins, ts, units, n_bootstrap, block, seed
        As in :func:`activation_free_energy`.

    Returns
    -------
    ActivationFreeEnergy
        Its :meth:`~ActivationFreeEnergy.table` is what the CLI prints.
    """
    from .cv import cv_and_inverse_mass, parse_cv, wrapping_cell

    if isinstance(frames, (str, Path)):
        if not Path(frames).exists():
            raise SimsInputError(f"frames file {str(frames)!r} does not exist")
        frames = read_frames(frames)
    frames = as_frames(frames)
    if len(frames) < 2:
        raise SimsInputError(f"need at least 2 frames, got {len(frames)}")
    n_atoms = {len(a) for a in frames}
    if len(n_atoms) != 1:
        raise SimsInputError(f"all frames must have the same atoms; got atom counts {sorted(n_atoms)}")
    colvar = parse_cv(cv)
    pos = np.stack([a.positions for a in frames])
    first = frames[0]
    if any((a.pbc != first.pbc).any() for a in frames):
        raise SimsInputError(f"all frames must have the same periodicity; frame 0 has pbc {first.pbc.tolist()}, "
                             "others differ")
    # The minimum image along the periodic axes only (a slab's bonds across its edges as well).
    reach = float(np.linalg.norm(np.ptp(pos, axis=1), axis=-1).max())
    cell = wrapping_cell(np.stack([a.cell[:] for a in frames]), first.pbc, reach)
    z, m_inv, _ = cv_and_inverse_mass(colvar, pos, first.get_masses(), cell)
    if mbar is not None:
        mbar = _umbrella_samples_of(mbar, pos, frames, weights)
    elif isinstance(weights, (str, Path)):
        weights = np.load(weights)
    elif weights is None:
        weighted = [k for k, a in enumerate(frames) if "weight" in a.info]
        if len(weighted) == len(frames):
            weights = [a.info["weight"] for a in frames]
        elif weighted:  # uniform weights would silently drop the ones given
            missing = sorted(set(range(len(frames))) - set(weighted))
            raise SimsInputError(f"{len(weighted)} of {len(frames)} frames carry info['weight'] and "
                                 f"{len(missing)} do not (frames {missing[:5]}); give every frame a weight, "
                                 "or pass weights=")
    result = activation_free_energy(z.numpy(), inverse_mass=m_inv.numpy(), weights=weights, ts=ts,
                                    temperature=temperature, bins=bins, units=units, cv_unit=colvar.unit,
                                    n_bootstrap=n_bootstrap, block=block, seed=seed, mbar=mbar)
    if plot is not None:
        result.profile.plot(plot, ts=result.ts, cv_label=f"{colvar!r} / {colvar.unit}")
    return result


def _umbrella_samples_of(mbar, positions: np.ndarray, frames, weights):
    """The umbrella samples ``mbar`` (or loaded from its file), checked to be these frames in their order."""
    from .umbrella import load_umbrella_samples

    if weights is not None:
        raise SimsInputError("give mbar or weights, not both: with mbar (umbrella samples) their weights are used")
    if isinstance(mbar, (str, Path)):
        mbar = load_umbrella_samples(mbar)
    if not hasattr(mbar, "reweight"):
        raise SimsInputError(f"mbar must be sims.umbrella.UmbrellaSamples or the file of their save(), got "
                             f"{type(mbar).__name__}")
    # a sample's weight belongs to its frame: other frames, or these in another order, would be misweighted
    if mbar.positions.shape != positions.shape or not np.allclose(mbar.positions, positions, rtol=0, atol=1e-6):
        raise SimsInputError(f"the umbrella samples ({mbar.positions.shape[0]} of {mbar.positions.shape[1]} atoms) are "
                             f"not these {positions.shape[0]} frames of {positions.shape[1]} atoms in their order "
                             "(positions differ by more than 1e-6 Å); give the frames the samples hold")
    info = [a.info["weight"] for a in frames if "weight" in a.info]
    if info and not (len(info) == len(frames) and np.allclose(info, mbar.weights, rtol=1e-6, atol=0)):
        raise SimsInputError("the frames' info['weight'] are not the umbrella samples' weights; with mbar the "
                             "samples' are used: drop the frames' weights or give the samples that match them")
    return mbar
