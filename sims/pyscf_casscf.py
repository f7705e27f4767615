"""Two-state (or more) excited-state labels from PySCF: SA-CASSCF energies, gradients and couplings.

A quantum-chemistry labeler for :mod:`learners.diabatic`: state-averaged CASSCF (equal weights)
energies of ``n_states`` singlet states, the analytic nuclear gradient of each state
(``mc.nuc_grad_method()``, PySCF's ``grad.sacasscf``) and the nonadiabatic coupling vectors of each
pair (``mc.nac_method()``, PySCF's ``nac.sacasscf``, available since PySCF 2.3). Units eV and Å;
frames carry the same entries as :func:`learners.diabatic.label_frames`.

Conventions: PySCF's ``nac_method().kernel(state=(k, l))`` returns ``<l|d k/dR>`` (1/bohr), so
``d_kl = <k|d l/dR> = kernel(state=(l, k))``; with ``mult_ediff=True`` it is multiplied by
``E_l - E_k``, which is our numerator ``h_kl = (E_l - E_k) d_kl``. ``use_etfs=False`` (default)
keeps the CSF term, so ``d_kl`` is the full derivative coupling (what finite differences of the
wavefunction overlaps give); ``True`` drops it (electron translation factors, Fatehi and
Subotnik, J. Phys. Chem. Lett. 3, 2039 (2012)), the choice for dynamics that conserve momentum.

References
----------
Q. Sun et al., J. Chem. Phys. 153, 024109 (2020) (PySCF); SA-CASSCF gradients and couplings:
S. Snyder Jr. et al., J. Chem. Phys. 146, 174113 (2017); I. Fdez. Galván et al., J. Chem. Theory
Comput. 12, 3636 (2016).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from reprs.atoms import as_atoms

from .errors import SimsInputError

__all__ = ["sa_casscf_labels", "casscf_frames"]


def _casscf(atoms: Atoms, n_states: int, ncas: int, nelecas: int, basis: str, conv_tol: float):
    try:
        from pyscf import gto, mcscf, scf
    except ImportError:
        raise SimsInputError("sa_casscf_labels needs the pyscf package: pip install 'matrep[teachers]'") from None
    atoms = as_atoms(atoms)
    if atoms.pbc.any():
        raise SimsInputError("sa_casscf_labels handles molecules only; the atoms are periodic (set pbc=False)")
    mol = gto.M(atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist())), unit="Angstrom",
                basis=basis, verbose=0)
    mf = scf.RHF(mol)
    mf.conv_tol = conv_tol
    mf.kernel()
    if not mf.converged:
        raise SimsInputError("the RHF reference of SA-CASSCF did not converge")
    mc = mcscf.CASSCF(mf, ncas, nelecas)
    # Singlets only: without the spin penalty the lowest roots of a CAS include triplets (a (2,2)
    # space has the ground state, the triplet and the open-shell singlet), uncoupled to the ground state.
    mc.fix_spin_(ss=0)
    mc = mc.state_average_([1.0 / n_states] * n_states)
    mc.conv_tol = conv_tol
    mc.kernel()
    if not mc.converged:
        raise SimsInputError(f"SA-{n_states}-CASSCF({nelecas},{ncas}) did not converge")
    return mol, mc


def sa_casscf_labels(atoms: Atoms, *, n_states: int = 2, ncas: int = 2, nelecas: int = 2, basis: str = "6-31g",
                     conv_tol: float = 1e-10, use_etfs: bool = False) -> dict[str, Any]:
    """SA-CASSCF energies, gradients and couplings of ``n_states`` singlet states of a molecule.

    Parameters
    ----------
    atoms : ase.Atoms
        A molecule (no periodic cell), positions in Å.
    n_states : int
        States averaged with equal weights (>= 2).
    ncas, nelecas : int
        Active orbitals and electrons (CAS(2,2) for a pi bond's torsion).
    basis : str
        A basis set PySCF ships.
    conv_tol : float
        RHF and CASSCF energy convergence (hartree).
    use_etfs : bool
        Drop the CSF term of the couplings (see the module docstring).

    Returns
    -------
    dict
        ``energies`` (n,) eV, ascending; ``gradients`` (N, n, 3) eV/Å (``dE_k/dR``);
        ``couplings`` (N, n, n, 3) 1/Å (``d_kl = <k|d l/dR>``, antisymmetric);
        ``coupling_numerators`` (N, n, n, 3) eV/Å (``(E_l - E_k) d_kl``, symmetric).

    Raises
    ------
    SimsInputError
        pyscf missing, a periodic structure, ``n_states < 2``, or an SCF/CASSCF that does not converge.
    """
    if isinstance(n_states, bool) or not isinstance(n_states, int) or n_states < 2:
        raise SimsInputError(f"n_states must be an integer >= 2, got {n_states!r}")
    mol, mc = _casscf(atoms, n_states, ncas, nelecas, basis, conv_tol)
    n_atoms = mol.natm
    energies = np.asarray(mc.e_states, dtype=np.float64)
    grad = mc.nuc_grad_method()
    gradients = np.stack([grad.kernel(state=k) for k in range(n_states)], 1)  # hartree/bohr
    nac = mc.nac_method()
    couplings = np.zeros((n_atoms, n_states, n_states, 3))
    for k in range(n_states):
        for lo in range(k + 1, n_states):
            d = nac.kernel(state=(lo, k), use_etfs=use_etfs)  # <k|d l/dR>
            couplings[:, k, lo] = d
            couplings[:, lo, k] = -d
    gap = (energies[None, :] - energies[:, None])[None, :, :, None]  # [k, l] = E_l - E_k
    return {"energies": energies * Hartree, "gradients": gradients * (Hartree / Bohr),
            "couplings": couplings / Bohr, "coupling_numerators": couplings * gap * (Hartree / Bohr)}


def casscf_frames(structures: Sequence[Atoms], **kwargs: Any) -> list[Atoms]:
    """Label molecules with :func:`sa_casscf_labels`; frames as :func:`learners.diabatic.label_frames` makes.

    Each returned copy has ``info["energies"]`` (n,) eV, ``arrays["gradients"]`` (N, n, 3) eV/Å and
    ``arrays["coupling_numerators"]`` (N, n, n, 3) eV/Å.
    """
    frames = []
    for atoms in structures:
        labels = sa_casscf_labels(atoms, **kwargs)
        frame = Atoms(numbers=atoms.numbers, positions=atoms.positions)
        frame.info["energies"] = labels["energies"]
        frame.arrays["gradients"] = labels["gradients"]
        frame.arrays["coupling_numerators"] = labels["coupling_numerators"]
        frames.append(frame)
    return frames
