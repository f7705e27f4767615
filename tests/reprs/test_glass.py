"""Glass networks: bonds against pymatgen's and brute-force neighbour searches, RDF against ASE,
crystal references against their published geometry, statistics against constructions by hand."""

from __future__ import annotations

import itertools
import math
import os

import networkx as nx
import numpy as np
import pytest
from ase import Atoms
from ase.geometry.rdf import get_rdf
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Molecule, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from scipy.spatial.distance import pdist, squareform

from reprs.errors import InputError, InputTypeError, MissingCellError
from sims.silica import beta_cristobalite
from reprs.structure import coordination_numbers
from reprs.glass import (
    CRYSTAL_REFERENCES,
    bridging_fractions,
    node_degrees,
    coordination_statistics,
    crystal_reference,
    local_environment,
    local_environments,
    network,
    partial_rdf,
    rdf_first_minimum,
)

SIO = {("Si", "O"): 2.0}


def random_silica(n_si: int = 40, seed: int = 0, density: float = 2.2) -> Atoms:
    """Random Si/O positions (1:2) in a triclinic cell: every kind of defect occurs."""
    rng = np.random.default_rng(seed)
    n = 3 * n_si
    volume = n_si * 60.08 / (density * 0.602214)  # Å^3 for the given g/cm^3
    shape = np.array([[1.0, 0.0, 0.0], [0.25, 0.95, 0.0], [0.1, 0.2, 0.9]])
    cell = shape * (volume / abs(np.linalg.det(shape))) ** (1 / 3)
    frac = rng.random((n, 3))
    return Atoms(["Si"] * n_si + ["O"] * (2 * n_si), scaled_positions=frac, cell=cell, pbc=True)


def edge_set(graph: nx.Graph) -> set[tuple[int, int]]:
    return {tuple(sorted(e)) for e in graph.edges()}


# --- bond networks -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_bonds_match_pymatgen_neighbor_list(seed):
    atoms = random_silica(seed=seed)
    cutoffs = {("Si", "O"): 2.0, ("O", "O"): 2.6, ("Si", "Si"): 2.4}
    graph = network(atoms, cutoffs)
    structure = AseAtomsAdaptor.get_structure(atoms)
    centre, neighbour, _, dist = structure.get_neighbor_list(r=2.6)
    species = np.array(atoms.get_chemical_symbols())
    limit = np.array([cutoffs.get((a, b), cutoffs.get((b, a))) for a, b in
                      zip(species[centre], species[neighbour])], dtype=float)
    keep = dist < limit
    expected = {tuple(sorted(p)) for p in zip(centre[keep].tolist(), neighbour[keep].tolist())}
    assert edge_set(graph) == expected
    lengths = {tuple(sorted((int(c), int(n)))): d for c, n, d in
               zip(centre[keep], neighbour[keep], dist[keep])}
    for u, v, r in graph.edges(data="length"):
        assert r == pytest.approx(lengths[tuple(sorted((u, v)))], abs=1e-9)
    assert {graph.edges[e]["label"] for e in graph.edges()} <= {"O-Si", "O-O", "Si-Si"}


def test_node_and_graph_attributes():
    atoms = random_silica()
    graph = network(atoms, SIO, name="melt")
    assert graph.graph["name"] == "melt" and graph.graph["cutoffs"] == {("O", "Si"): 2.0}
    node = graph.nodes[5]
    assert node["label"] == node["element"] == "Si" and node["index"] == 5
    np.testing.assert_array_equal(node["position"], atoms.positions[5])
    np.testing.assert_array_equal(node["x"], [14.0])
    u, v, data = next(iter(graph.edges(data=True)))
    np.testing.assert_array_equal(data["x"], [data["length"]])


def test_non_periodic_matches_brute_force_and_pymatgen_molecule():
    atoms = random_silica(n_si=20, seed=3)
    molecule = Molecule(atoms.get_chemical_symbols(), atoms.positions)
    graph = network(molecule, SIO)  # a Molecule has no cell: open boundaries
    d = squareform(pdist(atoms.positions))
    si = np.array(atoms.get_chemical_symbols()) == "Si"
    mask = (d < 2.0) & np.logical_xor.outer(si, si)
    expected = {tuple(sorted(p)) for p in zip(*np.nonzero(np.triu(mask)))}
    assert edge_set(graph) == expected
    assert edge_set(network(atoms, SIO, pbc=False)) == expected
    assert len(edge_set(network(atoms, SIO))) > len(expected)  # periodic images add bonds


