"""Ethylene photoisomerisation with a DANN trained on PySCF SA-CASSCF(2,2): labels, training, FSSH, yield.

Workflow (every stage resumes from the files it wrote in ``--out``):

1. Reference: the ground-state (S0) minimum of SA-2-CASSCF(2,2) (L-BFGS on the state-0 energy
   and gradient of :func:`sims.pyscf_casscf.sa_casscf_labels`) and its harmonic normal modes
   (central differences of the S0 gradients, :func:`sims.hopping_ensemble.normal_modes` on
   :class:`sims.pyscf_casscf.CASSCFModel`).
2. Geometries where the dynamics goes: Wigner samples of the 0 K ground state, and a scan of the
   torsion (uniform 0-180 deg), the pyramidalisation of the twisted CH2 group (uniform 0-100 deg,
   either side) and the C=C bond (uniform 1.30-1.55 Å), each scan point with a Wigner displacement
   on top; the two sets interleaved, so that any prefix of the list is a mixture.
3. Labels: SA-2-CASSCF(2,2) energies, gradients and 0-1 coupling numerators of every geometry
   (:func:`sims.pyscf_casscf.label_dataset`: atomic chunks, resumable).
4. Training: :class:`learners.diabatic.DiabaticPaiNN` (2 states) through the Trainer
   (:func:`learners.diabatic.fit_diabatic`, phase-corrected coupling loss); 10 % of the geometries
   held out for the test errors, 10 % for validation.
5. Optional active-learning rounds (``--round2 N --rounds R``): in each round 2..R an FSSH ensemble
   (``--round-traj`` trajectories) of the last model is run; ``N`` of its frames are labelled with
   CASSCF and added to the training set, and the model is retrained from the last one's weights.
   The frames picked (:func:`pick_frames`) are each trajectory's exit from the data, the first frame
   farther than ``--exit`` Å (:func:`novelty`, in the distance descriptor :func:`distances`) from
   every training geometry, then frames drawn uniformly from before the exits. Several frames of
   one trajectory are picked, so a round's frames are split by trajectory (:func:`split_by_trajectory`;
   the picks file keeps each frame's trajectory). A rerun with a larger ``R`` resumes from the files
   of the rounds done.
6. FSSH (:class:`sims.surface_hopping.FSSH`) on the DANN (:class:`learners.diabatic.DANNHamiltonian`),
   Wigner initial conditions of the CASSCF ground state (0 K), every trajectory starting on S1,
   EDC decoherence, no bath (isolated molecule) unless ``--friction`` (1/fs) and ``--temperature``
   (K) put FSSH's Langevin bath on the nuclei. Trajectories whose amplitudes' norm drifts (the
   network's surfaces far from its data) are dropped and counted; of the completed ones, those that
   went farther than ``--exit`` Å from the training data at some moment are counted too, and the
   yield is also given without them. The ensemble, frames included, is kept in ``--out``
   (``ensemble_*.npz``) and read back by a rerun with the same settings.
7. Optional committee (``--members K``): the last model and ``K - 1`` DANNs trained from scratch on
   its training set with seeds ``seed + 1, ...``; the spread of their energies and gap along the
   ensemble's frames (:func:`committee_report`) against ``--committee-factor`` times its mean on the
   held-out frames flags the trajectories that leave the data.

Photoisomerisation of a labelled ethylene (H2 and H4 cis, on the same side, at the start): the
torsion ``phi`` is the mean of the two cis dihedrals H2-C0-C1-H4 and H3-C0-C1-H5 (as the angle of
the sum of their unit vectors, so it is continuous through 180 deg); a trajectory is isomerised
when ``|phi| > 90 deg`` at the end of the run. The yield is the isomerised fraction per excited
molecule, with its binomial standard error ``sqrt(Y (1 - Y) / N)``. An isolated molecule, 11 eV hot
in this labeller, keeps rotating on S0, so that fraction is a free rotor's; with a bath the yield is
taken over the *products*: trajectories on S0 at the end, still an intact ethylene (:func:`intact`),
whose torsion has not crossed 90 deg in the last ``--settle-window`` fs (:func:`settling`).

The S1 lifetime is the time at which the fraction of trajectories on S1 first falls to ``1/e``
(and a fit ``exp(-(t - t0)/tau)`` after the latency ``t0``).

Run: ``python benchmarks/ethylene_dann.py --out /tmp/ethylene [--quick]`` (``--quick``:
a few dozen geometries, a small network, 20 trajectories; a few minutes). See benchmarks/README.md
for the budget of the numbers there.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from ase.units import Bohr

from reprs.fileio import atomic_open, atomic_write
from sims.hopping_ensemble import normal_mode_sample, normal_modes
from sims.pyscf_casscf import CASSCFModel, label_dataset, sa_casscf_labels
from sims.errors import SimsInputError
from sims.surface_hopping import AU_TIME_FS, FSSH, chain_internals

NUMBERS = (6, 6, 1, 1, 1, 1)
CIS_PAIRS = ((2, 0, 1, 4), (3, 0, 1, 5))  # H2, H4 on the +y side of ASE's planar ethylene; H3, H5 on the -y side


def torsion(x: torch.Tensor) -> torch.Tensor:
    """The H-C=C-H torsion ``phi`` (rad, (-pi, pi]) of ethylene coordinates (B, 18) (any length unit)."""
    r = x.reshape(x.shape[0], 6, 3)
    angles = [chain_internals(r[:, list(q)].reshape(x.shape[0], 12))[2] for q in CIS_PAIRS]
    return torch.atan2(sum(torch.sin(a) for a in angles), sum(torch.cos(a) for a in angles))


def reference(out: Path, basis: str, labeller: dict) -> dict:
    """S0 minimum (Å) and normal modes of SA-n-CASSCF(2,2)/basis, cached in ``out/reference.npz``."""
    path = out / "reference.npz"
    averaged = labeller.get("average_states", 2)
    if path.exists():
        with np.load(path) as data:
            found = {k: data[k] for k in data.files}
        if int(found.get("average_states", 2)) != averaged:
            raise SystemExit(f"{path} holds an SA-{int(found.get('average_states', 2))} reference; this run asks for "
                             f"SA-{averaged}: use another --out folder")
        return found
    from scipy.optimize import minimize

    start = time.perf_counter()
    atoms = molecule("C2H4")
    calls = []

    def energy(flat):
        lab = sa_casscf_labels(Atoms(numbers=NUMBERS, positions=flat.reshape(6, 3)), basis=basis, **labeller)
        calls.append(1)
        return lab["energies"][0], lab["gradients"][:, 0].ravel()

    res = minimize(energy, atoms.positions.ravel(), jac=True, method="L-BFGS-B", options={"gtol": 1e-4})
    pos = res.x.reshape(6, 3)
    model = CASSCFModel(NUMBERS, basis=basis, **labeller)
    x0 = torch.as_tensor(pos.reshape(1, -1) / Bohr)
    # 5e-3 bohr: the CASSCF gradients' noise (~1e-7 hartree/bohr) stays far below the curvatures;
    # translations and rotations (w^2 ~ 1e-8) are cut well below ethylene's softest mode (w^2 ~ 2e-5).
    w, modes = normal_modes(model, x0, step=5e-3, cutoff=2e-6)
    data = {"positions": pos, "frequencies": w.numpy(), "modes": modes.numpy(), "average_states": averaged,
            "max_force": np.abs(res.jac).max(), "seconds": time.perf_counter() - start, "calls": len(calls)}
    with atomic_open(path) as handle:
        np.savez(handle, **data)
    return data


def scan_geometry(base: np.ndarray, twist: float, pyramid: float, cc: float) -> np.ndarray:
    """Ethylene (Å) from the planar ``base`` (C=C along z, ASE's frame) with the CH2 group of C1 (H4, H5)
    twisted by ``twist`` about the C=C axis and bent by ``pyramid`` (rad) about the axis through C1
    parallel to H4-H5, and the C=C bond set to ``cc`` Å (C1 and its hydrogens moved along z)."""
    pos = base.copy()
    centre = pos[:2].mean(0)
    pos -= centre
    axis = pos[0] - pos[1]
    axis /= np.linalg.norm(axis)
    shift = (cc - np.linalg.norm(pos[0] - pos[1])) * axis
    pos[[1, 4, 5]] -= shift
    hh = pos[4] - pos[5]
    hh /= np.linalg.norm(hh)
    pos[[4, 5]] = pos[1] + _rotate(pos[[4, 5]] - pos[1], hh, pyramid)
    pos[[4, 5]] = pos[1] + _rotate(pos[[4, 5]] - pos[1], axis, twist)
    return pos + centre


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation of the rows of ``v`` about the unit ``axis`` by ``angle`` (rad)."""
    c, s = math.cos(angle), math.sin(angle)
    return v * c + np.cross(axis, v) * s + np.outer(v @ axis, axis) * (1 - c)


def geometries(ref: dict, n_wigner: int, n_scan: int, seed: int, *, twist=(0.0, 180.0), pyramid=(0.0, 100.0),
               cc=(1.30, 1.55)) -> np.ndarray:
    """(n_wigner + n_scan, 6, 3) Å: Wigner samples and scan points (with Wigner noise), interleaved;
    the scan's ranges in degrees and Å."""
    model = CASSCFModel(NUMBERS)
    x0 = torch.as_tensor(ref["positions"].reshape(1, -1) / Bohr)
    modes = (torch.as_tensor(ref["frequencies"]), torch.as_tensor(ref["modes"]))
    x, _ = normal_mode_sample(model, x0, n_wigner + n_scan, seed=(seed, 0), modes=modes)
    wig = x.numpy().reshape(-1, 6, 3) * Bohr
    rng = np.random.default_rng([seed, 1])
    base = ref["positions"]
    scan = []
    for k in range(n_scan):
        t = math.radians(rng.uniform(*twist))
        p = math.radians(rng.uniform(*pyramid)) * rng.choice([-1.0, 1.0])
        scan.append(scan_geometry(base, t, p, rng.uniform(*cc)) + (wig[n_wigner + k] - base))
    order = np.argsort(np.concatenate([np.linspace(0, 1, n_wigner, endpoint=False),
                                       np.linspace(0, 1, n_scan, endpoint=False) + 0.5 / max(n_scan, 1)]),
                       kind="stable")
    return np.concatenate([wig[:n_wigner], np.stack(scan) if scan else np.zeros((0, 6, 3))])[order]


def split(frames: list, seed: int) -> tuple[list, list, list]:
    """Train, validation and test frames (80/10/10 %) by a seeded permutation of the label indices: for
    independent geometries (round 1's Wigner samples and scan points), not frames of trajectories."""
    idx = np.array([f.info["label_index"] for f in frames])
    keys = np.random.default_rng([seed, 2]).random(idx.max() + 1)[idx]
    train = [f for f, k in zip(frames, keys) if k >= 0.2]
    val = [f for f, k in zip(frames, keys) if 0.1 <= k < 0.2]
    test = [f for f, k in zip(frames, keys) if k < 0.1]
    return train, val, test


def split_by_trajectory(frames: list, trajectories: np.ndarray, seed: int) -> tuple[list, list, list]:
    """Train, validation and test frames of FSSH trajectories: 80/10/10 % of the trajectories
    (:func:`learners.splits.group_split`), every frame of one trajectory on one side. ``trajectories``:
    the trajectory of each labelled structure, indexed by the frames' ``info["label_index"]``. A
    frame-wise split held out neighbours of training frames of the same trajectory (a few fs apart),
    which made the held-out errors optimistic."""
    from learners.splits import group_split

    groups = np.asarray(trajectories)[[f.info["label_index"] for f in frames]]
    return tuple([frames[i] for i in part] for part in group_split(groups, (0.8, 0.1, 0.1), seed=seed))


def train(frames_train, frames_val, args, path: Path, start_from: Path | None = None):
    from learners.diabatic import (DiabaticLoss, DiabaticPaiNN, GapWeightedSampler, fit_diabatic, load_diabatic,
                                   save_diabatic)
    from learners.trainer import Trainer

    # Trained in float32 (about twice as fast here), run in float64 (FSSH's amplitudes and hops).
    if path.exists():
        return load_diabatic(path, dtype=torch.float64), None
    if start_from is not None:
        net = load_diabatic(start_from, dtype=torch.float32)
    else:
        net = DiabaticPaiNN(2, cutoff=5.0, n_features=args.features, n_interactions=3, seed=args.seed,
                            dtype=torch.float32)
    start = time.perf_counter()
    epochs = args.epochs if start_from is None else max(args.epochs // 2, 1)
    trainer = Trainer(epochs=epochs, batch_size=32, lr=2e-3 if start_from is None else 1e-3, eval_grad=True,
                      monitor="loss", seed=args.seed)
    loss = DiabaticLoss(w_energy=1.0, w_gradients=1.0, w_gap=1.0, w_couplings=args.w_couplings)
    sampler = None
    if args.gap_sigma:
        sampler = GapWeightedSampler(np.stack([f.info["energies"] for f in frames_train]), sigma=args.gap_sigma,
                                     seed=args.seed)
    fit_diabatic(net, frames_train, frames_val, trainer=trainer, loss=loss, fit_scale=start_from is None,
                 sampler=sampler)
    save_diabatic(net, path)
    return load_diabatic(path, dtype=torch.float64), time.perf_counter() - start


def test_errors(net, frames) -> dict:
    """MAE on held-out frames: energies (eV), gap (eV), gradients (eV/Å), sign-corrected coupling numerators
    (eV/Å), and the reference spreads."""
    from learners.diabatic import evaluate_diabatic
    from learners.potentials.batch import collate_atoms

    batch = collate_atoms(frames, net.cutoff, dtype=torch.float64, labels=False)
    out = evaluate_diabatic(net, batch)
    e_ref = np.stack([f.info["energies"] for f in frames])
    g_ref = np.concatenate([f.arrays["gradients"] for f in frames])
    h_ref = np.concatenate([f.arrays["coupling_numerators"][:, 0, 1] for f in frames])
    e, g, h = out["energies"].numpy(), out["gradients"].numpy(), out["coupling_numerators"][:, 0, 1].numpy()
    owner = batch.batch.numpy()
    plus = np.bincount(owner, ((h - h_ref) ** 2).sum(-1), len(frames))
    minus = np.bincount(owner, ((h + h_ref) ** 2).sum(-1), len(frames))
    h_ref = h_ref * np.where(minus < plus, -1.0, 1.0)[owner][:, None]
    return {"n_test": len(frames), "energies_mae_eV": float(np.abs(e - e_ref).mean()),
            "gap_mae_eV": float(np.abs(np.diff(e) - np.diff(e_ref)).mean()),
            "gradients_mae_eV_A": float(np.abs(g - g_ref).mean()),
            "couplings_mae_eV_A": float(np.abs(h - h_ref).mean()),
            "energies_spread_eV": float(e_ref.std(0).mean()), "gradients_mean_abs_eV_A": float(np.abs(g_ref).mean()),
            "couplings_mean_abs_eV_A": float(np.abs(h_ref).mean())}


def distances(positions: np.ndarray) -> np.ndarray:
    """(n, 15) permutation-tolerant distance descriptor of ethylene geometries (n, 6, 3) or (n, 18) Å:
    the C=C bond, the eight C-H distances sorted, the six H-H distances sorted (Å). Relabelling the
    hydrogens (H2 <-> H3, a mirror of the molecule) leaves it unchanged."""
    r = np.asarray(positions, dtype=np.float64).reshape(-1, 6, 3)
    d = np.linalg.norm(r[:, :, None] - r[:, None, :], axis=-1)
    ch = np.sort(d[:, :2, 2:].reshape(len(r), 8), axis=1)
    i, j = np.triu_indices(4, 1)
    hh = np.sort(d[:, 2 + i, 2 + j], axis=1)
    return np.concatenate([d[:, 0, 1, None], ch, hh], axis=1)


def novelty(reference: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Distance (Å, Euclidean in :func:`distances`) from each of ``positions`` to its nearest ``reference``
    geometry: how far a geometry lies from the network's training data."""
    from scipy.spatial import cKDTree

    return cKDTree(distances(reference)).query(distances(positions))[0]


def pick_frames(frames: np.ndarray, ids: np.ndarray, nov: np.ndarray, n: int, threshold: float, seed) -> np.ndarray:
    """Indices of ``n`` saved FSSH frames (rows of ``frames`` in time order, ``ids`` their trajectories,
    ``nov`` their :func:`novelty`) to label next: first each trajectory's exit, the first of its frames
    farther than ``threshold`` Å from the data (a random subset of the exits if there are more than
    ``n``); the rest drawn uniformly from the frames before the exits (where the network's trajectories
    go while it still describes them). Frames past an exit are never picked: the network's geometry
    there owes more to its extrapolation than to the molecule's dynamics."""
    rng = np.random.default_rng(seed)
    order = np.arange(len(ids))
    out = nov > threshold
    exits = np.array([order[(ids == i) & out][0] for i in np.unique(ids[out])], dtype=int)
    if len(exits) >= n:
        return np.sort(rng.choice(exits, n, replace=False))
    first = {int(ids[e]): e for e in exits}
    inside = order[np.array([k < first.get(int(i), len(ids)) for k, i in zip(order, ids)], dtype=bool)]
    fill = rng.choice(inside, min(n - len(exits), len(inside)), replace=False)
    return np.sort(np.concatenate([exits, fill]))


def run_fssh(net, ref: dict, n: int, duration: float, timestep: float, seed: int, every: int = 4,
             substeps: int = 100, min_gap: float = 1e-3, friction: float = 0.0, temperature: float = 0.0,
             report: float = 0.0):
    """FSSH of ``n`` trajectories on the DANN from Wigner (0 K) initial conditions on S1; times (fs),
    S1 fraction, mean |c_1|^2, final torsions (rad), frames (every ``every`` steps, Å, with their
    trajectories, active states and times in fs) and seconds per step.

    ``friction`` (1/fs) and ``temperature`` (K): the Langevin bath of :class:`sims.surface_hopping.FSSH`
    (0: the isolated molecule). ``report`` (fs): print the progress this often (0: never)."""
    from learners.diabatic import DANNHamiltonian

    dann = DANNHamiltonian(net, NUMBERS)
    model = CASSCFModel(NUMBERS)
    x0 = torch.as_tensor(ref["positions"].reshape(1, -1) / Bohr)
    modes = (torch.as_tensor(ref["frequencies"]), torch.as_tensor(ref["modes"]))
    x, p = normal_mode_sample(model, x0, n, seed=(seed, 3), modes=modes)
    # A learned surface can come much closer to degeneracy than the labels did; the coupling floor
    # (min_gap, hartree) and 100 substeps keep the amplitudes' integration within its tolerance there.
    def start_fssh(x, p, tries):
        return FSSH(dann, x, p, initial_state=1, timestep=timestep / AU_TIME_FS, decoherence="edc",
                    seed=(seed, 4, tries), electronic_substeps=substeps, min_gap=min_gap,
                    friction=friction * AU_TIME_FS, temperature=temperature)

    fssh = start_fssh(x, p, 0)
    ids = torch.arange(n)
    dropped: list[tuple[int, float, float]] = []  # (trajectory, time fs, its S1 - S0 gap eV)
    dropped_x = []  # their geometries (bohr) at the start of the step that failed
    n_steps = int(round(duration / timestep))
    times, s1, amp, frames, frame_ids, frame_states, frame_times = [0.0], [1.0], [1.0], [], [], [], []
    start = time.perf_counter()
    for k in range(1, n_steps + 1):
        saved = (fssh.x.clone(), fssh.p.clone(), fssh.c.clone(), fssh.active.clone(), fssh.n_hops.clone())
        while True:
            try:
                fssh.step()
                break
            except SimsInputError:
                # A trajectory that leaves the region the network describes (the amplitudes' norm drifts
                # beyond tolerance) is dropped and counted; the others redo the step from where they were.
                bad = ~(((fssh.c.abs() ** 2).sum(-1) - 1).abs() <= 1e-3)  # NaN counts as bad
                if not bool(bad.any()) or bool(bad.all()):
                    raise
                gap = (fssh._ad.energies[:, 1] - fssh._ad.energies[:, 0]) * 27.211386
                dropped += [(int(ids[i]), k * timestep, float(gap[i])) for i in bad.nonzero().flatten()]
                dropped_x.append(saved[0][bad])
                keep = ~bad
                ids = ids[keep]
                saved = tuple(t[keep] for t in saved)
                before = type(fssh._ad)(*(t[keep] for t in fssh._ad))  # the step's start (its eigenvector signs)
                fssh = start_fssh(saved[0], saved[1], len(dropped))
                fssh.c, fssh.active, fssh.n_hops, fssh._ad = saved[2], saved[3], saved[4], before
                fssh.time, fssh.steps = (k - 1) * timestep / AU_TIME_FS, k - 1
        if k % every == 0 or k == n_steps:
            times.append(k * timestep)
            active, amps = fssh.populations()
            s1.append(float(active[1]))
            amp.append(float(amps[1]))
            frames.append(fssh.x.numpy() * Bohr)
            frame_ids.append(ids.numpy().copy())
            frame_states.append(fssh.active.numpy().copy())
            frame_times.append(np.full(len(ids), k * timestep))
        if report and (k * timestep) % report < 0.5 * timestep:
            print(f"  {k * timestep:.0f} fs: {len(ids)} trajectories, S1 fraction {s1[-1]:.3f}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    seconds = (time.perf_counter() - start) / n_steps
    return {"times": np.array(times), "s1": np.array(s1), "amp": np.array(amp), "phi": torsion(fssh.x).numpy(),
            "phi0": torsion(x[ids]).numpy(), "frames": np.concatenate(frames), "seconds_per_step": seconds,
            "frame_ids": np.concatenate(frame_ids), "frame_states": np.concatenate(frame_states),
            "frame_times": np.concatenate(frame_times), "hops": fssh.n_hops.numpy(), "final_state": fssh.active.numpy(),
            "dropped": dropped, "dropped_frames": (torch.cat(dropped_x).numpy() * Bohr if dropped_x
                                                   else np.zeros((0, 18))), "ids": ids.numpy()}


def decay_sides(phi: np.ndarray, ids: np.ndarray, states: np.ndarray, completed: np.ndarray) -> dict:
    """Per completed trajectory (in the order of ``completed``): whether it is on S0 at the end, whether
    it was beyond ``|phi| = 90 deg`` when it last left S1 (at its first saved frame if it never was on
    S1; False for those still on S1), and whether it crossed 90 deg again after that (on S0).

    ``phi`` (rad), ``ids`` and ``states`` are per saved frame in time order (:func:`run_fssh`)."""
    on_s0, beyond, recrossed = (np.zeros(len(completed), dtype=bool) for _ in range(3))
    for k, i in enumerate(completed):
        rows = ids == i
        side, state = np.abs(phi[rows]) > 0.5 * math.pi, states[rows]
        if state[-1] != 0:
            continue
        last_s1 = np.nonzero(state == 1)[0]
        after = side[(last_s1[-1] + 1 if last_s1.size else 0):]
        on_s0[k], beyond[k], recrossed[k] = True, after[0], (after != after[0]).any()
    return {"on_s0": on_s0, "beyond_at_decay": beyond, "recrossed": recrossed}


def ground_state_rotors(phi: np.ndarray, ids: np.ndarray, states: np.ndarray, completed: np.ndarray) -> dict:
    """How many completed trajectories end on S0, and how many of those cross ``|phi| = 90 deg`` again on S0
    after their last time on S1 (:func:`decay_sides`): in an isolated molecule the hot ground state may
    keep rotating, and then the final torsion is not fixed by where the molecule left S1."""
    sides = decay_sides(phi, ids, states, completed)
    return {"n_on_s0": int(sides["on_s0"].sum()), "n_recrossed_on_s0": int(sides["recrossed"].sum()),
            "n_beyond_at_decay": int(sides["beyond_at_decay"].sum())}


def settling(phi: np.ndarray, ids: np.ndarray, times: np.ndarray, completed: np.ndarray, window: float) -> dict:
    """Whether the torsions of the completed trajectories have settled on one side of 90 deg.

    ``phi`` (rad), ``ids`` and ``times`` (fs) are per saved frame (:func:`run_fssh`). For each of
    ``completed`` the time of its last crossing of ``|phi| = 90 deg`` between saved frames (the later
    frame's time; NaN if it never crossed), and how many crossed within the last ``window`` fs of the
    run: those have not settled, and their final side is not yet a product."""
    end = float(times.max())
    last = np.full(len(completed), math.nan)
    for k, i in enumerate(completed):
        rows = ids == i
        side, t = np.abs(phi[rows]) > 0.5 * math.pi, times[rows]
        flips = np.nonzero(side[1:] != side[:-1])[0]
        if flips.size:
            last[k] = t[flips[-1] + 1]
    unsettled = last > end - window  # NaN compares False: never crossed counts as settled
    return {"last_crossing_fs": last, "unsettled": unsettled, "n_unsettled": int(unsettled.sum()),
            "window_fs": float(window), "end_fs": end}


def intact(positions: np.ndarray, ch: float = 1.5, cc: float = 2.0) -> np.ndarray:
    """(n,) bool: which ethylene geometries (n, 18) or (n, 6, 3) Å are still one ethylene with its
    hydrogens where they started: each hydrogen within ``ch`` Å of its own carbon (H2, H3 on C0; H4, H5
    on C1) and nearer to it than to the other carbon, and C=C shorter than ``cc`` Å. The others have
    lost a hydrogen, moved one to the other carbon (ethylidene) or broken the C=C bond: their torsion
    is no cis/trans label."""
    r = np.asarray(positions, dtype=np.float64).reshape(-1, 6, 3)
    own = np.linalg.norm(r[:, 2:] - r[:, [0, 0, 1, 1]], axis=-1)
    other = np.linalg.norm(r[:, 2:] - r[:, [1, 1, 0, 0]], axis=-1)
    return (own < ch).all(1) & (own < other).all(1) & (np.linalg.norm(r[:, 0] - r[:, 1], axis=-1) < cc)


def binomial(flags: np.ndarray) -> tuple[float, float, int]:
    """Fraction of True in ``flags``, its binomial standard error ``sqrt(Y (1 - Y) / N)``, and ``N``."""
    n = int(np.size(flags))
    if n == 0:
        return math.nan, math.nan, 0
    y = float(np.mean(flags))
    return y, math.sqrt(y * (1 - y) / n), n


def committee_energies(nets, positions: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """(K, B, 2) eV: the adiabatic energies of every committee member at ethylene geometries ``positions``
    (B, 18) or (B, 6, 3) Å, from each member's diabatic matrix (no gradients), in chunks of ``chunk``."""
    from learners.diabatic import BOHR_ANGSTROM, HARTREE_EV, DANNHamiltonian

    x = torch.as_tensor(np.asarray(positions, dtype=np.float64).reshape(-1, 18) / BOHR_ANGSTROM)
    out = []
    with torch.no_grad():
        for net in nets:
            ham = DANNHamiltonian(net, NUMBERS)
            out.append(torch.cat([torch.linalg.eigvalsh(ham.diabatic(x[i:i + chunk].to(next(net.parameters()).dtype)))
                                  for i in range(0, len(x), chunk)]).double() * HARTREE_EV)
    return torch.stack(out).numpy()


def committee_report(nets, held_out: list, run: dict, iso: np.ndarray, factor: float, every: float) -> dict:
    """The committee's spread (standard deviation over members of the two adiabatic energies, averaged
    over the states, and of the S1 - S0 gap; eV) along an ensemble's saved frames every ``every`` fs,
    against ``factor`` times its mean on the held-out test frames: per time, the spread's median and
    90th percentile and the fraction of living trajectories above the thresholds; per trajectory,
    whether and when it first exceeds either threshold; the yield (``iso``, per completed trajectory)
    among those that never do and among all."""
    def spread(e):
        return e.std(0).mean(-1), (e[..., 1] - e[..., 0]).std(0)

    test_e, test_gap = spread(committee_energies(nets, np.stack([f.positions for f in held_out])))
    thr = (factor * float(test_e.mean()), factor * float(test_gap.mean()))
    rows = np.nonzero(np.mod(run["frame_times"], every) == 0)[0]
    e_sp, gap_sp = spread(committee_energies(nets, run["frames"][rows]))
    over = (e_sp > thr[0]) | (gap_sp > thr[1])
    ids, times = run["frame_ids"][rows], run["frame_times"][rows]
    first = {int(i): float(times[over & (ids == i)].min()) for i in np.unique(ids[over])}
    exceeded = np.array([int(i) in first for i in run["ids"]], dtype=bool)
    dropped = [i for i, _, _ in run["dropped"]]
    grid = np.unique(times)
    over_time = []
    for t in grid[np.mod(grid, 50) == 0]:
        at = times == t
        over_time.append({"t_fs": float(t), "n": int(at.sum()),
                          "energies_spread_median_p90_eV": np.percentile(e_sp[at], [50, 90]).round(3).tolist(),
                          "gap_spread_median_p90_eV": np.percentile(gap_sp[at], [50, 90]).round(3).tolist(),
                          "fraction_over": round(float(over[at].mean()), 3)})
    first_done = [first[int(i)] for i in run["ids"] if int(i) in first]
    return {"members": len(nets), "n_held_out": len(held_out), "factor": factor, "every_fs": every,
            "test_spread_eV": [round(float(test_e.mean()), 4), round(float(test_gap.mean()), 4)],
            "threshold_eV": [round(thr[0], 4), round(thr[1], 4)], "n_exceeded": int(exceeded.sum()),
            "first_exceed_median_fs": float(np.median(first_done)) if first_done else None,
            "n_dropped_exceeded": int(sum(i in first for i in dropped)),
            "yield_never": binomial(iso[~exceeded]), "yield_all": binomial(iso), "over_time": over_time}


def lifetime(times: np.ndarray, s1: np.ndarray) -> dict:
    """1/e time of the S1 fraction and an exponential fit ``exp(-(t - t0)/tau)`` (fs)."""
    below = np.nonzero(s1 <= 1 / math.e)[0]
    t_e = float(times[below[0]]) if below.size else math.nan
    t0_idx = np.nonzero(s1 < 0.98)[0]
    fit = {"t0": math.nan, "tau": math.nan}
    if t0_idx.size:
        t0 = times[max(t0_idx[0] - 1, 0)]
        keep = (times >= t0) & (s1 > 0.02)
        if keep.sum() > 3:
            slope = np.polyfit(times[keep] - t0, np.log(s1[keep]), 1)[0]
            fit = {"t0": float(t0), "tau": float(-1 / slope) if slope < 0 else math.inf}
    return {"one_over_e_fs": t_e, **fit}


def speed(net, ref: dict, t_label: float) -> dict:
    """Seconds per geometry of the DANN (energies, gradients, couplings of both states), single and batched."""
    from learners.diabatic import DANNHamiltonian

    dann = DANNHamiltonian(net, NUMBERS)
    x = torch.as_tensor(ref["positions"].reshape(1, -1) / Bohr)
    xb = x.repeat(200, 1) + 0.01 * torch.randn(200, 18, generator=torch.Generator().manual_seed(0), dtype=x.dtype)

    def timed(fn, repeat=5):
        best = math.inf
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    one = timed(lambda: dann.adiabatic(x))
    many = timed(lambda: dann.adiabatic(xb)) / 200
    return {"pyscf_s": t_label, "dann_single_s": one, "dann_batched_s": many,
            "speedup_single": t_label / one, "speedup_batched": t_label / many}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/ethylene_dann")
    parser.add_argument("--quick", action="store_true", help="32 geometries, small net, 20 trajectories x 50 fs")
    parser.add_argument("--basis", default="3-21g")
    parser.add_argument("--average-states", type=int, default=2,
                        help="states averaged in SA-CASSCF (3: all singlets of CAS(2,2), no artefact near planarity)")
    parser.add_argument("--n-wigner", type=int, default=300)
    parser.add_argument("--n-scan", type=int, default=600)
    parser.add_argument("--round2", type=int, default=0,
                        help="frames to label and add per active-learning round (FSSH frames of the last model)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of training in all, the first included "
                        "(used with --round2; a rerun with more rounds resumes from the last one's files)")
    parser.add_argument("--round-traj", type=int, default=100, help="FSSH trajectories per active-learning round")
    parser.add_argument("--exit", type=float, default=0.5,
                        help="Å: a geometry this far from every training geometry (distances()) has left the data")
    parser.add_argument("--w-couplings", type=float, default=1.0, help="loss weight of the coupling numerators")
    parser.add_argument("--gap-sigma", type=float, default=0.0,
                        help="eV: train on GapWeightedSampler draws of this width (0: every frame once per epoch)")
    parser.add_argument("--until", choices=("label", "train", "all"), default="all")
    parser.add_argument("--n-ci", type=int, default=80, help="scan points around the conical intersection")
    parser.add_argument("--label", choices=("all", "ci", "none"), default="all",
                        help="which sets to label; the others use what is on disk")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--n-traj", type=int, default=200)
    parser.add_argument("--duration", type=float, default=200.0, help="fs")
    parser.add_argument("--timestep", type=float, default=0.25, help="fs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--friction", type=float, default=0.0,
                        help="1/fs: a Langevin bath on the nuclei in the final ensemble (0: isolated molecule)")
    parser.add_argument("--temperature", type=float, default=300.0, help="K: the bath's temperature (with --friction)")
    parser.add_argument("--settle-window", type=float, default=200.0,
                        help="fs: a torsion that crossed 90 deg this close to the end has not settled")
    parser.add_argument("--members", type=int, default=1,
                        help="committee size: the last model and members-1 trained from scratch with seeds seed+1, ...")
    parser.add_argument("--committee-factor", type=float, default=3.0,
                        help="out of the data: committee spread above this multiple of its held-out mean")
    parser.add_argument("--committee-every", type=float, default=5.0, help="fs between frames the committee evaluates")
    args = parser.parse_args()
    if args.quick:
        # 3-21G also here: the SA-2-CASSCF(2,2)/STO-3G planar structure is no minimum (Hessian eigenvalue
        # -0.0014 hartree/bohr^2/m_e), so its normal modes cannot be sampled.
        args.n_wigner, args.n_scan, args.n_ci, args.epochs, args.features = 12, 12, 8, 100, 16
        args.n_traj, args.duration, args.round2, args.round_traj = 20, 50.0, min(args.round2, 8), 8
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "torch": torch.__version__,
           "args": vars(args)}
    print(f"# {log['date']}, {platform.machine()}, torch {torch.__version__}, 1 thread; {vars(args)}", flush=True)

    # SA-2 runs keep their old label folders (their manifests hold no average_states).
    labeller = {} if args.average_states == 2 else {"average_states": args.average_states}
    ref = reference(out, args.basis, labeller)
    print(f"reference: S0 minimum (max |grad| {float(ref['max_force']):.1e} eV/Å) and {len(ref['frequencies'])} "
          f"modes in {float(ref['seconds']):.0f} s ({int(ref['calls'])} optimiser calls + 36 Hessian); "
          f"frequencies {np.round(ref['frequencies'] * 219474.63).astype(int).tolist()} cm-1", flush=True)
    pos = geometries(ref, args.n_wigner, args.n_scan, args.seed)
    # The twisted-pyramidalised intersection of SA-2-CASSCF(2,2) lies beyond the first scan (gap 0.5 eV at
    # 90 deg twist and 130 deg pyramidalisation, 1.7 eV at 90 deg): a second scan covers it.
    pos_ci = geometries(ref, 0, args.n_ci, args.seed + 1, twist=(60.0, 120.0), pyramid=(100.0, 160.0), cc=(1.35, 1.50))
    start = time.perf_counter()
    frames = label_dataset([Atoms(numbers=NUMBERS, positions=p) for p in pos], out / f"labels_{args.basis}",
                           chunk_size=10, basis=args.basis, missing="label" if args.label == "all" else "skip",
                           **labeller)
    ci = label_dataset([Atoms(numbers=NUMBERS, positions=p) for p in pos_ci], out / f"labels_ci_{args.basis}",
                       chunk_size=10, basis=args.basis, missing="skip" if args.label == "none" else "label",
                       **labeller)
    for f in ci:
        f.info["label_index"] += len(pos)  # one index space for the split
    print(f"labels: {len(frames)} of {len(pos)} and {len(ci)} of {len(pos_ci)} near the intersection "
          f"({time.perf_counter() - start:.0f} s this run)", flush=True)
    gaps = np.array([np.diff(f.info["energies"])[0] for f in frames + ci])
    log["labels"] = {"n_main": len(frames), "n_ci": len(ci), "gap_min_eV": float(gaps.min()),
                     "n_gap_below_1eV": int((gaps < 1).sum())}
    frames = frames + ci
    if args.until == "label":
        return
    train_set, val_set, test_set = split(frames, args.seed)
    # Non-default training settings get their own model files (the defaults keep the names of earlier runs).
    tag = "" if (args.w_couplings, args.gap_sigma) == (1.0, 0.0) else f"_wc{args.w_couplings:g}_gs{args.gap_sigma:g}"
    net, seconds = train(train_set, val_set, args,
                         out / f"dann_{args.basis}_{len(frames)}_{args.features}_{args.epochs}{tag}_r1.pt")
    log["round1"] = {"n_train": len(train_set), "n_val": len(val_set), "train_seconds": seconds,
                     "test": test_errors(net, test_set)}
    print(f"round 1: {len(train_set)} training / {len(val_set)} validation frames, "
          f"{'read' if seconds is None else f'trained in {seconds:.0f} s'}; test {log['round1']['test']}", flush=True)
    prev = out / f"dann_{args.basis}_{len(frames)}_{args.features}_{args.epochs}{tag}_r1.pt"
    held_out = list(test_set)
    for r in range(2, (args.rounds if args.round2 else 1) + 1):
        # Active learning: an FSSH ensemble of the last model; label where its trajectories leave the data
        # (each one's exit) and where they go before that, add those frames, retrain from the last model.
        picks_path = out / f"round{r}_picks_{args.round2}_{args.round_traj}_{args.exit:g}.npz"
        if picks_path.exists():  # a resumed run: this round's ensemble was run and its frames picked before
            with np.load(picks_path) as data:
                if "trajectories" not in data.files:
                    raise SystemExit(f"{picks_path} was written before picks kept their trajectories: its frames "
                                     "cannot be split by trajectory (a frame-wise split holds out frames of training "
                                     "trajectories, an optimistic test); run the rounds in a new --out")
                chosen, trajectories = data["positions"], data["trajectories"]
                stats = {k: int(data[k]) for k in ("n_dropped", "n_exited", "n_exits_picked")}
        else:
            first = run_fssh(net, ref, args.round_traj, args.duration, args.timestep, args.seed + 100 * (r - 1))
            nov = novelty(np.stack([f.positions for f in train_set]), first["frames"])
            pick = pick_frames(first["frames"], first["frame_ids"], nov, args.round2, args.exit, (args.seed, 5, r))
            chosen, trajectories = first["frames"].reshape(-1, 6, 3)[pick], first["frame_ids"][pick]
            stats = {"n_dropped": len(first["dropped"]), "n_exited": len(np.unique(first["frame_ids"][nov > args.exit])),
                     "n_exits_picked": int((nov[pick] > args.exit).sum())}
            with atomic_open(picks_path) as handle:
                np.savez(handle, positions=chosen, trajectories=trajectories, **stats)
        extra = label_dataset([Atoms(numbers=NUMBERS, positions=p) for p in chosen],
                              out / f"labels_round{r}_{args.round2}_{args.round_traj}_{args.exit:g}",
                              chunk_size=10, basis=args.basis, **labeller,
                              missing="skip" if args.label == "none" else "label")
        tr2, va2, te2 = split_by_trajectory(extra, trajectories,
                                            int(np.random.SeedSequence((args.seed, 2, r)).generate_state(1)[0]))
        train_set, val_set, held_out = train_set + tr2, val_set + va2, held_out + te2
        path = out / f"dann_{args.basis}_{len(frames)}_{args.features}_{args.epochs}{tag}_r{r}_{args.round2}_{args.round_traj}.pt"
        net, seconds = train(train_set, val_set, args, path, start_from=prev)
        prev = path
        log[f"round{r}"] = {"n_trajectories": args.round_traj, **stats, "n_picked": len(chosen), "n_fssh_frames": len(extra),
                            "n_picked_trajectories": len(np.unique(trajectories)),
                            "n_train": len(train_set), "train_seconds": seconds, "test": test_errors(net, test_set),
                            "test_fssh_frames": test_errors(net, te2) if te2 else None}
        print(f"round {r}: the last model's {args.round_traj} trajectories: {stats['n_dropped']} dropped, "
              f"{stats['n_exited']} left the data (> {args.exit} Å); +{len(extra)} of {len(chosen)} picked frames labelled "
              f"({log[f'round{r}']['n_exits_picked']} exits); {len(train_set)} training frames, "
              f"{'read' if seconds is None else f'trained in {seconds:.0f} s'}; test {log[f'round{r}']['test']}; "
              f"on its held-out FSSH frames {log[f'round{r}']['test_fssh_frames']}", flush=True)
    # A committee: the last model and members trained from scratch on its training set with other seeds
    # (same split, settings and epochs as round 1); their spread flags geometries outside the data.
    nets = [net]
    for s in range(args.seed + 1, args.seed + args.members):
        member, seconds = train(train_set, val_set, argparse.Namespace(**{**vars(args), "seed": s}),
                                prev.with_name(f"{prev.stem}_member{s}.pt"))
        nets.append(member)
        log[f"member{s}"] = {"train_seconds": seconds, "test": test_errors(member, test_set)}
        print(f"committee member (seed {s}): {'read' if seconds is None else f'trained in {seconds:.0f} s'}; "
              f"test {log[f'member{s}']['test']}", flush=True)
    if args.until == "train":
        return

    # The ensemble is kept (frames included), so that a rerun (e.g. with a committee) reads it back.
    bath = f"_bath{args.friction:g}_{args.temperature:g}K" if args.friction else ""
    ens_path = out / f"ensemble_{prev.stem}_{args.n_traj}_{args.duration:g}fs{bath}.npz"
    if ens_path.exists():
        with np.load(ens_path) as data:
            run = {k: data[k] for k in data.files}
        run["dropped"] = [(int(i), float(t), float(g)) for i, t, g in run["dropped"]]
        run["seconds_per_step"] = float(run["seconds_per_step"])
        print(f"FSSH ensemble read from {ens_path}", flush=True)
    else:
        run = run_fssh(net, ref, args.n_traj, args.duration, args.timestep, args.seed, friction=args.friction,
                       temperature=args.temperature, report=50.0)
        with atomic_open(ens_path) as handle:
            np.savez(handle, **{**run, "dropped": np.array(run["dropped"], dtype=np.float64).reshape(-1, 3)})
    iso = np.abs(run["phi"]) > 0.5 * math.pi
    y, n_ok = float(iso.mean()), len(iso)
    phi_frames = torsion(torch.as_tensor(run["frames"].reshape(-1, 18))).numpy()
    settled = settling(phi_frames, run["frame_ids"], run["frame_times"], run["ids"], args.settle_window)
    # Trajectories that completed but went farther than --exit from every training geometry at some moment.
    nov = novelty(np.stack([f.positions for f in train_set]), run["frames"])
    left = np.isin(run["ids"], run["frame_ids"][nov > args.exit])
    y_in = float(iso[~left].mean()) if (~left).any() else math.nan
    sides = decay_sides(phi_frames, run["frame_ids"], run["frame_states"], run["ids"])
    rotors = ground_state_rotors(phi_frames, run["frame_ids"], run["frame_states"], run["ids"])
    log["fssh"] = {"n_trajectories": args.n_traj, "n_completed": n_ok, "dropped": run["dropped"],
                   "n_completed_left_data": int(left.sum()), "exit_threshold_A": args.exit,
                   "yield_inside": y_in, "yield_inside_error": math.sqrt(y_in * (1 - y_in) / max((~left).sum(), 1)),
                   "hops_histogram": np.bincount(run["hops"].astype(int)).tolist(), **rotors,
                   "duration_fs": args.duration, "timestep_fs": args.timestep,
                   "yield": y, "yield_error": math.sqrt(y * (1 - y) / n_ok),
                   "start_torsion_max_deg": float(np.degrees(np.abs(run["phi0"])).max()),
                   "final_on_s1": float((run["final_state"] == 1).mean()), "mean_hops": float(run["hops"].mean()),
                   "lifetime": lifetime(run["times"], run["s1"]), "seconds_per_step": run["seconds_per_step"],
                   "s1_fraction": dict(zip(map(float, run["times"][::10]), map(float, run["s1"][::10]))),
                   "friction_per_fs": args.friction, "temperature_K": args.temperature if args.friction else 0.0}
    # Yields: the side of 90 deg at the end, over all completed trajectories, over those whose torsion has
    # not crossed 90 deg in the last --settle-window fs, and over those on S0 at the end; and the side on
    # which each trajectory on S0 at the end last left S1 (the product "assigned at the decay").
    # The last saved frame lists the completed trajectories in the order of run["ids"].
    whole = intact(run["frames"][run["frame_times"] == run["frame_times"].max()])
    on_s0, still = run["final_state"] == 0, ~settled["unsettled"]
    product = on_s0 & still & whole
    yields = {"all": binomial(iso), "settled": binomial(iso[still]),
              "on_s0_settled": binomial(iso[on_s0 & still]), "on_s0_settled_intact": binomial(iso[product]),
              "on_s1": binomial(iso[~on_s0]),
              "at_decay": binomial(np.arange(rotors["n_on_s0"]) < rotors["n_beyond_at_decay"])}
    log["fssh"]["settling"] = {"window_fs": settled["window_fs"], "n_unsettled": settled["n_unsettled"],
                               "last_crossing_quantiles_fs": np.nanpercentile(settled["last_crossing_fs"], [50, 90, 100]).tolist()
                               if np.isfinite(settled["last_crossing_fs"]).any() else None,
                               "n_never_crossed": int(np.isnan(settled["last_crossing_fs"]).sum()),
                               "n_not_intact": int((~whole).sum()), "n_not_intact_on_s0": int((~whole & on_s0).sum()),
                               "n_unsettled_on_s0_intact": int((settled["unsettled"] & on_s0 & whole).sum()),
                               "n_on_s1": int((~on_s0).sum()),
                               # products whose final side is the one on which they left S1
                               "n_products": int(product.sum()),
                               "n_products_kept_decay_side": int((product & (sides["beyond_at_decay"] == iso)).sum())}
    log["fssh"]["yields"] = {k: {"yield": v[0], "error": v[1], "n": v[2]} for k, v in yields.items()}
    print(f"FSSH: {n_ok} of {args.n_traj} trajectories x {args.duration} fs completed (dropped: {run['dropped']}); "
          f"{int(left.sum())} of them left the data (> {args.exit} Å) at some moment (isomerised among the others "
          f"{y_in:.3f}); isomerised {y:.3f} +- "
          f"{log['fssh']['yield_error']:.3f}; S1 lifetime {log['fssh']['lifetime']}; "
          f"on S1 at the end {log['fssh']['final_on_s1']:.3f}; {log['fssh']['mean_hops']:.2f} hops per trajectory; "
          f"{rotors['n_recrossed_on_s0']} of the {rotors['n_on_s0']} on S0 at the end crossed 90 deg again after "
          f"leaving S1 ({rotors['n_beyond_at_decay']} were beyond 90 deg when they left it); {run['seconds_per_step']:.3f} s per step", flush=True)

    print(f"settling: {settled['n_unsettled']} of {n_ok} completed trajectories crossed 90 deg in the last "
          f"{args.settle_window:g} fs (last crossings, median / 90 % / latest: {log['fssh']['settling']['last_crossing_quantiles_fs']} fs;"
          f" {log['fssh']['settling']['n_never_crossed']} never crossed); at the end {int((~whole).sum())} are no longer an "
          f"intact ethylene ({int((~whole & on_s0).sum())} of them on S0), "
          f"{log['fssh']['settling']['n_unsettled_on_s0_intact']} intact ones on S0 unsettled, {int((~on_s0).sum())} on S1; "
          f"{log['fssh']['settling']['n_products_kept_decay_side']} of the {int(product.sum())} products (intact, settled, "
          f"on S0) end on the side on which they left S1; yields (fraction beyond 90 deg, error, N): "
          + "; ".join(f"{k} {v[0]:.3f} +- {v[1]:.3f} ({v[2]})" for k, v in yields.items()), flush=True)
    if len(nets) > 1:
        log["committee"] = committee_report(nets, held_out, run, iso, args.committee_factor, args.committee_every)
        c = log["committee"]
        print(f"committee of {len(nets)}: held-out spread (energies / gap) {c['test_spread_eV']} eV, thresholds "
              f"{c['threshold_eV']} eV; {c['n_exceeded']} of {n_ok} completed trajectories exceeded at some moment "
              f"(first at median {c['first_exceed_median_fs']} fs), {c['n_dropped_exceeded']} of {len(run['dropped'])} "
              f"dropped ones before their drop; yield among the never exceeding {c['yield_never']}, all "
              f"{c['yield_all']}", flush=True)
        for row in c["over_time"]:
            print(f"  {row}", flush=True)
    if bath:
        atomic_write(out / f"results{bath}.json", json.dumps(log, indent=1, default=float))
        return

    # Cost of one labelled geometry: PySCF on three of the geometries against the DANN.
    probe = [Atoms(numbers=NUMBERS, positions=p) for p in pos[:3]]
    tic = time.perf_counter()
    for atoms in probe:
        sa_casscf_labels(atoms, basis=args.basis, **labeller)
    t_pyscf = (time.perf_counter() - tic) / len(probe)
    log["speed"] = speed(net, ref, t_pyscf)
    print(f"per geometry: PySCF SA-{args.average_states}-CASSCF(2,2)/{args.basis} {t_pyscf:.2f} s; DANN {log['speed']['dann_single_s'] * 1e3:.1f} ms "
          f"alone, {log['speed']['dann_batched_s'] * 1e6:.0f} us in a batch of 200; speed-up "
          f"{log['speed']['speedup_single']:.3g} / {log['speed']['speedup_batched']:.3g}", flush=True)
    atomic_write(out / "results.json", json.dumps(log, indent=1, default=float))
    with atomic_open(out / "populations.npz") as handle:
        np.savez(handle, times=run["times"], s1=run["s1"], amp=run["amp"], phi=run["phi"], phi0=run["phi0"],
                 ids=run["ids"], hops=run["hops"], final_state=run["final_state"], left_data=left)


if __name__ == "__main__":
    main()
