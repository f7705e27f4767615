"""Constant pressure: stochastic cell rescaling (and Berendsen's weak coupling) around a thermostat.

:class:`CellRescaling` wraps one of the NVT integrators of :mod:`sims.integrators`
(:class:`~sims.integrators.Langevin` or :class:`~sims.integrators.NoseHooverChain`): each step it
rescales the cell, the positions and the velocities isotropically, then lets the thermostat take
its step in the new cell. The volume follows the first-order stochastic equation of Bernetti and
Bussi (J. Chem. Phys. 153, 114107 (2020), eq. 6 in ``eps = ln V``, Ito, instantaneous kinetic
energy in the pressure and velocities scaled by the inverse of the positions):

    d eps = -(beta_T / tau_p) (P0 - P_int) dt + sqrt(2 kT beta_T / (V tau_p)) dW,
    P_int = (2 K - tr(virial)) / (3 V),

integrated with one Euler step per time step (the "E" scheme of the authors' SimpleMD code and of
GROMACS's ``C-rescale``). Its stationary distribution is the isothermal-isobaric one,
``p(V) ~ exp(-(U + K + P0 V) / kT)`` (a Fokker-Planck check: the drift equals ``D' + D d ln p / d eps``
with ``D = kT beta_T / (V tau_p)``). Without the noise it is Berendsen's barostat (Berendsen et al.,
J. Chem. Phys. 81, 3684 (1984)), which relaxes the volume but gives too small fluctuations: use it
to equilibrate only.

``beta_T`` (``compressibility``, 1/bar) is an estimate of the isothermal compressibility: it only
sets how fast the volume relaxes (the relaxation time is ``tau_p`` when it is right); the sampled
distribution does not depend on it.

Scaling is affine about the origin, so the fractional coordinates, and therefore the image
shifts of unwrapped positions, stay the same; triclinic cells keep their shape. The neighbour list
(:class:`sims.neighbors.NeighborList`) rebuilds only when the deformation and the displacements
may bring a pair from beyond the skin to within the cutoff.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import torch
from ase import units

from .errors import SimsInputError, SimulationStopped
from .integrators import Integrator, Langevin, NoseHooverChain, make_generator

__all__ = ["CellRescaling", "NegativePressureWarning"]


class NegativePressureWarning(UserWarning):
    """A target pressure below zero: a liquid under tension may cavitate, and a gas has no such state."""


class CellRescaling(Integrator):
    """Isotropic stochastic cell rescaling (or Berendsen) barostat around a thermostat: NPT.

    Parameters
    ----------
    thermostat : Langevin or NoseHooverChain
        The NVT integrator that moves the atoms; its ``timestep`` (fs) and ``temperature`` (K) are
        the run's (setting ``temperature`` here sets it there, for ramps).
    pressure : float
        Target pressure, bar. Below zero warns (:class:`NegativePressureWarning`).
    tau_p : float
        Barostat relaxation time, fs; at least the time step (a few hundred steps is usual:
        GROMACS recommends ``tau_p >= 5 ps`` for ``C-rescale`` with ``beta_T`` of water).
    compressibility : float
        Estimated isothermal compressibility ``beta_T``, 1/bar (default 4.5e-5, water at 300 K).
    stochastic : bool
        True: stochastic cell rescaling (correct volume fluctuations); False: Berendsen (no
        noise: for equilibration only).
    max_volume_ratio : float
        Stop (:class:`~sims.errors.SimulationStopped`) when the volume leaves
        ``[V0 / ratio, V0 * ratio]`` (``V0`` the volume at the start of the run), or changes by
        more than 28 % in one step (``|d eps| > 0.25``): the cell is collapsing or exploding.
    seed : int, optional
        Seeds the barostat's noise (the thermostat has its own); overridden by :class:`sims.MD`'s.

    Raises
    ------
    SimsInputError
        Another integrator than Langevin or NoseHooverChain, ``tau_p`` shorter than the time step,
        a non-finite pressure, a compressibility or ratio out of range; at the start of a run, a
        cell not periodic in all three directions.

    References
    ----------
    M. Bernetti and G. Bussi, "Pressure control using stochastic cell rescaling", J. Chem. Phys.
    153, 114107 (2020), eq. 6 and the SimpleMD reference implementation (github.com/bussilab/crescale).

    Examples
    --------
    >>> from sims.integrators import Langevin
    >>> npt = CellRescaling(Langevin(timestep=5.0, temperature=120.0), pressure=1.0, tau_p=1000.0,
    ...                     compressibility=1e-4)
    >>> md = MD(atoms, pot, npt, temperature=120.0, seed=0)   # doctest: +SKIP
    >>> md.run(2000).frame().info["pressure"]                 # doctest: +SKIP
    """

    def __init__(self, thermostat: Langevin | NoseHooverChain, *, pressure: float, tau_p: float,
                 compressibility: float = 4.5e-5, stochastic: bool = True, max_volume_ratio: float = 8.0,
                 seed: int | None = None) -> None:
        if not isinstance(thermostat, (Langevin, NoseHooverChain)):
            raise SimsInputError(f"the barostat needs a Langevin or NoseHooverChain thermostat, got "
                                 f"{type(thermostat).__name__} (a barostat without a thermostat samples no NPT ensemble)")
        super().__init__(thermostat.timestep)
        if not math.isfinite(pressure):
            raise SimsInputError(f"pressure must be a finite number in bar, got {pressure}")
        if not (math.isfinite(tau_p) and tau_p >= thermostat.timestep):
            raise SimsInputError(f"tau_p must be at least the time step ({thermostat.timestep} fs), got {tau_p} fs; "
                                 "a barostat faster than one step cannot be integrated (use hundreds of steps)")
        if not (math.isfinite(compressibility) and compressibility > 0):
            raise SimsInputError(f"compressibility must be > 0 1/bar, got {compressibility}")
        if not max_volume_ratio > 1:
            raise SimsInputError(f"max_volume_ratio must be > 1, got {max_volume_ratio}")
        if pressure < 0:
            warnings.warn(f"target pressure {pressure} bar is negative: a liquid under tension may cavitate "
                          "(the volume then runs away and the run stops) and a gas has no state there",
                          NegativePressureWarning, stacklevel=2)
        self.thermostat = thermostat
        self.pressure = float(pressure)
        self.tau_p = float(tau_p)
        self.compressibility = float(compressibility)
        self.stochastic = bool(stochastic)
        self.max_volume_ratio = float(max_volume_ratio)
        self.seed = seed

    @property
    def temperature(self) -> float:
        """Target temperature, K (the thermostat's)."""
        return self.thermostat.temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.thermostat.temperature = float(value)

    def start(self, state, seed: int | Sequence[int] | None):
        if not (bool(state.pbc.all()) and abs(float(torch.linalg.det(state.cell.detach()))) > 1e-12):
            raise SimsInputError(f"a barostat needs a cell periodic in all three directions (pbc={state.pbc.tolist()}): "
                                 "a non-periodic direction has no box length for the pressure to act on. Use an NVT "
                                 "ensemble, or make the system periodic (a slab or molecule in vacuum cannot be "
                                 "barostatted this way)")
        seed = seed if seed is not None else self.seed
        words = None if seed is None else ([seed] if isinstance(seed, (int, np.integer)) else list(seed))
        state, inner = self.thermostat.start(state, None if words is None else words + [0])
        gen = make_generator(None if words is None else words + [1], state.positions.device)
        run = {"inner": inner, "generator": gen, "virial": None, "v0": float(state.volume()), "step": 0}
        return state, run

    def _strain_rate(self, state, virial: torch.Tensor, volume: torch.Tensor, run) -> torch.Tensor:
        """``d eps`` of one step: drift from the pressure difference plus (stochastic) noise."""
        p_int = -torch.trace(virial + state.kinetic_stress()) / 3
        beta = self.compressibility / units.bar  # 1/bar -> 1/(eV/Å^3)
        ratio = self.timestep / self.tau_p
        d_eps = -beta * ratio * (self.pressure * units.bar - p_int)
        if self.stochastic:
            xi = torch.randn((), generator=run["generator"], device=volume.device, dtype=volume.dtype)
            d_eps = d_eps + torch.sqrt(2 * self.thermostat.kT * beta * ratio / volume) * xi
        return d_eps

    def step(self, state, energy, forces, force_fn, run):
        if run["virial"] is None:
            _, _, run["virial"] = force_fn(state.positions, cell=state.cell, stress=True)
        volume = state.volume()
        d_eps = self._strain_rate(state, run["virial"], volume, run)
        run["step"] += 1
        new_volume = float(volume * torch.exp(d_eps))
        ratio = new_volume / run["v0"]
        if not (math.isfinite(new_volume) and abs(float(d_eps)) < 0.25
                and 1 / self.max_volume_ratio < ratio < self.max_volume_ratio):
            what = "collapsing" if not ratio > 1 else "exploding"
            raise SimulationStopped(
                f"the cell is {what} at barostat step {run['step']}: volume {float(volume):.6g} -> {new_volume:.6g} Å^3 "
                f"(start {run['v0']:.6g} Å^3, limit a factor {self.max_volume_ratio:g}, at most 28 % per step). "
                f"The target pressure {self.pressure:g} bar may have no stable state at {self.temperature:g} K for this "
                "potential (cavitation, vaporisation, or a potential without a repulsive core), or tau_p is too short "
                "or compressibility too large for this system")
        mu = torch.exp(d_eps / 3)
        cell = state.cell * mu
        state = state.with_(positions=state.positions * mu, velocities=state.velocities / mu, cell=cell)

        def inner_force(x):
            e, f, run["virial"] = force_fn(x, cell=cell, stress=True)
            return e, f

        return self.thermostat.step(state, energy, forces, inner_force, run["inner"])

    def conserved_energy(self, state, energy, run):
        """The thermostat's quantity plus ``P0 V``, eV: an enthalpy, not conserved (the barostat's noise
        and friction do work that is not tracked)."""
        return self.thermostat.conserved_energy(state, energy, run["inner"]) + self.pressure * units.bar * state.volume()

    def refresh(self, run):
        run["virial"] = None
        self.thermostat.refresh(run["inner"])

    def state_dict(self, run):
        return {"inner": self.thermostat.state_dict(run["inner"]), "generator": run["generator"].get_state(),
                "v0": run["v0"], "step": run["step"]}

    def load_state_dict(self, run, d):
        self.thermostat.load_state_dict(run["inner"], d["inner"])
        run["generator"].set_state(d["generator"])
        run.update(v0=float(d["v0"]), step=int(d["step"]), virial=None)
