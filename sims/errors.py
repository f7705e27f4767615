"""Exception classes of :mod:`sims`, built on :mod:`reprs.errors`.

``sims`` may import ``reprs``' base layer, so its errors belong to the one hierarchy of matrep:
``except reprs.errors.MatrepError`` catches every error of the four packages, and ``except
ValueError`` every input error. :class:`MissingCellError` is the class of :mod:`reprs.errors`,
re-exported, not a twin.
"""

from __future__ import annotations

from reprs.errors import ConfigError as _ConfigError
from reprs.errors import InputError, MatrepError, MissingCellError

__all__ = ["SimsError", "SimsInputError", "MissingCellError", "SimulationStopped", "ConfigError", "FitDiverged"]


class SimsError(MatrepError):
    """Base class of every error :mod:`sims` raises on purpose."""


class SimsInputError(SimsError, InputError):
    """An input value is invalid (NaN coordinates, wrong shape, cutoff too large, ...)."""


class ConfigError(_ConfigError, SimsInputError):
    """A ``matrep simulate`` config is invalid (unknown key, wrong type, missing value, missing file);
    both ``reprs.errors.ConfigError`` and :class:`SimsInputError` catch it."""


class SimulationStopped(SimsError, RuntimeError):
    """A run stopped on purpose before its end (for example a potential's uncertainty passed its threshold).

    :class:`learners.potentials.UncertaintyExceeded` derives from it, so ``except SimulationStopped``
    catches every stop condition."""


class FitDiverged(SimsError, FloatingPointError):
    """A simulation inside a potential fit (:mod:`sims.fit`) blew up: a non-finite energy, loss or gradient.

    Attributes
    ----------
    epoch : int
        The epoch (0-based) whose simulation or update diverged.
    parameters : dict of str to torch.Tensor
        The potential's parameters that caused it (finite: the potential is left holding them).
    """

    def __init__(self, message: str, *, epoch: int, parameters: dict) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.parameters = parameters
