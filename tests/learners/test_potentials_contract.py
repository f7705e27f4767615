"""The shared potential contract (tests/potential_contract.py) over learners.potentials: SchNet,
PaiNN, a committee, and a model loaded back from the store format.

Learned models compute in their own dtype: asked for another they refuse (``exact_in_any_dtype``
False). Every public ``nn.Module`` of learners.potentials must have a case here.
"""

from __future__ import annotations

import inspect

import pytest
import torch

import learners.potentials as lp
from tests.potential_contract import CHECKS, F64, PotentialCase, applicable

#: Base classes that are not models by themselves.
ABSTRACT = {"NeuralPotential"}
SMALL = {"cutoff": 4.0, "n_features": 16, "n_interactions": 2}


_STORE: dict = {}


@pytest.fixture(autouse=True, scope="module")
def _store_file(tmp_path_factory):
    """A committee of two PaiNN models written in the store format, for the "store" case."""
    path = tmp_path_factory.mktemp("store") / "committee.pt"
    lp.save_potential(lp.Committee.build(lp.PaiNN, k=2, seed=3, **SMALL), path)
    _STORE["path"] = path


def _stored(dtype, device):
    return lp.load_potential(_STORE["path"], device=device, dtype=dtype)


CASES = {
    "SchNet": PotentialCase(lambda dtype, device: lp.SchNet(**SMALL, dtype=dtype, device=device),
                            exact_in_any_dtype=False),
    "PaiNN": PotentialCase(lambda dtype, device: lp.PaiNN(**SMALL, dtype=dtype, device=device),
                           exact_in_any_dtype=False),
    "Committee": PotentialCase(lambda dtype, device: lp.Committee.build(lp.SchNet, k=2, cutoff=4.0, n_features=8,
                                                                        n_interactions=1, dtype=dtype, device=device),
                               exact_in_any_dtype=False),
    "store": PotentialCase(_stored, exact_in_any_dtype=False),
}


def test_every_model_has_a_case():
    public = {name for name in lp.__all__ if inspect.isclass(getattr(lp, name))
              and issubclass(getattr(lp, name), torch.nn.Module)} - ABSTRACT
    assert {"SchNet", "PaiNN", "Committee"} <= public  # the enumeration works
    covered = {type(case.make(F64, None)).__name__ for case in CASES.values()}
    assert public <= covered, f"add a PotentialCase for {sorted(public - covered)}"


@pytest.mark.parametrize("name,check", applicable(CASES))
def test_contract(name, check):
    CHECKS[check](CASES[name])
