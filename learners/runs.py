"""Training runs from a config file, and predictions from a finished run (behind ``matrep train/predict``).

A config (a TOML file, or the same content as a dict) names the dataset, the representation, the
model, the trainer settings and the split::

    task = "classification"          # or "regression", "multitask" or "binding" (below)
    seed = 0
    representation = "glycan"        # any registered featurizer of strings into graphs: glycan graphs
                                     # ("glycan", the default; "glycan_graph:linkage=anomer") or of
                                     # SMILES ("molecular_graph", "molecular_graph:hydrogens=true")
    [dataset]
    source = "glycowork"             # glycowork's shipped taxonomy table, "glycan_task", "qm9" or "csv"
    level = "Kingdom"
    min_class_size = 10
    subsample = 2000                 # optional
    # source = "qm9": target = "gap" (any reprs.datasets.QM9_TARGETS name; install matrep[bench])
    # source = "csv": path (relative to the config file's folder), column = "glycan" (default
    #                 "glycan", or "smiles" for molecules), label_column = "label"; rows with an
    #                 empty input or label are left out with a warning that counts them (a class
    #                 label "NA", "None" or "null" is a class; a regression label so written is missing)
    # source = "glycan_task": task = "glycosylation" (a reprs.glycan_tasks name: "taxonomy-<level>",
    #                 "glycosylation", "immunogenicity" with path = GLAMOUR's glycobase_immuno.txt;
    #                 "taxonomy", all eight levels, with task = "multitask" only; "binding" with
    #                 task = "binding" only)
    [model]
    kind = "gine"                    # any GraphModel kind; hidden, layers, readout, dropout,
                                     # composition (compgcn), num_bases (rgcn)
    [trainer]
    epochs = 100                     # batch_size, lr, weight_decay, schedule, patience, monitor,
                                     # clip_norm, device
    [split]
    fractions = [0.8, 0.1, 0.1]
    by = "stratified"                # "random", "hash" (isomorphic graphs together), "core" (glycans
                                     # sharing the residues near the reducing end; not molecules); seed;
                                     # "file": file = "split.csv.gz", name = "structure" (a split file of
                                     # learners.splits.write_split_file, keyed by the input strings);
                                     # "stratified" and "random" keep rows of one structure (two
                                     # spellings of a glycan, of a SMILES) in one part
    [multitask]                      # read with task = "multitask" only
    temperature = 2.0                # of learners.models.multitask_loss's balancing

With ``task = "multitask"`` (dataset ``source = "glycan_task"``, ``task = "taxonomy"``) one
:class:`learners.GNNMultiTaskClassifier` predicts every taxonomy level at once; ``metrics.json``
holds, under ``tasks``, the metrics of each level scored as below, and under ``mean_over_tasks``
their means. The default split is then ``"random"`` (a stratified split needs one label column).

With ``task = "binding"`` (``dataset.task = "binding"``) a :class:`learners.binding.BindingRegressor`
learns the binding value of (lectin, glycan) pairs; ``subsample`` counts pairs, the split is over
lectin sequences (``by = "random"``: whole sequences at random, or ``"file"``: a split file keyed by
sequence), and ``metrics.json`` holds Spearman's rho, MAE, RMSE and R^2 over the test pairs.
The validation lectins' pairs are scored every epoch: ``patience`` stops the run early, and the
weights of the best epoch on ``monitor`` (``"loss"``, ``"spearman"``, ``"mae"``, ``"rmse"`` or
``"r2"``) are kept. ``[trainer]`` keys it does not read (``schedule``, ``clip_norm``) and
``model.readout`` are refused. ``matrep predict`` does not read a binding run (it takes glycans
alone): load its ``estimator.pt`` with :func:`learners.estimators.load_estimator`.

With a split file (GlycanML's structure split puts whole clusters of glycans in the test part),
validation and test glycans may carry classes absent from training: validation keeps only the
classes training knows (for early stopping), and ``metrics.json`` scores the test part twice,
over all its glycans (``accuracy_all``: an unseen class is a wrong answer) and, with every metric,
over those of known classes (``n_test_unseen_class`` says how many were left out of that).

Every table is parsed into a typed schema (:mod:`reprs.config`): an unknown or misspelled key
(``subsampel``, ``taks``) is refused with a did-you-mean suggestion, a value of the wrong type with
its key path. ``[model]`` and ``[trainer]`` keys left out take the defaults of
:class:`learners.GNNClassifier`.

The run folder receives ``config.json`` (the config, with the dataset path made absolute), the
trainer's ``checkpoint.pt`` / ``best.pt`` / ``log.jsonl``, ``estimator.pt`` (the fitted estimator,
:func:`learners.estimators.save_estimator`), ``metrics.json`` (test-set metrics) and
``learning_curve.png``. A rerun with the same config into the same folder resumes from the
checkpoint; a different config, the same config over other data (``data.sha256`` keeps a digest of the
inputs, labels and split), or a folder that is not a run folder is refused, so that a folder never
describes a model it does not hold.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from learners.data import data_digest
from learners.errors import InputError
from reprs.config import Schema, config_file, did_you_mean, load_toml
from reprs.errors import ConfigError
from reprs.fileio import save_figure

__all__ = ["load_config", "train_run", "predict_run", "predict_file", "build_graphs", "input_column", "RunConfig"]


@dataclasses.dataclass(frozen=True)
class DatasetConfig(Schema):
    """The ``[dataset]`` table (the module docstring lists the keys of each source)."""

    TABLE = "dataset"
    source: Literal["glycowork", "glycan_task", "qm9", "csv"] = "glycowork"
    level: str = "Kingdom"
    min_class_size: int = 10
    target: str = "gap"
    path: str | None = None
    column: str | None = None
    label_column: str = "label"
    subsample: int | None = None
    task: str | None = None

    #: The keys each source reads (besides ``source`` and ``subsample``).
    SOURCE_KEYS = {"glycowork": ("level", "min_class_size"), "qm9": ("target",),
                   "csv": ("path", "column", "label_column"), "glycan_task": ("task", "path")}
    #: Glycan tasks with several label columns, read by ``task = "multitask"`` runs only.
    MULTI_LABEL_TASKS = ("taxonomy",)

    def check(self, where: str) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for keys in self.SOURCE_KEYS.values():
            for key in keys:
                if key not in self.SOURCE_KEYS[self.source] and getattr(self, key) != defaults[key]:
                    raise ConfigError(f"{where}.{key} is not read by source {self.source!r}; it reads "
                                      f"{', '.join(self.SOURCE_KEYS[self.source])}")
        if self.source == "csv" and self.path is None:
            raise ConfigError(f"{where} with source 'csv' needs 'path' (a CSV file)")
        if self.source == "glycan_task":
            from reprs.glycan_tasks import TASK_NAMES

            if self.task not in TASK_NAMES:
                raise ConfigError(f"{where}.task must be one of {', '.join(TASK_NAMES)}, got {self.task!r}")
            if (self.task == "immunogenicity") != (self.path is not None):
                raise ConfigError(f"{where}: the immunogenicity task, and only it, reads 'path' "
                                  "(GLAMOUR's glycobase_immuno.txt)")
        if self.subsample is not None and self.subsample < 1:
            raise ConfigError(f"{where}.subsample must be >= 1, got {self.subsample}")


@dataclasses.dataclass(frozen=True)
class ModelConfig(Schema):
    """The ``[model]`` table: :class:`learners.models.GraphModel` settings (None: the estimator's default)."""

    TABLE = "model"
    kind: str | None = None
    hidden: int | None = None
    layers: int | None = None
    readout: str | None = None
    dropout: float | None = None
    composition: Literal["mult", "sub", "corr"] | None = None
    num_bases: int | None = None


@dataclasses.dataclass(frozen=True)
class TrainerConfig(Schema):
    """The ``[trainer]`` table: :class:`learners.Trainer` settings (None: the estimator's default).

    ``clip_norm = false`` turns gradient clipping off (TOML has no null; a number is the largest
    gradient norm, left out the estimator's default)."""

    TABLE = "trainer"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    patience: int | None = None
    monitor: str | None = None
    clip_norm: float | bool | None = None
    device: str | None = None

    def check(self, where: str) -> None:
        if self.clip_norm is True:
            raise ConfigError(f"{where}.clip_norm = true is ambiguous: give the largest gradient norm (a number), "
                              "or false for no clipping")

    def given(self) -> dict[str, Any]:
        """The keyword arguments the table sets (``clip_norm = false`` as ``clip_norm=None``: no clipping)."""
        args = _given(self)
        if args.get("clip_norm") is False:
            args["clip_norm"] = None
        return args


@dataclasses.dataclass(frozen=True)
class SplitConfig(Schema):
    """The ``[split]`` table: train/validation/test fractions, the kind of split and its seed."""

    TABLE = "split"
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    by: Literal["stratified", "random", "hash", "core", "file"] | None = None
    seed: int | None = None
    file: str | None = None
    name: str = "structure"

    def check(self, where: str) -> None:
        if (self.by == "file") != (self.file is not None):
            raise ConfigError(f"{where}: by = 'file' and a 'file' go together (a split file of write_split_file)")
        if self.by != "file" and self.name != "structure":
            raise ConfigError(f"{where}.name = {self.name!r} names a split of a split file; it is read only with "
                              "by = 'file'")
        if self.by == "file":
            # the file's parts are the split: these were accepted and ignored without a word
            unset = {f.name: f.default for f in dataclasses.fields(self)}
            unread = [k for k in ("fractions", "seed") if getattr(self, k) != unset[k]]
            if unread:
                raise ConfigError(f"{where}.{unread[0]} is not read with by = 'file' (the split file gives the parts); "
                                  f"remove it, or split by 'random', 'stratified', 'hash' or 'core'")


@dataclasses.dataclass(frozen=True)
class MultitaskConfig(Schema):
    """The ``[multitask]`` table: settings of :class:`learners.GNNMultiTaskClassifier` beyond the model's."""

    TABLE = "multitask"
    temperature: float = 2.0

    def check(self, where: str) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"{where}.temperature must be > 0, got {self.temperature}")