def test_structure_and_atoms_give_the_same_network():
    atoms = random_silica(seed=4)
    structure = AseAtomsAdaptor.get_structure(atoms)
    assert edge_set(network(structure, SIO)) == edge_set(network(atoms, SIO))


def test_cation_network_equals_construction_by_hand():
    atoms = random_silica(n_si=60, seed=5, density=2.6)
    bonds = network(atoms, SIO)
    cations = network(atoms, SIO, bridge="O")
    expected: dict[tuple[int, int], int] = {}
    for o in (n for n, e in bonds.nodes(data="element") if e == "O"):
        for u, v in itertools.combinations(sorted(bonds.neighbors(o)), 2):
            expected[(u, v)] = expected.get((u, v), 0) + 1
    assert set(cations.nodes()) == {n for n, e in bonds.nodes(data="element") if e == "Si"}
    assert edge_set(cations) == set(expected)
    assert {(u, v): n for u, v, n in ((*sorted(e[:2]), e[2]) for e in
            cations.edges(data="n_bridges"))} == expected
    assert max(expected.values()) >= 2  # edge-sharing pairs occur in this random structure
    # Si-Si length through the bridge equals ASE's minimum-image distance (cell >> bond length).
    for u, v, r in cations.edges(data="length"):
        assert r == pytest.approx(atoms.get_distance(u, v, mic=True), abs=1e-9)
    assert all(cations.edges[e]["label"] == "Si-O-Si" for e in cations.edges())


# --- statistics --------------------------------------------------------------------------------


def test_coordination_and_bridging_against_counts_by_hand():
    atoms = random_silica(seed=6)
    graph = network(atoms, SIO)
    species = np.array(atoms.get_chemical_symbols())
    cn = np.array([graph.degree(k) for k in range(len(atoms))])
    np.testing.assert_array_equal(node_degrees(graph, "Si"), cn[species == "Si"])
    np.testing.assert_array_equal(node_degrees(graph, "O", "Si"), cn[species == "O"])
    # On a bond network, degrees are the distance counts of the atoms with the same cutoff.
    np.testing.assert_array_equal(node_degrees(graph, "Si"),
                                  coordination_numbers(atoms, 2.0, center="Si", neighbor="O"))
    stats = coordination_statistics(graph)
    values, counts = np.unique(cn[species == "O"], return_counts=True)
    assert stats["O"] == pytest.approx(dict(zip(values.tolist(), counts / counts.sum())))
    fractions = bridging_fractions(graph)
    o_cn = cn[species == "O"]
    assert fractions["free"] == pytest.approx(np.mean(o_cn == 0))
    assert fractions["non_bridging"] == pytest.approx(np.mean(o_cn == 1))
    assert fractions["bridging"] == pytest.approx(np.mean(o_cn == 2))
    assert fractions["overcoordinated"] == pytest.approx(np.mean(o_cn >= 3))
    assert sum(fractions.values()) == pytest.approx(1.0)


def test_removing_one_si_from_quartz_leaves_four_non_bridging_oxygens():
    quartz = crystal_reference("alpha-quartz", repeat=(3, 3, 3))
    del quartz[0]  # a Si vacancy
    graph = network(quartz, SIO)
    n_o = quartz.get_chemical_symbols().count("O")
    fractions = bridging_fractions(graph, formers=["Si"])
    assert fractions["non_bridging"] == pytest.approx(4 / n_o)
    assert fractions["bridging"] == pytest.approx(1 - 4 / n_o)
    assert coordination_statistics(graph)["Si"] == {4: 1.0}


# --- RDF and cutoffs ---------------------------------------------------------------------------


