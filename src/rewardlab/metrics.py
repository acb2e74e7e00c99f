"""Reward-model metrics, computed from sums so they are exact over any number of batches and processes.

TRL averages per-batch means, which is wrong under a ragged last batch (batches of 5, 5, 2 pairs with 3, 3, 0 correct
report 0.60; the true accuracy is 6/12 = 0.50). Here every batch contributes sums and counts, and the ratios are taken
once at the end.
"""

from __future__ import annotations

import numpy as np
import torch

from rewardlab.loss import centering_penalty, pairwise_losses

# Order of the entries in the statistics vector, so it can be summed across batches and processes in one tensor.
_SUM_KEYS = ("num_pairs", "correct", "ties", "margin_sum", "loss_sum", "reward_sum")


def batch_statistics(
    rewards_chosen: torch.Tensor,
    rewards_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_rewards_coefficient: float | None = None,
) -> torch.Tensor:
    """Sums over one batch, as a float64 vector: pairs, correct, ties, Σmargin, Σloss, Σreward, min, max."""
    with torch.no_grad():
        rc, rr = rewards_chosen.detach().double(), rewards_rejected.detach().double()
        losses = pairwise_losses(rc, rr, None if margin is None else margin.double())
        if center_rewards_coefficient:
            losses = losses + center_rewards_coefficient * centering_penalty(rc, rr)
        both = torch.cat([rc, rr])
        return torch.stack(
            [
                torch.tensor(float(rc.numel()), dtype=torch.float64, device=rc.device),
                (rc > rr).sum().double(),
                (rc == rr).sum().double(),
                (rc - rr).sum(),
                losses.sum(),
                both.sum(),
                both.min() if both.numel() else torch.tensor(float("inf"), dtype=torch.float64, device=rc.device),
                both.max() if both.numel() else torch.tensor(float("-inf"), dtype=torch.float64, device=rc.device),
            ]
        )


def empty_statistics(num_sums: int = len(_SUM_KEYS)) -> torch.Tensor:
    """The statistics of nothing (`num_sums` zero sums, then min and max): the neutral element of
    `merge_statistics`."""
    return torch.tensor([0.0] * num_sums + [float("inf"), float("-inf")], dtype=torch.float64)


def merge_statistics(stats: torch.Tensor) -> torch.Tensor:
    """Combine a stack of statistics vectors (batches or processes) into one: sums add, min/max take min/max.

    Any vector laid out as sums followed by a minimum and a maximum (pairs here, rankings in `rewardlab.ranking`).
    """
    stats = stats.reshape(-1, stats.shape[-1])
    return torch.cat([stats[:, :-2].sum(0), stats[:, -2].min()[None], stats[:, -1].max()[None]])


def summarize_statistics(stats: torch.Tensor) -> dict[str, float]:
    """Turn merged sums into TRL's metric names (plus `ties` and `num_pairs`); empty input gives {}."""
    values = dict(zip(_SUM_KEYS, stats[: len(_SUM_KEYS)].tolist(), strict=True))
    n = values["num_pairs"]
    if n == 0:
        return {}
    return {
        "loss": values["loss_sum"] / n,
        "accuracy": values["correct"] / n,
        "margin": values["margin_sum"] / n,
        "ties": values["ties"] / n,
        "min_reward": float(stats[-2]),
        "mean_reward": values["reward_sum"] / (2 * n),
        "max_reward": float(stats[-1]),
        "num_pairs": int(n),
    }


def preference_metrics(
    rewards_chosen: np.ndarray,
    rewards_rejected: np.ndarray,
    margin: np.ndarray | None = None,
    center_rewards_coefficient: float | None = None,
) -> dict[str, float]:
    """Exact metrics over a whole evaluation set given every pair's rewards."""
    rc = torch.as_tensor(np.asarray(rewards_chosen, dtype=np.float64).reshape(-1))
    rr = torch.as_tensor(np.asarray(rewards_rejected, dtype=np.float64).reshape(-1))
    m = None if margin is None else torch.as_tensor(np.asarray(margin, dtype=np.float64).reshape(-1))
    return summarize_statistics(batch_statistics(rc, rr, m, center_rewards_coefficient))
