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

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.units import Bohr, Hartree

from reprs.atoms import as_atoms
from reprs.fileio import atomic_open, atomic_write

from .errors import SimsInputError
from .surface_hopping import AMU, Adiabatic, DiabaticModel

__all__ = ["sa_casscf_labels", "casscf_frames", "label_dataset", "CASSCFModel"]


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
                     conv_tol: float = 1e-10, use_etfs: bool = False,
                     average_states: int | None = None) -> dict[str, Any]:
    """SA-CASSCF energies, gradients and couplings of ``n_states`` singlet states of a molecule.

    Parameters
    ----------
    atoms : ase.Atoms
        A molecule (no periodic cell), positions in Å.
    n_states : int
        States labelled (>= 2), the lowest singlets.
    average_states : int, optional
        States averaged with equal weights in the orbital optimisation (>= ``n_states``; default
        ``n_states``). Averaging over every singlet of a CAS(2,2) space (3) makes the averaged
        energy a trace over the whole space, independent of how the states mix. For ethylene this
        removes an artefact of SA-2 near planarity: at the SA-2-CASSCF(2,2)/3-21G minimum a 5 degree
        torsion raises S0 by 0.198 eV under SA-2, by 0.022 eV under SA-3, against 0.016 eV for RHF
        and 0.014 eV for state-specific CASSCF(2,2) (measured here, 2026-12-06; docs/surface_hopping.md).
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
        pyscf missing, a periodic structure, ``n_states < 2``, ``average_states < n_states``, or an
        SCF/CASSCF that does not converge.
    """
    if isinstance(n_states, bool) or not isinstance(n_states, int) or n_states < 2:
        raise SimsInputError(f"n_states must be an integer >= 2, got {n_states!r}")
    averaged = n_states if average_states is None else average_states
    if isinstance(averaged, bool) or not isinstance(averaged, int) or averaged < n_states:
        raise SimsInputError(f"average_states must be an integer >= n_states ({n_states}), got {average_states!r}")
    mol, mc = _casscf(atoms, averaged, ncas, nelecas, basis, conv_tol)
    n_atoms = mol.natm
    energies = np.asarray(mc.e_states, dtype=np.float64)[:n_states]
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
    return [_frame(atoms, sa_casscf_labels(atoms, **kwargs)) for atoms in structures]


def _frame(atoms: Atoms, labels: dict[str, Any]) -> Atoms:
    frame = Atoms(numbers=atoms.numbers, positions=atoms.positions)
    frame.info["energies"] = labels["energies"]
    frame.arrays["gradients"] = labels["gradients"]
    frame.arrays["coupling_numerators"] = labels["coupling_numerators"]
    return frame


def label_dataset(structures: Sequence[Atoms], folder: str | os.PathLike, *, chunk_size: int = 20,
                  missing: str = "label", progress: bool | None = None, **kwargs: Any) -> list[Atoms]:
    """Label many molecules with :func:`sa_casscf_labels` in resumable chunks; return the labelled frames.

    Chunk ``c`` (structures ``c * chunk_size`` onwards) is written to ``folder/chunk_XXXXX.npz``
    atomically once all its structures are done (positions Å, energies eV, gradients eV/Å, coupling
    numerators eV/Å, and a ``converged`` flag per structure), so a crash loses at most one chunk and
    a rerun labels only the missing chunks. ``folder/manifest.json`` keys the run by the structures
    and the settings; a folder of another run is refused.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        Molecules (same atoms, same order), positions in Å.
    folder : path
    chunk_size : int
    missing : {"label", "skip"}
        What to do with chunks not yet on disk: label them, or leave them out of the result (read
        what another, still running, labelling process has written so far).
    progress : bool, optional
        A progress bar over structures on stderr (None: only on a terminal).
    **kwargs
        For :func:`sa_casscf_labels` (``n_states``, ``basis``, ...).

    Returns
    -------
    list of ase.Atoms
        The structures whose SCF and CASSCF converged, in order, as :func:`casscf_frames` makes them,
        each with ``info["label_index"]``, its index in ``structures`` (the others are left out; their
        count is ``len(structures) - len(result)``).

    Raises
    ------
    SimsInputError
        ``chunk_size < 1``, an unknown ``missing``, structures of different atoms, a folder holding another run.
    """
    from tqdm.auto import tqdm

    from reprs.config import content_hash

    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise SimsInputError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if missing not in ("label", "skip"):
        raise SimsInputError(f"missing must be 'label' or 'skip', got {missing!r}")
    structures = [as_atoms(a) for a in structures]
    if not structures:
        return []
    numbers = structures[0].numbers
    if any(len(a) != len(numbers) or (a.numbers != numbers).any() for a in structures):
        raise SimsInputError("label_dataset labels structures of one molecule: every structure needs the same "
                             "atoms in the same order")
    positions = np.stack([a.positions for a in structures])
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SimsInputError(f"{str(folder)!r} is a file; label_dataset writes into a folder")
    key = content_hash({"numbers": numbers.tolist(), "positions": positions.round(10).tolist(),
                        "chunk_size": chunk_size, "settings": kwargs})
    manifest = folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("hash") != key:
        raise SimsInputError(f"{str(folder)!r} holds labels of other structures or settings; use another folder "
                             "or delete it")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(manifest, json.dumps({"hash": key, "n_structures": len(structures), "chunk_size": chunk_size,
                                       "settings": kwargs}, default=str, indent=1))
    n_chunks = math.ceil(len(structures) / chunk_size)
    show = progress if progress is not None else sys.stderr.isatty()
    bar = tqdm(total=len(structures), disable=not show, desc="SA-CASSCF labels", leave=False)
    frames = []
    for c in range(n_chunks):
        path = folder / f"chunk_{c:05d}.npz"
        members = range(c * chunk_size, min((c + 1) * chunk_size, len(structures)))
        if not path.exists() and missing == "skip":
            continue
        if not path.exists():
            table: dict[str, list] = {"converged": [], "energies": [], "gradients": [], "coupling_numerators": []}
            for i in members:
                try:
                    labels = sa_casscf_labels(structures[i], **kwargs)
                    ok = True
                except SimsInputError as err:
                    if "converge" not in str(err):
                        raise
                    labels, ok = {k: np.nan for k in table}, False
                table["converged"].append(ok)
                for name in ("energies", "gradients", "coupling_numerators"):
                    table[name].append(labels[name])
                bar.update(1)
            shapes = {name: np.shape(next((v for v in table[name] if np.ndim(v)), np.nan)) for name in table}
            arrays = {name: np.stack([np.broadcast_to(v, shapes[name]) for v in values]).astype(
                bool if name == "converged" else np.float64) for name, values in table.items()}
            with atomic_open(path) as handle:
                np.savez(handle, positions=positions[members.start:members.stop], **arrays)
        else:
            bar.update(len(members))
        with np.load(path) as data:
            for k, i in enumerate(members):
                if data["converged"][k]:
                    frame = _frame(structures[i], {name: data[name][k] for name in
                                                   ("energies", "gradients", "coupling_numerators")})
                    frame.info["label_index"] = i
                    frames.append(frame)
    bar.close()
    return frames


