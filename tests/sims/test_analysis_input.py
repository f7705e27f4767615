"""Bad input to the diffusion analysis: clear errors or explicit warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase import Atoms, units

from sims.analysis import MSD, collective_diffusivity, tracer_diffusivity
from sims.errors import SimsInputError

L = 10.0


def _walk(n_frames=200, n=8, step=0.3, seed=0):
    """Unwrapped Gaussian random walk (Å) of ``n`` atoms in a cubic cell of edge ``L``."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, L, (1, n, 3))
    return start + np.concatenate([np.zeros((1, n, 3)), np.cumsum(rng.normal(0, step, (n_frames - 1, n, 3)), 0)])


def _frames(pos, wrap=True):
    frames = [Atoms(f"Li{pos.shape[1]}", positions=p, cell=[L] * 3, pbc=True) for p in pos]
    if wrap:
        for f in frames:
            f.wrap()
    return frames


def test_fit_window_longer_than_the_trajectory():
    msd = MSD(timestep=2.0).compute(_walk(), unwrapped=True)
    assert msd.lag[-1] == 398.0
    with pytest.raises(SimsInputError, match="beyond the trajectory's longest lag 398.0 fs"):
        tracer_diffusivity(msd, fit_range=(10.0, 1000.0))
    with pytest.raises(SimsInputError, match="0 <= start < end"):
        tracer_diffusivity(msd, fit_range=(100.0, 50.0))
    with pytest.raises(SimsInputError, match="beyond"):
        collective_diffusivity(_walk(), timestep=2.0, unwrapped=True, fit_range=(10.0, 500.0))


