"""Structure analysis of atomistic configurations: the one RDF, coordination counts, the RDF
cutoff rule and the crystalline SiO2 references.

This module is part of reprs' base layer (``reprs.BASE_LAYER``): ``sims`` (its
:class:`sims.analysis.RDF` and ``coordination_numbers``) and :mod:`reprs.glass` (its
``partial_rdf`` and ``"rdf"`` cutoffs) both compute here, so the normalisation is written down
once. It imports nothing of reprs but :mod:`reprs.errors`.

Normalisation of g(r)
---------------------
For centre species ``a`` and neighbour species ``b`` (each an element, or all atoms)::

    g_ab(r) = n_ab(r) / (N_a * rho_b * V_shell(r)),   rho_b = (N_b - N_ab / N_a) / V

``n_ab(r)`` counts the ordered (centre a, neighbour b) pairs whose distance lies in the shell
``[r_lo, r_hi)``, periodic images included (so ``r_max`` may exceed half the cell; an atom's own
images count, the atom itself does not); ``V_shell = 4/3 pi (r_hi^3 - r_lo^3)`` is the exact
shell volume; ``N_ab`` is the number of atoms that are both ``a`` and ``b``, so ``rho_b`` is the
density of the *other* ``b`` atoms seen from an ``a`` atom: ``N_b / V`` for two disjoint species
(the Faber-Ziman partial; freud's ``normalization_mode="exact"``), ``(N - 1) / V`` for the total
RDF (freud's ``"finite_size"``), so that ``g -> 1`` at large ``r`` even in a small cell, as long as
``r`` stays below the shortest lattice vector. Beyond it an atom meets its own periodic images,
which count (they are what a 1-atom primitive cell's neighbours are) but are not in ``rho_b``: for
uncorrelated atoms g then tends to ``N_b / (N_b - N_ab / N_a)`` instead of 1 (1.2 for the total RDF
of 6 atoms, 2 for a like-pair partial of 2 atoms), plus spikes at the lattice distances. ASE's
``get_rdf`` and freud refuse ``r_max`` above half the cell width for this reason; here it is
allowed and the user keeps ``r_max`` below the shortest lattice vector, or uses a larger cell, where
g must approach 1. ASE's
``ase.geometry.rdf.get_rdf`` puts the total atom count ``N`` in place of ``N_b - N_ab / N_a``:
``g_ours = g_ASE * N / (N_b - N_ab / N_a)``. Frames are averaged with equal
weight (freud pools the counts, which is the same when every frame has the same atoms and
volume). The running coordination number ``n_r`` is the mean number of ``b`` neighbours of an
``a`` atom between ``r_min`` and the right edge of each bin (with ``r_min > 0`` closer neighbours are
not counted: it is the coordination number only from ``r_min = 0``).

The cutoff rule
---------------
:func:`rdf_first_minimum` takes a bond cutoff from g(r): smooth g with a Gaussian (``smooth``
Å), take the first peak as the first maximum above 1 whose prominence is at least 10 % of the
smoothed g's range (noise on the rising edge of a disordered crystal's shell is far smaller),
then the first minimum after it that g falls into and rises out of again by that same 10 %.
A flat minimum (a crystal's empty gap between shells) gives the middle of the gap. No such
minimum within ``r_max`` is an error: the caller must pass an explicit cutoff in Å.

References
----------
.. [1] T. E. Faber, J. M. Ziman, Philos. Mag. 11, 153 (1965): partial structure factors and
   their normalisation.
.. [2] freud ``density.RDF`` (normalisation modes "exact" and "finite_size"), V. Ramasubramani et
   al., Comput. Phys. Commun. 254, 107275 (2020).
.. [3] L. Levien, C. T. Prewitt, D. J. Weidner, Am. Mineral. 65, 920-930 (1980): alpha-quartz at
   1 atm (AMCSD 0000789).
.. [4] R. W. G. Wyckoff, Z. Kristallogr. 62, 189-200 (1925): ideal beta-cristobalite, Fd-3m.
.. [5] L. Levien, C. T. Prewitt, Am. Mineral. 66, 324-333 (1981): coesite at 1 atm, isotropic
   refinement (AMCSD 0000816).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reprs.atoms import as_atoms, as_frames
from reprs.errors import InputError, InputTypeError

__all__ = [
    "RadialDistribution",
    "rdf",
    "coordination_numbers",
    "rdf_first_minimum",
    "CRYSTAL_REFERENCES",
    "crystal_reference",
]

#: Prominence that the first peak and the minimum after it need, as a fraction of the smoothed
#: g(r)'s range (max - min): a shell stands out by far more, counting noise by far less.
SIGNIFICANCE = 0.1


def _frames(frames: Any) -> list:
    """A list of ``ase.Atoms`` with 3-D periodic cells and finite positions (the RDF needs a volume)."""
    return as_frames(frames, require_cell=True)


def _species_mask(atoms, species: str | int | None, role: str) -> np.ndarray:
    """Boolean mask of the atoms of ``species`` (symbol or atomic number; None: all atoms)."""
    from ase.data import atomic_numbers

    if species is None:
        return np.ones(len(atoms), dtype=bool)
    if isinstance(species, str):
        if species not in atomic_numbers:
            raise InputError(f"unknown element {species!r} as {role}; give a symbol such as 'Si'")
        z = atomic_numbers[species]
    elif isinstance(species, (int, np.integer)) and not isinstance(species, bool):
        z = int(species)
    else:
        raise InputTypeError(f"{role} must be an element symbol or atomic number, got {species!r}")
    mask = atoms.numbers == z
    if not mask.any():
        present = sorted(set(atoms.get_chemical_symbols()))
        raise InputError(f"{role} species {species!r} is not in the structure; present: {present}")
    return mask


@dataclass(frozen=True)
class RadialDistribution:
    """A radial distribution function and its running coordination number.

    Attributes
    ----------
    edges : numpy.ndarray
        Bin edges, Å, shape ``(bins + 1,)``.
    g : numpy.ndarray
        g(r), dimensionless, shape ``(bins,)`` (normalisation: this module's docstring).
    n_r : numpy.ndarray
        Mean number of neighbours of a centre atom within each bin's right edge (from ``r_min``).
    """

    edges: np.ndarray
    g: np.ndarray
    n_r: np.ndarray

    @property
    def r(self) -> np.ndarray:
        """Bin centres, Å."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])


def rdf(
    frames: Any,
    *,
    r_max: float,
    bins: int = 200,
    r_min: float = 0.0,
    species: tuple[str | int | None, str | int | None] | None = None,
) -> RadialDistribution:
    """Total or partial radial distribution function, averaged over frames.

    Parameters
    ----------
    frames : ase.Atoms or iterable of ase.Atoms
        Configurations with 3-D cells; each frame's ``pbc`` says which directions are periodic
        (all periodic images within ``r_max`` count).
    r_max : float
        Largest distance, Å; above the shortest lattice vector atoms see their own images and g of
        like species no longer tends to 1 (module docstring).
    bins : int, optional
        Number of bins of width ``(r_max - r_min) / bins`` Å.
    r_min : float, optional
        Smallest distance, Å.
    species : (a, b), optional
        Centre and neighbour species (symbol or atomic number; None in a slot for all atoms),
        e.g. ``("Si", "O")``; default: the total RDF.

    Returns
    -------
    RadialDistribution
        ``r`` (Å), ``g`` and the running coordination number ``n_r``.

    Raises
    ------
    InputError
        For ``r_min < 0``, ``r_max <= r_min``, ``bins < 1``, non-finite positions, or a species
        absent from a frame.
    MissingCellError
        If a frame has no 3-D cell (the density is undefined).

    Example
    -------
    >>> from ase.build import bulk
    >>> result = rdf(bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3), r_max=3.0, bins=30)
    >>> round(float(result.n_r[-1]), 6)  # 12 nearest neighbours at 2.55 Å
    12.0
    """
    from ase.neighborlist import neighbor_list

    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InputError(f"bins must be an integer >= 1, got {bins!r}")
    if not (math.isfinite(r_min) and math.isfinite(r_max) and 0 <= r_min < r_max):
        raise InputError(f"need 0 <= r_min < r_max (Å), got r_min={r_min}, r_max={r_max}")
    a_species, b_species = species if species is not None else (None, None)
    edges = np.linspace(float(r_min), float(r_max), int(bins) + 1)
    shell = 4.0 / 3.0 * math.pi * np.diff(edges**3)
    g = np.zeros(int(bins))
    counts = np.zeros(int(bins))
    frames = _frames(frames)
    for atoms in frames:  # a loop over frames; each is one vectorised neighbour search
        centre = _species_mask(atoms, a_species, "centre")
        neighbour = _species_mask(atoms, b_species, "neighbour")
        i, j, d = neighbor_list("ijd", atoms, float(r_max))
        keep = centre[i] & neighbour[j]
        hist = np.histogram(d[keep], bins=edges)[0].astype(float)
        n_a = np.count_nonzero(centre)
        others = np.count_nonzero(neighbour) - np.count_nonzero(centre & neighbour) / n_a
        if others <= 0:
            raise InputError(
                f"species {species}: an atom has no other neighbour-species atom to pair with"
            )
        g += hist * atoms.cell.volume / (n_a * others * shell)
        counts += hist / n_a
    return RadialDistribution(edges=edges, g=g / len(frames), n_r=np.cumsum(counts) / len(frames))


def coordination_numbers(
    atoms: Any, cutoff: float, *, center: str | int | None = None, neighbor: str | int | None = None
) -> np.ndarray:
    """Number of ``neighbor`` atoms within ``cutoff`` of each ``center`` atom (periodic images
    included).

    This counts distances; :func:`reprs.glass.node_degrees` counts the edges of a network, which
    is the same for a bond network built with this cutoff and differs for a cation network or an
    edited graph.

    Parameters
    ----------
    atoms : ase.Atoms
        One configuration.
    cutoff : float
        Å; a neighbour at a distance below ``cutoff`` counts.
    center, neighbor : str or int, optional
        Species (symbol or atomic number); default all atoms.

    Returns
    -------
    numpy.ndarray
        Integers, one per ``center`` atom in index order.

    Raises
    ------
    InputError
        For a non-positive cutoff, non-finite positions or an absent species.

    Example
    -------
    >>> from ase.build import bulk
    >>> coordination_numbers(bulk("Si", "diamond", a=5.43), 2.6).tolist()
    [4, 4]
    """
    from ase.neighborlist import neighbor_list

    atoms = as_atoms(atoms)
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise InputError(f"cutoff must be a positive distance in Å, got {cutoff!r}")
    centre = _species_mask(atoms, center, "center")
    neighbour = _species_mask(atoms, neighbor, "neighbor")
    i, j = neighbor_list("ij", atoms, float(cutoff))
    keep = centre[i] & neighbour[j]
    return np.bincount(i[keep], minlength=len(atoms))[centre]


def rdf_first_minimum(r: Sequence[float], g: Sequence[float], *, smooth: float = 0.1) -> float:
    """Position (Å) of the first minimum of g(r) after its first peak: a bond cutoff.

    g is smoothed with a Gaussian of standard deviation ``smooth`` Å (0: not smoothed). The first
    peak is the first local maximum above 1 whose prominence is at least ``SIGNIFICANCE`` (10 %)
    of the smoothed g's range; the minimum is the first local minimum after it out of which g
    rises again by at least that much before falling lower. A flat minimum (the empty gap of a
    crystal) gives the middle of the gap, the point farthest from both shells. The rule presumes
    a physical first shell (liquids, glasses, crystals).

    Parameters
    ----------
    r, g : sequence of float
        Equally spaced bin centres (Å) and g(r), as from :func:`rdf`.
    smooth : float, optional
        Gaussian width, Å.

    Returns
    -------
    float
        The minimum's position, Å.

    Raises
    ------
    InputError
        If ``r`` and ``g`` do not match or are not finite, if g has no peak above 1, or if it
        has no minimum after its first peak within ``r`` (then pass an explicit cutoff in Å, or
        compute g to a larger ``r_max``).

    Example
    -------
    >>> r = np.linspace(0.01, 6.0, 600)
    >>> g = 8 * np.exp(-((r - 1.6) ** 2) / 0.01) + 2 * np.exp(-((r - 3.0) ** 2) / 0.05)
    >>> round(rdf_first_minimum(r, g, smooth=0.0), 2)
    2.05
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    if r.ndim != 1 or r.shape != g.shape or len(r) < 3:
        raise InputError(f"r and g must be 1-D of one length >= 3, got shapes {r.shape}, {g.shape}")
    if not (np.isfinite(r).all() and np.isfinite(g).all()):
        raise InputError("r and g must be finite")
    if not (math.isfinite(smooth) and smooth >= 0):
        raise InputError(f"smooth must be a width >= 0 Å, got {smooth!r}")
    step = r[1] - r[0]
    smoothed = gaussian_filter1d(g, smooth / step, mode="nearest") if smooth > 0 else g
    threshold = SIGNIFICANCE * (smoothed.max() - smoothed.min())
    # find_peaks returns the middle of a flat top, so a crystal's empty gap gives its middle.
    peaks, _ = find_peaks(smoothed, height=1.0, prominence=max(threshold, 1e-12))
    if not len(peaks):
        raise InputError(
            f"g(r) has no peak above 1 within r = {r[0]:.2f}-{r[-1]:.2f} Å: no coordination shell "
            "to take a cutoff from; pass an explicit cutoff in Å"
        )
    peak = peaks[0]
    minima, _ = find_peaks(-smoothed[peak:], prominence=max(threshold, 1e-12))
    if not len(minima):
        raise InputError(
            f"g(r) has no minimum after its first peak at {r[peak]:.2f} Å within r_max = "
            f"{r[-1]:.2f} Å (g must fall and rise again by {SIGNIFICANCE:.0%} of its range); pass an "
            "explicit cutoff in Å, or compute g(r) to a larger r_max"
        )
    return float(r[peak + minima[0]])


# --- crystal references ------------------------------------------------------------------------

#: Crystalline SiO2 polymorphs: space group (number, ASE setting), cell parameters
#: (a, b, c in Å; alpha, beta, gamma in degrees), asymmetric unit (species, fractional xyz),
#: published X-ray density (g/cm^3; AMCSD entries) and source.
CRYSTAL_REFERENCES: dict[str, dict[str, Any]] = {
    "alpha-quartz": {
        "spacegroup": 154,  # P3_221
        "setting": 1,
        "cellpar": (4.9160, 4.9160, 5.4054, 90.0, 90.0, 120.0),
        # Levien et al. give Si (0.4697, 0, 0) and O (0.4135, 0.2669, 0.1191) with the origin of
        # their symmetry operators (AMCSD 0000789); the International Tables origin used by ASE
        # is shifted by -1/3 along c (their 'y,x,2/3-z' is ITA's 'y,x,-z').
        "basis": (("Si", (0.4697, 0.0, 2.0 / 3.0)), ("O", (0.4135, 0.2669, 0.1191 - 1.0 / 3.0))),
        "density": 2.646,
        "source": "Levien, Prewitt & Weidner, Am. Mineral. 65, 920 (1980), P = 1 atm",
    },
    "beta-cristobalite": {
        "spacegroup": 227,  # Fd-3m, origin choice 1
        "setting": 1,
        "cellpar": (7.12, 7.12, 7.12, 90.0, 90.0, 90.0),
        # The ideal C9 model: Si on a diamond lattice, O midway (straight Si-O-Si). The real
        # high-temperature phase is disordered about it; a sets lengths only, not the network.
        "basis": (("Si", (0.0, 0.0, 0.0)), ("O", (0.125, 0.125, 0.125))),
        "density": None,  # no measured value goes with the ideal model (2.21 g/cm^3 from a)
        "source": "Wyckoff, Z. Kristallogr. 62, 189 (1925), ideal Fd-3m model",
    },
    "coesite": {
        "spacegroup": 15,  # C2/c, unique axis b
        "setting": 1,
        "cellpar": (7.1356, 12.3692, 7.1736, 90.0, 120.34, 90.0),
        "basis": (
            ("Si", (0.14033, 0.10833, 0.07227)),
            ("Si", (0.50682, 0.15799, 0.54077)),
            ("O", (0.0, 0.0, 0.0)),
            ("O", (0.5, 0.11630, 0.75)),
            ("O", (0.26600, 0.12340, 0.94010)),
            ("O", (0.31140, 0.10380, 0.32820)),
            ("O", (0.01720, 0.21170, 0.47820)),
        ),
        "density": 2.921,
        "source": "Levien & Prewitt, Am. Mineral. 66, 324 (1981), P = 1 atm",
    },
}


def crystal_reference(
    name: str,
    *,
    repeat: Iterable[int] = (1, 1, 1),
    cellpar: Sequence[float] | None = None,
):
    """A crystalline SiO2 polymorph from its published structure (see ``CRYSTAL_REFERENCES``).

    Parameters
    ----------
    name : {"alpha-quartz", "beta-cristobalite", "coesite"}
        Polymorph.
    repeat : tuple of 3 int, optional
        Supercell multiples of the conventional cell.
    cellpar : sequence of 6 float, optional
        Cell parameters (a, b, c in Å; alpha, beta, gamma in degrees) in place of the published
        ones, the fractional coordinates kept (e.g. beta-cristobalite at another density).

    Returns
    -------
    ase.Atoms
        Periodic structure; ``info["name"]`` and ``info["source"]`` say what it is.

    Raises
    ------
    InputError
        For an unknown name, a non-positive repeat or malformed cell parameters.

    Example
    -------
    >>> atoms = crystal_reference("coesite")
    >>> atoms.get_chemical_formula(), round(float(atoms.get_volume()), 1)
    ('O32Si16', 546.4)
    """
    from ase.spacegroup import crystal

    if name not in CRYSTAL_REFERENCES:
        raise InputError(f"unknown polymorph {name!r}; known: {sorted(CRYSTAL_REFERENCES)}")
    reps = tuple(int(n) for n in repeat)
    if len(reps) != 3 or min(reps) < 1:
        raise InputError(f"repeat must be three positive integers, got {repeat!r}")
    data = CRYSTAL_REFERENCES[name]
    cell = tuple(float(x) for x in (cellpar if cellpar is not None else data["cellpar"]))
    if len(cell) != 6 or not all(math.isfinite(x) and x > 0 for x in cell):
        raise InputError(f"cellpar must be six positive numbers (a, b, c in Å; angles in degrees), "
                         f"got {cellpar!r}")
    species, basis = zip(*data["basis"])
    atoms = crystal(
        list(species),
        basis=list(basis),
        spacegroup=data["spacegroup"],
        setting=data["setting"],
        cellpar=list(cell),
    ).repeat(reps)
    atoms.info.update(name=name, source=data["source"])
    return atoms