@dataclasses.dataclass(frozen=True)
class RunConfig(Schema):
    """A whole ``matrep train`` config."""

    task: Literal["classification", "regression", "multitask", "binding"] = "classification"
    seed: int = 0
    representation: str = "glycan"
    dataset: DatasetConfig = dataclasses.field(default_factory=DatasetConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)
    multitask: MultitaskConfig = dataclasses.field(default_factory=MultitaskConfig)

    def check(self, where: str) -> None:
        binding = self.dataset.source == "glycan_task" and self.dataset.task == "binding"
        if binding != (self.task == "binding"):
            raise ConfigError("task = 'binding' and dataset source = 'glycan_task' with task = 'binding' go together "
                              "(a regression of (lectin, glycan) pairs)")
        if binding:
            from learners.binding import MONITORS

            unread = [f"trainer.{k}" for k in ("schedule", "clip_norm")
                      if getattr(self.trainer, k) is not None] + (["model.readout"] if self.model.readout else [])
            if unread:
                raise ConfigError(f"{', '.join(unread)} not read by task = 'binding' (learners.binding.BindingRegressor)")
            if self.trainer.monitor not in (None, *MONITORS):
                guess = did_you_mean(self.trainer.monitor, MONITORS)
                raise ConfigError(f"trainer.monitor = {self.trainer.monitor!r} is not a score of task = 'binding'"
                                  f"{f'; did you mean {guess!r}?' if guess else ''} known: {', '.join(MONITORS)}")
            if self.split.by not in (None, "random", "file"):
                raise ConfigError(f"split.by = {self.split.by!r} is not a split of lectins; task = 'binding' splits "
                                  "by 'random' (whole lectin sequences) or 'file' (keyed by sequence)")
        # The settings of one model kind only (the estimators take them and other kinds never read them).
        from learners.models import unread_option

        kind = self.model.kind or ("rgcn" if binding else "gine")  # the estimators' default kinds
        unread = unread_option(kind, [k for k in ("composition", "num_bases", "readout")
                                      if getattr(self.model, k) is not None])
        if unread:
            raise ConfigError(f"model.{unread}")
        several = self.dataset.source == "glycan_task" and self.dataset.task in DatasetConfig.MULTI_LABEL_TASKS
        if self.task == "multitask" and not several:
            raise ConfigError(f"task = 'multitask' needs a dataset with several label columns: source = 'glycan_task' "
                              f"with task = {' or '.join(map(repr, DatasetConfig.MULTI_LABEL_TASKS))}")
        if self.task == "multitask" and self.split.by == "stratified":
            raise ConfigError("split.by = 'stratified' needs one label column; a multi-task run splits by 'random' "
                              "(the default), 'hash', 'core' or 'file'")
        if several and self.task != "multitask":
            raise ConfigError(f"dataset.task = {self.dataset.task!r} has several label columns: it needs "
                              f"task = 'multitask' (or one level, 'taxonomy-kingdom', with task = {self.task!r})")
        if self.task != "multitask" and self.multitask != MultitaskConfig():
            raise ConfigError("the [multitask] table is read only with task = 'multitask'")


