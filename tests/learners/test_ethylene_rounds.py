"""benchmarks/ethylene_dann.py: the active-learning rounds' pieces (distance descriptor, novelty, frame picks).

References: ASE's interatomic distances; a brute-force nearest neighbour over all reference geometries;
hand-built FSSH frame layouts whose exits are known.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from tests.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/ethylene_dann.py")


def _rattled(n, seed):
    rng = np.random.default_rng(seed)
    base = molecule("C2H4").positions
    return base + 0.1 * rng.standard_normal((n, 6, 3))


def test_distances_against_ase_and_invariances(bench):
    pos = _rattled(4, 0)
    d = bench.distances(pos)
    assert d.shape == (4, 15)
    for k, p in enumerate(pos):
        mol = molecule("C2H4")
        mol.positions = p
        all_d = mol.get_all_distances()
        assert d[k, 0] == pytest.approx(all_d[0, 1], abs=1e-12)
        np.testing.assert_allclose(d[k, 1:9], np.sort(all_d[:2, 2:].ravel()), atol=1e-12)
        np.testing.assert_allclose(d[k, 9:], np.sort(all_d[2:, 2:][np.triu_indices(4, 1)]), atol=1e-12)
    # a rotation, a translation, and relabelling the hydrogens change nothing
    t = 0.7
    rot = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    moved = pos @ rot.T + np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(bench.distances(moved), d, atol=1e-12)
    np.testing.assert_allclose(bench.distances(pos[:, [0, 1, 3, 2, 5, 4]]), d, atol=1e-12)
    np.testing.assert_allclose(bench.distances(pos.reshape(4, 18)), d)


def test_novelty_is_the_nearest_reference_distance(bench):
    ref, query = _rattled(30, 1), _rattled(12, 2)
    got = bench.novelty(ref, query)
    dr, dq = bench.distances(ref), bench.distances(query)
    brute = np.sqrt(((dq[:, None] - dr[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(got, brute, rtol=1e-12)
    assert np.all(bench.novelty(ref, ref[:5]) == 0)


def _layout():
    """Saved frames in run_fssh's order: every save lists the living trajectories 0, 1, 2 in turn (5 saves).
    Trajectory 0 first leaves the data at its save 2 (row 6), trajectory 1 at save 4 (row 13),
    trajectory 2 never; trajectory 0 is past its exit later as well."""
    ids = np.tile([0, 1, 2], 5)
    nov = np.full(15, 0.1)
    nov[[6, 9, 12]] = [0.8, 0.2, 0.9]  # trajectory 0: out, back in, out again
    nov[13] = 0.6
    return np.zeros((15, 18)), ids, nov


def test_pick_frames_takes_exits_first_then_frames_before_them(bench):
    frames, ids, nov = _layout()
    picks = bench.pick_frames(frames, ids, nov, 6, 0.5, seed=0)
    assert len(picks) == 6 and len(set(picks.tolist())) == 6 and np.all(np.diff(picks) > 0)
    assert {6, 13} <= set(picks.tolist())  # both exits
    # nothing past an exit: trajectory 0 after row 6, trajectory 1 after row 13
    for row in picks:
        assert not (ids[row] == 0 and row > 6) and not (ids[row] == 1 and row > 13)
    # every frame allowed: the 2 exits, 2 + 4 earlier frames of 0 and 1, all 5 of trajectory 2
    allowed = bench.pick_frames(frames, ids, nov, 100, 0.5, seed=0)
    assert allowed.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14]
    # fewer picks than exits: a subset of the exits, reproducible by seed
    one = [bench.pick_frames(frames, ids, nov, 1, 0.5, seed=s).tolist() for s in range(20)]
    assert all(p in ([6], [13]) for p in one) and {tuple(p) for p in one} == {(6,), (13,)}
    assert bench.pick_frames(frames, ids, nov, 4, 0.5, seed=3).tolist() == \
        bench.pick_frames(frames, ids, nov, 4, 0.5, seed=3).tolist()
    # no exits at all: uniform over every frame
    assert len(bench.pick_frames(frames, ids, np.zeros(15), 15, 0.5, seed=0)) == 15


def test_ground_state_rotors_counts_recrossings_after_the_last_time_on_s1(bench):
    # four trajectories, six saves each (rows in time order, trajectories interleaved)
    deg = np.radians
    phi = np.array([[10, 100, 60, 100, 120, 130],     # 0: on S0 from save 2; crosses 90 deg there again
                    [10, 80, 95, 120, 150, 170],      # 1: on S0 from save 3, stays beyond 90 deg
                    [10, 80, 100, 80, 100, 80],       # 2: still on S1 at the end
                    [170, -170, 150, 100, 80, 60]],   # 3: on S0 throughout, crosses (through 180 deg
                   dtype=float)                        #    nothing happens; at 90 deg it does)
    states = np.array([[1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]])
    ids = np.tile(np.arange(4), 6)
    got = bench.ground_state_rotors(deg(phi.T.ravel()), ids, states.T.ravel(), np.arange(4))
    assert got == {"n_on_s0": 3, "n_recrossed_on_s0": 2, "n_beyond_at_decay": 2}
    assert bench.ground_state_rotors(deg(phi.T.ravel()), ids, states.T.ravel(), np.array([1, 2])) == \
        {"n_on_s0": 1, "n_recrossed_on_s0": 0, "n_beyond_at_decay": 1}


def test_decay_sides_per_trajectory(bench):
    """The layout above, per trajectory (asked for in the order 3, 2, 1, 0): 0 left S1 below 90 deg (60)
    and crossed over; 1 left it beyond (120) and stayed; 2 is on S1; 3 was never on S1, starts beyond
    (|phi| = 170 deg) and crosses below."""
    deg = np.radians
    phi = np.array([[10, 100, 60, 100, 120, 130], [10, 80, 95, 120, 150, 170], [10, 80, 100, 80, 100, 80],
                    [170, -170, 150, 100, 80, 60]], dtype=float)
    states = np.array([[1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]])
    ids = np.tile(np.arange(4), 6)
    got = bench.decay_sides(deg(phi.T.ravel()), ids, states.T.ravel(), np.array([3, 2, 1, 0]))
    assert got["on_s0"].tolist() == [True, False, True, True]
    assert got["beyond_at_decay"].tolist() == [True, False, True, False]
    assert got["recrossed"].tolist() == [True, False, False, True]


def test_round_frames_split_by_trajectory(bench):
    """A round's picks (several frames per FSSH trajectory, some left out by the labeller) split with every
    trajectory on one side, 80/10/10 % of the trajectories, reproducibly. The frame-wise split the rounds
    used before put frames of one trajectory on both sides (checked below on the same frames)."""
    from ase import Atoms

    rng = np.random.default_rng(0)
    trajectories = np.repeat(np.arange(20), 6)[rng.permutation(120)]   # 6 picks from each of 20 trajectories
    frames = []
    for k in range(120):
        if k % 17 == 5:
            continue  # not converged: no frame, its label_index absent
        atoms = Atoms("C2H4", positions=np.zeros((6, 3)))
        atoms.info["label_index"] = k
        frames.append(atoms)
    parts = bench.split_by_trajectory(frames, trajectories, seed=3)
    owner = [{int(trajectories[f.info["label_index"]]) for f in part} for part in parts]
    assert [len(o) for o in owner] == [16, 2, 2]
    assert not (owner[0] & owner[1] or owner[0] & owner[2] or owner[1] & owner[2])
    assert sum(len(p) for p in parts) == len(frames)
    again = bench.split_by_trajectory(frames, trajectories, seed=3)
    assert [[f.info["label_index"] for f in p] for p in again] == [[f.info["label_index"] for f in p] for p in parts]
    old = [{int(trajectories[f.info["label_index"]]) for f in part} for part in bench.split(frames, 0)]
    assert old[0] & old[2]  # the old split: held-out frames from training trajectories
