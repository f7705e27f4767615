"""The one featurizer API shared by fingerprints, DScribe descriptors, crystal graphs and composition.

A featurizer is configured once with keyword-only hyperparameters, stored unchanged as attributes
and validated at once. Its work is done by pure methods: ``featurize(obj)`` for one object,
``featurize_many(objs, ...)`` for a batch, and scikit-learn's ``fit``/``transform`` so that it drops
into a ``Pipeline``. The model is DScribe's ``SOAP(species=["Si"], r_cut=5.0, n_max=8,
l_max=6).create(atoms)`` and scikit-learn's transformers. The scikit-learn estimator protocol
(``get_params``/``set_params``, so ``clone`` and grid searches work) is implemented here rather
than inherited, because importing ``sklearn.base`` costs seconds that a fingerprint user should
not pay.

Inputs are converted at the edge (:mod:`reprs.featurizers.inputs`): each featurizer declares the kind
of object it works on (``input_kind``) and accepts everything convertible to it.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Iterable, Iterator, Literal, Sequence

import numpy as np

from reprs.atoms import as_atoms
from reprs.errors import FeaturizationError, InputError, InputTypeError
# the module itself, not the package: reprs/featurizers/__init__.py imports this module
from reprs.featurizers.inputs import as_composition, as_mol, as_structure

__all__ = ["Featurizer", "Failure", "FeaturizationWarning"]

_CONVERTERS = {
    "molecule": as_mol,
    "atoms": as_atoms,
    "structure": as_structure,
    "composition": as_composition,
}


@dataclass(frozen=True)
class Failure:
    """One object of a batch that could not be featurized.

    Attributes
    ----------
    index : int
        0-based position of the object in the batch.
    error : str
        Class name of the exception raised (e.g. ``"SmilesError"``).
    message : str
        The exception's message.
    """

    index: int
    error: str
    message: str

    def __str__(self) -> str:
        return f"row {self.index}: {self.error}: {self.message}"


class FeaturizationWarning(UserWarning):
    """Some objects of a batch failed and were filled with NaN (``errors="nan"``)."""


class Featurizer:
    """Base class of every matrep featurizer.

    Subclasses define ``__init__`` with keyword-only hyperparameters (stored unchanged), and
    implement ``_validate``, ``_featurize``, ``n_features`` and ``feature_labels``; they set the class
    attributes ``input_kind`` and ``fixed_length``.

    Attributes
    ----------
    input_kind : {"molecule", "atoms", "structure", "composition"}
        What ``featurize`` converts its input to (see :mod:`reprs.featurizers.inputs`).
    fixed_length : bool
        True when ``featurize`` returns one 1-D vector of length ``n_features`` per object, so that
        ``featurize_many`` and ``transform`` return a 2-D array. False for per-site descriptors
        (2-D array per object) and graphs (one ``networkx`` graph per object); then
        ``featurize_many`` returns a list.
    """

    input_kind: ClassVar[str] = "atoms"
    fixed_length: ClassVar[bool] = True

    # ----------------------------------------------------------------- to implement in subclasses
    def _validate(self) -> None:
        """Check the hyperparameters; raise :class:`~reprs.errors.InputError` on bad values."""

    def _featurize(self, obj: Any) -> Any:
        """Featurize one object already converted to ``input_kind``."""
        raise NotImplementedError

    @property
    def n_features(self) -> int:
        """Length of the feature vector (per object, per site, or per edge for graphs)."""
        raise NotImplementedError

    def feature_labels(self) -> list[str]:
        """Names of the ``n_features`` features, in order."""
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype:
        """dtype of the arrays ``featurize`` returns."""
        return np.dtype(np.float64)

    # ----------------------------------------------------------------------------- public API
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Names of the hyperparameters: the keyword-only arguments of ``__init__``."""
        return list(_param_names(cls))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters as a dict (scikit-learn API; ``deep`` is accepted and has no effect)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Featurizer:
        """Set hyperparameters (scikit-learn API) and validate them again.

        Raises
        ------
        InputError
            For an unknown name or an invalid value.
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise InputError(
                    f"{type(self).__name__} has no parameter {name!r}; parameters: {', '.join(valid)}"
                )
            setattr(self, name, value)
        self._validate()
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        shown = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            same = type(value) is type(default) and repr(value) == repr(default)
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def convert(self, obj: Any) -> Any:
        """Convert ``obj`` to the type this featurizer works on (``input_kind``).

        Raises
        ------
        InputTypeError
            For an object of a type that cannot be converted.
        InputError
            For an invalid value (e.g. :class:`~reprs.errors.SmilesError` for bad SMILES).
        """
        return _CONVERTERS[self.input_kind](obj)

    def featurize(self, obj: Any) -> Any:
        """Featurize one object.

        Parameters
        ----------
        obj
            Anything :meth:`convert` accepts for this featurizer's ``input_kind``.

        Returns
        -------
        numpy.ndarray or networkx.Graph
            A 1-D array of length ``n_features`` (``fixed_length``), or a per-site 2-D array, or a
            graph; see the subclass.
        """
        return self._featurize(self.convert(obj))

    def featurize_many(
        self,
        objs: Iterable[Any],
        n_jobs: int = 1,
        progress: bool = True,
        errors: Literal["raise", "nan"] = "raise",
        return_failures: bool = False,
    ) -> Any:
        """Featurize a batch of objects, optionally in parallel.

        Parameters
        ----------
        objs : iterable
            Objects accepted by :meth:`featurize`.
        n_jobs : int, default 1
            Number of worker processes (joblib semantics: -1 means all cores). Objects are sent to
            workers in chunks; results keep the input order.
        progress : bool, default True
            Show a ``tqdm`` progress bar on stderr.
        errors : {"raise", "nan"}, default "raise"
            ``"raise"``: stop at the first object that fails and raise
            :class:`~reprs.errors.FeaturizationError` naming its row and reason. ``"nan"``: fill
            the failed rows with NaN (``None`` in list outputs), warn with a
            :class:`FeaturizationWarning` and go on. With ``"nan"`` integer features (fingerprint
            bits and counts) are returned as float64, so that NaN can be stored.
        return_failures : bool, default False
            Also return the list of :class:`Failure` records (empty when all succeeded).

        Returns
        -------
        numpy.ndarray or list
            ``(n_objects, n_features)`` array for ``fixed_length`` featurizers, else a list of the
            per-object outputs. With ``return_failures``, a tuple ``(features, failures)``.

        Raises
        ------
        FeaturizationError
            With ``errors="raise"``, on the first failing object.
        InputError
            For bad arguments.
        """
        if isinstance(objs, (str, bytes)):
            raise InputTypeError(
                "featurize_many expects a sequence of objects, got a single str; "
                "use featurize() for one object or wrap it in a list"
            )
        if errors not in ("raise", "nan"):
            raise InputError(f"errors must be 'raise' or 'nan', got {errors!r}")
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
            raise InputError(f"n_jobs must be a non-zero int (-1 for all cores), got {n_jobs!r}")
        items = list(objs)
        fill_nan = errors == "nan"
        results: list[Any] = [None] * len(items)
        failures: list[Failure] = []

        from tqdm.auto import tqdm

        with tqdm(total=len(items), disable=not progress, desc=type(self).__name__, unit="obj") as bar:
            for index, value, cause in self._iter_results(items, n_jobs):
                bar.update(1)
                if isinstance(value, Failure):
                    if not fill_nan:
                        raise FeaturizationError(
                            f"{type(self).__name__} failed on {value}", failures=[value]
                        ) from cause
                    failures.append(value)
                else:
                    results[index] = value
        if failures:
            shown = "; ".join(str(f) for f in failures[:5])
            more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
            warnings.warn(
                f"{len(failures)} of {len(items)} objects failed and were filled with NaN: "
                f"{shown}{more}",
                FeaturizationWarning,
                stacklevel=2,
            )
        out = self._stack(results, fill_nan) if self.fixed_length else results
        return (out, failures) if return_failures else out

    def fit(self, X: Sequence[Any], y: Any = None) -> Featurizer:
        """Do nothing and return self: featurizers learn nothing from data (scikit-learn API)."""
        return self

    def fit_transform(self, X: Sequence[Any], y: Any = None) -> np.ndarray:
        """Same as :meth:`transform` (scikit-learn API)."""
        return self.transform(X)

    def transform(self, X: Sequence[Any]) -> np.ndarray:
        """Featurize ``X`` (a sequence of objects) into an ``(n, n_features)`` array.

        Raises
        ------
        InputError
            For featurizers whose output is not one fixed-length vector per object (per-site
            descriptors, graphs): average them first (e.g. ``SOAP(average="inner")``).
        FeaturizationError
            If an object fails.
        """
        if not self.fixed_length:
            raise InputError(
                f"{type(self).__name__} with these parameters gives variable-size output per "
                "object and cannot be used as a scikit-learn transformer; use featurize_many"
            )
        return self.featurize_many(X, progress=False)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Feature labels as an object array (scikit-learn API; enables ``set_output``)."""
        return np.asarray(self.feature_labels(), dtype=object)

    # ------------------------------------------------------------------------------- internals
    def _iter_results(self, items: list[Any], n_jobs: int) -> Iterator[tuple[int, Any, Any]]:
        """Yield ``(index, output or Failure, exception or None)`` in input order."""
        if n_jobs == 1 or len(items) <= 1:
            for index, obj in enumerate(items):
                try:
                    yield index, self.featurize(obj), None
                except Exception as err:  # every failure becomes a record; none is swallowed
                    yield index, Failure(index, type(err).__name__, str(err)), err
            return
        from joblib import Parallel, delayed, effective_n_jobs

        workers = effective_n_jobs(n_jobs)
        # A few chunks per worker balance the load without paying pickling per object.
        size = max(1, min(256, math.ceil(len(items) / (4 * workers))))
        starts = range(0, len(items), size)
        chunks = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_featurize_chunk)(self, start, items[start : start + size]) for start in starts
        )
        for start, chunk in zip(starts, chunks):
            for offset, value in enumerate(chunk):
                yield start + offset, value, None

    def _stack(self, results: list[Any], fill_nan: bool) -> np.ndarray:
        dtype = self.dtype
        if fill_nan and not np.issubdtype(dtype, np.floating):
            dtype = np.dtype(np.float64)
        out = np.full((len(results), self.n_features), np.nan if fill_nan else 0, dtype=dtype)
        for row, value in enumerate(results):
            if value is not None:
                out[row] = value
        return out


@lru_cache(maxsize=None)
def _param_names(cls: type) -> tuple[str, ...]:
    # inspect.signature costs microseconds; DScribe wrappers read their parameters on every call
    signature = inspect.signature(cls.__init__)
    return tuple(sorted(p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY))


def _featurize_chunk(featurizer: Featurizer, start: int, objs: list[Any]) -> list[Any]:
    """Worker of ``featurize_many``: featurize a chunk, turning exceptions into :class:`Failure`."""
    out: list[Any] = []
    for offset, obj in enumerate(objs):
        try:
            out.append(featurizer.featurize(obj))
        except Exception as err:  # reported to the parent as a record; exceptions may not pickle
            out.append(Failure(start + offset, type(err).__name__, str(err)))
    return out
