"""Featurize whole inputs on disk and write the result atomically (the work behind ``matrep featurize``).

Inputs: a CSV/TSV table with a column of SMILES (or formulas, or anything the featurizer accepts as
text), a folder or list of structure files (anything ``ase.io.read`` reads: CIF, POSCAR, extxyz,
...; every frame of a multi-frame file), or an ASE database (``.db`` SQLite file or a
``postgresql://`` address). Outputs by suffix:

``.npz``
    ``X`` (dense), or with ``sparse=True`` the CSR arrays ``data``, ``indices``, ``indptr``,
    ``format``, ``shape`` (readable by ``scipy.sparse.load_npz``); plus ``ids``, ``feature_labels``,
    ``spec``, ``failed_ids``, ``failed_reasons``. Per-site descriptors add ``row_splits``: rows
    ``row_splits[k]:row_splits[k+1]`` of ``X`` belong to object ``k``.
``.npy``
    The dense matrix only, rows in input order (failed rows dropped).
``.parquet``
    One row per object: the id column, then one column per feature label (needs ``pyarrow``).
``.pt`` / ``.pkl`` / ``.jsonl``
    Graph outputs: the list of PyG ``Data`` (``torch.save``) or of networkx graphs (pickle, or
    :func:`reprs.graphio.write_graphs`' JSON lines, which :func:`reprs.graphio.read_graphs` and
    ``matrep similar --dataset`` read), with ``ids`` attached as the graph attribute/field ``"id"``.

Nothing is written unless every object succeeded or ``skip_errors=True``; the file appears only
complete (written to a temporary file in the same folder, then renamed).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import networkx as nx
import numpy as np

from reprs.errors import FeaturizationError, InputError
from reprs.featurizers.base import FeaturizationWarning, Featurizer
from reprs.featurizers.registry import get_featurizer
from reprs.fileio import atomic_open, is_database, read_frames

__all__ = ["FeaturizeSummary", "featurize_inputs", "read_inputs"]

_TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
_OUT_SUFFIXES = (".npz", ".npy", ".parquet", ".pt", ".pkl", ".jsonl")
#: Column names tried, in order, when no column is given, by the featurizer's input kind.
_DEFAULT_COLUMNS = {
    "molecule": ("smiles", "canonical_smiles", "mol"),
    "composition": ("formula", "composition"),
    "glycan": ("glycan", "iupac"),
}
_ID_COLUMNS = ("id", "name", "identifier")


@dataclass
class FeaturizeSummary:
    """What :func:`featurize_inputs` did.

    Attributes
    ----------
    out : pathlib.Path
        The file written.
    n_inputs : int
        Objects read (including those that failed).
    n_written : int
        Objects featurized and written.
    n_features : int
        Features per object (per site, per edge for graphs).
    failures : list of (str, str)
        ``(id, reason)`` of each object skipped (only with ``skip_errors``).
    spec : str
        The featurizer, as text.
    """

    out: Path
    n_inputs: int
    n_written: int
    n_features: int
    spec: str
    failures: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"featurized {self.n_written} of {self.n_inputs} objects with {self.spec} "
            f"({self.n_features} features) -> {self.out}"
        ]
        if self.failures:
            lines.append(f"{len(self.failures)} skipped:")
            lines += [f"  {ident}: {reason}" for ident, reason in self.failures]
        return "\n".join(lines)


def _is_table(path: Path) -> bool:
    return any(path.name.lower().endswith(s) for s in _TABLE_SUFFIXES)


def _read_table(path: Path, kind: str, column: str | None, id_column: str | None):
    import pandas as pd

    sep = "\t" if ".tsv" in path.name.lower() else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read table {path}: {err}") from err
    lower = {c.lower(): c for c in table.columns}
    if column is None:
        candidates = [lower[c] for c in _DEFAULT_COLUMNS.get(kind, ()) if c in lower]
        if not candidates:
            raise InputError(
                f"{path}: no column given and none of {list(_DEFAULT_COLUMNS.get(kind, ()))} found; "
                f"columns: {list(table.columns)} (choose one with column= / --column)"
            )
        column = candidates[0]
    elif column not in table.columns:
        raise InputError(f"{path}: no column {column!r}; columns: {list(table.columns)}")
    if id_column is None:
        id_column = next((lower[c] for c in _ID_COLUMNS if c in lower), None)
    elif id_column not in table.columns:
        raise InputError(f"{path}: no id column {id_column!r}; columns: {list(table.columns)}")
    ids = table[id_column].tolist() if id_column else [str(i) for i in range(len(table))]
    return [(str(i), value, None) for i, value in zip(ids, table[column].tolist())]


def _read_structure_file(path: Path):
    try:
        frames = read_frames(path)
    except Exception as err:  # ASE raises many types for unreadable files; each becomes a record
        return [(path.name, None, f"cannot read {path}: {type(err).__name__}: {err}")]
    if len(frames) == 1:
        return [(path.name, frames[0], None)]
    return [(f"{path.name}@{k}", atoms, None) for k, atoms in enumerate(frames)]


def _read_database(address: str):
    try:
        ids, frames = read_frames(address, row_ids=True)
    except Exception as err:  # sqlite/psycopg errors differ; all mean "not a readable ASE db"
        raise InputError(f"cannot read ASE database {address}: {type(err).__name__}: {err}") from err
    return [(str(i), atoms, None) for i, atoms in zip(ids, frames)]


def read_inputs(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    kind: str,
    column: str | None = None,
    id_column: str | None = None,
) -> list[tuple[str, Any, str | None]]:
    """Read inputs into ``(id, object, read_error)`` triples (``object`` None where unreadable).

    Parameters
    ----------
    inputs : path or list of paths
        A CSV/TSV table, a folder of structure files, structure files, or an ASE database.
    kind : str
        The featurizer's ``input_kind``; picks the default table column.
    column, id_column : str or None
        Table columns with the objects and their identifiers (defaults: see module docstring;
        without an id column, ids are the 0-based row numbers).

    Raises
    ------
    InputError
        For a missing path, an empty folder, an unreadable table or database, or ``column`` /
        ``id_column`` given when no input is a table (they name table columns: structure files
        and databases were read without them).
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise InputError("no inputs given")
    records: list[tuple[str, Any, str | None]] = []
    tables = 0
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if is_database(text) and (text.startswith("postgres") or path.is_file()):
            records += _read_database(text)
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise InputError(f"folder {path} has no files")
            for file in files:
                records += _read_structure_file(file)
        elif path.is_file():
            tables += _is_table(path)
            records += _read_table(path, kind, column, id_column) if _is_table(path) else _read_structure_file(path)
        else:
            raise InputError(f"input {text!r} does not exist")
    given = [f"{name}={value!r}" for name, value in (("column", column), ("id_column", id_column))
             if value is not None]
    if given and not tables:
        # read without them, they would be dropped without a word
        raise InputError(f"{' and '.join(given)} name columns of a CSV/TSV table, but no input is one "
                         "(structure files and ASE databases are read whole, without them); "
                         "leave them out")
    return records


