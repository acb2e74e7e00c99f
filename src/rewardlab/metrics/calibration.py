"""Calibration of a reward model's preference probabilities: reliability bins, ECE, Brier score, and the
temperature that calibrates them best. Notation and input rules: `rewardlab.metrics.inputs`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize
from scipy.special import expit

from rewardlab.errors import RewardlabError
from rewardlab.metrics.inputs import check_bins, evaluated_pairs, log_loss_terms, ratio

# Temperatures are searched within this factor of the mean |d| on either side: wide enough for any real optimum,
# and a hit on a bound is reported as such (separable data drives T to 0, worse-than-chance data drives T to ∞).
_TEMPERATURE_RANGE = 1e6


def bin_index(probabilities: np.ndarray, n_bins: int) -> np.ndarray:
    """The reliability bin of each probability."""
    # Bins [k/B, (k+1)/B) with the last closed at 1, so p = 1 lands in the top bin and not in a bin of its own.
    return np.minimum((probabilities * n_bins).astype(np.int64), n_bins - 1)


def reliability_bins(d: np.ndarray, n_bins: int, temperature: float = 1.0) -> list[dict[str, Any]]:
    """Reliability-diagram data of the symmetrised set, for reward margins `d` (no NaN) scaled by `temperature`.

    Each pair gives two items, `(p, outcome 1)` and `(q, outcome 0)` with `p = σ(d/T)`, `q = σ(−d/T) = 1 − p`.
    Items fall in `n_bins` equal-width bins `[k/B, (k+1)/B)` (the last one closed). Per bin: `count` items,
    `mean_predicted` = mean item probability, `observed_frequency` = mean item outcome (both NaN for an empty bin),
    and the bin edges `bin_lower`, `bin_upper`. Every bin is listed, empty or not, so plots have a fixed x-axis.
    """
    n_bins = check_bins(n_bins)
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    p, q = expit(d / temperature), expit(-d / temperature)
    bins_p, bins_q = bin_index(p, n_bins), bin_index(q, n_bins)
    count = np.bincount(bins_p, minlength=n_bins) + np.bincount(bins_q, minlength=n_bins)
    predicted = np.bincount(bins_p, weights=p, minlength=n_bins) + np.bincount(bins_q, weights=q, minlength=n_bins)
    outcome = np.bincount(bins_p, minlength=n_bins).astype(np.float64)
    return [
        {
            "bin_lower": k / n_bins,
            "bin_upper": (k + 1) / n_bins,
            "count": int(count[k]),
            "mean_predicted": ratio(float(predicted[k]), int(count[k])),
            "observed_frequency": ratio(float(outcome[k]), int(count[k])),
        }
        for k in range(n_bins)
    ]


def calibration(
    rewards_chosen: Any, rewards_rejected: Any, *, n_bins: int = 10, temperature: float = 1.0
) -> dict[str, Any]:
    """Calibration of `P(chosen ≻ rejected) = σ((r_c − r_r) / T)` (T = `temperature`, 1 for the raw model).

    Every pair's true outcome is "chosen wins", so calibration is measured on the symmetrised set in which each pair
    contributes two items, `(p, outcome 1)` and `(1 − p, outcome 0)` (2n items); on it a constant p = 0.5 is
    perfectly calibrated, as it should be for a model that knows nothing.

    - `ece = Σ_k (count_k / 2n) · |mean_predicted_k − observed_frequency_k|` over the `n_bins` equal-width bins of
      `reliability` (see `reliability_bins`), i.e. bins weighted by their item counts.
    - `brier = mean((1 − p)²)`: the Brier score of the symmetrised set, `((1−p)² + (0−(1−p))²) / 2` per pair.
    - `log_loss = mean(−log σ(d / T))`, the log-loss of the symmetrised set (both items of a pair cost `−log p`);
      dataset margins are not used here, unlike `bradley_terry_log_loss`.

    Returns `{"n", "n_dropped", "n_bins", "temperature", "ece", "brier", "log_loss", "reliability"}`.
    """
    n_bins = check_bins(n_bins)
    given = temperature
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        temperature = math.nan
    if not (math.isfinite(temperature) and temperature > 0):
        raise RewardlabError(f"temperature must be a positive finite number, got {given!r}")
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    d = rc[ok] - rr[ok]
    n = len(d)
    bins = reliability_bins(d, n_bins, temperature)
    gap = sum(b["count"] * abs(b["mean_predicted"] - b["observed_frequency"]) for b in bins if b["count"])
    q = expit(-d / temperature)
    return {
        "n": n,
        "n_dropped": int(len(ok) - n),
        "n_bins": n_bins,
        "temperature": float(temperature),
        "ece": ratio(gap, 2 * n),
        "brier": float(np.mean(q**2)) if n else math.nan,
        "log_loss": float(log_loss_terms(d / temperature).mean()) if n else math.nan,
        "reliability": bins,
    }


def optimal_temperature(
    rewards_chosen: Any, rewards_rejected: Any, *, max_iterations: int = 100, tolerance: float = 1e-10
) -> dict[str, Any]:
    """The temperature `T > 0` minimising `L(T) = mean(−log σ(d / T))`, the log-loss of the scaled probabilities.

    Method: with `s = 1/T`, `L(s) = mean(−log σ(s·d))` is convex in s, with `L'(s) = −mean(d·σ(−s·d))`
    increasing, so the root of `L'` is the global minimum. `s` is bracketed in `[10⁻⁶, 10⁶] / mean|d|` and the root
    of `L'` found in `log s` by Brent's method (`scipy.optimize.brentq`, to `tolerance` in `log s`, at most
    `max_iterations` steps).

    `status` says how it ended:
    - `"converged"`: an interior minimum was found;
    - `"at_lower_bound"`: `L` still falls at the smallest temperature; the pairs are separable (every d > 0) and
      the loss tends to 0 as T → 0, so `temperature` is the search bound `10⁻⁶·mean|d|`;
    - `"at_upper_bound"`: `L` still falls at the largest temperature, which happens when `mean(d) ≤ 0` (no better
      than chance); the best calibrated model then predicts 0.5 everywhere (T → ∞);
    - `"undefined"`: no evaluated pair or every d = 0, where L does not depend on T; `temperature` is NaN;
    - `"not_converged"`: `max_iterations` steps were not enough; `temperature` is the last iterate.

    The fit is in-sample: metrics after scaling by this T are optimistic for the same set.
    Returns `{"n", "n_dropped", "temperature", "status", "iterations", "log_loss", "log_loss_unscaled"}`.
    """
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    d = rc[ok] - rr[ok]
    base = {"n": len(d), "n_dropped": int(len(ok) - len(d))}
    unscaled = float(log_loss_terms(d).mean()) if len(d) else math.nan
    scale = float(np.mean(np.abs(d))) if len(d) else 0.0
    if scale == 0.0:
        return base | {
            "temperature": math.nan,
            "status": "undefined",
            "iterations": 0,
            "log_loss": unscaled,
            "log_loss_unscaled": unscaled,
        }

    def slope(log_s: float) -> float:  # L'(s) at s = exp(log_s)
        return float(-np.mean(d * expit(-math.exp(log_s) * d)))

    lo, hi = math.log(1.0 / (_TEMPERATURE_RANGE * scale)), math.log(_TEMPERATURE_RANGE / scale)
    iterations = 0
    if slope(hi) <= 0:
        status, log_s = "at_lower_bound", hi
    elif slope(lo) >= 0:
        status, log_s = "at_upper_bound", lo
    else:
        log_s, result = optimize.brentq(
            slope, lo, hi, xtol=tolerance, maxiter=max_iterations, full_output=True, disp=False
        )
        status = "converged" if result.converged else "not_converged"
        iterations = result.iterations
    temperature = math.exp(-log_s)
    return base | {
        "temperature": temperature,
        "status": status,
        "iterations": iterations,
        "log_loss": float(log_loss_terms(d / temperature).mean()),
        "log_loss_unscaled": unscaled,
    }
