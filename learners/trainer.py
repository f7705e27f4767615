"""A model-agnostic training loop shared by every learner of the project.

The trainer knows nothing of graphs: it batches a sequence of items with a ``collate`` function
and asks a ``step(model, batch) -> (loss, outputs, target)`` hook for the loss. GNNs use
:func:`supervised_step` with :func:`learners.models.graph_inputs`; an interatomic potential
passes its own step (energies and autograd forces) and ``eval_grad=True``.

Reproducibility: epoch ``e`` shuffles the training set with ``numpy.random.default_rng([seed, e])``
and runs under a torch RNG seeded from ``(seed, e)`` (dropout), inside ``torch.random.fork_rng`` so
that the caller's global RNG is untouched. Because nothing random carries over from one epoch to
the next, a run resumed from its checkpoint after epoch ``e`` continues exactly as the
uninterrupted run would.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import time
import types
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from learners.errors import InputError, TrainingDivergedError
from learners.metrics import METRIC_MODES, evaluate
from reprs.fileio import atomic_open

__all__ = ["Trainer", "supervised_step", "resolve_device", "move_batch", "pyg_collate", "SCHEDULES"]

SCHEDULES = ("cosine", "plateau", "constant")

Step = Callable[[torch.nn.Module, Any], tuple[torch.Tensor, Any, Any]]


def resolve_device(device: Any) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"`` (CUDA when available) or a ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {str(device)!r} requested but CUDA is not available here; use 'cpu' or 'auto'")
    return device


def move_batch(batch: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move tensors (also inside dicts, lists, tuples and PyG batches) to ``device``; floats to ``dtype``."""

    return _visit(batch, lambda t: t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype))


