"""The Bradley-Terry preference loss, on plain tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_losses(
    rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pair `-log σ(r_c - r_r - margin)`; logsigmoid keeps it finite for large negative differences."""
    diff = rewards_chosen - rewards_rejected
    if margin is not None:
        diff = diff - margin.to(diff.dtype)
    return -F.logsigmoid(diff)


def centering_penalty(rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair `(r_c + r_r)^2`: Bradley-Terry ignores a shared offset, this pins the rewards' mean near zero."""
    return (rewards_chosen + rewards_rejected) ** 2


def bradley_terry_loss(
    rewards_chosen: torch.Tensor,
    rewards_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_rewards_coefficient: float | None = None,
) -> torch.Tensor:
    """Mean Bradley-Terry loss over the pairs, plus `coefficient * mean((r_c + r_r)^2)` when centring is on."""
    loss = pairwise_losses(rewards_chosen, rewards_rejected, margin).mean()
    if center_rewards_coefficient:
        loss = loss + center_rewards_coefficient * centering_penalty(rewards_chosen, rewards_rejected).mean()
    return loss
