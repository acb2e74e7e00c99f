"""Scoring with trained reward models: plain texts, prompt + completion, pairs; for evaluation, files and RL.

- `reward_model`: `RewardModel`, one saved model scoring exactly as training computed it (`PairScores` for pairs,
  `RankingScores` for K responses per prompt);
- `ensemble`: `RewardEnsemble`, several separately trained models scored as one, with their disagreement;
- `shaping`: normalized and uncertainty-penalised rewards, shared by the RL reward function and the server;
- `objectives`: which head of a multi-objective model gives the reward, or how its heads are weighed;
- `rl`: `RewardFunction`, the reward function TRL's GRPO/RLOO trainers take;
- `rows`: every row of a dataset scored into reward columns, resumably.
"""

from rewardlab.score.ensemble import RewardEnsemble, members_of
from rewardlab.score.reward_model import PairScores, RankingScores, RewardModel
from rewardlab.score.rl import RewardFunction

__all__ = ["PairScores", "RankingScores", "RewardEnsemble", "RewardFunction", "RewardModel", "members_of"]
