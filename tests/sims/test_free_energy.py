"""Reaction and activation free energies (sims.free_energy) against quadrature on analytic models.

The reference for every model is independent of the estimator: the exact CV density is
``exp(-U/kT)`` (marginalised over the other coordinates in closed form), integrated with
``scipy.integrate.quad``; the barrier formula is that of Dietschreit et al., J. Chem. Phys. 157,
084113 (2022), arXiv:2206.02893, Sec. II.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy import constants, integrate, optimize, special

import sims
from sims.cv import Linear, Position, cv_and_inverse_mass
from sims.errors import SimsInputError
from sims.free_energy import activation_free_energy, cv_quality, de_broglie_length, free_energy_from_frames, free_energy_profile
from sims.potentials import DoubleWell

A, B, TILT = 0.05, 1.0, 0.01          # eV/Å^4, Å, eV/Å: barrier about 2 kT at 300 K, unequal wells


def exact(a=A, b=B, tilt=TILT, *, temperature=300.0, mass=4.0, k_y=1.0, theta=0.0):
    """Quadrature reference for ``U = a (x^2 - b^2)^2 + tilt x + k_y y^2 / 2`` along
    ``xi = cos(theta) x + sin(theta) y``: the TS is the minimum of the exact density between its maxima.

    Given x, xi is Gaussian (mean cos(theta) x, sd sin(theta) sqrt(kT/k_y)), so rho(z) and P_A are
    one-dimensional integrals over x; |grad xi| = 1, so <m_xi^-1> = 1/mass everywhere.
    """
    kT, rt = constants.k * temperature / constants.e, constants.R * temperature / 1000
    roots = np.sort(np.roots([4 * a, 0, -4 * a * b * b, tilt]).real)
    u0 = a * (roots[0] ** 2 - b * b) ** 2 + tilt * roots[0]
    lo, hi = roots[0] - 1.5 - 3 * np.sqrt(kT / (8 * a * b * b)), roots[2] + 1.5 + 3 * np.sqrt(kT / (8 * a * b * b))

    def boltzmann(x):
        return np.exp(-(a * (x * x - b * b) ** 2 + tilt * x - u0) / kT)

    norm = integrate.quad(boltzmann, lo, hi, points=list(roots), limit=400, epsabs=0)[0]
    c, s = np.cos(theta), np.sin(theta)
    sd = s * np.sqrt(kT / k_y)
    if sd < 1e-12:
        def rho(z):
            return boltzmann(z) / norm

        def p_a(z):
            return integrate.quad(boltzmann, lo, z, points=[roots[0]], limit=400, epsabs=0)[0] / norm
    else:
        def rho(z):
            return integrate.quad(lambda x: boltzmann(x) * np.exp(-0.5 * ((z - c * x) / sd) ** 2), lo, hi,
                                  points=list(roots), limit=400, epsabs=0)[0] / (norm * sd * np.sqrt(2 * np.pi))

        def p_a(z):
            return integrate.quad(lambda x: boltzmann(x) * special.ndtr((z - c * x) / sd), lo, hi,
                                  points=list(roots), limit=400, epsabs=0)[0] / norm
    z_a = optimize.minimize_scalar(lambda z: -rho(z), bounds=(c * roots[0] - 0.5, c * roots[1]), method="bounded").x
    z_b = optimize.minimize_scalar(lambda z: -rho(z), bounds=(c * roots[1], c * roots[2] + 0.5), method="bounded").x
    ts = optimize.minimize_scalar(rho, bounds=(z_a, z_b), method="bounded", options={"xatol": 1e-9}).x
    pa = p_a(ts)
    # lambda_xi = h / sqrt(2 pi m kB T) for a Cartesian CV, written out here in SI units
    lam = constants.h / np.sqrt(2 * np.pi * mass * constants.atomic_mass * constants.k * temperature) * 1e10
    return dict(ts=ts, p_a=pa, rho_ts=rho(ts), reaction=rt * np.log(pa / (1 - pa)),
                forward=-rt * np.log(rho(ts) * lam / pa), backward=-rt * np.log(rho(ts) * lam / (1 - pa)),
                forward_fep=-rt * np.log(rho(ts) / rho(z_a)), backward_fep=-rt * np.log(rho(ts) / rho(z_b)),
                x_a=roots[0], x_b=roots[2])


def boltzmann_samples(n, *, temperature=300.0, a=A, b=B, tilt=TILT, seed=0):
    """``n`` exact samples of x from exp(-U/kT) by inverse-CDF sampling on a fine grid."""
    kT = constants.k * temperature / constants.e
    grid = np.linspace(-3.0, 3.0, 600001)
    u = a * (grid ** 2 - b * b) ** 2 + tilt * grid
    cdf = np.cumsum(np.exp(-(u - u.min()) / kT))
    cdf /= cdf[-1]
    return np.interp(np.random.default_rng(seed).random(n), cdf, grid)


def assert_matches(res, ref, *, max_error: float, min_error: float = 0.0, n_sigma: float = 3.0) -> None:
    """Reaction, forward and backward free energies of ``res`` equal ``ref``'s within ``n_sigma``
    bootstrap errors, each error bar sane (between ``min_error`` and ``max_error`` kJ/mol)."""
    for key in ("reaction", "forward", "backward"):
        value, err = getattr(res, key), getattr(res, f"{key}_error")
        assert min_error < err < max_error, (key, err)
        assert abs(value - ref[key]) < n_sigma * err, (key, value, ref[key], err)


def test_de_broglie_length_in_si():
    # lambda = h / sqrt(2 pi m kB T): 1 amu at 300 K is 1.008 Å (CODATA 2018 constants)
    expected = constants.h / np.sqrt(2 * np.pi * constants.atomic_mass * constants.k * 300.0) * 1e10
    assert de_broglie_length(1.0, 300.0) == pytest.approx(expected, rel=1e-12)
    assert de_broglie_length(0.25, 300.0) == pytest.approx(expected / 2, rel=1e-12)


def test_exact_boltzmann_samples_reproduce_quadrature():
    ref = exact()
    x = boltzmann_samples(150_000)
    m_inv = np.full_like(x, 1 / 4.0)
    res = activation_free_energy(x, inverse_mass=m_inv, ts=ref["ts"], temperature=300.0, bins=120, n_bootstrap=100)
    assert_matches(res, ref, min_error=0.005, max_error=0.3)
    assert abs(res.p_a - ref["p_a"]) < 3 * res.p_a_error
    assert res.lambda_xi == pytest.approx(de_broglie_length(0.25, 300.0))
    # the FEP estimates match their own closed form (within the binning bias of a profile minimum)
    assert res.forward_fep == pytest.approx(ref["forward_fep"], abs=4 * res.forward_fep_error + 0.05)
    assert res.backward_fep == pytest.approx(ref["backward_fep"], abs=4 * res.backward_fep_error + 0.05)
    # the automatic TS is the profile maximum between the two minima (within a few bins)
    auto = activation_free_energy(x, inverse_mass=m_inv, temperature=300.0, bins=120, n_bootstrap=0)
    assert abs(auto.ts - ref["ts"]) < 5 * np.diff(auto.profile.edges).mean()
    assert abs(auto.forward - ref["forward"]) < 0.3
    # kcal/mol is the same number divided by 4.184
    kcal = activation_free_energy(x, inverse_mass=m_inv, ts=ref["ts"], temperature=300.0, bins=120,
                                  units="kcal/mol", n_bootstrap=0)
    assert kcal.forward == pytest.approx(res.forward / 4.184, rel=1e-12)


def test_profile_matches_exact_density():
    ref_kT = constants.R * 300.0 / 1000
    x = boltzmann_samples(100_000, seed=1)
    prof = free_energy_profile(x, bins=np.linspace(-1.6, 1.6, 33), temperature=300.0, n_bootstrap=50, seed=2)
    u = A * (prof.centers ** 2 - B * B) ** 2 + TILT * prof.centers
    a_exact = u * constants.e * constants.N_A / 1000
    a_exact -= a_exact.min()
    diff = prof.free_energy - a_exact
    diff -= np.average(diff, weights=1 / prof.error ** 2)       # the profile's zero is arbitrary
    assert np.all(np.abs(diff) < 4 * prof.error + 0.05 * ref_kT)
    assert np.all(prof.error > 0) and not prof.free_energy.flags.writeable


def _langevin_double_well_samples(n_steps, *, n_particles=256, equilibrate=1500, every=5, seed=0, mass=4.0):
    """x positions of ``n_particles`` independent particles (one MD run, non-interacting),
    particle-major so that each particle's time series is contiguous (for block bootstrap)."""
    atoms = Atoms(f"He{n_particles}", positions=np.c_[np.full(n_particles, -B), np.zeros((n_particles, 2))])
    atoms.set_masses(np.full(n_particles, mass))
    xs = []

    def record(md):
        if md.step_count > equilibrate and md.step_count % every == 0:
            xs.append(md.state.positions[:, 0].clone())

    md = sims.MD(atoms, DoubleWell(a=A, b=B, tilt=TILT), sims.Langevin(timestep=4.0, temperature=300.0, friction=0.02),
                 temperature=300.0, seed=seed, record_every=0, min_distance=None, dtype=torch.float64, callback=record)
    md.run(equilibrate + n_steps)
    return torch.stack(xs).T.reshape(-1).numpy()


