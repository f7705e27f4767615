"""Dataset generation: run a configured MD protocol and stream frames to an ASE database or extxyz.

A config (a TOML file, or the same content as a dict) names the system, the potential, the protocol
(stages with ensemble, temperature schedule, steps and time step), the sampling interval and the
output::

    seed = 7
    engine = "matrep"
    [system]
    builder = "beta_cristobalite"      # or "bulk" (symbol, crystal, a, repeat), "file" (path),
                                       # "molecule" (name in ASE's g2 collection, or smiles),
                                       # "alanine_dipeptide" (conformation), "peptide" (sequence,
                                       # implicit_solvent): with kind = "amber14"
    repeat = 2
    [potential]
    kind = "bks"                       # "lj", "morse", "bks", "tabulated", "neural", "file", "ase", "tblite", "pyscf",
                                       # "amber14" (OpenMM, molecule = "alanine_dipeptide"),
                                       # or a plugin kind (below)
    [md]
    dtype = "float32"                  # or "float64" (default: float32; engine "lammps": float64, the only
                                       # one it has); device = "cuda" (optional)
    skin = 1.0                         # Å, neighbour-list skin of both engines (LAMMPS: neighbor <skin> bin);
                                       # n_procs = 4 (MPI ranks of engine = "lammps")
                                       # kspace = "pppm" (engine = "lammps": Ewald sum in place of
                                       # the DSF Coulomb term; kspace_accuracy = 1e-5)
    uncertainty_threshold = 0.5        # eV/Å, optional: for potentials that estimate their uncertainty
    on_uncertain = "flag"              # or "stop"
    [[stages]]
    ensemble = "langevin"              # "nve", "langevin", "nose_hoover_chain"
    steps = 2000
    timestep = 1.0                     # fs
    temperature = [6000, 6000]         # K at the start and end of the stage (linear ramp), or one
                                       # number; required for "langevin" and "nose_hoover_chain"
    friction = 0.02                    # 1/fs
    sample_every = 100                 # steps; 0 = no frames from this stage
    [[stages]]
    ensemble = "npt"                   # constant pressure; "nph": MTK without thermostats
    barostat = "c_rescale"             # sims.barostats.CellRescaling; "berendsen" (equilibration only);
                                       # "mtk" (sims.barostats.MTK: Nose-Hoover chains, a conserved quantity;
                                       # engine "lammps": fix npt / fix nph, the only one there)
    thermostat = "langevin"            # or "nose_hoover_chain" (tau, chain_length; the one of "mtk")
    pressure = 1.0                     # bar; or [x, y, z] with coupling = "anisotropic"; or a symmetric
                                       # 3x3 [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]] with "triclinic"
    coupling = "isotropic"             # or "anisotropic": each box length of an orthorhombic cell;
                                       # "semiisotropic": the xy plane and z (pressure [p, p, p_z]);
                                       # "triclinic": the full cell (c_rescale, berendsen: a lower-
                                       # triangular start cell, LAMMPS's orientation; or mtk)
    tau_p = 1000.0                     # fs
    compressibility = 4.5e-5           # 1/bar, an estimate: sets how fast the volume relaxes
    steps = 2000
    temperature = 300
    sample_every = 100
    [output]
    path = "silica.db"                 # .db (ASE SQLite database) or .extxyz
    checkpoint_every = 500             # steps

Frames of periodic systems carry ``pressure_bar`` (bar) and ``cell_volume`` (Å^3) in the database/extxyz metadata and the
potential's stress on the calculator.

Every table is parsed into the typed schemas of :mod:`sims.config`: an unknown or misspelled key is
refused with a did-you-mean suggestion, a value of the wrong type (``temperature = "300"``) is
refused with its key path, a missing required value (a thermostat stage's ``temperature``) by
name. Relative paths are read from the config file's folder (a dict: from ``cfg["_base"]``, else
the working folder).

Checkpoints are written atomically (temporary file, fsync, rename) every ``checkpoint_every``
steps and at stage ends; they hold the positions, velocities, integrator state (thermostat
variables, random-number generator) and the size of the output at that moment. A run that dies
(even by SIGKILL) and is started again with the same command drops the frames written after the
last checkpoint and continues from it. Both runs rebuild the neighbour list and recompute the
forces at every checkpoint, so the resumed run repeats the uninterrupted one bit for bit and
the output ends with exactly the same frames. An output that holds less than its checkpoint's
mark (deleted or replaced since) is refused, not resumed with the frames before the checkpoint
missing. Checkpoints also record the SHA-256 of the files the config names (``system.path``,
``potential.path``): a rerun after such a file changed is refused, since the config hash covers
their names only. A checkpoint written before a key of its config was refused as never read
(``md.kspace_accuracy`` without ``md.kspace`` and the like, 2026-12-07) resumes under that config
as it was, with a warning: the checkpoint records only the hash, which covers the key.

Potentials. Besides the classical kinds (and ``"tabulated"``, ``"neural"``: :class:`sims.potentials.TabulatedPair`,
:class:`sims.potentials.NeuralPair`), ``kind = "file"`` reads a potential saved by
:func:`sims.potentials.save_potential` (``path``; a fitted one of ``matrep fit-potential``), ``kind = "ase"`` wraps any ASE calculator
(``calculator = "module:Class"``, the other keys its keyword arguments), ``kind = "tblite"``
GFN-xTB from the ``tblite`` wheel (``method = "GFN2-xTB"``) and ``kind = "pyscf"`` HF or DFT from
PySCF (``method = "B3LYP"``, ``basis = "6-31G*"``; :class:`sims.pyscf_calculator.PySCFCalculator`),
all through :class:`sims.potentials.CalculatorPotential`. Any other kind is looked up among the entry points
of the group ``"sims.potentials"``: the entry point named ``kind`` loads a factory
``factory(params, *, base, device, dtype) -> torch.nn.Module`` (``params``: the ``[potential]``
table without ``kind``; ``base``: the config's folder, for relative paths). This is how packages
above ``sims`` (``learners``: trained neural potentials, ``kind = "nn"``) plug in without ``sims``
importing them.

Uncertainty. A potential that estimates its own uncertainty (a committee) has a method
``uncertainty_monitor(threshold)`` returning a callback ``monitor(md)``; after each call
``monitor.latest`` is a dict of numbers (and ``"uncertain"``, a bool: the threshold was passed);
called on a :class:`sims.batch.BatchMD` (:func:`sims.ensemble.generate_batched`), a list of such dicts,
one per replica.
The run calls it at every sampled frame, which stores ``latest`` with the frame, and, with
``md.uncertainty_threshold`` set, every ``md.uncertainty_every`` steps (default 1).
``on_uncertain = "flag"`` only marks frames (``uncertain``); ``"stop"`` writes the first uncertain
configuration as a frame and raises :class:`~sims.errors.SimulationStopped`: the frames written stay
valid, and the same command repeats the run from the last checkpoint to the same stop.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from ase import Atoms

from reprs.config import check_keys, config_file, content_hash, load_toml
from reprs.fileio import FrameWriter, atomic_open, read_frames  # read_frames: re-exported, reads what generate writes

from .config import (AlanineDipeptide, BetaCristobalite, Bulk, FileSystem, MDOptions, Molecule, Peptide, Potential,
                     SimulationConfig, Stage, System, array_hash_note, without_unread)
from .errors import ConfigError, SimsInputError, SimulationStopped
from .integrators import Integrator, Langevin, NoseHooverChain, VelocityVerlet
from .md import MD, maxwell_boltzmann
from .state import State, check_unconstrained

__all__ = ["load_config", "config_hash", "build_system", "build_potential", "generate", "generate_many",
           "read_frames"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _dtype(spec: SimulationConfig) -> torch.dtype:
    """The precision of a run: ``md.dtype``, else float32 on our engine and float64 (its only one) on LAMMPS."""
    return _DTYPES[spec.md.dtype or ("float64" if spec.engine == "lammps" else "float32")]


def load_config(config: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """Read a TOML config (or copy a dict) and check it against :class:`sims.config.SimulationConfig`.

    Returns
    -------
    dict
        The config's content as written, plus ``"_base"``: the folder relative paths are read
        from (the file's folder; for a dict its own ``"_base"``, else the working folder).

    Raises
    ------
    sims.errors.ConfigError
        A missing or non-TOML file, a TOML syntax error, or content the schema refuses.
    """
    cfg = _read_config(config)
    _parse(cfg)
    return cfg


def _read_config(config: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """:func:`load_config` before the schema's check."""
    if isinstance(config, Mapping):
        cfg = copy.deepcopy(dict(config))
        cfg.setdefault("_base", os.getcwd())
    else:
        path = Path(config)
        cfg = load_toml(path, error=ConfigError)
        cfg["_base"] = str(path.resolve().parent)
    return cfg


def _parse(cfg: Mapping[str, Any]) -> SimulationConfig:
    """The typed config of a :func:`load_config` dict (its ``_base`` is not a key of the schema)."""
    return SimulationConfig.from_config({k: v for k, v in cfg.items() if k != "_base"}, where="")


def _parse_resuming(cfg: Mapping[str, Any]) -> SimulationConfig:
    """:func:`_parse`, except for a config that resumes its own checkpoint written before some of its
    keys were refused as never read (:func:`sims.config.without_unread`): that one is read without
    them, with a warning, and keeps its hash, which covers them. The checkpoint records only the
    hash, so the run could not be recognised once the keys are removed; any other config holding
    them is refused as before.
    """
    try:
        return _parse(cfg)
    except ConfigError as err:
        stripped, removed = without_unread(cfg)
        try:
            spec = _parse(stripped) if removed else None
        except ConfigError:
            spec = None
        if spec is None:
            raise err
        ckpt_path = _resolve(cfg, spec.output.path)
        ckpt_path = ckpt_path.with_name(ckpt_path.name + ".ckpt")
        try:
            recorded = torch.load(ckpt_path, weights_only=True)["config_hash"] if ckpt_path.exists() else None
        except Exception:  # noqa: BLE001 (any unreadable file is not such a checkpoint; _open_checkpoint says why)
            recorded = None
        if recorded != config_hash(cfg):
            raise err
        warnings.warn(f"{', '.join(removed)}: never read, and refused since 2026-12-07/08 ({err}). {ckpt_path} was "
                      "written by this config with them before, and its hash covers them, so its run resumes as it "
                      "began; a new run refuses them", UserWarning, stacklevel=3)
        return spec


#: What a config that no longer matches its checkpoint may have lost (see :func:`_parse_resuming`).
_UNREAD_HINT = ("; if its config held a key that matrep refuses since 2026-12-07 as never read (md.kspace_accuracy "
                "without md.kspace, md.uncertainty_every or md.on_uncertain without md.uncertainty_threshold, "
                "system.conformers of a g2 molecule; since 2026-12-08 chain_length of an nph stage), put it back as "
                "it was: the checkpoint's hash covers it, and its run then resumes with a warning")


def config_hash(cfg: Mapping[str, Any]) -> str:
    """SHA-256 of the config's content (without the folder it was read from), stored with every frame.

    An ``nn`` potential's ``compiled`` key stays out: it says how the same weights are evaluated
    (forces equal to round-off), not what is simulated, so a run started eager resumes compiled and
    a compiled run reads back without it (with it hashed, either was refused as another config).
    """
    content = {k: v for k, v in cfg.items() if k != "_base"}
    potential = content.get("potential")
    if isinstance(potential, Mapping) and "compiled" in potential:
        content["potential"] = {k: v for k, v in potential.items() if k != "compiled"}
    return content_hash(content)


def _resolve(cfg: Mapping[str, Any], path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(cfg.get("_base", ".")) / p


def build_system(cfg: Mapping[str, Any]) -> Atoms:
    """The start configuration named by ``cfg["system"]`` (``seed`` seeds a rattle or a SMILES embedding).

    Raises
    ------
    sims.errors.ConfigError
        A ``[system]`` table the schema of its builder refuses, or a ``path`` that names no file.
    """
    if "system" not in cfg:
        raise ConfigError("the config needs a [system] table with a builder")
    return _build_system(System.from_config(cfg["system"]), int(cfg.get("seed", 0)), cfg.get("_base", "."))


def _build_system(system: System, seed: int, base: str | os.PathLike) -> Atoms:
    if isinstance(system, BetaCristobalite):
        from .silica import beta_cristobalite

        return beta_cristobalite(system.repeat, a=system.a)
    if isinstance(system, Bulk):
        from ase.build import bulk

        try:
            atoms = bulk(system.symbol, system.crystal, a=system.a, cubic=system.cubic)
        except (ValueError, KeyError, RuntimeError) as err:  # ASE's words for an unknown element or lattice
            raise ConfigError(f"system: ase.build.bulk({system.symbol!r}, {system.crystal!r}, a={system.a}, "
                              f"cubic={system.cubic}) failed: {err}") from None
        atoms = atoms.repeat(system.repeat)
        if system.rattle:
            atoms.rattle(system.rattle, seed=seed)
        return atoms
    if isinstance(system, AlanineDipeptide):
        from .openmm_potential import alanine_dipeptide

        return alanine_dipeptide(system.conformation)[0]
    if isinstance(system, Peptide):
        from .openmm_potential import peptide

        return peptide(system.sequence, implicit_solvent=system.implicit_solvent, seed=seed)[0]
    if isinstance(system, FileSystem):
        from ase.io import read

        path = config_file(system.path, base, "system.path", error=ConfigError)
        try:
            return read(path)
        except Exception as err:  # ASE raises many kinds for a file it cannot parse
            raise ConfigError(f"system.path = {system.path!r}: ASE cannot read {str(path)!r} as a structure "
                              f"({type(err).__name__}: {err})") from None
    return _molecule(system, seed)


def _molecule(system: Molecule, seed: int) -> Atoms:
    """A free molecule: ``name`` from ASE's g2 collection, or ``smiles`` embedded in 3-D by RDKit.

    SMILES are embedded with ETKDG as ``conformers`` conformers (default 10; seeded with the
    config's seed, so the start is reproducible), each relaxed with MMFF94, and the lowest in MMFF
    energy is kept; the MD's equilibration then relaxes it on the run's potential. (ETKDG need not
    find a particular conformer: for one, give it as a file.)
    """
    if system.name is not None:
        from ase.build import molecule

        try:
            return molecule(system.name)
        except KeyError:
            raise ConfigError(f"system.name: unknown molecule {system.name!r} (ase.collections.g2 names, "
                              "e.g. 'CH3CH2OH'); or give system.smiles") from None
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(system.smiles)
    if mol is None:
        raise ConfigError(f"system.smiles: cannot parse SMILES {system.smiles!r}")
    mol = Chem.AddHs(mol)
    ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=system.conformers, randomSeed=seed))
    if not ids:
        raise SimsInputError(f"RDKit could not embed {system.smiles!r} in 3-D")
    energies = [energy for _, energy in AllChem.MMFFOptimizeMoleculeConfs(mol)]
    best = ids[int(np.argmin(energies))]
    return Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=mol.GetConformer(best).GetPositions())


