"""Reward shaping for RL: normalized rewards, an ensemble's conservative reward, and "no reward" for a dropped input.

`RewardFunction` and the HTTP server both serve rewards shaped here, from the same statistics and with the same
checks, so a policy trained against one sees what it would see against the other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rewardlab.errors import RewardlabError


def check_shaping(scorer: Any, normalize: bool, uncertainty_penalty: float, flags: bool = False) -> None:
    """Raise when `scorer` (a `RewardModel` or `RewardEnsemble`) cannot shape its rewards as asked: normalizing
    needs saved reward statistics, an uncertainty penalty an ensemble. `flags`: name the options as command-line
    flags (`--normalize`) rather than arguments (`normalize=True`)."""
    normalize_name = "--normalize" if flags else "normalize=True"
    penalty_name = "--uncertainty_penalty" if flags else "uncertainty_penalty"
    if normalize and not scorer.normalization:
        raise RewardlabError(
            f"{normalize_name} needs the reward statistics saved by a training run with an evaluation set (or, for a "
            "RewardEnsemble, its normalization={'mean': ..., 'std': ...}); this model has none"
        )
    if not math.isfinite(uncertainty_penalty) or uncertainty_penalty < 0:
        raise RewardlabError(f"{penalty_name} must be a finite number >= 0, got {uncertainty_penalty}")
    if uncertainty_penalty and not scorer.has_uncertainty:
        raise RewardlabError(
            f"{penalty_name} needs an ensemble: a model trained with ensemble_heads >= 2, or several models (a list "
            "of paths); this one has a single head"
        )


def reward_scale(normalization: Mapping[str, float] | None) -> float:
    """The std that normalized rewards are divided by: 1 without statistics, or when the saved std is 0."""
    return (normalization["std"] or 1.0) if normalization else 1.0


def normalize_rewards(rewards: Sequence[float], normalization: Mapping[str, float] | None, how: str) -> list[float]:
    """(reward - mean) / std; without statistics, an error ending with `how` to get them."""
    if not normalization:
        raise RewardlabError(f"no reward statistics to normalize with ({how})")
    mean, std = normalization["mean"], reward_scale(normalization)
    return [(r - mean) / std for r in rewards]


def shape_rewards(
    mean: Sequence[float],
    std: Sequence[float] | None = None,
    *,
    normalization: Mapping[str, float] | None = None,
    uncertainty_penalty: float = 0.0,
) -> tuple[list[float | None], list[float | None] | None]:
    """The rewards an RL trainer gets, and the stds in the same units: `mean`, as `(mean - m) / s` with
    `normalization` {m, s} when given, minus `uncertainty_penalty * std`. An input dropped by
    `overlength_policy="drop"` scores NaN, which becomes None: TRL's reward functions (and JSON) say "no reward" with
    None/null."""
    rewards = normalize_rewards(mean, normalization, "") if normalization else list(mean)
    stds = None if std is None else [s / reward_scale(normalization) for s in std]
    if uncertainty_penalty and stds is not None:
        rewards = [r - uncertainty_penalty * s for r, s in zip(rewards, stds, strict=True)]
    return _nan_to_none(rewards), None if stds is None else _nan_to_none(stds)


def _nan_to_none(values: list[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]
