"""Exception classes of matrep.

Every error raised on bad input derives from :class:`MatrepError` and from the builtin class a
caller would naturally catch (``ValueError``, ``TypeError``, ``KeyError``), so that both
``except reprs.errors.MatrepError`` and ``except ValueError`` work. ``graphs``, ``learners`` and
``sims`` re-export these and subclass them for their own conditions, never redefine them
(``docs/rules.md``, "Errors"). This module is in ``reprs``' base layer.
"""

from __future__ import annotations

__all__ = [
    "MatrepError",
    "InputError",
    "InputTypeError",
    "ParseError",
    "GlycanParseError",
    "SmilesError",
    "UnknownMonomerError",
    "EmptyGraphError",
    "MissingCellError",
    "UnknownFeaturizerError",
    "FeaturizationError",
    "ResourceLimitError",
    "MissingDependencyError",
    "ConfigError",
]


class MatrepError(Exception):
    """Base class of every error matrep raises on purpose."""


class InputError(MatrepError, ValueError):
    """An input value is invalid (empty, NaN, out of range, inconsistent)."""


class InputTypeError(MatrepError, TypeError):
    """An input has a type that the function does not accept."""


class ParseError(InputError):
    """A text representation could not be parsed.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    text : str, optional
        The text that failed to parse.
    position : int, optional
        0-based character offset of the problem in ``text``.
    """

    def __init__(self, message: str, text: str | None = None, position: int | None = None):
        self.text = text
        self.position = position
        if text is not None and position is not None:
            message = f"{message}\n  {text}\n  {' ' * position}^"
        super().__init__(message)


class GlycanParseError(ParseError):
    """A glycan string in IUPAC-condensed notation is malformed."""


class SmilesError(ParseError):
    """A SMILES string could not be read by RDKit."""


class UnknownMonomerError(InputError, KeyError):
    """A monomer name is not in the monomer library and no rule resolves it."""

    def __str__(self) -> str:  # KeyError would repr() the message, quoting it
        return str(self.args[0]) if self.args else ""


class EmptyGraphError(InputError):
    """A graph has no nodes where at least one is required."""


class MissingCellError(InputError):
    """Periodic data was given without a unit cell."""


class UnknownFeaturizerError(InputError, KeyError):
    """A featurizer name is not in the registry of :func:`reprs.featurizers.get_featurizer`."""

    def __str__(self) -> str:  # KeyError would repr() the message, quoting it
        return str(self.args[0]) if self.args else ""


class FeaturizationError(InputError):
    """One or more objects of a batch could not be featurized.

    Parameters
    ----------
    message : str
        What failed, naming the row(s) and reason(s).
    failures : list, optional
        The :class:`reprs.featurizers.Failure` records (row index, error type, message).
    """

    def __init__(self, message: str, failures: list | None = None):
        self.failures = list(failures or [])
        super().__init__(message)


class ResourceLimitError(InputError):
    """A computation would exceed a configured resource limit (memory, size) and was refused."""


class MissingDependencyError(MatrepError, ImportError):
    """An optional package that a function needs is not installed; the message says which extra adds it."""


class ConfigError(InputError):
    """A config file or table is invalid: an unknown or misspelled key, a value of the wrong type, a
    missing required value, or a file that is not TOML. The message names the key path."""
