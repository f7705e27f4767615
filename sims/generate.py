"""Dataset generation: run a configured MD protocol and stream frames to an ASE database or extxyz.

A config (TOML or YAML file, or a dict) names the system, the potential, the protocol (stages with
ensemble, temperature schedule, steps and time step), the sampling interval and the output::

    seed = 7
    engine = "matrep"
    [system]
    builder = "beta_cristobalite"      # or "bulk" (symbol, crystal, a, repeat), "file" (path),
                                       # "molecule" (name in ASE's g2 collection, or smiles)
    repeat = 2
    [potential]
    kind = "bks"                       # "lj", "morse", "bks", "ase", "tblite", "pyscf", or a plugin kind (below)
    [md]
    dtype = "float32"
    skin = 1.0
    uncertainty_threshold = 0.5        # eV/Å, optional: for potentials that estimate their uncertainty
    on_uncertain = "flag"              # or "stop"
    [[stages]]
    ensemble = "langevin"              # "nve", "langevin", "nose_hoover_chain"
    steps = 2000
    timestep = 1.0                     # fs
    temperature = [6000, 6000]         # K at the start and end of the stage (linear ramp)
    friction = 0.02                    # 1/fs
    sample_every = 100                 # steps; 0 = no frames from this stage
    [output]
    path = "silica.db"                 # .db (ASE SQLite database) or .extxyz
    checkpoint_every = 500             # steps

Checkpoints are written atomically (temporary file, fsync, rename) every ``checkpoint_every``
steps and at stage ends; they hold the positions, velocities, integrator state (thermostat
variables, random-number generator) and the size of the output at that moment. A run that dies
(even by SIGKILL) and is started again with the same command drops the frames written after the
last checkpoint and continues from it. Both runs rebuild the neighbour list and recompute the
forces at every checkpoint, so the resumed run repeats the uninterrupted one bit for bit and
the output ends with exactly the same frames.

Potentials. Besides the classical kinds, ``kind = "ase"`` wraps any ASE calculator
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
``monitor.latest`` is a dict of numbers (and ``"uncertain"``, a bool: the threshold was passed).
The run calls it at every sampled frame, which stores ``latest`` with the frame, and, with
``md.uncertainty_threshold`` set, every ``md.uncertainty_every`` steps (default 1).
``on_uncertain = "flag"`` only marks frames (``uncertain``); ``"stop"`` writes the first uncertain
configuration as a frame and raises :class:`~sims.errors.SimulationStopped`: the frames written stay
valid, and the same command repeats the run from the last checkpoint to the same stop.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from ase import Atoms

from .errors import SimsError, SimsInputError, SimulationStopped
from .integrators import Integrator, Langevin, NoseHooverChain, VelocityVerlet
from .md import MD, maxwell_boltzmann
from .state import State

__all__ = ["load_config", "config_hash", "build_system", "build_potential", "generate", "generate_many",
           "read_frames"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def load_config(config: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """Read a TOML/YAML config (or copy a dict); relative paths in it are resolved against the file's folder."""
    if isinstance(config, Mapping):
        cfg = copy.deepcopy(dict(config))
        cfg.setdefault("_base", os.getcwd())
        return cfg
    path = Path(config)
    if not path.is_file():
        raise SimsInputError(f"config file {str(path)!r} not found")
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        cfg = tomllib.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        cfg = yaml.safe_load(text)
    else:
        raise SimsInputError(f"config must be .toml, .yaml or .yml, got {path.name!r}")
    cfg["_base"] = str(path.resolve().parent)
    return cfg


