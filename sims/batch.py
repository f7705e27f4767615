"""Many systems in one set of tensors: a batched state, energies and forces, and the :class:`BatchMD` driver.

``B`` systems of any sizes, cells and temperatures are concatenated atom by atom (``N`` atoms in
all), with the ``(N,)`` index ``system`` naming each atom's system and per-system ``(B, 3, 3)`` cells
and ``(B, 3)`` periodic flags: the layout of torch-sim's ``SimState`` (``system_idx``) and of PyTorch
Geometric batches (``batch``), and of :class:`learners.potentials.AtomsBatch`. One neighbour list
(:func:`sims.neighbors.build_batch_pairs`) holds every system's pairs and never joins two systems;
one potential call returns the ``(B,)`` energies; one autograd pass (:func:`sims.md.compute` with
``system``) gives all forces (the systems do not interact, so the gradient of the summed energy is
each system's own) and, with a ``(B, 3, 3)`` strain, each system's stress; one integrator step (:mod:`sims.integrators`) moves every atom.

Replicas and lone runs. A system ``b`` run in a batch with seed ``s`` follows the trajectory that
``sims.MD(system_b, potential, integrator, temperature=T_b, seed=s)`` follows alone: the same initial
velocities (:func:`sims.md.maxwell_boltzmann` with the seed ``(s, 0)``), the same Langevin noise (a
generator of its own seeded ``(s, 1)``) and the same forces up to the order in which pair terms are
summed, so the two agree to float64 round-off until chaos amplifies it (tests check 1e-9 Å after
dozens of steps). A batch-wide integer seed ``s`` gives system ``b`` the seed ``(s, b)``.

Host synchronisation. Reading a number on the host (``float(energy)``, ``bool(...)``) waits for the
device. :class:`BatchMD` (and :class:`sims.MD`) check energies for NaN and infinity every
``check_every`` steps, keeping on the device the first step at which each system went bad, so the
error still names it; the neighbour list's rebuild test (one boolean a step) is the only per-step wait.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress

from reprs.fileio import atomic_open

from .errors import SimsInputError
from .barostats import MTK, CellRescaling
from .integrators import Integrator, Langevin, NoseHooverChain, VelocityVerlet
from .md import _Driver, check_momentum_thermostat, compute, maxwell_boltzmann
from .neighbors import NeighborList, PairList, build_batch_pairs
from .potentials import SumPotential, potential_dtype, translation_safe
from .state import State, centred, check_unconstrained, validate_atoms

__all__ = ["BatchState", "BatchMD", "batch_energy_and_forces"]


@dataclass
class BatchState:
    """Positions, velocities and fixed data of ``B`` systems (``N`` atoms in all) on one device.

    Attributes
    ----------
    positions : torch.Tensor
        ``(N, 3)`` Å, not wrapped (as :class:`sims.State`).
    velocities : torch.Tensor
        ``(N, 3)`` Å per ASE time unit.
    masses : torch.Tensor
        ``(N,)`` amu.
    numbers : torch.Tensor
        ``(N,)`` int64 atomic numbers.
    cell : torch.Tensor
        ``(B, 3, 3)`` Å, rows are cell vectors (zero rows along non-periodic directions).
    pbc : torch.Tensor
        ``(B, 3)`` bool.
    system : torch.Tensor
        ``(N,)`` int64 index of each atom's system; the atoms of a system are contiguous, in order.
    """

    positions: torch.Tensor
    velocities: torch.Tensor
    masses: torch.Tensor
    numbers: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    system: torch.Tensor

    @classmethod
    def from_atoms(cls, systems: Sequence[Atoms], *, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32, centre: bool = False) -> "BatchState":
        """Concatenate ``systems`` (``ase.Atoms``; velocities from their momenta, zero if absent).

        ``centre=True`` moves each system about its centroid first (:func:`sims.state.centred`: below
        float64 only; for single-point computations with a :func:`sims.potentials.translation_safe`
        potential).

        Raises
        ------
        SimsInputError
            No systems, or one that :func:`sims.state.validate_atoms` refuses (the message names it).
        """
        if isinstance(systems, Atoms) or len(systems) == 0:
            raise SimsInputError("a batch needs a non-empty sequence of systems (ase.Atoms)")
        checked = []
        for b, atoms in enumerate(systems):
            try:
                atoms = validate_atoms(atoms)
            except ValueError as err:
                raise type(err)(f"system {b}: {err}") from None
            checked.append(centred(atoms, dtype) if centre else atoms)

        def t(arrays) -> torch.Tensor:
            return torch.as_tensor(np.concatenate([np.asarray(x, dtype=np.float64) for x in arrays]),
                                   dtype=dtype, device=device)

        return cls(positions=t([a.positions for a in checked]), velocities=t([a.get_velocities() for a in checked]),
                   masses=t([a.get_masses() for a in checked]),
                   numbers=torch.as_tensor(np.concatenate([a.numbers for a in checked]), dtype=torch.long,
                                           device=device),
                   cell=t([a.cell[:][None] for a in checked]),
                   pbc=torch.as_tensor(np.stack([a.pbc for a in checked]), device=device),
                   system=torch.as_tensor(np.repeat(np.arange(len(checked)), [len(a) for a in checked]),
                                          dtype=torch.long, device=device))

    @classmethod
    def from_states(cls, states: Sequence[State]) -> "BatchState":
        """Concatenate single-system :class:`sims.State` s (same device and dtype), tensors copied exactly."""
        if len(states) == 0:
            raise SimsInputError("a batch needs at least one state")
        device = states[0].positions.device
        return cls(positions=torch.cat([s.positions for s in states]), velocities=torch.cat([s.velocities for s in states]),
                   masses=torch.cat([s.masses for s in states]), numbers=torch.cat([s.numbers for s in states]),
                   cell=torch.stack([s.cell for s in states]), pbc=torch.stack([s.pbc.reshape(3) for s in states]),
                   system=torch.repeat_interleave(torch.arange(len(states), device=device),
                                                  torch.tensor([s.n_atoms for s in states], device=device)))

    @property
    def n_systems(self) -> int:
        """Number of systems ``B``."""
        return int(self.cell.shape[0])

    def atoms_per_system(self) -> torch.Tensor:
        """``(B,)`` number of atoms of each system."""
        return torch.bincount(self.system, minlength=self.n_systems)

    def kinetic_energy(self) -> torch.Tensor:
        """``(B,)`` kinetic energy of each system, eV."""
        ke = 0.5 * (self.masses[:, None] * self.velocities ** 2).sum(1)
        return torch.zeros(self.n_systems, dtype=ke.dtype, device=ke.device).index_add(0, self.system, ke)

    def temperature(self) -> torch.Tensor:
        """``(B,)`` instantaneous kinetic temperature ``2 KE / (3 N_b kB)`` of each system, K (as :meth:`sims.MD.temperature`)."""
        return 2 * self.kinetic_energy() / (3 * self.atoms_per_system().to(self.masses.dtype) * units.kB)

    def volume(self) -> torch.Tensor:
        """``(B,)`` cell volumes, Å^3."""
        return torch.abs(torch.linalg.det(self.cell))

    def kinetic_stress(self) -> torch.Tensor:
        """``(B, 3, 3)`` kinetic (ideal-gas) stress of each system, ``-sum_i m_i v_i v_i^T / V``, eV/Å^3
        (as :meth:`sims.State.kinetic_stress`; meaningless without a 3-D cell)."""
        mv = self.masses[:, None] * self.velocities
        kinetic = torch.zeros((self.n_systems, 3, 3), dtype=mv.dtype, device=mv.device).index_add(
            0, self.system, mv[:, :, None] * self.velocities[:, None, :])
        return -kinetic / self.volume()[:, None, None]

    def to_atoms(self) -> list[Atoms]:
        """The systems as a list of ``ase.Atoms`` (positions as stored, velocities set)."""
        sizes = self.atoms_per_system().tolist()
        pos, vel, mass = (x.detach().cpu().double().numpy() for x in (self.positions, self.velocities, self.masses))
        numbers, cell, pbc = self.numbers.cpu().numpy(), self.cell.detach().cpu().double().numpy(), self.pbc.cpu().numpy()
        out, start = [], 0
        for b, n in enumerate(sizes):
            sl = slice(start, start + n)
            atoms = Atoms(numbers=numbers[sl], positions=pos[sl], cell=cell[b], pbc=pbc[b])
            atoms.set_masses(mass[sl])
            atoms.set_velocities(vel[sl])
            out.append(atoms)
            start += n
        return out

    def with_(self, **changes) -> "BatchState":
        """Return a copy with some fields replaced (integrators never mutate a state in place)."""
        return replace(self, **changes)


def _takes_batch(potential: torch.nn.Module) -> bool:
    """True when ``potential`` evaluates a batch: its forward accepts ``batch`` (a sum: every term's does)."""
    if isinstance(potential, SumPotential):
        return all(_takes_batch(t) for t in potential.terms)
    return "batch" in inspect.signature(potential.forward).parameters


def _known_numbers(potential: torch.nn.Module) -> torch.Tensor | None:
    """Elements ``potential`` can take: its ``known_numbers()`` (sims potentials), the elements a neural
    potential was fitted on (its ``known_elements`` table, :mod:`learners.potentials`), or None (any)."""
    if hasattr(potential, "known_numbers"):
        return potential.known_numbers()
    table = getattr(potential, "known_elements", None)
    if torch.is_tensor(table) and table.dtype == torch.bool and bool(table.any()):
        return torch.nonzero(table).flatten()
    return None


def check_batch_potential(potential: torch.nn.Module, state: BatchState) -> None:
    """Refuse a potential that cannot evaluate this batch, naming the system and what is wrong.

    Raises
    ------
    SimsInputError
        The potential has no ``cutoff``, takes no ``batch`` (it evaluates one structure per call:
        an ASE calculator, OpenMM), or a system holds an element the potential has no parameters for
        (a batch of different compositions under a potential fitted to one of them).
    """
    name = type(potential).__name__
    if not hasattr(potential, "cutoff"):
        raise SimsInputError(f"the potential {name} needs a `cutoff` attribute (Å)")
    if not _takes_batch(potential):
        raise SimsInputError(f"the potential {name} evaluates one structure per call (its forward takes no `batch`); "
                             "run its systems one at a time with sims.MD")
    known = _known_numbers(potential)
    if known is None:
        return
    ok = torch.zeros(max(int(state.numbers.max()), int(known.max()) if known.numel() else 0) + 1, dtype=torch.bool)
    ok[known.cpu()] = True
    bad = ~ok[state.numbers.cpu()]
    if bool(bad.any()):
        atom = int(torch.nonzero(bad)[0])
        b, z = int(state.system[atom]), int(state.numbers[atom])
        allowed = [chemical_symbols[k] for k in known.tolist()]
        raise SimsInputError(f"system {b} contains {chemical_symbols[z]}, which the potential {name} has no parameters "
                             f"for (it takes {allowed}); give every system elements the potential knows")


def batch_energy_and_forces(potential: torch.nn.Module, systems: Sequence[Atoms], *, stress: bool = False,
                            device: torch.device | str | None = None, dtype: torch.dtype | None = None):
    """Energies (eV), forces (eV/Å) and, when asked, stresses (eV/Å^3) of ``systems`` in one potential call.

    Parameters
    ----------
    potential : torch.nn.Module
        A potential that takes a batch (every pair potential of :mod:`sims.potentials`, the neural
        potentials of :mod:`learners.potentials`).
    systems : sequence of ase.Atoms
        Any sizes, cells, periodicities and compositions the potential can take.
    stress : bool
        Also return each system's 3x3 stress (every system needs a 3-D periodic cell).
    device, dtype
        Where and in which precision (default the potential's). Below float64 each system's positions
        are first moved about their centroid in float64 (:func:`sims.state.centred`), where the
        potential allows it (:func:`sims.potentials.translation_safe`).

    Returns
    -------
    energies : numpy.ndarray
        ``(B,)``.
    forces : list of numpy.ndarray
        ``(N_b, 3)`` per system.
    stresses : numpy.ndarray
        ``(B, 3, 3)``, only when ``stress=True``.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from sims.potentials import LennardJones
    >>> pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5)
    >>> e, f = batch_energy_and_forces(pot, [bulk("Ar", "fcc", a=5.26), bulk("Ar", "fcc", a=5.4, cubic=True)],
    ...                                dtype=torch.float64)
    """
    dtype = potential_dtype(potential) if dtype is None else dtype
    state = BatchState.from_atoms(systems, device=device, dtype=dtype, centre=translation_safe(potential))
    check_batch_potential(potential, state)
    if stress and not (bool(state.pbc.all()) and bool((state.volume() > 1e-12).all())):
        raise SimsInputError("the stress needs every system periodic in three directions with a 3-D cell")
    pairs = build_batch_pairs(state.positions, state.cell, state.pbc, state.system, float(potential.cutoff), half=True)
    e, f, s = compute(potential, state.positions, state.cell, state.numbers, pairs, stress=stress, system=state.system)
    sizes = state.atoms_per_system().tolist()
    out = (e.cpu().double().numpy(), [x.numpy() for x in torch.split(f.cpu().double(), sizes)])
    return out + (s.cpu().double().numpy(),) if stress else out


def _per_system(value, n: int, name: str, unit: str) -> list:
    """``value`` (one setting or one per system) as a list of ``n``, or a clear error."""
    if value is None or isinstance(value, (int, float, np.integer, np.floating)):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise SimsInputError(f"{name} has {len(values)} values for {n} systems; give one {unit} or one per system")
    return values


class BatchMD(_Driver):
    """Molecular dynamics of ``B`` independent systems in one set of tensors.

    Parameters
    ----------
    systems : sequence of ase.Atoms, or BatchState
        Start configurations, any sizes, cells (triclinic, periodic or not) and compositions the
        potential can take (velocities from their momenta).
    potential : torch.nn.Module
        A potential that takes a batch (``forward(..., batch)``): the pair potentials of
        :mod:`sims.potentials` and their sums, the neural potentials of :mod:`learners.potentials`.
    integrator : VelocityVerlet, Langevin, NoseHooverChain, or CellRescaling around Langevin or NoseHooverChain
        Shared settings (time step, friction, chain period, barostat coupling, ``tau_p``, compressibility);
        noise, chains, temperatures, target pressures and cells are per system. A barostat
        (:class:`sims.barostats.CellRescaling`, NPT) acts on each system alone: its own strain, noise
        and volume limits.
    temperature : float or sequence of float, optional
        Draw initial velocities at this temperature (K; one for all or one per system), as
        :class:`sims.MD` does for one system.
    target_temperature : float or sequence of float, optional
        The thermostat's temperature of each system, K; default the integrator's for all.
        :meth:`set_target_temperature` changes it during a run (ramps).
    target_pressure : float or sequence, optional
        With a barostat, each system's target pressure, bar: one number for all, or one entry per system
        (a number, three (x, y, z) with per-axis coupling, or a symmetric 3x3 tensor with triclinic
        coupling, one tensor meaning all systems); default the barostat's.
        :meth:`set_target_pressure` changes it during a run.
    seed : int or sequence of int, optional
        One seed per system (system ``b`` then matches a lone :class:`sims.MD` run with that seed), or
        one int ``s`` giving system ``b`` the seed ``(s, b)``. None: the integrator's own seed
        (:meth:`~sims.integrators.Integrator.default_seed`: a Langevin's, a barostat's or its thermostat's) is used
        like an int seed when set, else fresh entropy.
    skin : float
        Neighbour-list skin, Å (one list for the whole batch; a system's part is rebuilt when its own
        atoms moved more than ``skin / 2``, or its cell deformed too far).
    record_every : int
        Append the frames of all systems to :attr:`trajectory` every this many steps (0: never).
    check_every : int
        Check the energies for NaN/inf (a wait for the device) every this many steps, and at every
        recorded frame, callback and the end of :meth:`run`. The error names the first bad step.
    callback : callable, optional
        ``callback(md)`` after every step.
    min_distance : float, optional
        Refuse systems with atoms closer than this, Å (None: no check).
    compiled : bool
        Run each step of :class:`VelocityVerlet` or :class:`Langevin` under a pair potential as one
        ``torch.compile``-d call, the fused step of ``sims.MD(compiled=True)`` for all systems at once (kicks,
        drifts, the noise drawn outside from each system's generator, the closed-form pair pass, each system's
        list displacement test, the energies). After a step, the list parts of the systems whose atoms the next
        steps may take past half the skin are rebuilt (a step that already took one past is taken again). The
        first step compiles (tens of seconds; a few with inductor's cache warm). Other integrators and potentials
        are refused (run them eagerly). 256 replicas of 64 argon atoms on one CPU thread: 6.6-12.8x the 256
        sequential eager ``sims.MD`` runs, 3.0-5.0x the sequential compiled ones (skin 1 Å; the batch's 1-2 Å; the
        ratio moves with the machine's load), bound by the compiled pair pass (14-15 ns a pair).
        Trajectories equal the eager ones to round-off (``tests/sims/test_batch_fused.py``; speed in
        ``benchmarks/README.md``).
    device, dtype
        Where and in which precision (default the potential's).

    Raises
    ------
    SimsInputError
        Another integrator (:class:`sims.barostats.MTK` is not batched), ``compiled=True`` with
        another integrator than VelocityVerlet or Langevin or a potential that is not a sum of pair terms, a
        potential that cannot take the batch (:func:`check_batch_potential`), per-system settings of the wrong
        length, bad systems or systems carrying ASE constraints (the message names the system).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from sims.potentials import LennardJones
    >>> argon = [bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2) for _ in range(4)]
    >>> md = BatchMD(argon, LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5), Langevin(5.0, 50.0),
    ...              temperature=[30, 40, 50, 60], target_temperature=[30, 40, 50, 60], seed=[0, 1, 2, 3],
    ...              dtype=torch.float64)
    >>> _ = md.run(10)
    >>> md.temperature().shape
    torch.Size([4])
    """

    def __init__(self, systems, potential: torch.nn.Module, integrator: Integrator, *,
                 temperature: float | Sequence[float] | None = None,
                 target_temperature: float | Sequence[float] | None = None,
                 target_pressure: float | Sequence | None = None,
                 seed: int | Sequence[int] | None = None, skin: float = 1.0, record_every: int = 0,
                 check_every: int = 10, callback: Callable[["BatchMD"], None] | None = None,
                 min_distance: float | None = 0.5, compiled: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        if isinstance(integrator, MTK):
            raise SimsInputError("the MTK barostat is not batched: use CellRescaling (stochastic cell rescaling, the "
                                 "same isothermal-isobaric ensemble) around Langevin or NoseHooverChain, or run each "
                                 "system with MTK alone in sims.MD")
        if type(integrator) not in (VelocityVerlet, Langevin, NoseHooverChain, CellRescaling):
            raise SimsInputError(f"BatchMD runs VelocityVerlet, Langevin, NoseHooverChain and CellRescaling; "
                                 f"{type(integrator).__name__} is not batched yet (run those systems one at a time "
                                 "with sims.MD)")
        check_momentum_thermostat(potential, integrator)
        if target_pressure is not None and not isinstance(integrator, CellRescaling):
            raise SimsInputError("target_pressure needs a barostat (integrator=CellRescaling(...))")
        if int(check_every) < 1 or int(record_every) < 0:
            raise SimsInputError(f"need check_every >= 1 and record_every >= 0, got {check_every}, {record_every}")
        if isinstance(systems, BatchState):
            state = systems
            if dtype is not None and state.positions.dtype != dtype:
                raise SimsInputError(f"the BatchState is {state.positions.dtype} but dtype={dtype} was asked")
        else:
            for b, atoms in enumerate(systems):
                try:
                    check_unconstrained(validate_atoms(atoms, min_distance=min_distance), "BatchMD")
                except ValueError as err:
                    raise type(err)(f"system {b}: {err}") from None
            state = BatchState.from_atoms(systems, device=device,
                                          dtype=potential_dtype(potential) if dtype is None else dtype)
        check_batch_potential(potential, state)
        n = state.n_systems
        temps = _per_system(temperature, n, "temperature", "temperature in K")
        targets = _per_system(target_temperature if target_temperature is not None
                              else getattr(integrator, "temperature", None), n, "target_temperature", "temperature in K")
        if seed is None:
            seed = integrator.default_seed()
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [(int(seed), b) for b in range(n)]
        else:
            seeds = [None if s is None else (s,) for s in _per_system(seed, n, "seed", "int")]
        for name, values in (("temperature", temps), ("target_temperature", targets)):
            if any(v is not None and not (math.isfinite(float(v)) and float(v) >= 0) for v in values):
                raise SimsInputError(f"{name} must be >= 0 K for every system, got {values}")
        if any(t is not None for t in temps):
            sizes = state.atoms_per_system().tolist()
            parts, start = [], 0
            for b, (nb, t) in enumerate(zip(sizes, temps)):
                m, v = state.masses[start:start + nb], state.velocities[start:start + nb]
                velocity_seed = None if seeds[b] is None else (*seeds[b], 0)
                parts.append(v if t is None else maxwell_boltzmann(m, float(t), seed=velocity_seed))
                start += nb
            state = state.with_(velocities=torch.cat(parts))
        self.potential = potential
        self.integrator = integrator
        self.record_every, self.check_every = int(record_every), int(check_every)
        self.callback = callback
        cutoff = float(potential.cutoff)
        self.neighbors = NeighborList(cutoff=cutoff, skin=skin, half=True) if cutoff > 0 else None
        self._setup_fused(bool(compiled))
        if compiled and not self._fused:
            raise SimsInputError(f"compiled=True runs VelocityVerlet or Langevin under a pair potential with a cutoff; "
                                 f"{type(integrator).__name__} under {type(potential).__name__} runs eagerly: leave "
                                 "compiled out")
        self.compiled = self._fused
        self.state, self._integrator_vars = integrator.start(
            state, [None if s is None else (*s, 1) for s in seeds])
        self.step_count = 0
        self.trajectory: list[list[Atoms]] = []
        self._first_bad: torch.Tensor | None = None
        if isinstance(integrator, (Langevin, NoseHooverChain, CellRescaling)):
            self.set_target_temperature(targets)
        if target_pressure is not None:
            self.set_target_pressure(target_pressure)
        self.energy, self.forces = self._force_fn(self.state.positions)

    def set_target_temperature(self, temperature: float | Sequence[float]) -> None:
        """Set the thermostat temperature of every system (one value or one per system), K."""
        values = _per_system(temperature, self.state.n_systems, "target_temperature", "temperature in K")
        if any(v is None or not (math.isfinite(float(v)) and float(v) >= 0) for v in values):
            raise SimsInputError(f"target_temperature must be >= 0 K for every system, got {values}")
        self.target_temperature = torch.tensor([float(v) for v in values], dtype=torch.float64)
        kT = (units.kB * self.target_temperature).to(device=self.state.positions.device, dtype=self.state.positions.dtype)
        # The thermostat's variables (a barostat keeps its thermostat's apart, under "inner").
        thermostat_vars = self._integrator_vars.get("inner", self._integrator_vars)
        thermostat_vars["kT"] = kT[self.state.system][:, None]   # per atom (Langevin)
        thermostat_vars["kT_system"] = kT                         # per system (Nose-Hoover chains, the barostat's noise)

    def set_target_pressure(self, pressure: float | Sequence) -> None:
        """Set the barostat's target pressure of every system (one value or one per system, see the
        class's ``target_pressure``), bar.

        Raises
        ------
        SimsInputError
            No barostat, a wrong number of values, or a pressure the barostat refuses.
        """
        if not isinstance(self.integrator, CellRescaling):
            raise SimsInputError("a target pressure needs a barostat (integrator=CellRescaling(...))")
        n = self.state.n_systems
        if isinstance(pressure, (int, float, np.integer, np.floating)) or (
                self.integrator.coupling == "triclinic" and _is_tensor(pressure)):
            values = [pressure] * n
        else:
            values = list(pressure)
            if len(values) != n:
                raise SimsInputError(f"target_pressure has {len(values)} entries for {n} systems; give one pressure "
                                     "(bar) for all, or one entry per system (a number, three with per-axis coupling, "
                                     "or a 3x3 tensor with triclinic coupling)")
        self.integrator.set_target_pressures(self._integrator_vars, values)

    @property
    def target_pressure(self) -> torch.Tensor:
        """``(B, 3)`` each system's target pressure per axis, bar (the three equal under isotropic coupling;
        ``(B, 3, 3)`` tensors under triclinic coupling).

        Raises
        ------
        SimsInputError
            The run has no barostat.
        """
        if not isinstance(self.integrator, CellRescaling):
            raise SimsInputError("this run has no barostat (integrator=CellRescaling(...) sets target pressures)")
        return self._integrator_vars["p0"].detach().cpu().double() / units.bar

    def _pairs(self, positions: torch.Tensor, cell: torch.Tensor, rebuild: torch.Tensor | None = None) -> PairList:
        if self.neighbors is None:
            return build_batch_pairs(positions, cell, self.state.pbc, self.state.system, 0.0, half=True)
        return self.neighbors.update(positions, cell, self.state.pbc, system=self.state.system, rebuild=rebuild)

    def _force_fn(self, positions: torch.Tensor, cell: torch.Tensor | None = None, stress: bool = False):
        """``(B,)`` energies and forces at ``positions`` in ``cell`` (default the state's); with
        ``stress=True`` (a barostat, which passes the new cell) also the ``(B, 3, 3)`` virial stresses."""
        cell = self.state.cell if cell is None else cell
        e, f, s = compute(self.potential, positions.detach(), cell, self.state.numbers, self._pairs(positions, cell),
                          stress=stress, system=self.state.system)
        return (e, f, s) if stress else (e, f)

    def refresh(self) -> None:
        """Rebuild the neighbour list and recompute forces (at checkpoints: a resumed run repeats an
        uninterrupted one bit for bit)."""
        if self.neighbors is not None:
            self.neighbors.update(self.state.positions, self.state.cell, self.state.pbc, force=True,
                                  system=self.state.system)
        self.energy, self.forces = self._force_fn(self.state.positions)
        self.integrator.refresh(self._integrator_vars)

    @property
    def time(self) -> float:
        """Simulated time since the start, fs."""
        return self.step_count * self.integrator.timestep

    def temperature(self) -> torch.Tensor:
        """``(B,)`` instantaneous kinetic temperatures, K."""
        return self.state.temperature()

    def conserved_energy(self) -> torch.Tensor:
        """``(B,)`` the integrator's conserved quantity of each system (total energy in NVE; with the
        chain's energy for Nose-Hoover), eV."""
        return self.integrator.conserved_energy(self.state, self.energy, self._integrator_vars)

    def stress(self) -> torch.Tensor:
        """``(B, 3, 3)`` instantaneous stress of each system, virial plus kinetic part, eV/Å^3 (ASE's sign).

        Raises
        ------
        SimsInputError
            A system is not periodic in three dimensions.
        """
        if not bool(self._periodic_3d().all()):
            raise SimsInputError("the stress needs every system periodic in three directions with a 3-D cell")
        virial, kinetic = self._stresses()
        return virial + kinetic

    def _periodic_3d(self) -> torch.Tensor:
        """``(B,)`` True for systems periodic in three directions with a 3-D cell (they have a stress)."""
        return self.state.pbc.all(1) & (self.state.volume() > 1e-12)

    def _stresses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, 3)`` virial and kinetic stresses, eV/Å^3 (meaningless for systems without a 3-D periodic cell)."""
        st = self.state
        with torch.set_grad_enabled(True):
            _, _, virial = compute(self.potential, st.positions.detach(), st.cell, st.numbers,
                                   self._pairs(st.positions, st.cell), forces=False, stress=True, system=st.system)
        return virial, st.kinetic_stress()

    def pressure(self) -> torch.Tensor:
        """``(B,)`` instantaneous pressures ``-tr(stress) / 3``, eV/Å^3."""
        return -torch.diagonal(self.stress(), dim1=1, dim2=2).sum(1) / 3

    def frames(self) -> list[Atoms]:
        """The current systems as ``ase.Atoms`` with energy and forces attached and ``info`` keys
        ``system``, ``step``, ``time`` (fs), ``temperature`` (K); systems periodic in three
        directions also get the stress and the ``info`` keys of :meth:`sims.MD.frame` (``pressure``
        in bar, ``pressure_eV_A3``, ``stress_total``, ``volume``)."""
        atoms = self.state.to_atoms()
        energy = self.energy.detach().cpu().double().numpy()
        temperature = self.temperature().detach().cpu().double().numpy()
        forces = torch.split(self.forces.detach().cpu().double(), self.state.atoms_per_system().tolist())
        periodic = self._periodic_3d().cpu().tolist()
        if any(periodic):
            virial, kinetic = (x.detach().cpu().double().numpy() for x in self._stresses())
        for b, a in enumerate(atoms):
            a.info.update(system=b, step=self.step_count, time=self.time, temperature=float(temperature[b]))
            results = {"energy": float(energy[b]), "forces": forces[b].numpy()}
            if periodic[b]:
                total = virial[b] + kinetic[b]
                results["stress"] = full_3x3_to_voigt_6_stress(virial[b])  # Voigt, as sims.MD.frame
                p = float(-np.trace(total) / 3)
                a.info.update(pressure=p / units.bar, pressure_eV_A3=p, stress_total=total, volume=a.get_volume())
            a.calc = SinglePointCalculator(a, **results)
        return atoms

    def _record(self) -> list[Atoms]:
        return self.frames()

    def _non_finite(self, first_bad: torch.Tensor) -> str:
        bad = first_bad >= 0
        systems, steps = torch.nonzero(bad).flatten().tolist(), first_bad[bad].tolist()
        return f"the energy of system(s) {systems[:10]} became non-finite at step(s) {steps[:10]}"

    # Checkpoints ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The whole run as plain data (float64 CPU tensors, numbers, generator states) for a checkpoint."""
        st = self.state
        return {"step": self.step_count,
                "state": {k: getattr(st, k).detach().cpu().double() if getattr(st, k).is_floating_point()
                          else getattr(st, k).cpu() for k in ("positions", "velocities", "masses", "numbers", "cell",
                                                              "pbc", "system")},
                "target_temperature": self.target_temperature.clone() if hasattr(self, "target_temperature") else None,
                "integrator": self.integrator.state_dict(self._integrator_vars),
                "integrator_settings": self.integrator.settings()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (same systems, potential and integrator): bit for bit what the
        saved run did next. The per-system target temperatures are the checkpoint's.

        Raises
        ------
        SimsInputError
            Other systems, or other integrator settings (kind, timestep, temperature, friction, ...;
            named in the message; a checkpoint from before they were recorded is not checked).
        """
        st = self.state
        if not (torch.equal(d["state"]["numbers"], st.numbers.cpu()) and torch.equal(d["state"]["system"],
                                                                                      st.system.cpu())):
            raise SimsInputError("the checkpoint holds other systems (atoms or their order differ) than this BatchMD")
        self.integrator.check_settings(d.get("integrator_settings"))

        def t(x):
            return x.to(device=st.positions.device, dtype=st.positions.dtype)

        self.state = st.with_(positions=t(d["state"]["positions"]), velocities=t(d["state"]["velocities"]),
                              cell=t(d["state"]["cell"]))
        self.step_count = int(d["step"])
        if d.get("target_temperature") is not None:
            self.set_target_temperature(d["target_temperature"].tolist())
        self.integrator.load_state_dict(self._integrator_vars, d["integrator"])
        self.refresh()

    def save(self, path) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (``torch.load(path, weights_only=True)`` reads it)."""
        with atomic_open(path, "wb") as f:
            torch.save(self.state_dict(), f)

    def load_replica_integrator_states(self, states: Sequence[dict[str, Any]]) -> None:
        """Restore each system's integrator variables from lone-run state dicts (the ``"integrator"``
        of :meth:`replica_state_dict`, or :meth:`sims.MD.integrator_state_dict`), one per system."""
        if len(states) != self.state.n_systems:
            raise SimsInputError(f"{len(states)} integrator states for {self.state.n_systems} systems")
        self.integrator.load_state_dict(self._integrator_vars,
                                        _batch_integrator_dict(self.integrator, states, self._integrator_vars))

    def replica_state_dict(self, b: int) -> dict[str, Any]:
        """System ``b`` alone: ``{"step", "state", "integrator"}`` with the state in the layout of
        :func:`sims.generate`'s checkpoints and the integrator variables of a lone run, so that the
        system continues as a :class:`sims.MD` run (``MD(state, ...)``, then
        ``md.load_integrator_state_dict(d["integrator"])`` and ``md.refresh()``)."""
        n = self.state.n_systems
        if not 0 <= int(b) < n:
            raise SimsInputError(f"system index {b} is outside 0..{n - 1}")
        sel = self.state.system == int(b)
        st = self.state
        state = {"positions": st.positions[sel].detach().cpu().double(),
                 "velocities": st.velocities[sel].detach().cpu().double(),
                 "masses": st.masses[sel].detach().cpu().double(), "numbers": st.numbers[sel].cpu(),
                 "cell": st.cell[b].detach().cpu().double(), "pbc": st.pbc[b].cpu()}
        integ = _lone_integrator_dict(self.integrator, self.integrator.state_dict(self._integrator_vars), int(b))
        return {"step": self.step_count, "state": state, "integrator": integ}


def _is_tensor(pressure) -> bool:
    """Whether ``pressure`` is one 3x3 table of numbers (a pressure tensor, not three per-system entries)."""
    return (not isinstance(pressure, (str, bytes)) and len(pressure) == 3 and all(
        isinstance(row, (list, tuple, np.ndarray)) and len(row) == 3
        and all(isinstance(x, (int, float, np.integer, np.floating)) for x in row) for row in pressure))


def _lone_integrator_dict(integrator: Integrator, full: dict[str, Any], b: int) -> dict[str, Any]:
    """System ``b``'s part of a batch's integrator state dict, in the layout of a lone run's."""
    if isinstance(integrator, CellRescaling):
        return {"inner": _lone_integrator_dict(integrator.thermostat, full["inner"], b),
                "generator": full["generators"][b], "v0": float(full["v0"][b]), "step": full["step"],
                **({"c0": full["c0"][b]} if "c0" in full else {})}
    if isinstance(integrator, Langevin):
        return {"generator": full["generators"][b]}
    if isinstance(integrator, NoseHooverChain):
        return {"xi": [float(x[b]) for x in full["xi"]], "v_xi": [float(v[b]) for v in full["v_xi"]],
                "dof": int(full["dof"][b])}
    return dict(full)


def _batch_integrator_dict(integrator: Integrator, states: Sequence[dict[str, Any]], run: dict[str, Any]) -> dict:
    """A batch's integrator state dict from one lone-run state dict per system (the inverse of
    :func:`_lone_integrator_dict`; a barostat keeps the batch's target pressures ``run["p0"]``)."""
    if isinstance(integrator, CellRescaling):
        return {"inner": _batch_integrator_dict(integrator.thermostat, [d["inner"] for d in states], run["inner"]),
                "generators": [d["generator"] for d in states], "v0": torch.tensor([float(d["v0"]) for d in states], dtype=torch.float64),
                "p0": run["p0"], "step": int(states[0]["step"]),
                **({"c0": torch.stack([torch.as_tensor(d["c0"]) for d in states])} if "c0" in run else {})}
    if isinstance(integrator, Langevin):
        return {"generators": [d["generator"] for d in states]}
    if isinstance(integrator, NoseHooverChain):
        # float64 as a fresh batch's chains are: a float32 default would perturb a resumed run
        return {name: [torch.tensor([float(d[name][k]) for d in states], dtype=torch.float64)
                       for k in range(integrator.chain_length)]
                for name in ("xi", "v_xi")} | {"dof": torch.tensor([float(d["dof"]) for d in states], dtype=torch.float64)}
    return {}
