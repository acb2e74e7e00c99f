"""A length head next to the reward head, for ODIN training (`length_debias='odin'`, `rewardlab.losses`).

Both heads read the same final hidden state h: the quality head `w_q . h + b_q` and the length head `w_l . h + b_l`,
returned together as the last dimension (2) of the model's output, quality first. The quality head keeps the ordinary
`num_labels=1` head's keys (`score.weight`, or `classifier.weight`/`.bias` for encoders), so plain `transformers`,
`pipeline("text-classification")`, vLLM or any RL trainer loading the checkpoint get the quality (debiased) reward,
with no rewardlab code. The length head is stored next to it (`<head>.length_weight`, `<head>.length_bias`), which
plain `transformers` reports as unused keys and ignores; `config.rewardlab_length_head = True` tells rewardlab to load
it, so `RewardModel` can return both rewards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rewardlab.errors import RewardlabError
from rewardlab.model.heads import saved_head_tensors, trained_head
from rewardlab.model.parts import score_head_name, unwrap_reward_model

CONFIG_KEY = "rewardlab_length_head"
# Plain `from_pretrained` reports these as unexpected; rewardlab restores them next (`restore_length_head`).
LENGTH_HEAD_KEYS = (r"\.length_weight$", r"\.length_bias$")


class QualityAndLengthHead(nn.Module):
    """The quality head (`weight` (1, in_features), `bias` (1,)) and the length head (`length_weight`,
    `length_bias`): output (..., 2), [quality, length].

    `orthogonality` is `|w_q . w_l|` as of the last forward: it is computed there because sharded engines (FSDP,
    DeepSpeed ZeRO-3) hold the full weights only during the forward.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        length_weight: torch.Tensor,
        length_bias: torch.Tensor | None,
    ):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)
        self.length_weight = nn.Parameter(length_weight)
        self.length_bias = None if length_bias is None else nn.Parameter(length_bias)
        self.orthogonality: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        self.orthogonality = (self.weight * self.length_weight).sum().abs()
        bias = None if self.bias is None else torch.cat([self.bias, self.length_bias])
        return F.linear(hidden, torch.cat([self.weight, self.length_weight]), bias)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, outputs=[quality, length], bias={self.bias is not None}"


def length_head_of(model: nn.Module) -> QualityAndLengthHead | None:
    """The model's trained `QualityAndLengthHead` (inside any wrapper, PEFT's copy included), or None."""
    head = trained_head(model)
    return head if isinstance(head, QualityAndLengthHead) else None


def has_length_head(model: nn.Module) -> bool:
    return length_head_of(model) is not None


def install_length_head(model: nn.Module, seed: int = 0) -> QualityAndLengthHead:
    """Add a length head next to the model's `num_labels=1` linear head, which becomes the quality head as it is.

    The length head is drawn like the model's own initialisation (normal with std `config.initializer_range`, from
    `seed`), its bias 0.
    """
    inner = unwrap_reward_model(model)
    name = score_head_name(inner)
    head = getattr(inner, name)
    if isinstance(head, QualityAndLengthHead):
        return head
    if not isinstance(head, nn.Linear) or head.out_features != 1:
        raise RewardlabError(f"length_debias='odin' needs a one-output Linear score head `{name}`, got {head}")
    std = getattr(inner.config.get_text_config(), "initializer_range", 0.02)
    like = head.weight
    generator = torch.Generator().manual_seed(seed)
    length_weight = (torch.randn(like.shape, generator=generator) * std).to(device=like.device, dtype=like.dtype)
    length_bias = None if head.bias is None else torch.zeros_like(head.bias)
    bias = None if head.bias is None else head.bias.detach().clone()
    setattr(inner, name, QualityAndLengthHead(like.detach().clone(), bias, length_weight, length_bias))
    inner.config.rewardlab_length_head = True
    return getattr(inner, name)


def restore_length_head(model: nn.Module, directory: str) -> None:
    """Give a model loaded by plain `from_pretrained` (which kept only the quality head) its saved length head back.

    Does nothing for a checkpoint without one (no `rewardlab_length_head` in its config).
    """
    if not getattr(model.config, CONFIG_KEY, False):
        return
    inner, name, head, saved = saved_head_tensors(model, directory, ["length_weight", "length_bias"], "a length head")
    bias = None if head.bias is None else head.bias.detach()
    setattr(
        inner,
        name,
        QualityAndLengthHead(head.weight.detach(), bias, saved["length_weight"], saved.get("length_bias")),
    )
