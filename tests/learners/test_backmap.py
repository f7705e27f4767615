"""learners.backmap: CGVAE equivariance, recentring, seeds, training signal; metrics against scipy; baseline; CLI.

Data: a short alanine dipeptide trajectory (amber14 through OpenMM) generated from a sims dataset
config, as benchmarks/backmap.py does at full length.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

pytest.importorskip("openmm")

from reprs.cg_mapping import covalent_bonds, girvan_newman_mapping, heavy_atom_mapping  # noqa: E402
from reprs.errors import InputError  # noqa: E402
from reprs.fileio import read_frames  # noqa: E402
from learners.backmap.baseline import NearestFrameBackmap  # noqa: E402
from learners.backmap.metrics import (aligned_rmsd, backmap_scores, dihedrals, graph_validity,  # noqa: E402
                                      kabsch_align, ramachandran_figure, sample_diversity)
from learners.backmap.model import (CGVAE, backmap, fit_cgvae, load_cgvae, positions_tensor,  # noqa: E402
                                    save_cgvae)


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    from sims.generate import generate

    out = tmp_path_factory.mktemp("ala") / "ala.extxyz"  # the benchmark writes .db; extxyz syncs faster
    cfg = {"seed": 3, "system": {"builder": "alanine_dipeptide"}, "potential": {"kind": "amber14"},
           "md": {"dtype": "float64"},
           "stages": [{"ensemble": "langevin", "steps": 200, "timestep": 1.0, "temperature": 400.0, "friction": 0.01,
                       "sample_every": 0},
                      {"ensemble": "langevin", "steps": 2000, "timestep": 1.0, "temperature": 400.0,
                       "friction": 0.01, "sample_every": 8}],
           "output": {"path": str(out)}}
    frames = read_frames(generate(cfg))
    assert len(frames) == 250 and frames[0].info["seed"] == 3 and "config_hash" in frames[0].info
    return frames


def _rotation(seed: int) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.random(random_state=seed).as_matrix()


def _model(frames, n_beads=3, **kw):
    mapping = girvan_newman_mapping(frames[0], n_beads)
    bonds = covalent_bonds(frames[0].numbers, frames[0].positions)
    kw.setdefault("n_features", 8)
    return CGVAE(mapping, frames[0].numbers, bonds, **kw)


# -- metrics ---------------------------------------------------------------------------------------

def test_aligned_rmsd_matches_scipy_align_vectors():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    for k in range(5):
        ref = rng.normal(size=(12, 3))
        x = ref @ _rotation(k).T + rng.normal(scale=0.3, size=ref.shape) + rng.normal(size=3)
        xc, rc = x - x.mean(0), ref - ref.mean(0)
        rot, _ = Rotation.align_vectors(rc, xc)
        expected = np.sqrt(((rot.apply(xc) - rc) ** 2).sum(-1).mean())
        np.testing.assert_allclose(aligned_rmsd(x, ref), expected, rtol=1e-10)
        np.testing.assert_allclose(kabsch_align(x, ref), rot.apply(xc) + ref.mean(0), atol=1e-10)
    # a mirror image is not superposable: the RMSD of a chiral cloud to its mirror stays > 0
    mirror = ref * np.array([1.0, 1.0, -1.0])
    assert aligned_rmsd(mirror, ref) > 0.1
    # batched over leading dimensions
    stack = np.stack([ref, ref @ _rotation(9).T])
    np.testing.assert_allclose(aligned_rmsd(stack, ref), 0.0, atol=1e-10)


def test_graph_validity_counts_a_broken_bond_exactly(frames):
    ref = frames[0].positions
    numbers = frames[0].numbers
    n_bonds = len(covalent_bonds(numbers, ref))
    broken = ref.copy()
    broken[2] += 2.0 * (ref[2] - ref[1]) / np.linalg.norm(ref[2] - ref[1])  # C=O stretched to ~3.2 Å
    valid, ratio = graph_validity(np.stack([ref, broken]), ref, numbers)
    np.testing.assert_array_equal(valid, [True, False])
    np.testing.assert_allclose(ratio, [0.0, 1.0 / n_bonds])
    heavy = np.flatnonzero(numbers > 1)
    valid_h, _ = graph_validity(broken, ref, numbers, atoms=heavy)
    assert not valid_h


def test_backmap_scores_and_diversity_on_known_perturbations(frames):
    ref = positions_tensor(frames[:4], dtype=torch.float64).numpy()
    rng = np.random.default_rng(1)
    samples = np.stack([ref, ref + 0.0, ref @ _rotation(2).T])
    scores = backmap_scores(samples, ref, frames[0].numbers)
    assert scores["rmsd_all"] < 1e-9 and scores["valid_all"] == 1.0 and scores["diversity"] < 1e-9
    noisy = ref[None] + rng.normal(scale=0.05, size=(2, *ref.shape))
    np.testing.assert_allclose(sample_diversity(noisy), aligned_rmsd(noisy[0], noisy[1]).mean())


def test_dihedrals_match_ase_and_ramachandran_figure_is_drawn(frames, tmp_path):
    from reprs.fileio import save_figure
    from sims.openmm_potential import PHI, PSI

    x = positions_tensor(frames[:5], dtype=torch.float64).numpy()
    ours = dihedrals(x, [PHI, PSI])
    ase = np.array([[f.get_dihedral(*PHI), f.get_dihedral(*PSI)] for f in frames[:5]])
    np.testing.assert_allclose(np.mod(ours, 360.0), ase, atol=1e-8)
    path = save_figure(ramachandran_figure(x, x[None], phi=PHI, psi=PSI), tmp_path / "rama.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


# -- model -----------------------------------------------------------------------------------------

def test_decoder_recentres_each_bead_exactly_and_rotates_with_the_cg_input(frames):
    model = _model(frames, dtype=torch.float64, seed=1)
    x = positions_tensor(frames[:6], dtype=torch.float64)
    cg = model.bead_positions(x)
    samples = model.sample(cg, 3, seed=5)
    np.testing.assert_allclose(model.bead_positions(samples.reshape(-1, *x.shape[1:])).reshape(3, 6, -1, 3),
                               cg.expand(3, -1, -1, -1), atol=1e-12)
    rot = torch.as_tensor(_rotation(4))
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    moved = model.sample(cg @ rot.T + shift, 3, seed=5)
    np.testing.assert_allclose(moved, samples @ rot.T + shift, atol=1e-10)
    # the samples are genuinely three-dimensional: not all in the plane of the 3 beads
    normal = torch.linalg.cross(cg[:, 1] - cg[:, 0], cg[:, 2] - cg[:, 0])
    height = ((samples - cg[None, :, :1]) * normal[None, :, None]).sum(-1)
    assert height.abs().max() > 1e-3
    # latents are invariant
    with torch.no_grad():
        mu, _ = model.encode(x)
        mu_rot, _ = model.encode(x @ rot.T + shift)
    np.testing.assert_allclose(mu_rot, mu, atol=1e-10)


def test_same_seed_same_model_and_samples_other_seed_differs(frames):
    a, b, c = _model(frames, seed=7), _model(frames, seed=7), _model(frames, seed=8)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert not torch.equal(a.atom_mix, c.atom_mix)
    cg = a.bead_positions(positions_tensor(frames[:3]))
    assert torch.equal(a.sample(cg, 2, seed=1), a.sample(cg, 2, seed=1))
    assert not torch.equal(a.sample(cg, 2, seed=1), a.sample(cg, 2, seed=2))
    state = torch.random.get_rng_state()
    a.sample(cg, 2, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())  # no global draws


def test_dtype_is_honoured_and_mismatches_are_refused(frames):
    model = _model(frames, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with pytest.raises(InputError, match="float32 but the model is torch.float64"):
        model.sample(torch.zeros(1, 3, 3), 1, seed=0)
    with pytest.raises(InputError, match="points 0 and 1 of frame 0 coincide"):
        model.sample(torch.zeros(1, 3, 3, dtype=torch.float64), 1, seed=0)
    with pytest.raises(InputError, match=r"shape \(frames, 3, 3\)"):
        model.sample(torch.zeros(1, 4, 3, dtype=torch.float64), 1, seed=0)


def test_training_lowers_the_loss_and_a_perfect_latent_beats_prior_samples(frames):
    x = positions_tensor(frames)
    train, val = x[:200], x[200:]
    model = _model(frames, n_features=16, seed=0)
    trainer = fit_cgvae(model, train, val, epochs=5, batch_size=16, lr=2e-3, seed=0)
    losses = [r["val_loss"] for r in trainer.history_]
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    recon = aligned_rmsd(model.reconstruct(val).numpy(), val.numpy())
    sampled = aligned_rmsd(model.sample(model.bead_positions(val), 4, seed=0).numpy(), val.numpy()[None])
    assert recon.mean() < sampled.mean()
    # the same run again gives the same weights (seeded data order and noise)
    again = _model(frames, n_features=16, seed=0)
    fit_cgvae(again, train[:64], None, epochs=1, batch_size=16, seed=0)
    third = _model(frames, n_features=16, seed=0)
    fit_cgvae(third, train[:64], None, epochs=1, batch_size=16, seed=0)
    assert torch.equal(again.atom_mix, third.atom_mix)


def test_three_bead_samples_keep_every_methyl_and_bond_valid(frames):
    """With 3 beads the terminal methyl groups rotate freely (the beads do not see their rotor
    angle), and a decoder that does not resolve the angle from its latent put the three hydrogens
    near the rotor axis, their conditional mean: H-H closer than the bond cutoff (0.81 Å) in every
    sample, no valid all-atom graph (benchmarks/README: 0 %). The restraint on 1-3 distances
    (``restraint_hops=2``, bond angles with their hydrogens) keeps each methyl a rigid tripod, so
    even a collapsed latent decodes one rotamer with a valid bond graph. Fails with
    ``restraint_hops=1`` (bond lengths only, the restraint before): valid fraction 0."""
    x = positions_tensor(frames)
    model = _model(frames, n_features=16, gamma=1.0, seed=0)
    pairs = {tuple(p) for p in model.restrained.tolist()}
    bonds = {tuple(sorted(b)) for b in model.bonds.tolist()}
    # bonds and every pair two bonds apart, once each (i < j)
    assert bonds < pairs and all(i < j for i, j in pairs)
    ref = frames[0].positions
    angle_pair = next(p for p in pairs - bonds)
    assert 1.5 < np.linalg.norm(ref[angle_pair[0]] - ref[angle_pair[1]]) < 2.7
    fit_cgvae(model, x[:200], x[200:220], epochs=8, batch_size=16, lr=5e-3, warmup=2, seed=0)
    model.eval()
    test = x[220:]
    samples = model.sample(model.bead_positions(test), 4, seed=0).double().numpy()
    scores = backmap_scores(samples, test.double().numpy(), frames[0].numbers)
    assert scores["valid_all"] > 0.9, scores


def test_free_bits_spare_the_encoder_and_still_fit_the_prior(frames):
    """Free bits (Kingma et al. 2016) with the prior fitted by the full KL: a bead whose KL is below
    ``free_bits`` adds only the constant ``beta * free_bits`` and gives the encoder no KL gradient
    (its gradients are those of beta = 0), while the prior's gradients are those without free bits;
    in the warm-up (ramp 0) the prior is fitted all the same."""
    x = positions_tensor(frames[:8], dtype=torch.float64)
    grads = {}
    for name, kw in (("plain", dict(beta=0.5)), ("free", dict(beta=0.5, free_bits=1e3)), ("no_kl", dict(beta=0.0)),
                     ("warmup", dict(beta=0.5))):
        model = _model(frames, dtype=torch.float64, gamma=0.3, seed=3, **kw)
        model.train()
        model.ramp = 0.0 if name == "warmup" else 1.0
        torch.manual_seed(0)  # the same posterior draw in every variant
        total, terms, _ = model.loss(x)
        total.backward()
        grads[name] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        if name == "free":
            assert float(terms["kl"].detach()) < 1e3
            torch.testing.assert_close(total, terms["recon"] + 0.5 * 1e3 + 0.3 * terms["bond"])
            # validation (eval mode) scores the same objective, so the best epoch is chosen by it
            model.eval()
            with torch.no_grad():
                total, terms, _ = model.loss(x)
            torch.testing.assert_close(total, terms["recon"] + 0.5 * 1e3 + 0.3 * terms["bond"])
    encoder = [k for k in grads["plain"] if k.startswith(("encoder.", "posterior.", "contract_", "atom_embed"))]
    prior = [k for k in grads["plain"] if k.startswith(("prior_net.", "prior_head."))]
    assert encoder and prior
    for k in encoder:
        torch.testing.assert_close(grads["free"][k], grads["no_kl"][k])
    assert any(not torch.allclose(grads["plain"][k], grads["no_kl"][k]) for k in encoder)
    for k in prior:
        torch.testing.assert_close(grads["free"][k], grads["plain"][k])
        torch.testing.assert_close(grads["warmup"][k], grads["plain"][k])
    with pytest.raises(InputError, match="free_bits must be >= 0"):
        _model(frames, free_bits=-1.0)
    with pytest.raises(InputError, match="restraint_hops must be 1"):
        _model(frames, restraint_hops=3)


def test_backmap_returns_atoms_and_refuses_bad_cg_frames(frames, tmp_path):
    model = _model(frames)
    cg = [model.mapping.cg_frame(f) for f in frames[:2]]
    out = backmap(model, cg, 3, seed=0)
    assert len(out) == 6 and [a.info["frame"] for a in out] == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(out[0].numbers, frames[0].numbers)
    with pytest.raises(InputError, match="has 2 beads but the mapping has 3"):
        backmap(model, cg[0][:2], 1)
    with pytest.raises(InputError, match="bead 0 of the CG frame is C but the mapping's bead 0 is O"):
        backmap(model, cg[0][[1, 0, 2]], 1)
    bad = cg[0].copy()
    bad.positions[0, 0] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        backmap(model, bad, 1)
    path = tmp_path / "model.pt"
    save_cgvae(model, path)
    loaded = load_cgvae(path)
    for a, b in zip(backmap(loaded, cg, 2, seed=4), backmap(model, cg, 2, seed=4)):
        np.testing.assert_array_equal(a.positions, b.positions)
    # A frame's samples do not depend on batch_size nor on the frames before it (one stream per chunk
    # moved the second frame's samples by 0.085 Å between batch_size=256 and 1 on ethanol).
    whole, one_by_one = backmap(model, cg, 2, seed=4), backmap(model, cg, 2, seed=4, batch_size=1)
    for a, b in zip(whole, one_by_one):  # to float32 rounding of the batched decoder (5e-7 Å)
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="got 1 seeds for 2 CG frames"):
        model.sample(model.bead_positions(positions_tensor(frames[:2], dtype=model.atom_mix.dtype)), 1, seed=[0])
    # a version-2 file (before restraint_hops and free_bits) loads with that version's loss
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "matrep.cgvae/3"
    payload["format"] = "matrep.cgvae/2"
    del payload["hparams"]["restraint_hops"], payload["hparams"]["free_bits"]
    torch.save(payload, tmp_path / "v2.pt")
    old = load_cgvae(tmp_path / "v2.pt")
    assert old.hparams["restraint_hops"] == 1 and len(old.restrained) == len(old.bonds) and old.free_bits == 0.0
    assert loaded.hparams["restraint_hops"] == 2 and len(loaded.restrained) > len(loaded.bonds)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a saved CGVAE"):
        load_cgvae(tmp_path / "junk.pt")


def test_a_periodic_cg_frame_split_by_the_cell_boundary_is_refused_and_the_cell_is_kept():
    # The beads were read as they are: ethanol's beads wrapped into a 10 Å cell came back with an 8.9 Å C-C
    # bond and no cell (/work/runs/s14/s14-followups/probe_backmap_wrapped.py). Fails on the old code (checked).
    from ase.build import molecule

    mol = molecule("CH3CH2OH")
    mapping = heavy_atom_mapping(mol)
    bonds = covalent_bonds(mol.numbers, mol.positions)
    model = CGVAE(mapping, mol.numbers, bonds, n_features=8)
    whole = mapping.cg_frame(mol)
    whole.set_cell([10.0, 10.0, 10.0])
    whole.pbc = True
    whole.positions += [9.0, 5.0, 5.0]  # whole beads, the first past x = 10 Å
    out = backmap(model, whole, 2, seed=0)
    for atoms in out:
        np.testing.assert_array_equal(atoms.cell[:], whole.cell[:])
        assert atoms.pbc.all()
    # the periodic frame gives the same atoms as the same beads without a cell
    plain = backmap(model, Atoms(whole.get_chemical_symbols(), whole.positions), 2, seed=0)
    np.testing.assert_array_equal(np.stack([a.positions for a in out]), np.stack([a.positions for a in plain]))
    assert not plain[0].pbc.any()
    wrapped = whole.copy()
    wrapped.wrap()
    assert wrapped.positions[0, 0] < 1.0  # the frame the old code backmapped as it is
    with pytest.raises(InputError, match=r"split by the periodic cell boundary \(beads 0 and 1 are bonded across"):
        backmap(model, wrapped, 1)
    unbonded = CGVAE(mapping, mol.numbers, n_features=8)
    with pytest.raises(InputError, match="periodic but no bonds were given"):
        backmap(unbonded, whole, 1)
    assert len(backmap(unbonded, Atoms(whole.get_chemical_symbols(), whole.positions), 1)) == 1


def test_matrep_backmap_cli(frames, tmp_path):
    from ase.io import write

    from reprs.cli import main

    model = _model(frames)
    save_cgvae(model, tmp_path / "m.pt")
    write(tmp_path / "cg.xyz", [model.mapping.cg_frame(f) for f in frames[:2]])
    assert main(["backmap", str(tmp_path / "m.pt"), str(tmp_path / "cg.xyz"), "-n", "4", "-o",
                 str(tmp_path / "out.extxyz"), "--seed", "1"]) == 0
    out = read_frames(tmp_path / "out.extxyz")
    assert len(out) == 8 and out[5].info["frame"] == 1 and out[5].info["sample"] == 1
    write(tmp_path / "bad.xyz", heavy_atom_mapping(frames[0]).cg_frame(frames[0]))
    assert main(["backmap", str(tmp_path / "m.pt"), str(tmp_path / "bad.xyz"), "-o", str(tmp_path / "o.extxyz")]) == 2
    assert not (tmp_path / "o.extxyz").exists()


# -- baseline --------------------------------------------------------------------------------------

def test_nearest_frame_baseline_returns_training_frames_moved_onto_the_query(frames):
    x = positions_tensor(frames, dtype=torch.float64).numpy()
    mapping = heavy_atom_mapping(frames[0])
    nn = NearestFrameBackmap(mapping).fit(x[:200])
    rot, shift = _rotation(3), np.array([3.0, 0.0, -1.0])
    query = x[[5, 17]] @ rot.T + shift
    np.testing.assert_allclose(nn.predict(mapping.bead_positions(query)), query, atol=1e-9)
    # a new frame: its beads are reproduced exactly and the answer is a rigidly moved training frame
    cg = mapping.bead_positions(x[210:220])
    pred = nn.predict(cg)
    np.testing.assert_allclose(mapping.bead_positions(pred), cg, atol=1e-9)
    index, dist = nn.nearest(cg)
    brute = np.array([[aligned_rmsd(mapping.bead_positions(t), c) for t in x[:200]] for c in cg])
    np.testing.assert_array_equal(index, brute.argmin(1))
    np.testing.assert_allclose(dist, brute.min(1), atol=1e-12)


@pytest.mark.slow
def test_heavy_atom_mapping_learns_valid_heavy_atom_graphs(frames):
    """With one bead per heavy atom the heavy atoms are nearly given: after a short training the
    samples keep every heavy-atom bond and sit within 0.1 Å of the reference (benchmarks/README:
    0.009 Å at the reduced budget of 2026-12-07, 0.019 Å on 2026-12-06, 0.06 Å before the collapse
    fixes)."""
    x = positions_tensor(frames)
    mapping = heavy_atom_mapping(frames[0])
    model = CGVAE(mapping, frames[0].numbers, covalent_bonds(frames[0].numbers, frames[0].positions), n_features=24,
                  seed=0)
    fit_cgvae(model, x[:200], x[200:220], epochs=15, batch_size=32, lr=3e-3, seed=0)
    model.eval()
    test = x[220:]
    samples = model.sample(model.bead_positions(test), 4, seed=0).double().numpy()
    scores = backmap_scores(samples, test.double().numpy(), frames[0].numbers)
    assert scores["rmsd_heavy"] < 0.1 and scores["valid_heavy"] == 1.0
