"""Periodic neighbour lists on torch tensors: O(N) cell lists (an all-pairs search for small cells) with a
Verlet skin.

Pairs follow ASE's ``'ijS'`` convention: the vector from atom ``i`` to its neighbour ``j`` is
``positions[j] - positions[i] + S @ cell``, with ``S`` an integer image shift. Positions need not be
wrapped into the cell; shifts refer to the positions as given, so a list built on unwrapped MD
coordinates stays valid while atoms travel (this is why MD never wraps its positions).

The list is built from integer work only (no autograd); energies differentiate through the
displacement vectors computed from it (:func:`pair_vectors`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch

from reprs.atoms import as_atoms

from .errors import MissingCellError, SimsInputError

__all__ = ["PairList", "NeighborList", "neighbor_list", "build_pairs", "build_batch_pairs", "pair_vectors"]


class PairList(NamedTuple):
    """Pairs ``(i, j, shifts)`` of atoms closer than the cutoff the list was built with.

    Attributes
    ----------
    i, j : torch.Tensor
        ``(P,)`` int64 atom indices.
    shifts : torch.Tensor
        ``(P, 3)`` image shifts in units of the cell vectors (dtype of the positions, so that
        ``shifts @ cell`` needs no cast).
    half : bool
        True when each unordered pair appears once (energies sum pair terms once); False for the
        full list of ASE (each pair twice, as ``(i, j, S)`` and ``(j, i, -S)``).
    images, image_system, image_index : torch.Tensor, optional
        Lists of a batch of several systems (:func:`build_batch_pairs`) also hold the distinct
        ``(system, shift)`` combinations: ``(U, 3)`` shifts and ``(U,)`` systems, and for each pair
        the ``(P,)`` index of its combination. :func:`pair_vectors` then turns ``U`` shifts into
        Cartesian vectors instead of ``P`` (a few hundred per system against tens of thousands of pairs).
    """

    i: torch.Tensor
    j: torch.Tensor
    shifts: torch.Tensor
    half: bool
    images: torch.Tensor | None = None
    image_system: torch.Tensor | None = None
    image_index: torch.Tensor | None = None


def _complete_cells(cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """Replace missing (zero) cell vectors of non-periodic directions by orthogonal unit vectors.

    ``cell`` is ``(B, 3, 3)`` and ``pbc`` ``(B, 3)``. Binning works in fractional coordinates, which
    need an invertible cell; along a non-periodic direction the vector only sets the binning frame
    (as in ``ase.geometry.complete_cell``).
    """
    cell = cell.clone()
    missing = torch.linalg.norm(cell, dim=2) < 1e-12
    if bool((missing & pbc).any()):
        b, d = torch.nonzero(missing & pbc)[0].tolist()
        where = f" of system {b}" if cell.shape[0] > 1 else ""
        raise MissingCellError(f"periodic direction {d}{where} has a zero cell vector; give a cell or set pbc=False "
                               "there")
    none = missing.all(1)
    cell[none] = torch.eye(3, dtype=cell.dtype, device=cell.device)
    # Systems with one or two missing vectors (slabs, wires): few, so a loop over them is cheap.
    for b in torch.nonzero(missing.any(1) & ~none).flatten().tolist():
        present = cell[b][~missing[b]]
        if present.shape[0] == 2:
            n = torch.linalg.cross(present[0], present[1])
            cell[b, missing[b]] = n / torch.linalg.norm(n)
        else:
            a = present[0] / torch.linalg.norm(present[0])
            trial = torch.eye(3, dtype=cell.dtype, device=cell.device)[int(torch.argmin(a.abs()))]
            v = torch.linalg.cross(a, trial)
            v = v / torch.linalg.norm(v)
            idx = torch.nonzero(missing[b]).flatten()
            cell[b, idx[0]], cell[b, idx[1]] = v, torch.linalg.cross(a, v)
    singular = torch.abs(torch.linalg.det(cell)) < 1e-12
    if bool(singular.any()):
        where = f" of system {int(torch.nonzero(singular)[0])}" if cell.shape[0] > 1 else ""
        raise SimsInputError(f"the cell{where} is singular (zero volume); give three independent cell vectors")
    return cell


@torch.no_grad()
def build_batch_pairs(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, system: torch.Tensor,
                      cutoff: float, *, half: bool = False) -> PairList:
    """All pairs closer than ``cutoff`` (Å) within each system of a batch, in one vectorised pass.

    Parameters
    ----------
    positions : torch.Tensor
        ``(N, 3)`` Cartesian positions of all systems' atoms, Å (wrapped or not).
    cell : torch.Tensor
        ``(B, 3, 3)`` cell vectors as rows, Å, one cell per system (rows of non-periodic directions
        may be zero).
    pbc : torch.Tensor
        ``(B, 3)`` bool periodic flags per system.
    system : torch.Tensor
        ``(N,)`` int64 index of each atom's system, in ``0..B-1``.
    cutoff : float
        Pair cutoff, Å; larger than a cell (or half of it) is fine: as many images as needed are searched.
    half : bool
        Keep each unordered pair once (see :class:`PairList`).

    Returns
    -------
    PairList
        Atom indices into the whole batch; no pair joins two systems, and each system's shifts refer
        to its own cell. Sorted by ``(i, j, S)`` (half lists with ``i < j``, see :func:`_canonical`):
        system ``b``'s pairs come in the order :func:`build_pairs` gives that system alone, whatever
        the other systems. Lists of more than one system also carry the image table (:class:`PairList`).

    Notes
    -----
    Small systems (at most :data:`_SMALL_CANDIDATES` atom pairs times images to try, e.g. 64 atoms in a
    cell of 14.5 Å at a 9.5 Å cutoff) are searched all at once over every atom pair and every image that may
    hold it (:func:`_small_cell_pairs`: tensor operations only, no binning and no sort); the others get the
    cell list below, and the two lists are merged system by system. Both give the same pairs in the same order.

    Every system gets its own cell list, and all of them are searched at once: a bin is numbered
    globally (the system's first bin plus its local number), so atoms only ever meet atoms of their
    own system (the per-system binning of torch-sim's batched linked-cell list). Atoms are binned in
    fractional coordinates into ``n_d = floor(2 h_d / cutoff)`` bins along each direction ``d``
    (``h_d`` the distance between opposite cell faces), so a neighbour lies at most
    ``k_d = ceil(cutoff n_d / h_d)`` bins away; bins are visited by integer offsets in ``[-k_d, k_d]``,
    each offset giving one image, so no pair is produced twice. Offsets are enumerated up to the
    largest ``k_d`` of the batch and masked per system; a half list visits only the zero offset and
    the lexicographically positive ones (pair ``(i, j, S)`` found from ``i`` through offset ``o`` is
    ``(j, i, -S)`` found from ``j`` through ``-o``). Candidates are checked in chunks (:data:`_CHUNK`).
    """
    pairs = _build(positions, cell, pbc, system, cutoff, half)
    return pairs if cell.shape[0] == 1 else _with_images(pairs, system)


@torch.no_grad()
def build_pairs(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, cutoff: float,
                *, half: bool = False) -> PairList:
    """Return all pairs closer than ``cutoff`` (Å) with a cell list; O(N) for fixed density.

    Parameters
    ----------
    positions : torch.Tensor
        ``(N, 3)`` Cartesian positions, Å (wrapped or not).
    cell : torch.Tensor
        ``(3, 3)`` cell vectors as rows, Å. Triclinic allowed; rows of non-periodic directions
        may be zero.
    pbc : torch.Tensor
        ``(3,)`` bool periodic flags.
    cutoff : float
        Pair cutoff, Å. Cutoffs larger than the cell (or half of it) are handled by searching
        as many periodic images as needed.
    half : bool
        Keep each unordered pair once (see :class:`PairList`).

    Returns
    -------
    PairList
        Pairs sorted by ``(i, j, S)``, a half list with ``i < j`` (see :func:`_canonical`): the same
        pair set always comes in the same order, whatever the binning.

    Notes
    -----
    The batch of one system of :func:`build_batch_pairs` (the one builder; its notes give the algorithm).
    """
    return _build(positions, cell.reshape(1, 3, 3), pbc.reshape(1, 3), None, cutoff, half)


def _empty(positions: torch.Tensor, half: bool) -> PairList:
    device = positions.device
    return PairList(torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, dtype=torch.long, device=device),
                    torch.zeros((0, 3), dtype=positions.dtype, device=device), half)


def _heights(inv: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` distances between opposite cell faces, Å, from the inverse cells ``(B, 3, 3)``:
    ``h_d = V / |a_e x a_f| = 1 / |row d of inv^T|``."""
    return 1.0 / torch.linalg.norm(inv.transpose(1, 2), dim=2)


def _in_order(system: torch.Tensor) -> bool:
    """Whether the ``(N,)`` system indices of a batch never decrease (each system's atoms contiguous, in order)."""
    return bool((system[1:] >= system[:-1]).all())


def _subset(system: torch.Tensor, chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The atoms of the systems ``chosen`` (``(B,)`` bool) of a batch: their ``(M,)`` indices and their systems
    renumbered ``0..`` in the order of the chosen systems."""
    atoms = torch.nonzero(chosen.index_select(0, system)).squeeze(1)
    local = torch.cumsum(chosen, 0) - 1
    return atoms, local.index_select(0, system.index_select(0, atoms))


#: Most candidates (atom pairs of a system times the images tried for each) a system may have for the builder
#: to search all its pairs (:func:`_small_cell_pairs`) instead of binning it (:func:`_cell_list`). Measured per
#: system in batches, CPU, 1 thread, float64, cutoff 9.5 Å, 2026-12-07 (load 7): 64 argon atoms (8 images a
#: pair) 0.5 ms against 2.0 ms, 125 atoms (8 images) 1.4 against 2.9 ms, 216 atoms (1 image) 2.3 against 4.8 ms,
#: 343 atoms (1 image, 118k candidates) 8.8 against 8.0 ms, 512 atoms 19 against 11 ms.
_SMALL_CANDIDATES = 1 << 17

#: Candidates per chunk of systems of :func:`_small_cell_pairs` (its ``(M, T, K)`` arrays stay a few MB).
_SMALL_CHUNK = 1 << 18


def _build(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, system: torch.Tensor | None,
           cutoff: float, half: bool) -> PairList:
    """The one builder (``system`` None for one system), without the image table: the pairs of small systems
    (at most :data:`_SMALL_CANDIDATES` candidates) from :func:`_small_cell_pairs`, of the others from
    :func:`_cell_list`; both give the pairs in :func:`_canonical` order, so the lists are merged by a stable
    sort on ``i`` (each system's pairs are one block)."""
    dtype = positions.dtype
    n_atoms, n_sys = positions.shape[0], cell.shape[0]
    pbc = pbc.to(device=positions.device, dtype=torch.bool)
    if n_atoms == 0 or cutoff <= 0:
        return _empty(positions, half)
    full_cell = _complete_cells(cell.to(dtype), pbc)
    inv = torch.linalg.inv(full_cell)
    if system is not None and not _in_order(system):
        # The all-pairs search and the merge need each system's atoms contiguous and in order; the cell list
        # takes atoms of interleaved systems as they come.
        return _cell_list(positions, full_cell, inv, pbc, system, cutoff, half)
    counts = (torch.full((1,), n_atoms, device=positions.device) if system is None
              else torch.bincount(system, minlength=n_sys))
    n_images = torch.where(pbc, torch.floor(2 * cutoff / _heights(inv)) + 1, torch.ones_like(full_cell[:, 0])).prod(1)
    small = counts.to(n_images.dtype) ** 2 * n_images <= _SMALL_CANDIDATES
    if bool(small.all()):
        return _small_cell_pairs(positions, full_cell, inv, pbc, counts, cutoff, half)
    if not bool(small.any()):
        return _cell_list(positions, full_cell, inv, pbc, system, cutoff, half)
    parts = []
    for chosen, builder in ((small, _small_cell_pairs), (~small, None)):
        atoms, sub_system = _subset(system, chosen)
        if builder is None:
            p = _cell_list(positions.index_select(0, atoms), full_cell[chosen], inv[chosen], pbc[chosen], sub_system,
                           cutoff, half)
        else:
            p = builder(positions.index_select(0, atoms), full_cell[chosen], inv[chosen], pbc[chosen], counts[chosen],
                        cutoff, half)
        parts.append((atoms.index_select(0, p.i), atoms.index_select(0, p.j), p.shifts))
    ii, jj, shifts = (torch.cat(x) for x in zip(*parts))
    order = torch.argsort(ii, stable=True)
    return PairList(ii.index_select(0, order), jj.index_select(0, order), shifts.index_select(0, order), half)


def _padded_chunks(n_pairs: list[int], n_img: list[list[int]]) -> list[int]:
    """Bounds of the chunks of consecutive systems of :func:`_small_cell_pairs`: a chunk's arrays are padded to its
    largest pair count times its largest image count in each direction, and that padded size stays within
    :data:`_SMALL_CHUNK` (a system alone may exceed it). Sizing by the systems' own sizes instead let a
    300-atom box (1 image) beside a 5-atom cell of 8 x 12 x 10 images ask for 7 GB."""
    chunks, m, t, k = [0], 0, 0, [0, 0, 0]
    for b, (p, img) in enumerate(zip(n_pairs, n_img)):
        t_new, k_new = max(t, p), [max(x, y) for x, y in zip(k, img)]
        if m and (m + 1) * t_new * k_new[0] * k_new[1] * k_new[2] > _SMALL_CHUNK:
            chunks.append(b)
            m, t_new, k_new = 0, p, list(img)
        m, t, k = m + 1, t_new, k_new
    chunks.append(len(n_pairs))
    return chunks


def _small_cell_pairs(positions: torch.Tensor, full_cell: torch.Tensor, inv: torch.Tensor, pbc: torch.Tensor,
                      counts: torch.Tensor, cutoff: float, half: bool) -> PairList:
    """All pairs within ``cutoff`` of small systems (``counts`` atoms each, contiguous and in order), from every
    atom pair of a system and every image that may hold it, a chunk of systems at a time in one set of tensor
    operations, in :func:`_canonical` order.

    A vector ``v`` from an atom to an image of another within ``cutoff`` has fractional coordinates ``f`` with
    ``|f_d| h_d <= |v| < cutoff`` (``h_d`` the distance between the cell faces ``d``), so with ``f = df + S``
    (``df`` the fractional difference of the positions as given) each periodic ``S_d`` is one of the at most
    ``K_d = floor(2 cutoff / h_d) + 1`` integers from ``ceil(-cutoff / h_d - df_d)``; non-periodic directions have
    ``S_d = 0``. Pairs ``(a, b)`` of local indices come row by row (``a <= b`` for a half list, whose pairs of an
    atom with its own images keep the lexicographically positive ``S``) and the images in lexicographic order of
    ``S``, so the kept candidates come sorted by ``(i, j, S)`` with no sort. The selection of images is in float64
    (exact integer shifts for float32 positions too)."""
    device, dtype = positions.device, positions.dtype
    f64 = torch.float64
    first = torch.cumsum(counts, 0) - counts
    cell64, inv64 = full_cell.to(f64), inv.to(f64)
    pos = positions.to(f64)
    frac_t = torch.einsum("ni,nij->jn", pos, inv64.repeat_interleave(counts, 0)).contiguous()   # (3, N), once
    reach = cutoff / _heights(inv64)                                   # (B, 3) cutoff in cell-face spacings
    n_img = torch.where(pbc, torch.floor(2 * reach).long() + 1, 1)     # (B, 3) images to try per direction
    n_pairs = counts * (counts + 1) // 2 if half else counts * counts
    chunks = _padded_chunks(n_pairs.tolist(), n_img.tolist())
    metric = cell64 @ cell64.transpose(1, 2)                         # (B, 3, 3) G = h h^T: |f h|^2 = f G f
    out = []
    for s0, s1 in zip(chunks[:-1], chunks[1:]):
        cnt, n_k = counts[s0:s1], n_img[s0:s1]
        n, m = int(cnt.max()), s1 - s0
        if half:
            a, b = torch.triu_indices(n, n, device=device)
        else:
            a, b = (x.flatten() for x in torch.meshgrid(torch.arange(n, device=device), torch.arange(n, device=device),
                                                       indexing="ij"))
        ok = (a[None, :] < cnt[:, None]) & (b[None, :] < cnt[:, None])          # (M, T) real atoms
        base = first[s0:s1, None].clamp(max=positions.shape[0] - 1)   # (an empty last system: any real atom)
        ia = torch.where(ok, base + a, base).flatten()
        ib = torch.where(ok, base + b, base).flatten()
        # One (M, T) array per component, and the (K, T) candidates with T innermost: every operation runs over
        # long contiguous rows (rows of three or of K were several times slower).
        df = [(x.index_select(0, ib) - x.index_select(0, ia)).reshape(m, -1) for x in frac_t]
        lo = [torch.where(pbc[s0:s1, e, None], torch.ceil(-reach[s0:s1, e, None] - df[e]), 0.0) for e in range(3)]
        # |(f + k) h|^2 = f G f + 2 k . G f + k G k for the image lo + k (f = df + lo its fractional vector),
        # the (M, K0, K1, K2, T) array built direction by direction (k runs over a product of ranges).
        f = [x + y for x, y in zip(df, lo)]
        rows = metric[s0:s1, :, :, None].unbind(1)                                  # G's rows, (M, 3, 1) each
        g = [f[0] * r[:, 0] + f[1] * r[:, 1] + f[2] * r[:, 2] for r in rows]        # (G f)_e, (M, T)
        d2 = torch.where(ok, f[0] * g[0] + f[1] * g[1] + f[2] * g[2], torch.inf)
        sizes = n_k.max(0).values.tolist()
        ranges = [torch.arange(k, device=device, dtype=f64) for k in sizes]
        for e in (2, 1, 0):
            d2 = d2[:, None] + (2 * ranges[e][:, None] * g[e][:, None, :]).reshape(m, sizes[e], *[1] * (2 - e), -1)
        steps = torch.cartesian_prod(*ranges).reshape(-1, 3)                       # (K, 3) lexicographic
        kgk = (steps[None, :, None, :] * steps[None, :, :, None] * metric[s0:s1, None, :, :]).sum((-2, -1))
        # Images beyond a system's own count (a larger count of another system of the chunk) are not tried.
        kgk = torch.where((steps[None, :, :] < n_k[:, None, :]).all(-1), kgk, torch.inf)          # (M, K)
        n_steps = steps.shape[0]
        keep = torch.empty((m, a.numel(), n_steps), dtype=torch.bool, device=device)   # (M, T, K): nonzero's order
        torch.lt(d2.reshape(m, n_steps, -1) + kgk[:, :, None], cutoff * cutoff, out=keep.transpose(1, 2))
        # An atom with its own images (a == b, where df = 0 and lo is the same for all atoms of a system): no
        # S = 0, and in a half list the lexicographically positive S only (the other is the same pair from the
        # other end).
        own = [x[:, :1] + k for x, k in zip(lo, steps.unbind(1))]                     # (M, K) each
        self_ok = (torch.where(own[0] != 0, own[0] > 0, torch.where(own[1] != 0, own[1] > 0, own[2] > 0)) if half
                   else (own[0] != 0) | (own[1] != 0) | (own[2] != 0))
        diagonal = torch.nonzero(a == b).squeeze(1)
        keep[:, diagonal, :] &= self_ok[:, None, :]
        mi, ti, ki = torch.nonzero(keep).unbind(1)
        flat = mi * a.numel() + ti
        shifts = torch.stack([x.reshape(-1).index_select(0, flat) for x in lo], 1) + steps.index_select(0, ki)
        out.append((ia.index_select(0, flat), ib.index_select(0, flat), shifts.to(dtype)))
    if not out:
        return _empty(positions, half)
    ii, jj, shifts = (torch.cat(x) for x in zip(*out))
    return PairList(ii, jj, shifts, half)


def _cell_list(positions: torch.Tensor, full_cell: torch.Tensor, inv: torch.Tensor, pbc: torch.Tensor,
               system: torch.Tensor | None, cutoff: float, half: bool) -> PairList:
    """The cell list of :func:`_build` for ``(B, 3, 3)`` cells completed by :func:`_complete_cells` (``inv`` their
    inverses; ``system`` None for one system), without the image table."""
    device, dtype = positions.device, positions.dtype
    n_atoms, n_sys = positions.shape[0], full_cell.shape[0]
    empty = _empty(positions, half)
    one = n_sys == 1

    def per_atom(x: torch.Tensor) -> torch.Tensor:
        """A per-system ``(B, ...)`` value for each atom: ``(N, ...)``, or ``(1, ...)`` to broadcast for one system."""
        return x if one else x.index_select(0, system)

    frac = positions @ inv[0] if one else torch.einsum("ni,nij->nj", positions, per_atom(inv))
    heights = _heights(inv)
    pbc_a = per_atom(pbc)

    image = torch.where(pbc_a, torch.floor(frac), torch.zeros_like(frac))  # wrapped = frac - image
    wrapped = frac - image
    if one:
        per_sys = torch.full((1,), n_atoms, device=device)
        w_min, w_max = wrapped.min(0, keepdim=True).values, wrapped.max(0, keepdim=True).values
    else:
        per_sys = torch.bincount(system, minlength=n_sys)
        big = torch.finfo(dtype).max
        index = system[:, None].expand(-1, 3)
        w_min = torch.full((n_sys, 3), big, dtype=dtype, device=device).scatter_reduce(0, index, wrapped, "amin")
        w_max = torch.full((n_sys, 3), -big, dtype=dtype, device=device).scatter_reduce(0, index, wrapped, "amax")
    free = ~pbc & (per_sys > 0)[:, None]  # non-periodic directions of systems with atoms: bin their extent
    lo = torch.where(free, w_min, torch.zeros_like(w_min))
    span = torch.where(free, w_max - w_min, torch.ones_like(w_min))
    # Bins of about half the cutoff: the searched region (2 k + 1 bins) then hugs the cutoff sphere
    # more tightly than bins of a full cutoff would (fewer candidate pairs for the same work).
    n_bins = torch.clamp(torch.floor(2 * span * heights / cutoff), min=1).to(torch.long)
    # Guard against pathological memory use (a cutoff far below the spacing of atoms in a huge box).
    cap = torch.round(4 * per_sys.to(dtype) ** (1 / 3)).to(torch.long) + 1
    n_bins = torch.minimum(n_bins, torch.clamp(cap, min=1)[:, None])
    width = span / n_bins
    width = torch.where(width > 0, width, torch.ones_like(width))
    nb_a = per_atom(n_bins)
    bin_idx = torch.clamp(torch.floor((wrapped - per_atom(lo)) / per_atom(width)).to(torch.long), min=0)
    bin_idx = torch.minimum(bin_idx, nb_a - 1)
    reach = torch.ceil(cutoff / (heights * width) - 1e-12).to(torch.long)
    # A non-periodic direction has no images: never look further than its own bins.
    reach = torch.where(pbc, reach, torch.minimum(reach, n_bins - 1))

    def flat_index(idx: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
        return (idx[..., 0] * nb[..., 1] + idx[..., 1]) * nb[..., 2] + idx[..., 2]

    cells_per_sys = n_bins.prod(1)
    first_bin = torch.cumsum(cells_per_sys, 0) - cells_per_sys
    flat = flat_index(bin_idx, nb_a) if one else per_atom(first_bin) + flat_index(bin_idx, nb_a)
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=int(cells_per_sys.sum()))
    starts = torch.cumsum(counts, 0) - counts

    cart_wrapped = wrapped @ full_cell[0] if one else torch.einsum("ni,nij->nj", wrapped, per_atom(full_cell))
    max_reach = reach.max(0).values
    ranges = [torch.arange(-int(r), int(r) + 1, device=device) for r in max_reach.tolist()]
    offsets = torch.cartesian_prod(*ranges).reshape(-1, 3)  # (O, 3)
    if half:
        # Pair (i, j, S) found from i through offset o is (j, i, -S) found from j through -o: a half
        # list visits the zero offset and the lexicographically positive ones (half the candidates).
        first = torch.where(offsets[:, 0] != 0, offsets[:, 0], torch.where(offsets[:, 1] != 0, offsets[:, 1],
                                                                           offsets[:, 2]))
        offsets = offsets[first >= 0]
    zero_offset = (offsets == 0).all(-1)
    # Per atom and offset: the neighbour bin (before wrapping) and its image shift.
    target = bin_idx[:, None, :] + offsets[None, :, :]  # (N, O, 3)
    nb_t = nb_a[:, None, :]
    img = torch.div(target, nb_t, rounding_mode="floor")
    tgt = target - img * nb_t
    tflat = flat_index(tgt, nb_t)
    if not one:
        tflat = tflat + per_atom(first_bin)[:, None]
    tflat = tflat.flatten()
    valid = counts.index_select(0, tflat) > 0
    if not bool(pbc.all()):
        valid &= (pbc_a[:, None, :] | (img == 0)).all(-1).flatten()
    if not one and bool((reach != max_reach).any()):
        valid &= (offsets.abs()[None, :, :] <= per_atom(reach)[:, None, :]).all(-1).flatten()
    # Entries (atom, offset) as flat indices, sorted by atom (index_select, not 2-D indexing: faster).
    entry = torch.nonzero(valid).flatten()
    if entry.numel() == 0:
        return empty
    n_off = offsets.shape[0]
    ai, oi = torch.div(entry, n_off, rounding_mode="floor"), entry % n_off
    cells_of = tflat.index_select(0, entry)
    cnt = counts.index_select(0, cells_of)
    s_entry = img.reshape(-1, 3).index_select(0, entry).to(dtype)
    # vec = r_j + S cell - r_i = r_j - (r_i - S cell): one subtraction per entry, not per candidate.
    if one:
        image_vec = s_entry @ full_cell[0]
    else:
        image_vec = torch.einsum("ni,nij->nj", s_entry, full_cell.index_select(0, system.index_select(0, ai)))
    base = (cart_wrapped.index_select(0, ai) - image_vec).T.contiguous()
    cw = cart_wrapped.index_select(0, order).T.contiguous()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n_atoms, device=device)
    own = torch.where(zero_offset.index_select(0, oi), rank.index_select(0, ai), -1)
    slot0 = starts.index_select(0, cells_of)
    # Candidates in chunks of about _CHUNK: each chunk's arrays stay in cache (one pass over all
    # candidates of 32000 atoms at once is bound by memory traffic: 3x slower per candidate).
    ends = torch.cumsum(cnt, 0)
    total = int(ends[-1])
    bounds = torch.searchsorted(ends, torch.arange(_CHUNK, max(total, _CHUNK), _CHUNK, device=device), right=True)
    chunks = [0, *bounds.tolist(), ai.numel()]
    kept = [_chunk_pairs(e0, e1, cnt, slot0, own, base, cw, cutoff, half) for e0, e1 in zip(chunks[:-1], chunks[1:])
            if e1 > e0]
    seg = torch.cat([k[0] for k in kept])
    ii = ai.index_select(0, seg)
    jj = order.index_select(0, torch.cat([k[1] for k in kept]))
    # Shifts for the positions as given: r_w = r - image @ cell.
    shifts = s_entry.index_select(0, seg) + image.index_select(0, ii) - image.index_select(0, jj)
    return _canonical(ii, jj, shifts, n_atoms, half)


#: Candidates per chunk of :func:`build_batch_pairs` (sized for a CPU's L2 cache).
_CHUNK = 1 << 16


def _chunk_pairs(e0: int, e1: int, cnt, slot0, own, base, cw, cutoff: float, half: bool):
    """Kept candidates of entries ``e0:e1`` as ``(entry, slot)``: slots index the bin-sorted atoms.

    Each entry (an atom and a neighbour bin in one image) has ``cnt`` candidates, the atoms of that
    bin, which sit at consecutive slots from ``slot0`` in the bin-sorted order; their coordinates are
    read from the bin-sorted copy ``cw`` (neighbouring slots, local memory).
    """
    c = cnt[e0:e1]
    n = int(c.sum())
    local = torch.repeat_interleave(torch.arange(e1 - e0, device=cnt.device), c, output_size=n)
    first_of = torch.cumsum(c, 0) - c
    slot = (slot0[e0:e1] - first_of).index_select(0, local) + torch.arange(n, device=cnt.device)
    d2 = None
    for k in range(3):
        d = cw[k].index_select(0, slot) - base[k, e0:e1].index_select(0, local)
        d2 = d * d if d2 is None else d2 + d * d
    keep = d2 < cutoff * cutoff
    # Within the zero offset (same bin, no image; own >= 0) keep one order of each pair (half) or
    # all but the atom itself (full), comparing slots in the sorted order.
    mine = own[e0:e1].index_select(0, local)
    keep &= (mine < slot) if half else (mine != slot)
    idx = torch.nonzero(keep).flatten()
    return local.index_select(0, idx) + e0, slot.index_select(0, idx)


def _canonical(ii: torch.Tensor, jj: torch.Tensor, shifts: torch.Tensor, n_atoms: int, half: bool) -> PairList:
    """The pairs in an order that depends on the pair set alone: sorted by ``(i, j, S)``, and in a
    half list each pair as ``i < j`` (an atom's own images: the lexicographically positive ``S``).

    The binning (which changes as atoms move) then leaves no trace, so lists built at different
    moments sum their common pairs in the same order: runs are bitwise the same whatever their
    rebuild schedule (checkpointed DiffSim replays its segments exactly).
    """
    if half:
        s0, s1, s2 = shifts.unbind(1)
        lex_pos = torch.where(s0 != 0, s0 > 0, torch.where(s1 != 0, s1 > 0, s2 > 0))
        flip = (ii > jj) | ((ii == jj) & ~lex_pos)
        ii, jj = torch.where(flip, jj, ii), torch.where(flip, ii, jj)
        shifts = torch.where(flip[:, None], -shifts, shifts)
    if ii.numel() == 0:
        return PairList(ii, jj, shifts, half)
    s_int = shifts.to(torch.long)  # exact: image shifts are differences of integers
    lo = s_int.min(0).values
    span = s_int.max(0).values - lo + 1
    code = ((s_int[:, 0] - lo[0]) * span[1] + (s_int[:, 1] - lo[1])) * span[2] + (s_int[:, 2] - lo[2])
    n_codes = int(span.prod())
    pair_key = ii * n_atoms + jj
    if n_atoms * n_atoms * n_codes < 2 ** 62:
        perm = torch.argsort(pair_key * n_codes + code)
    else:  # images too many for one int64 key: two stable sorts
        perm = torch.argsort(code, stable=True)
        perm = perm.index_select(0, torch.argsort(pair_key.index_select(0, perm), stable=True))
    return PairList(ii.index_select(0, perm), jj.index_select(0, perm), shifts.index_select(0, perm), half)


def _with_images(pairs: PairList, system: torch.Tensor) -> PairList:
    """``pairs`` with the table of its distinct ``(system, shift)`` combinations (see :class:`PairList`)."""
    if pairs.i.numel() == 0:
        z = torch.zeros(0, dtype=torch.long, device=pairs.i.device)
        return pairs._replace(images=pairs.shifts[:0], image_system=z, image_index=z)
    s_int = pairs.shifts.to(torch.long)
    low = s_int.min(0).values
    size = s_int.max(0).values - low + 1
    key = ((system.index_select(0, pairs.i) * size[0] + (s_int[:, 0] - low[0])) * size[1]
           + (s_int[:, 1] - low[1])) * size[2] + (s_int[:, 2] - low[2])
    n_codes = int(key.max()) + 1
    if n_codes <= 4 * key.numel() + (1 << 16):
        # Few possible combinations (small shifts): a table of those present, not a sort (the same result).
        present = torch.bincount(key, minlength=n_codes) > 0
        keys = torch.nonzero(present).squeeze(1)
        index = (torch.cumsum(present, 0) - 1).index_select(0, key)
    else:
        keys, index = torch.unique(key, return_inverse=True)
    rest, s2 = torch.div(keys, size[2], rounding_mode="floor"), keys % size[2]
    rest, s1 = torch.div(rest, size[1], rounding_mode="floor"), rest % size[1]
    sys_u, s0 = torch.div(rest, size[0], rounding_mode="floor"), rest % size[0]
    images = (torch.stack([s0, s1, s2], 1) + low).to(pairs.shifts.dtype)
    return pairs._replace(images=images, image_system=sys_u, image_index=index)


def pair_vectors(positions: torch.Tensor, cell: torch.Tensor, pairs: PairList,
                 system: torch.Tensor | None = None) -> torch.Tensor:
    """Return the ``(P, 3)`` vectors ``r_j - r_i + S @ cell`` (Å), differentiable in both inputs.

    ``cell`` is ``(3, 3)``, or ``(B, 3, 3)`` for a batch of systems with ``system`` the ``(N,)``
    system index of each atom (each pair then uses its own system's cell).
    The computation is in the dtype of ``positions`` and ``cell``; the integer shifts of a list
    built in another dtype are cast exactly, so one list serves every precision.
    """
    # index_select: its backward is an index_add, much faster on CPU than advanced indexing's.
    d = positions.index_select(0, pairs.j) - positions.index_select(0, pairs.i)
    if cell.dim() == 2:
        return d + pairs.shifts.to(cell.dtype) @ cell
    if pairs.image_index is not None:
        return d + image_vectors(cell, pairs).index_select(0, pairs.image_index)
    if system is None:
        raise SimsInputError("a (B, 3, 3) cell needs the system index of each atom")
    return d + torch.einsum("pk,pkl->pl", pairs.shifts.to(cell.dtype), cell[system.index_select(0, pairs.i)])


def image_vectors(cell: torch.Tensor, pairs: PairList) -> torch.Tensor:
    """``(U, 3)`` Cartesian vectors (Å) of the distinct ``(system, shift)`` combinations of a batch's list
    (``pairs.images`` in the ``(B, 3, 3)`` cells of their systems); pair ``p``'s is row ``pairs.image_index[p]``."""
    return torch.einsum("uk,ukl->ul", pairs.images.to(cell.dtype), cell.index_select(0, pairs.image_system))


class NeighborList:
    """A Verlet list with a skin: built at ``cutoff + skin``, rebuilt only when needed.

    Parameters
    ----------
    cutoff : float
        Interaction cutoff, Å.
    skin : float
        Extra distance, Å. The list stays complete until some atom has moved more than
        ``skin / 2`` since the last build (the rebuild criterion); after a change of cell, when the
        deformation and the displacements together may bring a pair from outside ``cutoff + skin``
        to within ``cutoff``.
    half : bool
        Build half lists (see :class:`PairList`).
    compiled : bool
        Build the half list of a small orthorhombic cell (periodic in 3-D, at most :data:`_DENSE_ATOMS`
        atoms, ``cutoff + skin`` below half of every edge) by a search over all pairs compiled with
        ``torch.compile`` (:func:`_dense_pairs`: one image per pair, so the same pairs in the same order as
        :func:`build_pairs`, several times faster there); other cells use :func:`build_pairs`.

    Examples
    --------
    >>> nl = NeighborList(cutoff=5.0, skin=1.0)
    >>> pairs = nl.update(positions, cell, pbc)   # doctest: +SKIP
    """

    def __init__(self, *, cutoff: float, skin: float = 1.0, half: bool = True, compiled: bool = False) -> None:
        if not cutoff > 0 or not skin >= 0:
            raise SimsInputError(f"cutoff must be > 0 and skin >= 0, got cutoff={cutoff}, skin={skin}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.half = half
        self.compiled = bool(compiled)
        self.n_builds = 0
        self.n_partial_builds = 0
        self._image_limit = 0
        self._blocks: tuple[list[int], list[int]] | None = None  # a batch's list: systems in list order, pair counts
        self._pairs: PairList | None = None
        self._ref_positions: torch.Tensor | None = None
        self._ref_cell: torch.Tensor | None = None

    @property
    def pairs(self) -> PairList | None:
        """The list as last built or patched by :meth:`update` (None before the first build)."""
        return self._pairs

    @property
    def reference_positions(self) -> torch.Tensor | None:
        """``(N, 3)`` positions (Å) the list was built at, each system's own under patches of a batch; the
        rebuild test measures displacements from these (None before the first build)."""
        return self._ref_positions

    def _update_batch(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, system: torch.Tensor,
                      force: bool, rebuild: torch.Tensor | None = None) -> PairList:
        """The list of a batch: each system's part is rebuilt only when that system alone would need
        it (:meth:`_moved_systems`), so a large batch of small systems rebuilds a few systems at a
        time instead of all of them whenever any atom anywhere moved. Each system's pairs stay one block
        in canonical order (the blocks themselves in any order), so per-system sums, and forces, do not
        depend on the patching. A patch builds the moved systems' parts in one call (small cells: one
        all-pairs search for all of them) and copies the kept blocks as runs of consecutive blocks (the
        order and sizes of the blocks are kept on the host), with no index over the whole list."""
        n_sys, reach = cell.shape[0], self.cutoff + self.skin
        old = self._pairs
        fresh = (force or old is None or old.images is None or self._blocks is None or self._ref_positions is None
                 or self._ref_cell is None or self._ref_positions.shape != positions.shape
                 or self._ref_cell.shape != cell.shape)
        if not fresh:
            moved = self._moved_systems(positions, cell, system)
            if rebuild is not None:
                moved = moved | rebuild
            n_moved = int(moved.sum())  # the one wait for the device per step
            if n_moved == 0:
                return old
            # Patched lists keep the image table of their earlier parts: start afresh when it has grown.
            fresh = 2 * n_moved > n_sys or old.images.shape[0] > self._image_limit
        if fresh:
            self._pairs = build_batch_pairs(positions, cell, pbc, system, reach, half=self.half)
            self._ref_positions, self._ref_cell = positions.clone(), cell.clone()
            self._image_limit = 4 * max(int(self._pairs.images.shape[0]), n_sys)
            # Patches splice the list as one block per system, which holds for atoms of each system contiguous
            # and in order; interleaved systems' lists are always built afresh.
            self._blocks = ((list(range(n_sys)),
                             torch.bincount(system.index_select(0, self._pairs.i), minlength=n_sys).tolist())
                            if _in_order(system) else None)
            self.n_builds += 1
            return self._pairs
        atoms, sub_system = _subset(system, moved)
        sub = _with_images(_build(positions.index_select(0, atoms), cell[moved], pbc[moved], sub_system, reach,
                                  self.half), sub_system)
        moved_ids = torch.nonzero(moved).squeeze(1)
        # The kept systems' blocks, copied as runs of consecutive blocks (one pass over the kept pairs, no index
        # over the whole list), then the rebuilt systems' blocks.
        order, counts = self._blocks
        is_moved = moved.tolist()
        runs, kept_order, kept_counts, start = [], [], [], 0
        for b, c in zip(order, counts):
            if not is_moved[b]:
                if runs and runs[-1][1] == start:
                    runs[-1][1] = start + c
                else:
                    runs.append([start, start + c])
                kept_order.append(b)
                kept_counts.append(c)
            start += c

        def spliced(column: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
            return torch.cat([column[a:e] for a, e in runs] + [new])

        self._pairs = PairList(
            spliced(old.i, atoms.index_select(0, sub.i)), spliced(old.j, atoms.index_select(0, sub.j)),
            spliced(old.shifts, sub.shifts), self.half,
            torch.cat([old.images, sub.images]), torch.cat([old.image_system, moved_ids.index_select(0, sub.image_system)]),
            spliced(old.image_index, sub.image_index + old.images.shape[0]))
        self._blocks = (kept_order + moved_ids.tolist(),
                        kept_counts + torch.bincount(sub_system.index_select(0, sub.i), minlength=n_moved).tolist())
        self._ref_positions[atoms] = positions.index_select(0, atoms)
        self._ref_cell[moved] = cell[moved]
        self.n_partial_builds += 1
        return self._pairs

    def _moved_systems(self, positions: torch.Tensor, cell: torch.Tensor, system: torch.Tensor) -> torch.Tensor:
        """``(B,)`` True for the systems of a batch whose part of the list may miss a pair: the test of
        :meth:`needs_rebuild` applied to each system with its own reference cell and positions."""
        n_sys = cell.shape[0]
        changed = torch.nonzero((self._ref_cell != cell).flatten(1).any(1)).squeeze(1)
        if changed.numel() == 0:
            disp = (positions - self._ref_positions).norm(dim=1)
            worst = torch.zeros(n_sys, dtype=disp.dtype, device=disp.device).scatter_reduce(0, system, disp, "amax")
            return worst > 0.5 * self.skin
        # Deformed cells (barostats): pull positions back into the reference cell, per system.
        ref = self._ref_cell
        singular = (torch.abs(torch.linalg.det(ref)) < 1e-12) | (torch.abs(torch.linalg.det(cell)) < 1e-12)
        eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
        usable = ~singular[:, None, None]
        deform = torch.linalg.solve(torch.where(usable, ref, eye), torch.where(usable, cell, eye))
        undo = torch.linalg.inv(deform)
        pulled = torch.einsum("ni,nij->nj", positions, undo.index_select(0, system))
        disp = (pulled - self._ref_positions).norm(dim=1)
        worst = torch.zeros(n_sys, dtype=disp.dtype, device=disp.device).scatter_reduce(0, system, disp, "amax")
        shrink = torch.linalg.svdvals(deform).min(1).values
        return singular | (shrink * (self.cutoff + self.skin - 2 * worst) < self.cutoff)

    def needs_rebuild(self, positions: torch.Tensor, cell: torch.Tensor) -> bool:
        """True when the stored list may miss a pair within ``cutoff``."""
        if self._pairs is None or self._ref_positions is None or self._ref_cell is None:
            return True
        if self._ref_positions.shape != positions.shape or self._ref_cell.shape != cell.shape:
            return True
        positions, cell = positions.detach(), cell.detach()
        if torch.equal(self._ref_cell, cell):
            disp = (positions - self._ref_positions).norm(dim=1)
            return bool(disp.max() > 0.5 * self.skin)
        # A deformed cell (a barostat): the list built at cutoff + skin still holds every pair within
        # cutoff while sigma_min(G) (cutoff + skin - 2 max|dr|) >= cutoff, with G = h_ref^-1 h the
        # deformation and dr the displacements pulled back into the reference cell (r h^-1 h_ref - r_ref).
        # (The same idea as LAMMPS's box-change check in Neighbor::check_distance, made exact for
        # triclinic cells.) A singular cell (a non-periodic direction without a vector) rebuilds.
        if abs(float(torch.linalg.det(self._ref_cell))) < 1e-12 or abs(float(torch.linalg.det(cell))) < 1e-12:
            return True
        deform = torch.linalg.solve(self._ref_cell, cell)
        pulled = torch.linalg.solve(deform.T, positions.T).T
        disp = (pulled - self._ref_positions).norm(dim=1)
        shrink = float(torch.linalg.svdvals(deform).min())
        return shrink * (self.cutoff + self.skin - 2 * float(disp.max())) < self.cutoff

    def update(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
               *, force: bool = False, system: torch.Tensor | None = None,
               rebuild: torch.Tensor | None = None) -> PairList:
        """Return a pair list valid for ``positions``, rebuilding it when needed (or ``force``).

        A batch of systems passes ``(B, 3, 3)`` cells, ``(B, 3)`` flags and ``system``, the system
        index of each atom (:func:`build_batch_pairs`); a system's part of the list is rebuilt when
        that system alone would need it (its atoms moved too far, or its cell deformed too much for
        the skin: :attr:`n_partial_builds` counts those patches), the whole list when half of the
        systems need it. ``rebuild``, ``(B,)`` bool, also rebuilds the parts of the systems it marks
        (a driver that expects them to need it within a step: one patch for both).
        """
        if system is not None and cell.shape[0] > 1:
            return self._update_batch(positions.detach(), cell.detach(), pbc, system, force, rebuild)
        cell = cell.reshape(3, 3)
        if force or (rebuild is not None and bool(rebuild.any())) or self.needs_rebuild(positions, cell):
            reach = self.cutoff + self.skin
            if self.compiled and self.half and _dense_applies(positions, cell, pbc, reach):
                self._pairs = _dense_pairs(positions.detach(), cell.detach(), reach)
            else:
                self._pairs = build_pairs(positions.detach(), cell.detach(), pbc.reshape(3), reach, half=self.half)
            self._ref_positions = positions.detach().clone()
            self._ref_cell = cell.detach().clone()
            self.n_builds += 1
        assert self._pairs is not None
        return self._pairs


#: Most atoms for which :class:`NeighborList` (``compiled=True``) searches all pairs (a mask of N^2 entries).
_DENSE_ATOMS = 2048


def _dense_applies(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, reach: float) -> bool:
    """Whether :func:`_dense_pairs` gives the list of this cell: small, periodic in 3-D, orthorhombic, and
    ``reach`` below half of each edge (then a pair has at most one image within ``reach``)."""
    if positions.shape[0] > _DENSE_ATOMS or not bool(pbc.all()):
        return False
    cell = cell.detach()
    edges = torch.diagonal(cell)
    return bool(torch.equal(torch.diag(edges), cell)) and bool((2 * reach < edges).all())


def _dense_mask(positions: torch.Tensor, edges: torch.Tensor, reach: float) -> torch.Tensor:
    """``(N, N)`` True for ``i < j`` closer than ``reach`` in their nearest image (orthorhombic ``edges``).
    (``1 / edges`` times, not a division: the nearest image can differ only where ``|d| ~ L / 2 > reach``.)"""
    d = positions[None, :, :] - positions[:, None, :]
    d = d - torch.round(d * edges.reciprocal()) * edges
    index = torch.arange(positions.shape[0], device=positions.device)
    return ((d * d).sum(-1) < reach * reach) & (index[None, :] > index[:, None])


@functools.cache
def _compiled_dense_mask():
    return torch.compile(_dense_mask)


@torch.no_grad()
def _dense_pairs(positions: torch.Tensor, cell: torch.Tensor, reach: float, *, compiled: bool = True) -> PairList:
    """The half list of :func:`build_pairs` for a cell where :func:`_dense_applies`, from a pass over all pairs
    (compiled, or eager with ``compiled=False``): each pair ``i < j`` within ``reach`` has one image,
    ``S = -round((r_j - r_i) / L)``, so the list is :func:`_canonical`'s, sorted by ``(i, j)``.

    Why beside :func:`_small_cell_pairs`, the other all-pairs search: neither can serve the other's case.
    That one is the general eager search of :func:`build_pairs` (triclinic cells, any periodicity, several
    images a pair, batches of systems of different sizes in chunks sized on the host), whose data-dependent
    shapes and host reads ``torch.compile`` would split into many graphs, and no eager caller should pay a
    compilation; this one is one fixed-shape mask for the one case where a pair has a single image, compiled
    once per process for ``NeighborList(compiled=True)``, and handles nothing else. Routing the compiled
    list through :func:`build_pairs` instead costs: 256 argon atoms at 9.5 Å 0.42 ms here against 2.4-17 ms
    (its small-cell search), 500-864 atoms 1.2-3.2 ms against 14-44 ms (the cell list), 2048 atoms 27-50
    against 44-90 ms; lists equal pair for pair (``benchmarks/sims_neighbors.py --builders``, 2026-12-07,
    1 thread, 2 cores at load 5.5, ranges over four runs)."""
    edges = torch.diagonal(cell).contiguous()
    mask = _compiled_dense_mask() if compiled else _dense_mask
    ij = torch.nonzero(mask(positions, edges, float(reach)))
    i, j = ij[:, 0].contiguous(), ij[:, 1].contiguous()
    shifts = -torch.round((positions.index_select(0, j) - positions.index_select(0, i)) / edges)
    return PairList(i, j, shifts + 0.0, True)


def neighbor_list(atoms, cutoff: float, *, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(i, j, S)`` for all pairs of ``atoms`` closer than ``cutoff`` (Å), like ASE.

    Same convention and pair set as ``ase.neighborlist.neighbor_list('ijS', atoms, cutoff)``
    (full list, both orders, no self pair with zero shift); the order of pairs may differ.

    Parameters
    ----------
    atoms : ase.Atoms
        The configuration; its ``pbc`` flags decide which directions are periodic.
    cutoff : float
        Cutoff radius, Å.
    device, dtype
        Where and in which precision the distances are computed.

    Returns
    -------
    i, j : numpy.ndarray
        int64 indices.
    S : numpy.ndarray
        ``(P, 3)`` int64 image shifts.

    Raises
    ------
    InputError
        Non-finite positions (:func:`reprs.atoms.as_atoms`); a non-positive cutoff (``SimsInputError``).
    MissingCellError
        A periodic direction without a cell vector.

    Examples
    --------
    >>> from ase.build import bulk
    >>> i, j, S = neighbor_list(bulk("Cu", cubic=True), cutoff=3.0)
    >>> len(i)  # 4 atoms x 12 nearest neighbours
    48
    """
    atoms = as_atoms(atoms)
    if not cutoff > 0:
        raise SimsInputError(f"cutoff must be > 0 Å, got {cutoff}")
    pos = torch.as_tensor(np.asarray(atoms.positions), dtype=dtype, device=device)
    cell = torch.as_tensor(np.asarray(atoms.cell[:]), dtype=dtype, device=device)
    pbc = torch.as_tensor(np.asarray(atoms.pbc), device=device)
    pairs = build_pairs(pos, cell, pbc, float(cutoff), half=False)
    return (pairs.i.cpu().numpy(), pairs.j.cpu().numpy(),
            np.rint(pairs.shifts.cpu().numpy()).astype(np.int64))
