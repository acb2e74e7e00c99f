"""The losses of a reward model, on plain tensors.

- `preference`: Bradley-Terry for pairs, pairwise and Plackett-Luce for rankings, all on one per-pair term;
- `length`: the length terms of `length_debias` (decorrelation from response length);
- `gate`: a multi-objective model's prompt gate: the combined reward it gives and the losses it learns from;
- `objective`: `reward_objective`, the training objective that puts them together for one forward, and which reward
  a saved model gives.
"""

from rewardlab.losses.gate import PROMPTS_KEY, combined_rewards, gate_loss, split_prompt_outputs
from rewardlab.losses.length import length_decorrelation_loss, pearson_correlation, within_group_deviations
from rewardlab.losses.objective import (
    Objective,
    ObjectiveOptions,
    evaluated_rewards,
    head_mean,
    own_objective_rewards,
    ranking_loss,
    reward_objective,
    saved_reward,
)
from rewardlab.losses.preference import (
    bradley_terry_loss,
    centering_penalty,
    groups,
    ordered_pair_rewards,
    ordered_pairs,
    pair_losses,
    pairwise_ranking_loss,
    plackett_luce_loss,
    split_groups,
)

__all__ = [
    "PROMPTS_KEY",
    "Objective",
    "ObjectiveOptions",
    "bradley_terry_loss",
    "centering_penalty",
    "combined_rewards",
    "evaluated_rewards",
    "gate_loss",
    "groups",
    "head_mean",
    "length_decorrelation_loss",
    "ordered_pair_rewards",
    "ordered_pairs",
    "own_objective_rewards",
    "pair_losses",
    "pairwise_ranking_loss",
    "pearson_correlation",
    "plackett_luce_loss",
    "ranking_loss",
    "reward_objective",
    "saved_reward",
    "split_groups",
    "split_prompt_outputs",
    "within_group_deviations",
]
