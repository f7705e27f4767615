"""Integrators: ASE's Verlet trajectory, NVE energy conservation, canonical kinetic-energy statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.lj import LennardJones as AseLJ
from ase.md.verlet import VelocityVerlet as AseVerlet

import sims
from sims.errors import SimsInputError
from sims.potentials import LennardJones

F64 = torch.float64


def _argon_pot():
    return LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, dtype=F64)


def _block_error(x: np.ndarray, n_blocks: int = 10) -> float:
    """Standard error of the mean from block averages (accounts for time correlation)."""
    blocks = np.array_split(x, n_blocks)
    means = np.array([b.mean() for b in blocks])
    return float(means.std(ddof=1) / np.sqrt(n_blocks))


def test_verlet_equals_ase_trajectory(argon_liquid):
    atoms = argon_liquid.copy()
    rng = np.random.default_rng(0)
    atoms.set_velocities(rng.normal(0, 0.01, (len(atoms), 3)))
    md = sims.MD(atoms, _argon_pot(), sims.VelocityVerlet(timestep=5.0), dtype=F64, record_every=10)
    md.run(50)
    ref = atoms.copy()
    ref.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5)
    AseVerlet(ref, timestep=5.0 * units.fs).run(50)
    np.testing.assert_allclose(md.positions_array(), ref.positions, atol=1e-9)
    np.testing.assert_allclose(md.trajectory[-1].get_velocities(), ref.get_velocities(), atol=1e-11)
    assert md.trajectory[-1].info["step"] == 50 and md.trajectory[-1].info["time"] == pytest.approx(250.0)
    assert md.trajectory[-1].get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-9)


def test_nve_energy_drift_bounded_and_second_order(argon_liquid):
    # Liquid argon at 100 K, Morse-free shifted LJ (forces jump by < 1e-4 eV/Å at the cutoff).
    spread = {}
    for dt in (2.0, 4.0):
        md = sims.MD(argon_liquid, _argon_pot(), sims.VelocityVerlet(timestep=dt), temperature=100.0, seed=1,
                     dtype=F64, record_every=0)
        energies = [md.conserved_energy()]
        for _ in range(int(500 / dt)):
            md.run(5)
            energies.append(md.conserved_energy())
        energies = np.array(energies) / len(argon_liquid)
        spread[dt] = energies.std()
        # Stated bound: over 2.5 ps (dt = 2 and 4 fs) the total energy stays within 2e-5 eV/atom (kT = 8.6e-3 eV).
        assert abs(energies[-1] - energies[0]) < 2e-5
    # Verlet's shadow-Hamiltonian error scales as dt^2: doubling dt quadruples the fluctuation.
    assert 2.5 < spread[4.0] / spread[2.0] < 6.0


@pytest.mark.parametrize("make", [
    lambda: sims.Langevin(timestep=5.0, temperature=120.0, friction=0.02),
    lambda: sims.NoseHooverChain(timestep=5.0, temperature=120.0, tau=50.0),
], ids=["langevin", "nose-hoover-chain"])
def test_canonical_kinetic_energy(make):
    """Canonical KE: mean g kT/2 and variance g (kT)^2/2 for g quadratic degrees of freedom.

    32 atoms, so the canonical variance is far from the microcanonical one (which for a
    system this small is markedly smaller) and a wrong ensemble shows.
    """
    from ase.build import bulk

    atoms = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(2)
    integrator = make()
    md = sims.MD(atoms, _argon_pot(), integrator, temperature=40.0, seed=3, dtype=F64, record_every=0)
    md.run(300)  # equilibrate from the cold start
    ke = []
    for _ in range(1100):
        md.run(4)
        ke.append(float(md.state.kinetic_energy()))
    ke = np.array(ke)
    g = 3 * len(atoms) - (3 if isinstance(integrator, sims.NoseHooverChain) else 0)
    kT = units.kB * 120.0
    mean_err = _block_error(ke)
    assert abs(ke.mean() - g * kT / 2) < 4 * mean_err + 1e-12
    assert mean_err < 0.02 * g * kT / 2  # the test has resolving power
    var_err = _block_error((ke - ke.mean()) ** 2)
    assert abs(ke.var() - g * kT**2 / 2) < 4 * var_err
    assert var_err < 0.07 * g * kT**2 / 2  # NVE at this size gives a variance ratio of about 0.45


def test_nose_hoover_conserved_quantity(argon_liquid):
    md = sims.MD(argon_liquid, _argon_pot(), sims.NoseHooverChain(timestep=2.0, temperature=150.0, tau=50.0),
                 temperature=60.0, seed=0, dtype=F64, record_every=0)
    h0 = md.conserved_energy()
    md.run(300)
    assert md.temperature() > 90  # heated from 60 K towards 150 K ...
    assert abs(md.conserved_energy() - h0) / len(argon_liquid) < 2e-5  # ... while H_NHC is conserved


def test_langevin_is_reproducible_with_seed(argon_liquid):
    runs = [sims.MD(argon_liquid, _argon_pot(), sims.Langevin(5.0, 100.0, 0.01), seed=7, temperature=100.0,
                    dtype=F64, record_every=0).run(20).positions_array() for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_bad_input(argon_liquid):
    with pytest.raises(SimsInputError):
        sims.VelocityVerlet(timestep=0.0)
    with pytest.raises(SimsInputError):
        sims.Langevin(timestep=1.0, temperature=-5.0)
    atoms = argon_liquid.copy()
    atoms.positions[1] = atoms.positions[0] + 0.1
    with pytest.raises(SimsInputError, match="closer"):
        sims.MD(atoms, _argon_pot(), sims.VelocityVerlet(1.0))
    atoms = argon_liquid.copy()
    atoms.set_masses([0.0] * len(atoms))
    with pytest.raises(SimsInputError, match="masses"):
        sims.MD(atoms, _argon_pot(), sims.VelocityVerlet(1.0))


def _global_rng_states():
    return torch.get_rng_state().clone(), np.random.get_state()


@pytest.mark.parametrize("seed", [None, 5])
def test_md_leaves_global_random_state_alone(argon_liquid, seed):
    """Velocities and Langevin noise come from the run's own generators: seed=None used to reseed
    torch's global generator (torch.seed())."""
    torch_before, np_before = _global_rng_states()
    sims.MD(argon_liquid, _argon_pot(), sims.Langevin(5.0, 100.0, 0.01), seed=seed, temperature=100.0,
            dtype=F64, record_every=0).run(3)
    sims.maxwell_boltzmann(torch.ones(4, dtype=F64), 50.0, seed=seed)
    torch_after, np_after = _global_rng_states()
    assert torch.equal(torch_before, torch_after)
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1]) and np_before[2:] == np_after[2:]


