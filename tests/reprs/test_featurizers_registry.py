"""Featurizers named as text: parsing, type fitting, round trips and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprs import errors
from reprs.featurizers import (
    ACSF,
    MBTR,
    SOAP,
    CrystalGraph,
    ElementProperty,
    Featurizer,
    MorganFingerprint,
    available_featurizers,
    get_featurizer,
    register_featurizer,
)
from reprs.featurizers.registry import parse_spec


def test_issue_examples():
    morgan = get_featurizer("morgan:radius=2,n_bits=2048")
    assert isinstance(morgan, MorganFingerprint) and morgan.get_params() == dict(
        radius=2, n_bits=2048, chirality=False, counts=False
    )
    soap = get_featurizer("soap:species=Si,O,r_cut=5.0,n_max=8,l_max=6,periodic=True,average=inner")
    assert isinstance(soap, SOAP)
    assert (soap.species, soap.r_cut, soap.n_max, soap.l_max, soap.periodic, soap.average) == (
        ["Si", "O"], 5.0, 8, 6, True, "inner"
    )


def test_values_are_fitted_to_type_hints():
    # one species is still a list; an int r_cut becomes a float; 'none' stays a word where the
    # parameter is a string (DScribe's normalization) and becomes None where None is allowed
    soap = get_featurizer("soap:species=Si,r_cut=5,weighting=none")
    assert soap.species == ["Si"] and isinstance(soap.r_cut, float) and soap.weighting is None
    mbtr = get_featurizer(
        "mbtr:species=H,O,geometry.function=inverse_distance,grid.min=0,grid.max=1,grid.n=10,grid.sigma=0.1,"
        "weighting.function=exp,weighting.scale=0.5,weighting.threshold=1e-3,normalization=none"
    )
    assert isinstance(mbtr, MBTR) and mbtr.normalization == "none"
    assert mbtr.grid == {"min": 0, "max": 1, "n": 10, "sigma": 0.1}
    assert mbtr.weighting == {"function": "exp", "scale": 0.5, "threshold": 1e-3}
    acsf = get_featurizer('ACSF:species=H,O,g2_params=[[1, 0], [0.5, 1.5]],g3_params=2,g4_params=[[1,1,-1]]')
    assert isinstance(acsf, ACSF) and acsf.g2_params == [[1, 0], [0.5, 1.5]] and acsf.g3_params == [2]
    graph = get_featurizer("crystal-graph:r_cut=4,max_neighbors=none,node_properties=Z")
    assert isinstance(graph, CrystalGraph) and graph.max_neighbors is None and graph.node_properties == ["Z"]
    assert get_featurizer("element_property:stats=mean,max,properties=Z").stats == ["mean", "max"]
    assert get_featurizer("morgan", radius=3).radius == 3


@settings(max_examples=60, deadline=None)
@given(
    radius=st.integers(0, 6),
    n_bits=st.integers(1, 4096),
    chirality=st.booleans(),
    counts=st.booleans(),
    name=st.sampled_from(["morgan", "ECFP", "fcfp", "Feature-Morgan"]),
)
def test_spec_round_trip(radius, n_bits, chirality, counts, name):
    spec = f"{name}:radius={radius},n_bits={n_bits},chirality={chirality},counts={str(counts).lower()}"
    featurizer = get_featurizer(spec)
    assert featurizer.get_params() == dict(radius=radius, n_bits=n_bits, chirality=chirality, counts=counts)
    text = ",".join(f"{k}={v}" for k, v in featurizer.get_params().items())
    assert get_featurizer(f"{name}:{text}").get_params() == featurizer.get_params()


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abcdefgn_=,:[]{}\"'0123456789.- ", max_size=40))
def test_arbitrary_text_gives_a_matrep_error_or_a_featurizer(text):
    try:
        assert isinstance(get_featurizer(text), Featurizer)
    except errors.MatrepError:
        pass


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("nope", errors.UnknownFeaturizerError, "known: "),
        ("morgan:radius", errors.ParseError, "KEY=VALUE"),
        ("morgan:foo=1", errors.ParseError, "no parameter 'foo'"),
        ("morgan:radius=2,radius=3", errors.ParseError, "twice"),
        ("morgan:n_bits=1,2", errors.ParseError, "one value"),
        ("soap:species=[Si", errors.ParseError, "unclosed"),
        ("acsf:species=H,g2_params=[[1,0]", errors.ParseError, "unclosed"),
        ("morgan:radius=-1", errors.InputError, "radius"),
        ("", errors.ParseError, "non-empty"),
        (":radius=2", errors.ParseError, "no name"),
        ("maccs:n_bits=10", errors.ParseError, "parameters: \\(none\\)"),
        ("soap", errors.ParseError, r"SOAP needs the parameter\(s\) species, e.g. soap:species=\.\.\."),
        ("glycan_graph:linkage=bond", errors.InputError, "'full' or 'anomer'"),
        # a number or word for a boolean was read by its truth value (periodic=2 and periodic=yes meant True)
        ("soap:species=Si,periodic=2", errors.ParseError, "parameter 'periodic' takes bool, got '2'"),
        ("soap:species=Si,periodic=yes", errors.ParseError, "parameter 'periodic' takes bool, got 'yes'"),
    ],
)
def test_bad_specs(spec, error, match):
    with pytest.raises(error, match=match):
        get_featurizer(spec)


def test_registry_contents_and_registration():
    names = available_featurizers()
    for name in ("morgan", "ecfp", "fcfp", "rdkit", "maccs", "atompair", "torsion", "soap", "acsf", "mbtr",
                 "lmbtr", "coulomb_matrix", "sine_matrix", "ewald_sum_matrix", "crystal_graph",
                 "element_property", "fractional_composition", "glycan_graph", "glycan"):
        assert name in names
    glycan = get_featurizer("Glycan-Graph:linkage=anomer,on_unknown=zero")
    assert glycan.get_params() == {"linkage": "anomer", "on_unknown": "zero"}
    register_featurizer("element_property", ElementProperty)  # same class again: fine
    with pytest.raises(errors.ParseError, match="already taken"):
        register_featurizer("morgan", ElementProperty)
    assert parse_spec("Morgan-X:a=1") == ("morgan_x", {"a": [(1, "1")]})
    featurizer = MorganFingerprint(radius=1)
    assert get_featurizer(featurizer) is featurizer
    assert get_featurizer(featurizer, n_bits=64).get_params()["n_bits"] == 64
