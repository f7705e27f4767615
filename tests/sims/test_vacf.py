"""sims.analysis.vacf: the normalised velocity autocorrelation over all time origins.

References: a direct double sum over origins and lags (the definition), and the exact VACF of free
particles under Langevin dynamics, exp(-gamma t) (for BAOAB exactly exp(-gamma n dt) per step:
only its O step changes a free particle's velocity, by v -> exp(-gamma dt) v + noise).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

import sims
from sims.analysis import vacf
from sims.errors import SimsInputError


def test_vacf_equals_the_direct_sum_over_time_origins():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(25, 4, 3))
    masses = rng.uniform(1, 10, 4)
    for w in (np.ones(4), masses):
        direct = np.array([np.mean([np.sum(w[:, None] * v[t] * v[t + k]) for t in range(25 - k)]) for k in range(11)])
        got = vacf(v, max_lag=10, masses=None if w is not masses else masses)
        assert got == pytest.approx(direct / direct[0], rel=1e-10, abs=1e-12)


def test_free_particles_under_langevin_decorrelate_as_exp_minus_gamma_t():
    rng = np.random.default_rng(1)
    atoms = Atoms("Ar100", cell=np.eye(3) * 40.0, pbc=True)
    atoms.set_scaled_positions(rng.uniform(0, 1, (100, 3)))
    # A vanishing interaction: every particle is free, the thermostat alone decorrelates it.
    pot = sims.potentials.LennardJones(sigma=0.5, epsilon=1e-8, cutoff=1.5, dtype=torch.float64)
    gamma, dt, every = 0.01, 2.0, 5
    md = sims.MD(atoms, pot, sims.Langevin(dt, 300.0, friction=gamma), temperature=300.0, seed=4, record_every=0)
    md.run(500)
    md.record_every = every
    md.run(6000)
    v = np.stack([f.get_velocities() for f in md.trajectory])
    lags = np.arange(21)
    c = vacf(v, max_lag=20)
    # About 300 velocity components x 60 independent windows: a statistical error near 0.01.
    assert c == pytest.approx(np.exp(-gamma * dt * every * lags), abs=0.03)


def test_vacf_bad_input():
    v = np.ones((5, 2, 3))
    with pytest.raises(SimsInputError, match=r"shape \(T, N, 3\)"):
        vacf(np.ones((5, 3)), max_lag=2)
    with pytest.raises(SimsInputError, match=r"max_lag must be an integer in \[1, 4\]"):
        vacf(v, max_lag=5)
    with pytest.raises(SimsInputError, match="NaN"):
        vacf(np.full((5, 2, 3), np.nan), max_lag=2)
    with pytest.raises(SimsInputError, match="all zero"):
        vacf(np.zeros((5, 2, 3)), max_lag=2)
    with pytest.raises(SimsInputError, match="one value per atom"):
        vacf(v, max_lag=2, masses=[1.0])


def test_vdos_refuses_non_finite_velocities_bad_timestep_and_masses():
    """vdos gave an all-NaN spectrum for one NaN velocity and negative frequencies for a negative timestep."""
    from sims.analysis import vdos

    v = np.random.default_rng(0).normal(size=(64, 3, 3))
    bad = v.copy()
    bad[10, 1, 2] = np.nan
    with pytest.raises(SimsInputError, match="NaN or infinite"):
        vdos(bad, timestep=1.0)
    for timestep in (-1.0, 0.0, np.nan):
        with pytest.raises(SimsInputError, match="timestep must be a finite value > 0 fs"):
            vdos(v, timestep=timestep)
    for masses in ([1.0, -2.0, 1.0], [1.0, np.nan, 1.0]):
        with pytest.raises(SimsInputError, match="masses must be finite and > 0"):
            vdos(v, timestep=1.0, masses=masses)
        with pytest.raises(SimsInputError, match="masses must be finite and > 0"):
            vacf(v, max_lag=5, masses=masses)
