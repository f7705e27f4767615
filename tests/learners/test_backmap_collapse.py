"""CGVAE must use its latent where the fine-grained state given the beads is genuinely bimodal.

Toy molecule: three atoms, each its own bead (a triangle with random side lengths, angle and
orientation), and a fourth atom bonded to the third (weight 0 in its bead, so the beads do not see
it) that sits 1 Å from atom 2 either along ``atom0 -> atom2`` (mode A) or along ``atom2 -> atom1``
(mode B), with probability 1/2 each. The beads carry no information about the mode, so a decoder
that ignores its latent (posterior collapse) can at best put atom 3 between the modes or always in
one of them; a working CGVAE reconstructs the mode from the posterior and draws both modes from the
prior. The two modes are not mirror images through the plane of the beads: the encoder's
invariants (PaiNN scalars) are parity-even and could not tell mirror images apart.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from learners.backmap.model import CGVAE, fit_cgvae
from learners.errors import InputError
from reprs.cg_mapping import alpha_carbon_mapping


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    x = np.zeros((n, 4, 3))
    angle = np.deg2rad(100.0 + 10.0 * rng.normal(size=n))
    x[:, 1, 0] = 1.5 + 0.1 * rng.normal(size=n)
    b = 1.5 + 0.1 * rng.normal(size=n)
    x[:, 2, 0], x[:, 2, 1] = b * np.cos(angle), b * np.sin(angle)
    mode_a = rng.random(n) < 0.5
    away = np.where(mode_a[:, None], x[:, 2] - x[:, 0], x[:, 1] - x[:, 2])
    x[:, 3] = x[:, 2] + away / np.linalg.norm(away, axis=1, keepdims=True)
    x += 0.03 * rng.normal(size=x.shape)
    rot = Rotation.random(n, random_state=seed).as_matrix()
    return np.einsum("nij,naj->nai", rot, x), mode_a


def _modes(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether atom 3 is within 0.5 Å of mode A's / mode B's place given atoms 0-2 (the modes are 1.9 Å apart)."""
    def unit(v):
        return v / torch.linalg.norm(v, dim=-1, keepdim=True)

    a = p[..., 2, :] + unit(p[..., 2, :] - p[..., 0, :])
    b = p[..., 2, :] + unit(p[..., 1, :] - p[..., 2, :])
    return (torch.linalg.norm(p[..., 3, :] - a, dim=-1) < 0.5), (torch.linalg.norm(p[..., 3, :] - b, dim=-1) < 0.5)


@pytest.fixture(scope="module")
def trained():
    x, _ = _toy(480, 0)
    atoms = Atoms("CCCH", positions=x[0])
    mapping = alpha_carbon_mapping(atoms, residues=[0, 1, 2, 2], alpha_carbons=[0, 1, 2])
    model = CGVAE(mapping, atoms.numbers, [[0, 1], [0, 2], [2, 3]], n_features=12, beta=0.05, gamma=1.0, seed=0)
    t = torch.as_tensor(x, dtype=torch.float32)
    trainer = fit_cgvae(model, t[:440], t[440:], epochs=16, batch_size=32, lr=5e-3, warmup=5, seed=0)
    assert model.ramp == 1.0 and len(trainer.history_) == 16
    with pytest.raises(InputError, match="warmup must be a non-negative int"):
        fit_cgvae(model, t[:8], None, epochs=1, warmup=-1)
    model.eval()
    return model


