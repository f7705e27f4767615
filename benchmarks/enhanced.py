"""Bias-path optimisation (sims.enhanced) on Müller-Brown 2-D: cost and success against settings,
and the memory of the truncated adjoint against backpropagation through the whole trajectory.

Part 1 trains ``BiasPathOptimizer.mueller_brown(dim=2)`` with several numbers of trajectories and
backsteps and prints the wall time per iteration and the fraction of 100 fresh trajectories (new
seeds) that reach the far basin after a fixed number of iterations.

Part 2 measures autograd memory: the bytes of tensors saved for the backward pass (a hook on
``torch.autograd.graph.saved_tensors_hooks``), for one gradient of a loss on the last frame, by
the truncated adjoint (peak over its steps, plus the stored positions) and by backpropagation
through the trajectory (the peer: what differentiating ``sims.MD(requires_grad=True)`` costs). It
checks that both give the same gradient (``backsteps`` = trajectory length) and prints the ratio.

Run: ``OMP_NUM_THREADS=1 python benchmarks/enhanced.py``.
"""

from __future__ import annotations

import time

import torch

from sims.enhanced import BiasPathOptimizer, _evaluate, force_adjoints


def train_row(n_trajectories: int, backsteps: int, iterations: int = 15) -> str:
    opt = BiasPathOptimizer.mueller_brown(dim=2, seed=0, n_trajectories=n_trajectories, backsteps=backsteps,
                                          iterations=iterations)
    t0 = time.perf_counter()
    history = opt.fit().history
    per_iteration = (time.perf_counter() - t0) / iterations
    frames, _ = opt.sample(100, seed=99)
    fresh = float(opt.reached(frames).double().mean())
    first = int((history.success_rate >= 0.9).idxmax()) if (history.success_rate >= 0.9).any() else None
    return (f"| {n_trajectories} | {backsteps} | {per_iteration:.2f} | {first if first is not None else '-'} | "
            f"{fresh:.2f} |")


class _SavedBytes:
    """Bytes of the tensors autograd saves for backward while active (peak kept by the caller)."""

    def __init__(self) -> None:
        self.total = 0

    def pack(self, t: torch.Tensor):
        self.total += t.numel() * t.element_size()
        return t

    def __enter__(self):
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def memory_row(n_steps: int) -> tuple[str, float]:
    opt = BiasPathOptimizer.mueller_brown(dim=2, seed=0, n_trajectories=16, n_steps=n_steps)
    with torch.no_grad():
        opt.bias.heights.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    starts = opt.start.expand(16, -1, -1)
    index = torch.full((16,), n_steps)
    target = opt.target_basin.center

    def loss(x):
        return ((_evaluate(opt.cvs, x) - target) ** 2).sum()

    with _SavedBytes() as full_mem:
        frames = opt.dynamics.run(starts, opt.bias, n_steps, (0,), opt.temperature, differentiable=True)
        value = loss(frames[-1])
    full = torch.autograd.grad(value, opt.bias.heights)[0]
    frames = frames.detach()
    x = frames[-1].clone().requires_grad_(True)
    seed = torch.autograd.grad(loss(x), x)[0]
    peak = 0
    original = opt.dynamics.forces

    def counted(*args, **kw):
        nonlocal peak
        with _SavedBytes() as step_mem:
            out = original(*args, **kw)
        peak = max(peak, step_mem.total)
        return out

    opt.dynamics.forces = counted
    pos, g = force_adjoints(opt.dynamics, opt.bias, frames, index, seed, n_steps)
    opt.dynamics.forces = original
    pos = pos.reshape(-1, 3).requires_grad_(True)
    force = -torch.autograd.grad(opt.bias(pos), pos, create_graph=True)[0]
    adjoint = torch.autograd.grad((force * g.reshape(-1, 3)).sum(), opt.bias.heights)[0]
    err = float((adjoint - full).abs().max() / full.abs().max())
    stored = frames.numel() * frames.element_size()
    ours = (peak + stored) / 2 ** 20
    peer = full_mem.total / 2 ** 20
    return f"| {n_steps} | {peak / 2 ** 20:.2f} + {stored / 2 ** 20:.2f} | {peer:.1f} | {peer / ours:.1f} | {err:.1e} |", err


def main() -> None:
    torch.set_num_threads(1)
    print("| trajectories | backsteps | s / iteration | first iteration >= 90% | fresh success after 15 |")
    print("|---|---|---|---|---|")
    for n_traj, backsteps in ((8, 190), (16, 190), (32, 190), (32, 50), (32, 100)):
        print(train_row(n_traj, backsteps), flush=True)
    print()
    print("| steps | adjoint MiB (graph peak + positions) | full backprop MiB | full / adjoint | rel. gradient diff |")
    print("|---|---|---|---|---|")
    for n_steps in (100, 200, 400):
        row, err = memory_row(n_steps)
        assert err < 1e-8, err
        print(row, flush=True)


if __name__ == "__main__":
    main()
