"""Name featurizers and their parameters as text: ``get_featurizer("morgan:radius=2,n_bits=2048")``.

Grammar: ``NAME[:KEY=VALUE[,KEY=VALUE...]]``. A value is a number, ``true``/``false``, ``none``, a
bare word, or JSON (``[[1, 0.5], [2, 1.0]]``, ``{"function": "exp"}``; commas inside brackets or
quotes do not split). Tokens without ``=`` continue the previous value as a list, so
``species=Si,O,r_cut=5.0`` gives ``species=["Si", "O"]``. A dotted key fills a dict parameter
(``grid.min=0,grid.max=1`` gives ``grid={"min": 0, "max": 1}``). Values are then fitted to the
parameter's type hint: a single value for a list parameter becomes a one-element list, an int for a
float parameter becomes a float, and ``none`` stays the word ``"none"`` where None is not allowed
(DScribe's ``normalization="none"``). Parameter names are those of the featurizer classes, which
follow the wrapped libraries (DScribe, RDKit).
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import types
import typing
from typing import Any

from reprs.errors import ParseError, UnknownFeaturizerError
from reprs.featurizers.atomistic import ACSF, LMBTR, MBTR, SOAP, CoulombMatrix, EwaldSumMatrix, SineMatrix
from reprs.featurizers.base import Featurizer
from reprs.featurizers.composition import ElementProperty, FractionalComposition
from reprs.featurizers.crystal_graph import CrystalGraph
from reprs.featurizers.fingerprints import (
    AtomPairFingerprint,
    FeatureMorganFingerprint,
    MACCSKeys,
    MorganFingerprint,
    RDKitFingerprint,
    TopologicalTorsionFingerprint,
)
from reprs.featurizers.glycan_graph import GlycanGraph
from reprs.featurizers.molecular_graph import MolecularGraph

__all__ = ["get_featurizer", "register_featurizer", "available_featurizers", "parse_spec"]

_REGISTRY: dict[str, type[Featurizer]] = {}


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_featurizer(name: str, cls: type[Featurizer], *aliases: str) -> None:
    """Make ``cls`` available to :func:`get_featurizer` under ``name`` (and ``aliases``).

    Names are case-insensitive and ``-`` equals ``_``. Registering a taken name for another class
    raises :class:`~reprs.errors.InputError`-derived ``ParseError``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Featurizer)):
        raise TypeError(f"{cls!r} is not a Featurizer subclass")
    for key in (name, *aliases):
        key = _normalize(key)
        if _REGISTRY.get(key, cls) is not cls:
            raise ParseError(f"featurizer name {key!r} is already taken by {_REGISTRY[key].__name__}")
        _REGISTRY[key] = cls


def available_featurizers() -> dict[str, type[Featurizer]]:
    """Registered names (aliases included) and their classes."""
    return dict(sorted(_REGISTRY.items()))


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are outside brackets, braces and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for pos, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
            if depth < 0:
                raise ParseError("unbalanced closing bracket", text=text, position=pos)
        elif char == "," and depth == 0:
            parts.append(text[start:pos])
            start = pos + 1
    if depth or quote:
        raise ParseError("unclosed bracket or quote", text=text, position=len(text))
    parts.append(text[start:])
    return parts


def _parse_scalar(raw: str) -> Any:
    text = raw.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ParseError(f"invalid JSON value {text!r}: {err.msg}", text=text, position=err.pos) from err
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``NAME:k=v,...`` into the normalised name and raw parsed parameters.

    Values are parsed (numbers, booleans, none, JSON, words) but not yet fitted to type hints;
    multi-token values are lists ``[(value, raw_text), ...]`` and single values ``(value, raw)``.

    Raises
    ------
    ParseError
        For malformed text.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ParseError(f"featurizer spec must be a non-empty string like 'morgan:radius=2', got {spec!r}")
    name, _, rest = spec.partition(":")
    if not name.strip():
        raise ParseError("featurizer spec has no name before ':'", text=spec, position=0)
    params: dict[str, Any] = {}
    last_key: str | None = None
    offset = len(name) + 1
    if rest.strip():
        for token in _split_top_level(rest):
            key, eq, raw = token.partition("=")
            if eq and not any(c in key for c in "[{\"'"):
                key = key.strip()
                if not key.replace("_", "").replace(".", "").isalnum():
                    raise ParseError(f"invalid parameter name {key!r}", text=spec, position=offset)
                if key in params:
                    raise ParseError(f"parameter {key!r} given twice", text=spec, position=offset)
                params[key] = [(_parse_scalar(raw), raw.strip())]
                last_key = key
            elif last_key is None or not token.strip():
                raise ParseError(
                    f"expected KEY=VALUE, got {token!r}", text=spec, position=offset
                )
            else:
                params[last_key].append((_parse_scalar(token), token.strip()))
            offset += len(token) + 1
    return _normalize(name), params


def _kinds(hint: Any) -> set[str]:
    """What a type hint allows: some of list, dict, none, bool, int, float, str; 'any'."""
    if hint is Any:
        return {"any"}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(arg) for arg in typing.get_args(hint)))
    if origin is typing.Literal:
        return {type(v).__name__ if v is not None else "none" for v in typing.get_args(hint)}
    target = origin or hint
    if target is type(None):
        return {"none"}
    if target in (list, tuple, collections.abc.Sequence):
        return {"list"}
    if target in (dict, collections.abc.Mapping):
        return {"dict"}
    if target in (bool, int, float, str):
        return {target.__name__}
    return {"any"}