def test_langevin_md_reproduces_quadrature():
    ref = exact()
    # 4 fs steps are 1/50 of the wells' vibration period (about 200 fs); BAOAB's configurational error is O(dt^2)
    x = _langevin_double_well_samples(3000)          # 6 ps after 6 ps equilibration: 600 frames per particle, every 20 fs
    res = activation_free_energy(x, inverse_mass=np.full_like(x, 0.25), ts=ref["ts"], temperature=300.0, bins=60,
                                 n_bootstrap=100, block=100, seed=1)     # 2 ps blocks: longer than a crossing
    assert_matches(res, ref, max_error=0.5)


@pytest.mark.slow
def test_long_langevin_md_reproduces_quadrature_tightly():
    ref = exact()
    x = _langevin_double_well_samples(20000, n_particles=512, seed=3)
    res = activation_free_energy(x, inverse_mass=np.full_like(x, 0.25), ts=ref["ts"], temperature=300.0, bins=100,
                                 n_bootstrap=100, block=200, seed=1)
    assert_matches(res, ref, max_error=0.06)


def test_fep_error_trends_with_temperature_and_mass():
    # exact - FEP = -RT ln(lambda rho(z_A) / P_A); harmonic reactant well: RT ln(kT / (h nu_A))
    def gap(temperature, mass):
        ref = exact(a=0.1, temperature=temperature, mass=mass)
        return ref["forward"] - ref["forward_fep"]

    masses = [1.0, 10.0, 100.0, 1000.0]
    gaps = [gap(300.0, m) for m in masses]
    rt = constants.R * 300.0 / 1000
    # lambda ~ m^-1/2 while the profile does not depend on m: the gap grows by RT ln(10)/2 per decade, without bound
    assert np.allclose(np.diff(gaps), rt * np.log(10) / 2, rtol=1e-6)
    temps = [300.0, 600.0, 1200.0, 2400.0]
    gaps_t = [gap(t, 100.0) for t in temps]
    assert np.all(np.diff(gaps_t) > 0) and gaps_t[-1] > 3 * gaps_t[0] > 0
    # low T: the gap follows the harmonic closed form and vanishes as T ln T
    x_a = exact(a=0.1, temperature=20.0)["x_a"]
    nu = np.sqrt((12 * 0.1 * x_a ** 2 - 4 * 0.1 * B ** 2) * constants.e * 1e20 / (4.0 * constants.atomic_mass)) / (2 * np.pi)
    for t in (5.0, 20.0):
        harmonic = constants.R * t / 1000 * np.log(constants.k * t / (constants.h * nu))
        assert gap(t, 4.0) == pytest.approx(harmonic, rel=0.02, abs=1e-4)
    assert abs(gap(5.0, 4.0)) < abs(gap(20.0, 4.0)) < abs(gap(2400.0, 4.0))
    assert abs(gap(5.0, 4.0)) < 0.2


