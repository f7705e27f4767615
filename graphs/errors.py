"""Exception classes of :mod:`graphs`, built on :mod:`reprs.errors`."""

from __future__ import annotations

from reprs.errors import EmptyGraphError, InputError, InputTypeError, MatrepError

__all__ = [
    "MatrepError",
    "InputError",
    "InputTypeError",
    "EmptyGraphError",
    "UnknownMetricError",
    "EmptyDatasetError",
    "NonOptimalWarning",
    "IndexStateError",
]


class UnknownMetricError(InputError):
    """A metric or kernel name is not one of those available."""


class EmptyDatasetError(InputError):
    """A dataset (list of graphs) is empty where at least one graph is required."""


class IndexStateError(InputError):
    """A graph index folder cannot be used: missing, partly written, corrupted, or built from
    other data or settings than asked (graphs.index). The message says how to rebuild it."""


class NonOptimalWarning(UserWarning):
    """Some returned values are bounds, not proven optimal (e.g. GED stopped by a timeout)."""