def _visit(batch: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``batch`` with ``fn`` applied to each of its tensors (also inside dicts, lists, tuples and objects
    with an ``apply`` hook: PyG batches, :class:`learners.potentials.AtomsBatch`)."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, dict):
        return {k: _visit(v, fn) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_visit(v, fn) for v in batch)
    if hasattr(batch, "apply"):  # torch_geometric Data / Batch
        return batch.apply(fn)
    return batch


def _refuse_rounded(batch: Any, dtype: torch.dtype) -> None:
    """Refuse float tensors of less precision than the computation's ``dtype``: cast up, they would carry
    their rounding into it silently (a float64 model trained on distances and features rounded to float32).

    Raises
    ------
    InputError
        Naming the tensors' and the computation's dtypes and how to build the data in ``dtype``.
    """
    found = set()

    def note(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point() and torch.finfo(t.dtype).eps > torch.finfo(dtype).eps:
            found.add(t.dtype)
        return t

    _visit(batch, note)
    if found:
        names = ", ".join(sorted(str(d).removeprefix("torch.") for d in found))
        raise InputError(f"the batch holds {names} tensors but the model computes in {str(dtype).removeprefix('torch.')}: "
                         "their values were rounded before the cast. Build the data in the model's dtype "
                         "(graphs_to_data(dtype=...), CrystalGraph/MolecularGraph(dtype=...), reprs.convert.to_pyg"
                         "(dtype=...), collate_atoms(dtype=...)) or give the model and Trainer the data's dtype")


def pyg_collate(items: Sequence[Any]) -> Any:
    """PyG's ``Batch.from_data_list`` (the default ``collate``)."""
    from torch_geometric.data import Batch

    return Batch.from_data_list(list(items))


def supervised_step(
    inputs: Callable[[Any], tuple],
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    target: Callable[[Any], torch.Tensor] = lambda batch: batch.y,
) -> Step:
    """The usual step: ``outputs = model(*inputs(batch))``, ``loss(outputs, target(batch))``."""

    placed: dict[str, Any] = {}  # the dtype and device of the model's outputs, for whole_loss

    def note(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point():
            placed.update(dtype=t.dtype, device=t.device)
        return t

    def step(model: torch.nn.Module, batch: Any):
        outputs = model(*inputs(batch))
        y = target(batch)
        _visit(outputs, note)
        return loss(outputs, y), outputs, y

    def whole_loss(y: Any, outputs: Any) -> float:
        # Back where the batches' losses were computed (the model's device, floats in its dtype): the
        # concatenated arrays are float64 on the CPU, and a loss holding tensors of its own (a float32
        # class_weight, weights on the GPU) refused them ("expected scalar type Double but found Float").
        return float(loss(_tensors(outputs, **placed), _tensors(y, **placed)))

    step.whole_loss = whole_loss
    return step


def _tensors(arrays: Any, dtype: torch.dtype | None = None, device: torch.device | None = None) -> Any:
    """numpy arrays (and dicts of them, as :meth:`Trainer.run_eval` returns) as torch tensors on ``device``,
    floating ones in ``dtype`` (as they are where None)."""
    if isinstance(arrays, dict):
        return {k: _tensors(v, dtype, device) for k, v in arrays.items()}
    t = torch.as_tensor(arrays)
    return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    # Written beside the target, then renamed: a crash leaves the old checkpoint intact.
    with atomic_open(path) as handle:
        torch.save(obj, handle)


def _plain_record(obj: Any) -> dict[str, Any] | None:
    """``obj``'s class and its public attributes that are plain data (numbers, strings, None and lists,
    tuples and dicts of them, as JSON gives them back); None for a function, which has no settings."""
    if isinstance(obj, (types.FunctionType, types.MethodType, types.BuiltinFunctionType, functools.partial)):
        return None
    record: dict[str, Any] = {"class": type(obj).__qualname__}
    for name, value in sorted(getattr(obj, "__dict__", {}).items()):  # (an object with __slots__ has none)
        if name.startswith("_") or name == "training":
            continue
        try:
            record[name] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError):
            continue  # an object (a submodule, a tensor): the state dict and the shapes cover it
    return record


def _n_items(target: Any) -> int:
    if isinstance(target, dict):
        target = next(iter(target.values()))
    return int(target.shape[0])


def _concat(parts: list) -> Any:
    if isinstance(parts[0], dict):
        return {k: _concat([p[k] for p in parts]) for k in parts[0]}
    return torch.cat([p.detach().to("cpu", torch.float64 if p.is_floating_point() else p.dtype) for p in parts]).numpy()


class Trainer:
    """Train any ``torch.nn.Module`` with AdamW, a schedule, early stopping and checkpoints.

    Parameters
    ----------
    epochs : int
        Maximum number of epochs.
    batch_size : int
    lr : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW's decoupled weight decay.
    schedule : {"cosine", "plateau", "constant"}
        Cosine annealing to 0 over ``epochs``; halve the rate after ``max(1, patience // 3)``
        epochs without improvement of ``monitor`` (``patience`` 10 when None; an improvement as for
        early stopping, by more than ``min_delta``), and again after as many more; or constant.
    patience : int, optional
        Stop after this many epochs without improvement of ``monitor``; None never stops early.
    monitor : str
        ``"loss"`` or a metric name of :func:`learners.metrics.evaluate` (``"balanced_accuracy"``,
        ``"macro_f1"``, ``"mae"``...), read on the validation set (on the training loss when there
        is none), or any key of a custom ``metrics`` function (``"forces_mae"``).
    mode : {"min", "max"}, optional
        Whether a smaller or larger ``monitor`` is better; by default from
        :data:`learners.metrics.METRIC_MODES`, matching the name or its ending (``"forces_mae"``
        -> ``"mae"`` -> ``"min"``).
    min_delta : float
        A change of ``monitor`` counts as an improvement only when larger than this (>= 0).
    clip_norm : float, optional
        Clip the global gradient norm to this value (> 0); None disables.
    device : {"cpu", "cuda", "auto"} or torch.device
    dtype : torch.dtype, optional
        Float type of the model and of the batches' floating tensors; :meth:`fit` casts the model
        to it. None (default): the model's own (its floating parameters'), so a float64 model is
        never silently trained in float32.
    seed : int
        Seeds the data order and dropout of each epoch.
    run_dir : path, optional
        Folder for ``checkpoint.pt`` (written atomically every ``checkpoint_every`` epochs and at
        the end), ``best.pt`` (weights at the best ``monitor``) and ``log.jsonl`` (one JSON record
        per epoch). None keeps everything in memory.
    resume : bool
        Continue from ``run_dir/checkpoint.pt`` when it exists. The checkpoint records the settings
        that shape the numbers (epochs, batch_size, lr, weight_decay, schedule, patience, monitor,
        mode, min_delta, clip_norm, seed, dtype), the model's class and plain attributes (its
        hyperparameters: dropout, readout, cutoff, ``hparams``) and those of a ``step`` object (a
        loss's weights); a resume with other values is refused, since the optimizer and schedule
        states it restores would keep the old ones, and the weights it loads were trained so. ``epochs`` may grow
        under the ``"plateau"`` and ``"constant"`` schedules (nothing there depends on it, so the
        longer run is the uninterrupted run of that length), not under ``"cosine"``.
    restore_best : bool
        Load the best weights into the model at the end (when a validation set was given).
    progress : bool
        Show a tqdm bar over epochs.
    eval_grad : bool
        Keep autograd on during evaluation (forces of a potential need it).
    callbacks : sequence of callables
        Called as ``callback(trainer, record)`` after each epoch's checkpoint; a callback may raise
        to stop the run (the checkpoint is already safe).

    Attributes
    ----------
    history_ : list of dict
        The per-epoch records (also in ``log.jsonl``).
    best_epoch_, best_score_
        Epoch and ``monitor`` value of the best epoch.
    """

    def __init__(
        self,
        *,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        schedule: str = "cosine",
        patience: int | None = None,
        monitor: str = "loss",
        mode: str | None = None,
        min_delta: float = 0.0,
        clip_norm: float | None = 5.0,
        device: Any = "cpu",
        dtype: torch.dtype | None = None,
        seed: int = 0,
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
        checkpoint_every: int = 1,
        restore_best: bool = True,
        progress: bool = False,
        eval_grad: bool = False,
        callbacks: Sequence[Callable[[Trainer, dict], None]] = (),
    ) -> None:
        for name, value in (("epochs", epochs), ("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
        if mode is None:
            endings = [key for key in METRIC_MODES if monitor == key or monitor.endswith("_" + key)]
            if not endings:
                raise InputError(
                    f"cannot tell whether monitor {monitor!r} should go up or down: give mode='min' or 'max', "
                    f"or use one of {sorted(METRIC_MODES)}"
                )
            mode = METRIC_MODES[max(endings, key=len)]
        if mode not in ("min", "max"):
            raise InputError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise InputError(f"patience must be a positive int or None, got {patience!r}")
        if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
            raise InputError(f"dtype must be None or a floating torch.dtype, got {dtype!r}")
        if lr <= 0:
            raise InputError(f"lr must be > 0, got {lr}")
        # clip_grad_norm_ scales the gradients by clip_norm / norm: 0 zeroed every step (no training, only
        # weight decay) and a negative value flipped their sign (gradient ascent), both without a word.
        if clip_norm is not None and (isinstance(clip_norm, bool) or not isinstance(clip_norm, numbers.Real)
                                      or not (math.isfinite(clip_norm) and clip_norm > 0)):
            raise InputError(f"clip_norm must be a finite number > 0 or None (no clipping; clip_norm = false in "
                             f"a config's [trainer] table), got {clip_norm!r}")
        # A negative min_delta counted a worse score as an improvement: the "best" epoch was the last one.
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) \
                or not (math.isfinite(min_delta) and min_delta >= 0):
            raise InputError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.schedule, self.patience, self.monitor, self.clip_norm = schedule, patience, monitor, clip_norm
        self.mode, self.min_delta = mode, min_delta
        self.device, self.dtype, self.seed = resolve_device(device), dtype, seed
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.resume, self.checkpoint_every, self.restore_best = resume, checkpoint_every, restore_best
        self.progress, self.eval_grad, self.callbacks = progress, eval_grad, tuple(callbacks)
        self.history_: list[dict] = []
        self._data_key: str | None = None  # set by fit, as the two records below
        self._model_record: dict[str, Any] | None = None
        self._step_record: dict[str, Any] | None = None
        self.best_epoch_: int | None = None
        self.best_score_: float | None = None

    # -- pieces -------------------------------------------------------------------------------
    def _dtype(self, model: torch.nn.Module) -> torch.dtype:
        """The dtype of a computation with ``model``: the trainer's, else the model's own."""
        if self.dtype is not None:
            return self.dtype
        return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)

    def _batches(self, items: Sequence[Any], collate: Callable, order: np.ndarray, dtype: torch.dtype):
        for start in range(0, len(order), self.batch_size):
            batch = collate([items[i] for i in order[start:start + self.batch_size]])
            _refuse_rounded(batch, dtype)
            yield move_batch(batch, self.device, dtype)

    def _fork_rng(self):
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        return torch.random.fork_rng(devices=devices)

    def run_eval(self, model: torch.nn.Module, items: Sequence[Any], step: Step, collate: Callable = pyg_collate):
        """Loss, concatenated outputs and targets (numpy, float64) of ``items`` in order.

        The loss is ``step.whole_loss(target, outputs)`` on the concatenated targets and outputs when
        the step has one (:func:`supervised_step`, :class:`learners.potentials.PotentialLoss`): the loss
        of ``items`` as one batch, whatever ``batch_size``. Otherwise the mean of the batch losses
        weighted by their items, which is that only for a loss that is a mean over items: a mean over
        atoms (forces of structures of different sizes), a class-balanced or task-balanced loss gave
        another validation loss, and another best epoch, for another ``batch_size``.
        """
        model.eval()
        total, outs, targets = 0.0, [], []
        with torch.set_grad_enabled(self.eval_grad):
            for batch in self._batches(items, collate, np.arange(len(items)), self._dtype(model)):
                loss, out, y = step(model, batch)
                total += float(loss.detach()) * _n_items(y)
                outs.append(out)
                targets.append(y)
        outs, targets = _concat(outs), _concat(targets)
        whole_loss = getattr(step, "whole_loss", None)
        return (total / len(items) if whole_loss is None else whole_loss(targets, outs)), outs, targets

    def predict(
        self, model: torch.nn.Module, items: Sequence[Any], forward: Callable[[torch.nn.Module, Any], Any], collate: Callable = pyg_collate
    ) -> Any:
        """``forward(model, batch)`` over ``items`` in order, concatenated (numpy, float64)."""
        if len(items) == 0:
            raise InputError("nothing to predict: the input is empty")
        model.eval()
        with torch.set_grad_enabled(self.eval_grad):
            return _concat([forward(model, b) for b in self._batches(items, collate, np.arange(len(items)),
                                                                     self._dtype(model))])

    def _train_epoch(self, model, optimizer, items, step, collate, epoch: int) -> float:
        model.train()
        order = np.random.default_rng([self.seed, epoch]).permutation(len(items))
        total = 0.0
        with self._fork_rng():
            # Seed exactly the generators _fork_rng restores (the CPU one and the training device's);
            # torch.manual_seed would reseed every CUDA device's generator for good.
            seed = int(np.random.default_rng([self.seed, epoch, 1]).integers(2**62))
            torch.default_generator.manual_seed(seed)
            if self.device.type == "cuda":
                torch.cuda.default_generators[self.device.index or 0].manual_seed(seed)
            for batch in self._batches(items, collate, order, self._dtype(model)):
                optimizer.zero_grad(set_to_none=True)
                loss, _, y = step(model, batch)
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(f"non-finite training loss {float(loss.detach())} at epoch {epoch}; lower lr or set clip_norm")
                loss.backward()
                if self.clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip_norm)
                optimizer.step()
                total += float(loss.detach()) * _n_items(y)
        return total / len(items)

    def _make_scheduler(self, optimizer):
        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        if self.schedule == "plateau":
            # torch halves once its count of epochs without improvement exceeds its patience, by its own test
            # (a relative 1e-4 by default): given the documented wait as patience it waited one epoch more,
            # and an improvement smaller than 1e-4 relative, which resets early stopping here, counted as
            # none. So the wait less one, and the trainer's own test (min_delta, absolute).
            wait = max(1, (self.patience or 10) // 3)
            return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=self.mode, factor=0.5, patience=wait - 1,
                                                              threshold=self.min_delta, threshold_mode="abs")
        return None

    def _improved(self, score: float) -> bool:
        if self.best_score_ is None:
            return True
        if self.mode == "min":
            return score < self.best_score_ - self.min_delta
        return score > self.best_score_ + self.min_delta

    def _settings(self, model: torch.nn.Module) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote its checkpoint (plain values)."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "weight_decay": self.weight_decay,
                "schedule": self.schedule, "patience": self.patience, "monitor": self.monitor, "mode": self.mode,
                "min_delta": self.min_delta, "clip_norm": self.clip_norm, "seed": self.seed,
                "dtype": str(self._dtype(model)).removeprefix("torch."), "data": self._data_key,
                "model": self._model_record, "step": self._step_record}

    def _check_resume(self, saved: dict[str, Any] | None, model: torch.nn.Module, checkpoint: Path) -> None:
        # The optimizer's state_dict carries the old lr and weight decay, the cosine schedule its old
        # T_max: without this check a resume under new settings silently kept (or mixed) the old ones.
        if saved is None:  # a checkpoint of a matrep that did not record them: nothing to compare
            return
        now = self._settings(model)
        differ = [k for k in now if k in saved and saved[k] != now[k]]
        if "epochs" in differ and self.schedule != "cosine":
            differ.remove("epochs")  # a longer plateau / constant run is the same run, continued
        if "data" in differ:
            if saved["data"] is not None and now["data"] is not None:
                raise InputError(f"{str(checkpoint)!r} was written by a run on other training or validation data; "
                                 "resuming would return (or train on) that run's model: train into a new run_dir")
            differ.remove("data")  # one side did not say what it trained on: nothing to compare
        def change(key: str) -> str:
            old, new = saved[key], now[key]
            if isinstance(old, dict) and isinstance(new, dict):  # the model's or step's attributes: name those
                return ", ".join(f"{key} {name} {old.get(name)!r} (now {new.get(name)!r})"
                                 for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name))
            return f"{key} {old!r} (now {new!r})"

        if differ:
            changes = ", ".join(change(k) for k in differ)
            raise InputError(f"{str(checkpoint)!r} was written by a run with other settings: {changes}; resume with "
                             "the same settings, or train into a new run_dir")

    def _write_log(self) -> None:
        from reprs.fileio import atomic_write

        atomic_write(self.run_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in self.history_))

    # -- public -------------------------------------------------------------------------------
    def fit(
        self,
        model: torch.nn.Module,
        train: Sequence[Any],
        val: Sequence[Any] | None = None,
        *,
        step: Step,
        task: str | None = None,
        metrics: Callable[[Any, Any], dict] | None = None,
        collate: Callable[[Sequence[Any]], Any] = pyg_collate,
        data_key: str | None = None,
    ) -> Trainer:
        """Train ``model`` in place on ``train``; score ``val`` every epoch.

        Parameters
        ----------
        model : torch.nn.Module
            Moved to the trainer's device and dtype.
        train, val : sequences of items
            What ``collate`` batches (PyG ``Data`` by default).
        step : callable
            ``step(model, batch) -> (loss, outputs, target)``; see :func:`supervised_step`. A
            ``step.whole_loss(target, outputs)`` (numpy, concatenated over a set), when present, gives
            the validation loss (:meth:`run_eval`).
        task : {"multiclass", "multilabel", "regression"}, optional
            Scores validation outputs with :func:`learners.metrics.evaluate`.
        metrics : callable, optional
            ``metrics(target, outputs) -> dict`` (numpy arrays), instead of ``task``.
        data_key : str, optional
            An identifier of ``train`` and ``val`` (a digest, :func:`learners.data.graph_data_digest`)
            recorded in the checkpoint: a resume over other data is refused (it would return, or go
            on training, the model of the data the checkpoint was written on). None: not checked.

        Returns
        -------
        Trainer
            ``self``, with ``history_``, ``best_epoch_`` and ``best_score_`` set.
        """
        if len(train) == 0:
            raise InputError("the training set is empty")
        if val is not None and len(val) == 0:
            raise InputError("the validation set is empty; pass None for no validation")
        if metrics is None and task is not None:
            metrics = lambda y, out: evaluate(task, y, out)  # noqa: E731
        if self.monitor != "loss" and (val is None or metrics is None):
            raise InputError(f"monitor={self.monitor!r} needs a validation set and a task or metrics function")
        model.to(device=self.device, dtype=self._dtype(model))
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = self._make_scheduler(optimizer)
        start, bad, best_state = 1, 0, None
        self._data_key = data_key
        # Taken before training: a model may change plain attributes as it trains (a warm-up ramp).
        self._model_record, self._step_record = _plain_record(model), _plain_record(step)
        self.history_, self.best_epoch_, self.best_score_ = [], None, None
        checkpoint = None if self.run_dir is None else self.run_dir / "checkpoint.pt"
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.resume and checkpoint is not None and checkpoint.exists():
            state = torch.load(checkpoint, map_location=self.device, weights_only=True)
            self._check_resume(state.get("settings"), model, checkpoint)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            start, bad, best_state = state["epoch"] + 1, state["bad_epochs"], state["best_state"]
            self.history_, self.best_epoch_, self.best_score_ = state["history"], state["best_epoch"], state["best_score"]
        if start > self.epochs or (self.patience is not None and bad >= self.patience):
            start = self.epochs + 1  # the checkpoint is of a finished run
        from tqdm.auto import tqdm

        bar = tqdm(range(start, self.epochs + 1), disable=not self.progress, desc="epochs", leave=False)
        for epoch in bar:
            tic = time.perf_counter()
            record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
            record["train_loss"] = self._train_epoch(model, optimizer, train, step, collate, epoch)
            score = record["train_loss"]
            if val is not None:
                val_loss, out, y = self.run_eval(model, val, step, collate)
                record["val_loss"] = val_loss
                if not math.isfinite(val_loss):  # before the metrics, which refuse non-finite outputs
                    raise TrainingDivergedError(f"non-finite validation loss {val_loss} at epoch {epoch}")
                if metrics is not None:
                    record.update({f"val_{k}": v for k, v in metrics(y, out).items()})
                key = f"val_{self.monitor}"
                if key not in record:
                    raise InputError(f"monitor {self.monitor!r} is not among the validation metrics {sorted(record)}")
                score = record[key]
            if not math.isfinite(score):
                raise TrainingDivergedError(f"monitored value {self.monitor} is {score} at epoch {epoch}")
            if self._improved(score):
                self.best_epoch_, self.best_score_, bad = epoch, score, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if self.run_dir is not None:
                    _atomic_torch_save(best_state, self.run_dir / "best.pt")
            else:
                bad += 1
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(score)
            elif scheduler is not None:
                scheduler.step()
            record["seconds"] = time.perf_counter() - tic
            self.history_.append(record)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "val_loss", f"val_{self.monitor}")})
            stop = self.patience is not None and bad >= self.patience
            if self.run_dir is not None:
                self._write_log()
                if stop or epoch == self.epochs or epoch % self.checkpoint_every == 0:
                    _atomic_torch_save(
                        {
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": None if scheduler is None else scheduler.state_dict(),
                            "epoch": epoch,
                            "bad_epochs": bad,
                            "best_state": best_state,
                            "best_epoch": self.best_epoch_,
                            "best_score": self.best_score_,
                            "history": self.history_,
                            "settings": self._settings(model),
                        },
                        checkpoint,
                    )
            for callback in self.callbacks:
                callback(self, record)
            if stop:
                break
        if self.restore_best and val is not None and best_state is not None:
            model.load_state_dict(best_state)
        return self
