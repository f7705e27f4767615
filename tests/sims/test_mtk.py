"""The MTK barostat (sims.barostats.MTK): conserved quantity, exact ideal-gas ensemble, LJ density vs teqp."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk

import sims
from sims.barostats import MTK, NegativePressureWarning
from sims.errors import SimsInputError, SimulationStopped
from sims.potentials import LennardJones

from .test_barostats import EPS, SIGMA, _blocks, _IdealGas, _lj_npt_density, _npt_config, _triclinic_argon


def _argon(triclinic: bool) -> Atoms:
    if triclinic:
        return _triclinic_argon()
    atoms = bulk("Ar", "fcc", a=5.6, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    return atoms


SHEAR = [[300.0, 150.0, 0.0], [150.0, 300.0, -80.0], [0.0, -80.0, 300.0]]  # bar


def _conserved_error(timestep: float, coupling: str, thermostat: bool, time_fs: float = 2000.0, pressure=500.0):
    """Standard deviation of the conserved quantity over ``time_fs`` (eV; 41 samples), and the start and end cells.

    LJ shifted to zero at the cutoff (a truncated potential's energy jumps when pairs cross it)."""
    atoms = _argon(coupling == "triclinic")
    pot = LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=8.0, shift=True)
    mtk = MTK(timestep, temperature=100.0, pressure=pressure, tau=100.0, tau_p=500.0, coupling=coupling,
              thermostat=thermostat)
    md = sims.MD(atoms, pot, mtk, temperature=100.0, seed=0, record_every=0, dtype=torch.float64)
    start, values = md.state.cell.clone(), [md.conserved_energy()]
    n = round(time_fs / timestep)
    for _ in range(40):
        md.run(n // 40)
        values.append(md.conserved_energy())
    return float(np.std(values)), start.numpy(), md.state.cell.numpy()


@pytest.mark.parametrize("coupling, thermostat, pressure", [
    ("isotropic", False, 500.0), ("isotropic", True, 500.0), ("semiisotropic", True, 500.0),
    ("anisotropic", True, 500.0), ("triclinic", True, 500.0), ("triclinic", True, SHEAR)])
def test_conserved_quantity_error_shrinks_as_dt_squared(coupling, thermostat, pressure):
    """32 LJ argon atoms pushed by 500 bar (or a sheared 3x3 target) for 2 ps at time steps 10, 5, 2.5 fs:
    the fluctuation of H' falls about fourfold with each halving (second-order splitting; measured
    3.3-4.4: the force of the shifted LJ still jumps at the cutoff), and is below 0.1 meV at 2.5 fs (the
    kinetic energy is 0.4 eV), while the cell does move."""
    errors = []
    for dt in (10.0, 5.0, 2.5):
        err, start, end = _conserved_error(dt, coupling, thermostat, pressure=pressure)
        errors.append(err)
    assert errors[-1] < 1e-4
    for coarse, fine in zip(errors, errors[1:]):
        assert 3.0 < coarse / fine < 5.0, errors
    volume = abs(np.linalg.det(end)) / abs(np.linalg.det(start))
    assert abs(volume - 1) > 0.01
    if coupling in ("anisotropic", "semiisotropic"):
        assert np.allclose(end - np.diag(np.diag(end)), 0)
        strain = np.diag(end) / np.diag(start)
        assert abs(strain[2] - strain[0]) > 1e-3  # z moves apart from x
        assert (abs(strain[1] - strain[0]) < 1e-12) == (coupling == "semiisotropic")
    if coupling == "triclinic":
        # The shape moves too: the cell is not a scaled copy of the start.
        assert np.abs(end / np.cbrt(volume) - start).max() > 0.01


def test_shear_target_is_met_by_the_pressure_tensor():
    """A 108-atom LJ argon crystal at 40 K under a 3x3 target with shear components: each component of
    the time-averaged pressure tensor (virial and kinetic) meets its target, and the cell tilts.
    Measured while writing this test: every mean within 2 bar of its target."""
    atoms = bulk("Ar", "fcc", a=5.3, cubic=True).repeat(3)
    pot = LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=8.0, shift=False)
    mtk = MTK(10.0, temperature=40.0, pressure=SHEAR, tau=200.0, tau_p=1000.0, coupling="triclinic")
    md = sims.MD(atoms, pot, mtk, temperature=40.0, seed=2, record_every=0, dtype=torch.float64)
    md.run(300)
    pressures = []
    for _ in range(150):
        md.run(5)
        pressures.append(-md.stress().numpy() / units.bar)
    pressures = np.array(pressures)
    for a, b in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)]:
        mean, err = _blocks(pressures[:, a, b])
        assert err < 60
        assert abs(mean - SHEAR[a][b]) < 4 * err + 10, (a, b, mean, err)
    cell = md.state.cell.numpy()
    assert np.abs(cell - np.diag(np.diag(cell))).max() > 0.03  # Å: sheared from the cubic start


