"""The training history as a figure: errors per epoch on the training and validation sets.

One function, :func:`plot_training_history`, serves ``mlpot train`` (``OUTPUT/training.png``, every
ensemble member) and the accuracy benchmark (each seed's run). matplotlib runs on the Agg backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["plot_training_history"]

#: (metric, axis label): drawn when the history holds it, training dotted and validation solid.
PANELS = (
    ("forces_mae_meV_per_A", "force MAE (meV/Å)"),
    ("energy_mae_meV_per_atom", "energy MAE (meV/atom)"),
)


def plot_training_history(runs: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path,
                          title: str = "training history", best_epochs: Mapping[str, int] | None = None) -> Path:
    """Training and validation errors against epoch (log scale), one line pair per run.

    Args:
        runs: label → history, one dict per epoch (``train_<metric>`` and ``val_<metric>``, as
            :class:`mlpot.training.loop.FitResult.history`); a metric a history lacks is skipped.
        path: the PNG to write.
        title: the figure's title.
        best_epochs: label → the 1-based epoch whose weights were kept (marked on each line).

    Returns:
        The path written.

    Raises:
        ValueError: no run holds any epoch with a metric of :data:`PANELS`.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = [(metric, label) for metric, label in PANELS
              if any(f"{split}_{metric}" in row for history in runs.values() for row in history
                     for split in ("train", "val"))]
    if not panels:
        raise ValueError(f"no epoch holds a metric to draw ({', '.join(m for m, _ in PANELS)})")
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.5, 2.6 * len(panels) + 0.6), sharex=True,
                             constrained_layout=True, squeeze=False)
    for (metric, axis_label), ax in zip(panels, axes[:, 0]):
        for n, (label, history) in enumerate(runs.items()):
            color = f"C{n % 10}"
            for split, style in (("train", ":"), ("val", "-")):
                points = [(row.get("epoch", k + 1), row[f"{split}_{metric}"]) for k, row in enumerate(history)
                          if row.get(f"{split}_{metric}") is not None]
                if points:
                    epochs, values = zip(*points)
                    name = "training (running weights)" if split == "train" else "validation"
                    ax.semilogy(epochs, values, style, color=color, lw=1, label=f"{label}, {name}")
            best = (best_epochs or {}).get(label)
            if best is not None:
                ax.axvline(best, color=color, lw=0.6, alpha=0.5)
        ax.set_ylabel(axis_label)
    axes[0, 0].legend(fontsize=7)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("epoch")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
