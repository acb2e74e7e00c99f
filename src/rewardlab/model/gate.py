"""A prompt gate next to the heads of a multi-objective reward model: it weighs the K objective heads by prompt.

The heads and the gate read the same final hidden state h. For a response, h is the response's readout, and the heads
give its K rewards; for the prompt alone, the gate's K logits, through a softmax, give the weight of each head, and
the combined reward is Σ_k gate_k · head_k. The gate sees the prompt only, so every response to a prompt is weighed
alike. It is a linear map (a softmax regression on the prompt's representation): the backbone under it is trained
too, and the prompts of different objectives are easy to tell apart.

The heads keep the ordinary `num_labels=K` head's keys (`score.weight`, or `classifier.weight`/`.bias` for
encoders), so plain `transformers` loads the checkpoint and gives the K head logits. The gate is stored next to them
(`<head>.gate_weight`, `<head>.gate_bias`), which plain `transformers` reports as unused keys and ignores;
`config.rewardlab_gate = True` tells rewardlab to load it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rewardlab.errors import RewardlabError
from rewardlab.model.heads import saved_head_tensors, trained_head
from rewardlab.model.parts import score_head_name, split_encoder_and_head, unwrap_reward_model

CONFIG_KEY = "rewardlab_gate"
PROMPT_TOKENS_KEY = "rewardlab_gate_prompt_tokens"  # an encoder's gate reads at most this many prompt tokens
# Plain `from_pretrained` reports these as unexpected; rewardlab restores them next (`restore_gate`).
GATE_KEYS = (r"\.gate_weight$", r"\.gate_bias$")


class GatedHeads(nn.Module):
    """K objective heads (`weight` (K, in_features), `bias` (K,) or None) and a gate (`gate_weight` (K,
    in_features), `gate_bias` (K,)): output (..., 2K), the K head rewards then the K gate logits."""

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, gate_weight: torch.Tensor, gate_bias: torch.Tensor
    ):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)
        self.gate_weight = nn.Parameter(gate_weight)
        self.gate_bias = nn.Parameter(gate_bias)

    @property
    def num_objectives(self) -> int:
        return self.weight.shape[0]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # One matmul for heads and gate: the fast path reads the output at every token of a packed row.
        bias = torch.cat([self.bias if self.bias is not None else torch.zeros_like(self.gate_bias), self.gate_bias])
        return F.linear(hidden, torch.cat([self.weight, self.gate_weight]), bias)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, objectives={self.num_objectives}, outputs=[heads, gate]"


def gate_of(model: nn.Module) -> GatedHeads | None:
    """The model's trained `GatedHeads` (inside any wrapper, PEFT's copy included), or None."""
    head = trained_head(model)
    return head if isinstance(head, GatedHeads) else None


def has_gate(model: nn.Module) -> bool:
    return gate_of(model) is not None


def gate_prompt_tokens(model: nn.Module) -> int | None:
    """The most prompt tokens the model's gate reads (its first and its last ones), or None: the whole prompt."""
    return getattr(unwrap_reward_model(model).config, PROMPT_TOKENS_KEY, None)


def install_gate(model: nn.Module, prompt_tokens: int | None = None) -> GatedHeads:
    """Add a gate next to the model's K objective heads (a `num_labels=K` Linear head, kept as it is).

    The gate starts at zero, so it weighs the heads equally until it learns; its bias is 0. `prompt_tokens` caps
    the prompt an encoder's gate reads (its first token, [CLS], and its last `prompt_tokens - 1`): an encoder reads
    the prompt in a forward of its own, which the cap keeps short. A causal model's gate reads the prompt inside the
    prefix its responses share, nearly free, so it takes no cap.
    """
    inner = unwrap_reward_model(model)
    if prompt_tokens is not None:
        try:
            split_encoder_and_head(inner)
        except ValueError:
            raise RewardlabError(
                "gate_prompt_tokens caps the prompt an encoder's gate reads in a forward of its own; a causal model's "
                "gate reads the whole prompt where its responses share it, for a token or two: leave it unset"
            ) from None
        inner.config.update({PROMPT_TOKENS_KEY: int(prompt_tokens)})
    name = score_head_name(inner)
    head = getattr(inner, name)
    if isinstance(head, GatedHeads):
        return head
    if not isinstance(head, nn.Linear) or head.out_features < 2:
        raise RewardlabError(f"a gate weighs the heads of a multi-objective model (num_labels >= 2), got {head}")
    like = head.weight
    gate_weight = torch.zeros_like(like)
    gate_bias = torch.zeros(like.shape[0], device=like.device, dtype=like.dtype)
    bias = None if head.bias is None else head.bias.detach().clone()
    setattr(inner, name, GatedHeads(like.detach().clone(), bias, gate_weight, gate_bias))
    inner.config.rewardlab_gate = True
    return getattr(inner, name)


def restore_gate(model: nn.Module, directory: str) -> None:
    """Give a model loaded by plain `from_pretrained` (which kept only the K heads) its saved gate back.

    Does nothing for a checkpoint without one (no `rewardlab_gate` in its config).
    """
    if not getattr(model.config, CONFIG_KEY, False):
        return
    inner, name, head, saved = saved_head_tensors(model, directory, ["gate_weight", "gate_bias"], "a gate")
    if "gate_bias" not in saved:
        raise RewardlabError(f"{directory}: config says it has a gate, but no `{name}.gate_bias` is saved")
    bias = None if head.bias is None else head.bias.detach()
    setattr(inner, name, GatedHeads(head.weight.detach(), bias, saved["gate_weight"], saved["gate_bias"]))