def test_two_cvs_same_reaction_free_energy_different_fep_barriers():
    theta = np.pi / 4
    refs = [exact(a=0.1, theta=0.0), exact(a=0.1, theta=theta)]
    # closed-form claims of the paper on this model
    assert refs[0]["reaction"] == pytest.approx(refs[1]["reaction"], abs=0.01)
    assert abs(refs[0]["forward_fep"] - refs[1]["forward_fep"]) > 1.0
    # the same from samples, with inverse masses by autograd through sims.cv
    kT = constants.k * 300.0 / constants.e
    n = 200_000
    x = boltzmann_samples(n, a=0.1, seed=5)
    y = np.random.default_rng(6).normal(0.0, np.sqrt(kT / 1.0), n)
    pos = np.zeros((n, 1, 3))
    pos[:, 0, 0], pos[:, 0, 1] = x, y
    cvs = [Position(0, "x"), Linear([Position(0, "x"), Position(0, "y")], [np.cos(theta), np.sin(theta)])]
    for cv, ref in zip(cvs, refs):
        z, m_inv, _ = cv_and_inverse_mass(cv, pos, np.array([4.0]))
        assert np.allclose(m_inv.numpy(), 0.25)
        res = activation_free_energy(z.numpy(), inverse_mass=m_inv.numpy(), ts=ref["ts"], temperature=300.0,
                                     bins=120, n_bootstrap=100, seed=7)
        assert_matches(res, ref, max_error=0.5)


