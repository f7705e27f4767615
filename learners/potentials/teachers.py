"""Pretrained universal potentials as teachers for materials: structures and configs for their MD.

A *teacher* labels configurations with energies and forces in place of DFT. CHGNet (Deng et al.,
Nat. Mach. Intell. 5, 1031 (2023); trained on the Materials Project trajectories, MPtrj, PBE/PBE+U)
ships its weights inside its wheel (``chgnet/pretrained/0.3.0``) and runs offline on CPU, so
``matrep simulate`` drives it through the generic ``kind = "ase"`` potential of
:mod:`sims.generate` (``calculator = "learners.potentials.teachers:chgnet_calculator"``, CHGNet's
calculator with autograd switched on); no plugin is needed. :func:`teacher_config` writes such a
config. SevenNet-0 (also in its wheel) is the second teacher, :func:`sevennet_calculator`.

The material is the lithium superionic conductor Li10GeP2S12 (LGPS; Kamaya et al., Nat. Mater. 10,
682 (2011)). pymatgen bundles its experimental, partially occupied cell (P4_2/nmc, 58 sites:
Li on 16h and 8f at 69 % and 64 %, Ge/P mixed on 4d) as ``pymatgen/util/structures/Li10GeP2S12.json``;
:func:`lgps_cell` orders it into the 50-atom cell Li20Ge2P4S24 (two formula units).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from pymatgen.core import Structure

from reprs.errors import InputError

#: Import paths of :func:`chgnet_calculator` and :func:`sevennet_calculator`, for
#: ``[potential] kind = "ase"`` configs.
CHGNET_CALCULATOR = "learners.potentials.teachers:chgnet_calculator"
SEVENNET_CALCULATOR = "learners.potentials.teachers:sevennet_calculator"


def chgnet_calculator(*, use_device: str = "cpu", **kwargs) -> Any:
    """The pretrained CHGNet 0.3.0 as an ASE calculator, its weights read from the ``chgnet`` wheel.

    Keyword arguments go to ``chgnet.model.dynamics.CHGNetCalculator`` (``model``,
    ``stress_weight``, ...). CHGNet computes in float32; its energies are eV (total, not per
    atom), forces eV/Å, stress from ``stress_weight`` (default: eV/Å^3 as ASE expects).
    """
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(use_device=use_device, **kwargs)


def sevennet_calculator(model: str = "7net-0", *, device: str = "cpu", **kwargs) -> Any:
    """A pretrained SevenNet (Park et al., J. Chem. Theory Comput. 20, 4857 (2024)) as an ASE calculator.

    ``model``: a checkpoint shipped in the ``sevenn`` wheel ("7net-0": SevenNet-0 of 11 July 2024,
    trained on MPtrj like CHGNet; "7net-l3i5", ...). Keyword arguments go to
    ``sevenn.calculator.SevenNetCalculator``. Energies eV, forces eV/Å, float32.
    """
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator(model, device=device, **kwargs)


def lgps_disordered() -> Structure:
    """pymatgen's bundled partially occupied Li10GeP2S12 cell (``pymatgen.core.Structure``, 58 sites)."""
    import pymatgen.util

    return Structure.from_file(Path(pymatgen.util.__file__).parent / "structures" / "Li10GeP2S12.json")


