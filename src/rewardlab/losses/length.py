"""The length terms of `length_debias`, on plain tensors: what takes response length out of the saved reward.

Against length bias (`length_debias`), a term is added to either preference loss, over the S responses of one
forward (a per-device batch, or one micro-batch), with ρ the Pearson correlation over those responses and L their
lengths. With `length_decorrelation_scope='prompt'`, r and L are first taken relative to the mean of the responses
to the same prompt (`within_group_deviations`): only how the reward follows length between answers to one prompt counts.
The term:

* `correlation`: `λ_Q * |ρ(r, L)|` on the one reward head.
* `odin` (Chen et al. 2024, "ODIN: Disentangled Reward Mitigates Hacking in RLHF"): two heads on one hidden state,
  quality q and length l; the preference loss above is computed on r = q + l, plus
  `λ_Q * |ρ(q, L)| - λ_L * ρ(l, L)` (`length_decorrelation_loss`) `+ λ_O * |w_q . w_l|` (the heads' weights kept
  orthogonal; `rewardlab.model.length_head` computes it). The quality head is the reward that is saved and used.
"""

from __future__ import annotations

import torch


def pearson_correlation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of two (S,) tensors, differentiable in both; 0 when either is constant (or S < 2), where
    it is undefined and there is nothing to decorrelate."""
    x, y = x - x.mean(), y.to(x.dtype) - y.to(x.dtype).mean()
    variances = (x * x).sum() * (y * y).sum()
    defined = variances > 0
    # No branch on the value (a host sync every step on a GPU), and no gradient through the undefined case's
    # denominator (which would be NaN): the substitute 1 is never used.
    return torch.where(defined, (x * y).sum() * torch.rsqrt(torch.where(defined, variances, 1.0)), 0.0)


def within_group_deviations(values: torch.Tensor, groups: torch.Tensor, num_groups: int) -> torch.Tensor:
    """(S,) `values` minus the mean of their group; `groups` (S,) is each value's group index in [0, num_groups)."""
    values = values.to(torch.promote_types(values.dtype, torch.float32))
    sums = values.new_zeros(num_groups).index_add(0, groups, values)
    counts = values.new_zeros(num_groups).index_add(0, groups, torch.ones_like(values))
    return values - (sums / counts.clamp_min(1))[groups]


def length_decorrelation_loss(
    quality: torch.Tensor,
    lengths: torch.Tensor,
    decorrelation_coefficient: float,
    length_rewards: torch.Tensor | None = None,
    length_head_coefficient: float = 0.0,
) -> torch.Tensor:
    """`λ_Q * |ρ(quality, L)| - λ_L * ρ(length_rewards, L)` over S responses (see the module docstring).

    `quality`, `lengths` and `length_rewards` are (S,); without `length_rewards` (one head) only the first term.
    Pass them through `within_group_deviations` first to correlate each response with the others to its prompt
    only (`length_decorrelation_scope='prompt'`). Returns a scalar.
    """
    loss = decorrelation_coefficient * pearson_correlation(quality, lengths).abs()
    if length_rewards is not None:
        loss = loss - length_head_coefficient * pearson_correlation(length_rewards, lengths)
    return loss
