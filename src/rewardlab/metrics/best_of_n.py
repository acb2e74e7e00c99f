"""Best-of-N accuracy: does the model's top-rewarded completion of a prompt belong to the best ones?

RewardBench 2 scores a prompt with N completions, the first of them correct, as `1 / (number of completions tied at
the maximum reward)` when the correct one is among them, else 0 (reward-bench `rewardbench/utils.py`,
`reroll_and_score_dataset`: "penalty for ties"). Ties are exact float equality, so identical completions must get
bit-identical rewards for the rule to see them tied. `best_of_n_scores` is that rule for any set B of best
completions: the share `|T ∩ B| / |T|` of the top-rewarded set T that is best, i.e. the chance that picking one of
the model's tied favourites at random picks a best completion. With B = {0} it is RewardBench 2's rule exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def best_of_n_scores(rewards: Sequence[Sequence[float]], best: Sequence[Sequence[int]]) -> np.ndarray:
    """One score per group: `|T ∩ B| / |T|`, T the completions whose reward equals the group's maximum, B = `best`
    (indices into the group). NaN for a group with a NaN reward (an item the scorer dropped) or with no completion."""
    out = np.full(len(rewards), math.nan)
    for g, (values, good) in enumerate(zip(rewards, best, strict=True)):
        values = np.asarray(values, dtype=np.float64)
        if not len(values) or not np.all(np.isfinite(values)):
            continue
        top = values == values.max()
        out[g] = top[list(good)].sum() / top.sum()
    return out


def best_of_n_chance(sizes: Sequence[int], n_best: Sequence[int]) -> np.ndarray:
    """The expected `best_of_n_scores` of rewards drawn at random without ties: `|B| / N` per group."""
    return np.asarray(n_best, dtype=np.float64) / np.asarray(sizes, dtype=np.float64)
