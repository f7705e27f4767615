"""reprs.cg_mapping: mappings, bead centres against ASE's centre of mass, bonds against ASE's neighbour list."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.neighborlist import NeighborList, natural_cutoffs

from reprs.cg_mapping import (CGMapping, alpha_carbon_mapping, bond_matrix, covalent_bonds, girvan_newman_mapping,
                              heavy_atom_mapping, user_mapping)
from reprs.errors import InputError


@pytest.fixture
def ethanol():
    return molecule("CH3CH2OH")  # C C O then H: O-H is atom 8, CH2 hydrogens 6-7, CH3 3-5


def test_bead_centres_are_ase_centres_of_mass_and_geometric_means(ethanol):
    beads = [[0, 3, 4, 5], [1, 6, 7], [2, 8]]
    by_mass = user_mapping(ethanol, beads)
    geometric = user_mapping(ethanol, beads, centre="geometric")
    for k, bead in enumerate(beads):
        np.testing.assert_allclose(by_mass.bead_positions(ethanol)[k], ethanol[bead].get_center_of_mass(), atol=1e-12)
        np.testing.assert_allclose(geometric.bead_positions(ethanol.positions)[k], ethanol.positions[bead].mean(0),
                                   atol=1e-12)
    stack = np.stack([ethanol.positions, ethanol.positions + 1.0])
    np.testing.assert_allclose(by_mass.bead_positions(stack)[1], by_mass.bead_positions(ethanol) + 1.0, atol=1e-12)
    assert by_mass.bead_symbols == ("C", "C", "O")
    # the same partition given as one bead index per atom
    same = user_mapping(ethanol, by_mass.assignment.tolist())
    np.testing.assert_array_equal(same.assignment, by_mass.assignment)


def test_user_mapping_refuses_unassigned_twice_and_out_of_range_atoms(ethanol):
    with pytest.raises(InputError, match=r"atoms \[8\] are in no bead"):
        user_mapping(ethanol, [[0, 3, 4, 5], [1, 6, 7], [2]])
    with pytest.raises(InputError, match="atom 2 is assigned twice"):
        user_mapping(ethanol, [[0, 2, 3, 4, 5], [1, 6, 7], [2, 8]])
    with pytest.raises(InputError, match="atom 3 is assigned twice"):
        user_mapping(ethanol, [[0, 3, 3, 4, 5], [1, 6, 7], [2, 8]])
    with pytest.raises(InputError, match="names atom 9"):
        user_mapping(ethanol, [[0, 3, 4, 5], [1, 6, 7], [2, 8, 9]])
    with pytest.raises(InputError, match="bead 1 has no atoms"):
        user_mapping(ethanol, [0, 0, 2, 0, 0, 0, 2, 2, 2])
    with pytest.raises(InputError, match="bead 1 is empty"):
        user_mapping(ethanol, [list(range(9)), []])


def test_cg_frames_are_checked_for_bead_count_order_and_nan(ethanol):
    mapping = user_mapping(ethanol, [[0, 3, 4, 5], [1, 6, 7], [2, 8]])
    cg = mapping.cg_frame(ethanol)
    np.testing.assert_allclose(mapping.check_frame(cg), mapping.bead_positions(ethanol))
    with pytest.raises(InputError, match="has 2 beads but the mapping has 3"):
        mapping.check_frame(cg[:2])
    with pytest.raises(InputError, match="bead 1 of the CG frame is O but the mapping's bead 1 is C"):
        mapping.check_frame(cg[[0, 2, 1]])
    bad = cg.copy()
    bad.positions[1, 2] = np.nan
    with pytest.raises(InputError, match="non-finite position"):
        mapping.check_frame(bad)
    x = ethanol.positions.copy()
    x[4, 0] = np.nan
    with pytest.raises(InputError, match="non-finite coordinate"):
        mapping.bead_positions(x)
    with pytest.raises(InputError, match="do not fit the mapping"):
        mapping.bead_positions(x[:5])


def test_covalent_bonds_match_ase_neighbour_list():
    for name in ("CH3CH2OH", "C6H6", "CH3COOH", "isobutane"):
        mol = molecule(name)
        nl = NeighborList(natural_cutoffs(mol, mult=1.3), self_interaction=False, bothways=False, skin=0.0)
        nl.update(mol)
        expected = sorted(tuple(sorted((i, int(j)))) for i in range(len(mol)) for j in nl.get_neighbors(i)[0])
        assert covalent_bonds(mol.numbers, mol.positions).tolist() == [list(p) for p in expected]
        adjacency = bond_matrix(mol.numbers, mol.positions)
        assert (adjacency == adjacency.T).all() and adjacency.sum() == 2 * len(expected)


def test_heavy_atom_mapping_puts_each_hydrogen_with_its_bonded_heavy_atom():
    mol = molecule("CH3COOH")
    mapping = heavy_atom_mapping(mol)
    heavy = np.flatnonzero(mol.numbers > 1)
    assert mapping.n_beads == heavy.size
    np.testing.assert_array_equal(mapping.assignment[heavy], np.arange(heavy.size))
    for i, j in covalent_bonds(mol.numbers, mol.positions):
        if mol.numbers[i] == 1 or mol.numbers[j] == 1:
            assert mapping.assignment[i] == mapping.assignment[j]


def test_girvan_newman_cuts_a_chain_at_its_middle_bond():
    # n-hexane's carbon chain C0-...-C5: the middle bond has the highest betweenness (9 shortest
    # paths cross it), so 2 beads are the two propyl halves; 3 beads split one half further.
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CCCCCC"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    atoms = Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=mol.GetConformer().GetPositions())
    two = girvan_newman_mapping(atoms, 2)
    np.testing.assert_array_equal(two.assignment[:6], [0, 0, 0, 1, 1, 1])
    three = girvan_newman_mapping(atoms, 3)
    assert three.n_beads == 3 and len(set(three.assignment[:6].tolist())) == 3
    one = girvan_newman_mapping(atoms, 1)
    assert (one.assignment == 0).all()
    with pytest.raises(InputError, match="n_beads must be an integer from 1 to the 6 heavy atoms"):
        girvan_newman_mapping(atoms, 7)


def test_alpha_carbon_mapping_puts_each_bead_on_its_ca():
    mol = molecule("CH3CH2OH")
    residues = [0, 1, 1, 0, 0, 0, 1, 1, 1]
    mapping = alpha_carbon_mapping(mol, residues=residues, alpha_carbons=[0, 1])
    np.testing.assert_allclose(mapping.bead_positions(mol), mol.positions[[0, 1]], atol=1e-12)
    assert mapping.bead_symbols == ("C", "C")  # the atom carrying the weight, not the bead's heavier O
    with pytest.raises(InputError, match="exactly one alpha carbon"):
        alpha_carbon_mapping(mol, residues=residues, alpha_carbons=[0, 3])
    with pytest.raises(InputError, match="give residues="):
        alpha_carbon_mapping(mol)


def test_mapping_round_trips_through_a_dict(ethanol):
    mapping = girvan_newman_mapping(ethanol, 2, centre="geometric")
    back = CGMapping.from_dict(mapping.to_dict())
    np.testing.assert_array_equal(back.assignment, mapping.assignment)
    np.testing.assert_array_equal(back.weights, mapping.weights)
    assert back.bead_symbols == mapping.bead_symbols


def test_a_periodic_frame_split_by_the_cell_boundary_is_refused():
    # bead centres are weighted means of the positions: wrapped into its cell, ethanol had a bead 0.67 Å off its
    # centre (even under the minimum image) and beads a cell length apart. Fails on the old code (checked).
    ethanol = molecule("CH3CH2OH")
    mapping = heavy_atom_mapping(ethanol)
    whole = ethanol.copy()
    whole.set_cell([10.0, 10.0, 10.0])
    whole.pbc = True
    whole.positions += [8.0, 5.0, 5.0]  # a whole molecule reaching past x = 10 Å
    np.testing.assert_allclose(mapping.bead_positions(whole), mapping.bead_positions(whole.positions), atol=1e-12)
    cg = mapping.cg_frame(whole)  # the CG frame stays in the molecule's periodic cell
    assert cg.pbc.all() and np.allclose(cg.cell, whole.cell)
    wrapped = whole.copy()
    wrapped.wrap()
    with pytest.raises(InputError, match=r"split by the periodic cell boundary \(atoms \d+ and \d+ are bonded across"):
        mapping.bead_positions(wrapped)
    with pytest.raises(InputError, match="split by the periodic cell boundary"):
        mapping.cg_frame(wrapped)
    # the constructors read distances too: hydrogen 6 went to the oxygen's bead, not its carbon's
    assert heavy_atom_mapping(whole).assignment.tolist() == mapping.assignment.tolist()
    for build in (heavy_atom_mapping, lambda atoms: girvan_newman_mapping(atoms, 2)):
        with pytest.raises(InputError, match="split by the periodic cell boundary"):
            build(wrapped)
