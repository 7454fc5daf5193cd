"""Running a LAMMPS input with an mlpot model: input splitting, :func:`run_input` and ``mlpot lammps``."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import torch

from mlpot.integrations.lammps.evaluation import ghost_cutoff_needed
from mlpot.integrations.lammps.fix import DEFAULT_METAL_SKIN, FIX_ID, FIX_LINE, MLPotFix, _atomic_numbers
from mlpot.integrations.lammps.library import import_lammps


def _logical_lines(text: str) -> list[tuple[int, int, str]]:
    """(first physical line, last physical line + 1, command without comment) of each command;
    a trailing ``&`` continues a command on the next line, as in LAMMPS."""
    physical = text.splitlines()
    commands, start, pieces = [], 0, []
    for number, line in enumerate(physical):
        stripped = line.split("#", 1)[0].rstrip()
        if not pieces:
            start = number
        if stripped.endswith("&"):
            pieces.append(stripped[:-1])
            continue
        pieces.append(stripped)
        commands.append((start, number + 1, " ".join(pieces).strip()))
        pieces = []
    if pieces:
        commands.append((start, len(physical), " ".join(pieces).strip()))
    return commands


def split_at_fix(text: str, fix_id: str = FIX_ID) -> tuple[str, str, list[tuple[int, str]]]:
    """Split a LAMMPS input after the command ``fix <fix_id> <group> external pf/callback ...``.

    Returns:
        The input up to and including that command, the rest (with blank lines in place of the
        head, so that LAMMPS' line numbers still match the file), and the ``neighbor`` and
        ``comm_modify`` commands of the rest as (line number, command).

    Raises:
        ValueError: no such fix, or a fix of that id that is not ``external pf/callback``.
    """
    commands = _logical_lines(text)
    for start, stop, command in commands:
        words = command.split()
        if len(words) >= 2 and words[0] == "fix" and words[1] == fix_id:
            if len(words) < 5 or words[3] != "external" or words[4] != "pf/callback":
                raise ValueError(f"line {start + 1}: fix {fix_id} must be '{FIX_LINE}', got {command!r}")
            physical = text.splitlines(keepends=True)
            head = "".join(physical[:stop])
            rest = "\n" * stop + "".join(physical[stop:])
            watched = (["neighbor"], ["comm_modify"])
            later = [(s + 1, c) for s, _, c in commands if s >= stop and c.split()[:1] in watched]
            return head, rest, later
    raise ValueError(f"the input defines no fix {fix_id}: add '{FIX_LINE}' after the atoms are created")


def _last_skin_and_cutoff(text: str, lmp) -> tuple[float, float]:
    """The skin of the last ``neighbor`` command of ``text`` and the last ``comm_modify cutoff``
    (0 if none), Å, variables expanded by LAMMPS."""
    skin, cutoff = DEFAULT_METAL_SKIN, 0.0
    for _, _, command in _logical_lines(text):
        words = command.split()
        if words[:1] == ["neighbor"] and len(words) >= 2:
            skin = float(lmp.expand(command).split()[1])
        if words[:1] == ["comm_modify"] and "cutoff" in words:
            expanded = lmp.expand(command).split()
            cutoff = float(expanded[expanded.index("cutoff") + 1])
    return skin, cutoff


def _check_later_commands(later: list[tuple[int, str]], lmp, needed: float, skin: float) -> None:
    """Refuse a ``neighbor`` or ``comm_modify cutoff`` after the fix that shrinks the ghost shell
    below 2 r_c + skin (the shell is set when the model attaches, before those commands run)."""
    for line, command in later:
        try:
            words = lmp.expand(command).split()
        except Exception:  # noqa: BLE001  a variable defined later: cannot be checked here
            words = command.split()
        if words[0] == "neighbor" and len(words) >= 2 and _is_number(words[1]) and float(words[1]) > skin:
            raise ValueError(
                f"line {line}: 'neighbor {words[1]} ...' after fix {FIX_ID} needs a ghost cutoff of "
                f"{ghost_cutoff_needed((needed - skin) / 2, float(words[1])):g} Å; move it before the fix"
            )
        if words[0] == "comm_modify" and "cutoff" in words:
            value = words[words.index("cutoff") + 1] if words.index("cutoff") + 1 < len(words) else ""
            if not _is_number(value) or float(value) < needed:
                raise ValueError(
                    f"line {line}: 'comm_modify cutoff {value}' is shorter than the ghost shell the model "
                    f"needs, 2 r_c + skin = {needed:g} Å (mlpot sets it itself: remove the command)"
                )


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _parse_variables(pairs: list[str]) -> list[tuple[str, str]]:
    variables = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ValueError(f"--var needs NAME=VALUE with a LAMMPS variable name, got {pair!r}")
        variables.append((name, value))
    return variables


def run_input(
    model,
    input_path: str | os.PathLike,
    elements,
    variables: list[tuple[str, str]] = (),
    dtype: torch.dtype | None = None,
    device: str | None = None,
    threads: int | None = None,
    log: str | os.PathLike | None = "log.lammps",
    screen: bool = True,
) -> None:
    """Run a LAMMPS input with an mlpot model attached to its ``fix mlpot``, on every MPI rank.

    The input is an ordinary LAMMPS input with ``units metal``, ``pair_style zero <cutoff>`` /
    ``pair_coeff * *`` (LAMMPS needs a pair style to build its lists) and ``fix mlpot all
    external pf/callback 1 1``. It runs up to that fix, the model attaches, then the rest runs.

    Args:
        model: a saved mlpot model (path) or a loaded potential / committee.
        input_path: the LAMMPS input file.
        elements: element of each atom type, in type order.
        variables: (name, value) pairs, as LAMMPS' ``-var name value``.
        dtype: evaluate in this dtype (default: the model's).
        device: torch device (default: the model's).
        threads: torch threads per rank (default: CPU cores / ranks on this node).
        log: LAMMPS' log file (None: no log).
        screen: LAMMPS' screen output on rank 0.
    """
    text = Path(input_path).read_text()
    head, rest, later = split_at_fix(text)  # before loading anything: a missing fix is the cheapest error
    numbers = _atomic_numbers(list(elements))
    if not numbers:
        raise ValueError("--elements: give the element of each atom type, in type order (e.g. --elements Cu Au)")
    lammps = import_lammps()
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if isinstance(model, (str, os.PathLike)):
        from mlpot.models.serialization import load_model

        model = load_model(model)
    model = model.to(device=device, dtype=dtype) if (device or dtype) else model
    model.eval()
    per_node = int(os.environ.get("MPI_LOCALNRANKS", os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE", comm.Get_size())))
    torch.set_num_threads(int(threads) if threads else max(1, (os.cpu_count() or 1) // max(per_node, 1)))
    cmdargs = ["-log", str(log) if log else "none", "-nocite"]
    if not screen:
        cmdargs += ["-screen", "none"]
    for name, value in variables:
        cmdargs += ["-var", name, value]
    lmp = lammps.lammps(cmdargs=cmdargs, comm=comm)
    try:
        with tempfile.TemporaryDirectory(prefix="mlpot-lammps-") as folder:
            # Run each part from a file (only rank 0 reads it), so that include, label and jump work.
            head_file, rest_file = Path(folder) / "head.lammps", Path(folder) / "rest.lammps"
            head_file.write_text(head)
            rest_file.write_text(rest)
            _run_file(lmp, head_file, input_path)
            skin, their_cutoff = _last_skin_and_cutoff(head, lmp)
            ranks = comm if comm.Get_size() > 1 else None
            fix = MLPotFix(lmp, model, numbers, skin=skin, comm=ranks, abort_on_error=True, ghost_cutoff=their_cutoff)
            _check_later_commands(later, lmp, ghost_cutoff_needed(model.cutoff, skin), skin)
            _run_file(lmp, rest_file, input_path)
            fix.check()
            if comm.Get_rank() == 0:
                print(fix.summary(), flush=True)
    finally:
        lmp.close()


def _run_file(lmp, path: Path, shown_as) -> None:
    """``lmp.file(path)``, with LAMMPS' own error as a one-line ValueError naming the input.

    An error that LAMMPS raised on one rank only (``MPIAbortException``) leaves the other ranks
    waiting in a collective call: it is printed and all ranks are aborted instead."""
    try:
        lmp.file(str(path))
    except Exception as error:  # noqa: BLE001  LAMMPS raises plain Exception for input errors
        if isinstance(error, (ValueError, OSError, TypeError)):
            raise
        message = " ".join(str(error).split())
        if type(error).__name__ == "MPIAbortException":
            from mpi4py import MPI

            print(f"mlpot lammps: error: LAMMPS stopped on {shown_as}: {message}", file=sys.stderr, flush=True)
            MPI.COMM_WORLD.Abort(2)
        raise ValueError(f"LAMMPS stopped on {shown_as}: {message}") from error


# --- the command line -----------------------------------------------------------------------------

def register_cli(subparsers) -> None:
    """Add the ``lammps`` sub-command."""
    parser = subparsers.add_parser(
        "lammps",
        help="run a LAMMPS input with an mlpot model (mpirun -np N mlpot lammps ...)",
        description=(
            "Run an ordinary LAMMPS input (units metal) with an mlpot model as the potential, on one "
            f"or many MPI ranks: mpirun -np 4 mlpot lammps MODEL in.lammps --elements Cu. The input "
            f"writes 'pair_style zero <cutoff>', 'pair_coeff * *' and '{FIX_LINE}'; mlpot sets the "
            "ghost cutoff, energy and virial of that fix. See docs/lammps.md."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="saved mlpot model (mlpot.save_model)")
    parser.add_argument("input", metavar="INPUT", help="LAMMPS input file")
    parser.add_argument("--elements", nargs="+", required=True, metavar="EL",
                        help="element of each LAMMPS atom type, in type order (e.g. Cu Au)")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="set a LAMMPS index variable, as lmp -var NAME VALUE (repeatable)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=None,
                        help="evaluate the model in this precision (default: the model's)")
    parser.add_argument("--device", default=None, help="torch device (default: the model's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per rank (default: CPU cores / ranks on the node)")
    parser.add_argument("--log", default="log.lammps", help="LAMMPS log file ('none' for none)")
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    try:
        _run_cli_on_this_rank(args)
    except (ValueError, OSError, TypeError):
        # Every rank meets the same bad input; rank 0 alone reports it, as one line.
        if _launcher_rank() > 0 and not os.environ.get("MLPOT_DEBUG"):
            raise SystemExit(2) from None
        raise
    return 0


def _launcher_rank() -> int:
    """This process's MPI rank as the launcher tells it (mpich's PMI_RANK, Open MPI's), 0 if none."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _run_cli_on_this_rank(args: argparse.Namespace) -> None:
    run_input(
        args.model,
        args.input,
        args.elements,
        variables=_parse_variables(args.var),
        dtype=getattr(torch, args.dtype) if args.dtype else None,
        device=args.device,
        threads=args.threads,
        log=None if args.log == "none" else args.log,
    )


def command_line(model, input_path, elements, ranks: int = 1, variables: dict[str, str] | None = None) -> list[str]:
    """The argv of ``mpirun -np RANKS mlpot lammps ...`` with this environment's ``mpirun``
    (the mpich wheel's, beside the Python executable) and this Python's mlpot."""
    mpirun = Path(sys.executable).with_name("mpirun")
    words = [str(mpirun), "-np", str(ranks)] if ranks > 1 or mpirun.exists() else []
    words += [sys.executable, "-c", "import sys; from mlpot.cli import main; sys.exit(main())"]
    words += ["lammps", str(model), str(input_path), "--elements", *map(str, elements)]
    for name, value in (variables or {}).items():
        words += ["--var", f"{name}={value}"]
    return words