def test_ideal_gas_volume_distribution_is_exact():
    """Ten ideal-gas atoms under MTK with the total momentum zero sample ``p(V) ~ V^(N-1) exp(-P V / kT)``
    (the MTK docstring): ``<V> = N kT / P`` and ``var(V) / <V>^2 = 1 / N``. A barostat whose thermostat
    lets the centre of mass diffuse samples ``V^N`` instead, 10 % larger here: the run tells them apart.

    Measured (3 seeds x 10^4 steps): ``<V>`` 0.991 +- 0.006 of ``N kT / P``, variance 0.96 +- 0.01 of the exact one.
    """
    n, temperature, pressure = 10, 300.0, 100.0
    v_exact = n * units.kB * temperature / (pressure * units.bar)
    box = v_exact ** (1 / 3)
    atoms = Atoms(f"Ar{n}", positions=np.random.default_rng(0).uniform(0, box, (n, 3)), cell=[box] * 3, pbc=True)
    mtk = MTK(50.0, temperature=temperature, pressure=pressure, tau=500.0, tau_p=1000.0)
    md = sims.MD(atoms, _IdealGas(), mtk, temperature=temperature, seed=0, min_distance=None, record_every=0,
                 dtype=torch.float64)
    md.run(200)
    volumes = []
    for _ in range(1600):
        md.run(5)
        volumes.append(float(md.state.volume()))
    volumes = np.array(volumes)
    mean, err = _blocks(volumes, 16)
    assert err < 0.025 * v_exact  # (N + 1) kT / P lies 4 errors away at least
    assert abs(mean - v_exact) < 3 * err
    assert volumes.var() / mean ** 2 == pytest.approx(1 / n, rel=0.2)


def test_lj_npt_density_matches_equation_of_state():
    """256 LJ atoms (rc = 3 sigma) at T* = 2 and the pressure of rho* = 0.7 in Thol et al.'s EOS, 10 ps of MTK.

    Measured while writing this test (seed 0): rho* = 0.6992, standard deviation 0.0144 against the EOS's
    0.0151 (20 ps: 0.7029 and 0.0172; a 10 ps mean has a standard error of about 0.005).
    """
    rho, sd, sd_eos = _lj_npt_density(n_cells=4, rc_red=3.0, t_red=2.0, rho_red=0.7, steps=1000,
                                      mtk={"tau": 200.0, "tau_p": 500.0})
    assert rho == pytest.approx(0.7, abs=0.012)
    assert sd == pytest.approx(sd_eos, rel=0.35)


@pytest.mark.slow
@pytest.mark.parametrize("coupling, t_red", [("isotropic", 2.0), ("triclinic", 2.0), ("isotropic", 1.5)])
def test_lj_npt_density_matches_equation_of_state_long(coupling, t_red):
    """500 atoms, rc = 3.5 sigma, 200 ps; the triclinic case starts from a sheared box and moves all six
    strains. Density within 0.6 %, fluctuations within 15 % of the EOS."""
    cell = [[1, 0, 0], [0.2, 1, 0], [0.1, -0.15, 1]] if coupling == "triclinic" else None
    rho, sd, sd_eos = _lj_npt_density(n_cells=5, rc_red=3.5, t_red=t_red, rho_red=0.7, steps=20000,
                                      mtk={"tau": 200.0, "tau_p": 1000.0, "coupling": coupling}, cell=cell)
    assert rho == pytest.approx(0.7, abs=0.004)
    assert sd == pytest.approx(sd_eos, rel=0.15)