def config_hash(cfg: Mapping[str, Any]) -> str:
    """SHA-256 of the config's content (without the folder it was read from), stored with every frame."""
    content = {k: v for k, v in cfg.items() if k != "_base"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _resolve(cfg: Mapping[str, Any], path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(cfg.get("_base", ".")) / p


def build_system(cfg: Mapping[str, Any]) -> Atoms:
    """The start configuration named by ``cfg["system"]``."""
    system = dict(cfg.get("system", {}))
    builder = system.pop("builder", None)
    if builder == "beta_cristobalite":
        from .silica import beta_cristobalite

        return beta_cristobalite(system.get("repeat", 2), a=system.get("a", 7.16))
    if builder == "bulk":
        from ase.build import bulk

        atoms = bulk(system["symbol"], system.get("crystal"), a=system.get("a"), cubic=system.get("cubic", True))
        atoms = atoms.repeat(system.get("repeat", 1))
        if system.get("rattle"):
            atoms.rattle(float(system["rattle"]), seed=int(cfg.get("seed", 0)))
        return atoms
    if builder == "file":
        from ase.io import read

        return read(_resolve(cfg, system["path"]))
    if builder == "molecule":
        return _molecule(system, int(cfg.get("seed", 0)))
    raise SimsInputError(f"unknown system builder {builder!r}; known: 'beta_cristobalite', 'bulk', 'file', 'molecule'")


def _molecule(system: Mapping[str, Any], seed: int) -> Atoms:
    """A free molecule: ``name`` from ASE's g2 collection, or ``smiles`` embedded in 3-D by RDKit.

    SMILES are embedded with ETKDG as ``conformers`` conformers (default 10; seeded with the
    config's seed, so the start is reproducible), each relaxed with MMFF94, and the lowest in MMFF
    energy is kept; the MD's equilibration then relaxes it on the run's potential. (ETKDG need not
    find a particular conformer: for one, give it as a file.)
    """
    if ("name" in system) == ("smiles" in system):
        raise SimsInputError("the molecule builder needs exactly one of system.name (ASE's g2 collection) "
                             "or system.smiles")
    if "name" in system:
        from ase.build import molecule

        try:
            return molecule(system["name"])
        except KeyError:
            raise SimsInputError(f"unknown molecule {system['name']!r} (ase.collections.g2 names, "
                                 "e.g. 'CH3CH2OH'); or give system.smiles") from None
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(str(system["smiles"]))
    if mol is None:
        raise SimsInputError(f"cannot parse SMILES {system['smiles']!r}")
    mol = Chem.AddHs(mol)
    ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=int(system.get("conformers", 10)), randomSeed=seed))
    if not ids:
        raise SimsInputError(f"RDKit could not embed {system['smiles']!r} in 3-D")
    energies = [energy for _, energy in AllChem.MMFFOptimizeMoleculeConfs(mol)]
    best = ids[int(np.argmin(energies))]
    return Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=mol.GetConformer(best).GetPositions())


