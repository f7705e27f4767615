"""Datasets that ship inside installed packages (nothing is downloaded).

:func:`load_glycans` reads the glycan taxonomy table that glycowork ships inside its wheel
(``glycowork.glycan_data.loader.df_species``: one row per glycan and species record).
"""

from __future__ import annotations

import warnings

import pandas as pd

from reprs.errors import InputError, ParseError
from reprs.iupac import parse_iupac

__all__ = ["load_glycans", "glycan_graph_dataset", "TAXONOMY_LEVELS"]

TAXONOMY_LEVELS = ("Domain", "Kingdom", "Phylum", "Class", "Order", "Family", "Genus", "Species")


def load_glycans(level: str = "Kingdom", min_class_size: int = 1, drop_invalid: bool = True) -> pd.DataFrame:
    """Unique glycans of glycowork's species table with their taxonomy at one level.

    De-duplication: glycowork lists a glycan once per species record. Records are grouped by the
    glycan string (as glycowork writes it; strings that differ only in branch order are distinct
    glycowork entries and stay distinct here). ``labels`` holds every label seen at ``level``
    (sorted), ``label`` the one seen in most records (ties broken alphabetically), the single
    label of a multiclass task; records without a label at ``level`` are ignored and glycans left
    with none are dropped. Finally glycans whose ``label`` class has fewer than ``min_class_size``
    glycans are dropped.

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
    records = records[records[column].astype(str).str.strip() != ""]
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


def glycan_graph_dataset(source: str = "glycans", *, level: str = "Kingdom", column: str | None = None, **options):
    """Glycan graphs with their table, from the bundled set or from a file.

    Parameters
    ----------
    source : str or path
        ``"glycans"``: :func:`load_glycans` (glycowork's glycans with taxonomy at ``level``);
        a CSV file with a column of glycan strings (``column``, default the column named
        ``glycan`` or the only column) and any label columns; or a ``.jsonl`` file written by
        :func:`reprs.graphio.write_graphs`.
    level : str
        Taxonomy level for the bundled set.
    column : str, optional
        Glycan column of a CSV source.
    **options
        Passed to :func:`reprs.glycans.glycan_graph`.

    Returns
    -------
    graphs : list of networkx.DiGraph
        Glycans whose graph could be built (unknown monomers and malformed strings are left out).
    table : pandas.DataFrame
        One row per graph, aligned with ``graphs``: ``glycan`` (and ``label``/``labels`` for the
        bundled set, or the CSV's other columns).

    Raises
    ------
    InputError
        For a missing file, an unknown column or a source that yields no graph.
    """
    from pathlib import Path

    from reprs.glycans import build_glycan_graphs
    from reprs.graphio import read_graphs

    if str(source) == "glycans":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the 3 malformed strings are documented
            table = load_glycans(level=level)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"dataset {source!r} is neither 'glycans' nor an existing file")
        if path.suffix == ".jsonl":
            graphs = read_graphs(path)
            if not graphs:
                raise InputError(f"dataset {path} holds no graphs")
            return graphs, pd.DataFrame({"glycan": [g.graph.get("name") for g in graphs]})
        table = pd.read_csv(path)
        if column is None:
            names = [c for c in table.columns if str(c).lower() == "glycan"]
            if not names and len(table.columns) != 1:
                raise InputError(f"say which column of {path} holds the glycans; columns: {list(table.columns)}")
            column = names[0] if names else table.columns[0]
        if column not in table.columns:
            raise InputError(f"column {column!r} not in {path}; columns: {list(table.columns)}")
        table = table.rename(columns={column: "glycan"})
    graphs, _ = build_glycan_graphs(table["glycan"].astype(str), errors="skip", **options)
    keep = [g is not None for g in graphs]
    if not any(keep):
        raise InputError(f"no glycan of {source!r} could be turned into a graph")
    return [g for g in graphs if g is not None], table[keep].reset_index(drop=True)
