"""The `mlpot` command line.

Each verb lives next to the code it drives: a module listed in ``COMMAND_MODULES`` defines
``register_cli(subparsers)``, which adds its sub-parser and sets ``func`` on it. Modules are
imported only when the CLI starts, so ``mlpot --help`` stays cheap to extend.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import signal
import sys
import threading

import mlpot
from mlpot.dynamics.health import CloseContactError, MDInstabilityError
from mlpot.interrupts import RunInterrupted

# One line per verb group. Keep this list sorted.
COMMAND_MODULES: list[str] = [
    "mlpot.analysis.cli",
    "mlpot.dynamics.cli",
    "mlpot.hamiltonian.cli",
    "mlpot.integrations.lammps",
    "mlpot.networks.cli",
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
    """Entry point of the ``mlpot`` console script; returns the process exit code.

    A user error (a missing, empty or truncated file, a wrong unit, a full disk) is one line on
    standard error and exit code 2; MD that leaves the model's range (``MDInstabilityError``,
    ``CloseContactError``, from any verb that runs dynamics) is one line and exit code 1.
    ``MLPOT_DEBUG=1`` shows the traceback instead. SIGTERM is
    handled like Ctrl-C, so verbs that checkpoint on an interrupt (``train``, ``md``,
    ``heat-capacity``: they raise :class:`~mlpot.interrupts.RunInterrupted`) do so for both, and
    this prints the command that resumes them.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for resume_command
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    previous = _sigterm_as_interrupt()
    try:
        return int(args.func(args) or 0)
    except RunInterrupted as interrupt:  # the run's checkpoint is on disk: say how to continue it
        print(f"mlpot {args.command}: {interrupt}; resume with: {resume_command(args)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"mlpot {args.command}: interrupted", file=sys.stderr)
        return 130
    except (MDInstabilityError, CloseContactError) as error:
        # The dynamics left what the model can describe: a result of the run, not a bug and not
        # bad input. The message names the step, the atoms and what to try; exit code 1.
        if os.environ.get("MLPOT_DEBUG"):
            raise
        print(f"mlpot {args.command}: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except (ValueError, OSError, TypeError) as error:
        # Bad input (a missing or unreadable file, a wrong unit, an unknown element, a full disk) is
        # the user's to fix: one line naming it, not a traceback. MLPOT_DEBUG=1 shows the traceback.
        if os.environ.get("MLPOT_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"mlpot {args.command}: error: {message}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def resume_command(args: argparse.Namespace) -> str:
    """The exact command that continues an interrupted run: the same arguments, ``--resume``
    instead of ``--overwrite``, quoted for a POSIX shell."""
    words = [w for w in getattr(args, "argv", sys.argv[1:]) if w != "--overwrite"]
    if "--resume" not in words:
        words.append("--resume")
    return shlex.join(["mlpot", *words])


def _sigterm_as_interrupt():
    """Make SIGTERM raise KeyboardInterrupt (main thread only); returns the previous handler or None."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())
