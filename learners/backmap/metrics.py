"""Metrics of generated all-atom geometries against references (Wang et al., ICML 2022, arXiv:2201.12176, sec. 5).

- :func:`aligned_rmsd`: RMSD after optimal superposition (Kabsch, Acta Cryst. A32, 922 (1976);
  proper rotations only, the reflection case handled by the sign of the determinant), over all
  atoms or a subset (heavy atoms).
- :func:`graph_validity`: whether each sample's covalent bond graph (:func:`reprs.cg_mapping.bond_matrix`)
  equals the reference's, and the graph-difference ratio ``sum |A_gen - A_ref| / sum A_ref`` over
  the adjacency matrices (the paper's lambda; the authors' code takes ``|sum (A_ref - A_gen)|``
  instead, which lets a missing bond cancel an extra one; we count both).
- :func:`sample_diversity`: mean aligned RMSD between pairs of samples of one CG frame.
- :func:`backmap_scores`: all of them for samples ``(S, M, n, 3)`` of ``M`` reference frames.
- :func:`ramachandran_figure`: (phi, psi) of generated against reference frames.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from learners.errors import InputError

__all__ = ["kabsch_align", "aligned_rmsd", "graph_validity", "sample_diversity", "backmap_scores",
           "dihedrals", "ramachandran_figure"]


def _rotation(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` minimising ``|x_c R - ref_c|`` for centred ``x_c``, ``ref_c`` ``(..., n, 3)``."""
    h = np.swapaxes(x, -1, -2) @ ref
    u, _, vt = np.linalg.svd(h)
    sign = np.sign(np.linalg.det(u @ vt))
    u[..., :, -1] *= sign[..., None]
    return u @ vt


