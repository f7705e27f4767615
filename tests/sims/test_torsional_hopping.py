"""FSSH on many coordinates: the torsional isomerisation model, per-coordinate masses, samplers, ensembles.

Independent references: finite differences of the closed-form 2 x 2 eigenpairs; the exact
split-operator result of Tully's model 1 (a two-particle embedding whose relative coordinate is
Tully's, reduced mass 2000); the virial theorem of the harmonic oscillator for the samplers;
energy conservation of each trajectory through its hops.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sims.errors import ConfigError, SimsInputError
from sims.hopping_ensemble import hop, normal_mode_sample, normal_modes, run_ensemble
from sims.surface_hopping import (AU_TIME_FS, CHANNELS, FSSH, KB_HARTREE, DegenerateStatesWarning, DiabaticModel,
                                  TorsionalIsomerisation, chain_internals, exact_scattering, tully_model)

F64 = torch.float64


def _rotation(seed):
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=F64))
    return q * torch.sign(torch.linalg.det(q))


def test_torsional_model_gradients_couplings_and_invariances():
    model = TorsionalIsomerisation()
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([model.geometry(phi) for phi in (0.2, 1.0, 2.0, 3.0)]) + 0.05 * torch.randn(4, 12, generator=gen, dtype=F64)
    ad = model.adiabatic(x)
    eps = 1e-6
    shifts = eps * torch.eye(12, dtype=F64)
    for b in range(4):
        ep = model.adiabatic(x[b] + shifts).energies
        em = model.adiabatic(x[b] - shifts).energies
        torch.testing.assert_close(ad.gradients[b], (ep - em) / (2 * eps), atol=1e-8, rtol=1e-6)
        # d_01 = <0|d/dx|1>: finite differences of the eigenvector, sign-aligned with the centre.
        vp = model.adiabatic(x[b] + shifts, reference=ad.vectors[b].expand(12, 2, 2)).vectors
        vm = model.adiabatic(x[b] - shifts, reference=ad.vectors[b].expand(12, 2, 2)).vectors
        d01 = (ad.vectors[b, :, 0].unsqueeze(0) * (vp[:, :, 1] - vm[:, :, 1]) / (2 * eps)).sum(-1)
        torch.testing.assert_close(ad.couplings[b, :, 0, 1], d01, atol=1e-6, rtol=1e-5)
    # Rotation, translation, reflection and reversal of the chain leave the energies alone.
    r = x.reshape(4, 4, 3)
    moved = (r @ _rotation(1).T + torch.tensor([1.0, -2.0, 0.5], dtype=F64)).reshape(4, 12)
    mirrored = (r * torch.tensor([1.0, 1.0, -1.0], dtype=F64)).reshape(4, 12)
    reversed_ = r.flip(1).reshape(4, 12)
    for y in (moved, mirrored, reversed_):
        torch.testing.assert_close(model.adiabatic(y).energies, ad.energies, atol=1e-12, rtol=0)
    # Gradients rotate with the molecule.
    g = ad.gradients.reshape(4, 4, 3, 2)
    g_rot = model.adiabatic(moved).gradients.reshape(4, 4, 3, 2)
    torch.testing.assert_close(g_rot, torch.einsum("ij,bajk->baik", _rotation(1), g), atol=1e-10, rtol=0)


def test_chain_dihedral_has_the_iupac_sign_of_ase_and_sims_cv():
    """The chain's torsion (recorded as each trajectory's descriptor) is signed as ASE's ``get_dihedral``
    (mod 360 deg) and :class:`sims.cv.Dihedral`: it came out with the opposite sign until December 2026."""
    from ase import Atoms

    model = TorsionalIsomerisation()
    gen = torch.Generator().manual_seed(3)
    x = torch.cat([model.geometry(phi) for phi in (0.4, 1.3, 2.6, -0.8, -2.2)])
    x = x + 0.1 * torch.randn(x.shape, generator=gen, dtype=F64)
    phi = chain_internals(x)[2]
    ase = [math.radians(Atoms("C4", positions=r.reshape(4, 3).numpy()).get_dihedral(0, 1, 2, 3)) for r in x]
    ase = torch.tensor([(a + math.pi) % (2 * math.pi) - math.pi for a in ase], dtype=F64)
    torch.testing.assert_close(phi, ase, atol=1e-12, rtol=0)
    assert float(phi[0]) > 0 and float(phi[3]) < 0  # geometry(phi) builds the torsion it is asked for
    for target in (0.7, -1.9):
        built = Atoms("C4", positions=model.geometry(target).reshape(4, 3).numpy())
        assert built.get_dihedral(0, 1, 2, 3) == pytest.approx(math.degrees(target) % 360, abs=1e-9)


def test_torsional_model_basins_and_conical_intersection():
    model = TorsionalIsomerisation()
    cis, trans = model.geometry(0.0), model.geometry(math.pi)
    ev = 27.211386
    torch.testing.assert_close(model.adiabatic(cis).energies * ev, torch.tensor([[0.0, 2.58]], dtype=F64))
    torch.testing.assert_close(model.adiabatic(trans).energies * ev, torch.tensor([[1.49, 3.6]], dtype=F64))
    assert bool(model.is_product(trans)) and not bool(model.is_product(cis))
    # The seam: q = 0 and cos(phi) = 1 - 2 E1 / (W0 + W1); the gap opens linearly in both directions.
    phi_ci = math.acos(1 - 2 * model.E1 / (model.W0 + model.W1))
    assert math.degrees(phi_ci) == pytest.approx(95.75, abs=0.01)
    gap = lambda y: float(torch.diff(model.adiabatic(y).energies, dim=-1))  # noqa: E731
    with pytest.warns(DegenerateStatesWarning, match="gap floor"):  # exactly on the seam
        assert gap(model.geometry(phi_ci)) < 1e-12
    assert gap(model.geometry(phi_ci + 0.01)) > 1e-4
    bent = model.geometry(phi_ci)
    bent[0, 1] += 0.02  # atom 0 moves: the bend angle changes, q != 0
    assert gap(bent) > 1e-4
    lengths, angles, phi = chain_internals(model.geometry(1.234))
    torch.testing.assert_close(phi, torch.tensor([1.234], dtype=F64))
    torch.testing.assert_close(angles, torch.full((1, 2), 2 * math.pi / 3, dtype=F64))


class TwoParticleTully(DiabaticModel):
    """Tully's model 1 in the relative coordinate along x of two particles in 3-D (masses 3000 and 6000,
    reduced mass 2000): FSSH with per-coordinate masses must give the 1-D exact result."""

    ndim = 6
    mass = [3000.0] * 3 + [6000.0] * 3

    def diabatic(self, x):
        return tully_model(1).diabatic((x[:, 3:4] - x[:, 0:1]))


def test_per_coordinate_masses_reduce_to_tully_against_the_exact_solver():
    k, n = 15.0, 300
    exact = exact_scattering(tully_model(1), k)
    sigma = 20.0 / k
    x0 = -(10.0 + 3.0 * sigma)
    gen = torch.Generator().manual_seed(5)
    rel = x0 + 0.5 * sigma * torch.randn(n, generator=gen, dtype=F64)
    p_rel = k + torch.randn(n, generator=gen, dtype=F64) / sigma
    x = torch.zeros(n, 6, dtype=F64)
    x[:, 3] = rel
    x[:, 1] = 1.0  # an offset across the line changes nothing
    p = torch.zeros(n, 6, dtype=F64)
    p[:, 0], p[:, 3] = -p_rel, p_rel  # centre of mass at rest; relative momentum p_rel
    fssh = FSSH(TwoParticleTully(), x, p, timestep=4.0, seed=2)
    e0 = fssh.total_energy()
    fssh.run(1400)  # 5600 a.u.: 42 bohr at the mean speed, past |x| = 10 on either surface
    rel_x = fssh.x[:, 3] - fssh.x[:, 0]
    right, lower = rel_x > 0, fssh.active == 0
    got = {"transmission_lower": right & lower, "transmission_upper": right & ~lower,
           "reflection_lower": ~right & lower, "reflection_upper": ~right & ~lower}
    assert int(fssh.n_hops.sum()) > 50
    for c in CHANNELS:
        value = float(got[c].double().mean())
        se = math.sqrt(max(exact[c] * (1 - exact[c]), 0.02) / n)
        assert abs(value - exact[c]) < 3 * se, (c, value, exact[c])
    assert float((rel_x.abs() > 10).double().mean()) == 1.0
    torch.testing.assert_close(fssh.total_energy(), e0, atol=1e-5, rtol=0)  # velocity Verlet at 4 a.u.
    # Total momentum of the pair is conserved through the hops' rescaling (d lies along the relative coordinate).
    torch.testing.assert_close(fssh.p[:, :3] + fssh.p[:, 3:], torch.zeros(n, 3, dtype=F64), atol=1e-9, rtol=0)


def test_fssh_on_the_torsional_model_conserves_energy_and_populations_follow_amplitudes():
    model = TorsionalIsomerisation()
    x, p = normal_mode_sample(model, model.geometry(), 64, seed=0)
    fssh = FSSH(model, x, p, initial_state=1, timestep=4.0, seed=1, record_hops=True)
    e0 = fssh.total_energy()
    drift = []
    for _ in range(1000):  # 97 fs: through the seam
        fssh.step()
        drift.append(float((fssh.total_energy() - e0).abs().max()))
    assert int(fssh.n_hops.sum()) > 20  # most trajectories have decayed through the seam
    accepted = [h for h in fssh.hops if h[4]]
    assert len(accepted) == int(fssh.n_hops.sum())
    # Each trajectory's kinetic + active energy stays put through hops (velocity Verlet error only).
    assert max(drift) < 2e-4, max(drift)  # hartree; 5 meV on 2.6 eV of excitation
    active, amplitudes = fssh.populations()
    assert float(active[0]) > 0.5
    # Before frustrated hops pile up, the fraction on each state follows the mean |c|^2 (FSSH's
    # internal consistency) within the ensemble's noise.
    assert abs(float(active[0] - amplitudes[0])) < 0.2


def test_samplers_match_the_harmonic_virial_theorem():
    model = TorsionalIsomerisation()
    x0 = model.geometry()
    w, modes = normal_modes(model, x0)
    assert w.numel() == 6  # 12 coordinates less 3 translations and 3 rotations
    n = 20000
    mass = torch.tensor(model.mass, dtype=F64)
    e_min = float(model.adiabatic(x0).energies[0, 0])
    x, p = normal_mode_sample(model, x0, n, sampler="wigner", seed=3)
    kinetic = float((p ** 2 / (2 * mass)).sum(-1).mean())
    potential = float(model.adiabatic(x).energies[:, 0].mean()) - e_min
    zpe = float(w.sum()) / 2
    assert kinetic == pytest.approx(zpe / 2, rel=0.02)
    assert potential == pytest.approx(zpe / 2, rel=0.05)  # anharmonic terms are small at these amplitudes
    x, p = normal_mode_sample(model, x0, n, sampler="thermal", temperature=300.0, seed=3)
    kinetic = float((p ** 2 / (2 * mass)).sum(-1).mean())
    assert kinetic == pytest.approx(6 * KB_HARTREE * 300.0 / 2, rel=0.02)
    # Zero total momentum, the molecule does not drift.
    assert float(p.reshape(n, 4, 3).sum(1).abs().max()) < 1e-6 * float(p.abs().max())
    with pytest.raises(SimsInputError, match="thermal sampler needs temperature"):
        normal_mode_sample(model, x0, 4, sampler="thermal")
    with pytest.raises(SimsInputError, match="not a minimum"):
        normal_modes(model, model.geometry(math.pi / 2))


def _small_run(tmp_path=None, **kw):
    opts = dict(duration=6.0, timestep=0.25, temperature=300.0, friction=0.01, chunk_size=4, seed=0, record_every=8)
    opts.update(kw)
    return run_ensemble(TorsionalIsomerisation(), 8, output=tmp_path, **opts)


def test_run_ensemble_writes_resumes_and_matches_dask(tmp_path):
    out = tmp_path / "run"
    first = _small_run(out)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["chunk_00000.parquet", "chunk_00001.parquet", "manifest.json"]
    table = first.trajectories
    assert list(table["trajectory"]) == list(range(8))
    assert first.times[-1] == pytest.approx(6.0) and first.active_populations.shape == (first.times.size, 2)
    assert np.allclose(first.active_populations[0], [0.0, 1.0])
    np.testing.assert_allclose(first.amplitude_populations.sum(-1), 1.0, atol=1e-5)
    # Resume: a deleted chunk is rerun and gives the same rows; the other is read back.
    (out / "chunk_00001.parquet").unlink()
    again = _small_run(out)
    np.testing.assert_array_equal(np.stack(again.trajectories["descriptor_history"]),
                                  np.stack(table["descriptor_history"]))
    with pytest.raises(SimsInputError, match="other settings"):
        _small_run(out, seed=1)
    from distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        on_dask = _small_run(None, client=client)
    np.testing.assert_array_equal(np.stack(on_dask.trajectories["descriptor_history"]),
                                  np.stack(table["descriptor_history"]))


def test_run_ensemble_refuses_bad_input():
    model = TorsionalIsomerisation()
    with pytest.raises(SimsInputError, match="n_states=3 but the model TorsionalIsomerisation has 2"):
        run_ensemble(model, 4, duration=1.0, n_states=3)
    with pytest.raises(SimsInputError, match=r"initial_state must be an adiabatic state index 0\.\.1"):
        run_ensemble(model, 4, duration=1.0, initial_state=2)
    with pytest.raises(SimsInputError, match="sampler must be one of"):
        run_ensemble(model, 4, duration=1.0, sampler="boltzmann")
    with pytest.raises(SimsInputError, match="too long for the electronic integration"):
        # 5 fs steps with 1 substep: the phase of 2.6 eV x 5 fs is ~20 rad per RK4 step.
        run_ensemble(model, 4, duration=50.0, timestep=5.0, electronic_substeps=1, chunk_size=4)


def test_matrep_hop_config(tmp_path):
    cfg = tmp_path / "hop.toml"
    cfg.write_text('output = "out"\nn_trajectories = 4\nduration = 3.0\nchunk_size = 4\ntemperature = 300.0\n'
                   '[model]\nkind = "torsional"\nlam = 0.05\n')
    from reprs.cli import main

    assert main(["hop", str(cfg), "--quiet"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_trajectories"] == 4 and 0 <= summary["quantum_yield"] <= 1
    assert summary["times_fs"][-1] == pytest.approx(3.0)
    cfg.write_text('output = "out"\nn_trajectoris = 4\n')
    with pytest.raises(ConfigError, match="did you mean 'n_trajectories'"):
        hop(cfg)
    cfg.write_text('output = "out2"\nn_states = 3\n')
    with pytest.raises(ConfigError, match="n_states=3 but the model"):
        hop(cfg)
    cfg.write_text('output = "out2"\n[model]\nkind = "torsional"\nlamda = 0.1\n')
    with pytest.raises(ConfigError, match="did you mean 'lam'"):
        hop(cfg)


def test_matrep_hop_config_chooses_the_hop_scheme(tmp_path):
    cfg = tmp_path / "hop.toml"
    body = 'n_trajectories = 4\nduration = 3.0\nchunk_size = 4\ntemperature = 300.0\n'
    cfg.write_text('output = "tully"\n' + body)
    tully = hop(cfg, progress=False)
    cfg.write_text('output = "sharc"\nhop = "sharc"\n' + body)
    sharc = hop(cfg, progress=False)
    assert json.loads((tmp_path / "sharc" / "summary.json").read_text())["n_trajectories"] == 4
    assert len(sharc.trajectories) == len(tully.trajectories) == 4
    # The scheme is part of the run's settings: a Tully folder is not resumed as a SHARC run; the
    # default leaves the hash as before the option (the value of a folder written without it).
    manifest = json.loads((tmp_path / "tully" / "manifest.json").read_text())
    # The value of main before the option with the same config, after the torsion's sign fix (December
    # 2026): the default start geometry's z of atom 3 is +0.0, no longer -0.0, which changed the hash from
    # 6a935804ad343c1e, so that a folder of the old sign is refused, not resumed with mixed signs.
    assert manifest["hash"] == "c5b38ba2cf6b8a7e"
    cfg.write_text('output = "tully"\nhop = "sharc"\n' + body)
    with pytest.raises(ConfigError, match="other settings"):
        hop(cfg, progress=False)
    cfg.write_text('output = "x"\nhop = "fewest"\n')
    with pytest.raises(ConfigError, match="hop"):
        hop(cfg)


def test_friction_temperature_validation():
    model = TorsionalIsomerisation()
    x = model.geometry()
    with pytest.raises(SimsInputError, match="friction"):
        FSSH(model, x, torch.zeros_like(x), friction=-1.0)
    with pytest.raises(SimsInputError, match="mass must be one positive number or 12"):
        bad = TorsionalIsomerisation()
        bad.mass = [1.0, 2.0]
        FSSH(bad, x, torch.zeros_like(x))
    assert AU_TIME_FS == pytest.approx(0.0241888, rel=1e-5)


def test_run_ensemble_resume_with_another_count_reruns_a_partial_chunk(tmp_path):
    # n_trajectories is not part of a folder's settings (an ensemble may grow), but it sets the size of the
    # last chunk, whose initial conditions depend on that size: a chunk of another size must be rerun.
    model = TorsionalIsomerisation()
    opts = dict(duration=2.0, timestep=0.25, chunk_size=4, seed=0, record_every=4)
    run_ensemble(model, 6, output=tmp_path / "run", **opts)          # chunk 1 holds trajectories 4, 5
    grown = run_ensemble(model, 8, output=tmp_path / "run", **opts)
    fresh = run_ensemble(model, 8, output=tmp_path / "fresh", **opts)
    assert list(grown.trajectories["trajectory"]) == list(range(8))
    np.testing.assert_array_equal(np.stack(grown.trajectories["descriptor_history"]),
                                  np.stack(fresh.trajectories["descriptor_history"]))
    shrunk = run_ensemble(model, 5, output=tmp_path / "run", **opts)
    alone = run_ensemble(model, 5, **opts)
    assert list(shrunk.trajectories["trajectory"]) == list(range(5))
    np.testing.assert_array_equal(np.stack(shrunk.trajectories["descriptor_history"]),
                                  np.stack(alone.trajectories["descriptor_history"]))


class _ArrayModel(DiabaticModel):
    """Two shifted harmonic diabats (atomic units) whose constants (k, a, c) are held in an array."""

    n_states, ndim = 2, 1

    def __init__(self, constants):
        self.constants = np.asarray(constants, dtype=np.float64)
        self.mass = [2000.0]

    def diabatic(self, x):
        k, a, c = self.constants
        x = x[..., 0]
        v11, v22, v12 = 0.5 * k * x ** 2, 0.5 * k * (x - 1) ** 2 + a, c * torch.exp(-x ** 2)
        return torch.stack([torch.stack([v11, v12], -1), torch.stack([v12, v22], -1)], -2)

    def geometry(self, dtype=torch.float64):
        return torch.zeros((1, 1), dtype=dtype)


def test_run_ensemble_refuses_a_folder_of_a_model_with_other_array_or_table_parameters(tmp_path):
    # The folder's key hashed a model's numbers, tuples, lists and torch modules only: a model holding its
    # constants in an array (or a dict of settings) with other values resumed the old chunks (measured:
    # coupling 0.002 -> 0.02, the old final populations 0.997/0.003 returned instead of 0.119/0.881).
    opts = dict(duration=20.0, timestep=0.5, sampler="thermal", temperature=300.0, chunk_size=4, seed=0)
    run_ensemble(_ArrayModel([0.05, 0.01, 0.002]), 4, output=tmp_path / "run", **opts)
    with pytest.raises(SimsInputError, match="other settings"):
        run_ensemble(_ArrayModel([0.05, 0.01, 0.02]), 4, output=tmp_path / "run", **opts)
    tabled = _ArrayModel([0.05, 0.01, 0.002])
    tabled.settings = {"basis": "sto-3g"}
    run_ensemble(tabled, 4, output=tmp_path / "tabled", **opts)
    tabled.settings = {"basis": "6-31g"}
    with pytest.raises(SimsInputError, match="other settings"):
        run_ensemble(tabled, 4, output=tmp_path / "tabled", **opts)