@pytest.mark.parametrize("make", [lambda: sims.Langevin(5.0, 100.0, 0.01),
                                  lambda: sims.NoseHooverChain(5.0, 100.0, tau=50.0)],
                         ids=["langevin", "nose-hoover-chain"])
def test_runs_sharing_an_integrator_do_not_share_its_state(argon_liquid, make):
    """Two runs on one integrator object, interleaved, give the trajectory each gives alone: the
    noise generator and the chain variables belong to the run (they used to live on the integrator)."""
    alone = sims.MD(argon_liquid, _argon_pot(), make(), seed=7, temperature=100.0, dtype=F64,
                    record_every=0).run(10).positions_array()
    shared = make()
    a, b = (sims.MD(argon_liquid, _argon_pot(), shared, seed=7, temperature=100.0, dtype=F64, record_every=0)
            for _ in range(2))
    for _ in range(10):  # a step of b between each step of a
        a.run(1)
        b.run(1)
    np.testing.assert_array_equal(a.positions_array(), alone)
    np.testing.assert_array_equal(b.positions_array(), alone)
    other = sims.MD(argon_liquid, _argon_pot(), shared, seed=8, temperature=100.0, dtype=F64, record_every=0)
    assert not np.array_equal(other.run(10).positions_array(), alone)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batch_langevin_noise_is_each_systems_own_draw(dtype):
    """A batch's Langevin noise (one generator per system, filled in place) holds, system by system, the
    numbers ``torch.randn((n, 3), generator=g)`` draws from that system's generator, the draw of a lone run
    (:class:`sims.MD`), and leaves each generator where that draw does; sizes below and above torch's
    16-number blocks, one not a multiple of them and an empty system."""
    sizes = [64, 27, 1, 5, 0, 100]
    mine = [torch.Generator().manual_seed(10 + k) for k in range(len(sizes))]
    lone = [torch.Generator().manual_seed(10 + k) for k in range(len(sizes))]
    like = torch.zeros((sum(sizes), 3), dtype=dtype)
    for _ in range(3):  # successive steps
        noise = sims.Langevin.noise({"generators": mine, "sizes": sizes}, like)
        assert noise.dtype == dtype and noise.shape == like.shape
        expected = torch.cat([torch.randn((n, 3), generator=g, dtype=dtype) for g, n in zip(lone, sizes)])
        assert torch.equal(noise, expected)
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(mine, lone))


