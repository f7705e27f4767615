"""OpenMM force fields as :mod:`sims` potentials: alanine dipeptide in vacuum, and peptides (amber14).

:class:`OpenMMPotential` evaluates an ``openmm.System`` (energies kJ/mol and nm converted to eV
and Å) on any number of non-interacting copies of its molecule, the layout of
:class:`sims.enhanced.BiasPathOptimizer`. Its gradient is OpenMM's forces: differentiable once
(forces, MD), not twice. The truncated adjoint needs force Jacobian-vector products, which OpenMM
does not give; :meth:`OpenMMPotential.force_jacobian_product` forms them by central differences of
the forces, ``J v ~ (F(x + eps v) - F(x - eps v)) / (2 eps)`` (error O(eps^2); the Hessian is
symmetric, so ``J^T v = J v``), two force calls per product. Chosen over re-implementing the
amber14 terms in torch because it serves any OpenMM system unchanged; its accuracy is checked
against autograd on a torch potential and against a smaller step in ``tests/sims/test_openmm.py``.

Needs the ``openmm`` extra (``pip install 'matrep[openmm]'``; the wheel ships the amber14 files).
"""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms

from reprs.errors import MissingDependencyError

from .errors import SimsInputError
from .potentials import Potential

__all__ = ["OpenMMPotential", "alanine_dipeptide", "peptide", "adiabatic_map", "lowest_saddle", "PHI", "PSI", "C7EQ", "C7AX"]

#: kJ/mol -> eV and nm -> Å.
_KJ_MOL = 1.0 / 96.48533212331002
_NM = 10.0

#: Backbone dihedrals of :func:`alanine_dipeptide` (0-based atom indices): phi = C(ACE)-N-CA-C, psi = N-CA-C-N(NME).
PHI = (1, 6, 7, 9)
PSI = (6, 7, 9, 16)
#: RDKit's indices of those atoms in ``CC(=O)N[C@@H](C)C(=O)NC`` with hydrogens (heavy atoms first).
_RDKIT_PHI, _RDKIT_PSI = (1, 3, 4, 6), (3, 4, 6, 8)
#: (phi, psi) in degrees of the two vacuum minima the set-up starts from, before minimisation
#: (Bolhuis, Dellago & Chandler, PNAS 97, 5877 (2000), Fig. 1: C7eq near (-83, 73), C7ax near (70, -70)).
C7EQ = (-83.0, 73.0)
C7AX = (70.0, -70.0)


def _openmm():
    try:
        import openmm
        import openmm.app
    except ImportError:
        raise MissingDependencyError("OpenMM is needed here: pip install 'matrep[openmm]' (or openmm)") from None
    return openmm


class _OpenMMEnergy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions: torch.Tensor, wrapper: "OpenMMPotential") -> torch.Tensor:
        energy, forces = wrapper.evaluate(positions.detach().cpu().double().numpy())
        ctx.save_for_backward(torch.as_tensor(forces, dtype=positions.dtype, device=positions.device))
        return torch.tensor(energy, dtype=positions.dtype, device=positions.device)

    @staticmethod
    def backward(ctx, grad_energy):
        if torch.is_grad_enabled():
            raise SimsInputError("OpenMMPotential is differentiable once (its forces are OpenMM's numbers); use "
                                 "force_jacobian_product for derivatives of the forces")
        (forces,) = ctx.saved_tensors
        return -grad_energy * forces, None


