"""Exact evaluation metrics of a reward model over a whole preference set, with bootstrap confidence intervals.

Notation used in every docstring here: an evaluation set of `N` pairs; `r_c` and `r_r` are the rewards of the chosen
and the rejected response of a pair; `d = r_c − r_r` is the pair's reward margin; `σ(x) = 1 / (1 + exp(−x))`;
`p = σ(d)` is the model's probability that the chosen response wins and `q = 1 − p = σ(−d)`.

Dropped pairs: a reward that is NaN (or ±inf) marks an item the scorer could not score (too long, failed). Such a
pair is left out of every metric and counted in `n_dropped`; it is never averaged in. `n` is the number of evaluated
pairs (both rewards finite) and every mean below is over those `n` pairs.

Inputs are whole numpy arrays (or sequences), outputs plain Python numbers, lists and dicts, so they serialise with
`json.dumps` as they are. NaN appears only where a value is undefined (the accuracy of zero pairs, the correlation of
constant data, the mean prediction of an empty reliability bin); `json_safe` turns those into `None` for strict JSON.

Only numpy is used: this runs wherever rewards were computed, without scipy or pandas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.errors import RewardlabError

SECTION_WEIGHTINGS = ("examples", "uniform")
LENGTH_GROUPS = ("chosen_longer", "chosen_shorter", "equal_length")
# Bootstrap weights are drawn and reduced in blocks of about this many (resample, pair) cells, which bounds memory
# at a few tens of MB whatever the set size, while each block is still one vectorised numpy operation.
_BLOCK_CELLS = 500_000
# Temperatures are searched within this factor of the mean |d| on either side: wide enough for any real optimum,
# and a hit on a bound is reported as such (separable data drives T to 0, worse-than-chance data drives T to ∞).
_TEMPERATURE_RANGE = 1e6


# ----------------------------------------------------------------------------------------------------------------
# Small numeric helpers
# ----------------------------------------------------------------------------------------------------------------


def softplus(x: np.ndarray | float) -> np.ndarray:
    """`log(1 + exp(x))`, computed as `max(x, 0) + log1p(exp(−|x|))` so it never overflows for large |x|."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """`σ(x) = 1 / (1 + exp(−x))`, evaluated through `exp(−|x|)` so that neither tail overflows."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def rankdata(x: np.ndarray | Sequence[float]) -> np.ndarray:
    """Ranks 1..len(x) of the values of `x`, tied values sharing the average of their ranks (scipy's 'average')."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    if len(x) == 0:
        return ranks
    sorted_x = x[order]
    new_group = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(x)]
    # Positions start..end-1 (0-based) hold ranks start+1..end, whose average is (start + 1 + end) / 2.
    group_rank = (starts + 1 + ends) / 2.0
    ranks[order] = group_rank[np.cumsum(new_group) - 1]
    return ranks


def pearson_correlation(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float]) -> float:
    """Pearson's `r = Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² Σ(y−ȳ)²)`; NaN when either side is constant or has < 2 values."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(x) != len(y):
        raise RewardlabError(f"correlation needs two equally long arrays, got {len(x)} and {len(y)} values")
    # An exact test for constant data: the centred sums of a constant array are rounding noise, not zero.
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    return float(np.clip(np.dot(dx, dy) / math.sqrt(np.dot(dx, dx) * np.dot(dy, dy)), -1.0, 1.0))


def spearman_correlation(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float]) -> float:
    """Spearman's ρ: the Pearson correlation of the average ranks (`rankdata`) of x and of y; NaN when undefined."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(x) != len(y):
        raise RewardlabError(f"correlation needs two equally long arrays, got {len(x)} and {len(y)} values")
    return pearson_correlation(rankdata(x), rankdata(y))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _vector(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RewardlabError(f"{name} must be numbers: {e}") from None
    if array.ndim != 1:
        raise RewardlabError(f"{name} must be a 1-D array (one value per pair), got shape {array.shape}")
    return array


def _same_length(reference: np.ndarray, array: np.ndarray, name: str) -> None:
    if len(array) != len(reference):
        raise RewardlabError(
            f"{name} has {len(array)} values but rewards_chosen has {len(reference)}; give one per pair"
        )


def _rewards(rewards_chosen: Any, rewards_rejected: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both reward vectors and the mask of evaluated pairs (both rewards finite)."""
    rc = _vector(rewards_chosen, "rewards_chosen")
    rr = _vector(rewards_rejected, "rewards_rejected")
    _same_length(rc, rr, "rewards_rejected")
    return rc, rr, np.isfinite(rc) & np.isfinite(rr)


def _margins(margins: Any, reference: np.ndarray) -> np.ndarray | None:
    if margins is None:
        return None
    m = _vector(margins, "margins")
    _same_length(reference, m, "margins")
    if not np.all(np.isfinite(m)):
        bad = int(np.flatnonzero(~np.isfinite(m))[0])
        raise RewardlabError(f"margins must be finite numbers; pair {bad} has margin {m[bad]}")
    return m


