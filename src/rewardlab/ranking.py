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

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def split_groups(values: torch.Tensor, group_sizes: Sequence[int]) -> list[torch.Tensor]:
    if sum(group_sizes) != values.numel():
        raise ValueError(f"group sizes add up to {sum(group_sizes)}, but there are {values.numel()} responses")
    return list(torch.split(values, list(group_sizes)))


def ordered_pairs(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (better, worse) of every pair of responses with different scores."""
    better, worse = torch.nonzero(scores[:, None] > scores[None, :], as_tuple=True)
    return better, worse


def pairwise_ranking_loss(
    rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int], margin_scale: float = 0.0
) -> torch.Tensor:
    """Mean over prompts of the mean Bradley-Terry loss over their ordered pairs (see the module docstring)."""
    losses = []
    for r, s in zip(split_groups(rewards, group_sizes), split_groups(scores, group_sizes), strict=True):
        better, worse = ordered_pairs(s)
        if better.numel() == 0:  # every response tied: nothing to learn from this prompt
            continue
        margin = margin_scale * (s[better] - s[worse]).to(r.dtype)
        losses.append(-F.logsigmoid(r[better] - r[worse] - margin).mean())
    if not losses:
        return rewards.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) intact
    return torch.stack(losses).mean()


def plackett_luce_loss(rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int]) -> torch.Tensor:
    """Mean over prompts of the Plackett-Luce negative log-likelihood with Breslow ties (module docstring)."""
    losses = []
    for r, s in zip(split_groups(rewards, group_sizes), split_groups(scores, group_sizes), strict=True):
        levels = torch.unique(s, sorted=True).flip(0)  # best score first
        if levels.numel() < 2:
            continue
        total, steps = r.new_zeros(()), 0
        remaining = torch.ones_like(s, dtype=torch.bool)
        for level in levels[:-1]:  # the last group, alone, has probability 1
            group = s == level
            total = total - r[group].sum() + group.sum() * torch.logsumexp(r[remaining], dim=0)
            steps += int(group.sum())
            remaining &= ~group
        losses.append(total / steps)
    if not losses:
        return rewards.sum() * 0.0
    return torch.stack(losses).mean()


def ranking_accuracy(rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int]) -> dict[str, int]:
    """Sums for exact metrics: pairs ranked right (`pairs_correct` of `pairs`, reward ties count as wrong) and
    prompts whose highest reward belongs, alone, to a best-scored response (`top1_correct` of `prompts`)."""
    out = {"pairs_correct": 0, "pairs": 0, "top1_correct": 0, "prompts": 0}
    for r, s in zip(split_groups(rewards, group_sizes), split_groups(scores, group_sizes), strict=True):
        better, worse = ordered_pairs(s)
        if better.numel() == 0:
            continue
        out["pairs"] += better.numel()
        out["pairs_correct"] += int((r[better] > r[worse]).sum())
        out["prompts"] += 1
        top = r == r.max()
        out["top1_correct"] += int(bool((s[top] == s.max()).all()) and int(top.sum()) == 1)
    return out
