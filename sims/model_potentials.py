"""Analytic model energy surfaces: every atom a particle in the same external field.

These are the test beds of :mod:`sims.free_energy`: the exact CV density is ``exp(-U/kT)``
up to normalisation, so profiles, reaction and activation free energies have quadrature
references. Atoms do not interact, so a system of ``N`` atoms is ``N`` independent replicas of
one particle, sampled together by one :class:`sims.MD` run.
"""

from __future__ import annotations

import torch

from .potentials import Potential, _param

__all__ = ["DoubleWell"]


class DoubleWell(Potential):
    """``U = sum_atoms a (x^2 - b^2)^2 + tilt x + k_y y^2 / 2 + k_z z^2 / 2`` (eV).

    A quartic double well along x (minima near ``x = ±b``, barrier ``a b^4`` at ``x = 0`` without
    tilt), a linear tilt that makes the wells unequal, and harmonic confinement across it (a 2-D
    model with ``k_y > 0``; a free particle across it with ``k_y = k_z = 0``).

    Parameters
    ----------
    a : float
        eV / Å^4, > 0.
    b : float
        Å, > 0.
    tilt : float
        eV / Å.
    k_y, k_z : float
        eV / Å^2, >= 0.
    device, dtype
        Of the parameters.

    Examples
    --------
    >>> import sims, torch
    >>> from ase import Atoms
    >>> atoms = Atoms("H4", positions=[[-1, 0, 0], [1, 0, 0], [-1, 0, 0], [1, 0, 0]])
    >>> md = sims.MD(atoms, DoubleWell(a=0.05, b=1.0), sims.Langevin(1.0, 300.0), min_distance=None,
    ...              temperature=300, seed=0)
    """

    cutoff = 0.0

    def __init__(self, *, a: float, b: float, tilt: float = 0.0, k_y: float = 0.0, k_z: float = 0.0,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.a = _param(a, device, dtype, "a", positive=True)
        self.b = _param(b, device, dtype, "b", positive=True)
        self.tilt = _param(tilt, device, dtype, "tilt")
        self.k_y = _param(k_y, device, dtype, "k_y")
        self.k_z = _param(k_z, device, dtype, "k_z")
        if float(k_y) < 0 or float(k_z) < 0:
            from .errors import SimsInputError

            raise SimsInputError(f"k_y and k_z must be >= 0 eV/Å^2, got {k_y}, {k_z}")

    def forward(self, positions, cell=None, numbers=None, pairs=None):
        x, y, z = positions[..., 0], positions[..., 1], positions[..., 2]
        a, b = self.a.to(x), self.b.to(x)
        u = a * (x * x - b * b) ** 2 + self.tilt.to(x) * x + 0.5 * self.k_y.to(x) * y * y + 0.5 * self.k_z.to(x) * z * z
        return u.sum()
