"""Constant pressure: stochastic cell rescaling (and Berendsen's weak coupling) around a thermostat.

:class:`CellRescaling` wraps one of the NVT integrators of :mod:`sims.integrators`
(:class:`~sims.integrators.Langevin` or :class:`~sims.integrators.NoseHooverChain`): each step it
rescales the cell, the positions and the velocities isotropically (or per axis, or the full cell, below), then lets the thermostat take
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

Semi-isotropic coupling (``coupling="semiisotropic"``: membranes, interfaces, layered crystals; GROMACS's
``semiisotropic``) moves the xy plane as one (``eps_xy = ln L_x = ln L_y + const``) and z alone, for
cells whose first two vectors lie in the xy plane (``V = A c_z``, ``A`` the xy area):

    d eps_xy = -(beta_T / tau_p) (P0_xy - (P_xx + P_yy) / 2) dt + sqrt(kT beta_T / (V tau_p)) dW_xy,
    d eps_z  = -(beta_T / tau_p) (P0_z - P_zz) dt + sqrt(2 kT beta_T / (V tau_p)) dW_z,

the mean of the x and y equations above (half the noise variance). Fokker-Planck check as above, in
``ln A = 2 eps_xy`` and ``eps_z`` with the target ``exp(-(F + P0 V) / kT) dA dc_z`` (the measure ``dV``
of the isotropic case, split into area and height): the diffusion ``D_A = 2 kT beta_T / (V tau_p)`` of
``ln A`` gives ``dD_A / d ln A = -D_A``, cancelled by the Jacobian ``A``, and ``-dF / d ln A = V (P_xx +
P_yy) / 2``, so no correction term is left. With a hydrostatic target the volume again samples
``p(V) ~ exp(-(F + P0 V) / kT)``; an in-plane shape at fixed area is not moved.

Triclinic coupling (``coupling="triclinic"``: the full cell of a solid, shear loads) moves the six entries
of a lower-triangular cell ``C`` (rows ``a = (C_xx, 0, 0)``, ``b = (C_yx, C_yy, 0)``, ``c = (C_zx, C_zy, C_zz)``:
ASE's row vectors in LAMMPS's orientation, tilts ``xy = C_yx``, ``xz = C_zx``, ``yz = C_zy``; the three
rotations are fixed by the form, which every step keeps). Target: the flexible-cell isothermal-isobaric
ensemble of Martyna, Tobias and Klein (1994), ``det(h)^-2 dh`` over the nine entries of the cell ``h``, which
:class:`MTK`'s triclinic coupling and LAMMPS's ``fix npt tri`` sample and which Del Tatto et al. (2022)'s
anisotropic stochastic cell rescaling samples (their Euler scheme, as in the authors' SimpleMD and LAMMPS
implementations, github.com/bussilab/crescale and bussilab/crescale-lammps: ``h' = mu h`` with ``mu = 1 +
(beta_T dt / (3 tau_p)) (P - P0 + kT / V - dev) + sqrt(2 kT beta_T dt / (3 V tau_p)) R``, nine normals ``R``, the
rotation then removed; its Fokker-Planck stationary density in the nine entries is ``V^-2 rho``: the ``kT / V``
and the Ito drift ``3 kT / V`` of the noise ``R h`` leave ``-2``). Integrating the rotations out (``h = Q C^T``,
``dh = C_xx^2 C_yy dC dQ``, the QR Jacobian) gives the density over the six entries used here, with the flat
measure ``dC = prod_{i >= j} dC_ij``, for a target pressure tensor ``P0 = p 1 + t`` (``t`` traceless; bar,
positive = compressive):

    rho(C) ~ J(C) exp(-(F(C) + p V + V0 tr(t E)) / kT) dC,     J = C_xx^2 C_yy / V^2 = 1 / (C_yy C_zz^2),
    E = (C0^-1 C C^T C0^-T - 1) / 2,

``F`` the Helmholtz free energy of the cell ``C`` (``exp(-F / kT) = int exp(-(U + K) / kT)`` over positions in
the cell and momenta, so an ideal gas has ``V^N``), ``E`` the Lagrangian strain from the start cell ``C0``
(volume ``V0``): the Parrinello-Rahman thermodynamic tension of :class:`MTK`'s triclinic target and of Del Tatto
et al.'s deviatoric term (the same ``V0 h Sigma h^T`` force), which gives a Boltzmann density for any symmetric
``P0`` (a hydrostatic target has ``t = 0``: the NPT ensemble; the anisotropic coupling's unequal per-axis
targets act on the instantaneous pressure instead, which has no density, so a diagonal 3x3 target here equals
three targets there only to first order in the strain). ``J`` is what makes the ensemble the lattice's, not the
gauge's: ``J dC = dG / V^3`` over the metric ``G = C C^T``, unchanged by a change of lattice basis (a cubic
crystal keeps three equal mean lengths), and ``dC J = dV`` times a volume-free shape measure (the volume
samples the isotropic coupling's ``p(V)``). Without ``J`` (the flat ``dC`` of this coupling until December 2026)
the sampled density carried an extra ``C_yy C_zz^2``: a tension of ``kT / V`` along y and ``2 kT / V`` along z
(an O(1/N) bias, visible in small cells: the ideal gas below had ``Gamma(N + 1)`` on every axis). The force on
the cell is ``Phi = -d(F + p V + V0 tr(t E)) / dC = V Psi`` with

    Psi = C^-T (P - p 1) - (V0 / V) Sigma C,      Sigma = C0^-T t C0^-1,

using ``dF / dC = C^-T V <stress>`` (the stress ``(1/V) dE/d(strain)`` under ``R -> R (1 + eps)``, kinetic part
included; ``P = -stress`` is the internal pressure tensor, not symmetrised, so that the identity holds for
any energy) and ``dV / dC = V C^-T``. At ``C = C0`` the drift drives ``P`` to ``P0`` itself. Coordinates
``y = (ln C_xx, ln C_yy, ln C_zz, C_yx, C_zx, C_zy)`` (Jacobian ``prod_a C_aa = V``: ``rho_y = V rho``) with the
diagonal diffusion ``D = D0 = kT beta_T / (V tau_p)`` for each ``ln C_aa`` and ``D0 C_ii^2`` for a tilt ``C_ij``
(its natural length: ``C_yx`` and ``C_zx, C_zy`` move with the strains ``dC_ij / C_ii``). Zero probability
flux needs ``A = dD/dy + D d ln rho_y / dy``; ``D0`` depends on the lengths through ``V`` only, so
``dD0 / d ln C_aa = -D0`` cancels the Jacobian's ``+D0`` (as in the anisotropic case), a tilt's ``D``
does not depend on the tilt, and ``D0 d ln J / d ln C_aa = -D0 (0, 1, 2)_a`` is left on the lengths. One rule
for the six strains ``e_ij`` (``i >= j``) of a step:

    e_ij = (beta_T dt / tau_p) (C_ii Psi_ij - delta_ij n_i kT / V) + sqrt(2 kT beta_T dt / (V tau_p)) xi_ij,
    n = (0, 1, 2),     C'_aa = C_aa exp(e_aa),     C'_ij = C_ij + C_ii e_ij  (i > j),

(Euler-Maruyama in ``y``; six independent standard normals ``xi``, drawn lengths first, then ``xy, xz, yz``;
Berendsen, without noise, drops the ``n kT / V``, which only balances the noise). On an orthorhombic cell with
a hydrostatic target ``C_aa Psi_aa = P_aa - p``: the diagonal strains are the anisotropic coupling's plus
``-n_a kT / V``, and the tilts are driven by the shear pressures ``P_yx``, ``P_zx``, ``P_zy``. Positions and
velocities follow the affine map ``mu = C^-1 C'`` (``r -> r mu``, ``v -> v mu^-T``): the fractional coordinates
are kept, and the momenta transform as a point transformation's (Del Tatto et al. scale the same way), so the
instantaneous ``P`` (kinetic part ``sum_i m_i v_i v_i^T / V`` with these scaled momenta) is exact in the joint
density over cell, fractional positions and transformed momenta, as Bernetti and Bussi argue for the volume.
Compared with Del Tatto et al.'s scheme: the same stationary density; another (equally valid) noise (six
normals on the strains of the kept entries, not nine on the full cell), and ``beta_T / tau_p`` per entry where
they take ``beta_T / (3 tau_p)`` (GROMACS's anisotropic convention): the same ``tau_p`` relaxes the cell three
times faster here (as the anisotropic coupling's, below). An ideal gas in a cell whose entries carry an energy
``c sum_a C_aa + (k/2) sum_{i > j} C_ij^2`` at ``P0 = 0`` thus samples independent lengths ``C_xx ~ Gamma(N + 1,
kT / c)``, ``C_yy ~ Gamma(N, kT / c)``, ``C_zz ~ Gamma(N - 1, kT / c)`` (``V^N J``) and tilts ``C_ij ~ Normal(0,
kT / k)`` (tested). A fluid has no shape stiffness: its tilts wander freely (use triclinic coupling for solids).
A shear load ``P0_xy`` tilts the crystal until ``<P_xy> = P0_xy`` (exactly at the start shape; a simple shear
keeps the off-diagonal of the tension's Cauchy pressure, and moves the diagonal by order strain times
``P0_xy``): ``C_yx`` shrinks for ``P0_xy > 0`` (positive pressure is compressive). Triclinic coupling needs a
lower-triangular start cell with a positive diagonal
(``atoms.set_cell(atoms.cell.standard_form()[0], scale_atoms=True)`` rotates one there).

``beta_T`` (``compressibility``, 1/bar) is an estimate of the isothermal compressibility: it only
sets how fast the volume relaxes (the relaxation time is ``tau_p`` when it is right); the sampled
distribution does not depend on it.

Scaling is affine about the origin, so the fractional coordinates, and therefore the image
shifts of unwrapped positions, stay the same; triclinic cells keep their shape (except under triclinic coupling). The neighbour list
(:class:`sims.neighbors.NeighborList`) rebuilds only when the deformation and the displacements
may bring a pair from beyond the skin to within the cutoff.

Batches. :class:`CellRescaling` also drives a batch of systems (:class:`sims.batch.BatchMD`), with every
coupling: every system has its own strains, target pressure (``BatchMD(target_pressure=...)``; a 3x3
tensor per system with triclinic coupling, each acting from its own start cell), temperature, noise
generator (seeded as a lone run's: replica ``b`` with seed ``s`` follows ``sims.MD(..., seed=s)`` to
round-off) and volume limits; the neighbour list is patched per system as cells deform.
:class:`MTK` is not batched (its cell variables are host-side numbers of one system).
"""

