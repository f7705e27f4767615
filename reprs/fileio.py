"""Atomic file writes and frame I/O: the one writer and the one frame reader of the four packages.

:func:`atomic_open` / :func:`atomic_write` write a file so that it appears complete under its name
or not at all (a temporary file in the same folder, flushed and fsynced, then renamed over the
target), with the permissions a plain ``open(path, "w")`` would give it: the user's umask applies,
and a file that is replaced keeps its mode. :class:`FrameWriter` appends frames (``ase.Atoms``
with metadata) to an ASE database or extxyz file and cuts back to a checkpoint's mark;
:func:`read_frames` reads frames back from either, in order, with their metadata in
``atoms.info``.

This module is in ``reprs``' base layer (``reprs.BASE_LAYER``): ``sims`` imports it, so it
imports nothing of ``reprs`` but :mod:`reprs.errors`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator

import numpy as np

from reprs.errors import InputError

if TYPE_CHECKING:  # ase is imported where frames are read or written: atomic writes do not need it
    from ase import Atoms

__all__ = ["atomic_open", "atomic_write", "save_figure", "FrameWriter", "read_frames", "is_database"]


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk (POSIX; Windows cannot open folders).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success rename it over ``path``.

    Parameters
    ----------
    path : path
        The file to write; its folder is created if missing.
    mode : {"wb", "w"}
        Binary (``torch.save``, ``np.save``, ``pickle.dump``) or text (csv, json).
    **kwargs
        Passed to :func:`open` (``newline=""`` for the csv module, ``encoding``).

    Yields
    ------
    file object
        Write to it; it is flushed, fsynced and renamed when the block ends without an error, and
        deleted when the block raises (the old ``path``, if any, is left untouched).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
    >>> with atomic_open(out) as f:
    ...     np.save(f, np.arange(3))
    >>> np.load(out).tolist()
    [0, 1, 2]
    """
    if mode not in ("w", "wb"):
        raise InputError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with 0o666 lets the umask decide the permissions, as open() does; mkstemp would force 0600.
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, path.stat().st_mode & 0o7777)  # a replaced file keeps its mode
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically (:func:`atomic_open`); return the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "hello\\n")
    >>> out.read_text()
    'hello\\n'
    """
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    return Path(path)


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 100, **kwargs: Any) -> Path:
    """Write a matplotlib ``Figure`` to ``path`` atomically, in the format its suffix names; return the path.

    A suffix matplotlib does not know (or none) writes PNG. Other keywords go to ``Figure.savefig``
    (``bbox_inches="tight"``, ...).
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        fmt = "png"
    with atomic_open(path) as handle:
        fig.savefig(handle, format=fmt, dpi=dpi, **kwargs)
    return path


