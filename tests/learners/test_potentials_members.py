"""Members of a committee evaluated together equal each member evaluated alone, literally.

:func:`learners.potentials.base.member_energies` builds the pair geometry and radial basis once for
all members and :class:`~learners.potentials.PaiNN` skips its first vector message (the vectors
start at zero). The reference is ``tests/learners/painn_reference.py``: the network of
Schütt, Unke & Gastegger (arXiv:2102.03150, eqs. 7-10) member by member, each with its own geometry
and the full first message; forces are also checked against central finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

import sims
from learners.potentials import Committee, PaiNN, SchNet, collate_atoms, evaluate
from sims.neighbors import build_pairs
from tests.learners.painn_reference import ReferencePotential, reference_energy

F64 = torch.float64
CUTOFF = 4.0


def _painn(seed, repulsion=None, n_features=8):
    model = PaiNN(cutoff=CUTOFF, n_features=n_features, n_rbf=8, n_interactions=3, seed=seed, repulsion=repulsion,
                  dtype=F64)
    with torch.no_grad():  # shifts and scale as after fit_shifts, so that they enter the comparison
        model.atom_energy.copy_(torch.linspace(-2.0, 1.0, model.atom_energy.numel(), dtype=F64))
        model.energy_scale.fill_(0.3 + 0.1 * seed)
    return model


def _crystal(seed=1):
    """Rattled, sheared rock-salt MgO with an Li: 16 atoms, nothing cancels by symmetry."""
    atoms = bulk("MgO", "rocksalt", a=4.2, cubic=True).repeat((2, 1, 1))
    atoms.numbers[0] = 3
    atoms.set_cell(atoms.cell[:] + np.array([[0, 0.1, 0], [0, 0, 0.15], [0.05, 0, 0]]), scale_atoms=True)
    atoms.rattle(0.15, seed=seed)
    return atoms


def _inputs(atoms, skin=1.0):
    pos = torch.tensor(atoms.positions, dtype=F64)
    cell = torch.tensor(atoms.cell[:], dtype=F64)
    pairs = build_pairs(pos, cell, torch.tensor([True] * 3), CUTOFF + skin, half=True)  # an MD list, skin included
    return pos, cell, torch.tensor(atoms.numbers), pairs


def _compute(potential, atoms):
    pos, cell, numbers, pairs = _inputs(atoms)
    return sims.compute(potential, pos, cell, numbers, pairs, stress=True)


@pytest.mark.parametrize("repulsion", [None, "zbl"])
def test_painn_equals_the_member_by_member_reference(repulsion):
    model = _painn(0, repulsion)
    ours, ref = _compute(model, _crystal()), _compute(ReferencePotential([model]), _crystal())
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    assert float(ours[1].abs().max()) > 1e-3  # forces that are there to compare


def test_committee_energy_forces_and_spread_equal_the_members_one_by_one():
    members = [_painn(0), _painn(1), _painn(2, "zbl"), _painn(3, n_features=4),
               SchNet(cutoff=CUTOFF, n_features=8, n_rbf=12, n_interactions=2, seed=4, dtype=F64)]
    committee = Committee(members)
    atoms = _crystal()
    e, f, s = _compute(committee, atoms)
    singles = [_compute(ReferencePotential([m]) if isinstance(m, PaiNN) else m, atoms) for m in members]
    e_ref, f_ref, s_ref = (torch.stack(x) for x in zip(*singles))
    assert torch.allclose(e, e_ref.mean(0), rtol=1e-10, atol=1e-10)
    assert torch.allclose(f, f_ref.mean(0), rtol=1e-10, atol=1e-10)
    assert torch.allclose(s, s_ref.mean(0), rtol=1e-10, atol=1e-10)
    # The spread (predict: each member's own backward pass) against the reference members'.
    out = committee.predict(atoms, stress=True)
    assert torch.allclose(out["energy_std"][0], e_ref.std(0, unbiased=False), rtol=1e-10, atol=1e-10)
    assert torch.allclose(out["forces_std"], f_ref.std(0, unbiased=False), rtol=1e-10, atol=1e-10)
    assert float(out["forces_std"].max()) > 1e-3


def test_batched_committee_equals_its_structures_one_by_one():
    committee = Committee([_painn(0), _painn(1), _painn(2)])
    structures = [_crystal(1), _crystal(2)]
    batch = collate_atoms(structures, CUTOFF, dtype=F64, labels=False)
    energies = committee(batch.positions, batch.cell, batch.numbers, batch.pairs, batch.batch)
    for b, atoms in enumerate(structures):
        pos, cell, numbers, pairs = _inputs(atoms)
        ref = torch.stack([reference_energy(m, pos, cell, numbers, pairs) for m in committee.models]).mean()
        assert torch.allclose(energies[b], ref, rtol=1e-10, atol=1e-10)


def test_committee_forces_equal_central_finite_differences():
    committee = Committee([_painn(0), _painn(1, "zbl")])
    atoms = _crystal()
    pos, cell, numbers, _ = _inputs(atoms)
    _, forces, _ = _compute(committee, atoms)
    h, fd = 1e-5, torch.zeros_like(pos)
    for a in range(3):  # three atoms are enough to catch a missing or doubled term
        for c in range(3):
            shifted = []
            for sign in (1, -1):
                x = pos.clone()
                x[a, c] += sign * h
                pairs = build_pairs(x, cell, torch.tensor([True] * 3), CUTOFF + 1.0, half=True)
                with torch.no_grad():
                    shifted.append(float(committee(x, cell, numbers, pairs)))
            fd[a, c] = -(shifted[0] - shifted[1]) / (2 * h)
    assert torch.allclose(forces[:3], fd[:3], atol=1e-7, rtol=1e-6)


def test_training_gradients_equal_the_reference():
    """Training differentiates the force loss with respect to the parameters (create_graph): same as the reference."""
    model = _painn(0, "zbl")
    batch = collate_atoms([_crystal(1), _crystal(2)], CUTOFF, dtype=F64, labels=False)

    def grads(potential):
        out = evaluate([potential], batch, forces=True, create_graph=True)
        loss = (out["forces"] ** 2).sum() + (out["energy"] ** 2).sum()
        return torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)

    for ours, ref in zip(grads(model), grads(ReferencePotential([model]))):
        assert ref is not None and torch.allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_compiled_models_take_the_compiled_network_in_eval_mode_only(monkeypatch):
    """The dispatch, with the compiled network swapped for the eager one (compiling takes tens of seconds
    cold; the slow test below compiles)."""
    from learners.potentials import painn

    calls = []

    def counted(*args):
        calls.append(args[0])
        return PaiNN._network(*args)

    monkeypatch.setattr(painn, "_compiled_network", lambda: counted)
    committee = Committee([_painn(0), _painn(1)])
    committee.models[0].compiled = True
    eager = _compute(committee, _crystal())
    assert calls == []  # train mode (a fresh model's): eager, so that forces can be differentiated again
    committee.eval()
    for a, b in zip(_compute(committee, _crystal()), eager):
        assert torch.equal(a, b)
    assert calls == [committee.models[0]]


@pytest.mark.slow
def test_compiled_committee_equals_the_eager_one():
    committee = Committee([_painn(0, "zbl"), _painn(1, "zbl")]).eval()
    atoms = _crystal()
    eager = _compute(committee, atoms)
    for m in committee.models:
        m.compiled = True
    for a, b in zip(_compute(committee, atoms), eager):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    # Another structure (other atom and pair counts) through the same compiled graph, and MD on it.
    runs = []
    for compiled in (False, True):
        for m in committee.models:
            m.compiled = compiled
        md = sims.MD(_crystal(2).repeat((1, 2, 1)), committee, sims.Langevin(1.0, 600.0, friction=0.02),
                     temperature=600.0, seed=0, dtype=F64)
        md.run(20)
        runs.append(md.state.positions)
    assert torch.allclose(runs[0], runs[1], atol=1e-9)


def test_config_loads_a_compiled_committee_in_eval_mode(tmp_path, monkeypatch):
    from learners.errors import InputError
    from learners.potentials import painn, save_potential
    from learners.potentials.store import potential_from_config

    calls = []
    monkeypatch.setattr(painn, "_compiled_network", lambda: lambda *a: calls.append(a[0]) or PaiNN._network(*a))
    members = [_painn(0), SchNet(cutoff=CUTOFF, n_features=8, n_rbf=12, n_interactions=2, seed=4, dtype=F64)]
    save_potential(Committee(members), tmp_path / "c.pt")
    eager = potential_from_config({"path": "c.pt"}, base=tmp_path, dtype=F64)
    loaded = potential_from_config({"path": "c.pt", "compiled": True}, base=tmp_path, dtype=F64)
    assert not eager.models[0].compiled and eager.training
    assert loaded.models[0].compiled and not loaded.training and not hasattr(loaded.models[1], "compiled")
    for a, b in zip(_compute(loaded, _crystal()), _compute(eager, _crystal())):
        assert torch.equal(a, b)
    assert calls == [loaded.models[0]]
    with pytest.raises(InputError, match="compiled must be true or false"):
        potential_from_config({"path": "c.pt", "compiled": "yes"}, base=tmp_path)


def test_a_run_resumes_and_reads_back_with_compiled_switched(tmp_path):
    """``compiled`` says how the same weights are evaluated, not what is simulated: a run of
    ``sims.generate`` stays one run with it switched on or off (it was 'a different config': an eager
    run could not be resumed compiled, and a compiled one not read back without it)."""
    from ase.io import write

    from learners.potentials import save_potential
    from reprs.fileio import read_frames
    from sims.generate import config_hash, generate

    save_potential(PaiNN(cutoff=3.0, n_features=4, n_rbf=4, n_interactions=1, seed=0), tmp_path / "m.pt")
    write(tmp_path / "start.extxyz", bulk("Cu", "fcc", a=3.6, cubic=True))
    cfg = {"seed": 0, "_base": str(tmp_path), "system": {"builder": "file", "path": "start.extxyz"},
           "potential": {"kind": "nn", "path": "m.pt"}, "md": {"dtype": "float32"},
           "stages": [{"ensemble": "langevin", "timestep": 1.0, "temperature": 300.0, "friction": 0.02,
                       "steps": 4, "sample_every": 2}],
           "output": {"path": "run.extxyz", "checkpoint_every": 2}}
    path = generate(cfg)
    frames = read_frames(path)
    compiled = {**cfg, "potential": {**cfg["potential"], "compiled": True}}
    assert config_hash(compiled) == config_hash(cfg)
    again = read_frames(generate(compiled))  # finished: read back, nothing compiled or run
    assert len(again) == len(frames) == 2
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(again, frames))
    # Another setting still makes another config.
    assert config_hash({**cfg, "potential": {**cfg["potential"], "path": "n.pt"}}) != config_hash(cfg)


def test_members_alike_are_checked_once_and_unlike_ones_each(monkeypatch):
    # member_energies ran check_inputs (several device syncs) once per member; members that it judges
    # alike are now checked once, and a member that differs is still checked. The call count fails
    # on the old code (checked: 3 calls).
    from learners.errors import InputError
    from learners.potentials.base import NeuralPotential

    calls = []
    check = NeuralPotential.check_inputs
    monkeypatch.setattr(NeuralPotential, "check_inputs", lambda self, *a: calls.append(self) or check(self, *a))
    members = [_painn(0), _painn(1), _painn(2)]
    _compute(Committee(members), _crystal())
    assert len(calls) == 1
    calls.clear()
    with torch.no_grad():   # one member trained without Li: it cannot predict the crystal's Li atom
        for m in members:
            m.known_elements[[3, 8, 12]] = True
        members[2].known_elements[3] = False
    with pytest.raises(InputError, match=r"\['Li'\] were not in the training data"):
        _compute(Committee(members), _crystal())
    assert len(calls) == 2
