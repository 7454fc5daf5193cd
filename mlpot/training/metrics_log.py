"""The metrics CSV of a training run: one row per epoch, consistent with the run's history.

The file is rewritten from the history when a run starts or resumes (so that a resumed run's CSV
is exactly that of an uninterrupted one), then grows by one appended row per epoch; it is
rewritten only when a row brings a new column. Rewrites go through :mod:`mlpot.files`, so the
file is never half written.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mlpot.files import atomic_write_text

__all__ = ["MetricsCsv"]


class MetricsCsv:
    """The metrics CSV at ``path``, holding ``history`` (a list of per-epoch dicts) on creation."""

    def __init__(self, path: Path, history: list[dict[str, float]]):
        self.path, self.columns = path, []
        self._rewrite(history)

    def _rewrite(self, history: list[dict[str, float]]) -> None:
        self.columns = []
        for row in history:
            self.columns.extend(k for k in row if k not in self.columns)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        if self.columns:
            writer.writeheader()
        for row in history:
            writer.writerow({k: _format(row.get(k)) for k in self.columns})
        atomic_write_text(self.path, text.getvalue())

    def append(self, row: dict[str, float], history: list[dict[str, float]]) -> None:
        """Add ``row`` (the last entry of ``history``)."""
        if not self.columns or any(k not in self.columns for k in row):
            self._rewrite(history)
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow({k: _format(row.get(k)) for k in self.columns})


def _format(value: Any) -> Any:
    # ten significant digits: enough to compare runs, short enough to read
    return f"{value:.10g}" if isinstance(value, float) else ("" if value is None else value)