@pytest.mark.parametrize("pair", [("Si", "O"), ("O", "O"), ("O", "Si")])
def test_partial_rdf_matches_ase(pair):
    atoms = random_silica(n_si=60, seed=7)
    atoms.set_cell(np.diag(atoms.cell.lengths()), scale_atoms=True)  # ASE needs r_max < L/2
    r_max = 0.49 * atoms.cell.lengths().min()
    r, g = partial_rdf(atoms, pair, r_max=r_max, bins=40)
    numbers = [atoms.numbers[atoms.get_chemical_symbols().index(s)] for s in pair]
    ref, rr = get_rdf(atoms, r_max, 40, elements=numbers)
    # ASE normalises a partial by the total atom count; we by the other b atoms an a atom sees:
    # N_b for two species (Faber-Ziman), N_b - 1 for a like pair (reprs.structure's docstring).
    others = atoms.get_chemical_symbols().count(pair[1]) - (pair[0] == pair[1])
    np.testing.assert_allclose(r, rr)
    np.testing.assert_allclose(g, ref * len(atoms) / others, rtol=1e-10, atol=1e-12)


def test_partial_rdf_averages_frames():
    a, b = random_silica(seed=8), random_silica(seed=9)
    _, ga = partial_rdf(a, ("Si", "O"), r_max=5.0, bins=50)
    _, gb = partial_rdf(b, ("Si", "O"), r_max=5.0, bins=50)
    _, gab = partial_rdf([a, b], ("Si", "O"), r_max=5.0, bins=50)
    np.testing.assert_allclose(gab, 0.5 * (ga + gb))


def test_first_minimum_of_an_analytic_rdf():
    # Two Gaussian shells at 1.6 and 3.0 Å on a background of 1: the minimum of the sum lies where
    # the derivatives cancel; find it on a fine grid independently.
    r = np.linspace(0.01, 6.0, 1200)
    g = 1.0 - np.exp(-((r / 1.2) ** 8)) + 6 * np.exp(-((r - 1.6) ** 2) / 0.02) + 2 * np.exp(
        -((r - 3.0) ** 2) / 0.08
    )
    inside = (r > 1.7) & (r < 2.9)
    expected = r[inside][np.argmin(g[inside])]
    assert rdf_first_minimum(r, g, smooth=0) == pytest.approx(expected, abs=r[1] - r[0])


def test_rdf_cutoff_of_ideal_cristobalite_is_the_middle_of_the_gap():
    atoms = crystal_reference("beta-cristobalite", repeat=(2, 2, 2))
    a = CRYSTAL_REFERENCES["beta-cristobalite"]["cellpar"][0]
    r, g = partial_rdf(atoms, ("Si", "O"), r_max=6.0, bins=600)
    # Si-O shells at a*sqrt(3)/8 and a*sqrt(19)/8 (O at (1/8,1/8,1/8) and (3/8,3/8,-1/8)-type).
    first, second = a * math.sqrt(3) / 8, a * math.sqrt(19) / 8
    assert rdf_first_minimum(r, g) == pytest.approx(0.5 * (first + second), abs=0.06)


def test_first_minimum_refuses_a_g_without_one():
    r = np.linspace(0.01, 6.0, 600)
    shell = 4 * np.exp(-((r - 1.6) ** 2) / 0.01)
    with pytest.raises(InputError, match="no minimum after its first peak at 1.60 Å"):
        rdf_first_minimum(r, 1.0 + shell)  # falls to 1 and stays: no second shell
    with pytest.raises(InputError, match="no peak above 1"):
        rdf_first_minimum(r, 1.0 - np.exp(-r))
    with pytest.raises(InputError, match="one length"):
        rdf_first_minimum(r, shell[:-1])
    # In a network: the ideal crystal's RDF up to 2 Å holds the first shell and nothing after it.
    atoms = crystal_reference("beta-cristobalite", repeat=(2, 2, 2))
    with pytest.raises(InputError, match=r"cutoff 'rdf' for \('Si', 'O'\).*explicit cutoff in Å"):
        network(atoms, {("Si", "O"): "rdf"}, rdf_options={"r_max": 2.0, "bins": 100})


