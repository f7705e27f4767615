"""sims.surface_hopping.FSSH's Langevin bath: a harmonic oscillator thermalises to the Boltzmann distribution.

Reference: classical equipartition for ``V = k x^2 / 2`` in each coordinate, ``<p^2 / m> = k_B T`` and
``<k x^2> = k_B T``, independent of the friction (the bath's strength sets only how fast it is reached).
"""

from __future__ import annotations

import pytest
import torch

from sims.surface_hopping import FSSH, KB_HARTREE, DiabaticModel

F64 = torch.float64


class _TwoOscillators(DiabaticModel):
    """Two uncoupled diabatic states 1 hartree apart, both ``k |x|^2 / 2`` in two coordinates: no hops,
    the ground state a 2-D harmonic oscillator of angular frequency ``sqrt(k / m) = 0.01`` a.u."""

    n_states, ndim, mass = 2, 2, 2000.0
    k = 2000.0 * 0.01 ** 2

    def diabatic(self, x: torch.Tensor) -> torch.Tensor:
        v = 0.5 * self.k * (x ** 2).sum(-1)
        zero = torch.zeros_like(v)
        return torch.stack([torch.stack([v, zero], -1), torch.stack([zero, v + 1.0], -1)], -2)


@pytest.mark.parametrize("temperature, friction", [(300.0, 5e-3), (1000.0, 2e-3)])
def test_bath_gives_equipartition_on_a_harmonic_oscillator(temperature, friction):
    model = _TwoOscillators()
    b = 400
    fssh = FSSH(model, torch.zeros(b, 2, dtype=F64), torch.zeros(b, 2, dtype=F64), timestep=10.0, seed=1,
                friction=friction, temperature=temperature)
    kt = KB_HARTREE * temperature
    kin, pot = [], []
    relax = int(12 / (friction * 10.0))  # twelve relaxation times from the cold start
    for step in range(relax + 300):
        fssh.step()
        if step >= relax and step % 5 == 0:
            kin.append((fssh.p ** 2 / model.mass).mean())
            pot.append((model.k * fssh.x ** 2).mean())
    assert int(fssh.n_hops.sum()) == 0 and bool((fssh.active == 0).all())
    # ~ 400 x 2 x 60 correlated samples of a chi^2(1) variable: about 1.5 % statistical error
    assert float(torch.stack(kin).mean()) / kt == pytest.approx(1.0, abs=0.06)
    assert float(torch.stack(pot).mean()) / kt == pytest.approx(1.0, abs=0.06)


def test_no_bath_keeps_the_energy():
    """Without friction the same start stays cold: the equipartition above is the bath's doing."""
    model = _TwoOscillators()
    x0 = torch.full((4, 2), 0.3, dtype=F64)
    fssh = FSSH(model, x0, torch.zeros(4, 2, dtype=F64), timestep=10.0, seed=1, temperature=1000.0)
    e0 = fssh.total_energy().clone()
    for _ in range(200):
        fssh.step()
    # velocity Verlet at omega dt = 0.1: the energy fluctuates by ~0.25 %; a bath would take it to 2 k_B T (1/3 of e0)
    torch.testing.assert_close(fssh.total_energy(), e0, rtol=1e-2, atol=0.0)
