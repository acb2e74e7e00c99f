"""Losses and metrics for rankings: K responses to one prompt, each with a score (higher is better, ties allowed).

A batch is flat: `rewards` and `scores` hold every response of every prompt, prompt after prompt, and
`group_sizes` says how many responses each prompt has. Formulas, for one prompt with rewards r and scores s:

* Pairwise (InstructGPT): the Bradley-Terry loss averaged over the P ordered pairs (i, j) with s_i > s_j,
  `L = (1/P) * sum -log sigmoid(r_i - r_j - m_ij)`, with `m_ij = margin_scale * (s_i - s_j)` (0 by default).
  Each prompt's pairs are averaged first, so every prompt weighs the same whatever its K, as in InstructGPT; the
  batch loss is the mean over prompts that have at least one pair.
* Plackett-Luce (listwise): the negative log-likelihood of the ranking, sorted best first, under
  `P(first | remaining) = exp(r_first) / sum_{remaining} exp(r)`. Tied responses share one step (Breslow's
  approximation): a tie group G met while the responses R remain contributes `-sum_{i in G} r_i + |G| * logsumexp_R(r)`.
  The last group contributes nothing when it is alone; the loss is divided by the number of responses that had
  another response still remaining, and the batch loss is the mean over prompts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def split_groups(values: torch.Tensor, group_sizes: Sequence[int]) -> list[torch.Tensor]:
    if sum(group_sizes) != values.shape[0]:
        raise ValueError(f"group sizes add up to {sum(group_sizes)}, but there are {values.shape[0]} responses")
    return list(torch.split(values, list(group_sizes)))


def groups(
    rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each prompt's (rewards, scores)."""
    return zip(split_groups(rewards, group_sizes), split_groups(scores, group_sizes), strict=True)


def ordered_pairs(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (better, worse) of every pair of responses with different scores."""
    better, worse = torch.nonzero(scores[:, None] > scores[None, :], as_tuple=True)
    return better, worse


def _weighted_mean(per_prompt: list[torch.Tensor], kept: list[int], weights: torch.Tensor | None) -> torch.Tensor:
    """Mean over prompts of per-prompt losses ((,) or (N,) per head), each head's times its bootstrap weight."""
    losses = torch.stack(per_prompt)
    if weights is not None:
        losses = losses * weights[kept].to(losses.dtype)
    return losses.mean()


def pairwise_ranking_loss(
    rewards: torch.Tensor,
    scores: torch.Tensor,
    group_sizes: Sequence[int],
    margin_scale: float = 0.0,
    center_coefficient: float | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over prompts of the mean Bradley-Terry loss over their ordered pairs (see the module docstring).

    `rewards` is (S,), or (S, N) for an ensemble of N heads (each head's loss, then their mean); `weights` (G, N)
    are per-prompt bootstrap weights of the heads. `center_coefficient` adds `c * (r_i + r_j)^2` to each pair's loss.
    """
    losses, kept = [], []
    for g, (r, s) in enumerate(groups(rewards, scores, group_sizes)):
        better, worse = ordered_pairs(s)
        if better.numel() == 0:  # every response tied: nothing to learn from this prompt
            continue
        diff = r[better] - r[worse]
        margin = margin_scale * (s[better] - s[worse]).to(r.dtype)
        pair_losses = -F.logsigmoid(diff - (margin[:, None] if diff.dim() == 2 else margin))
        if center_coefficient:
            pair_losses = pair_losses + center_coefficient * (r[better] + r[worse]) ** 2
        losses.append(pair_losses.mean(0))
        kept.append(g)
    if not losses:
        return rewards.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) intact
    return _weighted_mean(losses, kept, weights)


def plackett_luce_loss(
    rewards: torch.Tensor,
    scores: torch.Tensor,
    group_sizes: Sequence[int],
    center_coefficient: float | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over prompts of the Plackett-Luce negative log-likelihood with Breslow ties (module docstring).

    `rewards`, `weights` and `center_coefficient` as in `pairwise_ranking_loss` (the centring term is the mean of
    `(r_i + r_j)^2` over the prompt's ordered pairs).
    """
    losses, kept = [], []
    for g, (r, s) in enumerate(groups(rewards, scores, group_sizes)):
        levels = torch.unique(s, sorted=True).flip(0)  # best score first
        if levels.numel() < 2:
            continue
        total, steps = r.new_zeros(r.shape[1:]), 0
        remaining = torch.ones_like(s, dtype=torch.bool)
        for level in levels[:-1]:  # the last group, alone, has probability 1
            group = s == level
            total = total - r[group].sum(0) + group.sum() * torch.logsumexp(r[remaining], dim=0)
            steps += int(group.sum())
            remaining = remaining & ~group  # a new mask: autograd keeps the old one for r[remaining]
        loss = total / steps
        if center_coefficient:
            better, worse = ordered_pairs(s)
            loss = loss + center_coefficient * ((r[better] + r[worse]) ** 2).mean(0)
        losses.append(loss)
        kept.append(g)
    if not losses:
        return rewards.sum() * 0.0
    return _weighted_mean(losses, kept, weights)


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
    "prompts", "pairs", "pairs_correct", "pair_ties", "top1_correct", "margin_sum", "loss_sum", "reward_sum",
    "responses",
)  # fmt: skip


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


def rankings_from_predictions(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Flat rewards ((S,) or (S, N) for an ensemble), scores (S,) and group sizes from the trainer's evaluation
    output: rewards (prompts, K_max[, N]) and labels (prompts, 1 + K_max) holding K, then the K scores."""
    sizes = [int(k) for k in labels[:, 0]]
    rewards = np.concatenate([row[:k] for row, k in zip(predictions, sizes, strict=True)]).astype(np.float64)
    scores = np.concatenate([row[1 : 1 + k] for row, k in zip(labels, sizes, strict=True)]).astype(np.float64)
    return rewards, scores, sizes


def ranking_pairs(rewards: np.ndarray, scores: np.ndarray, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The rewards of the better and of the worse response of every ordered pair, over all prompts."""
    better, worse, start = [], [], 0
    for k in sizes:
        s = torch.as_tensor(scores[start : start + k])
        b, w = ordered_pairs(s)
        better.append(b.numpy() + start)
        worse.append(w.numpy() + start)
        start += k
    better, worse = np.concatenate(better), np.concatenate(worse)
    return rewards[better], rewards[worse]
