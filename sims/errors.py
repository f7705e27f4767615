"""Exception classes of :mod:`sims`.

``sims`` imports no other package of ours (it accepts any potential through its interface), so it
keeps its own base class instead of deriving from ``reprs.errors``. Each class also derives from
the builtin a caller would naturally catch.
"""

from __future__ import annotations

from reprs.errors import ConfigError as _ConfigError

__all__ = ["SimsError", "SimsInputError", "MissingCellError", "SimulationStopped", "ConfigError"]


class SimsError(Exception):
    """Base class of every error :mod:`sims` raises on purpose."""


class SimsInputError(SimsError, ValueError):
    """An input value is invalid (NaN coordinates, wrong shape, cutoff too large, ...)."""


class MissingCellError(SimsInputError):
    """Periodic boundaries were requested for a system without a unit cell."""


class ConfigError(_ConfigError, SimsInputError):
    """A ``matrep simulate`` config is invalid (unknown key, wrong type, missing value, missing file);
    both ``reprs.errors.ConfigError`` and :class:`SimsInputError` catch it."""


class SimulationStopped(SimsError, RuntimeError):
    """A run stopped on purpose before its end (for example a potential's uncertainty passed its threshold)."""