def load_config(config: str | os.PathLike | dict) -> dict:
    """The content of a TOML config (or a copy of a dict), checked against :class:`RunConfig`.

    A relative ``dataset.path`` is made absolute: from the config file's folder (a dict: the
    working folder), and the file must exist.

    Raises
    ------
    reprs.errors.ConfigError
        A missing or non-TOML file, a TOML syntax error, content the schema refuses, or a dataset
        path that names no file.
    """
    if isinstance(config, dict):
        cfg, base = json.loads(json.dumps(config)), Path.cwd()
    else:
        cfg, base = load_toml(config), Path(config).resolve().parent
    spec = RunConfig.from_config(cfg, where="")
    if spec.dataset.path is not None:
        cfg["dataset"]["path"] = str(config_file(spec.dataset.path, base, "dataset.path").resolve())
    if spec.split.file is not None:
        cfg["split"]["file"] = str(config_file(spec.split.file, base, "split.file").resolve())
    return cfg


def _given(table: Schema) -> dict[str, Any]:
    """The keys of a ``[model]`` / ``[trainer]`` table that the config sets."""
    return {k: v for k, v in dataclasses.asdict(table).items() if v is not None}


def _graph_featurizer(representation: str):
    """The registered featurizer of a run's representation; it must turn strings into networkx graphs."""
    from reprs.featurizers import get_featurizer

    featurizer = get_featurizer(representation)
    if featurizer.input_kind not in _INPUT_COLUMNS or featurizer.fixed_length \
            or featurizer.get_params().get("output", "networkx") != "networkx":
        raise InputError(
            f"representation {representation!r} does not turn strings into networkx graphs; use a graph "
            "featurizer of glycans ('glycan_graph', alias 'glycan') or of SMILES ('molecular_graph')"
        )
    return featurizer


