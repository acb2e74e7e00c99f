"""A trained reward model as a reward function for RL trainers (TRL's GRPOTrainer and RLOOTrainer `reward_funcs`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardlab.score.ensemble import RewardEnsemble
from rewardlab.score.reward_model import RewardModel
from rewardlab.score.shaping import check_shaping, shape_rewards


class RewardFunction:
    """`reward_fn(prompts, completions, **kwargs) -> list[float]`, the signature TRL's `reward_funcs` accept.

    Prompts and completions are strings (standard) or message lists (conversational); both are scored as training
    scored them, on the fast path: the completions of one prompt (a GRPO group) compute the prompt once. With the
    model's `overlength_policy="drop"`, an over-length completion gets None (TRL leaves it out of the reward). A
    multi-objective model with a prompt gate gives the gate's combined reward; `objective=` or `weights=` (passed on
    to `RewardModel`) choose a head or fixed weights instead.

    Args:
        model: a `RewardModel` or `RewardEnsemble`; a path / hub id given to `RewardModel.from_pretrained` with
            `model_kwargs`; or a list of them, loaded as a deep ensemble by `RewardEnsemble.from_pretrained`.
        normalize: return (reward - mean) / std with the statistics training saved from its last evaluation, so that
            rewards of different models (or ensembles) share a scale.
        uncertainty_penalty: k >= 0 for an ensemble (of heads, `ensemble_heads` in training, or of separately
            trained models): the reward is the conservative `mean - k * std`, which pays the policy less where the
            ensemble disagrees, i.e. where the reward model is unsure (a mitigation of reward hacking, Coste et al.
            2023). 0: the mean.
        name: how RL trainers log this reward (`rewards/<name>/mean`).
    """

    def __init__(
        self,
        model: str | Sequence[str] | RewardModel | RewardEnsemble,
        normalize: bool = False,
        uncertainty_penalty: float = 0.0,
        name: str = "rewardlab",
        **model_kwargs: Any,
    ):
        if isinstance(model, (RewardModel, RewardEnsemble)):
            self.reward_model = model
        elif isinstance(model, str):
            self.reward_model = RewardModel.from_pretrained(model, **model_kwargs)
        else:
            self.reward_model = RewardEnsemble.from_pretrained(model, **model_kwargs)
        check_shaping(self.reward_model, normalize, uncertainty_penalty)
        self.normalize = normalize
        self.uncertainty_penalty = uncertainty_penalty
        self.__name__ = name  # TRL names a reward function's metrics after its __name__

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if self.uncertainty_penalty:
            mean, std = self.reward_model.score(prompts, completions, return_std=True)
        else:
            mean, std = self.reward_model.score(prompts, completions), None
        normalization = self.reward_model.normalization if self.normalize else None
        rewards, _ = shape_rewards(mean, std, normalization=normalization, uncertainty_penalty=self.uncertainty_penalty)
        return rewards
