"""Monomer libraries: SMILES for the building blocks of macromolecules.

A :class:`MonomerLibrary` maps monomer names to SMILES. Two libraries ship with matrep:

* :func:`glycan_library` -- monosaccharides in glycowork's IUPAC-condensed names. Names are
  resolved in this order: the aliases of the older GlycoBase notation used by the GLAMOUR tables
  (``NeuNAc`` -> ``Neu5Ac``, ...); the bundled table ``reprs/data/glycan_monomers.csv`` (generated
  by :func:`build_glycan_table` for every monomer of glycowork's glycans); the GlyLES grammar,
  which builds a monosaccharide with its stereochemistry and modifications from the name; and our
  modification rules (:func:`apply_modifications`) on top of a resolved core for names GlyLES
  does not read (unknown-position substituents such as ``GalOS``, generic ``dHex``).
* :func:`peptide_library` -- the 20 proteinogenic amino acids (L, one- and three-letter codes).

Unknown names raise :class:`~reprs.errors.UnknownMonomerError`; nothing is silently replaced.

References
----------
M. Joeres, D. Bojar, O. V. Kalinina, "GlyLES: grammar-based parsing of glycans from IUPAC-condensed
to SMILES", J. Cheminform. 14, 16 (2022) (the grammar used as resolver).
S. Mohapatra, J. An, R. Gomez-Bombarelli, "Chemistry-informed macromolecule graph representation
for similarity computation, unsupervised and supervised learning", Mach. Learn.: Sci. Technol. 3,
015028 (2022), arXiv:2103.02565 (unknown-position substituents on the last free hydroxyl, as its
monomer table does for ``GlcNAcOS``).
"""

from __future__ import annotations

import csv
import logging
import re
from functools import lru_cache
from importlib import resources
from typing import Callable, Iterable, Mapping

from rdkit import Chem

from reprs.errors import SmilesError, UnknownMonomerError

__all__ = [
    "MonomerLibrary",
    "glycan_library",
    "peptide_library",
    "apply_modifications",
    "backbone_numbering",
    "build_glycan_table",
    "resolve_glycan_monomer",
    "GLYCAN_ALIASES",
]

#: Older GlycoBase spellings (GLAMOUR's tables) -> glycowork's names.
GLYCAN_ALIASES: dict[str, str] = {
    "NeuNAc": "Neu5Ac",
    "NeuNGc": "Neu5Gc",
    "NeuAc": "Neu5Ac",
    "NeuGc": "Neu5Gc",
    "KDN": "Kdn",
    "KDO": "Kdo",
}

#: The bundled table under ``reprs/data``.
GLYCAN_TABLE = "glycan_monomers.csv"

#: Substituents replacing the hydroxyl (O-linked) or the whole OH (N-linked, deoxy) at a carbon.
#: ``O`` keeps the oxygen and caps it with the group; ``N`` swaps the oxygen for nitrogen.
_SUBSTITUENTS: dict[str, tuple[str, str]] = {
    "S": ("O", "S(=O)(=O)O"),
    "P": ("O", "P(=O)(O)O"),
    "Me": ("O", "C"),
    "Ac": ("O", "C(C)=O"),
    "NAc": ("N", "C(C)=O"),
    "NGc": ("N", "C(=O)CO"),
    "N": ("N", ""),
    "d": ("", ""),
}
_MODIFICATION = re.compile(r"(?P<pos>\d+|\?|O)(?P<mod>NAc|NGc|Ac|Me|S|P|N)$")
# Generic monosaccharides without stereochemistry (glycowork writes them in low-resolution data);
# pyranose forms with an open anomeric carbon, as GlyLES writes Hex and HexNAc.
_GENERIC = {
    "dHex": "OC1OC(C)C(O)C(O)C1O",
}


