"""benchmarks/ethylene_dann.py: the settled-torsion check, the binomial yield, the committee's energies and
its out-of-data report.

References: hand-built torsion histories whose last crossings are known; the closed-form binomial error;
each member's energies through the training path (``collate_atoms`` + ``evaluate_diabatic``, ASE
neighbour lists) against the dense-pair path of ``DANNHamiltonian``; a committee with a designed spread.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from tests.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/ethylene_dann.py")


def _history():
    """Three trajectories saved every 10 fs, 0-100 fs, in run_fssh's row order (each save lists them in
    turn). 0: crosses 90 deg at 20 fs (frame at 20 fs beyond), then stays; 1: crosses out at 30 fs and
    back at 90 fs; 2: never crosses. Trajectory 3 was dropped at 40 fs (its rows end there)."""
    t = np.arange(0, 101, 10.0)
    phi = {0: np.where(t >= 20, 2.5, 0.3), 1: np.where((t >= 30) & (t < 90), -2.0, 0.2), 2: np.full(t.size, 1.2),
           3: np.where(t >= 10, 3.0, 0.0)}
    rows = [(i, tk, phi[i][k]) for k, tk in enumerate(t) for i in range(4) if not (i == 3 and tk > 40)]
    ids, times, angles = (np.array(c) for c in zip(*rows))
    return angles, ids, times


def test_settling_finds_the_last_crossings(bench):
    phi, ids, times = _history()
    out = bench.settling(phi, ids, times, np.array([0, 1, 2]), window=50.0)
    np.testing.assert_array_equal(out["last_crossing_fs"][:2], [20.0, 90.0])
    assert math.isnan(out["last_crossing_fs"][2])
    assert out["unsettled"].tolist() == [False, True, False] and out["n_unsettled"] == 1 and out["end_fs"] == 100.0
    # a window reaching back past 20 fs counts trajectory 0 as unsettled too
    assert bench.settling(phi, ids, times, np.array([0, 1, 2]), window=85.0)["n_unsettled"] == 2
    # the sign of phi does not matter: -2.0 (beyond 90 deg) and 2.5 are the same side
    assert bench.settling(np.abs(phi), ids, times, np.array([1]), window=5.0)["n_unsettled"] == 0


def test_binomial(bench):
    y, err, n = bench.binomial(np.array([True, False, False, True, True]))
    assert (y, n) == (0.6, 5) and err == pytest.approx(math.sqrt(0.6 * 0.4 / 5))
    y, err, n = bench.binomial(np.array([], dtype=bool))
    assert math.isnan(y) and math.isnan(err) and n == 0


def test_committee_energies_match_the_training_path(bench):
    from learners.diabatic import DiabaticPaiNN, evaluate_diabatic
    from learners.potentials.batch import collate_atoms

    nets = [DiabaticPaiNN(2, cutoff=5.0, n_features=8, n_interactions=1, seed=s, dtype=torch.float64) for s in (0, 1)]
    rng = np.random.default_rng(0)
    pos = molecule("C2H4").positions[[0, 1, 2, 3, 4, 5]] + 0.1 * rng.standard_normal((5, 6, 3))
    got = bench.committee_energies(nets, pos.reshape(5, 18), chunk=2)
    assert got.shape == (2, 5, 2)
    frames = [Atoms(numbers=bench.NUMBERS, positions=p) for p in pos]
    for k, net in enumerate(nets):
        batch = collate_atoms(frames, net.cutoff, dtype=torch.float64, labels=False)
        np.testing.assert_allclose(got[k], evaluate_diabatic(net, batch)["energies"].numpy(), atol=1e-10)
    assert np.abs(got[0] - got[1]).max() > 1e-3  # two seeds, two models


def test_committee_report_on_a_designed_spread(bench, monkeypatch):
    """Member k's energies are (0, 5) + k s, with s the first coordinate of the geometry: the energy spread
    of a two-member committee is s / 2, the gap's 0. Held-out frames have s = 0.1, so with factor 3 the
    threshold is 0.15 eV and s > 0.3 is out of the data."""
    def fake(nets, positions, chunk=2000):
        s = np.asarray(positions).reshape(len(positions), -1)[:, 0]
        return np.stack([np.stack([k * s, 5.0 + k * s], -1) for k in range(len(nets))])

    monkeypatch.setattr(bench, "committee_energies", fake)
    held = [Atoms("H", positions=[[0.1, 0.0, 0.0]]) for _ in range(4)]
    t = np.arange(0.0, 11.0)
    s = {0: np.full(t.size, 0.1), 1: np.where(t == 10, 0.5, 0.1), 2: np.where(t == 5, 0.5, np.where(t == 3, 1.0, 0.1))}
    rows = [(i, tk, s[i][k]) for k, tk in enumerate(t) for i in range(3) if not (i == 2 and tk > 6)]
    ids, times, first = (np.array(c) for c in zip(*rows))
    frames = np.zeros((len(rows), 18))
    frames[:, 0] = first
    run = {"frames": frames, "frame_ids": ids.astype(int), "frame_times": times, "ids": np.array([0, 1]),
           "dropped": [(2, 6.0, 0.1)]}
    out = bench.committee_report([None, None], held, run, np.array([True, False]), factor=3.0, every=5.0)
    assert out["test_spread_eV"] == [0.05, 0.0] and out["threshold_eV"] == [0.15, 0.0]
    # trajectory 1 exceeds at its 10 fs frame; trajectory 2 (dropped) at 5 fs (its 3 fs frame is not sampled)
    assert out["n_exceeded"] == 1 and out["first_exceed_median_fs"] == 10.0 and out["n_dropped_exceeded"] == 1
    assert out["yield_never"] == (1.0, 0.0, 1)
    assert out["yield_all"][0] == 0.5 and out["yield_all"][2] == 2


def test_intact_tells_fragments_and_migrations(bench):
    base = molecule("C2H4").positions  # C0, C1, H2, H3 (on C0), H4, H5 (on C1)
    lost = base.copy()
    lost[3] += 3.0 * (base[3] - base[0]) / np.linalg.norm(base[3] - base[0])  # H3 4 Å from C0
    moved = base.copy()
    moved[2] = base[1] + np.array([0.0, 1.0, 0.3])  # H2 bonded to C1: ethylidene
    broken = base.copy()
    broken[[1, 4, 5]] += np.array([0.0, 0.0, 1.0]) * np.sign(base[1, 2] - base[0, 2])  # C=C 2.3 Å
    twisted = bench.scan_geometry(base, np.pi / 2, 0.5, 1.45)  # distorted but whole
    got = bench.intact(np.stack([base, lost, moved, broken, twisted]))
    assert got.tolist() == [True, False, False, False, True]
    assert bench.intact(base.reshape(1, 18)).tolist() == [True]
