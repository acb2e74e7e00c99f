"""How an ensemble's disagreement relates to its mistakes: per-pair uncertainty, its means on right and wrong pairs,
and the AUROC of the uncertainty as a detector of mistakes."""

from __future__ import annotations

import numpy as np
from scipy import stats


def pair_uncertainty(rewards_chosen: np.ndarray, rewards_rejected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (P, N) per-head rewards of P pairs: each pair's uncertainty, the std across heads of its reward difference
    `r_chosen - r_rejected`, and whether the ensemble's mean ranks it wrong (ties count as wrong)."""
    rc, rr = np.asarray(rewards_chosen, dtype=np.float64), np.asarray(rewards_rejected, dtype=np.float64)
    return (rc - rr).std(axis=1, ddof=1), rc.mean(1) <= rr.mean(1)


def uncertainty_metrics(std: np.ndarray, wrong: np.ndarray) -> dict[str, float]:
    """How an ensemble's disagreement relates to its mistakes, given each pair's uncertainty and whether it is wrong
    (see `pair_uncertainty`; pairs with a NaN uncertainty, e.g. dropped for length, are left out).

    Returns the mean uncertainty of the pairs ranked right and of those ranked wrong, and the AUROC of the
    uncertainty as a detector of wrong pairs (0.5: no relation; 1: every wrong pair is more uncertain than every
    right one; NaN when there are no right or no wrong pairs).
    """
    std, wrong = np.asarray(std, dtype=np.float64), np.asarray(wrong, dtype=bool)
    keep = np.isfinite(std)
    std, wrong = std[keep], wrong[keep]
    return {
        "ensemble_std_right": float(std[~wrong].mean()) if (~wrong).any() else float("nan"),
        "ensemble_std_wrong": float(std[wrong].mean()) if wrong.any() else float("nan"),
        "ensemble_std_auroc": auroc(std, wrong),
    }


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half (Mann-Whitney U)."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float(stats.mannwhitneyu(scores[positive], scores[~positive]).statistic / (n_pos * n_neg))
