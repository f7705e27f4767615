"""Small fixtures shared by the sims tests, built in code."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk


@pytest.fixture
def argon_liquid():
    """108 argon atoms, fcc lattice at liquid density (0.021 1/Å^3), rattled."""
    atoms = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(3)
    atoms.rattle(0.05, seed=3)
    return atoms


def _random_atoms(rng: np.random.Generator, n: int, *, triclinic: bool, pbc, symbols: str = "H"):
    """``n`` atoms at random positions (also outside the cell) in a random cell."""
    cell = np.diag(rng.uniform(3.0, 9.0, 3))
    if triclinic:
        cell = cell + np.triu(rng.uniform(-2.0, 2.0, (3, 3)), 1)
    pos = rng.uniform(-0.3, 1.3, (n, 3)) @ cell
    return Atoms(symbols * n, positions=pos, cell=cell, pbc=pbc)


@pytest.fixture
def random_atoms():
    """Factory ``random_atoms(rng, n, triclinic=..., pbc=...)`` of random configurations."""
    return _random_atoms


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run each sims test on one thread: small tensors on a shared 2-core machine run several times
    faster without intra-op threads (and timings do not depend on the load of other processes)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
