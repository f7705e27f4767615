"""Pair potentials learned from structure: DiffSim, and Iterative Boltzmann Inversion as the baseline.

:func:`diffsim` runs NVT molecular dynamics at every target state point, computes a differentiable
(Gaussian-smeared) radial distribution function along the trajectory, and backpropagates the
squared difference to the target g(r) through the simulation into the potential's parameters
(Wang, Wu, Dietschreit & Gómez-Bombarelli, J. Chem. Phys. 158, 044113 (2023), arXiv:2209.07679).
The gradient is exact (the one of backpropagation through the whole differentiated window) but
memory is bounded by gradient checkpointing over segments: the forward pass keeps only the state
at each segment's start; the backward pass recomputes one segment at a time with its graph and
hands the adjoint of its start state to the segment before. With segments of ``~sqrt(n)`` steps
the memory of one update grows as ``sqrt(n)`` instead of ``n`` (Griewank & Walther, ACM TOMS 26,
19 (2000); Chen et al., arXiv:1604.06174).

:func:`ibi` is Iterative Boltzmann Inversion (Reith, Pütz & Müller-Plathe, J. Comput. Chem. 24,
1624 (2003)): ``U_0 = -kT ln g_target``, ``U_{i+1} = U_i + alpha kT ln(g_i / g_target)``, smoothed,
shifted to zero at the cutoff and tabulated (:class:`sims.potentials.TabulatedPair`); with several
targets the updates are averaged (multi-state IBI, Moore, Iacovella & McCabe, J. Chem. Phys. 140,
224104 (2014)). It runs on our engine.

Targets are :class:`RDFTarget` s: a g(r) on uniform bin centres, the system at the state point's
density and composition, its temperature, and for a mixture the species pair (one target per
pair, sharing one system).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from ase import Atoms, units
from ase.data import atomic_numbers

from reprs.atoms import as_atoms, as_frames
from reprs.config import content_hash
from reprs.fileio import atomic_open
from reprs.structure import rdf as structure_rdf

from .errors import FitDiverged, SimsInputError
from .integrators import Integrator, Langevin, NoseHooverChain
from .md import MD, compute, maxwell_boltzmann
from .neighbors import NeighborList, PairList, pair_vectors
from .potentials import TabulatedPair, potential_dtype
from .state import State, check_unconstrained, validate_atoms

__all__ = ["RDFTarget", "smeared_rdf", "FitResult", "diffsim", "ibi", "boltzmann_inversion", "fit_pair_energy"]


def _species_number(species: str | int, role: str) -> int:
    if isinstance(species, str):
        if species not in atomic_numbers:
            raise SimsInputError(f"unknown element {species!r} as {role}; give a symbol such as 'Ar'")
        return atomic_numbers[species]
    if isinstance(species, (int, np.integer)) and not isinstance(species, bool):
        return int(species)
    raise SimsInputError(f"{role} must be an element symbol or atomic number, got {species!r}")


class RDFTarget:
    """The target structure of one state point: g(r) of one species pair (or all atoms).

    Parameters
    ----------
    r : array of float
        Bin centres, Å: strictly increasing, uniformly spaced, ``r[0] >= spacing / 2`` (the
        convention of :func:`reprs.structure.rdf`, whose bins are ``[r - h/2, r + h/2)``).
    g : array of float
        g(r), finite and >= 0, one value per ``r``.
    atoms : ase.Atoms
        The system simulated for this state point: periodic, at the state's density and
        composition (a liquid configuration is the best start).
    temperature : float
        K.
    species : (str, str), optional
        Centre and neighbour species of a partial g(r) (normalised as
        :func:`reprs.structure.rdf`); None: the total g(r).
    weight : float
        Weight of this target's loss in a joint fit.
    pressure : float, optional
        Target pressure of the state point, bar: :func:`diffsim` adds
        ``weight ((P - pressure) / pressure_scale)^2`` with ``P`` the mean virial pressure of the
        simulation (a non-pair observable that no RDF fixes).
    vacf : array of float, optional
        Target normalised velocity autocorrelation ``C(t) / C(0)`` of all atoms of the state point
        (:func:`sims.analysis.vacf`) at lags ``0, vacf_dt, 2 vacf_dt, ...``; first value 1.
        :func:`diffsim` adds ``weight vacf_weight mean_t (C(t)/C(0) - vacf)^2``: a dynamical
        observable that no structural fit sees (arXiv:2209.07679 fits water's VACF this way).
    vacf_dt : float, optional
        fs between the values of ``vacf``; required with it, a multiple of DiffSim's timestep.

    Raises
    ------
    SimsInputError
        ``g`` of another length than ``r``, negative or non-finite values, ``r`` not increasing or
        not uniform, a non-positive temperature, a species absent from the system, a ``vacf``
        without ``vacf_dt``, not starting at 1, or not finite.
    MissingCellError
        A system without a 3-D periodic cell.

    Examples
    --------
    >>> target = RDFTarget.from_frames(frames, r_max=8.5, bins=85, temperature=120.0)  # doctest: +SKIP
    >>> target = RDFTarget.from_file("rdf.txt", atoms, temperature=120.0)              # doctest: +SKIP
    """

    def __init__(self, r, g, atoms: Atoms, temperature: float, *, species: tuple[str, str] | None = None,
                 weight: float = 1.0, pressure: float | None = None, vacf=None,
                 vacf_dt: float | None = None) -> None:
        r = np.asarray(r, dtype=float)
        g = np.asarray(g, dtype=float)
        if r.ndim != 1 or r.size < 3:
            raise SimsInputError(f"r must be a 1-D array of at least 3 bin centres (Å), got shape {r.shape}")
        if g.shape != r.shape:
            raise SimsInputError(f"g has {g.size} values but r has {r.size} bin centres; give one g per r")
        if not np.isfinite(r).all():
            raise SimsInputError(f"r has a non-finite value at index {int(np.flatnonzero(~np.isfinite(r))[0])}")
        bad = np.flatnonzero(~(np.isfinite(g) & (g >= 0)))
        if bad.size:
            raise SimsInputError(f"g must be finite and >= 0; g[{int(bad[0])}] = {g[bad[0]]} at r = {r[bad[0]]} Å")
        step = np.diff(r)
        if not (step > 0).all():
            k = int(np.flatnonzero(~(step > 0))[0])
            raise SimsInputError(f"r must be strictly increasing; r[{k}] = {r[k]} and r[{k + 1}] = {r[k + 1]} Å")
        h = float(r[-1] - r[0]) / (r.size - 1)
        if np.abs(step - h).max() > 1e-6 * h + 1e-9:
            raise SimsInputError(f"r must be uniformly spaced bin centres; spacings range from {step.min()} to "
                                 f"{step.max()} Å (interpolate g onto a uniform grid)")
        if r[0] < 0.5 * h - 1e-6 * h:
            raise SimsInputError(f"r must be bin centres with r[0] >= spacing/2 = {0.5 * h} Å, got r[0] = {r[0]} Å "
                                 "(a grid starting at 0 lists bin edges: use their midpoints, or drop r = 0)")
        if not (math.isfinite(temperature) and temperature > 0):
            raise SimsInputError(f"temperature must be > 0 K, got {temperature}")
        if not (math.isfinite(weight) and weight > 0):
            raise SimsInputError(f"weight must be > 0, got {weight}")
        if pressure is not None and not math.isfinite(pressure):
            raise SimsInputError(f"pressure must be a finite number of bar, got {pressure}")
        self.pressure = None if pressure is None else float(pressure)
        self.vacf, self.vacf_dt = _check_vacf(vacf, vacf_dt)
        atoms = validate_atoms(as_atoms(atoms, require_cell=True))
        check_unconstrained(atoms, "a fit's MD (diffsim, ibi)")
        if not atoms.pbc.all():
            raise SimsInputError("the target's system must be periodic in all three directions (a bulk state point)")
        if species is not None:
            if len(species) != 2:
                raise SimsInputError(f"species must be a (centre, neighbour) pair, got {species!r}")
            for role, s in zip(("centre", "neighbour"), species):
                z = _species_number(s, f"{role} species")
                if not (atoms.numbers == z).any():
                    raise SimsInputError(f"{role} species {s!r} is not in the target's system; present: "
                                         f"{sorted(set(atoms.get_chemical_symbols()))}")
            species = (species[0], species[1])
        self.r, self.g, self.atoms = r, g, atoms.copy()
        self.temperature, self.species, self.weight = float(temperature), species, float(weight)

    @property
    def spacing(self) -> float:
        """Bin width, Å."""
        return float(self.r[-1] - self.r[0]) / (self.r.size - 1)

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, Å, ``(len(r) + 1,)``."""
        h = self.spacing
        return np.linspace(self.r[0] - 0.5 * h, self.r[-1] + 0.5 * h, self.r.size + 1)

    @property
    def r_max(self) -> float:
        """Last bin edge, Å."""
        return float(self.edges[-1])

    @classmethod
    def from_frames(cls, frames, *, r_max: float, bins: int = 100, temperature: float | None = None,
                    species: tuple[str, str] | None = None, weight: float = 1.0,
                    pressure: float | None = None, vacf_lags: int | None = None) -> "RDFTarget":
        """The target of a trajectory: its g(r) (:func:`reprs.structure.rdf`) and its last frame as the system.

        Parameters
        ----------
        frames : ase.Atoms or sequence of ase.Atoms
            Periodic configurations of one state point.
        r_max : float
            Å.
        bins : int
            Bins on ``[0, r_max]``.
        temperature : float, optional
            K; default the mean kinetic temperature of the frames (their momenta, over ``3N - 3``
            degrees of freedom where the total momentum is zero; or their ``info["temperature"]``
            as :class:`sims.MD` records it).
        species, weight, pressure
            As for the constructor.
        vacf_lags : int, optional
            Also take the frames' VACF (:func:`sims.analysis.vacf`) up to this many frame
            intervals as the target's ``vacf``; the frames need velocities and ``info["time"]``
            (fs, as :class:`sims.MD` records it) evenly spaced, which gives ``vacf_dt``.
        """
        frames = as_frames(frames, require_cell=True)
        vacf = vacf_dt = None
        if vacf_lags is not None:
            vacf, vacf_dt = _frames_vacf(frames, vacf_lags)
        if temperature is None:
            temperature = float(np.mean([_frame_temperature(f) for f in frames]))
            if not temperature > 0:
                raise SimsInputError("the frames carry no velocities or temperatures; pass temperature= (K)")
        result = structure_rdf(frames, r_max=r_max, bins=bins, species=species)
        return cls(result.r, result.g, frames[-1], temperature, species=species, weight=weight, pressure=pressure,
                   vacf=vacf, vacf_dt=vacf_dt)

    @classmethod
    def from_file(cls, path: str | os.PathLike, atoms: Atoms, temperature: float, *,
                  species: tuple[str, str] | None = None, weight: float = 1.0) -> "RDFTarget":
        """Read a two-column ``r g`` text file (whitespace or comma separated, ``#`` comments).

        Raises
        ------
        SimsInputError
            The file is missing, unreadable as numbers, or has not exactly two columns.
        """
        path = Path(path)
        if not path.is_file():
            raise SimsInputError(f"RDF file {str(path)!r} not found")
        text = path.read_text().replace(",", " ")
        try:
            data = np.loadtxt(text.splitlines(), ndmin=2)
        except ValueError as err:
            raise SimsInputError(f"RDF file {str(path)!r} is not two columns of numbers: {err}") from None
        if data.shape[1] != 2:
            raise SimsInputError(f"RDF file {str(path)!r} has {data.shape[1]} columns; expected two, r (Å) and g")
        return cls(data[:, 0], data[:, 1], atoms, temperature, species=species, weight=weight)

    def save(self, path: str | os.PathLike) -> None:
        """Write the two-column ``r g`` text file :meth:`from_file` reads (atomically)."""
        with atomic_open(path, "w") as f:
            np.savetxt(f, np.column_stack([self.r, self.g]), header="r [Angstrom]  g(r)")


def _frame_temperature(atoms: Atoms) -> float:
    """Kinetic temperature of a frame, K: ``2 KE / (f kB)`` from its momenta with ``f = 3N - 3`` degrees
    of freedom where its total momentum is zero (a Nose-Hoover, NVE or centre-of-mass-fixed run, as
    LAMMPS's ``compute temp`` counts them) and ``3N`` otherwise; without momenta its
    ``info["temperature"]`` (which :class:`sims.MD` counts over ``3N``, ASE's convention).

    Over ``3N`` a zero-momentum run at 120 K reads ``120 (3N - 3) / 3N``: 116.3 K at 32 atoms.
    """
    p = atoms.get_momenta()
    if p is None or not np.any(p):
        return float(atoms.info["temperature"]) if "temperature" in atoms.info else 0.0
    n = len(atoms)
    fixed = n > 1 and np.linalg.norm(p.sum(0)) <= 1e-8 * np.abs(p).sum()
    return float(2 * atoms.get_kinetic_energy() / ((3 * n - 3 if fixed else 3 * n) * units.kB))


def _check_vacf(vacf, vacf_dt) -> tuple[np.ndarray | None, float | None]:
    if vacf is None:
        if vacf_dt is not None:
            raise SimsInputError("vacf_dt is given without vacf; give both or neither")
        return None, None
    c = np.asarray(vacf, dtype=float)
    if c.ndim != 1 or c.size < 2:
        raise SimsInputError(f"vacf must be a 1-D array of at least 2 lags, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise SimsInputError(f"vacf has a non-finite value at lag {int(np.flatnonzero(~np.isfinite(c))[0])}")
    if abs(c[0] - 1.0) > 1e-6:
        raise SimsInputError(f"vacf must be normalised, C(t)/C(0) starting at 1; its first value is {c[0]}")
    if vacf_dt is None or not (math.isfinite(vacf_dt) and vacf_dt > 0):
        raise SimsInputError(f"vacf needs vacf_dt > 0 (fs between its values), got {vacf_dt}")
    return c, float(vacf_dt)


def _frames_vacf(frames, lags: int) -> tuple[np.ndarray, float]:
    """The normalised VACF of ``frames`` up to ``lags`` frame intervals, and that interval (fs)."""
    from .analysis import vacf

    if any(f.get_momenta() is None or not np.any(f.get_momenta()) for f in frames):
        raise SimsInputError("vacf_lags needs frames with velocities; these frames carry none")
    if not all("time" in f.info for f in frames):
        raise SimsInputError("vacf_lags needs info['time'] (fs) on every frame, as sims.MD records it")
    times = np.array([float(f.info["time"]) for f in frames])
    dt = np.diff(times)
    if dt.size == 0 or not (dt > 0).all() or np.abs(dt - dt[0]).max() > 1e-6 * dt[0]:
        raise SimsInputError("vacf_lags needs frames evenly spaced in time (info['time'] in fs); these are not")
    return vacf(np.stack([f.get_velocities() for f in frames]), max_lag=lags), float(dt[0])


def smeared_rdf(positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor, pairs: PairList,
                edges: torch.Tensor, width: float, species: tuple[int, int] | None = None) -> torch.Tensor:
    """A differentiable g(r): each pair distance spread as a Gaussian of standard deviation ``width``.

    A pair at distance ``d`` adds to bin ``[lo, hi)`` the Gaussian's mass in it,
    ``(erf((hi - d)/(sqrt 2 w)) - erf((lo - d)/(sqrt 2 w))) / 2``, so as ``width -> 0`` each pair
    falls wholly in its bin and g equals :func:`reprs.structure.rdf` (same normalisation:
    ``g_ab = n_ab V / (N_a (N_b - N_ab/N_a) V_shell)``, ordered pairs, every periodic image). The
    mdgrad code of arXiv:2209.07679 smears with Gaussians at bin centres instead, whose sum is not
    a histogram at any width.

    Parameters
    ----------
    positions, cell, numbers
        One configuration (Å), differentiable in positions (and cell).
    pairs : PairList
        Half or full list built with a cutoff of at least ``edges[-1] + 5 width``.
    edges : torch.Tensor
        Bin edges, Å.
    width : float
        Gaussian standard deviation, Å (> 0).
    species : (int, int), optional
        Atomic numbers of centre and neighbour; None: all atoms.

    Returns
    -------
    torch.Tensor
        g per bin, dtype of ``positions``.
    """
    vec = pair_vectors(positions, cell, pairs)
    d = torch.sqrt((vec * vec).sum(-1))
    zi, zj = numbers.index_select(0, pairs.i), numbers.index_select(0, pairs.j)
    # Ordered (centre, neighbour) pairs each listed pair stands for: a half list holds each
    # unordered pair once, so (i, j) counts as (i, j) and as (j, i); a full list holds both.
    if species is None:
        w = torch.full_like(d, 2.0 if pairs.half else 1.0)
        n_a = numbers.numel()
        others = n_a - 1.0
    else:
        a, b = species
        w = ((zi == a) & (zj == b)).to(d)
        if pairs.half:
            w = w + ((zi == b) & (zj == a)).to(d)
        n_a = int((numbers == a).sum())
        n_b = int((numbers == b).sum())
        others = n_b - (n_b if a == b else 0) / n_a
    e = edges.to(d)
    cdf = torch.erf((e[None, :] - d[:, None]) / (math.sqrt(2.0) * width))
    hist = 0.5 * (w @ (cdf[:, 1:] - cdf[:, :-1]))
    shell = 4.0 / 3.0 * math.pi * (e[1:] ** 3 - e[:-1] ** 3)
    volume = torch.abs(torch.linalg.det(cell))
    return hist * volume / (n_a * others * shell)


@dataclass
class FitResult:
    """The outcome of :func:`diffsim` or :func:`ibi`.

    Attributes
    ----------
    potential : torch.nn.Module
        The fitted potential (usable by :class:`sims.MD`).
    history : list of dict
        One row per epoch (iteration): ``epoch``, ``loss`` (the weighted sum), ``loss_<k>`` per
        target, ``rdf_rmse_<k>`` (RMS of ``g - g_target``), and the scalar parameters of the
        potential after that epoch (LJ ``sigma`` Å, ``epsilon`` eV); DiffSim adds ``grad_norm``
        and, for a target with a pressure, ``pressure_<k>`` (bar) and ``loss_pressure_<k>``, with a
        VACF ``loss_vacf_<k>`` and ``vacf_rmse_<k>`` (``k`` the first target of its state point).
    rdfs : list of numpy.ndarray
        The simulated g(r) of each target at the last epoch, on the target's ``r``.
    vacfs : list of numpy.ndarray or None
        DiffSim: the simulated normalised VACF of each target with a ``vacf`` at the last epoch, on
        the target's lags (None for the others).
    method : str
        ``"diffsim"`` or ``"ibi"``.
    """

    potential: torch.nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    rdfs: list[np.ndarray] = field(default_factory=list)
    method: str = "diffsim"
    vacfs: list[np.ndarray | None] = field(default_factory=list)


def _trainable(potential: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    named = [(n, p) for n, p in potential.named_parameters() if p.requires_grad]
    if not named:
        raise SimsInputError(f"{type(potential).__name__} has no trainable parameters; diffsim fits parameters "
                             "(LennardJones, TabulatedPair, NeuralPair, or any module with requires_grad parameters)")
    return named


def _scalar_parameters(potential: torch.nn.Module) -> dict[str, float]:
    return {n: float(p.detach()) for n, p in potential.named_parameters() if p.numel() == 1}


def _check_box(atoms: Atoms, cutoff: float, what: str) -> None:
    cell = np.asarray(atoms.cell[:])
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    if heights.min() < 2 * cutoff:
        raise SimsInputError(f"{what}: the box (smallest width {heights.min():.3f} Å) is smaller than twice the "
                             f"cutoff ({cutoff} Å); use a larger system (atoms.repeat) or a shorter cutoff")


def _group(targets: Sequence[RDFTarget]) -> list[list[int]]:
    """Indices of targets that share one system (same atoms and temperature): one simulation each."""
    groups: list[list[int]] = []
    keys: list[tuple] = []
    for k, t in enumerate(targets):
        key = (t.temperature, t.atoms.numbers.tobytes(), np.asarray(t.atoms.cell[:]).tobytes(),
               t.atoms.positions.tobytes())
        if key in keys:
            groups[keys.index(key)].append(k)
        else:
            keys.append(key)
            groups.append([k])
    return groups


def _check_targets(targets, what: str) -> list[RDFTarget]:
    if isinstance(targets, RDFTarget):
        targets = [targets]
    targets = list(targets)
    if not targets or not all(isinstance(t, RDFTarget) for t in targets):
        raise SimsInputError(f"{what} needs one or more RDFTarget objects, got {targets!r}")
    return targets


def _fit_key(targets: Sequence[RDFTarget], settings: Mapping[str, Any]) -> str:
    """The key a checkpoint records of what its fit was fitted to: every target's data (g, r, the
    system's exact numbers, temperature, species, weight, pressure, VACF) and the settings that
    shape the result (not the number of epochs, which a resume may raise)."""
    return content_hash({"settings": dict(settings), "targets": [
        {"r": t.r, "g": t.g, "numbers": t.atoms.numbers, "positions": t.atoms.positions,
         "cell": np.asarray(t.atoms.cell[:]), "pbc": t.atoms.pbc.astype(int), "temperature": t.temperature,
         "species": t.species, "weight": t.weight, "pressure": t.pressure, "vacf": t.vacf, "vacf_dt": t.vacf_dt}
        for t in targets]})


def _check_fit_key(payload: Mapping[str, Any], key: str, path: Path, what: str) -> None:
    # A checkpoint from before the key was recorded has none and is resumed as before.
    if "fit_key" in payload and payload["fit_key"] != key:
        raise SimsInputError(f"{path} is the checkpoint of a {what} fit of other targets or settings (key "
                             f"{payload['fit_key']}, this fit {key}); use a new checkpoint path, or the same "
                             "targets and settings to resume")


def _system_vacf(members: Sequence[RDFTarget], timestep: float,
                 steps_per_epoch: int) -> tuple[np.ndarray, int] | None:
    """The VACF target of a state point and its interval in MD steps, or None; checked against the run."""
    given = [t for t in members if t.vacf is not None]
    if not given:
        return None
    first = given[0]
    if any(t.vacf_dt != first.vacf_dt or not np.array_equal(t.vacf, first.vacf) for t in given):
        raise SimsInputError("targets sharing one state point give different VACFs; give it on one of them")
    stride = first.vacf_dt / timestep
    if abs(stride - round(stride)) > 1e-6 * stride or round(stride) < 1:
        raise SimsInputError(f"vacf_dt ({first.vacf_dt} fs) must be a whole multiple of the timestep ({timestep} fs)")
    stride = int(round(stride))
    window = (len(first.vacf) - 1) * stride
    if window > steps_per_epoch:
        raise SimsInputError(f"the VACF spans {window} steps ({len(first.vacf) - 1} x {first.vacf_dt} fs) but an epoch "
                             f"runs {steps_per_epoch}: raise steps_per_epoch or shorten the VACF")
    return first.vacf, stride


class _System:
    """One simulated state point: its state, integrator variables, and the targets it serves."""

    def __init__(self, target: RDFTarget, members: list[int], integrator: Integrator, seed, device, dtype):
        self.state = State.from_atoms(target.atoms, device=device, dtype=dtype)
        # Velocities and thermostat noise: two independent streams of the state point's seed.
        v = maxwell_boltzmann(self.state.masses, target.temperature, seed=None if seed is None else (*seed, 0))
        self.integrator = integrator
        self.state, self.run = integrator.start(self.state.with_(velocities=v), None if seed is None else (*seed, 1))
        self.members = members


def _snapshot(state: State, run: dict[str, Any]) -> dict[str, Any]:
    """Plain copies of what a segment starts from (positions, velocities, integrator variables)."""
    out: dict[str, Any] = {"positions": state.positions.detach().clone(), "velocities": state.velocities.detach().clone()}
    for k, v in run.items():
        if isinstance(v, torch.Generator):
            out[k] = v.get_state()
        elif isinstance(v, list):
            out[k] = [float(x) for x in v]
        else:
            out[k] = v
    return out


def _restore(snap: dict[str, Any], state: State, run: dict[str, Any], leaves: bool):
    """State and run variables from a snapshot; with ``leaves`` the continuous ones are fresh leaf
    tensors requiring grad (the start of a recomputed segment)."""
    pos, vel = snap["positions"].clone(), snap["velocities"].clone()
    carried: list[torch.Tensor] = []
    if leaves:
        pos.requires_grad_(True)
        vel.requires_grad_(True)
        carried += [pos, vel]
    for k, v in snap.items():
        if k in ("positions", "velocities"):
            continue
        if isinstance(run.get(k), torch.Generator):
            run[k].set_state(v)
        elif isinstance(v, list):
            if leaves:
                run[k] = [torch.tensor(x, dtype=pos.dtype, device=pos.device, requires_grad=True) for x in v]
                carried += run[k]
            else:
                run[k] = list(v)
        else:
            run[k] = v
    return state.with_(positions=pos, velocities=vel), carried


def _carried(state: State, run: dict[str, Any]) -> list:
    """The continuous end-state variables, in the order :func:`_restore` makes leaves of them."""
    out = [state.positions, state.velocities]
    for k, v in run.items():
        if isinstance(v, list):
            out += list(v)
    return out


class _Segment:
    """Runs ``n`` steps from a state, sampling the smeared RDFs of a system's targets."""

    def __init__(self, potential, targets: Sequence[RDFTarget], edges, species, width, sample_every, r_list,
                 on_step: Callable[[int, torch.Tensor], None], pressure: bool = False, vacf_every: int = 0):
        self.potential, self.targets, self.edges, self.species = potential, targets, edges, species
        self.pressure, self.vacf_every = pressure, vacf_every
        self.width, self.sample_every, self.r_list, self.on_step = width, sample_every, r_list, on_step
        # With a list here, every sampled frame is also kept as (positions, [g of each target]).
        self.frames: list | None = None

    def __call__(self, system: _System, state: State, n: int, start: int, graph: bool):
        """End state, the summed samples (RDFs, then the pressure), and the velocities at epoch steps
        that are multiples of ``vacf_every`` (the segment's first step only at step 0: an earlier
        segment's last step is its start)."""
        nl = NeighborList(cutoff=self.r_list, skin=1.0, half=True)
        cell, pbc, numbers = state.cell, state.pbc, state.numbers

        def force_fn(x):
            if not graph:
                x = x.detach()
            e, f, _ = compute(self.potential, x, cell, numbers, nl.update(x, cell, pbc), create_graph=graph)
            return e, f

        energy, forces = force_fn(state.positions)
        sums = [torch.zeros(len(e) - 1, dtype=state.positions.dtype, device=state.positions.device) for e in self.edges]
        if self.pressure:
            sums.append(torch.zeros(1, dtype=state.positions.dtype, device=state.positions.device))
        every = self.vacf_every
        velocities = [state.velocities if graph else state.velocities.detach()] if every and start == 0 else []
        for k in range(start, start + n):
            state, energy, forces = system.integrator.step(state, energy, forces, force_fn, system.run)
            self.on_step(k + 1, energy)
            if every and k + 1 > 0 and (k + 1) % every == 0:
                velocities.append(state.velocities if graph else state.velocities.detach())
            if (k + 1) % self.sample_every == 0:
                x = state.positions if graph else state.positions.detach()
                pairs = nl.update(x, cell, pbc)
                gs = [smeared_rdf(x, cell, numbers, pairs, e, self.width, sp) for e, sp in zip(self.edges, self.species)]
                for t, g in enumerate(gs):
                    sums[t] = sums[t] + g
                if self.frames is not None:
                    self.frames.append((x.detach(), [g.detach() for g in gs]))
                if self.pressure:
                    sums[-1] = sums[-1] + _pressure(self.potential, state, x, pairs, graph)
        if not graph:
            state = state.with_(positions=state.positions.detach(), velocities=state.velocities.detach())
        return state, sums, velocities


def _torch_vacf(v: torch.Tensor, n_lags: int) -> torch.Tensor:
    """:func:`sims.analysis.vacf` of ``v`` ``(T, N, 3)`` in torch (differentiable), lags ``0 .. n_lags - 1``."""
    n = v.shape[0]
    c = torch.stack([(v[: n - lag] * v[lag:]).sum(-1).mean() for lag in range(n_lags)])
    return c / c[0]


def _pressure(potential, state: State, x: torch.Tensor, pairs, graph: bool) -> torch.Tensor:
    """Instantaneous pressure, bar: ``(2 KE - tr(V sigma)) / (3 V)`` with ``sigma`` the potential's
    stress (ASE's sign, :func:`sims.md.compute`) and KE the kinetic energy."""
    _, _, stress = compute(potential, x, state.cell, state.numbers, pairs, forces=False, stress=True,
                           create_graph=graph)
    volume = torch.abs(torch.linalg.det(state.cell))
    v = state.velocities if graph else state.velocities.detach()
    ke = 0.5 * (state.masses[:, None] * v * v).sum()
    return ((2.0 * ke / (3.0 * volume) - torch.diagonal(stress).sum() / 3.0) / units.bar).reshape(1)


def _reweighted_epoch(potential, seg: _Segment, system: _System, members: Sequence[RDFTarget], steps: int,
                      cutoff: float, diverged, params: list[torch.Tensor]
                      ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One epoch's RDF loss of a state point and its equilibrium gradient by reweighting.

    Runs ``steps`` steps without a graph, keeping every sampled frame's positions and g. The loss
    ``L = sum_k w_k mean_r (<g_k> - g_target,k)^2`` has the canonical-ensemble gradient
    ``2 sum_k w_k mean_r (<g_k> - g_target,k) d<g_k>/dtheta`` with the fluctuation formula
    ``d<g>/dtheta = -beta (<g dU/dtheta> - <g><dU/dtheta>)`` (an observable without explicit
    parameter dependence). Estimating ``<g> - g_target`` and the covariance from the same frames
    biases the gradient by that of the estimate's variance (the fit then drifts toward parameters
    whose g fluctuates less: a lower epsilon); so the frames are split into the epoch's first and
    second half, and each half's covariance is paired with the other half's ``<g> - g_target``:
    the gradient of ``sum_k w_k mean_r (<g_k>_1 - g_target,k)(<g_k>_2 - g_target,k)``, an unbiased
    estimate of L without its noise. It is accumulated into the parameters' ``.grad`` through one
    energy per frame, no graph through the dynamics, into ``params`` only. Returns the mean g of each
    target over all frames and their loss terms (detached).

    References
    ----------
    S. Thaler, J. Zavadlav, Nat. Commun. 12, 6884 (2021) (DiffTRe: gradients of ensemble averages
    by reweighting instead of backpropagation through the trajectory).
    """
    seg.frames = []
    system.state, sums, _ = seg(system, system.state, steps, 0, graph=False)
    frames, seg.frames = seg.frames, None
    n = len(frames)
    g_mean = [x.detach() / n for x in sums]
    losses = [t.weight * ((g - torch.as_tensor(t.g, dtype=g.dtype, device=g.device)) ** 2).mean()
              for g, t in zip(g_mean, members)]
    if not bool(torch.isfinite(sum(losses))):
        raise diverged(f"the loss became {float(sum(losses))}")
    halves = [frames[: n // 2], frames[n // 2:]]
    means = [[torch.stack([gs[k] for _, gs in half]).mean(0) for k in range(len(members))] for half in halves]
    beta = 1.0 / (units.kB * members[0].temperature)
    state = system.state
    nl = NeighborList(cutoff=cutoff, skin=1.0, half=True)
    for h, half in enumerate(halves):
        other = means[1 - h]
        adjoints = [t.weight * (g - torch.as_tensor(t.g, dtype=g.dtype, device=g.device)) / g.numel()
                    for g, t in zip(other, members)]
        for x, gs in half:
            c = sum(float((a * (g - gm)).sum()) for a, g, gm in zip(adjoints, gs, means[h]))
            energy = potential(x, state.cell, state.numbers, nl.update(x, state.cell, state.pbc))
            (-beta * c / len(half) * energy).backward(inputs=params)
    return g_mean, losses


def diffsim(potential: torch.nn.Module, targets: RDFTarget | Sequence[RDFTarget], *, epochs: int,
            steps_per_epoch: int, equilibration: int = 0, lr: float | Mapping[str, float] = 1e-3,
            timestep: float = 2.0, thermostat: str = "nose_hoover_chain", tau: float | None = None,
            friction: float | None = None, sample_every: int = 5, segment: int | None = None, width: float = 0.05,
            optimizer: str = "adam", lr_decay: float = 1.0, clip: float | None = None, pressure_scale: float = 100.0,
            vacf_weight: float = 1.0, gradient: str = "backprop", momentum: float = 0.9, seed: int | None = 0,
            checkpoint: str | os.PathLike | None = None, callback: Callable[[dict[str, float]], None] | None = None,
            device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> FitResult:
    """Fit ``potential`` to target RDFs by differentiating through NVT molecular dynamics (DiffSim).

    Every epoch, at each target's state point (targets sharing a system share one simulation), the
    system runs ``equilibration`` steps without gradient, then ``steps_per_epoch`` differentiated
    steps; the smeared g(r) (:func:`smeared_rdf`) is averaged over frames every ``sample_every``
    steps and the loss ``sum_k weight_k mean_r (g_k - g_target,k)^2`` is backpropagated through the
    trajectory into the potential's trainable parameters, which Adam then updates. Each state point
    continues from where its last epoch ended. Memory is bounded by checkpointing over segments of
    ``segment`` steps (default ``~sqrt(steps_per_epoch)``, a multiple of ``sample_every``): the
    gradient equals full backpropagation through the window.

    Parameters
    ----------
    potential : torch.nn.Module
        A potential with trainable parameters and a ``cutoff`` (Å); updated in place.
    targets : RDFTarget or sequence of RDFTarget
        One or more state points (and species pairs); several share one potential.
    epochs : int
        Updates.
    steps_per_epoch : int
        Differentiated MD steps per epoch and state point.
    equilibration : int
        Undifferentiated steps before them, each epoch.
    optimizer : {"adam", "sgd"}
        Adam, or plain gradient descent (the update is then ``-lr`` times the gradient).
    momentum : float
        Adam's first-moment decay ``beta_1`` in [0, 1) (its second stays 0.999). The default 0.9
        carries a step on for about ten epochs after the gradient turns; a lower value shortens
        that memory (and averages the gradient's noise less).
    lr_decay : float
        The learning rate of epoch ``e`` (0-based) is ``lr lr_decay^e``: a decay in (0, 1) damps the
        overshoot of Adam's momentum and the jitter of noisy gradients late in a fit.
    pressure_scale : float
        bar; the pressure term of a target with ``pressure`` is ``weight ((P - pressure) / pressure_scale)^2``.
    vacf_weight : float
        The VACF term of a target with ``vacf`` is ``weight vacf_weight mean_t (C(t)/C(0) - vacf)^2``,
        ``C`` the velocity autocorrelation of all atoms over the epoch's differentiated steps, every
        ``vacf_dt`` a time origin (:func:`sims.analysis.vacf` of those velocities). Its gradient
        reaches each segment as the adjoint of that segment's velocities, so it does not depend
        on ``segment``.
    gradient : {"backprop", "reweight"}
        How the loss reaches the parameters. ``"backprop"``: through the differentiated trajectory
        (checkpointed; the method of arXiv:2209.07679), which sees how g responds within one epoch's
        window, and carries the pressure and VACF terms. ``"reweight"``: the equilibrium gradient of
        the epoch's mean g by the canonical fluctuation formula ``d<g>/dtheta = -beta Cov(g, dU/dtheta)``
        (Thaler & Zavadlav, Nat. Commun. 12, 6884 (2021)), the loss's difference and the covariance
        taken from the two halves of the epoch's frames so that the noise of the mean g does not
        bias it: no graph through the dynamics, one energy per sampled frame, and it sees slow
        structural responses that a short window misses (how deep the well is, which sets g of a
        dilute fluid); RDF targets only. ``segment`` is unused; ``width`` can be small (0.01 Å).
    clip : float, optional
        Rescale the gradient to at most this norm (gradients through long chaotic trajectories
        explode; arXiv:2209.07679 keeps the differentiated windows short for the same reason).
    lr : float or mapping
        Learning rate (units of each parameter per step), or ``{name: lr}`` per named
        parameter (``{"sigma": 0.01, "epsilon": 2e-4}``; names not given are held fixed).
    timestep : float
        fs.
    thermostat : {"nose_hoover_chain", "langevin"}
        NVT integrator (:class:`sims.NoseHooverChain` with period ``tau`` fs, default 100, or
        :class:`sims.Langevin` with ``friction`` 1/fs, default 0.01, whose noise is replayed exactly
        when a segment is recomputed); the other thermostat's setting is refused.
    sample_every : int
        Steps between sampled frames.
    segment : int, optional
        Steps per checkpointed segment.
    width : float
        Gaussian smearing of the RDF, Å.
    seed : int, optional
        Seeds velocities and thermostat noise (independent streams per state point).
    checkpoint : path, optional
        Written after every epoch (atomically: potential, optimiser, states, history); a rerun with
        the same file resumes after its last epoch. The file records a key of the targets and the
        settings (all but ``epochs``, ``segment``, ``callback``, ``device``): a fit of others is refused,
        as is a potential other than the fit's starting one or the one its last checkpoint left (the
        potential this fit trained in place, given again).
    callback : callable, optional
        ``callback(row)`` after each epoch with the history row (progress bars).
    device, dtype
        Of the simulation; default the potential's dtype.

    Returns
    -------
    FitResult

    Raises
    ------
    SimsInputError
        No trainable parameters, a box smaller than twice the cutoff, bad settings: before any
        simulation runs.
    FitDiverged
        A simulation's energy, the loss or a gradient became non-finite; the error names the epoch
        and holds the parameters that caused it (the potential keeps them: none are NaN).

    References
    ----------
    W. Wang, Z. Wu, J. C. B. Dietschreit, R. Gómez-Bombarelli, J. Chem. Phys. 158, 044113 (2023),
    arXiv:2209.07679, eq. 5-7 (RDF loss, gradient by backpropagation through the simulation).

    Examples
    --------
    >>> pot = sims.potentials.LennardJones(sigma=3.0, epsilon=0.012, cutoff=8.5)  # doctest: +SKIP
    >>> result = diffsim(pot, target, epochs=30, steps_per_epoch=200, lr={"sigma": 0.02, "epsilon": 5e-4})  # doctest: +SKIP
    """
    targets = _check_targets(targets, "diffsim")
    named = _trainable(potential)
    if not hasattr(potential, "cutoff"):
        raise SimsInputError("the potential needs a `cutoff` attribute (Å)")
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch), ("sample_every", sample_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SimsInputError(f"{name} must be an integer >= 1, got {value!r}")
    if equilibration < 0:
        raise SimsInputError(f"equilibration must be >= 0 steps, got {equilibration}")
    if steps_per_epoch < sample_every:
        raise SimsInputError(f"steps_per_epoch ({steps_per_epoch}) must be >= sample_every ({sample_every}): "
                             "an epoch must sample at least one frame")
    if not width > 0:
        raise SimsInputError(f"width must be > 0 Å, got {width}")
    if not 0 < lr_decay <= 1:
        raise SimsInputError(f"lr_decay must be in (0, 1], got {lr_decay}")
    if not (math.isfinite(pressure_scale) and pressure_scale > 0):
        raise SimsInputError(f"pressure_scale must be > 0 bar, got {pressure_scale}")
    if not (math.isfinite(vacf_weight) and vacf_weight > 0):
        raise SimsInputError(f"vacf_weight must be > 0, got {vacf_weight}")
    if clip is not None and not clip > 0:
        raise SimsInputError(f"clip must be > 0, got {clip}")
    if thermostat not in ("nose_hoover_chain", "langevin"):
        raise SimsInputError(f"thermostat must be 'nose_hoover_chain' or 'langevin', got {thermostat!r}")
    ignored = "tau" if thermostat == "langevin" and tau is not None else \
        "friction" if thermostat == "nose_hoover_chain" and friction is not None else None
    if ignored:  # it was accepted and not read
        raise SimsInputError(f"{ignored} is not read with thermostat={thermostat!r} (tau is the Nose-Hoover period, "
                             "friction the Langevin friction); leave it out or change the thermostat")
    tau = 100.0 if tau is None else tau
    friction = 0.01 if friction is None else friction
    if gradient not in ("backprop", "reweight"):
        raise SimsInputError(f"gradient must be 'backprop' or 'reweight', got {gradient!r}")
    if gradient == "reweight" and any(t.pressure is not None or t.vacf is not None for t in targets):
        raise SimsInputError("gradient='reweight' fits RDFs only; a pressure or VACF target needs gradient='backprop'")
    if gradient == "reweight" and steps_per_epoch // sample_every < 4:
        raise SimsInputError(f"gradient='reweight' needs at least 4 sampled frames per epoch (two halves, each with a "
                             f"covariance), got {steps_per_epoch // sample_every}: raise steps_per_epoch or lower "
                             "sample_every")
    cutoff = float(potential.cutoff)
    for k, t in enumerate(targets):
        _check_box(t.atoms, cutoff, f"targets[{k}]")
    if isinstance(lr, Mapping):
        names = {n for n, _ in named}
        unknown = sorted(set(lr) - names)
        if unknown:
            raise SimsInputError(f"lr names unknown parameters {unknown}; trainable: {sorted(names)}")
        # The others are held fixed by staying out of the optimiser and out of the gradients'
        # inputs, never by clearing their requires_grad: the caller's module is left as it came.
        groups = [{"params": [p], "lr": float(lr[n])} for n, p in named if n in lr]
    else:
        groups = [{"params": [p for _, p in named], "lr": float(lr)}]
    if not all(g["lr"] > 0 for g in groups):
        raise SimsInputError(f"learning rates must be > 0, got {lr}")
    if segment is None:
        segment = max(1, round(math.sqrt(steps_per_epoch / sample_every))) * sample_every
    if segment < 1:
        raise SimsInputError(f"segment must be >= 1 step, got {segment}")
    dtype = potential_dtype(potential) if dtype is None else dtype
    if optimizer not in ("adam", "sgd"):
        raise SimsInputError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if not 0 <= momentum < 1:
        raise SimsInputError(f"momentum (Adam's beta_1) must be in [0, 1), got {momentum}")
    opt = torch.optim.Adam(groups, betas=(momentum, 0.999)) if optimizer == "adam" else torch.optim.SGD(groups)
    base_lrs = [g["lr"] for g in groups]

    systems = []
    for s, members in enumerate(_group(targets)):
        t0 = targets[members[0]]
        integ = (NoseHooverChain(timestep, t0.temperature, tau=tau) if thermostat == "nose_hoover_chain"
                 else Langevin(timestep, t0.temperature, friction=friction))
        systems.append(_System(t0, members, integ, None if seed is None else (seed, s), device, dtype))
        pressures = {targets[k].pressure for k in members if targets[k].pressure is not None}
        if len(pressures) > 1:
            raise SimsInputError(f"targets sharing one system give different pressures {sorted(pressures)} bar")
        systems[-1].pressure = pressures.pop() if pressures else None
        systems[-1].vacf = _system_vacf([targets[k] for k in members], timestep, steps_per_epoch)
    history: list[dict[str, float]] = []
    start_epoch = 0
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    fit_key = None if ckpt_path is None else _fit_key(targets, {
        "method": "diffsim", "potential": type(potential).__name__, "steps_per_epoch": int(steps_per_epoch),
        "equilibration": int(equilibration), "lr": dict(lr) if isinstance(lr, Mapping) else float(lr),
        "timestep": timestep, "thermostat": thermostat, "tau": tau, "friction": friction,
        "sample_every": int(sample_every), "width": width, "optimizer": optimizer, "lr_decay": lr_decay,
        "clip": clip, "pressure_scale": pressure_scale, "vacf_weight": vacf_weight, "gradient": gradient,
        "momentum": momentum, "seed": seed, "dtype": str(dtype)})
    start = None if ckpt_path is None else _start_key(potential)
    if ckpt_path is not None and ckpt_path.exists():
        start_epoch, history, rdfs, vacfs, start = _load_checkpoint(ckpt_path, potential, opt, systems, fit_key,
                                                                    start)
    else:
        rdfs = [np.zeros_like(t.g) for t in targets]
        vacfs = [None] * len(targets)
    for epoch in range(start_epoch, epochs):
        params_before = {n: p.detach().clone() for n, p in potential.named_parameters()}

        def diverged(what: str) -> FitDiverged:
            with torch.no_grad():  # the potential keeps the parameters that caused it, never NaN ones
                for n, p in potential.named_parameters():
                    p.copy_(params_before[n])
            shown = {n: float(v) for n, v in params_before.items() if v.numel() == 1}
            return FitDiverged(f"diffsim diverged at epoch {epoch}: {what}; parameters {shown or '(tensors)'} "
                               "(reduce the timestep or the learning rate, or add a repulsive prior)",
                               epoch=epoch, parameters=params_before)

        opt.zero_grad(set_to_none=True)
        for group, base in zip(opt.param_groups, base_lrs):
            group["lr"] = base * lr_decay ** epoch
        row: dict[str, float] = {"epoch": float(epoch + 1)}
        total = 0.0
        for system in systems:
            members = [targets[k] for k in system.members]
            edges = [torch.as_tensor(t.edges, dtype=dtype, device=device) for t in members]
            species = [None if t.species is None else tuple(_species_number(s, "species") for s in t.species)
                       for t in members]
            r_list = max(cutoff, max(t.r_max for t in members) + 5 * width)

            def on_step(k, energy):
                if not bool(torch.isfinite(energy)):
                    raise diverged(f"the energy became {float(energy)} at step {k} of the epoch")

            p_target = system.pressure
            v_target = system.vacf
            seg = _Segment(potential, members, edges, species, width, sample_every, r_list, on_step,
                           pressure=p_target is not None, vacf_every=0 if v_target is None else v_target[1])
            with torch.enable_grad():
                if equilibration:
                    system.state, _, _ = seg(system, system.state, equilibration, -equilibration, graph=False)
                if gradient == "reweight":
                    g_mean, losses = _reweighted_epoch(potential, seg, system, members, steps_per_epoch, cutoff,
                                                       diverged, [p for g in groups for p in g["params"]])
                    loss = sum(losses)
                else:
                    # Forward pass without graph: keep each segment's start, sum the sampled RDFs.
                    bounds = list(range(0, steps_per_epoch, segment)) + [steps_per_epoch]
                    snaps = []
                    sums = [torch.zeros(len(t.g), dtype=dtype, device=device) for t in members]
                    if p_target is not None:
                        sums.append(torch.zeros(1, dtype=dtype, device=device))
                    state = system.state
                    velocities, offsets = [], []
                    for a, b in zip(bounds[:-1], bounds[1:]):
                        snaps.append(_snapshot(state, system.run))
                        state, part, vel = seg(system, state, b - a, a, graph=False)
                        sums = [x + y.detach() for x, y in zip(sums, part)]
                        offsets.append(len(velocities))
                        velocities += vel
                    end = _snapshot(state, system.run)
                    n_samples = steps_per_epoch // sample_every
                    g_mean = [(x / n_samples).requires_grad_(True) for x in sums]
                    losses = []
                    for g, t in zip(g_mean, members):
                        target_g = torch.as_tensor(t.g, dtype=dtype, device=device)
                        losses.append(t.weight * ((g - target_g) ** 2).mean())
                    if p_target is not None:
                        w = max(t.weight for t in members if t.pressure is not None)
                        p_mean = g_mean[len(members)]
                        losses.append(w * (((p_mean - p_target) / pressure_scale) ** 2).sum())
                    v_all = None
                    if v_target is not None:
                        w = max(t.weight for t in members if t.vacf is not None)
                        v_all = torch.stack(velocities).requires_grad_(True)
                        c_norm = _torch_vacf(v_all, len(v_target[0]))
                        target_c = torch.as_tensor(v_target[0], dtype=dtype, device=device)
                        losses.append(w * vacf_weight * ((c_norm - target_c) ** 2).mean())
                    loss = sum(losses)
                    if not bool(torch.isfinite(loss)):
                        raise diverged(f"the loss became {float(loss)}")
                    adj_g = torch.autograd.grad(loss, g_mean + ([v_all] if v_all is not None else []))
                    adj_v = adj_g[-1] if v_all is not None else None
                    adj_g = [a / n_samples for a in adj_g[:len(g_mean)]]  # d loss / d (each sampled frame's g)
                    # Backward pass: recompute each segment with its graph, last first.
                    adj_end = None
                    for i in range(len(snaps) - 1, -1, -1):
                        start_state, leaves = _restore(snaps[i], system.state, system.run, leaves=True)
                        seg_end, part, vel = seg(system, start_state, bounds[i + 1] - bounds[i], bounds[i], graph=True)
                        outs, grads = list(part), list(adj_g)
                        if adj_v is not None:  # the VACF's adjoint of each velocity this segment recorded
                            outs += vel
                            grads += list(adj_v[offsets[i]:offsets[i] + len(vel)])
                        if adj_end is not None:
                            for o, a in zip(_carried(seg_end, system.run), adj_end):
                                if torch.is_tensor(o) and o.requires_grad and a is not None:
                                    outs.append(o)
                                    grads.append(a)
                        keep = [(o, a) for o, a in zip(outs, grads) if o.requires_grad]
                        torch.autograd.backward([o for o, _ in keep], [a for _, a in keep], inputs=leaves + [
                            p for g in groups for p in g["params"]])
                        adj_end = [leaf.grad for leaf in leaves]
                        del seg_end, part, vel, outs, grads, keep
                    system.state, _ = _restore(end, system.state, system.run, leaves=False)
            first = system.members[0]
            if p_target is not None:
                row[f"pressure_{first}"] = float(g_mean[len(members)].detach())
                row[f"loss_pressure_{first}"] = float(losses[len(members)].detach())
            if v_target is not None:
                c = c_norm.detach().cpu().double().numpy()
                for k in system.members:
                    vacfs[k] = c if targets[k].vacf is not None else None
                row[f"vacf_rmse_{first}"] = float(np.sqrt(np.mean((c - v_target[0]) ** 2)))
                row[f"loss_vacf_{first}"] = float(losses[-1].detach())
            for k, g, loss_k in zip(system.members, g_mean, losses):
                rdfs[k] = g.detach().cpu().double().numpy()
                row[f"loss_{k}"] = float(loss_k.detach())
                row[f"rdf_rmse_{k}"] = float(np.sqrt(np.mean((rdfs[k] - targets[k].g) ** 2)))
            total += float(loss.detach())
        grads = [p.grad for g in groups for p in g["params"] if p.grad is not None]
        # The squared norm as Adam's second moment sees it: an exploding (chaotic) gradient whose
        # square overflows would freeze Adam silently (its update becomes m / inf = 0) forever.
        norm2 = sum(float((x.double() ** 2).sum()) for x in grads)
        if not math.isfinite(norm2):
            raise diverged("the gradient became non-finite or exploded (its squared norm overflows)")
        row["grad_norm"] = math.sqrt(norm2)
        if clip is not None and row["grad_norm"] > clip:
            for x in grads:
                x.mul_(clip / row["grad_norm"])
        row["loss"] = total
        opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in potential.parameters()):
            raise diverged("the update made a parameter non-finite")
        row.update(_scalar_parameters(potential))
        history.append(row)
        if ckpt_path is not None:
            _save_checkpoint(ckpt_path, epoch + 1, history, potential, opt, systems, rdfs, vacfs, fit_key, start)
        if callback is not None:
            callback(row)
    return FitResult(potential=potential, history=history, rdfs=rdfs, method="diffsim", vacfs=vacfs)


_CKPT_FORMAT = "matrep.sims.fit.diffsim/1"


def _start_key(potential: torch.nn.Module) -> str:
    """A hash of the potential a diffsim fit starts from: its kind, parameters and buffers, and the
    plain settings it holds (a cutoff, a shift). Kept apart from the fit key, so that checkpoints
    written before it was recorded still resume."""
    state = {k: v.detach().cpu().double().numpy() for k, v in potential.state_dict().items()}
    plain = {k: v for k, v in vars(potential).items()
             if not k.startswith("_") and k != "training" and isinstance(v, (bool, int, float, str, tuple, list))}
    return content_hash({"kind": type(potential).__name__, "state": state, "settings": plain})


def _save_checkpoint(path: Path, epoch: int, history, potential, optimizer, systems, rdfs, vacfs, fit_key: str,
                     start: str) -> None:
    # "last": the potential as this checkpoint leaves it, which a fit continued in the same process
    # (the potential trained in place, given again) starts from
    payload = {"format": _CKPT_FORMAT, "fit_key": fit_key, "start": start, "last": _start_key(potential),
               "epoch": epoch, "history": history,
               "rdfs": [torch.as_tensor(g) for g in rdfs],
               "vacfs": [None if c is None else torch.as_tensor(c) for c in vacfs],
               "potential": {k: v.detach().cpu() for k, v in potential.state_dict().items()},
               "optimizer": optimizer.state_dict(),
               "systems": [_plain(_snapshot(s.state, s.run)) for s in systems]}
    with atomic_open(path, "wb") as f:
        torch.save(payload, f)


def _plain(snap: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in snap.items()}


def _read_checkpoint(path: Path, fmt: str, what: str) -> dict:
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as err:  # a truncated or foreign file: say so instead of a pickle traceback
        raise SimsInputError(f"{path} is not a {what} checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise SimsInputError(f"{path} is not a {what} checkpoint of this matrep version")
    return payload


def _load_checkpoint(path: Path, potential, optimizer, systems, fit_key: str,
                     start: str) -> tuple[int, list, list, list, str]:
    """The epoch, history, g(r)s and VACFs a fit resumes from, and the start key its checkpoints keep."""
    payload = _read_checkpoint(path, _CKPT_FORMAT, "diffsim")
    _check_fit_key(payload, fit_key, path, "diffsim")
    # The checkpoint's parameters replace the potential's: a fit asked to start elsewhere would
    # silently continue (or return) the fit that started from the recorded potential. The potential
    # the checkpoint left (the same object given again after the fit ran or was interrupted) is the
    # fit's own, continued.
    if "start" in payload and start not in (payload["start"], payload.get("last")):
        raise SimsInputError(f"{path} is the checkpoint of a diffsim fit that started from another potential "
                             "(other parameters or settings); use a new checkpoint path, or the same starting "
                             "potential to resume")
    if len(payload["systems"]) != len(systems):
        raise SimsInputError(f"{path} holds {len(payload['systems'])} state points but the fit has {len(systems)}; "
                             "it belongs to another fit")
    potential.load_state_dict(payload["potential"])
    optimizer.load_state_dict(payload["optimizer"])
    for s, snap in zip(systems, payload["systems"]):
        pos = snap["positions"].to(s.state.positions)
        snap = dict(snap, positions=pos, velocities=snap["velocities"].to(pos))
        s.state, _ = _restore(snap, s.state, s.run, leaves=False)
    rdfs = [g.double().numpy() for g in payload["rdfs"]]
    vacfs = [None if c is None else c.double().numpy() for c in payload.get("vacfs", [None] * len(rdfs))]
    return int(payload["epoch"]), list(payload["history"]), rdfs, vacfs, payload.get("start", start)


def ibi(targets: RDFTarget | Sequence[RDFTarget], *, iterations: int, alpha: float = 1.0, smoothing: float = 0.1,
        steps: int = 2000, equilibration: int = 500, sample_every: int = 10, timestep: float = 2.0,
        tau: float = 100.0, cutoff: float | None = None, g_min: float = 1e-3, seed: int | None = 0,
        checkpoint: str | os.PathLike | None = None, callback: Callable[[dict[str, float]], None] | None = None,
        engine: str = "sims", n_procs: int = 1,
        device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> FitResult:
    """Iterative Boltzmann Inversion: a tabulated pair potential that reproduces target RDFs.

    ``U_0(r) = -kT ln g_target(r)``; each iteration runs NVT MD (:class:`sims.NoseHooverChain`) with
    the current table, measures g_i (:func:`reprs.structure.rdf`, the target's bins) and updates
    ``U_{i+1} = U_i + alpha kT ln(g_i / g_target)`` where both g exceed ``g_min``; the update is
    smoothed with a Gaussian of standard deviation ``smoothing`` Å and the table shifted to zero at the
    cutoff. With several targets (state points) the updates are averaged (multi-state IBI). The
    table's knots are the target's bin centres from the first where every target's g exceeds
    ``g_min`` to the cutoff; below it the table continues linearly (:class:`TabulatedPair`).

    Parameters
    ----------
    targets : RDFTarget or sequence of RDFTarget
        One-component systems (total g, or the like pair of their one species), all on the same
        ``r`` grid.
    iterations : int
        Simulations (the last one measures the returned potential; updates come between them).
    alpha : float
        Damping of the update, in (0, 1].
    smoothing : float
        Å; 0 for none.
    steps, equilibration, sample_every : int
        Sampled steps, unsampled steps before them, and steps between frames, per iteration
        (each state point continues from where its last iteration ended).
    timestep, tau : float
        fs.
    cutoff : float, optional
        Å; default the last bin centre of the targets.
    g_min : float
        g below this is "no pairs" (no update there).
    seed : int, optional
        Seeds the initial velocities.
    checkpoint : path, optional
        Written after every iteration (atomically: table, states, history); a rerun with the same
        file resumes after its last iteration. The file records a key of the targets and the
        settings (all but ``iterations``, ``callback``, ``n_procs``, ``device``): a fit of others is refused.
    callback : callable, optional
        ``callback(row)`` after each iteration.
    engine : {"sims", "lammps"}
        Where the simulations run: our engine, or LAMMPS (:func:`sims.lammps.run`, the table as
        ``pair_style table linear``, the same Nose-Hoover chain settings as ``fix nvt``) for large
        systems. The update, the table and the checkpoint are the same for both.
    n_procs : int
        MPI ranks of each LAMMPS run (``engine="lammps"`` only).
    device, dtype
        Of the simulations (our engine; LAMMPS runs in float64 on the CPU).

    Returns
    -------
    FitResult
        ``potential`` a :class:`TabulatedPair`; ``history`` rows with ``loss`` (as :func:`diffsim`'s)
        and ``rdf_rmse_<k>`` of each iteration's potential; ``rdfs`` those of the returned one.

    Raises
    ------
    SimsInputError
        Mixtures, targets on different grids, a box smaller than twice the cutoff, bad settings,
        targets with a pressure or a VACF (terms IBI has no way to fit).

    References
    ----------
    D. Reith, M. Pütz, F. Müller-Plathe, J. Comput. Chem. 24, 1624 (2003), eq. 5-6;
    T. C. Moore, C. R. Iacovella, C. McCabe, J. Chem. Phys. 140, 224104 (2014) (several state points).
    """
    targets = _check_targets(targets, "ibi")
    # IBI inverts g(r) alone: a pressure or VACF term of a target would be dropped without a word
    extra = [k for k, t in enumerate(targets) if t.pressure is not None or t.vacf is not None]
    if extra:
        raise SimsInputError(f"ibi fits RDFs only, but targets {extra} carry a pressure or a VACF, which it would "
                             "ignore; fit those with diffsim (gradient='backprop') or drop them from the targets")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise SimsInputError(f"iterations must be an integer >= 1, got {iterations!r}")
    if not 0 < alpha <= 1:
        raise SimsInputError(f"alpha must be in (0, 1], got {alpha}")
    if not smoothing >= 0 or not g_min > 0:
        raise SimsInputError(f"need smoothing >= 0 Å and g_min > 0, got {smoothing}, {g_min}")
    if steps < sample_every or sample_every < 1 or equilibration < 0:
        raise SimsInputError(f"need steps >= sample_every >= 1 and equilibration >= 0, got {steps}, {sample_every}, "
                             f"{equilibration}")
    if engine not in ("sims", "lammps"):
        raise SimsInputError(f"engine must be 'sims' or 'lammps', got {engine!r}")
    if engine == "sims" and n_procs != 1:  # our engine runs in this process: the ranks would be ignored
        raise SimsInputError(f"n_procs = {n_procs} sets the MPI ranks of engine='lammps'; engine='sims' does not read it")
    first, last, knots, g_t, kT, weights, u = _inversion(targets, cutoff, g_min)
    rc = float(knots[-1])
    for k, t in enumerate(targets):
        _check_box(t.atoms, rc, f"targets[{k}]")
    h = float(knots[1] - knots[0])

    states: list[State | None] = [None] * len(targets)
    history: list[dict[str, float]] = []
    rdfs: list[np.ndarray] = []
    start = 0
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    fit_key = None if ckpt_path is None else _fit_key(targets, {
        "method": "ibi", "alpha": alpha, "smoothing": smoothing, "steps": int(steps),
        "equilibration": int(equilibration), "sample_every": int(sample_every), "timestep": timestep, "tau": tau,
        "cutoff": cutoff, "g_min": g_min, "seed": seed, "engine": engine, "dtype": str(dtype)})
    if ckpt_path is not None and ckpt_path.exists():
        payload = _read_checkpoint(ckpt_path, _IBI_FORMAT, "ibi")
        _check_fit_key(payload, fit_key, ckpt_path, "ibi")
        if len(payload["states"]) != len(targets) or len(payload["u"]) != len(u):
            raise SimsInputError(f"{ckpt_path} belongs to another IBI fit (other targets or grid)")
        start, history = int(payload["iteration"]), list(payload["history"])
        measured = payload["u"].double().numpy()
        # The next iteration's table; a checkpoint without it (older) holds it in "u" unless its
        # fit had ended, and then the first resumed iteration repeats the last table.
        u = payload["u_next"].double().numpy() if "u_next" in payload else measured
        rdfs = [g.double().numpy() for g in payload["rdfs"]]
        states = [State.from_atoms(t.atoms, device=device, dtype=dtype).with_(
            positions=st["positions"].to(device=device, dtype=dtype),
            velocities=st["velocities"].to(device=device, dtype=dtype)) for t, st in zip(targets, payload["states"])]
    potential = TabulatedPair(r_min=float(knots[0]), cutoff=rc, values=u if start == 0 else measured,
                              device=device, dtype=dtype)
    for it in range(start, iterations):
        potential = TabulatedPair(r_min=float(knots[0]), cutoff=rc, values=u, device=device, dtype=dtype)
        rdfs = []
        for k, t in enumerate(targets):
            run_seed = None if seed is None else seed * 1000 + it * 100 + k
            if engine == "lammps":
                states[k], frames = _ibi_lammps(t, potential, states[k], run_seed, equilibration, steps,
                                                sample_every, timestep, tau, n_procs, dtype)
            else:
                states[k], frames = _ibi_sims(t, potential, states[k], run_seed, equilibration, steps,
                                              sample_every, timestep, tau, device, dtype)
            if not torch.isfinite(states[k].positions).all():
                raise FitDiverged(f"ibi diverged at iteration {it}", epoch=it,
                                  parameters={"values": torch.as_tensor(u)})
            result = structure_rdf(frames, r_max=t.r_max, r_min=float(t.edges[0]), bins=t.r.size,
                                   species=t.species)
            rdfs.append(result.g)
        row: dict[str, float] = {"epoch": float(it + 1)}
        for k, (g, t) in enumerate(zip(rdfs, targets)):
            row[f"loss_{k}"] = float(t.weight * np.mean((g - t.g) ** 2))
            row[f"rdf_rmse_{k}"] = float(np.sqrt(np.mean((g - t.g) ** 2)))
        row["loss"] = sum(row[f"loss_{k}"] for k in range(len(targets)))
        history.append(row)
        if callback is not None:
            callback(row)
        # Updated after the last iteration too: the checkpoint keeps it, so that a resume with more
        # iterations continues as an uninterrupted run would (the returned table is the measured one).
        measured, u = u, _ibi_update(u, rdfs, g_t[:, first:last + 1], first, last, kT, weights, alpha, g_min,
                                     smoothing / h)
        if ckpt_path is not None:
            payload = {"format": _IBI_FORMAT, "fit_key": fit_key, "iteration": it + 1, "u": torch.as_tensor(measured),
                       "u_next": torch.as_tensor(u), "history": history,
                       "rdfs": [torch.as_tensor(g) for g in rdfs],
                       "states": [{"positions": st.positions.detach().cpu(), "velocities": st.velocities.detach().cpu()}
                                  for st in states]}
            with atomic_open(ckpt_path, "wb") as f:
                torch.save(payload, f)
    return FitResult(potential=potential, history=history, rdfs=rdfs, method="ibi")


def _inversion(targets: Sequence[RDFTarget], cutoff: float | None, g_min: float):
    """The Boltzmann-inversion table of one-component targets on one grid:
    ``(first, last, knots, g_t, kT, weights, u)`` with ``u = <-kT ln g>`` (weighted over targets) on
    the knots ``r[first:last + 1]`` (from the first bin where every g exceeds ``g_min`` to the last
    bin centre within ``cutoff``), zero at the last knot."""
    r = targets[0].r
    for k, t in enumerate(targets):
        if t.r.shape != r.shape or not np.allclose(t.r, r):
            raise SimsInputError(f"targets[{k}] has another r grid than targets[0]; a table needs one grid")
        if len(set(t.atoms.numbers)) != 1 or (t.species is not None and t.species[0] != t.species[1]):
            raise SimsInputError(f"targets[{k}]: one tabulated potential fits a one-component system; "
                                 "a mixture needs one table per species pair (use diffsim)")
    rc = float(r[-1]) if cutoff is None else float(cutoff)
    last = int(np.searchsorted(r, rc + 1e-9 * rc)) - 1
    g_t = np.stack([t.g for t in targets])
    ok = np.flatnonzero((g_t > g_min).all(0))
    if last < 2 or ok.size == 0 or ok[0] >= last - 2:
        raise SimsInputError(f"cutoff {rc} Å leaves fewer than 3 knots where every target g exceeds g_min={g_min}")
    first = int(ok[0])
    kT = np.array([units.kB * t.temperature for t in targets])
    weights = np.array([t.weight for t in targets])
    g_knots = np.maximum(g_t[:, first:last + 1], g_min)
    u = np.average(-kT[:, None] * np.log(g_knots), axis=0, weights=weights)
    return first, last, r[first:last + 1], g_t, kT, weights, u - u[-1]


def boltzmann_inversion(targets: RDFTarget | Sequence[RDFTarget], *, cutoff: float | None = None,
                        g_min: float = 1e-3, device: torch.device | str | None = None,
                        dtype: torch.dtype = torch.float64) -> TabulatedPair:
    """The potential of mean force ``U_0(r) = -kT ln g_target(r)`` as a table: IBI's first iterate.

    Equal to the pair potential in the dilute limit (g = exp(-U/kT) as the density goes to 0), so a
    dilute target gives a start close to the answer for any fit (:func:`ibi` starts from it; a
    :class:`sims.potentials.NeuralPair` can be fitted to it with :func:`fit_pair_energy` before
    :func:`diffsim`). Several targets average their ``-kT ln g`` with their weights.

    Parameters
    ----------
    targets : RDFTarget or sequence of RDFTarget
        One-component targets on one ``r`` grid.
    cutoff : float, optional
        Å; default the last bin centre. The table ends at the last bin centre within it, at zero.
    g_min : float
        The table starts at the first bin where every g exceeds this (below it continues linearly,
        as :class:`sims.potentials.TabulatedPair` does).
    device, dtype
        Of the table.

    Returns
    -------
    TabulatedPair

    Raises
    ------
    SimsInputError
        Mixtures, targets on different grids, fewer than 3 knots where g exceeds ``g_min``.

    References
    ----------
    D. Reith, M. Pütz, F. Müller-Plathe, J. Comput. Chem. 24, 1624 (2003), eq. 5.
    """
    targets = _check_targets(targets, "boltzmann_inversion")
    if not g_min > 0:
        raise SimsInputError(f"g_min must be > 0, got {g_min}")
    _, _, knots, _, _, _, u = _inversion(targets, cutoff, g_min)
    return TabulatedPair(r_min=float(knots[0]), cutoff=float(knots[-1]), values=u, device=device, dtype=dtype)


def fit_pair_energy(potential: torch.nn.Module, reference: torch.nn.Module, r, *, steps: int = 3000,
                    lr: float = 3e-3) -> float:
    """Fit ``potential``'s pair energy to ``reference``'s on the distances ``r`` by least squares.

    Full-batch Adam on ``mean_r (phi(r) - phi_ref(r))^2`` with the rate decaying as a cosine to
    zero over ``steps``; deterministic. Used to start a :class:`sims.potentials.NeuralPair` from
    a Boltzmann inversion (:func:`boltzmann_inversion`) instead of from its random weights, whose
    untrained U(r) is off by tenths of an eV.

    Parameters
    ----------
    potential : torch.nn.Module
        A pair potential (``pair_energy(r, zi, zj)``) with trainable parameters; updated in place.
    reference : torch.nn.Module
        A pair potential, any species-independent one (``pair_energy(r, None, None)``).
    r : array of float
        Å, > 0.
    steps : int
        Adam steps.
    lr : float
        Initial learning rate.

    Returns
    -------
    float
        The RMS difference after the fit, eV.

    Raises
    ------
    SimsInputError
        No trainable parameters, non-positive or non-finite ``r``, ``steps < 1`` or ``lr <= 0``.
    """
    named = _trainable(potential)
    r = torch.as_tensor(np.asarray(r, dtype=float), dtype=potential_dtype(potential), device=named[0][1].device)
    if r.ndim != 1 or r.numel() < 1 or not bool(torch.isfinite(r).all()) or not bool((r > 0).all()):
        raise SimsInputError("r must be a 1-D array of finite distances > 0 Å")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1 or not lr > 0:
        raise SimsInputError(f"need steps >= 1 and lr > 0, got {steps}, {lr}")
    with torch.no_grad():
        u_ref = reference.pair_energy(r, None, None).detach()
    opt = torch.optim.Adam([p for _, p in named], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = ((potential.pair_energy(r, None, None) - u_ref) ** 2).mean()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return float(torch.sqrt(((potential.pair_energy(r, None, None) - u_ref) ** 2).mean()))


_IBI_FORMAT = "matrep.sims.fit.ibi/1"


def _ibi_sims(target, potential, state, seed, equilibration, steps, sample_every, timestep, tau, device, dtype):
    """One IBI simulation of ``target`` on our engine: ``(final state, sampled frames)``."""
    integ = NoseHooverChain(timestep, target.temperature, tau=tau)
    if state is None:
        md = MD(target.atoms, potential, integ, temperature=target.temperature, seed=seed, record_every=0,
                device=device, dtype=dtype)
    else:
        md = MD(state, potential, integ, seed=seed, record_every=0)
    md.run(equilibration)
    md.record_every = sample_every
    md.run(steps)
    return md.state, md.trajectory


def _ibi_lammps(target, potential, state, seed, equilibration, steps, sample_every, timestep, tau, n_procs, dtype):
    """One IBI simulation of ``target`` on LAMMPS: ``(final state, sampled frames)``.

    The first iteration starts from Maxwell-Boltzmann velocities drawn with ``seed`` (as our engine
    does); later ones continue from the previous final state. LAMMPS's own seed must be positive.
    """
    from .lammps import run as lammps_run

    if state is None:
        atoms = target.atoms.copy()
        masses = torch.as_tensor(atoms.get_masses(), dtype=torch.float64)
        atoms.set_velocities(maxwell_boltzmann(masses, target.temperature, seed=seed).numpy())
    else:
        atoms = state.to_atoms()
    stage = {"ensemble": "nose_hoover_chain", "timestep": timestep, "temperature": target.temperature, "tau": tau}
    stages = [dict(stage, steps=steps, sample_every=sample_every)]
    if equilibration:
        stages.insert(0, dict(stage, steps=equilibration))
    result = lammps_run(atoms, potential, stages, seed=1 + (0 if seed is None else int(seed) % 900_000_000),
                        n_procs=n_procs)
    return State.from_atoms(result.final, dtype=dtype), result.frames


def _ibi_update(u, rdfs, g_t, first, last, kT, weights, alpha, g_min, smooth_points):
    """``U + alpha <kT ln(g_i / g_target)>`` where both g exceed ``g_min``, smoothed, zero at the cutoff."""
    from scipy.ndimage import gaussian_filter1d

    g_i = np.stack([g[first:last + 1] for g in rdfs])
    valid = (g_i > g_min) & (g_t > g_min)
    ratio = np.where(valid, np.log(np.where(valid, g_i, 1.0) / np.where(valid, g_t, 1.0)), 0.0)
    du = alpha * np.average(kT[:, None] * ratio, axis=0, weights=weights)
    if smooth_points > 0:
        du = gaussian_filter1d(du, smooth_points, mode="nearest")
    u = u + du
    return u - u[-1]
