"""Datasets that ship inside installed packages (nothing is downloaded).

:func:`load_glycans` reads the glycan taxonomy table that glycowork ships inside its wheel
(``glycowork.glycan_data.loader.df_species``: one row per glycan and species record; defined in
:mod:`reprs.glycan_taxonomy`, re-exported here).
:func:`load_qm9` reads QM9 as the ``qm9pack`` wheel ships it whole (the ``bench`` extra).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from reprs.errors import InputError, MissingDependencyError
from reprs.glycan_taxonomy import TAXONOMY_LEVELS, dataset_level, load_glycans

__all__ = ["load_glycans", "glycan_graph_dataset", "dataset_level", "load_qm9", "TAXONOMY_LEVELS", "QM9_TARGETS"]


def glycan_graph_dataset(source: str = "glycans", *, level: str | None = None, column: str | None = None,
                         progress: bool = False, **options):
    """Glycan graphs with their table, from the bundled set or from a file.

    Parameters
    ----------
    source : str or path
        ``"glycans"``: :func:`load_glycans` (glycowork's glycans with taxonomy at ``level``);
        a CSV file with a column of glycan strings (``column``, default the column named
        ``glycan`` or the only column) and any label columns; or a ``.jsonl`` file written by
        :func:`reprs.graphio.write_graphs`.
    level : str, optional
        Taxonomy level of the bundled set (default ``"Kingdom"``); refused for a file source
        (:func:`dataset_level`).
    column : str, optional
        Glycan column of a CSV source (refused for the other sources).
    progress : bool
        Draw a progress bar over the glycans while their graphs are built.
    **options
        Passed to :func:`reprs.glycans.glycan_graph`; refused for a ``.jsonl`` source, whose graphs
        are already built.

    Returns
    -------
    graphs : list of networkx.DiGraph
        Glycans whose graph could be built (unknown monomers and malformed strings are left out,
        with a :class:`~reprs.featurizers.FeaturizationWarning` that counts them and names the
        first few).
    table : pandas.DataFrame
        One row per graph, aligned with ``graphs``: ``glycan`` (and ``label``/``labels`` for the
        bundled set, or the CSV's other columns).

    Raises
    ------
    InputError
        For a missing file, an unknown column, a setting the source cannot use (``column`` of a
        non-CSV source, ``level`` of a file, ``options`` of a ``.jsonl`` source) or a source that
        yields no graph.

    Warns
    -----
    FeaturizationWarning
        When glycans of the source could not be turned into graphs and were left out.
    """
    from reprs.glycans import build_glycan_graphs
    from reprs.graphio import read_graphs

    if column is not None and (str(source) == "glycans" or Path(source).suffix == ".jsonl"):
        raise InputError(f"column={column!r} names the glycan column of a CSV source, not of {str(source)!r}; "
                         "leave it out")
    if str(source) == "glycans":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "dropped .* malformed", UserWarning)  # the 3 malformed strings are documented
            table = load_glycans(level=dataset_level(source, level))
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"dataset {source!r} is neither 'glycans' nor an existing file")
        dataset_level(source, level)
        if path.suffix == ".jsonl":
            if options:  # they were dropped without a word
                raise InputError(
                    f"{', '.join(sorted(options))} set how glycan strings become graphs, but {path} holds graphs "
                    "already built (reprs.graphio.write_graphs): build them from a CSV of glycan strings with "
                    "these options, or leave the options out"
                )
            graphs = read_graphs(path)
            if not graphs:
                raise InputError(f"dataset {path} holds no graphs")
            return graphs, pd.DataFrame({"glycan": [g.graph.get("name") for g in graphs]})
        try:
            # Only an empty cell is missing: pandas' default also reads "NA", "None", "null", "N/A", "nan" as
            # missing, so classes of those names became one label "nan" (as the csv module reads them, they stay)
            table = pd.read_csv(path, keep_default_na=False, na_values=[""])
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise InputError(f"cannot read {path} as a CSV table: {err}") from None
        if column is None:
            names = [c for c in table.columns if str(c).lower() == "glycan"]
            if not names and len(table.columns) != 1:
                raise InputError(f"say which column of {path} holds the glycans; columns: {list(table.columns)}")
            column = names[0] if names else table.columns[0]
        if column not in table.columns:
            raise InputError(f"column {column!r} not in {path}; columns: {list(table.columns)}")
        table = table.rename(columns={column: "glycan"})
    graphs, failures = build_glycan_graphs(table["glycan"].astype(str), errors="skip", progress=progress, **options)
    keep = [g is not None for g in graphs]
    if not any(keep):
        raise InputError(f"no glycan of {source!r} could be turned into a graph")
    if failures:
        from reprs.featurizers.base import FeaturizationWarning

        shown = "; ".join(f"row {row}: {message}" for row, message in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        warnings.warn(f"{len(failures)} of {len(graphs)} glycans of {str(source)!r} could not be turned into "
                      f"graphs and are left out: {shown}{more}", FeaturizationWarning, stacklevel=2)
    return [g for g in graphs if g is not None], table[keep].reset_index(drop=True)


#: QM9 targets: our name -> (qm9pack column, unit of ours, factor from the file's unit to ours).
#: Energies are converted from hartree to eV with ASE's CODATA value.
QM9_TARGETS: dict[str, tuple[str, str, str]] = {
    "mu": ("Dipole_debye", "D", "1"),
    "alpha": ("Polarizability_bohr3", "bohr^3", "1"),
    "homo": ("HOMO_au", "eV", "hartree"),
    "lumo": ("LUMO_au", "eV", "hartree"),
    "gap": ("HOMO_LUMO_gap_au", "eV", "hartree"),
    "r2": ("R2_bohr2", "bohr^2", "1"),
    "zpve": ("ZPVE_au", "eV", "hartree"),
    "u0": ("InternalEnergy_0K_au", "eV", "hartree"),
    "u298": ("InternalEnergy_298K_au", "eV", "hartree"),
    "h298": ("Enthalphy_298K_au", "eV", "hartree"),  # sic: qm9pack's spelling
    "g298": ("GibbsFreeEnergy_298K_au", "eV", "hartree"),
    "cv": ("Heatcapacity_Cv_cal_mol_K", "cal/(mol K)", "1"),
}


def _qm9pack_data() -> Path:
    """The data folder of the installed qm9pack wheel, found without importing it (its
    ``__init__`` imports setuptools' deprecated ``pkg_resources``)."""
    import importlib.util

    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "QM9 comes from the qm9pack wheel, which is not installed: pip install 'matrep[bench]' "
            "(or pip install qm9pack), or pass data_dir= a folder holding qm9_part1.csv ... qm9_part3.csv"
        )
    return Path(spec.submodule_search_locations[0]) / "data"


def load_qm9(targets: tuple[str, ...] | list[str] | None = None, *, data_dir: str | None = None) -> pd.DataFrame:
    """QM9: 130,831 small organic molecules (C, H, O, N, F; up to 9 heavy atoms) with B3LYP/6-31G(2df,p)
    properties, as shipped whole in the ``qm9pack`` wheel (install the ``bench`` extra).

    Parameters
    ----------
    targets : list of str, optional
        Names from :data:`QM9_TARGETS` (default all twelve): ``mu`` (D), ``alpha`` (bohr^3),
        ``homo``, ``lumo``, ``gap``, ``zpve``, ``u0``, ``u298``, ``h298``, ``g298`` (eV), ``r2``
        (bohr^2), ``cv`` (cal/(mol K)).
    data_dir : path, optional
        A folder with qm9pack's ``qm9_part{1,2,3}.csv``; default the installed wheel's.

    Returns
    -------
    pandas.DataFrame
        Columns ``index`` (the GDB-9 molecule number, 1 ... 133,885, those whose DFT relaxation
        failed absent), ``smiles``, ``n_atoms`` and the targets, one row per molecule, sorted by
        ``index``.

    Raises
    ------
    MissingDependencyError
        If qm9pack is not installed and no ``data_dir`` is given.
    InputError
        For an unknown target or a folder without the three part files.

    References
    ----------
    R. Ramakrishnan, P. O. Dral, M. Rupp, O. A. von Lilienfeld, "Quantum chemistry structures and
    properties of 134 kilo molecules", Sci. Data 1, 140022 (2014).
    """
    from ase.units import Hartree

    names = list(QM9_TARGETS) if targets is None else list(targets)
    unknown = [t for t in names if t not in QM9_TARGETS]
    if unknown or isinstance(targets, str):
        raise InputError(f"unknown QM9 target(s) {unknown or targets!r}; choose from {', '.join(QM9_TARGETS)}")
    folder = Path(data_dir) if data_dir is not None else _qm9pack_data()
    parts = [folder / f"qm9_part{i}.csv" for i in (1, 2, 3)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise InputError(f"{folder} lacks {', '.join(missing)}: point data_dir at qm9pack's data folder")
    columns = ["Index", "SMILES", "N_atoms", *(QM9_TARGETS[t][0] for t in names)]
    table = pd.concat([pd.read_csv(p, usecols=columns) for p in parts], ignore_index=True)
    out = pd.DataFrame({"index": table["Index"], "smiles": table["SMILES"], "n_atoms": table["N_atoms"]})
    for name in names:
        column, _, factor = QM9_TARGETS[name]
        out[name] = table[column] * (Hartree if factor == "hartree" else 1.0)
    return out.sort_values("index", ignore_index=True)