#: The CSV column a run reads by default, by the featurizer's input kind.
_INPUT_COLUMNS = {"glycan": "glycan", "molecule": "smiles"}


def input_column(representation: str) -> str:
    """The default CSV column of a representation's input strings: ``"glycan"`` or ``"smiles"``."""
    return _INPUT_COLUMNS[_graph_featurizer(representation).input_kind]


def build_graphs(representation: str, strings: list[str]) -> tuple[list, list[tuple[int, str]]]:
    """Graphs of ``strings`` in a run's representation; ``None`` and a reason for those that fail.

    Parameters
    ----------
    representation : str
        The spec of a registered featurizer that turns strings into networkx graphs:
        ``"glycan"`` / ``"glycan_graph:linkage=anomer"`` (IUPAC-condensed glycans) or
        ``"molecular_graph"`` (SMILES).

    Returns
    -------
    graphs : list
        One networkx graph per string, ``None`` where it failed.
    failures : list of (int, str)
        Row and message of each failure.
    """
    from reprs.featurizers import FeaturizationWarning

    featurizer = _graph_featurizer(representation)
    with warnings.catch_warnings():  # the failures are returned, row by row
        warnings.simplefilter("ignore", FeaturizationWarning)
        graphs, failures = featurizer.featurize_many(strings, progress=False, errors="nan", return_failures=True)
    return graphs, [(f.index, f"{f.error}: {f.message}") for f in failures]


def _dataset(spec: DatasetConfig, representation: str, seed: int,
             classes: bool = True) -> tuple[list[str], np.ndarray, list[str]]:
    """Input strings, labels (``(n,)``, or ``(n, n_tasks)`` for a multi-label task) and the label columns.

    A CSV's labels are classes unless ``classes`` is False (a regression target): then a cell that
    pandas reads as missing ("NA", "null", "nan", "None", ...) is missing; a class so named is a
    class, and only an empty cell is missing (as :func:`reprs.datasets.glycan_graph_dataset` reads its CSV).
    """
    columns = [spec.label_column]
    if spec.source == "glycowork":
        from reprs.datasets import load_glycans

        table = load_glycans(spec.level, min_class_size=spec.min_class_size)
        strings, labels = table["glycan"].tolist(), table["label"].to_numpy()
    elif spec.source == "qm9":
        from reprs.datasets import load_qm9

        table = load_qm9([spec.target])
        strings, labels = table["smiles"].tolist(), table[spec.target].to_numpy()
    elif spec.source == "glycan_task":
        from reprs.glycan_tasks import load_task

        task = load_task(spec.task, immunogenicity_path=spec.path)
        columns = list(task.label_columns)
        labels = task.table[columns].to_numpy()
        strings, labels = task.table["glycan"].tolist(), labels[:, 0] if len(columns) == 1 else labels
    else:
        # pandas' default reads "NA", "None", "null", "N/A", "nan", ... as missing: rows of classes so
        # named were left out (with a warning that called them empty)
        table = pd.read_csv(spec.path, **({"keep_default_na": False, "na_values": [""]} if classes else {}))
        x_col = spec.column or input_column(representation)
        missing = {x_col, spec.label_column} - set(table.columns)
        if missing:
            raise InputError(f"columns {sorted(missing)} not in {spec.path}; it has {list(table.columns)}")
        empty = table[[x_col, spec.label_column]].isna()
        if empty.to_numpy().any():
            rows = np.flatnonzero(empty.any(axis=1).to_numpy())
            shown = "; ".join(f"row {r}: no {' and no '.join(empty.columns[empty.iloc[r].to_numpy()])}"
                              for r in rows[:3])
            more = f" (and {len(rows) - 3} more)" if len(rows) > 3 else ""
            words = "" if classes else " (or, for the regression target, a word pandas reads as missing: NA, null, nan)"
            warnings.warn(f"{len(rows)} of {len(table)} rows of {spec.path} are left out, their input or label "
                          f"being empty{words}: {shown}{more}", UserWarning, stacklevel=3)
            table = table[~empty.any(axis=1)]
        strings, labels = table[x_col].astype(str).tolist(), table[spec.label_column].to_numpy()
    n = spec.subsample
    if n is not None and n < len(strings):
        pick = np.sort(np.random.default_rng(seed).choice(len(strings), n, replace=False))
        strings, labels = [strings[i] for i in pick], labels[pick]
    return strings, labels, columns


