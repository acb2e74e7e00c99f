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

STYLES = ("concise", "detailed", "detailed_markdown")
DIFFICULTIES = ("easy", "normal", "hard")
_CELLS = {
    "easy": np.tril(np.ones((3, 3), dtype=bool), -1),
    "normal": np.eye(3, dtype=bool),
    "hard": np.triu(np.ones((3, 3), dtype=bool), 1),
    "accuracy": np.ones((3, 3), dtype=bool),
}


def style_correct(chosen_rewards: Any, rejected_rewards: Any) -> np.ndarray:
    """`(n, 3, 3)`: 1.0 where chosen style i of a prompt scores strictly above its rejected style j, else 0.0; NaN
    throughout for a prompt with a NaN reward (dropped by the scorer)."""
    chosen, rejected = np.asarray(chosen_rewards, dtype=np.float64), np.asarray(rejected_rewards, dtype=np.float64)
    if chosen.ndim != 2 or chosen.shape[1:] != (3,) or rejected.shape != chosen.shape:
        raise RewardlabError(
            f"RM-Bench needs 3 chosen and 3 rejected rewards per prompt, got shapes {chosen.shape} and {rejected.shape}"
        )
    correct = (chosen[:, :, None] > rejected[:, None, :]).astype(np.float64)
    dropped = ~(np.isfinite(chosen).all(1) & np.isfinite(rejected).all(1))
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