def test_checkpoint_resumes_bit_for_bit():
    atoms = _triclinic_argon()
    pot = LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=8.0, shift=True)
    mtk = MTK(5.0, temperature=100.0, pressure=300.0, tau=100.0, tau_p=300.0, coupling="triclinic")
    md = sims.MD(atoms, pot, mtk, temperature=100.0, seed=0, record_every=0, dtype=torch.float64)
    md.run(30)
    saved_state, saved = md.state, md.integrator_state_dict()
    md.refresh()
    md.run(30)
    again = sims.MD(saved_state, pot, mtk, seed=5, record_every=0)
    again.state = saved_state
    again.load_integrator_state_dict(saved)
    again.refresh()
    again.run(30)
    assert torch.equal(again.state.positions, md.state.positions)
    assert torch.equal(again.state.cell, md.state.cell)
    assert again.conserved_energy() == md.conserved_energy()


def test_collapsing_cell_stops_with_the_last_good_state():
    n, temperature, box = 20, 300.0, 40.0
    p_gas = n * units.kB * temperature / box ** 3 / units.bar
    atoms = Atoms(f"Ar{n}", positions=np.random.default_rng(0).uniform(0, box, (n, 3)), cell=[box] * 3, pbc=True)
    mtk = MTK(10.0, temperature=temperature, pressure=1000 * p_gas, tau=200.0, tau_p=200.0)
    md = sims.MD(atoms, _IdealGas(), mtk, temperature=temperature, seed=0, min_distance=None, dtype=torch.float64)
    with pytest.raises(SimulationStopped, match="collapsing"):
        md.run(5000)
    assert md.step_count < 5000
    assert float(md.state.volume()) > box ** 3 / 8


def test_bad_settings_and_cells():
    with pytest.raises(SimsInputError, match="tau_p must be at least the time step"):
        MTK(5.0, temperature=100.0, pressure=1.0, tau_p=2.0)
    with pytest.raises(SimsInputError, match="tau must be at least the time step"):
        MTK(5.0, temperature=100.0, pressure=1.0, tau=2.0)
    with pytest.raises(SimsInputError, match="coupling must be"):
        MTK(5.0, temperature=100.0, pressure=1.0, coupling="semi")
    with pytest.raises(SimsInputError, match="need coupling='anisotropic'"):
        MTK(5.0, temperature=100.0, pressure=[1.0, 1.0, 5.0])
    with pytest.raises(SimsInputError, match="needs coupling='triclinic'"):
        MTK(5.0, temperature=100.0, pressure=SHEAR)
    with pytest.raises(SimsInputError, match="symmetric"):
        MTK(5.0, temperature=100.0, pressure=[[1, 2, 0], [0, 1, 0], [0, 0, 1]], coupling="triclinic")
    with pytest.raises(SimsInputError, match="3x3 finite"):
        MTK(5.0, temperature=100.0, pressure=[[1, 0], [0, 1]], coupling="triclinic")
    with pytest.raises(SimsInputError, match="temperature must be > 0"):
        MTK(5.0, temperature=0.0, pressure=1.0, thermostat=False)
    with pytest.warns(NegativePressureWarning, match="cavitate"):
        MTK(5.0, temperature=100.0, pressure=-100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MTK(5.0, temperature=100.0, pressure=[2.0] * 3, coupling="anisotropic").pressure == (2.0, 2.0, 2.0)
    pot = LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=8.0)
    slab = bulk("Ar", "fcc", a=5.3, cubic=True).repeat(2)
    slab.pbc = [True, True, False]
    with pytest.raises(SimsInputError, match="periodic in all three directions"):
        sims.MD(slab, pot, MTK(5.0, temperature=100.0, pressure=1.0), dtype=torch.float64)
    with pytest.raises(SimsInputError, match="triclinic"):
        sims.MD(_triclinic_argon(), pot, MTK(5.0, temperature=100.0, pressure=1.0, coupling="anisotropic"),
                dtype=torch.float64)


@pytest.mark.parametrize("stage", [{"barostat": "mtk"}, {"barostat": "mtk", "coupling": "triclinic"},
                                   {"ensemble": "nph"},
                                   {"barostat": "mtk", "coupling": "semiisotropic", "pressure": [500.0, 500.0, 800.0]},
                                   {"barostat": "mtk", "coupling": "triclinic", "pressure": SHEAR}])