class MonomerLibrary:
    """Monomer names -> SMILES, with optional aliases and a resolver for unlisted names.

    Parameters
    ----------
    table : mapping of str to str
        Known monomers and their SMILES.
    aliases : mapping of str to str, optional
        Alternative names mapped to names of ``table`` (or of the resolver).
    resolver : callable, optional
        ``resolver(name) -> SMILES or None`` for names not in ``table``; results are cached.
    kind : str
        What the monomers are (``"glycan"``, ``"peptide"``), used in messages.
    """

    def __init__(
        self,
        table: Mapping[str, str],
        *,
        aliases: Mapping[str, str] | None = None,
        resolver: Callable[[str], str | None] | None = None,
        kind: str = "monomer",
    ):
        self.table = dict(table)
        self.aliases = dict(aliases or {})
        self.resolver = resolver
        self.kind = kind
        self._resolved: dict[str, str | None] = {}

    def canonical_name(self, name: str) -> str:
        """Return the name after alias substitution (``NeuNAc`` -> ``Neu5Ac``)."""
        return self.aliases.get(name, name)

    def resolve(self, name: str) -> str | None:
        """Return the SMILES of ``name``, or None when no table entry or rule gives one."""
        name = self.canonical_name(name)
        if name in self.table:
            # An empty entry records a name the resolver is known to fail on (no retry).
            return self.table[name] or None
        if name not in self._resolved:
            self._resolved[name] = self.resolver(name) if self.resolver else None
        return self._resolved[name]

    def smiles(self, name: str) -> str:
        """Return the SMILES of ``name``.

        Raises
        ------
        UnknownMonomerError
            When the name is neither in the table nor resolvable.
        """
        smiles = self.resolve(name)
        if smiles is None:
            close = sorted(k for k, v in self.table.items() if v and k[:3].lower() == name[:3].lower())[:8]
            hint = f"; similar known names: {', '.join(close)}" if close else ""
            raise UnknownMonomerError(
                f"unknown {self.kind} monomer '{name}': not in the library of {len(self)} "
                f"names and no rule resolves it{hint}. Pass on_unknown='zero' to use a zero "
                "feature vector, or add it with MonomerLibrary.table[name] = smiles"
            )
        return smiles

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) is not None

    def __len__(self) -> int:
        return sum(bool(smiles) for smiles in self.table.values())

    def __repr__(self) -> str:
        return f"MonomerLibrary(kind={self.kind!r}, n_names={len(self)})"


def backbone_numbering(mol: Chem.Mol) -> dict[int, int]:
    """Number the backbone carbons of a monosaccharide as carbohydrate nomenclature does.

    The backbone is the carbon chain (carbons joined by C-C bonds) that holds the anomeric carbon:
    the ring carbon bonded to the ring oxygen and to an exocyclic oxygen. C1 is the chain end
    nearest to the anomeric carbon, which is C1 in aldoses and C2 in ketoses (ulosonic acids).

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        A cyclic monosaccharide (no explicit hydrogens).

    Returns
    -------
    dict
        Carbon number -> atom index; empty when no anomeric carbon is found (alditols, open
        chains).
    """
    anomeric = next(
        (
            atom.GetIdx()
            for atom in mol.GetAtoms()
            if atom.GetSymbol() == "C"
            and atom.IsInRing()
            and any(n.GetSymbol() == "O" and n.IsInRing() for n in atom.GetNeighbors())
            and sum(n.GetSymbol() == "O" for n in atom.GetNeighbors()) >= 2
        ),
        None,
    )
    if anomeric is None:
        return {}
    carbons = {a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() == "C"}
    adjacency = {
        i: [n.GetIdx() for n in mol.GetAtomWithIdx(i).GetNeighbors() if n.GetIdx() in carbons]
        for i in carbons
    }
    # Breadth-first over C-C bonds from the anomeric carbon: the component is the backbone.
    distance = {anomeric: 0}
    queue = [anomeric]
    for node in queue:
        for neighbor in adjacency[node]:
            if neighbor not in distance:
                distance[neighbor] = distance[node] + 1
                queue.append(neighbor)
    ends = [i for i in distance if len(adjacency[i]) <= 1]
    start = min(ends, key=lambda i: (distance[i], i))
    order, previous, current = [start], None, start
    while True:
        nxt = [n for n in adjacency[current] if n != previous and n not in order]
        if not nxt:
            break
        previous, current = current, nxt[0]
        order.append(current)
    return {k + 1: idx for k, idx in enumerate(order)}