def _structure_keys(graphs: list) -> list[str]:
    """One key per structure: a glycan's canonical IUPAC string (:func:`reprs.glycans.glycan_string`,
    the form :mod:`reprs.glycan_tasks` merges spellings by), a molecule's canonical SMILES (its graph's name)."""
    from reprs.glycans import glycan_string

    return [glycan_string(g) if "root" in g.graph else g.graph["name"] for g in graphs]


def _split(spec: SplitConfig, graphs: list, y: np.ndarray, classification: bool, seed: int, keys: list[str],
           subsampled: bool = False):
    """(train, val, test) row indices. Random and stratified splits keep the rows of one structure
    (two spellings of a glycan in glycowork's table, say) in one part: apart, the test part would
    hold structures trained on. Rows are split through the first row of each structure, so a
    dataset without repeats splits exactly as :func:`learners.splits.random_split` /
    :func:`~learners.splits.stratified_split` split it."""
    from learners.splits import graph_groups, group_split, random_split, read_split_file, stratified_split

    by = spec.by or ("stratified" if classification else "random")
    seed = seed if spec.seed is None else spec.seed
    if by == "file":
        return read_split_file(spec.file, keys, spec.name, subset=subsampled)
    if by in ("stratified", "random"):
        _, first, structure = np.unique(_structure_keys(graphs), return_index=True, return_inverse=True)
        order = np.argsort(first)  # the first rows in row order
        parts = (stratified_split(y[first[order]], spec.fractions, seed=seed) if by == "stratified"
                 else random_split(len(first), spec.fractions, seed=seed))
        part_of = np.empty(len(first), dtype=int)
        for k, part in enumerate(parts):
            part_of[order[part]] = k
        return tuple(np.flatnonzero(part_of[structure] == k) for k in range(len(parts)))
    return group_split(graph_groups(graphs, by=by), spec.fractions, seed=seed)


