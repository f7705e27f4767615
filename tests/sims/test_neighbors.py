"""Neighbour lists against ``ase.neighborlist.neighbor_list`` on random periodic systems."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

import sims
from reprs.errors import InputError
from sims.errors import MissingCellError, SimsInputError


def _pair_set(i, j, S):
    return set(zip(i.tolist(), j.tolist(), map(tuple, np.asarray(S).tolist())))


@pytest.mark.parametrize("seed", range(12))
def test_pairs_equal_ase_random(seed, random_atoms):
    rng = np.random.default_rng(seed)
    pbc = rng.random(3) < 0.7
    atoms = random_atoms(rng, int(rng.integers(1, 40)), triclinic=bool(seed % 2), pbc=pbc)
    # Cutoffs up to 9 Å exceed half (and often all) of the 3-9 Å cells: several images are needed.
    cutoff = float(rng.uniform(1.0, 9.0))
    i, j, S = sims.neighbor_list(atoms, cutoff)
    ours = _pair_set(i, j, S)
    assert len(ours) == len(i), "a pair was produced twice"
    assert ours == _pair_set(*ase_neighbor_list("ijS", atoms, cutoff))


def test_known_coordination_fcc_triclinic():
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6)  # primitive (triclinic) cell of one atom
    i, j, S = sims.neighbor_list(atoms, 3.0)
    assert len(i) == 12  # fcc: 12 nearest neighbours at a/sqrt(2) = 2.55 Å, all self-images
    i, j, S = sims.neighbor_list(atoms, 3.7)
    assert len(i) == 18  # plus 6 second neighbours at a = 3.6 Å


def test_non_periodic_molecule_without_cell():
    rng = np.random.default_rng(5)
    atoms = Atoms("C12", positions=rng.uniform(0, 6, (12, 3)))
    ours = _pair_set(*sims.neighbor_list(atoms, 3.0))
    assert ours == _pair_set(*ase_neighbor_list("ijS", atoms, 3.0))


def test_half_list_is_half_of_full(random_atoms):
    rng = np.random.default_rng(1)
    atoms = random_atoms(rng, 30, triclinic=True, pbc=True)
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float64)  # noqa: E731
    full = sims.build_pairs(t(atoms.positions), t(atoms.cell[:]), torch.tensor([True] * 3), 6.0)
    half = sims.build_pairs(t(atoms.positions), t(atoms.cell[:]), torch.tensor([True] * 3), 6.0, half=True)
    assert 2 * len(half.i) == len(full.i)
    both = _pair_set(half.i, half.j, half.shifts.long()) | _pair_set(half.j, half.i, (-half.shifts).long())
    assert both == _pair_set(full.i, full.j, full.shifts.long())


def test_skin_list_rebuilds_only_when_needed(random_atoms):
    rng = np.random.default_rng(2)
    atoms = random_atoms(rng, 20, triclinic=False, pbc=True)
    pos = torch.as_tensor(atoms.positions)
    cell, pbc = torch.as_tensor(atoms.cell[:]), torch.tensor([True] * 3)
    nl = sims.NeighborList(cutoff=3.0, skin=1.0)
    nl.update(pos, cell, pbc)
    small = pos + 0.2 * torch.nn.functional.normalize(torch.randn(pos.shape, dtype=pos.dtype), dim=1)
    nl.update(small, cell, pbc)
    assert nl.n_builds == 1
    moved = pos.clone()
    moved[0, 0] += 0.6
    nl.update(moved, cell, pbc)
    assert nl.n_builds == 2


@pytest.mark.parametrize("half", [True, False])
def test_pair_order_depends_on_the_pairs_alone(random_atoms, half):
    """A translation changes every bin but no pair (i, j, S): the list comes out identical."""
    rng = np.random.default_rng(4)
    atoms = random_atoms(rng, 30, triclinic=True, pbc=True)
    pos = torch.as_tensor(atoms.positions)
    cell, pbc = torch.as_tensor(atoms.cell[:]), torch.tensor([True] * 3)
    a = sims.build_pairs(pos, cell, pbc, 4.5, half=half)
    b = sims.build_pairs(pos + torch.tensor([1.37, -2.91, 0.58], dtype=pos.dtype), cell, pbc, 4.5, half=half)
    assert len(a.i) > 100
    assert torch.equal(a.i, b.i) and torch.equal(a.j, b.j) and torch.equal(a.shifts, b.shifts)
    assert bool((a.i[1:] >= a.i[:-1]).all())
    if half:
        assert bool((a.i <= a.j).all())


def test_md_is_bitwise_the_same_whatever_the_rebuild_schedule():
    """Skin pairs add exact zeros and common pairs come in one order: forces, hence trajectories,
    do not depend on when (or with which skin) the list was rebuilt."""
    from ase.build import bulk

    atoms = bulk("Ar", "fcc", a=5.3, cubic=True).repeat(3)
    atoms.rattle(0.05, seed=3)
    pot = sims.potentials.LennardJones(sigma=3.4, epsilon=0.0104, cutoff=7.0, dtype=torch.float64)
    runs = []
    for skin in (0.3, 1.5):
        md = sims.MD(atoms, pot, sims.VelocityVerlet(timestep=5.0), temperature=150.0, seed=1, skin=skin,
                     record_every=0)
        md.run(60)
        runs.append((md.positions_array(), md.neighbors.n_builds))
    assert runs[0][1] > runs[1][1] >= 1  # the two runs did rebuild at different steps
    assert np.array_equal(runs[0][0], runs[1][0])


def test_bad_input():
    atoms = Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]], cell=np.eye(3) * 5, pbc=True)
    with pytest.raises(InputError, match=r"atom 1 \(H\) has a non-finite position"):
        sims.neighbor_list(atoms, 2.0)
    with pytest.raises(MissingCellError):
        sims.neighbor_list(Atoms("H2", positions=[[0, 0, 0], [1, 0, 0]], pbc=True), 2.0)
    with pytest.raises(SimsInputError, match="cutoff"):
        sims.neighbor_list(Atoms("H2", positions=[[0, 0, 0], [1, 0, 0]]), -1.0)


def test_batch_list_holds_each_systems_lone_list_in_its_order(random_atoms):
    """One builder: a batch's list, cut to system b, is build_pairs of b alone, pair for pair."""
    from sims.batch import BatchState

    rng = np.random.default_rng(7)
    systems = [random_atoms(rng, int(rng.integers(2, 30)), triclinic=bool(k % 2), pbc=[True, True, k != 2])
               for k in range(4)]
    state = BatchState.from_atoms(systems, dtype=torch.float64)
    for half in (True, False):
        batch = sims.build_batch_pairs(state.positions, state.cell, state.pbc, state.system, 5.0, half=half)
        start = 0
        for b, atoms in enumerate(systems):
            lone = sims.build_pairs(torch.as_tensor(atoms.positions), torch.as_tensor(atoms.cell[:]),
                                    torch.as_tensor(atoms.pbc), 5.0, half=half)
            mine = torch.nonzero(state.system[batch.i] == b).squeeze(1)
            assert torch.equal(batch.i[mine] - start, lone.i) and torch.equal(batch.j[mine] - start, lone.j)
            assert torch.equal(batch.shifts[mine], lone.shifts)
            start += len(atoms)


