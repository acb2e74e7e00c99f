"""The training objective as one plain function (`rewardlab.losses.objective.reward_objective`)."""

import pytest
import torch

from rewardlab.errors import RewardlabError
from rewardlab.losses import (
    ObjectiveOptions,
    bradley_terry_loss,
    length_decorrelation_loss,
    pairwise_ranking_loss,
    plackett_luce_loss,
    reward_objective,
    saved_reward,
)


def test_pairs_with_margin_centring_and_a_micro_batch_share():
    rewards = torch.tensor([1.0, 0.2, -0.5, 0.3, 0.1, 0.4])  # three chosen, then three rejected
    batch = {"margin": torch.tensor([0.5, 0.0, 1.0]), "loss_weight": torch.tensor(0.25)}
    options = ObjectiveOptions(center_rewards_coefficient=0.01)
    objective = reward_objective(rewards, batch, options)
    expected = bradley_terry_loss(rewards[:3], rewards[3:], batch["margin"], 0.01) * 0.25
    assert torch.equal(objective.loss, expected)
    assert torch.equal(objective.saved, rewards) and objective.length_correlations is None


@pytest.mark.parametrize("ranking_loss", ["pairwise", "plackett_luce"])
def test_rankings_use_the_runs_ranking_loss_and_log_the_saved_rewards(ranking_loss):
    rewards = torch.tensor([[0.5, 0.7], [0.1, -0.2], [0.3, 0.3], [1.0, 0.0], [0.2, 0.4]])  # an ensemble of 2 heads
    scores = torch.tensor([3.0, 1.0, 2.0, 1.0, 0.0])
    batch = {"scores": scores, "group_sizes": torch.tensor([3, 2])}
    options = ObjectiveOptions(ranking_loss=ranking_loss)
    objective = reward_objective(rewards, batch, options)
    loss = plackett_luce_loss if ranking_loss == "plackett_luce" else pairwise_ranking_loss
    assert torch.allclose(objective.loss, loss(rewards, scores, [3, 2]))
    assert torch.equal(objective.saved, rewards.mean(-1))
    assert torch.allclose(objective.logged_loss, loss(rewards.mean(-1), scores, [3, 2]))


def test_odin_fits_quality_plus_length_and_saves_the_quality_head():
    rewards = torch.tensor([[1.0, 0.5], [0.2, 0.1], [0.0, 0.3], [0.4, -0.2]])  # [quality, length], pairs
    lengths = torch.tensor([10.0, 4.0, 7.0, 2.0])
    batch = {"response_lengths": lengths}
    options = ObjectiveOptions(length_debias="odin", head_orthogonality_coefficient=0.5)
    objective = reward_objective(rewards, batch, options, head_orthogonality=torch.tensor(0.2))
    fitted = rewards.sum(-1)
    expected = (
        bradley_terry_loss(fitted[:2], fitted[2:])
        + length_decorrelation_loss(rewards[:, 0], lengths, 1.0, rewards[:, 1], 1.0)
        + 0.5 * 0.2
    )
    assert torch.allclose(objective.loss, expected)
    assert torch.equal(objective.saved, saved_reward(rewards, options)) and torch.equal(objective.saved, rewards[:, 0])
    assert objective.length_correlations.shape == (3,) and objective.length_correlations[2] == 1
    with pytest.raises(RewardlabError, match="head_orthogonality"):
        reward_objective(rewards, batch, options)


def test_length_debias_without_response_lengths_says_which_collator_gives_them():
    with pytest.raises(RewardlabError, match="response_lengths"):
        reward_objective(torch.zeros(4), {}, ObjectiveOptions(length_debias="correlation"))
