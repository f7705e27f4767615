"""Molecular graphs: atoms as nodes, covalent bonds as edges, one-hot chemistry as features.

The atom and bond descriptors are those of Chemprop's directed MPNN (Yang et al. 2019), which
became the common vocabulary of 2-D molecular GNNs: element, degree (bonds to hydrogens included),
formal charge, chirality tag, attached hydrogens and hybridisation as one-hot blocks with an
"other" slot, aromaticity, ring membership and mass / 100; bond type, stereo, conjugation and ring
membership.
Categories outside a block's list go to its "other" slot, so no molecule is rejected for an
unusual atom, and the vector width never depends on the data.

References
----------
K. Yang et al., "Analyzing Learned Molecular Representations for Property Prediction",
J. Chem. Inf. Model. 59, 3370 (2019) (the atom and bond features).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from reprs.convert import float_dtype
from reprs.errors import InputError
from reprs.featurizers.base import Featurizer

__all__ = ["MolecularGraph", "ATOM_FEATURES", "BOND_FEATURES"]

#: Atom feature blocks: name -> categories (each block also has an "other" slot).
ATOM_FEATURES: dict[str, tuple] = {
    "element": ("H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Br", "I"),
    "degree": (0, 1, 2, 3, 4, 5),
    "formal_charge": (-2, -1, 0, 1, 2),
    "chirality": ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW"),
    "num_hs": (0, 1, 2, 3, 4),
    "hybridization": ("S", "SP", "SP2", "SP3", "SP3D", "SP3D2"),
}
#: Bond feature blocks: name -> categories ("stereo" and "type" also have an "other" slot).
BOND_FEATURES: dict[str, tuple] = {
    "type": ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC"),
    "stereo": ("STEREONONE", "STEREOANY", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS"),
}


def _one_hot(values: list, categories: tuple) -> np.ndarray:
    """Rows of one-hot codes over ``categories`` plus a last "other" column."""
    lookup = {c: i for i, c in enumerate(categories)}
    out = np.zeros((len(values), len(categories) + 1))
    out[np.arange(len(values)), [lookup.get(v, len(categories)) for v in values]] = 1.0
    return out


def _labels(features: dict[str, tuple]) -> list[str]:
    return [f"{name}={c}" for name, cats in features.items() for c in (*cats, "other")]


class MolecularGraph(Featurizer):
    """Graph of a molecule: nodes = atoms, edges = bonds, Chemprop-style one-hot features.

    Parameters
    ----------
    hydrogens : bool, default False
        Make every hydrogen a node (``Chem.AddHs``). By default hydrogens are implicit and counted
        in each heavy atom's ``num_hs`` block, the usual choice for 2-D property models; hydrogen
        atoms of a ``Mol`` input are then removed (``Chem.RemoveHs``), so a molecule gives one
        graph whether its hydrogens are atoms or not.
    output : {"networkx", "pyg"}, default "networkx"
        ``"networkx"``: an undirected ``networkx.Graph``, nodes numbered as RDKit's atoms, with
        node attributes ``"label"`` (element symbol), ``"x"``, ``"z"`` (atomic number), edge
        attributes ``"label"`` (bond type), ``"x"``, and graph attribute ``"name"`` (canonical
        SMILES). ``"pyg"``: a ``torch_geometric.data.Data`` with ``x``, ``z``, ``edge_index``
        (each bond in both directions, PyG's convention), ``edge_attr`` and ``smiles``.
    dtype : {"float32", "float64"} or torch.dtype, default "float32"
        Float type of the ``"pyg"`` output's ``x`` and ``edge_attr`` (the networkx output keeps
        float64 arrays); a float64 model needs float64 inputs (:class:`learners.Trainer` refuses
        float32 ones).

    Notes
    -----
    ``n_features`` and ``feature_labels`` describe the edge features, as for
    :class:`~reprs.featurizers.CrystalGraph`; ``node_feature_labels`` the node features. A
    one-atom molecule gives a graph without edges.

    References
    ----------
    K. Yang et al., J. Chem. Inf. Model. 59, 3370 (2019).

    Example
    -------
    >>> g = MolecularGraph().featurize("CC(=O)O")
    >>> g.number_of_nodes(), g.number_of_edges(), g.nodes[2]["label"], g.edges[1, 2]["label"]
    (4, 3, 'O', 'DOUBLE')
    """

    input_kind = "molecule"
    fixed_length = False
    #: here a hyperparameter, the float type of the PyG output (the base class's ``dtype`` is the numpy
    #: type of array outputs, which a graph featurizer has none of)
    dtype: Any = "float32"

    def __init__(self, *, hydrogens: bool = False, output: Literal["networkx", "pyg"] = "networkx",
                 dtype: Any = "float32"):
        self.hydrogens = hydrogens
        self.output = output
        self.dtype = dtype
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.hydrogens, bool):
            raise InputError(f"hydrogens must be True or False, got {self.hydrogens!r}")
        if self.output not in ("networkx", "pyg"):
            raise InputError(f"output must be 'networkx' or 'pyg', got {self.output!r}")
        float_dtype(self.dtype)

    @property
    def n_features(self) -> int:
        return sum(len(c) + 1 for c in BOND_FEATURES.values()) + 2

    def feature_labels(self) -> list[str]:
        """Edge-feature labels: bond type and stereo one-hots, then conjugated and in-ring flags."""
        return [*_labels(BOND_FEATURES), "conjugated", "in_ring"]

    def node_feature_labels(self) -> list[str]:
        """Node-feature labels: the one-hot blocks of :data:`ATOM_FEATURES`, aromatic, in-ring, mass/100."""
        return [*_labels(ATOM_FEATURES), "aromatic", "in_ring", "mass/100"]

    def atom_features(self, mol: Any) -> np.ndarray:
        """Node features of an RDKit ``Mol``, shape ``(n_atoms, len(node_feature_labels()))``."""
        atoms = list(mol.GetAtoms())
        blocks = {
            "element": [a.GetSymbol() for a in atoms],
            "degree": [a.GetTotalDegree() for a in atoms],
            "formal_charge": [a.GetFormalCharge() for a in atoms],
            "chirality": [str(a.GetChiralTag()) for a in atoms],
            "num_hs": [a.GetTotalNumHs() for a in atoms],
            "hybridization": [str(a.GetHybridization()) for a in atoms],
        }
        flags = np.array([[a.GetIsAromatic(), a.IsInRing(), a.GetMass() / 100.0] for a in atoms], dtype=float)
        return np.hstack([*(_one_hot(blocks[k], cats) for k, cats in ATOM_FEATURES.items()), flags])

    def bond_features(self, mol: Any) -> np.ndarray:
        """Edge features of an RDKit ``Mol``'s bonds, shape ``(n_bonds, n_features)``."""
        bonds = list(mol.GetBonds())
        blocks = {"type": [str(b.GetBondType()) for b in bonds], "stereo": [str(b.GetStereo()) for b in bonds]}
        flags = np.array([[b.GetIsConjugated(), b.IsInRing()] for b in bonds], dtype=float).reshape(-1, 2)
        return np.hstack([*(_one_hot(blocks[k], cats) for k, cats in BOND_FEATURES.items()), flags])

    def _featurize(self, mol: Any) -> Any:
        from rdkit import Chem

        # A Mol may hold its hydrogens as atoms (Chem.AddHs, an embedded conformer, an SDF read
        # with removeHs=False): without RemoveHs they stayed nodes under hydrogens=False, and every
        # heavy atom's num_hs read 0, unlike the same molecule given as SMILES.
        heavy = Chem.RemoveHs(mol)
        name = Chem.MolToSmiles(heavy)
        # AddHs keeps the atoms already there in their order (node i stays atom i of the input)
        mol = Chem.AddHs(mol) if self.hydrogens else heavy
        node_x, edge_x = self.atom_features(mol), self.bond_features(mol)
        z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
        pairs = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 2)
        if self.output == "pyg":
            import torch
            from torch_geometric.data import Data

            both = np.concatenate([pairs, pairs[:, ::-1]]).T
            dtype = float_dtype(self.dtype)
            return Data(
                x=torch.as_tensor(node_x, dtype=dtype),
                z=torch.as_tensor(z),
                edge_index=torch.as_tensor(np.ascontiguousarray(both)),
                edge_attr=torch.as_tensor(np.concatenate([edge_x, edge_x]), dtype=dtype),
                smiles=name,
            )
        import networkx as nx

        graph = nx.Graph(name=name)
        graph.add_nodes_from(
            (i, {"label": a.GetSymbol(), "x": node_x[i], "z": int(z[i])}) for i, a in enumerate(mol.GetAtoms())
        )
        graph.add_edges_from(
            (int(i), int(j), {"label": str(b.GetBondType()), "x": edge_x[k]})
            for k, ((i, j), b) in enumerate(zip(pairs, mol.GetBonds()))
        )
        return graph
