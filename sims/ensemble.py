"""Ensembles of dataset-generation runs (seeds, temperatures, structures) as one batched run.

:func:`ensemble_configs` turns one config of :mod:`sims.generate` into one config per replica;
:func:`generate_batched` runs a list of such configs as one :class:`sims.batch.BatchMD`, and
:func:`generate_ensemble` runs them in batches of a given size, here or one batch per Dask task. Every
replica writes its own output and its own checkpoint, in exactly the files and format
:func:`sims.generate.generate` writes, and gets the trajectory that ``generate`` gives its config
alone (same initial velocities, the same noise streams ``(seed * 1000 + stage, 1)``, forces equal
to round-off). (:func:`sims.generate.generate_many` runs configs one at a time, or one per Dask task.)

What may differ between the configs of one batched run: ``seed``, ``[system]``, the stages'
``temperature`` and ``pressure`` and ``[output] path``. Everything else (potential, ``[md]``, the stages'
ensembles, steps, time steps, frictions, barostat settings, sampling, ``checkpoint_every``) must be
equal, the stages must be ``nve``, ``langevin``, ``nose_hoover_chain`` or ``npt`` with a cell-rescaling
barostat (``c_rescale`` or ``berendsen``; MTK is not batched), the engine ``matrep`` and the potential
one that takes a batch.

Resuming. All replicas are checkpointed at the same steps. A batched run restarted with the same
configs continues from the checkpoints when they are at one step; if a crash fell between two
replicas' checkpoint writes, they are not, and the run says so: then ``generate_many(configs)``
(or ``generate(config)`` for each) finishes every replica on its own from its checkpoint.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from reprs.fileio import FrameWriter

from .batch import BatchMD, BatchState
from .errors import SimsInputError
from .generate import (_dtype, _build_potential, _make_integrator, _open_checkpoint, _parse, _resolve,
                       _save_checkpoint, _state_from_dict, config_hash, load_config)

__all__ = ["ensemble_configs", "generate_batched", "generate_ensemble"]


def ensemble_configs(config: str | os.PathLike | Mapping[str, Any], *, seeds: Sequence[int] | None = None,
                     temperatures: Sequence[float] | None = None,
                     systems: Sequence[Mapping[str, Any]] | None = None,
                     pressures: Sequence | None = None) -> list[dict[str, Any]]:
    """One config per replica from ``config``: replica ``r`` takes ``seeds[r]``, ``temperatures[r]``,
    ``systems[r]`` and ``pressures[r]`` where given, and writes ``<stem>_<r><suffix>`` beside the config's output.

    Parameters
    ----------
    config : path or mapping
        A :mod:`sims.generate` config.
    seeds : sequence of int, optional
        Replica seeds (replace ``seed``). Not given: replica ``r`` takes the config's ``seed + r``, so
        replicas draw their own velocities and noise (one seed for all would make every replica
        start from the same draw, scaled, and feel the same noise: correlated, not independent, runs).
    temperatures : sequence of float, optional
        K; replica ``r`` runs every stage that has a ``temperature`` at ``temperatures[r]``
        (a ramp becomes that constant temperature).
    systems : sequence of mappings, optional
        ``[system]`` tables.
    pressures : sequence, optional
        bar (a number, three with per-axis coupling, or a 3x3 tensor with triclinic coupling); replica ``r``
        runs every ``npt`` stage at
        ``pressures[r]``.

    Returns
    -------
    list of dict
        Checked configs (:func:`sims.generate.load_config`).

    Raises
    ------
    SimsInputError
        No values given, or lists of different lengths.

    Examples
    --------
    >>> cfgs = ensemble_configs("argon.toml", seeds=[1, 2, 3, 4], temperatures=[60, 80, 100, 120])  # doctest: +SKIP
    >>> paths = generate_batched(cfgs)                                                               # doctest: +SKIP
    """
    cfg = load_config(config)
    given = {name: list(v) for name, v in (("seeds", seeds), ("temperatures", temperatures), ("systems", systems),
                                           ("pressures", pressures)) if v is not None}
    if not given:
        raise SimsInputError("an ensemble needs seeds, temperatures, systems or pressures (one value per replica)")
    if "pressures" in given and not any(st.get("ensemble") == "npt" for st in cfg["stages"]):
        raise SimsInputError("pressures need an 'npt' stage in the config (the other stages run at constant volume)")
    lengths = {name: len(v) for name, v in given.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise SimsInputError(f"give one value per replica in each list; got lengths {lengths}")
    out = []
    path = Path(cfg["output"]["path"])
    seed = _parse(cfg).seed  # the schema's default (0) where the config sets none
    for r in range(next(iter(lengths.values()))):
        c = copy.deepcopy(cfg)
        c["seed"] = int(given["seeds"][r]) if "seeds" in given else seed + r
        if "temperatures" in given:
            for stage in c["stages"]:
                if "temperature" in stage:
                    stage["temperature"] = float(given["temperatures"][r])
        if "systems" in given:
            c["system"] = dict(given["systems"][r])
        if "pressures" in given:
            for stage in c["stages"]:
                if stage.get("ensemble") == "npt":
                    p = given["pressures"][r]
                    stage["pressure"] = float(p) if isinstance(p, (int, float)) else [
                        [float(y) for y in x] if isinstance(x, (list, tuple)) else float(x) for x in p]
        c["output"] = dict(c["output"], path=str(path.with_name(f"{path.stem}_{r}{path.suffix}")))
        out.append(load_config(c))
    return out


def _without_targets(stage) -> dict[str, Any]:
    values = asdict(stage)
    values.pop("temperature")
    values.pop("pressure", None)
    return values


def _check_batchable(specs, cfgs) -> None:
    """Refuse configs that cannot run as one batch, naming the config and the difference."""
    ref, base = specs[0], cfgs[0]["_base"]
    paths = [_resolve(c, s.output.path) for c, s in zip(cfgs, specs)]
    if len(set(paths)) != len(paths):
        raise SimsInputError("two configs of the batch write the same output; give each its own [output] path")
    for r, (spec, cfg) in enumerate(zip(specs, cfgs)):
        if spec.engine != "matrep":
            raise SimsInputError(f"config {r}: engine = {spec.engine!r}; a batched run needs engine = 'matrep'")
        for k, stage in enumerate(spec.stages):
            if stage.ensemble not in ("nve", "langevin", "nose_hoover_chain", "npt") or (
                    stage.ensemble == "npt" and stage.barostat_kind == "mtk"):
                what = "an MTK barostat" if stage.ensemble == "npt" else repr(stage.ensemble)
                raise SimsInputError(f"config {r}: stages[{k}] is {what}; a batched run takes 'nve', 'langevin', "
                                     "'nose_hoover_chain' and 'npt' stages with barostat 'c_rescale' or 'berendsen' "
                                     "(run the others with sims.generate.generate_many(configs), one run each)")
        if spec.md.uncertainty_threshold is not None:
            raise SimsInputError(f"config {r}: md.uncertainty_threshold is not supported in a batched run")
        differ = []
        if spec.potential != ref.potential or cfg["_base"] != base:
            differ.append("[potential] (or the config folder it is read from)")
        # md.dtype left out and md.dtype = "float32" are the same run
        if replace(spec.md, dtype=None) != replace(ref.md, dtype=None) or _dtype(spec) != _dtype(ref):
            differ.append("[md]")
        if spec.output.checkpoint_every != ref.output.checkpoint_every:
            differ.append("output.checkpoint_every")
        if len(spec.stages) != len(ref.stages) or any(
                _without_targets(a) != _without_targets(b) for a, b in zip(spec.stages, ref.stages)):
            differ.append("[[stages]] (beyond their temperatures and pressures)")
        if differ:
            raise SimsInputError(f"config {r} differs from config 0 in {', '.join(differ)}; the configs of one batched "
                                 "run may differ only in seed, [system], stage temperatures and pressures and output "
                                 "path")


def generate_batched(configs: Sequence[str | os.PathLike | Mapping[str, Any]], *,
                     device: torch.device | str | None = None, progress: bool = False) -> list[Path]:
    """Run ``configs`` (see the module docstring) as one batched MD run; resume from their checkpoints.

    Parameters
    ----------
    configs : sequence of paths or mappings
        :mod:`sims.generate` configs, e.g. from :func:`ensemble_configs`.
    device : torch device, optional
        Overrides ``md.device``.
    progress : bool
        Print one line per checkpoint.

    Returns
    -------
    list of pathlib.Path
        The outputs, one per config, with the frames and metadata :func:`sims.generate.generate`
        writes for that config alone.

    Raises
    ------
    SimsInputError
        Configs that cannot share a run (the message names the config and the difference), an
        output without a checkpoint, a checkpoint of another config, or checkpoints at different steps.
    """
    cfgs = [load_config(c) for c in configs]
    if not cfgs:
        raise SimsInputError("no configs to run")
    specs = [_parse(c) for c in cfgs]
    _check_batchable(specs, cfgs)
    digests = [config_hash(c) for c in cfgs]
    md_cfg = specs[0].md
    dtype = _dtype(specs[0])
    device = device if device is not None else md_cfg.device
    potential = _build_potential(specs[0].potential, cfgs[0]["_base"], device=device, dtype=dtype)
    # A committee's spread goes with each sampled frame, as generate() writes it (no threshold here:
    # _check_batchable refuses one, so nothing is compared and "uncertain" is not stored).
    monitor = potential.uncertainty_monitor(None) if hasattr(potential, "uncertainty_monitor") else None
    outs = [_resolve(c, s.output.path) for c, s in zip(cfgs, specs)]
    writers = [FrameWriter(p) for p in outs]
    ckpt_paths = [p.with_name(p.name + ".ckpt") for p in outs]
    ckpts = [_open_checkpoint(spec, cfg, digest, out, writer, device=device, dtype=dtype)
             for spec, cfg, digest, out, writer in zip(specs, cfgs, digests, outs, writers)]
    if all(c["done"] for c in ckpts):
        return outs
    where = {(bool(c["done"]), int(c["stage"]), int(c["step_in_stage"])) for c in ckpts}
    if len(where) != 1:
        raise SimsInputError("the replicas' checkpoints are at different steps (a crash between two checkpoint writes); "
                             "finish them one at a time with sims.generate.generate_many(configs)")
    state = BatchState.from_states([_state_from_dict(c["state"], device, dtype) for c in ckpts])
    step, time_fs = int(ckpts[0]["step"]), float(ckpts[0]["time"])
    stage0, every, n_rep = int(ckpts[0]["stage"]), specs[0].output.checkpoint_every, len(specs)
    for k in range(stage0, len(specs[0].stages)):
        stages = [spec.stages[k] for spec in specs]
        first = int(ckpts[0]["step_in_stage"]) if k == stage0 else 0
        integrator = _make_integrator(stages[0])
        thermostat = stages[0].ensemble != "nve"
        md = BatchMD(state, potential, integrator, seed=[spec.seed * 1000 + k for spec in specs],
                     target_temperature=[st.target_temperature(first) for st in stages] if thermostat else None,
                     target_pressure=[st.pressure for st in stages] if stages[0].ensemble == "npt" else None,
                     skin=md_cfg.skin, min_distance=None)
        if k == stage0 and ckpts[0]["integrator"] is not None:
            md.state = state  # undo setup changes (a chain removes the drift): continue bit for bit
            md.load_replica_integrator_states([c["integrator"] for c in ckpts])
            md.refresh()
        n_steps, sample = stages[0].steps, stages[0].sample_every
        for s in range(first, n_steps):
            if thermostat:
                md.set_target_temperature([st.target_temperature(s) for st in stages])
            md.run(1)
            step += 1
            time_fs += integrator.timestep
            if sample and (s + 1) % sample == 0:
                if monitor is not None:
                    monitor(md)
                for r, frame in enumerate(md.frames()):
                    meta = {"step": step, "time": time_fs, "stage": k, "T": frame.info["temperature"],
                            "T_target": stages[r].target_temperature(s + 1), "seed": specs[r].seed,
                            "config_hash": digests[r]}
                    if "pressure" in frame.info:
                        meta.update(pressure_bar=frame.info["pressure"], cell_volume=frame.info["volume"])
                    if monitor is not None:
                        meta.update({name: v for name, v in monitor.latest[r].items() if name != "uncertain"})
                    frame.info.clear()
                    writers[r].write(frame, meta)
            if (s + 1) % every == 0 or s + 1 == n_steps:
                last = k == len(specs[0].stages) - 1 and s + 1 == n_steps
                for r in range(n_rep):
                    d = md.replica_state_dict(r)
                    ckpts[r] = {"config_hash": digests[r], "inputs": ckpts[r]["inputs"], "done": last,
                                "stage": k if s + 1 < n_steps else k + 1,
                                "step_in_stage": s + 1 if s + 1 < n_steps else 0, "step": step, "time": time_fs,
                                "state": d["state"], "integrator": d["integrator"] if s + 1 < n_steps else None,
                                "output_mark": writers[r].size()}
                    _save_checkpoint(ckpt_paths[r], ckpts[r])
                md.refresh()
                if progress:
                    temps = md.temperature().tolist()
                    print(f"stage {k} step {s + 1}/{n_steps} T={min(temps):.1f}..{max(temps):.1f} K "
                          f"({n_rep} replicas)", flush=True)
        state = md.state
    for r in range(n_rep):
        if not ckpts[r]["done"]:
            ckpts[r].update(done=True)
            _save_checkpoint(ckpt_paths[r], ckpts[r])
    return outs


def generate_ensemble(configs: Sequence[str | os.PathLike | Mapping[str, Any]], *, batch_size: int | None = None,
                      client=None, device: torch.device | str | None = None) -> list[Path]:
    """Run ``configs`` in batched runs of ``batch_size`` replicas: here one after the other, or one
    batch per Dask task when ``client`` (a ``dask.distributed.Client``) is given.

    Parameters
    ----------
    configs : sequence of paths or mappings
        As for :func:`generate_batched`.
    batch_size : int, optional
        Replicas per batched run; default all in one.
    client : dask.distributed.Client, optional
        Submit each batch as a task (workers need this package and the potential's files).
    device : torch device, optional
        Overrides ``md.device`` of the configs.

    Returns
    -------
    list of pathlib.Path
        The outputs in the order of ``configs``.

    Examples
    --------
    >>> cfgs = ensemble_configs("argon.toml", seeds=range(256))          # doctest: +SKIP
    >>> paths = generate_ensemble(cfgs, batch_size=64, client=client)    # doctest: +SKIP
    """
    cfgs = [load_config(c) for c in configs]
    if not cfgs:
        raise SimsInputError("no configs to run")
    size = len(cfgs) if batch_size is None else int(batch_size)
    if size < 1:
        raise SimsInputError(f"batch_size must be >= 1, got {batch_size}")
    groups = [cfgs[i:i + size] for i in range(0, len(cfgs), size)]
    if client is None:
        return [p for g in groups for p in generate_batched(g, device=device)]
    futures = client.map(generate_batched, groups, device=device, pure=False)
    return [p for paths in client.gather(futures) for p in paths]