def test_batch_md_is_bitwise_the_same_whatever_the_rebuild_schedule():
    """Each system's pairs come as one block in canonical order, fresh or patched: a batch's trajectories
    do not depend on which systems rebuilt when (skins 0.3 and 1.5 Å rebuild at different steps)."""
    from ase.build import bulk

    from sims.batch import BatchMD

    systems = []
    for k, a in enumerate((5.3, 5.5, 5.4)):
        atoms = bulk("Ar", "fcc", a=a, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=k)
        systems.append(atoms)
    pot = sims.potentials.LennardJones(sigma=3.4, epsilon=0.0104, cutoff=6.0, dtype=torch.float64)
    runs = []
    for skin in (0.3, 1.5):
        md = BatchMD(systems, pot, sims.VelocityVerlet(timestep=5.0), temperature=[100.0, 200.0, 300.0], seed=1,
                     skin=skin, dtype=torch.float64)
        md.run(60)
        runs.append((md.state.positions.clone(), md.neighbors.n_builds + md.neighbors.n_partial_builds,
                     md.neighbors.n_partial_builds))
    assert runs[0][1] > runs[1][1] >= 1 and runs[0][2] > 0
    assert torch.equal(runs[0][0], runs[1][0])


def _ase_batch_pairs(systems, cutoff):
    """ASE's pairs ``(i, j, S)`` of each system, with atom indices into the batch."""
    expected, offset = set(), 0
    for atoms in systems:
        i, j, S = ase_neighbor_list("ijS", atoms, cutoff)
        expected |= _pair_set(i + offset, j + offset, S)
        offset += len(atoms)
    return expected


