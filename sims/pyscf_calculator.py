"""Hartree-Fock and Kohn-Sham DFT energies and forces from PySCF, as an ASE calculator.

PySCF (Sun et al., J. Chem. Phys. 153, 024109 (2020)) is the higher level of quantum reference data
beside GFN2-xTB: ``PySCFCalculator(method="B3LYP", basis="6-31G*")`` labels molecules for neural
potentials through :class:`sims.potentials.CalculatorPotential`, and ``matrep simulate`` runs it as
``[potential] kind = "pyscf"``. Molecules only (no periodic cell).

Every call starts its SCF from PySCF's default guess, not from the previous geometry's density, so
that a frame's numbers depend on its positions only and a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Bohr, Hartree

from reprs.atoms import as_atoms

from .errors import SimsInputError

__all__ = ["PySCFCalculator"]


class PySCFCalculator(Calculator):
    """Restricted (closed shell) or unrestricted HF / DFT energy and analytic forces of a molecule.

    Parameters
    ----------
    method : str, default "HF"
        ``"HF"`` for Hartree-Fock, otherwise an exchange-correlation functional PySCF's libxc
        interface knows (``"B3LYP"``, ``"PBE"``, ``"PBE0"``, ``"wB97X"``, ...).
    basis : str, default "6-31G*"
        Any basis set name PySCF ships.
    charge : int, default 0
        Total charge (e).
    spin : int, default 0
        Number of unpaired electrons (2S); 0 gives RHF/RKS, anything else UHF/UKS.
    conv_tol : float, default 1e-10
        SCF energy convergence (hartree); forces are accurate to about its square root.
    grid_level : int, default 3
        PySCF's DFT integration grid level (0-9; ignored for HF).
    max_memory : int, default 2000
        Memory PySCF may use (MB).

    Notes
    -----
    Energies are total electronic energies in eV (not atomisation energies); forces are eV/Å.
    An SCF that does not converge raises :class:`~sims.errors.SimsInputError` rather than
    returning its last iterate.
    """

    implemented_properties = ["energy", "free_energy", "forces"]
    default_parameters = {"method": "HF", "basis": "6-31G*", "charge": 0, "spin": 0, "conv_tol": 1e-10,
                          "grid_level": 3, "max_memory": 2000}

    def __init__(self, **kwargs: Any) -> None:
        try:
            import pyscf  # noqa: F401
        except ImportError:
            raise SimsInputError("PySCFCalculator needs the pyscf package: pip install 'matrep[teachers]' "
                                 "(or pip install pyscf)") from None
        unknown = set(kwargs) - set(self.default_parameters)
        if unknown:
            raise SimsInputError(f"unknown PySCFCalculator parameters {sorted(unknown)}; "
                                 f"known: {sorted(self.default_parameters)}")
        super().__init__(**kwargs)

    def _mean_field(self, atoms) -> Any:
        from pyscf import dft, gto, scf

        p = self.parameters
        atoms = as_atoms(atoms)
        if atoms.pbc.any():
            raise SimsInputError("PySCFCalculator handles molecules only; the atoms are periodic (set pbc=False)")
        try:
            mol = gto.M(atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist())), unit="Angstrom",
                        basis=p["basis"], charge=int(p["charge"]), spin=int(p["spin"]), verbose=0,
                        max_memory=int(p["max_memory"]))
        except (RuntimeError, KeyError, ValueError) as err:
            raise SimsInputError(f"PySCF cannot build the molecule with basis {p['basis']!r}, charge "
                                 f"{p['charge']}, spin {p['spin']}: {err}") from None
        method = str(p["method"])
        if method.upper() == "HF":
            mf = scf.RHF(mol) if mol.spin == 0 else scf.UHF(mol)
        else:
            mf = dft.RKS(mol) if mol.spin == 0 else dft.UKS(mol)
            mf.xc = method
            mf.grids.level = int(p["grid_level"])
        mf.conv_tol = float(p["conv_tol"])
        return mf

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        mf = self._mean_field(self.atoms)
        try:
            energy = mf.kernel()
        except (KeyError, ValueError) as err:  # an XC name libxc does not know
            raise SimsInputError(f"PySCF rejected method {self.parameters['method']!r}: {err}") from None
        if not mf.converged:
            raise SimsInputError(f"the {self.parameters['method']} SCF did not converge for "
                                 f"{self.atoms.get_chemical_formula()}; check the geometry, charge and spin")
        gradient = mf.nuc_grad_method().kernel()  # hartree / bohr
        self.results["energy"] = self.results["free_energy"] = float(energy) * Hartree
        self.results["forces"] = -np.asarray(gradient) * (Hartree / Bohr)
