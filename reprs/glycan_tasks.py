"""Glycan prediction tasks at the breadth of GlycanML, from data installed with the project.

GlycanML (Xu et al., arXiv:2405.16206, ICLR 2025) defines eleven tasks: taxonomy at eight levels,
immunogenicity, glycosylation type and protein-glycan interaction. Its split files are not
available offline, so these loaders rebuild the tasks from the tables that glycowork ships in its
wheel (nothing is downloaded) and say, row by row, what was left out and why:

- :func:`taxonomy_task`: glycowork's species table (``df_species``), unique glycans with a label at
  all eight levels (Domain ... Species); for one level, per glycan the label of most records (ties
  alphabetical, as :func:`reprs.glycan_taxonomy.load_glycans`); for the eight-level table, the
  full lineage of most records (ties: alphabetically first), never a mix of levels from different
  lineages. Records with the placeholder
  ``"undetermined"`` at any level are left out, and counted.
- :func:`glycosylation_task`: glycowork's ``df_glycan.glycan_type``. GlycanML's three classes are
  N-linked, O-linked and free glycans; glycowork 1.11 also labels ``lipid`` (glycolipid) and
  ``repeat`` (repeating units of polysaccharides), which are left out by default and counted
  (``include=("lipid", "repeat")`` keeps them as classes of their own).
- :func:`immunogenicity_task`: glycowork 1.11 carries no immunogenicity annotation; the task reads
  the GLAMOUR table (``glycobase_immuno.txt``, 1,313 glycans) from a path the caller gives.
- :func:`binding_task`: glycowork's glycan-binding table (one row per lectin-array sample, one
  column per glycan, z-scored binding values, the protein's sequence in ``target``) in long form,
  one row per measured (sample, glycan) pair.

One glycan is one row: the source tables write some glycans in two or more ways (branches in
another order, a bracketed first branch: ``[Abe(a1-3)]Man(a1-4)...`` and ``Abe(a1-3)Man(a1-4)...``),
which as separate rows a random split puts on both sides and whose labels they split. Records are
therefore grouped by the canonical form of the string (:func:`reprs.iupac.write_iupac`, branches
sorted); the row keeps the spelling written most often (ties alphabetical) and the labels are voted
over all spellings: taxonomy by records as above; glycosylation and immunogenicity by spellings,
a glycan whose spellings tie between labels being left out; binding averages a sample's values
measured under two spellings. ``dropped`` counts the merged spellings (glycowork 1.11: 246
taxonomy, 774 glycosylation, 48 binding columns; GLAMOUR: 13, of which 9 tie and are left out).

Every task keeps the strings as written: which of them parse and turn into graphs is decided by
:func:`task_graphs`, which counts the failures (``report``) and warns with the number, never
dropping a glycan without saying so.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reprs.errors import InputError, ParseError
from reprs.glycan_taxonomy import TAXONOMY_LEVELS
from reprs.iupac import parse_iupac, write_iupac

__all__ = [
    "GlycanTask", "taxonomy_task", "glycosylation_task", "immunogenicity_task", "binding_task",
    "task_graphs", "motif_counts", "sequence_composition", "AMINO_ACIDS", "GLYCOSYLATION_TYPES", "TASK_NAMES",
    "load_task",
]

#: glycowork 1.11's ``glycan_type`` values; the first three are GlycanML's classes.
GLYCOSYLATION_TYPES = ("N", "O", "free", "lipid", "repeat")
#: Names accepted by :func:`load_task`.
TASK_NAMES = (*(f"taxonomy-{level.lower()}" for level in TAXONOMY_LEVELS), "taxonomy", "glycosylation",
              "immunogenicity", "binding")


@dataclasses.dataclass(frozen=True)
class GlycanTask:
    """A glycan prediction task: a table of glycans and labels, with what was left out.

    Attributes
    ----------
    name : str
        ``"taxonomy-kingdom"``, ``"taxonomy"`` (all eight levels), ``"glycosylation"``,
        ``"immunogenicity"`` or ``"binding"``.
    kind : {"multiclass", "binary", "multitask", "regression"}
    table : pandas.DataFrame
        Column ``glycan`` and the ``label_columns`` (binding: also ``lectin``, ``sequence``).
    label_columns : tuple of str
    n_source : int
        Rows of the source table before anything was left out.
    dropped : dict of str to int
        Reason -> number of source rows (or glycans) left out for it.
    source : str
        Where the data came from.
    """

    name: str
    kind: str
    table: pd.DataFrame
    label_columns: tuple[str, ...]
    n_source: int
    dropped: dict[str, int]
    source: str

    @property
    def n(self) -> int:
        """Rows of the task."""
        return len(self.table)

    def class_counts(self) -> dict[str, dict[Any, int]]:
        """Label column -> {class: count} (classification tasks), most frequent first."""
        if self.kind == "regression":
            raise InputError(f"task {self.name!r} is a regression; it has no classes")
        return {c: self.table[c].value_counts().to_dict() for c in self.label_columns}

    def summary(self) -> str:
        """One line: size, classes per label column (or pairs), and what was left out."""
        parts = [f"{self.name}: {self.n} rows from {self.n_source} of {self.source}"]
        if self.kind == "regression":
            parts.append(f"{self.table['glycan'].nunique()} glycans x {self.table['lectin'].nunique()} lectins")
        else:
            parts.append("classes " + ", ".join(f"{c}={self.table[c].nunique()}" for c in self.label_columns))
        if self.dropped:
            parts.append("left out: " + ", ".join(f"{k} {v}" for k, v in self.dropped.items()))
        return "; ".join(parts)


def _canonical(glycans) -> np.ndarray:
    """Canonical form of each glycan string (:func:`reprs.iupac.write_iupac`), None if it does not parse.

    Two spellings of one glycan (branches in another order, a bracketed first branch) share the
    canonical form, so the tasks group records by it: otherwise the spellings would be two rows
    that a random split can put on both sides (leakage) and that split the glycan's labels.
    """
    out = np.empty(len(glycans), dtype=object)
    for i, glycan in enumerate(glycans):
        try:
            parsed = parse_iupac(glycan)
        except ParseError:
            continue
        out[i] = write_iupac(parsed.residues, parsed.bonds, parsed.root, parsed.floating)
    return out


def _spellings(glycans: pd.Series, keys: pd.Series) -> pd.Series:
    """Canonical key -> the spelling written most often (ties alphabetical)."""
    return _majority(pd.DataFrame({"key": keys.to_numpy(), "glycan": glycans.to_numpy()}), ["glycan"])["glycan"]


def _merge_copies(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per canonical glycan of a table with one row per spelling and a ``label`` column.

    The label is the one most spellings carry; a glycan whose spellings tie between labels
    is left out (counted), there being no majority to take.
    """
    keys = pd.Series(_canonical(table["glycan"]), index=table.index)
    malformed = int(keys.isna().sum())
    table, keys = table[keys.notna()], keys[keys.notna()]
    spelling = _spellings(table["glycan"], keys)
    votes = pd.DataFrame({"key": keys.to_numpy(), "label": table["label"].to_numpy()})
    votes = votes.groupby(["key", "label"]).size().rename("n").reset_index()
    top = votes.groupby("key")["n"].transform("max")
    winners = votes[votes["n"] == top]
    tied = winners["key"].duplicated(keep=False)
    n_tied = winners.loc[tied, "key"].nunique()
    winners = winners[~tied]
    merged = pd.DataFrame({"glycan": spelling[winners["key"]].to_numpy(), "label": winners["label"].to_numpy()})
    dropped = {"malformed glycan strings": malformed,
               "spellings merged into another of the same glycan": int(len(table) - keys.nunique()),
               "glycans whose spellings tie between labels": int(n_tied)}
    return merged.sort_values("glycan").reset_index(drop=True), dropped


