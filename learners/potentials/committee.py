"""Committees of independently initialised potentials: the spread of their predictions is the uncertainty.

Schwalbe-Koda, Tan & Gómez-Bombarelli, Nat. Commun. 12, 5104 (2021) (arXiv:2101.11588): K = 5
PaiNN models trained on the same data from different initialisations; the standard deviation of
their forces flags configurations outside the training data.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from ase import Atoms
from torch import nn

from learners.errors import InputError
from sims.errors import SimulationStopped
from sims.neighbors import PairList

from .base import NeuralPotential, _as_batch, evaluate, member_energies
from .batch import AtomsBatch

__all__ = ["Committee", "UncertaintyMonitor", "UncertaintyExceeded", "structure_force_variance"]


def structure_force_variance(all_forces: torch.Tensor, batch: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
    """Committee force variance of each structure, ``(B,)`` eV^2/Å^2.

    The members' variance (``unbiased=False``) of every force component, averaged over the atoms and
    the three components of each structure: the paper's sigma_F^2 (Schwalbe-Koda et al. 2021, eq. 2).

    Parameters
    ----------
    all_forces : torch.Tensor
        ``(K, N, 3)`` the members' forces, eV/Å.
    batch : torch.Tensor
        ``(N,)`` structure index of each atom.
    n_atoms : torch.Tensor
        ``(B,)`` atoms per structure.
    """
    per_atom = all_forces.var(0, unbiased=False).mean(-1)
    out = torch.zeros(len(n_atoms), dtype=per_atom.dtype, device=per_atom.device).index_add(0, batch, per_atom)
    return out / n_atoms.to(out.dtype)


class Committee(nn.Module):
    """``K`` potentials evaluated together on one shared neighbour list.

    As a :mod:`sims` potential (``committee(positions, cell, numbers, pairs)``) it returns the
    mean energy, so MD runs on the mean forces. :meth:`predict` gives the mean and the standard
    deviation (over members, ``unbiased=False``: the spread of these K models, not an estimate
    for a population) of energies and forces; the neighbour list is built once for all members.

    Parameters
    ----------
    models : sequence of NeuralPotential
        At least two members with the same cutoff.

    Examples
    --------
    >>> from ase.build import molecule
    >>> from learners.potentials import PaiNN
    >>> committee = Committee.build(PaiNN, k=3, seed=0, n_features=8, n_interactions=1)
    >>> committee.predict(molecule("H2O"))["forces_std"].shape
    torch.Size([3, 3])
    """

    def __init__(self, models: Sequence[NeuralPotential]) -> None:
        super().__init__()
        models = list(models)
        if len(models) < 2:
            raise InputError(f"a committee needs at least 2 models, got {len(models)}")
        cutoffs = {float(m.cutoff) for m in models}
        if len(cutoffs) != 1:
            raise InputError(f"committee members must share one cutoff to share a neighbour list, "
                             f"got {sorted(cutoffs)}")
        dtypes = {p.dtype for m in models for p in m.parameters()}
        if len(dtypes) != 1:
            # One precision per computation: a float32 member must not enter a float64 mean.
            raise InputError(f"committee members must share one dtype, got {sorted(str(d) for d in dtypes)}; "
                             f"cast them with model.to(dtype=...)")
        self.models = nn.ModuleList(models)
        self.cutoff = cutoffs.pop()

    @classmethod
    def build(cls, factory: Callable[..., NeuralPotential], k: int = 5, *, seed: int = 0, **kwargs) -> "Committee":
        """``k`` members ``factory(seed=s_m, **kwargs)``, independently initialised.

        The member seeds ``s_m`` are the ``k`` words :class:`numpy.random.SeedSequence` draws from
        ``seed``: committees of adjacent seeds (replicates ``seed = 0, 1, 2, ...``) share no member,
        as they did when member ``m`` took ``seed + m``.
        """
        if not isinstance(k, int) or k < 2:
            raise InputError(f"k must be an int >= 2, got {k!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"seed must be a non-negative int, got {seed!r}")
        member_seeds = np.random.SeedSequence(int(seed)).generate_state(k)
        return cls([factory(seed=int(s), **kwargs) for s in member_seeds])

    def __len__(self) -> int:
        return len(self.models)

    def uncertainty_monitor(self, threshold: float | None = None, *, stop: bool = False,
                            every: int = 1) -> "UncertaintyMonitor":
        """An :class:`UncertaintyMonitor` of this committee: the hook :func:`sims.generate.generate`
        looks for on its potential to record (and flag or stop on) the spread."""
        return UncertaintyMonitor(self, threshold=threshold, stop=stop, every=every)

    def largest_force_spread(self, structures: Sequence[Atoms]) -> np.ndarray:
        """``(B,)`` the largest per-atom force spread ``max_i |forces_std_i|`` (eV/Å) of each structure:
        the value :class:`UncertaintyMonitor` compares with its threshold."""
        out = self.predict(list(structures))
        norms = torch.linalg.norm(out["forces_std"], dim=1).detach().cpu().double().numpy()
        return np.maximum.reduceat(norms, np.cumsum([0] + [len(a) for a in structures[:-1]]))

    def spread_threshold(self, held_out: Sequence[Atoms], *, quantile: float = 0.9,
                         n_atoms: int | None = None) -> float:
        """An :class:`UncertaintyMonitor` threshold (eV/Å) calibrated on held-out reference frames.

        A structure of ``n_atoms`` atoms like ``held_out`` (same kind of configurations, not trained
        on) stays under the returned threshold with probability ``quantile``: the threshold is the
        ``quantile ** (N / n_atoms)`` quantile of the largest per-atom spread of the ``N``-atom
        held-out frames. The monitor flags the largest spread over all atoms, which grows with
        the number of atoms: were the blocks of ``N`` atoms of a larger cell independent, the
        largest spread over ``n_atoms`` would stay under ``t`` with probability
        ``P_N(t) ** (n_atoms / N)``. A threshold taken from the frames a committee was trained on
        (where its members agree best) and applied to a cell four times larger flags nearly every
        in-distribution frame; measured on Li10GeP2S12 (``examples/lgps_transport.py``).

        Parameters
        ----------
        held_out : sequence of ase.Atoms
            Reference frames of one size ``N`` (their labels are not used).
        quantile : float
            In (0, 1): the fraction of in-distribution structures that stay under the threshold.
        n_atoms : int, optional
            Atoms of the structures the threshold will be applied to; default ``N``.

        Raises
        ------
        InputError
            No frames, frames of several sizes, ``quantile`` outside (0, 1) or ``n_atoms < 1``.
        """
        if len(held_out) == 0:
            raise InputError("no held-out frames to calibrate the threshold on")
        sizes = {len(a) for a in held_out}
        if len(sizes) != 1:
            raise InputError(f"held-out frames must all have one size, got sizes {sorted(sizes)}")
        if not 0 < quantile < 1:
            raise InputError(f"quantile must lie in (0, 1), got {quantile!r}")
        size = sizes.pop()
        n_atoms = size if n_atoms is None else n_atoms
        if isinstance(n_atoms, bool) or not isinstance(n_atoms, (int, np.integer)) or n_atoms < 1:
            raise InputError(f"n_atoms must be a positive int, got {n_atoms!r}")
        return float(np.quantile(self.largest_force_spread(held_out), quantile ** (size / n_atoms)))

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, numbers: torch.Tensor, pairs: PairList,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        """Mean energy of the members, eV (scalar, or ``(B,)`` with ``batch``); the members share the
        pair geometry and run together where they can (:func:`learners.potentials.base.member_energies`)."""
        if all(isinstance(m, NeuralPotential) for m in self.models):
            return member_energies(list(self.models), positions, cell, numbers, pairs, batch).mean(0)
        return torch.stack([m(positions, cell, numbers, pairs, batch) for m in self.models]).mean(0)

    def predict(self, structures: AtomsBatch | Sequence[Atoms] | Atoms, *, forces: bool = True,
                stress: bool = False) -> dict[str, torch.Tensor]:
        """Mean and spread of the members' predictions.

        Returns
        -------
        dict
            ``energy``, ``energy_std`` ``(B,)`` eV; ``forces``, ``forces_std`` ``(N, 3)`` eV/Å;
            ``stress``, ``stress_std`` ``(B, 3, 3)`` eV/Å^3 when asked; and the members' own values
            as ``energies`` ``(K, B)``, ``all_forces`` ``(K, N, 3)``, ``all_stress`` ``(K, B, 3, 3)``.
        """
        out = evaluate(list(self.models), _as_batch(self, structures), forces=forces, stress=stress)
        result = {}
        for name, members in (("energy", "energies"), ("forces", "all_forces"), ("stress", "all_stress")):
            if name in out:
                result[name] = out[name].mean(0)
                result[f"{name}_std"] = out[name].std(0, unbiased=False)
                result[members] = out[name]
        return result


class UncertaintyExceeded(SimulationStopped):
    """The committee's force spread passed the threshold during MD (raised by :class:`UncertaintyMonitor`).

    A :class:`sims.errors.SimulationStopped`: ``except SimulationStopped`` catches every stop condition."""


class UncertaintyMonitor:
    """A :class:`sims.MD` callback recording a committee's spread along a trajectory.

    After every ``every`` steps it evaluates the committee on the current state (reusing the run's
    neighbour list), appends ``(step, energy_std [eV], max_i |forces_std_i| [eV/Å])`` to
    :attr:`records`, keeps the same values in :attr:`latest` (a dict ``energy_std``,
    ``forces_std_max``, ``uncertain``: what :func:`sims.generate.generate` stores with a frame),
    and, when the MD recorded a frame at this step, writes them into that frame's ``info``. A maximum force spread above
    ``threshold`` is flagged (``stop=False``) or stops the run with :class:`UncertaintyExceeded`
    (``stop=True``; the frames before it stay valid), the active-learning trigger of
    arXiv:2101.11588.

    On a :class:`sims.batch.BatchMD` the values are those of each replica: :attr:`latest` is a list of
    such dicts in replica order, :attr:`records` gets one tuple per replica (in that order), and a
    step is flagged (or stops the run) when any replica passes the threshold.

    Parameters
    ----------
    committee : Committee
        Usually the potential driving the MD, but any committee works (a cheaper model may drive).
    threshold : float, optional
        eV/Å; None only records.
    every : int
        Steps between checks.
    stop : bool
        Raise instead of flagging.

    Examples
    --------
    >>> monitor = UncertaintyMonitor(committee, threshold=0.5)                         # doctest: +SKIP
    >>> sims.MD(atoms, committee, sims.VelocityVerlet(1.0), callback=monitor).run(100)  # doctest: +SKIP
    """

    def __init__(self, committee: Committee, *, threshold: float | None = None, every: int = 1,
                 stop: bool = False) -> None:
        if not isinstance(committee, Committee):
            raise InputError(f"committee must be a Committee, got {type(committee).__name__}")
        if threshold is not None and not threshold > 0:
            raise InputError(f"threshold must be > 0 eV/Å or None, got {threshold}")
        if not isinstance(every, int) or every < 1:
            raise InputError(f"every must be a positive int, got {every!r}")
        self.committee, self.threshold, self.every, self.stop = committee, threshold, every, stop
        self.records: list[tuple[int, float, float]] = []
        self.flagged: list[int] = []
        self.latest: dict[str, float | bool] = {}

    def __call__(self, md) -> None:
        if md.step_count % self.every:
            return
        state = md.state
        batched = hasattr(state, "system")  # a sims.batch.BatchMD: several replicas in one state
        if not batched:
            pairs = md.neighbors.update(state.positions, state.cell, state.pbc)  # the run's list: no rebuild
            cell, pbc, system = state.cell[None], state.pbc[None], torch.zeros_like(state.numbers)
        else:
            system, cell, pbc = state.system, state.cell, state.pbc
            pairs = md.neighbors.update(state.positions, cell, pbc, system=system)
        batch = AtomsBatch(positions=state.positions.detach(), numbers=state.numbers, cell=cell, pbc=pbc,
                           batch=system, pairs=pairs)
        out = self.committee.predict(batch)
        norms = torch.linalg.norm(out["forces_std"], dim=1)
        f_max = torch.zeros_like(out["energy_std"]).scatter_reduce(0, system, norms, "amax", include_self=False)
        values = [{"energy_std": e, "forces_std_max": f, "uncertain": self.threshold is not None and f > self.threshold}
                  for e, f in zip(out["energy_std"].tolist(), f_max.tolist())]
        self.records.extend((md.step_count, v["energy_std"], v["forces_std_max"]) for v in values)
        self.latest = values if batched else values[0]
        if md.record_every and md.step_count % md.record_every == 0 and md.trajectory:
            frames = md.trajectory[-1]  # a BatchMD records a list of frames per step
            for frame, v in zip(frames if batched else [frames], values):
                frame.info.update(v)
        uncertain = [r for r, v in enumerate(values) if v["uncertain"]]
        if uncertain:
            self.flagged.append(md.step_count)
            if self.stop:
                f_std = max(values[r]["forces_std_max"] for r in uncertain)
                where = "" if not batched else f" (replicas {uncertain})"
                raise UncertaintyExceeded(f"committee force spread {f_std:.4g} eV/Å > threshold {self.threshold} "
                                          f"eV/Å at step {md.step_count}{where}; the frames before it are valid")
