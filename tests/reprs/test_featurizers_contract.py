"""Contract suite: one shared set of checks over every registered featurizer.

Every class in the registry must appear in CASES (a new featurizer joins the list and is checked
like the others): output shape and dtype, labels, determinism, batch = single calls, parallel =
serial, pickling and cloning, parameter round trip, bad input types and values, and for global
atomistic descriptors invariance to atom order, translation and rotation.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import networkx as nx
import numpy as np
import pytest
from tests.reprs.featurizer_inputs import copper, methanol, moved, permuted, quartz, quartz_atoms, silicon, water
from sklearn.base import clone

from reprs import errors
from reprs.featurizers import (
    ACSF,
    LMBTR,
    MBTR,
    SOAP,
    AtomPairFingerprint,
    CoulombMatrix,
    CrystalGraph,
    ElementProperty,
    EwaldSumMatrix,
    FeatureMorganFingerprint,
    FeaturizationWarning,
    Featurizer,
    FractionalComposition,
    GlycanGraph,
    MACCSKeys,
    MolecularGraph,
    MorganFingerprint,
    RDKitFingerprint,
    SineMatrix,
    TopologicalTorsionFingerprint,
    available_featurizers,
)

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O"]
K2 = dict(
    geometry={"function": "inverse_distance"},
    grid={"min": 0.0, "max": 1.2, "n": 20, "sigma": 0.05},
    weighting={"function": "exp", "scale": 1.0, "threshold": 1e-3},
)


@dataclass
class Case:
    make: Callable[[], Featurizer]
    good: Callable[[], list[Any]]
    bad_value: Callable[[], Any]
    bad_value_error: type[Exception]
    # global descriptors: a structure without symmetric ties, to permute, translate and rotate
    invariant_input: Callable[[], Any] | None = None


def _mols():
    from rdkit import Chem

    return [SMILES[0], Chem.MolFromSmiles(SMILES[1]), SMILES[2]]


def _molecules():
    return [water(), methanol(rattle=0.02, seed=1)]


def _crystals():
    return [quartz_atoms(rattle=0.02, seed=2), quartz(), silicon()]


def _empty():
    from ase import Atoms

    return Atoms()


def water_with_n():
    """Water with one atom turned into nitrogen: a species outside the featurizer's list."""
    atoms = water()
    atoms.numbers[0] = 7
    return atoms


FINGERPRINT = dict(good=_mols, bad_value=lambda: "C1CC", bad_value_error=errors.SmilesError)
CASES = {
    "morgan": Case(lambda: MorganFingerprint(radius=2, n_bits=256), **FINGERPRINT),
    "morgan-counts": Case(lambda: MorganFingerprint(radius=3, n_bits=128, counts=True, chirality=True), **FINGERPRINT),
    "fcfp": Case(lambda: FeatureMorganFingerprint(n_bits=256), **FINGERPRINT),
    "rdkit": Case(lambda: RDKitFingerprint(n_bits=256, max_path=5), **FINGERPRINT),
    "maccs": Case(MACCSKeys, **FINGERPRINT),
    "atompair": Case(lambda: AtomPairFingerprint(n_bits=256, counts=True), **FINGERPRINT),
    "torsion": Case(lambda: TopologicalTorsionFingerprint(n_bits=256), **FINGERPRINT),
    "soap-inner": Case(
        lambda: SOAP(species=["Si", "O"], r_cut=4.0, n_max=2, l_max=2, periodic=True, average="inner"),
        _crystals, _empty, errors.InputError, invariant_input=lambda: quartz_atoms(rattle=0.05, seed=5),
    ),
    "soap-sites": Case(
        lambda: SOAP(species=["H", "C", "O"], r_cut=4.0, n_max=2, l_max=2), _molecules, water_with_n, errors.InputError,
    ),
    "acsf": Case(
        lambda: ACSF(species=["H", "C", "O"], r_cut=4.0, g2_params=[[1.0, 0.0]], g4_params=[[0.5, 1.0, 1.0]]),
        _molecules, water_with_n, errors.InputError,
    ),
    "mbtr": Case(lambda: MBTR(species=["H", "C", "O"], **K2), _molecules, water_with_n, errors.InputError, invariant_input=lambda: methanol(rattle=0.05, seed=6)),
    "lmbtr": Case(lambda: LMBTR(species=["H", "C", "O"], **K2), _molecules, water_with_n, errors.InputError),
    "coulomb": Case(lambda: CoulombMatrix(n_atoms_max=6), _molecules, silicon, errors.InputError, invariant_input=lambda: methanol(rattle=0.05, seed=6)),
    "sine": Case(lambda: SineMatrix(n_atoms_max=9), _crystals, water, errors.MissingCellError, invariant_input=lambda: quartz_atoms(rattle=0.05, seed=5)),
    "ewald": Case(lambda: EwaldSumMatrix(n_atoms_max=9), _crystals, water, errors.MissingCellError, invariant_input=lambda: quartz_atoms(rattle=0.05, seed=5)),
    "crystal-graph": Case(lambda: CrystalGraph(r_cut=3.5, n_gaussians=8), lambda: [copper(), quartz()], _empty, errors.InputError),
    "crystal-graph-pyg": Case(
        lambda: CrystalGraph(r_cut=3.5, n_gaussians=8, max_neighbors=4, output="pyg"),
        lambda: [copper(), quartz()], _empty, errors.InputError,
    ),
    "molecular-graph": Case(lambda: MolecularGraph(hydrogens=True), **FINGERPRINT),
    "molecular-graph-pyg": Case(lambda: MolecularGraph(output="pyg"), **FINGERPRINT),
    "glycan-graph": Case(
        GlycanGraph, lambda: ["Gal(b1-4)[Fuc(a1-3)]GlcNAc", "Neu5Ac(a2-3)Gal(b1-4)Glc"], lambda: "Gal(b1-4", errors.GlycanParseError
    ),
    "glycan-graph-anomer": Case(
        lambda: GlycanGraph(linkage="anomer"), lambda: ["Man(a1-3)[Man(a1-6)]Man"], lambda: "Foo(b1-4)Gal", errors.UnknownMonomerError
    ),
    "element-property": Case(
        ElementProperty, lambda: ["Fe2O3", quartz(), silicon()], lambda: "Xx2O", errors.ParseError, invariant_input=lambda: quartz_atoms(rattle=0.05, seed=5)
    ),
    "fractional": Case(
        FractionalComposition, lambda: ["Fe2O3", quartz(), water()], lambda: "Fe2Q3", errors.ParseError, invariant_input=lambda: methanol(rattle=0.05, seed=6)
    ),
}


