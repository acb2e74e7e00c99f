"""Numbers from rewards: plain functions on tensors and arrays, never a model.

- `running`: sums of pairs and rankings that merge exactly over batches and processes (training and evaluation
  logs);
- `inputs`: the per-pair arrays every evaluation metric takes, and the notation they share;
- `pairs`: point metrics (accuracy, margin, log-loss, length bias, categories, sections, worst pairs);
- `calibration`: reliability bins, ECE, Brier score, the best temperature;
- `intervals`: 95% bootstrap intervals of all of the above, vectorised over resamples;
- `pair_evaluation`: `evaluate_pairs`, every metric of one set of pairs as one JSON-ready report;
- `baselines`, `best_of_n`, `ties`, `style_matrix`: the benchmarks' scoring rules and the content-blind rules;
- `uncertainty`: how an ensemble's disagreement relates to its mistakes.
"""

from rewardlab.metrics.intervals import bootstrap_intervals, uncertainty_gap
from rewardlab.metrics.pair_evaluation import evaluate_pairs, json_safe
from rewardlab.metrics.running import preference_metrics
from rewardlab.metrics.uncertainty import auroc, pair_uncertainty, uncertainty_metrics

__all__ = [
    "auroc",
    "bootstrap_intervals",
    "evaluate_pairs",
    "json_safe",
    "pair_uncertainty",
    "preference_metrics",
    "uncertainty_gap",
    "uncertainty_metrics",
]
