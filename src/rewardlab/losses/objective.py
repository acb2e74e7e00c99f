"""The training objective of a reward model: from the rewards of one forward to the loss it minimises.

`reward_objective` is the one place where the pieces meet: the preference loss (Bradley-Terry on pairs, or the
run's ranking loss), its margin, centring and bootstrap weights, the length terms of `length_debias`, and the share
of a micro-batch. It also says which reward a saved model gives (`saved_reward`: an ensemble's mean, the quality
head of a length-debiased model) and what evaluation gathers (`evaluated_rewards`). The trainer calls it for the loss
and the logged statistics; a new loss term goes here, on plain tensors, and the trainer does not change.

Shapes: rewards are (S,) for one head, (S, N) for an ensemble of N heads, (S, 2) = [quality, length] with
`length_debias='odin'`, (S, K) for K objectives; a gated model's outputs are (S + B, 2K) on a batch that ends with
its B prompts (`rewardlab.losses.gate`). A batch of pairs holds its S = 2B sequences as all chosen, then all
rejected; a batch of rankings is flat, prompt after prompt, with `group_sizes` (G,) and `scores` (S,).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardlab.choices import BATCH, GATE_LABELS, ODIN, PAIRWISE, PLACKETT_LUCE, PROMPT
from rewardlab.errors import RewardlabError
from rewardlab.losses.gate import (
    PROMPTS_KEY,
    combined_rewards,
    gate_correct,
    gate_loss,
    split_prompt_outputs,
)
from rewardlab.losses.length import length_decorrelation_loss, pearson_correlation, within_group_deviations
from rewardlab.losses.preference import bradley_terry_loss, pairwise_ranking_loss, per_response, plackett_luce_loss


@dataclass(frozen=True)
class ObjectiveOptions:
    """The settings of the objective, as the `RewardConfig` fields of the same names (`from_args` reads them)."""

    center_rewards_coefficient: float | None = None
    ranking_loss: str = PAIRWISE
    ranking_margin_scale: float = 0.0
    length_debias: str | None = None
    length_decorrelation_scope: str = BATCH
    length_decorrelation_coefficient: float = 1.0
    length_head_coefficient: float = 1.0
    head_orthogonality_coefficient: float = 1.0
    gate: str = GATE_LABELS
    gate_coefficient: float = 1.0

    @classmethod
    def from_args(cls, args: Any) -> ObjectiveOptions:
        """The options of a `RewardConfig` (or anything with its fields)."""
        return cls(**{name: getattr(args, name) for name in cls.__dataclass_fields__})


@dataclass
class Objective:
    """What one forward's objective gives.

    `loss`: the scalar to minimise (a micro-batch's already scaled by its `loss_weight`). `fitted`: the rewards the
    preference loss fits (for pairs, chosen then rejected). `saved`: (S,) the reward a saved model gives.
    `logged_loss`: for rankings, the saved reward's own ranking loss, unweighted (what training logs as `loss`).
    `length_correlations`: (3,) [ρ(saved reward, length), ρ(length head, length) or 0, 1] when the batch carries
    `response_lengths`, summed by the trainer into the logged `length_correlation` means; else None.
    """

    loss: torch.Tensor
    fitted: torch.Tensor
    saved: torch.Tensor
    logged_loss: torch.Tensor | None = None
    length_correlations: torch.Tensor | None = None


def head_mean(rewards: torch.Tensor) -> torch.Tensor:
    """The ensemble's reward: the mean over heads of rewards shaped (..., N); an ordinary model's (...) unchanged."""
    return rewards.mean(-1) if rewards.dim() >= 2 else rewards


def own_objective_rewards(rewards: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
    """(S,) each sequence's reward from the head of its example's objective, of a multi-objective model's (S, K)
    rewards (`objective_id`, one per pair or ranking, in `batch`); other rewards unchanged."""
    if "objective_id" not in batch:
        return rewards
    ids = per_response(batch["objective_id"].to(rewards.device), batch)
    return rewards.gather(1, ids[:, None]).squeeze(1)


def evaluated_rewards(
    rewards: torch.Tensor, options: ObjectiveOptions, batch: Mapping[str, Any] | None = None
) -> torch.Tensor:
    """What evaluation gathers: the quality head of a length-debiased model (S,), every head of an ensemble
    (S, N), whose mean is the saved reward and whose spread is the uncertainty, each sequence's own objective's
    head of a multi-objective model (S,), or for a gated one (S, 3): [own objective's head, the combined reward,
    1.0 where the gate weighs the example's own objective most]."""
    if batch is not None and PROMPTS_KEY in batch:
        heads, gate_logits = split_prompt_outputs(rewards, batch)
        correct = per_response(gate_correct(gate_logits, batch["objective_id"]), batch)
        own, combined = own_objective_rewards(heads, batch), combined_rewards(heads, gate_logits, batch)
        return torch.stack([own, combined, correct.to(own.dtype)], dim=-1)
    if batch is not None:
        rewards = own_objective_rewards(rewards, batch)
    return rewards[:, 0] if options.length_debias == ODIN else rewards


def saved_reward(rewards: torch.Tensor, options: ObjectiveOptions) -> torch.Tensor:
    """(S,) the reward a saved model gives, of the rewards the model computes in training."""
    return head_mean(evaluated_rewards(rewards, options))


def ranking_loss(
    rewards: torch.Tensor,
    scores: torch.Tensor,
    group_sizes: Sequence[int],
    options: ObjectiveOptions,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The run's ranking loss (`options.ranking_loss`) of flat rewards (S[, N]) and scores (S,)."""
    if options.ranking_loss == PLACKETT_LUCE:
        return plackett_luce_loss(rewards, scores, group_sizes, options.center_rewards_coefficient, weights)
    return pairwise_ranking_loss(
        rewards, scores, group_sizes, options.ranking_margin_scale, options.center_rewards_coefficient, weights
    )


def reward_objective(
    rewards: torch.Tensor,
    batch: Mapping[str, Any],
    options: ObjectiveOptions,
    *,
    head_orthogonality: torch.Tensor | None = None,
    training: bool = True,
) -> Objective:
    """The loss of one forward's `rewards` on `batch` (a collator's batch: `margin`, `scores` and `group_sizes` for
    rankings, `bootstrap_weights`, `response_lengths`, `loss_weight`, `objective_id`, each optional).

    A multi-objective model's rewards are (S, K), one head per objective: each pair (or ranking) is fitted, centred
    and margined on its own objective's head (`objective_id`), so a head learns from its objective's pairs only. With
    a prompt gate the batch ends with its prompts, and the gate's loss (`options.gate`, times `gate_coefficient`) is
    added; the saved reward is then the combined one.

    `head_orthogonality`: the length model's |w_q . w_l| (`rewardlab.model.length_head`), needed with
    `length_debias='odin'`. `training=False` skips what only training logs (the ranking `logged_loss`, the length
    correlations).
    """
    ranking = "group_sizes" in batch
    heads, gate_logits = split_prompt_outputs(rewards, batch)
    rewards = own_objective_rewards(heads, batch)  # several objectives: each pair is its objective's
    fitted, length_term, correlations = _length_terms(rewards, batch, options, head_orthogonality, ranking, training)
    weights = batch.get("bootstrap_weights")
    scores, sizes = (batch["scores"], batch["group_sizes"].tolist()) if ranking else (None, None)

    def preference_loss(fitted: torch.Tensor) -> torch.Tensor:
        if ranking:
            return ranking_loss(fitted, scores, sizes, options, weights)
        chosen, rejected = fitted.chunk(2)
        return bradley_terry_loss(
            chosen, rejected, batch.get("margin"), options.center_rewards_coefficient, weights=weights
        )

    preference = preference_loss(fitted)
    loss = preference + length_term
    if gate_logits is not None:
        loss = loss + options.gate_coefficient * gate_loss(heads, gate_logits, batch, options.gate, preference_loss)
    if "loss_weight" in batch:  # a micro-batch: its share of the whole batch's mean loss
        loss = loss * batch["loss_weight"]
    saved = saved_reward(rewards, options) if gate_logits is None else combined_rewards(heads, gate_logits, batch)
    logged = None
    if ranking and training:
        with torch.no_grad():
            # The logged loss is the saved reward's, unweighted: for one head without bootstrap, the loss itself.
            plain = rewards.dim() == 1 and weights is None and not options.length_debias and gate_logits is None
            logged = preference if plain else ranking_loss(saved, scores, sizes, options)
    return Objective(loss, fitted, saved, logged, correlations)


def _length_terms(
    rewards: torch.Tensor,
    batch: Mapping[str, Any],
    options: ObjectiveOptions,
    head_orthogonality: torch.Tensor | None,
    ranking: bool,
    training: bool,
) -> tuple[torch.Tensor, torch.Tensor | float, torch.Tensor | None]:
    """The rewards the preference loss fits, the term that takes length out of the saved reward, and the length
    correlations to log: for 'odin', quality + length and the heads' decorrelation and orthogonality terms; for
    'correlation', the rewards themselves and their decorrelation term."""
    lengths = batch.get("response_lengths")
    if lengths is None:
        if options.length_debias:
            raise RewardlabError(
                "length_debias needs each response's length, which rewardlab's collators give "
                "(`response_lengths`): leave data_collator unset, or use DataCollatorForPreference("
                "with_response_lengths=True)"
            )
        return rewards, 0.0, None
    odin = options.length_debias == ODIN
    quality, length = (rewards[:, 0], rewards[:, 1]) if odin else (head_mean(rewards), None)
    fitted = quality + length if odin else rewards
    if options.length_decorrelation_scope == PROMPT:  # each response against the others to its prompt
        num_groups = len(batch["group_sizes"]) if ranking else len(lengths) // 2
        group = per_response(torch.arange(num_groups, device=lengths.device), batch)
        quality, lengths = (within_group_deviations(x, group, num_groups) for x in (quality, lengths))
        length = None if length is None else within_group_deviations(length, group, num_groups)
    correlations = _length_correlations(lengths, quality, length) if training else None
    if not options.length_debias:
        return fitted, 0.0, correlations
    term = length_decorrelation_loss(
        quality, lengths, options.length_decorrelation_coefficient, length, options.length_head_coefficient
    )
    if odin:
        if head_orthogonality is None:
            raise RewardlabError("length_debias='odin' needs the length model's head_orthogonality")
        term = term + options.head_orthogonality_coefficient * head_orthogonality
    return fitted, term, correlations


def _length_correlations(lengths: torch.Tensor, quality: torch.Tensor, length: torch.Tensor | None) -> torch.Tensor:
    """(3,) [ρ(quality, L), ρ(length head, L) or 0, 1], detached, in float64."""
    with torch.no_grad():
        lengths = lengths.double()
        first = pearson_correlation(quality.double(), lengths)
        second = lengths.new_zeros(()) if length is None else pearson_correlation(length.double(), lengths)
        return torch.stack([first, second, lengths.new_ones(())])
