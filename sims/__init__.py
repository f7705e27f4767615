"""sims: differentiable molecular dynamics on torch tensors, analysis and dataset generation.

Units are ASE's: Å, eV, amu, K; time steps in fs. Potentials are ``torch.nn.Module`` s computing
a total energy; forces and stress come from autograd. ``sims`` imports nothing of ours but ``reprs``'
base layer (errors, atoms conversion, file and frame I/O).

Examples
--------
>>> import sims, torch
>>> from ase.build import bulk
>>> atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(3)
>>> i, j, S = sims.neighbor_list(atoms, cutoff=4.2)
>>> pot = sims.potentials.LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, shift=True)
>>> e, f = sims.energy_and_forces(pot, atoms, dtype=torch.float64)
>>> md = sims.MD(atoms, pot, sims.VelocityVerlet(timestep=2.0), temperature=50, seed=0)
>>> _ = md.run(10)
"""

from __future__ import annotations

from . import analysis, fit, lammps, potentials
from .errors import FitDiverged, MissingCellError, SimsError, SimsInputError, SimulationStopped
from .integrators import Integrator, Langevin, NoseHooverChain, VelocityVerlet
from .md import MD, compute, energy_and_forces, maxwell_boltzmann
from .neighbors import NeighborList, PairList, build_pairs, neighbor_list
from .state import State

__all__ = ["analysis", "fit", "lammps", "potentials", "FitDiverged", "MissingCellError", "SimsError", "SimsInputError", "SimulationStopped", "Integrator", "Langevin",
           "NoseHooverChain", "VelocityVerlet", "MD", "compute", "energy_and_forces", "maxwell_boltzmann",
           "NeighborList", "PairList", "build_pairs", "neighbor_list", "State"]