def test_seeded_draws_repeat_and_unseeded_differ():
    masses = torch.full((50,), 39.95, dtype=F64)
    draw = sims.maxwell_boltzmann
    assert torch.equal(draw(masses, 100.0, seed=3), draw(masses, 100.0, seed=3))
    assert not torch.equal(draw(masses, 100.0, seed=3), draw(masses, 100.0, seed=4))
    assert not torch.equal(draw(masses, 100.0), draw(masses, 100.0))
    with pytest.raises(SimsInputError, match="seed"):
        draw(masses, 100.0, seed=-1)


def test_nose_hoover_chains_refused_on_an_external_field():
    """Nose-Hoover chains remove the centre-of-mass velocity and thermostat 3N - 3 degrees of freedom,
    right only while momentum is conserved. On a DoubleWell (an external field) they sampled a wrong
    temperature without a sign: one H atom started at a minimum stayed at rest (T = 0 K for a 300 K
    target), four gave about 214 K; Langevin gives 300 K. Such runs are now refused, with the advice."""
    from ase import Atoms

    from sims.barostats import CellRescaling
    from sims.batch import BatchMD
    from sims.potentials import DoubleWell, MuellerBrown

    atoms = Atoms("H", positions=[[1.0, 0.0, 0.0]])
    well = DoubleWell(a=0.05, b=1.0, k_y=0.5, k_z=0.5)
    for pot in (well, MuellerBrown(dim=2), well + LennardJones(sigma=1.0, epsilon=0.01, cutoff=2.5,
                                                               dtype=torch.float64)):
        with pytest.raises(SimsInputError, match="Langevin"):
            sims.MD(atoms, pot, sims.NoseHooverChain(1.0, 300.0), min_distance=None, temperature=300, seed=0)
        with pytest.raises(SimsInputError, match="Langevin"):
            BatchMD([atoms, atoms], pot, sims.NoseHooverChain(1.0, 300.0), min_distance=None, seed=0)
    with pytest.raises(SimsInputError, match="Langevin"):
        BatchMD([atoms], well, CellRescaling(sims.NoseHooverChain(1.0, 300.0), pressure=1.0, tau_p=100.0))
    # Langevin samples the target temperature there: <T> over 3 ps of eight independent particles.
    md = sims.MD(Atoms("H8", positions=[[1.0, 0.0, 0.0]] * 8), well, sims.Langevin(1.0, 300.0, friction=0.05),
                 min_distance=None, temperature=300, seed=0, dtype=torch.float64)
    temps = []
    for _ in range(60):
        md.run(50)
        temps.append(float(md.temperature()))
    assert np.mean(temps[6:]) == pytest.approx(300.0, rel=0.15)
    # Translation-invariant potentials keep the chains.
    assert sims.MD(Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]]), LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.0),
                   sims.NoseHooverChain(1.0, 100.0), temperature=100, seed=0) is not None


def test_ase_constraints_are_refused_by_dynamics_not_dropped(tmp_path):
    """ASE constraints (FixAtoms, a POSCAR's selective dynamics, an extxyz move_mask) are not applied by sims
    dynamics. They were dropped without a word: the fixed bottom layer of a Cu(111) slab moved 0.14 Å in 20
    Langevin steps. sims.MD, BatchMD, ``matrep simulate``, the fits' and the bias-path optimiser's dynamics now
    refuse them; single points still take them
    (unconstrained forces, as ASE's ``get_forces(apply_constraint=False)``)."""
    from ase import Atoms
    from ase.build import bulk, fcc111
    from ase.calculators.emt import EMT
    from ase.constraints import FixAtoms
    from ase.io import write

    from sims.batch import BatchMD
    from sims.generate import generate
    from sims.potentials import CalculatorPotential

    slab = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    slab.info.clear()  # (ase.build's adsorbate_info, which extxyz cannot write)
    slab.set_constraint(FixAtoms(indices=[a.index for a in slab if a.tag == 3]))
    pot = LennardJones(sigma=2.3, epsilon=0.4, cutoff=5.0, dtype=F64)
    with pytest.raises(SimsInputError, match="FixAtoms"):
        sims.MD(slab, pot, sims.Langevin(2.0, 300.0), temperature=300.0, seed=0)
    with pytest.raises(SimsInputError, match="system 1: .*FixAtoms"):
        BatchMD([fcc111("Cu", (2, 2, 3), vacuum=5.0), slab], pot, sims.Langevin(2.0, 300.0), seed=0)
    write(tmp_path / "slab.extxyz", slab)
    cfg = {"seed": 0, "system": {"builder": "file", "path": "slab.extxyz"}, "_base": str(tmp_path),
           "potential": {"kind": "lj", "sigma": 2.3, "epsilon": 0.4, "cutoff": 5.0},
           "stages": [{"ensemble": "langevin", "steps": 2, "timestep": 2.0, "temperature": 300.0}],
           "output": {"path": "out.extxyz"}}
    with pytest.raises(SimsInputError, match="matrep simulate does not apply"):
        generate(cfg)
    from sims.enhanced import BiasPathOptimizer, GaussianGridBias
    from sims.fit import RDFTarget
    from sims.potentials import MuellerBrown

    bulk_fixed = bulk("Cu", "fcc", a=3.6, cubic=True)
    bulk_fixed.set_constraint(FixAtoms([0]))
    with pytest.raises(SimsInputError, match="diffsim, ibi"):
        RDFTarget(np.linspace(0.1, 3.0, 30), np.ones(30), bulk_fixed, 300.0)
    start = Atoms("Ar", positions=[[-0.558, 1.442, 0.0]], masses=[2.56], constraint=FixAtoms([0]))
    with pytest.raises(SimsInputError, match="BiasPathOptimizer does not apply"):
        BiasPathOptimizer(MuellerBrown(), GaussianGridBias(["position:0,x", "position:0,y"], lower=-1, upper=1,
                                                           points=4, atoms_per_replica=1),
                          start, Atoms("Ar", positions=[[0.6, 0.0, 0.0]], masses=[2.56]),
                          descriptors=["position:0,x", "position:0,y"], temperature=10, friction=0.05, timestep=1,
                          n_steps=40, n_trajectories=4)
    energy, forces = sims.energy_and_forces(CalculatorPotential(EMT()), slab, dtype=F64)
    slab.calc = EMT()
    np.testing.assert_allclose(forces, slab.get_forces(apply_constraint=False), atol=1e-10)
    slab.set_constraint()
    assert sims.MD(slab, pot, sims.Langevin(2.0, 300.0), temperature=300.0, seed=0).run(2).step_count == 2