def build_potential(cfg: Mapping[str, Any], *, device=None, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """The potential named by ``cfg["potential"]`` (``kind`` plus keyword arguments)."""
    from importlib.metadata import entry_points

    from . import potentials

    params = dict(cfg.get("potential", {}))
    kind = params.pop("kind", None)
    factories = {"lj": potentials.LennardJones, "morse": potentials.Morse, "bks": potentials.BKS,
                 "ase": _ase_calculator, "tblite": _tblite, "pyscf": _pyscf}
    plugins = {ep.name: ep for ep in entry_points(group="sims.potentials")}
    if kind in factories:
        try:
            return factories[kind](**params, device=device, dtype=dtype)
        except TypeError as err:
            raise SimsInputError(f"bad parameters for potential {kind!r}: {err}") from None
    if kind not in plugins:
        raise SimsInputError(f"unknown potential kind {kind!r}; known: {sorted(factories) + sorted(plugins)}")
    plugin = plugins[kind]
    try:
        return plugin.load()(params, base=Path(cfg.get("_base", ".")), device=device, dtype=dtype)
    except SimsError:
        raise
    except (ValueError, TypeError, KeyError, OSError) as err:
        # The plugin's own error classes (sims knows none of them) become the one the CLI reports.
        raise SimsInputError(f"potential kind {kind!r} ({plugin.value}): {err}") from err


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


def _stage_temperature(stage: Mapping[str, Any], step_in_stage: int) -> float:
    """Target temperature (K) before step ``step_in_stage`` of a stage: linear ramp between the two values."""
    t = stage.get("temperature", 0.0)
    t0, t1 = (float(t[0]), float(t[1])) if isinstance(t, Sequence) else (float(t), float(t))
    return t0 + (t1 - t0) * step_in_stage / max(int(stage["steps"]), 1)


def _make_integrator(stage: Mapping[str, Any]) -> Integrator:
    ens = stage.get("ensemble", "nve")
    dt = float(stage.get("timestep", 1.0))
    temperature = _stage_temperature(stage, 0)
    if ens == "nve":
        return VelocityVerlet(timestep=dt)
    if ens == "langevin":
        return Langevin(timestep=dt, temperature=temperature, friction=float(stage.get("friction", 0.01)))
    if ens == "nose_hoover_chain":
        return NoseHooverChain(timestep=dt, temperature=temperature, tau=float(stage.get("tau", 100.0)),
                               chain_length=int(stage.get("chain_length", 3)))
    raise SimsInputError(f"unknown ensemble {ens!r}; known: 'nve', 'langevin', 'nose_hoover_chain'")


#: ``matrep``: our torch engine (differentiable, NN potentials); ``lammps``: classical potentials
#: on LAMMPS through :mod:`sims.lammps`, one LAMMPS run per stage, checkpointed at stage ends.
ENGINES = ("matrep", "lammps")


def _validate(cfg: Mapping[str, Any]) -> None:
    engine = cfg.get("engine", "matrep")
    if engine not in ENGINES:
        raise SimsInputError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    stages = cfg.get("stages")
    if not stages:
        raise SimsInputError("the config has no [[stages]]")
    for k, st in enumerate(stages):
        if int(st.get("steps", -1)) < 0:
            raise SimsInputError(f"stage {k} needs steps >= 0")
        _make_integrator(st)
    out = cfg.get("output", {})
    if "path" not in out:
        raise SimsInputError("the config needs output.path (.db or .extxyz)")
    if Path(out["path"]).suffix not in (".db", ".extxyz"):
        raise SimsInputError(f"output.path must end in .db or .extxyz, got {out['path']!r}")


class FrameWriter:
    """Appends frames to an ASE SQLite database or an extxyz file; can cut back to a checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = "db" if path.suffix == ".db" else "extxyz"
        self._db = None

    def size(self) -> int:
        """The checkpoint's mark: the last row id (db) or the file size in bytes (extxyz)."""
        if self.kind == "db":
            if not self.path.exists():
                return 0
            return max((row.id for row in self._connect().select(sort="-id", limit=1)), default=0)
        return self.path.stat().st_size if self.path.exists() else 0

    def _connect(self):
        if self._db is None:
            import ase.db

            # No ASE lock file: a SIGKILLed run would leave it behind and block the resume forever;
            # SQLite's own journal already makes each row write atomic.
            self._db = ase.db.connect(str(self.path), type="db", use_lock_file=False)
        return self._db

    def truncate(self, mark: int) -> None:
        """Drop everything written after ``mark`` (frames since the last checkpoint)."""
        if self.kind == "db":
            # Each row is written in its own transaction, so a killed run leaves whole rows only.
            db = self._connect()
            extra = [row.id for row in db.select(f"id>{int(mark)}")]
            if extra:
                db.delete(extra)
        elif self.path.exists():
            os.truncate(self.path, mark)

    def write(self, atoms: Atoms, meta: dict[str, Any]) -> None:
        if self.kind == "db":
            self._connect().write(atoms, key_value_pairs=meta)
        else:
            from ase.io import write

            atoms.info.update(meta)
            with open(self.path, "a") as f:
                write(f, atoms, format="extxyz")
                f.flush()
                os.fsync(f.fileno())


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: a reader sees the old or the new checkpoint, never half of one


def generate(config: str | os.PathLike | Mapping[str, Any], *, device: torch.device | str | None = None,
             progress: bool = False) -> Path:
    """Run the config's protocol and write its frames; resume from the checkpoint if there is one.

    Parameters
    ----------
    config : path or mapping
        TOML/YAML file or dict (see the module docstring).
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
    SimsInputError
        A bad config, an output that exists without a checkpoint (refused, not overwritten), or a
        checkpoint written by a different config.
    SimulationStopped
        ``md.on_uncertain = "stop"`` and the uncertainty passed ``md.uncertainty_threshold``.

    Examples
    --------
    >>> generate("silica_melt_quench_small.toml")   # doctest: +SKIP
    """
    cfg = load_config(config)
    _validate(cfg)
    digest = config_hash(cfg)
    seed = int(cfg.get("seed", 0))
    md_cfg = dict(cfg.get("md", {}))
    dtype = _DTYPES.get(md_cfg.get("dtype", "float32"))
    if dtype is None:
        raise SimsInputError(f"md.dtype must be one of {sorted(_DTYPES)}")
    device = device if device is not None else md_cfg.get("device")
    out_path = _resolve(cfg, cfg["output"]["path"])
    ckpt_path = out_path.with_name(out_path.name + ".ckpt")
    every = int(cfg["output"].get("checkpoint_every", 1000))
    writer = FrameWriter(out_path)
    potential = build_potential(cfg, device=device, dtype=dtype)  # fail on a bad potential before writing anything
    monitoring = _monitoring(md_cfg, potential)

    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        if ckpt["config_hash"] != digest:
            raise SimsInputError(f"{ckpt_path} belongs to a different config (hash {ckpt['config_hash']} != {digest}); "
                                 "remove it and the output to start over")
        if ckpt["done"]:
            return out_path
        writer.truncate(ckpt["output_mark"])
    else:
        if out_path.exists():
            raise SimsInputError(f"{out_path} exists but has no checkpoint; refusing to overwrite it")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        atoms = build_system(cfg)
        state = State.from_atoms(atoms, device=device, dtype=dtype)
        t0 = _stage_temperature(cfg["stages"][0], 0)
        state = state.with_(velocities=maxwell_boltzmann(state.masses, t0, seed=seed))
        ckpt = {"config_hash": digest, "done": False, "stage": 0, "step_in_stage": 0, "step": 0, "time": 0.0,
                "state": _state_dict(state), "integrator": None, "output_mark": writer.size()}
        _save_checkpoint(ckpt_path, ckpt)

    state = _state_from_dict(ckpt["state"], device, dtype)
    step, time_fs = int(ckpt["step"]), float(ckpt["time"])
    if cfg.get("engine", "matrep") == "lammps":
        _run_lammps(cfg, ckpt, ckpt_path, writer, seed, digest, int(md_cfg.get("n_procs", 1)))
        return out_path
    for k in range(int(ckpt["stage"]), len(cfg["stages"])):
        stage = cfg["stages"][k]
        resume = k == ckpt["stage"] and ckpt["integrator"] is not None
        first = int(ckpt["step_in_stage"]) if k == ckpt["stage"] else 0
        integrator = _make_integrator(stage)
        # Each stage has its own noise stream (seed, stage), so resuming never replays another stage's.
        md = MD(state, potential, integrator, seed=seed * 1000 + k, skin=float(md_cfg.get("skin", 1.0)),
                record_every=0, min_distance=None)
        if resume:
            md.state = state  # undo any setup changes (NHC removes the drift): continue bit for bit
            md.load_integrator_state_dict(ckpt["integrator"])
            md.refresh()
        sample = int(stage.get("sample_every", 0))
        n_steps = int(stage["steps"])
        for s in range(first, n_steps):
            if hasattr(integrator, "temperature"):
                integrator.temperature = _stage_temperature(stage, s)
            md.run(1)
            step += 1
            time_fs += integrator.timestep
            sampled = bool(sample) and (s + 1) % sample == 0
            uncertainty = monitoring.check(md, step, sampled) if monitoring is not None else None
            stop = uncertainty is not None and monitoring.stop and uncertainty.get("uncertain", False)
            if sampled or stop:
                frame = md.frame()
                meta = {"step": step, "time": time_fs, "stage": k, "T": md.temperature(),
                        "T_target": _stage_temperature(stage, s + 1), "seed": seed, "config_hash": digest}
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
                last = k == len(cfg["stages"]) - 1 and s + 1 == n_steps
                ckpt = {"config_hash": digest, "done": last, "stage": k if s + 1 < n_steps else k + 1,
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


def _monitoring(md_cfg: Mapping[str, Any], potential: torch.nn.Module) -> _Monitoring | None:
    """The uncertainty monitoring asked for by ``md.uncertainty_threshold`` etc. (None: none possible or asked)."""
    threshold = md_cfg.get("uncertainty_threshold")
    on_uncertain = md_cfg.get("on_uncertain", "flag")
    every = md_cfg.get("uncertainty_every", 1)
    if on_uncertain not in ("flag", "stop"):
        raise SimsInputError(f"md.on_uncertain must be 'flag' or 'stop', got {on_uncertain!r}")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise SimsInputError(f"md.uncertainty_every must be an integer >= 1 (steps), got {every!r}")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0 < threshold < float("inf")):
        raise SimsInputError(f"md.uncertainty_threshold must be a number > 0, got {threshold!r}")
    if not hasattr(potential, "uncertainty_monitor"):
        if threshold is not None:
            raise SimsInputError(f"md.uncertainty_threshold needs a potential that estimates its uncertainty "
                                 f"(a committee); {type(potential).__name__} does not")
        return None
    if on_uncertain == "stop" and threshold is None:
        raise SimsInputError("md.on_uncertain = 'stop' needs md.uncertainty_threshold")
    threshold = None if threshold is None else float(threshold)
    return _Monitoring(potential.uncertainty_monitor(threshold), threshold, every, on_uncertain == "stop")


def _run_lammps(cfg, ckpt, ckpt_path, writer, seed, digest, n_procs) -> None:
    """The stages on LAMMPS, one run each from the checkpointed state; checkpoint after each stage.

    Serial LAMMPS is deterministic for a given seed, so a run resumed at a stage boundary writes the
    same frames as an uninterrupted one; frames of an interrupted stage are cut back to the mark.
    """
    from . import lammps

    potential = build_potential(cfg, dtype=torch.float64)  # LAMMPS parameters are read in float64
    atoms = _state_from_dict(ckpt["state"], None, torch.float64).to_atoms()
    step, time_fs = int(ckpt["step"]), float(ckpt["time"])
    for k in range(int(ckpt["stage"]), len(cfg["stages"])):
        stage = cfg["stages"][k]
        result = lammps.run(atoms, potential, [stage], seed=seed * 1000 + k, n_procs=n_procs)
        for frame in result.frames:
            meta = {"step": step + int(frame.info["step"]), "time": time_fs + float(frame.info["time"]), "stage": k,
                    "T": float(frame.info["T"]), "T_target": float(frame.info["T_target"]), "seed": seed,
                    "config_hash": digest}
            frame.info.clear()
            writer.write(frame, meta)
        atoms = result.final
        step += int(stage["steps"])
        time_fs += int(stage["steps"]) * float(stage.get("timestep", 1.0))
        final = State.from_atoms(atoms, dtype=torch.float64)
        ckpt = {"config_hash": digest, "done": k == len(cfg["stages"]) - 1, "stage": k + 1, "step_in_stage": 0,
                "step": step, "time": time_fs, "state": _state_dict(final), "integrator": None,
                "output_mark": writer.size()}
        _save_checkpoint(ckpt_path, ckpt)
    if not ckpt["done"]:
        ckpt.update(done=True)
        _save_checkpoint(ckpt_path, ckpt)


def _state_dict(state: State) -> dict[str, np.ndarray]:
    # Stored in float64 (exact for float32 too), so a resumed run gets back exactly the same tensors.
    return {"positions": state.positions.detach().cpu().double().numpy(),
            "velocities": state.velocities.detach().cpu().double().numpy(),
            "masses": state.masses.detach().cpu().double().numpy(), "numbers": state.numbers.cpu().numpy(),
            "cell": state.cell.detach().cpu().double().numpy(), "pbc": state.pbc.cpu().numpy()}


def _state_from_dict(d: Mapping[str, np.ndarray], device, dtype) -> State:
    def t(x):
        return torch.as_tensor(x, device=device).to(dtype)

    return State(positions=t(d["positions"]), velocities=t(d["velocities"]), masses=t(d["masses"]),
                 numbers=torch.as_tensor(d["numbers"], dtype=torch.long, device=device), cell=t(d["cell"]),
                 pbc=torch.as_tensor(d["pbc"], device=device))


def read_frames(path: str | os.PathLike) -> list[Atoms]:
    """All frames of a generated dataset (ASE db or extxyz), in order, metadata in ``atoms.info``."""
    path = Path(path)
    if path.suffix == ".db":
        import ase.db

        frames = []
        for row in ase.db.connect(str(path)).select(sort="id"):
            atoms = row.toatoms()
            atoms.info.update(row.key_value_pairs)
            frames.append(atoms)
        return frames
    from ase.io import read

    return read(path, index=":", format="extxyz")


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
