"""Quantum reference data: GFN2-xTB (tblite) on ethanol and malonaldehyde through sims, and a PaiNN trained on it.

GFN2-xTB: Bannwarth, Ehlert & Grimme, J. Chem. Theory Comput. 15, 1652 (2019), as implemented by
the ``tblite`` library (its ASE calculator ``tblite.ase.TBLite``). References: tblite called
directly on the same coordinates, and central finite differences of the energy. The slow test
writes the MD dataset of ``docs/datasets.md`` and reports held-out energy and force errors of a
small PaiNN trained on it (numbers in ``benchmarks/README.md``).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.io import read

from sims.generate import generate, read_frames
from sims.md import energy_and_forces
from sims.potentials import CalculatorPotential
from tests.learners.potential_fits import fit_painn_and_score

pytest.importorskip("tblite")
from tblite.ase import TBLite  # noqa: E402

F64 = torch.float64

#: Malonaldehyde as the chelated enol (O-H...O=C, the form of the MD17 set), relaxed with GFN2-xTB
#: (tblite 0.8.0, ASE BFGS to 0.01 eV/Å) from an RDKit embedding; O...O 2.60 Å, H...O 1.72 Å.
MALONALDEHYDE_XYZ = """9
malonaldehyde, chelated enol, GFN2-xTB minimum
O    1.13967   -0.97836   -0.34462
C   -0.05262   -1.15561   -0.56470
C   -1.08374   -0.21697   -0.22705
C   -0.75663    0.95395    0.37599
O    0.46610    1.31008    0.68600
H   -0.38919   -2.08513   -1.05209
H   -2.10746   -0.45186   -0.45601
H   -1.50795    1.68877    0.64663
H    1.07395    0.57130    0.39728
"""


def _molecules() -> dict:
    mal = read(io.StringIO(MALONALDEHYDE_XYZ), format="xyz")
    return {"ethanol": molecule("CH3CH2OH"), "malonaldehyde": mal}


def _xtb() -> TBLite:
    return TBLite(method="GFN2-xTB", verbosity=0)


#: The ``[system]`` of each molecule: ASE's g2 ethanol, malonaldehyde from MALONALDEHYDE_XYZ, and
#: trans-azobenzene (24 atoms) embedded from SMILES by RDKit.
SYSTEMS = {
    "ethanol": {"builder": "molecule", "name": "CH3CH2OH"},
    "malonaldehyde": {"builder": "file", "path": "malonaldehyde.xyz"},
    "azobenzene": {"builder": "molecule", "smiles": "c1ccc(cc1)/N=N/c1ccccc1"},
}


def xtb_config(name: str, temperature: float, seed: int, out: str, *, steps: int, sample_every: int,
               equilibrate: int) -> dict:
    """One MD trajectory of ``name`` (a key of SYSTEMS) on GFN2-xTB: Langevin equilibration, then
    sampled Langevin at ``temperature`` (K), written to ``out``."""
    system = SYSTEMS[name]
    stage = {"ensemble": "langevin", "timestep": 0.5, "temperature": temperature, "friction": 0.01}
    return {"seed": seed, "system": system, "potential": {"kind": "tblite", "method": "GFN2-xTB"},
            "md": {"dtype": "float64"},
            "stages": [dict(stage, steps=equilibrate, sample_every=0),
                       dict(stage, steps=steps, sample_every=sample_every)],
            "output": {"path": out, "checkpoint_every": 500}}


def _write_dataset(folder, temperatures, seeds, *, steps, sample_every, equilibrate,
                   names=("ethanol", "malonaldehyde")) -> dict:
    (folder / "malonaldehyde.xyz").write_text(MALONALDEHYDE_XYZ)
    out = {}
    for name in names:
        for temperature in temperatures:
            for seed in seeds:
                cfg = xtb_config(name, temperature, seed, f"{name}_{int(temperature)}K_{seed}.db", steps=steps,
                                 sample_every=sample_every, equilibrate=equilibrate)
                cfg["_base"] = str(folder)
                out[(name, temperature, seed)] = generate(cfg)
    return out


@pytest.mark.parametrize("name", ["ethanol", "malonaldehyde"])
def test_wrapper_equals_tblite_called_directly(name):
    atoms = _molecules()[name]
    atoms.rattle(0.05, seed=1)
    e, f = energy_and_forces(CalculatorPotential(_xtb()), atoms, dtype=F64)
    direct = atoms.copy()
    direct.calc = _xtb()
    assert e == pytest.approx(direct.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(f, direct.get_forces(), atol=1e-10)


def test_smiles_builder_gives_a_near_minimum_geometry():
    """RDKit's embedding of "CCO" is ethanol near a minimum: its GFN2-xTB energy lies within 0.1 eV of
    ASE's g2 ethanol (an MP2 geometry; trans and gauche conformers differ by ~0.05 eV)."""
    from sims.generate import build_system

    atoms = build_system({"seed": 0, "system": {"builder": "molecule", "smiles": "CCO"}})
    assert atoms.get_chemical_formula() == "C2H6O" and not atoms.pbc.any()
    pot = CalculatorPotential(_xtb())
    e_smiles = energy_and_forces(pot, atoms, dtype=F64)[0]
    e_g2 = energy_and_forces(pot, _molecules()["ethanol"], dtype=F64)[0]
    assert e_smiles == pytest.approx(e_g2, abs=0.1)


