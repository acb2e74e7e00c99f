"""The preference losses, on plain tensors: Bradley-Terry for pairs, pairwise and Plackett-Luce for rankings.

Every loss here is built on one per-pair term, `pair_losses`: `-log σ(r_better - r_worse - margin)`. Rewards are
(B,) for an ordinary reward model, or (B, N) for an ensemble of N heads (`rewardlab.model.heads`): each head then
gets its own loss and the loss is their mean, so every head learns as if it were alone.

A batch of rankings (K responses to one prompt, each with a score, higher is better, ties allowed) is flat:
`rewards` and `scores` hold every response of every prompt, prompt after prompt, and `group_sizes` says how many
responses each prompt has. For one prompt with rewards r and scores s:

* Pairwise (InstructGPT): the Bradley-Terry loss averaged over the P ordered pairs (i, j) with s_i > s_j,
  `L = (1/P) * sum -log σ(r_i - r_j - m_ij)`, with `m_ij = margin_scale * (s_i - s_j)` (0 by default).
  Each prompt's pairs are averaged first, so every prompt weighs the same whatever its K, as in InstructGPT; the
  batch loss is the mean over prompts that have at least one pair.
* Plackett-Luce (listwise): the negative log-likelihood of the ranking, sorted best first, under
  `P(first | remaining) = exp(r_first) / sum_{remaining} exp(r)`. Tied responses share one step (Breslow's
  approximation): a tie group G met while the responses R remain contributes `-sum_{i in G} r_i + |G| * logsumexp_R(r)`.
  The last group contributes nothing when it is alone; the loss is divided by the number of responses that had
  another response still remaining, and the batch loss is the mean over prompts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def pair_losses(
    rewards_better: torch.Tensor, rewards_worse: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pair (and per-head) `-log σ(r_better - r_worse - margin)`: (B,) or (B, N) like the rewards.

    logsigmoid keeps it finite for large negative differences. A margin (B,) applies to every head.
    """
    diff = rewards_better - rewards_worse
    if margin is not None:
        margin = margin.to(diff.dtype)
        diff = diff - (margin[:, None] if diff.dim() == 2 else margin)
    return -F.logsigmoid(diff)


def centering_penalty(rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair `(r_c + r_r)^2`: Bradley-Terry ignores a shared offset, this pins the rewards' mean near zero."""
    return (rewards_chosen + rewards_rejected) ** 2


def bradley_terry_loss(
    rewards_chosen: torch.Tensor,
    rewards_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_rewards_coefficient: float | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean Bradley-Terry loss over the pairs, plus `coefficient * mean((r_c + r_r)^2)` when centring is on.

    Rewards are (B,) or (B, N); `margin` is (B,). `weights`, shaped like the rewards, multiply each pair's loss (the
    bootstrap weights of ensemble heads); the mean is still taken over all pairs, so a micro-batch's loss scales
    linearly with its share of the batch. Returns a scalar.
    """
    losses = pair_losses(rewards_chosen, rewards_rejected, margin)
    if center_rewards_coefficient:
        losses = losses + center_rewards_coefficient * centering_penalty(rewards_chosen, rewards_rejected)
    if weights is not None:
        losses = losses * weights.to(losses.dtype)
    return losses.mean()


def split_groups(values: torch.Tensor, group_sizes: Sequence[int]) -> list[torch.Tensor]:
    """`values` (S, ...) cut into one tensor per prompt, (K_g, ...) each."""
    if sum(group_sizes) != values.shape[0]:
        raise ValueError(f"group sizes add up to {sum(group_sizes)}, but there are {values.shape[0]} responses")
    return list(torch.split(values, list(group_sizes)))


def per_response(values: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
    """(S, ...) each response's row of per-example `values` (B, ...): a ranking's to each of its responses, a pair's
    to its chosen and its rejected sequence."""
    if "group_sizes" in batch:
        return torch.repeat_interleave(values, batch["group_sizes"].to(values.device), dim=0)
    return torch.cat([values, values])


def groups(
    rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each prompt's (rewards, scores)."""
    return zip(split_groups(rewards, group_sizes), split_groups(scores, group_sizes), strict=True)


def ordered_pairs(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (better, worse) of every pair of responses with different scores, for one prompt's (K,) scores."""
    better, worse = torch.nonzero(scores[:, None] > scores[None, :], as_tuple=True)
    return better, worse


def ordered_pair_rewards(
    rewards: np.ndarray, scores: np.ndarray, group_sizes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The rewards of the better and of the worse response of every ordered pair, over all prompts: two (P, ...)."""
    better, worse, start = [], [], 0
    for k in group_sizes:
        b, w = ordered_pairs(torch.as_tensor(scores[start : start + k]))
        better.append(b.numpy() + start)
        worse.append(w.numpy() + start)
        start += k
    better, worse = np.concatenate(better), np.concatenate(worse)
    return rewards[better], rewards[worse]


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

    `rewards` is (S,), or (S, N) for an ensemble of N heads (each head's loss, then their mean); `scores` (S,);
    `weights` (G, N) are per-prompt bootstrap weights of the heads. `center_coefficient` adds `c * (r_i + r_j)^2` to
    each pair's loss. Returns a scalar.
    """
    losses, kept = [], []
    for g, (r, s) in enumerate(groups(rewards, scores, group_sizes)):
        better, worse = ordered_pairs(s)
        if better.numel() == 0:  # every response tied: nothing to learn from this prompt
            continue
        margin = margin_scale * (s[better] - s[worse]).to(r.dtype)
        per_pair = pair_losses(r[better], r[worse], margin)
        if center_coefficient:
            per_pair = per_pair + center_coefficient * centering_penalty(r[better], r[worse])
        losses.append(per_pair.mean(0))
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

    `rewards`, `scores`, `weights` and `center_coefficient` as in `pairwise_ranking_loss` (the centring term is the
    mean of `(r_i + r_j)^2` over the prompt's ordered pairs). Returns a scalar.
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
            loss = loss + center_coefficient * centering_penalty(r[better], r[worse]).mean(0)
        losses.append(loss)
        kept.append(g)
    if not losses:
        return rewards.sum() * 0.0
    return _weighted_mean(losses, kept, weights)
