"""benchmarks/dann_yield.py: its training frames carry their FSSH trajectories, the split keeps each trajectory on
one side, and cached weights are named by the data they were fitted on."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from learners.splits import group_split
from sims.hopping_ensemble import normal_mode_sample
from sims.surface_hopping import AU_TIME_FS, TorsionalIsomerisation
from tests.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/dann_yield.py")


def test_training_frames_know_their_trajectories_and_split_whole(bench, tmp_path):
    # Before, frames were split one by one: snapshots 5 fs apart of one trajectory sat on both sides.
    model = TorsionalIsomerisation()
    n_traj, steps = 6, 41                       # snapshots after steps 1, 21 and 41
    geoms, trajectory = bench.training_geometries(model, n_traj, steps * bench.STEP * AU_TIME_FS * 1.0001, seed=0)
    assert geoms.shape[0] == len(trajectory) == 3 * n_traj
    # Reference: the Wigner starts the function draws (same seed). One step (0.24 fs) moves a geometry
    # far less than the starts differ, so each first snapshot lies nearest its own trajectory's start.
    x0, _ = normal_mode_sample(model, model.geometry(), n_traj, temperature=300.0, seed=(0, 0))
    first = geoms[:n_traj]
    nearest = torch.cdist(first.double(), x0.double()).argmin(1).numpy()
    np.testing.assert_array_equal(nearest, trajectory[:n_traj])
    # Every snapshot holds the batch in FSSH's order (it keeps every trajectory in its row).
    assert (trajectory.reshape(3, n_traj) == trajectory[:n_traj]).all()
    fit, held = group_split(trajectory, (5 / 6, 1 / 6), seed=0)
    assert not set(trajectory[fit]) & set(trajectory[held]) and len(set(trajectory[held])) == 1
    # Weights are named by the geometries fitted and validated on: another split, another file.
    args = argparse.Namespace(features=32, epochs=30, seed=0)
    name = bench.weights_file(tmp_path, args, geoms[fit], geoms[held])
    assert name == bench.weights_file(tmp_path, args, geoms[fit], geoms[held])
    other = np.arange(len(trajectory)) % 6 != 0
    assert name != bench.weights_file(tmp_path, args, geoms[other], geoms[~other])