def test_mtk_and_nph_stages_run_through_generate(tmp_path, stage):
    from sims.config import SimulationConfig
    from sims.generate import _make_integrator, generate, read_frames

    cfg = _npt_config("npt.extxyz", **stage)
    integrator = _make_integrator(SimulationConfig.from_config(cfg).stages[0])
    assert isinstance(integrator, MTK)
    assert integrator.thermostat == (stage.get("ensemble") != "nph")
    cfg["_base"] = str(tmp_path)
    frames = read_frames(generate(cfg))
    assert [f.info["step"] for f in frames] == [20, 40, 60]
    assert len({f.info["cell_volume"] for f in frames}) == 3


@pytest.mark.parametrize("stage, match", [
    ({"barostat": "mtk", "thermostat": "langevin"}, "takes thermostat = 'nose_hoover_chain'"),
    ({"ensemble": "nph", "barostat": "berendsen"}, "nph stage runs barostat = 'mtk'"),
    ({"ensemble": "nph", "thermostat": "nose_hoover_chain"}, "nph stage has no thermostat"),
    ({"barostat": "mtk", "tau": 2.0}, "tau must be at least the time step"),
    ({"barostat": "mtk", "tau_p": 2.0}, "tau_p must be at least the time step"),
    ({"barostat": "mkt"}, "did you mean 'mtk'"),
    ({"coupling": "semiisotropic", "pressure": [1.0, 2.0, 3.0]}, "semiisotropic takes x = y"),
    ({"barostat": "mtk", "pressure": SHEAR}, "3x3 tensor: it needs coupling = 'triclinic'"),
    ({"barostat": "mtk", "coupling": "triclinic", "pressure": [[1, 2, 0], [0, 1, 0], [0, 0, 1]]}, "symmetric"),
    ({"barostat": "mtk", "coupling": "triclinic", "pressure": [[1, 0], [0, 1]]}, "3x3 list of lists"),
    ({"ensemble": "nph", "pressure": None}, "pressure is required for an nph stage"),
    ({"ensemble": "langevin", "pressure": None, "barostat": "mtk"}, "barostat is read only by an npt or nph"),
])
def test_mtk_stage_config_errors(stage, match):
    from sims.generate import load_config

    cfg = _npt_config("x.extxyz", **stage)
    cfg["stages"][0] = {k: v for k, v in cfg["stages"][0].items() if v is not None}
    with pytest.raises(sims.errors.ConfigError, match=match):
        load_config(cfg)


def test_collapsing_cell_in_generate_keeps_the_last_good_checkpoint(tmp_path):
    """A near-ideal gas (LJ with epsilon 1e-9 eV) pushed at 30 times its own pressure: the run stops with
    SimulationStopped at the collapse, the frames written before stay readable, the checkpoint holds the
    last good state, and running the config again stops at the same step without repeating frames."""
    from sims.generate import generate, read_frames

    n, temperature, box = 32, 120.0, 11.2
    p_gas = n * units.kB * temperature / box ** 3 / units.bar
    cfg = _npt_config("gas.extxyz", barostat="mtk", pressure=30 * p_gas, steps=3000, sample_every=10,
                      tau=100.0, tau_p=1000.0)
    cfg["potential"]["epsilon"] = 1e-9
    cfg["output"]["checkpoint_every"] = 20
    cfg["_base"] = str(tmp_path)
    with pytest.raises(SimulationStopped, match="collapsing") as first:
        generate(cfg)
    frames = read_frames(tmp_path / "gas.extxyz")
    assert 0 < len(frames) < 300
    ckpt = torch.load(tmp_path / "gas.extxyz.ckpt", weights_only=True)
    assert not ckpt["done"] and 0 < ckpt["step"] <= frames[-1].info["step"] + 20
    assert abs(float(torch.linalg.det(ckpt["state"]["cell"]))) > box ** 3 / 8
    with pytest.raises(SimulationStopped, match="collapsing") as again:
        generate(cfg)
    assert str(again.value) == str(first.value)
    assert [f.info["step"] for f in read_frames(tmp_path / "gas.extxyz")] == [f.info["step"] for f in frames]
