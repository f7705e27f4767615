"""Fewest-switches surface hopping (FSSH) and an exact wavepacket reference on model Hamiltonians.

A model is a small *diabatic* Hamiltonian ``H_d(x)`` (an ``n x n`` symmetric matrix per geometry);
everything else follows from it: adiabatic energies are its eigenvalues, their gradients come from
Hellmann-Feynman, ``dE_k/dx = (U^T dH_d/dx U)_kk``, and the nonadiabatic coupling vectors are
``d_kl = (U^T dH_d/dx U)_kl / (E_l - E_k)``. ``dH_d/dx`` is the autograd derivative of the
diabatic matrix, never a second hand-written formula.

Units are **atomic units** throughout this module (hartree, bohr, electron masses, a.u. of time
= 0.0242 fs, momentum in hbar/bohr), as in Tully's paper: his models are defined in them and his
scattering results are quoted against momentum in a.u. This differs from the rest of ``sims``
(eV, Å, fs); nothing here mixes the two.

- :func:`tully_model` returns Tully's three 1-D two-state models (single avoided crossing, dual
  avoided crossing, extended coupling with reflection), mass 2000.
- :class:`TorsionalIsomerisation` is a two-state cis-trans isomerisation of a 4-atom chain (12
  coordinates, per-atom masses) with a conical intersection: the many-coordinate test bed
  (ensembles and yields in :mod:`sims.hopping_ensemble`).
- :func:`exact_scattering` propagates a Gaussian wavepacket on a grid with the split-operator
  (FFT) method and returns the probabilities of transmission and reflection on each adiabatic state.
- :class:`FSSH` integrates a batch of trajectories (torch tensors, one seeded local generator);
  :func:`fssh_scattering` gives the same four probabilities from an ensemble.

References
----------
J. C. Tully, J. Chem. Phys. 93, 1061 (1990): the models (Eqs. 21-23), the fewest-switches
hopping probability (Eqs. 8, 14-19), momentum adjustment along the coupling vector.
G. Granucci and M. Persico, J. Chem. Phys. 126, 134114 (2007): energy-based decoherence (EDC).
S. Mai, P. Marquetand and L. González, Int. J. Quantum Chem. 115, 1215 (2015): the SHARC hop
probabilities from the step's propagator (``hop="sharc"``).
M. D. Feit, J. A. Fleck and A. Steiger, J. Comput. Phys. 47, 412 (1982): split-operator propagation.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch

from sims.cv import Dihedral
from sims.errors import SimsInputError
from sims.integrators import make_generator

__all__ = ["CHANNELS", 
    "DiabaticModel", "SingleAvoidedCrossing", "DualAvoidedCrossing", "ExtendedCoupling", "tully_model",
    "TorsionalIsomerisation", "chain_internals", "AMU", "KB_HARTREE", "AU_TIME_FS",
    "Adiabatic", "DegenerateStatesWarning", "exact_scattering", "FSSH", "FSSHResult", "fssh_scattering",
    "HOP_SCHEMES", "sharc_hop_probabilities",
]

#: Keys of the dicts of :func:`exact_scattering` and :func:`fssh_scattering`.
CHANNELS = ("transmission_lower", "transmission_upper", "reflection_lower", "reflection_upper")


class DegenerateStatesWarning(UserWarning):
    """Two adiabatic states came closer than the gap floor; their coupling was computed with the floor."""


class Adiabatic(NamedTuple):
    """Adiabatic quantities at a batch of geometries (atomic units).

    Attributes
    ----------
    energies : torch.Tensor, shape (B, n)
        Adiabatic energies (hartree), ascending.
    gradients : torch.Tensor, shape (B, D, n)
        ``dE_k/dx`` (hartree/bohr); forces on state k are ``-gradients[..., k]``.
    couplings : torch.Tensor, shape (B, D, n, n)
        Nonadiabatic coupling vectors ``d_kl = <k|d/dx|l>`` (1/bohr), antisymmetric in k, l.
    vectors : torch.Tensor, shape (B, n, n)
        Eigenvectors as columns (diabatic -> adiabatic), signs aligned with ``reference`` if given.
    """

    energies: torch.Tensor
    gradients: torch.Tensor
    couplings: torch.Tensor
    vectors: torch.Tensor


class DiabaticModel:
    """Base class of model Hamiltonians given by a diabatic matrix (atomic units).

    Subclasses set ``n_states``, ``ndim`` (nuclear degrees of freedom), ``mass`` (electron masses:
    one number for every coordinate, or a sequence of ``ndim`` numbers, one per coordinate, e.g.
    each atom's mass three times) and ``interaction_range`` (bohr: outside
    ``|x| < interaction_range`` the states no longer couple, which scattering uses for where to
    start and when to stop), and implement :meth:`diabatic`.
    """

    n_states: int = 2
    ndim: int = 1
    mass: float = 2000.0
    interaction_range: float = 10.0

    def diabatic(self, x: torch.Tensor) -> torch.Tensor:
        """Diabatic matrix (hartree), shape (B, n, n), at positions ``x`` of shape (B, D) in bohr."""
        raise NotImplementedError

    def diabatic_gradient(self, x: torch.Tensor) -> torch.Tensor:
        """``dH_d/dx`` (hartree/bohr), shape (B, D, n, n), by autograd of :meth:`diabatic`."""
        return self._diabatic_and_gradient(x)[1]

    def _diabatic_and_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # One evaluation gives both; neither keeps a graph (a learned model's parameters would
        # otherwise chain every step of a trajectory into one growing graph).
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            h = self.diabatic(xg)
            n = h.shape[-1]
            grad = torch.zeros(x.shape + (n, n), dtype=x.dtype, device=x.device)
            for i in range(n):
                for j in range(i, n):
                    (g,) = torch.autograd.grad(h[:, i, j].sum(), xg, retain_graph=True, allow_unused=True)
                    if g is not None:
                        grad[..., i, j] = g
                        grad[..., j, i] = g
        return h.detach(), grad

    def adiabatic(self, x: torch.Tensor, *, reference: torch.Tensor | None = None,
                  min_gap: float = 1e-6) -> Adiabatic:
        """Adiabatic energies, gradients and couplings at ``x`` (B, D) bohr by diagonalisation.

        Parameters
        ----------
        x : torch.Tensor, shape (B, D)
            Positions (bohr).
        reference : torch.Tensor, shape (B, n, n), optional
            Eigenvectors at a nearby geometry (the previous step); each eigenvector's sign is chosen
            to overlap positively with it, so that amplitudes and couplings stay continuous.
        min_gap : float
            Gap floor (hartree). Where ``|E_l - E_k| < min_gap`` the coupling is computed with
            ``min_gap`` in place of the gap (it diverges at a true degeneracy) and a
            :class:`DegenerateStatesWarning` is issued.
        """
        h, dh = self._diabatic_and_gradient(x)
        energies, vectors = torch.linalg.eigh(h)
        if reference is not None:
            overlap = (reference * vectors).sum(dim=-2)
            vectors = vectors * torch.where(overlap < 0, -1.0, 1.0).to(vectors.dtype).unsqueeze(-2)
        # Hellmann-Feynman: the matrix of dH_d/dx in the adiabatic basis.
        m = vectors.transpose(-1, -2).unsqueeze(1) @ dh @ vectors.unsqueeze(1)
        gradients = torch.diagonal(m, dim1=-2, dim2=-1)
        gap = energies.unsqueeze(-2) - energies.unsqueeze(-1)  # [k, l] = E_l - E_k
        off = ~torch.eye(energies.shape[-1], dtype=torch.bool, device=x.device)
        small = (gap.abs() < min_gap) & off
        if bool(small.any()):
            warnings.warn(f"adiabatic states closer than the gap floor min_gap={min_gap} hartree at "
                          f"{int(small.any(-1).any(-1).sum())} geometries: their couplings use the floor "
                          "(they diverge at a degeneracy); results near it are unreliable",
                          DegenerateStatesWarning, stacklevel=2)
            sign = torch.where(gap >= 0, 1.0, -1.0).to(gap.dtype)
            gap = torch.where(small, sign * min_gap, gap)
        couplings = torch.where(off, m / torch.where(off, gap, 1.0).unsqueeze(1), 0.0)
        return Adiabatic(energies, gradients, couplings, vectors)


class SingleAvoidedCrossing(DiabaticModel):
    """Tully's model 1, a single avoided crossing (Tully 1990, Eq. 21), atomic units.

    ``V11 = A (1 - exp(-B x))`` for x > 0, ``-A (1 - exp(B x))`` for x < 0; ``V22 = -V11``;
    ``V12 = C exp(-D x^2)``. Defaults: A = 0.01, B = 1.6, C = 0.005, D = 1.0, mass 2000.
    """

    def __init__(self, *, A: float = 0.01, B: float = 1.6, C: float = 0.005, D: float = 1.0,
                 mass: float = 2000.0) -> None:
        self.A, self.B, self.C, self.D, self.mass = A, B, C, D, mass

    def diabatic(self, x: torch.Tensor) -> torch.Tensor:
        x = x[..., 0]
        v11 = self.A * torch.sign(x) * -torch.expm1(-self.B * x.abs())
        v12 = self.C * torch.exp(-self.D * x * x)
        return torch.stack([torch.stack([v11, v12], -1), torch.stack([v12, -v11], -1)], -2)


class DualAvoidedCrossing(DiabaticModel):
    """Tully's model 2, a dual avoided crossing (Tully 1990, Eq. 22), atomic units.

    ``V11 = 0``, ``V22 = -A exp(-B x^2) + E0``, ``V12 = C exp(-D x^2)``.
    Defaults: A = 0.10, B = 0.28, E0 = 0.05, C = 0.015, D = 0.06, mass 2000.
    """

    def __init__(self, *, A: float = 0.10, B: float = 0.28, E0: float = 0.05, C: float = 0.015,
                 D: float = 0.06, mass: float = 2000.0) -> None:
        self.A, self.B, self.E0, self.C, self.D, self.mass = A, B, E0, C, D, mass

    def diabatic(self, x: torch.Tensor) -> torch.Tensor:
        x = x[..., 0]
        v11 = torch.zeros_like(x)
        v22 = -self.A * torch.exp(-self.B * x * x) + self.E0
        v12 = self.C * torch.exp(-self.D * x * x)
        return torch.stack([torch.stack([v11, v12], -1), torch.stack([v12, v22], -1)], -2)


class ExtendedCoupling(DiabaticModel):
    """Tully's model 3, extended coupling with reflection (Tully 1990, Eq. 23), atomic units.

    ``V11 = A``, ``V22 = -A``; ``V12 = B exp(C x)`` for x < 0, ``B (2 - exp(-C x))`` for x > 0.
    Defaults: A = 6e-4, B = 0.10, C = 0.90, mass 2000. The lower adiabatic state on the left is the
    diabatic state 2.
    """

    def __init__(self, *, A: float = 6e-4, B: float = 0.10, C: float = 0.90, mass: float = 2000.0) -> None:
        self.A, self.B, self.C, self.mass = A, B, C, mass

    def diabatic(self, x: torch.Tensor) -> torch.Tensor:
        x = x[..., 0]
        e = torch.exp(-self.C * x.abs())
        v12 = self.B * torch.where(x < 0, e, 2.0 - e)
        a = torch.full_like(x, self.A)
        return torch.stack([torch.stack([a, v12], -1), torch.stack([v12, -a], -1)], -2)


#: Electron masses per unified atomic mass unit (CODATA 2018).
AMU = 1822.888486
#: Boltzmann's constant in hartree/K (CODATA 2018).
KB_HARTREE = 3.166811563e-6
#: Atomic unit of time in fs (CODATA 2018).
AU_TIME_FS = 0.02418884326585747


def chain_internals(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bond lengths (B, 3) bohr, bond angles (B, 2) rad and dihedral (B,) rad in (-pi, pi] of 4-atom chains.

    ``x`` has shape (B, 12): atoms 0-1-2-3, Cartesian coordinates in bohr. The dihedral is the
    IUPAC torsion of 0-1-2-3 (0: cis, +-pi: trans), :class:`sims.cv.Dihedral` (``atan2`` of the
    Blondel-Karplus form, the sign of ASE's ``get_dihedral``), so its gradient is finite at every
    non-linear geometry.
    """
    r = x.reshape(x.shape[0], 4, 3)
    b = r[:, 1:] - r[:, :-1]  # (B, 3, 3) bond vectors
    lengths = b.norm(dim=-1)
    cos_a = -(b[:, :-1] * b[:, 1:]).sum(-1) / (lengths[:, :-1] * lengths[:, 1:])
    angles = torch.acos(cos_a.clamp(-1.0, 1.0))
    dihedral = Dihedral(0, 1, 2, 3)(r)
    return lengths, angles, dihedral


