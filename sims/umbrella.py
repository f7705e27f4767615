"""Umbrella sampling along a collective variable on :mod:`sims` Langevin dynamics, weighted by MBAR.

Each window adds a harmonic bias ``k/2 (xi - c_k)^2`` on the CV to the potential and runs Langevin
dynamics; MBAR (Shirts & Chodera, J. Chem. Phys. 129, 124105 (2008), through ``pymbar``) turns
the pooled biased frames into weights of the unbiased ensemble, so that
:func:`sims.free_energy.activation_free_energy` can use them like plain samples. Each frame carries
its CV value and inverse CV mass (:func:`sims.cv.cv_and_inverse_mass`). Pass the samples as
``mbar=`` (not their ``weights=``) for error bars: each bootstrap replicate then re-solves MBAR
(:meth:`UmbrellaSamples.reweight`); fixed weights gave about half the error (0.28 against pymbar's
asymptotic 0.50 kJ/mol for a reaction free energy; tests/sims/test_umbrella.py).
:meth:`UmbrellaSamples.save` writes them for ``matrep free-energy FRAMES --mbar FILE``.

A system may hold several non-interacting copies of the molecule (``atoms_per_replica``): the bias
then acts on each copy's CV, and every copy contributes one sample per recorded step.

Example
-------
>>> from ase import Atoms
>>> from sims.cv import Position
>>> from sims.potentials import DoubleWell
>>> atoms = Atoms("He8", positions=[[-1.0, 0, 0]] * 8)
>>> us = umbrella_sampling(atoms, DoubleWell(a=0.5, b=1.0), Position(0, "x"), centers=[-1.0, 0.0, 1.0],
...                        spring=10.0, temperature=300.0, n_steps=50, atoms_per_replica=1)   # doctest: +SKIP
>>> us.weights.sum()                                                                            # doctest: +SKIP
1.0
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from ase import units

from reprs.fileio import atomic_write

from .cv import CollectiveVariable, cv_and_inverse_mass, cv_period, wrapped_difference
from .errors import SimsInputError
from .integrators import Langevin, make_generator
from .md import MD
from .potentials import Potential, SumPotential
from .replicas import replica_cv, replica_frames, replica_masses
from .state import State, as_atoms

__all__ = ["HarmonicBias", "UmbrellaSamples", "umbrella_sampling", "mbar_weights", "WindowOverlapError",
           "MIN_OVERLAP", "load_umbrella_samples"]


class WindowOverlapError(SimsInputError):
    """Umbrella windows that do not overlap enough for MBAR (:func:`mbar_weights`'s ``min_overlap``).

    ``samples``: from :func:`umbrella_sampling`, the run's :class:`UmbrellaSamples` with NaN weights
    and free energies (the frames are kept: run the missing windows and pass both runs' ``cv`` and
    ``window`` to :func:`mbar_weights`); None from :func:`mbar_weights`.
    """

    def __init__(self, message: str, samples: "UmbrellaSamples | None" = None) -> None:
        super().__init__(message)
        self.samples = samples


class HarmonicBias(Potential):
    """``sum_replicas k/2 (xi(replica) - center)^2`` (eV): an umbrella on a CV (a dihedral's
    ``xi - center`` taken the short way round the circle).

    Parameters
    ----------
    cv : CollectiveVariable
        Evaluated on each replica's ``atoms_per_replica`` atoms.
    center : float
        CV unit.
    spring : float
        ``k``, eV / CV unit^2, > 0.
    atoms_per_replica : int, optional
        Atoms of one copy of the molecule; the system's atoms must be whole copies in order.
        Default: the whole system is one replica.
    periodic : bool
        Pass the cell to the CV (minimum-image bond vectors); off for molecules in vacuum.
    """

    cutoff = 0.0

    def __init__(self, cv: CollectiveVariable, center: float, spring: float, *, atoms_per_replica: int | None = None,
                 periodic: bool = False) -> None:
        super().__init__()
        if not isinstance(cv, CollectiveVariable):
            raise SimsInputError(f"cv must be a sims.cv.CollectiveVariable, got {type(cv).__name__}")
        if not (math.isfinite(center) and math.isfinite(spring) and spring > 0):
            raise SimsInputError(f"need a finite center and a spring > 0 eV/unit^2, got center={center}, spring={spring}")
        if atoms_per_replica is not None and int(atoms_per_replica) < 1:
            raise SimsInputError(f"atoms_per_replica must be >= 1, got {atoms_per_replica}")
        self.cv, self.center, self.spring = cv, float(center), float(spring)
        self.period = cv_period(cv)  # here, so that a CV without a well-defined period is refused up front
        self.atoms_per_replica = None if atoms_per_replica is None else int(atoms_per_replica)
        self.periodic = bool(periodic)

    def forward(self, positions, cell=None, numbers=None, pairs=None):
        xi = replica_cv(self.cv, positions, self.atoms_per_replica, cell if self.periodic else None)
        return 0.5 * self.spring * (wrapped_difference(xi, self.center, self.period) ** 2).sum()


@dataclass(frozen=True)
class UmbrellaSamples:
    """Frames of an umbrella-sampling run with their CV, inverse CV mass and MBAR weights.

    Attributes
    ----------
    cv : numpy.ndarray
        ``(n,)`` CV values, CV unit; ordered window by window, within a window replica by
        replica, each replica's frames in time order (so blocks of consecutive samples are
        stretches of one trajectory, as a block bootstrap needs).
    inverse_mass : numpy.ndarray
        ``(n,)`` CV unit^2 / (amu Å^2).
    window : numpy.ndarray
        ``(n,)`` window index of each sample.
    weights : numpy.ndarray
        ``(n,)`` unbiased-ensemble weights from MBAR, summing to 1.
    centers : numpy.ndarray
        ``(K,)`` window centres, CV unit.
    spring : float
        eV / CV unit^2.
    temperature : float
        K.
    free_energies : numpy.ndarray
        ``(K,)`` MBAR's dimensionless window free energies ``f_k`` (units of kT, ``f_0 = 0``).
    cv_unit : str
    positions : numpy.ndarray
        ``(n, atoms_per_replica, 3)`` Å, the frames themselves (for other CVs on the same weights).
    masses : numpy.ndarray
        ``(atoms_per_replica,)`` amu.
    period : float or None
        The CV's period (``2 pi`` for a dihedral), None for a linear CV: how :meth:`reweight` measures
        distances to the centres, as the run's biases did.
    """

    cv: np.ndarray
    inverse_mass: np.ndarray
    window: np.ndarray
    weights: np.ndarray
    centers: np.ndarray
    spring: float
    temperature: float
    free_energies: np.ndarray
    cv_unit: str
    positions: np.ndarray
    masses: np.ndarray
    period: float | None = None

    def __post_init__(self) -> None:
        for name in ("cv", "inverse_mass", "window", "weights", "centers", "free_energies", "positions", "masses"):
            getattr(self, name).flags.writeable = False

    def reweight(self, counts) -> np.ndarray:
        """Unbiased weights ``(n,)`` of a bootstrap replicate that holds sample ``i`` ``counts[i]`` times,
        MBAR re-solved on it (pymbar, from :attr:`free_energies`): each copy weighs what its sample
        does, samples not drawn weigh 0; summing to 1.

        The error bars of :func:`sims.free_energy.activation_free_energy` and
        :func:`~sims.free_energy.free_energy_profile` given ``mbar=`` these samples come from such
        replicates (each window's samples resampled): holding the weights fixed leaves out the
        uncertainty of the window free energies, which dominates a reaction free energy whose two
        sides the windows sample apart (exact Gaussian window samples, 20 seeds: fixed weights 0.27,
        re-solved 0.49 kJ/mol, seed-to-seed spread 0.42; /work/runs/s14/s14-followups/probe_umbrella_calib.py
        and the calibration test in tests/sims/test_umbrella.py).

        Raises
        ------
        SimsInputError
            ``counts`` not ``(n,)`` non-negative integers, or a window left without samples.
        """
        c = np.asarray(counts, dtype=np.float64)
        if c.shape != self.cv.shape or not (np.isfinite(c).all() and (c >= 0).all() and (c == np.round(c)).all()):
            raise SimsInputError(f"counts must be {self.cv.shape[0]} non-negative integers, one per sample")
        drawn = np.repeat(np.arange(c.size), c.astype(np.int64))
        # min_overlap=0: the samples passed the overlap check; a replicate is judged by its spread
        w, _ = mbar_weights(self.cv[drawn], self.window[drawn], self.centers, self.spring, self.temperature,
                            period=self.period, min_overlap=0.0, initial_f_k=self.free_energies)
        return np.bincount(drawn, weights=w, minlength=c.size)

    def save(self, path: str | Path) -> Path:
        """Write the samples to ``path`` (numpy ``.npz``: a format tag and the arrays, no pickle), for
        :func:`load_umbrella_samples` and ``matrep free-energy FRAMES --mbar PATH``; returns the path.
        """
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self) if f.name != "period"}
        buffer = io.BytesIO()
        np.savez(buffer, format=np.array(SAMPLES_FORMAT), period=np.array(np.nan if self.period is None else self.period),
                 **arrays)
        return atomic_write(path, buffer.getvalue())


#: Format tag of :meth:`UmbrellaSamples.save` files.
SAMPLES_FORMAT = "matrep.sims.umbrella.samples/1"


def load_umbrella_samples(path: str | Path) -> UmbrellaSamples:
    """The :class:`UmbrellaSamples` written by :meth:`UmbrellaSamples.save` to ``path``.

    Raises
    ------
    SimsInputError
        A missing file, or one that is not such a file.
    """
    if not Path(path).is_file():
        raise SimsInputError(f"umbrella samples file {str(path)!r} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SimsInputError(f"{path} is not a file of UmbrellaSamples.save ({err})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):   # a .npy file: one array
        raise SimsInputError(f"{path} is not a file of UmbrellaSamples.save (one array, not an .npz archive)")
    with data:
        stored = {k: data[k] for k in data.files}
    if stored.pop("format", np.array("")).item() != SAMPLES_FORMAT:
        raise SimsInputError(f"{path} is not a file of UmbrellaSamples.save (no {SAMPLES_FORMAT!r} tag)")
    period = float(stored.pop("period"))
    scalars = {"spring": float, "temperature": float, "cv_unit": str}
    try:
        return UmbrellaSamples(**{k: scalars[k](v.item()) if k in scalars else v for k, v in stored.items()},
                               period=None if math.isnan(period) else period)
    except TypeError as err:   # an array missing or one too many
        raise SimsInputError(f"{path} is not a file of UmbrellaSamples.save ({err})") from None


def _pymbar():
    """Import pymbar without its import-time notes (no JAX, timeseries caveat) on stderr."""
    loggers = [logging.getLogger(n) for n in ("pymbar", "pymbar.mbar_solvers", "pymbar.timeseries")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        import pymbar
    except ImportError:  # pragma: no cover - a declared dependency
        raise SimsInputError("MBAR weights need pymbar >= 4 (pip install pymbar)") from None
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    return pymbar


#: Default smallest overlap-matrix element that links the windows (see :func:`mbar_weights`).
MIN_OVERLAP = 0.01


def mbar_weights(cv, window, centers, spring: float, temperature: float, *,
                 period: float | None = None, min_overlap: float = MIN_OVERLAP,
                 initial_f_k=None) -> tuple[np.ndarray, np.ndarray]:
    """Unbiased weights of umbrella samples by MBAR.

    Parameters
    ----------
    cv : array-like
        ``(n,)`` CV values of all samples.
    window : array-like
        ``(n,)`` integer window of each sample (0 .. K-1); floats are accepted only when
        integer-valued (``1.7`` is refused, not truncated).
    centers : array-like
        ``(K,)`` window centres, CV unit.
    spring : float
        ``k`` of the harmonic biases ``k/2 (xi - c)^2``, eV / CV unit^2.
    temperature : float
        K.
    period : float, optional
        The CV's period (``2 pi`` for a dihedral): distances to the centres are then taken the
        short way round, as :class:`HarmonicBias` takes them.
    min_overlap : float
        Windows whose samples overlap this little cannot be put on one free-energy scale: the
        windows must form one connected chain in which each link is an element of MBAR's overlap
        matrix (pymbar ``compute_overlap``, symmetrised as ``sqrt(O_ij O_ji)``) of at least this.
        Below it the relative weight of the disconnected groups is arbitrary and nothing else says
        so (two groups of harmonic windows either side of a symmetric well, overlap 1e-20 between
        them: the unbiased ``P(z > 0)``, truly 0.5, came out anywhere from 0.00 to 1.00 over five
        seeds; at overlap 2e-3, 0.06 to 0.76; a bootstrap of :mod:`sims.free_energy` that holds the
        weights fixed does not see it). Klimovich, Shirts & Mobley (J. Comput.-Aided Mol. Des.
        29, 397 (2015)) ask for 0.03 between neighbours; 0 turns the check off.
    initial_f_k : array-like, optional
        ``(K,)`` starting guess for the solver (a bootstrap replicate starts from the full data's).

    Returns
    -------
    weights : numpy.ndarray
        ``(n,)``, summing to 1: ``w_n ∝ 1 / sum_k N_k exp(f_k - u_k(x_n))`` with ``u_k`` the
        reduced bias of window k (Shirts & Chodera 2008, eq. 13 for an unbiased target state).
    f_k : numpy.ndarray
        ``(K,)`` dimensionless window free energies.

    Raises
    ------
    SimsInputError
        Mismatched lengths, a non-integer or out-of-range window index, a window without samples,
        bad spring or temperature, windows that do not overlap (``min_overlap``).
    """
    from scipy.special import logsumexp

    z = np.asarray(cv, dtype=np.float64)
    win = np.asarray(window)
    c = np.asarray(centers, dtype=np.float64)
    if z.ndim != 1 or win.shape != z.shape:
        raise SimsInputError(f"cv and window must be 1-D of equal length, got {z.shape} and {win.shape}")
    if c.ndim != 1 or c.size < 1 or not np.isfinite(c).all():
        raise SimsInputError("centers must be a non-empty 1-D array of finite values")
    if not (math.isfinite(spring) and spring > 0 and math.isfinite(temperature) and temperature > 0):
        raise SimsInputError(f"need spring > 0 and temperature > 0 K, got {spring}, {temperature}")
    if not np.isfinite(z).all():
        raise SimsInputError("cv has NaN or inf values")
    _check_min_overlap(min_overlap)
    if not np.issubdtype(win.dtype, np.integer):  # astype(int64) would truncate 1.7 to window 1
        floating = np.issubdtype(win.dtype, np.floating)
        whole = np.isfinite(win) & (win == np.round(win)) if floating else np.zeros(win.shape, dtype=bool)
        if not whole.all():
            raise SimsInputError(f"window must hold integer window indices 0..{c.size - 1}, got "
                                 f"{win[np.argmin(whole)].item()!r} (dtype {win.dtype}); give each sample the index "
                                 "of the window it was run in")
    if win.size and win.min() < 0:
        raise SimsInputError(f"window indices must be 0..{c.size - 1}, got {win.min().item()!r}")
    n_k = np.bincount(win.astype(np.int64), minlength=c.size)
    if n_k.size != c.size or (n_k == 0).any():
        raise SimsInputError(f"every window needs samples and window indices must be 0..{c.size - 1}; "
                             f"counts per window: {n_k.tolist()}")
    u_kn = 0.5 * spring * wrapped_difference(z[None, :], c[:, None], period) ** 2 / (units.kB * temperature)
    mbar = _pymbar().MBAR(u_kn, n_k, initial_f_k=initial_f_k)
    if min_overlap > 0 and c.size > 1:
        _check_overlap(np.asarray(mbar.compute_overlap()["matrix"], dtype=np.float64), c, min_overlap)
    f_k = np.asarray(mbar.f_k, dtype=np.float64)
    log_w = -logsumexp(f_k[:, None] - u_kn, b=n_k[:, None], axis=0)
    weights = np.exp(log_w - logsumexp(log_w))
    return weights, f_k


def _check_min_overlap(min_overlap: float) -> None:
    if not (math.isfinite(min_overlap) and 0 <= min_overlap < 1):
        raise SimsInputError(f"min_overlap must be in [0, 1), got {min_overlap}")


def _check_overlap(overlap: np.ndarray, centers: np.ndarray, min_overlap: float) -> None:
    """Raise unless the windows are one group linked by overlap-matrix elements >= ``min_overlap``."""
    from scipy.sparse.csgraph import connected_components

    o = np.sqrt(np.clip(overlap * overlap.T, 0.0, None))
    n_groups, label = connected_components(o >= min_overlap, directed=False)
    if n_groups == 1:
        return
    first = label == label[0]
    between = np.where(first[:, None] & ~first[None, :], o, -1.0)
    i, j = np.unravel_index(np.argmax(between), between.shape)
    raise WindowOverlapError(
        f"the umbrella windows fall into {n_groups} groups that MBAR cannot put on one free-energy scale: windows "
        f"{np.flatnonzero(first).tolist()} overlap the others at most {o[i, j]:.2g} (windows {i} and {j}, centres "
        f"{centers[i]:.4g} and {centers[j]:.4g}), below min_overlap={min_overlap:g}, so their relative weight would "
        "be arbitrary; add windows between them, soften the spring or sample longer (or lower min_overlap)")


def umbrella_sampling(system, potential: torch.nn.Module, cv: CollectiveVariable, *, centers, spring: float,
                      temperature: float, n_steps: int, timestep: float = 1.0, friction: float = 0.01,
                      equilibrate: int = 0, record_every: int = 10, atoms_per_replica: int | None = None,
                      periodic: bool = False, seed: int = 0, min_overlap: float = MIN_OVERLAP,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float64) -> UmbrellaSamples:
    """Run one Langevin simulation per window with a harmonic bias on ``cv``; weight the frames by MBAR.

    Windows run in the order given, each starting from the last state of the one before (so an
    ordered list of centres pulls the system along the CV).

    Parameters
    ----------
    system : ase.Atoms
        Start configuration (one or several non-interacting replicas, see ``atoms_per_replica``).
    potential : torch.nn.Module
        The unbiased potential (``sims`` interface, with ``cutoff``).
    cv : CollectiveVariable
    centers : array-like
        Window centres, CV unit.
    spring : float
        eV / CV unit^2.
    temperature : float
        K.
    n_steps : int
        Recorded steps per window (after ``equilibrate`` unrecorded ones).
    timestep : float
        fs.
    friction : float
        1/fs.
    record_every : int
        Keep a frame every this many steps.
    atoms_per_replica : int, optional
        Atoms of one copy when ``system`` holds several non-interacting copies (each copy is
        biased on its own CV and gives its own samples).
    periodic : bool
        Minimum-image CVs with the system's cell.
    seed : int
        Window ``k`` runs with the seed of the stream ``(seed, k)``
        (:func:`sims.integrators.make_generator`), so that runs with different seeds share no
        window's noise (with ``seed + k``, run ``s + 1``'s window ``k`` repeated run ``s``'s window
        ``k + 1``: their CV fluctuations correlated at 0.98).
    min_overlap : float
        Of :func:`mbar_weights`: windows that overlap less are refused after the run.
    device, dtype
        Of the simulation.

    Returns
    -------
    UmbrellaSamples

    Raises
    ------
    SimsInputError
        Bad window parameters, atoms that are not whole replicas, replicas with different masses,
        windows that do not overlap (:func:`mbar_weights`).
    """
    atoms = as_atoms(system)
    c = np.asarray(centers, dtype=np.float64).ravel()
    if c.size < 1 or not np.isfinite(c).all():
        raise SimsInputError(f"centers must be finite values, got {centers!r}")
    if int(n_steps) < 1 or int(record_every) < 1 or int(equilibrate) < 0:
        raise SimsInputError(f"need n_steps >= 1, record_every >= 1, equilibrate >= 0; got {n_steps}, "
                             f"{record_every}, {equilibrate}")
    _check_min_overlap(min_overlap)  # before the run, not after it
    r, masses = replica_masses(atoms, atoms_per_replica)
    state: State | None = None
    values, inv_mass, window, kept = [], [], [], []
    for k, center in enumerate(c):
        bias = HarmonicBias(cv, float(center), spring, atoms_per_replica=r, periodic=periodic)
        frames: list[torch.Tensor] = []

        def record(md: MD) -> None:
            if md.step_count > equilibrate and (md.step_count - equilibrate) % record_every == 0:
                frames.append(md.state.positions.detach().clone())

        md = MD(atoms if state is None else state, SumPotential([potential, bias]),
                Langevin(timestep, temperature, friction), temperature=temperature if state is None else None,
                seed=make_generator((seed, k)).initial_seed(), record_every=0, min_distance=None, callback=record, device=device, dtype=dtype)
        md.run(int(equilibrate) + int(n_steps))
        state = md.state
        pos = replica_frames(torch.stack(frames), r)
        cell = state.cell if periodic else None
        z, m_inv, _ = cv_and_inverse_mass(cv, pos, masses, cell)
        values.append(z.cpu().numpy())
        inv_mass.append(m_inv.cpu().numpy())
        window.append(np.full(z.shape[0], k))
        kept.append(pos.cpu().double().numpy())
    z, win = np.concatenate(values), np.concatenate(window)

    def samples(weights: np.ndarray, f_k: np.ndarray) -> UmbrellaSamples:
        return UmbrellaSamples(cv=z, inverse_mass=np.concatenate(inv_mass), window=win, weights=weights, centers=c,
                               spring=float(spring), temperature=float(temperature), free_energies=f_k,
                               cv_unit=cv.unit, positions=np.concatenate(kept), masses=masses, period=cv_period(cv))

    try:
        return samples(*mbar_weights(z, win, c, spring, temperature, period=cv_period(cv), min_overlap=min_overlap))
    except WindowOverlapError as err:  # the frames of a long run are not thrown away with the weights
        raise WindowOverlapError(f"{err} (the frames are kept in this error's .samples)",
                                 samples(np.full(z.shape, np.nan), np.full(c.shape, np.nan))) from None
