"""Molecular fingerprints from RDKit's fingerprint generators.

Morgan/ECFP and feature-Morgan/FCFP (Rogers & Hahn, J. Chem. Inf. Model. 50, 742 (2010)), RDKit's
topological (path) fingerprint, MACCS keys (166 public keys; RDKit's 167-bit vector with bit 0
unused), atom pairs (Carhart et al., J. Chem. Inf. Comput. Sci. 25, 64 (1985)) and topological
torsions (Nilakantan et al., J. Chem. Inf. Comput. Sci. 27, 82 (1987)).

Parameter names are RDKit's generator arguments in snake case: ``n_bits`` is ``fpSize``,
``chirality`` is ``includeChirality``, ``min_path``/``max_path`` are ``minPath``/``maxPath``,
``min_distance``/``max_distance`` are ``minDistance``/``maxDistance``, ``torsion_atom_count`` is
``torsionAtomCount``. ``counts=True`` returns hashed occurrence counts (RDKit's count
fingerprint, folded to ``n_bits``) instead of bits.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from reprs.errors import InputError
from reprs.featurizers.base import Featurizer
from reprs.featurizers.inputs import as_mol

__all__ = [
    "morgan_fingerprint",
    "MorganFingerprint",
    "FeatureMorganFingerprint",
    "RDKitFingerprint",
    "MACCSKeys",
    "AtomPairFingerprint",
    "TopologicalTorsionFingerprint",
]


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")


def _check_hashed(n_bits: Any, chirality: Any, counts: Any) -> None:
    """``n_bits``, ``chirality`` and ``counts`` of the Morgan, atom-pair and torsion fingerprints."""
    _check_int("n_bits", n_bits, 1)
    _check_bool("chirality", chirality)
    _check_bool("counts", counts)


def _check_range(low_name: str, low: Any, high_name: str, high: Any) -> None:
    """An RDKit path or distance range: two ints >= 1 with ``high >= low``."""
    _check_int(low_name, low, 1)
    _check_int(high_name, high, 1)
    if high < low:
        raise InputError(f"{high_name} ({high}) must be >= {low_name} ({low})")


# RDKit generators are cheap to call but not to build, and they do not pickle; one per parameter
# set and process, built on first use, keeps featurizers picklable and calls at RDKit's speed.
# Positional arguments keep the cache lookup cheap (it runs once per molecule).
@lru_cache(maxsize=64)
def _generator(kind: str, *args: Any):
    from rdkit.Chem import rdFingerprintGenerator as gen

    if kind == "morgan":
        radius, n_bits, chirality, features = args
        invariants = gen.GetMorganFeatureAtomInvGen() if features else None
        return gen.GetMorganGenerator(
            radius=radius, fpSize=n_bits, includeChirality=chirality, atomInvariantsGenerator=invariants
        )
    if kind == "rdkit":
        min_path, max_path, n_bits, branched, bond_order = args
        return gen.GetRDKitFPGenerator(
            minPath=min_path, maxPath=max_path, fpSize=n_bits, branchedPaths=branched, useBondOrder=bond_order
        )
    if kind == "atompair":
        min_distance, max_distance, n_bits, chirality = args
        return gen.GetAtomPairGenerator(
            minDistance=min_distance, maxDistance=max_distance, fpSize=n_bits, includeChirality=chirality
        )
    if kind == "torsion":
        atom_count, n_bits, chirality = args
        return gen.GetTopologicalTorsionGenerator(
            torsionAtomCount=atom_count, fpSize=n_bits, includeChirality=chirality
        )
    raise AssertionError(kind)  # unreachable: kinds are fixed by the classes below


def _fingerprint(generator: Any, mol: Any, counts: bool) -> np.ndarray:
    return generator.GetCountFingerprintAsNumPy(mol) if counts else generator.GetFingerprintAsNumPy(mol)


def morgan_fingerprint(
    mol_or_smiles: Any,
    radius: int = 2,
    n_bits: int = 2048,
    chirality: bool = False,
    counts: bool = False,
) -> np.ndarray:
    """Morgan (ECFP-like) fingerprint of one molecule as a numpy vector.

    Parameters
    ----------
    mol_or_smiles : str or rdkit.Chem.Mol
        The molecule, or its SMILES.
    radius : int, default 2
        Number of Morgan iterations (ECFP4 is radius 2).
    n_bits : int, default 2048
        Length of the folded vector.
    chirality : bool, default False
        Include CIP chirality tags in the atom invariants (RDKit ``includeChirality``). The default
        is RDKit's and :class:`MorganFingerprint`'s, so the same name gives the same bits; True
        keeps stereoisomers such as alpha/beta anomers apart (the monomer features of
        :mod:`reprs.macromolecules` ask for it).
    counts : bool, default False
        Hashed occurrence counts instead of bits.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_bits,)``; uint8 bits, or uint32 counts.

    Raises
    ------
    SmilesError
        For an invalid SMILES.
    InputError
        For bad parameter values.

    Example
    -------
    >>> morgan_fingerprint("CCO", radius=2, n_bits=64).shape
    (64,)
    """
    _check_int("radius", radius, 0)
    _check_hashed(n_bits, chirality, counts)
    generator = _generator("morgan", int(radius), int(n_bits), bool(chirality), False)
    return _fingerprint(generator, as_mol(mol_or_smiles), counts)


class _Fingerprint(Featurizer):
    """Shared behaviour of the bit/count vector fingerprints."""

    input_kind = "molecule"
    _label_prefix = "bit"

    @property
    def n_features(self) -> int:
        return int(self.n_bits)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint32 if getattr(self, "counts", False) else np.uint8)

    def feature_labels(self) -> list[str]:
        return [f"{self._label_prefix}_{i}" for i in range(self.n_features)]


class MorganFingerprint(_Fingerprint):
    """Morgan circular fingerprint (ECFP): hashed atom environments up to ``radius`` bonds.

    Parameters
    ----------
    radius : int, default 2
        Morgan iterations; ECFP4 is radius 2, ECFP6 radius 3.
    n_bits : int, default 2048
        Folded length (RDKit ``fpSize``).
    chirality : bool, default False
        Include chirality in atom invariants (RDKit ``includeChirality``).
    counts : bool, default False
        Hashed counts (uint32) instead of bits (uint8).

    References
    ----------
    D. Rogers, M. Hahn, "Extended-Connectivity Fingerprints", J. Chem. Inf. Model. 50, 742 (2010).

    Example
    -------
    >>> MorganFingerprint(radius=2, n_bits=1024).featurize("c1ccccc1O").shape
    (1024,)
    """

    _label_prefix = "ecfp"
    _features = False  # FCFP uses pharmacophoric atom invariants instead of ECFP's

    def __init__(self, *, radius: int = 2, n_bits: int = 2048, chirality: bool = False, counts: bool = False):
        self.radius = radius
        self.n_bits = n_bits
        self.chirality = chirality
        self.counts = counts
        self._validate()

    def _validate(self) -> None:
        _check_int("radius", self.radius, 0)
        _check_hashed(self.n_bits, self.chirality, self.counts)

    def _featurize(self, mol: Any) -> np.ndarray:
        generator = _generator("morgan", int(self.radius), int(self.n_bits), bool(self.chirality), self._features)
        return _fingerprint(generator, mol, self.counts)


class FeatureMorganFingerprint(MorganFingerprint):
    """Feature-Morgan fingerprint (FCFP): Morgan with pharmacophoric atom invariants.

    Atoms are typed by RDKit's feature invariants (donor, acceptor, aromatic, halogen, basic,
    acidic) instead of element and connectivity, so bioisosteres share bits. Parameters as
    :class:`MorganFingerprint`.

    References
    ----------
    D. Rogers, M. Hahn, J. Chem. Inf. Model. 50, 742 (2010), section "FCFP".
    """

    _label_prefix = "fcfp"
    _features = True


class RDKitFingerprint(_Fingerprint):
    """RDKit topological fingerprint: hashed linear and branched bond paths.

    Parameters
    ----------
    min_path, max_path : int, default 1, 7
        Smallest and largest subgraph size, in bonds (RDKit ``minPath``, ``maxPath``).
    n_bits : int, default 2048
        Folded length.
    branched_paths : bool, default True
        Include branched subgraphs, not only linear paths.
    use_bond_order : bool, default True
        Include bond orders in the path hashes.
    counts : bool, default False
        Hashed counts instead of bits.
    """

    _label_prefix = "rdkit"

    def __init__(
        self,
        *,
        min_path: int = 1,
        max_path: int = 7,
        n_bits: int = 2048,
        branched_paths: bool = True,
        use_bond_order: bool = True,
        counts: bool = False,
    ):
        self.min_path = min_path
        self.max_path = max_path
        self.n_bits = n_bits
        self.branched_paths = branched_paths
        self.use_bond_order = use_bond_order
        self.counts = counts
        self._validate()

    def _validate(self) -> None:
        _check_range("min_path", self.min_path, "max_path", self.max_path)
        _check_int("n_bits", self.n_bits, 1)
        _check_bool("branched_paths", self.branched_paths)
        _check_bool("use_bond_order", self.use_bond_order)
        _check_bool("counts", self.counts)

    def _featurize(self, mol: Any) -> np.ndarray:
        generator = _generator(
            "rdkit", int(self.min_path), int(self.max_path), int(self.n_bits),
            bool(self.branched_paths), bool(self.use_bond_order),
        )
        return _fingerprint(generator, mol, self.counts)


class MACCSKeys(_Fingerprint):
    """MACCS structural keys: 166 SMARTS-defined substructure keys.

    RDKit returns 167 bits with bit 0 always unset so that bit ``i`` is MACCS key ``i``; that
    layout is kept. No hyperparameters.

    References
    ----------
    J. L. Durant et al., J. Chem. Inf. Comput. Sci. 42, 1273 (2002); RDKit ``MACCSkeys``.
    """

    _label_prefix = "maccs"
    n_bits = 167  # fixed by the key set, not a hyperparameter

    def __init__(self) -> None:
        self._validate()

    def _featurize(self, mol: Any) -> np.ndarray:
        from rdkit.Chem import rdMolDescriptors

        bits = rdMolDescriptors.GetMACCSKeysFingerprint(mol)
        out = np.zeros(self.n_bits, dtype=np.uint8)
        out[list(bits.GetOnBits())] = 1
        return out


class AtomPairFingerprint(_Fingerprint):
    """Atom-pair fingerprint: hashed (atom type, topological distance, atom type) triples.

    Parameters
    ----------
    min_distance, max_distance : int, default 1, 30
        Range of topological distances, in bonds (RDKit ``minDistance``, ``maxDistance``).
    n_bits : int, default 2048
        Folded length.
    chirality : bool, default False
        Include chirality in the atom types.
    counts : bool, default False
        Hashed counts instead of bits.

    References
    ----------
    R. E. Carhart, D. H. Smith, R. Venkataraghavan, J. Chem. Inf. Comput. Sci. 25, 64 (1985).
    """

    _label_prefix = "atompair"

    def __init__(
        self,
        *,
        min_distance: int = 1,
        max_distance: int = 30,
        n_bits: int = 2048,
        chirality: bool = False,
        counts: bool = False,
    ):
        self.min_distance = min_distance
        self.max_distance = max_distance
        self.n_bits = n_bits
        self.chirality = chirality
        self.counts = counts
        self._validate()

    def _validate(self) -> None:
        _check_range("min_distance", self.min_distance, "max_distance", self.max_distance)
        _check_hashed(self.n_bits, self.chirality, self.counts)

    def _featurize(self, mol: Any) -> np.ndarray:
        generator = _generator(
            "atompair", int(self.min_distance), int(self.max_distance), int(self.n_bits), bool(self.chirality)
        )
        return _fingerprint(generator, mol, self.counts)


class TopologicalTorsionFingerprint(_Fingerprint):
    """Topological-torsion fingerprint: hashed linear paths of ``torsion_atom_count`` atoms.

    Parameters
    ----------
    torsion_atom_count : int, default 4
        Atoms per path (RDKit ``torsionAtomCount``).
    n_bits : int, default 2048
        Folded length.
    chirality : bool, default False
        Include chirality in the atom types.
    counts : bool, default False
        Hashed counts instead of bits.

    References
    ----------
    R. Nilakantan et al., J. Chem. Inf. Comput. Sci. 27, 82 (1987).
    """

    _label_prefix = "torsion"

    def __init__(
        self,
        *,
        torsion_atom_count: int = 4,
        n_bits: int = 2048,
        chirality: bool = False,
        counts: bool = False,
    ):
        self.torsion_atom_count = torsion_atom_count
        self.n_bits = n_bits
        self.chirality = chirality
        self.counts = counts
        self._validate()

    def _validate(self) -> None:
        _check_int("torsion_atom_count", self.torsion_atom_count, 2)
        _check_hashed(self.n_bits, self.chirality, self.counts)

    def _featurize(self, mol: Any) -> np.ndarray:
        generator = _generator("torsion", int(self.torsion_atom_count), int(self.n_bits), bool(self.chirality))
        return _fingerprint(generator, mol, self.counts)
