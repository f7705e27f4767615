"""`matrep similar` and `matrep matrix` on small glycan files (the bundled-set run is the demo)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from graphs.kernels import GraphKernel
from graphs.maps import similarity_map
from reprs import glycan_graph
from reprs.cli import main

GLYCANS = [
    "Gal(b1-4)GlcNAc",
    "Gal(b1-4)[Fuc(a1-3)]GlcNAc",
    "Neu5Ac(a2-3)Gal(b1-4)GlcNAc",
    "Man(a1-3)[Man(a1-6)]Man(b1-4)GlcNAc(b1-4)GlcNAc",
    "Man(a1-2)Man(a1-3)[Man(a1-6)]Man(b1-4)GlcNAc(b1-4)GlcNAc",
    "Glc(a1-4)Glc(a1-4)Glc",
    "Rha(a1-3)Rha(a1-2)Rha",
]
LABELS = ["animal", "animal", "animal", "animal", "animal", "plant", "bacteria"]


@pytest.fixture()
def table(tmp_path):
    path = tmp_path / "glycans.csv"
    pd.DataFrame({"glycan": GLYCANS, "label": LABELS}).to_csv(path, index=False)
    return path


def test_similar_ranks_the_query_itself_first(table, capsys):
    assert main(["similar", "Gal(b1-4)[Fuc(a1-3)]GlcNAc", "--dataset", str(table), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"dataset: {table} (7 glycans); metric: wl")
    assert lines[3].split()[:3] == ["1", "1.0000", "Gal(b1-4)[Fuc(a1-3)]GlcNAc"]
    assert len([line for line in lines if line.strip()[:1].isdigit()]) == 3


def test_similar_with_exact_ged_scores_are_edit_costs(table, capsys):
    assert main(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--metric", "ged", "--top", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert rows[0][1:3] == ["0.0000", "Gal(b1-4)GlcNAc"]
    # adding Fuc(a1-3) costs one node and one edge insertion, 3 each (ChemicalCosts default)
    assert rows[1][1:3] == ["6.0000", "Gal(b1-4)[Fuc(a1-3)]GlcNAc"]


def test_bad_queries_and_datasets_exit_nonzero(table, tmp_path, capsys):
    assert main(["similar", "Gal(b1-4", "--dataset", str(table)]) == 2
    assert "unclosed '('" in capsys.readouterr().err
    assert main(["similar", "Gal(b1-4)Glc", "--dataset", str(tmp_path / "missing.csv")]) == 2
    assert "neither 'glycans' nor an existing file" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"glycan": ["Gal(b1-4"]}).to_csv(empty, index=False)
    assert main(["similar", "Gal(b1-4)Glc", "--dataset", str(empty)]) == 2
    assert "no glycan" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["similar", "Gal(b1-4)Glc", "--metric", "nope"])
    # --level was ignored for a file dataset (the index too: its source record had level None)
    for command in (["similar", "Gal(b1-4)Glc", "--dataset", str(table)], ["matrix", str(table), "-o", str(tmp_path / "m")],
                    ["similar", "Gal(b1-4)Glc", "--dataset", str(table), "--metric", "ged", "--exact", "--index",
                     str(tmp_path / "i")],
                    ["index", "build", str(table), "-o", str(tmp_path / "i")]):
        assert main([*command, "--level", "Domain"]) == 2
        assert "level='Domain' is a taxonomy level of the bundled set 'glycans'" in capsys.readouterr().err


def test_matrix_writes_matrix_and_figures(table, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["matrix", str(table), "-o", str(out), "--metric", "wl"]) == 0
    matrix = np.load(out / "matrix.npy")
    graphs = [glycan_graph(g) for g in GLYCANS]
    np.testing.assert_allclose(matrix, GraphKernel(kind="wl").fit_transform(graphs), atol=1e-12)
    for name in ("heatmap.png", "embedding.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = pd.read_csv(out / "labels.csv")
    assert labels["label"].tolist() == LABELS


def test_similarity_map_embeds_distances_with_mds(tmp_path):
    graphs = [glycan_graph(g) for g in GLYCANS]
    result = similarity_map(graphs, "ged", tmp_path, labels=LABELS)
    assert not result.similarity and result.exact.all()
    np.testing.assert_allclose(result.matrix, result.matrix.T)
    assert result.embedding.shape == (7, 2)
    # MDS keeps the most different pair far apart: the disaccharide and the largest N-glycan core
    far = np.linalg.norm(result.embedding[0] - result.embedding[4])
    near = np.linalg.norm(result.embedding[0] - result.embedding[1])
    assert far > near


def test_dmeasure_between_two_structure_files(tmp_path, capsys):
    from ase.io import write

    from graphs.dmeasure import d_measure
    from reprs.glass import crystal_reference, network

    quartz = crystal_reference("alpha-quartz", repeat=(2, 2, 2))
    coesite = crystal_reference("coesite", repeat=(1, 1, 2))
    write(tmp_path / "q.extxyz", quartz)
    write(tmp_path / "c.extxyz", coesite)
    assert main(["dmeasure", str(tmp_path / "q.extxyz"), str(tmp_path / "c.extxyz"), "--cutoff", "Si-O=2.0"]) == 0
    printed = float(capsys.readouterr().out.splitlines()[0].split("=")[1])
    cutoffs = {("Si", "O"): 2.0}
    assert printed == pytest.approx(d_measure(network(quartz, cutoffs), network(coesite, cutoffs)), abs=1e-6)

    assert main(["dmeasure", str(tmp_path / "q.extxyz")]) == 2
    assert "two structure files" in capsys.readouterr().err
    assert main(["dmeasure", str(tmp_path / "q.extxyz"), str(tmp_path / "c.extxyz"), "--cutoff", "Si-O"]) == 2
    assert "SPECIES-SPECIES=DISTANCE" in capsys.readouterr().err
    # the --matrix flags were accepted with two files and ignored: exit 0, no -o folder (checked on the old code)
    for extra in (["-o", str(tmp_path / "out")], ["--label", "T_target"], ["--workers", "2"]):
        assert main(["dmeasure", str(tmp_path / "q.extxyz"), str(tmp_path / "c.extxyz"), *extra]) == 2
        assert f"{extra[0]} set a --matrix run" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dmeasure_prints_the_rdf_cutoff(tmp_path, capsys):
    from ase.io import write

    from reprs.glass import crystal_reference, network

    quartz = crystal_reference("alpha-quartz", repeat=(2, 2, 2))
    quartz.rattle(stdev=0.05, seed=0)
    write(tmp_path / "q.extxyz", quartz)
    assert main(["dmeasure", str(tmp_path / "q.extxyz"), str(tmp_path / "q.extxyz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    cutoff = network(quartz, {("Si", "O"): "rdf"}).graph["cutoffs"][("O", "Si")]
    assert lines[0] == f"Si-O cutoff: {cutoff:.2f} Å (first minimum of g(r)) in {tmp_path / 'q.extxyz'}"
    assert 1.7 < cutoff < 3.0 and lines[2] == "D = 0.000000"


def test_dmeasure_matrix_over_a_database(tmp_path, capsys):
    from ase.db import connect

    from graphs.dmeasure import d_measure_matrix
    from reprs.glass import crystal_reference, network

    names = ["alpha-quartz", "coesite", "beta-cristobalite"]
    with connect(tmp_path / "x.db") as db:
        for name in names:
            db.write(crystal_reference(name, repeat=(2, 2, 2)), polymorph=name)
    out = tmp_path / "out"
    args = ["dmeasure", "--matrix", str(tmp_path / "x.db"), "-o", str(out), "--cutoff", "Si-O=2.0", "--label", "polymorph"]
    assert main(args) == 0
    expected = d_measure_matrix([network(crystal_reference(n, repeat=(2, 2, 2)), {("Si", "O"): 2.0}) for n in names])
    np.testing.assert_allclose(np.load(out / "matrix.npy"), expected, atol=1e-12)
    assert pd.read_csv(out / "labels.csv")["label"].tolist() == names


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["similar", "--top", "0"], "--top"),
        (["similar", "--top", "-3"], "--top"),
        (["similar", "--top", "two"], "--top"),
        (["similar", "--workers", "0"], "--workers"),
        (["similar", "--timeout", "-1"], "--timeout"),
        (["similar", "--quiet", "--progress"], "--progress"),
        (["matrix", "glycans", "-o", "out", "--limit", "-5"], "--limit"),
        (["matrix", "glycans", "-o", "out", "--seed", "-1"], "--seed"),
        (["dmeasure", "a.cif", "b.cif", "--workers", "-2"], "--workers"),
    ],
)
def test_bad_numbers_are_refused_by_flag_with_exit_2(argv, flag, capsys):
    # argparse checks them before any work: exit status 2, the flag named, no traceback
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err.splitlines()[-1] and "Traceback" not in err


def _fails(argv, capsys) -> str:
    """Run matrep in-process; assert a user error (exit 2, one message, no traceback); return stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"matrep {argv[0]}: error: ") and "Traceback" not in err
    return err