def test_cv_quality_is_the_conditional_mean_alignment():
    # D_s(z) (paper eq. 45) is the bin average of |grad U . grad xi| / (|grad U| |grad xi|); for xi = x on
    # U = double well(x) + y^2/2 that ratio is |U_x| / |grad U|, written out here
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, 2000)
    y = rng.normal(0, 0.2, 2000)
    grad_u = np.stack([4 * A * x * (x * x - B * B) + TILT, 1.0 * y, 0 * x], 1)[:, None]
    from sims.cv import gradient_alignment

    pos = np.zeros((2000, 1, 3))
    pos[:, 0, 0], pos[:, 0, 1] = x, y
    _, _, gx = cv_and_inverse_mass(Position(0, "x"), pos, np.ones(1))
    align = gradient_alignment(torch.as_tensor(grad_u), gx).numpy()
    expected = np.abs(grad_u[:, 0, 0]) / np.linalg.norm(grad_u[:, 0], axis=1)
    assert np.allclose(align, expected)
    centers, d_s = cv_quality(x, align, bins=np.linspace(-1.5, 1.5, 11))
    idx = np.clip(np.searchsorted(np.linspace(-1.5, 1.5, 11), x, side="right") - 1, 0, 9)
    assert np.allclose(d_s, [expected[idx == k].mean() for k in range(10)])


def test_free_energy_from_frames(tmp_path):
    from ase.io import write

    ref = exact()
    x = boltzmann_samples(3000, seed=8)
    frames = [Atoms("He", positions=[[xi, 0.0, 0.0]], masses=[4.0]) for xi in x]
    path = tmp_path / "frames.extxyz"
    write(path, frames)
    res = free_energy_from_frames(path, "position:0,x", temperature=300.0, bins=30, ts=ref["ts"],
                                  plot=tmp_path / "profile.png", n_bootstrap=50)
    direct = activation_free_energy(x, inverse_mass=np.full_like(x, 0.25), ts=ref["ts"], temperature=300.0, bins=30,
                                    n_bootstrap=50)
    assert res.forward == pytest.approx(direct.forward, rel=1e-9) and res.cv_unit == "Å"
    assert (tmp_path / "profile.png").stat().st_size > 1000
    assert "forward dA‡" in res.table()


