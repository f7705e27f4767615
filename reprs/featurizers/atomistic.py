"""Atomistic descriptors from DScribe behind the matrep featurizer API.

SOAP, ACSF, MBTR, LMBTR, Coulomb matrix, sine matrix and Ewald sum matrix. Each class takes
DScribe's own parameter names (``species``, ``r_cut``, ``n_max``, ``l_max``, ``geometry``, ``grid``,
``weighting``, ``n_atoms_max``, ...), builds the DScribe descriptor once per parameter set and calls
its ``create``, so values equal direct DScribe calls on the same input. Inputs may be ``ase.Atoms``
or pymatgen ``Structure``/``Molecule`` (converted with ``AseAtomsAdaptor``). Output is always a
dense float64 numpy array.

References
----------
L. Himanen et al., "DScribe: Library of descriptors for machine learning in materials science",
Comput. Phys. Commun. 247, 106949 (2020); J. Laakso et al., J. Chem. Phys. 158, 234802 (2023).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar, Literal, Mapping, Sequence

import numpy as np

from reprs.atoms import as_atoms
from reprs.config import content_hash
from reprs.errors import InputError, MissingCellError, ResourceLimitError
from reprs.featurizers.base import Featurizer

__all__ = [
    "SOAP",
    "ACSF",
    "MBTR",
    "LMBTR",
    "CoulombMatrix",
    "SineMatrix",
    "EwaldSumMatrix",
    "mbtr_memory_estimate",
]


# DScribe 2.1 calls ASE's deprecated Atoms.get_calculator() on every structure; the warning is
# about DScribe's code, not the user's, and a per-call catch_warnings would cost more than a small
# Coulomb matrix. Only that message from DScribe's module is silenced.
warnings.filterwarnings("ignore", message="Please use atoms.calc", category=FutureWarning, module=r"dscribe\.")


def _check_species(species: Any) -> None:
    if isinstance(species, (str, bytes)) or not isinstance(species, Sequence) or len(species) == 0:
        raise InputError(
            f"species must be a non-empty list of chemical symbols or atomic numbers, got {species!r}"
        )


def _require_cell(atoms: Any, what: str) -> None:
    """:func:`reprs.atoms.as_atoms`'s periodic-cell check, naming the featurizer that needs it."""
    try:
        as_atoms(atoms, require_cell=True)
    except MissingCellError as err:
        raise MissingCellError(f"{what} needs a periodic structure: {err}") from None


def _wrapped(atoms: Any) -> Any:
    """``atoms``, or a copy with every atom moved into the cell if some lie outside it.

    DScribe 2.1's periodic SOAP, ACSF, MBTR and LMBTR build their periodic images as if every atom
    lay in the cell: an atom outside it (unwrapped MD positions, which :mod:`sims.md` keeps) gets
    wrong values, for NaCl (5.6 A cell, r_cut 5 A) ACSF off by 0.1 % of its largest value for an
    atom 0.6 cell lengths out and by 12 % at 0.9, SOAP by 1e-5 at one cell length and 40 % at two.
    Wrapping is exact for a periodic structure and keeps the atom order.
    """
    scaled = atoms.cell.scaled_positions(atoms.positions)
    if ((scaled >= 0.0) & (scaled < 1.0)).all():
        return atoms
    atoms = atoms.copy()  # never modify the caller's object (reprs.atoms.as_atoms returns it as is)
    atoms.wrap()
    return atoms


