"""`matrep hop` with a saved DANN: the "dann" kind of the entry-point group ``sims.hopping_models``.

sims never imports learners: ``matrep hop`` finds the model through the entry point that
pyproject.toml declares. The fixture adds the entry points pyproject.toml declares to the installed
ones (an editable install made before the entry point was added does not list it), so the string in
pyproject.toml is what these tests load. Reference for the run: :func:`sims.hopping_ensemble.run_ensemble`
called from Python on ``DANNHamiltonian(load_diabatic(...))`` with the same settings (the same
seeded streams give the same trajectories).
"""

from __future__ import annotations

import json
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
import torch

import sims.config
from learners.diabatic import DANNHamiltonian, DiabaticPaiNN, hopping_model_from_config, load_diabatic, save_diabatic
from reprs.cli import main
from sims.errors import ConfigError
from sims.hopping_ensemble import HopConfig, hop, run_ensemble
from sims.surface_hopping import TorsionalIsomerisation

ROOT = Path(__file__).resolve().parents[2]
F64 = torch.float64
# A short run: 4 trajectories in 2 chunks, 12 steps of 0.25 fs.
SETTINGS = {"n_trajectories": 4, "duration": 3.0, "timestep": 0.25, "chunk_size": 2, "record_every": 4,
            "temperature": 0.0, "friction": 0.0, "seed": 3}


def _declared(group: str) -> dict[str, EntryPoint]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {name: EntryPoint(name, value, group)
            for name, value in data["project"]["entry-points"].get(group, {}).items()}


@pytest.fixture(autouse=True)
def declared_plugins(monkeypatch):
    installed = sims.config.plugin_kinds
    monkeypatch.setattr(sims.config, "plugin_kinds", lambda group: {**installed(group), **_declared(group)})


@pytest.fixture(scope="module")
def dann_file(tmp_path_factory) -> Path:
    """A randomly initialised two-state DANN saved to disk. Seed 2 is one whose ground state has a
    minimum at the torsional model's cis geometry (normal-mode sampling needs one; seeds 0, 1, 3
    have a small negative curvature there and are refused)."""
    net = DiabaticPaiNN(2, cutoff=4.0, n_features=8, n_rbf=8, n_interactions=1, seed=2, dtype=F64)
    net.shift.copy_(torch.tensor([0.0, 0.5], dtype=F64))  # states well apart at random weights
    return save_diabatic(net, tmp_path_factory.mktemp("dann") / "dann.pt")


def _config(folder: Path, model: str, **extra) -> Path:
    lines = ['output = "run"'] + [f"{k} = {v!r}" for k, v in {**SETTINGS, **extra}.items()]
    path = folder / "hop.toml"
    path.write_text("\n".join(lines) + "\n" + model)
    return path


DANN = '[model]\nkind = "dann"\npath = "dann.pt"\n[model.like]\nkind = "torsional"\n'


def test_pyproject_registers_the_dann_hopping_model():
    assert _declared("sims.hopping_models")["dann"].load() is hopping_model_from_config


def test_matrep_hop_runs_a_saved_dann(dann_file, tmp_path, monkeypatch):
    folder = dann_file.parent
    cfg = _config(folder, DANN)
    monkeypatch.chdir(tmp_path)  # the model path and output are read from the config's folder
    assert main(["hop", str(cfg), "--quiet"]) == 0
    out = folder / "run"
    assert sorted(p.name for p in out.iterdir()) == ["chunk_00000.parquet", "chunk_00001.parquet",
                                                     "manifest.json", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trajectories"] == 4 and summary["times_fs"] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert json.loads((out / "manifest.json").read_text())["model"] == "DANNHamiltonian"

    torsional = TorsionalIsomerisation()
    ham = DANNHamiltonian(load_diabatic(dann_file, dtype=F64), torsional.numbers, masses=torsional.masses,
                          like=torsional)
    ref = run_ensemble(ham, **SETTINGS, dtype=F64)
    ran = hop(cfg)  # resumes: reads the chunks written above
    for col in ("final_state", "n_hops", "descriptor"):
        np.testing.assert_array_equal(ran.trajectories[col].to_numpy(), ref.trajectories[col].to_numpy())
    np.testing.assert_allclose(ran.amplitude_populations, ref.amplitude_populations, rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(summary["amplitude_populations"]["1"]), ref.amplitude_populations[:, 1],
                               rtol=0, atol=1e-7)
    # Started on the excited state; the amplitudes stay normalised.
    assert ref.amplitude_populations[0, 1] == 1.0
    np.testing.assert_allclose(ref.amplitude_populations.sum(1), 1.0, atol=1e-3)

    # Other weights in the same output folder are another run, not a resume.
    other = load_diabatic(dann_file, dtype=F64)
    other.shift.add_(0.1)  # both states: the same forces, other weights
    save_diabatic(other, folder / "other.pt")
    with pytest.raises(ConfigError, match="holds a run with other settings"):
        hop(_config(folder, DANN.replace("dann.pt", "other.pt")))
    with pytest.raises(ConfigError, match="holds a run with other settings"):
        hop(_config(folder, DANN, dtype="float32"))


def test_dann_model_honours_device_dtype_and_defaults(dann_file):
    cfg = HopConfig.from_config({"output": "x", "model": {"kind": "dann", "path": "dann.pt",
                                                          "like": {"kind": "torsional"}}})
    ham = cfg.model.make(dann_file.parent, device="cpu", dtype=torch.float32)
    p = next(ham.net.parameters())
    assert p.dtype == torch.float32 and p.device.type == "cpu"
    torsional = TorsionalIsomerisation()
    assert ham.numbers == torsional.numbers and ham.mass == pytest.approx(torsional.mass)
    x = torsional.geometry(dtype=torch.float32)
    ref = DANNHamiltonian(load_diabatic(dann_file, dtype=torch.float32), torsional.numbers, like=torsional)
    torch.testing.assert_close(ham.adiabatic(x).energies, ref.adiabatic(x).energies, rtol=0, atol=0)
    assert ham.descriptor(x).tolist() == pytest.approx(torsional.descriptor(x).tolist())


def test_bad_dann_configs_are_refused(dann_file):
    folder = dann_file.parent
    with pytest.raises(ConfigError, match="n_states=3 but the model DANNHamiltonian has 2 states; set n_states = 2"):
        hop(_config(folder, DANN, n_states=3))
    with pytest.raises(ConfigError, match=r"unknown model kind 'dan'; did you mean 'dann'\? known: 'dann', 'torsional'"):
        hop(_config(folder, DANN.replace('"dann"', '"dan"')))
    with pytest.raises(ConfigError, match="unknown key 'pth' in model; did you mean 'path'"):
        hop(_config(folder, DANN.replace("path =", "pth =")))
    with pytest.raises(ConfigError, match=r"needs a \[model.like\] table"):
        hop(_config(folder, '[model]\nkind = "dann"\npath = "dann.pt"\n'))
    with pytest.raises(ConfigError, match="no DANN file at"):
        hop(_config(folder, DANN.replace("dann.pt", "missing.pt")))
    with pytest.raises(ConfigError, match="unknown model kind 'torsionl'; did you mean 'torsional'"):
        hop(_config(folder, DANN.replace('kind = "torsional"', 'kind = "torsionl"')))
