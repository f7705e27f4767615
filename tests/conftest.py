"""Shared fixtures and helpers of the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Third-party reference data (read in place, never copied into the project).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def glamour_dir() -> Path:
    """The GLAMOUR paper's own tables; the test is skipped where they are absent."""
    path = SHARED_DATA / "glamour"
    if not path.is_dir():
        pytest.skip(f"GLAMOUR reference tables not found at {path}")
    return path
