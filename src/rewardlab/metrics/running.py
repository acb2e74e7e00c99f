"""Training and evaluation metrics of pairs and rankings, kept as sums so they are exact over any number of batches
and processes.

TRL averages per-batch means, which is wrong under a ragged last batch (batches of 5, 5, 2 pairs with 3, 3, 0 correct
report 0.60; the true accuracy is 6/12 = 0.50). Here every batch contributes sums and counts, and the ratios are taken
once at the end. A statistics vector is laid out as sums followed by a minimum and a maximum (`merge_statistics`),
for pairs (`batch_statistics`) and for rankings (`ranking_statistics`, whose sums are `RANKING_SUM_KEYS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rewardlab.losses import centering_penalty, groups, ordered_pairs, pair_losses

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
        losses = pair_losses(rc, rr, None if margin is None else margin.double())
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

    Any vector laid out as sums followed by a minimum and a maximum (pairs or rankings).
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


def _ranking_counts(rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int]) -> dict[str, float]:
    """One pass over the prompts with pairs: pairs ranked right, reward ties and margin sum over the ordered pairs,
    and prompts whose best-scored response alone has the highest reward."""
    out = {"pairs_correct": 0, "pairs": 0, "top1_correct": 0, "prompts": 0, "pair_ties": 0, "margin_sum": 0.0}
    for r, s in groups(rewards, scores, group_sizes):
        better, worse = ordered_pairs(s)
        if better.numel() == 0:
            continue
        diff = r[better] - r[worse]
        out["pairs"] += better.numel()
        out["pairs_correct"] += int((diff > 0).sum())
        out["pair_ties"] += int((diff == 0).sum())
        out["margin_sum"] += float(diff.sum())
        out["prompts"] += 1
        top = r == r.max()
        out["top1_correct"] += int(bool((s[top] == s.max()).all()) and int(top.sum()) == 1)
    return out


def ranking_accuracy(rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int]) -> dict[str, int]:
    """Sums for exact metrics: pairs ranked right (`pairs_correct` of `pairs`, reward ties count as wrong) and
    prompts whose highest reward belongs, alone, to a best-scored response (`top1_correct` of `prompts`)."""
    counts = _ranking_counts(rewards, scores, group_sizes)
    return {k: counts[k] for k in ("pairs_correct", "pairs", "top1_correct", "prompts")}


# Order of the sums in a ranking statistics vector (then the minimum and maximum reward), see `merge_statistics`.
RANKING_SUM_KEYS = (
    "prompts",
    "pairs",
    "pairs_correct",
    "pair_ties",
    "top1_correct",
    "margin_sum",
    "loss_sum",
    "reward_sum",
    "responses",
)


def ranking_statistics(rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int], loss: torch.Tensor):
    """Sums over a batch of rankings as a float64 vector (`RANKING_SUM_KEYS`, min, max), exact when merged.

    `rewards` are (S,) (an ensemble's mean); `loss` is the batch's mean loss over its prompts with pairs.
    """
    with torch.no_grad():
        r = rewards.detach().double()
        counts = _ranking_counts(r, scores.detach().double(), group_sizes)
        counts["loss_sum"] = float(loss.detach()) * counts["prompts"]
        counts["reward_sum"], counts["responses"] = float(r.sum()), r.numel()
        extremes = [float(r.min()), float(r.max())] if r.numel() else [float("inf"), float("-inf")]
        return torch.tensor([counts[k] for k in RANKING_SUM_KEYS] + extremes, dtype=torch.float64)


def summarize_ranking_statistics(stats: torch.Tensor) -> dict[str, float]:
    """Metric names of merged ranking sums: `accuracy` is over all ordered pairs, `top1_accuracy` over prompts."""
    values = dict(zip(RANKING_SUM_KEYS, stats[: len(RANKING_SUM_KEYS)].tolist(), strict=True))
    if values["prompts"] == 0:
        return {}
    pairs = values["pairs"]
    return {
        "loss": values["loss_sum"] / values["prompts"],
        "accuracy": values["pairs_correct"] / pairs,
        "top1_accuracy": values["top1_correct"] / values["prompts"],
        "margin": values["margin_sum"] / pairs,
        "ties": values["pair_ties"] / pairs,
        "min_reward": float(stats[-2]),
        "mean_reward": values["reward_sum"] / values["responses"],
        "max_reward": float(stats[-1]),
        "num_prompts": int(values["prompts"]),
        "num_pairs": int(pairs),
    }
