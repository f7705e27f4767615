"""Composition descriptors: element-property statistics and the fractional composition vector.

The element table is built once from pymatgen's element data (plus ASE's covalent radii, which
pymatgen lacks) for Z = 1..103. Statistics are weighted by atomic fraction, following the Magpie
descriptors of Ward et al. as implemented in matminer's ``ElementProperty``.

References
----------
L. Ward, A. Agrawal, A. Choudhary, C. Wolverton, npj Comput. Mater. 2, 16028 (2016).
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from reprs.errors import InputError
from reprs.featurizers.base import Featurizer

__all__ = ["ELEMENT_PROPERTIES", "STATISTICS", "element_property_table", "ElementProperty", "FractionalComposition"]

#: Heaviest element covered (lawrencium). matminer's ``ElementFraction`` (0.10) runs to Z = 118: its first
#: 103 columns are :class:`FractionalComposition`'s default (checked equal on several formulas).
Z_MAX = 103

#: Element properties and their units.
ELEMENT_PROPERTIES: dict[str, str] = {
    "Z": "atomic number",
    "atomic_mass": "amu",
    "period": "row of the periodic table",
    "group": "column 1-18 (lanthanides and actinides in 3, as pymatgen)",
    "mendeleev_number": "Pettifor's Mendeleev number (pymatgen)",
    "electronegativity": "Pauling scale (NaN for He, Ne, Ar)",
    "covalent_radius": "Angstrom (Cordero et al. 2008, via ase.data)",
    "atomic_radius": "Angstrom, empirical (Slater 1964, via pymatgen; NaN for He, Ne, Kr, Xe, At, Rn, Fr, Cm-Lr)",
    "valence_electrons": "electrons outside the noble-gas core",
    "ionization_energy": "first ionization energy, eV",
}

#: Statistics over the elements of a composition, weighted by atomic fraction f_i.
STATISTICS: tuple[str, ...] = ("mean", "min", "max", "range", "mean_abs_dev", "mode")

_ORBITAL = re.compile(r"\d+[spdf](\d+)")


def _valence_electrons(element: Any) -> float:
    # pymatgen writes "[Ar].3d10.4s2.4p1": the occupancies after the core are the valence electrons
    try:
        structure = element.electronic_structure
    except KeyError:
        return float("nan")
    return float(sum(int(n) for n in _ORBITAL.findall(structure.split("]")[-1])))


@lru_cache(maxsize=1)
def element_property_table() -> np.ndarray:
    """Table of :data:`ELEMENT_PROPERTIES` for Z = 1..103, shape ``(104, n_properties)``.

    Row ``Z`` holds element ``Z`` (row 0 is NaN); missing data are NaN. Read-only.
    """
    from ase.data import covalent_radii
    from pymatgen.core import Element

    table = np.full((Z_MAX + 1, len(ELEMENT_PROPERTIES)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for each missing value; NaN says it
        for z in range(1, Z_MAX + 1):
            el = Element.from_Z(z)
            energies = el.ionization_energies
            values = {
                "Z": z,
                "atomic_mass": float(el.atomic_mass),
                "period": el.row,
                "group": el.group,
                "mendeleev_number": el.mendeleev_no,
                "electronegativity": el.X,
                "covalent_radius": covalent_radii[z],
                "atomic_radius": np.nan if el.atomic_radius is None else float(el.atomic_radius),
                "valence_electrons": _valence_electrons(el),
                "ionization_energy": energies[0] if energies and energies[0] is not None else np.nan,
            }
            table[z] = [np.nan if values[p] is None else float(values[p]) for p in ELEMENT_PROPERTIES]
    table.flags.writeable = False
    return table


def _fractions(comp: Any) -> tuple[np.ndarray, np.ndarray]:
    """Atomic numbers and atomic fractions of a pymatgen Composition (sorted by Z)."""
    items = sorted((el.Z, amount) for el, amount in comp.element_composition.items() if amount > 0)
    z = np.array([i for i, _ in items], dtype=int)
    amount = np.array([a for _, a in items], dtype=float)
    if z.max() > Z_MAX:
        raise InputError(f"element with Z={z.max()} is beyond the table (Z <= {Z_MAX})")
    return z, amount / amount.sum()


class ElementProperty(Featurizer):
    """Fraction-weighted statistics of element properties over a composition.

    For property values ``p_i`` and atomic fractions ``f_i`` of the elements present: mean
    ``sum f_i p_i``, min, max, range ``max - min``, mean absolute deviation
    ``sum f_i |p_i - mean|`` and mode (the value of the most abundant element; ties go to the
    smallest value, as matminer's ``PropertyStats.mode``).

    Parameters
    ----------
    properties : list of str, default all of :data:`ELEMENT_PROPERTIES`
        Which properties (units in :data:`ELEMENT_PROPERTIES`).
    stats : list of str, default all of :data:`STATISTICS`
        Which statistics.

    Notes
    -----
    Accepts formulas (``"Fe2O3"``), pymatgen ``Composition``/``Structure``/``Molecule`` and
    ``ase.Atoms``. A property missing for an element present (e.g. the electronegativity of
    argon) gives NaN in its statistics rather than a value computed over the other elements.

    References
    ----------
    L. Ward et al., npj Comput. Mater. 2, 16028 (2016); matminer ``ElementProperty``.

    Example
    -------
    >>> ElementProperty(properties=["Z"], stats=["mean"]).featurize("Fe2O3")
    array([15.2])
    """

    input_kind = "composition"

    def __init__(
        self,
        *,
        properties: Sequence[str] = tuple(ELEMENT_PROPERTIES),
        stats: Sequence[str] = STATISTICS,
    ):
        self.properties = properties
        self.stats = stats
        self._validate()

    def _validate(self) -> None:
        for name, given, known in (
            ("properties", self.properties, tuple(ELEMENT_PROPERTIES)),
            ("stats", self.stats, STATISTICS),
        ):
            if isinstance(given, str) or not isinstance(given, Sequence) or len(given) == 0:
                raise InputError(f"{name} must be a non-empty list, got {given!r}")
            unknown = [g for g in given if g not in known]
            if unknown:
                raise InputError(f"unknown {name} {unknown}; known: {', '.join(known)}")

    @property
    def n_features(self) -> int:
        return len(self.properties) * len(self.stats)

    def feature_labels(self) -> list[str]:
        """``{stat}_{property}``, property-major."""
        return [f"{stat}_{prop}" for prop in self.properties for stat in self.stats]

    def _featurize(self, comp: Any) -> np.ndarray:
        z, f = _fractions(comp)
        columns = [list(ELEMENT_PROPERTIES).index(p) for p in self.properties]
        values = element_property_table()[np.ix_(z, columns)]  # (n_elements, n_properties)
        mean = f @ values
        lo = values.min(axis=0)
        hi = values.max(axis=0)
        # ties in abundance go to the smallest value (matminer's convention)
        top = np.isclose(f, f.max(), rtol=0, atol=1e-12)
        computed = {
            "mean": mean,
            "min": lo,
            "max": hi,
            "range": hi - lo,
            "mean_abs_dev": f @ np.abs(values - mean),
            "mode": values[top].min(axis=0),
        }
        return np.stack([computed[s] for s in self.stats], axis=1).ravel()


class FractionalComposition(Featurizer):
    """Vector of atomic fractions over a fixed list of elements.

    Parameters
    ----------
    elements : list of str or None
        Elements, in output order; default all elements H..Lr (Z = 1..103). A composition with an
        element outside the list is refused, never silently truncated.

    Example
    -------
    >>> FractionalComposition(elements=["O", "Si"]).featurize("SiO2")
    array([0.66666667, 0.33333333])
    """

    input_kind = "composition"

    def __init__(self, *, elements: Sequence[str] | None = None):
        self.elements = elements
        self._validate()

    def _symbols(self) -> list[str]:
        from ase.data import chemical_symbols

        return list(chemical_symbols[1 : Z_MAX + 1]) if self.elements is None else list(self.elements)

    def _validate(self) -> None:
        from ase.data import atomic_numbers

        if self.elements is None:
            return
        if isinstance(self.elements, str) or not isinstance(self.elements, Sequence) or not self.elements:
            raise InputError(f"elements must be a non-empty list of symbols, got {self.elements!r}")
        unknown = [e for e in self.elements if e not in atomic_numbers or e == "X"]
        if unknown:
            raise InputError(f"unknown element symbols {unknown}")
        if len(set(self.elements)) != len(self.elements):
            raise InputError(f"elements has duplicates: {self.elements!r}")

    @property
    def n_features(self) -> int:
        return len(self._symbols())

    def feature_labels(self) -> list[str]:
        """The element symbols."""
        return self._symbols()

    def _featurize(self, comp: Any) -> np.ndarray:
        from ase.data import chemical_symbols

        z, f = _fractions(comp)
        index = {s: i for i, s in enumerate(self._symbols())}
        missing = [chemical_symbols[i] for i in z if chemical_symbols[i] not in index]
        if missing:
            raise InputError(f"composition has elements {missing} outside elements={self.elements!r}")
        out = np.zeros(len(index))
        out[[index[chemical_symbols[i]] for i in z]] = f
        return out
