"""Ensembles of surface-hopping trajectories: initial conditions, chunked resumable runs, yields.

:func:`normal_mode_sample` draws positions and momenta around a minimum of the ground state from
the Wigner distribution of its harmonic normal modes (or their classical Boltzmann distribution);
:func:`run_ensemble` excites them vertically and runs :class:`sims.surface_hopping.FSSH` in chunks
of trajectories, locally or on a Dask cluster, writing one Parquet file per chunk (atomically, so
an interrupted run resumes where it stopped); :func:`hop` is ``matrep hop CONFIG.toml``.

Units: the models and :class:`~sims.surface_hopping.FSSH` work in atomic units; the time
arguments here are in fs (converted with :data:`~sims.surface_hopping.AU_TIME_FS`), temperatures
in K.

References
----------
Wigner sampling of normal modes: M. Hillery, R. F. O'Connell, M. O. Scully and E. P. Wigner,
Phys. Rep. 106, 121 (1984), Eq. 2.67 (the harmonic oscillator at temperature T:
``W(Q, P) ~ exp(-(P^2 + w^2 Q^2) / (w coth(w / 2kT)))``, hbar = 1); R. Crespo-Otero and
M. Barbatti, Chem. Rev. 118, 7026 (2018), sec. 3 (initial conditions for surface hopping).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from reprs.config import Schema, content_hash, load_toml
from reprs.fileio import atomic_open, atomic_write

from .config import weights_digest
from .errors import ConfigError, SimsInputError
from .surface_hopping import AU_TIME_FS, FSSH, KB_HARTREE, DiabaticModel, TorsionalIsomerisation

__all__ = ["normal_mode_sample", "normal_modes", "run_ensemble", "EnsembleResult", "HopConfig", "hop"]

SAMPLERS = ("wigner", "thermal")


def normal_modes(model: DiabaticModel, x0: torch.Tensor, *, state: int = 0, step: float = 1e-4,
                 cutoff: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """Harmonic frequencies (hartree, ascending) and mass-weighted modes (D, M) at ``x0`` (1, D) bohr.

    The Hessian of adiabatic state ``state`` is the central difference (``step`` bohr) of its
    Hellmann-Feynman gradients, symmetrised; modes with ``w^2 <= cutoff`` (hartree/bohr^2/m_e:
    translations and rotations) are dropped.

    Raises
    ------
    SimsInputError
        A negative curvature beyond ``-cutoff``: ``x0`` is not a minimum of that state.
    """
    x0 = x0.reshape(1, -1)
    d = x0.shape[1]
    mass = torch.as_tensor(model.mass, dtype=x0.dtype, device=x0.device).reshape(-1).expand(d)
    shifts = step * torch.eye(d, dtype=x0.dtype, device=x0.device)
    g = model.adiabatic(torch.cat([x0 + shifts, x0 - shifts])).gradients[:, :, state]
    hess = (g[:d] - g[d:]) / (2 * step)
    hess = 0.5 * (hess + hess.T) / torch.sqrt(mass[:, None] * mass[None, :])
    w2, modes = torch.linalg.eigh(hess)
    if float(w2[0]) < -cutoff:
        raise SimsInputError(f"x0 is not a minimum of state {state}: the mass-weighted Hessian has the "
                             f"eigenvalue {float(w2[0]):.3g}; optimise the geometry first")
    keep = w2 > cutoff
    return w2[keep].sqrt(), modes[:, keep]


def normal_mode_sample(model: DiabaticModel, x0: torch.Tensor, n: int, *, sampler: str = "wigner",
                       temperature: float = 0.0, state: int = 0, seed: Any = None,
                       modes: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (n, D) bohr and momenta (n, D) around the minimum ``x0`` of state ``state``.

    Each harmonic normal mode ``w`` gets independent Gaussian coordinates and momenta (mass-weighted
    ``Q``, ``P``, hbar = 1):

    - ``"wigner"``: the Wigner distribution of the quantum oscillator at ``temperature``,
      ``var Q = coth(w / 2kT) / (2 w)``, ``var P = w coth(w / 2kT) / 2`` (the ground state at 0 K);
    - ``"thermal"``: the classical Boltzmann distribution, ``var Q = kT / w^2``, ``var P = kT``
      (needs ``temperature > 0``).

    Translations and rotations are not excited (zero total momentum and angular momentum to first
    order). ``x0`` must be a minimum (:func:`normal_modes`). ``modes``: the ``(frequencies, modes)``
    of :func:`normal_modes` at ``x0``, computed once (for a costly model, e.g. quantum chemistry,
    :class:`sims.pyscf_casscf.CASSCFModel`) instead of at every call.
    """
    if sampler not in SAMPLERS:
        raise SimsInputError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise SimsInputError(f"temperature must be >= 0 K, got {temperature}")
    if sampler == "thermal" and temperature == 0:
        raise SimsInputError("the thermal sampler needs temperature > 0 K (at 0 K every trajectory would start "
                             "at rest at the minimum); use sampler='wigner' for the quantum ground state")
    from .integrators import make_generator

    x0 = x0.reshape(1, -1)
    w, modes = normal_modes(model, x0, state=state) if modes is None else modes
    if modes.shape[0] != x0.shape[1] or w.shape != modes.shape[1:]:
        raise SimsInputError(f"modes must be (frequencies (M,), modes ({x0.shape[1]}, M)) as normal_modes returns, "
                             f"got shapes {tuple(w.shape)} and {tuple(modes.shape)}")
    w, modes = w.to(x0), modes.to(x0)
    kt = KB_HARTREE * temperature
    if sampler == "wigner":
        coth = 1.0 / torch.tanh(w / (2 * kt)) if kt > 0 else torch.ones_like(w)
        var_q, var_p = coth / (2 * w), w * coth / 2
    else:
        var_q, var_p = kt / w ** 2, torch.full_like(w, kt)
    gen = make_generator(seed, device=x0.device)
    q = torch.randn((n, w.numel()), generator=gen, dtype=x0.dtype, device=x0.device) * var_q.sqrt()
    p = torch.randn((n, w.numel()), generator=gen, dtype=x0.dtype, device=x0.device) * var_p.sqrt()
    mass = torch.as_tensor(model.mass, dtype=x0.dtype, device=x0.device).reshape(-1).expand(x0.shape[1])
    return x0 + (q @ modes.T) / mass.sqrt(), (p @ modes.T) * mass.sqrt()