def _fit(name: str, values: list[tuple[Any, str]], kinds: set[str]) -> Any:
    """Fit parsed value(s) of parameter ``name`` to the kinds its type hint allows."""
    if "any" in kinds:
        return [v for v, _ in values] if len(values) > 1 else values[0][0]
    if len(values) > 1:
        if "list" not in kinds:
            raise ParseError(f"parameter {name!r} takes one value, got {len(values)}: {[r for _, r in values]}")
        return [v for v, _ in values]
    value, raw = values[0]
    if isinstance(value, list):
        if "list" in kinds:
            return value
        raise ParseError(f"parameter {name!r} does not take a list, got {raw!r}")
    if isinstance(value, dict):
        if "dict" in kinds:
            return value
        raise ParseError(f"parameter {name!r} does not take a dict, got {raw!r}")
    if "list" in kinds and value is not None and not kinds - {"list", "dict", "none"}:
        return [value]
    if value is None:
        return None if "none" in kinds else raw if "str" in kinds else value
    if isinstance(value, bool):
        return value if "bool" in kinds or "str" not in kinds else raw
    if isinstance(value, int):
        if "int" in kinds:
            return value
        if "float" in kinds:
            return float(value)
        if "str" in kinds:
            return raw
    if isinstance(value, float) and "float" not in kinds and "str" in kinds:
        return raw
    # A number or word where the hint allows neither was passed on and read by truth value
    # (soap:periodic=2 or periodic=yes became True).
    if (isinstance(value, (int, float)) and not kinds & {"int", "float"}) or (isinstance(value, str) and "str" not in kinds):
        raise ParseError(f"parameter {name!r} takes {' or '.join(sorted(kinds))}, got {raw!r}")
    return value


def get_featurizer(spec: str | Featurizer, **overrides: Any) -> Featurizer:
    """Build a featurizer from text such as ``"soap:species=Si,O,r_cut=5.0,average=inner"``.

    Parameters
    ----------
    spec : str or Featurizer
        ``NAME[:KEY=VALUE,...]`` (grammar in the module docstring), or a featurizer, returned as
        is (with ``overrides``, a new one with those parameters replaced).
    **overrides
        Parameters that replace those in ``spec``.

    Returns
    -------
    Featurizer

    Raises
    ------
    UnknownFeaturizerError
        For a name not registered (the message lists the names).
    ParseError
        For malformed text, unknown parameter names or missing required parameters.
    InputError
        For invalid parameter values (raised by the featurizer).

    Example
    -------
    >>> get_featurizer("morgan:radius=2,n_bits=2048")
    MorganFingerprint()
    """
    if isinstance(spec, Featurizer):
        return type(spec)(**{**spec.get_params(), **overrides}) if overrides else spec
    name, raw_params = parse_spec(spec)
    if name not in _REGISTRY:
        raise UnknownFeaturizerError(
            f"unknown featurizer {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        )
    cls = _REGISTRY[name]
    hints = typing.get_type_hints(cls.__init__)
    valid = cls._get_param_names()
    params: dict[str, Any] = {}
    for key, values in raw_params.items():
        top, _, sub = key.partition(".")
        if top not in valid:
            raise ParseError(
                f"{cls.__name__} has no parameter {top!r}; parameters: {', '.join(valid) or '(none)'}",
                text=spec,
            )
        if sub:
            nested = params.setdefault(top, {})
            if not isinstance(nested, dict):
                raise ParseError(f"parameter {top!r} given both as a value and with dotted keys", text=spec)
            nested[sub] = _fit(key, values, {"any"})
        else:
            if top in params:
                raise ParseError(f"parameter {top!r} given both as a value and with dotted keys", text=spec)
            params[top] = _fit(top, values, _kinds(hints.get(top, Any)))
    params.update(overrides)
    missing = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty and p.name not in params
    ]
    if missing:
        raise ParseError(
            f"{cls.__name__} needs the parameter(s) {', '.join(missing)}, e.g. {name}:{missing[0]}=...", text=str(spec)
        )
    return cls(**params)


for _name, _cls, *_aliases in (
    ("morgan", MorganFingerprint, "ecfp"),
    ("fcfp", FeatureMorganFingerprint, "feature_morgan"),
    ("rdkit", RDKitFingerprint, "topological"),
    ("maccs", MACCSKeys),
    ("atompair", AtomPairFingerprint, "atom_pair"),
    ("torsion", TopologicalTorsionFingerprint, "topological_torsion"),
    ("soap", SOAP),
    ("acsf", ACSF),
    ("mbtr", MBTR),
    ("lmbtr", LMBTR),
    ("coulomb_matrix", CoulombMatrix, "coulomb", "cm"),
    ("sine_matrix", SineMatrix, "sine"),
    ("ewald_sum_matrix", EwaldSumMatrix, "ewald"),
    ("crystal_graph", CrystalGraph),
    ("molecular_graph", MolecularGraph, "mol_graph"),
    ("glycan_graph", GlycanGraph, "glycan"),
    ("element_property", ElementProperty),
    ("fractional_composition", FractionalComposition),
):
    register_featurizer(_name, _cls, *_aliases)
