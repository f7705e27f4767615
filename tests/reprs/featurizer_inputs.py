"""Small structures and molecules shared by the featurizer tests (built in code, no data files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from pymatgen.core import Structure


def bundled_structure(name: str) -> Structure:
    """A structure shipped inside pymatgen (``pymatgen/util/structures/{name}.json``)."""
    import pymatgen.util

    return Structure.from_file(Path(pymatgen.util.__file__).parent / "structures" / f"{name}.json")


def quartz() -> Structure:
    """alpha-quartz SiO2 (P3_221, 9 atoms, Si 4-coordinated), as bundled with pymatgen."""
    return bundled_structure("SiO2")


def quartz_atoms(rattle: float = 0.0, seed: int = 0) -> Atoms:
    """alpha-quartz as ase.Atoms, optionally with Gaussian displacements of ``rattle`` A."""
    atoms = quartz().to_ase_atoms()
    if rattle:
        atoms.rattle(stdev=rattle, seed=seed)
    return atoms


def silicon() -> Atoms:
    """Diamond silicon, conventional cubic cell of 8 atoms, a = 5.43 A."""
    return bulk("Si", "diamond", a=5.43, cubic=True)


def copper() -> Atoms:
    """fcc copper primitive cell (1 atom), a = 3.6 A: 12 nearest neighbours at a / sqrt(2)."""
    return bulk("Cu", "fcc", a=3.6)


def water() -> Atoms:
    return molecule("H2O")


def methanol(rattle: float = 0.0, seed: int = 0) -> Atoms:
    atoms = molecule("CH3OH")
    if rattle:
        atoms.rattle(stdev=rattle, seed=seed)
    return atoms


def permuted(atoms: Atoms, seed: int = 0) -> Atoms:
    """The same structure with its atoms listed in a random order."""
    order = np.random.default_rng(seed).permutation(len(atoms))
    return atoms[order]


def moved(atoms: Atoms, seed: int = 0) -> Atoms:
    """The same structure translated, and rotated (with its cell) by a random rotation."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    rotation = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
    out = atoms.copy()
    out.positions = (atoms.positions + rng.normal(size=3)) @ rotation.T
    if atoms.cell.rank == 3:
        out.cell = np.asarray(atoms.cell) @ rotation.T
    return out