def test_unreadable_inputs_are_user_errors_naming_the_file_or_flag(table, tmp_path, capsys):
    from ase.io import write

    from reprs.glass import crystal_reference

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert f"cannot read {empty} as a CSV table" in _fails(["similar", "--dataset", str(empty)], capsys)
    unknown = tmp_path / "cell.foo"
    unknown.write_text("hello\n")
    err = _fails(["dmeasure", str(unknown), str(unknown)], capsys)
    assert f"{unknown}: ASE cannot read files of type 'foo'" in err
    assert f"--matrix {unknown}:" in _fails(["dmeasure", "--matrix", str(unknown), "-o", str(tmp_path / "o")], capsys)
    assert f"-o {table} is an existing file" in _fails(["matrix", str(table), "-o", str(table)], capsys)

    quartz = tmp_path / "q.extxyz"
    write(quartz, crystal_reference("alpha-quartz", repeat=(1, 1, 1)))
    err = _fails(["dmeasure", str(quartz), str(quartz), "--cutoff", "Si-O=-2"], capsys)
    assert "--cutoff 'Si-O=-2': the distance must be a positive number" in err
    # species print as plain strings, not numpy scalars
    err = _fails(["dmeasure", str(quartz), str(quartz), "--cutoff", "Si-X=2"], capsys)
    assert "present: ['O', 'Si']" in err and "np.str_" not in err
    assert "present: ['O', 'Si']" in _fails(["dmeasure", str(quartz), str(quartz), "--bridge", "X"], capsys)
    err = _fails(["dmeasure", "--matrix", str(quartz), "-o", str(tmp_path / "o"), "--label", "T"], capsys)
    assert "--label 'T': no frame" in err


