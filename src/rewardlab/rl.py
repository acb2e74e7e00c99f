"""A trained reward model as a reward function for RL trainers (TRL's GRPOTrainer and RLOOTrainer `reward_funcs`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.scoring import RewardModel


class RewardFunction:
    """`reward_fn(prompts, completions, **kwargs) -> list[float]`, the signature TRL's `reward_funcs` accept.

    Prompts and completions are strings (standard) or message lists (conversational); both are scored as training
    scored them, on the fast path: the completions of one prompt (a GRPO group) compute the prompt once. With the
    model's `overlength_policy="drop"`, an over-length completion gets None (TRL leaves it out of the reward).

    Args:
        model: a `RewardModel`, or a path / hub id given to `RewardModel.from_pretrained` with `model_kwargs`.
        normalize: return (reward - mean) / std with the statistics training saved from its last evaluation, so that
            rewards of different models (or ensembles) share a scale.
        uncertainty_penalty: k >= 0 for an ensemble (`ensemble_heads` in training): the reward is the conservative
            `mean - k * std` over the heads, which pays the policy less where the heads disagree, i.e. where the
            reward model is unsure (a mitigation of reward hacking, Coste et al. 2023). 0: the mean.
        name: how RL trainers log this reward (`rewards/<name>/mean`).
    """

    def __init__(
        self,
        model: str | RewardModel,
        normalize: bool = False,
        uncertainty_penalty: float = 0.0,
        name: str = "rewardlab",
        **model_kwargs: Any,
    ):
        self.reward_model = (
            model if isinstance(model, RewardModel) else RewardModel.from_pretrained(model, **model_kwargs)
        )
        if normalize and not self.reward_model.normalization:
            raise RewardlabError(
                "normalize=True needs the reward statistics saved by a training run with an evaluation set; this "
                "model has none"
            )
        if not math.isfinite(uncertainty_penalty) or uncertainty_penalty < 0:
            raise RewardlabError(f"uncertainty_penalty must be a finite number >= 0, got {uncertainty_penalty}")
        if uncertainty_penalty and self.reward_model.num_heads == 1:
            raise RewardlabError(
                "uncertainty_penalty needs an ensemble reward model (trained with ensemble_heads >= 2); this one has "
                "a single head"
            )
        self.normalize = normalize
        self.uncertainty_penalty = uncertainty_penalty
        self.__name__ = name  # TRL names a reward function's metrics after its __name__

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if self.uncertainty_penalty:
            mean, std = self.reward_model.score(prompts, completions, return_std=True)
        else:
            mean, std = self.reward_model.score(prompts, completions), None
        rewards = self.reward_model.normalize(mean) if self.normalize else mean
        if std is not None:
            scale = (self.reward_model.normalization["std"] or 1.0) if self.normalize else 1.0
            rewards = [r - self.uncertainty_penalty * s / scale for r, s in zip(rewards, std, strict=True)]
        # An input dropped by overlength_policy="drop" scores NaN; TRL's reward functions say "no reward" with None.
        return [None if math.isnan(r) else r for r in rewards]
