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


def test_contact_shares_count_atoms_whose_nearest_partner_is_close(example):
    # Frame 1: S0-S1 2.1 Å apart (both count: each one's nearest S is under 2.5 Å), S2 alone; frame 2: none.
    cell = np.eye(3) * 12.0
    first = Atoms("S3Li", positions=[[1, 1, 1], [3.1, 1, 1], [7, 7, 7], [1, 1, 2.9]], cell=cell, pbc=True)
    second = Atoms("S3Li", positions=[[1, 1, 1], [4.0, 1, 1], [7, 7, 7], [1, 1, 3.5]], cell=cell, pbc=True)
    shortest, shares = example.contact_statistics([first, second])
    assert shares["S-S"] == pytest.approx(2 / 6)
    assert shares["Li-S"] == pytest.approx(1 / 2)  # Li-S 1.9 Å in the first frame, 2.5 Å in the second
    assert shares["Li-Li"] == 0.0  # one Li: its nearest Li is itself excluded (infinitely far)
    assert shortest["S-S"] == pytest.approx(2.1) and shortest["Li-S"] == pytest.approx(1.9)


def test_a_tagged_run_records_its_own_production_and_vibration_times(example, tmp_path):
    # A run with --extra-rounds or --production-ps writes summary<tag>.json beside the mode's summary.json.
    # It started from summary.json's times, so on its first run its own production and vibrations were
    # recorded as "production_resumed" while "production" kept the mode's (another student, another
    # length). Fails on the old code (main merged summary<tag>.json's times only; no tagged_times).
    import json

    mode_times = {"teacher": 10.0, "students": 20.0, "active_learning": 30.0, "production": 1000.0,
                  "production_resumed": 2.0, "vibrations": 50.0}
    (tmp_path / "summary.json").write_text(json.dumps({"times_s": mode_times}))
    now = dict(mode_times, teacher_resumed=0.5, extra_rounds=400.0)   # this run's so far
    student, tag = "_r7-8_10ps_900-750K_8l", "_20ps_r7-8_10ps_900-750K_8l"
    first = example.tagged_times(tmp_path, now, student, tag)
    assert first == {"teacher": 10.0, "students": 20.0, "active_learning": 30.0, "teacher_resumed": 0.5,
                     "extra_rounds": 400.0}
    example._stage(first, "production", 0.0)
    assert "production" in first and "production_resumed" not in first
    # resumed: the first run's times of its own stages come back, the extra rounds' from the student's summary
    (tmp_path / f"summary{student}.json").write_text(json.dumps({"times_s": dict(first, extra_rounds=300.0,
                                                                                 production=7.0)}))
    (tmp_path / f"summary{tag}.json").write_text(json.dumps({"times_s": dict(first, production=900.0,
                                                                             vibrations=40.0)}))
    again = example.tagged_times(tmp_path, dict(mode_times, extra_rounds=0.1), student, tag)
    assert (again["production"], again["vibrations"], again["extra_rounds"]) == (900.0, 40.0, 400.0)
    assert example.tagged_times(tmp_path, mode_times, "", "") is mode_times     # the mode's own run: as before
