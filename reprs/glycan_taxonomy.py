"""glycowork's glycan taxonomy table, read from the glycowork wheel (nothing is downloaded).

A leaf module: :mod:`reprs.datasets` (which builds graph datasets from it) and :mod:`reprs.glycans`
(which regenerates the monomer table and summarises coverage from it) both import it, and it
imports neither, so the two do not import each other.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from reprs.errors import InputError, ParseError
from reprs.iupac import parse_iupac

if TYPE_CHECKING:  # pandas is imported by whoever calls load_glycans: a warm `matrep similar` never does
    import pandas as pd

__all__ = ["load_glycans", "TAXONOMY_LEVELS", "dataset_level"]

TAXONOMY_LEVELS = ("Domain", "Kingdom", "Phylum", "Class", "Order", "Family", "Genus", "Species")


def load_glycans(level: str = "Kingdom", min_class_size: int = 1, drop_invalid: bool = True) -> pd.DataFrame:
    """Unique glycans of glycowork's species table with their taxonomy at one level.

    Labels are read without surrounding blanks (glycowork writes a few taxa with a trailing space
    too, ``"Actinomycetales "``). De-duplication: glycowork lists a glycan once per species record. Records are grouped by the
    glycan string (as glycowork writes it; strings that differ only in branch order are distinct
    glycowork entries and stay distinct here). ``labels`` holds every label seen at ``level``
    (sorted), ``label`` the one seen in most records (ties broken alphabetically), the single
    label of a multiclass task; records without a label at ``level`` are ignored and glycans left
    with none are dropped. glycowork's ``undetermined`` (Class to Species) is a missing label,
    not a class: such records are ignored too (as in :mod:`reprs.glycan_tasks`), and a warning
    counts the glycans left without a label by it. Finally glycans whose ``label`` class has fewer
    than ``min_class_size`` glycans are dropped.

    Parameters
    ----------
    level : str, default "Kingdom"
        One of ``TAXONOMY_LEVELS`` (case-insensitive).
    min_class_size : int, default 1
        Smallest number of glycans per ``label`` class kept.
    drop_invalid : bool, default True
        Drop the few strings of the table that are not well-formed IUPAC-condensed glycans
        (unbalanced brackets), with a warning naming how many; False keeps them.

    Returns
    -------
    pandas.DataFrame
        Columns ``glycan``, ``label``, ``labels`` (tuple of str), ``n_records``; sorted by
        ``glycan``, index reset.

    Raises
    ------
    InputError
        For an unknown level or a negative ``min_class_size``.
    """
    from glycowork.glycan_data.loader import df_species

    by_name = {name.lower(): name for name in TAXONOMY_LEVELS}
    if not isinstance(level, str) or level.lower() not in by_name:
        raise InputError(f"unknown taxonomy level {level!r}; choose one of {', '.join(TAXONOMY_LEVELS)}")
    if min_class_size < 1:
        raise InputError(f"min_class_size must be >= 1, got {min_class_size}")
    column = by_name[level.lower()]
    records = df_species[["glycan", column]].dropna()
    # The label as written less surrounding blanks: glycowork spells a few taxa both ways
    # ("Actinomycetales " and "Actinomycetales"), which would otherwise be two classes.
    text = records[column].astype(str).str.strip()
    records = records.assign(**{column: text})
    records, text = records[text != ""], text[text != ""]
    determined = text.str.lower() != "undetermined"
    unlabelled = set(records.loc[~determined, "glycan"]) - set(records.loc[determined, "glycan"])
    if unlabelled:
        warnings.warn(f"{len(unlabelled)} glycans recorded only as 'undetermined' at {column} are left out "
                      "(a missing label, not a class)", stacklevel=2)
    records = records[determined]
    counts = records.groupby(["glycan", column]).size().rename("n").reset_index()
    counts = counts.sort_values(["glycan", "n", column], ascending=[True, False, True])
    table = counts.groupby("glycan", sort=True).agg(
        label=(column, "first"),
        labels=(column, lambda s: tuple(sorted(s))),
        n_records=("n", "sum"),
    )
    table = table.reset_index()
    if drop_invalid:
        valid = []
        for glycan in table["glycan"]:
            try:
                parse_iupac(glycan)
                valid.append(True)
            except ParseError:
                valid.append(False)
        n_bad = len(valid) - sum(valid)
        if n_bad:
            warnings.warn(f"dropped {n_bad} malformed glycan strings from glycowork's table", stacklevel=2)
        table = table[valid]
    sizes = table["label"].map(table["label"].value_counts())
    table = table[sizes >= min_class_size]
    return table.reset_index(drop=True)


def dataset_level(source: str | os.PathLike, level: str | None) -> str | None:
    """The taxonomy level glycan dataset ``source`` is read at: ``level`` for the bundled set
    ``"glycans"`` (default ``"Kingdom"``, :func:`load_glycans`'), None for a CSV or ``.jsonl`` file,
    whose labels are its own.

    Raises
    ------
    InputError
        A ``level`` given for a file (it was ignored before: a file has no taxonomy to read).
    """
    if str(source) == "glycans":
        return "Kingdom" if level is None else level
    if level is not None:
        raise InputError(f"level={level!r} is a taxonomy level of the bundled set 'glycans'; {str(source)!r} is a "
                         "file whose labels are its own columns: leave level out")
    return None