def test_posterior_latent_carries_the_mode_and_prior_samples_cover_both_modes(trained):
    x, mode_a = _toy(200, 1)
    t = torch.as_tensor(x, dtype=torch.float32)
    in_a, in_b = _modes(t)
    assert bool((in_a == torch.as_tensor(mode_a)).all() and (in_b != in_a).all())  # the classifier is exact on data
    # reconstruction from the posterior gets the mode of (nearly) every frame: the latent is decoded
    rec_a, rec_b = _modes(trained.reconstruct(t))
    assert float((rec_a & torch.as_tensor(mode_a)).float().mean() + (rec_b & ~torch.as_tensor(mode_a)).float().mean()) > 0.9
    # and it costs KL: at least most of the one bit (0.69 nats) the mode is worth, summed over beads
    with torch.no_grad():
        _, terms, _ = trained.loss(t)
    assert float(terms["kl"]) * 3 > 0.4
    # prior samples: both modes, each for a fair share of the draws, and mostly at a mode, not between
    s_a, s_b = _modes(trained.sample(trained.bead_positions(t), 8, seed=0))
    frac_a, frac_b = float(s_a.float().mean()), float(s_b.float().mean())
    assert frac_a > 0.15 and frac_b > 0.15 and frac_a + frac_b > 0.5, (frac_a, frac_b)


def test_seeded_construction_leaves_cuda_generators_alone(monkeypatch):
    """Seeding the initialisation reseeded every CUDA generator of the process (torch.manual_seed inside
    fork_rng(devices=[]), which restores only the CPU one): on a GPU, building a model reset the random
    stream of whatever ran there. Only the CPU generator is seeded now, and restored afterwards."""
    from sims.enhanced import BasisSetBias

    def reseeded(*args, **kwargs):
        raise AssertionError("a CUDA generator was reseeded")

    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded)
    monkeypatch.setattr(torch.cuda, "manual_seed", reseeded)
    state = torch.random.get_rng_state()
    mapping = alpha_carbon_mapping(Atoms("C3", positions=np.eye(3)), residues=[0, 1, 2], alpha_carbons=[0, 1, 2])
    a = CGVAE(mapping, [6, 6, 6], n_features=4, seed=5)
    bias = BasisSetBias(["position:0,x"], lower=[-1.0], upper=[1.0], n_basis=4, hidden=4, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.equal(a.atom_mix, CGVAE(mapping, [6, 6, 6], n_features=4, seed=5).atom_mix)
    again = BasisSetBias(["position:0,x"], lower=[-1.0], upper=[1.0], n_basis=4, hidden=4, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(bias.parameters(), again.parameters()))


@pytest.mark.parametrize("batch_size", [1, 4])
def test_validation_loss_with_free_bits_is_the_loss_of_the_whole_set(batch_size):
    """The free-bits clamp acts on each bead's KL averaged over a batch: the validation loss, a mean of
    the batch losses weighted by their frames, so moved with batch_size (and with it the best epoch).
    Reference: the eval-mode loss of the validation frames as one batch (CGVAE.loss)."""
    x, _ = _toy(28, 2)
    t = torch.as_tensor(x, dtype=torch.float64)
    atoms = Atoms("CCCH", positions=x[0])
    mapping = alpha_carbon_mapping(atoms, residues=[0, 1, 2, 2], alpha_carbons=[0, 1, 2])
    model = CGVAE(mapping, atoms.numbers, [[0, 1], [0, 2], [2, 3]], n_features=6, beta=0.5, gamma=1.0, seed=0,
                  dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        kl = model.loss(t[16:])[1]["kl_frames"]
    # the clamp at the median KL of the bead whose KL varies most over the frames, so that batches of a
    # few frames are clamped unlike the set (a tiny learning rate keeps it so through the epoch)
    bead = int((kl.amax(0) - kl.amin(0)).argmax())
    model.free_bits = float(kl[:, bead].median())
    trainer = fit_cgvae(model, t[:16], t[16:], epochs=1, batch_size=batch_size, lr=1e-9, seed=0)
    model.eval()
    with torch.no_grad():
        whole, terms, _ = model.loss(t[16:])
    assert float(terms["kl_frames"][:, bead].min()) < model.free_bits < float(terms["kl_frames"][:, bead].max())
    assert trainer.history_[0]["val_loss"] == pytest.approx(float(whole), rel=1e-10)
