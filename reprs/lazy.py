"""Names of a package that load on first use (PEP 562), so that importing the package stays cheap.

``matrep`` registers the subcommands of all four packages at start-up; with eager package
``__init__`` files that alone imported torch, PyTorch Geometric, scikit-learn and GraKeL before any
command ran (seconds). A package lists its public names and where they live, and gets the module
``__getattr__`` and ``__dir__`` that import them when first asked for.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: Mapping[str, tuple[str, str | None]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``names`` map to ``(module, attribute)``.

    ``attribute`` None exports the module itself. A loaded name is stored in the package's
    namespace, so it is imported once.

    Examples
    --------
    >>> __getattr__, __dir__ = lazy_exports(__name__, {"MD": ("sims.md", "MD")})  # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        try:
            module, attr = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = importlib.import_module(module)
        if attr is not None:
            value = getattr(value, attr)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