def _both_builders(state, cutoff, half):
    """The lists of a batch from the all-pairs search of small cells and from the cell list, each alone."""
    from sims import neighbors

    cell = neighbors._complete_cells(state.cell, state.pbc)
    inv = torch.linalg.inv(cell)
    return (neighbors._small_cell_pairs(state.positions, cell, inv, state.pbc, state.atoms_per_system(), cutoff, half),
            neighbors._cell_list(state.positions, cell, inv, state.pbc, state.system, cutoff, half))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_small_cell_search_equals_ase_and_the_cell_list(seed, dtype, random_atoms):
    """The batched all-pairs search of small cells: each system's ASE pairs, and the cell list's list pair for
    pair in the same order, on batches of triclinic cells of different sizes and periodicities, with cutoffs
    up to several cell widths (many images of one pair)."""
    from sims.batch import BatchState

    rng = np.random.default_rng(100 + seed)
    systems = [random_atoms(rng, int(rng.integers(1, 25)), triclinic=bool((seed + k) % 2),
                            pbc=rng.random(3) < 0.8) for k in range(5)]
    cutoff = float(rng.uniform(3.0, 10.0))  # cells are 3-9 Å wide
    state = BatchState.from_atoms(systems, dtype=dtype)
    assert float(cutoff) > 0.5 * min(np.min(a.cell.cellpar()[:3]) for a in systems)
    for half in (False, True):
        small, cells = _both_builders(state, cutoff, half)
        if dtype == torch.float64:  # float32 distances may differ at the cutoff: compare with ASE's only
            assert torch.equal(small.i, cells.i) and torch.equal(small.j, cells.j)
            assert torch.equal(small.shifts, cells.shifts)
        assert small.shifts.dtype == dtype
        if half:
            continue
        expected = _ase_batch_pairs(systems, cutoff)
        assert _pair_set(small.i, small.j, small.shifts.long()) == expected and len(small.i) == len(expected)


def test_batch_of_small_and_large_systems_merges_both_builders(random_atoms):
    """A batch whose small systems take the all-pairs search and whose large one the cell list: one list in
    canonical order, each system's part its lone list (and ASE's pairs)."""
    from sims import neighbors
    from sims.batch import BatchState

    rng = np.random.default_rng(11)
    big = random_atoms(rng, 400, triclinic=True, pbc=True)
    big.set_cell(big.cell[:] * 3.0, scale_atoms=True)  # a liquid's density, not 400 atoms in a few Å^3
    systems = [random_atoms(rng, 12, triclinic=True, pbc=True), big, random_atoms(rng, 20, triclinic=False, pbc=True)]
    state = BatchState.from_atoms(systems, dtype=torch.float64)
    cutoff = 4.0
    counts = state.atoms_per_system().double()
    assert float(counts[1]) ** 2 > neighbors._SMALL_CANDIDATES >= float(counts[2]) ** 2 * 27
    full = sims.build_batch_pairs(state.positions, state.cell, state.pbc, state.system, cutoff)
    expected = _ase_batch_pairs(systems, cutoff)
    assert _pair_set(full.i, full.j, full.shifts.long()) == expected and len(full.i) == len(expected)
    half = sims.build_batch_pairs(state.positions, state.cell, state.pbc, state.system, cutoff, half=True)
    _, cells = _both_builders(state, cutoff, True)
    assert torch.equal(half.i, cells.i) and torch.equal(half.j, cells.j) and torch.equal(half.shifts, cells.shifts)


def test_patched_batch_list_is_each_systems_list_at_its_reference():
    """After many patches (runs of kept blocks spliced with rebuilt ones) each system's block is, pair for pair,
    the list built afresh at the positions that system was last listed at."""
    from sims.batch import BatchMD, BatchState

    rng = np.random.default_rng(3)
    systems = []
    for k, n in enumerate((2, 3, 2, 2, 3, 2)):
        atoms = Atoms(f"Ar{n ** 3}", positions=np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
                      .reshape(-1, 3) * 3.7, cell=np.eye(3) * 3.7 * n + np.triu(rng.uniform(-0.5, 0.5, (3, 3)), 1),
                      pbc=True)
        atoms.rattle(0.05, seed=k)
        systems.append(atoms)
    pot = sims.potentials.LennardJones(sigma=3.4, epsilon=0.0104, cutoff=6.0, dtype=torch.float64)
    md = BatchMD(systems, pot, sims.Langevin(timestep=10.0, temperature=300.0, friction=0.05), temperature=300.0,
                 seed=2, skin=0.3, dtype=torch.float64)
    md.run(40)
    nl = md.neighbors
    assert nl.n_partial_builds >= 3
    state = BatchState.from_atoms(systems, dtype=torch.float64)
    fresh = sims.build_batch_pairs(nl.reference_positions, md.state.cell, state.pbc, state.system, 6.3, half=True)
    listed = nl.pairs
    for b in range(len(systems)):
        mine = torch.nonzero(state.system[listed.i] == b).squeeze(1)
        assert bool((mine[1:] - mine[:-1] == 1).all())  # one block
        ref = torch.nonzero(state.system[fresh.i] == b).squeeze(1)
        assert torch.equal(listed.i[mine], fresh.i[ref]) and torch.equal(listed.j[mine], fresh.j[ref])
        assert torch.equal(listed.shifts[mine], fresh.shifts[ref])
    assert torch.equal(listed.images[listed.image_index], listed.shifts)