class _DScribeFeaturizer(Featurizer):
    """Shared plumbing: build the DScribe object once, call ``create``, translate its errors."""

    input_kind = "atoms"
    _dscribe_name: ClassVar[str]

    def _dscribe_kwargs(self) -> dict[str, Any]:
        """Arguments of the DScribe constructor."""
        raise NotImplementedError

    def _create_kwargs(self) -> dict[str, Any]:
        """Extra arguments of DScribe's ``create`` (Ewald's accuracy and cutoffs)."""
        return {}

    def _needs_cell(self) -> bool:
        return bool(getattr(self, "periodic", False))

    def _build(self):
        import dscribe.descriptors

        cls = getattr(dscribe.descriptors, self._dscribe_name)
        try:
            return cls(**self._dscribe_kwargs())
        except (ValueError, TypeError, KeyError) as err:
            raise InputError(f"invalid {type(self).__name__} parameters: {err}") from err

    def _descriptor(self):
        # A DScribe object costs milliseconds to build (SOAP orthonormalises its radial basis), more
        # than a small system's descriptor; it is memoised per parameter set. The memo never
        # changes results, and a parameter changed by plain assignment invalidates it. It travels
        # with the featurizer to worker processes: SOAP's basis, rebuilt there with another BLAS
        # thread count, would differ in the last digits (1e-9) and break parallel == serial.
        # The key is exact: the repr of an array parameter rounds to 8 digits (and elides long ones),
        # so a change in the 9th digit kept the descriptor of the old value.
        key = content_hash(self.get_params())
        cached = self.__dict__.get("_memo")
        if cached is None or cached[0] != key:
            cached = (key, self._build())
            self.__dict__["_memo"] = cached
        return cached[1]

    def _validate(self) -> None:
        self._descriptor()

    @property
    def n_features(self) -> int:
        return int(self._descriptor().get_number_of_features())

    def _featurize(self, atoms: Any) -> np.ndarray:
        if self._needs_cell():
            _require_cell(atoms, type(self).__name__)
        if getattr(self, "periodic", False):
            atoms = _wrapped(atoms)
        elif hasattr(self, "periodic") and np.any(getattr(atoms, "pbc", False)):
            # DScribe's default, kept: but a bulk crystal described as its one cell in vacuum differs
            # by up to 83 % (inner-averaged SOAP of Si), which a user of a periodic structure rarely means
            warnings.warn(f"{type(self).__name__}(periodic=False) describes this structure as an isolated "
                          f"cluster although its pbc is {np.asarray(atoms.pbc).tolist()}: pass periodic=True "
                          "for a bulk crystal (needs a 3-D cell); a slab or wire has no periodic mode here",
                          UserWarning, stacklevel=3)
        descriptor = self._descriptor()
        try:
            out = descriptor.create(atoms, **self._create_kwargs())
        except ValueError as err:
            raise InputError(f"{type(self).__name__}: {err}") from err
        return np.asarray(out, dtype=np.float64)

    def _species_symbols(self) -> list[str]:
        """The species in DScribe's internal order (increasing atomic number)."""
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in self._descriptor()._atomic_numbers]

    def _block_labels(self, blocks: list[tuple[str, slice]], prefix: str) -> list[str]:
        """Labels ``{prefix}_{block}_{k}`` from DScribe's ``get_location`` slices."""
        labels = [f"{prefix}_{i}" for i in range(self.n_features)]
        for name, where in blocks:
            for k, i in enumerate(range(*where.indices(self.n_features))):
                labels[i] = f"{prefix}_{name}_{k}"
        return labels


