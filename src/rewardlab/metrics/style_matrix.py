"""RM-Bench's style matrix: every chosen style against every rejected style, and its easy / normal / hard accuracy.

RM-Bench (Liu et al., 2024; THU-KEG/RM-Bench `README.md` and `scripts/utils.py`, `compute_accuracy`) gives each
prompt three chosen and three rejected responses in the styles concise, detailed, and detailed with markdown (in that
order). `M[i][j]` is the share of prompts where chosen style i scores strictly above rejected style j (a tie counts
as wrong). Hard is the mean of the upper-right triangle (i < j: the chosen answer is plainer than the rejected one,
so a style preference points the wrong way), normal the diagonal, easy the lower-left triangle; the accuracy is the
mean of all nine cells (which is the mean of the three).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardlab.errors import RewardlabError

DIFFICULTIES = ("easy", "normal", "hard")
_CELLS = {
    "easy": np.tril(np.ones((3, 3), dtype=bool), -1),
    "normal": np.eye(3, dtype=bool),
    "hard": np.triu(np.ones((3, 3), dtype=bool), 1),
    "accuracy": np.ones((3, 3), dtype=bool),
}


def style_correct(
    prompt_index: Any,
    chosen_index: Any,
    rejected_index: Any,
    rewards_chosen: Any,
    rewards_rejected: Any,
    n_prompts: int,
) -> np.ndarray:
    """`(n_prompts, 3, 3)`: 1.0 where chosen style i of a prompt scores strictly above its rejected style j, else 0.0.

    Each comparison is given as a pair: its prompt, chosen style i, rejected style j and the two rewards. A cell with
    no pair counts 0.0: the two responses were identical, a tie, which RM-Bench's strict `>` counts as wrong. A prompt
    with a NaN reward (dropped by the scorer) is NaN throughout.
    """
    prompts = np.asarray(prompt_index, dtype=np.int64)
    rows, columns = np.asarray(chosen_index, dtype=np.int64), np.asarray(rejected_index, dtype=np.int64)
    if len(prompts) and (rows.max(initial=0) > 2 or columns.max(initial=0) > 2 or min(rows.min(), columns.min()) < 0):
        raise RewardlabError("RM-Bench compares 3 chosen and 3 rejected styles: style indices must be 0, 1 or 2")
    chosen, rejected = np.asarray(rewards_chosen, dtype=np.float64), np.asarray(rewards_rejected, dtype=np.float64)
    correct = np.zeros((n_prompts, 3, 3))
    correct[prompts, rows, columns] = chosen > rejected
    dropped = np.zeros(n_prompts, dtype=bool)
    np.logical_or.at(dropped, prompts, ~(np.isfinite(chosen) & np.isfinite(rejected)))
    correct[dropped] = np.nan
    return correct


def unit_values(correct: np.ndarray, cells: str) -> np.ndarray:
    """Each prompt's mean over the cells of `cells` ("easy", "normal", "hard" or "accuracy", all nine): the
    per-prompt values whose mean over prompts is that accuracy."""
    return correct[:, _CELLS[cells]].mean(1)


def difficulty_accuracies(correct: np.ndarray) -> dict[str, Any]:
    """`{"easy", "normal", "hard", "accuracy", "matrix"}` over the prompts of `correct` (dropped ones left out)."""
    kept = correct[np.isfinite(correct).all((1, 2))]
    matrix = kept.mean(0) if len(kept) else np.full((3, 3), np.nan)
    out = {name: float(matrix[mask].mean()) for name, mask in _CELLS.items()}
    return out | {"matrix": matrix.tolist()}
