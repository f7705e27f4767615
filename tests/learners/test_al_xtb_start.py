"""The wide start set of benchmarks/active_learning_xtb.py (GFN2-xTB ammonia, normal-mode displacements).

Reference: classical equipartition. At 300 K the six vibrations of NH3 are nearly harmonic, so
the potential energy of a Boltzmann-distributed harmonic displacement averages 6 x kT/2 = 3 kT
(standard deviation sqrt(3) kT per frame, kT/2 times a chi-square of 6 degrees of freedom).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.units import kB

from tests.scripts import load_script

pytest.importorskip("tblite")


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/active_learning_xtb.py")


def test_wide_start_set_spans_the_window_in_one_well(bench):
    frames, rejected = bench.wide_frames(0, n_frames=40, temperatures=(300.0, 5000.0), window=1.0)
    assert len(frames) == 40 and sum(f.info["temperature"] == 300.0 for f in frames) == 20
    start = bench.minimum()
    e0 = bench.labelled(start, bench.gfn2()).get_potential_energy()
    h_eq = float(bench.height(start.positions)[0])
    e = np.array([f.get_potential_energy() for f in frames]) - e0
    h = bench.height(np.stack([f.positions for f in frames]))
    assert (e > 0).all() and (e <= 1.0).all()
    assert (h * np.sign(h_eq) >= 0.5 * abs(h_eq)).all()
    cold = e[[f.info["temperature"] == 300.0 for f in frames]]
    kt = kB * 300.0
    assert abs(cold.mean() - 3 * kt) < 3 * np.sqrt(3) * kt / np.sqrt(len(cold)), cold.mean() / kt
    assert e.max() > 0.5          # the hot share climbs the walls; some draws there were refused
    assert rejected["window"] + rejected["well"] > 0
    # The stored labels are GFN2-xTB's at those positions (a fresh calculator starts its SCF from
    # another guess: forces agree to its convergence, about 1e-4 eV/Å), and the draw is reproducible.
    again = bench.labelled(frames[-1], bench.gfn2())
    assert again.get_potential_energy() == pytest.approx(frames[-1].get_potential_energy(), abs=1e-7)
    np.testing.assert_allclose(again.get_forces(), frames[-1].get_forces(), atol=5e-4)
    same, _ = bench.wide_frames(0, n_frames=40, temperatures=(300.0, 5000.0), window=1.0)
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(frames, same))