class SOAP(_DScribeFeaturizer):
    """Smooth Overlap of Atomic Positions power spectrum (DScribe ``SOAP``).

    Parameters
    ----------
    species : list of str or int
        Every element that can occur in the inputs.
    r_cut : float, default 5.0
        Cutoff radius (Angstrom).
    n_max : int, default 8
        Number of radial basis functions.
    l_max : int, default 6
        Maximum degree of spherical harmonics.
    sigma : float, default 1.0
        Width of the atomic Gaussians (Angstrom).
    rbf : {"gto", "polynomial"}, default "gto"
        Radial basis.
    weighting : dict or None
        DScribe's radial weighting (e.g. ``{"function": "poly", "r0": 1, "c": 1, "m": 1}``).
    average : {"off", "inner", "outer"}, default "off"
        ``"off"``: one row per atom (``featurize`` returns ``(n_atoms, n_features)``);
        ``"inner"``/``"outer"``: one vector per structure, averaged before/after the power spectrum.
    compression : dict or None
        DScribe's compression (``{"mode": "off" | "mu2" | "mu1nu1" | "crossover"}``).
    periodic : bool, default False
        Use periodic images (needs a 3-D cell). False on a structure with periodic directions
        describes it as an isolated cluster, with a warning.

    References
    ----------
    A. P. Bartok, R. Kondor, G. Csanyi, Phys. Rev. B 87, 184115 (2013).

    Example
    -------
    >>> from ase.build import bulk
    >>> SOAP(species=["Si"], r_cut=4.0, n_max=4, l_max=4, periodic=True,
    ...      average="inner").featurize(bulk("Si")).shape
    (50,)
    """

    _dscribe_name = "SOAP"

    def __init__(
        self,
        *,
        species: Sequence[str | int],
        r_cut: float = 5.0,
        n_max: int = 8,
        l_max: int = 6,
        sigma: float = 1.0,
        rbf: Literal["gto", "polynomial"] = "gto",
        weighting: Mapping[str, Any] | None = None,
        average: Literal["off", "inner", "outer"] = "off",
        compression: Mapping[str, Any] | None = None,
        periodic: bool = False,
    ):
        self.species = species
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.rbf = rbf
        self.weighting = weighting
        self.average = average
        self.compression = compression
        self.periodic = periodic
        self._validate()

    @property
    def fixed_length(self) -> bool:  # type: ignore[override]
        return self.average != "off"

    def _dscribe_kwargs(self) -> dict[str, Any]:
        _check_species(self.species)
        kwargs = dict(
            species=list(self.species),
            r_cut=self.r_cut,
            n_max=self.n_max,
            l_max=self.l_max,
            sigma=self.sigma,
            rbf=self.rbf,
            weighting=None if self.weighting is None else dict(self.weighting),
            average=self.average,
            periodic=self.periodic,
        )
        if self.compression is not None:
            kwargs["compression"] = dict(self.compression)
        return kwargs

    def feature_labels(self) -> list[str]:
        """``soap_{A}-{B}_{k}``: k-th feature of the species-pair block (A, B); uncompressed only."""
        descriptor = self._descriptor()
        if descriptor.compression["mode"] != "off":
            return [f"soap_{i}" for i in range(self.n_features)]
        symbols = self._species_symbols()
        blocks = [
            (f"{a}-{b}", descriptor.get_location((a, b)))
            for i, a in enumerate(symbols)
            for b in symbols[i:]
        ]
        return self._block_labels(blocks, "soap")


class ACSF(_DScribeFeaturizer):
    """Behler-Parrinello atom-centred symmetry functions (DScribe ``ACSF``); one row per atom.

    Parameters
    ----------
    species : list of str or int
        Every element that can occur in the inputs.
    r_cut : float, default 6.0
        Cutoff radius (Angstrom) of the cosine cutoff function.
    g2_params : list of [eta, R_s] or None
        Radial G2 functions: eta (1/Angstrom^2), shift R_s (Angstrom).
    g3_params : list of kappa or None
        Radial G3 functions: kappa (1/Angstrom).
    g4_params, g5_params : list of [eta, zeta, lambda] or None
        Angular G4/G5 functions.
    periodic : bool, default False
        Use periodic images (needs a 3-D cell). False on a structure with periodic directions
        describes it as an isolated cluster, with a warning.

    References
    ----------
    J. Behler, J. Chem. Phys. 134, 074106 (2011), Eqs. 5-9.
    """

    _dscribe_name = "ACSF"
    fixed_length = False

    def __init__(
        self,
        *,
        species: Sequence[str | int],
        r_cut: float = 6.0,
        g2_params: Sequence[Sequence[float]] | None = None,
        g3_params: Sequence[float] | None = None,
        g4_params: Sequence[Sequence[float]] | None = None,
        g5_params: Sequence[Sequence[float]] | None = None,
        periodic: bool = False,
    ):
        self.species = species
        self.r_cut = r_cut
        self.g2_params = g2_params
        self.g3_params = g3_params
        self.g4_params = g4_params
        self.g5_params = g5_params
        self.periodic = periodic
        self._validate()

    def _dscribe_kwargs(self) -> dict[str, Any]:
        _check_species(self.species)
        return dict(
            species=list(self.species),
            r_cut=self.r_cut,
            g2_params=self.g2_params,
            g3_params=self.g3_params,
            g4_params=self.g4_params,
            g5_params=self.g5_params,
            periodic=self.periodic,
        )

    def feature_labels(self) -> list[str]:
        """Labels in DScribe's order (read from its C++ ``acsf.cpp``).

        For each neighbour species B (increasing Z): ``G1_B``, ``G2_B_eta=..._rs=...``,
        ``G3_B_kappa=...``; then for each species pair (B, C) with index(B) >= index(C):
        ``G4_B-C_eta=..._zeta=..._lambda=...`` and ``G5_...``.
        """
        symbols = self._species_symbols()
        g2 = [] if self.g2_params is None else np.asarray(self.g2_params, dtype=float).reshape(-1, 2)
        g3 = [] if self.g3_params is None else np.asarray(self.g3_params, dtype=float).ravel()
        g4 = [] if self.g4_params is None else np.asarray(self.g4_params, dtype=float).reshape(-1, 3)
        g5 = [] if self.g5_params is None else np.asarray(self.g5_params, dtype=float).reshape(-1, 3)
        labels: list[str] = []
        for b in symbols:
            labels.append(f"G1_{b}")
            labels += [f"G2_{b}_eta={eta:g}_rs={rs:g}" for eta, rs in g2]
            labels += [f"G3_{b}_kappa={kappa:g}" for kappa in g3]
        for j, b in enumerate(symbols):
            for c in symbols[: j + 1]:
                for name, params in (("G4", g4), ("G5", g5)):
                    labels += [f"{name}_{b}-{c}_eta={e:g}_zeta={z:g}_lambda={lam:g}" for e, z, lam in params]
        return labels