def _majority(records: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per glycan ``key``, the values of ``columns`` seen together in most records (ties: the
    alphabetically first, compared column by column), indexed by key in sorted order."""
    counts = records.groupby(["key", *columns]).size().rename("n").reset_index()
    counts = counts.sort_values(["key", "n", *columns], ascending=[True, False, *[True] * len(columns)])
    return counts.drop_duplicates("key").set_index("key")[columns]


def taxonomy_task(level: str | None = None, *, min_class_size: int = 1) -> GlycanTask:
    """Glycans of glycowork's species table labelled at all eight taxonomy levels.

    Parameters
    ----------
    level : str, optional
        One level (``"Kingdom"``, case-insensitive): a multiclass task with column ``label``, per
        glycan the label of most records at that level (ties alphabetical).
        None: the multi-task table with one column per level (``Domain`` ... ``Species``), per
        glycan the full lineage of most records (ties: the alphabetically first lineage, compared
        level by level from Domain down), so that every row is a lineage recorded for its glycan.
        A single level's label can therefore differ from that level's column here (a glycan
        recorded in two plants of one order and one of another: the majority order may not be the
        majority lineage's).
    min_class_size : int
        Single level only: glycans of classes with fewer members are left out (counted).

    Returns
    -------
    GlycanTask

    Raises
    ------
    InputError
        An unknown level, or ``min_class_size < 1``.
    """
    from glycowork.glycan_data.loader import df_species

    if min_class_size < 1:
        raise InputError(f"min_class_size must be >= 1, got {min_class_size}")
    if level is not None:
        by_name = {name.lower(): name for name in TAXONOMY_LEVELS}
        if not isinstance(level, str) or level.lower() not in by_name:
            raise InputError(f"unknown taxonomy level {level!r}; choose one of {', '.join(TAXONOMY_LEVELS)}")
        level = by_name[level.lower()]
    elif min_class_size != 1:
        raise InputError("min_class_size applies to a single level; the eight-level table keeps every glycan")
    levels = list(TAXONOMY_LEVELS)
    records = df_species[["glycan", *levels]]
    text = records[levels].astype(str).apply(lambda c: c.str.strip())
    labelled = records[levels].notna().all(axis=1) & (text != "").all(axis=1)
    determined = ~(text.apply(lambda c: c.str.lower()) == "undetermined").any(axis=1)
    dropped = {"records without a label at every level": int((~labelled).sum()),
               "records 'undetermined' at some level": int((labelled & ~determined).sum())}
    # Labels without surrounding blanks: glycowork spells a few taxa both ways ("Actinomycetales " and
    # "Actinomycetales"), which would otherwise be two classes and split a glycan's votes.
    records = records.assign(**{lv: text[lv] for lv in levels})[labelled & determined]
    unique = pd.unique(records["glycan"])
    keys = records["glycan"].map(dict(zip(unique, _canonical(unique))))
    dropped["malformed glycan strings"] = int(records.loc[keys.isna(), "glycan"].nunique())
    records = records[keys.notna()].assign(key=keys[keys.notna()])
    dropped["spellings merged into another of the same glycan"] = int(records["glycan"].nunique() - records["key"].nunique())
    spelling = _spellings(records["glycan"], records["key"])
    if level is None:
        # Voting level by level could combine levels of different records into a lineage that was
        # never recorded for the glycan (Dicotyledons / Pinales / Nicotiana); the whole lineage is voted.
        table = _majority(records, list(levels))
    else:
        table = _majority(records, [level])
    table.insert(0, "glycan", spelling[table.index].to_numpy())
    table = table.sort_values("glycan").reset_index(drop=True)
    if level is None:
        return GlycanTask("taxonomy", "multitask", table, tuple(levels), len(df_species),
                          {k: v for k, v in dropped.items() if v}, "glycowork df_species")
    table = table[["glycan", level]].rename(columns={level: "label"})
    sizes = table["label"].map(table["label"].value_counts())
    dropped[f"glycans in classes under {min_class_size}"] = int((sizes < min_class_size).sum())
    table = table[sizes >= min_class_size].reset_index(drop=True)
    return GlycanTask(f"taxonomy-{level.lower()}", "multiclass", table, ("label",), len(df_species),
                      {k: v for k, v in dropped.items() if v}, "glycowork df_species")


def glycosylation_task(*, include: tuple[str, ...] = ()) -> GlycanTask:
    """N-linked / O-linked / free glycans of glycowork's ``df_glycan.glycan_type``.

    Parameters
    ----------
    include : tuple of {"lipid", "repeat"}
        Extra glycowork types kept as classes of their own (left out by default, as GlycanML has
        three classes).

    Raises
    ------
    InputError
        An unknown type in ``include``, or a glycan labelled with two types.
    """
    from glycowork.glycan_data.loader import df_glycan

    extra = set(include) - {"lipid", "repeat"}
    if extra:
        raise InputError(f"include takes 'lipid' and/or 'repeat', got {sorted(extra)}")
    keep = ("N", "O", "free", *include)
    typed = df_glycan[["glycan", "glycan_type"]].dropna().drop_duplicates()
    conflicting = typed["glycan"].duplicated(keep=False)
    if conflicting.any():
        raise InputError(f"{typed[conflicting]['glycan'].nunique()} glycan strings carry two glycan_type labels "
                         "in glycowork")
    dropped = {"glycans without glycan_type": int(df_glycan["glycan_type"].isna().sum())}
    # Spellings merge before the types are chosen, so a glycan's type is its majority over all of them.
    table, merged = _merge_copies(typed.rename(columns={"glycan_type": "label"}))
    dropped.update(merged)
    for kind in ("lipid", "repeat"):
        if kind not in include:
            dropped[f"{kind} glycans"] = int((table["label"] == kind).sum())
    dropped["glycans of other types"] = int((~table["label"].isin(GLYCOSYLATION_TYPES)).sum())
    table = table[table["label"].isin(keep)].reset_index(drop=True)
    return GlycanTask("glycosylation", "multiclass", table, ("label",), len(df_glycan),
                      {k: v for k, v in dropped.items() if v}, "glycowork df_glycan.glycan_type")


def immunogenicity_task(path: str | Path) -> GlycanTask:
    """Immunogenic (1) or not (0) glycans of GLAMOUR's ``glycobase_immuno.txt``.

    glycowork 1.11 ships no immunogenicity annotation, so this reads GLAMOUR's table (1,313
    glycans in GlycoBase spelling; all of them are in GlycanML's 1,320 with the same labels).

    Parameters
    ----------
    path : path
        The ``glycobase_immuno.txt`` file (columns ``Glycan`` and ``Immunogenic`` = Yes / No).

    Raises
    ------
    InputError
        A missing file, missing columns, or labels other than Yes / No.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no immunogenicity table at {str(path)!r}; give GLAMOUR's glycobase_immuno.txt")
    source = pd.read_csv(path)
    missing = {"Glycan", "Immunogenic"} - set(source.columns)
    if missing:
        raise InputError(f"{path} lacks columns {sorted(missing)}; it has {list(source.columns)}")
    values = source["Immunogenic"].astype(str).str.strip()
    bad = ~values.isin(("Yes", "No"))
    if bad.any():
        raise InputError(f"{path}: Immunogenic must be Yes or No; found {sorted(set(values[bad]))[:5]}")
    table = pd.DataFrame({"glycan": source["Glycan"].astype(str), "label": (values == "Yes").astype(int)})
    duplicated = table.duplicated().to_numpy()
    table, merged = _merge_copies(table[~duplicated])
    dropped = {"duplicate glycans": int(duplicated.sum()), **merged}
    return GlycanTask("immunogenicity", "binary", table, ("label",), len(source),
                      {k: v for k, v in dropped.items() if v}, f"GLAMOUR {path.name}")


def binding_task() -> GlycanTask:
    """Lectin-glycan binding pairs of glycowork's glycan-binding table, in long form.

    Each row of glycowork's table is one lectin-array sample (columns ``protein``, its name, and
    ``target``, its amino-acid sequence); each other column a glycan, holding the sample's
    (z-scored) binding value or nothing. One row per measured pair is returned, with ``lectin``
    the row number of the sample in glycowork's table (samples of one protein under different
    names or conditions are distinct rows there; :func:`learners.splits.group_split` on
    ``sequence`` keeps identical sequences on one side). Columns that are one glycan spelt two
    ways become one glycan; a sample measured under both keeps the mean of its two values.

    Returns
    -------
    GlycanTask
        Columns ``lectin`` (int), ``protein``, ``sequence``, ``glycan``, ``label`` (float).
    """
    from glycowork.glycan_data.loader import glycan_binding

    glycans = [c for c in glycan_binding.columns if c not in ("target", "protein")]
    values = glycan_binding[glycans].to_numpy(dtype=float)
    rows, cols = np.nonzero(np.isfinite(values))
    table = pd.DataFrame({
        "lectin": rows,
        "protein": glycan_binding["protein"].to_numpy()[rows],
        "sequence": glycan_binding["target"].astype(str).to_numpy()[rows],
        "glycan": np.asarray(glycans, dtype=object)[cols],
        "label": values[rows, cols],
    })
    key_of = dict(zip(glycans, _canonical(glycans)))
    keys = table["glycan"].map(key_of)
    ok = keys.notna().to_numpy()
    dropped = {"pairs of malformed glycan strings": int((~ok).sum())}
    table, keys = table[ok].assign(key=keys[ok]), keys[ok]
    # Columns that are one glycan spelt two ways: one glycan, its spelling the column measured most;
    # a sample measured under both spellings keeps the mean of its values.
    spelling = _spellings(table["glycan"], keys)
    table = (table.groupby(["lectin", "key"], sort=True)
             .agg(protein=("protein", "first"), sequence=("sequence", "first"), label=("label", "mean"),
                  copies=("label", "size"))
             .reset_index())
    table["glycan"] = spelling[table["key"]].to_numpy()
    formed = [key for key in key_of.values() if key is not None]
    dropped["glycan columns merged into another spelling of the same glycan"] = len(formed) - len(set(formed))
    dropped["pairs averaged with another spelling's value"] = int((table["copies"] - 1).sum())
    table = table[["lectin", "protein", "sequence", "glycan", "label"]]
    return GlycanTask("binding", "regression", table, ("label",),
                      int(values.size), {**{k: v for k, v in dropped.items() if v},
                                         "unmeasured (sample, glycan) cells": int((~np.isfinite(values)).sum())},
                      "glycowork glycan_binding")


def load_task(name: str, *, immunogenicity_path: str | Path | None = None) -> GlycanTask:
    """A task by name (:data:`TASK_NAMES`); ``immunogenicity`` needs ``immunogenicity_path``."""
    if name not in TASK_NAMES:
        raise InputError(f"unknown glycan task {name!r}; choose one of {', '.join(TASK_NAMES)}")
    if name == "taxonomy":
        return taxonomy_task()
    if name.startswith("taxonomy-"):
        return taxonomy_task(name.split("-", 1)[1])
    if name == "glycosylation":
        return glycosylation_task()
    if name == "binding":
        return binding_task()
    if immunogenicity_path is None:
        raise InputError("the immunogenicity task reads GLAMOUR's glycobase_immuno.txt: give immunogenicity_path")
    return immunogenicity_task(immunogenicity_path)


def task_graphs(task: GlycanTask, *, warn: bool = True, **options) -> tuple[list, pd.DataFrame, dict[str, Any]]:
    """Graphs of a task's glycans, the rows that have one, and a report of the rest.

    Each distinct glycan string is built once (:func:`reprs.glycans.build_glycan_graphs`).

    Parameters
    ----------
    task : GlycanTask
    warn : bool
        Warn with the number of glycans that could not be built (never silent: the report always
        holds them).
    **options
        Passed to :func:`reprs.glycans.glycan_graph`.

    Returns
    -------
    graphs : list of networkx.DiGraph
        One per distinct buildable glycan, in order of first appearance in the table.
    table : pandas.DataFrame
        The task's rows whose glycan was built, index reset, with column ``graph`` (index into
        ``graphs``).
    report : dict
        ``n_glycans``, ``n_built``, ``n_failed``, ``rows_dropped`` and ``failures`` (glycan ->
        first line of its error), besides the task's own ``dropped``.

    Raises
    ------
    InputError
        If no glycan of the task could be built.
    """
    from reprs.glycans import build_glycan_graphs

    unique = pd.unique(task.table["glycan"])
    built, failures = build_glycan_graphs(unique, errors="skip", **options)
    index, graphs = {}, []
    for glycan, graph in zip(unique, built):
        if graph is not None:
            index[glycan] = len(graphs)
            graphs.append(graph)
    if not graphs:
        raise InputError(f"no glycan of task {task.name!r} could be turned into a graph")
    where = task.table["glycan"].map(index)
    table = task.table[where.notna()].assign(graph=where[where.notna()].astype(int)).reset_index(drop=True)
    report = {"task": task.name, "n_glycans": len(unique), "n_built": len(graphs), "n_failed": len(failures),
              "rows_dropped": int(where.isna().sum()), "dropped_before": dict(task.dropped),
              "failures": {unique[row]: message for row, message in failures}}
    if failures and warn:
        warnings.warn(f"{task.name}: {len(failures)} of {len(unique)} glycans could not be turned into graphs "
                      f"({report['rows_dropped']} rows left out); see the report's 'failures'", stacklevel=2)
    return graphs, table, report


def motif_counts(glycans: list[str] | pd.Series) -> pd.DataFrame:
    """Counts of glycowork's named motifs (``motif_list``, 164 in glycowork 1.11) per glycan.

    The vectors GlycanML clusters to build its structure split (k-means, k = 10), computed with
    glycowork's own ``annotate_dataset(feature_set=["known"])``.

    Returns
    -------
    pandas.DataFrame
        One row per glycan (in order), one integer column per motif.
    """
    from glycowork.motif.annotate import annotate_dataset

    glycans = list(glycans)
    if not glycans:
        raise InputError("no glycans to count motifs of")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts = annotate_dataset(glycans, feature_set=["known"])
    return counts.reset_index(drop=True).astype(int)


#: The twenty standard amino acids, in one-letter code (alphabetical).
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def sequence_composition(sequences: list[str] | pd.Series) -> np.ndarray:
    """Amino-acid and dipeptide composition of protein sequences (420 fractions per sequence).

    The lectins of the binding task enter models through these: no protein language model
    weights are available offline, and composition vectors (Bhasin & Raghava, J. Biol. Chem.
    279, 23262 (2004)) are the classic alignment-free sequence features. Columns 0-19: fraction
    of each of :data:`AMINO_ACIDS`; columns 20-419: fraction of each ordered pair of adjacent
    residues (first letter major). Letters outside the twenty (X, B, Z, U, ``*``) are skipped.

    Returns
    -------
    numpy.ndarray, shape (n, 420), float64

    Raises
    ------
    InputError
        A sequence without any of the twenty standard residues.
    """
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[np.frombuffer(AMINO_ACIDS.encode(), dtype=np.uint8)] = np.arange(20)
    out = np.zeros((len(sequences), 20 + 400))
    for row, sequence in enumerate(sequences):
        codes = lookup[np.frombuffer(str(sequence).upper().encode(), dtype=np.uint8)]
        if not (codes >= 0).any():
            raise InputError(f"sequence {row} ({str(sequence)[:20]!r}...) has none of the 20 standard amino acids")
        pairs = codes[:-1] * 20 + codes[1:]
        pairs = pairs[(codes[:-1] >= 0) & (codes[1:] >= 0)]
        out[row, :20] = np.bincount(codes[codes >= 0], minlength=20) / (codes >= 0).sum()
        if len(pairs):
            out[row, 20:] = np.bincount(pairs, minlength=400) / len(pairs)
    return out
