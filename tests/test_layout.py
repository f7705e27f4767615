"""The four packages keep their one-way arrows, and their imports resolve to this repository.

reprs imports none of the others; graphs imports only reprs; learners may import reprs and sims;
sims imports only reprs' base layer (errors, atoms conversion and validation, atomic file and frame
I/O, config parsing: ``reprs.BASE_LAYER``), and the base layer imports nothing else of reprs
(../shared/STYLE.md, "Shape of the house").
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reprs", "graphs", "learners", "sims")
ALLOWED = {
    "reprs": set(),
    "graphs": {"reprs"},
    "learners": {"reprs", "sims"},
    "sims": {"reprs"},
}
#: Read from reprs/__init__.py without importing it.
BASE_LAYER = set(ast.literal_eval(next(
    node.value for node in ast.parse((ROOT / "reprs" / "__init__.py").read_text()).body
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "BASE_LAYER")))


def _imported_modules(path: Path) -> set[str]:
    """Absolute module names imported by ``path`` (``from reprs import errors`` counts as ``reprs.errors``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module in PACKAGES:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def _imported_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(path)} & set(PACKAGES)


def _module_path(name: str) -> Path:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    for path in files:
        bad = _imported_packages(path) - ALLOWED[package] - {package}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}, not allowed for {package}"


def test_sims_imports_only_the_base_layer_of_reprs():
    for path in sorted((ROOT / "sims").rglob("*.py")):
        bad = {m for m in _imported_modules(path) if m.split(".")[0] == "reprs"} - BASE_LAYER
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; sims may use only {sorted(BASE_LAYER)}"


def test_base_layer_imports_nothing_else_of_reprs():
    for name in sorted(BASE_LAYER):
        path = _module_path(name)
        if not path.exists():
            continue
        bad = {m for m in _imported_modules(path) if m.split(".")[0] == "reprs"} - BASE_LAYER
        assert not bad, f"{name} is in reprs' base layer but imports {sorted(bad)}"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{name}: use absolute imports in the base layer")


def test_importing_sims_loads_no_heavy_part_of_reprs():
    code = ("import sys, sims; bad = sorted(m for m in sys.modules if m.startswith('reprs.') and m not in "
            f"{sorted(BASE_LAYER)!r}); print(bad); assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_resolve_here(package):
    # PyPI has unrelated packages called graphs, sims and learners.
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == ROOT / package