@pytest.mark.parametrize("amplitude", [0.02, 0.05, 0.1, 0.15])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rdf_cutoff_of_a_rattled_cristobalite_keeps_every_bond(amplitude, seed):
    # Gaussian displacements of 0.1 Å put counting noise on the rising edge of the 1.55 Å shell,
    # where a first-dip rule stopped (1.23 Å, 5 of 256 bonds). Every atom keeps its index, so the
    # bonds must be the ideal crystal's; the cutoff must lie in the empty gap between the longest
    # first-shell and the shortest second-shell Si-O distance (brute force over all pairs).
    ideal = beta_cristobalite(2)
    bonds = edge_set(network(ideal, SIO))
    atoms = ideal.copy()
    atoms.rattle(stdev=amplitude, seed=seed)
    graph = network(atoms, {("Si", "O"): "rdf"})
    cutoff = graph.graph["cutoffs"][("O", "Si")]
    assert graph.number_of_edges() == len(bonds) == 256 and edge_set(graph) == bonds
    d = atoms.get_all_distances(mic=True)
    si = np.array(atoms.get_chemical_symbols()) == "Si"
    si_o = d[np.ix_(si, ~si)]
    first = max(d[u, v] for u, v in bonds)
    second = si_o[si_o > first].min()
    assert first < cutoff < second
    assert 1.55 < cutoff < 3.90  # between the ideal crystal's first and second Si-O shells


def test_rdf_cutoffs_in_network_on_a_thermally_rattled_crystal():
    atoms = crystal_reference("alpha-quartz", repeat=(3, 3, 3))
    atoms.rattle(stdev=0.05, seed=1)
    graph = network(atoms, {("Si", "O"): "rdf"}, rdf_options={"r_max": 5.0, "bins": 250})
    cutoff = graph.graph["cutoffs"][("O", "Si")]
    assert 1.8 < cutoff < 3.0
    assert edge_set(graph) == edge_set(network(atoms, {("Si", "O"): cutoff}))
    assert coordination_statistics(graph) == {"O": {2: 1.0}, "Si": {4: 1.0}}


# --- crystal references ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CRYSTAL_REFERENCES))
def test_crystal_reference_density_and_connectivity(name):
    atoms = crystal_reference(name)
    n_si = atoms.get_chemical_symbols().count("Si")
    assert atoms.get_chemical_symbols().count("O") == 2 * n_si
    density = atoms.get_masses().sum() / atoms.get_volume() * 1.66053907
    published = CRYSTAL_REFERENCES[name]["density"]
    if published is not None:
        assert density == pytest.approx(published, rel=1e-3)
    graph = network(crystal_reference(name, repeat=(2, 2, 2)), SIO)
    assert coordination_statistics(graph) == {"O": {2: 1.0}, "Si": {4: 1.0}}
    assert bridging_fractions(graph)["bridging"] == 1.0
    assert coordination_statistics(network(atoms.repeat(2), SIO, bridge="O")) == {"Si": {4: 1.0}}


def _si_o_si_angles(atoms: Atoms) -> np.ndarray:
    graph = network(atoms, SIO)
    angles = [atoms.get_angle(*sorted(graph.neighbors(o))[:1], o, sorted(graph.neighbors(o))[1],
                              mic=True)
              for o, e in graph.nodes(data="element") if e == "O"]
    return np.array(angles)


def test_alpha_quartz_geometry_is_the_published_one():
    # Levien, Prewitt & Weidner (1980), 1 atm: Si-O 1.605 and 1.614 Å, Si-O-Si 143.7 degrees.
    atoms = crystal_reference("alpha-quartz", repeat=(2, 2, 2))
    lengths = sorted({round(r, 3) for *_, r in network(atoms, SIO).edges(data="length")})
    assert lengths == pytest.approx([1.605, 1.614], abs=1.5e-3)
    np.testing.assert_allclose(_si_o_si_angles(atoms), 143.7, atol=0.2)


def test_alpha_quartz_topology_equals_pymatgens_bundled_quartz():
    # pymatgen ships a DFT-relaxed alpha-quartz (util/structures/SiO2.json) with another origin.
    import pymatgen.util.structures as bundled

    path = os.path.join(list(bundled.__path__)[0], "SiO2.json")
    theirs = Structure.from_file(path)
    theirs.make_supercell((2, 2, 2))
    ours = crystal_reference("alpha-quartz", repeat=(2, 2, 2))
    assert nx.is_isomorphic(network(theirs, SIO), network(ours, SIO),
                            node_match=lambda a, b: a["element"] == b["element"])


