"""sims.analysis.block_average against the analytic standard error of an AR(1) mean."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from sims.analysis import block_average
from sims.errors import SimsInputError


def test_block_error_matches_the_ar1_variance_of_the_mean():
    # x_t = phi x_{t-1} + e_t, var(e) = 1: the variance of the mean of n samples tends to
    # 1 / ((1 - phi)^2 n) (the sum of the autocovariance 1 / (1 - phi^2) phi^|k| over all lags),
    # 19 times the naive 1 / ((1 - phi^2) n) at phi = 0.9. 400 independent series of 20000 samples.
    phi, n, runs = 0.9, 20000, 400
    noise = np.random.default_rng(5).standard_normal((runs, n + 2000))
    x = lfilter([1.0], [1.0, -phi], noise, axis=1)[:, 2000:]  # 2000 steps forget the zero start
    exact = 1.0 / ((1 - phi) ** 2 * n)
    results = [block_average(row, n_blocks=10) for row in x]
    sem2 = np.array([r.sem ** 2 for r in results])
    # mean of sem^2 over runs: a chi^2 with 9 degrees of freedom, relative error sqrt(2/9)/sqrt(400) = 2.4 %,
    # plus the block-length bias (~ 2 tau / block = 1 %)
    assert sem2.mean() == pytest.approx(exact, rel=0.08)
    # the scatter of the means themselves agrees with the same number
    assert np.var([r.mean for r in results], ddof=1) == pytest.approx(exact, rel=0.2)
    naive = x.var(axis=1, ddof=1).mean() / n
    assert sem2.mean() > 10 * naive  # per-sample errors would be sqrt(19) times too small
    assert all(r.n_blocks == 10 and r.block_size == 2000 for r in results)


def test_block_layout_drift_and_bad_input():
    # 23 samples in 5 blocks of 4: the first 3 (equilibration side) are dropped.
    x = np.r_[[100.0, 100.0, 100.0], np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 4)]
    r = block_average(x, n_blocks=5)
    assert (r.n_blocks, r.block_size) == (5, 4)
    assert r.mean == pytest.approx(3.0)
    assert r.sem == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5))
    assert r.drift == pytest.approx((4 + 5) / 2 - (1 + 2) / 2)  # the middle block is left out
    for bad, match in [(np.ones((4, 2)), "1-D"), ([1.0, np.nan, 2.0], "non-finite")]:
        with pytest.raises(SimsInputError, match=match):
            block_average(bad, n_blocks=2)
    for n_blocks in (1, 24, 2.0, True):
        with pytest.raises(SimsInputError, match="n_blocks"):
            block_average(x, n_blocks=n_blocks)
