"""CGVAE: a conditional VAE that backmaps coarse-grained (CG) beads to all-atom coordinates.

Wang, Xu, Cai, Miller, Smidt, Wang, Tang & Gómez-Bombarelli, "Generative Coarse-Graining of
Molecular Conformations", ICML 2022 (arXiv:2201.12176), sec. 4. For one molecule and one
:class:`reprs.cg_mapping.CGMapping`:

- **Encoder** q(z | x, X): equivariant message passing (PaiNN blocks) over the atoms of the
  fine-grained (FG) geometry x, then a contraction of each bead's atoms onto the bead (filters of
  the atom-to-bead distance |x_i - X_I|): one invariant latent vector z_I per bead, Gaussian with
  mean and log-variance from that vector.
- **Prior** p(z | X): PaiNN blocks over the CG geometry alone, giving each bead's Gaussian.
- **Decoder** p(x | z, X): PaiNN blocks over the CG geometry, each bead's latent added (through
  its own linear map) to the bead's scalars before every block, not only the first, so that it
  cannot be washed out by the messages; an extra cross-product message ``r_IJ x v_J`` lets
  vectors leave the plane of three beads (the paper's ``EquiMessageCross`` idea; without it a
  3-bead molecule could only be decoded flat). Atom i of bead I gets the offset
  ``sum_c M_ic v_Ic``, a per-atom mix of its bead's vector channels whose weights
  ``M_ic = W_ic + sum_g G_icg s_Ig`` depend on the bead's final scalars (invariant, so the offset
  stays equivariant), recentred so that the weighted centre of each bead's atoms is the bead
  exactly: ``x_i = X_I + d_i - sum_{j in I} w_j d_j``.

Outputs rotate with the CG input (proper rotations; the cross product makes the decoder a
pseudovector map, so mirror images are not mapped to mirror images, as a chiral molecule needs)
and translate with it; latents are invariant (and parity-even: the encoder cannot tell an FG
geometry from its mirror image through the plane of three beads).

Loss (paper eq. 8 and its code's bond term): ``mean |x_hat - x|^2 + beta KL(q || p) + gamma
mean_pairs (|x_hat_i - x_hat_j| - |x_i - x_j|)^2``, KL summed over latent dimensions and averaged
over beads and frames. The paper restrains bonded pairs only; here by default also the pairs two
bonds apart (``restraint_hops=2``: the 1-3 distances, which fix the bond angles, hydrogens
included). With bond lengths alone a decoder that does not resolve a freely rotating methyl group
from its latent puts the three hydrogens near the rotor axis (their conditional mean), closer to
each other than the 0.81 Å H-H bond cutoff, and no sample of alanine dipeptide had a valid
all-atom bond graph; the 1-3 distances keep the methyl a rigid tripod, so such a decoder emits
one rotamer instead (benchmarks/README.md; tests/learners/test_backmap.py). ``free_bits``
(nats per bead, Kingma et al. 2016) exempts a bead's KL below that value from the encoder's
KL cost, a remedy for posterior collapse; the prior is still fitted by the full KL. The paper's alanine dipeptide values are beta = 0.05, gamma = 25; the
default here is gamma = 1. With gamma = 25 the bond term dominates the loss from the first step
and every noisy latent draw moves bond lengths, so the decoder learns to ignore its latent
(posterior collapse: tests/learners/test_backmap_collapse.py fails that way) and, on alanine
dipeptide at our budgets, fits worse (benchmarks/README.md). :func:`fit_cgvae` can ramp both
weights up from 0 over the first ``warmup`` epochs (KL annealing, Bowman et al., CoNLL 2016,
arXiv:1511.06349), and the posterior starts nearly deterministic (``_POSTERIOR_LOGVAR0``).

Layers: the PaiNN message and update blocks of :mod:`learners.potentials.painn` (Schütt, Unke &
Gastegger, ICML 2021), our own rather than e3nn's, because the model needs only scalars and
vectors (l <= 1) and these blocks are already tested in the project; dense all-pairs neighbour
lists (within a cutoff) since one molecule's atoms are few.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from learners.errors import InputError
from learners.potentials.layers import BesselRBF, GaussianRBF, cosine_cutoff
from learners.potentials.painn import _Message, _Update
from sims.integrators import seeded_init
from reprs.cg_mapping import CGMapping

__all__ = ["CGVAE", "cgvae_step", "fit_cgvae", "positions_tensor", "backmap", "backmap_file", "save_cgvae", "load_cgvae"]

_EPS = 1e-8
#: Initial posterior log-variance (std 0.05): at the usual 0 (std 1) the sampled latent starts as
#: noise far larger than the spread of its mean over frames, the decoder learns to ignore it in
#: the first epochs and never recovers (posterior collapse; seen in tests/learners/test_backmap_collapse.py).
_POSTERIOR_LOGVAR0 = -6.0


def _all_pairs(n: int) -> torch.Tensor:
    """``(n (n - 1), 2)`` ordered pairs i != j."""
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    return torch.stack([i[keep], j[keep]], dim=1)


def _hop_pairs(n: int, bonds: np.ndarray, hops: int) -> torch.Tensor:
    """Ordered pairs at most ``hops`` bonds apart (bonds, angles, dihedrals for 3)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    graph = coo_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(n, n))
    dist = shortest_path(graph, unweighted=True, directed=False)
    i, j = np.nonzero((dist >= 1) & (dist <= hops))
    return torch.as_tensor(np.stack([i, j], axis=1), dtype=torch.long)