def build_potential(cfg: Mapping[str, Any], *, device=None, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """The potential named by ``cfg["potential"]`` (``kind`` plus keyword arguments).

    Raises
    ------
    sims.errors.ConfigError
        An unknown kind, or keyword arguments its factory does not take (with a did-you-mean
        suggestion against the factory's signature) or lacks.
    """
    if "potential" not in cfg:
        raise ConfigError("the config needs a [potential] table with a kind")
    return _build_potential(Potential.from_config(cfg["potential"]), cfg.get("_base", "."), device=device, dtype=dtype)


def _check_keywords(kind: str, factory, params: Mapping[str, Any]) -> None:
    """Refuse keys that ``factory`` (a class or function) takes no keyword for, and name the ones it needs."""
    signature = inspect.signature(factory).parameters
    if "device" in params or "dtype" in params:
        raise ConfigError(f"potential.{'device' if 'device' in params else 'dtype'}: set it in [md] "
                          "(md.device, md.dtype), not in [potential]")
    named = {name: p for name, p in signature.items() if name not in ("device", "dtype")
             and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    # Other keys of kinds "ase", "tblite" and "pyscf" go on to the calculator, which checks them.
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()):
        check_keys(params, named, f"potential (kind {kind!r})", error=ConfigError)
    missing = [name for name, p in named.items() if p.default is inspect.Parameter.empty and name not in params]
    if missing:
        raise ConfigError(f"potential kind {kind!r} needs {', '.join(map(repr, missing))}")


def _build_potential(spec: Potential, base: str | os.PathLike, *, device=None,
                     dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    from . import potentials
    from .config import call_plugin, plugin_kinds, unknown_kind

    kind, params = spec.kind, spec.params
    def saved(*, path: str, device=None, dtype=torch.float32) -> torch.nn.Module:
        return potentials.load_potential(config_file(path, base, "potential.path", error=ConfigError),
                                         device=device, dtype=dtype)

    factories = {"lj": potentials.LennardJones, "morse": potentials.Morse, "bks": potentials.BKS,
                 "tabulated": potentials.TabulatedPair, "neural": potentials.NeuralPair, "file": saved,
                 "ase": _ase_calculator, "tblite": _tblite, "pyscf": _pyscf, "amber14": _amber14}
    plugins = plugin_kinds("sims.potentials")
    if kind in factories:
        _check_keywords(kind, factories[kind], params)
        try:
            return factories[kind](**params, device=device, dtype=dtype)
        except TypeError as err:  # a calculator's own keywords (kind "ase", "tblite", "pyscf")
            raise ConfigError(f"bad parameters for potential {kind!r}: {err}") from None
    if kind not in plugins:
        raise unknown_kind("potential", kind, sorted(factories) + sorted(plugins))
    return call_plugin(plugins[kind], f"potential kind {kind!r}", params, base=Path(base), device=device, dtype=dtype)


def _ase_calculator(*, calculator: str, pbc=None, device=None, dtype=None, **kwargs) -> torch.nn.Module:
    """``kind = "ase"``: ``calculator = "module:Class"`` built with the remaining keys as keyword arguments."""
    import importlib

    from .potentials import CalculatorPotential

    module, _, name = str(calculator).partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise SimsInputError(f"cannot import the calculator {calculator!r}; give it as 'module:Class', "
                             "e.g. 'ase.calculators.emt:EMT'") from None
    return CalculatorPotential(cls(**kwargs), pbc=pbc)


def _tblite(*, method: str = "GFN2-xTB", pbc=None, device=None, dtype=None, **kwargs) -> torch.nn.Module:
    """``kind = "tblite"``: GFN-xTB of the ``tblite`` wheel (``method`` "GFN2-xTB", "GFN1-xTB", "IPEA1-xTB").

    Other keys go to ``tblite.ase.TBLite`` (``charge``, ``accuracy``, ``electronic_temperature``
    in K, ...). tblite's OpenMP threads spin-wait on a busy machine: run with ``OMP_NUM_THREADS=1``
    (or ``torch.set_num_threads(1)``, which sets the OpenMP runtime tblite shares with torch).
    """
    try:
        from tblite.ase import TBLite
    except ImportError:
        raise SimsInputError("potential kind 'tblite' needs the tblite package (pip install tblite)") from None
    from .potentials import CalculatorPotential

    kwargs.setdefault("verbosity", 0)
    # Each SCF starts from the same guess instead of the previous step's wavefunction (about 1.5x the
    # cost): the result depends on the positions only, so a resumed run repeats the uninterrupted one.
    kwargs.setdefault("cache_api", False)
    return CalculatorPotential(TBLite(method=method, **kwargs), pbc=pbc, reset=not kwargs["cache_api"])


def _pyscf(*, pbc=None, device=None, dtype=None, **kwargs) -> torch.nn.Module:
    """``kind = "pyscf"``: HF or Kohn-Sham DFT of PySCF (keys of :class:`~sims.pyscf_calculator.PySCFCalculator`)."""
    from .potentials import CalculatorPotential
    from .pyscf_calculator import PySCFCalculator

    return CalculatorPotential(PySCFCalculator(**kwargs), pbc=pbc)


def _amber14(*, molecule: str = "alanine_dipeptide", sequence: str | None = None,
             implicit_solvent: str | None = None, platform: str = "Reference", device=None,
             dtype=None) -> torch.nn.Module:
    """``kind = "amber14"``: OpenMM's amber14 (ff14SB) for ``molecule`` (the ``openmm`` extra).

    ``molecule = "alanine_dipeptide"`` (vacuum; :func:`sims.openmm_potential.alanine_dipeptide`, the atom
    order of ``[system] builder = "alanine_dipeptide"``) or ``molecule = "peptide"`` with ``sequence``
    and ``implicit_solvent`` (None, "obc2", "gbn2"; :func:`sims.openmm_potential.peptide`, the atom
    order of ``[system] builder = "peptide"`` with the same sequence). ``platform``: OpenMM's
    "Reference" (double precision) or "CPU". The potential computes in float64 and returns the
    positions' dtype.
    """
    from .openmm_potential import alanine_dipeptide, peptide

    if molecule == "alanine_dipeptide":
        if sequence is not None or implicit_solvent is not None:
            raise ConfigError("potential: molecule 'alanine_dipeptide' is in vacuum and takes no sequence or "
                              "implicit_solvent; use molecule = 'peptide' for those")
        return alanine_dipeptide(platform=platform)[1]
    if molecule == "peptide":
        if sequence is None:
            raise ConfigError("potential: molecule 'peptide' needs 'sequence' (one-letter codes, e.g. 'GYDPETGTWG')")
        return peptide(sequence, implicit_solvent=implicit_solvent, platform=platform)[1]
    raise ConfigError(f"potential.molecule: kind 'amber14' knows 'alanine_dipeptide' and 'peptide', got {molecule!r}")


def _make_integrator(stage: Stage) -> Integrator:
    temperature = stage.target_temperature(0)
    if stage.ensemble == "nve":
        return VelocityVerlet(timestep=stage.timestep)
    barostat, thermostat = stage.barostat_kind, stage.thermostat_kind
    if barostat == "mtk":
        from .barostats import MTK

        return MTK(stage.timestep, temperature=temperature, pressure=stage.pressure, tau=stage.tau, tau_p=stage.tau_p,
                   chain_length=stage.chain_length, barostat_chain_length=stage.chain_length,
                   coupling=stage.coupling, thermostat=thermostat is not None)
    if thermostat == "langevin":
        inner = Langevin(timestep=stage.timestep, temperature=temperature, friction=stage.friction)
    else:
        inner = NoseHooverChain(timestep=stage.timestep, temperature=temperature, tau=stage.tau,
                                chain_length=stage.chain_length)
    if barostat is None:
        return inner
    from .barostats import CellRescaling

    return CellRescaling(inner, pressure=stage.pressure, tau_p=stage.tau_p, compressibility=stage.compressibility,
                         stochastic=barostat == "c_rescale", coupling=stage.coupling)


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    # atomic: a reader sees the old or the new checkpoint, never half of one
    with atomic_open(path) as handle:
        torch.save(payload, handle)


def file_digests(named: Mapping[str, Any], base: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of each named file that exists, by key; relative paths are read from ``base``.

    Values that are not paths (None, a dict) and files gone since are left out: a resumed run needs
    only the files it still reads.
    """
    out = {}
    for key, value in named.items():
        path = _resolve({"_base": base}, value) if isinstance(value, (str, os.PathLike)) else None
        if path is not None and path.is_file():
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _input_digests(spec: SimulationConfig, base: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of the files the config names by path (``system.path``, ``potential.path``), by key.

    The config hash covers their names only: a potential file trained again under the same name, or
    a structure file edited, would otherwise be resumed as the run the checkpoint belongs to.
    """
    named = {"potential.path": spec.potential.params.get("path")}
    if isinstance(spec.system, FileSystem):
        named["system.path"] = spec.system.path
    return file_digests(named, base)


def _open_checkpoint(spec: SimulationConfig, cfg: Mapping[str, Any], digest: str, out_path: Path,
                     writer: FrameWriter, *, device, dtype) -> dict[str, Any]:
    """The run's checkpoint: the saved one (its output cut back to the checkpoint's mark), or a new
    one at step 0 with velocities drawn at the first stage's temperature from ``seed``.

    Its ``"inputs"`` are the :func:`_input_digests` the run started from; a checkpoint written
    before they were recorded takes the current ones."""
    ckpt_path = out_path.with_name(out_path.name + ".ckpt")
    inputs = _input_digests(spec, cfg["_base"])
    if ckpt_path.exists():
        try:
            # Tensors, numbers and strings only: a checkpoint is data, never a pickle of objects.
            ckpt = torch.load(ckpt_path, weights_only=True)
        except pickle.UnpicklingError:
            raise SimsInputError(f"{ckpt_path} is not a checkpoint of this matrep version (it holds more than "
                                 "tensors and numbers); remove it and the output to start over") from None
        if ckpt["config_hash"] != digest:
            raise SimsInputError(f"{ckpt_path} belongs to a different config (hash {ckpt['config_hash']} != {digest})"
                                 f"{array_hash_note(cfg)}; remove it and the output to start over{_UNREAD_HINT}")
        recorded = ckpt.get("inputs", inputs)
        changed = sorted(k for k in set(inputs) & set(recorded) if recorded[k] != inputs[k])
        if changed:
            raise SimsInputError(f"{', '.join(changed)}: the file has changed since the run of {ckpt_path} started "
                                 "(its SHA-256 differs); resuming would continue (or return) the frames of the old file: "
                                 "remove the checkpoint and the output to start over, or write to another output")
        ckpt.setdefault("inputs", inputs)
        # An output deleted or replaced by a shorter one since the checkpoint: resuming would write the
        # frames after the checkpoint only (a gap), or return a finished run's path with no file there.
        if writer.size() < int(ckpt["output_mark"]):
            raise SimsInputError(f"{out_path} holds less than its checkpoint {ckpt_path} records (output mark "
                                 f"{int(ckpt['output_mark'])}, now {writer.size()}: deleted or replaced since?); "
                                 "resuming would leave out the frames before the checkpoint: restore the output, "
                                 "or remove the checkpoint to start over")
        if not ckpt["done"]:
            writer.truncate(ckpt["output_mark"])
        return ckpt
    if out_path.exists():
        raise SimsInputError(f"{out_path} exists but has no checkpoint; refusing to overwrite it")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atoms = _build_system(spec.system, spec.seed, cfg["_base"])
    check_unconstrained(atoms, "matrep simulate")  # e.g. a POSCAR's selective dynamics, an extxyz move_mask
    state = State.from_atoms(atoms, device=device, dtype=dtype)
    t0 = spec.stages[0].target_temperature(0)
    state = state.with_(velocities=maxwell_boltzmann(state.masses, t0, seed=spec.seed))
    ckpt = {"config_hash": digest, "inputs": inputs, "done": False, "stage": 0, "step_in_stage": 0, "step": 0,
            "time": 0.0, "state": _state_dict(state), "integrator": None, "output_mark": writer.size()}
    _save_checkpoint(ckpt_path, ckpt)
    return ckpt


def generate(config: str | os.PathLike | Mapping[str, Any], *, device: torch.device | str | None = None,
             progress: bool = False) -> Path:
    """Run the config's protocol and write its frames; resume from the checkpoint if there is one.

    Parameters
    ----------
    config : path or mapping
        TOML file or dict (see the module docstring).
    device : torch device, optional
        Overrides ``md.device`` of the config.
    progress : bool
        Print one line per checkpoint.

    Returns
    -------
    pathlib.Path
        The output file. Each frame carries energy and forces and the metadata ``step``, ``time``
        (fs), ``stage``, ``T`` (instantaneous, K), ``T_target`` (K), ``seed`` and ``config_hash``;
        with a potential that estimates its uncertainty, also its monitor's values (a committee:
        ``energy_std`` eV, ``forces_std_max`` eV/Å, and ``uncertain`` when a threshold is set).

    Raises
    ------
    sims.errors.ConfigError
        A bad config (unknown key, wrong type, missing value or file; a ``SimsInputError``).
    SimsInputError
        An output that exists without a checkpoint (refused, not overwritten), or a checkpoint
        written by a different config.
    SimulationStopped
        ``md.on_uncertain = "stop"`` and the uncertainty passed ``md.uncertainty_threshold``.

    Examples
    --------
    >>> generate("silica_melt_quench_small.toml")   # doctest: +SKIP
    """
    cfg = _read_config(config)
    spec = _parse_resuming(cfg)
    digest = config_hash(cfg)
    seed = spec.seed
    md_cfg = spec.md
    dtype = _dtype(spec)
    if spec.engine == "lammps" and device is not None:
        raise ConfigError(f"device={device!r} (--device) is the torch device of engine = 'matrep'; engine = 'lammps' "
                          "does not read it (leave it out)")
    device = device if device is not None else md_cfg.device
    out_path = _resolve(cfg, spec.output.path)
    ckpt_path = out_path.with_name(out_path.name + ".ckpt")
    every = spec.output.checkpoint_every
    writer = FrameWriter(out_path)
    # Fail on a bad potential before writing anything.
    potential = _build_potential(spec.potential, cfg["_base"], device=device, dtype=dtype)
    monitoring = _monitoring(md_cfg, potential)

    ckpt = _open_checkpoint(spec, cfg, digest, out_path, writer, device=device, dtype=dtype)
    if ckpt["done"]:
        return out_path

    state = _state_from_dict(ckpt["state"], device, dtype)
    step, time_fs = int(ckpt["step"]), float(ckpt["time"])
    if spec.engine == "lammps":
        _run_lammps(spec, cfg["_base"], ckpt, ckpt_path, writer, digest)
        return out_path
    for k in range(int(ckpt["stage"]), len(spec.stages)):
        stage = spec.stages[k]
        resume = k == ckpt["stage"] and ckpt["integrator"] is not None
        first = int(ckpt["step_in_stage"]) if k == ckpt["stage"] else 0
        integrator = _make_integrator(stage)
        # Each stage has its own noise stream (seed, stage), so resuming never replays another stage's.
        md = MD(state, potential, integrator, seed=seed * 1000 + k, skin=md_cfg.skin,
                record_every=0, min_distance=None)
        if resume:
            md.state = state  # undo any setup changes (NHC removes the drift): continue bit for bit
            if hasattr(integrator, "temperature"):  # the ramp's value when the checkpoint was written
                integrator.temperature = stage.target_temperature(first - 1)
            md.load_integrator_state_dict(ckpt["integrator"])
            md.refresh()
        sample, n_steps = stage.sample_every, stage.steps
        for s in range(first, n_steps):
            if hasattr(integrator, "temperature"):
                integrator.temperature = stage.target_temperature(s)
            md.run(1)
            step += 1
            time_fs += integrator.timestep
            sampled = bool(sample) and (s + 1) % sample == 0
            uncertainty = monitoring.check(md, step, sampled) if monitoring is not None else None
            stop = uncertainty is not None and monitoring.stop and uncertainty.get("uncertain", False)
            if sampled or stop:
                frame = md.frame()
                meta = {"step": step, "time": time_fs, "stage": k, "T": md.temperature(),
                        "T_target": stage.target_temperature(s + 1), "seed": seed, "config_hash": digest}
                if "pressure" in frame.info:
                    meta.update(pressure_bar=frame.info["pressure"], cell_volume=frame.info["volume"])
                meta.update(uncertainty or {})
                frame.info.clear()
                writer.write(frame, meta)
            if stop:
                values = ", ".join(f"{name}={value:.4g}" for name, value in uncertainty.items() if name != "uncertain")
                raise SimulationStopped(
                    f"the potential's uncertainty passed md.uncertainty_threshold={monitoring.threshold} at step "
                    f"{step} (stage {k}): {values}. That configuration is the last frame of {out_path}; the frames "
                    f"are valid. Rerunning repeats the run from the checkpoint of step {ckpt['step']} to this stop")
            if (s + 1) % every == 0 or s + 1 == n_steps:
                state = md.state
                last = k == len(spec.stages) - 1 and s + 1 == n_steps
                ckpt = {"config_hash": digest, "inputs": ckpt["inputs"], "done": last,
                        "stage": k if s + 1 < n_steps else k + 1,
                        "step_in_stage": s + 1 if s + 1 < n_steps else 0, "step": step, "time": time_fs,
                        "state": _state_dict(state),
                        "integrator": md.integrator_state_dict() if s + 1 < n_steps else None,
                        "output_mark": writer.size()}
                _save_checkpoint(ckpt_path, ckpt)
                md.refresh()
                if progress:
                    print(f"stage {k} step {s + 1}/{n_steps} T={md.temperature():.1f} K E={float(md.energy):.4f} eV",
                          flush=True)
        state = md.state
    if not ckpt.get("done"):
        # Protocols ending in a zero-step stage: mark completion.
        ckpt.update(done=True)
        _save_checkpoint(ckpt_path, ckpt)
    return out_path


class _Monitoring:
    """When to ask the potential's uncertainty monitor, and what to do with its answer (``[md]`` options)."""

    def __init__(self, monitor, threshold: float | None, every: int, stop: bool) -> None:
        self.monitor, self.threshold, self.every, self.stop = monitor, threshold, every, stop

    def check(self, md: MD, step: int, sampled: bool) -> dict[str, Any] | None:
        """The uncertainty after ``step`` when a frame is sampled or a check is due, else None."""
        if not (sampled or (self.threshold is not None and step % self.every == 0)):
            return None
        self.monitor(md)
        latest = dict(self.monitor.latest)
        if self.threshold is None:
            latest.pop("uncertain", None)  # nothing was compared
        return latest


def _monitoring(md_cfg: MDOptions, potential: torch.nn.Module) -> _Monitoring | None:
    """The uncertainty monitoring asked for by ``md.uncertainty_threshold`` etc. (None: none possible or asked)."""
    threshold = md_cfg.uncertainty_threshold
    if not hasattr(potential, "uncertainty_monitor"):
        if threshold is not None:
            raise ConfigError(f"md.uncertainty_threshold needs a potential that estimates its uncertainty "
                              f"(a committee); {type(potential).__name__} does not")
        return None
    return _Monitoring(potential.uncertainty_monitor(threshold), threshold, md_cfg.uncertainty_every,
                       md_cfg.on_uncertain == "stop")


def _run_lammps(spec: SimulationConfig, base: str, ckpt, ckpt_path, writer, digest) -> None:
    """The stages on LAMMPS, one run each from the checkpointed state; checkpoint after each stage.

    Serial LAMMPS is deterministic for a given seed, so a run resumed at a stage boundary writes the
    same frames as an uninterrupted one; frames of an interrupted stage are cut back to the mark.
    """
    from . import lammps

    potential = _build_potential(spec.potential, base, dtype=torch.float64)  # LAMMPS reads float64 parameters
    atoms = _state_from_dict(ckpt["state"], None, torch.float64).to_atoms()
    step, time_fs, seed = int(ckpt["step"]), float(ckpt["time"]), spec.seed
    for k in range(int(ckpt["stage"]), len(spec.stages)):
        stage = spec.stages[k]
        result = lammps.run(atoms, potential, [stage], seed=seed * 1000 + k, n_procs=spec.md.n_procs,
                            skin=spec.md.skin, kspace=spec.md.kspace, kspace_accuracy=spec.md.kspace_accuracy)
        for frame in result.frames:
            meta = {"step": step + int(frame.info["step"]), "time": time_fs + float(frame.info["time"]), "stage": k,
                    "T": float(frame.info["T"]), "T_target": float(frame.info["T_target"]), "seed": seed,
                    "config_hash": digest}
            if "pressure" in frame.info:
                meta.update(pressure_bar=frame.info["pressure"], cell_volume=frame.info["volume"])
            frame.info.clear()
            writer.write(frame, meta)
        atoms = result.final
        step += stage.steps
        time_fs += stage.steps * stage.timestep
        final = State.from_atoms(atoms, dtype=torch.float64)
        ckpt = {"config_hash": digest, "inputs": ckpt["inputs"], "done": k == len(spec.stages) - 1, "stage": k + 1,
                "step_in_stage": 0,
                "step": step, "time": time_fs, "state": _state_dict(final), "integrator": None,
                "output_mark": writer.size()}
        _save_checkpoint(ckpt_path, ckpt)
    if not ckpt["done"]:
        ckpt.update(done=True)
        _save_checkpoint(ckpt_path, ckpt)


def _state_dict(state: State) -> dict[str, torch.Tensor]:
    # Stored in float64 (exact for float32 too), so a resumed run gets back exactly the same tensors;
    # CPU tensors, so the checkpoint loads with weights_only=True on any device.
    return {"positions": state.positions.detach().cpu().double(),
            "velocities": state.velocities.detach().cpu().double(),
            "masses": state.masses.detach().cpu().double(), "numbers": state.numbers.cpu(),
            "cell": state.cell.detach().cpu().double(), "pbc": state.pbc.cpu()}


def _state_from_dict(d: Mapping[str, torch.Tensor], device, dtype) -> State:
    def t(x):
        return torch.as_tensor(x, device=device).to(dtype)

    return State(positions=t(d["positions"]), velocities=t(d["velocities"]), masses=t(d["masses"]),
                 numbers=torch.as_tensor(d["numbers"], dtype=torch.long, device=device), cell=t(d["cell"]),
                 pbc=torch.as_tensor(d["pbc"], device=device))


def generate_many(configs: Sequence[str | os.PathLike | Mapping[str, Any]], *, client=None) -> list[Path]:
    """Run independent configs (seeds, temperatures), on a Dask cluster when ``client`` is given.

    Parameters
    ----------
    configs : sequence
        Config files or dicts, each with its own output path.
    client : dask.distributed.Client, optional
        Submit one task per config; None runs them here one after the other.
    """
    if client is None:
        return [generate(c) for c in configs]
    futures = client.map(generate, list(configs), pure=False)
    return client.gather(futures)
