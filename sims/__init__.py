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

from reprs.lazy import lazy_exports

# Loaded on first use (reprs.lazy): `import sims` and the matrep command stay cheap.
_LAZY = {
    "analysis": ("sims.analysis", None),
    "anharmonicity": ("sims.anharmonicity", None),
    "fit": ("sims.fit", None),
    "lammps": ("sims.lammps", None),
    "potentials": ("sims.potentials", None),
    "FitDiverged": ("sims.errors", "FitDiverged"),
    "MissingCellError": ("sims.errors", "MissingCellError"),
    "SimsError": ("sims.errors", "SimsError"),
    "SimsInputError": ("sims.errors", "SimsInputError"),
    "SimulationStopped": ("sims.errors", "SimulationStopped"),
    "CellRescaling": ("sims.barostats", "CellRescaling"),
    "MTK": ("sims.barostats", "MTK"),
    "NegativePressureWarning": ("sims.barostats", "NegativePressureWarning"),
    "Integrator": ("sims.integrators", "Integrator"),
    "Langevin": ("sims.integrators", "Langevin"),
    "NoseHooverChain": ("sims.integrators", "NoseHooverChain"),
    "VelocityVerlet": ("sims.integrators", "VelocityVerlet"),
    "MD": ("sims.md", "MD"),
    "compute": ("sims.md", "compute"),
    "energy_and_forces": ("sims.md", "energy_and_forces"),
    "maxwell_boltzmann": ("sims.md", "maxwell_boltzmann"),
    "NeighborList": ("sims.neighbors", "NeighborList"),
    "PairList": ("sims.neighbors", "PairList"),
    "build_pairs": ("sims.neighbors", "build_pairs"),
    "neighbor_list": ("sims.neighbors", "neighbor_list"),
    "State": ("sims.state", "State"),
    "batch": ("sims.batch", None),
    "ensemble": ("sims.ensemble", None),
    "BatchMD": ("sims.batch", "BatchMD"),
    "BatchState": ("sims.batch", "BatchState"),
    "build_batch_pairs": ("sims.neighbors", "build_batch_pairs"),
    "surface_hopping": ("sims.surface_hopping", None),
    "FSSH": ("sims.surface_hopping", "FSSH"),
    "tully_model": ("sims.surface_hopping", "tully_model"),
    "exact_scattering": ("sims.surface_hopping", "exact_scattering"),
    "fssh_scattering": ("sims.surface_hopping", "fssh_scattering"),
    "TorsionalIsomerisation": ("sims.surface_hopping", "TorsionalIsomerisation"),
    "run_ensemble": ("sims.hopping_ensemble", "run_ensemble"),
}

__all__ = list(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