from __future__ import annotations

import math
import warnings
from typing import Literal, Sequence

import numpy as np
import torch
from ase import units

from .errors import SimsInputError, SimulationStopped
from .integrators import Integrator, Langevin, NoseHooverChain, chain_half_step, make_generator

__all__ = ["CellRescaling", "MTK", "NegativePressureWarning", "check_cell"]


class NegativePressureWarning(UserWarning):
    """A target pressure below zero: a liquid under tension may cavitate, and a gas has no such state."""


class CellRescaling(Integrator):
    """Stochastic cell rescaling (or Berendsen) barostat around a thermostat: NPT, isotropic, per axis or the full cell.

    Parameters
    ----------
    thermostat : Langevin or NoseHooverChain
        The NVT integrator that moves the atoms; its ``timestep`` (fs) and ``temperature`` (K) are
        the run's (setting ``temperature`` here sets it there, for ramps).
    pressure : float, sequence of 3 floats, or 3x3
        Target pressure, bar; with ``coupling="anisotropic"`` one value per cell axis (x, y, z) or
        one for all three; with ``"semiisotropic"`` three with x = y (or one); with ``"triclinic"`` one
        (hydrostatic) or a symmetric 3x3 pressure tensor (positive = compressive, minus ASE's stress;
        its deviatoric part acts through the Lagrangian strain from the start cell, module docstring).
        Below zero (the mean) warns (:class:`NegativePressureWarning`).
    tau_p : float
        Barostat relaxation time, fs; at least the time step (a few hundred steps is usual:
        GROMACS recommends ``tau_p >= 5 ps`` for ``C-rescale`` with ``beta_T`` of water).
    compressibility : float
        Estimated isothermal compressibility ``beta_T``, 1/bar (default 4.5e-5, water at 300 K).
    stochastic : bool
        True: stochastic cell rescaling (correct volume fluctuations); False: Berendsen (no
        noise: for equilibration only).
    coupling : {"isotropic", "anisotropic", "semiisotropic", "triclinic"}
        ``"semiisotropic"``: one strain for the xy plane, one for z (the first two cell vectors must
        lie in the xy plane; they keep their in-plane shape). ``"isotropic"``: one strain for the
        volume, the shape kept (any cell). ``"anisotropic"``:
        one strain per box length of an orthorhombic cell (triclinic cells are refused), each driven
        by its diagonal pressure ``P_aa`` towards its target. ``"triclinic"``: the six entries of a
        lower-triangular cell (three lengths, three tilts; rotations fixed), driven by the full pressure
        tensor; the start cell must be lower triangular (module docstring).
    max_volume_ratio : float
        Stop (:class:`~sims.errors.SimulationStopped`) when the volume leaves
        ``[V0 / ratio, V0 * ratio]`` (``V0`` the volume at the start of the run), or changes by
        more than 28 % in one step (``|d eps| > 0.25``): the cell is collapsing or exploding.
    seed : int, optional
        Seeds the barostat's noise (the thermostat has its own); overridden by :class:`sims.MD`'s. Not given
        anywhere: the thermostat's seed (``Langevin(seed=...)``) seeds both (:meth:`default_seed`).

    Raises
    ------
    SimsInputError
        Another integrator than Langevin or NoseHooverChain, an unknown coupling, ``tau_p`` shorter than
        the time step, a non-finite pressure, three different pressures with isotropic or triclinic coupling
        (triclinic takes a 3x3 tensor), a 3x3 pressure without triclinic coupling or one that is not
        symmetric, a compressibility or ratio out of range; at the start of a run, a cell not periodic in
        all three directions, a triclinic cell with anisotropic coupling, or (triclinic coupling) a cell
        that is not lower triangular with a positive diagonal.

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

    COUPLINGS = ("isotropic", "anisotropic", "semiisotropic", "triclinic")

    def __init__(self, thermostat: Langevin | NoseHooverChain, *, pressure: float | Sequence[float], tau_p: float,
                 compressibility: float = 4.5e-5, stochastic: bool = True,
                 coupling: Literal["isotropic", "anisotropic", "semiisotropic", "triclinic"] = "isotropic",
                 max_volume_ratio: float = 8.0,
                 seed: int | None = None) -> None:
        if not isinstance(thermostat, (Langevin, NoseHooverChain)):
            raise SimsInputError(f"the barostat needs a Langevin or NoseHooverChain thermostat, got "
                                 f"{type(thermostat).__name__} (a barostat without a thermostat samples no NPT ensemble)")
        super().__init__(thermostat.timestep)
        if coupling not in self.COUPLINGS:
            raise SimsInputError(f"coupling must be one of {', '.join(map(repr, self.COUPLINGS))}, got {coupling!r}")
        if coupling == "triclinic":
            tensor = _pressure_tensor(pressure)
            targets = (float(np.trace(tensor)) / 3,)
        else:
            tensor, targets = None, _pressures(pressure, coupling)
        if not (math.isfinite(tau_p) and tau_p >= thermostat.timestep):
            raise SimsInputError(f"tau_p must be at least the time step ({thermostat.timestep} fs), got {tau_p} fs; "
                                 "a barostat faster than one step cannot be integrated (use hundreds of steps)")
        if not (math.isfinite(compressibility) and compressibility > 0):
            raise SimsInputError(f"compressibility must be > 0 1/bar, got {compressibility}")
        _check_limits(pressure, targets, max_volume_ratio)
        self.thermostat = thermostat
        self.coupling = coupling
        self.pressure: float | tuple = targets[0] if coupling in ("isotropic", "triclinic") else targets
        if tensor is not None and _stress_target(pressure, coupling) is not None:
            self.pressure = tuple(tuple(float(x) for x in row) for row in tensor)
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

    def default_seed(self) -> int | None:
        """This barostat's ``seed``, else its thermostat's (``Langevin(seed=...)``): a run seeded through the
        thermostat alone drew the barostat's noise from fresh entropy, so it could not be repeated. The two
        streams stay apart (``(seed, 0)`` and ``(seed, 1)``, the thermostat's the one it draws alone)."""
        return self.seed if self.seed is not None else self.thermostat.default_seed()

    def start(self, state, seed: int | Sequence[int] | None):
        if getattr(state, "system", None) is not None:
            return self._start_batch(state, seed)
        _check_cell(state, self.coupling, lower=self.coupling == "triclinic")
        seed = seed if seed is not None else self.default_seed()
        words = None if seed is None else ([seed] if isinstance(seed, (int, np.integer)) else list(seed))
        state, inner = self.thermostat.start(state, None if words is None else words + [0])
        gen = make_generator(None if words is None else words + [1], state.positions.device)
        run = {"inner": inner, "generator": gen, "virial": None, "v0": float(state.volume()), "step": 0}
        if self.coupling == "triclinic":
            run["c0"] = state.cell.detach().clone()  # the reference cell of a deviatoric target's strain
        return state, run

    def _target_tensor(self, like: torch.Tensor) -> torch.Tensor:
        """The triclinic target pressure tensor, eV/Å^3, 3x3, in the dtype and on the device of ``like``."""
        return torch.as_tensor(_pressure_tensor(self.pressure), dtype=like.dtype, device=like.device) * units.bar

    def _strain_rate(self, state, virial: torch.Tensor, volume: torch.Tensor, run) -> torch.Tensor:
        """``d eps`` of one step (a scalar, or one per axis): drift from the pressure difference plus
        (stochastic) noise."""
        beta = self.compressibility / units.bar  # 1/bar -> 1/(eV/Å^3)
        ratio = self.timestep / self.tau_p
        if self.coupling == "triclinic":
            # As a batch of one, so that a batch's replica runs the same kernels and follows this run to the bit.
            p_int = -(virial + state.kinetic_stress())
            d_eps = _triclinic_drift(state.cell[None], p_int[None], self._target_tensor(volume)[None], run["c0"][None],
                                     torch.tensor([run["v0"]], dtype=volume.dtype, device=volume.device),
                                     beta * ratio)[0]
            if self.stochastic:
                kt = torch.tensor([self.thermostat.kT], dtype=volume.dtype, device=volume.device)
                d_eps = d_eps + _gauge_drift(kt, volume[None], beta * ratio)[0]
                xi = torch.randn((6,), generator=run["generator"], device=volume.device, dtype=volume.dtype)
                d_eps = d_eps + torch.sqrt(2 * self.thermostat.kT * beta * ratio / volume) * _lower(xi)
            return d_eps
        diagonal = -torch.diagonal(virial + state.kinetic_stress())
        if self.coupling == "isotropic":
            p_int, target, shape = diagonal.mean(), self.pressure * units.bar, ()
        else:
            p_int, shape = diagonal, (3,)
            target = torch.tensor(self.pressure, dtype=volume.dtype, device=volume.device) * units.bar
        d_eps = -beta * ratio * (target - p_int)
        if self.coupling == "semiisotropic":
            d_eps = torch.stack([(d_eps[0] + d_eps[1]) / 2] * 2 + [d_eps[2]])
        if self.stochastic:
            xi = torch.randn(shape, generator=run["generator"], device=volume.device, dtype=volume.dtype)
            if self.coupling == "semiisotropic":
                # One draw for the xy plane with half the variance of a single axis (the mean of two).
                xi = xi[[0, 0, 2]] * torch.tensor([math.sqrt(0.5), math.sqrt(0.5), 1.0], dtype=xi.dtype, device=xi.device)
            d_eps = d_eps + torch.sqrt(2 * self.thermostat.kT * beta * ratio / volume) * xi
        return d_eps

    def _start_batch(self, state, seeds: Sequence | None):
        """A batch (:class:`sims.batch.BatchState`): one barostat per system, each with its own noise
        generator (system ``b`` with the seed words ``s`` draws what a lone run seeded ``s`` draws), start
        volume and target pressure (``run["p0"]``, ``(B, 3)`` eV/Å^3, or ``(B, 3, 3)`` with triclinic coupling,
        set by :meth:`set_target_pressures`)."""
        n = state.n_systems
        pbc, cells = state.pbc.cpu().numpy(), _np(state.cell)
        for b in range(n):
            try:
                check_cell(pbc[b], cells[b], self.coupling, lower=self.coupling == "triclinic")
            except SimsInputError as err:
                raise SimsInputError(f"system {b}: {err}") from None
        seeds = [None] * n if seeds is None else list(seeds)
        words = [None if s is None else list(s) for s in seeds]
        state, inner = self.thermostat.start(state, [None if w is None else w + [0] for w in words])
        device = state.positions.device
        run = {"inner": inner, "generators": [make_generator(None if w is None else w + [1], device) for w in words],
               "virial": None, "v0": state.volume().detach().clone(), "step": 0}
        if self.coupling == "triclinic":
            run["c0"] = state.cell.detach().clone()
        self.set_target_pressures(run, [self.pressure] * n)
        return state, run

    def set_target_pressures(self, run, pressures: Sequence) -> None:
        """Set each system's target pressure in a batch's ``run`` (one entry per system: bar, a number or,
        with per-axis coupling, three; with triclinic coupling a number or a symmetric 3x3 tensor), checked
        as the barostat's own ``pressure`` is."""
        rows = []
        for p in pressures:
            if self.coupling == "triclinic":
                tensor = _pressure_tensor(p)
                _check_limits(p, (float(np.trace(tensor)) / 3,), self.max_volume_ratio)
                rows.append(tensor.tolist())
                continue
            targets = _pressures(p, self.coupling)
            _check_limits(p, targets, self.max_volume_ratio)
            rows.append(targets)
        like = run["v0"]
        run["p0"] = torch.tensor(rows, dtype=torch.float64).to(device=like.device, dtype=like.dtype) * units.bar

    def _strain_rate_batch(self, state, virial: torch.Tensor, volume: torch.Tensor, run) -> torch.Tensor:
        """:meth:`_strain_rate` of every system of a batch: ``(B,)`` (isotropic), ``(B, 3)`` or ``(B, 3, 3)``
        (triclinic)."""
        beta = self.compressibility / units.bar
        ratio = self.timestep / self.tau_p
        if self.coupling == "triclinic":
            p_int = -(virial + state.kinetic_stress())
            d_eps = _triclinic_drift(state.cell, p_int, run["p0"], run["c0"], run["v0"], beta * ratio)
            if self.stochastic:
                d_eps = d_eps + _gauge_drift(run["inner"]["kT_system"], volume, beta * ratio)
                xi = torch.stack([torch.randn((6,), generator=g, device=volume.device, dtype=volume.dtype)
                                  for g in run["generators"]])
                amplitude = torch.sqrt(2 * run["inner"]["kT_system"] * beta * ratio / volume)
                d_eps = d_eps + amplitude[:, None, None] * _lower(xi)
            return d_eps
        diagonal = -torch.diagonal(virial + state.kinetic_stress(), dim1=1, dim2=2)
        iso = self.coupling == "isotropic"
        p_int, target = (diagonal.mean(1), run["p0"][:, 0]) if iso else (diagonal, run["p0"])
        d_eps = -beta * ratio * (target - p_int)
        if self.coupling == "semiisotropic":
            d_eps = torch.stack([(d_eps[:, 0] + d_eps[:, 1]) / 2] * 2 + [d_eps[:, 2]], 1)
        if self.stochastic:
            shape = () if iso else (3,)
            # Each system's own generator, drawing what its lone run draws (a loop over systems, not atoms).
            xi = torch.stack([torch.randn(shape, generator=g, device=volume.device, dtype=volume.dtype)
                              for g in run["generators"]])
            if self.coupling == "semiisotropic":
                xi = xi[:, [0, 0, 2]] * torch.tensor([math.sqrt(0.5), math.sqrt(0.5), 1.0], dtype=xi.dtype,
                                                        device=xi.device)
            kT = run["inner"]["kT_system"]
            amplitude = torch.sqrt(2 * kT * beta * ratio / volume)
            d_eps = d_eps + (amplitude if iso else amplitude[:, None]) * xi
        return d_eps

    def _step_batch(self, state, energy, forces, force_fn, run):
        if run["virial"] is None:
            _, _, run["virial"] = force_fn(state.positions, cell=state.cell, stress=True)
        volume = state.volume()
        d_eps = self._strain_rate_batch(state, run["virial"], volume, run)
        run["step"] += 1
        iso, tri = self.coupling == "isotropic", self.coupling == "triclinic"
        if tri:
            d_ln_v, d_strain = torch.diagonal(d_eps, dim1=1, dim2=2).sum(1), d_eps.abs().amax((1, 2))
        else:
            d_ln_v = d_eps if iso else d_eps.sum(1)
            d_strain = d_eps.abs() if iso else d_eps.abs().max(1).values
        ratio = volume * torch.exp(d_ln_v) / run["v0"]
        good = torch.isfinite(ratio) & (d_strain < 0.25) & (ratio > 1 / self.max_volume_ratio) & (
            ratio < self.max_volume_ratio)
        if not bool(good.all()):  # one wait for the device per step, as the lone run's check
            b = int(torch.nonzero(~good)[0])
            p0 = run["p0"][b] / units.bar
            _check_volume(self, {"v0": float(run["v0"][b]), "step": run["step"]}, float(volume[b]), float(d_ln_v[b]),
                          float(d_strain[b]), "or compressibility too large", system=b,
                          pressure=float(p0[0]) if iso else tuple(p0.tolist()),
                          temperature=float(run["inner"]["kT_system"][b]) / units.kB)
        if tri:
            cell, mu, mu_inv = _deform_lower(state.cell, d_eps)
            mu_atom, inv_atom = mu.index_select(0, state.system), mu_inv.index_select(0, state.system)
            # r -> r mu and v -> v mu^-T (rows): fractional coordinates kept, momenta transformed canonically.
            state = state.with_(positions=_affine(state.positions, mu_atom),
                                velocities=_affine(state.velocities, inv_atom.transpose(1, 2)), cell=cell)
        else:
            mu = torch.exp(d_eps / 3)[:, None] if iso else torch.exp(d_eps)
            cell = state.cell * mu[:, None, :]
            mu_atom = mu.index_select(0, state.system)
            state = state.with_(positions=state.positions * mu_atom, velocities=state.velocities / mu_atom, cell=cell)

        def inner_force(x):
            e, f, run["virial"] = force_fn(x, cell=cell, stress=True)
            return e, f

        return self.thermostat.step(state, energy, forces, inner_force, run["inner"])

    def step(self, state, energy, forces, force_fn, run):
        if "generators" in run:
            return self._step_batch(state, energy, forces, force_fn, run)
        if run["virial"] is None:
            _, _, run["virial"] = force_fn(state.positions, cell=state.cell, stress=True)
        volume = state.volume()
        d_eps = self._strain_rate(state, run["virial"], volume, run)
        run["step"] += 1
        tri = self.coupling == "triclinic"
        _check_volume(self, run, float(volume), float(torch.trace(d_eps) if tri else d_eps.sum()),
                      float(d_eps.abs().max()), "or compressibility too large")
        if tri:
            # r -> r mu and v -> v mu^-T (rows): fractional coordinates kept, momenta transformed canonically.
            cell, mu, mu_inv = (x[0] for x in _deform_lower(state.cell[None], d_eps[None]))
            state = state.with_(positions=_affine(state.positions, mu), velocities=_affine(state.velocities, mu_inv.T),
                                cell=cell)
        else:
            # Isotropic: one factor for all; (semi)anisotropic: x, y, z components scaled by their own factor
            # (cell * mu = cell @ diag(mu): an orthorhombic cell stays so, an xy plane stays in the plane).
            mu = torch.exp(d_eps / 3) if self.coupling == "isotropic" else torch.exp(d_eps)
            cell = state.cell * mu
            state = state.with_(positions=state.positions * mu, velocities=state.velocities / mu, cell=cell)

        def inner_force(x):
            e, f, run["virial"] = force_fn(x, cell=cell, stress=True)
            return e, f

        return self.thermostat.step(state, energy, forces, inner_force, run["inner"])

    def conserved_energy(self, state, energy, run):
        """The thermostat's quantity plus ``P0 V``, eV (anisotropic: the mean of the three targets; triclinic:
        the external energy ``p V + V0 tr(t E)`` below): an enthalpy, not conserved (the barostat's noise and
        friction do work that is not tracked)."""
        inner = self.thermostat.conserved_energy(state, energy, run["inner"])
        if self.coupling == "triclinic":
            p0 = run["p0"] if "p0" in run else self._target_tensor(state.cell)
            return inner + _external_energy(state.cell, p0, run["c0"], run["v0"])
        if "p0" in run:  # a batch: each system's own targets
            return inner + run["p0"].mean(1) * state.volume()
        p0 = self.pressure if self.coupling == "isotropic" else sum(self.pressure) / 3
        return inner + p0 * units.bar * state.volume()

    def refresh(self, run):
        run["virial"] = None
        self.thermostat.refresh(run["inner"])

    def state_dict(self, run):
        if "generators" in run:  # a batch: per-system generators, start volumes and targets (float64 CPU)
            return {"inner": self.thermostat.state_dict(run["inner"]),
                    "generators": [g.get_state() for g in run["generators"]],
                    "v0": run["v0"].detach().cpu().double(), "p0": run["p0"].detach().cpu().double(),
                    "step": run["step"], **self._reference_cell(run)}
        return {"inner": self.thermostat.state_dict(run["inner"]), "generator": run["generator"].get_state(),
                "v0": run["v0"], "step": run["step"], **self._reference_cell(run)}

    @staticmethod
    def _reference_cell(run) -> dict:
        """``{"c0": start cell(s)}`` (float64, CPU) of a triclinic run, else nothing."""
        return {"c0": run["c0"].detach().cpu().double()} if "c0" in run else {}

    def load_state_dict(self, run, d):
        self.thermostat.load_state_dict(run["inner"], d["inner"])
        run.update(step=int(d["step"]), virial=None)
        if "generators" in run:
            for g, state in zip(run["generators"], d["generators"]):
                g.set_state(state)
            like = run["v0"]
            run.update(v0=torch.as_tensor(d["v0"]).to(like), p0=torch.as_tensor(d["p0"]).to(like))
        else:
            run["generator"].set_state(d["generator"])
            run["v0"] = float(d["v0"])
        if "c0" in run:
            run["c0"] = torch.as_tensor(d["c0"]).to(run["c0"])


class MTK(Integrator):
    """Martyna-Tobias-Klein NPT (or NPH) dynamics with Nose-Hoover chains: a conserved quantity and the exact ensemble.

    The equations of motion (Martyna, Tobias and Klein 1994; in the form of Tuckerman et al. 2006, eq. 2.7
    for the full cell, and Shinoda et al. 2004), with ``v_g`` the 3x3 strain rate of the cell (1/time),
    ``N_f = 3N - 3`` the atoms' degrees of freedom, ``W`` the mass of each strain component and
    ``v_xi``, ``v_eta`` the first velocities of the thermostat chains of the atoms and of the cell:

        dr_i/dt = v_i + v_g r_i,                      dh/dt = v_g h   (h: cell vectors as columns)
        dv_i/dt = F_i / m_i - (v_g + tr(v_g) / N_f) v_i - v_xi v_i
        W dv_g/dt = V (P_int - P0) + (2 K / N_f) 1 - W v_eta v_g,
        P_int = (sum_i m_i v_i v_i^T) / V - stress_virial.

    ``coupling`` restricts ``v_g``: ``"isotropic"`` to ``v 1`` (the cell keeps its shape; the force is the
    mean of the diagonal), ``"semiisotropic"`` to ``diag(v_xy, v_xy, v_z)`` (the xy plane and z; the first
    two cell vectors in the xy plane; LAMMPS's ``couple xy``), ``"anisotropic"`` to a diagonal (the three
    box lengths of an orthorhombic cell, each driven by its own ``P_aa``; LAMMPS's ``aniso``),
    ``"triclinic"`` to a symmetric matrix (the full cell, six components: shape changes without rotating
    the cell). The conserved quantity is

        H' = U + K + (W / 2) sum_ab v_g,ab^2 + U_ext + sum_k Q_k v_xi_k^2 / 2 + N_f kT xi_1 + kT sum_{k>1} xi_k
             + sum_k R_k v_eta_k^2 / 2 + n_g kT eta_1 + kT sum_{k>1} eta_k,

    with ``n_g`` = 1, 2, 3, 6 the cell's degrees of freedom and ``U_ext = P0 V`` (unequal per-axis targets:
    ``P0`` their mean, and ``H'`` is not conserved: their work is not the differential of a function of
    the cell). A full 3x3 target ``P0 = p 1 + t`` (``t`` traceless; triclinic coupling) enters as in
    Parrinello-Rahman and Shinoda et al. (2004, eq. 2): ``U_ext = p V + V0 tr(t E)`` with the Lagrangian
    strain ``E = (h0^-T h^T h h0^-1 - 1) / 2`` from the start cell ``h0`` (volume ``V0``), so ``P0 V`` in the
    cell's force becomes ``p V 1 + V0 h sigma h^T`` with ``sigma = h0^-1 t h0^-T``: ``H'`` is conserved, and
    at ``h = h0`` the internal pressure tensor is driven to ``P0`` itself (LAMMPS's ``fix npt`` with
    off-diagonal targets does the same). ``thermostat=False`` drops both chains: NPH,
    whose conserved quantity is the enthalpy plus the cell's kinetic energy.

    Integration: the measure-preserving Trotter splitting of Tuckerman et al. (2006) as in ASE's
    ``MTKNPT`` and LAMMPS's ``fix npt``: half steps of the chains, of ``v_g``, and of the velocities
    (force kick and ``v_g`` friction solved together, exactly for constant ``v_g``), a full step of
    positions and cell (exact for constant ``v_g``: ``exp(v_g dt)``, in the eigenbasis of ``v_g``),
    then the same half steps in reverse order. One force and stress evaluation per step; the error of
    ``H'`` is O(dt^2).

    Ensemble. With the total momentum zero (the forces of a periodic system sum to zero, and
    :meth:`start` removes the centre-of-mass velocity), the phase-space compressibility analysis
    (Tuckerman et al. 2001, 2006) with the conserved centre-of-mass momentum and fractional position
    gives the isothermal-isobaric distribution ``exp(-(U + K + P0 V) / kT)`` over the ``N - 1`` relative
    positions (isotropic: in ``dV``; the full cell: in ``det(h)^-2 dh``, MTK 1994) when the
    ``tr(v_g)`` term and the kinetic force use ``N_f = 3N - 3`` (LAMMPS and ASE use ``3N``: a
    ``V^(-1/N)`` error). An ideal gas of ``N`` atoms therefore samples ``p(V) ~ V^(N-1) exp(-P0 V / kT)``:
    ``<V> = N kT / P0``, one atom less than a barostat whose thermostat does not conserve momentum
    (:class:`CellRescaling` with Langevin): the centre of mass is not free to explore the box.

    Parameters
    ----------
    timestep : float
        fs.
    temperature : float
        Target temperature, K (settable between steps, for ramps). With ``thermostat=False`` (NPH) it
        only sets the masses ``W``, ``Q``, ``R``: give the expected temperature.
    pressure : float, sequence of 3 floats, or 3x3
        Target pressure, bar; three (x, y, z) with ``coupling="anisotropic"`` (``"semiisotropic"``:
        x = y); a symmetric 3x3 pressure tensor (positive = compressive, minus ASE's stress) with
        ``coupling="triclinic"``. Below zero (the mean) warns.
    tau : float
        Thermostat period, fs (``Q_1 = N_f kT tau^2``, ``Q_k = kT tau^2``, as :class:`NoseHooverChain`).
    tau_p : float
        Barostat period, fs: ``W = (N_f + 3) kT tau_p^2 / 3`` per strain component (MTK 1994; the
        isotropic volume mass is ``3 W``), chain masses ``R_1 = n_g kT tau_p^2``, ``R_k = kT tau_p^2``.
        LAMMPS's ``Pdamp`` and ASE's ``pdamp`` (its ``W = (N + 1) kT pdamp^2``) mean the same.
    chain_length, barostat_chain_length : int
        Lengths of the two Nose-Hoover chains (LAMMPS ``tchain``, ``pchain``).
    coupling : {"isotropic", "semiisotropic", "anisotropic", "triclinic"}
        Which cell degrees of freedom move (above).
    thermostat : bool
        True: NPT; False: NPH (no chains).
    max_volume_ratio : float
        Stop (:class:`~sims.errors.SimulationStopped`, the state kept at the last good step) when the
        volume would leave ``[V0 / ratio, V0 * ratio]`` or a strain change by 0.25 in one step.

    Raises
    ------
    SimsInputError
        ``tau`` or ``tau_p`` shorter than the time step, a temperature <= 0 K, a non-finite pressure, three
        pressures without anisotropic coupling, an unknown coupling; at the start of a run, a cell not
        periodic in three directions, a triclinic cell with anisotropic coupling, or a single atom.

    References
    ----------
    G. J. Martyna, D. J. Tobias and M. L. Klein, "Constant pressure molecular dynamics algorithms",
    J. Chem. Phys. 101, 4177 (1994).
    M. E. Tuckerman, J. Alejandre, R. Lopez-Rendon, A. L. Jochim and G. J. Martyna, "A Liouville-operator
    derived measure-preserving integrator for molecular dynamics simulations in the isothermal-isobaric
    ensemble", J. Phys. A 39, 5629 (2006).
    W. Shinoda, M. Shiga and M. Mikami, "Rapid estimation of elastic constants by molecular dynamics
    simulation under constant stress", Phys. Rev. B 69, 134103 (2004).
    M. E. Tuckerman, Y. Liu, G. Ciccotti and G. J. Martyna, "Non-Hamiltonian molecular dynamics:
    generalizing Hamiltonian phase space principles to non-Hamiltonian systems", J. Chem. Phys. 115,
    1678 (2001).

    Examples
    --------
    >>> npt = MTK(timestep=5.0, temperature=120.0, pressure=1.0, tau=200.0, tau_p=1000.0)
    >>> md = MD(atoms, pot, npt, temperature=120.0, seed=0)   # doctest: +SKIP
    >>> md.run(2000).conserved_energy()                       # doctest: +SKIP
    """

    _CELL_DOF = {"isotropic": 1, "semiisotropic": 2, "anisotropic": 3, "triclinic": 6}

    def __init__(self, timestep: float, *, temperature: float, pressure: float | Sequence[float], tau: float = 100.0,
                 tau_p: float = 1000.0, chain_length: int = 3, barostat_chain_length: int = 3,
                 coupling: Literal["isotropic", "semiisotropic", "anisotropic", "triclinic"] = "isotropic",
                 thermostat: bool = True,
                 max_volume_ratio: float = 8.0) -> None:
        super().__init__(timestep)
        if coupling not in self._CELL_DOF:
            raise SimsInputError(f"coupling must be one of {', '.join(map(repr, self._CELL_DOF))}, got {coupling!r}")
        tensor = _stress_target(pressure, coupling)
        targets = _pressures(pressure, "isotropic" if coupling == "triclinic" else coupling) if tensor is None else (
            float(np.trace(tensor)) / 3,)
        if not (math.isfinite(temperature) and temperature > 0):
            raise SimsInputError(f"temperature must be > 0 K (it sets the barostat's mass even for NPH), got {temperature}")
        for name, value in (("tau", tau), ("tau_p", tau_p)):
            if not (math.isfinite(value) and value >= timestep):
                raise SimsInputError(f"{name} must be at least the time step ({timestep} fs), got {value} fs; a "
                                     "thermostat or barostat period shorter than one step cannot be integrated "
                                     "(use about 100 steps for tau and 1000 for tau_p)")
        if chain_length < 1 or barostat_chain_length < 1:
            raise SimsInputError(f"chain lengths must be >= 1, got {chain_length}, {barostat_chain_length}")
        _check_limits(pressure, targets, max_volume_ratio)
        self.temperature = float(temperature)
        per_axis = coupling in ("anisotropic", "semiisotropic")
        self.pressure: float | tuple = targets if per_axis else targets[0]
        if tensor is not None:
            self.pressure = tuple(tuple(float(x) for x in row) for row in tensor)
        self.tau, self.tau_p = float(tau), float(tau_p)
        self.chain_length, self.barostat_chain_length = int(chain_length), int(barostat_chain_length)
        self.coupling = coupling
        self.thermostat = bool(thermostat)
        self.max_volume_ratio = float(max_volume_ratio)

    @property
    def kT(self) -> float:
        """Thermal energy of the target temperature, eV."""
        return units.kB * self.temperature

    def start(self, state, seed):
        _check_cell(state, self.coupling)
        if state.n_atoms < 2:
            raise SimsInputError("MTK needs at least two atoms (one atom at rest has no degrees of freedom left "
                                 "once the centre of mass is fixed)")
        p = (state.masses[:, None] * state.velocities).sum(0)
        state = state.with_(velocities=state.velocities - p / state.masses.sum())
        # The cell's variables are a dozen numbers: numpy float64 (cheaper than tiny tensors, and exact
        # whatever the run's dtype); gradients do not flow through them.
        run = {"dof": 3 * state.n_atoms - 3, "xi": [0.0] * self.chain_length, "v_xi": [0.0] * self.chain_length,
               "eta": [0.0] * self.barostat_chain_length, "v_eta": [0.0] * self.barostat_chain_length,
               "v_g": np.zeros((3, 3)), "virial": None, "v0": float(state.volume()), "step": 0}
        if isinstance(self.pressure, tuple) and isinstance(self.pressure[0], tuple):
            # The deviatoric target acts through the Lagrangian strain from this start cell h0:
            # sigma = h0^-1 t h0^-T (Shinoda et al. 2004, eq. 2; LAMMPS fix npt's "sigma").
            target = np.array(self.pressure) * units.bar
            h0_inv = np.linalg.inv(_np(state.cell).T)
            run["sigma"] = h0_inv @ (target - np.trace(target) / 3 * np.eye(3)) @ h0_inv.T
        return state, run

    def _masses(self, dof: int) -> tuple[float, list[float], list[float]]:
        """``W`` (each strain component), the atoms' chain masses ``Q`` and the cell's ``R``, ASE units."""
        kT = self.kT
        tau, tau_p = self.tau * units.fs, self.tau_p * units.fs
        w = (dof + 3) * kT * tau_p ** 2 / 3
        q = [dof * kT * tau ** 2] + [kT * tau ** 2] * (self.chain_length - 1)
        r = [self._CELL_DOF[self.coupling] * kT * tau_p ** 2] + [kT * tau_p ** 2] * (self.barostat_chain_length - 1)
        return w, q, r

    def _project(self, g: np.ndarray) -> np.ndarray:
        """Keep the components of a 3x3 force or velocity that ``coupling`` lets move."""
        if self.coupling == "isotropic":
            return np.eye(3) * np.trace(g) / 3
        if self.coupling == "anisotropic":
            return np.diag(np.diagonal(g))
        if self.coupling == "semiisotropic":
            return np.diag([(g[0, 0] + g[1, 1]) / 2] * 2 + [g[2, 2]])
        return (g + g.T) / 2

    def _external(self, cell: np.ndarray, volume: float, run) -> tuple[np.ndarray, float]:
        """The target's force on the strain rate, ``-(dU_ext/dh) h^T`` (eV), and its energy ``U_ext`` (eV).

        ``U_ext = P0 V`` for a hydrostatic (or per-axis, then not a potential) target; a 3x3 target
        ``P0 = p 1 + t`` adds ``V0 tr(t E)`` with the Lagrangian strain ``E = (h0^-T h^T h h0^-1 - 1) / 2``
        from the start cell, whose force is ``-V0 h sigma h^T`` (``sigma = h0^-1 t h0^-T``)."""
        if "sigma" in run:
            p = float(np.trace(np.array(self.pressure))) / 3 * units.bar
            h = cell.T
            return (-volume * p * np.eye(3) - run["v0"] * h @ run["sigma"] @ h.T,
                    p * volume + run["v0"] / 2 * float(np.trace(run["sigma"] @ h.T @ h)))
        p = np.array(self.pressure if isinstance(self.pressure, tuple) else (self.pressure,) * 3) * units.bar
        return -volume * np.diag(p), float(p.mean()) * volume

    def _cell_kick(self, state, virial: np.ndarray, volume: float, v_g: np.ndarray, w: float, dof: int, dt: float,
                   run):
        """``v_g`` after ``dt`` of its force ``V (P_int - P0) + 2 K / N_f`` (velocities held)."""
        mvv = _np((state.masses[:, None] * state.velocities).T @ state.velocities)
        force = mvv - volume * virial + self._external(_np(state.cell), volume, run)[0] + np.trace(mvv) / dof * np.eye(3)
        return v_g + dt * self._project(force) / w

    def _factors(self, rates: np.ndarray, v_g: np.ndarray, dt: float, like: torch.Tensor):
        """``exp(rate dt)`` and ``dt exprel(rate dt)`` per eigen-direction of ``v_g`` (a (2, 3) tensor), and
        the eigenvectors as columns (None for a diagonal ``v_g``: the Cartesian axes)."""
        x = rates * dt
        small = np.abs(x) < 1e-8
        exprel = np.where(small, 1 + x / 2, np.expm1(x) / np.where(small, 1.0, x))
        f = torch.as_tensor(np.stack([np.exp(x), dt * exprel]), dtype=like.dtype, device=like.device)
        return f, None if self._basis(v_g)[1] is None else torch.as_tensor(self._basis(v_g)[1]).to(like)

    def _basis(self, v_g: np.ndarray):
        """Eigenvalues and eigenvectors (columns, None when ``v_g`` is diagonal) of ``v_g``."""
        if self.coupling == "triclinic":
            return np.linalg.eigh(v_g)
        return np.diagonal(v_g).copy(), None

    def _velocity_kick(self, velocities, accel, v_g, dof: int, dt: float):
        """Velocities after ``dt`` of the force and the friction ``-(v_g + tr(v_g) / N_f) v`` (exact for
        constant ``v_g`` and forces)."""
        f, basis = self._factors(-(self._basis(v_g)[0] + np.trace(v_g) / dof), v_g, dt, velocities)
        if basis is None:
            return velocities * f[0] + accel * f[1]
        return (velocities @ basis * f[0] + accel @ basis * f[1]) @ basis.T

    def _drift(self, positions, velocities, cell, v_g, dt: float):
        """Positions and cell after ``dt`` of ``dr/dt = v + v_g r``, ``dh/dt = v_g h`` (exact for constant ``v_g``)."""
        f, basis = self._factors(self._basis(v_g)[0], v_g, dt, positions)
        if basis is None:
            return positions * f[0] + velocities * f[1], cell * f[0]
        scale = basis * f[0] @ basis.T
        return positions @ scale + (velocities @ basis * f[1]) @ basis.T, cell @ scale

    def _chains(self, state, run, w: float, q: list[float], r: list[float]):
        """Half a step of the cell's and the atoms' Nose-Hoover chains (NPT only)."""
        v_g = run["v_g"]
        scale, run["eta"], run["v_eta"] = chain_half_step(w * float((v_g * v_g).sum()), self._CELL_DOF[self.coupling],
                                                          self.kT, r, run["eta"], run["v_eta"], self.dt)
        run["v_g"] = v_g * scale
        ke2 = (state.masses[:, None] * state.velocities ** 2).sum()
        scale, run["xi"], run["v_xi"] = chain_half_step(ke2 if ke2.requires_grad else float(ke2), run["dof"],
                                                        self.kT, q, run["xi"], run["v_xi"], self.dt)
        return state.with_(velocities=state.velocities * scale)

    def step(self, state, energy, forces, force_fn, run):
        dt, half, dof = self.dt, self.dt / 2, run["dof"]
        if run["virial"] is None:
            run["virial"] = _np(force_fn(state.positions, cell=state.cell, stress=True)[2])
        w, q, r = self._masses(dof)
        if self.thermostat:
            state = self._chains(state, run, w, q, r)
        volume = abs(float(np.linalg.det(_np(state.cell))))
        v_g = self._cell_kick(state, run["virial"], volume, run["v_g"], w, dof, half, run)
        inv_m = 1.0 / state.masses[:, None]
        v = self._velocity_kick(state.velocities, forces * inv_m, v_g, dof, half)
        run["step"] += 1
        d_ln_v = float(np.trace(v_g)) * dt
        _check_volume(self, run, volume, d_ln_v, float(np.abs(v_g).max()) * dt, "(or W too small)")
        x, cell = self._drift(state.positions, v, state.cell, v_g, dt)
        energy, forces, virial = force_fn(x, cell=cell, stress=True)
        run["virial"] = _np(virial)
        v = self._velocity_kick(v, forces * inv_m, v_g, dof, half)
        state = state.with_(positions=x, velocities=v, cell=cell)
        run["v_g"] = self._cell_kick(state, run["virial"], volume * math.exp(d_ln_v), v_g, w, dof, half, run)
        if self.thermostat:
            state = self._chains(state, run, w, q, r)
        return state, energy, forces

    def conserved_energy(self, state, energy, run):
        """``H'`` above, eV: constant up to O(dt^2) (exactly conserved by the continuous dynamics; a
        temperature ramp or unequal per-axis targets make it drift)."""
        w, q, r = self._masses(run["dof"])
        external = self._external(_np(state.cell), float(state.volume()), run)[1]
        total = energy + state.kinetic_energy() + 0.5 * w * float((run["v_g"] ** 2).sum()) + external
        if self.thermostat:
            kT, n_g = self.kT, self._CELL_DOF[self.coupling]
            total = total + sum(0.5 * qk * v ** 2 for qk, v in zip(q, run["v_xi"])) + kT * (
                run["dof"] * run["xi"][0] + sum(run["xi"][1:]))
            total = total + sum(0.5 * rk * v ** 2 for rk, v in zip(r, run["v_eta"])) + kT * (
                n_g * run["eta"][0] + sum(run["eta"][1:]))
        return total

    def refresh(self, run):
        run["virial"] = None

    def state_dict(self, run):
        return {"xi": [float(x) for x in run["xi"]], "v_xi": [float(v) for v in run["v_xi"]],
                "eta": [float(x) for x in run["eta"]], "v_eta": [float(v) for v in run["v_eta"]],
                "v_g": run["v_g"].tolist(), "dof": run["dof"], "v0": run["v0"], "step": run["step"],
                **({"sigma": run["sigma"].tolist()} if "sigma" in run else {})}

    def load_state_dict(self, run, d):
        run.update(xi=list(d["xi"]), v_xi=list(d["v_xi"]), eta=list(d["eta"]), v_eta=list(d["v_eta"]),
                   v_g=np.array(d["v_g"], dtype=np.float64), dof=int(d["dof"]), v0=float(d["v0"]),
                   step=int(d["step"]), virial=None)
        if "sigma" in d:
            run["sigma"] = np.array(d["sigma"], dtype=np.float64)


def _np(t: torch.Tensor) -> np.ndarray:
    """A tensor as a float64 numpy array on the host."""
    return t.detach().cpu().double().numpy()


# The six entries of a lower-triangular cell (rows a, b, c) that triclinic cell rescaling moves: the three
# lengths, then the tilts b_x, c_x, c_y (LAMMPS's xy, xz, yz); noise draws come in this order.
_LOWER = ([0, 1, 2, 1, 2, 2], [0, 1, 2, 0, 0, 1])


def _lower(xi: torch.Tensor) -> torch.Tensor:
    """Six numbers per system (``(..., 6)``) placed in a lower-triangular ``(..., 3, 3)`` in :data:`_LOWER`'s order."""
    out = xi.new_zeros(xi.shape[:-1] + (3, 3))
    out[..., _LOWER[0], _LOWER[1]] = xi
    return out


def _triclinic_drift(cell: torch.Tensor, p_int: torch.Tensor, p0: torch.Tensor, c0: torch.Tensor, v0,
                     rate: float) -> torch.Tensor:
    """The drift of one step of the six strains ``e`` of :class:`CellRescaling`'s triclinic coupling, lower
    triangular ``(..., 3, 3)``: ``rate C_ii Psi_ij`` with ``Psi = C^-T (P - p 1) - (V0 / V) C0^-T t C0^-1 C``
    (``rate = beta_T dt / tau_p``; ``P`` the internal pressure tensor, ``P0 = p 1 + t`` the target, eV/Å^3)."""
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
    volume = torch.abs(torch.linalg.det(cell))
    p, tension = _tension(p0, c0)
    psi = torch.linalg.solve(cell.transpose(-1, -2), p_int - p[..., None, None] * eye)
    psi = psi - (torch.as_tensor(v0, dtype=volume.dtype, device=volume.device) / volume)[..., None, None] * (
        tension @ cell)
    return torch.tril(rate * torch.diagonal(cell, dim1=-2, dim2=-1)[..., :, None] * psi)


def _gauge_drift(kt: torch.Tensor, volume: torch.Tensor, rate: float) -> torch.Tensor:
    """The length strains' share of one step that the lower-triangular gauge adds to the triclinic drift, ``(B, 3,
    3)``: ``-(rate kT / V) diag(0, 1, 2)`` (``kt``, ``volume`` of shape ``(B,)``), the ``D d ln J / d ln C_aa`` of the
    Jacobian ``J = C_xx^2 C_yy`` of the rotations integrated out of MTK's ``det(h)^-2 dh`` (module docstring)."""
    weights = torch.tensor([0.0, 1.0, 2.0], dtype=volume.dtype, device=volume.device)
    return torch.diag_embed(-(rate * kt / volume)[:, None] * weights)


def _tension(p0: torch.Tensor, c0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The hydrostatic part ``p`` (``(...)``) of a target ``P0 = p 1 + t`` (``(..., 3, 3)``) and the tension
    ``Sigma = C0^-T t C0^-1`` of its deviatoric part ``t`` from the start cell ``C0``, in the units of ``P0``."""
    p = torch.diagonal(p0, dim1=-2, dim2=-1).mean(-1)
    c0_inv = torch.linalg.inv(c0)
    eye = torch.eye(3, dtype=p0.dtype, device=p0.device)
    return p, c0_inv.transpose(-1, -2) @ (p0 - p[..., None, None] * eye) @ c0_inv


def _affine(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Rows ``x`` ``(N, 3)`` times ``m`` (``(3, 3)``, or one per row ``(N, 3, 3)``), summed term by term in one
    order whatever the shape (a batch's replica and its lone run round alike)."""
    return x[:, 0:1] * m[..., 0, :] + x[:, 1:2] * m[..., 1, :] + x[:, 2:3] * m[..., 2, :]


def _deform_lower(cell: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The new lower-triangular cell ``C'`` after the strains ``e`` (``C'_aa = C_aa exp(e_aa)``, ``C'_ij = C_ij
    + C_ii e_ij``), the deformation ``mu = C^-1 C'`` (rows: ``r -> r mu``) and its inverse."""
    length = torch.diagonal(cell, dim1=-2, dim2=-1)
    new = (torch.tril(cell, -1) + length[..., :, None] * torch.tril(e, -1)
           + torch.diag_embed(length * torch.exp(torch.diagonal(e, dim1=-2, dim2=-1))))
    return new, torch.linalg.solve(cell, new), torch.linalg.solve(new, cell)


def _external_energy(cell: torch.Tensor, p0: torch.Tensor, c0: torch.Tensor, v0) -> torch.Tensor:
    """``p V + (V0 / 2) tr(Sigma C C^T)``, eV, with ``Sigma = C0^-T t C0^-1`` (``V0 tr(t E)`` up to a constant,
    ``E`` the Lagrangian strain from ``C0``)."""
    p, tension = _tension(p0, c0)
    gram = cell @ cell.transpose(-1, -2)
    v0 = torch.as_tensor(v0, dtype=p.dtype, device=p.device)  # a lone run's float, never through float32
    return p * torch.abs(torch.linalg.det(cell)) + v0 / 2 * (tension * gram).sum((-2, -1))


def _pressures(pressure, coupling: str) -> tuple[float, float, float]:
    """The three per-axis targets (bar) from one value or three; three different only with anisotropic
    coupling (semiisotropic: x = y); a 3x3 table is refused here (:func:`_stress_target` says why)."""
    _stress_target(pressure, coupling)
    values = [pressure] if isinstance(pressure, (int, float, np.integer, np.floating)) else list(pressure)
    if len(values) not in (1, 3) or not all(isinstance(p, (int, float, np.integer, np.floating))
                                            and not isinstance(p, bool) and math.isfinite(p) for p in values):
        raise SimsInputError(f"pressure must be a finite number in bar, or three (x, y, z) with coupling='anisotropic', "
                             f"got {pressure!r}")
    if len(values) == 3 and coupling == "isotropic" and len(set(values)) > 1:
        raise SimsInputError(f"three different target pressures {values} bar need coupling='anisotropic' (isotropic "
                             "coupling keeps the cell's shape, so it has one pressure)")
    if len(values) == 3 and coupling == "semiisotropic" and values[0] != values[1]:
        raise SimsInputError(f"semiisotropic coupling moves x and y together, so their targets must be equal; got "
                             f"{values} bar (use coupling='anisotropic' for three different ones)")
    return tuple(float(p) for p in (values * 3 if len(values) == 1 else values))


def _stress_target(pressure, coupling: str) -> np.ndarray | None:
    """A 3x3 target pressure tensor (bar) as an array (None for a number or three); symmetric, finite,
    and only with triclinic coupling."""
    if isinstance(pressure, (int, float, np.integer, np.floating)) or not all(
            isinstance(row, (list, tuple, np.ndarray)) for row in pressure):
        return None
    try:
        tensor = np.array(pressure, dtype=np.float64)
    except (TypeError, ValueError):
        tensor = None
    if tensor is None or tensor.shape != (3, 3) or not np.isfinite(tensor).all():
        raise SimsInputError(f"a pressure tensor must be 3x3 finite numbers in bar, got {pressure!r}")
    if not np.allclose(tensor, tensor.T, rtol=0, atol=1e-9 * max(1.0, float(np.abs(tensor).max()))):
        raise SimsInputError(f"a pressure tensor must be symmetric (a torque would rotate the cell), got {tensor.tolist()}")
    if coupling != "triclinic":
        raise SimsInputError(f"a 3x3 target pressure needs coupling='triclinic' (the full cell), got {coupling!r}")
    return tensor


def _pressure_tensor(pressure) -> np.ndarray:
    """A triclinic target as a 3x3 array, bar: one number (or three equal ones) is hydrostatic; a 3x3 is checked
    by :func:`_stress_target`."""
    tensor = _stress_target(pressure, "triclinic")
    if tensor is not None:
        return tensor
    values = [pressure] if isinstance(pressure, (int, float, np.integer, np.floating)) else list(pressure)
    if len(values) == 3 and len(set(values)) > 1:
        raise SimsInputError(f"triclinic coupling takes one pressure or a symmetric 3x3 pressure tensor, got {values} "
                             "bar: for per-axis targets give the tensor [[x, 0, 0], [0, y, 0], [0, 0, z]] (or use "
                             "coupling='anisotropic' on an orthorhombic cell)")
    return _pressures(pressure, "isotropic")[0] * np.eye(3)


def _check_limits(pressure, targets: tuple[float, ...], max_volume_ratio: float) -> None:
    """Refuse a volume limit that is no limit; warn about a negative target (at the barostat's caller)."""
    if not max_volume_ratio > 1:
        raise SimsInputError(f"max_volume_ratio must be > 1, got {max_volume_ratio}")
    if min(targets) < 0:
        warnings.warn(f"target pressure {pressure} bar is negative: a liquid under tension may cavitate "
                      "(the volume then runs away and the run stops) and a gas has no state there",
                      NegativePressureWarning, stacklevel=3)


def _check_cell(state, coupling: str, *, lower: bool = False) -> None:
    """Refuse a state whose cell a barostat with ``coupling`` cannot act on (:func:`check_cell`)."""
    check_cell(state.pbc.cpu().numpy(), _np(state.cell), coupling, lower=lower)


def check_cell(pbc: np.ndarray, cell: np.ndarray, coupling: str, *, lower: bool = False) -> None:
    """Refuse a cell that a barostat cannot act on: not periodic in 3-D, triclinic under per-axis
    coupling, (semiisotropic) with a first or second vector out of the xy plane, or (``lower``: triclinic
    cell rescaling) not lower triangular with a positive diagonal (LAMMPS's orientation: ``a`` along x,
    ``b`` in the xy plane, a right-handed cell).

    Raises
    ------
    SimsInputError
        Saying what is wrong and what coupling or cell would do.
    """
    pbc, cell = np.asarray(pbc, dtype=bool), np.asarray(cell, dtype=np.float64)
    if not (pbc.all() and abs(float(np.linalg.det(cell))) > 1e-12):
        raise SimsInputError(f"a barostat needs a cell periodic in all three directions (pbc={pbc.tolist()}): "
                             "a non-periodic direction has no box length for the pressure to act on. Use an NVT "
                             "ensemble, or make the system periodic (a slab or molecule in vacuum cannot be "
                             "barostatted this way)")
    off = np.abs(cell - np.diag(np.diagonal(cell))).max()
    scale = np.abs(cell).max()
    if coupling == "semiisotropic" and np.abs(cell[:2, 2]).max() > 1e-9 * scale:
        raise SimsInputError("semiisotropic coupling scales the xy plane and z apart, so the first two cell vectors "
                             f"must lie in the xy plane; this cell has z components {cell[:2, 2].tolist()} Å: rotate "
                             "the structure (ase.Atoms.rotate / ase.build.niggli_reduce and a standard orientation), "
                             "or use coupling='isotropic' or 'anisotropic'")
    if coupling == "anisotropic" and off > 1e-9 * scale:
        raise SimsInputError("anisotropic coupling scales the three box lengths of an orthorhombic cell, but this "
                             f"cell is triclinic (off-diagonal entries up to {off:.3g} Å): use "
                             "coupling='isotropic' (keeps the shape) or 'triclinic' (the full cell), or start "
                             "from an orthorhombic cell")
    if lower and (np.abs(cell[np.triu_indices(3, 1)]).max() > 1e-9 * scale or not (np.diagonal(cell) > 0).all()):
        raise SimsInputError("triclinic cell rescaling moves the six entries of a lower-triangular cell (a along x, b in "
                             f"the xy plane, positive diagonal: LAMMPS's orientation), but this cell is {cell.tolist()} Å: "
                             "rotate the structure first, atoms.set_cell(atoms.cell.standard_form()[0], "
                             "scale_atoms=True) (and swap two cell vectors of a left-handed cell)")


def _check_volume(barostat, run, volume: float, d_ln_volume: float, d_strain: float, hint: str, *,
                  system: int | None = None, pressure=None, temperature: float | None = None) -> None:
    """Stop the run (:class:`SimulationStopped`, before the step is taken: the state stays the last good one)
    when the volume leaves ``[V0 / ratio, V0 * ratio]`` or a strain changes by 0.25 or more in one step
    (``system``, ``pressure``, ``temperature``: the system of a batch that failed, and its own targets)."""
    new_volume = volume * math.exp(d_ln_volume) if math.isfinite(d_ln_volume) else math.nan
    ratio = new_volume / run["v0"]
    if math.isfinite(new_volume) and d_strain < 0.25 and 1 / barostat.max_volume_ratio < ratio < barostat.max_volume_ratio:
        return
    what = "collapsing" if not ratio > 1 else "exploding"
    pressure = barostat.pressure if pressure is None else pressure
    temperature = barostat.temperature if temperature is None else temperature
    raise SimulationStopped(
        f"{'' if system is None else f'system {system}: '}the cell is {what} at barostat step {run['step']}: volume "
        f"{volume:.6g} -> {new_volume:.6g} Å^3 "
        f"(start {run['v0']:.6g} Å^3, limit a factor {barostat.max_volume_ratio:g}, at most 28 % per step). "
        f"The target pressure {pressure} bar may have no stable state at {temperature:g} K for this "
        f"potential (cavitation, vaporisation, or a potential without a repulsive core), or tau_p is too short {hint} "
        "for this system")
