"""The README's code runs as written, and the glycan counts it states are the code's.

Every ```python block of README.md runs, in order, in one namespace shared by all blocks (the README
reads as one session: the tour's ``G`` is compared in the similarity section). A block is marked by
an HTML comment on the line just above its fence, visible in the README and in the test id:

``<!-- readme-test: slow (why) -->``
    marked ``pytest.mark.slow``: it takes more than 20 s (e.g. builds graphs for every bundled glycan).
``<!-- readme-test: needs MODULE (extra) -->``
    skipped, with that reason, where MODULE (an optional extra) is not installed.

Fast blocks run on the namespace of the fast blocks before them only, so that the default suite
never depends on a slow block; slow blocks run after every block before them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MARK = re.compile(r"<!-- readme-test: (slow|needs) ?([\w.]*)[^>]*-->\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    code: str
    slow: bool
    needs: str | None  # module of an optional extra

    @property
    def id(self) -> str:
        mark = " [slow]" if self.slow else f" [needs {self.needs}]" if self.needs else ""
        return f"README.md:{self.line}{mark}"


def _blocks() -> list[Block]:
    text = README.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        above = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(above)
        kind, what = (mark.group(1), mark.group(2)) if mark else ("", "")
        if kind == "needs" and not what:
            raise AssertionError(f"README.md:{line}: write the module a block needs: readme-test: needs MODULE")
        blocks.append(Block(line, match.group(1), kind == "slow", what if kind == "needs" else None))
    return blocks


BLOCKS = _blocks()
_sessions: dict[bool, tuple[dict, int]] = {}  # with slow blocks or not -> (namespace, blocks run)


def _runnable(block: Block) -> bool:
    return block.needs is None or importlib.util.find_spec(block.needs) is not None


def _run(block: Block, namespace: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the README shows results, not warnings
        exec(compile(block.code, f"{README}:{block.line}", "exec"), namespace)


def _session(upto: int, with_slow: bool) -> dict:
    """The namespace after the blocks before ``upto`` (slow ones only ``with_slow``)."""
    namespace, done = _sessions.get(with_slow, ({"__name__": "readme"}, 0))
    for block in BLOCKS[done:upto]:
        if (with_slow or not block.slow) and _runnable(block):
            _run(block, namespace)
    _sessions[with_slow] = (namespace, max(done, upto))
    return namespace


def _param(index: int, block: Block):
    marks = [pytest.mark.slow] if block.slow else []
    if not _runnable(block):
        marks.append(pytest.mark.skip(reason=f"needs {block.needs} (an optional extra)"))
    return pytest.param(index, block, id=block.id, marks=marks)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize(("index", "block"), [_param(i, b) for i, b in enumerate(BLOCKS)])
def test_readme_block_runs(index, block, tmp_path):
    cwd = os.getcwd()
    os.chdir(tmp_path)  # files a block writes land in a scratch folder
    try:
        namespace = _session(index, block.slow)
        _run(block, namespace)
    finally:
        os.chdir(cwd)


def test_glycan_counts_stated_in_the_readme():
    from glycowork.glycan_data.loader import df_species

    from reprs.datasets import load_glycans
    from reprs.glycans import glycan_coverage

    text = README.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 3 malformed strings are announced by a warning
        table = load_glycans(level="Kingdom")
    coverage = glycan_coverage(table["glycan"])
    counts = {
        "glycowork's table": df_species["glycan"].nunique(),
        "well-formed": len(table),
        "Kingdom classes of at least 20": int((table["label"].map(table["label"].value_counts()) >= 20).sum()),
        "every monomer resolved": coverage["n_resolved"],
        "graphs built": coverage["n_buildable"],
    }
    assert counts == {
        "glycowork's table": 23745,
        "well-formed": 23742,
        "Kingdom classes of at least 20": 23715,
        "every monomer resolved": 23527,
        "graphs built": 23522,
    }
    stated = {int(n.replace(",", "")) for n in re.findall(r"\b\d\d,\d\d\d\b", text)}
    glycan_like = {n for n in stated if 23000 < n < 24000}
    assert glycan_like <= set(counts.values()), f"README states glycan counts the code does not give: {glycan_like}"
    for count in counts.values():
        assert f"{count:,}" in text
