"""Best-of-K accuracy of ranked data in general: K responses to a prompt with scores, one (or several) of them best.

A row scores, by RewardBench 2's tie rule, the share of the model's top-rewarded responses that are best
(`rewardlab.metrics.best_of_n`): 1 when the model's favourite is a best response and nothing else ties with it,
1/k when k responses tie at the top and one of them is best. The accuracy is the mean over rows; it is what a
best-of-K sampler using the model would pick, where the comparisons accuracy counts every ordered pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardlab.metrics.baselines import compare_with_baselines, drop_unscored, length_rules, masked_mean
from rewardlab.metrics.best_of_n import best_of_n_chance, best_of_n_scores


def best_responses(scores: Sequence[float]) -> list[int]:
    """The positions of the responses with the highest score."""
    top = max(scores)
    return [k for k, score in enumerate(scores) if score == top]


def summarize(
    rewards: Sequence[Sequence[float]],
    lengths: Sequence[Sequence[float]],
    best: Sequence[Sequence[int]],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The `"best_of_k"` section of a report: `{"accuracy", "rows", "dropped", "baselines"}`."""
    values, masked, dropped = drop_unscored(rewards, lengths)
    chance = best_of_n_chance([len(v) for v in values], [len(b) for b in best])
    chance[dropped] = math.nan
    model = masked_mean(best_of_n_scores(values, best))
    rules = length_rules(lambda r: masked_mean(best_of_n_scores(r, best)), masked, masked_mean(chance))
    n = len(values)
    return {
        "accuracy": float(model(np.ones((1, n)))[0]) if n > int(dropped.sum()) else None,
        "rows": int(n - dropped.sum()),
        "dropped": int(dropped.sum()),
        "baselines": compare_with_baselines(model, rules, n, n_bootstrap=n_bootstrap, seed=seed),
    }
