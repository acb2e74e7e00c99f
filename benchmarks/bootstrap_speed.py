"""Bootstrap intervals of the evaluation report: rewardlab's vectorised resampling vs `scipy.stats.bootstrap`.

rewardlab computes every bootstrapped statistic (accuracy, log-loss, ECE, Brier, both reward-length correlations,
accuracy per length group and per category) from a few matrix products per block of resamples
(`rewardlab.metrics.intervals`). This times that against scipy's own bootstrap (percentile method, the same number
of resamples) computing the statistics one at a time, vectorised where scipy can (means) and per resample where it
cannot (the rank correlation), and prints both intervals so they can be compared.

    python benchmarks/bootstrap_speed.py --pairs 2000 --resamples 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import stats

from rewardlab.metrics.intervals import bootstrap_intervals


def synthetic_set(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 400, size=(2, n)).astype(float)
    quality = rng.normal(size=n)
    return {
        "rewards_chosen": quality + 0.002 * lengths[0] + rng.normal(scale=0.5, size=n),
        "rewards_rejected": 0.002 * lengths[1] + rng.normal(scale=0.5, size=n),
        "chosen_lengths": lengths[0],
        "rejected_lengths": lengths[1],
        "categories": np.array(["helpful", "harmless", "code", "math"])[rng.integers(0, 4, n)],
    }


def scipy_intervals(data: dict[str, np.ndarray], resamples: int, seed: int) -> dict[str, list[float]]:
    """The same kinds of statistics with scipy.stats.bootstrap, one call per statistic."""
    rc, rr = data["rewards_chosen"], data["rewards_rejected"]
    lc, lr = data["chosen_lengths"], data["rejected_lengths"]
    correct = (rc > rr).astype(float)
    loss = np.logaddexp(0.0, -(rc - rr))
    options = {"n_resamples": resamples, "method": "percentile", "random_state": seed}
    out = {}
    for name, values in (("accuracy", correct), ("log_loss", loss), ("mean_margin", rc - rr)):
        out[name] = stats.bootstrap((values,), np.mean, vectorized=True, **options).confidence_interval

    def spearman(i: np.ndarray) -> float:
        return stats.spearmanr(np.concatenate([rc[i], rr[i]]), np.concatenate([lc[i], lr[i]])).statistic

    index = np.arange(len(rc))
    out["length_spearman"] = stats.bootstrap((index,), spearman, vectorized=False, **options).confidence_interval
    for name in np.unique(data["categories"]):
        values = correct[data["categories"] == name]
        out[f"category:{name}"] = stats.bootstrap((values,), np.mean, vectorized=True, **options).confidence_interval
    return {k: [float(v.low), float(v.high)] for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = synthetic_set(args.pairs)
    times = {"rewardlab": [], "scipy": []}
    for repeat in range(args.repeats):
        start = time.perf_counter()
        ours = bootstrap_intervals(**data, n_bootstrap=args.resamples, seed=repeat)
        times["rewardlab"].append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = scipy_intervals(data, args.resamples, seed=repeat)
        times["scipy"].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"pairs={args.pairs} resamples={args.resamples} repeats={args.repeats}")
    print(f"rewardlab: {median['rewardlab']:.2f} s for {len(ours)} statistics")
    print(f"scipy:     {median['scipy']:.2f} s for {len(theirs)} statistics")
    print(f"ratio (scipy / rewardlab): {median['scipy'] / median['rewardlab']:.1f}x")
    for key in theirs:
        ours_text = f"[{ours[key][0]:.4f}, {ours[key][1]:.4f}]"
        print(f"  {key:24} rewardlab {ours_text}  scipy [{theirs[key][0]:.4f}, {theirs[key][1]:.4f}]")


if __name__ == "__main__":
    main()
