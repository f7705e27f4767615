"""Building blocks shared by the neural potentials: cutoff function, radial bases, activation."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["cosine_cutoff", "polynomial_envelope", "zbl_energy", "GaussianRBF", "BesselRBF", "ShiftedSoftplus"]

#: e^2 / (4 pi eps0) in eV Å (LAMMPS' ``qqr2e`` of metal units).
COULOMB_EV_A = 14.399645
# The universal screening function of Ziegler, Biersack & Littmark, "The Stopping and Range of Ions
# in Solids" (Pergamon, 1985), eq. 2-74: phi(x) = sum_k c_k exp(-d_k x), x = r / a with the
# universal screening length a = 0.8854 a_0 / (Z_i^0.23 + Z_j^0.23) (0.46850 Å = 0.8854 x 0.529 Å),
# the constants LAMMPS' pair_style zbl uses.
_ZBL_C = (0.18175, 0.50986, 0.28022, 0.02817)
_ZBL_D = (3.19980, 0.94229, 0.40290, 0.20162)
_ZBL_A = 0.46850  # Å
_ZBL_POWER = 0.23


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``0.5 (cos(pi r / r_c) + 1)`` inside the cutoff, 0 beyond (Behler, J. Chem. Phys. 134, 074106 (2011), eq. 4).

    Value and slope vanish at ``r_c``, so energies and forces stay continuous as pairs leave the list.
    """
    return torch.where(r < cutoff, 0.5 * (torch.cos(r * (math.pi / cutoff)) + 1.0), torch.zeros_like(r))


def polynomial_envelope(r: torch.Tensor, r_max: torch.Tensor | float, p: int = 6) -> torch.Tensor:
    """``1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` of ``x = r / r_max``, 0 beyond ``r_max``.

    Gasteiger, Groß & Günnemann, DimeNet, ICLR 2020 (arXiv:2003.03123), eq. 8: 1 at ``r = 0`` and,
    at ``r_max``, zero value, first and second derivative; MACE switches its ZBL repulsion off with
    it (p = 6) at the sum of covalent radii.
    """
    x = r / r_max
    env = 1.0 - 0.5 * (p + 1) * (p + 2) * x ** p + p * (p + 2) * x ** (p + 1) - 0.5 * p * (p + 1) * x ** (p + 2)
    return torch.where(x < 1.0, env, torch.zeros_like(env))


def zbl_energy(r: torch.Tensor, z_i: torch.Tensor, z_j: torch.Tensor,
               r_max: torch.Tensor | float | None = None) -> torch.Tensor:
    """Ziegler-Biersack-Littmark screened nuclear repulsion of each pair, eV.

    ``E = k Z_i Z_j / r * phi(r / a)`` with the universal screening function ``phi`` and length
    ``a = 0.46850 Å / (Z_i^0.23 + Z_j^0.23)`` (Ziegler, Biersack & Littmark, "The Stopping and Range
    of Ions in Solids", 1985; the constants of LAMMPS' ``pair_style zbl``), ``k = e^2 / 4 pi eps0``.
    With ``r_max`` it is multiplied by :func:`polynomial_envelope` (p = 6), which takes it smoothly
    to zero at ``r_max`` (LAMMPS instead adds a switching polynomial between two fixed radii).

    Parameters
    ----------
    r : torch.Tensor
        ``(P,)`` distances, Å (> 0).
    z_i, z_j : torch.Tensor
        ``(P,)`` atomic numbers of the two atoms.
    r_max : torch.Tensor or float, optional
        Å, per pair or one value: where the envelope reaches zero; None for the bare ZBL energy.
    """
    zi, zj = z_i.to(r.dtype), z_j.to(r.dtype)
    x = r * (zi ** _ZBL_POWER + zj ** _ZBL_POWER) / _ZBL_A
    phi = sum(c * torch.exp(-d * x) for c, d in zip(_ZBL_C, _ZBL_D))
    energy = COULOMB_EV_A * zi * zj / r * phi
    return energy if r_max is None else energy * polynomial_envelope(r, r_max)


class GaussianRBF(nn.Module):
    """``exp(-(r - mu_k)^2 / (2 w^2))`` on ``n`` centres evenly spaced in ``[0, cutoff]``, ``w`` the spacing.

    SchNet's expansion (Schütt et al., J. Chem. Phys. 148, 241722 (2018), eq. 8), with the width
    tied to the spacing as in SchNetPack, so that neighbouring Gaussians overlap the same way for
    any ``n``.
    """

    def __init__(self, n: int, cutoff: float) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n, dtype=torch.float64))
        self.width = cutoff / (n - 1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``(P,)`` distances (Å) to ``(P, n)`` features."""
        return torch.exp(-0.5 * ((r[:, None] - self.centers.to(r.dtype)) / self.width) ** 2)


class BesselRBF(nn.Module):
    """``sin(k pi r / r_c) / r`` for ``k = 1..n``: PaiNN's radial basis (Schütt, Unke & Gastegger,
    ICML 2021, arXiv:2102.03150, sec. 4; from DimeNet, Gasteiger et al., ICLR 2020, eq. 7)."""

    def __init__(self, n: int, cutoff: float) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.arange(1, n + 1, dtype=torch.float64) * (math.pi / cutoff))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``(P,)`` distances (Å, > 0) to ``(P, n)`` features."""
        return torch.sin(r[:, None] * self.freqs.to(r.dtype)) / r[:, None]


class ShiftedSoftplus(nn.Module):
    """``softplus(x) - log 2`` (zero at zero): SchNet's activation (Schütt et al. 2018, eq. 10)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(x) - math.log(2.0)
