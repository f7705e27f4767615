"""Dataset generation: frames and metadata, SIGKILL + resume gives exactly the uninterrupted frames."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from sims.errors import SimsInputError
from sims.generate import config_hash, generate, generate_many, read_frames
from tests.sims.config_files import kill_after_checkpoint, write_toml


def _config(out: str, *, steps=(200, 200, 100)) -> dict:
    return {
        "seed": 3,
        "engine": "matrep",
        "system": {"builder": "bulk", "symbol": "Ar", "crystal": "fcc", "a": 5.8, "repeat": 2, "rattle": 0.05},
        "potential": {"kind": "lj", "sigma": 3.4, "epsilon": 0.0104, "cutoff": 8.5},
        "md": {"dtype": "float64", "skin": 1.0},
        "stages": [
            {"ensemble": "langevin", "steps": steps[0], "timestep": 5.0, "temperature": [50.0, 120.0],
             "friction": 0.02, "sample_every": 10},
            {"ensemble": "nose_hoover_chain", "steps": steps[1], "timestep": 5.0, "temperature": 120.0, "tau": 100.0,
             "sample_every": 10},
            {"ensemble": "nve", "steps": steps[2], "timestep": 5.0, "sample_every": 10},
        ],
        "output": {"path": out, "checkpoint_every": 100},
    }


def test_frames_and_metadata_extxyz_and_db(tmp_path):
    for name in ("run.extxyz", "run.db"):
        cfg = _config(name, steps=(40, 40, 20))
        cfg["_base"] = str(tmp_path)
        out = generate(cfg)
        frames = read_frames(out)
        assert [f.info["step"] for f in frames] == list(range(10, 101, 10))
        assert [f.info["stage"] for f in frames] == [0] * 4 + [1] * 4 + [2] * 2
        f = frames[-1]
        assert f.info["time"] == pytest.approx(500.0) and f.info["seed"] == 3
        assert f.info["config_hash"] == config_hash(cfg)
        assert f.get_forces().shape == (32, 3) and np.isfinite(f.get_potential_energy())
        assert frames[1].info["T_target"] == pytest.approx(50.0 + 70.0 * 20 / 40)
        # A finished run is not repeated (nor duplicated) by the same command.
        generate(cfg)
        assert len(read_frames(out)) == 10


@pytest.mark.parametrize("name", ["run.extxyz", "run.db"])
def test_sigkill_and_resume_gives_the_uninterrupted_frames(tmp_path, name):
    ref_dir, kill_dir = tmp_path / "ref", tmp_path / "kill"
    ref_dir.mkdir(), kill_dir.mkdir()
    for d in (ref_dir, kill_dir):
        write_toml(d / "cfg.toml", _config(name))
    reference = read_frames(generate(ref_dir / "cfg.toml"))

    state = kill_after_checkpoint(kill_dir / "cfg.toml", kill_dir / (name + ".ckpt"), step=200)
    assert not state["done"], "the run finished before it could be killed"

    resumed = read_frames(generate(kill_dir / "cfg.toml"))
    assert [f.info["step"] for f in resumed] == [f.info["step"] for f in reference]  # none lost, none twice
    for a, b in zip(resumed, reference):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.get_velocities(), b.get_velocities())
        assert a.get_potential_energy() == b.get_potential_energy()


def test_config_errors(tmp_path):
    cfg = _config("x.extxyz")
    cfg["_base"] = str(tmp_path)
    with pytest.raises(SimsInputError, match="engine"):
        generate(dict(cfg, engine="gromacs"))
    with pytest.raises(SimsInputError, match="potential kind"):
        generate(dict(cfg, potential={"kind": "nope"}))
    with pytest.raises(SimsInputError, match="ensemble"):
        generate(dict(cfg, stages=[{"ensemble": "npt", "steps": 5}]))
    (tmp_path / "x.extxyz").write_text("not ours\n")
    with pytest.raises(SimsInputError, match="no checkpoint"):
        generate(cfg)
    small = _config("y.extxyz", steps=(10, 0, 0))
    small["_base"] = str(tmp_path)
    generate(small)
    small["seed"] = 4
    with pytest.raises(SimsInputError, match="different config"):
        generate(small)


def test_cli_simulate(tmp_path, capsys):
    from sims.cli import register

    write_toml(tmp_path / "cfg.toml", _config("cli.extxyz", steps=(20, 0, 0)))
    parser = argparse.ArgumentParser(prog="matrep")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", str(tmp_path / "cfg.toml"), "--quiet"])
    args.func(args)
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli.extxyz")
    assert len(read_frames(tmp_path / "cli.extxyz")) == 2
    with pytest.raises(SystemExit):
        args = parser.parse_args(["simulate", str(tmp_path / "missing.toml")])
        args.func(args)


def test_generate_many_on_a_dask_cluster(tmp_path):
    from dask.distributed import Client, LocalCluster

    configs = []
    for seed in (1, 2):
        cfg = _config(f"seed{seed}.extxyz", steps=(20, 0, 0))
        cfg.update(seed=seed, _base=str(tmp_path))
        configs.append(cfg)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        paths = generate_many(configs, client=client)
    runs = [read_frames(p) for p in paths]
    assert [len(r) for r in runs] == [2, 2]
    assert runs[0][0].info["seed"] == 1 and runs[1][0].info["seed"] == 2
    assert not np.array_equal(runs[0][-1].positions, runs[1][-1].positions)  # independent noise
