"""learners.diabatic: gap-weighted sampling of training frames, and a DANN on SA-CASSCF labels of ethylene.

References: the closed-form weights ``f exp(-g^2 / 2 s^2) / sum + (1 - f) / N`` computed here
independently; binomial statistics of the draw counts; the draws of each epoch recovered from what
the training step receives; PySCF labels (sims.pyscf_casscf) for the ethylene frames.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from learners.diabatic import (DANNHamiltonian, DiabaticLoss, DiabaticPaiNN, GapWeightedSampler, fit_diabatic,
                               label_frames)
from learners.errors import InputError
from learners.trainer import Trainer
from sims.surface_hopping import FSSH, TorsionalIsomerisation

F64 = torch.float64
ENERGIES = np.array([[0.0, 0.02], [0.0, 0.3], [1.0, 1.6], [0.0, 2.0], [-1.0, 3.0], [0.5, 0.45]])


def test_gap_weights_and_draw_frequencies():
    sampler = GapWeightedSampler(ENERGIES, sigma=0.4, fraction=0.7, num_samples=600, seed=3)
    gap = np.abs(ENERGIES[:, 1] - ENERGIES[:, 0])
    p = np.exp(-gap ** 2 / (2 * 0.4 ** 2))
    expected = 0.7 * p / p.sum() + 0.3 / len(p)
    np.testing.assert_allclose(sampler.weights.numpy(), expected, rtol=1e-12)
    assert expected[0] > 5 * expected[4]  # near-degenerate frames drawn far more often
    counts = np.zeros(len(ENERGIES))
    n_epochs = 100
    for epoch in range(1, n_epochs + 1):
        counts += np.bincount(sampler.draw(epoch).numpy(), minlength=len(ENERGIES))
    n = 600 * n_epochs
    sd = np.sqrt(n * expected * (1 - expected))
    assert np.all(np.abs(counts - n * expected) < 4 * sd), (counts / n, expected)
    # Pearson's chi^2 with 5 degrees of freedom: below its 99.9 % quantile (20.5).
    assert ((counts - n * expected) ** 2 / (n * expected)).sum() < 20.5
    # fraction 0: uniform; fraction 1: the Gaussian alone.
    np.testing.assert_allclose(GapWeightedSampler(ENERGIES, fraction=0.0).weights.numpy(), 1 / 6)
    np.testing.assert_allclose(GapWeightedSampler(ENERGIES, sigma=0.4, fraction=1.0).weights.numpy(), p / p.sum())


def test_draws_are_seeded_per_epoch():
    a = GapWeightedSampler(ENERGIES, seed=1, num_samples=50)
    b = GapWeightedSampler(ENERGIES, seed=1, num_samples=50)
    assert torch.equal(a.draw(4), b.draw(4))
    assert not torch.equal(a.draw(4), a.draw(5))
    assert not torch.equal(a.draw(4), GapWeightedSampler(ENERGIES, seed=2, num_samples=50).draw(4))
    a.epoch = 7
    assert list(a) == a.draw(7).tolist() and len(a) == 50
    # The generator is local: the global torch RNG is untouched.
    state = torch.get_rng_state()
    a.draw(9)
    assert torch.equal(state, torch.get_rng_state())


def test_bad_sampler_input():
    with pytest.raises(InputError, match="sigma"):
        GapWeightedSampler(ENERGIES, sigma=0.0)
    with pytest.raises(InputError, match="fraction"):
        GapWeightedSampler(ENERGIES, fraction=1.5)
    with pytest.raises(InputError, match="shape"):
        GapWeightedSampler(ENERGIES[:, :1])
    with pytest.raises(InputError, match="num_samples"):
        GapWeightedSampler(ENERGIES, num_samples=0)


def _frames(n, seed):
    model = TorsionalIsomerisation()
    gen = torch.Generator().manual_seed(seed)
    phi = torch.rand(n, generator=gen, dtype=F64) * 2 * math.pi - math.pi
    x = torch.cat([model.geometry(float(v)) for v in phi]) + 0.1 * torch.randn(n, 12, generator=gen, dtype=F64)
    return label_frames(model, x, model.numbers)


def test_fit_diabatic_trains_on_each_epochs_draws():
    frames = _frames(12, 0)
    energies = np.stack([f.info["energies"] for f in frames])
    sampler = GapWeightedSampler(energies, sigma=0.3, fraction=0.9, num_samples=20, seed=5)
    seen: list[np.ndarray] = []

    class Recording(DiabaticLoss):
        def __call__(self, model, data):
            if model.training:
                seen.append(data[1]["energies"].numpy())
            return super().__call__(model, data)

    net = DiabaticPaiNN(2, cutoff=4.0, n_features=8, n_rbf=8, n_interactions=1, seed=0, dtype=F64)
    trainer = Trainer(epochs=3, batch_size=8, lr=1e-3, eval_grad=True, seed=0)
    fit_diabatic(net, frames, None, trainer=trainer, loss=Recording(), sampler=sampler)
    per_epoch = np.concatenate(seen).reshape(3, 20, 2)
    for epoch in range(1, 4):
        want = energies[sampler.draw(epoch).numpy()]
        got = per_epoch[epoch - 1]
        # the same multiset of frames (the trainer shuffles their order)
        assert sorted(map(tuple, got.round(9))) == sorted(map(tuple, want.round(9)))
    with pytest.raises(InputError, match="built on the 12 training frames"):
        fit_diabatic(net, frames, None, trainer=Trainer(epochs=1, eval_grad=True),
                     sampler=GapWeightedSampler(energies[:5]))


def test_dann_on_casscf_labels_of_ethylene_runs_fssh(tmp_path):
    """The pieces of benchmarks/ethylene_dann.py at tiny size: PySCF labels, training, FSSH on the DANN."""
    pytest.importorskip("pyscf")
    from ase.build import molecule

    from sims.pyscf_casscf import label_dataset

    structures = []
    for angle, seed in ((30.0, 0), (80.0, 1), (100.0, 2)):
        mol = molecule("C2H4")
        t = math.radians(angle)
        rot = np.array([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0], [0.0, 0.0, 1.0]])
        mol.positions[4:] = mol.positions[4:] @ rot.T
        mol.rattle(0.02, seed=seed)
        structures.append(mol)
    frames = label_dataset(structures, tmp_path / "labels", chunk_size=2, basis="sto-3g")
    assert len(frames) == 3
    energies = np.stack([f.info["energies"] for f in frames])
    net = DiabaticPaiNN(2, cutoff=5.0, n_features=8, n_rbf=8, n_interactions=1, seed=0, dtype=F64)
    trainer = Trainer(epochs=15, batch_size=3, lr=5e-3, eval_grad=True, seed=0, schedule="constant")
    fit_diabatic(net, frames, None, trainer=trainer, sampler=GapWeightedSampler(energies, seed=0))
    assert trainer.history_[-1]["train_loss"] < trainer.history_[0]["train_loss"]
    ham = DANNHamiltonian(net, [6, 6, 1, 1, 1, 1])
    x = torch.as_tensor(np.stack([s.positions.ravel() for s in structures]) / 0.529177210903)
    fssh = FSSH(ham, x, torch.zeros_like(x), initial_state=1, timestep=10.0, seed=0, decoherence="edc")
    e0 = fssh.total_energy()
    fssh.run(10)
    assert torch.isfinite(fssh.x).all()
    assert float((fssh.total_energy() - e0).abs().max()) < 2e-4  # hartree, velocity Verlet over 10 steps


@pytest.mark.slow
def test_ethylene_workflow_quick_slow(tmp_path):
    """benchmarks/ethylene_dann.py --quick end to end (STO-3G, 40 geometries, 20 trajectories; a few
    minutes on an idle core): every stage runs, the held-out errors beat predicting the mean, the
    yield is a binomial fraction with its error, and the DANN is faster than PySCF per geometry."""
    pytest.importorskip("pyscf")
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(root / "benchmarks" / "ethylene_dann.py"), "--quick", "--round2", "8",
                    "--out", str(tmp_path)],
                   check=True, env=env, capture_output=True)
    log = json.loads((tmp_path / "results.json").read_text())
    test = log["round1"]["test"]
    assert test["n_test"] >= 2 and log["round2"]["n_fssh_frames"] >= 6
    assert test["energies_mae_eV"] < test["energies_spread_eV"]
    fssh = log["fssh"]
    y, n = fssh["yield"], fssh["n_trajectories"]
    assert n == 20 and 0 <= y <= 1 and round(y * n) == pytest.approx(y * n)
    assert fssh["yield_error"] == pytest.approx(math.sqrt(y * (1 - y) / n))
    assert log["speed"]["speedup_batched"] > 1
    # the same run with a bath and a committee of two: reads the labels, trains one member, keeps both ensembles
    subprocess.run([sys.executable, str(root / "benchmarks" / "ethylene_dann.py"), "--quick", "--round2", "8",
                    "--out", str(tmp_path), "--friction", "0.02", "--members", "2", "--settle-window", "10"],
                   check=True, env=env, capture_output=True)
    bath = json.loads((tmp_path / "results_bath0.02_300K.json").read_text())
    assert bath["fssh"]["friction_per_fs"] == 0.02 and bath["fssh"]["temperature_K"] == 300.0
    assert len(list(tmp_path.glob("ensemble_*.npz"))) == 2 and len(list(tmp_path.glob("*_member1.pt"))) == 1
    yields, settle = bath["fssh"]["yields"], bath["fssh"]["settling"]
    assert yields["all"]["n"] == bath["fssh"]["n_completed"]
    assert yields["settled"]["n"] == yields["all"]["n"] - settle["n_unsettled"]
    assert yields["on_s1"]["n"] == settle["n_on_s1"]
    committee = bath["committee"]
    assert committee["members"] == 2 and committee["n_held_out"] >= 2 and 0 <= committee["n_exceeded"] <= 20
    assert committee["threshold_eV"][0] == pytest.approx(3 * committee["test_spread_eV"][0], abs=1e-3)
