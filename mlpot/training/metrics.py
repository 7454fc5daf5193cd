"""Error metrics of potentials: energy, force and stress MAE/RMSE, accumulated exactly over batches.

Conventions (as in the rMD17 literature): force errors are per Cartesian component; energy
errors are per structure (``energy_*_meV``) and per atom (``energy_*_meV_per_atom``, the
structure's error divided by its number of atoms); stress errors are per component of the 3×3
tensor. All reported in meV, meV/Å and meV/Å³.

:class:`ErrorSums` holds sums (not means), so batches of any size combine exactly, and sums from
several processes can simply be added.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

__all__ = ["ErrorSums", "METRIC_NAMES", "format_table"]

#: Metric names reported by ``mlpot eval`` and logged per epoch, in display order.
METRIC_NAMES = (
    "energy_mae_meV",
    "energy_rmse_meV",
    "energy_mae_meV_per_atom",
    "energy_rmse_meV_per_atom",
    "forces_mae_meV_per_A",
    "forces_rmse_meV_per_A",
    "stress_mae_meV_per_A3",
    "stress_rmse_meV_per_A3",
)

_SUM_KEYS = ("e_abs", "e_sq", "epa_abs", "epa_sq", "n_e", "f_abs", "f_sq", "n_f", "s_abs", "s_sq", "n_s")


@dataclass
class ErrorSums:
    """Running sums of absolute and squared errors (eV units) and their counts."""

    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_SUM_KEYS, 0.0))

    def add(
        self,
        energy_error: torch.Tensor | None = None,
        n_atoms: torch.Tensor | None = None,
        forces_error: torch.Tensor | None = None,
        stress_error: torch.Tensor | None = None,
    ) -> "ErrorSums":
        """Add errors (prediction − reference) of one batch.

        Args:
            energy_error: [n] eV, structures with an energy label.
            n_atoms: [n] atoms of those structures.
            forces_error: [m, 3] eV/Å, atoms with a force label.
            stress_error: [k, 3, 3] eV/Å³, structures with a stress label.
        """
        s = self.sums
        if energy_error is not None and energy_error.numel():
            e = energy_error.detach().double()
            epa = e / n_atoms.to(e)
            s["e_abs"] += float(e.abs().sum())
            s["e_sq"] += float(e.square().sum())
            s["epa_abs"] += float(epa.abs().sum())
            s["epa_sq"] += float(epa.square().sum())
            s["n_e"] += e.numel()
        if forces_error is not None and forces_error.numel():
            f = forces_error.detach().double()
            s["f_abs"] += float(f.abs().sum())
            s["f_sq"] += float(f.square().sum())
            s["n_f"] += f.numel()
        if stress_error is not None and stress_error.numel():
            st = stress_error.detach().double()
            s["s_abs"] += float(st.abs().sum())
            s["s_sq"] += float(st.square().sum())
            s["n_s"] += st.numel()
        return self

    def merge(self, other: "ErrorSums | dict[str, float]") -> "ErrorSums":
        """Add another set of sums (an ErrorSums or its ``sums`` dict) to this one."""
        values = other.sums if isinstance(other, ErrorSums) else other
        for k in _SUM_KEYS:
            self.sums[k] += float(values.get(k, 0.0))
        return self

    @classmethod
    def combine(cls, parts: Iterable[dict[str, float]]) -> "ErrorSums":
        """Sum the ``sums`` dicts of several batches."""
        total = cls()
        for p in parts:
            total.merge(p)
        return total

    def metrics(self) -> dict[str, float]:
        """MAE and RMSE in meV units; only for labels that were seen."""
        s, out = self.sums, {}
        if s["n_e"]:
            out["energy_mae_meV"] = 1e3 * s["e_abs"] / s["n_e"]
            out["energy_rmse_meV"] = 1e3 * math.sqrt(s["e_sq"] / s["n_e"])
            out["energy_mae_meV_per_atom"] = 1e3 * s["epa_abs"] / s["n_e"]
            out["energy_rmse_meV_per_atom"] = 1e3 * math.sqrt(s["epa_sq"] / s["n_e"])
        if s["n_f"]:
            out["forces_mae_meV_per_A"] = 1e3 * s["f_abs"] / s["n_f"]
            out["forces_rmse_meV_per_A"] = 1e3 * math.sqrt(s["f_sq"] / s["n_f"])
        if s["n_s"]:
            out["stress_mae_meV_per_A3"] = 1e3 * s["s_abs"] / s["n_s"]
            out["stress_rmse_meV_per_A3"] = 1e3 * math.sqrt(s["s_sq"] / s["n_s"])
        return out


def format_table(metrics: dict[str, float]) -> str:
    """A plain-text table of the metrics in :data:`METRIC_NAMES` order (others appended)."""
    names = [n for n in METRIC_NAMES if n in metrics] + [n for n in metrics if n not in METRIC_NAMES]
    width = max((len(n) for n in names), default=10)
    lines = [f"{'metric':<{width}}  {'value':>12}"]
    for n in names:
        lines.append(f"{n:<{width}}  {metrics[n]:>12.4f}")
    return "\n".join(lines)