def _gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(mu_p, e^logvar_p)) in nats, summed over the last (latent) axis."""
    return 0.5 * (logvar_p - logvar + (torch.exp(logvar) + (mu - mu_p) ** 2) / torch.exp(logvar_p) - 1.0).sum(-1)


def _batched(pairs: torch.Tensor, n: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs of one frame repeated over ``batch`` frames of ``n`` nodes, as flat node indices."""
    offset = (torch.arange(batch, device=pairs.device) * n)[:, None]
    return (pairs[None, :, 0] + offset).reshape(-1), (pairs[None, :, 1] + offset).reshape(-1)


class _Cross(nn.Module):
    """``dv_i = sum_j (phi(s_j) o W(r_ij)) (r_ij/|r_ij| x v_j)``: vectors out of the plane of ``r_ij`` and ``v_j``."""

    def __init__(self, n_features: int, n_rbf: int) -> None:
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(n_features, n_features), nn.SiLU(), nn.Linear(n_features, n_features))
        self.filter = nn.Linear(n_rbf, n_features)

    def forward(self, s, v, rbf, fcut, unit, i, j):
        gate = self.phi(s)[j] * (self.filter(rbf) * fcut[:, None])
        cross = torch.linalg.cross(unit[:, :, None].expand_as(v[j]), v[j], dim=1)
        return v.index_add(0, i, gate[:, None, :] * cross)


