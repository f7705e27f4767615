"""Resumable out-of-core outputs of :func:`graphs.query.pairwise`: a matrix on disk, or a kNN graph.

A matrix of all pairs of 23,700 glycans is 4.5 GB in float64: more than a laptop wants in memory.
With ``pairwise(..., out=PATH)`` the blocks of the matrix are written into a memory-mapped ``.npy``
file (``numpy.lib.format.open_memmap``; any numpy reads it with ``np.load(PATH, mmap_mode="r")``)
as they finish, serially, on local processes or on a Dask cluster, and a journal beside it records
which blocks are done:

``PATH``
    The (n, n) float64 matrix. Entries of blocks not yet finished are undefined (the file is
    created sparse, without writing n^2 values first).
``PATH.exact.npy``
    The (n, n) bool mask of proven values (False where a GED is only a bound).
``PATH.journal.json``
    The job's key (a hash of the dataset, the metric and its parameters, the block size) and the
    number of blocks; written atomically, once.
``PATH.done.npy``
    One bool per block, rewritten atomically (:func:`reprs.fileio.atomic_write`) after each block's
    values are flushed to disk. A job started again with the same key skips the blocks marked
    done, so a crash loses at most the blocks in flight; a journal with another key (or, with
    ``knn``, a graph of another ``k``) is refused.

With ``knn=k`` no matrix is written: each row keeps its ``k`` best other graphs, merged block by
block, and ``PATH`` is an ``.npz`` with ``indices`` (n, k), ``scores`` (n, k) and ``exact`` (n, k),
checkpointed atomically before the done-blocks record, so the dense matrix is never held; merging
is idempotent, so a block merged again after a crash between the two writes changes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import types
from pathlib import Path

import networkx as nx
import numpy as np

from graphs.errors import InputError
from reprs.fileio import atomic_write

__all__ = ["dataset_fingerprint", "metric_fingerprint", "params_fingerprint", "Journal", "MatrixStore", "KnnStore"]


def dataset_fingerprint(graphs: list[nx.Graph]) -> str:
    """A hash of the graphs' structure and of every graph, node and edge attribute.

    The label and fingerprint ``x`` of each node and edge as journals have always recorded them;
    any other attribute (a glass network's ``length``, a weight, a graph-level value) by
    :func:`_feed_value`, since a user's metric or :class:`~graphs.costs.CallableCosts` may read
    it: hashing ``label`` and ``x`` alone, a job run again after such values changed found every
    block done and returned the matrix of the old values.
    """
    h = hashlib.sha256()
    for g in graphs:  # once per job, a loop over graphs
        local = {v: i for i, v in enumerate(g)}
        h.update(repr((g.is_directed(), len(g), g.number_of_edges())).encode())
        if g.graph:
            _feed_value(h, g.graph, 0)
        for u, v, d in [(v, None, d) for v, d in g.nodes(data=True)] + list(g.edges(data=True)):
            h.update(repr((local[u], None if v is None else local[v], d.get("label"))).encode())
            if "x" in d:
                h.update(np.asarray(d["x"]).tobytes())
            others = {k: value for k, value in d.items() if k not in ("label", "x")}
            if others:
                _feed_value(h, others, 0)
    return h.hexdigest()


def metric_fingerprint(func) -> str:
    """A hash of what a metric callable computes, the same in every process that defines it alike.

    A job's key named a user's callable by its ``__name__`` alone, so a second ``pairwise(...,
    out=PATH)`` with another lambda, or with a function edited since (same name), found every block
    "done" and returned the first function's matrix. Hashed here: the function's module and
    qualified name, its bytecode, names and constants (nested code objects included), the plain values
    it captures (closure variables and a ``partial``'s arguments: numbers, strings, arrays and
    array-likes such as torch tensors, containers of them, functions; other objects by their class
    only, see :func:`_feed_value`), and for a callable object its class and ``__call__``. Line
    numbers and file paths are not, so a job resumes after unrelated edits of its script. Nothing
    that differs between two runs of one script enters (memory addresses in default ``repr``s, the
    hash-seeded order of a set): a job must resume in a new process.
    """
    h = hashlib.sha256()
    _feed_callable(h, func, 0)
    return h.hexdigest()


def params_fingerprint(params: dict | None) -> str:
    """The key of a named metric's parameters (GED costs, kernel options).

    Their ``repr``, as journals have always recorded it, unless that text cannot be the same in a
    new process or cannot tell two values apart: a default ``repr`` holds a memory address (a
    :class:`~graphs.costs.CallableCosts`: every resume was refused as another job), a long array's
    elides its middle. Then a hash: plain values and functions as :func:`metric_fingerprint` hashes
    what a metric captures, a parameter object by its class and public attributes.
    """
    items = sorted((params or {}).items())
    text = repr(items)
    if " at 0x" not in text and "..." not in text:
        return text
    h = hashlib.sha256()
    for name, value in items:
        h.update(str(name).encode())
        if hasattr(value, "__dict__") and not isinstance(value, (type, types.FunctionType, types.MethodType,
                                                                  functools.partial)):
            cls = type(value)
            h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
            _feed_value(h, {k: v for k, v in vars(value).items() if not k.startswith("_")}, 1)
        else:
            _feed_value(h, value, 0)
    return "sha256:" + h.hexdigest()


_MAX_DEPTH = 4  # captured containers and functions are followed this deep (a function may capture itself)


def _feed_callable(h, func, depth: int) -> None:
    if isinstance(func, functools.partial):
        _feed_callable(h, func.func, depth + 1)
        _feed_value(h, (func.args, func.keywords), depth + 1)
        return
    code = getattr(func, "__code__", None)
    if code is None:  # a callable object: what its class's __call__ computes
        cls = type(func)
        h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
        code = getattr(getattr(cls, "__call__", None), "__code__", None)
    else:
        h.update(f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}".encode())
        for cell in getattr(func, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # a cell not yet filled
                value = None
            _feed_value(h, value, depth + 1)
    if code is not None:
        _feed_code(h, code)


def _array_values(value) -> np.ndarray | None:
    """The numbers of an array-like that is not a numpy array (a torch tensor, a pandas Series), or None."""
    if not hasattr(value, "__array__"):
        return None
    if hasattr(value, "detach"):  # torch: a tensor that requires grad, or on a GPU, has no direct numpy view
        value = value.detach().cpu()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError):  # an __array__ that cannot give one (hashed by class then)
        return None
    return None if array.dtype == object else array


_PLAIN = (int, float, complex, str, bytes, bool, type(None))


def _plain(item) -> bool:
    """A number, string or None, or a tuple of them: a ``repr`` that is the same in every process."""
    return isinstance(item, _PLAIN) or (isinstance(item, tuple) and all(_plain(x) for x in item))


def _order_key(item, depth: int) -> str:
    """What a set's items and a dict's keys are sorted by: a plain value's ``repr`` (as keys have always
    held it), anything else the digest of its :func:`_feed_value`: the ``repr`` of a frozenset (inside a
    set, or a key) lists its items in the hash seed's order, so the key of a job changed from one process
    to the next and its resume was refused as another job."""
    if _plain(item):
        return repr(item)
    sub = hashlib.sha256()
    _feed_value(sub, item, depth + 1)
    return "sha256:" + sub.hexdigest()


def _feed_value(h, value, depth: int) -> None:
    """A captured value: plain data by value (arrays and array-likes such as torch tensors by their
    bytes: a long array's ``repr`` elides its middle), containers item by item, functions by
    :func:`_feed_callable`, other objects by their class alone (their default ``repr`` holds a memory
    address; their attributes may be state that changes as the job runs, such as a cache or a
    counter, which would refuse the resume)."""
    if depth > _MAX_DEPTH:
        h.update(b"...")
    elif isinstance(value, _PLAIN):
        h.update(repr(value).encode())
    elif isinstance(value, (tuple, list)):
        h.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _feed_value(h, item, depth + 1)
    elif isinstance(value, dict):
        h.update(f"dict{len(value)}".encode())
        for key in sorted(value, key=lambda k: _order_key(k, depth)):
            _feed_value(h, key, depth + 1)
            _feed_value(h, value[key], depth + 1)
    elif isinstance(value, (set, frozenset)):  # in sorted order: a set's own order follows the hash seed
        h.update(f"set{len(value)}".encode() + repr(sorted(_order_key(item, depth) for item in value)).encode())
    elif isinstance(value, (np.ndarray, np.generic)) and value.dtype != object:
        h.update(f"{value.dtype}{np.shape(value)}".encode() + np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (types.FunctionType, types.MethodType, functools.partial)):
        _feed_callable(h, value, depth + 1)
    elif (array := _array_values(value)) is not None:
        # by value, as a numpy array: hashed by its class alone, a graph attribute held in a torch tensor
        # could change (1 -> 2 in each entry, under a metric summing it) and a job into the same out=
        # found every block done and returned the matrix of the old values
        _feed_value(h, array, depth)
    else:
        cls = type(value)
        h.update(f"{cls.__module__}.{cls.__qualname__}".encode())


def _feed_code(h, code: types.CodeType) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        elif isinstance(const, frozenset):  # ``x in {"a", "b"}``: its order follows the hash seed
            h.update(repr(sorted(map(repr, const))).encode())
        else:
            h.update(repr(const).encode())


class Journal:
    """Key and done-blocks record beside an output ``path``."""

    def __init__(self, path: Path, key: dict, n_tiles: int):
        self.meta = path.with_name(path.name + ".journal.json")
        self.done_path = path.with_name(path.name + ".done.npy")
        record = {"key": key, "n_tiles": n_tiles}
        self.resumed = self.meta.is_file() and self.done_path.is_file()
        if self.resumed:
            old = json.loads(self.meta.read_text())
            if old != record:
                raise InputError(
                    f"{path} belongs to another job ({self.meta} records {old['key']}, this job is "
                    f"{key}); delete {path} and its .journal.json and .done.npy files, or write to "
                    f"another path"
                )
            self.done = np.load(self.done_path)
        else:
            self.done = np.zeros(n_tiles, dtype=bool)
            atomic_write(self.meta, json.dumps(record, sort_keys=True))

    def mark(self, tile_id: int) -> None:
        self.done[tile_id] = True
        self._save()

    def reset(self) -> None:
        """No block done: the output the record described is gone. Saved at once, so that a job
        stopped before its first block does not leave the old record over a new, empty output."""
        self.done[:] = False
        if self.resumed:
            self._save()

    def _save(self) -> None:
        buffer = io.BytesIO()
        np.save(buffer, self.done)
        atomic_write(self.done_path, buffer.getvalue())


class MatrixStore:
    """The (n, n) matrix and exact mask as memory-mapped ``.npy`` files, filled block by block."""

    def __init__(self, path, n: int, key: dict, n_tiles: int):
        path = Path(path)
        if path.suffix != ".npy":
            raise InputError(f"out={str(path)!r}: the matrix is written as a .npy file; give a path "
                             f"ending in .npy (or knn=k for a .npz of nearest neighbours)")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.exact_path = path, path.with_name(path.stem + ".exact.npy")
        self.journal = Journal(path, key, n_tiles)
        mode = "r+" if self.journal.resumed and path.is_file() and self.exact_path.is_file() else "w+"
        if mode == "w+" and self.journal.resumed:
            self.journal.reset()
        self.values = np.lib.format.open_memmap(path, mode=mode, dtype=np.float64, shape=(n, n))
        self.exact = np.lib.format.open_memmap(self.exact_path, mode=mode, dtype=bool, shape=(n, n))

    @property
    def done(self) -> np.ndarray:
        return self.journal.done

    def write(self, tile_id: int, r: np.ndarray, c: np.ndarray, upper: bool, symmetric: bool,
              v: np.ndarray, e: np.ndarray) -> None:
        keep = np.triu(np.ones(v.shape, dtype=bool)) if upper else np.ones(v.shape, dtype=bool)
        # Tiles are contiguous ranges: slices of the memory map are views, written in place.
        rows, cols = slice(int(r[0]), int(r[-1]) + 1), slice(int(c[0]), int(c[-1]) + 1)
        np.copyto(self.values[rows, cols], v, where=keep)
        np.copyto(self.exact[rows, cols], e, where=keep)
        if symmetric:  # the mirrored block, so that the file holds the whole matrix
            np.copyto(self.values[cols, rows], v.T, where=keep.T)
            np.copyto(self.exact[cols, rows], e.T, where=keep.T)
        self.values.flush()
        self.exact.flush()
        self.journal.mark(tile_id)


class KnnStore:
    """The ``k`` best other graphs of every row, merged block by block, checkpointed to ``.npz``."""

    def __init__(self, path, n: int, k: int, similarity: bool, key: dict, n_tiles: int):
        path = Path(path)
        if path.suffix != ".npz":
            raise InputError(f"out={str(path)!r}: a kNN graph is written as a .npz file; give a path "
                             f"ending in .npz")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < n:
            raise InputError(f"knn must be an integer from 1 to {n - 1} (the other graphs), got {k!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.k, self.sign = path, int(k), -1.0 if similarity else 1.0
        self.journal = Journal(path, key, n_tiles)
        if self.journal.resumed and path.is_file():
            with np.load(path) as saved:
                self.indices, self.key_values, self.exact = (saved["indices"], self.sign * saved["scores"],
                                                             saved["exact"])
            # k is not in the job's key (journals written before would no longer match): checked here.
            if self.indices.shape[1] != self.k:
                raise InputError(f"{path} holds a graph of knn={self.indices.shape[1]} neighbours, this job asks "
                                 f"knn={self.k}; delete {path} and its .journal.json and .done.npy files, or "
                                 f"write to another path")
        else:
            self.journal.reset()
            self.indices = np.full((n, self.k), -1, dtype=np.int64)
            self.key_values = np.full((n, self.k), np.inf)
            self.exact = np.ones((n, self.k), dtype=bool)

    @property
    def done(self) -> np.ndarray:
        return self.journal.done

    def _merge(self, rows, cols, values, exact, keep):
        """Merge the candidates ``cols`` of ``rows`` (keep: which entries count) into the k best.

        Idempotent: a candidate a row already holds is not taken again. A job killed after a
        block's checkpoint but before its done-record merges that block a second time on resume.
        """
        # Which candidates each row holds already: its k indices looked up in the (sorted) cols.
        current = self.indices[rows]
        at = np.minimum(np.searchsorted(cols, current), len(cols) - 1)
        found = (current >= 0) & (cols[at] == current)
        held = np.zeros(values.shape, dtype=bool)
        held[np.nonzero(found)[0], at[found]] = True
        key = np.where(keep & (rows[:, None] != cols[None, :]) & ~held, self.sign * values, np.inf)
        idx = np.concatenate([self.indices[rows], np.broadcast_to(cols, key.shape)], axis=1)
        val = np.concatenate([self.key_values[rows], key], axis=1)
        ex = np.concatenate([self.exact[rows], exact], axis=1)
        # ties by graph index, so that the graph does not depend on the order blocks finish in
        order = np.lexsort((np.where(idx < 0, np.iinfo(np.int64).max, idx), val), axis=1)[:, : self.k]
        take = np.take_along_axis
        best_val = take(val, order, axis=1)
        self.indices[rows] = np.where(np.isfinite(best_val), take(idx, order, axis=1), -1)
        self.key_values[rows] = best_val
        self.exact[rows] = take(ex, order, axis=1)

    def write(self, tile_id: int, r: np.ndarray, c: np.ndarray, upper: bool, symmetric: bool,
              v: np.ndarray, e: np.ndarray) -> None:
        keep = np.triu(np.ones(v.shape, dtype=bool)) if upper else np.ones(v.shape, dtype=bool)
        self._merge(r, c, v, e, keep)
        if symmetric:
            self._merge(c, r, v.T, e.T, keep.T)
        buffer = io.BytesIO()
        np.savez(buffer, indices=self.indices, scores=self.sign * self.key_values, exact=self.exact)
        atomic_write(self.path, buffer.getvalue())
        self.journal.mark(tile_id)
