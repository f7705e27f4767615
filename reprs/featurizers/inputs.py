"""Input conversion at the edge of the featurizers.

Featurizers accept the objects users already hold and convert them here, once, to the type the
wrapped library needs: SMILES strings become RDKit ``Mol`` objects, pymatgen ``Structure`` and
``Molecule`` become ``ase.Atoms`` (and back; :func:`reprs.atoms.as_atoms`, the one conversion and
validation of atomistic inputs, re-exported here), formulas become pymatgen ``Composition``. Anything
else is refused with an :class:`~reprs.errors.InputTypeError` naming what is accepted.
"""

from __future__ import annotations

import re
from typing import Any

# RDKit is cheap to import and parsing sits on the hot path of every fingerprint
from rdkit import Chem, rdBase

from reprs.atoms import as_atoms
from reprs.errors import InputError, InputTypeError, MissingCellError, ParseError, SmilesError

__all__ = ["mol_from_smiles", "as_mol", "as_atoms", "as_structure", "as_composition"]

# RDKit prefixes each logged line with a "[hh:mm:ss] " time stamp; it says nothing about the input.
_RDKIT_STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*", re.MULTILINE)


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def mol_from_smiles(smiles: str):
    """Parse a SMILES string into a sanitized RDKit ``Mol``; never return ``None``.

    Parameters
    ----------
    smiles : str
        A SMILES string (surrounding white space is ignored).

    Returns
    -------
    rdkit.Chem.Mol
        The sanitized molecule (implicit hydrogens, as RDKit's ``MolFromSmiles``).

    Raises
    ------
    SmilesError
        If the string is empty, is not valid SMILES, or describes a molecule that RDKit cannot
        sanitize (valence, aromaticity); the message carries RDKit's own reason.

    Example
    -------
    >>> mol_from_smiles("CCO").GetNumAtoms()
    3
    """
    if not isinstance(smiles, str):
        raise InputTypeError(f"SMILES must be a str, got {_type_name(smiles)}")
    text = smiles.strip()
    if not text:
        raise SmilesError("empty SMILES string; expected a molecule such as 'CCO'", text=smiles)
    mol = Chem.MolFromSmiles(text)
    if mol is None:
        # Parse again capturing RDKit's log, so that its reason ends up in the exception. Capturing
        # every parse would cost 10-20 % of a fingerprint; RDKit has already printed the reason
        # once on stderr by then.
        with rdBase.CaptureErrorLog() as log:
            Chem.MolFromSmiles(text)
        reason = _RDKIT_STAMP.sub("", log.messages).strip() or "RDKit could not parse it"
        raise SmilesError(f"invalid SMILES {text!r}: {reason}", text=text)
    if mol.GetNumAtoms() == 0:
        raise SmilesError(f"SMILES {text!r} describes no atoms", text=text)
    return mol


def as_mol(obj: Any):
    """Return an RDKit ``Mol`` for a SMILES string or a ``Mol``.

    Raises
    ------
    SmilesError
        For an invalid SMILES string.
    InputError
        For a ``Mol`` without atoms.
    InputTypeError
        For any other type.
    """
    if isinstance(obj, str):
        return mol_from_smiles(obj)
    if isinstance(obj, Chem.Mol):
        if obj.GetNumAtoms() == 0:
            raise InputError("molecule has no atoms")
        return obj
    raise InputTypeError(
        f"expected a SMILES string or rdkit.Chem.Mol, got {_type_name(obj)}"
    )


def as_structure(obj: Any):
    """Return a periodic pymatgen ``Structure`` for a ``Structure`` or periodic ``ase.Atoms``.

    Raises
    ------
    MissingCellError
        For a ``Molecule`` or for ``ase.Atoms`` whose cell is not three-dimensional or that is not
        periodic in all three directions.
    InputError
        For a structure without atoms, or ``ase.Atoms`` with a non-finite position or cell
        (:func:`reprs.atoms.as_atoms`).
    InputTypeError
        For any other type.
    """
    from ase import Atoms
    from pymatgen.core import IMolecule, IStructure

    if isinstance(obj, IStructure):
        structure = obj
    elif isinstance(obj, Atoms):
        as_atoms(obj, require_cell=True)
        from pymatgen.io.ase import AseAtomsAdaptor

        structure = AseAtomsAdaptor.get_structure(obj)
    elif isinstance(obj, IMolecule):
        raise MissingCellError("a periodic structure is needed, got a pymatgen Molecule (no cell)")
    else:
        raise InputTypeError(
            f"expected a pymatgen Structure or periodic ase.Atoms, got {_type_name(obj)}"
        )
    if len(structure) == 0:
        raise InputError("structure has no atoms")
    return structure


def as_composition(obj: Any):
    """Return a pymatgen ``Composition`` for a formula, a mapping or any structure object.

    Accepted: ``Composition``; a formula string such as ``"SiO2"`` or ``"Li0.5CoO2"``; a mapping
    element -> amount; pymatgen ``Structure``/``Molecule``; ``ase.Atoms``. Oxidation states
    (``Fe2+`` species) are dropped: the result holds elements only.

    Raises
    ------
    ParseError
        For a formula that pymatgen cannot read.
    InputError
        For an empty composition or negative amounts.
    InputTypeError
        For any other type.
    """
    from ase import Atoms
    from pymatgen.core import Composition, IMolecule, IStructure

    if isinstance(obj, Composition):
        comp = obj
    elif isinstance(obj, (IStructure, IMolecule)):
        comp = obj.composition
    elif isinstance(obj, Atoms):
        comp = Composition(obj.get_chemical_formula())
    elif isinstance(obj, (str, dict)):
        try:
            comp = Composition(obj)
        except (ValueError, KeyError) as err:
            text = obj if isinstance(obj, str) else None
            raise ParseError(f"invalid composition {obj!r}: {err}", text=text) from err
    else:
        raise InputTypeError(
            "expected a formula str, a dict element -> amount, pymatgen Composition/Structure/"
            f"Molecule or ase.Atoms, got {_type_name(obj)}"
        )
    from pymatgen.core import DummySpecies, Element

    unknown = [str(sp) for sp in comp.elements if isinstance(sp, DummySpecies)]
    if unknown:
        raise ParseError(f"invalid composition {obj!r}: {unknown} are dummy species, not elements; replace them by "
                         "the elements they stand for")
    if not all(isinstance(sp, Element) for sp in comp.elements):
        # oxidation-state species (Fe2+, from BVAnalyzer or a decorated structure): composition
        # descriptors are functions of the elements and their amounts only
        comp = comp.element_composition
    if comp.num_atoms <= 0:
        raise InputError(f"composition {obj!r} has no atoms")
    if any(amount < 0 for amount in comp.values()):
        raise InputError(f"composition {obj!r} has negative amounts")
    return comp
