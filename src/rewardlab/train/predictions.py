"""The trainer's evaluation outputs and the exact metrics computed from them, as plain functions.

`Trainer` gathers what `prediction_step` returns across batches and processes (dropping the padding duplicates of
the last batch), so the metrics are computed once over the whole set:
- pairs: logits (P, 2[, N]) hold each pair's [r_chosen, r_rejected] (N heads of an ensemble), labels (P,) margins;
- rankings: logits (G, K_max[, N]) hold each prompt's rewards and labels (G, 1 + K_max) its K then its K scores;
  what lies past K is padding, whatever its value.

In a multi-objective run each reward is its own objective's head's, and the labels start with one more column, the
objective (pairs: (P, 2) [objective, margin]; rankings: (G, 2 + K_max) [objective, K, scores...]: first, where the
padding of batches of different widths cannot move it), so that each objective's metrics are computed on its own
examples too. A model with a prompt gate gives three values per reward (last dimension): its own objective's head's,
the combined reward, and 1.0 where the gate weighs the example's own objective most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from rewardlab.losses import ordered_pair_rewards
from rewardlab.metrics.running import preference_metrics, ranking_statistics, summarize_ranking_statistics
from rewardlab.metrics.uncertainty import pair_uncertainty, uncertainty_metrics

# The ranking loss of a run, as a function of (rewards, scores, group sizes): for the logged evaluation loss.
RankingObjective = Callable[[torch.Tensor, torch.Tensor, Sequence[int]], torch.Tensor]


def pair_predictions(
    rewards_chosen: torch.Tensor,
    rewards_rejected: torch.Tensor,
    margin: torch.Tensor | None,
    objective_id: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (P, 2[, N]), labels (P,) or, with objectives, (P, 2)) of a batch of pairs; labels are the margins, 0
    without, after the objectives."""
    if margin is None:
        margin = torch.zeros(rewards_chosen.shape[0], dtype=torch.float, device=rewards_chosen.device)
    labels = margin.float()
    if objective_id is not None:
        labels = torch.stack([objective_id.to(labels), labels], dim=1)
    return torch.stack([rewards_chosen, rewards_rejected], dim=1).float(), labels


def ranking_predictions(
    rewards: torch.Tensor, scores: torch.Tensor, group_sizes: Sequence[int], objective_id: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (G, K_max[, N]), labels (G, 1 + K_max [+ 1])) of a batch of rankings with flat rewards (S[, N])."""
    rows = list(torch.split(rewards.float(), list(group_sizes)))
    labels = [torch.cat([s.new_tensor([len(s)]), s]) for s in torch.split(scores, list(group_sizes))]
    pad = torch.nn.utils.rnn.pad_sequence
    labels = pad(labels, batch_first=True).float()
    if objective_id is not None:
        labels = torch.cat([objective_id.to(labels)[:, None], labels], dim=1)
    return pad(rows, batch_first=True), labels


def batch_predictions(rewards: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """What `prediction_step` returns for a batch's evaluated rewards: its pairs' or its rankings' (logits, labels),
    with each example's objective in a multi-objective run."""
    objective = batch.get("objective_id")
    if "group_sizes" in batch:
        return ranking_predictions(rewards, batch["scores"], batch["group_sizes"].tolist(), objective)
    return pair_predictions(*rewards.chunk(2), batch.get("margin"), objective)


def rankings_from_predictions(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Flat rewards ((S,) or (S, N) for an ensemble), scores (S,) and group sizes from gathered ranking outputs."""
    sizes = [int(k) for k in labels[:, 0]]
    rewards = np.concatenate([row[:k] for row, k in zip(predictions, sizes, strict=True)]).astype(np.float64)
    scores = np.concatenate([row[1 : 1 + k] for row, k in zip(labels, sizes, strict=True)]).astype(np.float64)
    return rewards, scores, sizes


def evaluation_metrics(
    predictions: np.ndarray,
    labels: np.ndarray,
    *,
    ranking_objective: RankingObjective | None = None,
    center_rewards_coefficient: float | None = None,
    objectives: Sequence[str] | None = None,
    gated: bool = False,
) -> tuple[dict[str, Any], np.ndarray]:
    """The exact metrics of gathered evaluation outputs (rankings when `ranking_objective` is given), and the
    rewards they were computed from (the heads' mean for an ensemble), flattened.

    An ensemble's rewards have a last dimension of heads: its metrics are those of the heads' mean, plus how the
    heads' disagreement relates to the mistakes. With `objectives` (the labels start with each example's objective),
    each objective's metrics on its own examples are added as `<metric>_<objective>`. With `gated` (a model with a
    prompt gate) the main metrics are the combined reward's, each objective's its own head's, and `gate_accuracy`
    (with `gate_accuracy_<objective>`) is how often the gate weighs the example's objective most.
    """
    if objectives:
        which, labels = labels[:, 0].astype(np.int64), labels[:, 1:]
        if ranking_objective is None:
            labels = labels[:, 0]
        gate_right = predictions[:, 0, 2] if gated else None  # every response of an example carries it
        own_rewards = predictions[..., 0] if gated else predictions
        metrics, rewards = evaluation_metrics(
            predictions[..., 1] if gated else predictions,
            labels,
            ranking_objective=ranking_objective,
            center_rewards_coefficient=center_rewards_coefficient,
        )
        if gated:
            metrics["gate_accuracy"] = float(gate_right.mean())
        for k, name in enumerate(objectives):
            mine = which == k
            if mine.any():
                own, _ = evaluation_metrics(
                    own_rewards[mine],
                    labels[mine],
                    ranking_objective=ranking_objective,
                    center_rewards_coefficient=center_rewards_coefficient,
                )
                metrics.update({f"{key}_{name}": value for key, value in own.items()})
                if gated:
                    metrics[f"gate_accuracy_{name}"] = float(gate_right[mine].mean())
        return metrics, rewards
    if ranking_objective is not None:
        rewards, scores, sizes = rankings_from_predictions(predictions, labels)
        ensemble = rewards.ndim == 2
        mean = rewards.mean(-1) if ensemble else rewards
        mean_t, scores_t = torch.as_tensor(mean), torch.as_tensor(scores)
        loss = ranking_objective(mean_t, scores_t, sizes)
        metrics = summarize_ranking_statistics(ranking_statistics(mean_t, scores_t, sizes, loss))
        pairs = ordered_pair_rewards(rewards, scores, sizes) if ensemble else None
    else:
        rewards = predictions.astype("float64")
        ensemble = rewards.ndim == 3
        mean = rewards.mean(-1) if ensemble else rewards
        metrics = preference_metrics(mean[:, 0], mean[:, 1], labels, center_rewards_coefficient)
        pairs = (rewards[:, 0], rewards[:, 1]) if ensemble else None
    if pairs is not None:
        metrics.update(uncertainty_metrics(*pair_uncertainty(*pairs)))
    return metrics, mean.ravel()
