"""Per-frame loss weights of the potential training path: a weight w on a frame is the frame taken w times.

Reference: the same loss and the same training on the batch in which each frame is repeated
``w`` times (the authors' ``dset_train_weight``, robust/actlearn/pipeline.py, repeats frames).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learners.errors import InputError
from learners.potentials import PaiNN, PotentialLoss, collate_atoms, fit_potential
from learners.trainer import Trainer
from tests.learners.test_adversarial import md_frames

WEIGHTS = [1, 3, 1, 2, 4]


@pytest.fixture(scope="module")
def frames():
    return md_frames(5, seed=0)


def model(seed: int = 0) -> PaiNN:
    return PaiNN(5.0, n_features=8, n_rbf=8, n_interactions=1, seed=seed, dtype=torch.float64)


def repeated(frames, weights):
    return [f for f, w in zip(frames, weights) for _ in range(w)]


@pytest.mark.parametrize("w_energy, w_forces", [(1.0, 0.0), (0.0, 1.0), (0.3, 1.0)])
def test_weighted_loss_equals_the_loss_of_repeated_frames(frames, w_energy, w_forces):
    net = model().fit_shifts(frames)
    loss = PotentialLoss(w_energy=w_energy, w_forces=w_forces)
    weighted = collate_atoms(frames, net.cutoff, dtype=torch.float64, weights=WEIGHTS)
    copies = collate_atoms(repeated(frames, WEIGHTS), net.cutoff, dtype=torch.float64)

    def value(batch) -> float:
        return float(loss(net, batch)[0].detach())

    assert value(weighted) == pytest.approx(value(copies), rel=1e-12)
    # Unit weights are the unweighted loss; unequal weights change it (the weights are used at all).
    ones = collate_atoms(frames, net.cutoff, dtype=torch.float64, weights=[1.0] * len(frames))
    plain = collate_atoms(frames, net.cutoff, dtype=torch.float64)
    assert value(ones) == pytest.approx(value(plain), rel=1e-12)
    assert abs(value(weighted) / value(plain) - 1) > 1e-3


def test_fit_with_weights_trains_as_on_repeated_frames(frames):
    # One batch per epoch: weighting and repeating give the same gradients, hence the same weights
    # after training (up to the order of the sums). The shifts are fitted on the plain frames for both
    # (fit_potential fits them unweighted; repeated frames would move them).
    trainer = Trainer(epochs=4, batch_size=64, lr=5e-3, eval_grad=True, dtype=torch.float64, seed=0)
    a, b, c = model(1).fit_shifts(frames), model(1).fit_shifts(frames), model(1).fit_shifts(frames)
    fit_potential(a, frames, trainer=trainer, fit_shifts=False, weights=WEIGHTS)
    fit_potential(b, repeated(frames, WEIGHTS), trainer=trainer, fit_shifts=False)
    fit_potential(c, frames, trainer=trainer, fit_shifts=False)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-9, atol=1e-12, msg=name)
    moved = max(float((pa - pc).detach().abs().max()) for pa, pc in zip(a.parameters(), c.parameters()))
    assert moved > 1e-6     # the weights changed the training


def test_weighted_fit_scores_its_validation_frames_unweighted(frames):
    """fit_potential(weights=..., val=...) batched the validation frames with the weighted collate, which
    unpacks (frame, weight) pairs: it stopped with 'too many values to unpack' at the first validation.
    The validation frames now weigh 1 each: with all training weights 1 the run is the unweighted run."""
    trainer = Trainer(epochs=2, batch_size=2, lr=5e-3, eval_grad=True, dtype=torch.float64, seed=0)
    a, b = model(1).fit_shifts(frames), model(1).fit_shifts(frames)
    [weighted] = fit_potential(a, frames[:3], frames[3:], trainer=trainer, fit_shifts=False, weights=[1.0] * 3)
    [plain] = fit_potential(b, frames[:3], frames[3:], trainer=trainer, fit_shifts=False)
    for key in ("train_loss", "val_loss", "val_forces_mae", "val_energy_mae"):
        np.testing.assert_allclose([r[key] for r in weighted.history_], [r[key] for r in plain.history_],
                                   rtol=1e-10, err_msg=key)


def test_bad_weights(frames):
    net = model()
    trainer = Trainer(epochs=1, batch_size=8, eval_grad=True, dtype=torch.float64)
    for weights, message in (([1.0] * 4, "one finite number > 0 per training frame"),
                             ([1.0, 0.0, 1.0, 1.0, 1.0], "one finite number > 0"),
                             ([1.0, np.nan, 1.0, 1.0, 1.0], "one finite number > 0")):
        with pytest.raises(InputError, match=message):
            fit_potential(net, frames, trainer=trainer, weights=weights)
    with pytest.raises(InputError, match="one finite number > 0 per structure"):
        collate_atoms(frames, 5.0, weights=[1.0, -2.0, 1.0, 1.0, 1.0])
