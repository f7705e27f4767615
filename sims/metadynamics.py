"""Well-tempered metadynamics along a CV on :mod:`sims` Langevin dynamics, with reweighted frames.

A history-dependent bias of Gaussian hills on the CV (Laio & Parrinello, PNAS 99, 12562 (2002))
whose heights shrink where bias has accumulated (well-tempered: Barducci, Bussi & Parrinello,
Phys. Rev. Lett. 100, 020603 (2008)), ``w = w0 exp(-V(s) / (k_B dT))`` with
``dT = (gamma - 1) T``. Non-interacting replicas of the system are walkers sharing one bias
(Raiteri et al., J. Phys. Chem. B 110, 3533 (2006)).

Frames are reweighted to the unbiased ensemble with the time-dependent bias,
``w_t ∝ exp(beta (V(s_t, t) - c(t)))``, where

    c(t) = k_B T ln[ ∫ exp(gamma/(gamma-1) beta V(s, t)) ds / ∫ exp(beta V(s, t)/(gamma-1)) ds ]

(Tiwary & Parrinello, J. Phys. Chem. B 119, 736 (2015), eq. 3), computed on a grid of the CV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from ase import units
from scipy.special import logsumexp

from .cv import CollectiveVariable, cv_and_inverse_mass, cv_period, wrapped_difference
from .errors import SimsInputError
from .integrators import Langevin
from .md import MD
from .potentials import Potential, SumPotential
from .replicas import replica_cv, replica_frames, replica_masses
from .state import as_atoms

__all__ = ["MetadynamicsBias", "MetadynamicsSamples", "metadynamics"]


class MetadynamicsBias(Potential):
    """Gaussian hills on a CV, accumulated on a grid and shared by all replicas of the system (eV).

    Hills are summed on a grid as they are deposited and the bias between grid points is
    interpolated linearly (as PLUMED's grid, with linear instead of spline interpolation), so a
    force costs the same after a million hills as after one. Outside the grid the bias is zero.

    Parameters
    ----------
    cv : CollectiveVariable
    sigma : float
        Hill width, CV unit; the grid spacing must be at most ``sigma / 4``.
    grid : (float, float, int)
        CV range and number of grid points (a periodic CV's grid spans one period, its two ends
        one angle; a dihedral's hills wrap round the circle: give it ``(-pi, pi, n)``).
    atoms_per_replica : int, optional
        Atoms of one walker; default: the whole system is one walker.
    periodic : bool
        Pass the cell to the CV.
    """

    cutoff = 0.0

    def __init__(self, cv: CollectiveVariable, *, sigma: float, grid: tuple[float, float, int],
                 atoms_per_replica: int | None = None, periodic: bool = False) -> None:
        super().__init__()
        lo, hi, n = float(grid[0]), float(grid[1]), int(grid[2])
        if not (math.isfinite(sigma) and sigma > 0):
            raise SimsInputError(f"sigma must be > 0 (CV unit), got {sigma}")
        if not (hi > lo and n >= 10 and (hi - lo) / (n - 1) <= sigma / 4):
            raise SimsInputError(f"grid must be (low, high, points) with high > low and a spacing <= sigma/4 = "
                                 f"{sigma / 4:.3g}; got {grid}")
        self.cv, self.sigma, self.periodic = cv, float(sigma), bool(periodic)
        self.period = cv_period(cv)  # here, so that a CV without a well-defined period is refused up front
        if self.period is not None and not math.isclose(hi - lo, self.period, rel_tol=1e-9):
            # hills wrap round the circle: a wider grid repeats angles (c(t) then counts them twice), a
            # narrower one leaves part of the circle without bias (a cliff where the grid ends)
            raise SimsInputError(f"{cv!r} is periodic (period {self.period:g}): its grid must span one period, "
                                 f"e.g. (-pi, pi, n) for a dihedral; got ({lo:g}, {hi:g}), a span of {hi - lo:g}")
        self.atoms_per_replica = atoms_per_replica
        self.grid = torch.linspace(lo, hi, n, dtype=torch.float64)
        self.values = torch.zeros(n, dtype=torch.float64)
        self.n_hills = 0

    def bias(self, s: torch.Tensor) -> torch.Tensor:
        """Bias (eV) at CV values ``s`` (any shape), linear between grid points, 0 outside (a periodic
        CV's values are taken modulo its period into the grid)."""
        g, v = self.grid.to(s), self.values.to(s)
        if self.period is not None:  # a periodic CV's values map into the grid's period, wherever it starts
            s = g[0] + torch.remainder(s - g[0], self.period)
        spacing = g[1] - g[0]
        x = (s - g[0]) / spacing
        i = torch.clamp(torch.floor(x.detach()).long(), 0, g.numel() - 2)
        frac = x - i
        inside = (x >= 0) & (x <= g.numel() - 1)
        return torch.where(inside, v[i] * (1 - frac) + v[i + 1] * frac, torch.zeros_like(s))

    def walker_cv(self, positions: torch.Tensor, cell=None) -> torch.Tensor:
        """CV value of each walker, ``(R,)``."""
        return replica_cv(self.cv, positions, self.atoms_per_replica, cell if self.periodic else None)

    def forward(self, positions, cell=None, numbers=None, pairs=None):
        return self.bias(self.walker_cv(positions, cell)).sum()

    def deposit(self, s: torch.Tensor, heights: torch.Tensor) -> None:
        """Add hills of ``heights`` (eV) at CV values ``s``."""
        s, h = s.detach().to(torch.float64).reshape(-1), heights.detach().to(torch.float64).reshape(-1)
        # A dihedral's hills wrap round the circle (a hill near pi also covers -pi).
        d = wrapped_difference(self.grid[:, None], s, self.period)
        self.values = self.values + (h * torch.exp(-0.5 * (d / self.sigma) ** 2)).sum(-1)
        self.n_hills += int(s.numel())


@dataclass(frozen=True)
class MetadynamicsSamples:
    """Frames of a well-tempered metadynamics run, reweighted to the unbiased ensemble.

    Attributes
    ----------
    cv, inverse_mass, weights : numpy.ndarray
        ``(n,)`` per sample (CV unit; CV unit^2 / (amu Å^2); summing to 1), walker by walker in
        time order.
    grid : numpy.ndarray
        ``(G,)`` CV grid of the final bias, CV unit.
    bias : numpy.ndarray
        ``(G,)`` final bias on the grid, eV (``-(1 - 1/gamma)`` times the free energy, up to a
        constant, once converged).
    n_hills : int
    bias_factor, temperature : float
    cv_unit : str
    """

    cv: np.ndarray
    inverse_mass: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    bias: np.ndarray
    n_hills: int
    bias_factor: float
    temperature: float
    cv_unit: str


def metadynamics(system, potential: torch.nn.Module, cv: CollectiveVariable, *, sigma: float, height: float,
                 bias_factor: float, pace: int, temperature: float, n_steps: int, grid: tuple[float, float, int],
                 timestep: float = 1.0, friction: float = 0.01, record_every: int = 10, equilibrate: int = 0,
                 atoms_per_replica: int | None = None, periodic: bool = False, seed: int = 0,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> MetadynamicsSamples:
    """Run well-tempered metadynamics with Langevin dynamics and reweight its frames.

    Parameters
    ----------
    system : ase.Atoms
        Start configuration; several non-interacting copies are walkers sharing the bias.
    potential : torch.nn.Module
        The unbiased potential.
    cv : CollectiveVariable
    sigma : float
        Hill width, CV unit.
    height : float
        Initial hill height ``w0``, eV.
    bias_factor : float
        ``gamma = (T + dT) / T`` > 1.
    pace : int
        Steps between depositions (each walker deposits a hill).
    temperature : float
        K.
    n_steps : int
        Recorded steps, after ``equilibrate`` unrecorded ones (hills are deposited from the start).
    grid : (float, float, int)
        CV range and points of the bias grid (spacing <= sigma/4). It must cover the sampled CV
        range and should not reach far beyond it: ``c(t)`` integrates over the grid, where an
        unexplored point counts as if its free energy were zero (on the test double well,
        widening the grid from 3.6 to 8 Å moved the reweighted reaction free energy by 0.1
        kJ/mol, a fifth of its error bar).
    timestep, friction, record_every, atoms_per_replica, periodic, seed, device, dtype
        As in :func:`sims.umbrella.umbrella_sampling`.

    Returns
    -------
    MetadynamicsSamples

    References
    ----------
    Barducci, Bussi & Parrinello, Phys. Rev. Lett. 100, 020603 (2008); Tiwary & Parrinello,
    J. Phys. Chem. B 119, 736 (2015) (reweighting).
    """
    atoms = as_atoms(system)
    if not (math.isfinite(bias_factor) and bias_factor > 1):
        raise SimsInputError(f"bias_factor must be > 1, got {bias_factor}")
    if not (math.isfinite(height) and height > 0):
        raise SimsInputError(f"height must be > 0 eV, got {height}")
    if int(pace) < 1 or int(n_steps) < 1 or int(record_every) < 1 or int(equilibrate) < 0:
        raise SimsInputError(f"need pace, n_steps, record_every >= 1 and equilibrate >= 0; got {pace}, {n_steps}, "
                             f"{record_every}, {equilibrate}")
    lo, hi, n_grid = float(grid[0]), float(grid[1]), int(grid[2])
    r, masses = replica_masses(atoms, atoms_per_replica)
    beta = 1.0 / (units.kB * temperature)
    gamma = float(bias_factor)
    bias = MetadynamicsBias(cv, sigma=sigma, grid=(lo, hi, n_grid), atoms_per_replica=r, periodic=periodic)
    frames, bias_at_frame, c_at_frame = [], [], []
    state = {"c": 0.0}

    def c_of_t() -> float:
        v = beta * bias.values.numpy()
        return float((logsumexp(gamma / (gamma - 1) * v) - logsumexp(v / (gamma - 1))) / beta)

    def step(md: MD) -> None:
        # A frame is weighted by the bias it was sampled under: the hills before this step's.
        if md.step_count > equilibrate and (md.step_count - equilibrate) % record_every == 0:
            pos = md.state.positions.detach().clone()
            frames.append(pos)
            cell = md.state.cell if periodic else None
            bias_at_frame.append(bias.bias(bias.walker_cv(pos, cell)).numpy())
            c_at_frame.append(state["c"])
        if md.step_count % pace == 0:
            cell = md.state.cell if periodic else None
            s = bias.walker_cv(md.state.positions.detach(), cell)
            w = height * torch.exp(-bias.bias(s) * beta / (gamma - 1))
            bias.deposit(s, w)
            state["c"] = c_of_t()
            md.refresh()            # the forces of the next half-kick must include the new hills

    md = MD(atoms, SumPotential([potential, bias]), Langevin(timestep, temperature, friction), temperature=temperature,
            seed=seed, record_every=0, min_distance=None, callback=step, device=device, dtype=dtype)
    md.run(int(equilibrate) + int(n_steps))
    n_t = len(frames)
    pos = replica_frames(torch.stack(frames), r)
    z, m_inv, _ = cv_and_inverse_mass(cv, pos, masses, md.state.cell if periodic else None)
    v = np.stack(bias_at_frame).T.reshape(-1)                                        # (R * T,) walker-major
    c = np.tile(np.asarray(c_at_frame), v.size // n_t)
    z = z.cpu().numpy()
    if bias.period is None and (z.min() < lo or z.max() > hi):
        raise SimsInputError(f"the sampled CV range [{z.min():.4g}, {z.max():.4g}] leaves the grid [{lo}, {hi}]; "
                             "widen the grid")
    log_w = beta * (v - c)
    weights = np.exp(log_w - logsumexp(log_w))
    return MetadynamicsSamples(cv=z, inverse_mass=m_inv.cpu().numpy(), weights=weights, grid=bias.grid.numpy(),
                               bias=bias.values.numpy().copy(), n_hills=bias.n_hills,
                               bias_factor=gamma, temperature=float(temperature), cv_unit=cv.unit)
