"""Config files and tables: one TOML loader and strict, typed schemas.

Every config of matrep (``matrep simulate``, ``matrep train``) is a TOML file, read by
:func:`load_toml`, or the same content as a dict (the Python API). Each table is parsed into a
frozen dataclass that derives from :class:`Schema`; ``Schema.from_config(table, where=...)``

- refuses unknown keys, suggesting the closest known one ("unknown key 'temprature' in
  stages[0]; did you mean 'temperature'? known: ..."),
- checks each value against the field's annotation (``int``, ``float``, ``bool``, ``str``,
  ``Literal[...]``, ``X | None``, ``tuple[float, float]``, ``tuple[X, ...]``, ``dict``, a nested
  schema) and names the key path when it does not match ("stages[0].temperature must be a number
  or [start, end] in K, got the string '300'"): an integral float is accepted as an int (TOML
  writes ``1000.0``), an int as a float, and a bool is never a number,
- refuses a missing required value by name,
- then runs the schema's own ``check`` (ranges, combinations of keys).

Constructing a schema directly (``Stage(steps=10)``) runs the same checks, so a Python caller gets
no less than a config file. Errors are :class:`reprs.errors.ConfigError` (an ``InputError``, a
``ValueError``); the ``matrep`` command line prints them as one line and exits with status 2.

Command-line values are held to the same rule: :func:`int_at_least` and :func:`positive_float`
are argparse types that refuse a bad number naming the flag, and :func:`add_progress_flags` /
:func:`progress_wanted` give every long-running subcommand the same ``--quiet`` / ``--progress``.

This module is part of reprs' base layer (``reprs.BASE_LAYER``): ``sims`` uses it too.
"""

from __future__ import annotations

import argparse
import contextvars
import dataclasses
import difflib
import hashlib
import json
import os
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from reprs.errors import ConfigError

__all__ = ["load_toml", "Schema", "did_you_mean", "check_keys", "config_file", "describe", "int_at_least",
           "positive_float", "add_progress_flags", "progress_wanted", "content_hash"]


def content_hash(content: Any) -> str:
    """16 hex digits of the SHA-256 of ``content`` as key-sorted JSON (non-JSON values as ``str``).

    The one key of a run's settings: frames record it (:func:`sims.generate.config_hash`), and a
    fit or hopping output folder is resumed only under the same one; a featurizer's memo of its
    descriptor object is keyed by its parameters' hash. The first 16 digits, unless
    they read as a number ("8568372213460e42", or all decimal digits: about 1 digest in 1000),
    which an ASE database refuses as a string value and text formats read back as floats; then the
    next 16 that do not.

    Arrays and tensors (a dict config's tabulated potential values, say) enter as their nested lists,
    the values of the same content written in TOML. Their ``str``, hashed before 2026-12-07, rounds
    to 8 digits and elides all but the ends of an array of over 1000 entries, so different arrays
    gave one hash; content without arrays hashes as before. See :func:`sims.config.array_hash_note`.
    """
    text = json.dumps(content, sort_keys=True, default=_json_value)
    digest = hashlib.sha256(text.encode()).hexdigest()
    windows = [digest[k:k + 16] for k in range(0, len(digest), 16)]
    return next(w for w in windows if not _reads_as_number(w))