def test_cristobalite_and_coesite_geometry():
    # Ideal beta-cristobalite: Si-O = a sqrt(3)/8 and straight Si-O-Si.
    atoms = crystal_reference("beta-cristobalite", repeat=(2, 2, 2))
    a = CRYSTAL_REFERENCES["beta-cristobalite"]["cellpar"][0]
    lengths = [r for *_, r in network(atoms, SIO).edges(data="length")]
    np.testing.assert_allclose(lengths, a * math.sqrt(3) / 8, rtol=1e-12)
    np.testing.assert_allclose(_si_o_si_angles(atoms), 180.0, atol=1e-6)
    # Coesite: O1 sits on an inversion centre, so Si1-O1-Si1 is straight; O1 is 4 of 32 O
    # (Levien & Prewitt 1981). All other bridges are bent.
    angles = _si_o_si_angles(crystal_reference("coesite", repeat=(2, 2, 2)))
    assert np.mean(np.isclose(angles, 180.0, atol=1e-6)) == pytest.approx(4 / 32)
    assert angles[~np.isclose(angles, 180.0, atol=1e-6)].max() < 160.0


# --- local environments ------------------------------------------------------------------------


def test_local_environments_equal_networkx_ego_graphs():
    graph = network(random_silica(seed=10), SIO)
    centres = [0, 3, 17, 50]
    for k in (0, 1, 3):
        for env, c in zip(local_environments(graph, k, centres), centres):
            ego = nx.ego_graph(graph, c, radius=k)
            assert set(env.nodes()) == set(ego.nodes()) and edge_set(env) == edge_set(ego)
            shells = nx.single_source_shortest_path_length(graph, c, cutoff=k)
            assert nx.get_node_attributes(env, "shell") == shells
            assert env.graph["center"] == c and env.graph["k"] == k
    # centres as a one-pass iterable: it was consumed by the check of unknown centres, and the call
    # then refused "no centres selected"
    assert [e.graph["center"] for e in local_environments(graph, 1, iter(centres))] == centres
    si_envs = local_environments(graph, 1, element="Si")
    assert [e.graph["center"] for e in si_envs] == [n for n, s in graph.nodes(data="element")
                                                    if s == "Si"]


def test_local_environments_tell_coesite_from_quartz_and_cristobalite():
    # Within 4 bonds (Si-O-Si-O-Si) quartz and cristobalite are both trees (their smallest rings
    # have 6 tetrahedra = 12 bonds); coesite's 4-membered rings (8 bonds) close inside the shell.
    quartz = network(crystal_reference("alpha-quartz", repeat=(3, 3, 3)), SIO)
    cristobalite = network(crystal_reference("beta-cristobalite", repeat=(2, 2, 2)), SIO)
    coesite = network(crystal_reference("coesite", repeat=(3, 2, 3)), SIO)
    q, c = local_environment(quartz, 0, 4), local_environment(cristobalite, 0, 4)
    assert nx.is_tree(q) and nx.is_isomorphic(q, c)
    for env in local_environments(coesite, 4, element="Si"):
        assert not nx.is_tree(env)
        assert nx.cycle_basis(env) and min(len(cy) for cy in nx.cycle_basis(env)) == 8


# --- bad input ---------------------------------------------------------------------------------