def test_free_energy_from_frames_of_a_slab_takes_the_minimum_image_in_its_plane():
    """pbc (T, T, F): bonds across the slab's edges were taken without the minimum image (the CV
    read 9.3-9.8 Å where ASE's get_distance(mic=True) gives 3.1-3.3 Å). The CV now equals ASE's."""
    ref = exact()
    x = boltzmann_samples(2000, seed=5)
    rng = np.random.default_rng(6)
    cell = np.array([[10.0, 0.0, 0.0], [4.0, 9.0, 0.0], [0.0, 0.0, 0.0]])  # a slab's cell: no third vector
    frames = []
    for d in 3.0 + x:  # the double well along a distance from 1.5 to 4.5 Å
        u = rng.normal(size=3)
        first = np.array([9.8, 8.5, 5.0])   # at the corner: most bonds cross an edge of the slab
        atoms = Atoms("Ar2", positions=[first, first + d * u / np.linalg.norm(u)], cell=cell,
                      pbc=(True, True, False))
        atoms.wrap()
        frames.append(atoms)
    mic = np.array([a.get_distance(0, 1, mic=True) for a in frames])
    np.testing.assert_allclose(mic, 3.0 + x, rtol=1e-12)  # the set-up: ASE sees the intended distances
    assert np.mean([np.linalg.norm(a.positions[1] - a.positions[0]) > d + 1 for a, d in zip(frames, mic)]) > 0.4
    res = free_energy_from_frames(frames, "distance:0,1", temperature=300.0, bins=30, ts=3.0 + ref["ts"],
                                  n_bootstrap=0)
    masses = frames[0].get_masses()
    direct = activation_free_energy(mic, inverse_mass=np.full_like(mic, 1 / masses[0] + 1 / masses[1]),
                                    ts=3.0 + ref["ts"], temperature=300.0, bins=30, n_bootstrap=0)
    assert res.forward == pytest.approx(direct.forward, rel=1e-9)
    assert res.reaction == pytest.approx(direct.reaction, rel=1e-9)
    frames[3].cell[2] = [0.0, 0.0, 20.0]
    frames[3].pbc = True
    with pytest.raises(SimsInputError, match="same periodicity"):
        free_energy_from_frames(frames, "distance:0,1", temperature=300.0, bins=30, n_bootstrap=0)


def test_frames_of_which_only_some_carry_a_weight_are_refused(tmp_path):
    x = boltzmann_samples(400, seed=3)
    frames = [Atoms("He", positions=[[xi, 0.0, 0.0]], masses=[4.0]) for xi in x]
    for a in frames[:300]:
        a.info["weight"] = 2.0 if a.positions[0, 0] > 0 else 1.0
    with pytest.raises(SimsInputError, match=r"300 of 400 frames carry info\['weight'\] and 100 do not"):
        free_energy_from_frames(frames, "position:0,x", temperature=300.0, bins=20, n_bootstrap=0)
    weighted = free_energy_from_frames(frames[:300], "position:0,x", temperature=300.0, bins=20, n_bootstrap=0)
    direct = activation_free_energy(x[:300], inverse_mass=np.full(300, 0.25), weights=np.where(x[:300] > 0, 2.0, 1.0),
                                    temperature=300.0, bins=20, n_bootstrap=0, ts=weighted.ts)
    assert weighted.reaction == pytest.approx(direct.reaction, rel=1e-12)