def test_progress_bars_on_request_and_on_a_terminal_and_quiet_silences_them(table, capsys):
    argv = ["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--metric", "ged", "--top", "2"]
    assert main([*argv, "--progress"]) == 0
    # tqdm's bar, forced on without a terminal: the 7 query-dataset pairs
    assert re.search(r"ged: +\d+%\|.*\| \d/7 \[", capsys.readouterr().err)
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(argv) == 0  # stderr is not a terminal here: no bar by default
    assert capsys.readouterr().err == ""


def test_progress_is_shown_by_default_when_stderr_is_a_terminal(table):
    import fcntl
    import os
    import select
    import struct
    import subprocess
    import sys
    import termios
    from pathlib import Path

    leader, follower = os.openpty()
    # a new pseudo-terminal is 0 columns wide, and tqdm draws nothing in 0 columns
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    argv = ["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--metric", "ged", "--top", "2"]
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from reprs.cli import main; sys.exit(main())", *argv],
        stdout=subprocess.DEVNULL, stderr=follower, env=env,
    )
    os.close(follower)
    seen = b""
    try:  # drain the terminal while the command runs (Linux may drop unread output at exit)
        while True:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the command closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
    finally:
        os.close(leader)
    assert process.wait(timeout=120) == 0
    assert re.search(rb"ged: +\d+%\|.*\| \d/7 \[", seen), seen