@dataclass
class EnsembleResult:
    """Summary of an ensemble (see :func:`run_ensemble`).

    Attributes
    ----------
    times : numpy.ndarray, shape (T,)
        fs, the recorded times (0 first).
    active_populations, amplitude_populations : numpy.ndarray, shape (T, n)
        Fraction of trajectories on each adiabatic state; mean ``|c_k|^2``.
    product_fraction : numpy.ndarray, shape (T,)
        Fraction of trajectories in the product basin (the model's ``is_product``), NaN without one.
    quantum_yield, yield_error : float
        Product fraction at the end and its standard error ``sqrt(Y (1 - Y) / N)``; the yield is per
        excited molecule (every trajectory starts on the excited state).
    trajectories : pandas.DataFrame
        One row per trajectory (the columns of the Parquet files).
    """

    times: np.ndarray
    active_populations: np.ndarray
    amplitude_populations: np.ndarray
    product_fraction: np.ndarray
    quantum_yield: float
    yield_error: float
    trajectories: Any

    def to_json(self) -> dict[str, Any]:
        """The summary as plain lists and numbers (what ``matrep hop`` writes to ``summary.json``)."""
        n = self.active_populations.shape[1]
        return {"times_fs": self.times.tolist(),
                "active_populations": {str(k): self.active_populations[:, k].tolist() for k in range(n)},
                "amplitude_populations": {str(k): self.amplitude_populations[:, k].tolist() for k in range(n)},
                "product_fraction": [None if not np.isfinite(v) else float(v) for v in self.product_fraction],
                "quantum_yield": self.quantum_yield if math.isfinite(self.quantum_yield) else None,
                "yield_error": self.yield_error if math.isfinite(self.yield_error) else None,
                "n_trajectories": int(len(self.trajectories)),
                "mean_hops": float(self.trajectories["n_hops"].mean()),
                "mean_frustrated": float(self.trajectories["n_frustrated"].mean())}


