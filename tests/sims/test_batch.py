"""Batches of systems (sims.batch) against the same systems run one at a time, and against ASE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

import sims
from sims.batch import BatchMD, BatchState, batch_energy_and_forces
from sims.errors import SimsInputError
from sims.neighbors import build_batch_pairs
from sims.potentials import BKS, CalculatorPotential, LennardJones, Morse

F64 = torch.float64


def _argon_pot():
    return LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5, dtype=F64)


def _argon_systems():
    """Four argon systems: different sizes, a triclinic cell, a slab periodic in two directions and a
    free cluster (no cell)."""
    a = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(2)                # 32 atoms, cubic
    b = bulk("Ar", "fcc", a=5.6).repeat((3, 3, 3))                      # 27 atoms, triclinic primitive cell
    c = bulk("Ar", "fcc", a=5.7, cubic=True).repeat((2, 2, 1))          # 16 atoms
    c.pbc = (True, True, False)
    d = Atoms("Ar13", positions=bulk("Ar", "fcc", a=5.5, cubic=True).repeat(2).positions[:13])
    out = []
    for k, atoms in enumerate((a, b, c, d)):
        atoms = atoms.copy()
        atoms.rattle(0.05, seed=k)
        out.append(atoms)
    return out


def _pair_set(i, j, S):
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), map(tuple, np.rint(np.asarray(S)).astype(int).tolist())))


@pytest.mark.parametrize("seed", range(4))
def test_batch_pairs_are_each_systems_ase_pairs(seed, random_atoms):
    rng = np.random.default_rng(seed)
    systems = [random_atoms(rng, int(rng.integers(1, 30)), triclinic=bool(k % 2), pbc=rng.random(3) < 0.7)
               for k in range(5)]
    cutoff = float(rng.uniform(1.0, 7.0))
    state = BatchState.from_atoms(systems, dtype=F64)
    full = build_batch_pairs(state.positions, state.cell, state.pbc, state.system, cutoff)
    half = build_batch_pairs(state.positions, state.cell, state.pbc, state.system, cutoff, half=True)
    assert torch.equal(state.system[full.i], state.system[full.j])  # no pair joins two systems
    expected, offset = set(), 0
    for atoms in systems:
        i, j, S = ase_neighbor_list("ijS", atoms, cutoff)
        expected |= _pair_set(i + offset, j + offset, S)
        offset += len(atoms)
    assert _pair_set(full.i, full.j, full.shifts) == expected and len(full.i) == len(expected)
    both = _pair_set(half.i, half.j, half.shifts) | _pair_set(half.j, half.i, -half.shifts)
    assert both == expected and 2 * len(half.i) == len(expected)


def test_overlapping_systems_do_not_interact():
    # Two copies of one box at the same coordinates: each must have the energy of the box alone.
    atoms = _argon_systems()[0]
    e_one, f_one = sims.energy_and_forces(_argon_pot(), atoms, dtype=F64)
    e, f = batch_energy_and_forces(_argon_pot(), [atoms, atoms], dtype=F64)
    np.testing.assert_allclose(e, [e_one, e_one], rtol=1e-12)
    for fb in f:
        np.testing.assert_allclose(fb, f_one, atol=1e-12)
    # An overlapping free cluster with different atoms inside the box: still no cross terms.
    cluster = Atoms("Ar3", positions=atoms.positions[:3] + 0.1)
    e, _ = batch_energy_and_forces(_argon_pot(), [atoms, cluster], dtype=F64)
    assert e[1] == pytest.approx(sims.energy_and_forces(_argon_pot(), cluster, dtype=F64)[0], rel=1e-12)


@pytest.mark.parametrize("kind", ["lj", "morse", "bks"])
def test_batch_energies_forces_stress_equal_single(kind):
    if kind == "bks":
        from sims.silica import beta_cristobalite

        systems = [beta_cristobalite(1), beta_cristobalite(1).repeat((2, 1, 1))]
        for k, s in enumerate(systems):
            s.rattle(0.05, seed=k)
        systems[1].set_cell(systems[1].cell[:] * 1.02, scale_atoms=True)
        pot = BKS(dtype=F64)
    else:
        systems = _argon_systems()[:2]
        pot = _argon_pot() if kind == "lj" else Morse(epsilon=0.01, rho0=6.0, r0=3.8, dtype=F64)
    e, f, s = batch_energy_and_forces(pot, systems, stress=True, dtype=F64)
    for b, atoms in enumerate(systems):
        e1, f1, s1 = sims.energy_and_forces(pot, atoms, stress=True, dtype=F64)
        assert e[b] == pytest.approx(e1, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(f[b], f1, atol=1e-10)
        np.testing.assert_allclose(s[b], s1, atol=1e-12)
    if kind == "lj":  # and ASE's calculator, an independent implementation
        from ase.calculators.lj import LennardJones as AseLJ

        for b, atoms in enumerate(systems):
            ref = atoms.copy()
            ref.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5)
            assert e[b] == pytest.approx(ref.get_potential_energy(), abs=1e-10)
            np.testing.assert_allclose(f[b], ref.get_forces(), atol=1e-10)


@pytest.mark.parametrize("kind", ["lj", "bks"])
def test_batch_closed_form_forces_equal_autograd(kind):
    """A batch's pair forces and stresses in closed form equal minus the autograd gradient of its (B,)
    energies, and their derivatives under each system's own strain, per system; BKS has terms of two
    cutoffs (the short ones on a subset of pairs)."""
    if kind == "bks":
        from sims.silica import beta_cristobalite

        systems = [beta_cristobalite(1), beta_cristobalite(1).repeat((2, 1, 1))]
        for k, s in enumerate(systems):
            s.rattle(0.05, seed=k)
        pot = BKS(dtype=F64)
    else:
        systems, pot = _argon_systems()[:3], _argon_pot()
    state = BatchState.from_atoms(systems, dtype=F64)
    pairs = build_batch_pairs(state.positions, state.cell, state.pbc, state.system, pot.cutoff, half=True)
    e, f, _ = sims.compute(pot, state.positions, state.cell, state.numbers, pairs, system=state.system)
    x = state.positions.clone().requires_grad_(True)
    e_ref = pot(x, state.cell, state.numbers, pairs, state.system)
    (g,) = torch.autograd.grad(e_ref.sum(), x)
    assert e.shape == (len(systems),)
    torch.testing.assert_close(e, e_ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f, -g, rtol=1e-10, atol=1e-10)
    _, f_s, stress = sims.compute(pot, state.positions, state.cell, state.numbers, pairs, stress=True,
                                  system=state.system)
    torch.testing.assert_close(f_s, f, rtol=0, atol=0)
    strain = torch.zeros((len(systems), 3, 3), dtype=F64, requires_grad=True)
    deform = torch.eye(3, dtype=F64) + strain
    e_strained = pot(torch.einsum("ni,nij->nj", state.positions, deform[state.system]), state.cell @ deform,
                     state.numbers, pairs, state.system)
    (w,) = torch.autograd.grad(e_strained.sum(), strain)
    torch.testing.assert_close(stress, w / state.volume()[:, None, None], rtol=1e-10, atol=1e-12)


def test_neural_potential_batch_equals_single():
    from learners.potentials import PaiNN

    model = PaiNN(cutoff=5.0, n_features=8, n_interactions=2).to(dtype=F64)
    systems = [s[:10] if s.pbc.all() else s for s in _argon_systems()[:2]] + [_argon_systems()[3]]
    e, f = batch_energy_and_forces(model, systems, dtype=F64)
    for b, atoms in enumerate(systems):
        e1, f1 = sims.energy_and_forces(model, atoms, dtype=F64)
        assert e[b] == pytest.approx(e1, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(f[b], f1, atol=1e-12)


def test_neural_potential_batch_md_equals_lone_runs_and_refuses_unseen_elements():
    from learners.potentials import SchNet

    model = SchNet(cutoff=5.0, n_features=8, n_interactions=1, dtype=F64)
    systems = [s[:12] for s in _argon_systems()[:2]]
    md = BatchMD(systems, model, sims.Langevin(5.0, 40.0, 0.02), temperature=40.0, target_temperature=40.0,
                 seed=[7, 8], dtype=F64)
    md.run(10)
    for b, atoms in enumerate(systems):
        one = sims.MD(atoms, model, sims.Langevin(5.0, 40.0, 0.02), temperature=40.0, seed=7 + b, dtype=F64).run(10)
        np.testing.assert_allclose(md.state.positions[md.state.system == b].numpy(), one.state.positions.numpy(),
                                   atol=1e-9)
    with torch.no_grad():
        model.known_elements[18] = True  # as if fitted on argon only
    krypton = systems[1].copy()
    krypton.symbols[0] = "Kr"
    with pytest.raises(SimsInputError, match=r"system 1 contains Kr, which the potential SchNet has no parameters"):
        BatchMD([systems[0], krypton], model, sims.VelocityVerlet(5.0), dtype=F64)


def _separate(systems, integrator, temperatures, seeds, steps):
    out = []
    for atoms, t, s in zip(systems, temperatures, seeds):
        md = sims.MD(atoms, _argon_pot(), integrator(t), temperature=t, seed=s, dtype=F64)
        out.append(md.run(steps))
    return out


@pytest.mark.parametrize("ensemble", ["nve", "langevin"])
def test_batch_trajectories_equal_separate_runs(ensemble):
    systems = _argon_systems()
    temps, seeds = [40.0, 60.0, 30.0, 20.0], [3, 1, 4, 1]
    if ensemble == "nve":
        def integrator(t):
            return sims.VelocityVerlet(timestep=5.0)
    else:
        def integrator(t):
            return sims.Langevin(timestep=5.0, temperature=t, friction=0.02)
    md = BatchMD(systems, _argon_pot(), integrator(temps[0]), temperature=temps, target_temperature=temps,
                 seed=seeds, dtype=F64)
    md.run(40)
    ones = _separate(systems, integrator, temps, seeds, 40)
    sizes = [len(a) for a in systems]
    for b, (pos, vel) in enumerate(zip(torch.split(md.state.positions, sizes), torch.split(md.state.velocities, sizes))):
        np.testing.assert_allclose(pos.numpy(), ones[b].state.positions.numpy(), atol=1e-9)
        np.testing.assert_allclose(vel.numpy(), ones[b].state.velocities.numpy(), atol=1e-11)
        assert float(md.energy[b]) == pytest.approx(float(ones[b].energy), abs=1e-10)
    if ensemble == "nve":  # and each system's own total energy is conserved
        np.testing.assert_allclose((md.energy + md.state.kinetic_energy()).numpy(),
                                   [float(o.energy + o.state.kinetic_energy()) for o in ones], atol=1e-9)


def test_langevin_equipartition_per_replica():
    # Four replicas of a 32-atom argon liquid at four temperatures: each replica's mean kinetic
    # temperature 2<KE>/(3 N kB) is its own target (all 3N velocity components are thermostatted).
    atoms = bulk("Ar", "fcc", a=5.8, cubic=True).repeat(2)
    temps = [30.0, 60.0, 90.0, 150.0]
    md = BatchMD([atoms] * 4, _argon_pot(), sims.Langevin(timestep=10.0, temperature=0.0, friction=0.05),
                 temperature=temps, target_temperature=temps, seed=11, dtype=F64, check_every=100)
    md.run(200)
    samples = []
    for _ in range(300):
        md.run(5)
        samples.append(md.temperature().numpy())
    samples = np.array(samples)
    blocks = samples.reshape(10, -1, 4).mean(1)
    err = blocks.std(0, ddof=1) / np.sqrt(10)
    mean = samples.mean(0)
    # Stated tolerance: 4 standard errors (block averages), and the errors are a few per cent.
    assert np.all(np.abs(mean - temps) < 4 * err + 1e-9), (mean, err)
    assert np.all(err / temps < 0.04)


def test_replica_resumes_as_a_lone_run_and_checkpoint_roundtrip(tmp_path):
    systems = _argon_systems()[:3]
    temps, seeds = [50.0, 70.0, 40.0], [5, 6, 7]
    integ = sims.Langevin(timestep=5.0, temperature=50.0, friction=0.02)
    md = BatchMD(systems, _argon_pot(), integ, temperature=temps, target_temperature=temps, seed=seeds, dtype=F64)
    md.run(20)
    md.save(tmp_path / "batch.ckpt")
    d = md.replica_state_dict(1)
    md.refresh()
    md.run(20)
    # System 1 alone from the batch's checkpoint: the lone run repeats what the batch did next.
    from sims.generate import _state_from_dict

    lone = sims.MD(_state_from_dict(d["state"], None, F64), _argon_pot(),
                   sims.Langevin(timestep=5.0, temperature=70.0, friction=0.02), seed=0)
    lone.load_integrator_state_dict(d["integrator"])
    lone.refresh()
    lone.run(20)
    sel = md.state.system == 1
    np.testing.assert_allclose(md.state.positions[sel].numpy(), lone.state.positions.numpy(), atol=1e-9)
    # The whole batch from its file continues bit for bit.
    again = BatchMD(systems, _argon_pot(), integ, target_temperature=0.0, dtype=F64)
    again.load_state_dict(torch.load(tmp_path / "batch.ckpt", weights_only=True))
    again.run(20)
    assert again.step_count == md.step_count == 40
    assert torch.equal(again.state.positions, md.state.positions)
    assert torch.equal(again.state.velocities, md.state.velocities)


def test_frames_stress_and_records():
    systems = _argon_systems()[:2]
    md = BatchMD(systems, _argon_pot(), sims.VelocityVerlet(timestep=5.0), temperature=50.0, seed=0,
                 record_every=5, dtype=F64)
    md.run(10)
    assert len(md.trajectory) == 2 and [a.info["step"] for a in md.trajectory[-1]] == [10, 10]
    for b, frame in enumerate(md.trajectory[-1]):
        one = frame.copy()
        one.calc = None
        e1, f1, s1 = sims.energy_and_forces(_argon_pot(), one, stress=True, dtype=F64)
        assert frame.get_potential_energy() == pytest.approx(e1, abs=1e-10)
        # Total stress = virial + kinetic, as ASE's include_ideal_gas on the same momenta.
        ref = one.copy()
        from ase.calculators.lj import LennardJones as AseLJ

        ref.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=8.5)
        np.testing.assert_allclose(md.stress()[b].numpy(), ref.get_stress(voigt=False, include_ideal_gas=True),
                                   atol=1e-10)


def test_md_records_nothing_by_default_and_names_the_bad_step():
    atoms = _argon_systems()[0]
    md = sims.MD(atoms, _argon_pot(), sims.VelocityVerlet(timestep=5.0), temperature=30.0, seed=0, dtype=F64)
    md.run(3)
    assert md.trajectory == []

    class Poisoned(torch.nn.Module):
        cutoff = 8.5

        def __init__(self):
            super().__init__()
            self.inner, self.calls = _argon_pot(), 0

        def forward(self, positions, cell, numbers, pairs, batch=None):
            self.calls += 1
            e = self.inner(positions, cell, numbers, pairs, batch)
            return e * float("nan") if self.calls == 6 else e

    md = BatchMD([atoms, atoms], Poisoned(), sims.VelocityVerlet(timestep=5.0), temperature=30.0, seed=0,
                 dtype=F64, check_every=50)
    with pytest.raises(SimsInputError, match=r"system\(s\) \[0, 1\] became non-finite at step\(s\) \[5, 5\]"):
        md.run(20)
    md = sims.MD(atoms, Poisoned(), sims.VelocityVerlet(timestep=5.0), temperature=30.0, seed=0, dtype=F64,
                 check_every=50)
    with pytest.raises(SimsInputError, match="non-finite at step 5 "):
        md.run(20)


def test_bad_input():
    argon = _argon_systems()[:2]
    integ = sims.VelocityVerlet(timestep=5.0)
    from sims.silica import beta_cristobalite

    with pytest.raises(SimsInputError, match=r"system 1 contains Ar, which the potential SumPotential has no"):
        BatchMD([beta_cristobalite(1), argon[0]], BKS(dtype=F64), integ, dtype=F64)
    from ase.calculators.lj import LennardJones as AseLJ

    with pytest.raises(SimsInputError, match="one structure per call"):
        BatchMD(argon, CalculatorPotential(AseLJ()), integ)
    with pytest.raises(SimsInputError, match="temperature has 3 values for 2 systems"):
        BatchMD(argon, _argon_pot(), integ, temperature=[10.0, 20.0, 30.0])
    with pytest.raises(SimsInputError, match="seed has 1 values for 2 systems"):
        BatchMD(argon, _argon_pot(), integ, seed=[1])
    with pytest.raises(SimsInputError, match="target_temperature has 3 values"):
        BatchMD(argon, _argon_pot(), sims.Langevin(5.0, 30.0), target_temperature=[1.0, 2.0, 3.0])
    from sims.barostats import MTK

    with pytest.raises(SimsInputError, match="the MTK barostat is not batched"):
        BatchMD(argon, _argon_pot(), MTK(5.0, temperature=30.0, pressure=1.0))
    with pytest.raises(SimsInputError, match="target_temperature must be >= 0 K"):
        BatchMD(argon, _argon_pot(), sims.Langevin(5.0, 30.0), target_temperature=[10.0, -1.0])
    crowded = argon[0].copy()
    crowded.positions[1] = crowded.positions[0] + 0.1
    with pytest.raises(SimsInputError, match="system 1: atoms 0 and 1 are closer"):
        BatchMD([argon[0], crowded], _argon_pot(), integ)
    with pytest.raises(SimsInputError, match="non-empty sequence"):
        BatchMD([], _argon_pot(), integ)


def test_patched_batch_list_keeps_every_pair():
    # Systems rebuild their part of the list one at a time; the forces stay those of a fresh list.
    systems = _argon_systems() + _argon_systems()[:2]
    md = BatchMD(systems, _argon_pot(), sims.Langevin(timestep=10.0, temperature=120.0, friction=0.05),
                 temperature=[30, 200, 30, 200, 30, 30], target_temperature=[30, 200, 30, 200, 30, 30], seed=4,
                 skin=0.4, dtype=F64)
    md.run(60)
    assert md.neighbors.n_partial_builds > 0
    e, f = batch_energy_and_forces(_argon_pot(), md.state.to_atoms(), dtype=F64)
    np.testing.assert_allclose(md.energy.numpy(), e, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(md.forces.numpy(), np.concatenate(f), atol=1e-11)
    pairs = md.neighbors.pairs
    assert torch.equal(md.state.system[pairs.i], md.state.system[pairs.j])
    same = md.state.system[pairs.i[1:]] == md.state.system[pairs.i[:-1]]
    assert bool((pairs.i[1:] >= pairs.i[:-1])[same].all())  # each system's pairs one block, sorted by i
    assert torch.equal(pairs.images[pairs.image_index], pairs.shifts)
    assert torch.equal(pairs.image_system[pairs.image_index], md.state.system[pairs.i])


def test_nose_hoover_chains_per_system_equal_lone_runs():
    systems = _argon_systems()[:3]
    temps = [40.0, 80.0, 60.0]
    md = BatchMD(systems, _argon_pot(), sims.NoseHooverChain(5.0, 0.0, tau=50.0), temperature=temps,
                 target_temperature=temps, seed=[1, 2, 3], dtype=F64)
    conserved0 = md.conserved_energy().clone()
    md.run(60)
    sizes = [len(a) for a in systems]
    for b, atoms in enumerate(systems):
        one = sims.MD(atoms, _argon_pot(), sims.NoseHooverChain(5.0, temps[b], tau=50.0), temperature=temps[b],
                      seed=b + 1, dtype=F64)
        c0 = one.conserved_energy()
        one.run(60)
        np.testing.assert_allclose(torch.split(md.state.positions, sizes)[b].numpy(), one.state.positions.numpy(),
                                   atol=1e-9)
        assert float(md.conserved_energy()[b]) == pytest.approx(one.conserved_energy(), abs=1e-9)
        assert float(conserved0[b]) == pytest.approx(c0, abs=1e-12)
    # Each system's chain energy + kinetic + potential energy is conserved (bounded drift).
    assert torch.allclose(md.conserved_energy(), conserved0, atol=2e-3)


def test_a_resume_under_other_integrator_settings_is_refused_by_name():
    """BatchMD.load_state_dict and MD.load_integrator_state_dict checked the systems only: a checkpoint
    of a Langevin run at 0.02 / fs friction resumed with 0.05 / fs (or another timestep, temperature,
    thermostat) went on silently under the new dynamics. Each difference is now named; the same
    settings resume, and a checkpoint from before the settings were recorded still loads."""
    from sims.barostats import CellRescaling

    systems = _argon_systems()[:2]
    md = BatchMD(systems, _argon_pot(), sims.Langevin(5.0, 50.0, friction=0.02), temperature=50.0, seed=[1, 2],
                 dtype=F64)
    md.run(5)
    saved = md.state_dict()
    lone = sims.MD(systems[0], _argon_pot(), sims.Langevin(5.0, 50.0, friction=0.02), temperature=50.0, seed=3,
                   dtype=F64)
    lone.run(5)
    lone_saved = lone.integrator_state_dict()
    others = {"friction": sims.Langevin(5.0, 50.0, friction=0.05), "timestep": sims.Langevin(2.0, 50.0, friction=0.02),
              "temperature": sims.Langevin(5.0, 80.0, friction=0.02), "kind": sims.NoseHooverChain(5.0, 50.0)}
    for name, integ in others.items():
        again = BatchMD(systems, _argon_pot(), integ, dtype=F64)
        with pytest.raises(SimsInputError, match=f"{name} saved .*, now "):
            again.load_state_dict(saved)
        one = sims.MD(systems[0], _argon_pot(), integ, dtype=F64)
        with pytest.raises(SimsInputError, match=f"{name} saved .*, now "):
            one.load_integrator_state_dict(lone_saved)
    # Inside a barostat: the thermostat's kind and parameters by dotted name.
    npt = BatchMD(systems, _argon_pot(), CellRescaling(sims.Langevin(5.0, 50.0, friction=0.02), pressure=1.0,
                                                       tau_p=100.0), temperature=50.0, seed=[1, 2], dtype=F64)
    for integ, name in ((CellRescaling(sims.Langevin(5.0, 50.0, friction=0.1), pressure=1.0, tau_p=100.0),
                         "thermostat.friction"),
                        (CellRescaling(sims.NoseHooverChain(5.0, 50.0), pressure=1.0, tau_p=100.0), "thermostat saved"),
                        (CellRescaling(sims.Langevin(5.0, 50.0, friction=0.02), pressure=9.0, tau_p=100.0),
                         "pressure")):
        with pytest.raises(SimsInputError, match=name):
            BatchMD(systems, _argon_pot(), integ, dtype=F64).load_state_dict(npt.state_dict())
    # The same settings (another seed) resume; older dicts without the record load unchecked.
    same = BatchMD(systems, _argon_pot(), sims.Langevin(5.0, 50.0, friction=0.02, seed=9), dtype=F64)
    same.load_state_dict(saved)
    same.run(5)
    md.run(5)
    assert torch.equal(same.state.positions, md.state.positions)
    BatchMD(systems, _argon_pot(), others["friction"], dtype=F64).load_state_dict(
        {k: v for k, v in saved.items() if k != "integrator_settings"})
    sims.MD(systems[0], _argon_pot(), others["friction"], dtype=F64).load_integrator_state_dict(
        {k: v for k, v in lone_saved.items() if k != "settings"})
