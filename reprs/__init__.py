"""reprs: representation builders for molecules, macromolecules and materials."""

from __future__ import annotations

from reprs import errors

__all__ = ["errors"]
