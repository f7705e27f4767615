"""reprs.config: one TOML loader, and schemas that refuse unknown keys, wrong types and missing values."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from reprs.config import Schema, check_keys, config_file, did_you_mean, load_toml
from reprs.errors import ConfigError, InputError


@dataclasses.dataclass(frozen=True)
class _Inner(Schema):
    TABLE = "inner"
    n: int
    x: float = 1.0


@dataclasses.dataclass(frozen=True)
class _Outer(Schema):
    name: str
    temperature: float | tuple[float, float] | None = dataclasses.field(
        default=None, metadata={"expects": "a number or [start, end] in K"})
    mode: Literal["a", "b"] = "a"
    flag: bool = False
    inner: _Inner = dataclasses.field(default_factory=lambda: _Inner(n=1))
    items: tuple[_Inner, ...] = ()
    free: dict = dataclasses.field(default_factory=dict)

    def check(self, where: str) -> None:
        if self.mode == "b" and self.temperature is None:
            raise ConfigError(f"{where}.temperature is required when mode = 'b'")


def test_load_toml(tmp_path):
    good = tmp_path / "a.toml"
    good.write_text('seed = 1\n[md]\ndtype = "float64"\n')
    assert load_toml(good) == {"seed": 1, "md": {"dtype": "float64"}}
    bad = tmp_path / "b.toml"
    bad.write_text("seed = 1\n[md\n")
    with pytest.raises(ConfigError, match=r"b\.toml.*not valid TOML.*line 2, column 4"):
        load_toml(bad)
    yaml = tmp_path / "c.yaml"
    yaml.write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="not a TOML file"):
        load_toml(yaml)
    with pytest.raises(ConfigError, match="not found"):
        load_toml(tmp_path / "missing.toml")
    assert issubclass(ConfigError, InputError) and issubclass(ConfigError, ValueError)


def test_unknown_keys_get_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown key 'temprature' in stages\[0\]; did you mean 'temperature'\? "
                                          r"known: flag, free, inner, items, mode, name, temperature"):
        _Outer.from_config({"name": "x", "temprature": 300}, where="stages[0]")
    with pytest.raises(ConfigError, match=r"unknown key 'zzz' at the top level of the config; known:"):
        _Outer.from_config({"name": "x", "zzz": 1}, where="")
    with pytest.raises(ConfigError, match=r"unknown key 'xx' in top\.inner; did you mean 'x'"):
        _Outer.from_config({"name": "x", "inner": {"n": 1, "xx": 2}}, where="top")
    assert did_you_mean("subsampel", ["subsample", "source", "path"]) == "subsample"
    assert did_you_mean("qqqq", ["subsample"]) is None
    check_keys({"a": 1}, ["a", "b"], "t")


def test_types_are_checked_with_the_key_path():
    with pytest.raises(ConfigError, match=r"stages\[0\]\.temperature must be a number or \[start, end\] in K, "
                                          r"got the string '300'"):
        _Outer.from_config({"name": "x", "temperature": "300"}, where="stages[0]")
    with pytest.raises(ConfigError, match=r"t\.temperature must be .* got the list \[1, 2, 3\]"):
        _Outer.from_config({"name": "x", "temperature": [1, 2, 3]}, where="t")
    with pytest.raises(ConfigError, match=r"t\.inner\.n must be an integer, got the number 1\.5"):
        _Outer.from_config({"name": "x", "inner": {"n": 1.5}}, where="t")
    with pytest.raises(ConfigError, match=r"t\.inner\.x must be a number, got the boolean true"):
        _Outer.from_config({"name": "x", "inner": {"n": 1, "x": True}}, where="t")
    with pytest.raises(ConfigError, match=r"t\.flag must be true or false, got the integer 1"):
        _Outer.from_config({"name": "x", "flag": 1}, where="t")
    with pytest.raises(ConfigError, match=r"t\.mode must be one of 'a', 'b', got the string 'c'"):
        _Outer.from_config({"name": "x", "mode": "c"}, where="t")
    with pytest.raises(ConfigError, match=r"t\.items\[1\]\.n must be an integer"):
        _Outer.from_config({"name": "x", "items": [{"n": 1}, {"n": "2"}]}, where="t")
    with pytest.raises(ConfigError, match=r"t\.inner must be a table, got the integer 3"):
        _Outer.from_config({"name": "x", "inner": 3}, where="t")
    # Integral floats are ints (TOML writes 1000.0), ints are floats, lists of two numbers are pairs.
    got = _Outer.from_config({"name": "x", "temperature": [300, 200.0], "inner": {"n": 4.0, "x": 2},
                              "items": [{"n": 1}]}, where="t")
    assert got.temperature == (300.0, 200.0) and isinstance(got.temperature[0], float)
    assert got.inner == _Inner(n=4, x=2.0) and isinstance(got.inner.n, int) and isinstance(got.inner.x, float)
    assert got.items == (_Inner(n=1),)
    assert _Outer.from_config(got) is got


def test_missing_required_values_are_named():
    with pytest.raises(ConfigError, match=r"stages\[2\] needs 'name' \(a string\)"):
        _Outer.from_config({}, where="stages[2]")
    with pytest.raises(ConfigError, match=r"t\.inner needs 'n' \(an integer\)"):
        _Outer.from_config({"name": "x", "inner": {}}, where="t")
    with pytest.raises(ConfigError, match=r"s\.temperature is required when mode = 'b'"):
        _Outer.from_config({"name": "x", "mode": "b"}, where="s")
    # Building a schema directly runs the same checks, named by its TABLE.
    with pytest.raises(ConfigError, match=r"inner\.n must be an integer, got the string '1'"):
        _Inner(n="1")


def test_config_file(tmp_path):
    (tmp_path / "a.xyz").write_text("")
    assert config_file("a.xyz", tmp_path, "system.path") == tmp_path / "a.xyz"
    with pytest.raises(ConfigError, match=r"system\.path = 'b\.xyz': no such file"):
        config_file("b.xyz", tmp_path, "system.path")
