"""Energies, forces and stress by autograd, and the :class:`MD` driver.

Forces are ``-dE/dR`` and the stress is ``(1/V) dE/d(strain)``, both by automatic differentiation
of the potential's energy, so they cannot drift from it. Pair potentials take a closed-form route
(:func:`sims.potentials.pair_energy_forces`, the same derivatives without a backward pass), tested
against the autograd one.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from reprs.atoms import as_atoms

from .errors import SimsInputError
from .integrators import Integrator, Langevin, VelocityVerlet, _baoab_drift, _kick, _verlet_drift, make_generator
from .neighbors import NeighborList, build_pairs, image_vectors
from .potentials import (_list_constants, _pair_kernel, _pair_terms, conserves_momentum, pair_energy_forces,
                         potential_dtype, translation_safe, with_structure_pbc)
from .state import State, centred, check_unconstrained, validate_atoms

__all__ = ["compute", "energy_and_forces", "MD", "maxwell_boltzmann", "check_momentum_thermostat"]


def compute(potential: torch.nn.Module, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor,
            pairs, *, forces: bool = True, stress: bool = False, create_graph: bool = False,
            compiled: bool = False, system: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Return ``(energy [eV], forces [eV/Å] or None, stress [eV/Å^3, 3x3] or None)``.

    The stress is the derivative of the energy under a homogeneous strain ``eps`` applied to
    positions and cell, ``R -> R (1 + eps)``, divided by the volume: ASE's sign convention
    (positive = tensile), without the kinetic contribution.

    ``create_graph=True`` keeps the graph of the forces, so that later steps of a trajectory can
    be differentiated through them.

    The computation runs in the dtype of ``positions``; a potential whose energy comes back in
    another dtype (parameters of one precision mixed into a sum of another) is refused.

    ``compiled=True`` runs the closed-form pair pass through ``torch.compile`` where it applies
    (see :func:`sims.potentials.pair_energy_forces`; one system only). A batch's pair potentials take
    the closed form too, stress included.

    A batch of ``B`` systems (:mod:`sims.batch`) passes ``(B, 3, 3)`` cells and ``system``, the system
    index of each atom, and gets ``(B,)`` energies and ``(B, 3, 3)`` stresses: the forces are minus
    the gradient of the summed energies (systems do not interact), and system ``b``'s stress comes
    from its own strain ``eps_b``.

    Raises
    ------
    SimsInputError
        The potential's energy is not a scalar (``(B,)`` for a batch) of the dtype of ``positions``.
    """
    if forces or stress:
        # Pair potentials: forces and virial in closed form, no backward pass (and, without
        # create_graph, no graph at all); the autograd route below is the reference it is tested against.
        with torch.set_grad_enabled(create_graph):
            closed = pair_energy_forces(potential, positions, cell, numbers, pairs, forces=forces, virial=stress,
                                        compiled=compiled and system is None, system=system)
        if closed is not None:
            energy, f, w = closed
            _check_energy(potential, energy, positions, () if system is None else (cell.shape[0],))
            volume = torch.abs(torch.linalg.det(cell))
            return energy, f, None if w is None else w / (volume if system is None else volume[:, None, None])
    inputs = []
    if forces:
        if not positions.requires_grad:
            positions = positions.detach().requires_grad_(True)
        inputs.append(positions)
    pos, cel = positions, cell
    if stress:
        shape = (3, 3) if system is None else (cell.shape[0], 3, 3)
        strain = torch.zeros(shape, dtype=positions.dtype, device=positions.device, requires_grad=True)
        deform = torch.eye(3, dtype=positions.dtype, device=positions.device) + strain
        pos = positions @ deform if system is None else torch.einsum("ni,nij->nj", positions, deform[system])
        cel = cell @ deform
        inputs.append(strain)
    energy = potential(pos, cel, numbers, pairs) if system is None else potential(pos, cel, numbers, pairs, system)
    _check_energy(potential, energy, positions, () if system is None else (cell.shape[0],))
    if not inputs:
        return energy, None, None
    grads = torch.autograd.grad(energy if system is None else energy.sum(), inputs, create_graph=create_graph)
    f = -grads[0] if forces else None
    volume = torch.abs(torch.linalg.det(cell))
    s = grads[-1] / (volume if system is None else volume[:, None, None]) if stress else None
    if not create_graph:
        energy = energy.detach()
        f = None if f is None else f.detach()
        s = None if s is None else s.detach()
    return energy, f, s


