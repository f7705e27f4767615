"""Pretrained universal potentials as teachers: CHGNet and SevenNet on the superionic conductor Li10GeP2S12.

CHGNet 0.3.0: Deng et al., Nat. Mach. Intell. 5, 1031 (2023), weights from the ``chgnet`` wheel.
SevenNet-0: Park et al., J. Chem. Theory Comput. 20, 4857 (2024), weights from the ``sevenn`` wheel.
LGPS: Kamaya et al., Nat. Mater. 10, 682 (2011), the disordered cell bundled with pymatgen.
References: each package's own calculator called directly on the same coordinates, and
pymatgen's disordered structure (sites, composition). The slow test writes the dataset of
``docs/datasets.md`` and reports held-out errors of a small PaiNN trained on it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.io import write
from pymatgen.io.ase import AseAtomsAdaptor

from learners.potentials.teachers import (CHGNET_CALCULATOR, SEVENNET_CALCULATOR, chgnet_calculator, lgps_cell,
                                          lgps_disordered, sevennet_calculator, teacher_config)
from sims.generate import generate, read_frames
from tests.learners.potential_fits import fit_painn_and_score
from sims.md import energy_and_forces
from sims.potentials import CalculatorPotential

F64 = torch.float64
#: teacher -> (its package, our calculator factory, its import path for configs)
TEACHERS = {"chgnet": ("chgnet", chgnet_calculator, CHGNET_CALCULATOR),
            "sevennet": ("sevenn", sevennet_calculator, SEVENNET_CALCULATOR)}


@pytest.fixture(scope="module", params=sorted(TEACHERS))
def teacher(request):
    """(name, the package's own calculator as reference) for each installed teacher."""
    if request.param == "chgnet":
        pytest.importorskip("chgnet")
        from chgnet.model.dynamics import CHGNetCalculator

        return request.param, CHGNetCalculator(use_device="cpu")
    pytest.importorskip("sevenn")
    from sevenn.calculator import SevenNetCalculator

    return request.param, SevenNetCalculator("7net-0", device="cpu")


def _direct_results(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces()


def test_lgps_cell_is_ordered_li10gep2s12_on_the_experimental_sites():
    disordered = lgps_disordered()
    atoms = lgps_cell(seed=0)
    assert len(atoms) == 50 and atoms.get_chemical_formula(mode="metal") == "Li20Ge2P4S24"
    structure = AseAtomsAdaptor.get_structure(atoms)
    assert structure.is_ordered and not disordered.is_ordered
    # Rounded experimental composition, and charge neutral with Li+, Ge4+, P5+, S2-.
    assert {el.symbol: round(x) for el, x in disordered.composition.items()} == {"Li": 20, "Ge": 2, "P": 4, "S": 24}
    charges = {"Li": 1, "Ge": 4, "P": 5, "S": -2}
    assert sum(charges[s] for s in atoms.get_chemical_symbols()) == 0
    # Each atom sits on a site of the disordered cell that may hold its element.
    frac = atoms.get_scaled_positions()
    for symbol, f in zip(atoms.get_chemical_symbols(), frac):
        delta = (disordered.frac_coords - f + 0.5) % 1.0 - 0.5
        site = int(np.argmin(np.abs(delta).sum(axis=1)))
        assert np.abs(delta[site]).max() < 1e-6 and symbol in {el.symbol for el in disordered[site].species}
    np.testing.assert_allclose(atoms.cell.cellpar(), [*disordered.lattice.abc, *disordered.lattice.angles])
    distances = atoms.get_all_distances(mic=True)[np.triu_indices(50, 1)]
    assert distances.min() > 1.9  # P-S bonds 1.96 Å; no Li pair on the 1.73 Å split sites
    # Seeded: the same seed repeats the ordering, other seeds give other orderings.
    assert lgps_cell(seed=0) == atoms
    assert any(lgps_cell(seed=s) != atoms for s in (1, 2, 3))


def test_wrapper_equals_teacher_called_directly(teacher):
    name, direct = teacher
    atoms = lgps_cell(seed=1)
    atoms.rattle(0.05, seed=1)
    e, f = energy_and_forces(CalculatorPotential(TEACHERS[name][1]()), atoms, dtype=F64)
    e_ref, f_ref = _direct_results(direct, atoms)
    assert e == pytest.approx(e_ref, abs=1e-5)
    np.testing.assert_allclose(f, f_ref, atol=1e-5)
    assert np.abs(f_ref).max() > 0.1  # rattled: forces far from zero, so the comparison means something


def test_teacher_md_dataset_with_sims(tmp_path, teacher):
    """Two short Langevin runs through ``generate``: frames hold the teacher's energies and forces."""
    name, direct = teacher
    write(tmp_path / "lgps.extxyz", lgps_cell(seed=0))
    hashes = set()
    for temperature in (600.0, 900.0):
        cfg = teacher_config("lgps.extxyz", temperature, 0, f"lgps_{int(temperature)}K.db", steps=4,
                             sample_every=2, equilibrate=2, calculator=TEACHERS[name][2])
        cfg["_base"] = str(tmp_path)
        frames = read_frames(generate(cfg))
        assert [f.info["step"] for f in frames] == [4, 6]
        for frame in frames:
            assert frame.info["T_target"] == temperature and len(frame) == 50
            e_ref, f_ref = _direct_results(direct, frame)
            assert frame.get_potential_energy() == pytest.approx(e_ref, abs=1e-5)
            np.testing.assert_allclose(frame.get_forces(), f_ref, atol=1e-5)
        hashes.add(frames[0].info["config_hash"])
    assert len(hashes) == 2


@pytest.mark.slow
def test_painn_on_chgnet_lgps_held_out_errors(tmp_path):
    """PaiNN (32 features, 2 interactions, 5 Å) on CHGNet LGPS MD at 600/900/1200 K, two trajectories per
    temperature; trained on four trajectories, validated and tested on one each (split by trajectory)."""
    from learners.potentials import AtomsDataset

    pytest.importorskip("chgnet")
    torch.set_num_threads(1)
    write(tmp_path / "lgps.extxyz", lgps_cell(seed=0))
    frames = []
    for temperature in (600.0, 900.0, 1200.0):
        for seed in (0, 1):
            cfg = teacher_config("lgps.extxyz", temperature, seed, f"lgps_{int(temperature)}K_{seed}.db",
                                 steps=300, sample_every=10, equilibrate=50)
            cfg["_base"] = str(tmp_path)
            frames += list(AtomsDataset(generate(cfg)))
    scores = fit_painn_and_score(frames, (0.66, 0.16, 0.18), label="CHGNet LGPS", n_features=32, n_interactions=2,
                                 n_rbf=16, epochs=30, batch_size=8, lr=2e-3, patience=10)
    assert scores["forces_mae"] < 0.3 * scores["forces_mean_abs"]  # measured: 0.15
