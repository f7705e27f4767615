"""Ensembles as one batched generate run: the same files as generate() per config, resumable."""

from __future__ import annotations

import numpy as np
import pytest

from sims.batch import BatchMD
from sims.ensemble import ensemble_configs, generate_batched, generate_ensemble
from sims.errors import SimsInputError
from sims.generate import generate, read_frames


def _base(tmp_path) -> dict:
    return {
        "seed": 3,
        "system": {"builder": "bulk", "symbol": "Ar", "crystal": "fcc", "a": 5.8, "repeat": 2, "rattle": 0.05},
        "potential": {"kind": "lj", "sigma": 3.4, "epsilon": 0.0104, "cutoff": 8.5},
        "md": {"dtype": "float64", "skin": 1.0},
        "stages": [
            {"ensemble": "langevin", "steps": 60, "timestep": 5.0, "temperature": [50.0, 120.0], "friction": 0.02,
             "sample_every": 10},
            {"ensemble": "nose_hoover_chain", "steps": 30, "timestep": 5.0, "temperature": 120.0, "tau": 100.0,
             "sample_every": 10},
            {"ensemble": "nve", "steps": 40, "timestep": 5.0, "sample_every": 10},
        ],
        "output": {"path": "argon.extxyz", "checkpoint_every": 50},
        "_base": str(tmp_path),
    }


def _replicas(tmp_path):
    systems = [dict(_base(tmp_path)["system"], repeat=r) for r in (2, [2, 2, 1], 2)]
    return ensemble_configs(_base(tmp_path), seeds=[1, 2, 3], temperatures=[40.0, 60.0, 80.0], systems=systems)


def test_batched_ensemble_writes_what_generate_writes_per_config(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    batched = generate_ensemble(_replicas(tmp_path / "a"))
    for r, cfg in enumerate(_replicas(tmp_path / "b")):
        assert cfg["output"]["path"] == f"argon_{r}.extxyz" and cfg["seed"] == r + 1
        ours, alone = read_frames(batched[r]), read_frames(generate(cfg))
        assert len(ours) == len(alone) == 13 and len(ours[0]) == (32 if r != 1 else 16)
        for a, b in zip(ours, alone):
            assert {k: a.info[k] for k in ("step", "stage", "T_target", "seed", "config_hash")} == \
                {k: b.info[k] for k in ("step", "stage", "T_target", "seed", "config_hash")}
            if a.info["stage"] == 0:
                assert a.info["T_target"] == 40.0 + 20.0 * r
            np.testing.assert_allclose(a.positions, b.positions, atol=1e-9)
            assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-9)
            assert a.info["T"] == pytest.approx(b.info["T"], rel=1e-9)
            assert a.info["pressure_bar"] == pytest.approx(b.info["pressure_bar"], rel=1e-8, abs=1e-6)
    assert generate_batched(_replicas(tmp_path / "a")) == batched  # done: nothing rerun


def _checkpointing(configs: list[dict], every: int) -> list[dict]:
    return [dict(c, output=dict(c["output"], checkpoint_every=every)) for c in configs]


# (85, 25): the last checkpoint (step 75) lies inside the Nose-Hoover stage, so the chains' xi and v_xi
# are read back from it (they were rebuilt in float32, 1e-10 Å off within five steps)
@pytest.mark.parametrize("stop_at, every", [(55, 50), (75, 50), (115, 50), (85, 25)])
def test_interrupted_batched_run_resumes_bit_for_bit(tmp_path, monkeypatch, stop_at, every):
    (tmp_path / "ref").mkdir(), (tmp_path / "cut").mkdir()
    reference = [read_frames(p) for p in generate_batched(_checkpointing(_replicas(tmp_path / "ref"), every))]
    run, done = BatchMD.run, []

    def crashing(self, n):  # generate_batched advances one step a call, through both stages
        if len(done) + n > stop_at:
            raise KeyboardInterrupt("simulated crash")
        done.extend([1] * n)
        return run(self, n)

    monkeypatch.setattr(BatchMD, "run", crashing)
    with pytest.raises(KeyboardInterrupt):
        generate_batched(_checkpointing(_replicas(tmp_path / "cut"), every))
    assert len(done) == stop_at and len(read_frames(tmp_path / "cut" / "argon_0.extxyz")) == stop_at // 10
    monkeypatch.setattr(BatchMD, "run", run)
    resumed = [read_frames(p) for p in generate_batched(_checkpointing(_replicas(tmp_path / "cut"), every))]
    for ref, res in zip(reference, resumed):
        assert [f.info["step"] for f in res] == [f.info["step"] for f in ref]  # none lost, none twice
        for a, b in zip(res, ref):
            assert np.array_equal(a.positions, b.positions) and np.array_equal(a.get_velocities(), b.get_velocities())


def test_refused_ensembles(tmp_path):
    npt = _base(tmp_path)
    npt["stages"][1] = {"ensemble": "npt", "barostat": "mtk", "thermostat": "nose_hoover_chain", "steps": 10,
                        "timestep": 5.0, "temperature": 50.0, "pressure": 1.0}
    with pytest.raises(SimsInputError, match=r"config 0: stages\[1\] is an MTK barostat"):
        generate_batched(ensemble_configs(npt, seeds=[1, 2]))
    other = _replicas(tmp_path)
    other[2]["potential"]["epsilon"] = 0.02
    with pytest.raises(SimsInputError, match=r"config 2 differs from config 0 in \[potential\]"):
        generate_batched(other)
    steps = _replicas(tmp_path)
    steps[1]["stages"][0]["friction"] = 0.05
    with pytest.raises(SimsInputError, match=r"config 1 differs from config 0 in \[\[stages\]\]"):
        generate_batched(steps)
    with pytest.raises(SimsInputError, match="one value per replica"):
        ensemble_configs(_base(tmp_path), seeds=[1, 2], temperatures=[10.0])
    with pytest.raises(SimsInputError, match="same output"):
        generate_batched([_base(tmp_path), _base(tmp_path)])
    assert not list(tmp_path.glob("*.extxyz"))


