"""Exception classes of :mod:`graphs`, built on :mod:`reprs.errors`."""

from __future__ import annotations

from reprs.errors import EmptyGraphError, InputError, InputTypeError, MatrepError

__all__ = ["MatrepError", "InputError", "InputTypeError", "EmptyGraphError", "UnknownMetricError"]


class UnknownMetricError(InputError):
    """A metric or kernel name is not one of those available."""