@pytest.mark.parametrize("system", [[1, 1, 2, 2, 2], [0, 0, 2, 2, 2], [0, 0, 1, 1, 1]])
def test_batch_with_empty_systems(system):
    """Systems without atoms (first, in the middle, last) have no pairs and shift no other system's."""
    from sims import neighbors

    rng = np.random.default_rng(8)
    positions = torch.as_tensor(rng.uniform(0.0, 4.0, (5, 3)))
    cell = torch.as_tensor(np.stack([np.eye(3) * 4.0 + np.triu(rng.uniform(-1, 1, (3, 3)), 1) for _ in range(3)]))
    pbc = torch.ones((3, 3), dtype=torch.bool)
    system = torch.tensor(system)
    full_cell = neighbors._complete_cells(cell, pbc)
    for half in (False, True):
        pairs = sims.build_batch_pairs(positions, cell, pbc, system, 5.0, half=half)
        cells = neighbors._cell_list(positions, full_cell, torch.linalg.inv(full_cell), pbc, system, 5.0, half)
        assert len(pairs.i) > 20
        assert torch.equal(pairs.i, cells.i) and torch.equal(pairs.j, cells.j) and torch.equal(pairs.shifts, cells.shifts)


def test_batch_of_interleaved_systems_joins_no_two_systems():
    """Atoms of two systems interleaved (``system`` = 0, 1, 0, 1, ...): each system's pairs are its lone list's,
    none joins the two (the all-pairs search of small cells once paired atoms by position in the batch), and
    patches of a NeighborList keep it so."""
    rng = np.random.default_rng(4)
    positions = torch.as_tensor(rng.uniform(0.0, 4.0, (10, 3)))
    cell = torch.as_tensor(np.stack([np.eye(3) * 4.0 + np.triu(rng.uniform(-1, 1, (3, 3)), 1) for _ in range(2)]))
    pbc = torch.ones((2, 3), dtype=torch.bool)
    system = torch.arange(10) % 2

    def expected(pos):
        out = set()
        for b in range(2):
            idx = torch.nonzero(system == b).squeeze(1)
            alone = sims.build_pairs(pos[idx], cell[b], pbc[b], 3.5, half=True)
            out |= _pair_set(idx[alone.i], idx[alone.j], alone.shifts.long())
        return out

    pairs = sims.build_batch_pairs(positions, cell, pbc, system, 3.5, half=True)
    assert _pair_set(pairs.i, pairs.j, pairs.shifts.long()) == expected(positions) and len(pairs.i) > 10
    nl = sims.NeighborList(cutoff=3.0, skin=0.5, half=True)
    nl.update(positions, cell, pbc, system=system)
    moved = positions.clone()
    moved[0] += 0.4  # system 0 alone needs a new list
    listed = nl.update(moved, cell, pbc, system=system)
    assert _pair_set(listed.i, listed.j, listed.shifts.long()) == expected(moved)


def test_small_cell_chunks_bound_their_padded_arrays():
    """A 300-atom box (one image) and a 5-atom cell of 8 x 12 x 10 images are both small, but padded to one
    chunk they made a 5 x 90000 x 960 array (7 GB): the chunks bound the padded size, and the pairs are the
    cell list's."""
    from sims import neighbors

    chunks = neighbors._padded_chunks([400, 25, 90000, 4], [[1, 3, 2], [8, 12, 10], [1, 1, 1], [2, 2, 3]])
    assert chunks == [0, 1, 2, 3, 4]
    for a, e in zip(chunks[:-1], chunks[1:]):
        assert e - a == 1 or (e - a) * 400 * 960 <= neighbors._SMALL_CHUNK
    rng = np.random.default_rng(5)
    positions = torch.as_tensor(np.concatenate([rng.uniform(0, 16, (300, 3)), rng.uniform(0, 1, (5, 3))]))
    cell = torch.as_tensor(np.stack([np.eye(3) * 16.0, np.diag([1.4, 1.0, 1.2])]))
    pbc = torch.ones((2, 3), dtype=torch.bool)
    system = torch.tensor([0] * 300 + [1] * 5)
    full_cell = neighbors._complete_cells(cell, pbc)
    pairs = sims.build_batch_pairs(positions, cell, pbc, system, 5.6)
    cells = neighbors._cell_list(positions, full_cell, torch.linalg.inv(full_cell), pbc, system, 5.6, False)
    assert torch.equal(pairs.i, cells.i) and torch.equal(pairs.j, cells.j) and torch.equal(pairs.shifts, cells.shifts)