class _Equivariant(nn.Module):
    """PaiNN message + update blocks (optionally with the cross message) over all pairs within a cutoff."""

    def __init__(self, n_features: int, n_rbf: int, cutoff: float, n_layers: int, cross: bool) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.rbf = BesselRBF(n_rbf, cutoff)
        self.messages = nn.ModuleList(_Message(n_features, n_rbf) for _ in range(n_layers))
        self.updates = nn.ModuleList(_Update(n_features) for _ in range(n_layers))
        self.crosses = nn.ModuleList(_Cross(n_features, n_rbf) for _ in range(n_layers)) if cross else None

    def forward(self, s: torch.Tensor, positions: torch.Tensor, pairs: torch.Tensor,
                inject: Sequence[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``s`` ``(B, n, F)``, positions ``(B, n, 3)``, one frame's ordered ``pairs`` ``(P, 2)``
        -> scalars ``(B n, F)``, vectors ``(B n, 3, F)``; ``inject[k]`` ``(B, n, F)`` is added to
        the scalars before block ``k``."""
        batch, n, f = s.shape
        s = s.reshape(batch * n, f)
        v = s.new_zeros(batch * n, 3, f)
        if pairs.shape[0] == 0:
            return s, v
        x = positions.reshape(batch * n, 3)
        i, j = _batched(pairs, n, batch)
        r = x[j] - x[i]
        d = torch.linalg.norm(r, dim=-1)
        rbf, fcut, unit = self.rbf(d), cosine_cutoff(d, self.cutoff), r / d[:, None]
        for k, (message, update) in enumerate(zip(self.messages, self.updates)):
            if inject is not None:
                s = s + inject[k].reshape(batch * n, f)
            s_in, v_in = s, v
            s, v = message(s_in, v_in, rbf, fcut, unit, i, j)
            if self.crosses is not None:
                v = v + self.crosses[k](s_in, v_in, rbf, fcut, unit, i, j) - v_in
            s, v = update(s, v)
        return s, v


def _mlp(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_in), nn.SiLU(), nn.Linear(n_in, n_out))


class CGVAE(nn.Module):
    """Equivariant conditional VAE backmapping the beads of ``mapping`` to all atoms.

    Parameters
    ----------
    mapping : reprs.cg_mapping.CGMapping
        Atoms to beads and the weights of the bead centres (``n_beads = mapping.n_beads``).
    numbers : sequence of int
        Atomic numbers of the FG molecule, in the mapping's atom order.
    bonds : array_like, optional
        ``(E, 2)`` bonded atom pairs for the bond-length loss (e.g.
        :func:`reprs.cg_mapping.covalent_bonds` of a reference frame); None: no bond term.
    n_features : int
        Scalar and vector channels of every layer.
    latent_dim : int, optional
        Size of each bead's latent vector (default ``n_features``).
    n_rbf : int
        Radial basis functions.
    encoder_layers, prior_layers, decoder_layers : int
        PaiNN blocks of each network.
    atom_cutoff, cg_cutoff : float
        Cutoffs (Å) of the atom and bead graphs (the paper's 8.5 and 9.5 for alanine dipeptide).
    encoder_hops : int, optional
        The encoder passes messages between atoms at most this many bonds apart (3: bonds, angles
        and dihedrals; the authors' alanine dipeptide runs use 2, ``-edgeorder 2``), which is
        about half the pairs of alanine dipeptide and so half the encoder's cost; None (or no
        ``bonds``): all pairs within ``atom_cutoff``.
    beta, gamma : float
        Weights of the KL and distance-restraint terms of :meth:`loss` (the paper's alanine
        dipeptide values are 0.05 and 25; see the module docstring for why gamma defaults to 1).
    restraint_hops : {1, 2}
        The restraint term compares the distances of atom pairs at most this many bonds apart:
        1, the bond lengths (the paper's term); 2 (default), also the 1-3 distances, which fix
        the bond angles (hydrogens included).
    free_bits : float
        Nats per bead: a bead's batch-mean KL below this costs the encoder nothing in training
        (free bits, Kingma et al., NeurIPS 2016, arXiv:1606.04934); 0 (default): the plain KL.
        On alanine dipeptide with 3 beads, 10 made the latent carry the methyl rotamers (7 nats
        per bead, diverse samples) but 7 % of samples then had an invalid bond graph, against
        0.3 % with 0 (benchmarks/README.md).
    seed : int
        Seeds the weight initialisation (torch's generator, forked: the caller's state is kept).
    device, dtype
        Of the parameters and every computation.

    Examples
    --------
    >>> from ase.build import molecule
    >>> from reprs.cg_mapping import heavy_atom_mapping
    >>> mol = molecule("CH3CH2OH")
    >>> model = CGVAE(heavy_atom_mapping(mol), mol.numbers, n_features=8)
    >>> cg = model.bead_positions(torch.tensor(mol.positions[None], dtype=torch.float32))
    >>> model.sample(cg, 2, seed=0).shape
    torch.Size([2, 1, 9, 3])
    """

    def __init__(self, mapping: CGMapping, numbers: Sequence[int], bonds: Any = None, *, n_features: int = 32,
                 latent_dim: int | None = None, n_rbf: int = 16, encoder_layers: int = 2, prior_layers: int = 2,
                 decoder_layers: int = 3, atom_cutoff: float = 8.5, cg_cutoff: float = 9.5,
                 encoder_hops: int | None = 3, beta: float = 0.05, gamma: float = 1.0, restraint_hops: int = 2,
                 free_bits: float = 0.0, seed: int = 0, device: Any = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not isinstance(mapping, CGMapping):
            raise InputError(f"mapping must be a reprs.cg_mapping.CGMapping, got {type(mapping).__name__}")
        numbers = np.asarray(numbers, dtype=np.int64)
        if numbers.shape != (mapping.n_atoms,):
            raise InputError(f"numbers must give one atomic number per atom of the mapping ({mapping.n_atoms}), "
                             f"got shape {numbers.shape}")
        bonds = np.zeros((0, 2), dtype=np.int64) if bonds is None else np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
        if bonds.size and (bonds.min() < 0 or bonds.max() >= mapping.n_atoms):
            raise InputError(f"bonds name atoms outside 0..{mapping.n_atoms - 1}")
        for name, value in (("n_features", n_features), ("n_rbf", n_rbf), ("encoder_layers", encoder_layers),
                            ("prior_layers", prior_layers), ("decoder_layers", decoder_layers)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if beta < 0 or gamma < 0 or free_bits < 0:
            raise InputError(f"beta, gamma and free_bits must be >= 0, got beta={beta}, gamma={gamma}, "
                             f"free_bits={free_bits}")
        if restraint_hops not in (1, 2):
            raise InputError(f"restraint_hops must be 1 (bond lengths) or 2 (bond lengths and 1-3 distances), "
                             f"got {restraint_hops!r}")
        latent_dim = n_features if latent_dim is None else latent_dim
        self.mapping = mapping
        self.hparams = dict(n_features=n_features, latent_dim=latent_dim, n_rbf=n_rbf, encoder_layers=encoder_layers,
                            prior_layers=prior_layers, decoder_layers=decoder_layers, atom_cutoff=float(atom_cutoff),
                            cg_cutoff=float(cg_cutoff), encoder_hops=encoder_hops, beta=float(beta),
                            gamma=float(gamma), restraint_hops=int(restraint_hops), free_bits=float(free_bits),
                            seed=int(seed))
        self.beta, self.gamma, self.free_bits = float(beta), float(gamma), float(free_bits)
        self.ramp = 1.0
        n, nb, f = mapping.n_atoms, mapping.n_beads, n_features
        self.register_buffer("numbers", torch.as_tensor(numbers))
        self.register_buffer("bonds", torch.as_tensor(bonds))
        self.register_buffer("assignment", torch.tensor(mapping.assignment))
        use_hops = encoder_hops is not None and len(bonds) > 0
        self.register_buffer("atom_pairs", _hop_pairs(n, bonds, encoder_hops) if use_hops else _all_pairs(n))
        restrained = _hop_pairs(n, bonds, restraint_hops) if len(bonds) else torch.zeros((0, 2), dtype=torch.long)
        self.register_buffer("restrained", restrained[restrained[:, 0] < restrained[:, 1]], persistent=False)
        self.register_buffer("bead_pairs", _all_pairs(nb))
        self.register_buffer("bead_matrix", torch.as_tensor(mapping.matrix(), dtype=torch.float64))
        with seeded_init(seed):
            self.atom_embed = nn.Embedding(n, f)
            self.bead_embed = nn.Embedding(nb, f)
            self.encoder = _Equivariant(f, n_rbf, atom_cutoff, encoder_layers, cross=False)
            self.contract_rbf = GaussianRBF(n_rbf, atom_cutoff)
            self.contract_phi = _mlp(f, f)
            self.contract_filter = nn.Linear(n_rbf, f)
            self.posterior = _mlp(f, 2 * latent_dim)
            with torch.no_grad():
                self.posterior[-1].bias[latent_dim:] = _POSTERIOR_LOGVAR0
            self.prior_net = _Equivariant(f, n_rbf, cg_cutoff, prior_layers, cross=False)
            self.prior_head = _mlp(f, 2 * latent_dim)
            self.latent_in = nn.ModuleList(nn.Linear(latent_dim, f) for _ in range(decoder_layers))
            self.decoder = _Equivariant(f, n_rbf, cg_cutoff, decoder_layers, cross=True)
            self.atom_mix = nn.Parameter(torch.randn(n, f) / f ** 0.5)
            self.atom_gate = nn.Parameter(torch.zeros(n, f, f))
        self.to(device=device, dtype=dtype)

    # -- geometry ------------------------------------------------------------------------------
    def _dtype(self) -> torch.dtype:
        return self.atom_mix.dtype

    def _check(self, x: torch.Tensor, n: int, what: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != self._dtype():
            raise InputError(f"{what} are {x.dtype} but the model is {self._dtype()}; cast one of them")
        if x.ndim != 3 or x.shape[1:] != (n, 3):
            raise InputError(f"{what} must have shape (frames, {n}, 3), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise InputError(f"{what} contain non-finite coordinates")
        if n > 1:
            d = torch.cdist(x, x) + torch.eye(n, dtype=x.dtype, device=x.device)
            if (d < 1e-4).any():
                b, i, j = (int(k) for k in torch.nonzero(d < 1e-4)[0])
                raise InputError(f"{what}: points {i} and {j} of frame {b} coincide; the geometry has no direction "
                                 "between them to place atoms along")
        return x

    def bead_positions(self, x: torch.Tensor) -> torch.Tensor:
        """Bead centres ``(B, n_beads, 3)`` Å of FG positions ``(B, n_atoms, 3)`` Å."""
        return torch.einsum("Ia,bad->bId", self.bead_matrix.to(x.dtype), x)

    # -- networks ------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, cg: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance ``(B, n_beads, latent_dim)`` of FG positions ``x`` ``(B, n_atoms, 3)`` Å."""
        x = self._check(x, self.mapping.n_atoms, "FG positions")
        cg = self.bead_positions(x) if cg is None else cg
        batch, n = x.shape[:2]
        s = self.atom_embed.weight.expand(batch, n, -1)
        s, _ = self.encoder(s, x, self.atom_pairs)
        r = x - cg[:, self.assignment]
        d = torch.sqrt((r * r).sum(-1) + _EPS).reshape(-1)
        contrib = self.contract_phi(s) * self.contract_filter(self.contract_rbf(d))
        beads = (self.assignment[None, :] + torch.arange(batch, device=x.device)[:, None] * self.mapping.n_beads)
        h = contrib.new_zeros(batch * self.mapping.n_beads, contrib.shape[-1]).index_add(0, beads.reshape(-1), contrib)
        h = h.reshape(batch, self.mapping.n_beads, -1) + self.bead_embed.weight
        mu, logvar = self.posterior(h).chunk(2, dim=-1)
        return mu, logvar

    def prior(self, cg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior mean and log-variance ``(B, n_beads, latent_dim)`` given bead positions ``(B, n_beads, 3)`` Å."""
        cg = self._check(cg, self.mapping.n_beads, "bead positions")
        s = self.bead_embed.weight.expand(cg.shape[0], -1, -1)
        s, _ = self.prior_net(s, cg, self.bead_pairs)
        mu, logvar = self.prior_head(s).reshape(cg.shape[0], self.mapping.n_beads, -1).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor, cg: torch.Tensor) -> torch.Tensor:
        """FG positions ``(B, n_atoms, 3)`` Å from latents ``(B, n_beads, latent_dim)`` and beads ``(B, n_beads, 3)`` Å.

        Each bead's atoms have the bead as their weighted centre, to rounding.
        """
        cg = self._check(cg, self.mapping.n_beads, "bead positions")
        batch, nb = cg.shape[:2]
        s = self.bead_embed.weight.expand(batch, -1, -1)
        s, v = self.decoder(s, cg, self.bead_pairs, [layer(z) for layer in self.latent_in])
        s, v = s.reshape(batch, nb, -1), v.reshape(batch, nb, 3, -1)
        mix = self.atom_mix + torch.einsum("bag,agf->baf", s[:, self.assignment], self.atom_gate)
        d = torch.einsum("bacf,baf->bac", v[:, self.assignment], mix)
        centre = torch.einsum("Ia,bad->bId", self.bead_matrix.to(d.dtype), d)
        return cg[:, self.assignment] + d - centre[:, self.assignment]

    # -- training ------------------------------------------------------------------------------
    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Total loss, its terms and the reconstruction of FG positions ``x`` ``(B, n_atoms, 3)`` Å.

        In training mode the latent is drawn from the posterior by reparameterisation (torch's
        global generator: run it under :class:`learners.Trainer`, which seeds and forks it per
        epoch) and the KL and bond terms are weighted by ``self.ramp`` (the warm-up of
        :func:`fit_cgvae`); in eval mode the posterior mean is decoded with the full weights, so
        validation is deterministic. The KL term of the total is clamped below at ``free_bits``
        per bead in both modes; ``terms["kl"]`` is the unclamped KL (nats per bead). ``terms``
        also holds each frame's parts, detached, from which :meth:`whole_loss` gives the eval-mode
        loss of many batches as one: ``recon_frames`` and ``bond_frames`` ``(B,)``, ``kl_frames``
        ``(B, n_beads)``.
        """
        x = self._check(x, self.mapping.n_atoms, "FG positions")
        cg = self.bead_positions(x)
        mu, logvar = self.encode(x, cg)
        mu_p, logvar_p = self.prior(cg)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        x_hat = self.decode(z, cg)
        recon = ((x_hat - x) ** 2).mean()
        kl_frames = _gaussian_kl(mu, logvar, mu_p, logvar_p)
        kl = kl_frames.mean()
        # The KL's gradient in two stop-gradient halves ("KL balancing", Hafner et al., ICLR 2021,
        # arXiv:2010.02193, here with equal weights), which together are the plain KL's: the
        # encoder's half, with free bits (Kingma et al., NeurIPS 2016, arXiv:1606.04934, eq. 15:
        # a bead's batch-mean KL below free_bits nats costs the encoder nothing, so it keeps that
        # much information about the FG geometry while the decoder learns to use it) and the
        # warm-up ramp; and the prior's half, neither clamped (a clamped KL would give the prior no
        # gradient) nor ramped, so that the prior follows the posterior from the first step rather
        # than the posterior being pushed towards an untrained prior. The prior's half enters
        # with value 0, so the loss's value is the (clamped, ramped) KL's.
        kl_q = _gaussian_kl(mu, logvar, mu_p.detach(), logvar_p.detach()).mean(0)
        kl_p = _gaussian_kl(mu.detach(), logvar.detach(), mu_p, logvar_p).mean()
        # In eval mode too: validation, and so the choice of the best epoch, scores the objective
        # that training minimises (with the full KL a model that learnt to use its free bits
        # would lose the best-epoch choice to an earlier one that had not).
        kl_enc = torch.clamp(kl_q, min=self.free_bits).mean()
        if self.restrained.numel():
            i, j = self.restrained[:, 0], self.restrained[:, 1]
            bonds = (torch.linalg.norm(x_hat[:, i] - x_hat[:, j], dim=-1)
                     - torch.linalg.norm(x[:, i] - x[:, j], dim=-1)) ** 2
        else:
            bonds = x.new_zeros((x.shape[0], 1))
        bond = bonds.mean()
        ramp = self.ramp if self.training else 1.0
        total = recon + ramp * (self.beta * kl_enc + self.gamma * bond) + self.beta * (kl_p - kl_p.detach())
        frames = {"recon_frames": ((x_hat - x) ** 2).mean((1, 2)), "kl_frames": kl_frames, "bond_frames": bonds.mean(1)}
        return total, {"recon": recon, "kl": kl, "bond": bond, **{k: v.detach() for k, v in frames.items()}}, x_hat

    def whole_loss(self, target: Any, outputs: dict) -> float:
        """The eval-mode :meth:`loss` of a whole set from its frames' parts (:func:`cgvae_step`'s outputs,
        concatenated over batches by :meth:`learners.trainer.Trainer.run_eval`; ``target`` unused).

        Each frame has the same atoms and restrained pairs, so the reconstruction and restraint terms are
        means of the frames' means; the free-bits clamp acts on each bead's KL averaged over all the
        frames, as it would on one batch of them (the mean of batch losses clamped batch by batch
        depended on ``batch_size`` whenever ``free_bits > 0``).
        """
        recon, bond = (float(np.mean(outputs[k])) for k in ("recon_frames", "bond_frames"))
        kl_enc = float(np.maximum(np.mean(outputs["kl_frames"], axis=0), self.free_bits).mean())
        return recon + self.beta * kl_enc + self.gamma * bond

    # -- generation ----------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of FG positions ``x`` ``(B, n_atoms, 3)`` Å (the paper's RMSD_recon)."""
        cg = self.bead_positions(self._check(x, self.mapping.n_atoms, "FG positions"))
        return self.decode(self.encode(x, cg)[0], cg)

    @torch.no_grad()
    def sample(self, cg: torch.Tensor, n_samples: int, *, seed: int | Sequence[int] | None = None) -> torch.Tensor:
        """``n_samples`` FG geometries ``(n_samples, B, n_atoms, 3)`` Å per CG frame ``cg`` ``(B, n_beads, 3)`` Å.

        Latents are drawn from the prior p(z | X) with a local ``torch.Generator`` seeded by
        ``seed`` (on the model's device), so the same seed gives the same samples; a sequence of
        ``B`` seeds gives each frame its own generator (its draws then do not depend on which
        other frames share the call).
        """
        if not isinstance(n_samples, int) or n_samples < 1:
            raise InputError(f"n_samples must be a positive int, got {n_samples!r}")
        cg = self._check(cg, self.mapping.n_beads, "bead positions")
        mu, logvar = self.prior(cg)

        def draws(shape: tuple, frame_seed: int | None) -> torch.Tensor:
            generator = torch.Generator(device=cg.device)
            generator.manual_seed(int(frame_seed)) if frame_seed is not None else generator.seed()
            return torch.randn(shape, generator=generator, device=cg.device, dtype=cg.dtype)

        if seed is None or isinstance(seed, (int, np.integer)):
            eps = draws((n_samples, *mu.shape), seed)
        else:
            seeds = list(seed)
            if len(seeds) != cg.shape[0]:
                raise InputError(f"got {len(seeds)} seeds for {cg.shape[0]} CG frames; give one seed or one per frame")
            eps = torch.stack([draws((n_samples, *mu.shape[1:]), s) for s in seeds], dim=1)
        z = mu + torch.exp(0.5 * logvar) * eps
        cgs = cg.expand(n_samples, *cg.shape)
        out = self.decode(z.reshape(-1, *mu.shape[1:]), cgs.reshape(-1, *cg.shape[1:]))
        return out.reshape(n_samples, *cg.shape[:1], self.mapping.n_atoms, 3)


def positions_tensor(frames: Sequence[Any], *, dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
    """FG positions ``(F, n_atoms, 3)`` Å of ``ase.Atoms`` frames (checked by :func:`reprs.atoms.as_frames`)."""
    from reprs.atoms import as_frames

    frames = as_frames(frames)
    n = {len(a) for a in frames}
    if len(n) != 1:
        raise InputError(f"frames have different numbers of atoms {sorted(n)}; backmapping needs one molecule")
    return torch.as_tensor(np.stack([a.positions for a in frames]), dtype=dtype, device=device)


def cgvae_step(model: CGVAE, batch: torch.Tensor):
    """The :class:`learners.Trainer` step of a CGVAE: ``(loss, outputs, target)``.

    ``outputs`` holds the reconstruction ``positions`` ``(B, n_atoms, 3)`` Å and each frame's loss
    parts (:meth:`CGVAE.loss`), from which :meth:`CGVAE.whole_loss` gives a validation set's loss
    (:func:`fit_cgvae` hands it to the trainer).
    """
    total, terms, x_hat = model.loss(batch)
    parts = {k: terms[k] for k in ("recon_frames", "kl_frames", "bond_frames")}
    return total, {"positions": x_hat.detach(), **parts}, batch


def fit_cgvae(model: CGVAE, train: torch.Tensor, val: torch.Tensor | None = None, *, epochs: int = 100,
              batch_size: int = 32, lr: float = 1e-3, patience: int | None = None, seed: int = 0,
              device: Any = None, progress: bool = False, run_dir: Any = None, warmup: int = 0):
    """Train ``model`` on FG positions ``train`` ``(F, n_atoms, 3)`` Å with :class:`learners.Trainer`.

    ``warmup``: the encoder's KL and the distance-restraint terms are weighted by
    ``min(1, (epoch - 1) / warmup)`` in training (0 in the first epoch, full from epoch
    ``warmup + 1``; the prior is fitted to the posterior throughout, see :meth:`CGVAE.loss`);
    validation losses, and so the choice of the best epoch, always use the full weights. Returns the trainer (``history_``); the model
    keeps its best validation weights. ``device``: default the model's; the dtype is the model's.
    """
    from learners.trainer import Trainer

    if not isinstance(warmup, int) or warmup < 0:
        raise InputError(f"warmup must be a non-negative int (epochs), got {warmup!r}")
    device = model.atom_mix.device if device is None else device
    trainer = Trainer(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed, device=device,
                      run_dir=run_dir, progress=progress, schedule="cosine", weight_decay=0.0,
                      callbacks=[lambda _, record: setattr(model, "ramp", min(1.0, record["epoch"] / warmup))]
                      if warmup else ())
    items = list(train)
    # The validation loss is the loss of the whole validation set (the free-bits clamp acts on a batch's
    # mean KL, so a mean of batch losses would depend on batch_size).
    step = partial(cgvae_step)
    step.whole_loss = model.whole_loss
    model.ramp = 0.0 if warmup else 1.0
    try:
        trainer.fit(model, items, None if val is None else list(val), step=step, collate=torch.stack)
    finally:
        model.ramp = 1.0
    return trainer


def backmap(model: CGVAE, cg_frames: Any, n_samples: int, *, seed: int | None = None,
            batch_size: int = 256) -> list:
    """All-atom samples of CG frames: ``n_samples`` ``ase.Atoms`` per frame, frame after frame.

    Parameters
    ----------
    model : CGVAE
    cg_frames : ase.Atoms or list of them
        One bead per atom, in the mapping's order with its bead symbols
        (:meth:`reprs.cg_mapping.CGMapping.cg_frame` writes such frames).
    n_samples : int
    seed : int, optional
        Seeds the prior draws: frame ``k`` draws from its own stream ``(seed, k)``, so its samples do
        not depend on ``batch_size`` or on the other frames.

    Returns
    -------
    list of ase.Atoms
        The molecule's atoms (atomic numbers of the model), whole, with the CG frame's cell and
        periodicity; ``info["frame"]`` and ``info["sample"]`` say which CG frame and which draw.

    Raises
    ------
    InputError
        A frame with another bead count or bead order than the mapping's, NaN coordinates, or a
        periodic frame whose molecule the cell boundary splits (:meth:`CGMapping.check_frame
        <reprs.cg_mapping.CGMapping.check_frame>` with the model's bonds), or a periodic frame of a model
        without bonds. Refused, not unwrapped, as the mapping refuses a split all-atom molecule: picking
        bead images is a guess when a bead bond nears half the cell, and impossible without bonds.
    """
    from ase import Atoms

    from reprs.atoms import as_frames

    frames = as_frames(cg_frames)
    bonds = model.bonds.cpu().numpy()
    cg = np.stack([model.mapping.check_frame(f, bonds) for f in frames])
    device, dtype = model.atom_mix.device, model.atom_mix.dtype
    model.eval()
    generator_seed = np.random.SeedSequence(seed).generate_state(1)[0] if seed is not None else None
    out = []
    for start in range(0, len(cg), batch_size):
        chunk = torch.as_tensor(cg[start:start + batch_size], dtype=dtype, device=device)
        # A stream per frame, (seed, frame): one per chunk made a frame's samples depend on batch_size.
        frame_seeds = None if generator_seed is None else [
            int(np.random.SeedSequence([int(generator_seed), start + f]).generate_state(1)[0]) for f in range(len(chunk))]
        x = model.sample(chunk, n_samples, seed=frame_seeds).cpu().double().numpy()
        for f in range(x.shape[1]):
            for k in range(n_samples):
                frame = frames[start + f]  # its cell and periodicity carry over to the atoms
                atoms = Atoms(numbers=model.numbers.cpu().numpy(), positions=x[k, f], cell=frame.cell, pbc=frame.pbc)
                atoms.info.update(frame=start + f, sample=k)
                out.append(atoms)
    return out


_FORMAT = "matrep.cgvae/3"  # 3: restraint_hops and free_bits; 2: latent into every decoder block, gated atom mix
#: Hyperparameters a version-2 file lacks, with the values that version's loss had (bond lengths
#: only, no free bits); the weights are the same, so such files load unchanged.
_V2_DEFAULTS = {"restraint_hops": 1, "free_bits": 0.0}


def save_cgvae(model: CGVAE, path: Any) -> None:
    """Write ``model`` atomically: format tag, hyperparameters, mapping, topology and state dict (no pickle)."""
    from reprs.fileio import atomic_open

    payload = {"format": _FORMAT, "hparams": dict(model.hparams), "mapping": model.mapping.to_dict(),
               "numbers": model.numbers.cpu().tolist(), "bonds": model.bonds.cpu().tolist(),
               "dtype": str(model.atom_mix.dtype).removeprefix("torch."),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_open(path) as handle:
        torch.save(payload, handle)


def load_cgvae(path: Any, *, device: Any = None, dtype: torch.dtype | None = None) -> CGVAE:
    """A model :func:`save_cgvae` wrote (``dtype``: default the saved one).

    Raises
    ------
    InputError
        A file that is not a saved CGVAE (missing, another format, or a pickle of objects).
    """
    import pickle
    from pathlib import Path

    if not Path(path).is_file():
        raise InputError(f"no saved model at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise InputError(f"{path} is not a saved CGVAE ({type(err).__name__}); save models with save_cgvae") from None
    version = payload.get("format") if isinstance(payload, dict) else None
    if version not in (_FORMAT, "matrep.cgvae/2"):
        raise InputError(f"{path} is not a saved CGVAE (format {version!r}, expected {_FORMAT!r} or 'matrep.cgvae/2')")
    hparams = dict(payload["hparams"])
    if version == "matrep.cgvae/2":
        hparams.update(_V2_DEFAULTS)
    dtype = getattr(torch, payload["dtype"]) if dtype is None else dtype
    model = CGVAE(CGMapping.from_dict(payload["mapping"]), payload["numbers"], payload["bonds"] or None,
                  device=device, dtype=dtype, **hparams)
    model.load_state_dict(payload["state_dict"])
    return model


def backmap_file(model_path: Any, cg_path: Any, output: Any, *, n_samples: int = 10, seed: int | None = None,
                 device: Any = None) -> int:
    """``matrep backmap``: sample ``n_samples`` all-atom frames per CG frame of ``cg_path`` into ``output``.

    ``cg_path``: any file ASE reads (xyz, extxyz, a database), one CG frame per entry; ``output``:
    ``.extxyz`` or ``.db``, written atomically (a temporary file renamed into place). Returns the
    number of frames written.
    """
    import os
    from pathlib import Path

    from reprs.fileio import FrameWriter, read_frames

    out = Path(output)
    if out.suffix not in (".extxyz", ".db"):
        raise InputError(f"-o must end in .extxyz or .db, got {str(output)!r}")
    model = load_cgvae(model_path, device=device)
    frames = backmap(model, read_frames(cg_path), n_samples, seed=seed)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        writer = FrameWriter(tmp)
        for atoms in frames:
            meta = {"frame": atoms.info.pop("frame"), "sample": atoms.info.pop("sample")}
            writer.write(atoms, meta)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return len(frames)