def apply_modifications(core_smiles: str, modifications: Iterable[tuple[str, str]]) -> str:
    """Apply substituents to a monosaccharide given as SMILES.

    Parameters
    ----------
    core_smiles : str
        The unmodified monosaccharide.
    modifications : iterable of (position, kind)
        ``position`` is a carbon number as a string, or ``"?"``/``"O"`` for an unknown position;
        ``kind`` is one of ``S`` (sulfate), ``P`` (phosphate), ``Me`` (methyl ether), ``Ac``
        (acetyl ester), ``NAc``, ``NGc``, ``N`` (amino) or ``d`` (deoxy). A substituent at an
        unknown position goes on the highest-numbered carbon that still carries a free hydroxyl
        (GLAMOUR's convention, e.g. GlcNAcOS sulfated at C6); a carboxyl group is not one
        (GlcAOS is sulfated at C4). A stated position may name a carboxyl carbon (``GlcA6Me``,
        the methyl ester).

    Returns
    -------
    str
        Canonical SMILES of the modified monosaccharide.

    Raises
    ------
    SmilesError
        If the core does not parse, has no recognisable backbone, or the position holds no free
        hydroxyl.
    """
    mol = Chem.MolFromSmiles(core_smiles)
    if mol is None:
        raise SmilesError(f"invalid core SMILES {core_smiles!r}")
    for position, kind in modifications:
        numbering = backbone_numbering(mol)
        if not numbering:
            raise SmilesError(f"no monosaccharide backbone found in {core_smiles!r}")
        free = {
            k: o.GetIdx()
            for k, c in numbering.items()
            for o in mol.GetAtomWithIdx(c).GetNeighbors()
            if o.GetSymbol() == "O" and o.GetDegree() == 1 and o.GetTotalNumHs() == 1
        }
        if position in ("?", "O"):
            # A carboxyl's OH (C6 of a uronic acid, C1 of Neu5Ac) is not a hydroxyl: a sulfate,
            # phosphate or acetyl there made GlcAOS an acyl sulfate, GalAOAc an anhydride.
            hydroxyls = [k for k in free if not any(
                b.GetBondType() == Chem.BondType.DOUBLE and b.GetOtherAtom(c).GetSymbol() == "O"
                for c in [mol.GetAtomWithIdx(numbering[k])] for b in c.GetBonds())]
            if not hydroxyls:
                raise SmilesError(f"no free hydroxyl left for {kind} on {core_smiles!r}")
            carbon = max(hydroxyls)
        else:
            carbon = int(position)
            if carbon not in free:
                raise SmilesError(f"carbon {carbon} of {core_smiles!r} has no free hydroxyl for {kind}")
        element, group = _SUBSTITUENTS[kind]
        editable = Chem.RWMol(mol)
        oxygen = free[carbon]
        if not element:
            editable.RemoveAtom(oxygen)
        else:
            atom = editable.GetAtomWithIdx(oxygen)
            atom.SetAtomicNum(Chem.GetPeriodicTable().GetAtomicNumber(element))
            atom.SetNoImplicit(False)
            atom.SetNumExplicitHs(0)
            if group:
                fragment = Chem.MolFromSmiles(group)
                offset = editable.GetNumAtoms()
                editable.InsertMol(fragment)
                editable.AddBond(oxygen, offset, Chem.BondType.SINGLE)
        mol = editable.GetMol()
        Chem.SanitizeMol(mol)
    return Chem.MolToSmiles(mol)


def _peel_modifications(name: str):
    """Yield (core, trailing substituents), peeling one position-prefixed group at a time.

    ``Neu5Ac9AcOS`` gives (``Neu5Ac9Ac``, [O S]), (``Neu5Ac``, [9 Ac, O S]), (``Neu``, [5 Ac, ...]).
    Only position-prefixed groups are substituents: the "NAc" of "GlcNAc" stays in the core.
    """
    modifications: list[tuple[str, str]] = []
    while True:
        match = _MODIFICATION.search(name)
        if match is None or match.start() == 0:
            return
        modifications.insert(0, (match["pos"], match["mod"]))
        name = name[: match.start()]
        yield name, list(modifications)


def _glyles_smiles(name: str) -> str | None:
    from glyles import convert
    from rdkit import rdBase

    # GlyLES logs parse failures through the root logger and RDKit complains about the invalid
    # SMILES GlyLES sometimes writes; either failure is an answer (None) here, not noise.
    logging.disable(logging.ERROR)
    try:
        with rdBase.BlockLogs():
            result = convert(name, returning=True)
            smiles = result[0][1] if result else ""
            mol = Chem.MolFromSmiles(smiles) if smiles else None
    except Exception:  # GlyLES raises bare exceptions on names outside its grammar
        return None
    finally:
        logging.disable(logging.NOTSET)
    return Chem.MolToSmiles(mol) if mol is not None else None