def _weighting_cutoff(k: int, weighting: Mapping[str, Any] | None) -> float | None:
    """Radius (Angstrom) DScribe's MBTR/LMBTR uses to build its neighbour matrices, as in ``mbtr.py``."""
    if k == 1 or weighting is None:
        return None
    function = weighting.get("function")
    if function == "exp":
        threshold = weighting["threshold"]
        if weighting.get("r_cut") is not None:
            return float(weighting["r_cut"])
        # k=3 triplets span two legs, so DScribe halves the decay length
        factor = 0.5 if k == 3 else 1.0
        return factor * -math.log(threshold) / weighting["scale"]
    if function == "inverse_square":
        return float(weighting["r_cut"])
    if function == "smooth_cutoff":
        return float(weighting["r_cut"]) * (2.0 if k == 3 else 1.0)
    return None


def mbtr_memory_estimate(atoms: Any, k: int, weighting: Mapping[str, Any] | None, periodic: bool) -> tuple[float, int]:
    """Upper estimate of the memory DScribe's MBTR/LMBTR needs for one structure.

    DScribe builds a dense ``n x n`` float64 distance matrix (plus an adjacency list of the same
    size) over the periodically extended system: all images of the atoms within the weighting
    cutoff of any atom of the cell. The extended system is bounded by the cell grown by the cutoff
    on every face, ``n_ext <= n_atoms * prod(1 + 2 r_cut / h_i)`` with ``h_i`` the cell heights.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    k : int
        MBTR degree (1, 2 or 3).
    weighting : dict or None
        DScribe weighting, which fixes the cutoff.
    periodic : bool
        Whether images are used.

    Returns
    -------
    bytes : float
        Estimated peak memory, ``16 * (n_ext + n_atoms)^2`` bytes. Calibrated on diamond-Si
        supercells of 8 to 216 atoms with exp weighting (cutoffs 3.5 to 13.8 A): DScribe 2.1.2's
        measured peak (max RSS growth) was 0.55 to 0.6 times this estimate.
    n_ext : int
        Estimated size of the extended system.
    """
    n_atoms = len(atoms)
    if k == 1:
        return 0.0, n_atoms
    r_cut = _weighting_cutoff(k, weighting)
    n_ext = float(n_atoms)
    if periodic and r_cut is not None:
        cell = np.asarray(atoms.cell)
        volume = abs(np.linalg.det(cell))
        normals = np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]])
        heights = volume / np.linalg.norm(normals, axis=1)
        grow = np.where(atoms.pbc, 1.0 + 2.0 * r_cut / heights, 1.0)
        n_ext = n_atoms * float(np.prod(grow))
    return 16.0 * (n_ext + n_atoms) ** 2, int(math.ceil(n_ext))