def kabsch_align(x: Any, ref: Any, *, subset: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """``x`` ``(..., n, 3)`` rotated and translated onto ``ref`` (broadcast), fitted on ``subset`` atoms (default all)."""
    x, ref = np.asarray(x, dtype=float), np.asarray(ref, dtype=float)
    if x.shape[-2:] != ref.shape[-2:] or x.shape[-1] != 3:
        raise InputError(f"cannot align shapes {x.shape} and {ref.shape}: both need (..., n, 3) with the same n")
    x, ref = np.broadcast_arrays(x, ref)
    idx = np.arange(x.shape[-2]) if subset is None else np.asarray(subset)
    cx, cr = x[..., idx, :].mean(-2, keepdims=True), ref[..., idx, :].mean(-2, keepdims=True)
    rot = _rotation(x[..., idx, :] - cx, ref[..., idx, :] - cr)
    return (x - cx) @ rot + cr


def aligned_rmsd(x: Any, ref: Any, *, atoms: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """RMSD (Å) of ``x`` ``(..., n, 3)`` to ``ref`` after the optimal superposition of the ``atoms`` subset.

    Examples
    --------
    >>> ref = np.random.default_rng(0).normal(size=(5, 3))
    >>> rot = np.array([[0., -1, 0], [1, 0, 0], [0, 0, 1]])
    >>> float(aligned_rmsd(ref @ rot + 2.0, ref)) < 1e-12
    True
    """
    x, ref = np.asarray(x, dtype=float), np.asarray(ref, dtype=float)
    idx = np.arange(x.shape[-2]) if atoms is None else np.asarray(atoms)
    aligned = kabsch_align(x[..., idx, :], ref[..., idx, :])
    return np.sqrt(((aligned - ref[..., idx, :]) ** 2).sum(-1).mean(-1))


def graph_validity(samples: Any, reference: Any, numbers: Any, *, atoms: Sequence[int] | np.ndarray | None = None,
                   scale: float = 1.3) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: whether its bond graph equals the reference's, and the graph-difference ratio.

    Parameters
    ----------
    samples : array_like
        ``(..., n, 3)`` Å.
    reference : array_like
        ``(..., n, 3)`` Å, broadcast against ``samples`` (the reference frame of each sample).
    numbers : array_like
        ``(n,)`` atomic numbers.
    atoms : index array, optional
        Compare the graph of these atoms only (the heavy atoms: ``numbers > 1``).

    Returns
    -------
    valid : numpy.ndarray of bool
    ratio : numpy.ndarray
        ``sum |A - A_ref| / sum A_ref``.
    """
    from reprs.cg_mapping import bond_matrix

    numbers = np.asarray(numbers)
    idx = np.arange(numbers.size) if atoms is None else np.asarray(atoms)
    a = bond_matrix(numbers[idx], np.asarray(samples, dtype=float)[..., idx, :], scale=scale)
    ref = bond_matrix(numbers[idx], np.asarray(reference, dtype=float)[..., idx, :], scale=scale)
    diff = (a != ref).sum((-1, -2))
    return diff == 0, diff / np.maximum(np.broadcast_to(ref, a.shape).sum((-1, -2)), 1)


def sample_diversity(samples: Any, *, atoms: Sequence[int] | np.ndarray | None = None) -> float:
    """Mean aligned RMSD (Å) over pairs of samples of the same frame; ``samples`` ``(S, M, n, 3)``, S >= 2."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 4 or x.shape[0] < 2:
        raise InputError(f"samples must be (S >= 2, frames, atoms, 3), got shape {x.shape}")
    a, b = np.triu_indices(x.shape[0], 1)
    return float(aligned_rmsd(x[a], x[b], atoms=atoms).mean())


def backmap_scores(samples: Any, reference: Any, numbers: Any, *, scale: float = 1.3) -> dict[str, float]:
    """The paper's scores of samples ``(S, M, n, 3)`` Å of the ``M`` reference frames ``(M, n, 3)`` Å.

    Returns
    -------
    dict
        ``rmsd_all``, ``rmsd_heavy`` (Å, aligned, mean over samples and frames), ``rmsd_all_best``
        (Å, the best of the S samples, mean over frames), ``valid_all``, ``valid_heavy`` (fraction
        of samples whose all-atom / heavy-atom bond graph equals the reference's), ``graph_diff_all``,
        ``graph_diff_heavy`` (mean ratios) and ``diversity`` (Å, all atoms; NaN for S = 1).
    """
    x, ref = np.asarray(samples, dtype=float), np.asarray(reference, dtype=float)
    numbers = np.asarray(numbers)
    if x.ndim != 4 or x.shape[1:] != ref.shape or ref.shape[-1] != 3 or numbers.shape != ref.shape[1:2]:
        raise InputError(f"samples {x.shape}, reference {ref.shape} and numbers {numbers.shape} do not fit "
                         "(S, M, n, 3), (M, n, 3) and (n,)")
    heavy = np.flatnonzero(numbers > 1)
    rmsd = aligned_rmsd(x, ref[None])
    valid_all, diff_all = graph_validity(x, ref[None], numbers, scale=scale)
    valid_heavy, diff_heavy = graph_validity(x, ref[None], numbers, atoms=heavy, scale=scale)
    return {"rmsd_all": float(rmsd.mean()), "rmsd_heavy": float(aligned_rmsd(x, ref[None], atoms=heavy).mean()),
            "rmsd_all_best": float(rmsd.min(0).mean()),
            "valid_all": float(valid_all.mean()), "valid_heavy": float(valid_heavy.mean()),
            "graph_diff_all": float(diff_all.mean()), "graph_diff_heavy": float(diff_heavy.mean()),
            "diversity": sample_diversity(x) if x.shape[0] > 1 else float("nan")}


def dihedrals(positions: Any, quads: Sequence[Sequence[int]]) -> np.ndarray:
    """Dihedral angles (degrees, (-180, 180]) ``(..., len(quads))`` of ``positions`` ``(..., n, 3)`` Å
    (:class:`sims.cv.Dihedral`'s convention)."""
    import torch

    from sims.cv import Dihedral

    x = np.asarray(positions, dtype=float)
    flat = torch.as_tensor(x.reshape(-1, *x.shape[-2:]))  # Dihedral takes (frames, n, 3)
    angles = np.stack([Dihedral(*q)(flat).numpy() for q in quads], axis=-1)
    return np.degrees(angles).reshape(*x.shape[:-2], len(quads))


def ramachandran_figure(reference: Any, generated: Any, *, phi: Sequence[int], psi: Sequence[int],
                        title: str = "") -> Any:
    """A ``matplotlib.figure.Figure``: (phi, psi) of reference and generated frames side by side.

    ``reference`` ``(M, n, 3)`` Å, ``generated`` ``(..., n, 3)`` Å; ``phi``, ``psi``: four atom indices each.
    Save it with :func:`reprs.fileio.save_figure`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4))
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, (name, x) in zip(axes, (("reference", reference), ("generated", generated))):
        angles = dihedrals(np.asarray(x, dtype=float).reshape(-1, *np.shape(reference)[-2:]), [phi, psi])
        ax.hist2d(angles[:, 0], angles[:, 1], bins=60, range=[[-180, 180], [-180, 180]], cmap="viridis", cmin=1)
        ax.set_title(f"{name} ({len(angles)} frames)")
        ax.set_xlabel("phi (degrees)")
        ax.set_aspect("equal")
    axes[0].set_ylabel("psi (degrees)")
    if title:
        fig.suptitle(title)
    return fig
