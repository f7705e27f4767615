"""DScribe descriptors: values equal direct DScribe calls; analytic cases; the MBTR memory guard."""

from __future__ import annotations

import warnings

import ase
from ase.build import bulk
import dscribe.descriptors as ds
import numpy as np
import pytest
from ase import Atoms
from dscribe.utils.geometry import get_extended_system

from reprs import errors
from reprs.featurizers import ACSF, LMBTR, MBTR, SOAP, CoulombMatrix, EwaldSumMatrix, SineMatrix, get_featurizer
from reprs.featurizers.atomistic import mbtr_memory_estimate
from tests.reprs.featurizer_inputs import bundled_structure, methanol, quartz, quartz_atoms, silicon, water

K2 = dict(
    geometry={"function": "inverse_distance"},
    grid={"min": 0.0, "max": 1.2, "n": 30, "sigma": 0.05},
    weighting={"function": "exp", "scale": 0.8, "threshold": 1e-3},
)
K3 = dict(
    geometry={"function": "cosine"},
    grid={"min": -1.0, "max": 1.0, "n": 30, "sigma": 0.05},
    weighting={"function": "exp", "scale": 1.0, "threshold": 1e-3},
)
ACSF_PARAMS = dict(g2_params=[[1.0, 0.0], [0.5, 1.5]], g3_params=[1.0], g4_params=[[0.5, 1.0, 1.0]], g5_params=[[0.5, 2.0, -1.0]])

# (ours, direct DScribe object, inputs): the same parameters on both sides
PAIRS = [
    (lambda: SOAP(species=["Si", "O"], r_cut=4.5, n_max=3, l_max=3, periodic=True),
     lambda: ds.SOAP(species=["Si", "O"], r_cut=4.5, n_max=3, l_max=3, periodic=True), "crystals"),
    (lambda: SOAP(species=["Si", "O"], r_cut=4.5, n_max=3, l_max=3, periodic=True, average="outer"),
     lambda: ds.SOAP(species=["Si", "O"], r_cut=4.5, n_max=3, l_max=3, periodic=True, average="outer"), "crystals"),
    (lambda: SOAP(species=["H", "C", "O"], r_cut=4.0, n_max=3, l_max=2, rbf="polynomial", average="inner"),
     lambda: ds.SOAP(species=["H", "C", "O"], r_cut=4.0, n_max=3, l_max=2, rbf="polynomial", average="inner"), "molecules"),
    (lambda: ACSF(species=["H", "C", "O"], r_cut=5.0, **ACSF_PARAMS),
     lambda: ds.ACSF(species=["H", "C", "O"], r_cut=5.0, **ACSF_PARAMS), "molecules"),
    (lambda: ACSF(species=["Si", "O"], r_cut=4.0, periodic=True, **ACSF_PARAMS),
     lambda: ds.ACSF(species=["Si", "O"], r_cut=4.0, periodic=True, **ACSF_PARAMS), "crystals"),
    (lambda: MBTR(species=["H", "C", "O"], normalization="l2", **K2),
     lambda: ds.MBTR(species=["H", "C", "O"], normalization="l2", **K2), "molecules"),
    (lambda: MBTR(species=["Si", "O"], periodic=True, **K3),
     lambda: ds.MBTR(species=["Si", "O"], periodic=True, **K3), "crystals"),
    (lambda: MBTR(species=["Si", "O"], geometry={"function": "atomic_number"}, grid={"min": 0, "max": 16, "n": 20, "sigma": 0.2}),
     lambda: ds.MBTR(species=["Si", "O"], geometry={"function": "atomic_number"}, grid={"min": 0, "max": 16, "n": 20, "sigma": 0.2}), "crystals"),
    (lambda: LMBTR(species=["H", "C", "O"], **K2), lambda: ds.LMBTR(species=["H", "C", "O"], **K2), "molecules"),
    (lambda: LMBTR(species=["Si", "O"], periodic=True, **K3), lambda: ds.LMBTR(species=["Si", "O"], periodic=True, **K3), "crystals"),
    (lambda: CoulombMatrix(n_atoms_max=6), lambda: ds.CoulombMatrix(n_atoms_max=6), "molecules"),
    (lambda: CoulombMatrix(n_atoms_max=6, permutation="eigenspectrum"),
     lambda: ds.CoulombMatrix(n_atoms_max=6, permutation="eigenspectrum"), "molecules"),
    (lambda: SineMatrix(n_atoms_max=9), lambda: ds.SineMatrix(n_atoms_max=9), "crystals"),
    (lambda: EwaldSumMatrix(n_atoms_max=9, accuracy=1e-6),
     lambda: ds.EwaldSumMatrix(n_atoms_max=9), "crystals"),
]
INPUTS = {
    "molecules": lambda: [water(), methanol(rattle=0.03, seed=1)],
    "crystals": lambda: [quartz_atoms(), quartz_atoms(rattle=0.05, seed=2), silicon()],
}