def test_cli_prints_the_table_and_refuses_bad_input(tmp_path, capsys):
    """``matrep free-energy`` prints what free_energy_from_frames computes; mistakes are one line, exit 2."""
    import matplotlib
    from ase.io import write

    from reprs.cli import main

    backend = matplotlib.get_backend()
    ref = exact()
    x = boltzmann_samples(2000, seed=9)
    path = tmp_path / "frames.extxyz"
    write(path, [Atoms("He", positions=[[xi, 0.0, 0.0]], masses=[4.0]) for xi in x])
    argv = ["free-energy", str(path), "--cv", "position:0,x", "--temperature", "300", "--bins", "30",
            "--ts", str(ref["ts"]), "--plot", str(tmp_path / "profile.svg")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    res = free_energy_from_frames(path, "position:0,x", temperature=300.0, bins=30, ts=ref["ts"])
    assert f"{res.forward:.2f}" in out and "forward dA‡" in out and (tmp_path / "profile.svg").exists()
    assert matplotlib.get_backend() == backend  # the plot leaves the user's backend alone
    for bad, flag in ((["--temperature", "-3"], "--temperature"), (["--bins", "1"], "--bins")):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, *bad])
        assert exit_info.value.code == 2 and flag in capsys.readouterr().err
    assert main(["free-energy", str(tmp_path / "missing.db"), "--cv", "distance:0,1", "--temperature", "300"]) == 2
    err = capsys.readouterr().err
    assert "missing.db" in err and "Traceback" not in err


class TestBadInput:
    z = np.concatenate([np.linspace(-1.5, -0.1, 500), np.linspace(0.1, 1.5, 300), [0.0, 0.01, -0.01]])

    def call(self, **kw):
        args = dict(inverse_mass=np.full_like(self.z, 0.25), temperature=300.0, bins=30, ts=0.0, n_bootstrap=0)
        args.update(kw)
        return activation_free_energy(args.pop("cv", self.z), **args)

    def test_negative_nan_and_mismatched_weights(self):
        w = np.ones_like(self.z)
        w[3] = -1.0
        with pytest.raises(SimsInputError, match="sample 3 has weight -1"):
            self.call(weights=w)
        w[3] = np.nan
        with pytest.raises(SimsInputError, match="NaN"):
            self.call(weights=w)
        with pytest.raises(SimsInputError, match="match the samples"):
            self.call(weights=np.ones(5))
        with pytest.raises(SimsInputError, match="all zero"):
            self.call(weights=np.zeros_like(self.z))

    def test_no_samples_on_one_side(self):
        w = np.where(self.z > 0.0, 0.0, 1.0)
        with pytest.raises(SimsInputError, match=r"no samples with non-zero weight on side B"):
            self.call(weights=w)
        with pytest.raises(SimsInputError, match=r"side A"):
            self.call(weights=1.0 - w, ts=-0.02)

    def test_ts_at_edge_of_range(self):
        with pytest.raises(SimsInputError, match="edge of the sampled range"):
            self.call(ts=1.49)
        monotone = -np.log1p(-(np.arange(2000) + 0.5) / 2000)       # exponential quantiles: A(z) only rises
        with pytest.raises(SimsInputError, match="edge"):
            activation_free_energy(monotone, inverse_mass=np.ones_like(monotone), temperature=300.0, bins=30, n_bootstrap=0)

    def test_zero_inverse_mass(self):
        with pytest.raises(SimsInputError, match="inverse CV mass is zero"):
            self.call(inverse_mass=np.zeros_like(self.z))
        with pytest.raises(SimsInputError, match="inverse_mass"):
            self.call(inverse_mass=-np.ones_like(self.z))

    def test_no_samples_at_ts(self):
        with pytest.raises(SimsInputError, match="no samples within"):
            self.call(cv=self.z[np.abs(self.z) > 0.06], inverse_mass=np.full((self.z[np.abs(self.z) > 0.06]).size, 0.25))

    def test_bad_temperature_units_bins(self):
        with pytest.raises(SimsInputError, match="temperature"):
            self.call(temperature=-5)
        with pytest.raises(SimsInputError, match="unknown energy unit"):
            self.call(units="kJ")
        with pytest.raises(SimsInputError, match="bins"):
            self.call(bins=1)


