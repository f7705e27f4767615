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

from .analysis import RDF, bond_angle_distribution, coordination_numbers

__all__ = ["beta_cristobalite", "SilicaStructure", "silica_structure"]


def beta_cristobalite(repeat: int | tuple[int, int, int] = 2, *, a: float = 7.16) -> Atoms:
    """Ideal beta-cristobalite SiO2 (Fd-3m, straight Si-O-Si), the usual start of a silica melt.

    Si on a diamond lattice, O halfway between bonded Si (Wyckoff, Z. Kristallogr. 62, 189 (1925)):
    Si-O = a sqrt(3)/8 = 1.55 Å and 2.17 g/cm^3 at ``a = 7.16`` Å, 24 atoms per cubic cell.
    Starting a melt from a crystal at the glass density avoids the huge Coulomb energy a random
    start releases (atoms then collide at tens of thousands of kelvin).

    Parameters
    ----------
    repeat : int or (int, int, int)
        Copies of the cubic cell (2 gives 192 atoms, 3 gives 648).
    a : float
        Cubic lattice constant, Å.

    Returns
    -------
    ase.Atoms
        Periodic, Si atoms first.
    """
    from ase.build import bulk

    si = bulk("Si", "diamond", a=a, cubic=True)
    frac = si.get_scaled_positions()
    # Sublattice A = fcc sites (integer multiples of 1/2 summing to an integer); O along its 4 bonds.
    on_a = np.isclose((2 * frac).sum(axis=1) % 2, 0) & np.isclose((4 * frac) % 2, 0).all(axis=1)
    bonds = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / 8.0
    o_frac = (frac[on_a][:, None, :] + bonds[None]).reshape(-1, 3) % 1.0
    cell = Atoms("Si8", scaled_positions=frac, cell=si.cell, pbc=True)
    cell += Atoms("O%d" % len(o_frac), scaled_positions=o_frac, cell=si.cell, pbc=True)
    return cell.repeat(repeat)


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
