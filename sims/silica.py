"""Silica systems: a random SiO2 start for melt-quench runs and the structure checks of a glass.

Reference values of vitreous silica (Mozzi & Warren, J. Appl. Cryst. 2, 164 (1969); BKS glass:
Vollmayr, Kob & Binder, Phys. Rev. B 54, 15808 (1996)): Si-O bond 1.61-1.62 Å, O-Si-O angle
109.5 degrees (tetrahedra), Si coordination 4, density 2.2 g/cm^3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from ase import Atoms

from reprs.structure import crystal_reference

from .analysis import RDF, bond_angle_distribution, coordination_numbers

__all__ = ["beta_cristobalite", "SilicaStructure", "silica_structure"]


def beta_cristobalite(repeat: int | tuple[int, int, int] = 2, *, a: float = 7.16) -> Atoms:
    """Ideal beta-cristobalite SiO2 (Fd-3m, straight Si-O-Si), the usual start of a silica melt.

    The reference crystal of :func:`reprs.structure.crystal_reference` (Si on a diamond lattice,
    O halfway between bonded Si; Wyckoff, Z. Kristallogr. 62, 189 (1925)) with the lattice
    constant of the glass: Si-O = a sqrt(3)/8 = 1.55 Å and 2.17 g/cm^3 at ``a = 7.16`` Å, 24 atoms
    per cubic cell. Starting a melt from a crystal at the glass density avoids the huge Coulomb
    energy a random start releases (atoms then collide at tens of thousands of kelvin).

    Parameters
    ----------
    repeat : int or (int, int, int)
        Copies of the cubic cell (2 gives 192 atoms, 3 gives 648).
    a : float
        Cubic lattice constant, Å.

    Returns
    -------
    ase.Atoms
        Periodic; each cubic cell's 8 Si come before its 16 O.
    """
    reps = (repeat,) * 3 if isinstance(repeat, (int, np.integer)) else tuple(repeat)
    return crystal_reference("beta-cristobalite", repeat=reps, cellpar=(a, a, a, 90.0, 90.0, 90.0))


@dataclass(frozen=True)
class SilicaStructure:
    """Structure of a silica configuration (averaged over frames).

    Attributes
    ----------
    si_o_peak : float
        Position of the first Si-O RDF maximum, Å (1.6 Å in silica glass).
    o_si_o_angle : float
        Most probable O-Si-O angle, degrees (109.5 for tetrahedra).
    si_coordination : float
        Mean number of O within ``si_o_cutoff`` of a Si (4).
    """

    si_o_peak: float
    o_si_o_angle: float
    si_coordination: float


def silica_structure(frames: Atoms | Iterable[Atoms], *, si_o_cutoff: float = 2.3) -> SilicaStructure:
    """Compute :class:`SilicaStructure` of silica frames.

    ``si_o_cutoff`` (Å) is the first minimum of g_SiO in BKS glass (Vollmayr et al. 1996 use 2.35 Å).
    """
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    rdf = RDF(r_max=3.0, bins=150, species=("Si", "O")).compute(frames)
    angle, density = bond_angle_distribution(frames, si_o_cutoff, center="Si", neighbor="O", bins=90)
    cn = np.mean([coordination_numbers(f, si_o_cutoff, center="Si", neighbor="O").mean() for f in frames])
    return SilicaStructure(si_o_peak=float(rdf.r[np.argmax(rdf.g)]), o_si_o_angle=float(angle[np.argmax(density)]),
                           si_coordination=float(cn))