def test_similarity_map_leaves_the_matplotlib_backend_alone(tmp_path):
    import matplotlib

    graphs = [glycan_graph(g) for g in GLYCANS]
    with matplotlib.rc_context({"backend": "svg"}):  # a user's choice, restored after the test
        similarity_map(graphs, "wl", tmp_path, labels=LABELS)
        assert matplotlib.get_backend() == "svg"
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_monomer_in_the_query_suggests_no_option_similar_lacks(table, capsys):
    err = _fails(["similar", "Foo(b1-4)GlcNAc", "--dataset", str(table)], capsys)
    assert "unknown glycan monomer 'Foo'" in err and "on_unknown" not in err and "--on-unknown" not in err


def test_a_bad_scheduler_address_names_the_flag(table, capsys):
    err = _fails(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--scheduler", "nonsense"], capsys)
    assert "--scheduler nonsense: cannot connect to a Dask scheduler: missing port number" in err


def test_an_index_search_refuses_the_dask_flags_it_would_ignore(table, tmp_path, capsys):
    # --index and --exact answer from the index in this process: --workers 2 started no cluster and exited 0
    # (checked on the old code)
    for extra in (["--index", str(tmp_path / "idx")], ["--metric", "ged", "--exact"]):
        for flag in (["--workers", "2"], ["--scheduler", "tcp://127.0.0.1:1"]):
            err = _fails(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--top", "2", *extra, *flag], capsys)
            assert f"{flag[0]} spread a search without an index; {extra[0] if extra[0] == '--index' else '--exact'}" in err
    assert not (tmp_path / "idx").exists()


def test_similar_exact_ged_from_an_index_equals_the_plain_exact_ranking(table, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MATREP_INDEX_DIR", str(tmp_path / "cache"))
    argv = ["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--metric", "ged", "--top", "4"]
    assert main(argv) == 0
    plain = [line.split()[:3] for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert main([*argv, "--exact"]) == 0  # builds the cached index, then answers from it
    out = capsys.readouterr()
    assert "building the index" in out.err and "certified exact" in out.out
    ours = [line.split()[:3] for line in out.out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[1] for r in ours] == [r[1] for r in plain] and ours[:2] == plain[:2]
    assert main([*argv, "--exact"]) == 0  # warm: opened, not rebuilt
    assert "building" not in capsys.readouterr().err
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_index_build_and_refusals(table, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert main(["index", "build", str(table), "-o", str(idx)]) == 0
    assert "indexed 7 glycans" in capsys.readouterr().out
    assert main(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--index", str(idx), "--top", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[3].split()[1:3] == ["1.0000", "Gal(b1-4)GlcNAc"]
    other = tmp_path / "other.csv"
    pd.DataFrame({"glycan": GLYCANS[:3]}).to_csv(other, index=False)
    assert main(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(other), "--index", str(idx)]) == 2
    assert "not the dataset asked" in capsys.readouterr().err
    (idx / "wl.npz").write_bytes(b"damaged")
    assert main(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--index", str(idx)]) == 2
    assert "does not match the hash" in capsys.readouterr().err
    assert main(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--exact"]) == 2
    assert "--exact applies to --metric ged" in capsys.readouterr().err
    assert main(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--metric", "ged", "--exact",
                 "--index", str(tmp_path / "new"), "--top", "8"]) == 2
    assert "--top 8 exceeds the 7 glycans" in capsys.readouterr().err
    assert main(["similar", "Foo(b1-4)GlcNAc", "--dataset", str(table), "--metric", "ged", "--exact"]) == 2
    assert "Foo" in capsys.readouterr().err
    assert main(["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--metric", "dmeasure",
                 "--time-budget", "5"]) == 2  # was ignored without a word
    assert "--time-budget applies with --metric ged --exact" in capsys.readouterr().err


def test_a_spent_time_budget_says_what_is_not_certified(table, tmp_path, capsys):
    argv = ["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table), "--metric", "ged", "--exact",
            "--index", str(tmp_path / "idx"), "--top", "3"]
    assert main([*argv, "--time-budget", "1e-6"]) == 0
    out = capsys.readouterr().out
    assert "NOT certified (time budget ran out)" in out and "(bound)" in out


def test_a_warm_similar_imports_neither_scikit_learn_nor_pandas(table, tmp_path, capsys):
    """What keeps a warm `matrep similar` under a second: the index answers, and the heavy imports
    (scikit-learn and pandas about 1.1 s together, the GED solver's scipy.optimize) stay out."""
    idx = tmp_path / "idx"
    assert main(["index", "build", str(table), "-o", str(idx)]) == 0
    code = (
        "import sys\nfrom reprs.cli import main\n"
        f"rc = main(['similar', 'Gal(b1-4)GlcNAc', '--dataset', {str(table)!r}, '--index', {str(idx)!r}, '--top', '3'])\n"
        "print([m for m in ('sklearn', 'pandas', 'graphs.ged', 'graphs.kernels', 'torch') if m in sys.modules])\n"
        "sys.exit(rc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[3].split()[1:3] == ["1.0000", "Gal(b1-4)GlcNAc"]
    assert lines[-1] == "[]"


def test_index_build_draws_a_progress_bar_when_asked(table, tmp_path, capsys):
    assert main(["index", "build", str(table), "-o", str(tmp_path / "a"), "--progress"]) == 0
    assert "glycan graphs: 100%" in capsys.readouterr().err
    assert main(["index", "build", str(table), "-o", str(tmp_path / "b"), "--quiet"]) == 0
    assert "glycan graphs" not in capsys.readouterr().err


def test_ged_solver_flags_a_search_does_not_use_are_refused_by_name(table, tmp_path, capsys):
    """--ged-method and --timeout steer the plain GED search only: the certified --exact search
    and the other metrics were run without them, and the flags were dropped without a word."""
    base = ["similar", "Gal(b1-4)GlcNAc", "--dataset", str(table)]
    exact = [*base, "--metric", "ged", "--exact", "--index", str(tmp_path / "idx")]
    err = _fails([*exact, "--ged-method", "bipartite", "--timeout", "5"], capsys)
    assert "--ged-method and --timeout set the plain GED search" in err and "--time-budget" in err
    assert "--timeout sets the plain GED search" in _fails([*exact, "--timeout", "5"], capsys)
    err = _fails([*base, "--metric", "wl", "--ged-method", "bounds"], capsys)
    assert "--ged-method applies to --metric ged, not --metric wl; leave it out" in err
    err = _fails(["matrix", str(table), "-o", str(tmp_path / "m"), "--metric", "wl", "--timeout", "3"], capsys)
    assert "--timeout applies to --metric ged" in err
    assert main([*base, "--metric", "ged", "--ged-method", "bipartite", "--timeout", "2", "--top", "2"]) == 0


def test_a_similarity_map_interrupted_between_its_files_leaves_no_mismatched_pair(tmp_path, monkeypatch):
    # matrix.npy and labels.csv were each written atomically but not as a pair: a run into the folder
    # of an earlier one that stopped after the matrix left the new 7 x 7 matrix beside the old run's
    # 4 labels (and figures). The earlier run's files are now removed first.
    graphs = [glycan_graph(g) for g in GLYCANS]
    similarity_map(graphs[:4], "wl", tmp_path, labels=LABELS[:4])

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(KeyboardInterrupt):
        similarity_map(graphs, "wl", tmp_path, labels=LABELS)
    assert np.load(tmp_path / "matrix.npy").shape == (7, 7)
    assert not any((tmp_path / name).exists() for name in ("labels.csv", "heatmap.png", "embedding.png"))
    monkeypatch.undo()
    result = similarity_map(graphs, "wl", tmp_path, labels=LABELS)
    assert pd.read_csv(result.paths["labels"])["label"].tolist() == LABELS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embedding.png", "heatmap.png", "labels.csv", "matrix.npy"]