def is_database(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an ASE database: a ``.db`` file or a ``postgresql://`` address."""
    text = os.fspath(path)
    return text.startswith(("postgresql://", "postgres://")) or Path(text).suffix.lower() == ".db"


class FrameWriter:
    """Appends frames to an ASE SQLite database (``.db``) or an extxyz file; cuts back to a checkpoint.

    Each frame is durable when :meth:`write` returns (one SQLite transaction per row; an fsync of
    the extxyz file), and :meth:`size` is a mark that :meth:`truncate` returns the file to. A
    database row is written whole or not at all; an extxyz frame is formatted first and appended in
    one write, so an interruption while it is formatted leaves nothing of it, and only a kill inside
    that write can leave part of the last frame (cut back to the checkpoint's mark on resume).

    Parameters
    ----------
    path : path
        ``.db`` or ``.extxyz``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.suffix not in (".db", ".extxyz"):
            raise InputError(f"frames are written to .db (ASE database) or .extxyz, got {str(self.path)!r}")
        self.kind = "db" if self.path.suffix == ".db" else "extxyz"
        self._db = None

    def size(self) -> int:
        """The checkpoint's mark: the last row id (db) or the file size in bytes (extxyz)."""
        if self.kind == "db":
            if not self.path.exists():
                return 0
            return max((row.id for row in self._connect().select(sort="-id", limit=1)), default=0)
        return self.path.stat().st_size if self.path.exists() else 0

    def _connect(self):
        if self._db is None:
            import ase.db

            # No ASE lock file: a SIGKILLed run would leave it behind and block the resume forever;
            # SQLite's own journal already makes each row write atomic.
            self._db = ase.db.connect(str(self.path), type="db", use_lock_file=False)
        return self._db

    def truncate(self, mark: int) -> None:
        """Drop everything written after ``mark`` (frames since the last checkpoint)."""
        if self.kind == "db":
            # Each row is written in its own transaction, so a killed run leaves whole rows only.
            db = self._connect()
            extra = [row.id for row in db.select(f"id>{int(mark)}")]
            if extra:
                db.delete(extra)
        elif self.path.exists():
            os.truncate(self.path, mark)

    def write(self, atoms: Atoms, meta: dict[str, Any]) -> None:
        """Append ``atoms`` (with its calculator's results) and ``meta`` (numbers, strings, bools).

        The frame's metadata is ``meta`` in both formats (``atoms.info`` is neither written nor changed).

        Raises
        ------
        InputError
            A string value that would not read back as that string in both formats: extxyz reads
            ``"F"``, ``"T"``, ``"true"`` as booleans, ``"007"``, ``"1e3"``, ``"nan"`` as numbers and
            ``"1,2"`` or ``"1 2"`` as arrays (ASE's parser), and an ASE database refuses the number-like
            ones. Both formats are checked alike, so a writer's metadata never depends on the format.
        """
        _check_meta_strings(meta)
        if self.kind == "db":
            self._connect().write(atoms, key_value_pairs=meta)
        else:
            import io

            from ase.io import write

            # Rendered whole first, then appended in one write: an interruption while ASE formats the
            # frame (Ctrl-C, an error) leaves none of it in the file, not its first lines. The frame's info
            # line is ``meta`` alone, as a database row's key-value pairs are (the atoms' own info went into
            # the file as well, and ``meta`` into the caller's atoms.info).
            buffer, info = io.StringIO(), atoms.info
            atoms.info = dict(meta)
            try:
                write(buffer, atoms, format="extxyz")
            finally:
                atoms.info = info
            with open(self.path, "ab") as f:
                f.write(buffer.getvalue().encode())
                f.flush()
                os.fsync(f.fileno())


def _check_meta_strings(meta: dict[str, Any]) -> None:
    """Refuse a string ``meta`` value that ASE's extxyz key=value parser reads back as something else."""
    from ase.io.extxyz import key_val_dict_to_str, key_val_str_to_dict

    for key, value in meta.items():
        if not isinstance(value, str):
            continue
        back = key_val_str_to_dict(key_val_dict_to_str({"k": value})).get("k")
        if not (isinstance(back, str) and back == value):
            raise InputError(f"frame metadata {key}={value!r}: a string that an extxyz file reads back as "
                             f"{back!r} (a {type(back).__name__}) and an ASE database may refuse; write it as "
                             "the number or bool it stands for, or as a string that is neither (e.g. with a letter "
                             "prefix)")


def read_frames(path: str | os.PathLike, *, index: int | slice | str = ":", selection: str | None = None,
                format: str | None = None, row_ids: bool = False) -> list[Atoms] | tuple[list[int], list[Atoms]]:
    """Frames of an ASE database or a structure file, in order, metadata in ``atoms.info``.

    Parameters
    ----------
    path : path or str
        An ASE database (``.db`` file, ``postgresql://`` address: each row's key-value pairs go
        into ``atoms.info``), or any file ``ase.io.read`` reads (extxyz, xyz, CIF, POSCAR, ...).
    index : int, slice or str
        Which frames, as ``ase.io.read`` takes it (``":"`` all, ``-1`` the last, ``"2:10:2"``).
    selection : str, optional
        ASE database query (``"T_target>3000"``); databases only.
    format : str, optional
        ``ase.io.read``'s format of a file (default: from the file name and content).
    row_ids : bool
        Also return the row ids; databases only.

    Returns
    -------
    list of ase.Atoms
        Stored energies, forces and stress in ``atoms.calc.results``, metadata as plain Python
        numbers, strings and bools whichever the format; or ``(ids, frames)`` with ``row_ids=True``.

    Raises
    ------
    InputError
        For a missing file, or ``selection`` or ``row_ids`` on a file that is not a database.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ase.build import bulk
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "frames.extxyz"
    >>> writer = FrameWriter(out)
    >>> writer.write(bulk("Cu"), {"step": 0}); writer.write(bulk("Cu"), {"step": 10})
    >>> [frame.info["step"] for frame in read_frames(out)]
    [0, 10]
    """
    text = os.fspath(path)
    if isinstance(index, str):
        from ase.io.formats import string2index

        index = string2index(index)
    if not text.startswith(("postgresql://", "postgres://")) and not Path(text).is_file():
        raise InputError(f"no frames file at {text}")
    if is_database(text):
        import ase.db

        rows = list(ase.db.connect(text).select(selection, sort="id"))
        rows = rows[index] if isinstance(index, slice) else [rows[index]] if rows else []
        frames = []
        for row in rows:
            atoms = row.toatoms()
            atoms.info.update(row.key_value_pairs)
            stress = atoms.calc.results.get("stress") if atoms.calc is not None else None
            if stress is not None and np.size(stress) == 9:
                # a 3x3 stress (matrep's frames before they stored Voigt order) comes back as nine
                # numbers, which atoms.get_stress() refuses: give it ASE's Voigt order
                from ase.stress import full_3x3_to_voigt_6_stress

                atoms.calc.results["stress"] = full_3x3_to_voigt_6_stress(np.reshape(stress, (3, 3)))
            frames.append(atoms)
        return ([row.id for row in rows], frames) if row_ids else frames
    if selection is not None or row_ids:
        raise InputError(f"selection and row_ids work on ASE databases (.db) only, not {text!r}")
    from ase.io import read

    frames = read(text, index=index, format=format)
    frames = frames if isinstance(frames, list) else [frames]
    for atoms in frames:  # numpy scalars (extxyz) become the plain values a database gives
        atoms.info.update({k: v.item() for k, v in atoms.info.items() if isinstance(v, np.generic)})
    return frames
