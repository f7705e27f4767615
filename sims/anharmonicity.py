"""Harmonic force constants and the anharmonicity measure sigma^A of a trajectory.

Knoop, Purcell, Scheffler and Carbogno, "Anharmonicity measure for materials", Phys. Rev. Materials
4, 083809 (2020): with ``u`` the displacements from a reference (equilibrium) structure and ``Phi``
the harmonic force constants there, the harmonic forces are ``F^(2) = -Phi u`` and

    sigma^A(T) = sqrt( sum_{I,a} <(F_Ia - F^(2)_Ia)^2>_T / sum_{I,a} <F_Ia^2>_T ),

the share of the force that a harmonic model leaves out (0 for a harmonic solid; about 0.1-0.2 for
harmonic-like crystals such as Si near room temperature, 0.3-0.5 and above for strongly anharmonic
materials and superionic conductors in the paper's survey). Restricting the sums to the atoms of one
species gives that species' ``sigma^A_s``.

Units: Å, eV, eV/Å, eV/Å^2.

Examples
--------
>>> import torch
>>> from ase.build import bulk
>>> from sims.potentials import LennardJones
>>> pot = LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5)
>>> phi = force_constants(pot, bulk("Ar", "fcc", a=5.26, cubic=True), dtype=torch.float64)
>>> phi.shape
(12, 12)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.data import atomic_numbers

from reprs.atoms import as_atoms, as_frames

from .batch import _takes_batch, batch_energy_and_forces
from .cv import wrapping_cell
from .errors import SimsInputError
from .md import energy_and_forces
from .state import check_unconstrained

__all__ = ["force_constants", "AnharmonicityResult", "anharmonicity"]


def force_constants(potential: torch.nn.Module, atoms: Atoms, *, delta: float = 0.01, batch_size: int = 16,
                    device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> np.ndarray:
    """Harmonic force constants ``Phi[3i + a, 3j + b] = d^2 E / du_ia du_jb`` (eV/Å^2) at ``atoms``.

    Central differences of the forces, as phonopy and ``ase.vibrations`` take them: every Cartesian
    coordinate is moved by ``±delta`` and ``Phi[3i + a, :] = -(F(+) - F(-)) / (2 delta)``; the
    result is symmetrised, ``(Phi + Phi^T) / 2``. No acoustic sum rule is imposed. In a periodic cell
    this is the Gamma-point (supercell) force-constant matrix, each pair summed over images.

    Parameters
    ----------
    potential : torch.nn.Module
        Any potential :func:`sims.energy_and_forces` takes; one that takes a ``batch`` (pair
        potentials, the neural potentials of :mod:`learners.potentials`) evaluates ``batch_size``
        displaced copies per call, others (an ASE calculator through ``CalculatorPotential``) one
        at a time.
    atoms : ase.Atoms
        The reference structure, normally relaxed (its forces near zero).
    delta : float
        Displacement, Å (phonopy's and ASE's default 0.01).
    batch_size : int
        Displaced copies per call of a batch-taking potential.
    device, dtype
        Where and in which precision (default the potential's); float64 is advised (the difference
        of two forces loses digits).

    Returns
    -------
    numpy.ndarray
        ``(3N, 3N)``, eV/Å^2, float64.

    Raises
    ------
    SimsInputError
        ``delta`` not finite and > 0, ``batch_size`` < 1, atoms with ASE constraints (``FixAtoms``, ...:
        every coordinate is displaced, so a fixed atom's rows would enter; ASE's ``Vibrations`` leaves
        FixAtoms atoms out instead).
    """
    atoms = as_atoms(atoms)
    check_unconstrained(atoms, "force_constants (it displaces every coordinate)")
    if not (np.isfinite(delta) and delta > 0):
        raise SimsInputError(f"delta must be a finite displacement > 0 Å, got {delta}")
    if int(batch_size) < 1:
        raise SimsInputError(f"batch_size must be >= 1, got {batch_size}")
    n3 = 3 * len(atoms)
    steps = np.concatenate([np.eye(n3), -np.eye(n3)]) * delta  # rows: +delta on each coordinate, then -delta
    displaced = []
    for step in steps:
        copy = atoms.copy()
        copy.calc = None
        copy.positions = atoms.positions + step.reshape(-1, 3)
        displaced.append(copy)
    if _takes_batch(potential):
        forces = [f for k in range(0, len(displaced), int(batch_size))
                  for f in batch_energy_and_forces(potential, displaced[k:k + int(batch_size)],
                                                   device=device, dtype=dtype)[1]]
    else:
        forces = [energy_and_forces(potential, a, device=device, dtype=dtype)[1] for a in displaced]
    f = np.stack(forces).reshape(2, n3, n3)
    phi = -(f[0] - f[1]) / (2 * delta)
    return 0.5 * (phi + phi.T)


@dataclass(frozen=True)
class AnharmonicityResult:
    """Knoop et al.'s ``sigma^A`` over a trajectory.

    Attributes
    ----------
    sigma : float
        Over every frame and selected atom (the ratio of the summed mean squares).
    per_frame : numpy.ndarray
        ``(T,)``, ``sigma^A`` of each frame alone.
    stderr : float
        Standard error of ``sigma`` from ``n_blocks`` contiguous blocks of frames (block means of
        the two sums, the ratio's error by the delta method); ``nan`` with fewer than 2 blocks.
    n_blocks : int
    """

    sigma: float
    per_frame: np.ndarray
    stderr: float
    n_blocks: int


def anharmonicity(frames: Atoms | Iterable[Atoms], *, reference: Atoms, force_constants: np.ndarray,
                  species: str | None = None, remove_drift: bool = True,
                  n_blocks: int | None = None) -> AnharmonicityResult:
    """Anharmonicity measure ``sigma^A`` (Knoop et al. 2020) of frames with forces.

    Displacements are taken from ``reference`` under the minimum image of its cell along periodic
    axes (an atom that has hopped to a neighbouring site counts as displaced by the hop, which is the
    point for a superionic conductor); harmonic forces are ``-force_constants @ u``.

    Parameters
    ----------
    frames : ase.Atoms or iterable of ase.Atoms
        Configurations with forces (eV/Å; ``atoms.get_forces()``, as :func:`sims.generate` writes
        them), the atoms in the reference's order, the reference's cell (constant volume).
    reference : ase.Atoms
        The structure ``force_constants`` belongs to.
    force_constants : numpy.ndarray
        ``(3N, 3N)`` eV/Å^2 (:func:`force_constants`).
    species : str, optional
        Sum over the atoms of this element only (``sigma^A_s``); every atom's displacement still
        enters its harmonic force.
    remove_drift : bool
        Subtract each frame's mean displacement over all atoms (a rigid translation: a Langevin
        thermostat lets the centre of mass wander, and in a translation-invariant solid it costs no
        force, whereas finite-difference force constants obey the acoustic sum rule only to their
        error). Set False for atoms in an external field (not translation invariant).
    n_blocks : int, optional
        Contiguous blocks of frames for the standard error; default 5, or one per frame when there
        are fewer.

    Returns
    -------
    AnharmonicityResult

    Raises
    ------
    SimsInputError
        Frames of another size, order of elements or cell than the reference, frames without forces,
        non-finite positions or forces, force constants of another shape or not finite, a species not
        in the reference, ``n_blocks`` < 1 or more blocks than frames, periodic axes without
        independent cell vectors, a reference or frame with ASE constraints (``get_forces`` of a frame
        with ``FixAtoms`` returns zero on the fixed atoms, against their nonzero harmonic forces).
    """
    ref = as_atoms(reference)
    frames = as_frames(frames)
    check_unconstrained(ref, "anharmonicity (its reference)")
    for k, frame in enumerate(frames):
        check_unconstrained(frame, f"anharmonicity (frame {k})")
    n = len(ref)
    phi = np.asarray(force_constants, dtype=float)
    if phi.shape != (3 * n, 3 * n) or not np.isfinite(phi).all():
        raise SimsInputError(f"force_constants must be a finite ({3 * n}, {3 * n}) array for the reference's {n} "
                             f"atoms, got shape {phi.shape}")
    n_blocks = min(5, len(frames)) if n_blocks is None else int(n_blocks)
    if not 1 <= n_blocks <= len(frames):
        raise SimsInputError(f"n_blocks must be between 1 and the number of frames ({len(frames)}), got {n_blocks}")
    mask = np.ones(n, dtype=bool)
    if species is not None:
        z = atomic_numbers.get(species)
        mask = ref.numbers == z
        if not mask.any():
            raise SimsInputError(f"species {species!r} is not in the reference structure "
                                 f"(it holds {sorted(set(ref.get_chemical_symbols()))})")
    positions, forces = _positions_forces(frames, ref)
    u = _displacements(positions - ref.positions, ref, remove_drift)
    harmonic = -(u.reshape(len(frames), -1) @ phi.T).reshape(u.shape)
    rest = ((forces - harmonic)[:, mask] ** 2).sum(axis=(1, 2))
    total = (forces[:, mask] ** 2).sum(axis=(1, 2))
    if not (total > 0).all():
        raise SimsInputError(f"frame {int(np.argmin(total > 0))} has zero force on every selected atom: "
                             "sigma^A is undefined there (frames at the reference itself?)")
    sigma = float(np.sqrt(rest.sum() / total.sum()))
    return AnharmonicityResult(sigma=sigma, per_frame=np.sqrt(rest / total),
                               stderr=_ratio_stderr(rest, total, n_blocks), n_blocks=n_blocks)


def _displacements(raw: np.ndarray, ref: Atoms, remove_drift: bool) -> np.ndarray:
    """``(T, N, 3)`` displacements from ``ref`` under the minimum image, less each frame's rigid shift.

    The shift along a periodic axis is the circular mean of the fractional displacements (a drift of
    any size, even past half the cell, where the minimum image of each atom alone would split the
    atoms between two images).
    """
    periodic = np.asarray(ref.pbc, dtype=bool)
    if not periodic.any():
        return raw - raw.mean(axis=1, keepdims=True) if remove_drift else raw
    # A slab's or wire's cell may have zero rows along its open axes (ase.build's vacuum=None): those
    # rows are replaced by vectors perpendicular to the periodic ones (never wrapped along here).
    cell = wrapping_cell(ref.cell.array, periodic, reach=1.0)
    frac = raw @ np.linalg.inv(cell)
    if remove_drift:
        angle = np.angle(np.exp(2j * np.pi * frac[..., periodic]).mean(axis=1, keepdims=True)) / (2 * np.pi)
        frac[..., periodic] -= angle
        frac[..., ~periodic] -= frac[..., ~periodic].mean(axis=1, keepdims=True)
    frac[..., periodic] -= np.round(frac[..., periodic])
    u = frac @ cell
    return u - u.mean(axis=1, keepdims=True) if remove_drift else u


def _positions_forces(frames: list[Atoms], ref: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """``(T, N, 3)`` positions and forces of ``frames``, checked against ``ref``."""
    positions, forces = [], []
    for k, frame in enumerate(frames):
        if len(frame) != len(ref) or not np.array_equal(frame.numbers, ref.numbers):
            raise SimsInputError(f"frame {k} holds other atoms than the reference ({frame.get_chemical_formula()} "
                                 f"vs {ref.get_chemical_formula()}, in the same order)")
        if np.abs(frame.cell.array - ref.cell.array).max() > 1e-6 * max(1.0, np.abs(ref.cell.array).max()):
            # (float32 runs write their cell back with ~1e-7 relative error; a barostat moves it far more)
            raise SimsInputError(f"frame {k} has another cell than the reference: sigma^A needs constant-volume "
                                 "frames (NVT) around the structure its force constants belong to")
        try:
            f = frame.get_forces()
        except (RuntimeError, PropertyNotImplementedError):  # no calculator; one without forces
            raise SimsInputError(f"frame {k} has no forces; compute them (sims.energy_and_forces) or read frames "
                                 "written with forces") from None
        positions.append(frame.positions)
        forces.append(f)
    positions, forces = np.stack(positions), np.stack(forces)
    if not (np.isfinite(positions).all() and np.isfinite(forces).all()):
        raise SimsInputError("frames hold non-finite positions or forces")
    return positions, forces


def _ratio_stderr(rest: np.ndarray, total: np.ndarray, n_blocks: int) -> float:
    """Standard error of ``sqrt(sum rest / sum total)`` from block means (delta method)."""
    if n_blocks < 2:
        return float("nan")
    a = np.array([b.mean() for b in np.array_split(rest, n_blocks)])
    b = np.array([b.mean() for b in np.array_split(total, n_blocks)])
    ratio = a.mean() / b.mean()
    # var(A/B) ~ (var A - 2 r cov(A, B) + r^2 var B) / B^2 for the means over blocks
    cov = np.cov(a, b) / n_blocks
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio ** 2 * cov[1, 1]) / b.mean() ** 2
    return float(np.sqrt(max(var, 0.0)) / (2 * np.sqrt(ratio)))