def _check_energy(potential: torch.nn.Module, energy, positions: torch.Tensor, shape: tuple = ()) -> None:
    """Refuse an energy that is not of ``shape`` (``()``, or ``(B,)`` for a batch) in the dtype of ``positions``."""
    if not (torch.is_tensor(energy) and tuple(energy.shape) == shape and energy.dtype == positions.dtype):
        got = f"a {energy.dtype} tensor of shape {tuple(energy.shape)}" if torch.is_tensor(energy) else repr(energy)
        want = "a scalar energy" if not shape else f"({shape[0]},) energies of a batch"
        raise SimsInputError(f"{type(potential).__name__} returned {got} for {positions.dtype} positions; a potential "
                             f"must return {want} in the dtype of the positions (cast its parameters)")


def energy_and_forces(potential: torch.nn.Module, atoms, *, stress: bool = False,
                      device: torch.device | str | None = None, dtype: torch.dtype | None = None):
    """Energy (eV) and forces (eV/Å) of ``atoms``, and the stress (eV/Å^3, 3x3) when asked.

    Parameters
    ----------
    potential : torch.nn.Module
        Any potential of :mod:`sims.potentials` (or with the same interface).
    atoms : ase.Atoms
        The configuration.
    stress : bool
        Also return the 3x3 stress (needs a 3-D cell).
    device : torch.device or str, optional
        Where to compute.
    dtype : torch.dtype, optional
        Precision of the whole computation (positions, cell and the potential's parameters);
        default the potential's (:func:`sims.potentials.potential_dtype`). Below float64 the
        positions are first moved about their centroid in float64 (:func:`sims.state.centred`),
        where the potential allows it (:func:`sims.potentials.translation_safe`).

    Returns
    -------
    energy : float
    forces : numpy.ndarray
        ``(N, 3)``.
    stress : numpy.ndarray
        ``(3, 3)``, only when ``stress=True``.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from sims.potentials import LennardJones
    >>> e, f = energy_and_forces(LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5),
    ...                          bulk("Ar", "fcc", a=5.26, cubic=True), dtype=torch.float64)
    """
    atoms = as_atoms(atoms)
    if stress and atoms.cell.rank < 3:
        raise SimsInputError("the stress needs a 3-D cell")
    dtype = potential_dtype(potential) if dtype is None else dtype
    if translation_safe(potential):
        atoms = centred(atoms, dtype)
    state = State.from_atoms(atoms, device=device, dtype=dtype)
    potential = with_structure_pbc(potential, state.pbc)
    pairs = build_pairs(state.positions, state.cell, state.pbc, float(potential.cutoff), half=True)
    e, f, s = compute(potential, state.positions, state.cell, state.numbers, pairs, stress=stress)
    out = (float(e), f.cpu().double().numpy())
    return out + (s.cpu().double().numpy(),) if stress else out


def maxwell_boltzmann(masses: torch.Tensor, temperature: float, *,
                      seed: int | Sequence[int] | None = None) -> torch.Tensor:
    """Velocities (ASE units) drawn at ``temperature`` (K), zero total momentum, exact kinetic temperature.

    The kinetic energy is rescaled to ``(3N - 3) kT / 2`` so runs start at the requested temperature
    counted over the ``3N - 3`` degrees of freedom left with zero momentum (LAMMPS's ``compute temp``);
    :meth:`MD.temperature`, which counts ``3N`` as ASE does, then reads ``(3N - 3) / 3N`` of it (0.75 at
    4 atoms, 0.984 at 64).
    ``seed`` seeds a local generator (:func:`sims.integrators.make_generator`); None draws fresh
    entropy, and no global random state is used either way.
    """
    gen = make_generator(seed, masses.device)
    kT = units.kB * float(temperature)
    v = torch.randn((masses.shape[0], 3), generator=gen, device=masses.device, dtype=masses.dtype)
    v = v * torch.sqrt(kT / masses)[:, None]
    v = v - (masses[:, None] * v).sum(0) / masses.sum()
    dof = max(3 * masses.shape[0] - 3, 1)
    ke = 0.5 * (masses[:, None] * v ** 2).sum()
    return v * torch.sqrt(0.5 * dof * kT / ke) if temperature > 0 and ke > 0 else v * 0


