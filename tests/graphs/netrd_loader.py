"""netrd's D-measure as a peer reference, for tests/graphs/test_dmeasure.py and benchmarks/dmeasure.py.

``import netrd`` runs ``netrd/distance/__init__``, which imports every distance, and one of them
(``nbd``) needs ortools, a large optional solver that this project does not install (netrd itself
is installed with ``pip install --no-deps netrd``). When that import fails, the ``dmeasure``
submodule is loaded under temporary empty parent packages (its own imports are numpy, scipy,
networkx and netrd's ``utilities``), and ``sys.modules`` is restored afterwards so that nothing
else sees the stubs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

NOT_INSTALLED = "netrd is not installed (pip install --no-deps netrd)"


def netrd_installed() -> bool:
    """Whether the netrd package can be found (imported or not)."""
    spec = importlib.util.find_spec("netrd")
    return spec is not None and bool(spec.submodule_search_locations)


def netrd_dmeasure_class() -> type:
    """netrd's ``DMeasure`` class, importing only its submodule when ``import netrd`` lacks ortools.

    Raises
    ------
    ModuleNotFoundError
        If netrd is not installed.
    """
    try:
        from netrd.distance import DMeasure

        return DMeasure
    except ImportError:
        pass
    if not netrd_installed():
        raise ModuleNotFoundError(NOT_INSTALLED)
    root = list(importlib.util.find_spec("netrd").submodule_search_locations)[0]
    saved = {k: m for k, m in sys.modules.items() if k == "netrd" or k.startswith("netrd.")}
    try:
        for name, path in (("netrd", root), ("netrd.distance", f"{root}/distance")):
            stub = types.ModuleType(name)
            stub.__path__ = [path]
            sys.modules[name] = stub
        return importlib.import_module("netrd.distance.dmeasure").DMeasure
    finally:
        for k in [k for k in sys.modules if k == "netrd" or k.startswith("netrd.")]:
            del sys.modules[k]
        sys.modules.update(saved)