def _run_chunk(model: DiabaticModel, x0: torch.Tensor, chunk: int, first: int, size: int, opts: dict,
               path: str | None):
    """Run one chunk of trajectories; return (and write, with ``path``) its table."""
    import pandas as pd

    seed = opts["seed"]
    x, p = normal_mode_sample(model, x0, size, sampler=opts["sampler"], temperature=opts["temperature"],
                              seed=None if seed is None else (seed, chunk, 0))
    au = 1.0 / AU_TIME_FS
    fssh = FSSH(model, x, p, n_states=opts["n_states"], initial_state=opts["initial_state"],
                timestep=opts["timestep"] * au, electronic_substeps=opts["electronic_substeps"], hop=opts["hop"],
                decoherence=opts["decoherence"], frustrated=opts["frustrated"],
                norm_tolerance=opts["norm_tolerance"], min_gap=opts["min_gap"],
                friction=opts["friction"] / au, temperature=opts["temperature"], record_hops=True,
                seed=None if seed is None else (seed, chunk, 1), dtype=x0.dtype, device=x0.device)
    descriptor = getattr(model, "descriptor", None)
    product = getattr(model, "is_product", None)
    n_steps, every = opts["n_steps"], opts["record_every"]
    active, amps, desc, prod = [], [], [], []

    def record():
        active.append(fssh.active.cpu().numpy().astype(np.int8))
        amps.append((fssh.c.abs() ** 2).cpu().numpy().astype(np.float32))
        desc.append(descriptor(fssh.x).cpu().numpy() if descriptor else np.full(size, np.nan))
        prod.append(product(fssh.x).cpu().numpy() if product else np.zeros(size, bool))

    record()
    for k in range(1, n_steps + 1):
        fssh.step()
        if k % every == 0 or k == n_steps:
            record()
    active, amps, desc = np.stack(active, 1), np.stack(amps, 1), np.stack(desc, 1)
    prod = np.stack(prod, 1)
    hops = [[] for _ in range(size)]
    for traj, t, src, dst, ok in fssh.hops:
        if ok:
            hops[traj].append((round(t * AU_TIME_FS, 9), src, dst))
    table = {"trajectory": np.arange(first, first + size), "final_state": active[:, -1].astype(np.int64),
             "product": prod[:, -1] if product else np.full(size, False),
             "descriptor": desc[:, -1], "n_hops": fssh.n_hops.cpu().numpy(),
             "n_frustrated": fssh.n_frustrated.cpu().numpy(),
             "hop_times_fs": [[h[0] for h in hs] for hs in hops],
             "hop_from": [[h[1] for h in hs] for hs in hops], "hop_to": [[h[2] for h in hs] for hs in hops],
             "active": list(active), "descriptor_history": list(desc), "product_history": list(prod)}
    for s in range(amps.shape[-1]):
        table[f"population_{s}"] = list(amps[:, :, s])
    frame = pd.DataFrame(table)
    if path is not None:
        with atomic_open(path) as handle:
            frame.to_parquet(handle, index=False)
    return frame


def _hash(opts: dict, model: DiabaticModel, x0: torch.Tensor) -> str:
    params = _model_params(model)
    if x0.dtype != torch.float64:  # only then, so that the folders of float64 runs keep their hash
        params["dtype"] = str(x0.dtype)
    if opts["hop"] == "tully":  # the default is left out, so that folders from before the option keep their hash
        opts = {k: v for k, v in opts.items() if k != "hop"}
    return content_hash({"opts": opts, "model": type(model).__name__, "params": params,
                         "x0": x0.cpu().double().flatten().tolist()})