class OpenMMPotential(Potential):
    """An ``openmm.System`` of ``n_atoms`` atoms, evaluated on copies: positions ``(k n_atoms, 3)`` Å -> eV.

    Parameters
    ----------
    system : openmm.System
        A system without constraints and without periodic boundaries (each copy in vacuum).
    platform : str
        OpenMM platform ("Reference" is exact double precision; "CPU" is faster).
    """

    cutoff = 0.0

    def __init__(self, system, *, platform: str = "Reference") -> None:
        super().__init__(torch.float64)
        mm = _openmm()
        if system.getNumConstraints():
            raise SimsInputError("the OpenMM system has constraints, which sims dynamics do not apply; build it with "
                                 "constraints=None")
        self.n_atoms = system.getNumParticles()
        self.system = system
        self._context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName(platform))

    def evaluate(self, positions: np.ndarray) -> tuple[float, np.ndarray]:
        """Total energy (eV) and forces (eV/Å) of copies at ``positions`` ``(k n, 3)`` Å."""
        if positions.shape[0] % self.n_atoms:
            raise SimsInputError(f"{positions.shape[0]} atoms are not whole copies of the {self.n_atoms}-atom system")
        if not np.isfinite(positions).all():
            raise SimsInputError("non-finite positions passed to OpenMMPotential")
        energy, forces = 0.0, np.empty_like(positions)
        for c, copy in enumerate(positions.reshape(-1, self.n_atoms, 3)):
            self._context.setPositions(copy / _NM)
            state = self._context.getState(getEnergy=True, getForces=True)
            energy += state.getPotentialEnergy()._value * _KJ_MOL
            forces[c * self.n_atoms:(c + 1) * self.n_atoms] = state.getForces(asNumpy=True)._value * (_KJ_MOL / _NM)
        return energy, forces

    def forward(self, positions, cell=None, numbers=None, pairs=None):
        return _OpenMMEnergy.apply(positions.reshape(-1, 3), self)

    def force_jacobian_product(self, positions: torch.Tensor, vectors: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
        """``J v`` with ``J = dF/dx`` (eV/Å^2) by central differences of the forces, per copy.

        ``eps`` (Å) is the step along each copy's ``v`` normalised to unit length, and the result
        is scaled back, so the accuracy does not depend on the size of ``v``.
        """
        x = positions.detach().reshape(-1, self.n_atoms, 3).double().cpu().numpy()
        v = vectors.detach().reshape(-1, self.n_atoms, 3).double().cpu().numpy()
        norm = np.linalg.norm(v.reshape(v.shape[0], -1), axis=1)[:, None, None]
        unit = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
        plus = self.evaluate((x + eps * unit).reshape(-1, 3))[1]
        minus = self.evaluate((x - eps * unit).reshape(-1, 3))[1]
        jv = (plus - minus).reshape(x.shape) / (2 * eps) * norm
        return torch.as_tensor(jv.reshape(positions.shape), dtype=positions.dtype, device=positions.device)


def alanine_dipeptide(conformation: str = "C7eq", *, platform: str = "Reference") -> tuple[Atoms, OpenMMPotential]:
    """Alanine dipeptide (ACE-ALA-NME, 22 atoms) in vacuum with amber14 (ff14SB), minimised in ``conformation``.

    The molecule is built from SMILES by RDKit (L-alanine), its backbone dihedrals set to
    :data:`C7EQ` or :data:`C7AX`, and the energy minimised with OpenMM's L-BFGS. Atom order: ACE
    ``CH3, C, O`` and its hydrogens, ALA ``N, CA, CB, C, O`` and its hydrogens, NME ``N, C`` and its
    hydrogens; backbone dihedrals
    :data:`PHI`, :data:`PSI`.

    Returns
    -------
    atoms : ase.Atoms
        Minimised positions (Å) and masses (amu).
    potential : OpenMMPotential
        The amber14 energy (no cutoff, no constraints).
    """
    if conformation not in ("C7eq", "C7ax"):
        raise SimsInputError(f"conformation must be 'C7eq' or 'C7ax', got {conformation!r}")
    mm = _openmm()
    app = mm.app
    from rdkit import Chem
    from rdkit.Chem import AllChem, rdMolTransforms

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)N[C@@H](C)C(=O)NC"))
    if AllChem.EmbedMolecule(mol, randomSeed=7) != 0:
        raise SimsInputError("RDKit could not embed alanine dipeptide")
    conf = mol.GetConformer()
    phi, psi = C7EQ if conformation == "C7eq" else C7AX
    rdMolTransforms.SetDihedralDeg(conf, *_RDKIT_PHI, phi)
    rdMolTransforms.SetDihedralDeg(conf, *_RDKIT_PSI, psi)
    residue_of = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 2, 9: 2}
    for atom in mol.GetAtoms():
        if atom.GetSymbol() == "H":
            residue_of[atom.GetIdx()] = residue_of[atom.GetNeighbors()[0].GetIdx()]
    topology = app.Topology()
    chain = topology.addChain()
    residues = [topology.addResidue(name, chain) for name in ("ACE", "ALA", "NME")]
    elements = {"C": app.element.carbon, "N": app.element.nitrogen, "O": app.element.oxygen,
                "H": app.element.hydrogen}
    # OpenMM wants each residue's atoms contiguous: residue by residue, hydrogens after their heavy atoms.
    order = sorted(range(mol.GetNumAtoms()), key=lambda i: (residue_of[i], i))
    new = {old: k for k, old in enumerate(order)}
    assert tuple(new[i] for i in _RDKIT_PHI) == PHI and tuple(new[i] for i in _RDKIT_PSI) == PSI
    atoms = [topology.addAtom(f"{mol.GetAtomWithIdx(i).GetSymbol()}{k}", elements[mol.GetAtomWithIdx(i).GetSymbol()],
                              residues[residue_of[i]]) for k, i in enumerate(order)]
    for bond in mol.GetBonds():
        topology.addBond(atoms[new[bond.GetBeginAtomIdx()]], atoms[new[bond.GetEndAtomIdx()]])
    forcefield = app.ForceField("amber14-all.xml")
    system = forcefield.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False)
    positions = np.asarray(conf.GetPositions())[order] / _NM
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    mm.LocalEnergyMinimizer.minimize(context, 1e-3)
    minimised = context.getState(getPositions=True).getPositions(asNumpy=True)._value * _NM
    masses = [system.getParticleMass(i)._value for i in range(system.getNumParticles())]
    out = Atoms([mol.GetAtomWithIdx(i).GetSymbol() for i in order], positions=minimised, masses=masses)
    return out, OpenMMPotential(system, platform=platform)


