"""``matrep active CONFIG.toml -o OUT``: the active-learning loop (:mod:`learners.active`) from a config file.

A config names the labelled starting data, the ground truth, the committee, its training and the
loop::

    seed = 0
    [data]
    train = "train.extxyz"        # labelled frames (energy and forces), any file reprs.fileio.read_frames
    test = "test.extxyz"          # reads; relative paths are read from the config file's folder
    [labeler]                     # the ground truth: a [potential] table of `matrep simulate`
    kind = "tblite"               # "tblite" (GFN-xTB), "pyscf", "ase" (any ASE calculator), "lj", "morse", ...
    method = "GFN2-xTB"
    [committee]
    kind = "painn"                # "painn" or "schnet"; members (default 5); dtype ("float32", "float64");
    members = 5                   # every other key goes to the model class (cutoff, n_features,
                                  # repulsion = "zbl", ...)
    cutoff = 4.0
    n_features = 16
    # initial = "gen0.pt"         # optional: a committee (save_potential) already trained on data.train,
                                  # used as generation 0's; its kind and member count must match
    [trainer]                     # learners.Trainer settings (epochs, batch_size, lr, ...), as in `matrep train`
    epochs = 80
    [fine_tune]                   # optional, the same keys: generations > 0 continue training the
    epochs = 40                   # previous committee with these settings instead of a fresh one
    [loss]                        # optional: PotentialLoss weights w_energy, w_forces
    [loop]                        # learners.active.ActiveLearning settings (left out: its defaults)
    sampler = "adversarial"       # "adversarial", "md" or "random"
    generations = 3
    per_generation = 8
    kT = 0.05                     # eV per atom
    new_label_weight = 4.0        # loss weight of the loop's labels (the authors' 4x); default 1
    max_label_energy = 1.84       # eV above the lowest training energy: no labels above it; default none

``OUT`` receives what :class:`learners.active.ActiveLearning` writes (``labels.db``, ``log.json``),
``config.json`` (the config, paths made absolute), ``committee.pt`` (the last generation's
committee, :func:`learners.potentials.save_potential`, loadable as ``[potential] kind = "nn"``)
and ``errors.png`` (test force and energy errors against the labels used). Rerunning the same
config resumes after the last finished generation; a config that differs in anything but
``loop.generations`` is refused, so a folder never mixes two runs, and so are fewer generations
than the folder's run has labelled (``config.json`` also records
the SHA-256 of the ``committee.initial`` file, so a changed file is refused too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

from learners.errors import InputError
from learners.runs import TrainerConfig
from learners.samplers import foreign_sampler_setting, foreign_settings
from reprs.config import Schema, check_keys, config_file, describe, load_toml
from reprs.errors import ConfigError
from reprs.fileio import atomic_write, read_frames, save_figure

if TYPE_CHECKING:
    from learners.active import ActiveLearning

__all__ = ["ActiveConfig", "load_config", "run_active"]

MODELS = ("painn", "schnet")
OWN_KEYS = ("kind", "members", "dtype", "initial")    # [committee] keys that are not the model's


@dataclasses.dataclass(frozen=True)
class DataConfig(Schema):
    """The ``[data]`` table: the labelled starting frames and the held-out test frames (file paths)."""

    TABLE = "data"
    train: str
    test: str


@dataclasses.dataclass(frozen=True)
class CommitteeConfig(Schema):
    """The ``[committee]`` table: the model ``kind``, ``members``, ``dtype``, an optional ``initial``
    committee file (:func:`learners.potentials.save_potential`) and the model's keyword arguments."""

    TABLE = "committee"
    kind: Literal["painn", "schnet"] = "painn"
    members: int = 5
    dtype: Literal["float32", "float64"] = "float32"
    initial: str | None = None
    params: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | CommitteeConfig, *, where: str | None = None) -> CommitteeConfig:
        where = cls.TABLE if where is None else where
        if isinstance(table, CommitteeConfig):
            return table
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table, got {describe(table)}")
        own = {k: table[k] for k in OWN_KEYS if k in table}
        spec = cls.build(where, **own, params={k: v for k, v in table.items() if k not in own})
        model = spec.model_class()
        named = [n for n, p in inspect.signature(model).parameters.items()
                 if n not in ("seed", "device", "dtype") and p.kind is not inspect.Parameter.VAR_KEYWORD]
        check_keys(spec.params, [*OWN_KEYS, *named], where)
        return spec

    def check(self, where: str) -> None:
        if self.members < 2:
            raise ConfigError(f"{where}.members must be >= 2 (a committee's spread needs two models), "
                              f"got {self.members}")

    def model_class(self):
        from learners.potentials import PaiNN, SchNet

        return {"painn": PaiNN, "schnet": SchNet}[self.kind]


