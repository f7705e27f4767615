"""Every public function that takes a configuration of atoms refuses NaN and infinite coordinates.

They all validate at the edge through :func:`reprs.atoms.as_atoms` (one conversion, one check), so
a bad position raises an ``InputError`` naming the atom instead of giving a silently wrong answer
(a glass network of a structure with a NaN position used to be a graph with no edges).
"""

from __future__ import annotations

import math
import tempfile

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import sims
from learners.potentials import Calculator, SchNet, collate_atoms
from reprs.errors import InputError
from reprs.featurizers import CoulombMatrix, CrystalGraph, SineMatrix, as_structure, periodic_neighbors
from reprs.glass import network, partial_rdf
from sims.potentials import LennardJones
from sims.silica import silica_structure


def _silica() -> Atoms:
    """Four formula units of a crude SiO2 box (Si at the corners, O between), periodic."""
    atoms = bulk("Si", "sc", a=3.2).repeat(2)
    oxygens = Atoms("O" * 8, positions=atoms.positions + [1.6, 0.0, 0.0], cell=atoms.cell, pbc=True)
    return atoms + oxygens


def _model_energy(atoms: Atoms) -> float:
    # an untrained model: only the input check matters here
    atoms.calc = Calculator(SchNet(cutoff=3.0, n_features=8, n_rbf=8, n_interactions=1))
    return atoms.get_potential_energy()


def _lj():
    return LennardJones(sigma=2.0, epsilon=0.01, cutoff=4.0)


def _lammps_inputs(atoms: Atoms):
    with tempfile.TemporaryDirectory() as folder:
        return sims.lammps.write_inputs(atoms, _lj(), [{"steps": 1, "ensemble": "nve"}], folder)


ENTRY_POINTS = {
    "reprs.glass.network": lambda a: network(a, {("Si", "O"): 2.0}),
    "reprs.glass.partial_rdf": lambda a: partial_rdf(a, ("Si", "O"), r_max=3.0, bins=30),
    "reprs.featurizers.CrystalGraph": lambda a: CrystalGraph(r_cut=3.0).featurize(a),
    "reprs.featurizers.periodic_neighbors": lambda a: periodic_neighbors(a, 3.0),
    "reprs.featurizers.CoulombMatrix": lambda a: CoulombMatrix(n_atoms_max=16).featurize(a),
    "reprs.featurizers.SineMatrix": lambda a: SineMatrix(n_atoms_max=16).featurize(a),
    "reprs.featurizers.as_structure": as_structure,
    "sims.State.from_atoms": sims.State.from_atoms,
    "sims.neighbor_list": lambda a: sims.neighbor_list(a, 3.0),
    "sims.energy_and_forces": lambda a: sims.energy_and_forces(_lj(), a),
    "sims.MD": lambda a: sims.MD(a, _lj(), sims.VelocityVerlet(1.0)),
    "sims.analysis.RDF": lambda a: sims.analysis.RDF(r_max=3.0, bins=30).compute(a),
    "sims.analysis.coordination_numbers": lambda a: sims.analysis.coordination_numbers(a, 2.0),
    "sims.analysis.bond_angles": lambda a: sims.analysis.bond_angles(a, 2.0),
    "sims.silica.silica_structure": silica_structure,
    "sims.lammps.write_inputs": _lammps_inputs,
    "learners.potentials.collate_atoms": lambda a: collate_atoms([a], 3.0),
    "learners.potentials.Calculator": _model_energy,
}


def test_the_structure_is_good_input():
    # the same call on the clean structure works, so the refusals below are about the coordinates
    for name, call in ENTRY_POINTS.items():
        call(_silica())
    assert network(_silica(), {("Si", "O"): 2.0}).number_of_edges() == 16  # each O between two Si


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_non_finite_position_is_refused(entry, value):
    atoms = _silica()
    atoms.positions[9, 1] = value
    with pytest.raises(InputError, match=r"atom 9 \(O\) has a non-finite position"):
        ENTRY_POINTS[entry](atoms)


@pytest.mark.parametrize("entry", ["reprs.glass.network", "reprs.featurizers.CrystalGraph", "sims.neighbor_list",
                                   "learners.potentials.collate_atoms"])
def test_non_finite_cell_is_refused(entry):
    atoms = _silica()
    cell = np.array(atoms.cell[:])
    cell[2, 2] = math.nan
    atoms.set_cell(cell)
    with pytest.raises(InputError, match="cell vector 2 is not finite"):
        ENTRY_POINTS[entry](atoms)