def _direct(descriptor, atoms):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if isinstance(descriptor, ds.EwaldSumMatrix):
            return descriptor.create(atoms, accuracy=1e-6)
        return descriptor.create(atoms)


@pytest.mark.parametrize("index", range(len(PAIRS)))
def test_values_equal_direct_dscribe_calls(index):
    make_ours, make_theirs, kind = PAIRS[index]
    ours, theirs = make_ours(), make_theirs()
    assert ours.n_features == theirs.get_number_of_features()
    for atoms in INPUTS[kind]():
        expected = _direct(theirs, atoms)
        got = ours.featurize(atoms)
        assert got.shape == expected.shape
        # periodic descriptors see quartz's atoms that lie just outside the cell wrapped into it
        # (test_periodic_descriptors_of_atoms_outside_the_cell): equal to rounding, not bit for bit
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-10)


def test_every_dscribe_descriptor_works_with_installed_ase():
    # DScribe 2.1.2's sine and Ewald matrices build an ase.Atoms with momenta and velocities,
    # which ASE >= 3.27 refuses (dscribe issue 165): pyproject pins ase<3.27. If this test fails
    # after an upgrade, the pin is still needed.
    crystal, molecule = quartz_atoms(), water()
    names = {
        "soap:species=Si,O,r_cut=4.0,n_max=2,l_max=2,periodic=true,average=inner": crystal,
        "acsf:species=Si,O,r_cut=4.0,periodic=true,g2_params=[[1,0]]": crystal,
        "mbtr:species=Si,O,periodic=true,geometry.function=distance,grid.min=0,grid.max=6,grid.n=20,"
        "grid.sigma=0.1,weighting.function=exp,weighting.scale=1.0,weighting.threshold=1e-3": crystal,
        "lmbtr:species=Si,O,periodic=true,geometry.function=distance,grid.min=0,grid.max=6,grid.n=20,"
        "grid.sigma=0.1,weighting.function=exp,weighting.scale=1.0,weighting.threshold=1e-3": crystal,
        "coulomb_matrix:n_atoms_max=3": molecule,
        "sine_matrix:n_atoms_max=9": crystal,
        "ewald_sum_matrix:n_atoms_max=9": crystal,
    }
    for spec, atoms in names.items():
        out = get_featurizer(spec).featurize(atoms)
        assert np.isfinite(out).all() and np.abs(out).sum() > 0, f"{spec} on ASE {ase.__version__}"


def test_pymatgen_structure_gives_the_same_values_as_ase_atoms():
    structure = quartz()
    atoms = structure.to_ase_atoms()
    for featurizer in (
        SOAP(species=["Si", "O"], r_cut=4.0, n_max=2, l_max=2, periodic=True),
        SineMatrix(n_atoms_max=9),
        MBTR(species=["Si", "O"], periodic=True, **K2),
    ):
        np.testing.assert_allclose(featurizer.featurize(structure), featurizer.featurize(atoms), rtol=1e-12, atol=1e-12)


def test_coulomb_and_sine_matrices_analytic():
    # H2 at d = 0.74 A: Rupp et al. (2012) Eq. 1 gives 0.5 Z^2.4 = 0.5 on the diagonal and
    # Z_i Z_j / d off it (DScribe keeps distances in Angstrom).
    d = 0.74
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, d]])
    matrix = CoulombMatrix(n_atoms_max=2, permutation="none").featurize(h2).reshape(2, 2)
    np.testing.assert_allclose(matrix, [[0.5, 1 / d], [1 / d, 0.5]], rtol=1e-12)
    # Sine matrix diagonal is also 0.5 Z^2.4 (Faber et al. 2015)
    sine = SineMatrix(n_atoms_max=9, permutation="none").featurize(quartz_atoms()).reshape(9, 9)
    z = quartz_atoms().numbers
    np.testing.assert_allclose(np.diag(sine), 0.5 * z**2.4, rtol=1e-12)
    # padded rows and columns are zero
    padded = CoulombMatrix(n_atoms_max=4, permutation="none").featurize(h2).reshape(4, 4)
    assert not padded[2:].any() and not padded[:, 2:].any()