def _write(out: Path, featurizer: Featurizer, spec: str, ids: list[str], results: list[Any],
           failures: list[tuple[str, str]], sparse: bool) -> None:
    suffix = out.suffix.lower()
    labels = np.asarray(featurizer.feature_labels(), dtype=str)
    meta = dict(
        ids=np.asarray(ids, dtype=str),
        feature_labels=labels,
        spec=np.asarray(spec),
        failed_ids=np.asarray([i for i, _ in failures], dtype=str),
        failed_reasons=np.asarray([r for _, r in failures], dtype=str),
    )
    graphs = bool(results) and not isinstance(results[0], np.ndarray)
    if suffix == ".jsonl":
        if not graphs or not isinstance(results[0], nx.Graph):
            raise InputError(f".jsonl holds networkx graphs; {type(featurizer).__name__} makes arrays or PyG data")
        from reprs.graphio import write_graphs

        for ident, graph in zip(ids, results):
            graph.graph["id"] = ident
        write_graphs(results, out)
        return
    if suffix in (".pt", ".pkl"):
        if suffix == ".pt":
            import torch

            for ident, graph in zip(ids, results):
                graph.id = ident
            with atomic_open(out) as f:
                torch.save(results, f)
        else:
            import pickle

            for ident, graph in zip(ids, results):
                graph.graph["id"] = ident
            with atomic_open(out) as f:
                pickle.dump(results, f, protocol=pickle.HIGHEST_PROTOCOL)
        return
    if graphs:
        raise InputError(f"{type(featurizer).__name__} makes graphs; write them to .pt (PyG), .pkl or .jsonl")
    if featurizer.fixed_length:
        # rows of a NaN-filled float batch go back to the featurizer's dtype once failures are dropped
        matrix = np.asarray(np.stack(results), dtype=featurizer.dtype)
        splits = None
    else:  # per-site rows, concatenated with offsets
        matrix = np.concatenate(results)
        splits = np.concatenate([[0], np.cumsum([len(r) for r in results])]).astype(np.int64)
    if suffix == ".npy":
        if splits is not None:
            raise InputError("per-site output needs .npz (it stores row_splits) or .parquet")
        with atomic_open(out) as f:
            np.save(f, matrix)
    elif suffix == ".npz":
        arrays = dict(meta)
        if splits is not None:
            arrays["row_splits"] = splits
        if sparse:
            import scipy.sparse

            csr = scipy.sparse.csr_matrix(matrix)
            arrays.update(data=csr.data, indices=csr.indices, indptr=csr.indptr,
                          format=np.asarray(b"csr"), shape=np.asarray(csr.shape))
        else:
            arrays["X"] = matrix
        with atomic_open(out) as f:
            np.savez_compressed(f, **arrays)
    elif suffix == ".parquet":
        import pandas as pd

        row_ids = ids if splits is None else np.repeat(ids, np.diff(splits)).tolist()
        frame = pd.DataFrame(matrix, columns=list(labels))
        frame.insert(0, "id", row_ids)
        if splits is not None:
            frame.insert(1, "site", np.concatenate([np.arange(n) for n in np.diff(splits)]).astype(int))
        try:
            with atomic_open(out) as f:
                frame.to_parquet(f, index=False)
        except ImportError as err:
            raise InputError("writing .parquet needs pyarrow: pip install pyarrow") from err


