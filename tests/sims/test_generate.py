"""Dataset generation: frames and metadata, SIGKILL + resume gives exactly the uninterrupted frames."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from sims.errors import ConfigError, SimsInputError
from sims.generate import _dtype, _parse, config_hash, generate, generate_many, read_frames
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
        generate(dict(cfg, stages=[{"ensemble": "nvtt", "steps": 5}]))
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
    from reprs.errors import ConfigError

    with pytest.raises(ConfigError, match="not found"):  # reprs.cli.main reports it (test below)
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


def _refused(cfg: dict, tmp_path, match: str):
    """generate(cfg) raises a ConfigError (also a SimsInputError) matching ``match`` and writes nothing."""
    from reprs.errors import ConfigError

    cfg = dict(cfg, _base=str(tmp_path))
    with pytest.raises(ConfigError, match=match) as err:
        generate(cfg)
    assert isinstance(err.value, SimsInputError)
    assert not (tmp_path / cfg["output"]["path"]).exists()


def _stage(**changes) -> list[dict]:
    stage = {"ensemble": "langevin", "steps": 10, "timestep": 5.0, "temperature": 80.0, "friction": 0.02}
    stage.update(changes)
    return [{k: v for k, v in stage.items() if v is not None}]


def test_stage_values_are_typed_and_required(tmp_path):
    cfg = _config("strict.extxyz")
    # Today: no temperature ran the thermostat at 0 K; "300" ran a ramp from 3 K to 0 K; temprature was dropped.
    _refused(dict(cfg, stages=_stage(temperature=None)), tmp_path,
             r"stages\[0\]\.temperature is required for a langevin stage")
    _refused(dict(cfg, stages=_stage(ensemble="nose_hoover_chain", friction=None, temperature=None)), tmp_path,
             r"stages\[0\]\.temperature is required for a nose_hoover_chain stage")
    _refused(dict(cfg, stages=_stage(temperature="300")), tmp_path,
             r"stages\[0\]\.temperature must be a number or \[start, end\] in K, got the string '300'")
    _refused(dict(cfg, stages=_stage(temperature=None, temprature=300.0)), tmp_path,
             r"unknown key 'temprature' in stages\[0\]; did you mean 'temperature'\?")
    _refused(dict(cfg, stages=_stage() + _stage(steps="10")), tmp_path,
             r"stages\[1\]\.steps must be an integer, got the string '10'")
    _refused(dict(cfg, stages=_stage(ensemble="langevn")), tmp_path,
             r"stages\[0\]\.ensemble must be one of 'nve', 'langevin', 'nose_hoover_chain', 'npt', 'nph', got the string "
             r"'langevn'; did you mean 'langevin'\?")
    _refused(dict(cfg, stages=[]), tmp_path, r"no \[\[stages\]\]")
    # Read by nothing, and written to the frames as T_target (the nve stage's frames said 300 K at 50 K; the ramps
    # ran on their start value, an nph ramp changed only our engine's cell mass): refused (checked on the old code)
    _refused(dict(cfg, stages=_stage() + _stage(ensemble="nve", friction=None, temperature=300.0)), tmp_path,
             r"stages\[1\]\.temperature: an nve stage after the first has no thermostat")
    _refused(dict(cfg, stages=_stage(ensemble="nve", friction=None, temperature=[50.0, 300.0])), tmp_path,
             r"stages\[0\]\.temperature: an nve stage has no thermostat to follow a ramp")
    _refused(dict(cfg, stages=_stage(ensemble="nph", friction=None, temperature=[50.0, 300.0], pressure=1.0)), tmp_path,
             r"stages\[0\]\.temperature: an nph stage has no thermostat to follow a ramp")


def test_every_table_is_strict(tmp_path):
    cfg = _config("strict.extxyz")
    _refused(dict(cfg, md={"dtyp": "float64"}), tmp_path, r"unknown key 'dtyp' in md; did you mean 'dtype'\?")
    _refused(dict(cfg, md={"dtype": "float16"}), tmp_path, r"md\.dtype must be one of 'float32', 'float64'")
    _refused(dict(cfg, md={"skin": "1"}), tmp_path, r"md\.skin must be a number, got the string '1'")
    _refused(dict(cfg, md={"n_procs": 4}), tmp_path, r"engine = 'matrep' does not read it")  # was ignored
    # read only beside another key, these were ignored (LAMMPS's in.lmp the same for kspace_accuracy 1e-3 and 1e-8
    # without kspace; no uncertainty check without a threshold): refused (checked on the old code)
    _refused(dict(cfg, md={"kspace_accuracy": 1e-3}), tmp_path, r"md\.kspace_accuracy is read only with md\.kspace")
    _refused(dict(cfg, md={"uncertainty_every": 5}), tmp_path,
             r"md\.uncertainty_every is read only with md\.uncertainty_threshold")
    _refused(dict(cfg, md={"on_uncertain": "flag"}), tmp_path, r"md\.on_uncertain is read only with md\.uncertainty_threshold")
    # a g2 molecule has its geometry: conformers = 50 left it bit-identical (checked on the old code)
    _refused(dict(cfg, system={"builder": "molecule", "name": "CH3CH2OH", "conformers": 50}), tmp_path,
             r"system\.conformers is read with 'smiles' only")
    # md.device and --device were ignored by engine = 'lammps' (LAMMPS runs on the CPU)
    _refused(dict(cfg, engine="lammps", md={"device": "cpu"}), tmp_path,
             r"md\.device = 'cpu'.*engine = 'lammps' does not read it")
    with pytest.raises(ConfigError, match=r"device='cpu' \(--device\).*engine = 'lammps' does not read it"):
        generate(dict(cfg, engine="lammps", _base=str(tmp_path)), device="cpu")
    # md.dtype = "float32" was ignored by engine = 'lammps' (it computes in double precision only)
    _refused(dict(cfg, engine="lammps", md={"dtype": "float32"}), tmp_path,
             r"md\.dtype = 'float32': engine = 'lammps' computes in double precision only")
    assert _dtype(_parse(dict(cfg, md={}))) == torch.float32                       # our engine's default
    assert _dtype(_parse(dict(cfg, engine="lammps", md={}))) == torch.float64      # what LAMMPS computes in
    _refused(dict(cfg, output={"path": "a.extxyz", "checkpoint_evry": 5}), tmp_path,
             r"unknown key 'checkpoint_evry' in output; did you mean 'checkpoint_every'\?")
    _refused(dict(cfg, output={"path": "a.xyz"}), tmp_path, r"output\.path must end in \.db or \.extxyz")
    _refused(dict(cfg, sed=3), tmp_path, r"unknown key 'sed' at the top level of the config; did you mean 'seed'\?")
    _refused(dict(cfg, seed=True), tmp_path, r"seed must be an integer, got the boolean true")
    _refused(dict(cfg, engine="lamps"), tmp_path, r"engine must be one of 'matrep', 'lammps'.*did you mean 'lammps'")
    system = cfg["system"]
    _refused(dict(cfg, system=dict(system, symbl="Ar")), tmp_path, r"unknown key 'symbl' in system; did you mean 'symbol'")
    _refused(dict(cfg, system={k: v for k, v in system.items() if k != "symbol"}), tmp_path,
             r"system needs 'symbol' \(a string\)")
    _refused(dict(cfg, system=dict(system, builder="bulck")), tmp_path,
             r"system\.builder must be one of .*did you mean 'bulk'\? got the string 'bulck'")
    _refused(dict(cfg, system={"builder": "file", "path": "nowhere.xyz"}), tmp_path,
             r"system\.path = 'nowhere\.xyz': no such file")
    _refused(dict(cfg, system={"builder": "molecule", "name": "H2O", "smiles": "O"}), tmp_path,
             r"exactly one of 'name'.*or 'smiles'")


def test_potential_keywords_are_checked_against_the_factory(tmp_path):
    cfg = _config("strict.extxyz")
    lj = cfg["potential"]
    # Today a raw TypeError ("unexpected keyword argument 'sigm'"), no suggestion.
    _refused(dict(cfg, potential=dict(lj, sigm=3.4)), tmp_path,
             r"unknown key 'sigm' in potential \(kind 'lj'\); did you mean 'sigma'\? known: cutoff, epsilon, "
             r"shift, sigma")
    _refused(dict(cfg, potential={"kind": "bks", "cuttoff": 5.0}), tmp_path, r"in potential \(kind 'bks'\)")
    _refused(dict(cfg, potential=dict(lj, dtype="float64")), tmp_path, r"potential\.dtype: set it in \[md\]")
    _refused(dict(cfg, potential={"kind": "ljj"}), tmp_path, r"unknown potential kind 'ljj'; did you mean 'lj'\?")
    _refused(dict(cfg, potential={"sigma": 3.4}), tmp_path, r"potential needs 'kind'")
    _refused(dict(cfg, potential={"kind": "ase"}), tmp_path, r"potential kind 'ase' needs 'calculator'")


def test_both_engines_read_one_stage_schema():
    from sims.generate import _make_integrator
    from sims.integrators import Langevin, NoseHooverChain
    from sims.lammps import Stage as LammpsStage
    from sims.config import Stage

    assert LammpsStage is Stage
    stage = Stage.from_config({"ensemble": "langevin", "steps": 100.0, "temperature": [300, 100], "friction": 0.1},
                              where="stages[0]")
    assert stage.steps == 100 and stage.temperatures == (300.0, 100.0)
    assert stage.target_temperature(25) == pytest.approx(250.0)
    integrator = _make_integrator(stage)
    assert isinstance(integrator, Langevin) and integrator.temperature == 300.0 and integrator.friction == 0.1
    nhc = _make_integrator(Stage(steps=5, ensemble="nose_hoover_chain", temperature=50, tau=20.0, chain_length=2))
    assert isinstance(nhc, NoseHooverChain) and nhc.temperature == 50.0 and nhc.tau == 20.0


@pytest.mark.parametrize("table, key", [
    ({"ensemble": "nose_hoover_chain", "temperature": 300, "friction": 0.01}, "friction"),
    ({"ensemble": "langevin", "temperature": 300, "tau": 100.0}, "tau"),
    ({"ensemble": "langevin", "temperature": 300, "chain_length": 3}, "chain_length"),
    ({"ensemble": "nve", "tau_p": 1000.0}, "tau_p"),
    ({"ensemble": "npt", "temperature": 300, "pressure": 1.0, "barostat": "mtk", "compressibility": 4.5e-5},
     "compressibility"),
    ({"ensemble": "nph", "temperature": 300, "pressure": 1.0, "friction": 0.02}, "friction"),
    ({"ensemble": "nph", "temperature": 300, "pressure": 1.0, "chain_length": 3}, "chain_length"),
])
def test_a_stage_key_its_integrators_never_read_is_refused(table, key):
    # set to its default value too: a check on values could not see it
    from sims.config import Stage

    with pytest.raises(ConfigError, match=rf"stages\[1\]\.{key} is not read by this stage"):
        Stage.from_config({"steps": 10, **table}, where="stages[1]")


def test_stage_keys_that_are_read_are_accepted():
    from sims.config import Stage

    Stage.from_config({"steps": 1, "ensemble": "npt", "temperature": 300, "pressure": 1.0, "barostat": "mtk",
                       "tau": 100.0, "chain_length": 2, "tau_p": 500.0})
    Stage.from_config({"steps": 1, "ensemble": "nph", "temperature": 300, "pressure": 1.0, "tau_p": 500.0})
    Stage.from_config({"steps": 1, "ensemble": "npt", "temperature": 300, "pressure": 1.0, "friction": 0.02,
                       "tau_p": 500.0, "compressibility": 1e-4})


def test_config_files_are_toml(tmp_path):
    from reprs.errors import ConfigError

    (tmp_path / "cfg.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="not a TOML file"):
        generate(tmp_path / "cfg.yaml")
    write_toml(tmp_path / "cfg.toml", _config("t.extxyz"))
    text = (tmp_path / "cfg.toml").read_text()
    (tmp_path / "cfg.toml").write_text(text.replace("[md]", "[md"))
    with pytest.raises(ConfigError, match=r"cfg\.toml.*not valid TOML.*line \d+, column \d+"):
        generate(tmp_path / "cfg.toml")


@pytest.mark.parametrize("problem", ["missing config", "yaml", "syntax", "missing structure", "typo"])
def test_cli_reports_config_mistakes_in_one_line(tmp_path, capsys, problem):
    from reprs.cli import main

    cfg = _config("cli.extxyz", steps=(10, 0, 0))
    path = tmp_path / "cfg.toml"
    if problem == "missing config":
        path = tmp_path / "missing.toml"
    elif problem == "yaml":
        path = tmp_path / "cfg.yaml"
        path.write_text("seed: 1\n")
    elif problem == "syntax":
        write_toml(path, cfg)
        path.write_text(path.read_text().replace("[md]", "[md"))
    elif problem == "missing structure":
        write_toml(path, dict(cfg, system={"builder": "file", "path": "argon.xyz"}))
    else:
        write_toml(path, dict(cfg, md={"dtyp": "float64"}))
    assert main(["simulate", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("matrep simulate: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_config_hash_tells_arrays_apart(tmp_path):
    """A dict config may hold numpy arrays (a tabulated potential's values). content_hash hashed their
    str, which rounds to 8 digits and elides all but the ends of an array of over 1000 entries: two
    potentials gave one hash and a finished run of the one was taken for the other. Reference: the
    SHA-256 of the JSON of the same values as lists (what a TOML config holds)."""
    import hashlib
    import json

    import torch

    from reprs.config import content_hash

    def reference(content):
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    r = np.linspace(2.6, 8.5, 3000)
    values = 4 * 0.0104 * ((3.4 / r) ** 12 - (3.4 / r) ** 6)
    values -= values[-1]
    for other in (values + np.where(np.arange(3000) == 1500, 1e-3, 0.0), values * (1 + 1e-12)):
        assert content_hash({"values": values}) != content_hash({"values": other})
    assert content_hash({"values": values[:60]}) == reference({"values": values[:60].tolist()})
    assert content_hash({"t": torch.tensor([[1.5, 2.0]])}) == reference({"t": [[1.5, 2.0]]})
    assert content_hash({"k": np.float32(0.1)}) == reference({"k": "0.1"})  # scalars: as before (exact)

    def config(values, out="tab.extxyz"):
        return {"seed": 1, "system": {"builder": "bulk", "symbol": "Ar", "crystal": "fcc", "a": 5.3, "repeat": 1},
                "potential": {"kind": "tabulated", "r_min": 2.6, "cutoff": 8.5, "values": values},
                "stages": [{"ensemble": "nve", "steps": 2, "timestep": 5.0, "sample_every": 1}],
                "output": {"path": out}, "_base": str(tmp_path)}

    generate(config(values))
    with pytest.raises(SimsInputError, match="different config.*holds arrays"):
        generate(config(values + np.where(np.arange(3000) == 1500, 1e-3, 0.0)))
    assert config_hash(config(values)) == config_hash(config(values.tolist()))


def test_config_hash_never_reads_as_a_number(tmp_path):
    """A 16-hex-digit key such as "8542332939585711" is refused by an ASE database as a string value;
    content_hash then takes the next window of the SHA-256 (others keep the first 16 digits)."""
    import hashlib
    import json

    from ase.build import bulk

    from reprs.fileio import FrameWriter
    from reprs.config import content_hash

    numeric = {"k": 1564}  # SHA-256 of its JSON starts with 16 decimal digits
    digest = hashlib.sha256(json.dumps(numeric, sort_keys=True).encode()).hexdigest()
    assert digest[:16].isdigit()
    key = content_hash(numeric)
    assert key == digest[16:32] and not key.isdigit()
    plain = {"k": 0}
    assert content_hash(plain) == hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]
    writer = FrameWriter(tmp_path / "frames.db")
    writer.write(bulk("Ar", "fcc", a=5.26), {"config_hash": key})
    assert read_frames(tmp_path / "frames.db")[0].info["config_hash"] == key


def _interrupt_at_sixth_frame(cfg, monkeypatch):
    """Run ``cfg`` and interrupt it (KeyboardInterrupt) as it writes its sixth frame."""
    import reprs.fileio

    write = reprs.fileio.FrameWriter.write
    calls = []

    def interrupted(self, atoms, meta):
        calls.append(meta["step"])
        if len(calls) == 6:
            raise KeyboardInterrupt
        write(self, atoms, meta)

    monkeypatch.setattr(reprs.fileio.FrameWriter, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg)
    monkeypatch.setattr(reprs.fileio.FrameWriter, "write", write)


@pytest.mark.parametrize("name", ["run.extxyz", "run.db"])
def test_an_output_lost_since_its_checkpoint_is_refused_not_resumed_with_a_gap(tmp_path, monkeypatch, name):
    # A run interrupted after its checkpoint of step 40, its output then deleted: the resume wrote the
    # frames of steps 50..100 only (10..40 lost without a word); a finished run returned a path with no file.
    cfg = _config(name, steps=(40, 40, 20))
    cfg["_base"] = str(tmp_path)
    cfg["output"]["checkpoint_every"] = 20
    _interrupt_at_sixth_frame(cfg, monkeypatch)
    (tmp_path / name).unlink()
    with pytest.raises(SimsInputError, match="less than its checkpoint"):
        generate(cfg)
    (tmp_path / (name + ".ckpt")).unlink()  # as the message says: start over
    assert [f.info["step"] for f in read_frames(generate(cfg))] == list(range(10, 101, 10))
    (tmp_path / name).unlink()              # a finished run's output lost
    with pytest.raises(SimsInputError, match="less than its checkpoint"):
        generate(cfg)


def test_a_rerun_after_a_file_the_config_names_changed_is_refused(tmp_path, monkeypatch):
    # The config hash covers the potential's and the structure's paths, not their contents: a model
    # file trained again under the same name was resumed (measured: frames of epsilon 0.0104 eV and
    # then of 0.05 eV in one output, energies -1.98 eV then -9.32 eV) or its old frames returned.
    from ase.build import bulk
    from ase.io import write as ase_write

    from sims.potentials import LennardJones, save_potential

    def lj(epsilon):
        save_potential(LennardJones(sigma=3.4, epsilon=epsilon, cutoff=8.5, dtype=torch.float64), tmp_path / "lj.pt")

    lj(0.0104)
    atoms = bulk("Ar", "fcc", a=5.8).repeat(2)
    atoms.rattle(0.05, seed=3)
    ase_write(tmp_path / "start.extxyz", atoms)
    cfg = _config("run.extxyz", steps=(40, 40, 20))
    cfg.update(_base=str(tmp_path), potential={"kind": "file", "path": "lj.pt"},
               system={"builder": "file", "path": "start.extxyz"})
    cfg["output"]["checkpoint_every"] = 20
    _interrupt_at_sixth_frame(cfg, monkeypatch)
    lj(0.05)
    with pytest.raises(SimsInputError, match="potential.path: the file has changed"):
        generate(cfg)
    lj(0.0104)  # the same bytes again: the run resumes and finishes
    frames = read_frames(generate(cfg))
    assert [f.info["step"] for f in frames] == list(range(10, 101, 10))
    ase_write(tmp_path / "start.extxyz", bulk("Ar", "fcc", a=5.9).repeat(2))
    with pytest.raises(SimsInputError, match="system.path: the file has changed"):
        generate(cfg)
    (tmp_path / "start.extxyz").unlink()  # not needed to resume: the checkpoint holds the state
    assert len(read_frames(generate(cfg))) == 10


def test_a_run_interrupted_inside_a_temperature_ramp_resumes_bit_for_bit(tmp_path, monkeypatch):
    # The checkpoint records the integrator's settings, the ramp's temperature of its step among them
    # (MD.load_integrator_state_dict refuses other ones); the resume rebuilds that temperature first.
    import sims

    cfg = _config("run.extxyz", steps=(40, 40, 20))
    cfg["output"]["checkpoint_every"] = 10
    (tmp_path / "ref").mkdir(), (tmp_path / "cut").mkdir()
    reference = read_frames(generate(dict(cfg, _base=str(tmp_path / "ref"))))
    run, done = sims.MD.run, []

    def crashing(self, n):  # generate advances one step a call
        if len(done) + n > 25:
            raise KeyboardInterrupt("simulated crash")
        done.extend([1] * n)
        return run(self, n)

    monkeypatch.setattr(sims.MD, "run", crashing)
    with pytest.raises(KeyboardInterrupt):
        generate(dict(cfg, _base=str(tmp_path / "cut")))
    monkeypatch.setattr(sims.MD, "run", run)
    resumed = read_frames(generate(dict(cfg, _base=str(tmp_path / "cut"))))
    assert [f.info["step"] for f in resumed] == [f.info["step"] for f in reference]
    for a, b in zip(resumed, reference):
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.get_velocities(), b.get_velocities())


def test_a_checkpoint_written_before_a_key_was_refused_resumes_with_a_warning(tmp_path, monkeypatch):
    # md.kspace_accuracy without kspace was accepted and never read before 2026-12-07, and the
    # checkpoint's hash covers it; refused now, and removing it changed the hash: the run could not
    # be resumed at all. Now the config as it was resumes its own checkpoint with a warning (its
    # frames keep one hash), a new run with the key is still refused, and the config without it is
    # told to put it back. Fails on the old code (checked: the resume was refused).
    import sims.config

    cfg = _config("run.extxyz", steps=(40, 40, 20))
    cfg["_base"] = str(tmp_path)
    cfg["output"]["checkpoint_every"] = 20
    old = dict(cfg, md=dict(cfg["md"], kspace_accuracy=1e-3))
    _check_old_checkpoint_resumes(
        cfg, old, tmp_path, monkeypatch,
        lambda: monkeypatch.setattr(sims.config.MDOptions, "READ_ONLY_WITH", ()),   # the code before the refusal
        hint=r"different config.*put it back as it was",
        warning=r"md\.kspace_accuracy: never read, and refused since 2026-12-07",
        refusal=r"md\.kspace_accuracy is read only with md\.kspace")


def _check_old_checkpoint_resumes(cfg, old, tmp_path, monkeypatch, old_rule, hint, warning, refusal):
    """``old`` (``cfg`` with a key refused since) interrupted under ``old_rule``: ``cfg`` is refused with
    ``hint``, ``old`` resumes with ``warning`` to the frames of an uninterrupted ``cfg`` run, bit for bit,
    under one config hash, and a new run of ``old`` is refused with ``refusal``."""
    old_rule()
    _interrupt_at_sixth_frame(old, monkeypatch)
    monkeypatch.undo()
    with pytest.raises(SimsInputError, match=hint):
        generate(cfg)
    with pytest.warns(UserWarning, match=warning):
        frames = read_frames(generate(old))
    whole = dict(cfg, _base=str(tmp_path / "whole"))
    (tmp_path / "whole").mkdir()
    reference = read_frames(generate(whole))
    assert [f.info["step"] for f in frames] == list(range(10, 101, 10))
    assert {f.info["config_hash"] for f in frames} == {config_hash(old)}    # one trajectory, one label
    for a, b in zip(frames, reference):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell[:], b.cell[:])
    _refused(dict(old, output={"path": "new.extxyz"}), tmp_path, refusal)


def test_a_checkpoint_of_an_nph_stage_with_chain_length_resumes_with_a_warning(tmp_path, monkeypatch):
    # chain_length on an nph stage was accepted until 2026-12-08 (our NPH never read it; LAMMPS's fix nph
    # ran it as pchain, now 0); refused since, and removing it changes the checkpoint's hash, so a run
    # begun before could not be resumed at all (/work/runs/s15/s15-review-merge/repro_resume.py). Now it
    # resumes as the md keys do. Fails on the old code (checked: the resume was refused, "chain_length is
    # not read by this stage").
    import sims.config

    cfg = _config("run.extxyz", steps=(40, 40, 20))
    cfg["_base"] = str(tmp_path)
    cfg["output"]["checkpoint_every"] = 20
    cfg["stages"] = [cfg["stages"][0], {"ensemble": "nph", "steps": 60, "timestep": 5.0, "temperature": 120.0,
                                        "pressure": 1.0, "tau_p": 500.0, "sample_every": 10}]
    old = dict(cfg, stages=[cfg["stages"][0], dict(cfg["stages"][1], chain_length=4)])
    _check_old_checkpoint_resumes(
        cfg, old, tmp_path, monkeypatch,
        lambda: monkeypatch.setitem(sims.config._READ_BY, "chain_length", (lambda st: True, "")),  # the code before
        hint=r"different config.*chain_length of an nph stage",
        warning=r"stages\[1\]\.chain_length: never read",
        refusal=r"stages\[1\]\.chain_length is not read")
