"""reprs.fileio: the one atomic writer and the one frame writer/reader."""

from __future__ import annotations

import os
import stat

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator

from reprs.errors import InputError
from reprs.featurizers import featurize_inputs
from reprs.fileio import FrameWriter, atomic_open, atomic_write, read_frames, save_figure


@pytest.fixture
def umask():
    """Set a known umask for the test and restore the caller's."""
    old = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_gives_the_users_permissions(tmp_path, umask):
    path = atomic_write(tmp_path / "a.txt", "hello\n")
    assert path.read_text() == "hello\n"
    assert _mode(path) == 0o666 & ~umask  # as open(path, "w") would: not mkstemp's 0600
    os.chmod(path, 0o604)
    atomic_write(path, b"\x00\x01")  # a replaced file keeps its mode
    assert path.read_bytes() == b"\x00\x01" and _mode(path) == 0o604


def test_featurize_writes_files_with_the_users_permissions(tmp_path, umask):
    table = tmp_path / "smiles.csv"
    table.write_text("smiles\nCCO\nc1ccccc1\n")
    out = tmp_path / "fp.npy"
    featurize_inputs(table, "morgan:n_bits=64", out, progress=False)
    assert np.load(out).shape == (2, 64)
    assert _mode(out) == 0o666 & ~umask


def test_atomic_open_leaves_the_old_file_when_the_block_fails(tmp_path):
    path = tmp_path / "x.npy"
    with atomic_open(path) as handle:
        np.save(handle, np.arange(3))
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            np.save(handle, np.arange(5))
            raise RuntimeError("killed mid-write")
    assert np.load(path).tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]  # no temporary file left behind
    with pytest.raises(InputError, match="mode"):
        with atomic_open(path, "a"):
            pass


def _frames(n: int):
    frames = []
    for k in range(n):
        atoms = bulk("Cu", cubic=True)
        atoms.rattle(0.01 * (k + 1), seed=k)
        forces = np.random.default_rng(k).normal(size=(len(atoms), 3))
        atoms.calc = SinglePointCalculator(atoms, energy=-1.5 * k, forces=forces)
        frames.append(atoms)
    return frames


@pytest.mark.parametrize("suffix", [".db", ".extxyz"])
def test_frames_round_trip_in_order_with_metadata(tmp_path, suffix):
    path = tmp_path / f"frames{suffix}"
    writer = FrameWriter(path)
    frames = _frames(4)
    marks = []
    for k, atoms in enumerate(frames):
        writer.write(atoms, {"step": 10 * k, "T": 300.0 + k, "stage": "heat"})
        marks.append(writer.size())
    back = read_frames(path)
    assert [f.info["step"] for f in back] == [0, 10, 20, 30]
    assert all(type(f.info["step"]) is int and type(f.info["T"]) is float for f in back)  # not numpy scalars
    assert [f.info["stage"] for f in back] == ["heat"] * 4
    for ours, ref in zip(back, frames):  # extxyz stores 8 decimals
        np.testing.assert_allclose(ours.positions, ref.positions, atol=1e-8)
        np.testing.assert_allclose(ours.get_forces(), ref.get_forces(), atol=1e-8)
        assert ours.get_potential_energy() == pytest.approx(ref.get_potential_energy())
    assert [f.info["step"] for f in read_frames(path, index=-1)] == [30]
    assert [f.info["step"] for f in read_frames(path, index="1:3")] == [10, 20]
    writer.truncate(marks[1])  # back to the checkpoint after the second frame
    assert [f.info["step"] for f in read_frames(path)] == [0, 10]


@pytest.mark.parametrize("suffix", [".db", ".extxyz"])
def test_string_metadata_that_would_read_back_as_another_type_is_refused(tmp_path, suffix):
    # extxyz read "F" back as False, "T" as True, "007" as 7 and "1,2" as an array (ASE's own parser), while
    # a database kept "F" and refused "007" with ASE's ValueError: a frame's metadata depended on the format
    path = tmp_path / f"frames{suffix}"
    writer = FrameWriter(path)
    atoms = _frames(1)[0]
    for value in ("F", "T", "007", "1,2"):
        with pytest.raises(InputError, match=f"frame metadata species={value!r}"):
            writer.write(atoms, {"step": 0, "species": value})
    assert not path.exists()
    writer.write(atoms, {"step": 0, "species": "Si-O", "note": "a b"})
    back = read_frames(path)[0].info
    assert back["species"] == "Si-O" and back["note"] == "a b"


