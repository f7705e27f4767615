"""PaiNN evaluated member by member, literally as written before the committee ran as one network.

The reference :mod:`learners.potentials.painn` is tested against (and ``benchmarks/lgps_cost.py``
times against): eqs. 7-10 of Schütt, Unke & Gastegger (ICML 2021, arXiv:2102.03150) on one model's
own modules (``nn.Linear`` / ``nn.Sequential`` calls), its own pair vectors, radial basis and
repulsion, and the vector message ``phi_vv(s_j) W_vv(r_ij) o v_j`` computed even where ``v_j`` is zero.
"""

from __future__ import annotations

import torch
from torch import nn

from learners.potentials.batch import full_pairs, pair_vectors
from learners.potentials.layers import cosine_cutoff, zbl_energy
from learners.potentials.painn import _NORM_EPS


def reference_outputs(model, numbers, i, j, vectors) -> torch.Tensor:
    """``(N,)`` per-atom outputs of one :class:`~learners.potentials.PaiNN`."""
    n = model.n_features
    r = torch.linalg.norm(vectors, dim=-1)
    unit = vectors / r[:, None]
    rbf, fcut = model.rbf(r), cosine_cutoff(r, model.cutoff)
    s = model.embedding(numbers)
    v = torch.zeros((s.shape[0], 3, n), dtype=s.dtype, device=s.device)
    for message, update in zip(model.messages, model.updates):
        x = message.phi(s)[j] * (message.filter(rbf) * fcut[:, None])
        ds, dvv, dvs = torch.split(x, n, dim=-1)
        dv = dvv[:, None, :] * v[j] + dvs[:, None, :] * unit[:, :, None]
        s, v = s.index_add(0, i, ds), v.index_add(0, i, dv)
        uv, vv = update.U(v), update.V(v)
        norm = torch.sqrt((vv * vv).sum(1) + _NORM_EPS)
        a_vv, a_sv, a_ss = torch.split(update.a(torch.cat([s, norm], -1)), n, dim=-1)
        s, v = s + a_ss + a_sv * (uv * vv).sum(1), v + a_vv[:, None, :] * uv
    return model.readout(s).squeeze(-1)


def reference_energy(model, positions, cell, numbers, pairs, batch=None) -> torch.Tensor:
    """Energy (eV) of one model: scalar, or ``(B,)`` with ``batch``."""
    i, j, shifts = full_pairs(pairs)
    vec = pair_vectors(positions, cell, i, j, shifts, batch)
    with torch.no_grad():
        inside = (vec * vec).sum(-1) < model.cutoff ** 2
    i, j, vec = i[inside], j[inside], vec[inside]
    atomic = reference_outputs(model, numbers, i, j, vec) * model.energy_scale + model.atom_energy[numbers]
    if model.repulsion is not None:
        zi, zj = numbers[i], numbers[j]
        radii = model.covalent_radii.to(vec.dtype)
        pair = zbl_energy(torch.linalg.norm(vec, dim=-1), zi, zj, r_max=radii[zi] + radii[zj])
        atomic = atomic + torch.zeros_like(atomic).index_add(0, i, 0.5 * pair)
    if batch is None:
        return atomic.sum()
    return torch.zeros(cell.shape[0], dtype=atomic.dtype, device=atomic.device).index_add(0, batch, atomic)


class ReferencePotential(nn.Module):
    """A :mod:`sims` potential: the mean :func:`reference_energy` of ``models`` (one model: its energy)."""

    def __init__(self, models) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)
        self.cutoff = models[0].cutoff

    def forward(self, positions, cell, numbers, pairs, batch=None):
        return torch.stack([reference_energy(m, positions, cell, numbers, pairs, batch) for m in self.models]).mean(0)