def test_ensemble_in_batches_on_a_dask_cluster(tmp_path):
    from dask.distributed import Client, LocalCluster

    (tmp_path / "one").mkdir(), (tmp_path / "dask").mkdir()
    whole = generate_ensemble(_replicas(tmp_path / "one"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        split = generate_ensemble(_replicas(tmp_path / "dask"), batch_size=2, client=client)
    assert [p.name for p in split] == [p.name for p in whole] and all(p.parent == tmp_path / "dask" for p in split)
    for a, b in zip(split, whole):
        fa, fb = read_frames(a), read_frames(b)
        assert len(fa) == len(fb) == 13
        np.testing.assert_allclose(fa[-1].positions, fb[-1].positions, atol=1e-9)
    with pytest.raises(SimsInputError, match="batch_size must be >= 1"):
        generate_ensemble(_replicas(tmp_path), batch_size=0)


def test_batched_npt_ensemble_writes_what_generate_writes_per_config(tmp_path, monkeypatch):
    """NPT stages (stochastic cell rescaling) at per-replica pressures and temperatures: each replica's
    frames, cells and pressures are those of generate() on its config alone; a batch interrupted inside
    the NPT stage resumes from its checkpoints bit for bit."""
    cfg = _base(tmp_path)
    cfg["stages"] = [{"ensemble": "npt", "thermostat": "langevin", "steps": 60, "timestep": 5.0, "temperature": 60.0,
                      "friction": 0.02, "pressure": 1.0, "tau_p": 200.0, "compressibility": 3e-4, "sample_every": 20},
                     {"ensemble": "nve", "steps": 20, "timestep": 5.0, "sample_every": 20}]
    cfg["output"]["checkpoint_every"] = 40

    def replicas(where):
        (tmp_path / where).mkdir(exist_ok=True)
        return ensemble_configs(dict(cfg, _base=str(tmp_path / where)), seeds=[1, 2], temperatures=[40.0, 70.0],
                                pressures=[100.0, 3000.0])

    batched = generate_batched(replicas("a"))
    for r, one in enumerate(replicas("b")):
        ours, alone = read_frames(batched[r]), read_frames(generate(one))
        assert len(ours) == len(alone) == 4
        for a, b in zip(ours, alone):
            np.testing.assert_allclose(a.cell[:], b.cell[:], atol=1e-10)
            np.testing.assert_allclose(a.positions, b.positions, atol=1e-9)
            assert a.info["cell_volume"] == pytest.approx(b.info["cell_volume"], rel=1e-12)
            assert a.info["pressure_bar"] == pytest.approx(b.info["pressure_bar"], rel=1e-8, abs=1e-6)
    assert read_frames(batched[1])[2].info["cell_volume"] < read_frames(batched[0])[2].info["cell_volume"]
    run = BatchMD.run

    def crashing(self, n):
        if self.step_count >= 50:
            raise KeyboardInterrupt("simulated crash")
        return run(self, n)

    monkeypatch.setattr(BatchMD, "run", crashing)
    with pytest.raises(KeyboardInterrupt):
        generate_batched(replicas("c"))
    monkeypatch.setattr(BatchMD, "run", run)
    for ref, path in zip(batched, generate_batched(replicas("c"))):
        for a, b in zip(read_frames(path), read_frames(ref), strict=True):
            assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell[:], b.cell[:])
    with pytest.raises(SimsInputError, match="need an 'npt' stage"):
        ensemble_configs(_base(tmp_path), pressures=[1.0, 2.0])
    mtk = dict(cfg, stages=[{"ensemble": "npt", "barostat": "mtk", "thermostat": "nose_hoover_chain", "steps": 10,
                             "timestep": 5.0, "temperature": 60.0, "pressure": 1.0, "tau_p": 200.0, "tau": 100.0}])
    with pytest.raises(SimsInputError, match="an MTK barostat"):
        generate_batched(ensemble_configs(mtk, seeds=[1, 2]))


def test_replicas_without_seeds_draw_their_own_noise(tmp_path):
    """Temperatures alone gave every replica the config's seed: the same velocity draw (scaled by sqrt(T)) and the
    same noise, correlated replicas taken for independent ones. Replica r now takes seed + r; fails before."""
    cfgs = ensemble_configs(_base(tmp_path), temperatures=[60.0, 60.0, 90.0])
    assert [c["seed"] for c in cfgs] == [3, 4, 5]
    short = [dict(c, stages=[dict(c["stages"][0], steps=10)]) for c in cfgs]
    first = [read_frames(p)[0] for p in generate_batched(short)]
    v = [a.get_velocities() for a in first]
    assert not np.allclose(v[0], v[1]) and not np.allclose(v[0] * np.sqrt(1.5), v[2])
    assert ensemble_configs(_base(tmp_path), seeds=[7, 7])[1]["seed"] == 7  # given seeds are kept as given


def test_replicas_of_a_config_without_a_seed_count_from_the_default(tmp_path):
    """A config that sets no ``seed`` (the schema's default, 0) raised KeyError once replicas took ``seed + r``;
    they now take 0, 1, ... (checked to fail before the fix)."""
    cfg = {k: v for k, v in _base(tmp_path).items() if k != "seed"}
    assert [c["seed"] for c in ensemble_configs(cfg, temperatures=[60.0, 90.0])] == [0, 1]
