"""Deep ensembles: several separately trained reward models scored as one, with their disagreement.

Heads on one trunk (`rewardlab.model.heads`) are cheap but agree closely, and their spread grows with the margin
rather than with the chance of a mistake (see `BENCHMARKS.md`, "Ensemble uncertainty on real data"). Separately
trained members (each fine-tuned in full, e.g. `rewardlab train --ensemble_bootstrap true --seed k`) differ in the
trunk too; this module combines their rewards.

Bradley-Terry fixes a model's scale (P(chosen > rejected) = sigmoid(r_c - r_r)) but not its offset: adding a constant
to every reward changes no prediction, so two members trained alike differ by an arbitrary constant, and the spread
of their raw rewards for one response would measure those constants. Each member's rewards are therefore centred
first, minus the mean reward its training run saved from its last evaluation (`RewardModel.normalization["mean"]`).
The scale is kept, so margins stay in the members' own units. The ensemble's reward is the members' mean, its
uncertainty their standard deviation (ddof=1). A member that is itself a heads ensemble counts with its mean reward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.errors import RewardlabError
from rewardlab.score.reward_model import PairScores, RankingScores, RewardModel, pair_rows
from rewardlab.score.shaping import normalize_rewards


class RewardEnsemble:
    """Score with several reward models at once: mean reward and standard deviation across members.

    Build it from loaded models, `RewardEnsemble([RewardModel, ...])`, or from saved ones,
    `RewardEnsemble.from_pretrained([path, ...])`. It scores like a `RewardModel` (`score_texts`, `score`,
    `score_pairs`, `score_pair_rows`, `score_rankings`, with `return_std` for single responses), so `RewardFunction` and
    `rewardlab eval --ensemble` take it as they take one model.

    Args:
        members: two or more `RewardModel`s; each tokenizes and truncates as its own training run did.
        center: subtract each member's saved mean reward first (see the module docstring). A member trained without
            an evaluation set has no saved mean: give it one with `RewardModel(..., normalization={"mean": m,
            "std": s})`. False: raw rewards; fine for pairs (margins ignore offsets), wrong for single responses.
        normalization: {"mean", "std"} of the ensemble's reward, used by `normalize` (none is saved for ensembles).
    """

    def __init__(
        self,
        members: Sequence[RewardModel],
        *,
        center: bool = True,
        normalization: Mapping[str, float] | None = None,
    ):
        members = list(members)
        if len(members) < 2:
            raise RewardlabError(f"an ensemble needs at least 2 reward models, got {len(members)}")
        self.members = members
        self.offsets = np.zeros(len(members))
        if center:
            for k, member in enumerate(members):
                if not member.normalization or member.normalization.get("mean") is None:
                    raise RewardlabError(
                        f"ensemble member {k} ({_name(member)}) has no saved mean reward to centre it with: train it "
                        "with an evaluation set, give it normalization={'mean': ..., 'std': ...}, or use center=False "
                        "(only for pairs)"
                    )
                self.offsets[k] = member.normalization["mean"]
        self.normalization = dict(normalization) if normalization else None

    @classmethod
    def from_pretrained(
        cls,
        paths_or_ids: Sequence[str],
        *,
        center: bool = True,
        normalization: Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> RewardEnsemble:
        """Load each saved reward model with `RewardModel.from_pretrained(path, **kwargs)`."""
        if isinstance(paths_or_ids, str):
            raise RewardlabError("give the ensemble's models as a list of paths or hub ids, not one string")
        members = [RewardModel.from_pretrained(path, **kwargs) for path in paths_or_ids]
        return cls(members, center=center, normalization=normalization)

    @property
    def has_uncertainty(self) -> bool:
        """Always True: the members' standard deviation is the uncertainty (`return_std`, `uncertainty_penalty`)."""
        return True

    def score_texts(
        self, texts: Sequence[str], return_std: bool = False
    ) -> list[float] | tuple[list[float], list[float]]:
        """`RewardModel.score_texts` of every member, combined (see the class docstring)."""
        return self._combine([member.score_texts(texts) for member in self.members], return_std)

    def score(
        self, prompts: Sequence[Any], completions: Sequence[Any], return_std: bool = False, **chat_template_kwargs: Any
    ) -> list[float] | tuple[list[float], list[float]]:
        """`RewardModel.score` of every member, combined (see the class docstring)."""
        rewards = [member.score(prompts, completions, **chat_template_kwargs) for member in self.members]
        return self._combine(rewards, return_std)

    def score_pairs(
        self, chosen: Sequence[Any], rejected: Sequence[Any], prompts: Sequence[Any] | None = None
    ) -> PairScores:
        """`RewardModel.score_pairs` of every member, combined: see `score_pair_rows`."""
        return self.score_pair_rows(pair_rows(chosen, rejected, prompts))

    def score_pair_rows(self, rows: Sequence[Mapping[str, Any]]) -> PairScores:
        """Pairs scored by every member. Rewards are the centred members' mean; `prob_chosen` is the mean of the
        members' probabilities (the deep ensemble's predictive probability); `std_chosen`/`std_rejected`/
        `std_margin` are the standard deviations across members; token counts are the first member's."""
        scores = [member.score_pair_rows(rows) for member in self.members]
        chosen = self._centred([s.rewards_chosen for s in scores])
        rejected = self._centred([s.rewards_rejected for s in scores])
        return PairScores(
            rewards_chosen=chosen.mean(1).tolist(),
            rewards_rejected=rejected.mean(1).tolist(),
            prob_chosen=np.array([s.prob_chosen for s in scores]).mean(0).tolist(),
            chosen_tokens=scores[0].chosen_tokens,
            rejected_tokens=scores[0].rejected_tokens,
            chosen_full_tokens=scores[0].chosen_full_tokens,
            rejected_full_tokens=scores[0].rejected_full_tokens,
            std_chosen=chosen.std(1, ddof=1).tolist(),
            std_rejected=rejected.std(1, ddof=1).tolist(),
            std_margin=(chosen - rejected).std(1, ddof=1).tolist(),
        )

    def score_rankings(self, rows: Sequence[Mapping[str, Any]]) -> RankingScores:
        """Ranked rows scored by every member (`RewardModel.score_rankings`): each reward is the centred members'
        mean, `std` their standard deviation; token counts are the first member's."""
        scores = [member.score_rankings(rows) for member in self.members]
        rewards, std = [], []
        for row in range(len(scores[0].rewards)):
            per_member = self._centred([s.rewards[row] for s in scores])
            rewards.append(per_member.mean(1).tolist())
            std.append(per_member.std(1, ddof=1).tolist())
        return RankingScores(rewards, scores[0].response_tokens, scores[0].full_tokens, std)

    def normalize(self, rewards: Sequence[float]) -> list[float]:
        """(reward - mean) / std with the ensemble's `normalization`."""
        return normalize_rewards(rewards, self.normalization, "pass normalization={'mean': ..., 'std': ...}")

    def _centred(self, per_member: list[list[float]]) -> np.ndarray:
        """(items, members) rewards, each member's offset removed; NaN (inputs dropped for length) stays NaN."""
        return np.array(per_member, dtype=np.float64).T - self.offsets

    def _combine(
        self, per_member: list[list[float]], return_std: bool
    ) -> list[float] | tuple[list[float], list[float]]:
        rewards = self._centred(per_member)
        mean = rewards.mean(1).tolist()
        return (mean, rewards.std(1, ddof=1).tolist()) if return_std else mean


def members_of(scorer: RewardModel | RewardEnsemble) -> list[RewardModel]:
    """The `RewardModel`s that `scorer` scores with: an ensemble's members, or the model itself."""
    return scorer.members if isinstance(scorer, RewardEnsemble) else [scorer]


def _name(member: RewardModel) -> str:
    return member.source or type(member.model).__name__