def _outputs_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, nx.Graph):
        edges = (lambda g: list(g.edges(keys=True))) if a.is_multigraph() else (lambda g: list(g.edges))
        return (
            sorted(a.nodes) == sorted(b.nodes)
            and sorted(edges(a)) == sorted(edges(b))
            and all(np.array_equal(a.edges[e]["x"], b.edges[e]["x"]) for e in edges(a))
        )
    keys = sorted(a.keys())
    return keys == sorted(b.keys()) and all(
        np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in keys
    )


def _n_atoms(featurizer: Featurizer, obj: Any) -> int:
    converted = featurizer.convert(obj)
    if isinstance(converted, str):  # a glycan: one node per residue the parser finds
        from reprs.iupac import parse_iupac

        return len(parse_iupac(converted).residues)
    if hasattr(converted, "GetNumAtoms"):  # RDKit Mol: hydrogens are nodes only when asked for
        from rdkit import Chem

        return (Chem.AddHs(converted) if getattr(featurizer, "hydrogens", False) else converted).GetNumAtoms()
    return len(converted)


def _check_output(featurizer: Featurizer, out: Any, obj: Any) -> None:
    if featurizer.fixed_length:
        assert isinstance(out, np.ndarray) and out.shape == (featurizer.n_features,)
        assert out.dtype == featurizer.dtype
        assert np.all(np.isfinite(out))
    elif isinstance(out, np.ndarray):  # per-site rows
        n_atoms = len(featurizer.convert(obj))
        assert out.shape == (n_atoms, featurizer.n_features) and out.dtype == featurizer.dtype
        assert np.all(np.isfinite(out))
    elif isinstance(out, nx.Graph):
        assert out.number_of_nodes() == _n_atoms(featurizer, obj)
        for _, _, data in out.edges(data=True):
            assert data["x"].shape == (featurizer.n_features,)
        for _, data in out.nodes(data=True):
            assert isinstance(data["label"], str) and data["x"].ndim == 1
    else:  # torch_geometric Data
        assert out.edge_attr.shape == (out.edge_index.shape[1], featurizer.n_features)
        assert out.x.shape[0] == _n_atoms(featurizer, obj)


@pytest.fixture(params=sorted(CASES), scope="module")
def case(request):
    return CASES[request.param]


def test_every_registered_featurizer_has_a_case():
    covered = {type(c.make()) for c in CASES.values()}
    missing = set(available_featurizers().values()) - covered
    assert not missing, f"add contract cases for {sorted(c.__name__ for c in missing)}"


def test_outputs_labels_and_determinism(case):
    featurizer = case.make()
    labels = featurizer.feature_labels()
    assert len(labels) == featurizer.n_features > 0
    assert len(set(labels)) == len(labels) and all(isinstance(x, str) for x in labels)
    for obj in case.good():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # crystal-graph truncation is reported by warning
            first, second = featurizer.featurize(obj), featurizer.featurize(obj)
        _check_output(featurizer, first, obj)
        assert _outputs_equal(first, second)


