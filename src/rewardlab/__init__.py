"""rewardlab: train, evaluate and serve Bradley-Terry reward models; a drop-in for TRL's RewardTrainer."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from rewardlab._version import __version__ as __version__

# Imported on first use: `import rewardlab` (and `rewardlab --help`) should not pay for importing torch/transformers.
_EXPORTS = {
    "RewardConfig": "rewardlab.config",
    "RewardTrainer": "rewardlab.train.trainer",
    "DataCollatorForPreference": "rewardlab.layout.collate",
    "RewardlabError": "rewardlab.errors",
    "InvalidRowError": "rewardlab.errors",
    "RewardModel": "rewardlab.score.reward_model",
    "PairScores": "rewardlab.score.reward_model",
    "RankingScores": "rewardlab.score.reward_model",
    "RewardFunction": "rewardlab.score.rl",
    "RewardEnsemble": "rewardlab.score.ensemble",
}
__all__ = [
    "DataCollatorForPreference",
    "InvalidRowError",
    "PairScores",
    "RankingScores",
    "RewardConfig",
    "RewardEnsemble",
    "RewardFunction",
    "RewardModel",
    "RewardTrainer",
    "RewardlabError",
]

if TYPE_CHECKING:
    from rewardlab.config import RewardConfig
    from rewardlab.errors import InvalidRowError, RewardlabError
    from rewardlab.layout.collate import DataCollatorForPreference
    from rewardlab.score.ensemble import RewardEnsemble
    from rewardlab.score.reward_model import PairScores, RankingScores, RewardModel
    from rewardlab.score.rl import RewardFunction
    from rewardlab.train.trainer import RewardTrainer


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rewardlab' has no attribute {name!r}")