#: Implicit-solvent files of OpenMM's amber14 set (Onufriev, Bashford & Case, Proteins 55, 383 (2004): OBC2;
#: Nguyen, Roe & Simmerling, JCTC 9, 2020 (2013): GBn2).
_IMPLICIT = {"obc2": "implicit/obc2.xml", "gbn2": "implicit/gbn2.xml"}


def peptide(sequence: str, *, implicit_solvent: str | None = None, seed: int = 1,
            platform: str = "Reference") -> tuple[Atoms, OpenMMPotential]:
    """A linear peptide (one-letter ``sequence``, charged termini) with amber14 (ff14SB), minimised.

    RDKit builds the heavy atoms from the sequence (``Chem.MolFromSequence``, PDB atom names) and
    embeds them in 3-D (ETKDG, ``seed``; an extended, unfolded chain); OpenMM's ``Modeller`` adds
    the hydrogens of amber14's templates (standard protonation at pH 7, NH3+ and COO- termini), and
    L-BFGS minimises the energy. E.g. chignolin ``"GYDPETGTWG"`` (138 atoms).

    Parameters
    ----------
    sequence : str
        One-letter amino-acid codes.
    implicit_solvent : {None, "obc2", "gbn2"}
        None: vacuum; otherwise the generalised-Born model of that name (amber14's files).
    seed : int
        Seeds RDKit's embedding.

    Returns
    -------
    atoms : ase.Atoms
        Positions (Å), masses (amu), and per-atom ``arrays["residuenumbers"]`` (0-based) and
        ``arrays["atomtypes"]`` (PDB atom names, "CA" for alpha carbons), as ASE's PDB reader gives.
    potential : OpenMMPotential
        No cutoff, no constraints.
    """
    import io

    if not isinstance(sequence, str) or not sequence.isalpha():
        raise SimsInputError(f"sequence must be one-letter amino-acid codes, got {sequence!r}")
    if implicit_solvent is not None and implicit_solvent not in _IMPLICIT:
        raise SimsInputError(f"implicit_solvent must be None or one of {sorted(_IMPLICIT)}, got {implicit_solvent!r}")
    mm = _openmm()
    app = mm.app
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSequence(sequence.upper())
    if mol is None:
        raise SimsInputError(f"RDKit cannot build a peptide from {sequence!r}")
    mol = Chem.AddHs(mol)
    if AllChem.EmbedMolecule(mol, randomSeed=int(seed)) != 0:
        raise SimsInputError(f"RDKit could not embed the peptide {sequence!r}")
    pdb = app.PDBFile(io.StringIO(Chem.MolToPDBBlock(Chem.RemoveHs(mol))))
    files = ["amber14-all.xml"] + ([_IMPLICIT[implicit_solvent]] if implicit_solvent else [])
    forcefield = app.ForceField(*files)
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.addHydrogens(forcefield)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=None,
                                     rigidWater=False)
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName(platform))
    context.setPositions(modeller.positions)
    mm.LocalEnergyMinimizer.minimize(context, 1.0)
    minimised = context.getState(getPositions=True).getPositions(asNumpy=True)._value * _NM
    topo_atoms = list(modeller.topology.atoms())
    masses = [system.getParticleMass(i)._value for i in range(system.getNumParticles())]
    out = Atoms([a.element.symbol for a in topo_atoms], positions=minimised, masses=masses)
    out.arrays["residuenumbers"] = np.array([a.residue.index for a in topo_atoms])
    out.arrays["atomtypes"] = np.array([a.name for a in topo_atoms])
    return out, OpenMMPotential(system, platform=platform)


