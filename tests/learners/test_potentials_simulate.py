"""`matrep simulate` with a trained committee: the "nn" plugin kind, uncertainty in frames, flag/stop, resume.

The committee is found by :func:`sims.generate.build_potential` through the entry point
``sims.potentials: nn`` (sims never imports learners). References: the committee itself evaluated
afresh on each written frame (its own neighbour list, :meth:`Committee.predict`), and the same run
without monitoring (monitoring must not change the trajectory).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from learners.potentials import Committee, PaiNN, fit_potential, load_potential, save_potential
from learners.trainer import Trainer
from sims.errors import SimsInputError, SimulationStopped
from sims.generate import generate, read_frames
from tests.sims.config_files import kill_after_checkpoint, write_toml

CUTOFF = 5.0


def _config(out: str, *, potential: dict, steps: int = 60, md: dict | None = None, every: int = 30) -> dict:
    return {
        "seed": 5,
        "system": {"builder": "bulk", "symbol": "Ar", "crystal": "fcc", "a": 5.4, "repeat": 2, "rattle": 0.05},
        "potential": potential,
        "md": {"dtype": "float64", "skin": 0.5, **(md or {})},
        "stages": [{"ensemble": "langevin", "steps": steps, "timestep": 5.0, "temperature": 60.0, "friction": 0.02,
                    "sample_every": 5}],
        "output": {"path": out, "checkpoint_every": every},
    }


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A 3-member PaiNN committee trained briefly on Lennard-Jones argon frames from sims, saved to disk,
    and a single model saved beside it."""
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    d = tmp_path_factory.mktemp("nn")
    lj = {"kind": "lj", "sigma": 3.4, "epsilon": 0.0104, "cutoff": 6.0}
    cfg = _config("lj.db", potential=lj, steps=100)
    cfg["_base"] = str(d)
    frames = read_frames(generate(cfg))
    committee = Committee.build(PaiNN, k=3, seed=0, cutoff=CUTOFF, n_features=8, n_interactions=1, n_rbf=8,
                                dtype=torch.float64)
    fit_potential(committee, frames[:15], frames[15:],
                  trainer=Trainer(epochs=3, batch_size=5, lr=1e-3, eval_grad=True, dtype=torch.float64))
    save_potential(committee, d / "committee.pt")
    save_potential(committee.models[0], d / "single.pt")
    return d


def _run(d: Path, name: str, **kw) -> list:
    cfg = _config(name, potential={"kind": "nn", "path": "committee.pt"}, **kw)  # relative to the config folder
    write_toml(d / f"{name}.toml", cfg)
    return read_frames(generate(d / f"{name}.toml"))


def test_frames_carry_the_committee_uncertainty_and_flags(model_dir):
    committee = load_potential(model_dir / "committee.pt", dtype=torch.float64)
    plain = _run(model_dir, "plain.db")
    assert [f.info["step"] for f in plain] == list(range(5, 61, 5))
    for frame in plain:
        ref = committee.predict(frame)  # fresh neighbour list, independent of the run's
        assert frame.get_potential_energy() == pytest.approx(float(ref["energy"][0]), abs=1e-9)
        np.testing.assert_allclose(frame.get_forces(), ref["forces"].numpy(), atol=1e-9)
        assert frame.info["energy_std"] == pytest.approx(float(ref["energy_std"][0]), abs=1e-9)
        f_std = float(torch.linalg.norm(ref["forces_std"], dim=1).max())
        assert frame.info["forces_std_max"] == pytest.approx(f_std, abs=1e-9) and f_std > 0
        assert "uncertain" not in frame.info  # no threshold, nothing compared

    threshold = float(np.median([f.info["forces_std_max"] for f in plain]))
    flagged = _run(model_dir, "flag.extxyz", md={"uncertainty_threshold": threshold, "on_uncertain": "flag"})
    assert len(flagged) == len(plain)
    for a, b in zip(flagged, plain):
        # Monitoring leaves the trajectory alone (extxyz stores 8 decimals).
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)
        assert bool(a.info["uncertain"]) == (b.info["forces_std_max"] > threshold)
    assert 0 < sum(bool(f.info["uncertain"]) for f in flagged) < len(flagged)


def test_batched_run_writes_the_uncertainty_of_each_replica(model_dir):
    """sims.ensemble.generate_batched writes the frames and metadata generate() writes for each config
    alone, the committee's spread included (it wrote no energy_std / forces_std_max before). References:
    each config run alone, and the committee evaluated afresh on each frame."""
    from sims.ensemble import ensemble_configs, generate_batched

    committee = load_potential(model_dir / "committee.pt", dtype=torch.float64)
    base = _config("batch.extxyz", potential={"kind": "nn", "path": "committee.pt"}, steps=20)
    base["_base"] = str(model_dir)
    cfgs = ensemble_configs(base, seeds=[5, 6], temperatures=[40.0, 80.0])
    batched = [read_frames(p) for p in generate_batched(cfgs)]
    for cfg, frames in zip(cfgs, batched):
        alone = read_frames(generate(dict(cfg, output={"path": "alone_" + Path(cfg["output"]["path"]).name})))
        assert len(frames) == len(alone) == 4
        for a, b in zip(frames, alone):
            assert sorted(a.info) == sorted(b.info)
            np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)  # extxyz: 8 decimals
            ref = committee.predict(a)
            assert a.info["energy_std"] == pytest.approx(float(ref["energy_std"][0]), abs=1e-7)
            f_std = float(torch.linalg.norm(ref["forces_std"], dim=1).max())
            assert a.info["forces_std_max"] == pytest.approx(f_std, abs=1e-7) and f_std > 0
            assert a.info["forces_std_max"] == pytest.approx(b.info["forces_std_max"], abs=1e-7)
    assert batched[0][-1].info["forces_std_max"] != batched[1][-1].info["forces_std_max"]  # per replica


