"""The prompt gate of a multi-objective reward model: the combined reward it gives and the losses it learns from.

A gated model (`rewardlab.model.gate`) outputs (…, 2K) per sequence: K head rewards, then K gate logits. A batch for
it ends with each example's prompt as one more sequence (`num_prompts` of them, `rewardlab.layout.collate.
add_prompts`): the responses' head rewards come from the first S rows, the gate's logits from the last B.

Shapes: rewards (S, K), gate logits (B, K), one row per example (pair or ranking); pairs hold their S = 2B sequences
as all chosen, then all rejected; rankings are flat, prompt after prompt, with `group_sizes` (B,).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from rewardlab.choices import GATE_BOTH, GATE_LABELS, GATE_PREFERENCE
from rewardlab.losses.preference import per_response

PROMPTS_KEY = "num_prompts"  # a batch whose last sequences are its examples' prompts, one each, for the gate


def split_prompt_outputs(outputs: torch.Tensor, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the responses' head rewards (S, K), the prompts' gate logits (B, K)) of a gated model's outputs (S + B, 2K)
    on a batch with prompts; (outputs, None) for any other model or batch."""
    if PROMPTS_KEY not in batch:
        return outputs, None
    n = int(batch[PROMPTS_KEY])
    rewards, _ = outputs[:-n].chunk(2, dim=-1)
    _, gate_logits = outputs[-n:].chunk(2, dim=-1)
    return rewards, gate_logits


def combined_rewards(rewards: torch.Tensor, gate_logits: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
    """(S,) Σ_k gate_k · head_k: each response's K head rewards weighed by its prompt's gate (softmax of the logits)."""
    weights = per_response(torch.softmax(gate_logits.float(), dim=-1), batch)
    return (weights * rewards.float()).sum(-1).to(rewards.dtype)


def gate_labels_loss(gate_logits: torch.Tensor, objective_id: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the gate on each example's objective: (B, K) logits, (B,) objective ids."""
    return F.cross_entropy(gate_logits.float(), objective_id.to(gate_logits.device))


def gate_loss(
    rewards: torch.Tensor,
    gate_logits: torch.Tensor,
    batch: Mapping[str, Any],
    how: str,
    preference_loss: Any,
) -> torch.Tensor:
    """The gate's loss, `how` it learns (`rewardlab.choices`: labels, preference or both).

    'preference' is `preference_loss` (the run's pair or ranking loss, a function of (S,) rewards) of the combined
    reward with the heads held fixed, so the gate learns to weigh them and each head stays its objective's own.
    """
    loss = gate_logits.new_zeros((), dtype=torch.float)
    if how in (GATE_LABELS, GATE_BOTH):
        loss = loss + gate_labels_loss(gate_logits, batch["objective_id"])
    if how in (GATE_PREFERENCE, GATE_BOTH):
        loss = loss + preference_loss(combined_rewards(rewards.detach(), gate_logits, batch))
    return loss


def gate_correct(gate_logits: torch.Tensor, objective_id: torch.Tensor) -> torch.Tensor:
    """(B,) 1.0 where the gate weighs the example's own objective most, else 0.0."""
    return (gate_logits.argmax(-1) == objective_id.to(gate_logits.device)).float()