class _MBTRBase(_DScribeFeaturizer):
    """MBTR and LMBTR share parameters, validation and the memory guard."""

    def __init__(
        self,
        *,
        species: Sequence[str | int],
        geometry: Mapping[str, Any],
        grid: Mapping[str, Any],
        weighting: Mapping[str, Any] | None = None,
        normalize_gaussians: bool = True,
        normalization: str = "none",
        periodic: bool = False,
        max_memory_gb: float = 2.0,
    ):
        self.species = species
        self.geometry = geometry
        self.grid = grid
        self.weighting = weighting
        self.normalize_gaussians = normalize_gaussians
        self.normalization = normalization
        self.periodic = periodic
        self.max_memory_gb = max_memory_gb
        self._validate()

    def _validate(self) -> None:
        limit = self.max_memory_gb
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise InputError(f"max_memory_gb must be a positive number, got {limit!r}")
        super()._validate()

    def _dscribe_kwargs(self) -> dict[str, Any]:
        _check_species(self.species)
        for name in ("geometry", "grid"):
            if not isinstance(getattr(self, name), Mapping):
                raise InputError(f"{name} must be a dict as in DScribe, got {getattr(self, name)!r}")
        return dict(
            species=list(self.species),
            geometry=dict(self.geometry),
            grid=dict(self.grid),
            weighting=None if self.weighting is None else dict(self.weighting),
            normalize_gaussians=self.normalize_gaussians,
            normalization=self.normalization,
            periodic=self.periodic,
        )

    def _featurize(self, atoms: Any) -> np.ndarray:
        if self.periodic:
            _require_cell(atoms, type(self).__name__)
        k = self._descriptor().k
        need, n_ext = mbtr_memory_estimate(atoms, k, self.weighting, self.periodic)
        if need > self.max_memory_gb * 1e9:
            r_cut = _weighting_cutoff(k, self.weighting)
            reach = "" if r_cut is None else f" within {r_cut:.1f} A"
            raise ResourceLimitError(
                f"{type(self).__name__} (k={k}) would need about {need / 1e9:.1f} GB for this "
                f"structure of {len(atoms)} atoms (extended system of ~{n_ext} atoms{reach}), "
                f"above max_memory_gb={self.max_memory_gb}; raise max_memory_gb, "
                "shorten the weighting cutoff (larger 'scale' or 'threshold') or use a smaller cell"
            )
        return super()._featurize(atoms)


class MBTR(_MBTRBase):
    """Many-body tensor representation of a whole structure (DScribe ``MBTR``).

    Parameters
    ----------
    species : list of str or int
        Every element that can occur in the inputs.
    geometry : dict
        ``{"function": ...}``: ``"atomic_number"`` (k=1), ``"distance"``/``"inverse_distance"``
        (k=2), ``"angle"``/``"cosine"`` (k=3).
    grid : dict
        ``{"min", "max", "n", "sigma"}`` of the broadened distribution (units of the geometry
        function: Angstrom, 1/Angstrom, degrees).
    weighting : dict or None
        ``{"function": "unity" | "exp" | "inverse_square" | "smooth_cutoff", ...}`` as in DScribe;
        required for periodic systems.
    normalize_gaussians : bool, default True
        Normalise the broadening Gaussians to unit area.
    normalization : {"none", "l2", "n_atoms", "valle_oganov"}, default "none"
        Normalisation of the output vector.
    periodic : bool, default False
        Use periodic images (needs a 3-D cell). False on a structure with periodic directions
        describes it as an isolated cluster, with a warning.
    max_memory_gb : float, default 2.0
        Refuse (``ResourceLimitError``) structures for which DScribe would need more memory than
        this, as estimated by :func:`mbtr_memory_estimate`; DScribe itself would exhaust memory.

    References
    ----------
    H. Huo, M. Rupp, Mach. Learn.: Sci. Technol. 3, 045017 (2022).
    """

    _dscribe_name = "MBTR"

    def feature_labels(self) -> list[str]:
        """``mbtr_{A}-{B}_{k}``: k-th grid point of the species block (A, B[, C])."""
        from itertools import combinations_with_replacement, product

        descriptor = self._descriptor()
        symbols = self._species_symbols()
        k = descriptor.k
        if k == 3:
            # DScribe stores each triplet (A, B, C) with A <= C once; B is the vertex of the angle
            combos = [(a, b, c) for a, b, c in product(symbols, repeat=3) if symbols.index(a) <= symbols.index(c)]
        else:
            combos = list(combinations_with_replacement(symbols, k))
        blocks = [("-".join(c), descriptor.get_location(c)) for c in combos]
        return self._block_labels(blocks, "mbtr")


