"""Comparing two partitions: normalised mutual information.

NMI(X, Y) = 2 I(X; Y) / (H(X) + H(Y)) (Danon, Díaz-Guilera, Duch & Arenas 2005), the score used for
planted-partition benchmarks such as LFR; natural logarithms (the normalisation cancels the base).
It is 1 for identical partitions (up to relabelling) and 0 for independent ones. Written out
here (a contingency table and three entropies) to avoid depending on scikit-learn for ten lines;
the test checks it against closed forms.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mlpot.networks.graph import as_labels

__all__ = ["normalized_mutual_information"]


def _entropy(counts: np.ndarray, n: int) -> float:
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum())


def normalized_mutual_information(labels_true, labels_pred) -> float:
    """NMI (arithmetic normalisation) of two ``[n]`` integer labellings of the same nodes.

    Two trivial partitions (one community each) have H = 0; they are identical, so NMI = 1.
    """
    n = len(labels_true)
    if len(labels_pred) != n:
        raise ValueError(f"labellings have different lengths: {n} and {len(labels_pred)}")
    if n == 0:
        raise ValueError("labellings are empty")
    x, y = as_labels(labels_true, n), as_labels(labels_pred, n)
    table = sp.coo_array((np.ones(n), (x, y))).tocsr()
    table.sum_duplicates()
    joint = table.data
    h_x, h_y = _entropy(np.bincount(x), n), _entropy(np.bincount(y), n)
    if h_x + h_y == 0:
        return 1.0
    h_xy = _entropy(joint, n)
    mutual = h_x + h_y - h_xy
    return float(np.clip(2.0 * mutual / (h_x + h_y), 0.0, 1.0))
