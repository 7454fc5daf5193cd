"""One interrupt guard for every long run (training, MD, sampling).

A long run must not lose its work to Ctrl-C or a batch system's SIGTERM. While a
:class:`SignalGuard` is active, SIGINT and SIGTERM only set a flag; the run checks
:attr:`SignalGuard.requested` at a safe point (after an optimiser step, after an MD step), writes its
checkpoint and stops. A second signal before the run has stopped raises ``KeyboardInterrupt`` at
once, for a user who really wants out. Outside the main thread Python cannot install handlers, so
the guard does nothing there (and ``requested`` stays false).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

__all__ = ["RunInterrupted", "SignalGuard"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalGuard:
    """Turn SIGINT/SIGTERM into a flag while active; a second signal aborts.

    Use as a context manager::

        with SignalGuard() as guard:
            for step in range(n):
                ...
                if guard.requested:
                    save_checkpoint()
                    break

    Attributes:
        signum: the number of the first signal received, or ``None``.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """True once a stop has been asked for (by a signal or by :meth:`request`)."""
        return self.signum is not None

    def request(self, signum: int = signal.SIGINT, frame: object = None) -> None:
        """Ask the run to stop at its next safe point; a second request raises ``KeyboardInterrupt``."""
        if self.signum is not None:  # second request: stop now, without a checkpoint
            self._restore()
            raise KeyboardInterrupt(f"second signal {signum}: aborted without a checkpoint")
        self.signum = signum

    def __enter__(self) -> SignalGuard:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                self._previous[s] = signal.signal(s, self.request)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


class RunInterrupted(KeyboardInterrupt):
    """Raised by a long run (training, a heat-capacity study) that stopped at a safe point after
    SIGINT/SIGTERM, once its checkpoint is on disk; ``mlpot`` prints the command that resumes it.

    Args:
        what: the run, as the message names it (``"training"``).
        signum: the signal received.
        checkpoint: the checkpoint written, or None.
    """

    def __init__(self, what: str, signum: int, checkpoint: Path | None):
        self.signum = signum
        self.checkpoint = checkpoint
        where = f"; checkpoint written to {checkpoint}" if checkpoint else ""
        super().__init__(f"{what} interrupted by signal {signum}{where}")