@dataclasses.dataclass(frozen=True)
class LossConfig(Schema):
    """The ``[loss]`` table: :class:`learners.potentials.PotentialLoss` weights."""

    TABLE = "loss"
    w_energy: float = 1.0
    w_forces: float = 1.0


@dataclasses.dataclass(frozen=True)
class LoopConfig(Schema):
    """The ``[loop]`` table: :class:`learners.active.ActiveLearning` settings (None: its default)."""

    TABLE = "loop"
    generations: int = 3
    per_generation: int = 10
    sampler: Literal["adversarial", "md", "random"] = "adversarial"
    candidates: int | None = None
    percentile: float | None = None
    min_rmsd: float | None = None
    cluster: bool | None = None
    kT: float | None = None
    attack_steps: int | None = None
    attack_lr: float | None = None
    temperature: float | None = None
    md_steps: int | None = None
    timestep: float | None = None
    displacement: float | None = None
    new_label_weight: float | None = None
    max_label_energy: float | None = None

    def check(self, where: str) -> None:
        foreign = foreign_sampler_setting(self.sampler, dataclasses.asdict(self))
        if foreign:
            name, owner = foreign
            raise ConfigError(f"{where}.{name} is read by sampler = {owner!r} only, not by sampler = "
                              f"{self.sampler!r}; remove it or set sampler = {owner!r}")
        for name in ("new_label_weight", "max_label_energy"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{where}.{name} must be a finite number > 0, got {value}")


@dataclasses.dataclass(frozen=True)
class ActiveConfig(Schema):
    """A whole ``matrep active`` config."""

    data: DataConfig
    labeler: dict
    seed: int = 0
    committee: CommitteeConfig = dataclasses.field(default_factory=CommitteeConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    fine_tune: TrainerConfig | None = None
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    loop: LoopConfig = dataclasses.field(default_factory=LoopConfig)

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | ActiveConfig, *, where: str | None = None) -> ActiveConfig:
        if isinstance(table, ActiveConfig):
            return table
        if not isinstance(table, Mapping):
            raise ConfigError(f"the config must be a table, got {describe(table)}")
        fields = [f.name for f in dataclasses.fields(cls)]
        check_keys(table, fields, "")
        for name in ("data", "labeler"):
            if name not in table:
                raise ConfigError(f"the config needs a [{name}] table")
        parts = {name: kind.from_config(table[name], where=name) for name, kind in
                 (("data", DataConfig), ("committee", CommitteeConfig), ("trainer", TrainerConfig),
                  ("fine_tune", TrainerConfig), ("loss", LossConfig), ("loop", LoopConfig)) if name in table}
        if not isinstance(table["labeler"], Mapping) or "kind" not in table["labeler"]:
            raise ConfigError("labeler must be a [potential]-style table with a 'kind' ('tblite', 'pyscf', "
                              "'ase', 'lj', 'morse', ...)")
        return cls.build("", **{**table, **parts})


def load_config(config: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """The content of a config (a TOML file, or a dict), checked, with the file paths (data, initial
    committee) made absolute.

    A relative path is read from the config file's folder (a dict: the working folder); the files
    must exist.

    Raises
    ------
    reprs.errors.ConfigError
        A missing or non-TOML file, content the schema refuses, or a data path that names no file.
    """
    if isinstance(config, Mapping):
        cfg, base = json.loads(json.dumps(config)), Path.cwd()
    else:
        cfg, base = load_toml(config), Path(config).resolve().parent
    ActiveConfig.from_config(cfg)
    for key in ("train", "test"):
        cfg["data"][key] = str(config_file(cfg["data"][key], base, f"data.{key}").resolve())
    if cfg.get("committee", {}).get("initial") is not None:
        cfg["committee"]["initial"] = str(config_file(cfg["committee"]["initial"], base, "committee.initial").resolve())
    cfg["labeler"] = {**cfg["labeler"], "_base": str(base)}
    return cfg


def _claim(out: Path, cfg: dict, loop: ActiveLearning) -> None:
    """Record ``cfg`` in ``out/config.json``, or accept the run already there if only ``loop.generations`` differs
    and ``loop`` may resume it."""
    initial = cfg.get("committee", {}).get("initial")
    if initial is not None:
        cfg = {**cfg, "initial_sha256": hashlib.sha256(Path(initial).read_bytes()).hexdigest()}
    record = out / "config.json"
    if record.is_file():
        old = json.loads(record.read_text())

        def core(c):
            # Another sampler's settings were never read: a record written before they were refused
            # (2026-12-07) may hold them, and the same run's config now has to leave them out.
            loop = c.get("loop", {})
            unread = foreign_settings(loop.get("sampler", LoopConfig.sampler))
            return {**c, "loop": {k: v for k, v in loop.items() if k != "generations" and k not in unread}}

        if core(old) != core(cfg):
            raise InputError(f"{str(out)!r} holds an active-learning run of another config; write to a new folder "
                             f"(only loop.generations may change to extend a run)")
    loop._saved_log()   # fewer generations than the run holds: refused before the record says otherwise
    atomic_write(record, json.dumps(cfg, indent=1))


def _plot(log: list[dict], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3))
    labels = [g["labels_used"] for g in log]
    for k, (key, unit) in enumerate((("forces_mae", "meV/Å"), ("energy_mae", "meV/atom"))):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.plot(labels, [1000 * g[key] for g in log], "o-")
        ax.set_xlabel("labels used")
        ax.set_ylabel(f"test {key.replace('_', ' ')} ({unit})")
    fig.tight_layout()
    return save_figure(fig, path)


def run_active(config: str | os.PathLike | Mapping[str, Any], out: str | os.PathLike, *,
               progress: bool | None = None) -> dict[str, Any]:
    """Run (or resume) the active-learning loop a config describes into the folder ``out``.

    Returns the last generation's log entry (test errors, labels used) with the paths written.

    Raises
    ------
    reprs.errors.ConfigError
        A config the schemas refuse (unknown keys with a did-you-mean, wrong types, missing files,
        a labeler kind that does not exist).
    InputError
        ``out`` holds a run of another config, or the frames are unlabelled.
    """
    import torch

    from learners.active import ActiveLearning
    from learners.potentials import Committee, PotentialLoss
    from learners.trainer import Trainer
    from sims.generate import build_potential

    cfg = load_config(config)
    spec = ActiveConfig.from_config(cfg)
    dtype = {"float32": torch.float32, "float64": torch.float64}[spec.committee.dtype]
    labeler_table = {k: v for k, v in cfg["labeler"].items() if k != "_base"}
    # Labels are reference data: a classical ground truth computes in float64 whatever the committee's dtype.
    labeler = build_potential({"potential": labeler_table, "_base": cfg["labeler"]["_base"]}, dtype=torch.float64)
    model = spec.committee.model_class()

    def factory(seed: int) -> Committee:
        return Committee.build(model, k=spec.committee.members, seed=seed, dtype=dtype, **spec.committee.params)

    initial = None if spec.committee.initial is None else _initial_committee(spec.committee, dtype)
    out = Path(out)

    def trainer(table) -> Trainer:
        return Trainer(**table.given(), eval_grad=True, dtype=dtype, seed=spec.seed)

    loop_args = {k: v for k, v in dataclasses.asdict(spec.loop).items() if v is not None}
    loop = ActiveLearning(factory, labeler, read_frames(spec.data.train), read_frames(spec.data.test),
                          seed=spec.seed, workdir=out, trainer=trainer(spec.trainer),
                          fine_tune=None if spec.fine_tune is None else trainer(spec.fine_tune),
                          initial_committee=initial,
                          loss=PotentialLoss(w_energy=spec.loss.w_energy, w_forces=spec.loss.w_forces),
                          **loop_args)
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, cfg, loop)
    loop.run(progress=progress)
    _plot(loop.log_, out / "errors.png")
    last = {k: v for k, v in loop.log_[-1].items() if k not in ("failed", "skipped", "labels_mark")}
    return {**last, "labels": str(loop.labels_path), "log": str(loop.log_path),
            "committee": str(loop.committee_path), "plot": str(out / "errors.png")}


def _initial_committee(spec: CommitteeConfig, dtype):
    """The ``committee.initial`` file as a committee in ``dtype``, checked against the ``[committee]`` table."""
    from learners.potentials import Committee, load_potential

    committee = load_potential(spec.initial, dtype=dtype)
    kinds = sorted({type(m).__name__.lower() for m in committee.models}) if isinstance(committee, Committee) \
        else [type(committee).__name__.lower()]
    members = len(committee.models) if isinstance(committee, Committee) else 1
    if kinds != [spec.kind] or members != spec.members:
        raise ConfigError(f"committee.initial = {spec.initial!r} holds {members} {'/'.join(kinds)} model(s), but "
                          f"[committee] says {spec.members} of kind {spec.kind!r}; make them agree")
    return committee