def featurize_inputs(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    repr_spec: str | Featurizer,
    out: str | os.PathLike,
    *,
    column: str | None = None,
    id_column: str | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    skip_errors: bool = False,
    sparse: bool = False,
) -> FeaturizeSummary:
    """Featurize every object of ``inputs`` with ``repr_spec`` and write ``out`` atomically.

    Parameters
    ----------
    inputs : path or list of paths
        CSV/TSV table, folder or list of structure files, or ASE database (see :func:`read_inputs`).
    repr_spec : str or Featurizer
        ``NAME[:k=v,...]`` for :func:`~reprs.featurizers.get_featurizer`, or a featurizer.
    out : path
        Output file; its suffix picks the format (``.npz``, ``.npy``, ``.parquet``, ``.pt``,
        ``.pkl``; see the module docstring).
    column, id_column : str or None
        Table columns of the objects and of their identifiers.
    n_jobs : int, default 1
        Worker processes for ``featurize_many``.
    progress : bool, default True
        Progress bar on stderr.
    skip_errors : bool, default False
        Go on past objects that cannot be read or featurized, drop them from the output and list
        them in the summary (and in the ``.npz`` as ``failed_ids``/``failed_reasons``). Without
        it the first failure raises and nothing is written.
    sparse : bool, default False
        Store the matrix of a ``.npz`` as scipy CSR (fingerprints are mostly zeros).

    Returns
    -------
    FeaturizeSummary

    Raises
    ------
    FeaturizationError
        Without ``skip_errors``, on the first object that cannot be read or featurized (the
        message names its id and reason); nothing is written.
    InputError
        For bad inputs, an unknown output suffix, or no object left to write.
    """
    out = Path(out)
    if out.suffix.lower() not in _OUT_SUFFIXES:
        raise InputError(f"unknown output format {out.suffix!r} for {out}; use one of {', '.join(_OUT_SUFFIXES)}")
    if sparse and out.suffix.lower() != ".npz":
        raise InputError(f"sparse (--sparse) writes feature arrays as CSR to .npz, not to {out.name}; "
                         "drop --sparse or write to .npz")
    featurizer = get_featurizer(repr_spec)
    spec = repr_spec if isinstance(repr_spec, str) else repr(repr_spec)
    records = read_inputs(inputs, featurizer.input_kind, column=column, id_column=id_column)
    if not records:
        raise InputError(f"no objects found in {inputs}; nothing written")
    failures = [(ident, error) for ident, _, error in records if error is not None]
    if failures and not skip_errors:
        ident, reason = failures[0]
        raise FeaturizationError(f"{ident}: {reason} (use skip_errors / --skip-errors to go on)")
    readable = [(ident, obj) for ident, obj, error in records if error is None]
    if skip_errors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FeaturizationWarning)  # the summary lists them
            results, fails = featurizer.featurize_many(
                [obj for _, obj in readable], n_jobs=n_jobs, progress=progress, errors="nan", return_failures=True
            )
    else:
        results, fails = _featurize_or_raise(featurizer, readable, n_jobs, progress), []
    failed_rows = {f.index for f in fails}
    failures += [(readable[f.index][0], f"{f.error}: {f.message}") for f in fails]
    ids = [ident for k, (ident, _) in enumerate(readable) if k not in failed_rows]
    kept = [results[k] for k in range(len(readable)) if k not in failed_rows]
    if not kept:
        raise InputError(f"no object could be featurized ({len(failures)} failed); nothing written")
    _write(out, featurizer, spec, ids, kept, failures, sparse)
    return FeaturizeSummary(out, len(records), len(ids), featurizer.n_features, spec, failures)


def _featurize_or_raise(featurizer: Featurizer, readable: list[tuple[str, Any]], n_jobs: int, progress: bool):
    try:
        return featurizer.featurize_many([obj for _, obj in readable], n_jobs=n_jobs, progress=progress)
    except FeaturizationError as err:
        failure = err.failures[0]
        raise FeaturizationError(
            f"{readable[failure.index][0]} (row {failure.index}): {failure.error}: {failure.message} "
            "(use skip_errors / --skip-errors to go on)",
            failures=err.failures,
        ) from err.__cause__