def test_stop_mode_stops_with_valid_frames_and_repeats(model_dir, capsys):
    plain = read_frames(model_dir / "plain.db") if (model_dir / "plain.db").exists() else _run(model_dir, "plain.db")
    spreads = [f.info["forces_std_max"] for f in plain]
    k = int(np.argmax(spreads))
    threshold = 0.999 * spreads[k]  # passed at that frame's step at the latest
    cfg = _config("stop.db", potential={"kind": "nn", "path": "committee.pt"},
                  md={"uncertainty_threshold": threshold, "on_uncertain": "stop"})
    write_toml(model_dir / "stop.toml", cfg)

    from reprs.cli import main

    assert main(["simulate", str(model_dir / "stop.toml"), "--quiet"]) == 2
    message = capsys.readouterr().err
    assert "uncertainty_threshold" in message and "last frame" in message

    frames = read_frames(model_dir / "stop.db")  # readable: every row whole
    last = frames[-1]
    assert last.info["uncertain"] and last.info["forces_std_max"] > threshold
    assert last.info["step"] <= plain[k].info["step"]
    for a in frames[:-1]:
        assert not a.info["uncertain"]
        b = next(f for f in plain if f.info["step"] == a.info["step"])
        np.testing.assert_array_equal(a.positions, b.positions)

    # The same command repeats the run from its last checkpoint and stops at the same step: no frame twice.
    with pytest.raises(SimulationStopped, match=f"at step {last.info['step']} "):
        generate(model_dir / "stop.toml")
    again = read_frames(model_dir / "stop.db")
    assert [f.info["step"] for f in again] == [f.info["step"] for f in frames]
    np.testing.assert_array_equal(again[-1].positions, last.positions)


def test_sigkill_and_resume_with_the_committee(model_dir):
    ref_dir, kill_dir = model_dir / "ref", model_dir / "kill"
    ref_dir.mkdir(), kill_dir.mkdir()
    potential = {"kind": "nn", "path": str(model_dir / "committee.pt")}
    for d in (ref_dir, kill_dir):
        write_toml(d / "cfg.toml", _config("run.db", potential=potential, steps=200, every=20,
                                            md={"uncertainty_threshold": 1e3, "uncertainty_every": 5}))
    reference = read_frames(generate(ref_dir / "cfg.toml"))

    assert not kill_after_checkpoint(kill_dir / "cfg.toml", kill_dir / "run.db.ckpt", step=40)["done"], "the run finished before it could be killed"

    resumed = read_frames(generate(kill_dir / "cfg.toml"))
    assert [f.info["step"] for f in resumed] == [f.info["step"] for f in reference]
    for a, b in zip(resumed, reference):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.get_potential_energy() == b.get_potential_energy()
        assert a.info["forces_std_max"] == b.info["forces_std_max"] and a.info["uncertain"] is False


def test_config_errors(model_dir):
    def cfg(potential, md=None):
        c = _config("bad.db", potential=potential, md=md)
        c["_base"] = str(model_dir)
        return c

    with pytest.raises(SimsInputError, match="needs path"):
        generate(cfg({"kind": "nn"}))
    with pytest.raises(SimsInputError, match="no potential file"):
        generate(cfg({"kind": "nn", "path": "missing.pt"}))
    with pytest.raises(SimsInputError, match="unknown key 'k'"):
        generate(cfg({"kind": "nn", "path": "committee.pt", "k": 5}))
    with pytest.raises(SimsInputError, match="estimates its uncertainty"):
        generate(cfg({"kind": "nn", "path": "single.pt"}, {"uncertainty_threshold": 0.1}))
    with pytest.raises(SimsInputError, match="needs md.uncertainty_threshold"):
        generate(cfg({"kind": "nn", "path": "committee.pt"}, {"on_uncertain": "stop"}))
    with pytest.raises(SimsInputError, match="on_uncertain"):
        generate(cfg({"kind": "nn", "path": "committee.pt"}, {"uncertainty_threshold": 0.1, "on_uncertain": "halt"}))
    with pytest.raises(SimsInputError, match="uncertainty_threshold must be"):
        generate(cfg({"kind": "nn", "path": "committee.pt"}, {"uncertainty_threshold": -1.0}))
    with pytest.raises(SimsInputError, match="'nn'"):
        generate(cfg({"kind": "nope"}))  # the error lists the plugin kinds too
    assert not (model_dir / "bad.db").exists()  # nothing written before the potential was accepted
