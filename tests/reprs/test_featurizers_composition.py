"""Composition descriptors against matminer's Magpie ElementProperty and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition

from reprs import errors
from reprs.featurizers import ElementProperty, FractionalComposition
from reprs.featurizers.composition import ELEMENT_PROPERTIES, element_property_table
from tests.reprs.featurizer_inputs import quartz, water

FORMULAS = ["Fe2O3", "SiO2", "NaCl", "LiCoO2", "GaAs", "CaTiO3", "Li10GeP2S12", "Cu", "La2CuO4", "UO2", "CsPbI3"]
# our property -> (Magpie table name in matminer, factor from Magpie's unit to ours)
MAGPIE = {
    "Z": ("Number", 1.0),
    "atomic_mass": ("AtomicWeight", 1.0),
    "period": ("Row", 1.0),
    "group": ("Column", 1.0),
    "valence_electrons": ("NValence", 1.0),
    "covalent_radius": ("CovalentRadius", 0.01),  # pm -> A
    "electronegativity": ("Electronegativity", 1.0),
}


@pytest.mark.parametrize("prop", sorted(MAGPIE))
def test_statistics_equal_matminer_magpie(prop):
    matminer = pytest.importorskip("matminer.featurizers.composition")
    name, factor = MAGPIE[prop]
    reference = matminer.ElementProperty(
        data_source="magpie", features=[name], stats=["mean", "minimum", "maximum", "range", "avg_dev", "mode"]
    )
    ours = ElementProperty(properties=[prop])
    for formula in FORMULAS:
        expected = np.array(reference.featurize(Composition(formula)), dtype=float) * factor
        np.testing.assert_allclose(ours.featurize(formula), expected, rtol=1e-3, atol=1e-3, err_msg=formula)


def test_hand_computed_fe2o3():
    # Fe2O3: fractions 0.4 Fe (Z 26), 0.6 O (Z 8)
    out = ElementProperty(properties=["Z"]).featurize("Fe2O3")
    mean = 0.4 * 26 + 0.6 * 8
    np.testing.assert_allclose(out, [mean, 8, 26, 18, 0.4 * abs(26 - mean) + 0.6 * abs(8 - mean), 8])
    # a tie in abundance goes to the smaller value: NaCl mode of Z is Na's 11
    assert ElementProperty(properties=["Z"], stats=["mode"]).featurize("NaCl")[0] == 11


def test_inputs_convert_to_the_same_composition_and_labels():
    featurizer = ElementProperty(properties=["Z", "electronegativity"], stats=["mean", "max"])
    assert featurizer.feature_labels() == ["mean_Z", "max_Z", "mean_electronegativity", "max_electronegativity"]
    reference = featurizer.featurize("SiO2")
    decorated = quartz()
    decorated.add_oxidation_state_by_element({"Si": 4, "O": -2})
    for obj in (quartz(), quartz().to_ase_atoms(), Composition("Si3O6"), {"Si": 1, "O": 2}, decorated,
                Composition({"Si4+": 1, "O2-": 2})):
        np.testing.assert_allclose(featurizer.featurize(obj), reference)
    with pytest.raises(errors.ParseError, match="dummy species"):
        featurizer.featurize(Composition({"X": 1, "O": 2}))


def test_missing_property_gives_nan_not_a_partial_statistic():
    out = ElementProperty(properties=["electronegativity"], stats=["mean"]).featurize("ArO")  # no Pauling X for Ar
    assert np.isnan(out).all()
    table = element_property_table()
    assert table.shape == (104, len(ELEMENT_PROPERTIES)) and not table.flags.writeable


def test_fractional_composition():
    featurizer = FractionalComposition()
    out = featurizer.featurize("SiO2")
    assert out.shape == (103,) and featurizer.feature_labels()[13] == "Si"
    np.testing.assert_allclose(out[[7, 13]], [2 / 3, 1 / 3])
    assert out.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(FractionalComposition(elements=["H", "O"]).featurize(water()), [2 / 3, 1 / 3])
    with pytest.raises(errors.InputError, match="outside elements"):
        FractionalComposition(elements=["H", "O"]).featurize("NaCl")
    with pytest.raises(errors.InputError, match="unknown element"):
        FractionalComposition(elements=["H", "Qq"])


def test_bad_inputs():
    with pytest.raises(errors.InputError, match="unknown properties"):
        ElementProperty(properties=["colour"])
    with pytest.raises(errors.InputError, match="unknown stats"):
        ElementProperty(stats=["median"])
    with pytest.raises(errors.ParseError, match="Qq"):
        ElementProperty().featurize("Qq2O")
    with pytest.raises(errors.InputTypeError, match="formula"):
        ElementProperty().featurize(3.0)
