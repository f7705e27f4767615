"""Pieces of examples/lgps_transport.py that judge whether a student's MD stays physical."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from tests.scripts import load_script


@pytest.fixture(scope="module")
def example():
    return load_script("examples/lgps_transport.py")


def test_shortest_contacts_take_the_minimum_image_and_the_minimum_over_frames(example):
    # Two Li 0.6 Å apart through the periodic boundary (9.4 Å apart in the box), S at known offsets.
    cell = np.eye(3) * 10.0
    first = Atoms("Li2S2", positions=[[0.2, 5, 5], [9.6, 5, 5], [3.0, 5, 5], [3.0, 8.0, 5]], cell=cell, pbc=True)
    second = first.copy()
    second.positions[3] = [3.0, 7.1, 5]  # S-S 2.1 Å in the second frame only
    shortest = example.shortest_contacts([first, second])
    assert shortest["Li-Li"] == pytest.approx(0.6)
    assert shortest["S-S"] == pytest.approx(2.1)
    assert shortest["Li-S"] == pytest.approx(2.8)


def test_spaced_takes_frames_in_order_at_least_gap_steps_apart(example):
    frames = [Atoms("Li", info={"step": step}) for step in (100, 110, 300, 60, 140, 150, 400)]
    # 110 is 10 steps from 100; 60 is 40 from 100; 140 is 40 from 100 and 160 from 300, and 150 is 50 from 100.
    picked = example.spaced(frames, count=4, gap=50)
    assert [f.info["step"] for f in picked] == [100, 300, 150, 400]
    assert [f.info["step"] for f in example.spaced(frames, count=2, gap=50)] == [100, 300]
    assert [f.info["step"] for f in example.spaced(frames, count=3, gap=0)] == [100, 110, 300]