def check_momentum_thermostat(potential: torch.nn.Module, integrator: Integrator) -> None:
    """Refuse Nose-Hoover chains (alone, inside a barostat, or MTK's) on an external field, or with a bias
    on a CV of absolute positions (:func:`sims.potentials.conserves_momentum`).

    The chains remove the centre-of-mass velocity at the start and thermostat ``3N - 3`` degrees of
    freedom, which is right only while the total momentum is conserved; under an external field
    (:class:`sims.potentials.DoubleWell`, :class:`sims.potentials.MuellerBrown`) the momentum is not
    conserved and the run would sample a wrong temperature (one particle: ``2/3`` of the kinetic
    energy missing, or no motion at all from rest at a minimum) without any sign of it.

    Raises
    ------
    SimsInputError
        Saying to use Langevin dynamics instead.
    """
    from .barostats import MTK
    from .integrators import NoseHooverChain

    chains = isinstance(integrator, (NoseHooverChain, MTK)) or isinstance(
        getattr(integrator, "thermostat", None), NoseHooverChain)
    if chains and not conserves_momentum(potential):
        raise SimsInputError(f"{type(integrator).__name__} with Nose-Hoover chains assumes a conserved total momentum "
                             f"(3N - 3 degrees of freedom, the centre-of-mass velocity removed), but "
                             f"{type(potential).__name__} does not conserve it (an external field, or a bias on a CV "
                             "of absolute positions such as sims.cv.Position): the run "
                             "would sample a wrong temperature. Use sims.Langevin (exact for any potential)")


def _fused_kernel(terms, x, v, f, inv_m, dt, i, j, shifts, numbers, ref, c1=None, kT=None, noise=None, image=None,
                  system=None, n_systems: int = 1):
    """One velocity-Verlet step (``c1`` None) or Langevin BAOAB step (friction factor ``c1``, thermal energy ``kT``
    and the step's standard normal ``noise``) under a pair potential, with the integrators' own arithmetic
    (:func:`sims.integrators._verlet_drift`, ``_baoab_drift``, ``_kick``) and the closed-form pair pass
    (:func:`sims.potentials._pair_kernel`) over the list ``(i, j)`` built at ``ref``, all in one graph for
    ``torch.compile``: returns the new positions, energy, forces and velocities, and for the host to read at once
    ``(largest squared displacement since the list's build, largest squared displacement in this step, energy)``.

    ``shifts`` are the pairs' Cartesian image shifts as rows ``(3, P)``, or with ``image`` (a batch's list) the
    ``(3, U)`` table of :func:`sims.neighbors.image_vectors` that ``image`` indexes: the gathers run inside the pair
    loop instead of over the whole list whenever a batch's list is patched. A batch of systems
    (:class:`sims.batch.BatchMD`) passes each atom's ``system`` and ``n_systems``: energies and displacements are
    then ``(n_systems,)``, one per system (so each system's part of the list is tested on its own); ``kT`` per
    atom. One system is the case ``system=None``."""
    # Per-atom arithmetic on flat (3N,) views (``inv_m``, and a batch's ``kT``, given as (3N,)): inductor
    # vectorises those, where rows of three would be masked vector loads.
    shape = x.shape
    start, v, f = x, v.reshape(-1), f.reshape(-1)
    if c1 is None:
        x, v = _verlet_drift(x.reshape(-1), v, f, inv_m, dt)
    else:
        x, v = _baoab_drift(x.reshape(-1), v, f, inv_m, dt, c1, kT, noise.reshape(-1))
    x = x.reshape(shape)
    if image is not None:
        shifts = shifts.index_select(1, image)
    energy, f, _ = _pair_kernel(terms, x, i, j, shifts, numbers.index_select(0, i), numbers.index_select(0, j), True,
                                True, False, pair_system=None if system is None else system.index_select(0, i),
                                n_systems=n_systems)
    d, step = x - ref, x - start
    d2, step2 = (d * d).sum(1), (step * step).sum(1)
    if system is None:
        worst, moved = d2.amax(), step2.amax()
    else:
        worst = d2.new_zeros(n_systems).scatter_reduce(0, system, d2, "amax")
        moved = d2.new_zeros(n_systems).scatter_reduce(0, system, step2, "amax")
    v = _kick(v, f.reshape(-1), inv_m, dt)
    return x, energy, f, v.reshape(shape), torch.stack([worst, moved, energy])


#: A fused run rebuilds a system's part of the neighbour list when its atoms may pass half the skin within this
#: many steps (each moving them as far as the last), and with it the parts of systems within _LIST_BATCH steps of it.
_LIST_TRIGGER, _LIST_BATCH = 2.0, 6.0