def test_coulomb_and_sine_matrices_equal_matminer_up_to_its_bohr_distances():
    """matminer's CoulombMatrix and SineCoulombMatrix measure distances in Bohr: off the diagonal they are
    ours divided by its ``ANG_TO_BOHR`` (1/0.529; taken from matminer, whose SciPy "Angstrom star" makes it
    1.5e-5 smaller than ``1 / ase.units.Bohr``), on it equal (the convention both docstrings state). A
    skewed mixed-species cell with atoms outside it, and the same atoms as a molecule."""
    from matminer.featurizers.structure import CoulombMatrix as MatminerCM
    from matminer.featurizers.structure import SineCoulombMatrix
    from matminer.featurizers.structure.matrix import ANG_TO_BOHR
    from pymatgen.core import Lattice, Molecule, Structure

    rng = np.random.default_rng(3)
    lattice = Lattice.from_parameters(4.1, 5.3, 6.2, 71.0, 104.0, 117.0)
    structure = Structure(lattice, ["Fe", "O", "H", "Si", "O"], rng.uniform(-0.8, 1.8, (5, 3)))
    scale = np.where(np.eye(5, dtype=bool), 1.0, 1.0 / ANG_TO_BOHR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matminer's deprecation chatter
        theirs_sine = SineCoulombMatrix(diag_elems=True, flatten=False).featurize(structure)[0]
        molecule = Molecule(structure.species, structure.cart_coords)
        theirs_cm = MatminerCM(diag_elems=True, flatten=False).featurize(molecule)[0]
    ours_sine = SineMatrix(n_atoms_max=5, permutation="none").featurize(structure).reshape(5, 5)
    np.testing.assert_allclose(ours_sine * scale, theirs_sine, rtol=1e-9)
    atoms = Atoms(numbers=[site.specie.Z for site in structure], positions=structure.cart_coords)
    ours_cm = CoulombMatrix(n_atoms_max=5, permutation="none").featurize(atoms).reshape(5, 5)
    np.testing.assert_allclose(ours_cm * scale, theirs_cm, rtol=1e-9)


def test_ewald_sum_matrix_sums_to_pymatgen_ewald_energy():
    """The upper triangle and diagonal of the Ewald sum matrix is the Ewald energy of charges Z in a
    neutralising background in e^2/Å (the docstring's statement): pymatgen's EwaldSummation in eV
    divided by Hartree * Bohr, on a skewed cell of four mixed species."""
    from ase.units import Bohr, Hartree
    from pymatgen.analysis.ewald import EwaldSummation
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(0)
    structure = Structure(Lattice.from_parameters(4.6, 5.9, 5.2, 81.0, 97.0, 106.0), ["H", "Li", "C", "He"],
                          rng.uniform(0, 1, (4, 3)))
    matrix = EwaldSumMatrix(n_atoms_max=4, permutation="none", accuracy=1e-7).featurize(structure).reshape(4, 4)
    charged = structure.copy()
    charged.add_oxidation_state_by_site([float(site.specie.Z) for site in structure])
    energy = EwaldSummation(charged, acc_factor=12.0).total_energy  # eV
    assert np.triu(matrix).sum() == pytest.approx(energy / (Hartree * Bohr), rel=1e-7)


def test_acsf_g1_is_the_sum_of_cutoff_functions():
    # Behler (2011) Eq. 5: G1_i = sum_j f_c(R_ij), f_c(R) = 0.5 (cos(pi R / R_c) + 1)
    r_cut = 3.0
    atoms = water()
    acsf = ACSF(species=["H", "O"], r_cut=r_cut)
    out = acsf.featurize(atoms)
    labels = acsf.feature_labels()
    distances = atoms.get_all_distances()
    fc = np.where(distances < r_cut, 0.5 * (np.cos(np.pi * distances / r_cut) + 1), 0.0)
    np.fill_diagonal(fc, 0.0)
    for neighbour in ("H", "O"):
        mask = np.array(atoms.get_chemical_symbols()) == neighbour
        np.testing.assert_allclose(out[:, labels.index(f"G1_{neighbour}")], fc[:, mask].sum(axis=1), rtol=1e-10)


def test_a_parameter_array_changed_in_its_ninth_digit_rebuilds_the_descriptor():
    # The memo of the DScribe object was keyed by repr(get_params()), which prints arrays to 8 digits:
    # eta changed by 1e-9 kept the old descriptor, and its features. Fails on the old code (checked).
    atoms = water()
    g2 = np.array([[1.0, 0.5], [4.0, 1.2]])
    acsf = ACSF(species=["H", "O"], r_cut=3.0, g2_params=g2)
    before = acsf.featurize(atoms)
    changed = g2 + [[0.0, 0.0], [3e-9, 0.0]]           # prints as g2 does: array([[1. , 0.5], [4. , 1.2]])
    acsf.g2_params = changed
    after = acsf.featurize(atoms)
    fresh = ACSF(species=["H", "O"], r_cut=3.0, g2_params=changed).featurize(atoms)
    assert np.array_equal(after, fresh) and not np.array_equal(after, before)


def test_soap_sites_of_diamond_are_equivalent_and_averages_agree():
    atoms = silicon()  # all 8 atoms of diamond Si are symmetry-equivalent
    per_site = SOAP(species=["Si"], r_cut=4.0, n_max=3, l_max=3, periodic=True).featurize(atoms)
    np.testing.assert_allclose(per_site, np.broadcast_to(per_site[0], per_site.shape), rtol=1e-8, atol=1e-10)
    outer = SOAP(species=["Si"], r_cut=4.0, n_max=3, l_max=3, periodic=True, average="outer").featurize(atoms)
    np.testing.assert_allclose(outer, per_site.mean(axis=0), rtol=1e-8, atol=1e-12)
    # a periodic crystal and its supercell are the same material
    inner = SOAP(species=["Si"], r_cut=4.0, n_max=3, l_max=3, periodic=True, average="inner")
    np.testing.assert_allclose(inner.featurize(atoms.repeat(2)), inner.featurize(atoms), rtol=1e-8, atol=1e-10)


def test_feature_labels_follow_dscribe_locations():
    soap = SOAP(species=["Si", "O"], r_cut=4.0, n_max=2, l_max=2)
    labels = np.array(soap.feature_labels())
    block = soap._descriptor().get_location(("O", "Si"))
    assert all(label.startswith("soap_O-Si_") for label in labels[block])
    mbtr = MBTR(species=["H", "O"], **K2)
    labels = np.array(mbtr.feature_labels())
    assert all(label.startswith("mbtr_H-O_") for label in labels[mbtr._descriptor().get_location(("H", "O"))])


def test_mbtr_memory_guard_refuses_large_cells_with_a_clear_message():
    mbtr = MBTR(species=["Si"], periodic=True, max_memory_gb=0.05, **K2)
    small = silicon()
    assert mbtr.featurize(small).shape == (mbtr.n_features,)
    with pytest.raises(errors.ResourceLimitError, match=r"max_memory_gb=0.05.*raise max_memory_gb"):
        mbtr.featurize(small.repeat(3))
    with pytest.raises(errors.InputError, match="max_memory_gb"):
        MBTR(species=["Si"], max_memory_gb=0, **K2)


@pytest.mark.parametrize("make", [silicon, quartz_atoms, lambda: bundled_structure("LiFePO4").to_ase_atoms()])
@pytest.mark.parametrize("weighting", [K2["weighting"], K3["weighting"], {"function": "inverse_square", "r_cut": 6.0}])
def test_memory_estimate_bounds_dscribe_extended_system(make, weighting):
    atoms = make()
    for k in (2, 3):
        _, n_ext = mbtr_memory_estimate(atoms, k, weighting, periodic=True)
        from reprs.featurizers.atomistic import _weighting_cutoff

        actual = get_extended_system(atoms, _weighting_cutoff(k, weighting), atoms.get_positions(), return_cell_indices=True)[0]
        assert len(actual) <= n_ext


def test_bad_inputs():
    with pytest.raises(errors.InputError, match="disordered"):
        SOAP(species=["Li", "Ge", "P", "S"], periodic=True).featurize(bundled_structure("Li10GeP2S12"))
    with pytest.raises(errors.MissingCellError):
        SOAP(species=["H", "O"], periodic=True).featurize(water())
    with pytest.raises(errors.InputError, match="species"):
        SOAP(species="Si")
    with pytest.raises(errors.InputError, match="not defined"):
        SOAP(species=["Si"]).featurize(water())
    with pytest.raises(errors.InputError, match="seed"):
        CoulombMatrix(n_atoms_max=4, permutation="random", sigma=0.1)
    with pytest.raises(errors.InputError, match="only with permutation='random'"):
        CoulombMatrix(n_atoms_max=4, seed=3)  # was accepted and ignored
    with pytest.raises(errors.InputError):
        CoulombMatrix(n_atoms_max=2).featurize(methanol())
    with pytest.raises(errors.InputError, match="invalid MBTR parameters"):
        MBTR(species=["H"], geometry={"function": "nonsense"}, grid=K2["grid"])


def test_random_permutation_is_reproducible():
    cm = CoulombMatrix(n_atoms_max=6, permutation="random", sigma=0.5, seed=3)
    atoms = methanol()
    assert np.array_equal(cm.featurize(atoms), cm.featurize(atoms))
    other = CoulombMatrix(n_atoms_max=6, permutation="random", sigma=0.5, seed=4)
    sorted_values = np.sort(cm.featurize(atoms))
    np.testing.assert_allclose(np.sort(other.featurize(atoms)), sorted_values)  # same entries, maybe reordered


@pytest.mark.parametrize(
    "make",
    [
        lambda: (SOAP(species=["Na", "Cl"], r_cut=5.0, n_max=3, l_max=3, periodic=True),
                 ds.SOAP(species=["Na", "Cl"], r_cut=5.0, n_max=3, l_max=3, periodic=True)),
        lambda: (ACSF(species=["Na", "Cl"], r_cut=5.0, periodic=True, **ACSF_PARAMS),
                 ds.ACSF(species=["Na", "Cl"], r_cut=5.0, periodic=True, **ACSF_PARAMS)),
        lambda: (MBTR(species=["Na", "Cl"], periodic=True, **K2), ds.MBTR(species=["Na", "Cl"], periodic=True, **K2)),
        lambda: (LMBTR(species=["Na", "Cl"], periodic=True, **K2), ds.LMBTR(species=["Na", "Cl"], periodic=True, **K2)),
    ],
    ids=["soap", "acsf", "mbtr", "lmbtr"],
)
def test_periodic_descriptors_of_atoms_outside_the_cell(make):
    # Unwrapped positions (as MD keeps them) describe the same crystal. DScribe's periodic images
    # assume atoms in the cell: before the fix SOAP differed by 99 % of its largest value, ACSF
    # by 99 %, MBTR by 30 %, LMBTR by 92 % from DScribe's own values for the wrapped copy.
    ours, theirs = make()
    crystal = bulk("NaCl", "rocksalt", a=5.6, cubic=True)
    crystal.rattle(0.1, seed=2)
    shifted = crystal.copy()
    shifted.positions[1] += 2 * crystal.cell[0] - crystal.cell[2]
    shifted.positions[5] -= 3 * crystal.cell[1]
    given = shifted.positions.copy()
    np.testing.assert_allclose(ours.featurize(shifted), theirs.create(crystal), rtol=1e-8, atol=1e-10)
    assert np.array_equal(shifted.positions, given)  # the caller's atoms are not wrapped in place


def test_periodic_false_on_a_periodic_structure_warns_that_it_describes_a_cluster():
    """periodic=False (DScribe's default, kept) on bulk Si describes one cell in vacuum: its inner-averaged
    SOAP differs from the periodic one by most of its largest value. That happened without a word (checked
    on the old code: no warning); a molecule without pbc stays silent."""
    si = bulk("Si", cubic=True)
    cluster = SOAP(species=["Si"], r_cut=4.0, n_max=3, l_max=3, average="inner")
    with pytest.warns(UserWarning, match=r"periodic=False\) describes this structure as an isolated cluster"):
        as_cluster = cluster.featurize(si)
    periodic = SOAP(species=["Si"], r_cut=4.0, n_max=3, l_max=3, average="inner", periodic=True).featurize(si)
    assert np.abs(as_cluster - periodic).max() > 0.1 * np.abs(periodic).max()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cluster.featurize(Atoms("Si2", positions=[[0, 0, 0], [0, 0, 2.3]]))