def _plot_history(history: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    for key in ("train_loss", "val_loss"):
        if key in history[0]:
            ax.plot(epochs, [r[key] for r in history], label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def _without_unread(recorded: dict) -> dict:
    """A run's recorded config without the keys it never read that this matrep refuses: ``split.fractions``
    and ``split.seed`` beside ``by = 'file'`` (refused since 2026-12-07; a folder written before may record
    them, and the same run's config now has to leave them out)."""
    split = recorded.get("split")
    if isinstance(split, dict) and split.get("by") == "file":
        return {**recorded, "split": {k: v for k, v in split.items() if k not in ("fractions", "seed")}}
    return recorded


def _claim(run_dir: Path, spec: RunConfig, cfg: dict, data: str) -> None:
    """Write ``config.json`` into a new or empty run folder; accept an existing run of the same config and data.

    A checkpoint resumes only the training its config describes (:class:`learners.Trainer` restores
    weights, optimizer and schedule, not the settings), so a different config is refused instead of
    being written over the record of the model the folder holds. The same config over other data (a
    CSV edited in place, another split file under the same name) is refused as well: ``data`` is the
    :func:`learners.data.data_digest` of the inputs, labels and split, kept in ``data.sha256`` (folders written
    before it was kept are not checked on it). A folder whose run never got to train (no checkpoint,
    no weights) takes the new config.
    """
    from reprs.fileio import atomic_write

    record, digest = run_dir / "config.json", run_dir / "data.sha256"
    if record.is_file():
        try:
            old = RunConfig.from_config(_without_unread(json.loads(record.read_text())), where="")
        except (ConfigError, ValueError) as err:
            raise InputError(f"{str(run_dir)!r} holds a run whose config.json this matrep cannot read ({err}); "
                             "train into a new run folder") from None
        # The device may change between sessions: the checkpoint is loaded onto the new one.
        differ = _differences(old, spec) - {"trainer.device"}
        trained = any((run_dir / name).exists() for name in ("checkpoint.pt", "best.pt", "estimator.pt"))
        if differ and trained:
            raise InputError(f"{str(run_dir)!r} holds a run of a different config (it differs in "
                             f"{', '.join(sorted(differ))}); train into a new run folder, or remove this one")
        if trained and digest.is_file() and digest.read_text().strip() != data:
            raise InputError(f"{str(run_dir)!r} holds a run of the same config over other data (its dataset, "
                             "labels or split changed since: the resumed model would mix the two); train into a new "
                             "run folder, or remove this one")
        if not differ:
            if not trained:
                atomic_write(digest, data + "\n")
            return
    elif run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise InputError(f"{str(run_dir)!r} exists and is not a run folder (no config.json); refusing to write "
                         "into it: give a new or empty folder")
    # config.json first: a run stopped between the two writes leaves a run folder that has not trained, which
    # the next run takes over and completes (the other order left a folder refused as "not a run folder")
    atomic_write(record, json.dumps(cfg, indent=1))
    atomic_write(digest, data + "\n")


def _differences(a: RunConfig, b: RunConfig) -> set[str]:
    """Key paths whose values differ between two configs (defaults filled in)."""
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    out = set()
    for key in da:
        if isinstance(da[key], dict):
            out |= {f"{key}.{k}" for k in da[key] if da[key][k] != db[key][k]}
        elif da[key] != db[key]:
            out.add(key)
    return out


def train_run(config: dict | str | os.PathLike, run_dir: str | os.PathLike, *, progress: bool = True) -> dict:
    """Train the model a config describes; write the run folder; return the test metrics.

    Parameters
    ----------
    config : dict or path
        A TOML file or its content (the module docstring lists the keys).
    run_dir : path
        A new or empty folder, or the folder of an earlier run of the same config (resumed).

    Raises
    ------
    reprs.errors.ConfigError
        An unknown or misspelled key, a value of the wrong type, a missing file.
    InputError
        A run folder that holds another config's run, or a dataset without usable inputs.
    """
    from learners import GNNClassifier, GNNMultiTaskClassifier, GNNRegressor
    from learners.estimators import save_estimator
    from learners.metrics import evaluate
    from reprs.fileio import atomic_write

    cfg = load_config(config)
    spec = RunConfig.from_config(cfg, where="")
    seed = spec.seed
    run_dir = Path(run_dir)
    representation = spec.representation
    if spec.task == "binding":
        return _train_binding(spec, cfg, run_dir, progress)
    classification, multitask = spec.task == "classification", spec.task == "multitask"
    if multitask:
        cls = partial(GNNMultiTaskClassifier, temperature=spec.multitask.temperature)
    else:
        cls = GNNClassifier if classification else GNNRegressor
    estimator = cls(**_given(spec.model), **spec.trainer.given(), seed=seed, run_dir=str(run_dir), resume=True,
                    progress=progress)
    strings, labels, columns = _dataset(spec.dataset, representation, seed, classes=spec.task != "regression")
    graphs, failures = build_graphs(representation, strings)
    keep = [i for i, g in enumerate(graphs) if g is not None]
    if not keep:
        raise InputError(f"no input of the dataset could be turned into a {representation!r} graph")
    graphs, y = [graphs[i] for i in keep], labels[keep]
    train, val, test = _split(spec.split, graphs, y, classification, seed, [strings[i] for i in keep],
                              spec.dataset.subsample is not None)
    pick = lambda idx: [graphs[i] for i in idx]  # noqa: E731
    metrics: dict[str, Any] = {"n_train": len(train), "n_val": len(val), "n_test": len(test), "n_unparsed": len(failures)}
    if multitask:
        from learners.splits import check_split_labels

        for k, column in enumerate(columns):
            check_split_labels(y[:, k], (train,), names=("train",), column=column)
        _claim(run_dir, spec, cfg, data_digest(strings, labels, keep, train, val, test))
        # Validation labels of classes training lacks are left out of that level's loss by the estimator.
        estimator.fit(pick(train), pd.DataFrame(y[train], columns=columns),
                      val=(pick(val), y[val]) if len(val) else None)
        save_estimator(estimator, run_dir / "estimator.pt")
        if len(test):
            metrics.update(_multitask_metrics(estimator, pick(test), y[test]))
        atomic_write(run_dir / "metrics.json", json.dumps(metrics, indent=1))
        _plot_history(estimator.history_, run_dir / "learning_curve.png")
        return metrics
    if classification:
        from learners.splits import check_split_labels

        check_split_labels(y, (train,), names=("train",), column=spec.dataset.label_column)
        known = np.isin(y, np.unique(y[train]))
        val = val[known[val]]
        metrics["n_test_unseen_class"] = int((~known[test]).sum())
        if len(test) and (~known[test]).any():
            metrics["accuracy_all"] = None  # filled after fitting
    _claim(run_dir, spec, cfg, data_digest(strings, labels, keep, train, val, test))
    estimator.fit(pick(train), y[train], val=(pick(val), y[val]) if len(val) else None)
    save_estimator(estimator, run_dir / "estimator.pt")
    if "accuracy_all" in metrics:
        metrics["accuracy_all"] = float(np.mean(estimator.predict(pick(test)) == y[test]))
        test = test[known[test]]
    if len(test):
        out = estimator._outputs(pick(test))
        target = np.searchsorted(estimator.classes_, y[test]) if classification and estimator.task_ == "multiclass" else y[test]
        if not classification:
            out = out * estimator.y_std_ + estimator.y_mean_
        metrics.update(evaluate(estimator.task_, target, out))
    atomic_write(run_dir / "metrics.json", json.dumps(metrics, indent=1))
    _plot_history(estimator.history_, run_dir / "learning_curve.png")
    return metrics


def _train_binding(spec: RunConfig, cfg: dict, run_dir: Path, progress: bool) -> dict:
    """:func:`train_run` of a ``task = "binding"`` config: pairs of lectins and glycans, split by lectin."""
    from scipy.stats import spearmanr

    from learners.binding import BindingRegressor
    from learners.estimators import save_estimator
    from learners.metrics import evaluate
    from reprs.fileio import atomic_write
    from reprs.glycan_tasks import load_task, sequence_composition

    estimator = BindingRegressor(**_given(spec.model), **spec.trainer.given(), seed=spec.seed, run_dir=str(run_dir),
                                 resume=True, progress=progress)
    table = load_task("binding").table
    n = spec.dataset.subsample
    if n is not None and n < len(table):
        table = table.iloc[np.sort(np.random.default_rng(spec.seed).choice(len(table), n, replace=False))]
    glycans = sorted(table["glycan"].unique())
    graphs, failures = build_graphs(spec.representation, glycans)
    index = {g: i for i, g in enumerate(g for g, graph in zip(glycans, graphs) if graph is not None)}
    graphs = [graph for graph in graphs if graph is not None]
    parsed = table["glycan"].isin(index).to_numpy()
    table = table[parsed].reset_index(drop=True)
    if table.empty:
        raise InputError(f"no glycan of the binding pairs could be turned into a {spec.representation!r} graph")
    sequences = sorted(table["sequence"].unique())
    row = {q: i for i, q in enumerate(sequences)}
    pairs = np.stack([table["glycan"].map(index).to_numpy(), table["sequence"].map(row).to_numpy()], axis=1)
    y = table["label"].to_numpy(dtype=float)
    train, val, test = _lectin_split(spec.split, pairs[:, 1], sequences, spec.seed, subsampled=n is not None)
    if len(train) == 0:
        raise InputError("the train part of the binding split holds no pair")
    metrics: dict[str, Any] = {"n_train": len(train), "n_val": len(val), "n_test": len(test),
                               "n_unparsed": int((~parsed).sum()), "n_unparsed_glycans": len(failures),
                               "n_lectin_sequences": len(sequences)}
    _claim(run_dir, spec, cfg, data_digest(glycans, sequences, pairs, y, train, val, test))
    estimator.fit(graphs, sequence_composition(sequences), pairs[train], y[train],
                  val=(pairs[val], y[val]) if len(val) else None)
    save_estimator(estimator, run_dir / "estimator.pt")
    if len(test):
        pred = estimator.predict(pairs[test])
        metrics.update(evaluate("regression", y[test], pred))
        metrics["spearman"] = float(spearmanr(y[test], pred)[0]) if len(test) > 1 else None
    atomic_write(run_dir / "metrics.json", json.dumps(metrics, indent=1))
    _plot_history(estimator.trainer_.history_, run_dir / "learning_curve.png")
    return metrics


def _lectin_split(spec: SplitConfig, lectin: np.ndarray, sequences: list[str], seed: int, *,
                  subsampled: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) pair indices with every pair of a lectin sequence in one part.

    ``lectin`` is each pair's row in ``sequences``; ``spec.by = "file"`` reads the parts of the
    sequences from a split file keyed by sequence, otherwise whole sequences are drawn at random.
    """
    from learners.splits import group_split, read_split_file

    if spec.by != "file":
        return group_split(lectin, spec.fractions, seed=seed if spec.seed is None else spec.seed)
    part_of = np.empty(len(sequences), dtype=int)
    for k, part in enumerate(read_split_file(spec.file, sequences, spec.name, subset=subsampled)):
        part_of[part] = k
    return tuple(np.flatnonzero(part_of[lectin] == k) for k in range(3))


def _multitask_metrics(estimator, graphs: list, y: np.ndarray) -> dict[str, Any]:
    """Test metrics of a multi-task classifier, level by level, scored as a single-level run's.

    Each level counts its test glycans of classes training never saw (``n_test_unseen_class``),
    scores ``accuracy_all`` over all of them (an unseen class is a wrong answer) and every metric of
    :func:`learners.metrics.evaluate` over the others; ``mean_over_tasks`` averages each metric over
    the levels that have it.
    """
    from learners.metrics import evaluate

    out = estimator._outputs(graphs)
    bounds = np.cumsum([0, *(len(c) for c in estimator.classes_)])
    pred = estimator.predict(graphs)
    tasks: dict[str, dict[str, Any]] = {}
    for k, (name, classes) in enumerate(zip(estimator.task_names_, estimator.classes_)):
        known = np.isin(y[:, k], classes)
        scores: dict[str, Any] = {"n_test_unseen_class": int((~known).sum()),
                                  "accuracy_all": float(np.mean(pred[:, k] == y[:, k]))}
        if known.any():
            scores.update(evaluate("multiclass", np.searchsorted(classes, y[known, k]),
                                   out[known, bounds[k]:bounds[k + 1]]))
        tasks[name] = scores
    names = sorted({key for scores in tasks.values() for key in scores if key != "n_test_unseen_class"})
    means = {key: float(np.mean([s[key] for s in tasks.values() if key in s])) for key in names}
    return {"tasks": tasks, "mean_over_tasks": means}


def _run_representation(run_dir: str | os.PathLike) -> str:
    """The ``representation`` of a finished run's ``config.json``, the one key prediction reads.

    Not the whole record through :class:`RunConfig`: a record written by an earlier matrep may hold
    keys that this one refuses in a new config as never read (``split.seed`` beside ``by = 'file'``,
    refused since 2026-12-07), and they do not change how the trained model reads its inputs.
    """
    representation = json.loads((Path(run_dir) / "config.json").read_text()).get("representation",
                                                                                 RunConfig.representation)
    if not isinstance(representation, str):
        raise InputError(f"{str(run_dir)!r}: config.json's representation must be a string, got {representation!r}")
    return representation


def predict_run(run_dir: str | os.PathLike, inputs: list[str], output: str | os.PathLike | None = None) -> pd.DataFrame:
    """Predictions (and class probabilities) of a finished run for glycan or SMILES strings.

    The strings are read in the run's representation (its ``config.json``). Those that cannot be
    read get an ``error`` message and no prediction. A multi-task run writes ``prediction_<task>``
    and ``probability_<task>`` (of the predicted class) for each of its tasks. With ``output`` the table is also written as
    CSV.
    """
    from learners.binding import BindingRegressor
    from learners.estimators import GNNMultiTaskClassifier, load_estimator

    path = Path(run_dir) / "estimator.pt"
    if not path.is_file():
        raise InputError(f"{str(path)!r} not found: is {str(run_dir)!r} a finished run folder?")
    estimator = load_estimator(path)
    if isinstance(estimator, BindingRegressor):
        raise InputError(f"{str(run_dir)!r} is a binding run: it predicts (lectin, glycan) pairs, and matrep predict "
                         "reads glycans alone; load its estimator.pt with learners.estimators.load_estimator and call "
                         "predict(pairs, graphs, sequence_composition(sequences))")
    representation = _run_representation(run_dir)
    graphs, failures = build_graphs(representation, list(inputs))
    table = pd.DataFrame({"input": list(inputs), "prediction": None, "error": ""})
    for row, message in failures:
        table.loc[row, "error"] = message
    ok = [i for i, g in enumerate(graphs) if g is not None]
    if ok:
        chosen = [graphs[i] for i in ok]
        pred = estimator.predict(chosen)
        if isinstance(estimator, GNNMultiTaskClassifier):
            # One column per task, and the probability of the predicted class (a level may have
            # thousands of classes: one column each would drown the table).
            table = table.drop(columns="prediction")
            for k, (name, proba) in enumerate(zip(estimator.task_names_, estimator.predict_proba(chosen))):
                table.loc[ok, f"prediction_{name}"] = pred[:, k]
                table.loc[ok, f"probability_{name}"] = proba.max(axis=1)
        else:
            table.loc[ok, "prediction"] = list(pred) if pred.ndim == 1 else [list(p) for p in pred]
            if hasattr(estimator, "predict_proba"):
                proba = estimator.predict_proba(chosen)
                for j, c in enumerate(estimator.classes_):
                    table.loc[ok, f"proba_{c}"] = proba[:, j]
    if output is not None:
        from reprs.fileio import atomic_write

        atomic_write(output, table.to_csv(index=False))
    return table


def predict_file(run_dir: str | os.PathLike, path: str | os.PathLike, *, column: str | None = None,
                 output: str | os.PathLike | None = None) -> pd.DataFrame:
    """:func:`predict_run` on the strings of a file: a CSV column, or one string per line of a text file.

    Parameters
    ----------
    column : str, optional
        The CSV column; by default the one the run's representation reads (``glycan`` or ``smiles``).
        Refused for a text file (it has no columns).

    Raises
    ------
    InputError
        A missing or empty file, a CSV without the column (the message names the file), or a
        ``column`` for a text file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file {str(path)!r} not found")
    if column is not None and path.suffix.lower() != ".csv":
        raise InputError(f"--column {column!r} names a CSV column, but {path} is read as a text file of one input per "
                         "line (only a .csv file has columns)")
    if path.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            raise InputError(f"{path} is empty: it needs a header line and one row per input") from None
        if column is None:
            column = input_column(_run_representation(run_dir))
        if column not in table.columns:
            raise InputError(f"{path} has no column {column!r} (--column); columns: {list(table.columns)}")
        inputs = table[column].astype(str).tolist()
    else:
        inputs = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not inputs:
        raise InputError(f"{path} holds no inputs")
    return predict_run(run_dir, inputs, output)