def adiabatic_map(potential: OpenMMPotential, atoms: Atoms, dihedrals=(PHI, PSI), *, points: int = 36,
                  spring: float = 2000.0) -> tuple[np.ndarray, np.ndarray]:
    """The adiabatic energy map over two dihedrals: at each grid point the energy (eV) minimised
    with both dihedrals restrained there.

    Each point is an L-BFGS minimisation (OpenMM's) under a harmonic torsion restraint of
    ``spring`` kJ/mol/rad^2, started from the neighbouring point's structure; the energy reported
    is the unrestrained one. The grid is ``points`` values per dihedral over [-pi, pi).

    Returns
    -------
    grid : numpy.ndarray
        ``(points,)`` radians.
    energies : numpy.ndarray
        ``(points, points)`` eV, first index the first dihedral.
    """
    mm = _openmm()
    restrained = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(potential.system))
    torsion = mm.CustomTorsionForce("0.5*k*min(dt, 2*pi - dt)^2; dt = abs(theta - theta0); pi = 3.141592653589793")
    torsion.addGlobalParameter("k", float(spring))
    torsion.addPerTorsionParameter("theta0")
    ids = [torsion.addTorsion(*d, [0.0]) for d in dihedrals]
    restrained.addForce(torsion)
    platform = mm.Platform.getPlatformByName("Reference")
    ctx = mm.Context(restrained, mm.VerletIntegrator(0.001), platform)
    free = mm.Context(potential.system, mm.VerletIntegrator(0.001), platform)
    grid = np.linspace(-np.pi, np.pi, int(points), endpoint=False)
    energies = np.empty((grid.size, grid.size))
    row_start = pos = np.asarray(atoms.positions) / _NM
    for a, first in enumerate(grid):
        for b, second in enumerate(grid):
            for i, dihedral, value in zip(ids, dihedrals, (first, second)):
                torsion.setTorsionParameters(i, *dihedral, [value])
            torsion.updateParametersInContext(ctx)
            ctx.setPositions(pos)
            mm.LocalEnergyMinimizer.minimize(ctx, 1.0, 500)
            pos = ctx.getState(getPositions=True).getPositions(asNumpy=True)._value
            if b == 0:
                row_start = pos
            free.setPositions(pos)
            energies[a, b] = free.getState(getEnergy=True).getPotentialEnergy()._value * _KJ_MOL
        pos = row_start
    return grid, energies


def lowest_saddle(energies: np.ndarray, start: tuple[int, int], end: tuple[int, int]) -> tuple[int, int]:
    """Grid index of the saddle of the lowest path between cells ``start`` and ``end`` of a periodic map.

    The minimax (bottleneck) path: cells are added in order of energy, joined to added neighbours
    (four-connected, periodic) by union-find, until ``start`` and ``end`` are connected; the cell
    that connects them is the highest point of the lowest path.
    """
    n, m = energies.shape
    parent = np.arange(n * m)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    added = np.zeros(n * m, dtype=bool)
    target = (start[0] * m + start[1], end[0] * m + end[1])
    for k in np.argsort(energies, axis=None):
        a, b = divmod(int(k), m)
        added[k] = True
        for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            q = ((a + da) % n) * m + (b + db) % m
            if added[q]:
                parent[root(int(k))] = root(q)
        if added[target[0]] and added[target[1]] and root(target[0]) == root(target[1]):
            return a, b
    raise SimsInputError("start and end are not connected on the map")
