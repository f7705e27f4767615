"""Constant pressure: stochastic cell rescaling (and Berendsen's weak coupling) around a thermostat.

:class:`CellRescaling` wraps one of the NVT integrators of :mod:`sims.integrators`
(:class:`~sims.integrators.Langevin` or :class:`~sims.integrators.NoseHooverChain`): each step it
rescales the cell, the positions and the velocities isotropically (or per axis, below), then lets the thermostat take
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

Anisotropic coupling (``coupling="anisotropic"``, orthorhombic cells) gives each box length
``L_a`` its own strain ``eps_a = ln L_a`` and target ``P0_a``, after the anisotropic scheme of
Del Tatto, Raiteri, Bernetti and Bussi (Appl. Sci. 12, 1139 (2022)), restricted here to a diagonal
cell and derived below on its own:

    d eps_a = -(beta_T / tau_p) (P0_a - P_aa) dt + sqrt(2 kT beta_T / (V tau_p)) dW_a,
    P_aa = (2 K_aa - virial_aa) / V,          K_aa = sum_i m_i v_ia^2 / 2,

with three independent Wiener processes. Fokker-Planck check for a hydrostatic target
(``P0_a = P0``): the target density over the box lengths is ``exp(-(F(L) + P0 V) / kT) dL_x dL_y dL_z``
(``F`` the Helmholtz free energy of the box, kinetic part included), i.e.
``p(eps) ~ V exp(-(F + P0 V) / kT)`` in ``eps`` (Jacobian ``prod_a L_a = V``). The diffusion matrix
is ``D 1`` with ``D = kT beta_T / (V tau_p)`` and ``V = exp(sum_a eps_a)``, so ``dD / d eps_a = -D``;
a zero probability flux needs the drift ``A_a = dD / d eps_a + D d ln p / d eps_a
= -D + D (1 + V (<P_aa> - P0) / kT) = (beta_T / tau_p) (<P_aa> - P0)``, using
``-dF / d eps_a = V <P_aa>`` (the mechanical pressure along ``a`` at fixed box): the ``-D`` from the
volume-dependent noise cancels the ``+D`` from the Jacobian, so no ``kT / V`` correction is left in
the ``ln L`` coordinates (it appears only when writing the same process in ``V`` or ``L``). As in the
isotropic case, the instantaneous ``P_aa`` (with the velocity rescaling ``v_a / mu_a``) stands for
``<P_aa>`` (Bernetti and Bussi's argument applies per axis). Summing the three equations gives
the isotropic one with ``tau_p / 3``: the volume samples the same ``p(V)``; the shape at fixed
volume has no restoring force in a fluid (its ``F`` depends on ``V`` only), so it wanders freely
there: use anisotropic coupling for solids (or fluids in anisotropic confinement).
For unequal targets the external work ``sum_a P0_a V d eps_a`` is not the differential of a
function of the cell, so there is no Boltzmann density; the stationary state still has
``<P_aa> = P0_a`` on each axis exactly (the mean step of ``eps_a`` is zero), which is what a uniaxial
load asks for. Without the noise these are Berendsen's per-axis scaling equations.

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
from typing import Literal, Sequence

import numpy as np
import torch
from ase import units

from .errors import SimsInputError, SimulationStopped
from .integrators import Integrator, Langevin, NoseHooverChain, make_generator

__all__ = ["CellRescaling", "NegativePressureWarning"]


class NegativePressureWarning(UserWarning):
    """A target pressure below zero: a liquid under tension may cavitate, and a gas has no such state."""


class CellRescaling(Integrator):
    """Stochastic cell rescaling (or Berendsen) barostat around a thermostat: NPT, isotropic or per axis.

    Parameters
    ----------
    thermostat : Langevin or NoseHooverChain
        The NVT integrator that moves the atoms; its ``timestep`` (fs) and ``temperature`` (K) are
        the run's (setting ``temperature`` here sets it there, for ramps).
    pressure : float or sequence of 3 floats
        Target pressure, bar; with ``coupling="anisotropic"`` one value per cell axis (x, y, z) or
        one for all three. Below zero warns (:class:`NegativePressureWarning`).
    tau_p : float
        Barostat relaxation time, fs; at least the time step (a few hundred steps is usual:
        GROMACS recommends ``tau_p >= 5 ps`` for ``C-rescale`` with ``beta_T`` of water).
    compressibility : float
        Estimated isothermal compressibility ``beta_T``, 1/bar (default 4.5e-5, water at 300 K).
    stochastic : bool
        True: stochastic cell rescaling (correct volume fluctuations); False: Berendsen (no
        noise: for equilibration only).
    coupling : {"isotropic", "anisotropic"}
        ``"isotropic"``: one strain for the volume, the shape kept (any cell). ``"anisotropic"``:
        one strain per box length of an orthorhombic cell (triclinic cells are refused), each driven
        by its diagonal pressure ``P_aa`` towards its target.
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
        a non-finite pressure, three pressures with isotropic coupling, a compressibility or ratio out of
        range; at the start of a run, a cell not periodic in all three directions, or a triclinic
        cell with anisotropic coupling.

    References
    ----------
    M. Bernetti and G. Bussi, "Pressure control using stochastic cell rescaling", J. Chem. Phys.
    153, 114107 (2020), eq. 6 and the SimpleMD reference implementation (github.com/bussilab/crescale).
    V. Del Tatto, P. Raiteri, M. Bernetti and G. Bussi, "Molecular dynamics of solids at constant
    pressure and stress using anisotropic stochastic cell rescaling", Appl. Sci. 12, 1139 (2022).

    Examples
    --------
    >>> from sims.integrators import Langevin
    >>> npt = CellRescaling(Langevin(timestep=5.0, temperature=120.0), pressure=1.0, tau_p=1000.0,
    ...                     compressibility=1e-4)
    >>> md = MD(atoms, pot, npt, temperature=120.0, seed=0)   # doctest: +SKIP
    >>> md.run(2000).frame().info["pressure"]                 # doctest: +SKIP
    """

    def __init__(self, thermostat: Langevin | NoseHooverChain, *, pressure: float | Sequence[float], tau_p: float,
                 compressibility: float = 4.5e-5, stochastic: bool = True,
                 coupling: Literal["isotropic", "anisotropic"] = "isotropic", max_volume_ratio: float = 8.0,
                 seed: int | None = None) -> None:
        if not isinstance(thermostat, (Langevin, NoseHooverChain)):
            raise SimsInputError(f"the barostat needs a Langevin or NoseHooverChain thermostat, got "
                                 f"{type(thermostat).__name__} (a barostat without a thermostat samples no NPT ensemble)")
        super().__init__(thermostat.timestep)
        if coupling not in ("isotropic", "anisotropic"):
            raise SimsInputError(f"coupling must be 'isotropic' or 'anisotropic', got {coupling!r}")
        targets = _pressures(pressure, coupling)
        if not (math.isfinite(tau_p) and tau_p >= thermostat.timestep):
            raise SimsInputError(f"tau_p must be at least the time step ({thermostat.timestep} fs), got {tau_p} fs; "
                                 "a barostat faster than one step cannot be integrated (use hundreds of steps)")
        if not (math.isfinite(compressibility) and compressibility > 0):
            raise SimsInputError(f"compressibility must be > 0 1/bar, got {compressibility}")
        if not max_volume_ratio > 1:
            raise SimsInputError(f"max_volume_ratio must be > 1, got {max_volume_ratio}")
        if min(targets) < 0:
            warnings.warn(f"target pressure {pressure} bar is negative: a liquid under tension may cavitate "
                          "(the volume then runs away and the run stops) and a gas has no state there",
                          NegativePressureWarning, stacklevel=2)
        self.thermostat = thermostat
        self.coupling = coupling
        self.pressure: float | tuple[float, float, float] = targets[0] if coupling == "isotropic" else targets
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
        cell = state.cell.detach()
        off = cell - torch.diag(torch.diagonal(cell))
        if self.coupling == "anisotropic" and float(off.abs().max()) > 1e-9 * float(cell.abs().max()):
            raise SimsInputError("anisotropic coupling scales the three box lengths of an orthorhombic cell, but this "
                                 f"cell is triclinic (off-diagonal entries up to {float(off.abs().max()):.3g} Å): use "
                                 "coupling='isotropic' (keeps the shape), or start from an orthorhombic cell")
        seed = seed if seed is not None else self.seed
        words = None if seed is None else ([seed] if isinstance(seed, (int, np.integer)) else list(seed))
        state, inner = self.thermostat.start(state, None if words is None else words + [0])
        gen = make_generator(None if words is None else words + [1], state.positions.device)
        run = {"inner": inner, "generator": gen, "virial": None, "v0": float(state.volume()), "step": 0}
        return state, run

    def _strain_rate(self, state, virial: torch.Tensor, volume: torch.Tensor, run) -> torch.Tensor:
        """``d eps`` of one step (a scalar, or one per axis): drift from the pressure difference plus
        (stochastic) noise."""
        diagonal = -torch.diagonal(virial + state.kinetic_stress())
        beta = self.compressibility / units.bar  # 1/bar -> 1/(eV/Å^3)
        ratio = self.timestep / self.tau_p
        if self.coupling == "isotropic":
            p_int, target, shape = diagonal.mean(), self.pressure * units.bar, ()
        else:
            p_int, shape = diagonal, (3,)
            target = torch.tensor(self.pressure, dtype=volume.dtype, device=volume.device) * units.bar
        d_eps = -beta * ratio * (target - p_int)
        if self.stochastic:
            xi = torch.randn(shape, generator=run["generator"], device=volume.device, dtype=volume.dtype)
            d_eps = d_eps + torch.sqrt(2 * self.thermostat.kT * beta * ratio / volume) * xi
        return d_eps

    def step(self, state, energy, forces, force_fn, run):
        if run["virial"] is None:
            _, _, run["virial"] = force_fn(state.positions, cell=state.cell, stress=True)
        volume = state.volume()
        d_eps = self._strain_rate(state, run["virial"], volume, run)
        run["step"] += 1
        new_volume = float(volume * torch.exp(d_eps.sum()))
        ratio = new_volume / run["v0"]
        if not (math.isfinite(new_volume) and float(d_eps.abs().max()) < 0.25
                and 1 / self.max_volume_ratio < ratio < self.max_volume_ratio):
            what = "collapsing" if not ratio > 1 else "exploding"
            raise SimulationStopped(
                f"the cell is {what} at barostat step {run['step']}: volume {float(volume):.6g} -> {new_volume:.6g} Å^3 "
                f"(start {run['v0']:.6g} Å^3, limit a factor {self.max_volume_ratio:g}, at most 28 % per step). "
                f"The target pressure {self.pressure:g} bar may have no stable state at {self.temperature:g} K for this "
                "potential (cavitation, vaporisation, or a potential without a repulsive core), or tau_p is too short "
                "or compressibility too large for this system")
        # Isotropic: one factor for all; anisotropic: x, y, z components scaled by their own factor
        # (the cell is diagonal, so cell * mu = cell @ diag(mu) keeps it so).
        mu = torch.exp(d_eps / 3) if self.coupling == "isotropic" else torch.exp(d_eps)
        cell = state.cell * mu
        state = state.with_(positions=state.positions * mu, velocities=state.velocities / mu, cell=cell)

        def inner_force(x):
            e, f, run["virial"] = force_fn(x, cell=cell, stress=True)
            return e, f

        return self.thermostat.step(state, energy, forces, inner_force, run["inner"])

    def conserved_energy(self, state, energy, run):
        """The thermostat's quantity plus ``P0 V``, eV (anisotropic: the mean of the three targets): an
        enthalpy, not conserved (the barostat's noise and friction do work that is not tracked)."""
        p0 = self.pressure if self.coupling == "isotropic" else sum(self.pressure) / 3
        return self.thermostat.conserved_energy(state, energy, run["inner"]) + p0 * units.bar * state.volume()

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


def _pressures(pressure, coupling: str) -> tuple[float, float, float]:
    """The three per-axis targets (bar) from one value or three; three only with anisotropic coupling."""
    values = [pressure] if isinstance(pressure, (int, float, np.integer, np.floating)) else list(pressure)
    if len(values) not in (1, 3) or not all(isinstance(p, (int, float, np.integer, np.floating))
                                            and not isinstance(p, bool) and math.isfinite(p) for p in values):
        raise SimsInputError(f"pressure must be a finite number in bar, or three (x, y, z) with coupling='anisotropic', "
                             f"got {pressure!r}")
    if len(values) == 3 and coupling == "isotropic" and len(set(values)) > 1:
        raise SimsInputError(f"three different target pressures {values} bar need coupling='anisotropic' (isotropic "
                             "coupling keeps the cell's shape, so it has one pressure)")
    return tuple(float(p) for p in (values * 3 if len(values) == 1 else values))
