"""Content-blind baselines: what rules that never read a response score under a benchmark's own rule, and the model's
lead over the best of them, with a bootstrap interval.

A benchmark's score is written as a `Statistic`, a function of unit weights `(B, n) -> (B,)`: the point value is the
statistic at weights 1 and each bootstrap resample is the statistic at that resample's unit counts, so both come from
the same code. A unit is what the benchmark resamples: a pair, a prompt with its N completions, a RewardBench 2 Ties
prompt with its two rows.

A content-blind rule is scored by the very same statistic with the model's rewards replaced: "longer wins" gives
each response its length in tokens as its reward, "shorter wins" minus its length, and "chance" is the expected score
of rewards drawn at random without ties (0.5 for a pair, 1/N for one correct completion among N). Ties between equal
lengths are treated as the benchmark treats tied rewards. Users of reward-bench found "longer wins" scoring 100% on
two RewardBench subsets and "shortest wins" twice chance on RewardBench 2's Focus subset: a score means little until
it beats these rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.metrics.intervals import percentile_interval, resample_weights

Statistic = Callable[[np.ndarray], np.ndarray]
"""A score as a function of unit weights: `(B, n)` array of counts -> `(B,)` values."""


def pair_correct(rewards_chosen: Any, rewards_rejected: Any, tie: Any = 0.0) -> np.ndarray:
    """Per pair: 1.0 where the chosen response scores above the rejected one, `tie` (a number, or one per pair)
    where they score the same, 0.0 below; NaN where either reward is NaN (a pair the scorer dropped)."""
    chosen = np.asarray(rewards_chosen, dtype=np.float64)
    rejected = np.asarray(rewards_rejected, dtype=np.float64)
    out = np.where(chosen == rejected, np.asarray(tie, dtype=np.float64), (chosen > rejected).astype(np.float64))
    return np.where(np.isfinite(chosen) & np.isfinite(rejected), out, math.nan)


def masked_mean(values: Any, empty: float = math.nan) -> Statistic:
    """The weighted mean of the units whose value is not NaN; `empty` where no such unit has weight."""
    values = np.asarray(values, dtype=np.float64)
    defined = np.isfinite(values)
    filled = np.where(defined, values, 0.0)

    def statistic(w: np.ndarray) -> np.ndarray:
        total = (w * defined).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (w * filled).sum(1) / total, empty)

    return statistic


def drop_unscored(rewards: Any, lengths: Any) -> tuple[Any, Any, np.ndarray]:
    """Rewards and lengths of the units the scorer could score: each unit's lengths are NaN where its rewards hold a
    NaN, so that a content-blind rule is scored on exactly the model's units. Takes one array per unit (a group of
    completions) or arrays of pairs `(chosen, rejected)`; returns the rewards as arrays, the masked lengths, and
    which units were dropped."""
    if isinstance(rewards, tuple):  # pairs: (chosen, rejected) arrays
        rewards = tuple(np.asarray(r, dtype=np.float64) for r in rewards)
        dropped = ~np.logical_and.reduce([np.isfinite(r) for r in rewards])
        lengths = tuple(np.where(dropped, math.nan, np.asarray(n, dtype=np.float64)) for n in lengths)
        return rewards, lengths, dropped
    rewards = [np.asarray(r, dtype=np.float64) for r in rewards]
    dropped = np.array([not np.all(np.isfinite(r)) for r in rewards], dtype=bool)
    lengths = [
        np.full(len(n), math.nan) if d else np.asarray(n, dtype=np.float64)
        for n, d in zip(lengths, dropped, strict=True)
    ]
    return rewards, lengths, dropped


def mean_of(parts: Sequence[tuple[np.ndarray, Statistic]]) -> Statistic:
    """The unweighted mean of several statistics, each on its own units (an index array into the units): e.g. a
    leaderboard score that averages its subsets."""

    def statistic(w: np.ndarray) -> np.ndarray:
        return np.mean([part(w[:, index]) for index, part in parts], axis=0)

    return statistic


def negated(lengths: Any) -> Any:
    """Minus every length, in the nesting the lengths come in (an array, or a list of per-group arrays)."""
    if isinstance(lengths, np.ndarray):
        return -lengths
    return [negated(part) for part in lengths]


def length_rules(statistic_of: Callable[[Any], Statistic], lengths: Any, chance: Statistic) -> dict[str, Statistic]:
    """The content-blind rules of a benchmark whose score, given rewards, is `statistic_of(rewards)`: the same score
    with lengths (longer wins) and minus lengths (shorter wins) as the rewards, and its `chance` statistic."""
    return {"longer_wins": statistic_of(lengths), "shorter_wins": statistic_of(negated(lengths)), "chance": chance}


def compare_with_baselines(
    model: Statistic,
    rules: Mapping[str, Statistic],
    n_units: int,
    *,
    strata: Any = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Each rule's score, the best of them, and the model's lead over it with a 95% bootstrap interval.

    Returns `{<rule>: score, ..., "best": name, "lead": {"value", "ci95"}}`. The best rule is the one scoring highest
    on the data (so the lead is, if anything, understated). The interval is the percentile bootstrap of
    `model − best rule` over units drawn with replacement (within each of `strata` when given, e.g. the subsets a
    score averages), seeded by `seed`; None with `n_bootstrap=0`. NaN values mean no unit was evaluated.
    """
    ones = np.ones((1, n_units))
    values = {name: float(rule(ones)[0]) if n_units else math.nan for name, rule in rules.items()}
    finite = {name: value for name, value in values.items() if math.isfinite(value)}
    best = max(finite, key=lambda name: finite[name]) if finite else None
    model_value = float(model(ones)[0]) if n_units else math.nan
    lead = model_value - values[best] if best is not None else math.nan
    interval = None
    if n_bootstrap and best is not None and math.isfinite(lead):
        rng = np.random.default_rng(seed)
        strata = None if strata is None else np.asarray(strata)
        differences = [model(w) - rules[best](w) for w in resample_weights(n_units, int(n_bootstrap), rng, strata)]
        interval = percentile_interval(np.concatenate(differences))
    return {**values, "best": best, "lead": {"value": lead, "ci95": interval}}
