"""Exception classes of :mod:`learners`, built on :mod:`reprs.errors`."""

from __future__ import annotations

from reprs.errors import InputError, InputTypeError, MatrepError

__all__ = ["MatrepError", "InputError", "InputTypeError", "NotFittedError"]


class NotFittedError(MatrepError, AttributeError):
    """A model was used for prediction before ``fit``."""
