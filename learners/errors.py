"""Exception classes of :mod:`learners`, built on :mod:`reprs.errors`."""

from __future__ import annotations

from reprs.errors import InputError, InputTypeError, MatrepError

__all__ = ["MatrepError", "InputError", "InputTypeError", "NotFittedError", "TrainingDivergedError"]


class NotFittedError(MatrepError, AttributeError):
    """A model was used for prediction before ``fit``."""


class TrainingDivergedError(MatrepError, FloatingPointError):
    """Training produced a non-finite loss or monitored metric (lower the learning rate, clip gradients)."""