@pytest.mark.parametrize("suffix", [".db", ".extxyz"])
def test_a_frame_carries_its_meta_alone_and_the_atoms_are_left_unchanged(tmp_path, suffix):
    # an extxyz frame also carried the atoms' own info (sims.lammps frames' pressure and volume, which a
    # database row never held) and wrote meta into the caller's atoms.info (checked on the old code)
    atoms = _frames(1)[0]
    atoms.info = {"pressure": 12.5, "volume": 148.9}
    FrameWriter(tmp_path / f"f{suffix}").write(atoms, {"step": 10})
    assert read_frames(tmp_path / f"f{suffix}")[0].info == {"step": 10}
    assert atoms.info == {"pressure": 12.5, "volume": 148.9}


def test_an_extxyz_frame_interrupted_while_written_leaves_the_file_whole(tmp_path, monkeypatch):
    # ASE wrote the frame line by line into the open file: a Ctrl-C (or an error) part-way left its
    # first lines there, flushed when the file closed. The file then failed to read, or, cut inside
    # the last number, read back a last frame with a wrong value (7 of 542 cut points of a 4-atom
    # frame); only a resume cut it back.
    import ase.io.extxyz

    path = tmp_path / "frames.extxyz"
    writer = FrameWriter(path)
    first, second = _frames(2)
    writer.write(first, {"step": 0})
    whole = path.read_bytes()
    original = ase.io.extxyz.write_extxyz

    class Interrupted:
        def __init__(self, handle):
            self.handle, self.lines = handle, 0

        def write(self, text):
            self.lines += 1
            if self.lines == 4:  # the count, the comment and one atom are out
                raise KeyboardInterrupt
            return self.handle.write(text)

    monkeypatch.setattr(ase.io.extxyz, "write_extxyz",
                        lambda fileobj, *args, **kwargs: original(Interrupted(fileobj), *args, **kwargs))
    with pytest.raises(KeyboardInterrupt):
        writer.write(second, {"step": 10})
    assert path.read_bytes() == whole
    assert [f.info["step"] for f in read_frames(path)] == [0]


def test_read_frames_agrees_with_ase_on_files_and_selects_database_rows(tmp_path):
    xyz = tmp_path / "water.xyz"
    ase.io.write(xyz, [molecule("H2O"), molecule("CH4")])
    ours = read_frames(xyz)
    theirs = ase.io.read(xyz, index=":")
    assert [a.get_chemical_formula() for a in ours] == [a.get_chemical_formula() for a in theirs] == ["H2O", "CH4"]
    db = tmp_path / "frames.db"
    writer = FrameWriter(db)
    for k, atoms in enumerate(_frames(3)):
        writer.write(atoms, {"step": k})
    ids, frames = read_frames(db, selection="step>=1", row_ids=True)
    assert ids == [2, 3] and [f.info["step"] for f in frames] == [1, 2]
    with pytest.raises(InputError, match="databases"):
        read_frames(xyz, selection="step>1")
    with pytest.raises(InputError, match="no frames file"):
        read_frames(tmp_path / "missing.db")
    with pytest.raises(InputError, match=".db .* or .extxyz"):
        FrameWriter(tmp_path / "frames.cif")


def test_sims_generate_reads_with_the_one_reader():
    import sims.generate

    assert sims.generate.read_frames is read_frames


def test_save_figure_writes_the_format_its_suffix_names_and_leaves_no_partial_file(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_figure(fig, tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    assert save_figure(fig, tmp_path / "plot").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "b.png", dpi=-1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png", "plot"]


def test_a_database_frame_with_a_3x3_stress_reads_back_in_voigt_order(tmp_path):
    """matrep's frames stored a 3x3 stress before they stored Voigt order; an ASE database returns it as
    nine numbers, and atoms.get_stress() of such a row raised (checked on the old read_frames)."""
    import ase.db
    from ase.stress import full_3x3_to_voigt_6_stress

    atoms = bulk("Cu", cubic=True)
    full = np.array([[1.0, 0.4, 0.5], [0.4, 2.0, 0.6], [0.5, 0.6, 3.0]]) * 1e-3
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((4, 3)), stress=full)
    with ase.db.connect(tmp_path / "old.db") as db:
        db.write(atoms)
    (frame,) = read_frames(tmp_path / "old.db")
    np.testing.assert_array_equal(frame.get_stress(), full_3x3_to_voigt_6_stress(full))
    np.testing.assert_array_equal(frame.get_stress(), [1e-3, 2e-3, 3e-3, 0.6e-3, 0.5e-3, 0.4e-3])