def _model_params(model: DiabaticModel) -> dict[str, Any]:
    """The parameters of ``model`` that decide its trajectories, as plain data for the folder key:
    numbers and strings, array and table parameters and learned weights as hashes, and a model it
    holds (a :class:`learners.diabatic.DANNHamiltonian`'s ``like``, which supplies the starting
    geometry, the descriptor and the product test) by its class and parameters."""
    params = {k: v for k, v in sorted(vars(model).items()) if isinstance(v, (int, float, str, tuple, list))}
    for name, value in sorted(vars(model).items()):
        if isinstance(value, DiabaticModel):
            params[name] = {"model": type(value).__name__, "params": _model_params(value)}
        elif isinstance(value, torch.nn.Module):  # a learned model: its weights decide the trajectories
            params[name] = weights_digest(value)
        elif isinstance(value, (np.ndarray, torch.Tensor)):  # parameters held as an array
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
            params[name] = hashlib.sha256(f"{array.dtype}{array.shape}".encode() + array.tobytes()).hexdigest()
        elif isinstance(value, dict):  # a table of settings, when it is plain data
            try:
                params[name] = json.dumps(value, sort_keys=True)
            except TypeError:
                pass
    return params


def run_ensemble(model: DiabaticModel, n_trajectories: int, *, duration: float, timestep: float = 0.25,
                 x0: torch.Tensor | None = None, sampler: str = "wigner", temperature: float = 0.0,
                 n_states: int | None = None, initial_state: int = 1, electronic_substeps: int = 25,
                 hop: str = "tully", decoherence: str | None = "edc", frustrated: str = "keep", friction: float = 0.0,
                 norm_tolerance: float = 1e-3, min_gap: float = 1e-6, record_every: int = 10,
                 chunk_size: int = 250, output: str | os.PathLike | None = None, client: Any = None,
                 seed: int | None = 0, progress: bool | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> EnsembleResult:
    """Run ``n_trajectories`` FSSH trajectories excited vertically from sampled ground-state geometries.

    Parameters
    ----------
    model : DiabaticModel
        Atomic units. With ``descriptor(x)`` and ``is_product(x)`` (as
        :class:`~sims.surface_hopping.TorsionalIsomerisation`) the product coordinate and the yield
        are recorded.
    n_trajectories : int
    duration, timestep : float
        fs (default step 0.25 fs = 10.3 a.u.).
    x0 : torch.Tensor, optional
        Ground-state minimum (1, D) bohr; default ``model.geometry()`` (the torsional model's cis form).
    sampler : {"wigner", "thermal"}
        :func:`normal_mode_sample`, at ``temperature`` (K).
    n_states : int, optional
        Expected number of states; refused if the model has another.
    initial_state : int
        Adiabatic state the trajectories start on (1: the first excited state).
    electronic_substeps, hop, decoherence, frustrated, norm_tolerance, min_gap
        As for :class:`~sims.surface_hopping.FSSH` (``decoherence="edc"`` by default here; ``hop``:
        ``"tully"`` or ``"sharc"`` hop probabilities).
    friction : float
        1/fs; with ``temperature`` a Langevin bath on the nuclei (:class:`FSSH`), so that the
        products cool into their basins and the yield stops changing.
    record_every : int
        Steps between recorded populations.
    chunk_size : int
        Trajectories per chunk: per task on Dask, per Parquet file, the unit of resumption. Chunk
        ``c`` draws its initial conditions and hops from the streams ``(seed, c, 0)``, ``(seed, c, 1)``,
        so the same seed and chunk size give the same trajectories however the chunks are run.
    output : path, optional
        Folder for ``chunk_XXXXX.parquet`` files and ``manifest.json``; existing chunks of the same
        settings and size are read instead of rerun (resume; ``n_trajectories`` may change, and a
        last chunk of another size is run again); a folder of other settings is refused.
    client : dask.distributed.Client, optional
        Run the chunks on this cluster (the model must pickle); None: one after the other here.
    seed : int, optional
    progress : bool, optional
        A progress bar over chunks on stderr (None: only on a terminal).
    device : torch.device or str, optional
        Where the trajectories run (the model's device); default CPU.
    dtype : torch.dtype

    Returns
    -------
    EnsembleResult

    Raises
    ------
    SimsInputError
        ``n_states`` or ``initial_state`` inconsistent with the model, bad numbers, an output folder
        of another run; from the run, a timestep too long for the electronic integration.
    """
    import pandas as pd

    if isinstance(n_trajectories, bool) or not isinstance(n_trajectories, int) or n_trajectories < 1:
        raise SimsInputError(f"n_trajectories must be an integer >= 1, got {n_trajectories!r}")
    for name, v in (("duration", duration), ("timestep", timestep)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise SimsInputError(f"{name} must be > 0 fs, got {v!r}")
    if not (math.isfinite(friction) and friction >= 0):
        raise SimsInputError(f"friction must be >= 0 (1/fs), got {friction}")
    for name, v in (("record_every", record_every), ("chunk_size", chunk_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SimsInputError(f"{name} must be an integer >= 1, got {v!r}")
    if n_states is not None and n_states != model.n_states:
        raise SimsInputError(f"n_states={n_states} but the model {type(model).__name__} has {model.n_states} "
                             f"states; set n_states = {model.n_states} or choose another model")
    if isinstance(initial_state, bool) or not isinstance(initial_state, int) or not 0 <= initial_state < model.n_states:
        raise SimsInputError(f"initial_state must be an adiabatic state index 0..{model.n_states - 1} "
                             f"(the model has {model.n_states} states), got {initial_state!r}")
    if x0 is None:
        if not hasattr(model, "geometry"):
            raise SimsInputError(f"{type(model).__name__} has no geometry(): pass x0, a ground-state minimum (1, D) bohr")
        x0 = model.geometry(dtype=dtype)
    x0 = torch.as_tensor(x0, dtype=dtype, device=device).reshape(1, -1)
    n_steps = max(1, int(round(duration / timestep)))
    opts = {"sampler": sampler, "temperature": float(temperature), "n_states": model.n_states,
            "initial_state": initial_state, "timestep": float(timestep), "electronic_substeps": electronic_substeps,
            "hop": hop, "decoherence": decoherence, "frustrated": frustrated, "norm_tolerance": float(norm_tolerance),
            "min_gap": float(min_gap), "friction": float(friction), "n_steps": n_steps,
            "record_every": record_every, "seed": seed, "chunk_size": chunk_size}
    # Checked here, before any chunk runs, so that a bad option fails at once and not on a worker.
    FSSH(model, x0, torch.zeros_like(x0), initial_state=initial_state, timestep=timestep / AU_TIME_FS,
         electronic_substeps=electronic_substeps, hop=hop, decoherence=decoherence, frustrated=frustrated,
         norm_tolerance=norm_tolerance, min_gap=min_gap, friction=friction * AU_TIME_FS, temperature=temperature,
         device=x0.device, dtype=x0.dtype)
    normal_mode_sample(model, x0, 1, sampler=sampler, temperature=temperature, seed=0)
    chunks = [(c, c * chunk_size, min(chunk_size, n_trajectories - c * chunk_size))
              for c in range(math.ceil(n_trajectories / chunk_size))]
    folder = None if output is None else Path(output)
    paths: list[str | None] = [None] * len(chunks)
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise SimsInputError(f"output {str(folder)!r} is a file; give a folder")
        key = _hash(opts, model, x0)
        manifest = folder / "manifest.json"
        if manifest.exists():
            old = json.loads(manifest.read_text())
            if old.get("hash") != key:
                raise SimsInputError(f"{str(folder)!r} holds a run with other settings (hash {old.get('hash')}, "
                                     f"now {key}); use another output folder or delete it")
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(manifest, json.dumps({"hash": key, "options": opts, "model": type(model).__name__}, indent=1))
        paths = [str(folder / f"chunk_{c:05d}.parquet") for c, _, _ in chunks]
    from tqdm.auto import tqdm

    show = progress if progress is not None else sys.stderr.isatty()
    frames: dict[int, Any] = {}
    todo = []
    for (c, first, size), path in zip(chunks, paths):
        saved = pd.read_parquet(path) if path is not None and Path(path).exists() else None
        # The folder's settings leave n_trajectories out (an ensemble may grow), but the last chunk's size
        # follows it and its initial conditions depend on that size: a chunk of another size is run again.
        if saved is not None and np.array_equal(saved["trajectory"].to_numpy(), np.arange(first, first + size)):
            frames[c] = saved
        else:
            todo.append((c, first, size, path))
    bar = tqdm(total=len(chunks), initial=len(frames), disable=not show, desc="trajectory chunks", leave=False)
    if client is not None and todo:
        from distributed import as_completed

        futures = {client.submit(_run_chunk, model, x0, c, first, size, opts, path, pure=False): c
                   for c, first, size, path in todo}
        for future in as_completed(futures):
            frames[futures[future]] = future.result()
            bar.update(1)
    else:
        for c, first, size, path in todo:
            frames[c] = _run_chunk(model, x0, c, first, size, opts, path)
            bar.update(1)
    bar.close()
    table = pd.concat([frames[c] for c, _, _ in chunks], ignore_index=True)
    return _summarise(table, model.n_states, n_steps, record_every, timestep, hasattr(model, "is_product"))


def _summarise(table, n_states: int, n_steps: int, every: int, timestep: float, has_product: bool) -> EnsembleResult:
    steps = list(range(0, n_steps + 1, every))
    if steps[-1] != n_steps:
        steps.append(n_steps)
    times = np.asarray(steps, dtype=np.float64) * timestep
    active = np.stack(table["active"].to_numpy())  # (N, T)
    act = np.stack([(active == s).mean(0) for s in range(n_states)], -1)
    amp = np.stack([np.stack(table[f"population_{s}"].to_numpy()).mean(0) for s in range(n_states)], -1)
    if has_product:
        frac = np.stack(table["product_history"].to_numpy()).mean(0)
        y = float(frac[-1])
        err = math.sqrt(y * (1 - y) / len(table))
    else:
        frac, y, err = np.full(len(times), np.nan), math.nan, math.nan
    return EnsembleResult(times, act, amp, frac, y, err, table)


# -- matrep hop --------------------------------------------------------------------------------


class _Table(Schema):
    ERROR = ConfigError


MODEL_KINDS = ("torsional",)  # the kinds sims builds itself; others come from the "sims.hopping_models" entry points


@dataclass(frozen=True)
class ModelTable(_Table):
    """``[model]``: which Hamiltonian.

    ``kind = "torsional"`` (:class:`TorsionalIsomerisation`) takes its keyword arguments (``E1``,
    ``W0``, ``W1``, ``lam``, ``kappa``, ``k_bond``, ``r0``, ``k_angle``, ``a0``, ``masses``) as
    further keys. Other kinds are entry points of the group ``"sims.hopping_models"`` registered by
    packages above sims (``kind = "dann"``: :func:`learners.diabatic.hopping_model_from_config`),
    called as ``factory(params, base=, device=, dtype=)``; a value that is itself a table with a
    ``kind`` (such as ``like``) is built as a model first.
    """

    TABLE = "model"
    kind: str = "torsional"
    params: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, table: dict, where: str = "model") -> ModelTable:
        """A ``[model]`` table as written in TOML: ``kind`` and the kind's keys side by side."""
        params = dict(table)
        kind = params.pop("kind", "torsional")
        return cls.from_config({"kind": kind, "params": params}, where=where)

    def make(self, base: str | os.PathLike = ".", *, device: torch.device | str | None = None,
             dtype: torch.dtype = torch.float64) -> DiabaticModel:
        """The model; a plugin kind reads relative paths from the config's folder ``base``.

        Raises
        ------
        ConfigError
            An unknown kind (naming the known ones), or keys or values its factory refuses.
        """
        from .config import call_plugin, plugin_kinds, unknown_kind

        if self.kind == "torsional":
            return self._torsional()
        plugins = plugin_kinds("sims.hopping_models")
        if self.kind not in plugins:
            raise unknown_kind("model", self.kind, sorted([*MODEL_KINDS, *plugins]))
        params = {k: ModelTable.parse(v, f"model.{k}").make(base, device=device, dtype=dtype)
                  if isinstance(v, dict) and "kind" in v else v for k, v in self.params.items()}
        try:
            return call_plugin(plugins[self.kind], f"model kind {self.kind!r}", params, base=Path(base),
                               device=device, dtype=dtype)
        except SimsInputError as err:
            raise ConfigError(str(err)) from None

    def _torsional(self) -> TorsionalIsomerisation:
        import inspect

        from reprs.config import check_keys

        known = list(inspect.signature(TorsionalIsomerisation).parameters)
        check_keys(self.params, known, "model", error=ConfigError)
        bad = {k: v for k, v in self.params.items()
               if not (isinstance(v, (int, float)) and not isinstance(v, bool)) and k != "masses"}
        if bad:
            raise ConfigError(f"model parameters must be numbers, got {bad}")
        return TorsionalIsomerisation(**self.params)


@dataclass(frozen=True)
class HopConfig(_Table):
    """A ``matrep hop`` config: the top-level keys and a ``[model]`` table.

    Keys (units as :func:`run_ensemble`): ``n_trajectories``, ``duration`` (fs), ``timestep`` (fs),
    ``sampler``, ``temperature`` (K), ``n_states`` (optional check against the model),
    ``initial_state``, ``electronic_substeps``, ``hop`` ("tully" or "sharc": the hop probabilities),
    ``decoherence`` ("edc" or "none"), ``frustrated``,
    ``friction`` (1/fs; 0.01 by default here, so that the products settle in their basins),
    ``record_every``, ``chunk_size``, ``seed``, ``output`` (folder, relative to
    the config file), ``norm_tolerance``, ``min_gap``, ``device`` (default CPU) and ``dtype``
    ("float64" or "float32"; the model's and the trajectories').
    """

    TABLE = ""
    output: str
    n_trajectories: int = 200
    duration: float = 300.0
    timestep: float = 0.25
    sampler: Literal["wigner", "thermal"] = "wigner"
    temperature: float = 0.0
    n_states: int | None = None
    initial_state: int = 1
    electronic_substeps: int = 25
    hop: Literal["tully", "sharc"] = "tully"
    decoherence: Literal["edc", "none"] = "edc"
    frustrated: Literal["keep", "reverse"] = "keep"
    friction: float = 0.01
    record_every: int = 10
    chunk_size: int = 250
    seed: int = 0
    norm_tolerance: float = 1e-3
    min_gap: float = 1e-6
    device: str | None = None
    dtype: Literal["float32", "float64"] = "float64"
    model: ModelTable = field(default_factory=ModelTable)

    @classmethod
    def from_config(cls, table, *, where=None):
        if isinstance(table, dict) and isinstance(table.get("model"), dict):
            table = {**table, "model": ModelTable.parse(table["model"])}
        return super().from_config(table, where=where)

    def check(self, where: str) -> None:
        for name in ("n_trajectories", "electronic_substeps", "record_every", "chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("duration", "timestep", "norm_tolerance", "min_gap"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("temperature", "friction"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")


def hop(config: str | os.PathLike | dict, *, progress: bool | None = None) -> EnsembleResult:
    """Run the ensemble a config describes and write ``summary.json`` (populations, yield) in its output.

    ``config``: a TOML file (``matrep hop CONFIG.toml``) or the same content as a dict. Per-trajectory
    tables go to ``output/chunk_*.parquet``; a rerun resumes.
    """
    base = Path(".")
    if not isinstance(config, dict):
        base = Path(config).parent
        config = load_toml(config)
    cfg = HopConfig.from_config(config, where="")
    dtype = getattr(torch, cfg.dtype)
    model = cfg.model.make(base, device=cfg.device, dtype=dtype)
    out = Path(cfg.output)
    if not out.is_absolute():
        out = base / out
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
              if f.name not in ("output", "model", "decoherence", "dtype")}
    try:
        result = run_ensemble(model, output=out, decoherence=None if cfg.decoherence == "none" else "edc",
                              progress=progress, dtype=dtype, **values)
    except SimsInputError as err:
        raise ConfigError(str(err)) from None
    atomic_write(out / "summary.json", json.dumps(result.to_json(), indent=1))
    return result
