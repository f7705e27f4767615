"""Bias-path optimisation: a learned bias that drives reactive trajectories, by differentiable simulation.

Šípka, Dietschreit, Grajciar & Gómez-Bombarelli (ICML 2023, arXiv:2301.03480) merge the search for
a reaction path and the biasing potential that follows it into one optimisation: run a batch of
biased Langevin trajectories, score how close they come to the target basin, and move the bias
parameters along the gradient of that score through the dynamics. This module does it on
:mod:`sims` Langevin dynamics (:class:`sims.Langevin`, BAOAB):

- trajectories start together from the reactant and from the product basin (half each); each
  one's loss is the squared descriptor distance of its closest frame to its target basin (zero
  inside the basin's chi-square tolerance), plus the same distance to its own start basin over
  the frames after a warm-up (a trajectory that leaves home before the warm-up ends is
  penalised: the bias should not simply catapult it), and, while a forward trajectory and its
  backward partner have not met, the distance between their closest frames replaces the target
  term (paths grow towards each other, as in the authors' code);
- the gradient is a *truncated adjoint*: from each scored frame the adjoint of BAOAB is run back
  ``backsteps`` steps (:func:`force_adjoints`), which needs only the stored positions and
  Jacobian-vector products of the total force; it yields pairs (frame ``x_k``, force adjoint
  ``g_k = dL/dF_k``) with ``dL/dtheta = sum_k g_k . dF_bias(x_k)/dtheta``. The pairs are shuffled
  and cut into mini-batches, one optimiser step each (the paper's section 3.3). Memory is the
  stored positions, not an autograd graph over the trajectory.

With ``backsteps`` at least the trajectory length the adjoint is exact: it equals backpropagation
through the whole trajectory (``tests/sims/test_enhanced.py`` checks it to round-off). A potential
that is differentiable only once (OpenMM's force fields, :mod:`sims.openmm_potential`) supplies the
force Jacobian products by differences of its forces instead of autograd.

Ready set-ups: :meth:`BiasPathOptimizer.mueller_brown` (2-D and 5-D) and
:meth:`BiasPathOptimizer.alanine_dipeptide`; ``docs/enhanced.md`` has the numbers.

Units: Å, eV, fs, K, amu; descriptors in their CV units (Å, radians).

References
----------
M. Šípka, J. C. B. Dietschreit, L. Grajciar, R. Gómez-Bombarelli, "Differentiable simulations for
enhanced sampling of rare events", ICML 2023, arXiv:2301.03480 (eqs. 5-9: the loss and the
adjoint; section 3.3: partial backpropagation and mini-batching). Code read to learn:
github.com/martinsipka/rarediffsim.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from ase import Atoms, units
from scipy.stats import chi2
from torch import nn

from reprs.atoms import as_atoms
from reprs.config import content_hash

from .cv import CollectiveVariable, Position, cv_period, parse_cv, wrapped_difference
from .errors import SimsError, SimsInputError
from .integrators import Langevin, make_generator, seeded_init
from .md import compute
from .potentials import Potential, SumPotential
from .state import State, check_unconstrained

__all__ = ["GaussianGridBias", "BasisSetBias", "Basin", "BiasPathOptimizer", "BiasPathResult", "force_adjoints",
           "save_bias", "load_bias", "cv_spec"]

BIAS_FORMAT = "matrep.sims.enhanced.bias/1"


# -- descriptors ------------------------------------------------------------------------------


def cv_spec(cv: CollectiveVariable) -> str:
    """The :func:`sims.cv.parse_cv` string of ``cv`` (how a saved bias records its descriptors)."""
    kinds = {"Position": "position", "Distance": "distance", "Angle": "angle", "Dihedral": "dihedral"}
    name = type(cv).__name__
    if name not in kinds:
        raise SimsInputError(f"descriptor {cv!r} cannot be saved; use position, distance, angle or dihedral CVs")
    if isinstance(cv, Position):
        return f"position:{cv.atoms[0]},{'xyz'[cv.axis]}"
    return f"{kinds[name]}:{','.join(str(i) for i in cv.atoms)}"


def _descriptors(values: Sequence[str | CollectiveVariable]) -> list[CollectiveVariable]:
    if isinstance(values, (str, CollectiveVariable)) or not len(values):
        raise SimsInputError(f"descriptors must be a non-empty list of CVs or CV strings ('position:0,x', "
                             f"'dihedral:4,6,8,14'), got {values!r}")
    return [parse_cv(v) for v in values]


def _evaluate(cvs: Sequence[CollectiveVariable], positions: torch.Tensor) -> torch.Tensor:
    """Descriptor values ``(F, D)`` of configurations ``(F, n, 3)``."""
    return torch.stack([cv(positions) for cv in cvs], dim=-1)


def _periodic(cvs: Sequence[CollectiveVariable]) -> torch.Tensor:
    """``(D,)`` bool: which descriptors are periodic (angles, period 2 pi: the basis sets, circular
    means and wrapped differences here assume it, so another period is refused)."""
    periods = [cv_period(cv) for cv in cvs]
    for cv, period in zip(cvs, periods):
        if period is not None and not math.isclose(period, 2 * math.pi):
            raise SimsInputError(f"descriptor {cv!r} has period {period:g}; periodic descriptors here must be "
                                 "angles in radians (period 2 pi): rescale the CV to radians")
    return torch.tensor([period is not None for period in periods])


def _delta(a: torch.Tensor, b: torch.Tensor, periodic: torch.Tensor) -> torch.Tensor:
    """``a - b`` in descriptor space, periodic components wrapped into [-pi, pi)."""
    return torch.where(periodic.to(a.device), wrapped_difference(a, b, 2 * math.pi), a - b)


class _DescriptorBias(Potential):
    """Base of the biases: an energy of the descriptors of each replica (eV), summed over replicas.

    ``positions`` ``(..., N, 3)`` are cut into replicas of ``atoms_per_replica`` atoms (default: the
    whole system is one), so the bias joins any :mod:`sims` potential in a :class:`~sims.potentials.SumPotential`
    and a :class:`sims.MD` run of many non-interacting copies.
    """

    cutoff = 0.0

    def __init__(self, descriptors, atoms_per_replica: int | None, dtype: torch.dtype) -> None:
        super().__init__(dtype)
        self.cvs = _descriptors(descriptors)
        if atoms_per_replica is not None and int(atoms_per_replica) < 1:
            raise SimsInputError(f"atoms_per_replica must be >= 1, got {atoms_per_replica}")
        self.atoms_per_replica = None if atoms_per_replica is None else int(atoms_per_replica)
        self.register_buffer("periodic", _periodic(self.cvs))

    def bias(self, s: torch.Tensor) -> torch.Tensor:
        """Bias (eV) at descriptor values ``s`` ``(F, D)``, shape ``(F,)``."""
        raise NotImplementedError

    def forward(self, positions, cell=None, numbers=None, pairs=None):
        r = self.atoms_per_replica or positions.shape[-2]
        if positions.shape[-2] % r:
            raise SimsInputError(f"{positions.shape[-2]} atoms are not whole replicas of {r} atoms")
        return self.bias(_evaluate(self.cvs, positions.reshape(-1, r, 3))).sum()

    def hyperparameters(self) -> dict:
        """What :func:`load_bias` needs to rebuild this bias (its constructor's arguments)."""
        raise NotImplementedError


def _grid_axis(lower, upper, points, n_dim: int, name: str) -> list[tuple[float, float, int]]:
    lo, hi, n = (np.broadcast_to(np.asarray(v, dtype=float), (n_dim,)) for v in (lower, upper, points))
    axes = []
    for d in range(n_dim):
        if not (np.isfinite(lo[d]) and np.isfinite(hi[d]) and hi[d] > lo[d] and n[d] >= 2 and n[d] == int(n[d])):
            raise SimsInputError(f"{name}: need finite lower < upper and an integer points >= 2 for each "
                                 f"descriptor, got lower={lo[d]}, upper={hi[d]}, points={n[d]} (descriptor {d})")
        axes.append((float(lo[d]), float(hi[d]), int(n[d])))
    return axes


class GaussianGridBias(_DescriptorBias):
    """A grid of Gaussians with learnable heights on the descriptors (eV).

    ``B(s) = sum_g h_g exp(-sum_d delta_d(s, c_g)^2 / (2 w_d^2))`` over the grid points ``c_g`` of the
    descriptor box, ``delta`` wrapped for dihedrals; the heights start at ``height`` (0: no bias).
    The bias of the authors' 2-D Müller-Brown runs (rarediffsim's ``GridGaussians``).

    Parameters
    ----------
    descriptors : sequence of CV or str
        The ``D`` descriptors (:mod:`sims.cv`; e.g. ``["position:0,x", "position:0,y"]``).
    lower, upper : float or sequence of float
        Grid range per descriptor (CV units); for a dihedral ``-pi, pi`` (the last point is dropped
        there, as it is the first).
    points : int or sequence of int
        Grid points per descriptor.
    width : float or sequence of float, optional
        ``w_d``, CV units; default the grid spacing.
    height : float
        Initial height of every Gaussian, eV.
    hills_only : bool
        Keep the heights >= 0 (projected after each optimiser step, :meth:`project`): the bias can
        raise the surface but not dig wells, which would trap trajectories on their way.
    atoms_per_replica : int, optional
        Atoms of one copy of the system; default all.
    device, dtype
        Of the heights (the bias's precision).

    Examples
    --------
    >>> bias = GaussianGridBias(["position:0,x", "position:0,y"], lower=[-1.5, -0.5], upper=[1.2, 2.0], points=15)
    """

    def __init__(self, descriptors, *, lower, upper, points, width=None, height: float = 0.0,
                 hills_only: bool = False, atoms_per_replica: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__(descriptors, atoms_per_replica, dtype)
        n_dim = len(self.cvs)
        axes = _grid_axis(lower, upper, points, n_dim, "GaussianGridBias")
        if int(np.prod([a[2] for a in axes])) > 200_000:
            raise SimsInputError(f"a grid of {int(np.prod([a[2] for a in axes]))} Gaussians is too large; use fewer "
                                 "points or descriptors, or BasisSetBias for many descriptors")
        ticks = []
        for (lo, hi, n), per in zip(axes, self.periodic.tolist()):
            ticks.append(torch.linspace(lo, hi, n + 1, dtype=torch.float64)[:-1] if per
                         else torch.linspace(lo, hi, n, dtype=torch.float64))
        spacing = [float(t[1] - t[0]) for t in ticks]
        w = np.broadcast_to(np.asarray(spacing if width is None else width, dtype=float), (n_dim,))
        if not (np.isfinite(w).all() and (w > 0).all()):
            raise SimsInputError(f"width must be > 0 per descriptor, got {width}")
        if not math.isfinite(float(height)):
            raise SimsInputError(f"height must be finite (eV), got {height}")
        self.hills_only = bool(hills_only)
        self._init = dict(lower=[a[0] for a in axes], upper=[a[1] for a in axes], points=[a[2] for a in axes],
                          width=[float(v) for v in w], height=float(height), hills_only=self.hills_only)
        self.register_buffer("centers", torch.cartesian_prod(*ticks).reshape(-1, n_dim).to(device))
        self.register_buffer("widths", torch.tensor(w, dtype=torch.float64, device=device))
        self._ticks = [t.to(device) for t in ticks]
        self.heights = nn.Parameter(torch.full((self.centers.shape[0],), float(height), dtype=dtype, device=device))

    def project(self) -> None:
        """Clip negative heights to zero after an optimiser step (``hills_only``)."""
        if self.hills_only:
            with torch.no_grad():
                self.heights.clamp_(min=0.0)

    def bias(self, s):
        # The grid is a Cartesian product, so each Gaussian is a product of one factor per
        # descriptor: D small (F, n_d) factor tables contracted with the heights, not F x G x D
        # exponentials (the same sum to 1e-14; 30 times faster on the 2-D set-up's grid, 240 on
        # the 5-D one, for 3000 frames).
        out = self.heights.to(s).reshape(1, -1)
        widths, periodic = self.widths.to(s), self.periodic.to(s.device)
        for d, ticks in enumerate(self._ticks):
            z = _delta(s[:, d, None], ticks.to(s), periodic[d]) / widths[d]
            factor = torch.exp(-0.5 * z * z)                                            # (F, n_d)
            out = out.reshape(out.shape[0], len(ticks), -1)
            out = (factor.unsqueeze(-1) * out).sum(1) if d else torch.einsum("fk,kr->fr", factor, out[0])
        return out.reshape(-1)

    def hyperparameters(self) -> dict:
        return {"descriptors": [cv_spec(cv) for cv in self.cvs], "atoms_per_replica": self.atoms_per_replica,
                **self._init}


class BasisSetBias(_DescriptorBias):
    """A Gaussian basis on each descriptor, then a multilayer perceptron (eV).

    Each descriptor ``s_d`` is expanded in ``n_basis`` Gaussians ``exp(-delta(s_d, mu_k)^2 / (2 w^2))``
    with centres evenly spaced over ``[lower, upper]`` (over the circle for a dihedral, ``delta``
    wrapped: a periodic basis), and the ``D n_basis`` features go through
    ``Linear - SiLU - Linear - SiLU - Linear(1)`` (the authors' ``BasisBias``). The last layer
    starts at zero, so training starts from the unbiased dynamics.

    Parameters
    ----------
    descriptors : sequence of CV or str
    lower, upper : float or sequence of float
        Basis range per descriptor (CV units; ignored for dihedrals, which use the circle).
    n_basis : int
        Basis functions per descriptor.
    width : float, optional
        ``w``, as a fraction of the centre spacing; default 1.
    hidden : int
        Width of the hidden layers.
    seed : int
        Seeds the initial weights (:func:`sims.integrators.seeded_init`: global state untouched).
    atoms_per_replica, device, dtype
        As :class:`GaussianGridBias`.
    """

    def __init__(self, descriptors, *, lower=-math.pi, upper=math.pi, n_basis: int = 20, width: float = 1.0,
                 hidden: int = 64, seed: int = 0, atoms_per_replica: int | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__(descriptors, atoms_per_replica, dtype)
        n_dim = len(self.cvs)
        axes = _grid_axis(lower, upper, n_basis, n_dim, "BasisSetBias")
        if not (math.isfinite(width) and width > 0) or int(hidden) < 1:
            raise SimsInputError(f"need width > 0 and hidden >= 1, got {width}, {hidden}")
        centers, spacing = [], []
        for (lo, hi, n), per in zip(axes, self.periodic.tolist()):
            t = (torch.linspace(-math.pi, math.pi, n + 1, dtype=torch.float64)[:-1] if per
                 else torch.linspace(lo, hi, n, dtype=torch.float64))
            centers.append(t)
            spacing.append(float(t[1] - t[0]))
        self._init = dict(lower=[a[0] for a in axes], upper=[a[1] for a in axes], n_basis=int(n_basis),
                          width=float(width), hidden=int(hidden), seed=int(seed))
        self.register_buffer("mu", torch.stack(centers).to(device))                       # (D, K)
        self.register_buffer("sigma", (width * torch.tensor(spacing, dtype=torch.float64)).to(device))
        with seeded_init(seed):
            self.net = nn.Sequential(nn.Linear(n_dim * int(n_basis), hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                     nn.SiLU(), nn.Linear(hidden, 1, bias=False))
        nn.init.zeros_(self.net[-1].weight)
        self.net.to(device=device, dtype=dtype)

    def bias(self, s):
        d = _delta(s.unsqueeze(-1), self.mu.to(s), self.periodic.unsqueeze(-1)) / self.sigma.to(s).unsqueeze(-1)
        features = torch.exp(-0.5 * d * d).flatten(-2)
        return self.net(features.to(self.net[0].weight.dtype)).squeeze(-1).to(s)

    def hyperparameters(self) -> dict:
        return {"descriptors": [cv_spec(cv) for cv in self.cvs], "atoms_per_replica": self.atoms_per_replica,
                **self._init}


_BIASES = {"GaussianGridBias": GaussianGridBias, "BasisSetBias": BasisSetBias}


def save_bias(bias: _DescriptorBias, path) -> None:
    """Write ``bias`` to ``path`` atomically: a format tag, its kind and hyperparameters, and its state dict."""
    import io

    from reprs.fileio import atomic_write

    if type(bias).__name__ not in _BIASES:
        raise SimsInputError(f"only {', '.join(_BIASES)} can be saved, got {type(bias).__name__}")
    buffer = io.BytesIO()
    torch.save({"format": BIAS_FORMAT, "kind": type(bias).__name__, "hyperparameters": bias.hyperparameters(),
                "dtype": str(bias.dtype).removeprefix("torch."),
                "state_dict": {k: v.detach().cpu() for k, v in bias.state_dict().items()}}, buffer)
    atomic_write(path, buffer.getvalue())


def load_bias(path, *, atoms_per_replica: int | None = None, device: torch.device | str | None = None):
    """Read a bias written by :func:`save_bias` (``weights_only``: no code runs from the file).

    ``atoms_per_replica`` replaces the saved one (to run the bias on a different number of copies
    is the same bias; the replica size must stay the system's).

    Raises
    ------
    SimsInputError
        The file is not a saved bias.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch raises several unrelated types for a bad file)
        raise SimsInputError(f"{path} is not a saved bias ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != BIAS_FORMAT or payload.get("kind") not in _BIASES:
        raise SimsInputError(f"{path} is not a saved bias of sims.enhanced (format {BIAS_FORMAT!r})")
    hp = dict(payload["hyperparameters"])
    if atoms_per_replica is not None:
        hp["atoms_per_replica"] = atoms_per_replica
    bias = _BIASES[payload["kind"]](**hp, device=device, dtype=getattr(torch, payload["dtype"]))
    bias.load_state_dict(payload["state_dict"])
    return bias


# -- basins --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Basin:
    """A basin in descriptor space: centre, covariance and a chi-square tolerance.

    A point ``s`` is inside when ``delta^T C^-1 delta <= chi2.ppf(confidence, D)``, with
    ``delta = s - center`` (dihedrals wrapped): the region a Gaussian of covariance ``C`` holds
    with probability ``confidence``.

    Attributes
    ----------
    center : torch.Tensor
        ``(D,)`` CV units.
    covariance : torch.Tensor
        ``(D, D)``.
    threshold : float
        ``chi2.ppf(confidence, D)``.
    """

    center: torch.Tensor
    covariance: torch.Tensor
    threshold: float
    periodic: torch.Tensor = field(repr=False)

    @classmethod
    def from_samples(cls, s: torch.Tensor, periodic: torch.Tensor, confidence: float) -> "Basin":
        """Centre (circular mean for dihedrals) and covariance of samples ``s`` ``(F, D)``."""
        angle_mean = torch.atan2(torch.sin(s).mean(0), torch.cos(s).mean(0))
        center = torch.where(periodic, angle_mean, s.mean(0))
        d = _delta(s, center, periodic)
        cov = d.T @ d / max(s.shape[0] - 1, 1)
        cov = cov + 1e-12 * torch.eye(s.shape[1], dtype=s.dtype) * float(torch.diagonal(cov).max())
        return cls(center, cov, float(chi2.ppf(confidence, s.shape[1])), periodic)

    def mahalanobis2(self, s: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of ``s`` ``(..., D)`` from the centre."""
        d = _delta(s, self.center.to(s), self.periodic)
        return (d * torch.linalg.solve(self.covariance.to(s), d.reshape(-1, d.shape[-1]).T).T.reshape(d.shape)).sum(-1)

    def contains(self, s: torch.Tensor) -> torch.Tensor:
        """Whether each of ``s`` ``(..., D)`` is inside the tolerance."""
        return self.mahalanobis2(s) <= self.threshold

    def reach(self, direction: torch.Tensor) -> float:
        """Half-width of the tolerance region's projection onto the unit vector ``direction`` (its
        support function ``sqrt(threshold u^T C u)``, CV units); not how far the region extends
        along ``direction`` through the centre, which is ``sqrt(threshold / u^T C^-1 u)``."""
        return float(torch.sqrt(self.threshold * direction @ self.covariance.to(direction) @ direction))

    def separated_from(self, other: "Basin") -> bool:
        """Whether the two tolerance regions are disjoint, shown by their projections onto
        ``w = (C_1 + C_2)^-1 (c_2 - c_1)`` (Fisher's discriminant direction) not overlapping.

        Exact for equal covariances (the regions are then disjoint iff the Mahalanobis distance of
        the centres exceeds ``2 sqrt(threshold)``); for unequal ones disjoint projections still prove
        the regions disjoint, and the test may only call near-touching regions overlapping.
        """
        d = _delta(other.center, self.center.to(other.center), self.periodic)
        if not bool(d.abs().max() > 0):
            return False
        w = torch.linalg.solve(self.covariance.to(d) + other.covariance.to(d), d)
        w = w / torch.linalg.norm(w)
        return self.reach(w) + other.reach(w) < float(w @ d)


# -- dynamics and the adjoint ----------------------------------------------------------------------


class _Dynamics:
    """Batched BAOAB Langevin dynamics of ``B`` copies of one system under ``potential`` (+ a bias).

    The copies are one :class:`~sims.state.State` of ``B n`` non-interacting atoms, advanced by
    :meth:`sims.Langevin.step`, so these are exactly the dynamics :class:`sims.MD` runs.
    """

    def __init__(self, potential: nn.Module, masses: torch.Tensor, numbers: torch.Tensor, integrator: Langevin,
                 n_atoms: int) -> None:
        self.potential, self.integrator, self.n_atoms = potential, integrator, n_atoms
        self.masses, self.numbers = masses, numbers

    def forces(self, positions: torch.Tensor, bias: nn.Module | None, create_graph: bool = False,
               potential: nn.Module | None = None):
        """Energy and forces of flattened ``(B n, 3)`` positions (under ``potential`` instead of the
        system's where given)."""
        potential = self.potential if potential is None else potential
        total = potential if bias is None else SumPotential([potential, bias])
        cell = torch.zeros((3, 3), dtype=positions.dtype, device=positions.device)
        n = positions.shape[0] // self.n_atoms
        numbers = self.numbers.repeat(n)
        return compute(total, positions, cell, numbers, None, create_graph=create_graph)[:2]

    def force_vjp(self, positions: torch.Tensor, vectors: torch.Tensor, bias: nn.Module) -> torch.Tensor:
        """``J^T v`` for the total force at flattened ``(B n, 3)`` positions: by autograd, or, for a
        potential that cannot be differentiated twice (:class:`~sims.openmm_potential.OpenMMPotential`),
        its ``force_jacobian_product`` plus the bias's part by autograd."""
        product = getattr(self.potential, "force_jacobian_product", None)
        pos = positions.detach().requires_grad_(True)
        with torch.enable_grad():
            if product is None:
                _, f = self.forces(pos, bias, create_graph=True)
                return torch.autograd.grad(f, pos, vectors)[0]
            force = -torch.autograd.grad(bias(pos), pos, create_graph=True)[0]
            return torch.autograd.grad(force, pos, vectors)[0] + product(positions, vectors)

    def run(self, start: torch.Tensor, bias: nn.Module | None, n_steps: int, seed: tuple[int, ...], temperature: float,
            differentiable: bool = False) -> torch.Tensor:
        """Frames ``(n_steps + 1, B, n, 3)`` from configurations ``start`` ``(B, n, 3)``.

        ``seed`` is a tuple of ints: velocities are drawn at ``temperature`` from ``(*seed, 0)`` and the
        noise from ``(*seed, 1)``.
        With ``differentiable`` the frames keep the autograd graph through the whole trajectory
        (the reference the adjoint is tested against).
        """
        b, n = start.shape[:2]
        masses = self.masses.repeat(b)
        gen = make_generator((*seed, 0), start.device)
        # Independent Maxwell-Boltzmann velocities per copy (sims.maxwell_boltzmann would remove the
        # momentum of all copies together and couple them).
        v = torch.randn((b * n, 3), generator=gen, device=start.device, dtype=start.dtype)
        v = v * torch.sqrt(units.kB * temperature / masses)[:, None]
        state = State(positions=start.reshape(-1, 3), velocities=v, masses=masses, numbers=self.numbers.repeat(b),
                      cell=torch.zeros((3, 3), dtype=start.dtype, device=start.device),
                      pbc=torch.zeros(3, dtype=torch.bool, device=start.device))
        state, run = self.integrator.start(state, (*seed, 1))

        def force_fn(x):
            with torch.enable_grad():
                e, f = self.forces(x if differentiable else x.detach(), bias, create_graph=differentiable)
            if not bool(torch.isfinite(f).all()):
                raise SimsError("non-finite forces in the biased dynamics; reduce the timestep, or check the "
                                "potential and the bias (a learning rate too large makes a bias explode)")
            return e, f

        energy, forces = force_fn(state.positions)
        frames = [state.positions]
        with torch.set_grad_enabled(differentiable):
            for _ in range(int(n_steps)):
                state, energy, forces = self.integrator.step(state, energy, forces, force_fn, run)
                frames.append(state.positions if differentiable else state.positions.detach())
        return torch.stack(frames).reshape(n_steps + 1, b, n, 3)


def force_adjoints(dynamics: _Dynamics, bias: nn.Module, frames: torch.Tensor, index: torch.Tensor,
                   seed_adjoint: torch.Tensor, backsteps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The truncated adjoint of BAOAB: (frame, force adjoint) pairs for a loss on one frame per trajectory.

    For trajectories ``b`` with a loss ``L`` on frame ``K_b = index[b]`` with ``dL/dx_K = seed_adjoint[b]``,
    the adjoint runs back ``backsteps`` steps. Writing BAOAB in its kick-drift form with
    ``u_k = v''_{k-1} + (h/m) F_k`` (``u_0 = v_0 + (h/2m) F_0``), one step is
    ``x' = x_k + (h/2) u_k, v'' = c u_k + noise, x_{k+1} = x' + (h/2) v''``; its adjoint is

        g_{k+1} = (h/m) U_{k+1},      X̄ = X_{k+1} + J(x_{k+1})^T g_{k+1},
        U_k = c (U_{k+1} + (h/2) X̄) + (h/2) X̄,      X_k = X̄,

    with ``J = dF/dx`` of the total force (a vector-Jacobian product by autograd), ``c = exp(-gamma dt)``,
    and ``g_k = dL/dF_k`` the adjoint of the force applied at frame ``k``. The noise enters
    additively and drops out. Then ``dL/dtheta = sum_k g_k . dF_bias(x_k)/dtheta``. The sum stops
    ``backsteps`` frames before ``K`` (the truncation of Šípka et al., section 3.3): the state at
    frame ``K - backsteps`` counts as given, like the start, so its force adjoint is the half kick
    ``(h/2m) U`` it gives in the next step. The result is then exactly backpropagation through the
    trajectory with that state detached, and through the whole trajectory when ``backsteps >= K``.

    Parameters
    ----------
    dynamics : _Dynamics
    bias : torch.nn.Module
        The bias the frames were run with.
    frames : torch.Tensor
        ``(T, B, n, 3)`` positions, Å.
    index : torch.Tensor
        ``(B,)`` int64 frame of each trajectory's loss.
    seed_adjoint : torch.Tensor
        ``(B, n, 3)`` ``dL/dx`` at those frames.
    backsteps : int

    Returns
    -------
    positions, adjoints : torch.Tensor
        ``(P, n, 3)`` frames (Å) and their force adjoints ``g = dL/dF`` (loss unit per eV/Å), only
        the pairs with a non-zero adjoint.
    """
    integ = dynamics.integrator
    h, c = integ.dt, integ.decay
    b, n = frames.shape[1:3]
    inv_m = (1.0 / dynamics.masses).to(frames)[None, :, None]
    rows = torch.arange(b, device=frames.device)
    k = index.clone()
    x_adj, u_adj = seed_adjoint.detach().clone(), torch.zeros_like(seed_adjoint)
    out_x, out_g = [], []
    for i in range(int(backsteps)):
        live = k >= 1
        if not bool(live.any()):
            break
        x1 = frames[k, rows]
        xbar = x_adj
        if i > 0:  # U_K = 0: the force at the loss's own frame does not move it
            g1 = h * inv_m * u_adj
            out_x.append(x1[live])
            out_g.append(g1[live])
            xbar = x_adj + dynamics.force_vjp(x1.reshape(-1, 3), g1.reshape(-1, 3), bias).reshape(b, n, 3)
        u_new = c * (u_adj + 0.5 * h * xbar) + 0.5 * h * xbar
        mask = live[:, None, None]
        x_adj, u_adj = torch.where(mask, xbar, x_adj), torch.where(mask, u_new, u_adj)
        k = torch.where(live, k - 1, k)
    # The window's first frame is held fixed (positions and velocities), as frame 0 is: only the
    # half kick its force gives in the next step depends on the bias.
    out_x.append(frames[k, rows])
    out_g.append(0.5 * h * inv_m * u_adj)
    x, g = torch.cat(out_x), torch.cat(out_g)
    keep = g.flatten(1).abs().sum(1) > 0
    return x[keep], g[keep]


# -- the optimiser --------------------------------------------------------------------------------


@dataclass
class BiasPathResult:
    """What :meth:`BiasPathOptimizer.fit` returns.

    Attributes
    ----------
    bias : torch.nn.Module
        The trained bias (a :mod:`sims` potential: add it to the system's).
    history : pandas.DataFrame
        One row per iteration (index ``iteration``): ``loss`` (mean per trajectory, CV unit^2),
        ``success_rate`` (fraction of the trajectories that reach their target basin: some frame
        inside its tolerance, the paper's measure), ``end_rate`` (fraction whose last frame is
        inside), ``met`` (fraction of path pairs that met), ``barrier`` (mean highest potential
        energy above the start of the paths that reach their target, eV; NaN without
        ``barrier_weight``), ``pairs`` (frame-adjoint pairs) and ``seconds``.
    selected : int
        The iteration whose bias ``bias`` is: the last, or with ``select="best"`` the best one.
    """

    bias: nn.Module
    history: "object"
    selected: int


def _start_digest(bias: nn.Module) -> str | None:
    """A digest of the weights ``bias`` starts training from, or None where they are those its kind
    builds from its hyperparameters (which a checkpoint's settings hold already).

    A checkpoint keeps the trained bias, not the one training started from: without this a run from
    another start (``matrep enhanced``'s ``start_from``, a bias given with other weights) would resume
    the other run's training. None for a freshly built bias keeps checkpoints written before valid.
    """
    state = {k: v.detach().cpu() for k, v in bias.state_dict().items()}
    kind = _BIASES.get(type(bias).__name__)
    if kind is type(bias):
        fresh = kind(**bias.hyperparameters(), dtype=bias.dtype).state_dict()
        if fresh.keys() == state.keys() and all(torch.equal(fresh[k], v) for k, v in state.items()):
            return None
    return content_hash({k: v.tolist() for k, v in state.items()})


def _check_positive(name: str, value, *, integer: bool = False, minimum: float = 0.0, strict: bool = True) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value)) and (float(value) > minimum if strict else float(value) >= minimum)
    if ok and integer:
        ok = float(value) == int(value)
    if not ok:
        kind = "an integer" if integer else "a number"
        raise SimsInputError(f"{name} must be {kind} {'>' if strict else '>='} {minimum:g}, got {value!r}")


class BiasPathOptimizer:
    """Learn a bias that drives trajectories from ``start`` to ``target`` (Šípka et al., ICML 2023).

    Parameters
    ----------
    system : torch.nn.Module
        The physical potential (a :mod:`sims` potential), evaluated on ``B`` non-interacting copies
        of the system at once (its atoms ``B n``): an external-field model such as
        :class:`~sims.potentials.MuellerBrown`, or any potential that sums over separated molecules.
    bias : GaussianGridBias or BasisSetBias
        The trainable bias, with ``atoms_per_replica`` equal to the system's atom count.
    start, target : ase.Atoms
        Reactant and product configurations (same atoms, masses from them).
    descriptors : sequence of CV or str
        Descriptors in which the loss measures distances and the basins are defined.
    temperature : float
        K.
    friction : float
        Langevin friction, 1/fs.
    timestep : float
        fs.
    n_steps : int
        Steps per trajectory.
    n_trajectories : int
        Trajectories per iteration, even: half start in the reactant, half in the product basin.
    backsteps : int
        Steps of the truncated adjoint behind each scored frame (the paper's 190).
    mini_batch : int
        (frame, adjoint) pairs per optimiser step.
    lr : float
        Adam learning rate (eV for Gaussian heights).
    iterations : int
        Default number of iterations of :meth:`fit`.
    warmup : int, optional
        Frames before the start-basin term counts; default ``n_steps // 4``.
    confidence : float
        Chi-square probability of a basin's tolerance region.
    basin_steps : int, optional
        Steps of the unbiased runs that estimate the basins (default ``n_steps``).
    end_weight : float
        Weight of a term on the last frame's distance to the target basin (zero inside): the
        paper scores the closest frame only, so a trajectory may pass through the target and
        leave; this term asks it to stay.
    both_directions : bool
        Half the trajectories start in the product basin and aim at the reactant (the paper's
        set-up); False: all start in the reactant.
    barrier_weight : float
        ``mu`` (CV unit^2 per eV) of a term on the barrier of each trajectory that reaches its
        target: ``mu (V(x_top) - V(x_0))`` with ``x_top`` its frame of highest physical potential
        energy ``V`` (from the work of the forces along the path, :meth:`barriers`). The
        minimum-energy path is the minimax path, the one whose highest point (its saddle) is the
        lowest of all paths between the basins. The term's gradient is nudged as in the nudged
        elastic band (Jónsson, Mills & Jacobsen 1998; Henkelman & Jónsson, J. Chem. Phys. 113,
        9978 (2000)): ``-mu F(x_top)`` without its component along the path's tangent, which
        moves each path's highest point downhill along the ridge it crosses, towards the saddle,
        and not back into the start basin. The truncated adjoint runs back from ``x_top`` as from
        the scored frame. 0 (the default) leaves it out (the paper has no such term).
    barrier_potential : torch.nn.Module, optional
        The potential ``V`` of the barrier term and of :meth:`barriers` (default: ``system``).
        Where the system is a reaction surface plus coordinates separable from it, give the
        surface alone: the minimum-energy path then has the extra coordinates at their minimum and
        its saddles are the surface's, while along a biased path those coordinates carry
        whatever energy the bias and the bath give them, which is no part of the barrier
        (Müller-Brown 5-D: ``MuellerBrown(dim=5, spring=0)``, the surface on ``(x, y)`` without
        the three harmonic coordinates, which a bias on all five coordinates kicks).
    barrier_energy : {"potential", "total"}, optional
        Read only with ``barrier_weight > 0`` (given without it, it is refused); default "potential".
        What the barrier term lowers at each path's highest point: the potential energy (of
        ``barrier_potential``), or the total energy, potential plus the kinetic energy of the
        central-difference velocity ``(x_{k+1} - x_{k-1}) / 2h``. A path needs at least the saddle's
        potential energy to cross, and a slow crossing carries hardly more (``k_B T`` each
        coordinate), so the lowest highest total energy is again the saddle's; but a bias that
        catapults the particle over the ridge (kinetic energy far above the barrier, seen with
        the basis-set bias in 5-D) is a high total energy at low potential energy, which only the
        total sees. Its gradient adds ``+-mu m v_top / 2h`` at the frames either side of the top.
    select : {"last", "best"}
        Which bias :meth:`fit` leaves: the last iteration's, or the best one's (the highest
        success rate, then, with the last-frame term, the highest end rate, then the lowest loss,
        then the latest). With the barrier term the paths
        reach the saddle and then can lose it again (at 10 K a bias that lifts the paths just to
        the saddle is a knife edge); "best" keeps the bias of the lowest barrier at full success.
    gap : bool, optional
        Read only with ``both_directions`` (given without it, it is refused); default True: while a
        forward path and its backward partner have not met, score the gap between them instead of
        the distance to the target (the authors' meet-in-the-middle loss); False scores the target
        distance only.
    seed : int
        Seeds everything (velocities, noise, shuffling) through local generators.
    device, dtype
        Of the dynamics.

    Raises
    ------
    SimsInputError
        Before training: descriptors whose gradient is zero at the start, a start configuration
        inside the target basin, basins whose tolerance regions overlap, inconsistent settings.
    SimsError
        During training: non-finite forces or adjoints, naming the iteration.

    Examples
    --------
    >>> opt = BiasPathOptimizer.mueller_brown(dim=2, seed=0)      # doctest: +SKIP
    >>> result = opt.fit()                                        # doctest: +SKIP
    >>> result.history.success_rate.iloc[-1]                      # doctest: +SKIP
    """

    def __init__(self, system: nn.Module, bias: nn.Module, start, target, *, descriptors, temperature: float,
                 friction: float, timestep: float, n_steps: int, n_trajectories: int, backsteps: int = 190,
                 mini_batch: int = 128, lr: float = 1e-3, iterations: int = 100, warmup: int | None = None,
                 confidence: float = 0.99, basin_steps: int | None = None, end_weight: float = 0.0,
                 barrier_weight: float = 0.0, barrier_potential: nn.Module | None = None,
                 barrier_energy: str | None = None,
                 select: str = "last", both_directions: bool = True,
                 gap: bool | None = None, seed: int = 0,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> None:
        for name, value, integer in [("temperature", temperature, False), ("friction", friction, False),
                                     ("timestep", timestep, False), ("lr", lr, False), ("n_steps", n_steps, True),
                                     ("n_trajectories", n_trajectories, True), ("backsteps", backsteps, True),
                                     ("mini_batch", mini_batch, True), ("iterations", iterations, True)]:
            _check_positive(name, value, integer=integer)
        if both_directions and int(n_trajectories) % 2:
            raise SimsInputError(f"n_trajectories must be even (half start in each basin), got {n_trajectories}")
        if not 0 < confidence < 1:
            raise SimsInputError(f"confidence must be in (0, 1), got {confidence}")
        warmup = int(n_steps) // 4 if warmup is None else warmup
        _check_positive("warmup", warmup, integer=True, strict=False)
        if warmup >= n_steps:
            raise SimsInputError(f"warmup ({warmup}) must be shorter than n_steps ({n_steps})")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise SimsInputError(f"seed must be a non-negative int, got {seed!r}")
        if not isinstance(bias, nn.Module) or not any(p.requires_grad for p in bias.parameters()):
            raise SimsInputError(f"bias must be a torch module with trainable parameters (GaussianGridBias, "
                                 f"BasisSetBias), got {type(bias).__name__}")
        start, target = as_atoms(start), as_atoms(target)
        check_unconstrained(start, "BiasPathOptimizer")
        if len(start) != len(target) or not np.array_equal(start.numbers, target.numbers) \
                or not np.allclose(start.get_masses(), target.get_masses()):
            raise SimsInputError("start and target must be the same atoms in the same order (numbers and masses)")
        n_atoms = len(start)
        if getattr(bias, "atoms_per_replica", None) != n_atoms:
            raise SimsInputError(f"the bias must have atoms_per_replica={n_atoms} (the system's atoms), got "
                                 f"{getattr(bias, 'atoms_per_replica', None)}")
        self.system, self.bias = system, bias
        self.start_atoms, self.target_atoms = start, target
        self.cvs = _descriptors(descriptors)
        for cv in self.cvs:
            cv.check(n_atoms)
        self.periodic = _periodic(self.cvs)
        self.temperature, self.friction, self.timestep = float(temperature), float(friction), float(timestep)
        self.n_steps, self.n_trajectories, self.backsteps = int(n_steps), int(n_trajectories), int(backsteps)
        self.mini_batch, self.lr, self.iterations, self.warmup = int(mini_batch), float(lr), int(iterations), int(warmup)
        if gap is not None and not both_directions:
            raise SimsInputError(f"gap={gap!r} is read only with both_directions=True (it scores the gap between a "
                                 "forward path and its backward partner); pass both_directions=True or leave gap out")
        # True when not given: the value a checkpoint written before gap could be left out records
        self.confidence, self.seed, self.gap = float(confidence), int(seed), True if gap is None else bool(gap)
        self.both_directions = bool(both_directions)
        _check_positive("end_weight", end_weight, strict=False)
        self.end_weight = float(end_weight)
        _check_positive("barrier_weight", barrier_weight, strict=False)
        self.barrier_weight = float(barrier_weight)
        if barrier_potential is not None and not isinstance(barrier_potential, nn.Module):
            raise SimsInputError(f"barrier_potential must be a sims potential (a torch module) or None for the "
                                 f"system's, got {type(barrier_potential).__name__}")
        self.barrier_potential = system if barrier_potential is None else barrier_potential
        if barrier_energy not in ("potential", "total", None):
            raise SimsInputError(f"barrier_energy must be 'potential' or 'total', got {barrier_energy!r}")
        if barrier_energy is not None and self.barrier_weight == 0:
            raise SimsInputError(f"barrier_energy={barrier_energy!r} is read only by the barrier term; pass "
                                 "barrier_weight > 0 or leave barrier_energy out")
        self.barrier_energy = "potential" if barrier_energy is None else barrier_energy
        if select not in ("last", "best"):
            raise SimsInputError(f"select must be 'last' or 'best', got {select!r}")
        self.select = select
        self.basin_steps = self.n_steps if basin_steps is None else int(basin_steps)
        self.device, self.dtype = device, dtype
        self.bias.to(device=device)
        self._initial_bias = _start_digest(bias)
        self.system.to(device=device)
        self.barrier_potential.to(device=device)

        def t(x):
            return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)

        self.start, self.target = t(start.positions), t(target.positions)
        self.dynamics = _Dynamics(system, t(start.get_masses()),
                                  torch.as_tensor(start.numbers, dtype=torch.long, device=device),
                                  Langevin(self.timestep, self.temperature, self.friction), n_atoms)
        self._check_descriptors()
        self.start_basin, self.target_basin = self._basins()

    # -- set-up checks -------------------------------------------------------------------------

    def _check_descriptors(self) -> None:
        for name, pos in (("start", self.start), ("target", self.target)):
            x = pos.unsqueeze(0).detach().requires_grad_(True)
            with torch.enable_grad():
                for cv in self.cvs:
                    value = cv(x)
                    grad = torch.autograd.grad(value.sum(), x, allow_unused=True)[0]
                    if grad is None or not bool(grad.abs().sum() > 0):
                        raise SimsInputError(f"descriptor {cv!r} does not depend on the positions at the {name} "
                                             "configuration (zero gradient): the loss could not steer the bias; "
                                             "choose descriptors that move with the atoms")

    def _basins(self) -> tuple[Basin, Basin]:
        half = max(self.n_trajectories // 2, 2)
        starts = torch.cat([self.start.expand(half, -1, -1), self.target.expand(half, -1, -1)])
        with torch.no_grad():
            frames = self.dynamics.run(starts, None, self.basin_steps, (self.seed, 0), self.temperature)
        s = _evaluate(self.cvs, frames[self.basin_steps // 2:].reshape(-1, *frames.shape[2:])).reshape(
            -1, 2 * half, len(self.cvs))
        basins = [Basin.from_samples(part.reshape(-1, len(self.cvs)), self.periodic, self.confidence)
                  for part in (s[:, :half], s[:, half:])]
        start_s = _evaluate(self.cvs, self.start.unsqueeze(0))[0]
        target_s = _evaluate(self.cvs, self.target.unsqueeze(0))[0]
        if bool(basins[1].contains(start_s)) or bool(basins[0].contains(target_s)):
            raise SimsInputError(f"the start configuration (descriptors {start_s.tolist()}) is already inside the "
                                 f"target basin (centre {basins[1].center.tolist()}), or the target inside the start "
                                 "basin: give a start and a target in different basins")
        if not basins[0].separated_from(basins[1]):
            raise SimsInputError(f"the start and target basins overlap: their tolerance regions (confidence "
                                 f"{self.confidence}) around the centres {basins[0].center.tolist()} and "
                                 f"{basins[1].center.tolist()} overlap in their projection onto the direction that "
                                 "separates them best; lower the confidence, lower the temperature, or choose "
                                 "descriptors that separate the basins")
        return basins[0], basins[1]

    # -- one iteration ---------------------------------------------------------------------------

    def _layout(self):
        """Starts ``(B, n, 3)`` and, per trajectory, its target and home basins as stacked tensors
        (centre ``(B, D)``, inverse covariance ``(B, D, D)``, threshold ``(B,)``)."""
        b = self.n_trajectories
        forward = torch.arange(b) < (b // 2 if self.both_directions else b)
        starts = torch.where(forward[:, None, None], self.start, self.target)

        def stack(first: Basin, second: Basin):
            centre = torch.where(forward[:, None], first.center, second.center)
            inv = torch.where(forward[:, None, None], torch.linalg.inv(first.covariance),
                              torch.linalg.inv(second.covariance))
            return centre, inv, torch.where(forward, first.threshold, second.threshold)

        return starts, stack(self.target_basin, self.start_basin), stack(self.start_basin, self.target_basin)

    def _gated(self, s: torch.Tensor, basin) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared distance of ``s`` ``(..., B, D)`` to each trajectory's basin centre, zero inside
        its tolerance; and the inside flags."""
        centre, inv, threshold = basin
        d = _delta(s, centre.to(s), self.periodic)
        inside = torch.einsum("...i,...ij,...j->...", d, inv.to(s), d) <= threshold.to(s)
        return (d * d).sum(-1) * ~inside, inside

    def _scores(self, frames: torch.Tensor, target, home):
        """Per trajectory: frames and losses of the main and home terms, whether the paths met,
        the partner frame's descriptors, and success (reached, ended in the target basin)."""
        n_t, b = frames.shape[:2]
        s = _evaluate(self.cvs, frames.reshape(-1, *frames.shape[2:])).reshape(n_t, b, -1)
        end, inside = self._gated(s, target)
        home_d, _ = self._gated(s, home)
        home_d[: self.warmup] = float("inf")
        l_end, k_end = end.min(0)
        l_home, k_home = home_d.min(0)
        reached, ended = inside.any(0), inside[-1]
        met = torch.ones(b, dtype=torch.bool)
        partner = s[-1]
        k_main, l_main = k_end, l_end
        if self.both_directions and self.gap:
            # the gap between each forward path and its backward partner (frames after the warm-up)
            half, w = b // 2, self.warmup
            sf, sb = s[w:, :half], s[w:, half:]
            dd = _delta(sf[:, None], sb[None], self.periodic)                     # (T', T', half, D)
            flat = (dd * dd).sum(-1).reshape(-1, half).min(0)
            kf, kb = flat.indices // sf.shape[0] + w, flat.indices % sf.shape[0] + w
            rows = torch.arange(half)
            closest = dd.reshape(-1, half, dd.shape[-1])[flat.indices, rows]
            # met: within the target basin's tolerance widened five-fold in variance (as rarediffsim)
            inv = torch.linalg.inv(5 * self.target_basin.covariance).to(s)
            met_half = torch.einsum("bi,ij,bj->b", closest, inv, closest) <= self.target_basin.threshold
            met = torch.cat([met_half, met_half])
            partner = torch.cat([s[kb, rows + half], s[kf, rows]])
            k_main = torch.where(met, k_end, torch.cat([kf, kb]))
            l_main = torch.where(met, l_end, torch.cat([flat.values, flat.values]))
        return s, k_main, l_main, met, partner, k_home, l_home, reached, ended

    def _seed(self, frames, k, loss_fn):
        """``d loss / dx`` at frames ``k`` (one per trajectory), ``(B, n, 3)``."""
        rows = torch.arange(frames.shape[1])
        x = frames[k, rows].detach().requires_grad_(True)
        with torch.enable_grad():
            value = loss_fn(_evaluate(self.cvs, x)).sum()
            return torch.autograd.grad(value, x)[0]

    def barriers(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each trajectory's highest potential energy above its first frame (eV) and the frame where
        it is, for trajectories ``(T, B, n, 3)``, of ``barrier_potential`` (default the system):
        ``V(x_k) - V(x_0)`` is the work of its forces along the path, by Simpson's rule on each
        step's straight segment (the force is conservative, so any path between two frames gives
        the same work),
        ``-(F_j + 4 F_{j+1/2} + F_{j+1}) . (x_{j+1} - x_j) / 6``. It needs only forces, no energies
        of single copies."""
        k_top, barrier, _, _ = self._barriers(frames)
        return barrier, k_top

    def _barriers(self, frames, kinetic: bool = False):
        n_t, b, n = frames.shape[:3]
        middle = 0.5 * (frames[1:] + frames[:-1])
        with torch.enable_grad():
            force, mid = (self.dynamics.forces(x.reshape(-1, 3), None, potential=self.barrier_potential)[1]
                          .detach().reshape(x.shape) for x in (frames, middle))
        step = -((force[1:] + 4 * mid + force[:-1]) * (frames[1:] - frames[:-1])).sum((2, 3)) / 6
        rise = torch.cat([torch.zeros_like(step[:1]), step.cumsum(0)])
        velocity = None
        if kinetic and n_t >= 3:
            velocity = self._velocities(frames)
            m = self.dynamics.masses.to(frames)[:, None]
            kin = 0.5 * (m * velocity * velocity).sum((2, 3))
            rise = rise + torch.cat([torch.zeros_like(kin[:1]), kin, torch.zeros_like(kin[:1])])
        barrier, k_top = rise.max(0)
        rows = torch.arange(b)
        if velocity is not None:   # the top's velocity; zero at the ends, where no central difference is
            inner = (k_top >= 1) & (k_top <= n_t - 2)
            velocity = velocity[(k_top - 1).clamp(0, n_t - 3), rows] * inner[:, None, None]
        elif kinetic:
            velocity = torch.zeros_like(frames[0])
        return k_top, barrier, force[k_top, rows], velocity

    def _velocities(self, frames):
        """Central-difference velocities ``(x_{k+1} - x_{k-1}) / 2h`` of frames ``1 .. T-2`` (ASE units)."""
        return (frames[2:] - frames[:-2]) / (2 * self.dynamics.integrator.dt)

    def step(self, iteration: int, optimizer: torch.optim.Optimizer) -> dict:
        """Run one iteration (simulate, score, adjoint, mini-batch updates); return its history row."""
        t0 = time.perf_counter()
        starts, target, home = self._layout()
        with torch.no_grad():
            frames = self.dynamics.run(starts, self.bias, self.n_steps, (self.seed, 1, iteration), self.temperature)
        s, k_main, l_main, met, partner, k_home, l_home, reached, ended = self._scores(frames, target, home)
        has_home = torch.isfinite(l_home)

        def main_loss(sk):
            d_p = _delta(sk, partner, self.periodic)
            return torch.where(met, self._gated(sk, target)[0], (d_p * d_p).sum(-1))

        def home_loss(sk):
            return self._gated(sk, home)[0] * has_home

        def last_loss(sk):
            return self.end_weight * self._gated(sk, target)[0]

        last = torch.full_like(k_main, self.n_steps)
        xs, gs = [], []
        seeds = [(k, self._seed(frames, k, fn)) for k, fn in ((k_main, main_loss), (k_home, home_loss),
                                                               (last, last_loss))]
        barrier = torch.full((self.n_trajectories,), float("nan"), dtype=frames.dtype)
        if self.barrier_weight > 0 and bool(reached.any()):
            kinetic = self.barrier_energy == "total"
            k_top, barrier, force_top, v_top = self._barriers(frames, kinetic)
            barrier = torch.where(reached, barrier, float("nan"))
            # d(mu V(x_top))/dx = -mu F(x_top) on the trajectories that reach their target, nudged
            # as in the nudged elastic band: only the part across the path's tangent. Along the
            # tangent, below the saddle, -grad V points back into the start basin, and following it
            # would lower the top by not crossing at all.
            rows = torch.arange(self.n_trajectories)
            tangent = (frames[(k_top + 1).clamp(max=self.n_steps), rows]
                       - frames[(k_top - 1).clamp(min=0), rows]).flatten(1)
            tangent = tangent / tangent.norm(dim=1, keepdim=True).clamp(min=1e-12)
            across = force_top.flatten(1) - (force_top.flatten(1) * tangent).sum(1, keepdim=True) * tangent
            seeds.append((k_top, -self.barrier_weight * across.reshape(force_top.shape) * reached[:, None, None]))
            if kinetic:
                # K_top = m |x_{k+1} - x_{k-1}|^2 / 8h^2: d/dx_{k+-1} = +-m v_top / 2h
                grad_k = (self.dynamics.masses.to(frames)[:, None] * v_top / (2 * self.dynamics.integrator.dt)
                          * self.barrier_weight * reached[:, None, None])
                seeds.append(((k_top + 1).clamp(max=self.n_steps), grad_k))
                seeds.append(((k_top - 1).clamp(min=0), -grad_k))
        for k, seed in seeds:
            seed = seed / self.n_trajectories
            if not bool(seed.abs().sum() > 0):
                continue
            x, g = force_adjoints(self.dynamics, self.bias, frames, k, seed, self.backsteps)
            xs.append(x)
            gs.append(g)
        if not xs:   # every trajectory where it should be: nothing to learn this iteration
            xs, gs = [frames[:0, 0]], [frames[:0, 0]]
        x, g = torch.cat(xs), torch.cat(gs)
        if not bool(torch.isfinite(g).all()):
            raise SimsError(f"non-finite adjoints at iteration {iteration}; lower lr or the timestep")
        gen = make_generator((self.seed, 2, iteration))
        order = torch.randperm(x.shape[0], generator=gen).to(x.device)
        for chunk in order.split(self.mini_batch):
            optimizer.zero_grad()
            pos = x[chunk].reshape(-1, 3).detach().requires_grad_(True)
            with torch.enable_grad():
                force = -torch.autograd.grad(self.bias(pos), pos, create_graph=True)[0]
                force.backward(g[chunk].reshape(-1, 3))
            optimizer.step()
            if hasattr(self.bias, "project"):
                self.bias.project()
        l_last = self.end_weight * self._gated(s[-1], target)[0]
        loss = (l_main + torch.where(has_home, l_home, torch.zeros_like(l_home)) + l_last
                + self.barrier_weight * torch.nan_to_num(barrier)).mean()
        return {"iteration": iteration, "loss": float(loss), "success_rate": float(reached.double().mean()),
                "end_rate": float(ended.double().mean()), "met": float(met.double().mean()),
                "barrier": float(barrier.nanmean()),
                "pairs": int(x.shape[0]), "seconds": time.perf_counter() - t0}

    def fit(self, iterations: int | None = None, *, progress: bool = False,
            callback: Callable[[dict], None] | None = None, checkpoint=None) -> "BiasPathResult":
        """Train the bias for ``iterations`` (default the optimiser's ``iterations``); return the result.

        ``callback(row)`` runs after each iteration with its history row. With ``checkpoint`` (a
        file path) the bias, the Adam state and the history are written there atomically after
        every iteration, and a call that finds the file resumes after its last iteration: every
        iteration draws from its own seeds, so a resumed run repeats an uninterrupted one bit for
        bit. A checkpoint of other settings, or of a run from other starting weights of the bias, is
        refused.

        Raises
        ------
        SimsInputError
            A checkpoint written with other settings, or not a checkpoint.
        SimsError
            Non-finite forces or adjoints, naming the iteration.
        """
        import pandas as pd

        iterations = self.iterations if iterations is None else iterations
        _check_positive("iterations", iterations, integer=True)
        optimizer = torch.optim.Adam([p for p in self.bias.parameters() if p.requires_grad], lr=self.lr)
        self._best = None   # (key, iteration, state): the bias each history row measured, before its step
        rows = self._resume(checkpoint, optimizer) if checkpoint is not None else []
        if len(rows) > iterations:
            # the checkpoint keeps the last bias only: the one after `iterations` cannot be given back
            raise SimsInputError(f"{checkpoint} holds {len(rows)} iterations, more than the {iterations} asked for; "
                                 f"ask for at least {len(rows)} or use another checkpoint file")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(iterations), initial=min(len(rows), int(iterations)), desc="bias-path iterations",
                       unit="it")
        try:
            for it in range(len(rows), int(iterations)):
                state = {k: v.detach().clone() for k, v in self.bias.state_dict().items()}
                try:
                    row = self.step(it, optimizer)
                except SimsError as err:
                    if "iteration" in str(err):
                        raise
                    raise type(err)(f"iteration {it}: {err}") from None
                rows.append(row)
                key = self._rank(row)
                if self._best is None or key >= self._best[0]:
                    self._best = (key, it, state)
                if checkpoint is not None:
                    self._checkpoint(checkpoint, optimizer, rows)
                if callback is not None:
                    callback(row)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.3g}", success=f"{row['success_rate']:.2f}")
        finally:
            if bar is not None:
                bar.close()
        selected = len(rows) - 1
        if self.select == "best" and self._best is not None:
            selected = self._best[1]
            self.bias.load_state_dict(self._best[2])
        return BiasPathResult(self.bias, pd.DataFrame(rows).set_index("iteration"), selected)

    def _settings(self, system_state: bool = True) -> str:
        """What a checkpoint must match: every setting that changes the numbers, as JSON.

        ``system_state=False`` leaves out the digest of the system's parameters (a module's repr
        does not show them: ``MuellerBrown()`` at any ``energy_scale``), as checkpoints written
        before it was recorded lack it.
        """
        hp = self.bias.hyperparameters() if hasattr(self.bias, "hyperparameters") else type(self.bias).__name__
        settings = {"bias": [type(self.bias).__name__, hp], "cvs": [repr(cv) for cv in self.cvs],
                    "start": self.start.tolist(), "target": self.target.tolist(),
                    "numbers": self.start_atoms.numbers.tolist(), "masses": self.dynamics.masses.tolist(),
                    **{k: getattr(self, k) for k in (
                        "temperature", "friction", "timestep", "n_steps", "n_trajectories", "backsteps",
                        "mini_batch", "lr", "warmup", "confidence", "basin_steps", "end_weight",
                        "barrier_weight", "select", "both_directions", "gap", "seed")},
                    "system": repr(self.system), "dtype": str(self.dtype)}
        if system_state:
            settings["system_state"] = content_hash({k: v.tolist() for k, v in self.system.state_dict().items()})
        if self._initial_bias is not None:   # a bias that starts from other weights than its kind builds
            settings["initial_bias"] = self._initial_bias
        if self.barrier_energy != "potential":   # (absent by default: earlier checkpoints stay valid)
            settings["barrier_energy"] = self.barrier_energy
        if self.barrier_potential is not self.system:
            settings["barrier_potential"] = [repr(self.barrier_potential), {
                k: v.tolist() for k, v in self.barrier_potential.state_dict().items()}]
        return json.dumps(settings, sort_keys=True)

    def _checkpoint(self, path, optimizer, rows) -> None:
        import io

        from reprs.fileio import atomic_write

        buffer = io.BytesIO()
        torch.save({"format": "matrep.sims.enhanced.checkpoint/1", "settings": self._settings(),
                    "bias": self.bias.state_dict(), "optimizer": optimizer.state_dict(), "rows": rows,
                    "best": None if self._best is None else {"key": list(self._best[0]), "iteration": self._best[1],
                                                             "state": self._best[2]}}, buffer)
        atomic_write(path, buffer.getvalue())

    def _resume(self, path, optimizer) -> list[dict]:
        from pathlib import Path

        if not Path(path).exists():
            return []
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 (torch raises several unrelated types for a bad file)
            raise SimsInputError(f"{path} is not a checkpoint of BiasPathOptimizer ({err})") from None
        if not isinstance(payload, dict) or payload.get("format") != "matrep.sims.enhanced.checkpoint/1":
            raise SimsInputError(f"{path} is not a checkpoint of BiasPathOptimizer")
        recorded = json.loads(payload["settings"])
        # A checkpoint written before gap and barrier_energy were refused where they are not read (s15)
        # may hold a value of theirs that never changed its numbers: compared as this run's.
        if not self.both_directions:
            recorded["gap"] = self.gap
        if self.barrier_weight == 0:
            recorded.pop("barrier_energy", None)
        # a checkpoint from before the system's parameters were recorded is compared without them
        if json.dumps(recorded, sort_keys=True) != self._settings(system_state="system_state" in recorded):
            raise SimsInputError(f"the checkpoint {path} was written with other settings; remove it or use another "
                                 "file to start afresh")
        self.bias.load_state_dict(payload["bias"])
        optimizer.load_state_dict(payload["optimizer"])
        best = payload.get("best")
        rows = list(payload["rows"])
        if best is not None:   # ranked again from its row: a checkpoint may predate the current ranking
            self._best = (self._rank(rows[best["iteration"]]), best["iteration"], best["state"])
        return rows

    def _rank(self, row: dict) -> tuple:
        """How ``select="best"`` ranks a history row: success rate, then (with the last-frame term)
        the end rate, then the lowest loss, then the latest."""
        return (row["success_rate"], row["end_rate"] if self.end_weight > 0 else 0.0, -row["loss"], row["iteration"])

    def descriptors(self, frames: torch.Tensor) -> torch.Tensor:
        """Descriptor values ``(T, B, D)`` of trajectories ``(T, B, n, 3)`` (CV units)."""
        return _evaluate(self.cvs, frames.reshape(-1, *frames.shape[2:])).reshape(*frames.shape[:2], -1)

    def reached(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B,)`` bool: some frame of each trajectory ``(T, B, n, 3)`` is inside the target basin."""
        return self.target_basin.contains(self.descriptors(frames)).any(0)

    def sample(self, n_trajectories: int, *, seed: int, bias: nn.Module | None = None,
               n_steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh forward trajectories from ``start``: under the trained bias, another one, or none.

        Parameters
        ----------
        n_trajectories : int
        seed : int
            Velocities and noise, from the stream ``(seed, 3)`` (training draws from ``(seed, 1, iteration)``,
            so no seed repeats a training trajectory).
        bias : torch.nn.Module or False, optional
            Default the optimiser's bias; ``False`` runs the unbiased dynamics.
        n_steps : int, optional
            Default the training's.

        Returns
        -------
        frames : torch.Tensor
            ``(n_steps + 1, n_trajectories, n, 3)``, Å.
        success : torch.Tensor
            ``(n_trajectories,)`` bool: the last frame is in the target basin.
        """
        _check_positive("n_trajectories", n_trajectories, integer=True)
        bias = self.bias if bias is None else (None if bias is False else bias)
        n_steps = self.n_steps if n_steps is None else int(n_steps)
        with torch.no_grad():
            frames = self.dynamics.run(self.start.expand(int(n_trajectories), -1, -1), bias, n_steps,
                                       (int(seed), 3), self.temperature)
            s = _evaluate(self.cvs, frames[-1])
        return frames, self.target_basin.contains(s)

    # -- ready set-ups ---------------------------------------------------------------------------

    @classmethod
    def mueller_brown(cls, dim: int = 2, seed: int = 0, **overrides) -> "BiasPathOptimizer":
        """The Müller-Brown set-up: from the deepest minimum (-0.558, 1.442) to the far minimum
        (0.623, 0.028), across the ridges into and out of the middle basin.

        The physics follow Šípka et al.'s rarediffsim scaled to our units
        (:class:`~sims.potentials.MuellerBrown` defaults: a 0.40 eV barrier out of the deepest
        minimum, mass 2.56 amu) at their low temperature of 10 K (their 2-D runs; their 5-D notebook
        runs at 300 K), where unbiased trajectories never leave the start basin. The bias is a grid
        of Gaussians, hills only: 2-D a 15 x 14 grid on (x, y); 5-D the same grid times two points
        on each of the three harmonic coordinates (descriptors all five coordinates, as the
        authors' 5-D runs: the bias must find that two of them matter), with the last-frame term
        (``end_weight=1``) so that trajectories stay, and the barrier measured on the surface of
        (x, y) (``barrier_potential=MuellerBrown(dim=5, spring=0)``: the harmonic coordinates are
        uncoupled from it, so the minimum-energy path and its saddles are the 2-D ones).

        Settings that are ours, not the paper's, chosen so that training takes a few minutes on two
        CPU cores: 300 steps of 1 fs, friction 0.1/fs, 32 trajectories, all trajectories forward
        from the reactant with no warm-up term, 60 iterations (5-D: 90) with the barrier term
        (``barrier_weight=1``, Å^2 per eV) and ``select="best"``: without it the learned bias is a
        slide aimed at the target and the paths leave the deepest basin about 0.7 Å from the
        saddle (-0.822, 0.624), 0.16 eV higher; with it they pass within 0.1 Å of it and within
        0.2 Å of (0.212, 0.293) in 2-D, within 0.15 Å and 0.31 Å in 5-D (medians, training seeds 0-2;
        ``docs/enhanced.md`` has the distances per seed). The authors' basis-set bias (an MLP) on
        all five coordinates learned a catapult in our 5-D runs (the particle across the surface in
        a few femtoseconds), which no barrier on the potential energy can straighten. In our runs
        the paper's two-direction loss with the path-gap term (``both_directions=True``) stalled
        with both halves in the middle basin, also with the barrier term, and the warm-up term held
        trajectories back at the first ridge; both remain available. Any constructor argument can be overridden.
        """
        from .potentials import MuellerBrown

        system = MuellerBrown(dim=dim)
        n = system.atoms_per_particle
        start = Atoms("Ar" * n, positions=[[-0.558, 1.442, 0.0]] + [[0.0, 0.0, 0.0]] * (n - 1))
        target = Atoms("Ar" * n, positions=[[0.623, 0.028, 0.0]] + [[0.0, 0.0, 0.0]] * (n - 1))
        for atoms in (start, target):
            atoms.set_masses([MUELLER_BROWN_MASS] * n)
        if dim == 2:
            descriptors = ["position:0,x", "position:0,y"]
            bias = GaussianGridBias(descriptors, lower=[-1.6, -0.5], upper=[1.2, 2.1], points=[15, 14],
                                    width=0.25, hills_only=True, atoms_per_replica=n)
        else:
            # two grid points 1 Å either side on each harmonic coordinate, 1 Å wide: no curvature
            # in them at 0 (hills there would be unstable against the 2.2 eV/Å^2 spring), a tilt
            # the training may learn
            descriptors = ["position:0,x", "position:0,y", "position:0,z", "position:1,x", "position:1,y"]
            bias = GaussianGridBias(descriptors, lower=[-1.6, -0.5, -1, -1, -1], upper=[1.2, 2.1, 1, 1, 1],
                                    points=[15, 14, 2, 2, 2], width=[0.25, 0.25, 1, 1, 1], hills_only=True,
                                    atoms_per_replica=n)
        settings = dict(descriptors=descriptors, temperature=10.0, friction=0.1, timestep=1.0, n_steps=300,
                        n_trajectories=32, backsteps=190, mini_batch=128, lr=2e-3,
                        iterations=60 if dim == 2 else 90, warmup=0, end_weight=0.0 if dim == 2 else 1.0,
                        barrier_weight=1.0, select="best", both_directions=False, seed=seed)
        if dim == 5:   # the barrier on the surface of (x, y), without the separable harmonic coordinates
            settings["barrier_potential"] = MuellerBrown(dim=5, spring=0.0)
        settings.update(overrides)
        if "bias" in settings:
            bias = settings.pop("bias")
        return cls(system, bias, start, target, **settings)

    @classmethod
    def alanine_dipeptide(cls, seed: int = 0, **overrides) -> "BiasPathOptimizer":
        """Alanine dipeptide in vacuum (amber14 through OpenMM), C7eq -> C7ax at 300 K.

        Descriptors phi and psi (:data:`sims.openmm_potential.PHI`, ``PSI``); the bias is a
        periodic basis set (16 Gaussians per dihedral) and an MLP. The adjoint's force Jacobian
        products are central differences of OpenMM's forces
        (:meth:`~sims.openmm_potential.OpenMMPotential.force_jacobian_product`). Settings are ours
        (500 steps of 1 fs, friction 0.05/fs, 16 forward trajectories, 15 iterations, last-frame
        term), sized for a few minutes on two CPU cores. Needs the ``openmm`` extra.
        """
        from .openmm_potential import PHI, PSI
        from .openmm_potential import alanine_dipeptide as build

        start, system = build("C7eq")
        target, _ = build("C7ax")
        descriptors = ["dihedral:%d,%d,%d,%d" % PHI, "dihedral:%d,%d,%d,%d" % PSI]
        settings = dict(descriptors=descriptors, temperature=300.0, friction=0.05, timestep=1.0, n_steps=500,
                        n_trajectories=16, backsteps=190, mini_batch=128, lr=2e-3, iterations=15, warmup=0,
                        end_weight=1.0, both_directions=False, seed=seed)
        settings.update(overrides)
        bias = settings.pop("bias", None)
        if bias is None:
            bias = BasisSetBias(descriptors, n_basis=16, hidden=32, seed=seed, atoms_per_replica=len(start))
        return cls(system, bias, start, target, **settings)


#: amu: rarediffsim's Müller-Brown mass (0.01 in its units of 1/16 of our length) scaled to our Å.
MUELLER_BROWN_MASS = 2.56
