"""Constant pressure on batches (sims.batch.BatchMD with sims.barostats.CellRescaling): every replica
against a lone sims.MD run with the same seed, and the exact isothermal-isobaric ideal gas per replica."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk

import sims
from sims.barostats import MTK, CellRescaling, NegativePressureWarning
from sims.batch import BatchMD, batch_energy_and_forces
from sims.errors import SimsInputError, SimulationStopped
from sims.integrators import Langevin, NoseHooverChain
from sims.potentials import LennardJones

F64 = torch.float64


def _pot():
    return LennardJones(sigma=3.4, epsilon=0.0104, cutoff=7.0, dtype=F64)


def _argon():
    """Three argon crystals: two orthorhombic boxes of different sizes and a triclinic (primitive fcc) one."""
    out = []
    for k, atoms in enumerate((bulk("Ar", "fcc", a=5.3, cubic=True).repeat(2),
                               bulk("Ar", "fcc", a=5.4, cubic=True).repeat((3, 2, 2)),
                               bulk("Ar", "fcc", a=5.35).repeat(3))):
        atoms = atoms.copy()
        atoms.rattle(0.05, seed=k)
        out.append(atoms)
    return out


def _lower_triangular(atoms):
    """``atoms`` rotated into a lower-triangular cell (triclinic cell rescaling's form)."""
    atoms = atoms.copy()
    atoms.set_cell(atoms.cell.standard_form()[0], scale_atoms=True)
    return atoms


@pytest.mark.parametrize("coupling, thermostat", [("isotropic", "langevin"), ("anisotropic", "nose_hoover_chain"),
                                                  ("semiisotropic", "langevin"), ("triclinic", "nose_hoover_chain")])
def test_replicas_equal_lone_npt_runs(coupling, thermostat):
    """Replica b (its own temperature, pressure and seed) follows the lone sims.MD NPT run with that seed
    to round-off: the same velocities, thermostat noise, barostat noise, strains and cells."""
    systems = _argon() if coupling == "isotropic" else _argon()[:2]  # per-axis coupling needs orthorhombic cells
    if coupling == "triclinic":  # lower-triangular cells (LAMMPS's orientation)
        systems = [_lower_triangular(a) for a in _argon()]
    n = len(systems)
    temps, pressures, seeds = [40.0, 60.0, 50.0][:n], [100.0, 2000.0, 500.0][:n], [3, 5, 7][:n]
    if coupling == "anisotropic":
        pressures = [(100.0, 300.0, 50.0), 2000.0]
    if coupling == "triclinic":  # a shear target, acting from each replica's own start cell
        pressures[0] = [[100.0, -200.0, 30.0], [-200.0, 80.0, 0.0], [30.0, 0.0, 120.0]]

    def integrator(t, p):
        inner = (Langevin(5.0, t, friction=0.02) if thermostat == "langevin"
                 else NoseHooverChain(5.0, t, tau=100.0))
        return CellRescaling(inner, pressure=p, tau_p=100.0, compressibility=3e-4, coupling=coupling)

    md = BatchMD(systems, _pot(), integrator(1.0, 1.0), temperature=temps, target_temperature=temps,
                 target_pressure=pressures, seed=seeds, dtype=F64)
    md.run(150)
    sizes = [len(a) for a in systems]
    assert md.neighbors.n_partial_builds + md.neighbors.n_builds > 1  # the deformed cells did rebuild lists
    for b, atoms in enumerate(systems):
        one = sims.MD(atoms, _pot(), integrator(temps[b], pressures[b]), temperature=temps[b], seed=seeds[b],
                      dtype=F64)
        one.run(150)
        assert float((one.state.cell - torch.as_tensor(atoms.cell[:])).abs().max()) > 1e-3  # the cell moved
        np.testing.assert_allclose(md.state.cell[b].numpy(), one.state.cell.numpy(), atol=1e-10)
        np.testing.assert_allclose(torch.split(md.state.positions, sizes)[b].numpy(), one.state.positions.numpy(),
                                   atol=1e-9)
        np.testing.assert_allclose(torch.split(md.state.velocities, sizes)[b].numpy(), one.state.velocities.numpy(),
                                   atol=1e-11)
        assert float(md.conserved_energy()[b]) == pytest.approx(one.conserved_energy(), abs=1e-9)
        np.testing.assert_allclose(md.stress()[b].numpy(), one.stress().numpy(), atol=1e-12)
    # The list patched per system under deformed cells still holds every pair: a fresh list gives the same.
    e, f = batch_energy_and_forces(_pot(), md.state.to_atoms(), dtype=F64)
    np.testing.assert_allclose(md.energy.numpy(), e, rtol=1e-12)
    np.testing.assert_allclose(md.forces.numpy(), np.concatenate(f), atol=1e-11)


@pytest.mark.parametrize("batch", [False, True], ids=["lone", "batch"])
def test_semiisotropic_noise_is_float64_whatever_the_default_dtype(batch):
    """The xy plane's noise factor sqrt(1/2) was made by torch.tensor without a dtype, so a float64 run took
    it rounded to float32 under torch's default dtype (and exact under set_default_dtype(float64)): after
    40 steps the two runs' cells differed by 3e-9 Å. It is made in the run's dtype now."""
    atoms = _argon()[0]

    def run():
        npt = CellRescaling(Langevin(5.0, 50.0, friction=0.02), pressure=(100.0, 100.0, 800.0), tau_p=100.0,
                            compressibility=3e-4, coupling="semiisotropic")
        if batch:
            md = BatchMD([atoms], _pot(), npt, temperature=[50.0], seed=[4], dtype=F64)
        else:
            md = sims.MD(atoms, _pot(), npt, temperature=50.0, seed=4, dtype=F64)
        md.run(40)
        return md.state.cell.reshape(3, 3), md.state.positions

    cell, positions = run()
    try:
        torch.set_default_dtype(F64)
        cell64, positions64 = run()
    finally:
        torch.set_default_dtype(torch.float32)
    assert float((cell - torch.as_tensor(atoms.cell[:])).abs().max()) > 1e-3  # the cell moved
    assert torch.equal(cell, cell64) and torch.equal(positions, positions64)


def test_replica_checkpoint_resumes_as_lone_npt_run_and_roundtrip(tmp_path):
    systems = _argon()[:2]
    npt = CellRescaling(Langevin(5.0, 50.0, friction=0.02), pressure=100.0, tau_p=100.0, compressibility=3e-4)
    md = BatchMD(systems, _pot(), npt, temperature=[50.0, 50.0], target_pressure=[100.0, 800.0], seed=[1, 2],
                 dtype=F64)
    md.run(30)
    md.save(tmp_path / "ck.pt")
    d = md.replica_state_dict(1)
    md.run(30)
    # The whole batch resumes bit for bit.
    again = BatchMD(systems, _pot(), npt, temperature=[50.0, 50.0], seed=[9, 9], dtype=F64)
    again.load_state_dict(torch.load(tmp_path / "ck.pt", weights_only=True))
    again.run(30)
    assert torch.equal(again.state.positions, md.state.positions) and torch.equal(again.state.cell, md.state.cell)
    torch.testing.assert_close(again.target_pressure, torch.tensor([[100.0] * 3, [800.0] * 3], dtype=F64))
    # Replica 1 continues alone as a sims.MD run at its own pressure.
    state = sims.State(**{k: v for k, v in d["state"].items()})
    one = sims.MD(state, _pot(), CellRescaling(Langevin(5.0, 50.0, friction=0.02), pressure=800.0, tau_p=100.0,
                                               compressibility=3e-4), dtype=F64)
    one.load_integrator_state_dict(d["integrator"])
    one.refresh()
    one.run(30)
    np.testing.assert_allclose(one.state.positions.numpy(), md.state.positions[md.state.system == 1].numpy(), atol=1e-9)
    np.testing.assert_allclose(one.state.cell.numpy(), md.state.cell[1].numpy(), atol=1e-10)


class _IdealGas(torch.nn.Module):
    """No interactions, for batches: zero energies that are still functions of positions and cells."""

    cutoff = 0.0

    def forward(self, positions, cell, numbers, pairs, batch=None):
        per_atom = (positions * 0).sum(1)
        return torch.zeros(cell.shape[0], dtype=positions.dtype).index_add(0, batch, per_atom) + (cell * 0).sum((1, 2))


def _ideal_gas_volumes(steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Volumes (every 10 steps) of four ideal-gas replicas of 50 atoms at their own temperatures and
    pressures, and their exact means ``(N + 1) kT / P``."""
    n = 50
    temps, pressures = [300.0, 200.0, 300.0, 450.0], [100.0, 100.0, 300.0, 150.0]
    v_mean = np.array([(n + 1) * units.kB * t / (p * units.bar) for t, p in zip(temps, pressures)])
    rng = np.random.default_rng(0)
    systems = [Atoms(f"Ar{n}", positions=rng.uniform(0, v ** (1 / 3), (n, 3)), cell=[v ** (1 / 3)] * 3, pbc=True)
               for v in v_mean]
    npt = CellRescaling(Langevin(timestep=20.0, temperature=300.0, friction=0.01), pressure=100.0, tau_p=1000.0,
                        compressibility=1 / 150.0)
    md = BatchMD(systems, _IdealGas(), npt, temperature=temps, target_temperature=temps, target_pressure=pressures,
                 seed=seed, min_distance=None, dtype=F64)
    md.run(500)
    volumes = []
    for _ in range(steps // 10):
        md.run(10)
        volumes.append(md.state.volume().numpy().copy())
    return np.array(volumes), v_mean, n


def _check_gamma(volumes: np.ndarray, v_mean: np.ndarray, n: int, var_rel: float, pooled_rel: float) -> None:
    """Each replica's volumes: mean (N + 1) kT / P within 4 standard errors (10 blocks; at least 1 % of
    the mean, as 10 block means underestimate it now and then), var / mean^2 = 1 / (N + 1) within
    ``var_rel``; the four replicas' normalised volumes pooled (the same Gamma(N + 1) law) within ``pooled_rel``."""
    for b in range(volumes.shape[1]):
        blocks = np.array([x.mean() for x in np.array_split(volumes[:, b], 10)])
        mean, err = blocks.mean(), max(blocks.std(ddof=1) / math.sqrt(10), 0.01 * v_mean[b])
        assert err < 0.05 * v_mean[b]
        assert abs(mean - v_mean[b]) < 4 * err, b
        assert volumes[:, b].var() / mean ** 2 == pytest.approx(1 / (n + 1), rel=var_rel), b
    pooled = volumes / v_mean
    assert pooled.mean() == pytest.approx(1.0, abs=0.03)
    assert pooled.var() == pytest.approx(1 / (n + 1), rel=pooled_rel)


def test_ideal_gas_replicas_sample_their_exact_volume_distributions():
    """Four ideal-gas replicas at their own temperatures and pressures: each volume samples
    ``p(V) ~ V^N exp(-P V / kT)`` (Langevin does not conserve momentum: N + 1 free positions), so
    <V> = (N + 1) kT / P and var(V) / <V>^2 = 1 / (N + 1), exactly (the lone-run test's law, per replica)."""
    _check_gamma(*_ideal_gas_volumes(6000, seed=11), var_rel=0.45, pooled_rel=0.2)


@pytest.mark.slow
def test_ideal_gas_replicas_sample_their_exact_volume_distributions_long():
    _check_gamma(*_ideal_gas_volumes(60000, seed=12), var_rel=0.2, pooled_rel=0.1)


def test_batch_barostat_bad_input():
    systems = _argon()[:2]
    npt = CellRescaling(Langevin(5.0, 50.0), pressure=1.0, tau_p=100.0, compressibility=3e-4)
    with pytest.raises(SimsInputError, match="MTK barostat is not batched"):
        BatchMD(systems, _pot(), MTK(5.0, temperature=50.0, pressure=1.0), dtype=F64)
    with pytest.raises(SimsInputError, match="target_pressure needs a barostat"):
        BatchMD(systems, _pot(), Langevin(5.0, 50.0), target_pressure=1.0, dtype=F64)
    with pytest.raises(SimsInputError, match="2 systems"):
        BatchMD(systems, _pot(), npt, target_pressure=[1.0, 2.0, 3.0], dtype=F64)
    with pytest.raises(SimsInputError, match="coupling='anisotropic'"):
        BatchMD(systems, _pot(), npt, target_pressure=[1.0, (1.0, 2.0, 3.0)], dtype=F64)
    with pytest.warns(NegativePressureWarning):
        BatchMD(systems, _pot(), npt, target_pressure=[1.0, -100.0], dtype=F64)
    slab = systems[1].copy()
    slab.pbc = (True, True, False)
    with pytest.raises(SimsInputError, match="system 1: a barostat needs a cell periodic in all three"):
        BatchMD([systems[0], slab], _pot(), npt, dtype=F64)
    aniso = CellRescaling(Langevin(5.0, 50.0), pressure=1.0, tau_p=100.0, coupling="anisotropic")
    with pytest.raises(SimsInputError, match="system 1: anisotropic coupling .* triclinic"):
        BatchMD([systems[0], _argon()[2]], _pot(), aniso, dtype=F64)


def test_collapsing_replica_stops_the_run_naming_it():
    """A replica whose target pressure crushes it stops the batch before the bad step, naming the system."""
    systems = _argon()[:2]
    npt = CellRescaling(Langevin(5.0, 50.0), pressure=1.0, tau_p=100.0, compressibility=3e-4)
    md = BatchMD(systems, _pot(), npt, temperature=50.0, target_pressure=[1.0, 1e5], seed=0, dtype=F64)
    before = md.state.cell.clone()
    with pytest.raises(SimulationStopped, match="system 1: the cell is collapsing"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            md.run(50)
    assert md.step_count == 0 and torch.equal(md.state.cell, before)  # stopped before the bad step


def test_batch_of_one_equals_the_lone_npt_run():
    """B = 1 takes the one-system neighbour list under the barostat's deformed cells."""
    atoms = _argon()[0]

    def npt():
        return CellRescaling(Langevin(5.0, 50.0, friction=0.02), pressure=500.0, tau_p=100.0, compressibility=3e-4)

    md = BatchMD([atoms], _pot(), npt(), temperature=50.0, seed=[4], dtype=F64).run(100)
    one = sims.MD(atoms, _pot(), npt(), temperature=50.0, seed=4, dtype=F64).run(100)
    np.testing.assert_allclose(md.state.positions.numpy(), one.state.positions.numpy(), atol=1e-10)
    np.testing.assert_allclose(md.state.cell[0].numpy(), one.state.cell.numpy(), atol=1e-11)
    assert md.neighbors.n_builds == one.neighbors.n_builds


def test_a_barostat_around_a_seeded_thermostat_repeats_its_run():
    """``CellRescaling(Langevin(seed=5))`` with no other seed: the barostat's noise comes from the thermostat's seed
    (the stream ``(5, 1)``, the thermostat's ``(5, 0)`` is what Langevin(seed=5) draws alone), so a lone run and a
    batch repeat themselves bit for bit; the barostat drew from fresh entropy before (cells apart after 20
    steps of two identical runs: 0.10 Å). With the barostat's own seed, that one is used as before."""
    atoms = _argon()[0]

    def npt(seed=None):
        return CellRescaling(Langevin(5.0, 50.0, friction=0.02, seed=5), pressure=500.0, tau_p=100.0,
                             compressibility=3e-4, seed=seed)

    lone = [sims.MD(atoms, _pot(), npt(), dtype=F64).run(20).state for _ in range(2)]
    assert torch.equal(lone[0].cell, lone[1].cell) and torch.equal(lone[0].positions, lone[1].positions)
    assert not torch.equal(lone[0].cell, sims.MD(atoms, _pot(), npt(seed=7), dtype=F64).run(20).state.cell)
    batch = [BatchMD([atoms, atoms], _pot(), npt(), dtype=F64).run(20).state for _ in range(2)]
    assert torch.equal(batch[0].cell, batch[1].cell) and torch.equal(batch[0].positions, batch[1].positions)
    # the thermostat's seed acts as a batch-wide int seed: replica b draws (5, b), as under Langevin(seed=5) alone
    plain = BatchMD([atoms, atoms], _pot(), Langevin(5.0, 50.0, friction=0.02, seed=5), dtype=F64)
    assert torch.equal(plain._integrator_vars["generators"][1].get_state(),
                       sims.integrators.make_generator((5, 1, 1)).get_state())
    assert torch.equal(BatchMD([atoms, atoms], _pot(), npt(), dtype=F64)._integrator_vars["generators"][1].get_state(),
                       sims.integrators.make_generator((5, 1, 1, 1)).get_state())