class LMBTR(_MBTRBase):
    """Local many-body tensor representation around each atom (DScribe ``LMBTR``); one row per atom.

    Parameters are those of :class:`MBTR` with ``geometry`` for k=2 or k=3 only.

    References
    ----------
    H. Huo, M. Rupp, Mach. Learn.: Sci. Technol. 3, 045017 (2022); L. Himanen et al. (2020).
    """

    _dscribe_name = "LMBTR"
    fixed_length = False

    def feature_labels(self) -> list[str]:
        """``lmbtr_X-{A}[-{B}]_{k}`` where X is the central atom."""
        descriptor = self._descriptor()
        symbols = self._species_symbols()
        if descriptor.k == 2:
            combos = [("X", a) for a in symbols]
        else:
            combos = [("X", a, b) for a in symbols for b in symbols]
            combos += [(a, "X", b) for i, a in enumerate(symbols) for b in symbols[i:]]
        blocks = []
        for combo in combos:
            try:
                blocks.append(("-".join(combo), descriptor.get_location(combo)))
            except ValueError:  # combination not stored separately by DScribe
                continue
        return self._block_labels(blocks, "lmbtr")


_Permutation = Literal["sorted_l2", "none", "eigenspectrum", "random"]


class _MatrixBase(_DScribeFeaturizer):
    """Coulomb, sine and Ewald matrices: parameters, randomness and labels."""

    def __init__(
        self,
        *,
        n_atoms_max: int,
        permutation: _Permutation = "sorted_l2",
        sigma: float | None = None,
        seed: int | None = None,
    ):
        self.n_atoms_max = n_atoms_max
        self.permutation = permutation
        self.sigma = sigma
        self.seed = seed
        self._validate()

    def _dscribe_kwargs(self) -> dict[str, Any]:
        if self.permutation == "random" and (
            isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer))
        ):
            raise InputError(
                "permutation='random' needs an int seed so that featurize is reproducible, "
                f"got seed={self.seed!r}"
            )
        if self.permutation != "random" and self.seed is not None:
            # DScribe reads the seed only to draw random permutations: it would be ignored
            # (DScribe itself refuses a sigma without permutation='random').
            raise InputError(
                f"seed={self.seed!r} is used only with permutation='random', not {self.permutation!r}; "
                "drop seed or set permutation='random'"
            )
        return dict(n_atoms_max=self.n_atoms_max, permutation=self.permutation, sigma=self.sigma, seed=self.seed)

    def _descriptor(self):
        # DScribe draws random permutations from a RandomState it keeps across calls; a fresh
        # object per call makes featurize pure (same input, same output).
        if self.permutation == "random":
            return self._build()
        return super()._descriptor()

    def feature_labels(self) -> list[str]:
        """``{name}_{i}_{j}`` for the flattened matrix, ``{name}_eig_{i}`` for the eigenspectrum."""
        prefix = self._label_prefix
        n = int(self.n_atoms_max)
        if self.permutation == "eigenspectrum":
            return [f"{prefix}_eig_{i}" for i in range(n)]
        return [f"{prefix}_{i}_{j}" for i in range(n) for j in range(n)]


class CoulombMatrix(_MatrixBase):
    """Coulomb matrix of a finite system, zero-padded to ``n_atoms_max`` (DScribe ``CoulombMatrix``).

    Parameters
    ----------
    n_atoms_max : int
        Size of the padded matrix; larger inputs are refused.
    permutation : {"sorted_l2", "none", "eigenspectrum", "random"}, default "sorted_l2"
        Ordering of rows/columns; ``"eigenspectrum"`` returns ``n_atoms_max`` eigenvalues.
    sigma : float or None
        Noise width for ``permutation="random"``.
    seed : int or None
        Seed for ``permutation="random"`` (required there).

    References
    ----------
    M. Rupp et al., Phys. Rev. Lett. 108, 058301 (2012), Eq. 1: ``0.5 Z_i^2.4`` on the diagonal
    and ``Z_i Z_j / |R_i - R_j|`` (atomic units of charge, 1/Angstrom) off it. matminer's
    ``CoulombMatrix`` measures distances in Bohr instead: its off-diagonal entries are these times
    0.529 (checked on random molecules; the diagonals agree).
    """

    _dscribe_name = "CoulombMatrix"
    _label_prefix = "cm"