def resolve_glycan_monomer(name: str) -> str | None:
    """Build the SMILES of a monosaccharide name with GlyLES, then with our modification rules.

    Returns None when neither resolves the name.
    """
    if name in _GENERIC:
        return Chem.CanonSmiles(_GENERIC[name])
    peeled = list(_peel_modifications(name))
    # GlyLES reads an unknown position ("GlcNAcOS", "Neu5AcOAc") as a substituent on the group
    # written last (the acetyl, C3); our rule puts it on a free hydroxyl, so such names skip GlyLES.
    unknown_position = any(position in ("O", "?") for _, mods in peeled for position, _ in mods)
    smiles = None if unknown_position else _glyles_smiles(name)
    if smiles is not None:
        return smiles
    for core, modifications in peeled:  # the largest core that resolves, then our rules
        core_smiles = _GENERIC.get(core) or _glyles_smiles(core)
        if core_smiles is not None:
            try:
                return apply_modifications(core_smiles, modifications)
            except SmilesError:
                return None
    return None


def _read_table(filename: str) -> dict[str, str]:
    with resources.files("reprs").joinpath("data", filename).open(newline="") as handle:
        return {row["name"]: row["smiles"] for row in csv.DictReader(handle)}


def build_glycan_table(names: Iterable[str]) -> dict[str, str]:
    """Resolve monomer names afresh (no bundled table); unresolved names map to ``""``.

    This is how ``reprs/data/glycan_monomers.csv`` was made, from every monomer of glycowork's
    unique glycans (see ``reprs/data/README.md``).
    """
    return {
        name: resolve_glycan_monomer(GLYCAN_ALIASES.get(name, name)) or ""
        for name in sorted(set(names))
    }


@lru_cache(maxsize=None)
def glycan_library() -> MonomerLibrary:
    """The monosaccharide library (bundled table + GlyLES + modification rules)."""
    return MonomerLibrary(
        _read_table(GLYCAN_TABLE),
        aliases=GLYCAN_ALIASES,
        resolver=resolve_glycan_monomer,
        kind="glycan",
    )


# L-amino acids as free zwitterion-neutral acids; three-letter codes are aliases.
_AMINO_ACIDS = {
    "A": ("Ala", "N[C@@H](C)C(=O)O"),
    "R": ("Arg", "N[C@@H](CCCNC(=N)N)C(=O)O"),
    "N": ("Asn", "N[C@@H](CC(N)=O)C(=O)O"),
    "D": ("Asp", "N[C@@H](CC(=O)O)C(=O)O"),
    "C": ("Cys", "N[C@@H](CS)C(=O)O"),
    "Q": ("Gln", "N[C@@H](CCC(N)=O)C(=O)O"),
    "E": ("Glu", "N[C@@H](CCC(=O)O)C(=O)O"),
    "G": ("Gly", "NCC(=O)O"),
    "H": ("His", "N[C@@H](Cc1c[nH]cn1)C(=O)O"),
    "I": ("Ile", "N[C@@H]([C@@H](C)CC)C(=O)O"),
    "L": ("Leu", "N[C@@H](CC(C)C)C(=O)O"),
    "K": ("Lys", "N[C@@H](CCCCN)C(=O)O"),
    "M": ("Met", "N[C@@H](CCSC)C(=O)O"),
    "F": ("Phe", "N[C@@H](Cc1ccccc1)C(=O)O"),
    "P": ("Pro", "OC(=O)[C@@H]1CCCN1"),
    "S": ("Ser", "N[C@@H](CO)C(=O)O"),
    "T": ("Thr", "N[C@@H]([C@@H](C)O)C(=O)O"),
    "W": ("Trp", "N[C@@H](Cc1c[nH]c2ccccc12)C(=O)O"),
    "Y": ("Tyr", "N[C@@H](Cc1ccc(O)cc1)C(=O)O"),
    "V": ("Val", "N[C@@H](C(C)C)C(=O)O"),
}


@lru_cache(maxsize=None)
def peptide_library() -> MonomerLibrary:
    """The 20 proteinogenic L-amino acids; one-letter codes are names, three-letter codes aliases."""
    return MonomerLibrary(
        {code: smiles for code, (_, smiles) in _AMINO_ACIDS.items()},
        aliases={three: code for code, (three, _) in _AMINO_ACIDS.items()},
        kind="peptide",
    )
