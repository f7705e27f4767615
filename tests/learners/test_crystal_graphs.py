"""GNNs on crystal graphs (reprs.featurizers.CrystalGraph): conversion and a learnable target."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.neighborlist import neighbor_list

from learners import GNNRegressor
from learners.data import graphs_to_data
from reprs.featurizers import CrystalGraph
from reprs.glycans import glycan_graph


def test_symmetric_crystal_graphs_are_not_doubled():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    (data,) = graphs_to_data([CrystalGraph(r_cut=4.0, n_gaussians=8).featurize(atoms)])
    i, j = neighbor_list("ij", atoms, 4.0)  # ASE's count: 12 + 6 neighbours of each of 4 atoms
    assert data.edge_index.shape[1] == len(i) == 72
    assert sorted(zip(*data.edge_index.tolist())) == sorted(zip(i.tolist(), j.tolist()))
    # a glycan graph (stored child -> parent) still gets both directions
    glycan = glycan_graph("Gal(b1-4)GlcNAc(b1-2)Man")
    (data,) = graphs_to_data([glycan])
    assert data.edge_index.shape[1] == 2 * glycan.number_of_edges()


def test_edge_conditioned_gnn_learns_emt_energies_of_strained_metals():
    # ASE's EMT energy per atom of strained and rattled fcc Cu, Al, Ni and Ag: a function of the
    # interatomic distances, which the crystal graph carries as Gaussian edge features.
    rng = np.random.default_rng(0)
    structures, energy = [], []
    for _ in range(150):
        atoms = bulk(str(rng.choice(["Cu", "Al", "Ni", "Ag"])), "fcc", cubic=True)
        atoms.set_cell(atoms.cell[:] * (1 + rng.uniform(-0.05, 0.05)), scale_atoms=True)
        atoms.rattle(0.02, seed=int(rng.integers(1_000_000)))
        atoms.calc = EMT()
        energy.append(atoms.get_potential_energy() / len(atoms))
        structures.append(atoms)
    energy = np.array(energy)
    graphs = CrystalGraph(r_cut=3.2, n_gaussians=24, node_properties=["period", "group"]).featurize_many(
        structures, progress=False
    )
    reg = GNNRegressor(kind="nnconv", readout="mean", hidden=32, layers=2, epochs=100, lr=3e-3, batch_size=16, seed=1)
    reg.fit(graphs[:110], energy[:110])
    assert reg.score(graphs[110:], energy[110:]) > 0.9  # the training mean scores 0
