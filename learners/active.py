"""An active-learning loop for committee potentials: train, sample, select, label, retrain.

Schwalbe-Koda, Tan & Gómez-Bombarelli, Nat. Commun. 12, 5104 (2021) (arXiv:2101.11588), Fig. 1:
a committee trained on the data so far proposes new geometries (adversarial attacks on its
uncertainty, MD with the committee, or random displacements, the paper's baselines); the most
uncertain ones that are not near-copies of training geometries are labelled with the ground truth
and added; the committee is retrained from scratch. The loop writes, in ``workdir``:

- ``labels.db``: every labelled geometry (ASE database, one transaction per row through
  :class:`reprs.fileio.FrameWriter`) with its energy and forces and its provenance:
  ``generation``, ``seed``, ``parent`` (the index of the training frame it was made from, in the
  training set of that generation: the initial frames first, then the labels in row order),
  ``sampler``.
- ``committee.pt``: the committee trained at the start of the last generation run
  (:func:`learners.potentials.save_potential`; PaiNN and SchNet members), so a finished run
  resumed without work still returns it as :attr:`ActiveLearning.committee_`. With ``fine_tune``
  every generation's committee is also kept as ``committee_<g>.pt``: a resumed run continues
  training from the one before it.
- ``log.json``: the settings and one entry per finished generation (test errors of the committee
  trained at its start, training-set size, labels used so far, candidates, the maximum and
  selection threshold of the uncertainty, the geometries whose labelling failed with the error,
  and, with ``max_label_energy``, the number of candidates left unlabelled for their committee
  energy (``over_cap``) and the labelled geometries not trained on for their true energy
  (``skipped``, with that energy and the reason)). Written atomically after the generation's
  labels, so a crash leaves whole generations: :meth:`ActiveLearning.run` resumes after the last
  one (rows written after it are removed).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from learners.samplers import SAMPLER_SETTINGS, foreign_sampler_setting, foreign_settings
from learners.adversarial import _check_kT, attack
from learners.data import data_digest
from learners.errors import InputError, InputTypeError
from learners.potentials.batch import _reference
from learners.potentials.committee import Committee, structure_force_variance
from learners.potentials.store import load_potential, save_potential
from learners.potentials.training import PotentialLoss, fit_potential, frame_errors
from learners.trainer import Trainer
from reprs.atoms import as_frames
from reprs.fileio import FrameWriter, atomic_write, read_frames
from sims.config import weights_digest

__all__ = ["ActiveLearning", "SAMPLERS"]

SAMPLERS = ("adversarial", "md", "random")
LOG_FORMAT = "matrep-active-learning-1"
# Settings added after runs were logged, with the value those runs used.
SETTING_DEFAULTS = {"new_label_weight": 1.0, "max_label_energy": None}
#: Settings a log written before they were recorded cannot be checked against (they have no default).
UNRECORDED_BEFORE = {"frames_sha256", "frames_stress_pbc_sha256", "trainer", "fine_tune_trainer", "loss",
                     "committee", "initial_committee_sha256"}
#: The Trainer attributes that change what a training run computes (device, run_dir, resume,
#: checkpointing, progress and callbacks do not).
TRAINER_SETTINGS = ("epochs", "batch_size", "lr", "weight_decay", "schedule", "patience", "monitor", "mode",
                    "min_delta", "clip_norm", "dtype", "seed", "restore_best", "eval_grad")


def _trainer_settings(trainer: Trainer | None) -> dict[str, Any] | None:
    """The JSON-able settings of ``trainer`` that shape its fit (None for None)."""
    if trainer is None:
        return None
    return {k: str(v) if k == "dtype" and v is not None else v for k, v in
            ((k, getattr(trainer, k)) for k in TRAINER_SETTINGS)}


def _frames_digest(frames: Sequence[Atoms]) -> str:
    """SHA-256 of the frames' species, positions, cells and stored energies and forces: two sets of
    frames of the same count are told apart (a workdir resumed with other data would mix two runs)."""
    h = hashlib.sha256()
    for f in frames:
        results = f.calc.results
        for array in (f.numbers, f.positions, f.cell[:], np.asarray(results["energy"]), results["forces"]):
            h.update(np.ascontiguousarray(array, dtype=float).tobytes())
    return h.hexdigest()


def _frames_stress_pbc_digest(frames: Sequence[Atoms]) -> str:
    """SHA-256 of what :func:`_frames_digest` leaves out and training reads: each frame's periodic
    directions (its neighbour list) and stored stress (a label when ``loss.w_stress > 0``), so that frames
    differing only there are told apart. Kept beside ``frames_sha256``, which logs already record."""
    parts: list[Any] = []
    for f in frames:
        stress = _reference(f, "stress")
        parts += [f.pbc, np.array(["no stress"]) if stress is None else stress]
    return data_digest(*parts)


def _labelled(frames: Sequence[Atoms], what: str) -> list[Atoms]:
    frames = as_frames(frames)
    missing = [k for k, f in enumerate(frames)
               if f.calc is None or not {"energy", "forces"} <= set(getattr(f.calc, "results", {}))]
    if missing:
        raise InputError(f"{what} frames {missing[:10]} have no stored energy and forces (atoms.calc.results)")
    return frames


def _scores(committee: Committee, frames: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """``(B,)`` committee force variance per structure (eV^2/Å^2, mean over atoms and components) and
    ``(B,)`` committee mean energy (eV), one batch."""
    out = committee.predict(list(frames))
    all_forces = out["all_forces"]
    counts = torch.tensor([len(f) for f in frames], device=all_forces.device)
    batch = torch.repeat_interleave(torch.arange(len(frames), device=all_forces.device), counts)
    variance = structure_force_variance(all_forces, batch, counts).detach().cpu().double().numpy()
    return variance, out["energy"].detach().cpu().double().numpy()


def _composition(atoms: Atoms) -> tuple[int, ...]:
    return tuple(sorted(atoms.numbers.tolist()))


def _lowest_energies(frames: Sequence[Atoms]) -> dict[tuple[int, ...], float]:
    """The lowest stored energy (eV) of each composition among ``frames``."""
    lowest: dict[tuple[int, ...], float] = {}
    for f in frames:
        key, e = _composition(f), float(f.get_potential_energy())
        lowest[key] = min(e, lowest.get(key, math.inf))
    return lowest


class ActiveLearning:
    """Train a committee, sample candidates, label the most uncertain new ones, retrain; repeat.

    Parameters
    ----------
    committee_factory : callable
        ``committee_factory(seed=int) -> Committee``: a fresh, untrained committee (retrained from
        scratch every generation, as in the paper).
    labeler : ASE calculator, or a sims potential (torch module with a ``cutoff``)
        The ground truth (classical potential, xTB, DFT). A :class:`sims.potentials.CalculatorPotential`
        labels through its ASE calculator; any other sims potential through
        :func:`sims.energy_and_forces` in float64. A geometry on which it raises or returns a
        non-finite energy or force is logged as failed and skipped; the loop goes on.
    train_frames, test_frames : sequences of ase.Atoms
        Labelled (stored energy and forces). The test frames are held out: only scored.
    generations : int
        Rounds of labelling; the log has ``generations + 1`` entries (the last one only trains
        and scores).
    per_generation : int
        Labels asked per generation (at most; fewer when fewer candidates pass the selection).
    sampler : {"adversarial", "md", "random"}
        How candidates are made from training frames: :func:`learners.adversarial.attack`, MD
        with the committee (Langevin at ``temperature``; all starts in one :class:`sims.BatchMD` run, each
        as its lone :class:`sims.MD` run), or Gaussian displacements of standard deviation ``displacement`` (Å).
    seed : int
        Every random choice of generation ``g`` draws from ``SeedSequence((seed, g))``.
    workdir : path
        Where ``labels.db`` and ``log.json`` go; an existing run there is resumed when its
        settings match (:meth:`settings`: these arguments, digests of the frames and of an
        ``initial_committee``'s weights, and the class and ``hparams`` of the members
        ``committee_factory`` builds) and it labelled at most ``generations`` generations.
    candidates : int, optional
        Candidates per generation (default ``4 * per_generation``).
    percentile : float
        Only candidates whose force variance is at or above this percentile of the generation's
        candidates are eligible (0 keeps all).
    min_rmsd : float
        Å; a candidate closer than this (root-mean-square displacement, same atom order, no
        alignment) to a training frame or an already selected candidate is not labelled.
    cluster : bool
        Spread the labels over distinct geometries: the eligible candidates are grouped into
        ``per_generation`` clusters (k-means, scikit-learn, on each candidate's sorted interatomic
        distances, a descriptor blind to rotation, translation and atom order) and the most
        uncertain candidate of each cluster is labelled, instead of the most uncertain overall.
    kT : float, optional
        eV per atom, for the adversarial sampler (see :class:`learners.adversarial.AdversarialLoss`);
        default 0.1.
    attack_steps, attack_lr : int, float, optional
        Of the adversarial sampler; default 30 and 0.01.
    temperature, md_steps, timestep : float, int, float, optional
        K, steps, fs: of the MD sampler; default 300, 20 and 1.
    displacement : float, optional
        Å, of the random sampler; default 0.05.

        Each sampler reads its own settings only: another sampler's, given, is refused (the rule of
        ``matrep active`` configs, :func:`learners.samplers.foreign_sampler_setting`).
    trainer : Trainer, optional
        Trains each member (default ``Trainer(epochs=100, batch_size=16, lr=5e-3, eval_grad=True)``).
    loss : PotentialLoss, optional
        Default ``PotentialLoss()``. Its weights, and the settings of ``trainer`` and ``fine_tune``
        that shape a fit (:data:`TRAINER_SETTINGS`), are part of :meth:`settings`: a workdir is
        resumed only with the same ones.
    fine_tune : Trainer, optional
        When given, generation ``g > 0`` does not retrain a fresh committee with ``trainer``: it
        continues training a copy of generation ``g - 1``'s committee (its weights, energy shifts
        and scale) on the grown training set with this trainer. Retraining from scratch (the
        default, the paper's loop) spends most of its epochs relearning the initial frames and
        draws new initialisations each generation, whose scatter can hide what the labels change;
        continuing the previous committee reaches a converged fit in fewer epochs and keeps
        each member's lineage, so the generations differ by their data.
    initial_committee : Committee, optional
        A committee already trained on ``train_frames`` to use (a copy) as generation 0's instead
        of training one: several loops that start from the same frames (one per sampler) then
        share the first fit.
    new_label_weight : float
        Loss weight (> 0) of every label of the loop in each retraining, the initial frames
        weighing 1 (:func:`learners.potentials.fit_potential` ``weights``: an integer ``w`` counts
        a label as ``w`` copies of it in its batch). The authors' loop (``robust/actlearn/
        pipeline.py``, ``dset_train_weight = 4``) repeats the labels of all generations 4 times in
        the training set. 1 (default) trains on all frames alike.
    max_label_energy : float, optional
        eV per structure above the lowest true energy among the training frames (initial and
        labels) of the same composition. Candidates whose committee mean energy lies above it are
        not labelled (their number is logged as ``over_cap``; the uncertainty threshold is taken
        over the others), and a labelled geometry whose true energy lies above it is not trained
        on: it is logged under ``skipped`` with its energy and the reason (not written to
        ``labels.db``). Per structure, not per atom, because the cap bounds a Boltzmann weight of
        the whole geometry (an energy window such as the 0-1.84 eV of the authors' ammonia set);
        comparing within a composition keeps it meaningful when the frames differ in size. None
        (default): no cap.

    Raises
    ------
    InputError
        Unlabelled frames, an unknown sampler, another sampler's setting, non-positive counts, ``kT <= 0``, or (from :meth:`run`) a
        ``workdir`` holding a run with other settings or of more generations.

    Examples
    --------
    >>> loop = ActiveLearning(lambda seed: Committee.build(PaiNN, k=3, seed=seed), MorsePotential(),
    ...                       train, test, generations=3, per_generation=8, seed=0, workdir="al")  # doctest: +SKIP
    >>> loop.run().log_[-1]["forces_mae"]                                                            # doctest: +SKIP
    """

    def __init__(self, committee_factory: Callable[..., Committee], labeler, train_frames: Sequence[Atoms],
                 test_frames: Sequence[Atoms], *, generations: int, per_generation: int, sampler: str = "adversarial",
                 seed: int, workdir: str | os.PathLike, candidates: int | None = None, percentile: float = 50.0,
                 min_rmsd: float = 0.01, cluster: bool = False, kT: float | None = None, attack_steps: int | None = None,
                 attack_lr: float | None = None, temperature: float | None = None, md_steps: int | None = None,
                 timestep: float | None = None, displacement: float | None = None,
                 trainer: Trainer | None = None, loss: PotentialLoss | None = None,
                 fine_tune: Trainer | None = None, initial_committee: Committee | None = None,
                 new_label_weight: float = 1.0, max_label_energy: float | None = None) -> None:
        if not callable(committee_factory):
            raise InputTypeError(f"committee_factory must be callable (seed=int) -> Committee, "
                                 f"got {type(committee_factory).__name__}")
        self._truth = self._ground_truth(labeler)
        self.train_frames = _labelled(train_frames, "training")
        self.test_frames = _labelled(test_frames, "test")
        trained = set(np.concatenate([f.numbers for f in self.train_frames]).tolist())
        unseen = sorted(set(np.concatenate([f.numbers for f in self.test_frames]).tolist()) - trained)
        if unseen:
            from ase.data import chemical_symbols

            raise InputError(f"test frames hold element(s) {[chemical_symbols[z] for z in unseen]} that no training "
                             f"frame has ({sorted(chemical_symbols[z] for z in trained)}): a committee cannot be "
                             "scored on elements it never saw")
        if sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
        given = dict(kT=kT, attack_steps=attack_steps, attack_lr=attack_lr, temperature=temperature, md_steps=md_steps,
                     timestep=timestep, displacement=displacement)
        foreign = foreign_sampler_setting(sampler, given)
        if foreign:
            raise InputError(f"{foreign[0]} is read by sampler={foreign[1]!r} only, not by sampler={sampler!r}; "
                             f"leave it out or set sampler={foreign[1]!r}")
        # None: the default, also for the other samplers' settings, which settings() records
        resolved = {k: v for defaults in SAMPLER_SETTINGS.values() for k, v in defaults.items()}
        resolved.update({k: v for k, v in given.items() if v is not None})
        kT, attack_steps, attack_lr, temperature, md_steps, timestep, displacement = (resolved[k] for k in given)
        for name, value, low in (("generations", generations, 0), ("per_generation", per_generation, 1),
                                 ("attack_steps", attack_steps, 1), ("md_steps", md_steps, 1),
                                 ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{name} must be an int >= {low}, got {value!r}")
        candidates = 4 * per_generation if candidates is None else candidates
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < per_generation:
            raise InputError(f"candidates must be an int >= per_generation ({per_generation}), got {candidates!r}")
        if not (0 <= percentile <= 100):
            raise InputError(f"percentile must lie in [0, 100], got {percentile!r}")
        for name, value in (("min_rmsd", min_rmsd), ("displacement", displacement), ("attack_lr", attack_lr),
                            ("temperature", temperature), ("timestep", timestep)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
        self.committee_factory = committee_factory
        self.generations, self.per_generation, self.sampler, self.seed = generations, per_generation, sampler, seed
        self.workdir = Path(workdir)
        self.candidates, self.percentile, self.min_rmsd = candidates, float(percentile), float(min_rmsd)
        self.cluster = bool(cluster)
        self.kT = _check_kT(kT)
        self.attack_steps, self.attack_lr = attack_steps, float(attack_lr)
        self.temperature, self.md_steps, self.timestep = float(temperature), md_steps, float(timestep)
        self.displacement = float(displacement)
        self.trainer = Trainer(epochs=100, batch_size=16, lr=5e-3, eval_grad=True) if trainer is None else trainer
        if loss is not None and not isinstance(loss, PotentialLoss):
            raise InputTypeError(f"loss must be a learners.potentials.PotentialLoss, got {type(loss).__name__}")
        # None trains with PotentialLoss()'s weights: made explicit so that settings() records them.
        self.loss = PotentialLoss() if loss is None else loss
        for name, value in (("trainer", self.trainer), ("fine_tune", fine_tune)):
            if value is not None and not isinstance(value, Trainer):
                raise InputTypeError(f"{name} must be a learners.trainer.Trainer, got {type(value).__name__}")
        if initial_committee is not None and not isinstance(initial_committee, Committee):
            raise InputTypeError(f"initial_committee must be a trained Committee, got {type(initial_committee).__name__}")
        self.fine_tune, self.initial_committee = fine_tune, initial_committee
        if isinstance(new_label_weight, bool) or not (isinstance(new_label_weight, (int, float))
                                                      and math.isfinite(new_label_weight) and new_label_weight > 0):
            raise InputError(f"new_label_weight must be a finite number > 0, got {new_label_weight!r}")
        if max_label_energy is not None and (isinstance(max_label_energy, bool) or not (
                isinstance(max_label_energy, (int, float)) and math.isfinite(max_label_energy) and max_label_energy > 0)):
            raise InputError(f"max_label_energy must be None or a finite number > 0 eV, got {max_label_energy!r}")
        self.new_label_weight = float(new_label_weight)
        self.max_label_energy = None if max_label_energy is None else float(max_label_energy)
        self.log_: list[dict[str, Any]] = []
        self.committee_: Committee | None = None
        self._committee: list[dict[str, Any] | None] | None = None  # the factory's kind of committee, once built

    @staticmethod
    def _ground_truth(labeler) -> Callable[[Atoms], tuple[float, np.ndarray]]:
        """``atoms -> (energy in eV, forces in eV/Å)`` of the labeler."""
        import torch

        from sims import energy_and_forces
        from sims.potentials import CalculatorPotential

        if isinstance(labeler, CalculatorPotential):
            labeler = labeler.calculator
        if hasattr(labeler, "get_property") and hasattr(labeler, "implemented_properties"):
            def label(atoms: Atoms) -> tuple[float, np.ndarray]:
                atoms.calc = labeler
                try:
                    return float(atoms.get_potential_energy()), np.asarray(atoms.get_forces(), dtype=np.float64)
                finally:
                    atoms.calc = None
            return label
        if isinstance(labeler, torch.nn.Module) and hasattr(labeler, "cutoff"):
            return lambda atoms: energy_and_forces(labeler, atoms, dtype=torch.float64)
        raise InputTypeError(f"labeler must be an ASE calculator or a sims potential (a torch module with a "
                             f"cutoff), got {type(labeler).__name__}")

    def settings(self) -> dict[str, Any]:
        """What a resumed run must share with the run in ``workdir`` (``generations`` may grow)."""
        return {"sampler": self.sampler, "seed": self.seed, "per_generation": self.per_generation,
                "candidates": self.candidates, "percentile": self.percentile, "min_rmsd": self.min_rmsd,
                "cluster": self.cluster,
                "kT": self.kT, "attack_steps": self.attack_steps, "attack_lr": self.attack_lr,
                "temperature": self.temperature, "md_steps": self.md_steps, "timestep": self.timestep,
                "displacement": self.displacement, "n_train": len(self.train_frames), "n_test": len(self.test_frames),
                "frames_sha256": _frames_digest([*self.train_frames, *self.test_frames]),
                "frames_stress_pbc_sha256": _frames_stress_pbc_digest([*self.train_frames, *self.test_frames]),
                "fine_tune": self.fine_tune is not None, "initial_committee": self.initial_committee is not None,
                "new_label_weight": self.new_label_weight, "max_label_energy": self.max_label_energy,
                "trainer": _trainer_settings(self.trainer), "fine_tune_trainer": _trainer_settings(self.fine_tune),
                "loss": {"w_energy": self.loss.w_energy, "w_forces": self.loss.w_forces,
                         "w_stress": self.loss.w_stress},
                "committee": self._committee_record(),
                "initial_committee_sha256": None if self.initial_committee is None else weights_digest(
                    *self.initial_committee.models)}

    def _committee_record(self) -> list[dict[str, Any] | None]:
        """The class and plain attributes (``hparams``, cutoff) of each member the factory builds."""
        if self._committee is None:
            from learners.trainer import _plain_record

            built = self.committee_factory(seed=0)
            self._committee = [_plain_record(m) for m in getattr(built, "models", [built])]
        return self._committee

    @property
    def labels_path(self) -> Path:
        return self.workdir / "labels.db"

    @property
    def committee_path(self) -> Path:
        return self.workdir / "committee.pt"

    def generation_path(self, g: int) -> Path:
        """Where generation ``g``'s committee is kept when ``fine_tune`` is set."""
        return self.workdir / f"committee_{g}.pt"

    @property
    def log_path(self) -> Path:
        return self.workdir / "log.json"

    def _saved_log(self) -> list[dict[str, Any]] | None:
        """The log of the run in ``workdir`` (None when there is none), refused unless this loop may resume it.

        Reads only: :meth:`run` and ``matrep active`` check a workdir with it before they write anything.

        Raises
        ------
        InputError
            ``log.json`` is no active-learning log, holds a run with other settings, or one that labelled
            more generations than ``generations``.
        """
        if not self.log_path.exists():
            return None
        try:
            saved = json.loads(self.log_path.read_text())
        except json.JSONDecodeError as err:
            raise InputError(f"{self.log_path} is not an active-learning log: {err}") from None
        if not isinstance(saved, dict) or saved.get("format") != LOG_FORMAT:
            raise InputError(f"{self.log_path} is not an active-learning log (format {LOG_FORMAT!r})")
        # A log written before a setting existed ran with its default. Another sampler's settings were
        # never read (a log may hold ones given before they were refused): not compared.
        unread = foreign_settings(self.sampler)
        old = {k: v for k, v in {**SETTING_DEFAULTS, **saved["settings"]}.items() if k not in unread}
        now = {k: v for k, v in self.settings().items()
               if k not in unread and (k in old or k not in UNRECORDED_BEFORE)}
        if old != now:
            diff = sorted(k for k in now if old.get(k) != now[k])
            raise InputError(f"{self.workdir} holds a run with other settings ({', '.join(diff)} differ); "
                             f"use another workdir")
        log = saved["generations"]
        # Every generation but the last labels (its entry has "candidates"). A run that labelled more
        # holds labels a run of ``generations`` never made, and its last committee is a later
        # generation's (committees are kept per generation only with fine_tune): refused, not
        # returned as if it were the run asked for.
        labelled = sum("candidates" in entry for entry in log)
        if labelled > self.generations:
            raise InputError(f"{self.workdir} holds a run that labelled {labelled} generation(s), more than "
                             f"generations = {self.generations}; ask for generations >= {labelled} (its log.json "
                             f"entry g holds the test errors of generation g's committee), or use another workdir")
        return log

    def _resume(self) -> tuple[list[dict[str, Any]], list[Atoms]]:
        """The finished generations' log and labels; rows written after the last one are removed."""
        log = self._saved_log()
        if log is None:
            if self.labels_path.exists():
                FrameWriter(self.labels_path).truncate(0)
            return [], []
        if log and "candidates" not in log[-1] and log[-1]["generation"] < self.generations:
            log = log[:-1]      # the old last generation only scored; with more generations it labels too
        mark = log[-1]["labels_mark"] if log else 0
        writer = FrameWriter(self.labels_path)
        if writer.size() < mark:  # deleted or replaced since: the next generations would train without them
            raise InputError(f"{self.labels_path} holds fewer labels than {self.log_path} records (mark {mark}, now "
                             f"{writer.size()}); restore it, or start the run in a new workdir")
        writer.truncate(mark)
        labels = read_frames(self.labels_path) if self.labels_path.exists() else []
        return log, labels

    def _write_log(self) -> None:
        atomic_write(self.log_path, json.dumps({"format": LOG_FORMAT, "settings": self.settings(),
                                                "generations": self.log_}, indent=1))

    def run(self, *, progress: bool | None = None) -> "ActiveLearning":
        """Run (or resume) the loop to ``generations``; return self with :attr:`log_` and :attr:`committee_`.

        ``progress``: a bar over generations on stderr (None: only when stderr is a terminal).
        """
        from tqdm.auto import tqdm

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_, labels = self._resume()
        self.committee_ = None      # a fine-tuned generation starts from this run's last, or from its file
        writer = FrameWriter(self.labels_path)
        # tqdm's disable=None: shown only on a terminal.
        bar = tqdm(range(len(self.log_), self.generations + 1), desc="generations", initial=len(self.log_),
                   total=self.generations + 1, disable=None if progress is None else not progress)
        for g in bar:
            streams = np.random.SeedSequence((self.seed, g)).generate_state(3)
            train = self.train_frames + labels
            weights = None if self.new_label_weight == 1 else \
                [1.0] * len(self.train_frames) + [self.new_label_weight] * len(labels)
            committee = self._train(g, train, int(streams[0]), weights)
            self.committee_ = committee
            self._save(committee, g)
            entry: dict[str, Any] = {"generation": g, "n_train": len(train), "labels_used": len(labels),
                                     **frame_errors(committee, self.test_frames)}
            if g < self.generations:
                new, report = self._generation(committee, train, g, int(streams[1]), np.random.default_rng(streams[2]))
                for atoms, meta in new:
                    writer.write(atoms, meta)
                    labels.append(atoms)
                entry.update(report)
            entry["labels_mark"] = writer.size()
            self.log_.append(entry)
            self._write_log()
            bar.set_postfix(labels=len(labels), forces_mae=f"{entry['forces_mae']:.3g}")
        bar.close()
        if self.committee_ is None and self.committee_path.exists():    # every generation was done before
            self.committee_ = self._load(self.committee_path)
        return self

    def _load(self, path: Path) -> Committee:
        """A saved committee, in the dtype the factory's committees have."""
        dtype = next(self.committee_factory(seed=0).parameters()).dtype
        return load_potential(path, dtype=dtype)

    def _train(self, g: int, train: list[Atoms], seed: int, weights: list[float] | None) -> Committee:
        """Generation ``g``'s committee: the given initial one, a fine-tuned copy of the last, or a fresh fit."""
        if g == 0 and self.initial_committee is not None:
            return copy.deepcopy(self.initial_committee)
        if g > 0 and self.fine_tune is not None:
            if self.committee_ is not None:
                committee = copy.deepcopy(self.committee_)
            else:       # resumed: the previous generation's committee from its file
                path = self.generation_path(g - 1)
                if not path.exists():
                    raise InputError(f"{path} is missing: a fine-tuned run resumes from the previous generation's "
                                     "committee; start the run in a new workdir")
                committee = self._load(path)
            # The shifts and scale stay those the committee was trained with: refitting them under
            # trained weights would move every prediction.
            fit_potential(committee, train, trainer=self.fine_tune, loss=self.loss, fit_shifts=False, weights=weights)
            return committee
        committee = self.committee_factory(seed=seed)
        if not isinstance(committee, Committee):
            raise InputTypeError(f"committee_factory returned {type(committee).__name__}, not a Committee")
        fit_potential(committee, train, trainer=self.trainer, loss=self.loss, weights=weights)
        return committee

    def _save(self, committee: Committee, g: int) -> None:
        """Write the generation's committee to ``committee.pt`` (and ``committee_<g>.pt`` when fine-tuning)."""
        try:
            save_potential(committee, self.committee_path)
            if self.fine_tune is not None:
                save_potential(committee, self.generation_path(g))
        except InputError as err:
            if self.fine_tune is not None:
                raise InputError(f"fine_tune needs committees the potential store can save ({err})") from None
            # a model kind the potential store does not know: kept in memory only

    def _generation(self, committee: Committee, train: list[Atoms], g: int, seed: int,
                    rng: np.random.Generator) -> tuple[list[tuple[Atoms, dict]], dict[str, Any]]:
        parents = rng.choice(len(train), size=self.candidates, replace=len(train) < self.candidates)
        candidates = self._sample(committee, [train[k] for k in parents], train, seed, rng)
        report: dict[str, Any] = {"candidates": len(candidates), "failed": [], "over_cap": 0, "skipped": []}
        if not candidates:
            report.update(selected=0, max_uncertainty=math.nan, threshold=math.nan)
            return [], report
        variance, energy = _scores(committee, [c for c, _ in candidates])
        report["max_uncertainty"] = float(variance.max())
        lowest = _lowest_energies(train)
        eligible = np.ones(len(candidates), dtype=bool)
        if self.max_label_energy is not None:
            above = energy - np.array([lowest[_composition(c)] for c, _ in candidates])
            eligible = above <= self.max_label_energy
            report["over_cap"] = int((~eligible).sum())
        if not eligible.any():
            report.update(selected=0, threshold=math.nan)
            return [], report
        threshold = float(np.percentile(variance[eligible], self.percentile))
        report["threshold"] = threshold
        chosen: list[int] = []
        references = [f.positions for f in train]
        order = np.argsort(-variance, kind="stable")
        order = order[eligible[order]]
        if self.cluster:
            order = self._cluster_heads(order[variance[order] >= threshold], [c for c, _ in candidates],
                                        references, int(rng.integers(2**31)))
        for k in order:
            if variance[k] < threshold or len(chosen) == self.per_generation:
                break
            atoms = candidates[k][0]
            if self._near(atoms, references):
                continue
            chosen.append(int(k))
            references.append(atoms.positions)
        report["selected"] = len(chosen)
        new = []
        for k in chosen:
            atoms, parent = candidates[k]
            labelled, error = self._label(atoms)
            if labelled is None:
                report["failed"].append({"candidate": k, "parent": int(parents[parent]), "error": error,
                                         "positions": atoms.positions.tolist()})
                continue
            excess = labelled.get_potential_energy() - lowest[_composition(labelled)]
            if self.max_label_energy is not None and excess > self.max_label_energy:
                report["skipped"].append({
                    "candidate": k, "parent": int(parents[parent]), "energy": labelled.get_potential_energy(),
                    "above_lowest": excess, "committee_above_lowest": float(energy[k] - lowest[_composition(labelled)]),
                    "reason": f"true energy {excess:.3f} eV above the lowest training energy exceeds "
                              f"max_label_energy = {self.max_label_energy} eV; not trained on",
                    "positions": atoms.positions.tolist()})
                continue
            new.append((labelled, {"generation": g, "seed": seed, "parent": int(parents[parent]),
                                   "sampler": self.sampler, "uncertainty": float(variance[k])}))
        return new, report

    def _cluster_heads(self, eligible: np.ndarray, candidates: list[Atoms], references: list[np.ndarray],
                       seed: int) -> np.ndarray:
        """The most uncertain candidate of each k-means cluster of ``eligible`` (most uncertain first),
        those near a training frame left out before clustering."""
        from sklearn.cluster import KMeans

        eligible = np.array([k for k in eligible if not self._near(candidates[k], references)], dtype=int)
        if len(eligible) <= self.per_generation:
            return eligible
        described = [np.sort(candidates[k].get_all_distances(mic=bool(candidates[k].pbc.any()))[
            np.triu_indices(len(candidates[k]), 1)]) for k in eligible]
        width = max(len(d) for d in described)
        x = np.stack([np.pad(d, (0, width - len(d))) for d in described])
        labels = KMeans(n_clusters=self.per_generation, n_init=4, random_state=seed).fit_predict(x)
        # ``eligible`` is sorted by uncertainty, so each cluster's first member is its most uncertain.
        _, first = np.unique(labels, return_index=True)
        return eligible[np.sort(first)]

    def _near(self, atoms: Atoms, references: list[np.ndarray]) -> bool:
        same = [r for r in references if r.shape == atoms.positions.shape]
        if not same:
            return False
        rmsd = np.sqrt(((np.stack(same) - atoms.positions) ** 2).sum(-1).mean(-1))
        return bool(rmsd.min() < self.min_rmsd)

    def _sample(self, committee: Committee, starts: list[Atoms], train: list[Atoms], seed: int,
                rng: np.random.Generator) -> list[tuple[Atoms, int]]:
        """Candidates as ``(atoms, index into starts)``."""
        if self.sampler == "adversarial":
            # The training energies set Z, as in the paper.
            out = attack(committee, starts, kT=self.kT, steps=self.attack_steps, lr=self.attack_lr, seed=seed,
                         reference=train)
            return [(a, a.info["parent"]) for a in out]
        if self.sampler == "random":
            out = []
            for k, s in enumerate(starts):
                a = Atoms(numbers=s.numbers, positions=s.positions + rng.normal(0, self.displacement, (len(s), 3)),
                          cell=s.cell, pbc=s.pbc)
                out.append((a, k))
            return out
        from sims import BatchMD
        from sims.integrators import Langevin

        # One batched run: each start follows the trajectory a lone sims.MD run with its seed would.
        seeds = np.random.SeedSequence((seed, 1)).generate_state(len(starts))
        plain = [Atoms(numbers=s.numbers, positions=s.positions, cell=s.cell, pbc=s.pbc) for s in starts]
        md = BatchMD(plain, committee, Langevin(self.timestep, self.temperature, 0.01), temperature=self.temperature,
                     seed=[int(x) for x in seeds])
        md.run(self.md_steps)
        return [(Atoms(numbers=a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc), k)
                for k, a in enumerate(md.state.to_atoms())]

    def _label(self, atoms: Atoms) -> tuple[Atoms | None, str]:
        """``atoms`` with the ground truth's energy and forces stored, or None and the reason."""
        work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        try:
            energy, forces = self._truth(work)
        except Exception as err:  # any labeler failure (SCF not converged, ...) is logged, not fatal
            return None, f"{type(err).__name__}: {err}"
        if not (math.isfinite(energy) and np.isfinite(forces).all()):
            return None, f"non-finite energy or forces (energy {energy})"
        work.calc = SinglePointCalculator(work, energy=energy, forces=forces)
        return work, ""
