"""Train a potential on your own extxyz file (energies, forces and, for periodic cells, stress).

    python scripts/examples/train_from_extxyz.py DATA.xyz --out runs/mine --minutes 10

The same as ``mlpot train CONFIG.yaml`` with the configuration written in Python. Labels are
read where ASE puts them (the SinglePointCalculator); pass ``--energy-key REF_energy`` etc. for
other names, and ``--energy-unit`` if the file is not in eV.
"""

import argparse

from mlpot.training.config import config_from_dict
from mlpot.training.trainer import train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="extxyz (or any ase.io) file with labels")
    parser.add_argument("--out", default="runs/extxyz")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--n-val", type=int, default=10, help="structures held out for validation")
    parser.add_argument("--cutoff", type=float, default=5.0, help="Å")
    parser.add_argument("--energy-unit", default="eV")
    parser.add_argument("--energy-key", default=None, help="e.g. REF_energy (default: the calculator's energy)")
    parser.add_argument("--forces-key", default=None)
    parser.add_argument("--stress-key", default=None)
    args = parser.parse_args(argv)

    config = config_from_dict({
        "data": {"train": args.data, "energy_unit": args.energy_unit, "n_val": args.n_val, "seed": 0,
                 "energy_key": args.energy_key, "forces_key": args.forces_key, "stress_key": args.stress_key},
        "model": {"cutoff": args.cutoff},
        "trainer": {"max_epochs": args.max_epochs, "max_minutes": args.minutes},
        "output": args.out,
    })
    result = train(config)
    print(f"model written to {result.output_dir / 'model.pt'}; validation metrics: {result.metrics.get('val')}")
    return result


if __name__ == "__main__":
    main()
