"""Neural-network interatomic potentials: SchNet and PaiNN, committees, an ASE calculator, training.

- :class:`SchNet`, :class:`PaiNN`: ``torch.nn.Module`` s mapping a batch of structures (positions,
  atomic numbers, cells, a :mod:`sims` neighbour list) to per-structure energies; forces and stress
  by autograd. Each is also a :mod:`sims` potential, so :class:`sims.MD` runs NN-potential MD.
- :class:`Committee`: K models on one shared neighbour list; mean and spread of energy and forces.
  :class:`UncertaintyMonitor` records (and flags or stops on) the spread during :class:`sims.MD`;
  :meth:`Committee.spread_threshold` calibrates its threshold on held-out frames for a cell's size.
- :class:`Calculator`: the ASE face (energy, forces, stress; a committee's spread in ``results``).
- :func:`save_potential`, :func:`load_potential`: hyperparameters and weights in one file.
- :mod:`learners.potentials.training`: datasets streamed from ASE databases, splits by trajectory,
  the energy + force loss, and training through :class:`learners.trainer.Trainer`.

Examples
--------
>>> from learners.potentials import PaiNN, Calculator
>>> model = PaiNN(cutoff=5.0)
"""

from __future__ import annotations

from .base import NeuralPotential, evaluate
from .batch import AtomsBatch, collate_atoms
from .calculator import Calculator
from .committee import Committee, UncertaintyExceeded, UncertaintyMonitor, structure_force_variance
from .painn import PaiNN
from .schnet import SchNet
from .store import load_potential, save_potential
from .training import AtomsDataset, PotentialLoss, fit_potential, potential_metrics, trajectory_split

__all__ = ["SchNet", "PaiNN", "Committee", "Calculator", "UncertaintyMonitor", "UncertaintyExceeded",
           "structure_force_variance",
           "NeuralPotential", "evaluate", "AtomsBatch", "collate_atoms", "save_potential", "load_potential",
           "AtomsDataset", "PotentialLoss", "fit_potential", "potential_metrics", "trajectory_split"]
