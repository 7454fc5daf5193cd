"""Molecular dynamics with a trained mlpot model through ASE (velocity Verlet, NVE).

    python scripts/examples/ase_md.py MODEL.pt STRUCTURE.xyz --steps 1000 --timestep-fs 0.5 --temperature-K 300

Any ASE integrator works the same way: attach ``MLPotCalculator`` and run. Writes the
trajectory to ``md.traj`` (readable with ``ase.io.read``) and prints the energy drift.
"""

import argparse

import numpy as np
from ase import units
from ase.io import read
from ase.io.trajectory import Trajectory
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

try:  # ASE >= 3.29; MaxwellBoltzmannDistribution, its older name, is deprecated there
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # ASE 3.23-3.28 (pyproject allows them)
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    def thermalize_momenta(atoms, temperature_K, rng=None):
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)

from mlpot import MLPotCalculator


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model file written by mlpot train / mlpot.save_model")
    parser.add_argument("structure", help="any file ase.io.read understands (first frame is used)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--timestep-fs", type=float, default=0.5)
    parser.add_argument("--temperature-K", type=float, default=300.0)
    parser.add_argument("--out", default="md.traj")
    args = parser.parse_args(argv)

    atoms = read(args.structure, index=0)
    atoms.calc = MLPotCalculator(args.model)
    thermalize_momenta(atoms, args.temperature_K, rng=np.random.default_rng(0))
    Stationary(atoms)  # zero centre-of-mass momentum

    dynamics = VelocityVerlet(atoms, timestep=args.timestep_fs * units.fs)
    energies = []
    with Trajectory(args.out, "w", atoms) as trajectory:
        dynamics.attach(trajectory.write, interval=10)
        dynamics.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
        dynamics.run(args.steps)
    drift = energies[-1] - energies[0]
    print(f"{args.steps} steps of {args.timestep_fs} fs: K+U drift {1e3 * drift:+.3f} meV, "
          f"spread {1e3 * np.ptp(energies):.3f} meV; trajectory in {args.out}")
    return drift


if __name__ == "__main__":
    main()