def lgps_cell(seed: int = 0, *, min_distance: float = 2.0) -> Atoms:
    """The ordered 50-atom Li20Ge2P4S24 cell from pymatgen's disordered Li10GeP2S12.

    Each element keeps ``round(total occupancy)`` atoms (20.2 Li -> 20, 2.06 Ge -> 2, 3.94 P -> 4,
    24 S): charge neutral (20 Li+, 2 Ge4+, 4 P5+, 24 S2-). Fully occupied sites stay; the others
    are filled one atom at a time (Li, then Ge, then P), each on a free site that carries the
    element, drawn with probability proportional to its occupancy (``numpy.random.default_rng(seed)``),
    among sites at least ``min_distance`` from every atom placed so far. The distance rule matters:
    the 16 partial Li 16h sites form pairs 1.73 Å apart (alternative positions, not occupied
    together; Li-Li in Li2S is 2.85 Å), so they hold 8 Li, one per pair, and the other 8 partial Li
    go to the 8f sites (16h 50 %, 8f 100 % instead of the experimental 69 % and 64 %; the total is
    kept). The result is one of 2^8 x 6 orderings, not the lowest-energy one (pymatgen's
    electrostatic ``OrderDisorderedStructureTransformation`` ranks them); to seed MD a short
    equilibration on the teacher suffices.

    Parameters
    ----------
    seed : int
        Seed of the site assignment (each seed a reproducible ordering).
    min_distance : float
        Smallest distance (Å) of an atom on a partial site to any other atom.

    Returns
    -------
    ase.Atoms
        50 atoms (Li, Ge, P, S in that order), periodic, in the experimental tetragonal cell
        (a = 8.694 Å, c = 12.599 Å).
    """
    disordered = lgps_disordered()
    occupancy = [{el.symbol: occ for el, occ in site.species.items()} for site in disordered]
    distances = disordered.distance_matrix
    symbols = {i: next(iter(occ)) for i, occ in enumerate(occupancy) if len(occ) == 1 and next(iter(occ.values())) == 1}
    missing = {el: int(round(disordered.composition[el])) - sum(s == el for s in symbols.values()) for el in ("Li", "Ge", "P", "S")}
    rng = np.random.default_rng(seed)
    for element, count in missing.items():
        for _ in range(count):
            placed = list(symbols)
            weights = np.array([occ.get(element, 0.0) if i not in symbols else 0.0
                                for i, occ in enumerate(occupancy)])
            weights[(distances[:, placed] < min_distance).any(axis=1)] = 0.0
            if not weights.any():
                raise InputError(f"no free site for {element} at >= {min_distance} Å from the atoms placed")
            symbols[int(rng.choice(len(weights), p=weights / weights.sum()))] = element
    rank = {"Li": 0, "Ge": 1, "P": 2, "S": 3}
    keep = sorted(symbols, key=lambda i: (rank[symbols[i]], i))
    # The bundled lattice matrix is -diag(a, a, c), a left-handed cell; the cell of the same
    # parameters in ASE's standard orientation with the same fractional coordinates is the
    # inverted structure (distances unchanged; LGPS is centrosymmetric anyway).
    lattice = disordered.lattice
    return Atoms(symbols=[symbols[i] for i in keep], scaled_positions=disordered.frac_coords[keep] % 1.0,
                 cell=[*lattice.abc, *lattice.angles], pbc=True)


def teacher_config(structure: str, temperature: float, seed: int, out: str, *, steps: int, sample_every: int,
                   equilibrate: int, timestep: float = 2.0, friction: float = 0.02,
                   calculator: str = CHGNET_CALCULATOR) -> dict[str, Any]:
    """A :func:`sims.generate.generate` config: Langevin MD of the structure file ``structure`` on a teacher.

    ``equilibrate`` unsampled steps, then ``steps`` sampled every ``sample_every`` steps, at
    ``temperature`` (K), time step ``timestep`` (fs; 2 fs is usual for Li sulfides, Li being the
    lightest atom) and friction ``friction`` (1/fs), frames written to ``out``. The potential is
    the generic ASE kind with ``calculator`` (default CHGNet; :data:`SEVENNET_CALCULATOR` for
    SevenNet-0), pretrained weights from the wheel (nothing is downloaded), on the CPU.
    """
    stage = {"ensemble": "langevin", "timestep": timestep, "temperature": temperature, "friction": friction}
    return {"seed": seed, "system": {"builder": "file", "path": structure},
            "potential": {"kind": "ase", "calculator": calculator},
            "md": {"dtype": "float64"},
            "stages": [dict(stage, steps=equilibrate, sample_every=0),
                       dict(stage, steps=steps, sample_every=sample_every)],
            "output": {"path": out, "checkpoint_every": 500}}
