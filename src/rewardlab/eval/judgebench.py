"""JudgeBench (ScalerLab/JudgeBench, `run_judge.py`, `utils/judges.py`, `utils/metrics.py`), scored as it scores a
reward model.

Rows hold a `question`, two responses `response_A` and `response_B`, the objective `label` ("A>B" or "B>A") and the
`source` of the question. A reward model plays one game, no swap (`--single_game`): each response is scored as the
chat `[user: question, assistant: response]`, the decision is "A>B" when A's reward is strictly higher and "B>A"
otherwise (so a tie goes to B), and the accuracy is the share of decisions equal to the label, over all pairs.
Categories follow the paper: MMLU-Pro sources are knowledge, LiveBench reasoning and math are reasoning and math,
LiveCodeBench is coding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardlab.metrics.baselines import (
    Statistic,
    compare_with_baselines,
    drop_unscored,
    masked_mean,
    negated,
    pair_correct,
)

NAME = "judgebench"
SPLITS = ("gpt", "claude")  # responses by GPT-4o (350 pairs) and by Claude 3.5 Sonnet (270)
COLUMNS = ("question", "response_A", "response_B", "label")


def looks_like_judgebench(row: Any) -> bool:
    return isinstance(row, dict) and all(column in row for column in COLUMNS) and "pair_id" in row


def category(source: str) -> str:
    """JudgeBench's category of a question's `source` (the source itself when it is none of the four)."""
    if source.startswith("mmlu-pro"):
        return "knowledge"
    if source.startswith("livebench-reasoning"):
        return "reasoning"
    if source.startswith("livebench-math"):
        return "math"
    if source.startswith("livecodebench"):
        return "coding"
    return source


def decisions_correct(rewards_chosen: Any, rewards_rejected: Any, chosen_sides: Sequence[str]) -> np.ndarray:
    """Per pair, whether the one-game decision ("A>B" iff A scores strictly higher) equals the label: a tie is right
    exactly when B is the better response. NaN for a pair the scorer dropped."""
    b_wins = np.array([side == "b" for side in chosen_sides], dtype=np.float64)
    return pair_correct(rewards_chosen, rewards_rejected, tie=b_wins)


def summarize(
    rewards_chosen: Any,
    rewards_rejected: Any,
    lengths_chosen: Any,
    lengths_rejected: Any,
    chosen_sides: Sequence[str],
    sources: Sequence[str],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The `"judgebench"` section of a report: `{"accuracy", "categories": {name: accuracy}, "pairs": {name: n},
    "baselines", "category_baselines"}`."""
    (rc, rr), (lc, lr), dropped = drop_unscored((rewards_chosen, rewards_rejected), (lengths_chosen, lengths_rejected))
    correct = {
        "model": decisions_correct(rc, rr, chosen_sides),
        "longer_wins": decisions_correct(lc, lr, chosen_sides),
        "shorter_wins": decisions_correct(negated(lc), negated(lr), chosen_sides),
        "chance": np.where(dropped, math.nan, 0.5),
    }
    categories = np.asarray([category(str(s)) for s in sources], dtype=object)
    n, ones = len(rc), np.ones((1, len(rc)))

    def compare(index: np.ndarray) -> dict[str, Any]:
        statistics: dict[str, Statistic] = {who: masked_mean(values[index]) for who, values in correct.items()}
        model = statistics.pop("model")
        return compare_with_baselines(model, statistics, len(index), n_bootstrap=n_bootstrap, seed=seed)

    names = sorted(set(categories.tolist()))
    return {
        "accuracy": float(masked_mean(correct["model"])(ones)[0]) if n else None,
        "categories": {
            c: float(masked_mean(correct["model"][categories == c])(ones[:, categories == c])[0]) for c in names
        },
        "pairs": {c: int(np.sum((categories == c) & ~dropped)) for c in names},
        "baselines": compare(np.arange(n)),
        "category_baselines": {c: compare(np.flatnonzero(categories == c)) for c in names},
    }
