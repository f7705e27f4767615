"""``matrep enhanced CONFIG.toml -o OUT``: train a bias-path bias from a config, sample with it, write the results.

Schema -> build -> train -> sample -> write. A config::

    [system]
    kind = "mueller_brown"   # the ready set-up of BiasPathOptimizer.mueller_brown
    dim = 2                  # or 5

    [training]               # any BiasPathOptimizer setting; omitted ones keep the set-up's
    iterations = 30
    seed = 0

    [bias]
    start_from = "earlier/bias.pt"   # optional: continue from a saved bias

    [sampling]               # fresh trajectories under the trained bias
    n_trajectories = 100
    seed = 1

writes to ``OUT``: ``bias.pt`` (:func:`sims.enhanced.save_bias`, reusable as ``start_from`` or in
:class:`sims.MD`), ``history.csv``, ``summary.json`` (fresh success rates biased and unbiased),
``paths.png`` (fresh trajectories over the surface) and ``bias.png`` (the learned bias), each
written atomically; ``checkpoint.pt`` after every iteration, from which a rerun of the same
config into the same folder resumes (a changed config is refused).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from reprs.config import Schema, config_file, load_toml
from reprs.fileio import atomic_write

from .enhanced import BiasPathOptimizer, _evaluate, load_bias, save_bias
from .errors import ConfigError

__all__ = ["EnhancedConfig", "run_enhanced"]


class _Table(Schema):
    ERROR = ConfigError


@dataclass(frozen=True)
class EnhancedSystem(_Table):
    """``[system]``: which ready set-up (``kind``: ``BiasPathOptimizer.mueller_brown`` or
    ``.alanine_dipeptide``, the latter with the ``openmm`` extra) and the Müller-Brown dimension (2 or 5)."""

    kind: Literal["mueller_brown", "alanine_dipeptide"] = "mueller_brown"
    dim: int = 2

    def check(self, where: str) -> None:
        if self.dim not in (2, 5):
            raise ConfigError(f"{where}.dim must be 2 or 5, got {self.dim}")
        if self.kind != "mueller_brown" and self.dim != 2:
            raise ConfigError(f"{where}.dim sets the Müller-Brown dimension; kind = {self.kind!r} does not read it")


@dataclass(frozen=True)
class Training(_Table):
    """``[training]``: settings of :class:`~sims.enhanced.BiasPathOptimizer` (units there); unset ones keep the set-up's."""

    iterations: int | None = None
    n_trajectories: int | None = None
    n_steps: int | None = None
    backsteps: int | None = None
    mini_batch: int | None = None
    lr: float | None = None
    temperature: float | None = None
    friction: float | None = None
    timestep: float | None = None
    warmup: int | None = None
    confidence: float | None = None
    end_weight: float | None = None
    barrier_weight: float | None = None
    select: Literal["last", "best"] | None = None
    both_directions: bool | None = None
    gap: bool | None = None
    seed: int = 0

    def check(self, where: str) -> None:
        # both set-ups run one direction: gap is read only when both_directions = true is set here
        if self.gap is not None and not self.both_directions:
            raise ConfigError(f"{where}.gap is read only with {where}.both_directions = true (both set-ups run one "
                              "direction); set both_directions = true or remove gap")

    def overrides(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "seed" and getattr(self, f.name) is not None}


@dataclass(frozen=True)
class BiasOptions(_Table):
    """``[bias]``: ``start_from``, a file of :func:`~sims.enhanced.save_bias` to continue from
    (relative paths from the config's folder)."""

    start_from: str | None = None


@dataclass(frozen=True)
class Sampling(_Table):
    """``[sampling]``: fresh trajectories under the trained bias (and as many unbiased)."""

    n_trajectories: int = 100
    seed: int = 1

    def check(self, where: str) -> None:
        if self.n_trajectories < 1 or self.seed < 0:
            raise ConfigError(f"{where} needs n_trajectories >= 1 and seed >= 0, got {self.n_trajectories}, {self.seed}")


@dataclass(frozen=True)
class EnhancedConfig(_Table):
    """A whole ``matrep enhanced`` config (the module docstring shows one)."""

    system: EnhancedSystem = field(default_factory=EnhancedSystem)
    training: Training = field(default_factory=Training)
    bias: BiasOptions = field(default_factory=BiasOptions)
    sampling: Sampling = field(default_factory=Sampling)


