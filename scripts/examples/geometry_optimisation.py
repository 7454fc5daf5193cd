"""Relax a structure with a trained mlpot model and ASE's BFGS (and the cell too, if periodic).

    python scripts/examples/geometry_optimisation.py MODEL.pt STRUCTURE.xyz --fmax 0.01 [--relax-cell]

Writes the relaxed structure to ``relaxed.xyz``.
"""

import argparse

from ase.filters import FrechetCellFilter
from ase.io import read, write
from ase.optimize import BFGS

from mlpot import MLPotCalculator


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("structure")
    parser.add_argument("--fmax", type=float, default=0.01, help="force convergence, eV/Å")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--relax-cell", action="store_true", help="also relax the cell (periodic only)")
    parser.add_argument("--out", default="relaxed.xyz")
    args = parser.parse_args(argv)

    atoms = read(args.structure, index=0)
    atoms.calc = MLPotCalculator(args.model)
    start = atoms.get_potential_energy()
    target = FrechetCellFilter(atoms) if args.relax_cell else atoms
    converged = BFGS(target, logfile="-").run(fmax=args.fmax, steps=args.steps)
    write(args.out, atoms)
    print(f"{'converged' if converged else 'NOT converged'}: E {start:.4f} → {atoms.get_potential_energy():.4f} eV; "
          f"written to {args.out}")
    return atoms, converged


if __name__ == "__main__":
    main()