def test_batch_equals_single_calls(case):
    featurizer = case.make()
    objs = case.good()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        singles = [featurizer.featurize(o) for o in objs]
        batch = featurizer.featurize_many(objs, progress=False)
    if featurizer.fixed_length:
        assert batch.shape == (len(objs), featurizer.n_features) and batch.dtype == featurizer.dtype
        assert np.array_equal(batch, np.stack(singles))
        assert np.array_equal(featurizer.fit(objs).transform(objs), batch)
        assert list(featurizer.get_feature_names_out()) == featurizer.feature_labels()
    else:
        assert len(batch) == len(objs)
        assert all(_outputs_equal(a, b) for a, b in zip(singles, batch))
        with pytest.raises(errors.InputError, match="variable-size"):
            featurizer.transform(objs)


def test_parallel_equals_serial():
    # Worker processes cost seconds to start, so three kinds of output stand for all: every
    # featurizer's pickling (what workers need) is checked in test_pickle_clone_and_params_round_trip.
    for name in ("morgan", "soap-inner", "crystal-graph"):
        case = CASES[name]
        featurizer = case.make()
        objs = case.good() * 3
        serial = featurizer.featurize_many(objs, progress=False)
        parallel = featurizer.featurize_many(objs, n_jobs=2, progress=False)
        if featurizer.fixed_length:
            assert np.array_equal(parallel, serial)
        else:
            assert all(_outputs_equal(a, b) for a, b in zip(serial, parallel))
    with pytest.warns(FeaturizationWarning, match="2 of 4"):
        out, failures = CASES["morgan"].make().featurize_many(
            ["CCO", "C1CC", 7, "CCN"], n_jobs=2, progress=False, errors="nan", return_failures=True
        )
    assert [(f.index, f.error) for f in failures] == [(1, "SmilesError"), (2, "InputTypeError")]
    assert np.isnan(out[[1, 2]]).all() and np.isfinite(out[[0, 3]]).all()


def test_pickle_clone_and_params_round_trip(case):
    featurizer = case.make()
    obj = case.good()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = featurizer.featurize(obj)
        for other in (pickle.loads(pickle.dumps(featurizer)), clone(featurizer), type(featurizer)(**featurizer.get_params())):
            assert repr(other) == repr(featurizer)
            assert _outputs_equal(other.featurize(obj), expected)
    with pytest.raises(errors.InputError, match="no parameter"):
        featurizer.set_params(not_a_parameter=1)


def test_bad_inputs_raise_clear_errors(case):
    featurizer = case.make()
    with pytest.raises(errors.InputTypeError, match="expected"):
        featurizer.featurize(12345)
    with pytest.raises(case.bad_value_error):
        featurizer.featurize(case.bad_value())
    good = case.good()[0]
    with pytest.raises(errors.FeaturizationError, match="row 1") as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        featurizer.featurize_many([good, 12345, good], progress=False)
    assert isinstance(info.value.__cause__, errors.InputTypeError)
    with pytest.warns(Warning):  # FeaturizationWarning, plus truncation warnings for some
        out, failures = featurizer.featurize_many(
            [good, case.bad_value(), good], progress=False, errors="nan", return_failures=True
        )
    assert [f.index for f in failures] == [1]
    assert issubclass(case.bad_value_error, getattr(errors, failures[0].error))
    if featurizer.fixed_length:
        assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
        assert np.issubdtype(out.dtype, np.floating)
    else:
        assert out[1] is None and out[0] is not None
    with pytest.raises(errors.InputError):
        featurizer.featurize_many([good], errors="ignore")
    with pytest.raises(errors.InputTypeError):
        featurizer.featurize_many("CCO")


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.invariant_input is not None))
def test_global_descriptors_are_invariant(name):
    case = CASES[name]
    featurizer = case.make()
    atoms = case.invariant_input()
    reference = featurizer.featurize(atoms)
    for variant in (permuted(atoms, seed=3), moved(atoms, seed=4)):
        np.testing.assert_allclose(featurizer.featurize(variant), reference, rtol=1e-7, atol=1e-8)


def test_featurizers_drop_into_scikit_learn_pipelines():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    smiles = ["C", "CC", "CCC", "CCCC", "CCO", "CCCO", "c1ccccc1", "c1ccccc1O"]
    y = [1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 6.0, 7.0]
    pipeline = make_pipeline(MorganFingerprint(n_bits=64, counts=True), Ridge(alpha=1e-3))
    search = GridSearchCV(pipeline, {"morganfingerprint__radius": [0, 1]}, cv=2).fit(smiles, y)
    assert search.best_params_["morganfingerprint__radius"] in (0, 1)
    # the fitted pipeline reproduces a hand-made fit on the same features
    features = MorganFingerprint(n_bits=64, counts=True, radius=1).featurize_many(smiles, progress=False)
    direct = Ridge(alpha=1e-3).fit(features, y).predict(features)
    fitted = pipeline.set_params(morganfingerprint__radius=1).fit(smiles, y)
    np.testing.assert_allclose(fitted.predict(smiles), direct)