def test_xtb_forces_equal_finite_differences():
    atoms = _molecules()["malonaldehyde"]
    atoms.rattle(0.05, seed=2)
    pot = CalculatorPotential(_xtb())
    _, forces = energy_and_forces(pot, atoms, dtype=F64)
    h = 1e-3  # Å; SCF convergence (tblite's default accuracy) limits the difference quotient to ~1e-4 eV/Å
    for i in range(len(atoms)):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += h
            minus.positions[i, a] -= h
            fd = -(energy_and_forces(pot, plus, dtype=F64)[0] - energy_and_forces(pot, minus, dtype=F64)[0]) / (2 * h)
            assert fd == pytest.approx(forces[i, a], abs=3e-4)


def test_xtb_md_dataset_with_sims(tmp_path):
    """Short trajectories at two temperatures: frames hold tblite's energies and forces and their metadata."""
    paths = _write_dataset(tmp_path, (300.0, 600.0), (0,), steps=40, sample_every=20, equilibrate=20)
    hashes = set()
    for (name, temperature, _), path in paths.items():
        frames = read_frames(path)
        assert [f.info["step"] for f in frames] == [40, 60]
        for frame in frames:
            assert frame.info["T_target"] == temperature
            direct = frame.copy()
            direct.calc = _xtb()
            # Exact: the "tblite" kind resets the SCF at every step, so numbers depend on positions only.
            assert frame.get_potential_energy() == direct.get_potential_energy()
            np.testing.assert_array_equal(frame.get_forces(), direct.get_forces())
        hashes.add(frames[0].info["config_hash"])
    assert len(hashes) == len(paths)  # each trajectory is its own group for the splits


@pytest.mark.slow
def test_painn_on_xtb_ethanol_held_out_errors(tmp_path):
    """PaiNN (64 features, 3 interactions, 5 Å) on GFN2-xTB ethanol MD at 300/600/900 K, two trajectories
    per temperature; trained on four, validated and tested on one trajectory each (by trajectory)."""
    from learners.potentials import AtomsDataset

    paths = _write_dataset(tmp_path, (300.0, 600.0, 900.0), (0, 1), steps=2000, sample_every=20, equilibrate=400)
    frames = []
    for (name, _, _), path in paths.items():
        if name == "ethanol":
            frames += list(AtomsDataset(path))
    # Parts end at trajectory boundaries at or past their fraction: 4 / 1 / 1 trajectories of 100 frames.
    scores = fit_painn_and_score(frames, (0.66, 0.16, 0.18), label="xTB ethanol", n_features=64, n_interactions=3,
                                 n_rbf=20, epochs=60, batch_size=16, lr=1e-3, patience=20)
    print(f"ethanol energy MAE per molecule: {1000 * scores['energy_mae'] * 9:.1f} meV (9 atoms)")
    assert scores["forces_mae"] < 0.2 * scores["forces_mean_abs"]


@pytest.mark.slow
def test_painn_on_xtb_azobenzene_held_out_errors(tmp_path):
    """PaiNN (64 features, 3 interactions, 5 Å) on GFN2-xTB trans-azobenzene MD at 300 and 600 K, two
    trajectories per temperature of 50 frames; two train, one validates, one tests (by trajectory)."""
    from learners.potentials import AtomsDataset

    paths = _write_dataset(tmp_path, (300.0, 600.0), (0, 1), steps=1000, sample_every=20, equilibrate=200,
                           names=("azobenzene",))
    frames = [frame for path in paths.values() for frame in AtomsDataset(path)]
    assert frames[0].get_chemical_formula() == "C12H10N2"
    scores = fit_painn_and_score(frames, (0.5, 0.25, 0.25), label="xTB azobenzene", n_features=64, n_interactions=3,
                                 n_rbf=20, epochs=60, batch_size=8, lr=1e-3, patience=20)
    assert scores["forces_mae"] < 0.25 * scores["forces_mean_abs"]
