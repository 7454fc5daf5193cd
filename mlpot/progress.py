"""Progress output for long work: a bar on a terminal, plain lines in a log.

A tqdm bar redraws itself many times a second. On a terminal that is what a person wants; piped
into a file or a batch log every redraw becomes text (a piped ``make demo`` once wrote 2.6 MB of
them). :func:`progress` therefore draws a tqdm bar only when the stream is a terminal, and
otherwise prints one plain line every ``every_percent`` per cent of the work (and at the end)::

    with progress(total=n_steps, desc="MD", unit="step") as bar:
        for step in range(n_steps):
            ...
            bar.update(1, T_K=f"{temperature:.0f}")

``enabled=False`` prints nothing, for tests and for callers that report by other means.
"""

from __future__ import annotations

import sys
import time
from typing import IO


class _Silent:
    """The progress object of ``enabled=False``: every call does nothing."""

    def update(self, n: int = 1, **postfix) -> None:
        pass

    def write(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Lines(_Silent):
    """Plain progress lines: ``desc: 40% (400/1000 step) 12.3 step/s, 32 s elapsed, ~49 s left``."""

    def __init__(self, total: int | None, desc: str, unit: str, every_percent: float, stream: IO[str]):
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.every = max(float(every_percent), 0.1)
        self.count, self.next_percent, self.postfix = 0, self.every, ""
        self.start = time.perf_counter()
        self.closed = False

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: " if self.desc else ""
        if self.total:
            text += f"{100 * self.count / self.total:3.0f}% ({self.count}/{self.total} {self.unit})"
        else:
            text += f"{self.count} {self.unit}"
        text += f" {rate:.3g} {self.unit}/s, {elapsed:.0f} s elapsed"
        if self.total and 0 < self.count < self.total and rate > 0:
            text += f", ~{(self.total - self.count) / rate:.0f} s left"
        return text + (f"  {self.postfix}" if self.postfix else "")

    def update(self, n: int = 1, **postfix) -> None:
        self.count += n
        if postfix:
            self.postfix = "  ".join(f"{key}={value}" for key, value in postfix.items())
        if self.total and 100 * self.count / self.total + 1e-9 >= self.next_percent and self.count < self.total:
            print(self._line(), file=self.stream, flush=True)
            # Skip the thresholds already passed, so a large update prints one line, not many.
            self.next_percent = (int(100 * self.count / self.total / self.every) + 1) * self.every

    def write(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            print(self._line(), file=self.stream, flush=True)


class _Bar(_Silent):
    """A tqdm bar; ``update`` takes the same keyword postfix as the plain lines."""

    def __init__(self, total: int | None, desc: str, unit: str, stream: IO[str], initial: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit=unit, file=stream, initial=initial, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix) -> None:
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(n)

    def write(self, message: str) -> None:
        self.bar.write(message)

    def close(self) -> None:
        self.bar.close()


def progress(
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    every_percent: float = 5.0,
    stream: IO[str] | None = None,
    initial: int = 0,
):
    """A progress reporter for ``total`` units of work (see the module docstring).

    Args:
        total: units of work expected, or None when unknown (then only the final line is printed
            in a log).
        desc: a short label printed before each line or bar.
        unit: the name of one unit of work ("step", "epoch", "frame").
        enabled: False prints nothing.
        every_percent: in a log, one line each time this much more of the work is done.
        stream: where to write (default: standard error, so standard output stays data).
        initial: units already done (a resumed run).

    Returns:
        An object with ``update(n=1, **postfix)``, ``write(message)``, ``close()``; also a context
        manager that closes itself.
    """
    if not enabled:
        return _Silent()
    stream = sys.stderr if stream is None else stream
    is_terminal = getattr(stream, "isatty", lambda: False)()
    if is_terminal:
        return _Bar(total, desc, unit, stream, initial)
    lines = _Lines(total, desc, unit, every_percent, stream)
    lines.count = initial
    return lines
