"""Trainer: determinism, checkpoint resume, early stopping, logs, model-agnostic use."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch

from learners.data import graphs_to_data
from learners.errors import InputError, TrainingDivergedError
from learners.models import GraphModel, graph_inputs, task_loss
from learners.trainer import Trainer, supervised_step


@pytest.fixture(scope="module")
def data(fucose_task):
    graphs, y, *_ = fucose_task
    d = graphs_to_data(graphs, y, dtype=torch.float64)
    return d[:60], d[60:]


def _model(seed: int = 0) -> GraphModel:
    # Dropout > 0 so that resume must also reproduce the dropout masks.
    return GraphModel(kind="gine", in_dim=128, edge_dim=40, n_outputs=2, hidden=16, layers=2, dropout=0.2, seed=seed, dtype=torch.float64)


STEP = supervised_step(graph_inputs, partial(task_loss, "multiclass"))


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _fit(data, seed=0, **kw):
    model = _model()
    trainer = Trainer(epochs=6, batch_size=16, dtype=torch.float64, seed=seed, **kw)
    trainer.fit(model, data[0], data[1], step=STEP, task="multiclass")
    return model, trainer


def test_same_seed_same_weights_other_seed_differs(data):
    from tests.learners.test_models import cuda_rng_state

    state, cuda = torch.get_rng_state(), cuda_rng_state()
    a, ta = _fit(data, seed=0, restore_best=False)
    assert torch.equal(torch.get_rng_state(), state) and cuda_rng_state() == cuda  # dropout's seeding stays local
    b, tb = _fit(data, seed=0, restore_best=False)
    c, _ = _fit(data, seed=1, restore_best=False)
    assert torch.equal(_weights(a), _weights(b))
    assert [r["train_loss"] for r in ta.history_] == [r["train_loss"] for r in tb.history_]
    assert not torch.equal(_weights(a), _weights(c))


def test_resume_after_interruption_equals_uninterrupted_run(data, tmp_path):
    full, t_full = _fit(data, run_dir=tmp_path / "full", restore_best=False)

    def crash(trainer, record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fit(data, run_dir=tmp_path / "cut", restore_best=False, callbacks=[crash])
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["epoch"] == 3
    resumed, t_res = _fit(data, run_dir=tmp_path / "cut", resume=True, restore_best=False)
    assert torch.equal(_weights(resumed), _weights(full))
    keys = ("epoch", "lr", "train_loss", "val_loss", "val_accuracy")
    assert [[r[k] for k in keys] for r in t_res.history_] == [[r[k] for k in keys] for r in t_full.history_]
    log = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 7))
    assert not list((tmp_path / "cut").glob("*.tmp")), "temporary checkpoint files left behind"


def test_early_stopping_and_best_weights(data, tmp_path):
    model = _model()
    # Zero learning rate: nothing improves after epoch 1, so patience 2 stops at epoch 3.
    trainer = Trainer(epochs=50, lr=1e-12, patience=2, min_delta=1e-6, dtype=torch.float64, run_dir=tmp_path)
    trainer.fit(model, data[0], data[1], step=STEP, task="multiclass")
    assert len(trainer.history_) == 3
    assert trainer.best_epoch_ == 1  # later epochs improve by less than min_delta
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_monitor_metric_is_logged_and_used(data):
    _, trainer = _fit(data, monitor="balanced_accuracy", schedule="plateau")
    scores = [r["val_balanced_accuracy"] for r in trainer.history_]
    assert trainer.best_score_ == max(scores)
    assert {"val_macro_f1", "val_roc_auc", "lr", "seconds"} <= set(trainer.history_[0])


def test_model_agnostic_regression_with_custom_collate():
    # A plain MLP on tensors: the trainer needs only a step and a collate function.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3
    items = [(torch.tensor(a), torch.tensor(b)) for a, b in zip(x, y)]
    collate = lambda rows: (torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]))  # noqa: E731
    model = torch.nn.Linear(3, 1)
    step = supervised_step(lambda b: (b[0],), partial(task_loss, "regression"), target=lambda b: b[1])
    trainer = Trainer(epochs=60, batch_size=32, lr=0.05, dtype=torch.float64, schedule="constant", monitor="r2")
    trainer.fit(model, items[:200], items[200:], step=step, task="regression", collate=collate)
    assert model.weight.dtype == torch.float64
    assert trainer.history_[-1]["val_r2"] > 0.999
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), [1.0, -2.0, 0.5], atol=1e-2)


def test_bad_trainer_input(data):
    with pytest.raises(InputError, match="schedule"):
        Trainer(schedule="linear")
    with pytest.raises(InputError, match="mode='min' or 'max'"):
        Trainer(monitor="auprc")
    assert Trainer(monitor="forces_mae").mode == "min" and Trainer(monitor="auprc", mode="max").mode == "max"
    with pytest.raises(InputError, match="dtype"):
        Trainer(dtype=torch.int64)
    with pytest.raises(InputError, match="empty"):
        Trainer(epochs=1).fit(_model(), [], None, step=STEP)
    with pytest.raises(InputError, match="validation set"):
        Trainer(epochs=1, monitor="accuracy").fit(_model(), data[0], None, step=STEP, task="multiclass")


def test_clip_norm_and_min_delta_that_would_train_wrongly_are_refused():
    """clip_norm 0 scaled every gradient to 0 (no training: the loss of a linear fit stayed at 6.04 over 20
    epochs) and a negative one flipped it (gradient ascent: 6.7 -> 37); a negative min_delta counted a worse
    score as an improvement. Refused by name; a positive clip norm still trains."""
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    items = list(zip(x, y))

    def collate(b):
        return torch.stack([a for a, _ in b]), torch.stack([t for _, t in b])

    def step(model, batch):
        out = model(batch[0])[:, 0]
        return torch.nn.functional.mse_loss(out, batch[1]), out, batch[1]

    for clip in (0, 0.0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(InputError, match="clip_norm must be a finite number > 0 or None"):
            Trainer(clip_norm=clip)
    for delta in (-1e-3, float("nan")):
        with pytest.raises(InputError, match="min_delta must be a finite number >= 0"):
            Trainer(min_delta=delta)
    model = torch.nn.Linear(3, 1, dtype=torch.float64)
    history = Trainer(epochs=20, batch_size=16, lr=0.05, clip_norm=0.1, weight_decay=0.0).fit(
        model, items, step=step, collate=collate).history_
    assert history[-1]["train_loss"] < 0.2 * history[0]["train_loss"]


def _plateau_rates(scores, patience, min_delta=0.0):
    """The learning rate of each epoch of a plateau run whose monitored validation score is ``scores``."""
    items = [(torch.zeros(1, dtype=torch.float64), torch.zeros((), dtype=torch.float64))] * 4
    epochs = iter(scores)

    def step(model, batch):
        out = model(batch[0])[:, 0]
        return torch.nn.functional.mse_loss(out, batch[1]), out, batch[1]

    trainer = Trainer(epochs=len(scores), lr=1.0, schedule="plateau", patience=patience, min_delta=min_delta,
                      monitor="score", mode="min", dtype=torch.float64)
    trainer.fit(torch.nn.Linear(1, 1, dtype=torch.float64), items, items, step=step,
                collate=lambda b: (torch.stack([x for x, _ in b]), torch.stack([y for _, y in b])),
                metrics=lambda y, out: {"score": next(epochs)})
    return [r["lr"] for r in trainer.history_]


def test_plateau_schedule_halves_after_the_documented_wait_by_the_trainers_improvement():
    """schedule='plateau' halves the rate after max(1, patience // 3) epochs without improvement, improvement
    meaning what it means for early stopping (by more than min_delta). torch's ReduceLROnPlateau halves once
    its count exceeds its patience, and tests improvement by a relative 1e-4: given the wait itself it halved
    one epoch late ([1, 1, 1, 0.5] below, not [1, 1, 0.5, 0.25]) and took steps of 5e-5 (each an improvement
    for early stopping) for no improvement at all."""
    assert _plateau_rates([1.0, 1.0, 1.0, 1.0], patience=3) == [1.0, 1.0, 0.5, 0.25]  # wait 1
    assert _plateau_rates([1.0] * 8, patience=9) == [1.0] * 4 + [0.5] * 3 + [0.25]  # wait 3
    creeping = [1.0 - 5e-5 * k for k in range(6)]
    assert _plateau_rates(creeping, patience=3) == [1.0] * 6
    # ... unless min_delta says such steps are no improvement
    assert _plateau_rates(creeping, patience=9, min_delta=1e-3) == [1.0] * 4 + [0.5] * 2


def test_non_finite_loss_is_reported(data):
    def nan_step(model, batch):
        outputs = model(*graph_inputs(batch))
        return outputs.sum() * float("nan"), outputs, batch.y

    with pytest.raises(TrainingDivergedError, match="non-finite training loss"):
        Trainer(epochs=2, dtype=torch.float64).fit(_model(), data[0], step=nan_step)


def test_trainer_keeps_the_model_dtype_unless_asked(data):
    """Default dtype None: a float64 model trains in float64 (a float32 default used to cast it down
    silently); a dtype named on the trainer is honoured, the model cast to it."""
    model = _model()
    Trainer(epochs=1, batch_size=16).fit(model, data[0], step=STEP, task="multiclass")
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    Trainer(epochs=1, batch_size=16, dtype=torch.float32).fit(model, data[0], step=STEP, task="multiclass")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with pytest.raises(InputError, match="dtype"):
        Trainer(dtype="float64")


def _linear_task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3))
    items = [(torch.tensor(a), torch.tensor(b)) for a, b in zip(x, x @ np.array([1.0, -2.0, 0.5]))]
    collate = lambda rows: (torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]))  # noqa: E731
    step = supervised_step(lambda b: (b[0],), partial(task_loss, "regression"), target=lambda b: b[1])

    def fit(run_dir, data_key=None, **kw):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = torch.nn.Linear(3, 1).double()
        trainer = Trainer(**{"batch_size": 16, "seed": 0, "run_dir": run_dir, **kw})
        trainer.fit(model, items, step=step, collate=collate, data_key=data_key)
        return model, trainer

    return fit


def test_resume_under_other_settings_is_refused(tmp_path):
    """The optimizer state restored on resume carries the old lr and weight decay, the cosine schedule
    its old T_max: a resume with lr=0.1 after a run at 0.01 trained at 0.01, and a cosine run of 3
    epochs resumed to 6 ran its learning rate back up (0, 0.0025, 0.0075), both silently. The
    checkpoint now records the settings and refuses others."""
    fit = _linear_task()
    fit(tmp_path / "cos", epochs=3, lr=1e-2)
    with pytest.raises(InputError, match=r"lr 0.01 \(now 0.1\)"):
        fit(tmp_path / "cos", epochs=3, lr=1e-1, resume=True)
    with pytest.raises(InputError, match=r"epochs 3 \(now 6\)"):
        fit(tmp_path / "cos", epochs=6, lr=1e-2, resume=True)
    for changed in ({"seed": 1}, {"weight_decay": 0.0}, {"clip_norm": None}, {"dtype": torch.float32}):
        with pytest.raises(InputError, match=next(iter(changed))):
            fit(tmp_path / "cos", **{"epochs": 3, "lr": 1e-2, **changed}, resume=True)
    # Same settings: the finished run is taken as it is.
    _, same = fit(tmp_path / "cos", epochs=3, lr=1e-2, resume=True)
    assert [r["epoch"] for r in same.history_] == [1, 2, 3]
    # A constant-schedule run may grow: 3 epochs resumed to 6 are the uninterrupted 6-epoch run.
    fit(tmp_path / "const", epochs=3, lr=1e-2, schedule="constant")
    grown, t_grown = fit(tmp_path / "const", epochs=6, lr=1e-2, schedule="constant", resume=True)
    whole, t_whole = fit(tmp_path / "whole", epochs=6, lr=1e-2, schedule="constant")
    assert torch.equal(grown.weight, whole.weight)
    assert [r["train_loss"] for r in t_grown.history_] == [r["train_loss"] for r in t_whole.history_]


def test_resume_over_other_data_is_refused(tmp_path):
    # The data_key a caller gives (estimators: a digest of their data) is recorded with the settings.
    fit = _linear_task()
    fit(tmp_path / "run", data_key="a", epochs=2)
    with pytest.raises(InputError, match="other training or validation data"):
        fit(tmp_path / "run", data_key="b", epochs=2, resume=True)
    for key in ("a", None):  # the same data, or a caller that does not say
        assert [r["epoch"] for r in fit(tmp_path / "run", data_key=key, epochs=2, resume=True)[1].history_] == [1, 2]


def test_validation_loss_does_not_depend_on_the_batch_size(fucose_task):
    """The validation loss was the mean of the batch losses weighted by their items, which is the loss of
    the set only for a mean over items. The multi-task loss balances its tasks by a softmax of each
    batch's own task losses and leaves out unseen classes (-1) per batch: its validation loss moved with
    batch_size (here 2.015 at batch size 1 against 1.979 for the set; and so could the best epoch).
    supervised_step gives run_eval the loss of the whole set."""
    from learners.models import multitask_loss

    graphs, y, *_ = fucose_task
    rng = np.random.default_rng(0)
    labels = np.stack([np.asarray(y, dtype=np.int64), rng.integers(-1, 3, len(y))], axis=1)  # -1: unseen
    items = graphs_to_data(graphs[:23], labels[:23], dtype=torch.float64)
    model = GraphModel(kind="gine", in_dim=128, edge_dim=40, n_outputs=(2, 3), task="multitask", hidden=8, layers=1,
                       dtype=torch.float64)
    step = supervised_step(graph_inputs, lambda out, t: multitask_loss(out, t, (2, 3), temperature=0.5))
    whole, outputs, targets = Trainer(batch_size=len(items)).run_eval(model, items, step)
    reference = float(multitask_loss(torch.as_tensor(outputs), torch.as_tensor(targets), (2, 3), temperature=0.5))
    assert whole == pytest.approx(reference, rel=1e-12)
    for batch_size in (1, 7):
        loss, *_ = Trainer(batch_size=batch_size).run_eval(model, items, step)
        assert loss == pytest.approx(reference, rel=1e-12), batch_size


def test_float32_inputs_to_a_float64_model_are_refused(fucose_task):
    """The trainer cast every float tensor of a batch to the model's dtype: a float64 model trained on
    features rounded to float32 (graphs_to_data's, CrystalGraph/MolecularGraph's default), silently.
    A float tensor of less precision than the computation is refused; float64 data trains, and float64
    data to a float32 model is cast down as before (the model's precision is the one asked for)."""
    graphs, y, *_ = fucose_task
    y = np.asarray(y, dtype=np.int64)[:12]
    model = GraphModel(kind="gine", in_dim=128, edge_dim=40, n_outputs=2, hidden=8, layers=1, dtype=torch.float64)
    rounded = graphs_to_data(graphs[:12], y, dtype=torch.float32)
    with pytest.raises(InputError, match="float32 tensors but the model computes in float64"):
        Trainer(epochs=1, batch_size=4).fit(model, rounded, None, step=STEP)
    exact = graphs_to_data(graphs[:12], y, dtype=torch.float64)
    assert len(Trainer(epochs=1, batch_size=4).fit(model, exact, None, step=STEP).history_) == 1
    small = GraphModel(kind="gine", in_dim=128, edge_dim=40, n_outputs=2, hidden=8, layers=1)
    assert len(Trainer(epochs=1, batch_size=4).fit(small, exact, None, step=STEP).history_) == 1


def test_whole_set_validation_loss_with_a_loss_holding_float32_tensors(fucose_task):
    """supervised_step's whole-set loss ran the loss on the concatenated outputs cast to float64 on the
    CPU: a loss with a tensor of its own in the model's dtype or on its device (a float32 class_weight of
    task_loss) failed on the first validation ("expected scalar type Double but found Float"), where the
    batch losses had run. The whole-set loss runs where the batches' did, and equals the loss of the set
    as one batch for every batch_size."""
    graphs, y, *_ = fucose_task
    items = graphs_to_data(graphs[:15], np.asarray(y, dtype=np.int64)[:15])
    model = GraphModel(kind="gine", in_dim=128, edge_dim=40, n_outputs=2, hidden=8, layers=1)
    weight = torch.tensor([1.0, 3.0])  # float32, the model's dtype
    step = supervised_step(graph_inputs, partial(task_loss, "multiclass", class_weight=weight))
    _, outputs, targets = Trainer(batch_size=len(items)).run_eval(model, items, step)
    reference = float(torch.nn.functional.cross_entropy(torch.as_tensor(outputs), torch.as_tensor(targets).long(),
                                                        weight=weight.double()))
    for batch_size in (1, 4, len(items)):
        loss, *_ = Trainer(batch_size=batch_size).run_eval(model, items, step)
        assert loss == pytest.approx(reference, rel=1e-6), batch_size
    assert len(Trainer(epochs=1, batch_size=4).fit(model, items, items, step=step).history_) == 1