def _figure_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _plots(opt: BiasPathOptimizer, frames: torch.Tensor, out: Path) -> None:
    """Fresh paths and the learned bias as PNG files: over the Müller-Brown surface in (x, y), or
    in the plane of the first two descriptors (phi and psi for alanine dipeptide, degrees)."""
    # A Figure without pyplot: no backend is chosen or changed for the caller.
    from matplotlib.figure import Figure

    from .potentials import MuellerBrown

    surface = isinstance(opt.system, MuellerBrown)
    if surface:
        x, y = np.meshgrid(np.linspace(-1.6, 1.2, 141), np.linspace(-0.5, 2.1, 131))
        labels, scale = ("x (Å)", "y (Å)"), 1.0
    else:
        x, y = np.meshgrid(np.linspace(-np.pi, np.pi, 121), np.linspace(-np.pi, np.pi, 121))
        labels, scale = (f"{opt.cvs[0]!r} (deg)", f"{opt.cvs[1]!r} (deg)"), 180 / np.pi
    grid = torch.tensor(np.stack([x.ravel(), y.ravel()], -1), dtype=torch.float64)
    with torch.no_grad():
        if surface:
            probe = torch.zeros((grid.shape[0], opt.start.shape[0], 3), dtype=torch.float64)
            probe[:, 0, :2] = grid
            bias = opt.bias.bias(_evaluate(opt.bias.cvs, probe)).reshape(x.shape).numpy()
            paths = frames[:, :, 0, :2].numpy()
        else:
            bias = opt.bias.bias(grid).reshape(x.shape).numpy()
            paths = opt.descriptors(frames)[..., :2].numpy()
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    if surface:
        energy = opt.system.surface(grid[:, 0], grid[:, 1]).reshape(x.shape).detach().numpy()
        top = energy.min() + 0.6 * (np.percentile(energy, 60) - energy.min()) + 0.2
        ax.contourf(x, y, np.minimum(energy, top), levels=np.linspace(energy.min(), top, 30), cmap="viridis")
    for b in range(min(paths.shape[1], 20)):
        ax.plot(paths[:, b, 0] * scale, paths[:, b, 1] * scale, color="white" if surface else "C0", lw=0.6,
                alpha=0.8, ls="-" if surface else "none", marker="" if surface else ".", ms=1)
    ax.set(xlabel=labels[0], ylabel=labels[1], title="fresh trajectories under the learned bias")
    atomic_write(out / "paths.png", _figure_bytes(fig))
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    image = ax.contourf(x * scale, y * scale, bias, levels=30, cmap="magma")
    fig.colorbar(image, ax=ax, label="bias (eV)")
    ax.set(xlabel=labels[0], ylabel=labels[1], title="learned bias")
    atomic_write(out / "bias.png", _figure_bytes(fig))


def run_enhanced(config, out, *, progress: bool = False) -> dict:
    """Train, sample and write the results of a ``matrep enhanced`` config; return the summary.

    Parameters
    ----------
    config : path or mapping
        A TOML file (:func:`reprs.config.load_toml`) or its content as a dict.
    out : path
        Output folder (created).
    progress : bool
        A progress bar over the training iterations.

    Raises
    ------
    sims.errors.ConfigError
        An invalid config (unknown key, wrong type, missing ``start_from`` file).
    """
    base = Path(".")
    if not isinstance(config, dict):
        base = Path(config).resolve().parent
        config = load_toml(config, error=ConfigError)
    cfg = EnhancedConfig.from_config(config, where="")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = cfg.training.overrides()
    if cfg.bias.start_from is not None:
        path = config_file(cfg.bias.start_from, base, "bias.start_from", error=ConfigError)
        settings["bias"] = load_bias(path)
    if cfg.system.kind == "mueller_brown":
        opt = BiasPathOptimizer.mueller_brown(dim=cfg.system.dim, seed=cfg.training.seed, **settings)
    else:
        opt = BiasPathOptimizer.alanine_dipeptide(seed=cfg.training.seed, **settings)
    result = opt.fit(progress=progress, checkpoint=out / "checkpoint.pt")
    save_bias(result.bias, out / "bias.pt")
    atomic_write(out / "history.csv", result.history.to_csv())
    frames, ended = opt.sample(cfg.sampling.n_trajectories, seed=cfg.sampling.seed)
    unbiased, _ = opt.sample(cfg.sampling.n_trajectories, seed=cfg.sampling.seed, bias=False)

    def reached(f):
        return float(opt.reached(f).double().mean())

    name = f"{cfg.system.kind} dim={cfg.system.dim}" if cfg.system.kind == "mueller_brown" else cfg.system.kind
    summary = {"system": name, "iterations": len(result.history),
               "final_loss": float(result.history.loss.iloc[-1]),
               "fresh_success_rate": reached(frames), "fresh_end_rate": float(ended.double().mean()),
               "unbiased_success_rate": reached(unbiased), "sampling_seed": cfg.sampling.seed}
    _plots(opt, frames, out)
    atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
