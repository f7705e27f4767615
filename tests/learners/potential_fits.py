"""One held-out evaluation of a PaiNN trained on generated MD frames, shared by the slow reference-data tests."""

from __future__ import annotations

import torch


def fit_painn_and_score(frames: list, fractions: tuple[float, float, float], *, label: str, n_features: int,
                        n_interactions: int, n_rbf: int, epochs: int, batch_size: int, lr: float,
                        patience: int) -> dict:
    """Split ``frames`` by trajectory, train a float64 PaiNN (5 Å cutoff, w_F = 10) on the first part
    with early stopping on the second, print and return its errors on the third (``frame_errors``)."""
    from learners.potentials import PaiNN, PotentialLoss, fit_potential, trajectory_split
    from learners.potentials.training import frame_errors
    from learners.trainer import Trainer

    train, val, test = ([frames[k] for k in part] for part in trajectory_split(frames, fractions, seed=0))
    model = PaiNN(cutoff=5.0, n_features=n_features, n_interactions=n_interactions, n_rbf=n_rbf, seed=0,
                  dtype=torch.float64)
    fit_potential(model, train, val, loss=PotentialLoss(w_energy=1.0, w_forces=10.0),
                  trainer=Trainer(epochs=epochs, batch_size=batch_size, lr=lr, eval_grad=True, dtype=torch.float64,
                                  patience=patience))
    scores = frame_errors(model, test)
    print(f"\n{label}: {len(train)}/{len(val)}/{len(test)} frames (train at "
          f"{sorted({f.info['T_target'] for f in train})} K, validation at {val[0].info['T_target']} K, test at "
          f"{test[0].info['T_target']} K); force MAE {scores['forces_mae']:.4f} eV/Å "
          f"(mean |F| {scores['forces_mean_abs']:.4f}), energy MAE {1000 * scores['energy_mae']:.2f} meV/atom")
    return scores