class SineMatrix(_MatrixBase):
    """Sine matrix of a periodic structure (DScribe ``SineMatrix``); needs a 3-D cell.

    ``0.5 Z_i^2.4`` on the diagonal and ``Z_i Z_j / |B . sum_k e_k sin^2(pi s_k)|`` off it, ``s`` the
    fractional coordinates of ``R_i - R_j`` and ``B`` the cell (Angstrom, so 1/Angstrom; matminer's
    ``SineCoulombMatrix`` uses Bohr: its off-diagonal entries are these times 0.529). Parameters as
    :class:`CoulombMatrix`. The entries depend on the choice of cell, not only on the crystal: an
    equivalent (unimodular) cell of NaCl changes them by about 3 %, a property of the formula; compare
    structures in the same kind of cell (e.g. ``atoms.cell.standard_form()`` or a Niggli-reduced one).

    References
    ----------
    F. Faber et al., Int. J. Quantum Chem. 115, 1094 (2015).
    """

    _dscribe_name = "SineMatrix"
    _label_prefix = "sine"

    def _needs_cell(self) -> bool:
        return True


class EwaldSumMatrix(_MatrixBase):
    """Ewald sum matrix of a periodic structure (DScribe ``EwaldSumMatrix``); needs a 3-D cell.

    Entries are Coulomb energies of point charges ``Z_i`` (e) in a neutralising background, in
    e^2/Angstrom: the upper triangle with the diagonal sums to the structure's Ewald energy, which
    pymatgen's ``EwaldSummation(...).total_energy`` gives in eV (times ``Hartree * Bohr`` = 14.40
    eV Angstrom; checked to 1e-8 at ``accuracy=1e-7``).

    Parameters
    ----------
    n_atoms_max, permutation, sigma, seed
        As :class:`CoulombMatrix`.
    accuracy : float, default 1e-5
        Convergence accuracy of the Ewald sums (DScribe ``create`` argument).
    w : float, default 1
        Weight balancing real- and reciprocal-space cost.
    r_cut : float or None
        Real-space cutoff (Angstrom); by default from ``accuracy`` and ``w``.
    g_cut : float or None
        Reciprocal-space cutoff (1/Angstrom); by default from ``accuracy`` and ``w``.
    a : float or None
        Screening parameter (1/Angstrom); by default from ``accuracy`` and ``w``.

    References
    ----------
    F. Faber et al., Int. J. Quantum Chem. 115, 1094 (2015).
    """

    _dscribe_name = "EwaldSumMatrix"
    _label_prefix = "ewald"

    def __init__(
        self,
        *,
        n_atoms_max: int,
        permutation: _Permutation = "sorted_l2",
        sigma: float | None = None,
        seed: int | None = None,
        accuracy: float = 1e-5,
        w: float = 1.0,
        r_cut: float | None = None,
        g_cut: float | None = None,
        a: float | None = None,
    ):
        self.accuracy = accuracy
        self.w = w
        self.r_cut = r_cut
        self.g_cut = g_cut
        self.a = a
        super().__init__(n_atoms_max=n_atoms_max, permutation=permutation, sigma=sigma, seed=seed)

    def _validate(self) -> None:
        if not (isinstance(self.accuracy, (int, float)) and 0 < self.accuracy < 1):
            raise InputError(f"accuracy must be in (0, 1), got {self.accuracy!r}")
        super()._validate()

    def _needs_cell(self) -> bool:
        return True

    def _create_kwargs(self) -> dict[str, Any]:
        return dict(accuracy=self.accuracy, w=self.w, r_cut=self.r_cut, g_cut=self.g_cut, a=self.a)