def test_fep_barriers_do_not_depend_on_samples_outside_the_grid():
    """``A(z‡) - min A`` is a ratio of densities: a grid (same bins) that leaves the outer tails out
    must give the same FEP barriers. rho(z‡) was normalised by all samples and the profile's minima
    by those in the grid, which raised both barriers by RT ln(all / in grid): 0.27 kJ/mol here."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(-1.0, 0.4, 60000), rng.normal(1.0, 0.4, 40000), rng.uniform(-0.3, 0.3, 3000)])
    m = np.ones_like(z)
    full = activation_free_energy(z, inverse_mass=m, temperature=300, bins=np.linspace(-2.5, 2.5, 101), ts=0.0,
                                  n_bootstrap=0)
    cut = activation_free_energy(z, inverse_mass=m, temperature=300, bins=np.linspace(-1.5, 1.5, 61), ts=0.0,
                                 n_bootstrap=0)
    assert np.mean(np.abs(z) > 1.5) > 0.09  # the narrow grid leaves a tenth of the samples out
    for name in ("forward_fep", "backward_fep", "reaction_fep", "forward", "backward", "reaction"):
        assert getattr(cut, name) == pytest.approx(getattr(full, name), abs=1e-9), name


def test_range_beside_bin_edges_is_refused():
    """With bin edges, a ``range`` was dropped without a word: range=(-1, 1) beside edges over [-3, 3]
    gave the profile over [-3, 3] (and cv_quality likewise)."""
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.0, 2000)
    edges = np.linspace(-3.0, 3.0, 31)
    with pytest.raises(SimsInputError, match="either bin edges or range"):
        free_energy_profile(z, bins=edges, range=(-1.0, 1.0), temperature=300.0, n_bootstrap=0)
    with pytest.raises(SimsInputError, match="either bin edges or range"):
        cv_quality(z, np.full_like(z, 0.5), bins=edges, range=(-1.0, 1.0))
    with pytest.raises(SimsInputError, match="either bin edges or range"):
        activation_free_energy(z, inverse_mass=np.ones_like(z), bins=edges, range=(-1.0, 1.0), ts=0.0,
                               temperature=300.0, n_bootstrap=0)
    # an integer number of bins still takes the range
    prof = free_energy_profile(z, bins=20, range=(-1.0, 1.0), temperature=300.0, n_bootstrap=0)
    assert prof.edges[0] == -1.0 and prof.edges[-1] == 1.0


def test_a_bootstrap_block_as_long_as_the_samples_is_refused():
    """block >= n left one block, resampled into the data itself every time: error bars of exactly 0.0
    (reaction_error 0.0 against 0.05 kJ/mol with block=1 on these 10000 samples)."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(-1.0, 0.4, 6000), rng.normal(1.0, 0.4, 4000)])
    for block in (10000, 20000):
        with pytest.raises(SimsInputError, match="every bootstrap replicate equals the data"):
            activation_free_energy(z, inverse_mass=np.ones_like(z), temperature=300.0, bins=60, ts=0.0,
                                   n_bootstrap=20, block=block)
        with pytest.raises(SimsInputError, match="every bootstrap replicate equals the data"):
            free_energy_profile(z, bins=60, temperature=300.0, n_bootstrap=20, block=block)
    # no bootstrap, no blocks to check; two blocks are accepted
    activation_free_energy(z, inverse_mass=np.ones_like(z), temperature=300.0, bins=60, ts=0.0, n_bootstrap=0,
                           block=20000)
    res = activation_free_energy(z, inverse_mass=np.ones_like(z), temperature=300.0, bins=60, ts=0.0, n_bootstrap=20,
                                 block=5000)
    assert res.reaction_error > 0