def _lengths(chosen_lengths: Any, rejected_lengths: Any, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if (chosen_lengths is None) != (rejected_lengths is None):
        raise RewardlabError("give both chosen_lengths and rejected_lengths, or neither")
    lc = _vector(chosen_lengths, "chosen_lengths")
    lr = _vector(rejected_lengths, "rejected_lengths")
    _same_length(reference, lc, "chosen_lengths")
    _same_length(reference, lr, "rejected_lengths")
    for name, values in (("chosen_lengths", lc), ("rejected_lengths", lr)):
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise RewardlabError(f"{name} must be finite numbers; pair {bad} has {values[bad]}")
    return lc, lr


def _categories(categories: Any, reference: np.ndarray) -> list[str]:
    if isinstance(categories, (str, bytes)):
        raise RewardlabError("categories must be a sequence with one category name per pair, not a single string")
    names = [str(c) for c in categories]
    if len(names) != len(reference):
        raise RewardlabError(
            f"categories has {len(names)} values but rewards_chosen has {len(reference)}; give one per pair"
        )
    return names


def _check_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise RewardlabError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


# ----------------------------------------------------------------------------------------------------------------
# Point metrics
# ----------------------------------------------------------------------------------------------------------------


def pair_accuracy(rewards_chosen: Any, rewards_rejected: Any) -> dict[str, Any]:
    """Accuracy with ties counted apart.

    Over the `n` evaluated pairs: `correct = #(r_c > r_r)`, `ties = #(r_c == r_r)`, `incorrect = n − correct − ties`,
    `accuracy = correct / n` (a tie is not correct), `tie_fraction = ties / n` and
    `accuracy_ties_half = (correct + 0.5·ties) / n` (a tie as a coin flip).

    Returns `{"n", "n_dropped", "correct", "ties", "incorrect", "accuracy", "tie_fraction", "accuracy_ties_half"}`;
    the ratios are NaN when `n == 0`.
    """
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    rc, rr = rc[ok], rr[ok]
    n = len(rc)
    correct, ties = int(np.sum(rc > rr)), int(np.sum(rc == rr))
    return {
        "n": n,
        "n_dropped": int(len(ok) - n),
        "correct": correct,
        "ties": ties,
        "incorrect": n - correct - ties,
        "accuracy": _ratio(correct, n),
        "tie_fraction": _ratio(ties, n),
        "accuracy_ties_half": _ratio(correct + 0.5 * ties, n),
    }


def mean_margin(rewards_chosen: Any, rewards_rejected: Any) -> dict[str, Any]:
    """`mean_margin = mean(r_c − r_r)` over the evaluated pairs. Returns `{"n", "n_dropped", "mean_margin"}`."""
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    d = rc[ok] - rr[ok]
    return {"n": len(d), "n_dropped": int(len(ok) - len(d)), "mean_margin": float(d.mean()) if len(d) else math.nan}


def bradley_terry_log_loss(rewards_chosen: Any, rewards_rejected: Any, margins: Any = None) -> dict[str, Any]:
    """The Bradley–Terry loss the model was trained on: `log_loss = mean(−log σ(r_c − r_r − margin))`.

    `margin` is the dataset's per-pair margin (0 when `margins` is None). `−log σ(x) = softplus(−x)` is computed as
    `max(−x, 0) + log1p(exp(−|x|))`, exact for any |x| (no overflow to inf, no log(0)).
    Returns `{"n", "n_dropped", "log_loss", "with_margins"}`.
    """
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    m = _margins(margins, rc)
    x = rc[ok] - rr[ok] - (0.0 if m is None else m[ok])
    return {
        "n": len(x),
        "n_dropped": int(len(ok) - len(x)),
        "log_loss": float(softplus(-x).mean()) if len(x) else math.nan,
        "with_margins": m is not None,
    }


def _bin_index(probabilities: np.ndarray, n_bins: int) -> np.ndarray:
    # Bins [k/B, (k+1)/B) with the last closed at 1, so p = 1 lands in the top bin and not in a bin of its own.
    return np.minimum((probabilities * n_bins).astype(np.int64), n_bins - 1)


def reliability_bins(d: np.ndarray, n_bins: int, temperature: float = 1.0) -> list[dict[str, Any]]:
    """Reliability-diagram data of the symmetrised set, for reward margins `d` (no NaN) scaled by `temperature`.

    Each pair gives two items, `(p, outcome 1)` and `(q, outcome 0)` with `p = σ(d/T)`, `q = σ(−d/T) = 1 − p`.
    Items fall in `n_bins` equal-width bins `[k/B, (k+1)/B)` (the last one closed). Per bin: `count` items,
    `mean_predicted` = mean item probability, `observed_frequency` = mean item outcome (both NaN for an empty bin),
    and the bin edges `bin_lower`, `bin_upper`. Every bin is listed, empty or not, so plots have a fixed x-axis.
    """
    n_bins = _check_bins(n_bins)
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    p, q = sigmoid(d / temperature), sigmoid(-d / temperature)
    bins_p, bins_q = _bin_index(p, n_bins), _bin_index(q, n_bins)
    count = np.bincount(bins_p, minlength=n_bins) + np.bincount(bins_q, minlength=n_bins)
    predicted = np.bincount(bins_p, weights=p, minlength=n_bins) + np.bincount(bins_q, weights=q, minlength=n_bins)
    outcome = np.bincount(bins_p, minlength=n_bins).astype(np.float64)
    return [
        {
            "bin_lower": k / n_bins,
            "bin_upper": (k + 1) / n_bins,
            "count": int(count[k]),
            "mean_predicted": _ratio(float(predicted[k]), int(count[k])),
            "observed_frequency": _ratio(float(outcome[k]), int(count[k])),
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
    n_bins = _check_bins(n_bins)
    given = temperature
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        temperature = math.nan
    if not (math.isfinite(temperature) and temperature > 0):
        raise RewardlabError(f"temperature must be a positive finite number, got {given!r}")
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    d = rc[ok] - rr[ok]
    n = len(d)
    bins = reliability_bins(d, n_bins, temperature)
    gap = sum(b["count"] * abs(b["mean_predicted"] - b["observed_frequency"]) for b in bins if b["count"])
    q = sigmoid(-d / temperature)
    return {
        "n": n,
        "n_dropped": int(len(ok) - n),
        "n_bins": n_bins,
        "temperature": float(temperature),
        "ece": _ratio(gap, 2 * n),
        "brier": float(np.mean(q**2)) if n else math.nan,
        "log_loss": float(softplus(-d / temperature).mean()) if n else math.nan,
        "reliability": bins,
    }


def optimal_temperature(
    rewards_chosen: Any, rewards_rejected: Any, *, max_iterations: int = 100, tolerance: float = 1e-10
) -> dict[str, Any]:
    """The temperature `T > 0` minimising `L(T) = mean(−log σ(d / T))`, the log-loss of the scaled probabilities.

    Method: with `s = 1/T`, `L(s) = mean(softplus(−s·d))` is convex in s, with
    `L'(s) = −mean(d·σ(−s·d))` and `L''(s) = mean(d²·σ(s·d)·σ(−s·d)) ≥ 0`, so `L'` is increasing and its root is the
    global minimum. We bracket `s` in `[10⁻⁶, 10⁶] / mean|d|` and take Newton steps `s ← s − L'/L''` from `s = 1`,
    falling back to bisection in `log s` whenever a step leaves the current bracket (the bracket shrinks at every
    iteration using the sign of `L'`). Iteration stops when a step changes `log s` by less than `tolerance`.

    `status` says how it ended:
    - `"converged"`: an interior minimum was found;
    - `"at_lower_bound"`: `L` still falls at the smallest temperature; the pairs are separable (every d > 0) and
      the loss tends to 0 as T → 0, so `temperature` is the search bound `10⁻⁶·mean|d|`;
    - `"at_upper_bound"`: `L` still falls at the largest temperature, which happens when `mean(d) ≤ 0` (no better
      than chance); the best calibrated model then predicts 0.5 everywhere (T → ∞);
    - `"undefined"`: no evaluated pair or every d = 0, where L does not depend on T; `temperature` is NaN;
    - `"not_converged"`: `max_iterations` steps were not enough (not expected: the bracketed Newton iteration
      typically converges in under 15 steps); `temperature` is the last iterate.

    The fit is in-sample: metrics after scaling by this T are optimistic for the same set.
    Returns `{"n", "n_dropped", "temperature", "status", "iterations", "log_loss", "log_loss_unscaled"}`.
    """
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    d = rc[ok] - rr[ok]
    base = {"n": len(d), "n_dropped": int(len(ok) - len(d))}
    unscaled = float(softplus(-d).mean()) if len(d) else math.nan
    scale = float(np.mean(np.abs(d))) if len(d) else 0.0
    if scale == 0.0:
        return base | {
            "temperature": math.nan,
            "status": "undefined",
            "iterations": 0,
            "log_loss": unscaled,
            "log_loss_unscaled": unscaled,
        }

    def first_derivative(s: float) -> float:
        return float(-np.mean(d * sigmoid(-s * d)))

    def second_derivative(s: float) -> float:
        e = np.exp(-np.abs(s * d))
        return float(np.mean(d * d * e / (1.0 + e) ** 2))

    lo, hi = math.log(1.0 / (_TEMPERATURE_RANGE * scale)), math.log(_TEMPERATURE_RANGE / scale)
    iterations = 0
    if first_derivative(math.exp(hi)) <= 0:
        status, u = "at_lower_bound", hi
    elif first_derivative(math.exp(lo)) >= 0:
        status, u = "at_upper_bound", lo
    else:
        status = "not_converged"
        u = min(max(0.0, lo), hi)
        while iterations < max_iterations:
            iterations += 1
            s = math.exp(u)
            g = first_derivative(s)
            if g == 0:
                status = "converged"
                break
            if g > 0:
                hi = u
            else:
                lo = u
            h = second_derivative(s)
            newton = s - g / h if h > 0 else -1.0
            # Newton converges quadratically near the root; outside the bracket it has overshot, so bisect instead.
            u_new = math.log(newton) if newton > 0 and lo < math.log(newton) < hi else 0.5 * (lo + hi)
            step, u = abs(u_new - u), u_new
            if step < tolerance:
                status = "converged"
                break
    temperature = math.exp(-u)
    return base | {
        "temperature": temperature,
        "status": status,
        "iterations": iterations,
        "log_loss": float(softplus(-d / temperature).mean()),
        "log_loss_unscaled": unscaled,
    }


def _group_accuracy(correct: np.ndarray, tie: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    count = int(mask.sum())
    n_correct, n_ties = int(correct[mask].sum()), int(tie[mask].sum())
    return {"count": count, "correct": n_correct, "ties": n_ties, "accuracy": _ratio(n_correct, count)}


def length_bias(
    rewards_chosen: Any, rewards_rejected: Any, chosen_lengths: Any, rejected_lengths: Any
) -> dict[str, Any]:
    """How much the rewards follow response length.

    Over the 2n responses of the evaluated pairs (each pair's chosen and rejected response):
    - `pearson`: Pearson correlation between reward and length; `spearman`: Spearman's ρ (average ranks for ties).
      NaN when rewards or lengths are constant.
    Over the n evaluated pairs, split by `L_c` vs `L_r` (chosen/rejected length):
    - `chosen_longer` (`L_c > L_r`), `chosen_shorter` (`L_c < L_r`), `equal_length` (`L_c == L_r`): each
      `{"count", "correct", "ties", "accuracy"}` with `accuracy = #(r_c > r_r) / count` (NaN for an empty group).
      A model that is right on longer-chosen pairs and wrong on shorter-chosen ones is rewarding length.
    - `chosen_longer_fraction = #(L_c > L_r) / n`: how much the data itself is biased towards long answers.
    - `margin_length_pearson`: Pearson correlation of `r_c − r_r` with `L_c − L_r` over the pairs.
    - `mean_length_chosen`, `mean_length_rejected`.
    Returns those keys plus `"n"` and `"n_dropped"`.
    """
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    lc, lr = _lengths(chosen_lengths, rejected_lengths, rc)
    rc, rr, lc, lr = rc[ok], rr[ok], lc[ok], lr[ok]
    n = len(rc)
    rewards, lengths = np.concatenate([rc, rr]), np.concatenate([lc, lr])
    correct, tie = rc > rr, rc == rr
    return {
        "n": n,
        "n_dropped": int(len(ok) - n),
        "pearson": pearson_correlation(rewards, lengths),
        "spearman": spearman_correlation(rewards, lengths),
        "chosen_longer": _group_accuracy(correct, tie, lc > lr),
        "chosen_shorter": _group_accuracy(correct, tie, lc < lr),
        "equal_length": _group_accuracy(correct, tie, lc == lr),
        "chosen_longer_fraction": _ratio(int(np.sum(lc > lr)), n),
        "margin_length_pearson": pearson_correlation(rc - rr, lc - lr),
        "mean_length_chosen": float(lc.mean()) if n else math.nan,
        "mean_length_rejected": float(lr.mean()) if n else math.nan,
    }


def category_accuracy(rewards_chosen: Any, rewards_rejected: Any, categories: Any) -> dict[str, dict[str, Any]]:
    """Accuracy per category: `{category: {"count", "n_dropped", "correct", "ties", "accuracy"}}`, sorted by name.

    `count` is the number of evaluated pairs of the category, `accuracy = #(r_c > r_r) / count` (ties are not
    correct, as in RewardBench), NaN when every pair of the category was dropped. Category names are `str(value)`.
    """
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    names = np.asarray(_categories(categories, rc), dtype=object)
    correct, tie = (rc > rr) & ok, (rc == rr) & ok
    out = {}
    for name in sorted(set(names.tolist())):
        in_category = names == name
        out[name] = _group_accuracy(correct, tie, in_category & ok)
        out[name]["n_dropped"] = int(np.sum(in_category & ~ok))
    return {
        name: {key: values[key] for key in ("count", "n_dropped", "correct", "ties", "accuracy")}
        for name, values in out.items()
    }


def _check_sections(sections: Any) -> dict[str, list[str]]:
    if not isinstance(sections, Mapping) or not sections:
        raise RewardlabError("sections must be a non-empty mapping {section: [category, ...]}")
    out = {}
    for section, members in sections.items():
        if isinstance(members, (str, bytes)) or not isinstance(members, Sequence) or not members:
            raise RewardlabError(f"section {section!r} must list its categories, got {members!r}")
        out[str(section)] = [str(c) for c in members]
    return out


def _check_weighting(weighting: str) -> str:
    if weighting not in SECTION_WEIGHTINGS:
        raise RewardlabError(f"section_weighting must be one of {', '.join(SECTION_WEIGHTINGS)}, got {weighting!r}")
    return weighting


def section_scores(
    per_category: Mapping[str, Mapping[str, Any]], sections: Mapping[str, Sequence[str]], weighting: str = "examples"
) -> dict[str, Any]:
    """RewardBench-style section scores from per-category results (the output of `category_accuracy`).

    For a section S whose categories present in the data (count > 0) are C_S:
    - `weighting="examples"`: `score_S = Σ_{c∈C_S} count_c·accuracy_c / Σ_{c∈C_S} count_c`, i.e. categories
      weighted by their pair counts (the accuracy over all the section's pairs);
    - `weighting="uniform"`: `score_S = mean_{c∈C_S} accuracy_c`, every category weighing the same.
    A section none of whose categories has pairs scores NaN and is listed in `sections_without_data`.
    `mean = mean of score_S` over the sections that have data.

    Returns `{"weighting", "scores": {section: {"score", "count", "categories", "missing_categories"}}, "mean",
    "sections_without_data", "unassigned_categories"}`: `categories` are the section's categories with pairs,
    `missing_categories` those listed but without pairs, `unassigned_categories` those in the data but in no
    section (they count towards no score).
    """
    sections = _check_sections(sections)
    weighting = _check_weighting(weighting)
    scores: dict[str, dict[str, Any]] = {}
    for section, members in sections.items():
        present = [c for c in members if c in per_category and per_category[c]["count"] > 0]
        counts = [per_category[c]["count"] for c in present]
        if not present:
            score = math.nan
        elif weighting == "examples":
            score = sum(per_category[c]["correct"] for c in present) / sum(counts)
        else:
            score = sum(per_category[c]["correct"] / per_category[c]["count"] for c in present) / len(present)
        scores[section] = {
            "score": score,
            "count": int(sum(counts)),
            "categories": present,
            "missing_categories": [c for c in members if c not in present],
        }
    scored = [s["score"] for s in scores.values() if s["categories"]]
    listed = {c for members in sections.values() for c in members}
    return {
        "weighting": weighting,
        "scores": scores,
        "mean": sum(scored) / len(scored) if scored else math.nan,
        "sections_without_data": [name for name, s in scores.items() if not s["categories"]],
        "unassigned_categories": sorted(c for c in per_category if c not in listed),
    }


def worst_pairs(rewards_chosen: Any, rewards_rejected: Any, k: int = 20) -> list[int]:
    """Indices of the `k` evaluated pairs with the most negative `d = r_c − r_r`, most negative first.

    Equal margins are ordered by index; dropped pairs (NaN) are never listed. Fewer than k indices come back when
    fewer pairs were evaluated. These are simply the k smallest margins, so they may include correct pairs.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise RewardlabError(f"k must be a non-negative integer, got {k!r}")
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    index = np.flatnonzero(ok)
    d = rc[index] - rr[index]
    order = np.lexsort((index, d))
    return [int(i) for i in index[order[: int(k)]]]


# ----------------------------------------------------------------------------------------------------------------
# Bootstrap
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Groups:
    """Pairs partitioned into named groups, sorted by group so that per-group sums are one `np.add.reduceat`."""

    names: list[str]
    order: np.ndarray
    starts: np.ndarray  # start of each non-empty group within `order`
    present: np.ndarray  # indices into `names` of the non-empty groups

    @classmethod
    def from_codes(cls, codes: np.ndarray, names: list[str]) -> _Groups:
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        if len(codes):
            starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        else:
            starts = np.array([], dtype=np.int64)
        return cls(names, order, starts, sorted_codes[starts].astype(np.int64))

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per-group sums of `values` (shape (B, n)) as (B, len(names)); 0 for empty groups."""
        out = np.zeros((values.shape[0], len(self.names)))
        if len(self.starts):
            out[:, self.present] = np.add.reduceat(values[:, self.order], self.starts, axis=1)
        return out


@dataclass
class _RankOrder:
    """The sort of a value vector, kept so average ranks of any weighting of its items need only a cumulative sum."""

    order: np.ndarray
    group_of_item: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> _RankOrder:
        order = np.argsort(values, kind="stable")
        sorted_values = values[order]
        new_group = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
        starts = np.flatnonzero(new_group)
        group_of_item = np.empty(len(values), dtype=np.int64)
        group_of_item[order] = np.cumsum(new_group) - 1
        return cls(order, group_of_item, starts, np.r_[starts[1:], len(values)])

    def ranks(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Average ranks of the items in the multisets where item j appears `weights[b, j]` times, and whether
        each multiset holds a single distinct value.

        Equal values form a group; if `before` copies are smaller and the group has `w` copies, they hold ranks
        before+1 .. before+w, whose average is `before + (w + 1) / 2`.
        """
        cumulative = np.concatenate([np.zeros((weights.shape[0], 1)), np.cumsum(weights[:, self.order], axis=1)], 1)
        before = cumulative[:, self.starts]
        group_weight = cumulative[:, self.ends] - before
        constant = group_weight.max(1) == cumulative[:, -1]
        return (before + (group_weight + 1) / 2)[:, self.group_of_item], constant


@dataclass
class _PairColumns:
    """Per-pair quantities of the evaluated pairs; every bootstrap statistic is a weighted sum of them."""

    correct: np.ndarray
    tie: np.ndarray
    d: np.ndarray
    loss: np.ndarray
    q: np.ndarray
    ece_terms: np.ndarray  # (n, n_bins): Σ over a bin of (prediction − outcome) is Σ of this column
    lengths: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # rc, rr, lc, lr
    reward_ranks: _RankOrder | None = None
    length_ranks: _RankOrder | None = None
    length_groups: _Groups | None = None
    categories: _Groups | None = None
    sections: dict[str, list[int]] | None = None  # section -> indices into categories.names
    weighting: str = "examples"

    @classmethod
    def build(
        cls,
        rc: np.ndarray,
        rr: np.ndarray,
        margins: np.ndarray | None,
        n_bins: int,
        lengths: tuple[np.ndarray, np.ndarray] | None,
        categories: tuple[list[str], list[str]] | None,
        sections: dict[str, list[str]] | None,
        weighting: str,
    ) -> _PairColumns:
        """`categories` is (category of each evaluated pair, every category name including those only dropped)."""
        d = rc - rr
        q = sigmoid(-d)
        p = sigmoid(d)
        n = len(d)
        rows = np.arange(n)
        # Item (p, 1) adds p − 1 = −q to p's bin and item (q, 0) adds q to q's bin.
        ece_terms = np.zeros((n, n_bins))
        np.add.at(ece_terms, (rows, _bin_index(p, n_bins)), -q)
        np.add.at(ece_terms, (rows, _bin_index(q, n_bins)), q)
        columns = cls(
            correct=(rc > rr).astype(np.float64),
            tie=(rc == rr).astype(np.float64),
            d=d,
            loss=softplus(-(d if margins is None else d - margins)),
            q=q,
            ece_terms=ece_terms,
            weighting=weighting,
        )
        if lengths is not None:
            lc, lr = lengths
            columns.lengths = (rc, rr, lc, lr)
            columns.reward_ranks = _RankOrder.of(np.concatenate([rc, rr]))
            columns.length_ranks = _RankOrder.of(np.concatenate([lc, lr]))
            codes = np.where(lc > lr, 0, np.where(lc < lr, 1, 2))
            columns.length_groups = _Groups.from_codes(codes, list(LENGTH_GROUPS))
        if categories is not None:
            pair_categories, names = categories
            lookup = {name: i for i, name in enumerate(names)}
            codes = np.array([lookup[c] for c in pair_categories], dtype=np.int64)
            columns.categories = _Groups.from_codes(codes, names)
            if sections is not None:
                columns.sections = {s: [lookup[c] for c in members if c in lookup] for s, members in sections.items()}
        return columns


def _correlation_from_sums(sxy: np.ndarray, sxx: np.ndarray, syy: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
    r[undefined] = np.nan
    return r


def _weighted_pearson(
    w: np.ndarray, x: tuple[np.ndarray, np.ndarray], y: tuple[np.ndarray, np.ndarray], undefined: np.ndarray
) -> np.ndarray:
    """Pearson r over the 2n items (x[0][i], y[0][i]) and (x[1][i], y[1][i]), each of weight w[b, i].

    One pass of weighted sums (matrix products); the values must already be centred near their mean, so that the
    `Σx² − W·x̄²` form loses no precision. Rows flagged `undefined` (constant data) are NaN.
    """
    features = np.stack(
        [x[0] + x[1], y[0] + y[1], x[0] ** 2 + x[1] ** 2, y[0] ** 2 + y[1] ** 2, x[0] * y[0] + x[1] * y[1]], axis=1
    )
    sx, sy, sxx, syy, sxy = (w @ features).T
    total = 2 * w.sum(1)
    return _correlation_from_sums(sxy - sx * sy / total, sxx - sx * sx / total, syy - sy * sy / total, undefined)


def _weighted_rank_correlation(
    w: np.ndarray, x_ranks: np.ndarray, y_ranks: np.ndarray, undefined: np.ndarray
) -> np.ndarray:
    """Pearson r of item ranks (B, 2n) with item weights [w, w]; Spearman's ρ of each resample."""
    # The weighted mean of average ranks over N items is exactly (N + 1) / 2, so centring needs no extra pass; the
    # ranks are half-integers and the weights integers, so these sums are exact in float64.
    n = w.shape[1]
    center = (2 * n + 1) / 2
    item_weights = np.concatenate([w, w], axis=1)
    dx, dy = x_ranks - center, y_ranks - center
    weighted_dx = item_weights * dx
    return _correlation_from_sums(
        np.einsum("ij,ij->i", weighted_dx, dy),
        np.einsum("ij,ij->i", weighted_dx, dx),
        np.einsum("ij,ij,ij->i", item_weights, dy, dy),
        undefined,
    )


def _resample_statistics(columns: _PairColumns, w: np.ndarray) -> dict[str, np.ndarray]:
    """Every bootstrapped statistic for each row of pair weights `w` (B, n), row b being resample b's pair counts.

    A resample with replacement is the multiset in which pair i appears w[b, i] times, so each statistic is its
    full-data formula with weights; with `w` all ones this gives the point estimates exactly (a test checks it).
    """
    total = w.sum(1)
    out = {
        "accuracy": w @ columns.correct / total,
        "accuracy_ties_half": w @ (columns.correct + 0.5 * columns.tie) / total,
        "mean_margin": w @ columns.d / total,
        "log_loss": w @ columns.loss / total,
        "brier": w @ columns.q**2 / total,
        "ece": np.abs(w @ columns.ece_terms).sum(1) / (2 * total),
    }
    if columns.lengths is not None:
        rc, rr, lc, lr = columns.lengths
        item_weights = np.concatenate([w, w], axis=1)
        reward_ranks, constant_rewards = columns.reward_ranks.ranks(item_weights)
        length_ranks, constant_lengths = columns.length_ranks.ranks(item_weights)
        undefined = constant_rewards | constant_lengths
        # Centre on the full-data means first: a large shared offset would otherwise cost precision.
        reward_mean, length_mean = (rc.mean() + rr.mean()) / 2, (lc.mean() + lr.mean()) / 2
        out["length_pearson"] = _weighted_pearson(
            w, (rc - reward_mean, rr - reward_mean), (lc - length_mean, lr - length_mean), undefined
        )
        out["length_spearman"] = _weighted_rank_correlation(w, reward_ranks, length_ranks, undefined)
        count = columns.length_groups.sums(w)
        correct = columns.length_groups.sums(w * columns.correct)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = correct / count
        for k, name in enumerate(LENGTH_GROUPS):
            out[f"length_group:{name}"] = accuracy[:, k]
    if columns.categories is not None:
        count = columns.categories.sums(w)
        correct = columns.categories.sums(w * columns.correct)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = correct / count
        for k, name in enumerate(columns.categories.names):
            out[f"category:{name}"] = accuracy[:, k]
        if columns.sections is not None:
            section_values = []
            for section, members in columns.sections.items():
                if not members:
                    score = np.full(len(w), np.nan)
                elif columns.weighting == "examples":
                    with np.errstate(invalid="ignore", divide="ignore"):
                        score = correct[:, members].sum(1) / count[:, members].sum(1)
                else:
                    score = _nanmean_rows(accuracy[:, members])
                out[f"section:{section}"] = score
                if members:
                    section_values.append(score)
            if section_values:
                out["section_mean"] = _nanmean_rows(np.stack(section_values, axis=1))
    return out


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    # A category (or section) that drew no pair in a resample is left out of that resample's mean.
    finite = np.isfinite(values)
    count = finite.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(1) / np.where(count > 0, count, np.nan)


def _resample_weights(n: int, n_bootstrap: int, rng: np.random.Generator):
    """Blocks of pair counts (B_block, n): pair indices drawn uniformly with replacement, n per resample."""
    block = max(1, min(n_bootstrap, _BLOCK_CELLS // max(n, 1)))
    for start in range(0, n_bootstrap, block):
        size = min(block, n_bootstrap - start)
        index = rng.integers(0, n, size=(size, n))
        offsets = (np.arange(size) * n)[:, None]
        yield np.bincount((index + offsets).ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def _statistic_keys(lengths: Any, categories: tuple[list[str], list[str]] | None, sections: Any) -> list[str]:
    """The keys `_resample_statistics` would give, for the case of no evaluated pair (nothing to resample)."""
    keys = ["accuracy", "accuracy_ties_half", "mean_margin", "log_loss", "brier", "ece"]
    if lengths is not None:
        keys += ["length_pearson", "length_spearman", *(f"length_group:{g}" for g in LENGTH_GROUPS)]
    if categories is not None:
        keys += [f"category:{name}" for name in categories[1]]
        if sections is not None:
            keys += [f"section:{name}" for name in sections]
            if any(c in categories[1] for members in sections.values() for c in members):
                keys.append("section_mean")
    return keys


def _percentile_interval(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return [math.nan, math.nan]
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def bootstrap_intervals(
    rewards_chosen: Any,
    rewards_rejected: Any,
    *,
    margins: Any = None,
    chosen_lengths: Any = None,
    rejected_lengths: Any = None,
    categories: Any = None,
    sections: Mapping[str, Sequence[str]] | None = None,
    section_weighting: str = "examples",
    n_bins: int = 10,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95% percentile-bootstrap intervals `[low, high]` of the metrics, keyed by metric.

    Method: `n_bootstrap` resamples of the n evaluated pairs, each drawing n pair indices uniformly with replacement
    from `numpy.random.default_rng(seed)`; on each resample every metric is recomputed with the same formula as
    its point estimate (a pair drawn k times weighs k). The interval is the 2.5th and 97.5th percentiles of the
    resampled values (`numpy.percentile`, linear interpolation). Pairs, not responses, are resampled, so a pair's
    two responses stay together in the length correlations. Resamples where a value is undefined (a category that
    drew no pair, constant lengths) are left out; `[NaN, NaN]` when none is defined or n = 0.

    Keys: `accuracy`, `accuracy_ties_half`, `mean_margin`, `log_loss` (with margins when given), `ece`, `brier`
    (with `n_bins` bins, T = 1); with lengths also `length_pearson`, `length_spearman` and
    `length_group:{chosen_longer,chosen_shorter,equal_length}` (accuracy per group); with categories
    `category:<name>` (accuracy); with sections `section:<name>` and `section_mean`.
    The fitted temperature is not bootstrapped (that would take one fit per resample).

    ECE is biased upwards on small resamples (noise adds to every bin's gap), so its interval can lie above the
    point estimate when the model is well calibrated; read it as the spread of the estimate, not as a test.
    """
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 1:
        raise RewardlabError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")
    n_bins = _check_bins(n_bins)
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    m = _margins(margins, rc)
    lengths = None
    if chosen_lengths is not None or rejected_lengths is not None:
        lc, lr = _lengths(chosen_lengths, rejected_lengths, rc)
        lengths = (lc[ok], lr[ok])
    names = None
    if categories is not None:
        all_names = _categories(categories, rc)
        names = ([c for c, keep in zip(all_names, ok.tolist(), strict=True) if keep], sorted(set(all_names)))
    checked_sections = None
    if sections is not None:
        if categories is None:
            raise RewardlabError("sections need categories: give the category of every pair")
        checked_sections = _check_sections(sections)
    weighting = _check_weighting(section_weighting)
    n = int(ok.sum())
    if n == 0:
        return {key: [math.nan, math.nan] for key in _statistic_keys(lengths, names, checked_sections)}
    columns = _PairColumns.build(
        rc[ok], rr[ok], None if m is None else m[ok], n_bins, lengths, names, checked_sections, weighting
    )
    rng = np.random.default_rng(seed)
    blocks = [_resample_statistics(columns, w) for w in _resample_weights(n, int(n_bootstrap), rng)]
    return {key: _percentile_interval(np.concatenate([b[key] for b in blocks])) for key in blocks[0]}


def uncertainty_gap(std: Any, wrong: Any, *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """How much more uncertain an ensemble is on the pairs it ranks wrong: mean `std` of wrong pairs minus mean `std`
    of right ones, `{"value", "ci95"}`, the interval by the percentile bootstrap over pairs (as `bootstrap_intervals`;
    None with `n_bootstrap=0`). Pairs with a NaN std (dropped for length) are left out."""
    std, wrong = np.asarray(std, dtype=np.float64), np.asarray(wrong, dtype=bool)
    keep = np.isfinite(std)
    std, wrong = std[keep], wrong[keep]

    def gap(w: np.ndarray) -> np.ndarray:  # w: (B, n) pair counts of B resamples
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w * std * wrong).sum(1) / (w * wrong).sum(1) - (w * std * ~wrong).sum(1) / (w * ~wrong).sum(1)

    value = float(gap(np.ones((1, len(std))))[0]) if len(std) else math.nan
    if not n_bootstrap or not len(std):
        return {"value": value, "ci95": None}
    rng = np.random.default_rng(seed)
    resampled = np.concatenate([gap(w) for w in _resample_weights(len(std), int(n_bootstrap), rng)])
    return {"value": value, "ci95": _percentile_interval(resampled)}


# ----------------------------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------------------------


def _metric(value: float, ci: dict[str, list[float]] | None, key: str) -> dict[str, Any]:
    return {"value": value, "ci95": None if ci is None else ci.get(key)}


def evaluate_pairs(
    rewards_chosen: Any,
    rewards_rejected: Any,
    *,
    margins: Any = None,
    chosen_lengths: Any = None,
    rejected_lengths: Any = None,
    categories: Any = None,
    sections: Mapping[str, Sequence[str]] | None = None,
    section_weighting: str = "examples",
    n_bins: int = 10,
    fit_temperature: bool = True,
    n_bootstrap: int = 1000,
    seed: int = 0,
    worst_k: int = 20,
) -> dict[str, Any]:
    """Every evaluation metric of one reward model on one preference set, as a JSON-serialisable dict.

    Arguments are arrays with one value per pair (N pairs): rewards (NaN = dropped pair), the dataset's `margins`
    (used only in `log_loss`), response lengths (any unit, e.g. tokens), category names, and
    `sections = {section: [category, ...]}` for RewardBench-style section scores (needs `categories`).
    `n_bootstrap=0` turns the intervals off (every `ci95` is then None). Formulas: see the function named with each
    entry below; the intervals come from `bootstrap_intervals` (95%, percentile method, seeded).

    Layout (`{"value": v, "ci95": [low, high]}` is written `V±`)::

        {
          "n_pairs": N, "n_evaluated": n, "n_dropped": N − n,
          "dropped_indices": [int, ...],                   # pairs with a NaN/inf reward, left out of everything
          "accuracy": V± + {"correct", "incorrect", "ties", "tie_fraction"},        # pair_accuracy
          "accuracy_ties_half": V±,                        # (correct + 0.5·ties) / n
          "mean_margin": V±,                               # mean(r_c − r_r)
          "log_loss": V± + {"with_margins": bool},         # bradley_terry_log_loss
          "calibration": {                                 # calibration (T = 1, no margins)
            "n_bins": int, "ece": V±, "brier": V±, "log_loss": float,
            "reliability": [{"bin_lower", "bin_upper", "count", "mean_predicted", "observed_frequency"}, ...],
            "temperature": None | {                        # optimal_temperature, then calibration at that T
              "value": T, "status": str, "iterations": int,
              "log_loss": float, "ece": float, "brier": float, "reliability": [...]}},
          "length_bias": None | {                          # length_bias (None without lengths)
            "pearson": V±, "spearman": V±,
            "chosen_longer" | "chosen_shorter" | "equal_length": {"count", "correct", "ties", "accuracy", "ci95"},
            "chosen_longer_fraction", "margin_length_pearson", "mean_length_chosen", "mean_length_rejected"},
          "categories": None | {name: {"count", "n_dropped", "correct", "ties", "accuracy", "ci95"}},
          "sections": None | {                             # section_scores
            "weighting": str,
            "scores": {section: {"value", "ci95", "count", "categories", "missing_categories"}},
            "mean": V±, "sections_without_data": [...], "unassigned_categories": [...]},
          "worst_pairs": [{"index", "margin", "reward_chosen", "reward_rejected",
                           "category"?, "chosen_length"?, "rejected_length"?, "dataset_margin"?}, ...],
          "bootstrap": {"n_bootstrap": int, "seed": int, "confidence": 0.95, "method": "percentile"},
        }

    In `worst_pairs`, `margin` is the reward margin `r_c − r_r` (see `worst_pairs`) and `dataset_margin` the
    input margin. When the temperature is undefined (status "undefined", value NaN), its `log_loss`, `ece`, `brier`
    and `reliability` are the unscaled ones. A category or section in `ci95` that drew no pair in some resamples is
    estimated from the others. Every number is a plain float or int; NaN marks an undefined value (see the module
    docstring), and `json_safe` turns NaN into None for strict JSON.
    """
    rc, rr, ok = _rewards(rewards_chosen, rewards_rejected)
    m = _margins(margins, rc)
    has_lengths = chosen_lengths is not None or rejected_lengths is not None
    lc, lr = _lengths(chosen_lengths, rejected_lengths, rc) if has_lengths else (None, None)
    names = _categories(categories, rc) if categories is not None else None
    if sections is not None and names is None:
        raise RewardlabError("sections need categories: give the category of every pair")
    _check_weighting(section_weighting)
    _check_bins(n_bins)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise RewardlabError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")

    ci = None
    if n_bootstrap > 0:
        ci = bootstrap_intervals(
            rc,
            rr,
            margins=m,
            chosen_lengths=lc,
            rejected_lengths=lr,
            categories=names,
            sections=sections,
            section_weighting=section_weighting,
            n_bins=n_bins,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )

    acc = pair_accuracy(rc, rr)
    report: dict[str, Any] = {
        "n_pairs": len(rc),
        "n_evaluated": acc["n"],
        "n_dropped": acc["n_dropped"],
        "dropped_indices": [int(i) for i in np.flatnonzero(~ok)],
        "accuracy": _metric(acc["accuracy"], ci, "accuracy")
        | {k: acc[k] for k in ("correct", "incorrect", "ties", "tie_fraction")},
        "accuracy_ties_half": _metric(acc["accuracy_ties_half"], ci, "accuracy_ties_half"),
        "mean_margin": _metric(mean_margin(rc, rr)["mean_margin"], ci, "mean_margin"),
    }
    loss = bradley_terry_log_loss(rc, rr, m)
    report["log_loss"] = _metric(loss["log_loss"], ci, "log_loss") | {"with_margins": loss["with_margins"]}

    cal = calibration(rc, rr, n_bins=n_bins)
    report["calibration"] = {
        "n_bins": cal["n_bins"],
        "ece": _metric(cal["ece"], ci, "ece"),
        "brier": _metric(cal["brier"], ci, "brier"),
        "log_loss": cal["log_loss"],
        "reliability": cal["reliability"],
        "temperature": None,
    }
    if fit_temperature:
        fit = optimal_temperature(rc, rr)
        scaled = (
            calibration(rc, rr, n_bins=n_bins, temperature=fit["temperature"])
            if math.isfinite(fit["temperature"])
            else cal
        )
        report["calibration"]["temperature"] = {
            "value": fit["temperature"],
            "status": fit["status"],
            "iterations": fit["iterations"],
            "log_loss": fit["log_loss"],
            "ece": scaled["ece"],
            "brier": scaled["brier"],
            "reliability": scaled["reliability"],
        }

    report["length_bias"] = None
    if has_lengths:
        bias = length_bias(rc, rr, lc, lr)
        report["length_bias"] = {
            "pearson": _metric(bias["pearson"], ci, "length_pearson"),
            "spearman": _metric(bias["spearman"], ci, "length_spearman"),
            **{g: bias[g] | {"ci95": None if ci is None else ci[f"length_group:{g}"]} for g in LENGTH_GROUPS},
            **{
                k: bias[k]
                for k in (
                    "chosen_longer_fraction",
                    "margin_length_pearson",
                    "mean_length_chosen",
                    "mean_length_rejected",
                )
            },
        }

    report["categories"] = None
    report["sections"] = None
    if names is not None:
        per_category = category_accuracy(rc, rr, names)
        report["categories"] = {
            name: values | {"ci95": None if ci is None else ci[f"category:{name}"]}
            for name, values in per_category.items()
        }
        if sections is not None:
            scored = section_scores(per_category, sections, section_weighting)
            report["sections"] = {
                "weighting": scored["weighting"],
                "scores": {
                    name: {"value": s["score"], "ci95": None if ci is None else ci[f"section:{name}"]}
                    | {k: s[k] for k in ("count", "categories", "missing_categories")}
                    for name, s in scored["scores"].items()
                },
                "mean": _metric(scored["mean"], ci, "section_mean"),
                "sections_without_data": scored["sections_without_data"],
                "unassigned_categories": scored["unassigned_categories"],
            }
            if ci is not None and "section_mean" not in ci:
                report["sections"]["mean"]["ci95"] = [math.nan, math.nan]

    worst = []
    for i in worst_pairs(rc, rr, worst_k):
        entry = {
            "index": i,
            "margin": float(rc[i] - rr[i]),
            "reward_chosen": float(rc[i]),
            "reward_rejected": float(rr[i]),
        }
        if names is not None:
            entry["category"] = names[i]
        if has_lengths:
            entry["chosen_length"], entry["rejected_length"] = float(lc[i]), float(lr[i])
        if m is not None:
            entry["dataset_margin"] = float(m[i])
        worst.append(entry)
    report["worst_pairs"] = worst
    report["bootstrap"] = {
        "n_bootstrap": int(n_bootstrap),
        "seed": int(seed),
        "confidence": 0.95,
        "method": "percentile",
    }
    return report


def json_safe(value: Any) -> Any:
    """A copy of `value` (nested dicts/lists) with NaN and ±inf floats replaced by None, for strict JSON parsers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