def _json_value(value: Any) -> Any:
    """What :func:`content_hash` hashes for a value JSON cannot write."""
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:  # numpy arrays, torch tensors
        return value.tolist()
    return str(value)  # numpy scalars print exactly (and so keep their old hashes); paths; ...


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_toml(path: str | os.PathLike, *, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """The content of a TOML config file.

    Parameters
    ----------
    path : path-like
        A ``.toml`` file.
    error : subclass of ConfigError
        The class raised (a package's own config error).

    Returns
    -------
    dict
        The parsed tables (``tomllib``).

    Raises
    ------
    ConfigError
        The name does not end in ``.toml`` (matrep reads no other config format), the file does
        not exist or cannot be read as UTF-8 text, or it is not valid TOML (the message names the
        file, line and column).
    """
    path = Path(path)
    if path.suffix != ".toml":
        raise error(f"config {str(path)!r} is not a TOML file: matrep configs are TOML and end in .toml")
    if not path.is_file():
        raise error(f"config file {str(path)!r} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:  # its message ends with "(at line L, column C)"
        raise error(f"config {str(path)!r} is not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise error(f"config {str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The known name that ``name`` abbreviates, else the closest one (difflib's ratio >= 0.6), or None.

    Examples
    --------
    >>> did_you_mean("temprature", ["temperature", "timestep"])
    'temperature'
    >>> did_you_mean("temp", ["temperature", "steps"])
    'temperature'
    """
    name, known = str(name), [str(k) for k in known]
    longer = sorted((k for k in known if len(name) >= 3 and k.startswith(name)), key=len)
    if longer:
        return longer[0]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _in(where: str) -> str:
    return f"in {where}" if where else "at the top level of the config"


def check_keys(table: Mapping[str, Any], known: Iterable[str], where: str = "", *,
               error: type[ConfigError] = ConfigError) -> None:
    """Refuse a key of ``table`` that is not in ``known``, with a did-you-mean suggestion.

    Raises
    ------
    ConfigError
        (or ``error``, a subclass) "unknown key 'temprature' in stages[0]; did you mean
        'temperature'? known: ..."
    """
    known = sorted(known)
    for key in table:
        if key not in known:
            guess = did_you_mean(key, known)
            hint = f"; did you mean {guess!r}?" if guess else ";"
            raise error(f"unknown key {key!r} {_in(where)}{hint} known: {', '.join(known) or 'none'}")


def config_file(value: str | os.PathLike, base: str | os.PathLike, key: str, *,
                error: type[ConfigError] = ConfigError) -> Path:
    """The existing file a config names at ``key``; a relative path is read from the folder ``base``.

    Raises
    ------
    ConfigError
        (or ``error``) No such file.
    """
    path = Path(value)
    path = path if path.is_absolute() else Path(base) / path
    if not path.is_file():
        raise error(f"{key} = {str(value)!r}: no such file ({str(path)!r}; a relative path is read from the "
                    "folder of the config file)")
    return path


def describe(value: Any) -> str:
    """A config value as an error message shows it: "the string '300'", "the number 1.5", ..."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return f"the list {list(value)!r}"
    return f"a {type(value).__name__}"


# -- type checking from annotations ------------------------------------------------------------

class _Mismatch(Exception):
    """A value does not match a type (caught by the union or field that tries it)."""


def _expects(tp: Any) -> str:
    """What a field of type ``tp`` accepts, in words."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return "any value"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expects(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} {_plural(args[0])}" if len(set(args)) == 1 else f"a list {list(args)}"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a table"
    if isinstance(tp, type) and issubclass(tp, Schema):
        return "a table"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _choices(tp: Any) -> list[str]:
    """The strings a ``Literal`` (also inside a union) allows."""
    if typing.get_origin(tp) is typing.Literal:
        return [a for a in typing.get_args(tp) if isinstance(a, str)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [c for a in typing.get_args(tp) for c in _choices(a)]
    return []


def _plural(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, Schema):
        return "tables"
    return {bool: "booleans", int: "integers", float: "numbers", str: "strings"}.get(tp, _expects(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` as type ``tp`` (an integral float as int, an int as float), else :class:`_Mismatch`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        if isinstance(value, str) and value in args:
            return value
        raise _Mismatch
    if tp in (bool, str):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
        raise _Mismatch
    if isinstance(tp, type) and issubclass(tp, Schema):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return tp.from_config(value, where=where)  # its own errors name the nested key
        raise _Mismatch
    raise TypeError(f"reprs.config cannot check values of type {tp!r}")  # a schema author's mistake


# -- schemas ---------------------------------------------------------------------------------

#: The key path of the table being built (set by ``from_config``, read by ``__post_init__``).
_WHERE: contextvars.ContextVar[str | None] = contextvars.ContextVar("reprs_config_where", default=None)


class Schema:
    """Base class of config tables: frozen dataclasses checked from their annotations.

    A subclass is a ``@dataclasses.dataclass(frozen=True)`` whose fields are the table's keys;
    a field's ``metadata={"expects": "..."}`` replaces the generated description of what it
    accepts in error messages. A subclass may define ``check(self, where)`` for ranges and
    combinations of keys (raise ``self.ERROR`` naming ``where``), and the class attributes
    ``TABLE`` (the key path used when it is built directly, e.g. ``"md"``) and ``ERROR`` (a
    subclass of :class:`ConfigError` that a package raises for its configs).

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Output(Schema):
    ...     path: str
    ...     checkpoint_every: int = 1000
    >>> Output.from_config({"path": "a.db", "checkpoint_every": 500.0}, where="output")
    Output(path='a.db', checkpoint_every=500)
    """

    TABLE: typing.ClassVar[str] = ""
    ERROR: typing.ClassVar[type[ConfigError]] = ConfigError

    def __post_init__(self) -> None:
        where = _WHERE.get()
        where = type(self).TABLE if where is None else where
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is dataclasses.MISSING:
                continue
            try:
                coerced = _coerce(value, hints[field.name], _key(where, field.name))
            except _Mismatch:
                expects = field.metadata.get("expects") or _expects(hints[field.name])
                guess = did_you_mean(value, _choices(hints[field.name])) if isinstance(value, str) else None
                hint = f"; did you mean {guess!r}?" if guess else ""
                raise self.ERROR(f"{_key(where, field.name)} must be {expects}, got {describe(value)}{hint}") from None
            object.__setattr__(self, field.name, coerced)
        self.check(where)

    def check(self, where: str) -> None:
        """Checks beyond the types (ranges, combinations); raise ``self.ERROR`` naming ``where``."""

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | Schema, *, where: str | None = None):
        """The table as this schema (a schema object is returned as it is).

        Parameters
        ----------
        table : mapping
            The table's keys and values (from TOML or a dict).
        where : str, optional
            Its key path in the config, for messages (``"stages[0]"``, ``"md"``; ``""`` for the top
            level); default the class's ``TABLE``.

        Raises
        ------
        ConfigError
            An unknown key (with a suggestion), a value of the wrong type or out of range (with its
            key path), or a missing required key.
        """
        where = cls.TABLE if where is None else where
        if isinstance(table, cls):
            return table
        if not isinstance(table, Mapping):
            raise cls.ERROR(f"{where or 'the config'} must be a table, got {describe(table)}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        check_keys(table, fields, where, error=cls.ERROR)
        hints = typing.get_type_hints(cls)
        for name, field in fields.items():
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if required and name not in table:
                expects = field.metadata.get("expects") or _expects(hints[name])
                raise cls.ERROR(f"{where or 'the config'} needs {name!r} ({expects})")
        return cls.build(where, **table)

    @classmethod
    def build(cls, where: str, /, **values: Any):
        """``cls(**values)`` with messages naming the key path ``where`` (for custom ``from_config``)."""
        token = _WHERE.set(where)
        try:
            return cls(**values)
        finally:
            _WHERE.reset(token)


# Command-line values


def int_at_least(minimum: int, *, also: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for integers ``>= minimum`` (or equal to ``also``, e.g. -1 for all cores).

    argparse reports a refused value as ``argument --top: ...`` with exit status 2.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not (value >= minimum or value == also):
            valid = f"an integer >= {minimum}" + (f" or {also}" if also is not None else "")
            raise argparse.ArgumentTypeError(f"expected {valid}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in some messages
    return parse


def positive_float(text: str) -> float:
    """An argparse ``type`` for finite numbers > 0 (seconds, lengths)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_progress_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--quiet`` (no progress bars) and ``--progress`` (bars even when stderr is not a terminal)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    group.add_argument(
        "--progress", action="store_true", help="progress bars even when stderr is not a terminal (default: only on one)"
    )


def progress_wanted(args: argparse.Namespace) -> bool:
    """Whether to show progress: ``--progress``, else not ``--quiet`` and stderr is a terminal."""
    if args.quiet:
        return False
    return bool(args.progress) or sys.stderr.isatty()
