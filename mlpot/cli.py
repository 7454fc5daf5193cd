"""The `mlpot` command line.

Each verb lives next to the code it drives: a module listed in ``COMMAND_MODULES`` defines
``register_cli(subparsers)``, which adds its sub-parser and sets ``func`` on it. Modules are
imported only when the CLI starts, so ``mlpot --help`` stays cheap to extend.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import mlpot

# One line per verb group. Keep this list sorted.
COMMAND_MODULES: list[str] = [
    "mlpot.analysis.cli",
    "mlpot.dynamics.cli",
    "mlpot.hamiltonian.cli",
    "mlpot.training.cli",
]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="mlpot",
        description="Machine-learned interatomic potentials built on Hamiltonian mechanics.",
    )
    parser.add_argument("--version", action="version", version=f"mlpot {mlpot.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mlpot`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mlpot: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, TypeError) as error:
        # Bad input (a missing file, a wrong unit, an unknown element) is the user's to fix: one
        # line naming it, not a traceback. MLPOT_DEBUG=1 shows the traceback for bug reports.
        if os.environ.get("MLPOT_DEBUG"):
            raise
        print(f"mlpot {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
