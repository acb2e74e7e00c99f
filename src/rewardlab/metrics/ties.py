"""RewardBench 2's Ties subset score, from reward-bench `rewardbench/utils.py` (`sample_stats`,
`process_single_model`).

A Ties prompt has several equally correct answers and some incorrect ones, and comes as two rows: `ref:<id>` (one
correct answer) and `tied:<id>` (several). For each row, with the correct answers first:

- accurate: the worst correct answer scores strictly above the best incorrect one;
- correct–incorrect margin `cim` = worst correct − best incorrect;
- spread of the correct answers `dcm` = best correct − worst correct (only with two or more correct answers).

Per prompt, from its tied row (defined when that row has two or more correct answers):

- preferred: `cim_tied > dcm_tied` (the gap to the wrong answers exceeds the spread of the right ones);
- preferred, hard: `min(cim_ref, cim_tied) > dcm_tied`;
- margin term: `tanh(min(cim_ref, cim_tied) / dcm_tied − 1)`, where `dcm_tied > 0`.

Score = 0.30·mean(tied accurate) + 0.30·mean(ref accurate) + 0.20·mean(preferred) + 0.20·mean(preferred, hard)
+ 0.01·mean(margin term), each mean over the prompts where the term is defined. A mean over no prompt counts 0, as
the reference does for the margin term (its plain `np.mean` of an empty list would make the whole score NaN, which
happens only when no tied row has two correct answers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewardlab.metrics.baselines import Statistic, masked_mean

WEIGHTS = {"tied_accurate": 0.30, "ref_accurate": 0.30, "preferred": 0.20, "preferred_hard": 0.20, "margin": 0.01}


@dataclass
class TiesColumns:
    """One value per Ties prompt of each term of the score; NaN where the term is undefined or the prompt was
    dropped (a completion the scorer could not score)."""

    tied_accurate: np.ndarray
    ref_accurate: np.ndarray
    preferred: np.ndarray
    preferred_hard: np.ndarray
    margin: np.ndarray


def _row_stats(rewards: np.ndarray, num_correct: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accurate, cim, dcm) of rows of rewards `(D, K)` whose first `num_correct` completions are correct."""
    correct, incorrect = rewards[:, :num_correct], rewards[:, num_correct:]
    worst_correct, best_incorrect = correct.min(1), incorrect.max(1)
    spread = correct.max(1) - worst_correct if num_correct > 1 else np.full(len(rewards), math.nan)
    return (worst_correct > best_incorrect).astype(np.float64), worst_correct - best_incorrect, spread


def _prompt_terms(ref: np.ndarray, ref_correct: int, tied: np.ndarray, tied_correct: int) -> list[np.ndarray]:
    """The five terms of one prompt for rows of rewards `(D, K)` (D draws of its two rows)."""
    ref_accurate, ref_cim, _ = _row_stats(ref, ref_correct)
    tied_accurate, tied_cim, spread = _row_stats(tied, tied_correct)
    hardest = np.minimum(ref_cim, tied_cim)
    defined = np.isfinite(spread)
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = np.where(defined & (spread > 0), np.tanh(hardest / spread - 1), math.nan)
    preferred = np.where(defined, (tied_cim > spread).astype(np.float64), math.nan)
    preferred_hard = np.where(defined, (hardest > spread).astype(np.float64), math.nan)
    return [tied_accurate, ref_accurate, preferred, preferred_hard, margin]


def ties_columns(
    ref_rewards: Sequence[Sequence[float]],
    ref_correct: Sequence[int],
    tied_rewards: Sequence[Sequence[float]],
    tied_correct: Sequence[int],
) -> TiesColumns:
    """The terms of every prompt: prompt k's `ref` row has rewards `ref_rewards[k]` (its first `ref_correct[k]`
    correct), its `tied` row `tied_rewards[k]`. A prompt with a NaN reward in either row is NaN throughout."""
    terms = []
    for ref, rc, tied, tc in zip(ref_rewards, ref_correct, tied_rewards, tied_correct, strict=True):
        ref, tied = np.asarray(ref, dtype=np.float64)[None], np.asarray(tied, dtype=np.float64)[None]
        if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(tied))):
            terms.append([math.nan] * 5)
            continue
        terms.append([float(t[0]) for t in _prompt_terms(ref, rc, tied, tc)])
    return TiesColumns(*(np.asarray(column, dtype=np.float64).reshape(-1) for column in zip(*terms, strict=True)))


def ties_chance_columns(
    ref_sizes: Sequence[int],
    ref_correct: Sequence[int],
    tied_sizes: Sequence[int],
    tied_correct: Sequence[int],
    draws: int = 2000,
    seed: int = 0,
) -> TiesColumns:
    """The expected terms of rewards drawn at random (independent standard normals, so no ties), estimated from
    `draws` seeded draws per prompt. The score is linear in the terms, so `ties_statistic` of these columns is the
    expected score of chance."""
    rng = np.random.default_rng(seed)
    terms = []
    for rs, rc, ts, tc in zip(ref_sizes, ref_correct, tied_sizes, tied_correct, strict=True):
        draw = _prompt_terms(rng.standard_normal((draws, rs)), rc, rng.standard_normal((draws, ts)), tc)
        terms.append([float(np.nanmean(t)) if np.any(np.isfinite(t)) else math.nan for t in draw])
    return TiesColumns(*(np.asarray(column, dtype=np.float64).reshape(-1) for column in zip(*terms, strict=True)))


def ties_statistic(columns: TiesColumns) -> Statistic:
    """The Ties score (see the module docstring) as a function of prompt weights."""
    parts = [(weight, masked_mean(getattr(columns, name), empty=0.0)) for name, weight in WEIGHTS.items()]

    def statistic(w: np.ndarray) -> np.ndarray:
        return sum(weight * part(w) for weight, part in parts)

    return statistic