def test_bad_input():
    atoms = random_silica()
    no_cell = Atoms("SiO2", positions=[[0, 0, 0], [1.6, 0, 0], [-1.6, 0, 0]])
    with pytest.raises(MissingCellError):
        network(no_cell, SIO, pbc=True)
    assert network(no_cell, SIO).number_of_edges() == 2  # open boundaries by default
    with pytest.raises(MissingCellError):
        partial_rdf(no_cell, ("Si", "O"))
    with pytest.raises(InputError, match="not in the structure"):
        network(atoms, {("Si", "N"): 2.0})
    with pytest.raises(InputError, match="positive"):
        network(atoms, {("Si", "O"): -1.0})
    with pytest.raises(InputError, match="'rdf'"):
        network(atoms, {("Si", "O"): "auto"})
    with pytest.raises(InputTypeError):
        network(atoms, {"SiO": 2.0})
    with pytest.raises(InputTypeError):
        network(atoms, [("Si", "O")])
    with pytest.raises(InputTypeError):
        network("quartz.cif", SIO)
    with pytest.raises(InputError, match="bridge species"):
        network(atoms, SIO, bridge="N")
    # Only Si-O bonds make the cation network: a Si-Si or O-O cutoff was accepted and ignored.
    quartz = crystal_reference("alpha-quartz", repeat=(2, 2, 2))
    with pytest.raises(InputError, match=r"cutoffs for Si-Si: with bridge='O' .* only cation-O cutoffs"):
        network(quartz, {**SIO, ("Si", "Si"): 3.2}, bridge="O")
    with pytest.raises(InputError, match=r"cutoffs for O-O, Si-Si: with bridge='O'"):
        network(quartz, {**SIO, ("O", "O"): 2.7, ("Si", "Si"): "rdf"}, bridge="O")
    assert network(quartz, SIO, bridge="O").number_of_edges() == 48  # each O joins two of 24 Si
    with pytest.raises(InputError, match="own periodic image"):
        network(crystal_reference("alpha-quartz"), {("Si", "Si"): 5.0})  # a = 4.916 Å
    chain = Atoms("SiO", positions=[[0, 0, 0], [1.5, 0, 0]], cell=[3.0, 10, 10], pbc=True)
    with pytest.raises(InputError, match="2 periodic images"):
        network(chain, SIO)  # O bonds to Si at +1.5 and -1.5 Å: repeat the cell
    assert network(chain.repeat((2, 1, 1)), SIO).number_of_edges() == 4
    with pytest.raises(InputError, match="unknown polymorph"):
        crystal_reference("stishovite")
    graph = network(atoms, SIO)
    with pytest.raises(InputError, match="k must be"):
        local_environments(graph, -1)
    with pytest.raises(InputError, match="not nodes"):
        local_environment(graph, 10_000, 2)
    with pytest.raises(InputError, match="no 'N' atoms"):
        node_degrees(graph, "N")
    with pytest.raises(InputError):
        bridging_fractions(nx.Graph())


def test_not_only_silica_antifluorite_li2o():
    # pymatgen's bundled Li2O (antifluorite, species carry oxidation states): Li sits in O4
    # tetrahedra and O in Li8 cubes; the O-bridged Li network joins Li sharing a corner.
    import pymatgen.util.structures as bundled

    li2o = Structure.from_file(os.path.join(list(bundled.__path__)[0], "Li2O.json"))
    with pytest.raises(InputError, match="different periodic images"):
        network(li2o.make_supercell((2, 2, 2), in_place=False), {("Li", "O"): 2.3}, bridge="O")
    # Twice the cubic cell (the fcc primitive cell is stored): 9.3 Å > 2 x the Li-O-Li span.
    li2o.make_supercell([[-2, 2, 2], [2, -2, 2], [2, 2, -2]])
    for cutoff in (2.3, "rdf"):
        graph = network(li2o, {("Li", "O"): cutoff})
        assert coordination_statistics(graph) == {"Li": {4: 1.0}, "O": {8: 1.0}}
    lithium = network(li2o, {("Li", "O"): 2.3}, bridge="O")
    # Each Li: 4 O x 7 other Li per O on the simple-cubic Li sublattice: the 6 nearest share two
    # O, the 12 second neighbours one, and 4 of the 8 third neighbours one: 28 = 6*2 + 12 + 4.
    assert coordination_statistics(lithium) == {"Li": {22: 1.0}}
    shared = sorted({n for *_, n in lithium.edges(data="n_bridges")})
    assert shared == [1, 2]


@settings(max_examples=15, deadline=None)
@given(st.tuples(*[st.floats(-20.0, 20.0)] * 3), st.integers(0, 3))
def test_network_is_invariant_to_translation_and_wrapping(shift, seed):
    atoms = random_silica(n_si=20, seed=seed)
    reference = network(atoms, SIO)
    moved = atoms.copy()
    moved.translate(shift)
    moved.wrap()
    graph = network(moved, SIO)
    assert edge_set(graph) == edge_set(reference)
    for u, v, r in graph.edges(data="length"):
        assert r == pytest.approx(reference.edges[u, v]["length"], abs=1e-9)