class TorsionalIsomerisation(DiabaticModel):
    """A two-state cis-trans photoisomerisation model of a 4-atom chain C-N=N-C (atomic units).

    A stand-in for azobenzene: the two diabatic states of Hahn and Stock's retinal model (a torsion
    ``phi`` and a coupling mode; J. Phys. Chem. B 104, 1146 (2000), Eq. 1 and Table 1) written on the
    internal coordinates of a chain of four atoms (12 Cartesian coordinates, bohr)::

        U   = k_r/2 sum_b (r_b - r0)^2 + k_a/2 sum_a (a - a0)^2           (common to both states)
        q   = (a_1 + a_2)/2 - a0                                            (symmetric bend, rad)
        V00 = U + W0/2 (1 - cos phi)                                        (cis well, trans high)
        V11 = U + E1 - W1/2 (1 - cos phi) + kappa q                         (falls towards trans)
        V01 = lam q

    The ground adiabatic state has a cis (``phi = 0``) and a trans (``phi = pi``) basin separated by
    a barrier near ``W0/2`` at ``phi = pi/2``; the two surfaces touch where ``q = 0`` and
    ``W0/2 (1 - cos phi) = E1 - W1/2 (1 - cos phi)``, ``cos phi = 1 - 2 E1 / (W0 + W1)`` (phi = 95.7
    deg with the defaults): a conical intersection whose branching space is the torsion and the
    bend. Excited at the cis geometry, the chain twists on the upper state, decays near the seam and
    ends on either side: :meth:`is_product` (``|phi| > pi/2``) gives the trans yield.

    Defaults (hartree): E1 = 2.58 eV, W0 = 3.6 eV, W1 = 1.09 eV (Hahn and Stock's values),
    lam = 0.06, kappa = 0.03 per radian of bend (their lambda = 0.19 eV and kappa = 0.1 eV per unit of
    their dimensionless mode at the bend stiffness here); k_r = 0.5 hartree/bohr^2, r0 = 2.5 bohr,
    k_a = 0.25 hartree/rad^2, a0 = 120 deg; masses 12, 14, 14, 12 u. The energy depends on internal
    coordinates only (invariant under translation, rotation, reflection and reversal of the chain).
    """

    n_states = 2
    ndim = 12
    numbers = (6, 7, 7, 6)

    def __init__(self, *, E1: float = 2.58 / 27.211386, W0: float = 3.6 / 27.211386, W1: float = 1.09 / 27.211386,
                 lam: float = 0.06, kappa: float = 0.03, k_bond: float = 0.5, r0: float = 2.5,
                 k_angle: float = 0.25, a0: float = 2 * math.pi / 3,
                 masses: tuple[float, ...] = (12.0, 14.0, 14.0, 12.0)) -> None:
        self.E1, self.W0, self.W1, self.lam, self.kappa = E1, W0, W1, lam, kappa
        self.k_bond, self.r0, self.k_angle, self.a0 = k_bond, r0, k_angle, a0
        if len(masses) != 4 or not all(m > 0 for m in masses):
            raise SimsInputError(f"masses must be four positive numbers (u), got {masses!r}")
        self.masses = tuple(float(m) for m in masses)
        self.mass = [m * AMU for m in self.masses for _ in range(3)]

    def diabatic(self, x: torch.Tensor) -> torch.Tensor:
        lengths, angles, phi = chain_internals(x)
        u = 0.5 * self.k_bond * ((lengths - self.r0) ** 2).sum(-1) + 0.5 * self.k_angle * ((angles - self.a0) ** 2).sum(-1)
        q = angles.mean(-1) - self.a0
        twist = 1 - torch.cos(phi)
        v00 = u + 0.5 * self.W0 * twist
        v11 = u + self.E1 - 0.5 * self.W1 * twist + self.kappa * q
        v01 = self.lam * q
        return torch.stack([torch.stack([v00, v01], -1), torch.stack([v01, v11], -1)], -2)

    def geometry(self, dihedral: float = 0.0, *, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """Coordinates (1, 12) bohr of the chain at bonds ``r0``, angles ``a0`` and the given dihedral (rad)."""
        r0, a = self.r0, self.a0
        p1 = [0.0, 0.0, 0.0]
        p2 = [r0, 0.0, 0.0]
        p0 = [r0 * math.cos(a), r0 * math.sin(a), 0.0]
        p3 = [r0 - r0 * math.cos(a), r0 * math.sin(a) * math.cos(dihedral), r0 * math.sin(a) * math.sin(dihedral)]
        return torch.tensor([p0 + p1 + p2 + p3], dtype=dtype, device=device)

    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """The product coordinate: the dihedral 0-1-2-3 (rad, (-pi, pi]), shape (B,)."""
        return chain_internals(x)[2]

    def is_product(self, x: torch.Tensor) -> torch.Tensor:
        """True where the chain is trans (``|phi| > pi/2``), shape (B,)."""
        return self.descriptor(x).abs() > 0.5 * math.pi


def tully_model(number: int) -> DiabaticModel:
    """Tully's model ``number`` (1, 2 or 3) with his parameters (J. Chem. Phys. 93, 1061 (1990)).

    Examples
    --------
    >>> import torch
    >>> m = tully_model(1)
    >>> m.adiabatic(torch.zeros(1, 1, dtype=torch.float64)).energies
    tensor([[-0.0050,  0.0050]], dtype=torch.float64)
    """
    models = {1: SingleAvoidedCrossing, 2: DualAvoidedCrossing, 3: ExtendedCoupling}
    if isinstance(number, bool) or number not in models:
        raise SimsInputError(f"Tully's models are numbered 1, 2 and 3, got {number!r}")
    return models[number]()


def _check_model(model: DiabaticModel, momentum: float) -> float:
    if not isinstance(model, DiabaticModel):
        raise SimsInputError(f"model must be a sims.surface_hopping.DiabaticModel (tully_model(1|2|3)), "
                             f"got {type(model).__name__}")
    if model.ndim != 1:
        raise SimsInputError(f"scattering is defined for 1-D models, got a model with ndim={model.ndim}")
    momentum = float(momentum)
    if not (math.isfinite(momentum) and momentum > 0):
        raise SimsInputError(f"momentum must be > 0 (hbar/bohr), got {momentum}")
    return momentum


def exact_scattering(model: DiabaticModel, momentum: float, *, initial_state: int = 0,
                     spacing: float | None = None, timestep: float | None = None,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype = torch.float64) -> dict[str, float]:
    """Exact scattering probabilities of a 1-D multi-state model by split-operator wavepacket propagation.

    The packet ``psi(x) ~ exp(-(x - x0)^2 / sigma^2 + i k x)`` with ``sigma = 20 / k`` (Tully's choice)
    starts on adiabatic state ``initial_state`` at ``x0 = -(R + 3 sigma)``, ``R`` the model's
    ``interaction_range``. It is propagated by ``exp(-iV dt/2) exp(-iT dt) exp(-iV dt/2)``
    (T in momentum space by FFT, V the diabatic matrix exponentiated at each grid point). Outgoing
    probability is removed by smooth absorbing masks at both ends of the grid and counted there on
    each adiabatic state; the run ends when less than 1e-5 of the norm is left inside ``|x| < R``.

    Parameters
    ----------
    model : DiabaticModel
        A 1-D model (``tully_model(1 | 2 | 3)``).
    momentum : float
        Mean initial momentum k (hbar/bohr, atomic units), > 0.
    initial_state : int
        Adiabatic state (0 = lower) the packet starts on.
    spacing : float, optional
        Grid spacing (bohr); default ``pi / (2 p_max)`` with ``p_max`` the largest momentum
        energetically reachable.
    timestep : float, optional
        Time step (a.u.); default such that the largest kinetic and potential phase per step is 0.5 rad.
    device, dtype
        Where and in which real precision to compute (complex of the same precision).

    Returns
    -------
    dict
        ``transmission_lower``, ``transmission_upper``, ``reflection_lower``, ``reflection_upper``
        (probabilities; for more than two states "upper" sums all excited states) and
        ``remaining`` (norm still inside the interaction region at the end, normally < 1e-5).

    References
    ----------
    M. D. Feit, J. A. Fleck and A. Steiger, J. Comput. Phys. 47, 412 (1982); D. Kosloff and
    R. Kosloff, J. Comput. Phys. 52, 35 (1983). Packet width: Tully, J. Chem. Phys. 93, 1061 (1990).
    """
    k = _check_model(model, momentum)
    n = model.n_states
    if isinstance(initial_state, bool) or not isinstance(initial_state, int) or not 0 <= initial_state < n:
        raise SimsInputError(f"initial_state must be an adiabatic state index 0..{n - 1}, got {initial_state!r}")
    m = float(model.mass)
    r = float(model.interaction_range)
    sigma = 20.0 / k
    x0 = -(r + 3.0 * sigma)
    absorber = 20.0
    # Potential spread over the region the packet can visit sets the fastest momentum on the grid.
    probe = torch.linspace(-r - 5.0, r + 5.0, 2001, dtype=dtype, device=device).unsqueeze(-1)
    e_probe = torch.linalg.eigvalsh(model.diabatic(probe))
    e_start = float(model.adiabatic(torch.full((1, 1), x0, dtype=dtype, device=device)).energies[0, initial_state])
    p_top = k + 6.0 / sigma
    e_total = p_top ** 2 / (2 * m) + e_start
    p_max = math.sqrt(2 * m * max(e_total - float(e_probe.min()), p_top ** 2 / (2 * m)))
    dx = spacing if spacing is not None else math.pi / (2.0 * p_max)
    half = abs(x0) + 3.0 * sigma + absorber
    points = 1 << math.ceil(math.log2(2 * half / dx))
    dx = 2 * half / points
    x = -half + dx * torch.arange(points, dtype=dtype, device=device)
    p = 2 * math.pi * torch.fft.fftfreq(points, d=dx, dtype=dtype, device=device)
    e_span = float(e_probe.max() - e_probe.min()) + 1e-12
    dt = timestep if timestep is not None else 0.5 / max(p_max ** 2 / (2 * m), e_span)

    energies, vectors = torch.linalg.eigh(model.diabatic(x.unsqueeze(-1)))
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    u = vectors.to(cdtype)
    half_v = u @ torch.diag_embed(torch.exp(-0.5j * dt * energies.to(cdtype))) @ u.transpose(-1, -2)
    kinetic = torch.exp(-1j * dt * (p ** 2 / (2 * m))).to(cdtype)
    # cos^(1/8) mask: smooth enough that reflection off it stays below 1e-4 at these wavelengths.
    depth = ((x.abs() - (half - absorber)) / absorber).clamp(0, 1)
    mask = torch.cos(0.5 * math.pi * depth) ** 0.125

    envelope = torch.exp(-((x - x0) / sigma) ** 2 + 1j * k * x).to(cdtype)
    psi = envelope.unsqueeze(-1) * u[:, :, initial_state]
    psi = psi / torch.sqrt((psi.abs() ** 2).sum() * dx)
    right = x > 0
    inside = x.abs() < r
    absorbed = torch.zeros(2, n, dtype=dtype, device=device)  # [left, right] x state
    speed_min = max(k / m * 0.2, 1e-6)
    max_steps = int(4 * (2 * half) / speed_min / dt) + 1
    for step in range(max_steps):
        psi = (half_v @ psi.unsqueeze(-1)).squeeze(-1)
        psi = torch.fft.ifft(kinetic.unsqueeze(-1) * torch.fft.fft(psi, dim=0), dim=0)
        psi = (half_v @ psi.unsqueeze(-1)).squeeze(-1)
        dens = (u.conj().transpose(-1, -2) @ psi.unsqueeze(-1)).squeeze(-1).abs() ** 2 * dx
        lost = dens * (1 - mask ** 2).unsqueeze(-1)
        absorbed[0] += lost[~right].sum(0)
        absorbed[1] += lost[right].sum(0)
        psi = psi * mask.unsqueeze(-1)
        if step % 20 == 0 and step * dt * k / m > abs(x0):
            if float((psi[inside].abs() ** 2).sum() * dx) < 1e-5:
                break
    dens = (u.conj().transpose(-1, -2) @ psi.unsqueeze(-1)).squeeze(-1).abs() ** 2 * dx
    left_total = absorbed[0] + dens[~right].sum(0)
    right_total = absorbed[1] + dens[right].sum(0)
    remaining = float((dens[inside]).sum())
    if remaining > 1e-3:
        warnings.warn(f"exact_scattering: {remaining:.2g} of the norm still inside |x| < {r} bohr after "
                      f"{max_steps} steps; probabilities count it by the sign of x", RuntimeWarning, stacklevel=2)
    return {"transmission_lower": float(right_total[0]), "transmission_upper": float(right_total[1:].sum()),
            "reflection_lower": float(left_total[0]), "reflection_upper": float(left_total[1:].sum()),
            "remaining": remaining}


class FSSHResult(NamedTuple):
    """Final state of an FSSH batch (atomic units).

    Attributes
    ----------
    positions, momenta : torch.Tensor, shape (B, D)
        bohr, hbar/bohr.
    active : torch.Tensor, shape (B,), int64
        Active adiabatic state of each trajectory.
    amplitudes : torch.Tensor, shape (B, n), complex
        Electronic amplitudes in the adiabatic basis.
    n_hops, n_frustrated : torch.Tensor, shape (B,), int64
        Hops made and hops refused for lack of kinetic energy.
    time : float
        Time integrated (a.u.).
    """

    positions: torch.Tensor
    momenta: torch.Tensor
    active: torch.Tensor
    amplitudes: torch.Tensor
    n_hops: torch.Tensor
    n_frustrated: torch.Tensor
    time: float


#: Hop probability schemes of :class:`FSSH`.
HOP_SCHEMES = ("tully", "sharc")


def sharc_hop_probabilities(c_old: torch.Tensor, c_new: torch.Tensor, propagator: torch.Tensor,
                            active: torch.Tensor) -> torch.Tensor:
    """SHARC hop probabilities over one step from the amplitudes and the step's propagator.

    With ``c(t + dt) = P c(t)`` and active state ``b`` (Mai, Marquetand and González, Int. J. Quantum
    Chem. 115, 1215 (2015), the hopping probabilities from the propagator)::

        h_ba = (1 - |c_b(t+dt)|^2 / |c_b(t)|^2) Re[c_a(t+dt) P*_ab c*_b(t)]
               / (|c_b(t)|^2 - Re[c_b(t+dt) P*_bb c*_b(t)])              (a != b)

    set to 0 where negative, and to 0 for every ``a`` when the active population did not decrease.
    For a unitary ``P`` the numerators summed over ``a != b`` equal the denominator, so the
    probabilities of a step sum to the fractional loss ``1 - |c_b(t+dt)|^2 / |c_b(t)|^2`` of the
    active population (when none is negative): unlike Tully's, they need no flux integrated over
    substeps and hold for any propagator, however the step was integrated.

    Parameters
    ----------
    c_old, c_new : torch.Tensor, shape (B, n), complex
        Amplitudes at the start and the end of the step.
    propagator : torch.Tensor, shape (B, n, n), complex
        ``P`` with ``c_new = P c_old``.
    active : torch.Tensor, shape (B,), long
        Active state of each trajectory.

    Returns
    -------
    torch.Tensor, shape (B, n), real
        Probability of a hop from the active state to each state in this step (0 for the active one),
        each in [0, 1].
    """
    idx = active.unsqueeze(-1)
    cb_old = c_old.gather(-1, idx).squeeze(-1)
    cb_new = c_new.gather(-1, idx).squeeze(-1)
    pop_old = cb_old.abs() ** 2
    pop_new = cb_new.abs() ** 2
    p_b = propagator.gather(-1, idx.unsqueeze(1).expand(-1, propagator.shape[1], 1)).squeeze(-1)  # P[:, :, b]
    num = (c_new * p_b.conj() * cb_old.conj().unsqueeze(-1)).real
    num_b = num.gather(-1, idx).squeeze(-1)
    den = pop_old - num_b
    loss = 1 - pop_new / pop_old.clamp_min(1e-30)
    # No hop where the active population did not decrease (loss <= 0) or nothing left it (den ~ 0).
    ok = (loss > 0) & (den > 1e-30)
    h = torch.where(ok.unsqueeze(-1), loss.unsqueeze(-1) * num / torch.where(ok, den, 1.0).unsqueeze(-1), 0.0)
    return h.clamp(0.0, 1.0).scatter(-1, idx, 0.0)


class FSSH:
    """Tully's fewest-switches surface hopping for a batch of independent trajectories (atomic units).

    Each step: velocity Verlet of the nuclei on the active adiabatic surface; the electronic
    amplitudes ``i c_k' = E_k c_k - i sum_j (v . d_kj) c_j`` integrated by RK4 in
    ``electronic_substeps`` substeps with energies and ``v . d`` interpolated linearly across the
    step; the hop probability ``g_a->j = sum over substeps of dtau * (-2 Re(c_j^* c_a v . d_ja)) / |c_a|^2``
    (Tully 1990, Eq. 19 in the adiabatic basis, negative values set to 0); one uniform number per
    trajectory and step chooses the hop. A hop conserves energy by changing the momentum along the
    coupling vector ``d_aj`` (with one mass per coordinate, ``p -> p + gamma d_aj`` with the kinetic
    energy changed by the gap, Hammes-Schiffer and Tully 1994). A *frustrated* hop (not enough
    kinetic energy along ``d_aj``) is refused;
    with ``frustrated="keep"`` (Tully 1990) the momentum is kept, with ``"reverse"`` its component
    along ``d_aj`` is reversed (Jasper and Truhlar's "delta-V" variant, which helps model 3's reflection).

    Parameters
    ----------
    model : DiabaticModel
    positions, momenta : torch.Tensor, shape (B, D) or (B,) for 1-D
        Initial positions (bohr) and momenta (hbar/bohr).
    n_states : int, optional
        The number of states the caller expects; refused if the model has another.
    initial_state : int
        Adiabatic state (0 = lowest) every trajectory starts on, with amplitude 1.
    timestep : float
        Nuclear time step (a.u. of time).
    electronic_substeps : int
        RK4 substeps of the amplitudes per nuclear step.
    hop : {"tully", "sharc"}
        Hop probabilities: ``"tully"``, the fewest-switches flux ``-2 Re(c_j c_a^* v.d_ja) / |c_a|^2``
        integrated over the substeps (Tully 1990, Eq. 19); ``"sharc"``, once per step from the
        change of the active population and the step's propagator (the product of the substeps'
        RK4 matrices; Mai, Marquetand and González 2015, :func:`sharc_hop_probabilities`). Both give
        the same dynamics to within statistics; SHARC's needs no flux and its probabilities sum
        to the active state's population loss.
    decoherence : {"edc", None}
        Energy-based decoherence (Granucci and Persico 2007): after each step the amplitudes of the
        inactive states decay with ``tau_ka = (1 + C / E_kin) / |E_k - E_a|`` and the active one is
        renormalised; ``C = decoherence_energy``.
    decoherence_energy : float, optional
        ``C`` of the energy-based decoherence (hartree; default 0.1, Granucci and Persico's value).
        Read only with ``decoherence="edc"``: given without it, it is refused.
    frustrated : {"keep", "reverse"}
        What a frustrated hop does to the momentum (above).
    norm_tolerance : float
        Largest allowed drift of ``sum |c_k|^2`` from 1 in one step; a larger drift means the step is
        too long for the electronic integration, and the run stops with :class:`SimsInputError`.
    min_gap : float
        Gap floor (hartree) for the couplings (see :meth:`DiabaticModel.adiabatic`).
    seed : int, optional
        Seed of the local generator of the hop draws.
    friction, temperature : float
        A Langevin bath on the nuclei (friction in 1/a.u. of time, temperature in K): after each
        step the momenta relax as ``p <- c p + sqrt((1 - c^2) m k_B T) xi``, ``c = exp(-friction dt)``
        (Bussi and Parrinello, Phys. Rev. E 75, 056707 (2007)). It stands for the many modes of a
        real molecule or a solvent that carry the excess energy away, so that products stay in their
        basin; 0 (default): isolated, energy-conserving dynamics.
    record_hops : bool
        Keep every attempted hop in :attr:`hops` as ``(trajectory, time, from, to, accepted)`` (time in
        a.u.; refused ones are the frustrated hops).
    device, dtype
        Tensors live there, in that real precision (default float64).

    Raises
    ------
    SimsInputError
        ``n_states`` or the diabatic matrix's size disagreeing with the model's ``n_states``,
        ``initial_state`` out of range, shapes that disagree with the model, a non-positive
        timestep, an unknown option; during :meth:`run`, an amplitude norm drift beyond
        ``norm_tolerance``.

    References
    ----------
    J. C. Tully, J. Chem. Phys. 93, 1061 (1990); S. Hammes-Schiffer and J. C. Tully,
    J. Chem. Phys. 101, 4657 (1994) (substeps); A. W. Jasper and D. G. Truhlar, Chem. Phys. Lett.
    369, 60 (2003) (reversal on frustrated hops); G. Granucci and M. Persico, J. Chem. Phys. 126,
    134114 (2007) (EDC); S. Mai, P. Marquetand and L. González, Int. J. Quantum Chem. 115, 1215
    (2015) (SHARC hop probabilities).

    Examples
    --------
    >>> import torch
    >>> fssh = FSSH(tully_model(1), torch.full((8, 1), -8.0), torch.full((8, 1), 20.0),
    ...             timestep=2.0, seed=0)
    >>> res = fssh.run(600)
    >>> bool((res.positions > 0).all())
    True
    """

    def __init__(self, model: DiabaticModel, positions: torch.Tensor, momenta: torch.Tensor, *,
                 n_states: int | None = None, initial_state: int = 0, timestep: float = 1.0,
                 electronic_substeps: int = 25, hop: str = "tully", decoherence: str | None = None,
                 decoherence_energy: float | None = None, frustrated: str = "keep", norm_tolerance: float = 1e-3, min_gap: float = 1e-6,
                 seed: int | None = None, record_hops: bool = False, friction: float = 0.0,
                 temperature: float = 0.0, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        if not isinstance(model, DiabaticModel):
            raise SimsInputError(f"model must be a sims.surface_hopping.DiabaticModel, got {type(model).__name__}")
        n = model.n_states
        if n_states is not None and n_states != n:
            raise SimsInputError(f"n_states={n_states!r} but the model {type(model).__name__} has {n} states; "
                                 f"pass n_states={n} or another model")
        if isinstance(initial_state, bool) or not isinstance(initial_state, int) or not 0 <= initial_state < n:
            raise SimsInputError(f"initial_state must be an adiabatic state index 0..{n - 1} "
                                 f"(the model has {n} states), got {initial_state!r}")
        if not (math.isfinite(timestep) and timestep > 0):
            raise SimsInputError(f"timestep must be > 0 (atomic units of time), got {timestep}")
        if isinstance(electronic_substeps, bool) or not isinstance(electronic_substeps, int) or electronic_substeps < 1:
            raise SimsInputError(f"electronic_substeps must be an integer >= 1, got {electronic_substeps!r}")
        if hop not in HOP_SCHEMES:
            raise SimsInputError(f"hop must be one of {', '.join(map(repr, HOP_SCHEMES))} (the hop probability "
                                 f"scheme: Tully's fewest switches or SHARC's propagator form), got {hop!r}")
        if decoherence not in ("edc", None):
            raise SimsInputError(f"decoherence must be 'edc' or None, got {decoherence!r}")
        if decoherence_energy is None:
            decoherence_energy = 0.1
        elif decoherence is None:
            raise SimsInputError(f"decoherence_energy={decoherence_energy!r} is read only with decoherence='edc'; "
                                 "pass decoherence='edc' or leave decoherence_energy out")
        if frustrated not in ("keep", "reverse"):
            raise SimsInputError(f"frustrated must be 'keep' or 'reverse', got {frustrated!r}")
        if not (math.isfinite(friction) and friction >= 0 and math.isfinite(temperature) and temperature >= 0):
            raise SimsInputError(f"friction (1/a.u. of time) and temperature (K) must be >= 0, got {friction}, "
                                 f"{temperature}")
        if not norm_tolerance > 0 or not min_gap > 0 or not decoherence_energy > 0:
            raise SimsInputError("norm_tolerance, min_gap and decoherence_energy must be > 0, got "
                                 f"{norm_tolerance}, {min_gap}, {decoherence_energy}")
        x = torch.as_tensor(positions, dtype=dtype, device=device)
        p = torch.as_tensor(momenta, dtype=dtype, device=device)
        if x.ndim == 1:
            x, p = x.unsqueeze(-1), p.unsqueeze(-1) if p.ndim == 1 else p
        if x.ndim != 2 or x.shape[1] != model.ndim or p.shape != x.shape:
            raise SimsInputError(f"positions and momenta must both have shape (B, {model.ndim}), got "
                                 f"{tuple(x.shape)} and {tuple(p.shape)}")
        if not (torch.isfinite(x).all() and torch.isfinite(p).all()):
            raise SimsInputError("positions and momenta must be finite")
        self.model = model
        self.timestep = float(timestep)
        self.electronic_substeps = electronic_substeps
        self.hop = hop
        self.decoherence = decoherence
        self.decoherence_energy = float(decoherence_energy)
        self.frustrated = frustrated
        self.norm_tolerance = float(norm_tolerance)
        self.min_gap = float(min_gap)
        self.friction, self.temperature = float(friction), float(temperature)
        self.x, self.p = x.clone(), p.clone()
        b = x.shape[0]
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.c = torch.zeros(b, n, dtype=cdtype, device=x.device)
        self.c[:, initial_state] = 1.0
        self.active = torch.full((b,), initial_state, dtype=torch.long, device=x.device)
        self.n_hops = torch.zeros(b, dtype=torch.long, device=x.device)
        self.n_frustrated = torch.zeros(b, dtype=torch.long, device=x.device)
        self.time = 0.0
        self.steps = 0
        self.record_hops = bool(record_hops)
        self.hops: list[tuple[int, float, int, int, bool]] = []
        mass = torch.as_tensor(model.mass, dtype=dtype, device=x.device).reshape(-1)
        if mass.numel() not in (1, model.ndim) or not bool((mass > 0).all()) or not bool(torch.isfinite(mass).all()):
            raise SimsInputError(f"{type(model).__name__}.mass must be one positive number or {model.ndim} "
                                 f"(one per coordinate), got {mass.numel()} values {mass.tolist()[:6]}")
        self._mass = mass.expand(model.ndim).clone()
        self._gen = make_generator(seed, device=x.device)
        self._ad = model.adiabatic(self.x, min_gap=self.min_gap)
        if self._ad.energies.shape[-1] != n:
            raise SimsInputError(f"{type(model).__name__}.diabatic returns {self._ad.energies.shape[-1]} x "
                                 f"{self._ad.energies.shape[-1]} matrices but the model declares n_states={n}")

    def kinetic_energy(self) -> torch.Tensor:
        """Nuclear kinetic energy of each trajectory (hartree), shape (B,)."""
        return (self.p ** 2 / (2 * self._mass)).sum(-1)

    def total_energy(self) -> torch.Tensor:
        """Kinetic energy plus the active adiabatic energy of each trajectory (hartree), shape (B,).

        Conserved along each trajectory, through hops (the momentum takes up the energy gap), up to the
        velocity-Verlet error; frustrated hops change nothing.
        """
        ea = self._ad.energies.gather(-1, self.active.unsqueeze(-1)).squeeze(-1)
        return self.kinetic_energy() + ea

    def populations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Populations of the adiabatic states: the fraction of trajectories on each ``(n,)`` and the
        mean ``|c_k|^2`` of the amplitudes ``(n,)``. In FSSH the two agree as long as the hops follow
        the amplitudes (no frustrated hops, no decoherence mismatch)."""
        n = self.c.shape[-1]
        active = torch.bincount(self.active, minlength=n).to(self.p.dtype) / self.active.shape[0]
        return active, (self.c.abs() ** 2).mean(0).to(self.p.dtype)

    def _force(self, ad: Adiabatic) -> torch.Tensor:
        return -ad.gradients.gather(-1, self.active.view(-1, 1, 1).expand(-1, ad.gradients.shape[1], 1)).squeeze(-1)

    def _electronic(self, ad0: Adiabatic, ad1: Adiabatic, p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
        """Integrate the amplitudes over one step; return the accumulated hop probabilities (B, n)."""
        m = self._mass
        t0 = torch.einsum("bd,bdkl->bkl", p0 / m, ad0.couplings)
        t1 = torch.einsum("bd,bdkl->bkl", p1 / m, ad1.couplings)
        e0, e1 = ad0.energies, ad1.energies
        # Energies relative to their mean: a common phase changes nothing and keeps RK4 accurate.
        shift = 0.5 * (e0.mean(-1, keepdim=True) + e1.mean(-1, keepdim=True))
        e0, e1 = e0 - shift, e1 - shift
        ns = self.electronic_substeps
        dtau = self.timestep / ns
        cd = self.c.dtype
        # RK4 on a linear equation c' = A(s) c is c <- M c with M a polynomial in A at the start, middle
        # and end of the substep: all substeps' M are built at once, then applied in sequence.
        s = torch.arange(2 * ns + 1, dtype=e0.dtype, device=e0.device).view(-1, 1, 1) / (2 * ns)
        e = (e0 + s * (e1 - e0)).to(cd)
        t = (t0.unsqueeze(0) + s.unsqueeze(-1) * (t1 - t0).unsqueeze(0))
        a_mat = -1j * torch.diag_embed(e) - t.to(cd)  # (2 ns + 1, B, n, n)
        a_start, a_mid, a_end = a_mat[0:-1:2], a_mat[1::2], a_mat[2::2]
        eye = torch.eye(e0.shape[-1], dtype=cd, device=e0.device)
        k1 = a_start
        k2 = a_mid @ (eye + 0.5 * dtau * k1)
        k3 = a_mid @ (eye + 0.5 * dtau * k2)
        k4 = a_end @ (eye + dtau * k3)
        step = eye + dtau / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        c0 = self.c
        c = c0.unsqueeze(-1)
        history = []
        for i in range(ns):
            c = step[i] @ c
            history.append(c)
        cs = torch.stack(history).squeeze(-1)  # (ns, B, n): amplitudes at the end of each substep
        a = self.active
        if self.hop == "sharc":
            propagator = step[0]
            for i in range(1, ns):
                propagator = step[i] @ propagator
            self.c = cs[-1]
            return sharc_hop_probabilities(c0, cs[-1], propagator, a)
        ca = cs.gather(-1, a.view(1, -1, 1).expand(ns, -1, 1))
        t_ja = t[2::2].gather(-1, a.view(1, -1, 1, 1).expand(ns, -1, t.shape[2], 1)).squeeze(-1)
        flux = -2 * (cs.conj() * ca * t_ja).real  # d|c_j|^2/dt flowing in from the active state
        g = dtau * (flux / (ca.abs() ** 2).clamp_min(1e-30)).sum(0)
        c = cs[-1]
        self.c = c
        return g.clamp_min(0).scatter(-1, a.unsqueeze(-1), 0.0)

    def _hop(self, g: torch.Tensor, ad: Adiabatic) -> None:
        b = g.shape[0]
        zeta = torch.rand(b, generator=self._gen, dtype=g.dtype, device=g.device)
        cum = g.cumsum(-1)
        wants = zeta < cum[:, -1]
        if not bool(wants.any()):
            return
        target = (zeta.unsqueeze(-1) >= cum).sum(-1).clamp_max(g.shape[-1] - 1)
        idx = wants.nonzero().squeeze(-1)
        a, j = self.active[idx], target[idx]
        d = ad.couplings[idx, :, a, j]  # (h, D)
        unit = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        p = self.p[idx]
        # p -> p + gamma * unit with the kinetic energy changed by E_a - E_j: a gamma^2 + b gamma = de
        # (Hammes-Schiffer and Tully 1994, Eq. A4, with one mass per coordinate); the root of smaller
        # |gamma| keeps the motion along d continuous. With one mass this is p_par' = sign(p_par)
        # sqrt(p_par^2 + 2 m de).
        a2 = (unit * unit / (2 * self._mass)).sum(-1)
        b1 = (p * unit / self._mass).sum(-1)
        de = ad.energies[idx, a] - ad.energies[idx, j]
        disc = b1 * b1 + 4 * a2 * de
        ok = disc >= 0
        root = disc.clamp_min(0).sqrt()
        a2 = a2.clamp_min(1e-300)  # d = 0 gives no hop probability; guards the division regardless
        gamma = torch.where(b1 >= 0, -b1 + root, -b1 - root) / (2 * a2)
        kept = -b1 / a2 if self.frustrated == "reverse" else torch.zeros_like(b1)
        gamma = torch.where(ok, gamma, kept)
        self.p[idx] = p + gamma.unsqueeze(-1) * unit
        self.active[idx] = torch.where(ok, j, a)
        self.n_hops[idx] += ok.long()
        self.n_frustrated[idx] += (~ok).long()
        if self.record_hops:
            t = self.time + self.timestep
            for k, src, dst, good in zip(idx.tolist(), a.tolist(), j.tolist(), ok.tolist()):
                self.hops.append((k, t, src, dst, bool(good)))

    def _decohere(self, ad: Adiabatic) -> None:
        a = self.active
        e_kin = self.kinetic_energy()
        ea = ad.energies.gather(-1, a.unsqueeze(-1))
        rate = (ad.energies - ea).abs() / (1 + self.decoherence_energy / e_kin.clamp_min(1e-300)).unsqueeze(-1)
        c = self.c * torch.exp(-self.timestep * rate)
        others = (c.abs() ** 2).sum(-1) - (c.gather(-1, a.unsqueeze(-1)).abs() ** 2).squeeze(-1)
        ca = self.c.gather(-1, a.unsqueeze(-1)).squeeze(-1)
        scale = ((1 - others).clamp_min(0) / (ca.abs() ** 2).clamp_min(1e-300)).sqrt()
        self.c = c.scatter(-1, a.unsqueeze(-1), (ca * scale).unsqueeze(-1))

    def step(self) -> None:
        """Advance every trajectory by one nuclear step."""
        dt, m = self.timestep, self._mass
        ad0, p0 = self._ad, self.p
        p_half = p0 + 0.5 * dt * self._force(ad0)
        self.x = self.x + dt * p_half / m
        ad1 = self.model.adiabatic(self.x, reference=ad0.vectors, min_gap=self.min_gap)
        self.p = p_half + 0.5 * dt * self._force(ad1)
        norm0 = (self.c.abs() ** 2).sum(-1)
        g = self._electronic(ad0, ad1, p0, self.p)
        drift = ((self.c.abs() ** 2).sum(-1) - norm0).abs()
        worst = int(drift.argmax())
        if not bool(torch.isfinite(drift).all()) or float(drift[worst]) > self.norm_tolerance:
            raise SimsInputError(
                f"FSSH step {self.steps + 1}: the norm of the electronic amplitudes of trajectory {worst} "
                f"changed by {float(drift[worst]):.3g} in one step (tolerance {self.norm_tolerance}): the "
                f"timestep {self.timestep:.4g} a.u. ({self.timestep * AU_TIME_FS:.4g} fs) is too long for the "
                f"electronic integration; use a shorter timestep or more electronic_substeps "
                f"(now {self.electronic_substeps})")
        self._hop(g, ad1)
        if self.decoherence == "edc":
            self._decohere(ad1)
        if self.friction > 0:
            # Ornstein-Uhlenbeck step after velocity Verlet (Bussi and Parrinello 2007 splitting).
            c1 = math.exp(-self.friction * dt)
            noise = torch.randn(self.p.shape, generator=self._gen, dtype=self.p.dtype, device=self.p.device)
            kt = KB_HARTREE * self.temperature
            self.p = c1 * self.p + math.sqrt((1 - c1 * c1) * kt) * self._mass.sqrt() * noise
        self._ad = ad1
        self.time += dt
        self.steps += 1

    def run(self, n_steps: int, *, until_outside: float | None = None) -> FSSHResult:
        """Take up to ``n_steps`` steps; with ``until_outside`` (bohr), stop early once every trajectory
        is outside ``|x| < until_outside`` and moving away from it (1-D models)."""
        for _ in range(int(n_steps)):
            if until_outside is not None and bool(self._outside(until_outside).all()):
                break
            self.step()
        return FSSHResult(self.x, self.p, self.active, self.c, self.n_hops, self.n_frustrated, self.time)

    def _outside(self, r: float) -> torch.Tensor:
        x, p = self.x[:, 0], self.p[:, 0]
        return ((x > r) & (p > 0)) | ((x < -r) & (p < 0))


def fssh_scattering(model: DiabaticModel, momentum: float, n_trajectories: int = 1000,
                    seed: int | None = None, *, timestep: float | None = None,
                    electronic_substeps: int = 25, hop: str = "tully", decoherence: str | None = None,
                    frustrated: str = "keep", sampling: str = "wigner",
                    device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float64) -> dict[str, float]:
    """Scattering probabilities of a 1-D model from an FSSH ensemble started on the lower adiabatic state.

    Initial conditions: with ``sampling="wigner"`` positions and momenta are drawn from the Wigner
    distribution of the packet of :func:`exact_scattering` (``x ~ N(x0, (sigma/2)^2)``,
    ``p ~ N(k, (1/sigma)^2)``, ``sigma = 20/k``, ``x0 = -(R + 3 sigma)``); with ``"fixed"`` every
    trajectory starts at ``x0`` with momentum ``k``. Trajectories run until all have left the
    interaction region ``|x| < R``; each is counted by the sign of its final position and its
    active state.

    Parameters
    ----------
    model : DiabaticModel
    momentum : float
        Mean initial momentum k (hbar/bohr).
    n_trajectories : int
    seed : int, optional
        Seeds the initial conditions and the hops (independent streams).
    timestep : float, optional
        Nuclear step (a.u.); default ``min(0.02 bohr * m / k, 4)`` (at most 0.02 bohr per step).
    electronic_substeps, hop, decoherence, frustrated, device, dtype
        As for :class:`FSSH`.
    sampling : {"wigner", "fixed"}

    Returns
    -------
    dict
        ``transmission_lower``, ``transmission_upper``, ``reflection_lower``, ``reflection_upper``
        (fractions of trajectories), ``n_trajectories``, ``n_hops`` (mean per trajectory),
        ``n_frustrated`` (mean per trajectory) and ``unfinished`` (fraction still inside at the end).
        The standard error of a probability P is ``sqrt(P (1 - P) / n_trajectories)``.
    """
    k = _check_model(model, momentum)
    if isinstance(n_trajectories, bool) or not isinstance(n_trajectories, int) or n_trajectories < 1:
        raise SimsInputError(f"n_trajectories must be an integer >= 1, got {n_trajectories!r}")
    if sampling not in ("wigner", "fixed"):
        raise SimsInputError(f"sampling must be 'wigner' or 'fixed', got {sampling!r}")
    m, r = float(model.mass), float(model.interaction_range)
    sigma = 20.0 / k
    x0 = -(r + 3.0 * sigma)
    dt = timestep if timestep is not None else min(0.02 * m / k, 4.0)
    gen = make_generator(None if seed is None else (seed, 0), device=device)
    shape = (n_trajectories, 1)
    if sampling == "wigner":
        x = x0 + 0.5 * sigma * torch.randn(shape, generator=gen, dtype=dtype, device=device)
        p = k + torch.randn(shape, generator=gen, dtype=dtype, device=device) / sigma
    else:
        x = torch.full(shape, x0, dtype=dtype, device=device)
        p = torch.full(shape, k, dtype=dtype, device=device)
    fssh = FSSH(model, x, p, initial_state=0, timestep=dt, electronic_substeps=electronic_substeps, hop=hop,
                decoherence=decoherence, frustrated=frustrated, seed=None if seed is None else (seed, 1),
                device=device, dtype=dtype)
    # Enough steps to cross twice the region at a fifth of the initial speed.
    max_steps = int(2 * (abs(x0) + 2 * r) / (0.2 * k / m) / dt) + 1
    res = fssh.run(max_steps, until_outside=r)
    unfinished = ~fssh._outside(r)
    right = res.positions[:, 0] > 0
    lower = res.active == 0
    frac = lambda mask: float(mask.to(dtype).mean())  # noqa: E731
    return {"transmission_lower": frac(right & lower), "transmission_upper": frac(right & ~lower),
            "reflection_lower": frac(~right & lower), "reflection_upper": frac(~right & ~lower),
            "n_trajectories": n_trajectories, "n_hops": float(res.n_hops.to(dtype).mean()),
            "n_frustrated": float(res.n_frustrated.to(dtype).mean()), "unfinished": frac(unfinished)}
