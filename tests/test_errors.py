"""One error hierarchy for the four packages (reprs.errors at its root).

Every exception class defined anywhere in reprs, graphs, learners and sims derives from
``MatrepError``; shared conditions exist once (``MissingCellError``), and the two stop conditions
of a run are one family (``except SimulationStopped`` catches a committee's stop too).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import torch
from ase.build import bulk

import sims
from learners.potentials import Committee, SchNet, UncertaintyExceeded, UncertaintyMonitor
from reprs import errors as reprs_errors
from reprs.errors import InputError, MatrepError
from sims.errors import SimsError, SimsInputError, SimulationStopped

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reprs", "graphs", "learners", "sims")
#: Modules that need an optional extra to import; they are still walked where it is installed.
OPTIONAL = {"sims.pyscf_calculator"}


def _our_exception_classes() -> dict[str, type]:
    found = {}
    for package in PACKAGES:
        names = [package] + [m.name for m in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")]
        for name in names:
            try:
                module = importlib.import_module(name)
            except ImportError:
                if name in OPTIONAL:
                    continue
                raise
            for _, cls in inspect.getmembers(module, inspect.isclass):
                # Warnings are not errors: they never stop a computation. Private classes
                # (``_Mismatch``) are control-flow signals caught where they are raised.
                if (cls.__module__ == name and issubclass(cls, BaseException) and not issubclass(cls, Warning)
                        and not cls.__name__.startswith("_")):
                    found[f"{name}.{cls.__qualname__}"] = cls
    return found


def test_the_walk_finds_the_classes_of_every_package():
    found = _our_exception_classes()
    for name in ("reprs.errors.InputError", "graphs.errors.UnknownMetricError", "learners.errors.NotFittedError",
                 "sims.errors.SimsError", "learners.potentials.committee.UncertaintyExceeded"):
        assert name in found


def test_every_exception_class_derives_from_matrep_error():
    outside = sorted(name for name, cls in _our_exception_classes().items() if not issubclass(cls, MatrepError))
    assert not outside, f"not MatrepError subclasses: {outside}"


def test_sims_errors_join_the_hierarchy():
    assert issubclass(SimsError, MatrepError)
    assert issubclass(SimsInputError, InputError) and issubclass(SimsInputError, ValueError)
    assert issubclass(SimulationStopped, RuntimeError)


def test_missing_cell_error_is_one_class():
    import graphs.errors
    import learners.errors
    import sims.errors

    assert sims.errors.MissingCellError is reprs_errors.MissingCellError
    assert sims.MissingCellError is reprs_errors.MissingCellError
    defined = [name for name, cls in _our_exception_classes().items() if cls.__name__ == "MissingCellError"]
    assert defined == ["reprs.errors.MissingCellError"]
    # graphs and learners re-export, never redefine
    for module in (graphs.errors, learners.errors):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and value.__module__ != module.__name__:
                assert getattr(reprs_errors, name) is value


def test_a_committee_stop_is_caught_as_simulation_stopped():
    assert issubclass(UncertaintyExceeded, SimulationStopped)
    committee = Committee.build(SchNet, k=2, seed=0, cutoff=4.0, n_features=8, n_rbf=8, n_interactions=1)
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True)
    atoms.rattle(0.05, seed=1)

    def run():
        stopper = UncertaintyMonitor(committee, threshold=1e-12, stop=True)
        md = sims.MD(atoms, committee, sims.VelocityVerlet(timestep=5.0), temperature=60.0, seed=3,
                     dtype=torch.float32, callback=stopper)
        md.run(3)

    with pytest.raises(SimulationStopped, match="at step 1"):
        run()
    with pytest.raises(UncertaintyExceeded, match="at step 1"):
        run()
    with pytest.raises(MatrepError):
        run()
