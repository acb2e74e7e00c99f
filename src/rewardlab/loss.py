"""The Bradley-Terry preference loss, on plain tensors.

Rewards are (B,) for an ordinary reward model, or (B, N) for an ensemble of N heads (`rewardlab.ensemble`): each head
then gets its own Bradley-Terry loss and the loss is their mean, so every head learns as if it were alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_losses(
    rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pair (and per-head) `-log σ(r_c - r_r - margin)`; logsigmoid keeps it finite for large negative
    differences. A margin (B,) applies to every head."""
    diff = rewards_chosen - rewards_rejected
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

    `weights`, shaped like the rewards, multiply each pair's loss (the bootstrap weights of ensemble heads); the
    mean is still taken over all pairs, so a micro-batch's loss scales linearly with its share of the batch.
    """
    losses = pairwise_losses(rewards_chosen, rewards_rejected, margin)
    if center_rewards_coefficient:
        losses = losses + center_rewards_coefficient * centering_penalty(rewards_chosen, rewards_rejected)
    if weights is not None:
        losses = losses * weights.to(losses.dtype)
    return losses.mean()
