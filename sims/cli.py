"""The ``sims`` subcommands, thin wrappers of one function each.

``matrep simulate CONFIG`` runs a dataset-generation config (:func:`sims.generate.generate`);
``matrep free-energy FRAMES --cv SPEC --temperature T`` prints exact and FEP barriers from a
trajectory (:func:`sims.free_energy.free_energy_from_frames`); ``matrep enhanced CONFIG -o OUT`` trains a
bias-path bias (:func:`sims.enhanced_run.run_enhanced`); ``matrep fit-potential CONFIG -o OUT`` fits a
pair potential to RDFs (:func:`sims.fit_run.fit_potential`); ``matrep hop CONFIG`` runs a
surface-hopping ensemble (:func:`sims.hopping_ensemble.hop`).
"""

from __future__ import annotations

import argparse

from reprs.config import add_progress_flags, int_at_least, positive_float, progress_wanted

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand to the ``matrep`` parser."""
    p = subparsers.add_parser("simulate", help="run an MD protocol from a TOML config into an ASE db or extxyz",
                              description="Run the MD protocol of CONFIG; a rerun of the same command resumes "
                                          "from the last checkpoint.")
    p.add_argument("config", help="TOML config file (see sims.generate)")
    p.add_argument("--device", default=None, help="torch device (default: the config's md.device, else cpu)")
    add_progress_flags(p)
    p.set_defaults(func=_simulate)

    p = subparsers.add_parser(
        "free-energy", help="exact and free-energy-profile activation free energies along a CV",
        description="Read FRAMES (an ASE database or any trajectory ASE reads), compute the CV and its inverse "
                    "mass on every frame, and print the reaction free energy and the exact forward and backward "
                    "barriers beside the free-energy-profile (FEP) estimates, with bootstrap error bars "
                    "(Dietschreit et al., J. Chem. Phys. 157, 084113 (2022)).")
    p.add_argument("frames", help="trajectory file (.db, .extxyz, ...)")
    p.add_argument("--cv", required=True,
                   help="collective variable, e.g. 'distance:0,1', 'angle:0,1,2', 'dihedral:4,6,8,14' "
                        "(0-based atom indices; see sims.cv.parse_cv)")
    p.add_argument("--temperature", type=positive_float, required=True, help="K")
    p.add_argument("--bins", type=int_at_least(3), default=100, help="histogram bins of the profile (default 100)")
    p.add_argument("--ts", type=float, default=None,
                   help="transition-state location in CV units (default: the profile's maximum between its minima)")
    p.add_argument("--weights", default=None, help=".npy file of per-frame weights from a biased run")
    p.add_argument("--mbar", default=None,
                   help="file of sims.umbrella.UmbrellaSamples.save for these frames: their MBAR weights, and "
                        "bootstrap errors that re-solve MBAR per replicate (fixed weights give about half the error)")
    p.add_argument("--units", choices=("kJ/mol", "kcal/mol", "eV"), default="kJ/mol")
    p.add_argument("--block", type=int_at_least(1), default=1,
                   help="frames per bootstrap block (correlated time series; default 1)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="bootstrap seed")
    p.add_argument("--plot", default=None, help="write the profile plot here (.png, .pdf, .svg)")
    p.set_defaults(func=_free_energy)

    p = subparsers.add_parser(
        "enhanced", help="learn a bias that drives rare transitions (bias-path optimisation) from a TOML config",
        description="Train a bias by differentiable simulation with a truncated adjoint (Sipka et al., ICML 2023, "
                    "arXiv:2301.03480) on the set-up CONFIG names, sample fresh trajectories under it, and write "
                    "bias.pt, history.csv, summary.json, paths.png and bias.png to OUT (see sims.enhanced_run).")
    p.add_argument("config", help="TOML config file")
    p.add_argument("-o", "--out", required=True, help="output folder (created)")
    add_progress_flags(p)
    p.set_defaults(func=_enhanced)

    p = subparsers.add_parser(
        "fit-potential", help="fit a pair potential to target RDFs (DiffSim or Iterative Boltzmann Inversion)",
        description="Fit the pair potential of CONFIG to its target radial distribution functions by "
                    "differentiating through MD (DiffSim, arXiv:2209.07679) or by Iterative Boltzmann Inversion; "
                    "write potential.pt, history.csv and plots to OUT. A rerun resumes from OUT/checkpoint.pt.")
    p.add_argument("config", help="TOML config file (see sims.fit_run)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    add_progress_flags(p)
    p.set_defaults(func=_fit_potential)

    p = subparsers.add_parser(
        "hop", help="surface-hopping ensemble (FSSH) from a TOML config: populations and quantum yield",
        description="Sample ground-state geometries (Wigner or thermal), excite them and run fewest-switches "
                    "surface hopping on the config's model; write one Parquet file per chunk of trajectories and "
                    "summary.json (populations over time, quantum yield) to the config's output folder. A rerun "
                    "resumes (see sims.hopping_ensemble).")
    p.add_argument("config", help="TOML config file")
    add_progress_flags(p)
    p.set_defaults(func=_hop)


def _hop(args: argparse.Namespace) -> None:
    from .hopping_ensemble import hop

    result = hop(args.config, progress=progress_wanted(args))
    print(f"quantum yield {result.quantum_yield:.3f} +- {result.yield_error:.3f} "
          f"({len(result.trajectories)} trajectories; final populations "
          f"{', '.join(f'{v:.3f}' for v in result.active_populations[-1])})")


def _simulate(args: argparse.Namespace) -> None:
    from .generate import generate

    path = generate(args.config, device=args.device, progress=progress_wanted(args))
    print(path)


def _enhanced(args: argparse.Namespace) -> None:
    from .enhanced_run import run_enhanced

    summary = run_enhanced(args.config, args.out, progress=progress_wanted(args))
    print(f"fresh trajectories reaching the target: {summary['fresh_success_rate']:.2f} "
          f"(unbiased {summary['unbiased_success_rate']:.2f}); results in {args.out}")


def _free_energy(args: argparse.Namespace) -> None:
    from .free_energy import free_energy_from_frames

    result = free_energy_from_frames(args.frames, args.cv, temperature=args.temperature, bins=args.bins, ts=args.ts,
                                     weights=args.weights, units=args.units, plot=args.plot, block=args.block,
                                     seed=args.seed, mbar=args.mbar)
    print(result.table())
    if args.plot:
        print(f"profile plot: {args.plot}")


def _fit_potential(args: argparse.Namespace) -> None:
    from .fit_run import fit_potential

    print(fit_potential(args.config, args.out, progress=progress_wanted(args)))
