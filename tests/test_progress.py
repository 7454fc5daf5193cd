"""Progress output: plain lines every few per cent in a log, a bar only on a terminal."""

import io

from ase.build import bulk

from mlpot.dynamics import ProgressBar, simulate
from mlpot.models.reference import HarmonicSprings
from mlpot.progress import progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_one_line_every_five_percent():
    stream = io.StringIO()
    with progress(total=1000, desc="work", unit="step", stream=stream) as bar:
        for _ in range(1000):
            bar.update(1, T_K="300.0")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 20  # 5%, 10%, ..., 95% and the final line
    assert lines[0].startswith("work:   5% (50/1000 step)") and "T_K=300.0" in lines[0]
    assert lines[-1].startswith("work: 100% (1000/1000 step)")
    assert "\r" not in stream.getvalue()


def test_large_updates_print_one_line_each_and_disabled_prints_nothing():
    stream = io.StringIO()
    with progress(total=10, stream=stream) as bar:
        bar.update(7)
        bar.update(3)
    assert len(stream.getvalue().splitlines()) == 2
    quiet = io.StringIO()
    with progress(total=10, stream=quiet, enabled=False) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_a_terminal_gets_a_bar():
    stream = _Terminal()
    with progress(total=5, desc="bar", stream=stream) as bar:
        bar.update(5)
    assert "\r" in stream.getvalue() and "5/5" in stream.getvalue()


def test_md_progress_in_a_log_is_a_few_lines():
    """A piped MD run writes a handful of lines, not a bar redraw per update."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    stream = io.StringIO()
    simulate(atoms, HarmonicSprings.from_atoms(atoms, bond_cutoff=3.0), steps=400, timestep_fs=1.0,
             temperature_K=100, seed=0, reporters=[ProgressBar(400, interval=1, desc="NVE", stream=stream)])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 20 and all(line.startswith("NVE:") for line in lines) and "T_K=" in lines[0]