class CASSCFModel(DiabaticModel):
    """SA-CASSCF adiabatic states of a molecule behind the :class:`~sims.surface_hopping.DiabaticModel`
    interface (atomic units): coordinates ``(B, 3 N)`` bohr, energies hartree, gradients hartree/bohr,
    couplings 1/bohr, one :func:`sa_casscf_labels` call per geometry.

    It has no diabatic matrix: :meth:`adiabatic` returns the quantum-chemistry results directly
    (``vectors`` are identities). That serves :func:`sims.hopping_ensemble.normal_modes` (the Hessian
    of a state) and :func:`sims.hopping_ensemble.normal_mode_sample` (Wigner initial conditions), but
    not :class:`~sims.surface_hopping.FSSH`, which needs the couplings' phases continuous from step to
    step (wavefunction-overlap tracking, not implemented): :meth:`adiabatic` refuses ``reference``.

    Parameters
    ----------
    numbers : sequence of int
        Atomic numbers.
    masses : sequence of float, optional
        u; default ASE's standard atomic masses.
    **kwargs
        For :func:`sa_casscf_labels` (``n_states``, ``basis``, ...).
    """

    def __init__(self, numbers: Sequence[int], *, masses: Sequence[float] | None = None, **kwargs: Any) -> None:
        from ase.data import atomic_masses

        self.numbers = tuple(int(z) for z in numbers)
        self.masses = [float(atomic_masses[z]) for z in self.numbers] if masses is None else [float(m) for m in masses]
        if len(self.masses) != len(self.numbers):
            raise SimsInputError(f"masses has {len(self.masses)} entries for {len(self.numbers)} atoms")
        self.kwargs = kwargs
        self.n_states = int(kwargs.get("n_states", 2))
        self.ndim = 3 * len(self.numbers)
        self.mass = [m * AMU for m in self.masses for _ in range(3)]

    def diabatic(self, x: torch.Tensor) -> torch.Tensor:
        raise SimsInputError("CASSCFModel has no diabatic matrix; use adiabatic()")

    def adiabatic(self, x: torch.Tensor, *, reference: torch.Tensor | None = None,
                  min_gap: float = 1e-6) -> Adiabatic:
        """Energies (B, n), gradients (B, D, n), couplings (B, D, n, n) at ``x`` (B, D) bohr, atomic units.

        ``min_gap`` is accepted for the interface; CASSCF couplings are returned as computed.
        """
        if reference is not None:
            raise SimsInputError("CASSCFModel does not track the phases of its states from step to step; it "
                                 "gives Hessians and initial conditions, not FSSH trajectories")
        x = torch.as_tensor(x)
        b, n, n_atoms = x.shape[0], self.n_states, len(self.numbers)
        pos = x.detach().cpu().double().numpy().reshape(b, n_atoms, 3) * Bohr
        out = [sa_casscf_labels(Atoms(numbers=self.numbers, positions=p), **self.kwargs) for p in pos]
        force_unit = Hartree / Bohr
        energies = np.stack([o["energies"] for o in out]) / Hartree
        gradients = np.stack([o["gradients"] for o in out]).transpose(0, 1, 3, 2).reshape(b, -1, n) / force_unit
        couplings = np.stack([o["couplings"] for o in out]).transpose(0, 1, 4, 2, 3).reshape(b, -1, n, n) * Bohr
        like = dict(dtype=x.dtype, device=x.device)
        eye = torch.eye(n, **like).expand(b, n, n).clone()
        return Adiabatic(torch.as_tensor(energies, **like), torch.as_tensor(gradients, **like),
                         torch.as_tensor(couplings, **like), eye)
