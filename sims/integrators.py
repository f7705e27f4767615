"""Integrators: velocity Verlet (NVE), Langevin BAOAB and Nose-Hoover chain (NVT).

An integrator advances a :class:`~sims.state.State` by one step given a force function
``force_fn(positions) -> (energy, forces)`` and the forces at the current positions; it returns the
new state and the new energy and forces (so each step costs one force evaluation). All operations
are out of place, so gradients flow through a trajectory when the forces are built with
``create_graph=True`` (see :class:`sims.MD`).

Units: ``timestep`` in fs, ``temperature`` in K, ``friction`` in 1/fs; internally ASE time units.
``temperature`` may be changed between steps (temperature ramps).

An integrator object holds only settings. What changes during a run (the Langevin noise generator,
the Nose-Hoover chain variables) is a dict that :meth:`Integrator.start` makes for each run and the run
(:class:`sims.MD`) keeps, so that runs sharing one integrator object never share a noise stream.

The same integrators advance a batch of systems (:class:`sims.batch.BatchState`, driven by
:class:`sims.batch.BatchMD`) with the same step: per-atom arithmetic does not care which system an
atom belongs to. A batch's run dict holds one Langevin noise generator per system (so system ``b``
with seed ``s`` draws the noise a lone run with seed ``s`` draws), one Nose-Hoover chain per system
(its variables ``(B,)`` tensors), and each system's own target temperature as thermal energies per
atom (``"kT"``) and per system (``"kT_system"``).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from ase import units

from .errors import SimsInputError
from .state import State

__all__ = ["Integrator", "VelocityVerlet", "Langevin", "NoseHooverChain", "make_generator", "seeded_init"]

ForceFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def make_generator(seed: int | Sequence[int] | None, device: torch.device | str | None = None) -> torch.Generator:
    """A new local ``torch.Generator`` on ``device``, seeded from ``seed``.

    ``seed=None`` draws fresh operating-system entropy into this generator only: torch's and numpy's
    global generators are never read or reseeded. A sequence such as ``(seed, stream)`` gives
    independent streams from one user seed (mixed by :class:`numpy.random.SeedSequence`).
    """
    gen = torch.Generator(device=device if device is not None else "cpu")
    if seed is None:
        gen.seed()
        return gen
    words = [seed] if isinstance(seed, (int, np.integer)) else list(seed)
    if any(not isinstance(w, (int, np.integer)) or isinstance(w, bool) or w < 0 for w in words):
        raise SimsInputError(f"seed must be None or a non-negative int, got {seed!r}")
    gen.manual_seed(int(np.random.SeedSequence([int(w) for w in words]).generate_state(1, np.uint64)[0] >> 1))
    return gen


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Build torch modules inside this block to draw their initial weights from ``seed`` alone.

    Layers (``torch.nn.Linear``, PyG convolutions) draw their weights from torch's global CPU
    generator and in the global default dtype, and most take no ``generator=``. Inside the block
    that generator is seeded with ``seed`` and the default dtype is float32; on leaving, both are
    restored (``torch.random.fork_rng`` over the CPU generator only: ``torch.manual_seed`` would
    also reseed every CUDA generator, which ``fork_rng(devices=[])`` does not restore). The weights
    are therefore drawn in float32 whatever the module's dtype; cast the module afterwards. Drawn in
    the global default dtype, a seed gave other weights under ``torch.set_default_dtype(torch.float64)``
    (torch's CPU sampler consumes its stream differently per dtype).
    """
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))
        torch.set_default_dtype(torch.float32)
        try:
            yield
        finally:
            torch.set_default_dtype(previous)


