"""Parser and writer for glycans in IUPAC-condensed notation, as glycowork writes them.

The notation lists residues from the non-reducing ends to the reducing end, which comes last::

    Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man

Every residue but the reducing end is followed by the linkage to its parent in parentheses:
anomeric state (``a``, ``b`` or ``?``; absent for non-glycosidic bonds such as ``5-6``), the donor
carbon, a dash and the acceptor carbon of the parent (alternatives separated by ``/``, unknown ``?``).
A residue followed by its linkage is attached to the next residue at the same bracket depth, so a
bracketed branch ``[...]`` hangs on the residue that follows the bracket. Braces ``{...}`` hold
floating substituents whose parent is unknown (glycowork writes them first); they are kept as
residues without a parent.

References
----------
IUPAC-IUBMB Joint Commission on Biochemical Nomenclature, "Nomenclature of carbohydrates",
Pure Appl. Chem. 68, 1919 (1996), section 2-Carb-38 (condensed form).
D. Bojar et al., glycowork, Glycobiology 31, 1240 (2021) (the dialect parsed here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reprs.errors import GlycanParseError

__all__ = ["Linkage", "ParsedGlycan", "parse_iupac", "write_iupac"]

_LINKAGE = re.compile(r"(?P<anomer>[ab?]?)(?P<donor>\d+|\?)-(?P<acceptor>(?:\d+|\?)(?:/(?:\d+|\?))*)")
_WHITESPACE = re.compile(r"\s")
_TOKEN = re.compile(r"\((?P<link>[^()\[\]{}]*)\)|(?P<bracket>[\[\]{}])|(?P<name>[^()\[\]{}]+)")


@dataclass(frozen=True)
class Linkage:
    """A bond between two residues.

    Attributes
    ----------
    anomer : str
        ``"a"`` (alpha), ``"b"`` (beta), ``"?"`` (unknown) or ``""`` (not a glycosidic bond).
    donor : str
        Carbon number of the child residue (``"?"`` if unknown).
    acceptor : tuple of str
        Possible carbon numbers of the parent residue; more than one when the position is
        ambiguous (``3/6``), ``("?",)`` if unknown. Alternatives are kept in ascending order
        (``?`` last), whatever order they were written in: ``b1-4/3`` and ``b1-3/4`` name one
        linkage, and give one label and one canonical string.
    """

    anomer: str
    donor: str
    acceptor: tuple[str, ...]

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.acceptor, key=lambda c: (c == "?", int(c) if c.isdigit() else 0)))
        object.__setattr__(self, "acceptor", ordered)

    @classmethod
    def parse(cls, text: str, glycan: str | None = None, position: int | None = None) -> Linkage:
        """Parse the text between the parentheses, e.g. ``"a2-3/6"``."""
        match = _LINKAGE.fullmatch(text)
        if match is None:
            raise GlycanParseError(
                f"malformed linkage '({text})': expected anomer a/b/? then donor-acceptor carbons, "
                "e.g. (a1-4), (b1-3/6), (?1-?)",
                glycan,
                position,
            )
        return cls(match["anomer"], match["donor"], tuple(match["acceptor"].split("/")))

    def __str__(self) -> str:
        return f"{self.anomer}{self.donor}-{'/'.join(self.acceptor)}"


@dataclass
class ParsedGlycan:
    """The residues and bonds of a glycan string.

    Attributes
    ----------
    residues : list of str
        Residue names in order of appearance.
    offsets : list of int
        Character offset of each residue in the input.
    bonds : list of tuple (child, parent, Linkage)
        Indices into ``residues``.
    floating : list of tuple (child, Linkage)
        Residues whose parent is unknown (written in braces).
    root : int
        Index of the reducing-end residue.
    """

    residues: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    bonds: list[tuple[int, int, Linkage]] = field(default_factory=list)
    floating: list[tuple[int, Linkage]] = field(default_factory=list)
    root: int = -1


def _tokens(text: str):
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            break
        position = match.end()
        yield match
    if position != len(text):
        char = text[position]
        problem = "unclosed '('" if char == "(" else f"unexpected '{char}'"
        raise GlycanParseError(f"{problem} at position {position}", text, position)


def parse_iupac(text: str) -> ParsedGlycan:
    """Parse a glycan in IUPAC-condensed notation.

    Parameters
    ----------
    text : str
        The glycan, e.g. ``"Gal(b1-4)[Fuc(a1-3)]GlcNAc"``.

    Returns
    -------
    ParsedGlycan
        Residue names, bonds (child, parent, linkage), floating residues and the root.

    Raises
    ------
    GlycanParseError
        On empty input, unbalanced brackets or braces, a malformed linkage, a residue without a
        linkage to its parent, or a string that ends with a linkage. The message names the
        position.
    """
    if not isinstance(text, str) or not text.strip():
        raise GlycanParseError(f"empty glycan string {text!r}: expected e.g. 'Gal(b1-4)GlcNAc'")
    space = _WHITESPACE.search(text)
    if space is not None:
        raise GlycanParseError("whitespace inside a glycan string", text, space.start())
    parsed = ParsedGlycan()
    # Each frame: (opening bracket, its offset, residues waiting for the next residue at this depth).
    frames: list[tuple[str, int, list[tuple[int, Linkage]]]] = [("", -1, [])]
    expect_linkage = False  # a residue was just read and is not the reducing end yet
    for match in _tokens(text):
        offset = match.start()
        if match["name"] is not None:
            if expect_linkage:
                raise GlycanParseError(
                    f"residue '{parsed.residues[-1]}' is followed by '{match['name']}' without a linkage",
                    text,
                    offset,
                )
            index = len(parsed.residues)
            parsed.residues.append(match["name"])
            parsed.offsets.append(offset)
            pending = frames[-1][2]
            parsed.bonds.extend((child, index, link) for child, link in pending)
            pending.clear()
            expect_linkage = True
            continue
        if match["link"] is not None:
            if not expect_linkage:
                raise GlycanParseError("linkage without a residue before it", text, offset)
            link = Linkage.parse(match["link"], text, offset)
            frames[-1][2].append((len(parsed.residues) - 1, link))
            expect_linkage = False
            continue
        bracket = match["bracket"]
        if expect_linkage:
            raise GlycanParseError(
                f"residue '{parsed.residues[-1]}' has no linkage before '{bracket}'", text, offset
            )
        if bracket in "[{":
            frames.append((bracket, offset, []))
            continue
        opening = "[" if bracket == "]" else "{"
        if frames[-1][0] != opening:
            problem = f"'{bracket}' without a matching '{opening}'"
            if len(frames) > 1:
                problem = f"'{bracket}' closes '{frames[-1][0]}' opened at position {frames[-1][1]}"
            raise GlycanParseError(problem, text, offset)
        _, opened, pending = frames.pop()
        if not pending:
            raise GlycanParseError(f"empty '{opening}{bracket}'", text, opened)
        if opening == "[":
            frames[-1][2].extend(pending)
        else:
            parsed.floating.extend(pending)
    if len(frames) > 1:
        raise GlycanParseError(f"unclosed '{frames[-1][0]}'", text, frames[-1][1])
    if not expect_linkage:
        raise GlycanParseError(
            "glycan ends with a linkage: the reducing-end residue is missing", text, len(text) - 1
        )
    parsed.root = len(parsed.residues) - 1
    return parsed


def write_iupac(
    names: list[str],
    bonds: list[tuple[int, int, Linkage]],
    root: int,
    floating: list[tuple[int, Linkage]] = (),
) -> str:
    """Write residues and bonds as a canonical IUPAC-condensed string.

    Children of a residue are ordered by the canonical text of their subtrees; the last one in
    that order is the main chain and the others are written as bracketed branches, so that
    isomorphic glycans give the same string.

    Parameters
    ----------
    names : list of str
        Residue names.
    bonds : list of tuple (child, parent, Linkage)
        The tree, every residue but the root and floating ones having one parent.
    root : int
        Index of the reducing-end residue.
    floating : list of tuple (child, Linkage)
        Residues without a known parent, written in braces at the front.
    """
    children: dict[int, list[tuple[int, Linkage]]] = {}
    for child, parent, link in bonds:
        children.setdefault(parent, []).append((child, link))

    def subtree(node: int) -> str:
        parts = sorted(f"{subtree(child)}({link})" for child, link in children.get(node, ()))
        if not parts:
            return names[node]
        *branches, main = parts
        return main + "".join(f"[{b}]" for b in branches) + names[node]

    front = sorted(f"{{{subtree(child)}({link})}}" for child, link in floating)
    return "".join(front) + subtree(root)