@functools.cache
def _fused_step():
    return torch.compile(_fused_kernel, dynamic=True)


class _Driver:
    """The step loop that :class:`MD` and :class:`sims.batch.BatchMD` share.

    Non-finite energies are noted on the device at every step (the first bad step of each system)
    and read on the host, which waits for the device, only every ``check_every`` steps and when a
    frame is recorded, a callback runs or :meth:`run` ends. Subclasses provide ``_record()`` (what
    :attr:`trajectory` gets), ``_non_finite(first_bad)`` (the start of the error message), ``_pairs(positions,
    cell)`` (the neighbour list, updated) and, for the fused compiled step, call :meth:`_setup_fused`.
    """

    _fused = False
    _host_energy: list[float] | None = None  # energies a fused step read on the host (None: not read)

    def run(self, n_steps: int):
        """Advance ``n_steps`` steps; return self."""
        if n_steps < 0:
            raise SimsInputError(f"n_steps must be >= 0, got {n_steps}")
        with torch.set_grad_enabled(True):
            for _ in range(int(n_steps)):
                self.state, self.energy, self.forces = self._advance()
                self.step_count += 1
                self._note_non_finite()
                record = self.record_every and self.step_count % self.record_every == 0
                if record or self.callback is not None or self.step_count % self.check_every == 0:
                    self._check()
                if record:
                    self.trajectory.append(self._record())
                if self.callback is not None:
                    self.callback(self)
            self._check()
        return self

    def _note_non_finite(self) -> None:
        """On the device, no wait: remember the first step at which the energy went bad."""
        host, self._host_energy = self._host_energy, None
        if host is not None and all(map(math.isfinite, host)):
            return  # a fused step read its energies on the host already: nothing to note
        bad = ~torch.isfinite(self.energy.detach())
        first = self._first_bad if self._first_bad is not None else torch.full_like(bad, -1, dtype=torch.long)
        self._first_bad = torch.where(bad & (first < 0), self.step_count, first)

    def _advance(self):
        """One step: ``(state, energy, forces)`` after it."""
        if self._fused:
            return self._fused_advance()
        return self.integrator.step(self.state, self.energy, self.forces, self._force_fn, self._integrator_vars)

    def _check(self) -> None:
        """Raise if the energy became non-finite since the start (one wait for the device)."""
        if self._first_bad is not None and bool((self._first_bad >= 0).any()):
            raise SimsInputError(f"{self._non_finite(self._first_bad)} (checked at step {self.step_count}); reduce "
                                 "the timestep or check the potential")

    # The fused compiled step ---------------------------------------------------------------------

    def _setup_fused(self, compiled: bool, requires_grad: bool = False) -> None:
        """Decide whether steps run fused (:func:`_fused_kernel` compiled): asked for, nothing differentiated, a
        pair potential (:func:`sims.potentials._pair_terms`), a neighbour list, and a plain NVE or Langevin
        integrator."""
        self._terms = _pair_terms(self.potential)
        self._fused = (compiled and not requires_grad and self._terms is not None and self.neighbors is not None
                       and type(self.integrator) in (VelocityVerlet, Langevin))
        self._listed = self._listed_cell = None  # the positions and cell the fused step last checked the list for
        self._inv_m = self._kT = self._list_cache = None
        self._scalars: dict[float, torch.Tensor] = {}

    def _fused_advance(self):
        """One fused step: one compiled call (:func:`_fused_kernel`) and one host read (displacements and energies).
        The list is rebuilt (a batch's: the parts of the systems concerned) at the new positions when the next
        steps may take an atom past half the skin; a step that already did is taken again from the same start and
        noise (the same new positions) with the rebuilt list."""
        state, integ, run = self.state, self.integrator, self._integrator_vars
        if state.positions is not self._listed or state.cell is not self._listed_cell:
            # Positions not from the last fused step (the start, a refresh, a state set from outside): test the list.
            self._pairs(state.positions, state.cell)
        like = state.positions.detach()
        if self._inv_m is None or self._inv_m[0] is not state.masses:
            self._inv_m = (state.masses, _flat(1.0 / state.masses[:, None]))
        fixed = (self._terms, like, state.velocities, self.forces, self._inv_m[1], self._scalar(integ.dt))
        noise = ()
        if type(integ) is Langevin:
            noise = (self._scalar(integ.decay), self._thermal(run.get("kT", integ.kT)), integ.noise(run, like))
        step = _fused_step()
        with torch.no_grad():  # (the potential's parameters require grad; nothing here is differentiated)
            listed, batch = self._list_args(state)
            x, energy, forces, v, check = step(*fixed, *listed, *noise, **batch)
            worst, moved, self._host_energy = check.reshape(3, -1).tolist()  # the one wait for the device per step
            limit = 0.5 * self.neighbors.skin
            # Look ahead: a system whose atoms the next _LIST_TRIGGER steps may take past half the skin, if each moves
            # them as far as this one did, gets its part of the list rebuilt now, at the new positions, so that a
            # step rarely has to be taken again; with it every system within _LIST_BATCH such steps of it, so that
            # in a batch of many systems the patches (each copies the kept pairs of the whole list) come on a few
            # steps in ten, not on every step (256 x 64 argon, skin 1 Å: 24-29 ms a step against 33-37 ms before
            # the look-ahead; benchmarks/README.md).
            ahead = [(limit - math.sqrt(w)) / max(math.sqrt(m), 1e-300) for w, m in zip(worst, moved)]
            if min(ahead) < _LIST_TRIGGER:
                pairs = self.neighbors.pairs
                self._pairs(x, state.cell, rebuild=torch.tensor([a < _LIST_BATCH for a in ahead], device=x.device))
                if max(worst) > limit ** 2 and self.neighbors.pairs is not pairs:
                    # This step took an atom past half the skin: its forces may miss a pair. Take it again from the
                    # same start and noise (the same new positions) with the list rebuilt there.
                    listed, batch = self._list_args(state)
                    x, energy, forces, v, check = step(*fixed, *listed, *noise, **batch)
                    self._host_energy = check[2].reshape(-1).tolist()
        self.state = state.with_(positions=x, velocities=v)
        self._listed, self._listed_cell = self.state.positions, self.state.cell
        return self.state, energy, forces

    def _scalar(self, value: float) -> torch.Tensor:
        """``value`` as a 0-d tensor of the run's dtype and device, kept while the value stays (settings that a
        ramp may change between steps are arguments of the compiled step, not constants baked into it)."""
        like = self.state.positions
        cached = self._scalars.get(value)
        if cached is None or cached.dtype != like.dtype or cached.device != like.device:
            if len(self._scalars) > 64:  # a temperature ramp: a new value every step
                self._scalars.clear()
            cached = self._scalars[value] = like.new_tensor(value)
        return cached

    def _thermal(self, kT) -> torch.Tensor:
        """The fused step's ``kT``: a number as a 0-d tensor, a batch's per-atom ``(N, 1)`` values as ``(3N,)``."""
        if not torch.is_tensor(kT):
            return self._scalar(kT)
        if self._kT is None or self._kT[0] is not kT:
            self._kT = (kT, _flat(kT))
        return self._kT[1]

    def _list_args(self, state) -> tuple[tuple, dict]:
        """The current neighbour list as the fused step's arguments: pairs, Cartesian shifts, species and the
        positions it was built at; for a batch also the image of each pair and the system of each atom (keywords)."""
        pairs = self.neighbors.pairs
        cached = self._list_cache
        if cached is None or cached[0] is not pairs or cached[1] is not state.cell:
            system = getattr(state, "system", None)
            batch = {} if system is None else {"system": system, "n_systems": state.n_systems}
            if pairs.image_index is not None:  # a batch's list: the table of its images, indexed in the step
                shifts = image_vectors(state.cell, pairs).T.contiguous()
                batch["image"] = pairs.image_index
            else:
                shifts = _list_constants(pairs, state.cell, state.numbers, system)[2]
            self._list_cache = cached = (pairs, state.cell, (pairs.i, pairs.j, shifts, state.numbers,
                                                             self.neighbors.reference_positions), batch)
        return cached[2], cached[3]


