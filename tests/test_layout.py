"""The four packages keep their one-way arrows, and their imports resolve to this repository.

reprs imports none of the others; graphs imports only reprs; learners may import reprs and sims;
sims imports no other package of ours (../shared/STYLE.md, "Shape of the house").
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reprs", "graphs", "learners", "sims")
ALLOWED = {
    "reprs": set(),
    "graphs": {"reprs"},
    "learners": {"reprs", "sims"},
    "sims": set(),
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    for path in files:
        bad = _imported_packages(path) - ALLOWED[package] - {package}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}, not allowed for {package}"


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_resolve_here(package):
    # PyPI has unrelated packages called graphs, sims and learners.
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == ROOT / package
