"""Building blocks shared by the neural potentials: cutoff function, radial bases, activation."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["cosine_cutoff", "GaussianRBF", "BesselRBF", "ShiftedSoftplus"]


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``0.5 (cos(pi r / r_c) + 1)`` inside the cutoff, 0 beyond (Behler, J. Chem. Phys. 134, 074106 (2011), eq. 4).

    Value and slope vanish at ``r_c``, so energies and forces stay continuous as pairs leave the list.
    """
    return torch.where(r < cutoff, 0.5 * (torch.cos(r * (math.pi / cutoff)) + 1.0), torch.zeros_like(r))


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