def test_too_few_time_origins_warns():
    """A window to the end of the run has one time origin at its longest lag; up to half the run, two."""
    msd = MSD(timestep=2.0).compute(_walk(), unwrapped=True)
    with pytest.warns(RuntimeWarning, match="fewer than 2 independent time origins"):
        tracer_diffusivity(msd, fit_range=(40.0, 398.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracer_diffusivity(msd, fit_range=(40.0, 199.0))
        tracer_diffusivity(msd)


def test_wrapped_positions_passed_as_unwrapped():
    pos = _walk()
    wrapped = np.stack([f.positions for f in _frames(pos)])
    with pytest.raises(SimsInputError, match="look wrapped into the cell; pass unwrapped=False"):
        MSD(timestep=2.0).compute(_frames(pos), unwrapped=True)
    with pytest.raises(SimsInputError, match="look wrapped"):
        collective_diffusivity(wrapped, timestep=2.0, cell=np.eye(3) * L, unwrapped=True)
    # Told the truth, the same frames give the MSD of the continuous walk.
    good = MSD(timestep=2.0).compute(_frames(pos)).msd
    np.testing.assert_allclose(good, MSD(timestep=2.0).compute(_frames(pos, wrap=False), unwrapped=True).msd,
                               rtol=1e-9, atol=1e-9)


def test_frames_too_far_apart_to_unwrap_warn():
    pos = _walk(n_frames=20, step=2.5, seed=1)  # steps of ~0.25 L per axis: some exceed 0.4 L
    with pytest.warns(RuntimeWarning, match="cannot tell a move from a boundary crossing"):
        MSD(timestep=2.0).compute(_frames(pos))


def test_species_absent_from_the_structure():
    with pytest.raises(SimsInputError, match=r"no 'Na' atoms in the structure \(Li8\)"):
        MSD(timestep=2.0, species="Na").compute(_frames(_walk()))
    with pytest.raises(SimsInputError, match="no 'Na' atoms"):
        collective_diffusivity(_frames(_walk()), timestep=2.0, species="Na")
    with pytest.raises(SimsInputError, match="unknown element"):
        MSD(timestep=2.0, species="Qq").compute(_frames(_walk()))


def test_nernst_einstein_conductivity_in_si_units():
    """sigma = N e^2 D / (V kB T), evaluated independently with scipy's constants: 20 Li+ in
    1000 Å^3 with D_sigma = 1e-5 cm^2/s (1e-4 Å^2/fs) at 600 K."""
    from scipy.constants import Boltzmann, elementary_charge

    from sims.analysis import nernst_einstein_conductivity

    expected = 20 / 1e-27 * elementary_charge ** 2 * 1e-9 / (Boltzmann * 600.0) * 10  # S/m -> mS/cm
    assert nernst_einstein_conductivity(1e-4, n_ions=20, volume=1000.0, temperature=600.0) == pytest.approx(
        expected, rel=1e-12)
    assert nernst_einstein_conductivity(1e-4, n_ions=20, volume=1000.0, temperature=600.0, charge=2) == pytest.approx(
        4 * expected, rel=1e-12)
    with pytest.raises(SimsInputError, match="temperature > 0"):
        nernst_einstein_conductivity(1e-4, n_ions=20, volume=1000.0, temperature=0.0)


TEMPS = np.array([300.0, 350.0, 400.0, 450.0, 500.0, 600.0, 750.0, 900.0])


def _arrhenius_data(rng, ea_low, ea_high, t_break=400.0, rel=0.05):
    """D (Å^2/fs) on a continuous Arrhenius line bending at t_break, log-normal noise of ``rel``."""
    x, xb = 1 / (units.kB * TEMPS), 1 / (units.kB * t_break)
    ln_d = np.log(1e-2) - ea_high * x - (ea_low - ea_high) * np.maximum(0.0, x - xb)
    d = np.exp(ln_d + rng.normal(0.0, rel, len(TEMPS)))
    return d, rel * d


def test_arrhenius_slope_change_finds_a_kink_and_is_calibrated_without_one():
    from sims.analysis import arrhenius_slope_change

    d, err = _arrhenius_data(np.random.default_rng(0), ea_low=0.45, ea_high=0.20)
    kink = arrhenius_slope_change(TEMPS, d, err, t_break=400.0)
    assert kink.p_value < 1e-3
    assert abs(kink.Ea_low - 0.45) < 3 * kink.Ea_low_err and abs(kink.Ea_high - 0.20) < 3 * kink.Ea_high_err
    # One straight line: the F-test's p-values are uniform, so about 5 % fall below 0.05
    # (binomial sd over 300 draws: 1.3 %).
    rng = np.random.default_rng(1)
    p = np.array([arrhenius_slope_change(TEMPS, *_arrhenius_data(rng, 0.3, 0.3), t_break=400.0).p_value
                  for _ in range(300)])
    assert 0.015 < np.mean(p < 0.05) < 0.09
    assert 0.4 < np.median(p) < 0.6
    with pytest.raises(SimsInputError, match="each side of t_break"):
        arrhenius_slope_change(TEMPS, d, err, t_break=320.0)


def test_species_with_a_positions_array_is_refused():
    """An array has no elements: species used to be dropped without a word and every atom averaged
    (the MSD of 5 slow and 5 fast walkers came out as that of all ten)."""
    pos = _walk()
    with pytest.raises(SimsInputError, match="a positions array does not carry"):
        MSD(timestep=2.0, species="Li").compute(pos, unwrapped=True)
    with pytest.raises(SimsInputError, match="a positions array does not carry"):
        collective_diffusivity(pos, timestep=2.0, species="Li", unwrapped=True)
    with pytest.raises(SimsInputError, match="a positions array does not carry"):
        MSD(timestep=2.0, species="Li").compute(pos, cell=np.eye(3) * L)


def test_cell_with_frames_is_refused():
    """Frames carry their own cells: a cell= beside them was dropped without a word, so wrapped
    frames without a periodic cell (plain .xyz) were not unwrapped although a cell was given."""
    pos = _walk()
    bare = [Atoms(f"Li{pos.shape[1]}", positions=f.positions) for f in _frames(pos)]  # wrapped, no cell
    with pytest.raises(SimsInputError, match="frames carry their own cells"):
        MSD(timestep=2.0).compute(bare, cell=np.eye(3) * L)
    with pytest.raises(SimsInputError, match="frames carry their own cells"):
        collective_diffusivity(bare, timestep=2.0, cell=np.eye(3) * L)
    # As an array with the cell, the same wrapped positions give the continuous walk's MSD.
    wrapped = np.stack([f.positions for f in bare])
    np.testing.assert_allclose(MSD(timestep=2.0).compute(wrapped, cell=np.eye(3) * L).msd,
                               MSD(timestep=2.0).compute(pos, unwrapped=True).msd, rtol=1e-9, atol=1e-9)


def test_non_finite_positions_array_is_refused():
    """A NaN in a positions array made D NaN for every lag without a word (frames were checked already)."""
    pos = _walk()
    pos[57, 3, 1] = np.nan
    for call in (lambda: MSD(timestep=2.0).compute(pos, unwrapped=True),
                 lambda: MSD(timestep=2.0).compute(pos, cell=np.eye(3) * L),
                 lambda: collective_diffusivity(pos, timestep=2.0, unwrapped=True)):
        with pytest.raises(SimsInputError, match="NaN or infinite values \\(first at frame 57, atom 3"):
            call()
    with pytest.raises(SimsInputError, match="cell holds NaN"):
        MSD(timestep=2.0).compute(_walk(), cell=np.diag([L, L, np.nan]))
    with pytest.raises(SimsInputError, match="timestep must be > 0 fs"):
        collective_diffusivity(_walk(), timestep=0.0, unwrapped=True)
    with pytest.raises(SimsInputError, match="one finite charge"):
        collective_diffusivity(_walk(n=2), timestep=1.0, unwrapped=True, charges=[1.0, np.nan])


def test_arrhenius_and_nernst_einstein_refuse_non_finite_input():
    """NaN passed the sign checks: a NaN value gave Ea = nan, a NaN temperature a bare LinAlgError, an
    infinite temperature was fitted as a point at 1/T = 0 (Ea 0.025 eV from D = 1, 2, 3), and a NaN
    d_sigma came back as a NaN conductivity."""
    from sims.analysis import arrhenius_fit, arrhenius_slope_change, nernst_einstein_conductivity

    for t, d in (([300.0, 400.0, np.nan], [1.0, 2.0, 3.0]), ([300.0, 400.0, np.inf], [1.0, 2.0, 3.0]),
                 ([300.0, 400.0, 500.0], [1.0, np.nan, 3.0]), ([300.0, 400.0, 500.0], [1.0, np.inf, 3.0])):
        with pytest.raises(SimsInputError, match="finite temperatures > 0 K and finite values > 0"):
            arrhenius_fit(t, d)
    temps, err = [300.0, 350.0, 400.0, 450.0, 500.0], [0.1] * 5
    for t, d in (([300.0, 350.0, 400.0, 450.0, np.nan], [1.0, 2.0, 3.0, 4.0, 5.0]),
                 (temps, [1.0, 2.0, np.nan, 4.0, 5.0])):
        with pytest.raises(SimsInputError, match="finite temperatures > 0 K"):
            arrhenius_slope_change(t, d, err, t_break=375.0)
    with pytest.raises(SimsInputError, match="t_break must be a finite"):
        arrhenius_slope_change(temps, [1.0, 2.0, 3.0, 4.0, 5.0], err, t_break=np.nan)
    with pytest.raises(SimsInputError, match="must be finite"):
        nernst_einstein_conductivity(np.nan, n_ions=3, volume=10.0, temperature=300.0)
    with pytest.raises(SimsInputError, match="finite volume"):
        nernst_einstein_conductivity(1e-4, n_ions=3, volume=np.inf, temperature=300.0)


def test_timestep_that_is_not_the_frame_spacing_is_refused():
    """Frames recorded every 5 steps of 2 fs (info['time'] 0, 10, 20, ... fs, as sims.MD writes it) analysed
    with timestep=2.0 gave D* five times too large without a word; the spacing is now checked."""
    pos = _walk(n_frames=60)
    frames = _frames(pos)
    for k, f in enumerate(frames):
        f.info["time"] = 10.0 * k
    with pytest.raises(SimsInputError, match=r"timestep=2.0 fs, but the frames' info\['time'\] says they are 10 to 10"):
        MSD(timestep=2.0).compute(frames)
    with pytest.raises(SimsInputError, match="info\\['time'\\]"):
        collective_diffusivity(frames, timestep=2.0)
    right = tracer_diffusivity(MSD(timestep=10.0).compute(frames))
    assert right.D == pytest.approx(tracer_diffusivity(MSD(timestep=10.0).compute(pos, unwrapped=True)).D)
    frames[30].info["time"] += 5.0  # joined runs, unevenly spaced
    with pytest.raises(SimsInputError, match="5 to 15 fs apart"):
        MSD(timestep=10.0).compute(frames)
    del frames[30].info["time"]  # not every frame carries a time: nothing to check
    MSD(timestep=10.0).compute(frames)
