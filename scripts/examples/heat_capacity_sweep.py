"""Heat capacity over a temperature sweep and several supercell sizes, with finite-size extrapolation.

    python scripts/examples/heat_capacity_sweep.py MODEL.pt CRYSTAL.xyz --temperatures 100 200 300
    python scripts/examples/heat_capacity_sweep.py --reference emt --temperatures 100 300   # ASE EMT copper

The MD samples the model's own ensemble, so the fluctuations give the model's C_V exactly. With a
committee model (``mlpot train`` with ``trainer.ensemble > 1``) the sampled frames are reweighted to each
member, and the spread of the members' C_V is the model uncertainty (docs/thermodynamics.md). To
compare with the reference itself, use ``mlpot heat-capacity ... --reference-calculator``. The old
white-noise correction from a validation RMSE is only a labelled approximation: ``--noise-rmse-meV``
needs ``--assume-uncorrelated-error``.
Writes ``heat_capacity.json`` and ``heat_capacity.png`` to ``--out``.
"""

import argparse
import json
from pathlib import Path

from ase.build import bulk
from ase.io import read

import mlpot
from mlpot.analysis.plots import plot_heat_capacity
from mlpot.analysis.workflow import run_heat_capacity


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="model file (omit with --reference emt)")
    parser.add_argument("structure", nargs="?", help="periodic unit or conventional cell")
    parser.add_argument("--reference", choices=["emt"], help="ASE's EMT on fcc Cu instead of a model")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[100.0, 300.0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 4], help="n for n×n×n supercells")
    parser.add_argument("--equilibration-steps", type=int, default=2000)
    parser.add_argument("--production-steps", type=int, default=20000)
    parser.add_argument("--timestep-fs", type=float, default=2.0)
    parser.add_argument("--noise-rmse-meV", type=float, default=None,
                        help="validation energy RMSE per atom, meV (white-noise approximation)")
    parser.add_argument("--assume-uncorrelated-error", action="store_true",
                        help="accept the white-noise approximation of --noise-rmse-meV")
    parser.add_argument("--out", default="heat_capacity_sweep")
    args = parser.parse_args(argv)

    if args.reference == "emt":
        from ase.calculators.emt import EMT

        potential, structure = EMT(), bulk("Cu", "fcc", a=3.61, cubic=True)
    else:
        if not (args.model and args.structure):
            parser.error("give MODEL and STRUCTURE, or --reference emt")
        potential, structure = mlpot.load_model(args.model), read(args.structure, index=0)
    study = run_heat_capacity(
        structure, potential, args.temperatures, supercells=args.sizes,
        equilibration_steps=args.equilibration_steps, production_steps=args.production_steps,
        timestep_fs=args.timestep_fs,
        noise_rmse_eV_per_atom=None if args.noise_rmse_meV is None else args.noise_rmse_meV / 1e3,
        assume_uncorrelated_error=args.assume_uncorrelated_error,
    )
    print(study.table())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "heat_capacity.json").write_text(json.dumps(study.as_dict(), indent=2) + "\n")
    plot_heat_capacity(study.as_dict(), out / "heat_capacity.png")
    return study


if __name__ == "__main__":
    main()
