"""A multi-objective reward model folded into an ordinary one: the K objective heads weighed into one `num_labels=1`
head, for tools that read one logit (TRL's `reward_funcs="<path>"`, vLLM's pooling runner, a `text-classification`
pipeline).

The heads are linear maps of the same hidden state, so Σ_k w_k (W_k h + b_k) = (Σ_k w_k W_k) h + Σ_k w_k b_k: the
folded head gives exactly the weighed reward, for any input. A prompt gate cannot be folded (its weights depend on
the prompt, which a one-logit reader does not separate from the response): an export fixes the weights instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rewardlab.errors import RewardlabError
from rewardlab.model.gate import CONFIG_KEY as GATE_CONFIG_KEY
from rewardlab.model.gate import GatedHeads
from rewardlab.model.heads import objective_names
from rewardlab.model.parts import score_head_name, unwrap_reward_model


def fold_objective_heads(model: torch.nn.Module, weights: Sequence[float]) -> list[str]:
    """Replace `model`'s head per objective by one head giving Σ_k weights[k] * head_k (in place; `num_labels` becomes
    1). Returns the objectives folded, in head order."""
    objectives = objective_names(model)
    if objectives is None:
        raise RewardlabError("the model has one head already: there are no objectives to fold")
    if len(weights) != len(objectives):
        raise RewardlabError(f"{len(weights)} weights for {len(objectives)} objectives ({', '.join(objectives)})")
    inner = unwrap_reward_model(model)
    name = score_head_name(inner)
    head = getattr(inner, name)
    if not isinstance(head, (torch.nn.Linear, GatedHeads)):
        raise RewardlabError(f"the model's `{name}` is a {type(head).__name__}, not a linear head per objective")
    w = torch.as_tensor(list(weights), dtype=head.weight.dtype, device=head.weight.device)
    in_features = head.weight.shape[1]
    folded = torch.nn.Linear(in_features, 1, bias=head.bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        folded.weight.copy_(w[None, :] @ head.weight)
        if head.bias is not None:
            folded.bias.copy_(w @ head.bias)
    setattr(inner, name, folded)
    inner.config.num_labels = 1  # also resets id2label to one label
    if hasattr(inner.config, GATE_CONFIG_KEY):  # the gate is not part of the folded model
        delattr(inner.config, GATE_CONFIG_KEY)
    inner.num_labels = 1
    return objectives