def _flat(per_atom: torch.Tensor) -> torch.Tensor:
    """``(N, 1)`` per-atom values as ``(3N,)``, one per coordinate (the fused step's flat layout)."""
    return per_atom.expand(-1, 3).reshape(-1)


class MD(_Driver):
    """Molecular dynamics of ``atoms`` under ``potential`` with ``integrator``.

    Parameters
    ----------
    system : ase.Atoms or State
        Start configuration (velocities from its momenta). A :class:`State` whose positions or
        velocities require grad makes the trajectory differentiable with respect to them.
    potential : torch.nn.Module
        Energy model with a ``cutoff`` (Å).
    integrator : Integrator
        :class:`VelocityVerlet`, :class:`Langevin` or :class:`NoseHooverChain`.
    temperature : float, optional
        Draw initial velocities at this temperature (K) instead of using the given ones.
    seed : int, optional
        Seeds the initial velocities and the integrator's noise (two independent streams of
        local generators owned by this run: runs sharing one integrator object never share its
        noise). None draws fresh entropy; global torch and numpy random state is never touched.
    skin : float
        Neighbour-list skin, Å.
    record_every : int
        Append a frame to :attr:`trajectory` every this many steps (0, the default: never; each
        frame is a copy of the state on the host).
    check_every : int
        Check the energy for NaN/inf every this many steps (reading it waits for the device), and
        at every recorded frame, callback and the end of :meth:`run`; the error names the first bad
        step, which is remembered on the device.
    requires_grad : bool
        Keep the autograd graph through the whole trajectory (memory grows with the number of
        steps); off for production runs.
    callback : callable, optional
        ``callback(md)`` after every step (for example a dataset writer).
    min_distance : float, optional
        Refuse a start with atoms closer than this (Å, overlapping atoms); None skips the check
        (for non-interacting particles).
    compiled : bool
        Compile the pair-force pass of a pair potential with ``torch.compile`` (without
        ``requires_grad``; the first evaluation then compiles for about 10-30 s). With
        :class:`VelocityVerlet` or :class:`Langevin` the whole step (kicks, drifts, noise, pair forces
        and the neighbour list's displacement test) is one compiled call between list rebuilds, and
        small orthorhombic cells build their list with a compiled all-pairs search
        (:class:`sims.neighbors.NeighborList`): LJ argon steps on one CPU thread take about 3x less
        than eager ones (864 atoms: 0.6 ms, within 3x of LAMMPS; ``benchmarks/README.md``); other
        integrators compile the pair pass only (1.3-2.5x). Results equal the eager pass to round-off.
    device : torch.device or str, optional
        Where the run happens.
    dtype : torch.dtype, optional
        Precision of the run (positions, velocities, the potential's parameters); default the
        potential's (:func:`sims.potentials.potential_dtype`). A :class:`State` carries its own; a
        different ``dtype`` with it is refused. The state holds the positions as given, unwrapped:
        in float32 a coordinate is rounded by up to ``6e-8 |x|`` (6e-4 Å 10^4 Å from the origin,
        where LJ argon forces come out 2e-3 away from float64's), so start a float32 run near the
        origin (``atoms.wrap()``, or translate a cluster) or run it in float64.
        :func:`energy_and_forces` centres single points itself (:func:`sims.state.centred`).

    Raises
    ------
    SimsInputError
        NaN positions, zero masses, overlapping atoms, ASE constraints on the atoms (not applied here:
        :func:`sims.state.check_unconstrained`), a State of another dtype than ``dtype``.
    MissingCellError
        pbc without a cell.

    Examples
    --------
    >>> md = MD(atoms, pot, VelocityVerlet(timestep=2.0), dtype=torch.float32)  # doctest: +SKIP
    >>> md.run(1000)                                                            # doctest: +SKIP
    >>> frames = md.trajectory                                                  # doctest: +SKIP
    """

    def __init__(self, system, potential: torch.nn.Module, integrator: Integrator, *,
                 temperature: float | None = None, seed: int | None = None, skin: float = 1.0,
                 record_every: int = 0, check_every: int = 10, requires_grad: bool = False,
                 callback: Callable[["MD"], None] | None = None, min_distance: float | None = 0.5,
                 compiled: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        if not isinstance(integrator, Integrator):
            raise SimsInputError(f"integrator must be a sims Integrator, got {type(integrator).__name__}")
        if not hasattr(potential, "cutoff"):
            raise SimsInputError("the potential needs a `cutoff` attribute (Å)")
        check_momentum_thermostat(potential, integrator)
        if isinstance(system, State):
            state = system
            if dtype is not None and state.positions.dtype != dtype:
                raise SimsInputError(f"the State is {state.positions.dtype} but dtype={dtype} was asked; "
                                     f"convert the State or leave dtype out")
        else:
            atoms = validate_atoms(system, min_distance=min_distance)
            check_unconstrained(atoms, "sims.MD")
            state = State.from_atoms(atoms, device=device, dtype=potential_dtype(potential) if dtype is None else dtype)
        if temperature is not None:
            state = state.with_(velocities=maxwell_boltzmann(state.masses, temperature,
                                                             seed=None if seed is None else (seed, 0)))
        self.potential = with_structure_pbc(potential, state.pbc)
        self.integrator = integrator
        self.requires_grad = requires_grad
        self.compiled = bool(compiled)
        if int(check_every) < 1 or int(record_every) < 0:
            raise SimsInputError(f"need check_every >= 1 and record_every >= 0, got {check_every}, {record_every}")
        self.record_every = int(record_every)
        self.check_every = int(check_every)
        self._first_bad: torch.Tensor | None = None
        self.callback = callback
        cutoff = float(potential.cutoff)
        self.neighbors = (NeighborList(cutoff=cutoff, skin=skin, half=True, compiled=self.compiled)
                          if cutoff > 0 else None)
        self._setup_fused(self.compiled, requires_grad)
        # The integrator holds settings only; this run's noise generator and thermostat variables
        # are its own, so a shared integrator object gives each run the stream its seed asks for.
        self._virial = None
        self.state, self._integrator_vars = integrator.start(state, None if seed is None else (seed, 1))
        self.step_count = 0
        self.trajectory: list[Atoms] = []
        self.energy, self.forces = self._force_fn(self.state.positions)

    def _pairs(self, positions: torch.Tensor, cell: torch.Tensor, rebuild: torch.Tensor | None = None):
        if self.neighbors is None:
            return build_pairs(positions, cell, self.state.pbc, 0.0)
        return self.neighbors.update(positions, cell, self.state.pbc, rebuild=rebuild)

    def _force_fn(self, positions: torch.Tensor, cell: torch.Tensor | None = None, stress: bool = False):
        """``(energy, forces)`` at ``positions`` in ``cell`` (default the state's); with ``stress=True``
        also the virial stress (one autograd pass), which this run keeps for :meth:`stress`.

        Integrators that change the cell (:mod:`sims.barostats`) pass the new ``cell`` and ask for
        the stress; the others call ``force_fn(positions)``.
        """
        if not self.requires_grad:
            positions = positions.detach()
        cell = self.state.cell if cell is None else cell
        # (A fused run compiles its whole step instead: its few other force passes stay eager.)
        e, f, s = compute(self.potential, positions, cell, self.state.numbers, self._pairs(positions, cell),
                          stress=stress, create_graph=self.requires_grad, compiled=self.compiled and not self._fused)
        self._virial = (s, positions, cell) if stress else None
        return (e, f, s) if stress else (e, f)

    def refresh(self) -> None:
        """Rebuild the neighbour list and recompute forces now (done at checkpoints, so that a
        resumed run repeats an uninterrupted one bit for bit)."""
        if self.neighbors is not None:
            self.neighbors.update(self.state.positions, self.state.cell, self.state.pbc, force=True)
        self.energy, self.forces = self._force_fn(self.state.positions)
        self.integrator.refresh(self._integrator_vars)

    def _periodic_3d(self) -> bool:
        return bool(self.state.pbc.all()) and abs(float(torch.linalg.det(self.state.cell.detach()))) > 1e-12

    def virial_stress(self) -> torch.Tensor:
        """The potential's stress at the current state, ``(1/V) dE/d(strain)``, eV/Å^3, 3x3 (ASE's sign:
        positive = tensile; no kinetic part). Reused from the force pass when a barostat computed it.

        Raises
        ------
        SimsInputError
            The system is not periodic in three dimensions (a stress needs a volume).
        """
        if not self._periodic_3d():
            raise SimsInputError("the stress and pressure need a cell periodic in all three directions "
                                 f"(pbc={self.state.pbc.tolist()})")
        cached = getattr(self, "_virial", None)
        if cached is not None and cached[1] is self.state.positions and cached[2] is self.state.cell:
            return cached[0]
        with torch.set_grad_enabled(True):
            _, _, s = compute(self.potential, self.state.positions.detach(), self.state.cell, self.state.numbers,
                              self._pairs(self.state.positions.detach(), self.state.cell), forces=False, stress=True)
        self._virial = (s, self.state.positions, self.state.cell)
        return s

    def stress(self) -> torch.Tensor:
        """The instantaneous stress tensor, virial plus kinetic part, eV/Å^3, 3x3.

        Equals ASE's ``atoms.get_stress(include_ideal_gas=True, voigt=False)`` on the same
        positions and momenta (sign: positive = tensile).
        """
        return self.virial_stress() + self.state.kinetic_stress().detach()

    def pressure(self) -> float:
        """The instantaneous pressure ``-tr(stress) / 3``, eV/Å^3 (``/ ase.units.bar`` gives bar)."""
        return float(-torch.trace(self.stress()) / 3)

    @property
    def time(self) -> float:
        """Simulated time since the start, fs."""
        return self.step_count * self.integrator.timestep

    def temperature(self) -> float:
        """Instantaneous kinetic temperature ``2 KE / (3N kB)``, K (ASE's ``Atoms.get_temperature``).

        Counted over ``3N`` degrees of freedom, as ASE counts them. Where the total momentum is zero
        and conserved (:func:`maxwell_boltzmann` starts, :class:`~sims.integrators.NoseHooverChain`,
        :class:`~sims.barostats.MTK`, NVE), equipartition fills ``3N - 3`` of them, so its mean is
        ``(3N - 3) / 3N`` of the thermostat's target (0.984 at 64 atoms, 0.75 at 4); LAMMPS's
        ``compute temp`` divides by ``3N - 3`` and reports the target. Under Langevin dynamics all
        ``3N`` are thermalised and the mean is the target.
        """
        return float(2 * self.state.kinetic_energy() / (3 * self.state.n_atoms * units.kB))

    def conserved_energy(self) -> float:
        """The integrator's conserved quantity (total energy in NVE), eV."""
        return float(self.integrator.conserved_energy(self.state, self.energy, self._integrator_vars))

    def integrator_state_dict(self) -> dict[str, Any]:
        """This run's integrator variables (noise generator, thermostat) as plain data for a checkpoint,
        with the integrator's :meth:`~sims.integrators.Integrator.settings` under ``"settings"``."""
        return {**self.integrator.state_dict(self._integrator_vars), "settings": self.integrator.settings()}

    def load_integrator_state_dict(self, d: dict[str, Any]) -> None:
        """Restore :meth:`integrator_state_dict` (resume a run bit for bit).

        Raises
        ------
        SimsInputError
            ``d`` was saved under other integrator settings (kind, timestep, temperature, friction,
            ...), named in the message; a dict without ``"settings"`` (older) is not checked.
        """
        self.integrator.check_settings(d.get("settings"))
        self.integrator.load_state_dict(self._integrator_vars, d)

    def frame(self) -> Atoms:
        """The current state as ``ase.Atoms`` with energy and forces attached, and
        ``info`` keys ``step``, ``time`` (fs), ``temperature`` (K).

        A cell periodic in three directions also gets the potential's stress on the calculator
        (ASE's ``atoms.get_stress()``, stored in Voigt order ``xx yy zz yz xz xy`` as ASE calculators
        store it; ``include_ideal_gas=True`` adds the kinetic part from the frame's momenta) and
        ``info`` keys ``pressure`` (bar), ``pressure_eV_A3`` (eV/Å^3), ``stress_total`` (the 3x3 total
        stress, kinetic part included, eV/Å^3) and ``volume`` (Å^3).
        """
        atoms = self.state.to_atoms()
        results = {"energy": float(self.energy), "forces": self.forces.detach().cpu().double().numpy()}
        atoms.info.update(step=self.step_count, time=self.time, temperature=self.temperature())
        if self._periodic_3d():
            virial = self.virial_stress()
            total = (virial + self.state.kinetic_stress().detach()).cpu().double().numpy()
            # Voigt, as ASE calculators store it: an ASE database flattened a 3x3 to nine numbers that neither
            # atoms.get_stress() nor a stress-trained potential could read back.
            results["stress"] = full_3x3_to_voigt_6_stress(virial.detach().cpu().double().numpy())
            p = float(-np.trace(total) / 3)
            atoms.info.update(pressure=p / units.bar, pressure_eV_A3=p, stress_total=total, volume=atoms.get_volume())
        atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    def _record(self) -> Atoms:
        return self.frame()

    def _non_finite(self, first_bad: torch.Tensor) -> str:
        return f"the energy became non-finite at step {int(first_bad)}"

    def positions_array(self) -> np.ndarray:
        """Current positions, Å, as numpy."""
        return self.state.positions.detach().cpu().double().numpy()
