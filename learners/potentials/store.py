"""Saving and loading trained potentials and committees: hyperparameters plus weights, no pickled code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from learners.errors import InputError
from reprs.config import check_keys
from reprs.fileio import atomic_open
from sims.potentials import read_model_file, saved_dtype

from .base import NeuralPotential
from .committee import Committee
from .painn import PaiNN
from .schnet import SchNet

__all__ = ["save_potential", "load_potential", "potential_from_config"]

_KINDS = {"SchNet": SchNet, "PaiNN": PaiNN}


def _entry(model: NeuralPotential) -> dict:
    kind = type(model).__name__
    if kind not in _KINDS:
        raise InputError(f"cannot save a {kind}; known kinds: {sorted(_KINDS)}")
    return {"kind": kind, "hparams": dict(model.hparams), "state_dict": model.state_dict()}


def save_potential(model: NeuralPotential | Committee, path: str | os.PathLike) -> Path:
    """Write ``model`` (or every member of a committee) to ``path`` (a ``torch.save`` file of plain data).

    Examples
    --------
    >>> save_potential(PaiNN(cutoff=5.0), "painn.pt")                # doctest: +SKIP
    >>> model = load_potential("painn.pt", dtype=torch.float64)       # doctest: +SKIP
    """
    members = list(model.models) if isinstance(model, Committee) else [model]
    payload = {"format": "matrep-potential-1", "committee": isinstance(model, Committee),
               "members": [_entry(m) for m in members]}
    path = Path(path)
    with atomic_open(path) as handle:
        torch.save(payload, handle)
    return path


def load_potential(path: str | os.PathLike, *, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None, compiled: bool = False) -> NeuralPotential | Committee:
    """Read a file of :func:`save_potential` (``weights_only`` loading: no code runs from the file).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_potential`.
    device : torch.device or str, optional
        Where the model lives; default CPU.
    dtype : torch.dtype, optional
        Precision of the loaded model. Default: the precision it was saved in (each member's), so a
        float64 model stays float64; a given dtype converts the weights.
    compiled : bool
        Members that have a compiled path (:class:`~learners.potentials.PaiNN`'s ``compiled``) take
        it, and the model is returned in eval mode, where that path runs (for MD; training needs
        the eager path: ``model.train()``). Other members stay eager.

    Raises
    ------
    InputError
        A missing file or one not written by :func:`save_potential`.
    """
    payload = read_model_file(path, "matrep-potential-1", what="potential", writer="save_potential")
    members = []
    for entry in payload["members"]:
        hp = dict(entry["hparams"])
        # the saved weights' precision, unless the caller asks for another one
        member_dtype = dtype or saved_dtype(entry["state_dict"])
        model = _KINDS[entry["kind"]](hp.pop("cutoff"), **hp, device=device, dtype=member_dtype)
        model.load_state_dict(entry["state_dict"])
        members.append(model.to(device=device, dtype=member_dtype))
    if not isinstance(compiled, bool):
        raise InputError(f"compiled must be true or false, got {compiled!r}")
    for model in members:
        if hasattr(model, "compiled"):
            model.compiled = compiled
    model = Committee(members) if payload["committee"] else members[0]
    return model.eval() if compiled else model


def potential_from_config(params: Mapping[str, Any], *, base: str | os.PathLike = ".",
                          device: torch.device | str | None = None,
                          dtype: torch.dtype = torch.float32) -> NeuralPotential | Committee:
    """The ``kind = "nn"`` potential of a :func:`sims.generate.generate` config (entry point ``sims.potentials``).

    ``[potential] kind = "nn", path = "model.pt"`` loads a file of :func:`save_potential`; a
    relative ``path`` is read from the config's folder ``base``. A committee drives the MD with its
    mean and supplies the uncertainty (its :meth:`Committee.uncertainty_monitor`). ``compiled = true``
    runs the members' compiled path (:func:`load_potential`): about 30 s of compilation at the first
    step, then 1.3-1.9x faster steps for a small PaiNN committee on one CPU thread.

    Raises
    ------
    InputError
        No ``path``, unknown keys (``reprs.errors.ConfigError``, with a did-you-mean), or a file
        :func:`load_potential` refuses.
    """
    check_keys(params, ("path", "compiled"), "potential")
    path = params.get("path")
    if path is None:
        raise InputError("potential kind 'nn' needs path = \"<file written by save_potential>\"")
    path = Path(path)
    return load_potential(path if path.is_absolute() else Path(base) / path, device=device, dtype=dtype,
                          compiled=params.get("compiled", False))