def test_nose_hoover_chains_refused_with_a_bias_on_absolute_positions():
    """A bias on a CV that reads absolute coordinates (Position, a Custom CV not declared translation
    invariant) exerts a net force, so the total momentum is not conserved and the chains' 3N - 3
    degrees of freedom and zero-momentum start are wrong, as under an external field. Biases counted
    as momentum-conserving whatever their CV, so such runs went on. Reference for the net force: the
    umbrella's -k (x - x0) on atom 0 alone; a bias on a distance pushes the two atoms equally apart."""
    from ase import Atoms

    from sims.batch import BatchMD
    from sims.cv import Custom, Distance, Linear, Position
    from sims.enhanced import GaussianGridBias
    from sims.metadynamics import MetadynamicsBias
    from sims.potentials import conserves_momentum
    from sims.umbrella import HarmonicBias

    atoms = Atoms("Ar2", positions=[[0.5, 0, 0], [4.3, 0, 0]])
    lj = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.0, dtype=torch.float64)
    absolute = HarmonicBias(Position(0, "x"), center=0.0, spring=2.0)
    _, f = sims.energy_and_forces(absolute, atoms, dtype=torch.float64)
    np.testing.assert_allclose(np.asarray(f).sum(0), [-2.0 * 0.5, 0, 0], atol=1e-12)
    relative = HarmonicBias(Distance(0, 1), center=3.0, spring=2.0)
    _, f = sims.energy_and_forces(relative, atoms, dtype=torch.float64)
    np.testing.assert_allclose(np.asarray(f).sum(0), 0.0, atol=1e-12)
    refused = [absolute, lj + absolute, MetadynamicsBias(Position(0, 0), sigma=0.2, grid=(-2.0, 2.0, 81)),
               GaussianGridBias(["position:0,x"], lower=[-2.0], upper=[2.0], points=[41]),
               HarmonicBias(Custom(lambda x, cell: x[:, 0, 0]), center=0.0, spring=1.0),
               HarmonicBias(Linear([Distance(0, 1), Position(1, "y")], [1.0, 1.0]), center=0.0, spring=1.0)]
    for pot in refused:
        assert not conserves_momentum(pot), pot
        with pytest.raises(SimsInputError, match="Langevin"):
            sims.MD(atoms, pot, sims.NoseHooverChain(1.0, 100.0), temperature=100, seed=0)
    with pytest.raises(SimsInputError, match="Langevin"):
        BatchMD([atoms, atoms], lj + absolute, sims.NoseHooverChain(1.0, 100.0), seed=0)
    kept = [relative, lj + relative, HarmonicBias(Linear([Distance(0, 1)], [2.0]), center=6.0, spring=1.0),
            HarmonicBias(Custom(lambda x, cell: x[:, 1, 0] - x[:, 0, 0], translation_invariant=True),
                         center=3.0, spring=1.0)]
    for pot in kept:
        assert conserves_momentum(pot), pot
        assert sims.MD(atoms, pot, sims.NoseHooverChain(1.0, 100.0), temperature=100, seed=0) is not None