class Integrator:
    """Base class; ``timestep`` in fs."""

    def __init__(self, timestep: float) -> None:
        if not (math.isfinite(timestep) and timestep > 0):
            raise SimsInputError(f"timestep must be > 0 fs, got {timestep}")
        self.timestep = float(timestep)

    @property
    def dt(self) -> float:
        """Time step in ASE time units."""
        return self.timestep * units.fs

    def default_seed(self) -> int | None:
        """The seed a run that names none draws its integrator noise from: the integrator's own ``seed``
        (:class:`Langevin`'s; a barostat's, else its thermostat's), or None (fresh entropy)."""
        return getattr(self, "seed", None)

    def start(self, state: State, seed: int | Sequence[int] | None) -> tuple[State, dict[str, Any]]:
        """Begin a run from ``state``: return the state to start from and the run's own integrator
        variables (noise generator seeded from ``seed``, thermostat variables), which the caller keeps
        and passes to :meth:`step`."""
        return state, {}

    def step(self, state: State, energy: torch.Tensor, forces: torch.Tensor, force_fn: ForceFn,
             run: dict[str, Any]) -> tuple[State, torch.Tensor, torch.Tensor]:
        """Advance one step; ``run`` is the dict of :meth:`start`, updated in place."""
        raise NotImplementedError

    def conserved_energy(self, state: State, energy: torch.Tensor, run: dict[str, Any]) -> torch.Tensor:
        """The quantity the exact dynamics conserves (total energy for NVE), eV."""
        return energy + state.kinetic_energy()

    def state_dict(self, run: dict[str, Any]) -> dict[str, Any]:
        """The run variables ``run`` as plain data for a checkpoint."""
        return {}

    def refresh(self, run: dict[str, Any]) -> None:
        """Forget values cached in ``run`` that the driver recomputes (forces were just recomputed)."""

    def load_state_dict(self, run: dict[str, Any], d: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` into ``run``."""

    def settings(self) -> dict[str, Any]:
        """The parameters the dynamics follow, as plain data: ``kind`` (the class name), timestep,
        temperature, friction, chain, barostat parameters (a barostat's thermostat nested). Checkpoints
        record them so that a resume under other dynamics is refused (:meth:`check_settings`). The
        seed is left out: a checkpoint restores the generators' states."""
        return {"kind": type(self).__name__, **{
            k: v.settings() if isinstance(v, Integrator) else v
            for k, v in vars(self).items() if k != "seed" and not k.startswith("_")}}

    def check_settings(self, saved: dict[str, Any] | None) -> None:
        """Refuse to resume a checkpoint written under other :meth:`settings` (``None``: a checkpoint
        from before they were recorded, accepted).

        Raises
        ------
        SimsInputError
            Naming each parameter that differs, with the saved and the current value.
        """
        if saved is None:
            return
        diffs = _setting_differences(saved, self.settings())
        if diffs:
            raise SimsInputError(
                "the checkpoint was written under other dynamics than this run's integrator: "
                + "; ".join(f"{name} saved {a!r}, now {b!r}" for name, a, b in diffs)
                + "; build the integrator with the checkpoint's settings to resume it, or start a new run")


def _setting_differences(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[tuple]:
    """``(name, saved, now)`` of each entry of two :meth:`Integrator.settings` that differs (nested
    dicts by dotted name, e.g. ``thermostat.friction``)."""
    out = []
    for name in sorted(set(saved) | set(now)):
        a, b = saved.get(name), now.get(name)
        if isinstance(a, dict) and isinstance(b, dict) and a.get("kind") == b.get("kind"):
            out += _setting_differences(a, b, f"{prefix}{name}.")
        elif a != b:
            out.append((prefix + name, a.get("kind") if isinstance(a, dict) else a,
                        b.get("kind") if isinstance(b, dict) else b))
    return out


# The arithmetic of a step, as pure functions of tensors: the integrators' steps below and the fused compiled step
# of sims.md (``_fused_kernel``, one graph for torch.compile) both call these, so the two cannot drift apart.
# ``inv_m`` is 1 / mass broadcast against ``v`` ((N, 1) rows here, flat (3N,) in the fused step); ``dt`` in ASE time
# units, a float or a 0-d tensor.

def _kick(v: torch.Tensor, f: torch.Tensor, inv_m: torch.Tensor, dt) -> torch.Tensor:
    """Half a time step of the forces ``f`` on the velocities (velocity Verlet's and BAOAB's B)."""
    return v + 0.5 * dt * f * inv_m


def _verlet_drift(x: torch.Tensor, v: torch.Tensor, f: torch.Tensor, inv_m: torch.Tensor, dt):
    """The part of a velocity-Verlet step before the new forces: a half kick and a full drift; ``(x, v)``."""
    v = _kick(v, f, inv_m, dt)
    return x + dt * v, v


def _baoab_drift(x: torch.Tensor, v: torch.Tensor, f: torch.Tensor, inv_m: torch.Tensor, dt, c1, kT,
                 noise: torch.Tensor):
    """The part of a BAOAB step before the new forces (B, A, O, A): ``c1 = exp(-friction dt)``, ``kT`` in eV (a
    number or per-atom values broadcast against ``v``), ``noise`` standard normal shaped like ``v``; ``(x, v)``."""
    v = _kick(v, f, inv_m, dt)                                     # B
    x = x + 0.5 * dt * v                                           # A
    v = c1 * v + torch.sqrt((1 - c1 * c1) * kT * inv_m) * noise    # O: exact Ornstein-Uhlenbeck step
    return x + 0.5 * dt * v, v                                     # A


def _verlet(state: State, forces: torch.Tensor, force_fn: ForceFn, dt: float):
    """One velocity-Verlet step (kick-drift-kick)."""
    inv_m = 1.0 / state.masses[:, None]
    x, v = _verlet_drift(state.positions, state.velocities, forces, inv_m, dt)
    energy, forces = force_fn(x)
    return state.with_(positions=x, velocities=_kick(v, forces, inv_m, dt)), energy, forces


class VelocityVerlet(Integrator):
    """Velocity Verlet, symplectic NVE (Swope et al., J. Chem. Phys. 76, 637 (1982)).

    Parameters
    ----------
    timestep : float
        fs.
    """

    def step(self, state, energy, forces, force_fn, run):
        return _verlet(state, forces, force_fn, self.dt)


class _Thermostat(Integrator):
    def __init__(self, timestep: float, temperature: float) -> None:
        super().__init__(timestep)
        if not (math.isfinite(temperature) and temperature >= 0):
            raise SimsInputError(f"temperature must be >= 0 K, got {temperature}")
        self.temperature = float(temperature)

    @property
    def kT(self) -> float:
        """Thermal energy, eV."""
        return units.kB * self.temperature


class Langevin(_Thermostat):
    """Langevin dynamics with the BAOAB splitting (Leimkuhler & Matthews, Appl. Math. Res. Express 2013, 34).

    Samples the canonical ensemble with configurational error O(dt^2) even at large friction.

    Parameters
    ----------
    timestep : float
        fs.
    temperature : float
        K.
    friction : float
        gamma, 1/fs (0.01/fs is a 100 fs relaxation time).
    seed : int, optional
        Seeds the noise; overridden by the ``seed`` of :class:`sims.MD` when given there.
    """

    def __init__(self, timestep: float, temperature: float, friction: float = 0.01, *, seed: int | None = None) -> None:
        super().__init__(timestep, temperature)
        if not (math.isfinite(friction) and friction >= 0):
            raise SimsInputError(f"friction must be >= 0 1/fs, got {friction}")
        self.friction = float(friction)
        self.seed = seed

    def start(self, state, seed):
        device = state.positions.device
        if getattr(state, "system", None) is not None:
            # A batch: ``seed`` is one seed per system (sims.batch.BatchMD resolves them).
            return state, {"generators": [make_generator(s, device) for s in seed],
                           "sizes": state.atoms_per_system().tolist()}
        return state, {"generator": make_generator(seed if seed is not None else self.default_seed(), device)}

    @property
    def decay(self) -> float:
        """``exp(-friction * timestep)``: the velocity's memory over one step (BAOAB's exact O step)."""
        return math.exp(-self.friction * self.timestep)

    @staticmethod
    def noise(run: dict[str, Any], like: torch.Tensor) -> torch.Tensor:
        """One step's standard normal noise shaped like the velocities ``like``, drawn from the run's generator
        (one generator per system of a batch, each drawing its own system's rows), advancing it."""
        if "generators" in run:
            # Each system's rows filled in place (the numbers torch.randn((n, 3), generator=g) draws: both fill a
            # contiguous block with normal_), not drawn apart and concatenated: 256 systems of 64 atoms, 1.2 ms
            # against 1.5 ms a step (benchmarks/README.md).
            out = torch.empty((sum(run["sizes"]), 3), device=like.device, dtype=like.dtype)
            for g, rows in zip(run["generators"], out.split(run["sizes"])):
                rows.normal_(generator=g)
            return out
        return torch.randn(like.shape, generator=run["generator"], device=like.device, dtype=like.dtype)

    def step(self, state, energy, forces, force_fn, run):
        dt = self.dt
        inv_m = 1.0 / state.masses[:, None]
        kT = run.get("kT", self.kT)  # a batch's per-atom (N, 1) tensor, or this integrator's temperature
        x, v = _baoab_drift(state.positions, state.velocities, forces, inv_m, dt, self.decay, kT,
                            self.noise(run, state.velocities))
        energy, forces = force_fn(x)
        return state.with_(positions=x, velocities=_kick(v, forces, inv_m, dt)), energy, forces

    def state_dict(self, run):
        if "generators" in run:
            return {"generators": [g.get_state() for g in run["generators"]]}
        return {"generator": run["generator"].get_state()}

    def load_state_dict(self, run, d):
        if "generators" in run:
            for g, state in zip(run["generators"], d["generators"]):
                g.set_state(state)
        else:
            run["generator"].set_state(d["generator"])


class NoseHooverChain(_Thermostat):
    """Nose-Hoover chain NVT (Martyna, Klein & Tuckerman, J. Chem. Phys. 97, 2635 (1992)).

    Trotter splitting ``exp(iL_NHC dt/2) exp(iL_verlet dt) exp(iL_NHC dt/2)`` with the chain update of
    Martyna, Tuckerman, Tobias & Klein, Mol. Phys. 87, 1117 (1996), section 4 (one Suzuki-Yoshida
    stage). The centre-of-mass velocity is removed at :meth:`start` and the thermostat acts on ``3N - 3``
    degrees of freedom (total momentum is conserved; :class:`sims.MD` and :class:`sims.batch.BatchMD`
    refuse the chains on an external field such as :class:`sims.potentials.DoubleWell`, which does not
    conserve it: use :class:`Langevin` there).

    Parameters
    ----------
    timestep : float
        fs.
    temperature : float
        K.
    tau : float
        Thermostat period, fs; masses ``Q_1 = g kT tau^2``, ``Q_k = kT tau^2``.
    chain_length : int
        Number of thermostats in the chain.
    """

    def __init__(self, timestep: float, temperature: float, tau: float = 100.0, chain_length: int = 3) -> None:
        super().__init__(timestep, temperature)
        if not tau > 0 or chain_length < 1:
            raise SimsInputError(f"need tau > 0 fs and chain_length >= 1, got {tau}, {chain_length}")
        self.tau = float(tau)
        self.chain_length = int(chain_length)

    def start(self, state, seed):
        system = getattr(state, "system", None)
        if system is not None:
            # A batch: one chain per system, its variables (B,) tensors, each system's own drift removed.
            n_sys, like = state.n_systems, state.masses
            p = torch.zeros((n_sys, 3), dtype=like.dtype, device=like.device).index_add(
                0, system, state.masses[:, None] * state.velocities)
            total = torch.zeros(n_sys, dtype=like.dtype, device=like.device).index_add(0, system, state.masses)
            v = state.velocities - (p / total[:, None]).index_select(0, system)
            zero = torch.zeros(n_sys, dtype=like.dtype, device=like.device)
            dof = torch.clamp(3 * state.atoms_per_system().to(like.dtype) - 3, min=1)
            return state.with_(velocities=v), {"dof": dof, "xi": [zero] * self.chain_length,
                                               "v_xi": [zero] * self.chain_length}
        p = (state.masses[:, None] * state.velocities).sum(0)
        v = state.velocities - p / state.masses.sum()
        # Chain positions and velocities: Python floats in production runs (a dozen scalar updates
        # per step cost far less than as tensors), tensors once gradients flow through them.
        run = {"dof": max(3 * state.n_atoms - 3, 1), "xi": [0.0] * self.chain_length,
               "v_xi": [0.0] * self.chain_length}
        return state.with_(velocities=v), run

    def _kT(self, run: dict[str, Any]):
        """This run's thermal energy, eV: a batch's ``(B,)`` per-system values, else the integrator's."""
        return run.get("kT_system", self.kT)

    def _masses(self, dof, kT) -> list:
        tau = self.tau * units.fs
        kT = torch.clamp(kT, min=1e-12) if torch.is_tensor(kT) else max(kT, 1e-12)
        return [dof * kT * tau ** 2] + [kT * tau ** 2] * (self.chain_length - 1)

    def _half_chain(self, velocities: torch.Tensor, masses: torch.Tensor, run: dict[str, Any],
                    system: torch.Tensor | None = None):
        """Propagate the chain and scale velocities by half a time step (MTTK 1996, eq. 29-33);
        with ``system`` (a batch) every system's chain at once (:func:`chain_half_step` is elementwise)."""
        kT = self._kT(run)
        if system is None:
            ke2 = (masses[:, None] * velocities ** 2).sum()
            if not ke2.requires_grad:
                ke2 = float(ke2)
        else:
            ke2 = torch.zeros_like(run["dof"]).index_add(0, system, (masses[:, None] * velocities ** 2).sum(1))
        scale, run["xi"], run["v_xi"] = chain_half_step(ke2, run["dof"], kT, self._masses(run["dof"], kT),
                                                        run["xi"], run["v_xi"], self.dt)
        return velocities * (scale if system is None else scale.index_select(0, system)[:, None])

    def step(self, state, energy, forces, force_fn, run):
        system = getattr(state, "system", None)
        state = state.with_(velocities=self._half_chain(state.velocities, state.masses, run, system))
        state, energy, forces = _verlet(state, forces, force_fn, self.dt)
        state = state.with_(velocities=self._half_chain(state.velocities, state.masses, run, system))
        return state, energy, forces

    def conserved_energy(self, state, energy, run):
        kT = self._kT(run)
        q, xi, v_xi, dof = self._masses(run["dof"], kT), run["xi"], run["v_xi"], run["dof"]
        thermo = sum(0.5 * q[k] * v_xi[k] ** 2 for k in range(self.chain_length))
        thermo = thermo + dof * kT * xi[0] + kT * sum(xi[1:])
        return energy + state.kinetic_energy() + thermo

    def state_dict(self, run):
        if torch.is_tensor(run["dof"]):  # a batch: (B,) tensors, as float64 CPU copies
            return {k: [x.detach().cpu().double() for x in run[k]] for k in ("xi", "v_xi")} | {
                "dof": run["dof"].detach().cpu().double()}
        return {"xi": [float(x) for x in run["xi"]], "v_xi": [float(v) for v in run["v_xi"]], "dof": run["dof"]}

    def load_state_dict(self, run, d):
        if torch.is_tensor(run["dof"]):
            like = run["dof"]
            run.update({k: [torch.as_tensor(x).to(like) for x in d[k]] for k in ("xi", "v_xi")},
                       dof=torch.as_tensor(d["dof"]).to(like))
            return
        run.update(xi=list(d["xi"]), v_xi=list(d["v_xi"]), dof=int(d["dof"]))


def chain_half_step(ke2, dof: float, kT: float, q: list[float], xi: list, v_xi: list, dt: float):
    """Half a time step of a Nose-Hoover chain coupled to a kinetic energy (MTTK 1996, eq. 29-33).

    Parameters
    ----------
    ke2 : float or torch.Tensor
        Twice the kinetic energy of the thermostatted variables, eV.
    dof : float
        Their number of degrees of freedom (the first thermostat's target is ``dof kT``).
    kT : float
        eV.
    q : list of float
        Thermostat masses, eV (ASE time)^2.

    Every operation is elementwise: ``ke2``, ``dof``, ``kT`` and the chain variables may also be
    ``(B,)`` tensors, one chain per system of a batch.
    xi, v_xi : lists
        Chain positions and velocities (1 / ASE time); floats, or tensors when gradients flow.
    dt : float
        The full time step, ASE time units.

    Returns
    -------
    scale, xi, v_xi
        The factor that scales the thermostatted velocities, and the new chain variables.
    """
    m = len(q)
    d2, d4, d8 = dt / 2, dt / 4, dt / 8
    v_xi = list(v_xi)

    def force(k, ke2_now):
        return ((ke2_now - dof * kT) if k == 0 else (q[k - 1] * v_xi[k - 1] ** 2 - kT)) / q[k]

    v_xi[m - 1] = v_xi[m - 1] + d4 * force(m - 1, ke2)
    for k in range(m - 2, -1, -1):
        s = _exp(-d8 * v_xi[k + 1])
        v_xi[k] = (v_xi[k] * s + d4 * force(k, ke2)) * s
    scale = _exp(-d2 * v_xi[0])
    ke2 = ke2 * scale ** 2
    xi = [x + d2 * v for x, v in zip(xi, v_xi)]
    for k in range(m):
        s = _exp(-d8 * v_xi[k + 1]) if k < m - 1 else 1.0
        v_xi[k] = (v_xi[k] * s + d4 * force(k, ke2)) * s
    return scale, xi, v_xi


def _exp(x):
    """exp of a float or a tensor (the chain variables may be either)."""
    return torch.exp(x) if torch.is_tensor(x) else math.exp(x)
