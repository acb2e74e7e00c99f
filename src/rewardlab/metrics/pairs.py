"""Point metrics of a reward model on a preference set: accuracy, margin, log-loss, length bias, categories, sections
and the worst pairs. Notation and input rules: `rewardlab.metrics.inputs`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from rewardlab.errors import RewardlabError
from rewardlab.metrics.inputs import (
    check_categories,
    check_lengths,
    check_margins,
    check_positive_int,
    check_sections,
    check_weighting,
    evaluated_pairs,
    log_loss_terms,
    ratio,
)


def pair_accuracy(rewards_chosen: Any, rewards_rejected: Any) -> dict[str, Any]:
    """Accuracy with ties counted apart.

    Over the `n` evaluated pairs: `correct = #(r_c > r_r)`, `ties = #(r_c == r_r)`, `incorrect = n − correct − ties`,
    `accuracy = correct / n` (a tie is not correct), `tie_fraction = ties / n` and
    `accuracy_ties_half = (correct + 0.5·ties) / n` (a tie as a coin flip).

    Returns `{"n", "n_dropped", "correct", "ties", "incorrect", "accuracy", "tie_fraction", "accuracy_ties_half"}`;
    the ratios are NaN when `n == 0`.
    """
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    rc, rr = rc[ok], rr[ok]
    n = len(rc)
    correct, ties = int(np.sum(rc > rr)), int(np.sum(rc == rr))
    return {
        "n": n,
        "n_dropped": int(len(ok) - n),
        "correct": correct,
        "ties": ties,
        "incorrect": n - correct - ties,
        "accuracy": ratio(correct, n),
        "tie_fraction": ratio(ties, n),
        "accuracy_ties_half": ratio(correct + 0.5 * ties, n),
    }


def mean_margin(rewards_chosen: Any, rewards_rejected: Any) -> dict[str, Any]:
    """`mean_margin = mean(r_c − r_r)` over the evaluated pairs. Returns `{"n", "n_dropped", "mean_margin"}`."""
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    d = rc[ok] - rr[ok]
    return {"n": len(d), "n_dropped": int(len(ok) - len(d)), "mean_margin": float(d.mean()) if len(d) else math.nan}


def bradley_terry_log_loss(rewards_chosen: Any, rewards_rejected: Any, margins: Any = None) -> dict[str, Any]:
    """The Bradley–Terry loss the model was trained on: `log_loss = mean(−log σ(r_c − r_r − margin))`.

    `margin` is the dataset's per-pair margin (0 when `margins` is None); the per-pair term is the training loss's
    own (`log_loss_terms`).
    Returns `{"n", "n_dropped", "log_loss", "with_margins"}`.
    """
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    m = check_margins(margins, rc)
    x = rc[ok] - rr[ok] - (0.0 if m is None else m[ok])
    return {
        "n": len(x),
        "n_dropped": int(len(ok) - len(x)),
        "log_loss": float(log_loss_terms(x).mean()) if len(x) else math.nan,
        "with_margins": m is not None,
    }


def pearson_r(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float]) -> float:
    """Pearson's `r` (`scipy.stats.pearsonr`); NaN when either side is constant or has < 2 values."""
    x, y = _paired(x, y)
    if _constant(x) or _constant(y):
        return math.nan
    return float(stats.pearsonr(x, y).statistic)


def spearman_correlation(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float]) -> float:
    """Spearman's ρ, the Pearson correlation of average ranks (`scipy.stats.spearmanr`); NaN when undefined."""
    x, y = _paired(x, y)
    if _constant(x) or _constant(y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def _paired(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(x) != len(y):
        raise RewardlabError(f"correlation needs two equally long arrays, got {len(x)} and {len(y)} values")
    return x, y


def _constant(x: np.ndarray) -> bool:
    # An exact test: the centred sums of a constant array are rounding noise, not zero, and scipy would only warn.
    return len(x) < 2 or bool(np.all(x == x[0]))


def _group_accuracy(correct: np.ndarray, tie: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    count = int(mask.sum())
    n_correct, n_ties = int(correct[mask].sum()), int(tie[mask].sum())
    return {"count": count, "correct": n_correct, "ties": n_ties, "accuracy": ratio(n_correct, count)}


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
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    lc, lr = check_lengths(chosen_lengths, rejected_lengths, rc)
    rc, rr, lc, lr = rc[ok], rr[ok], lc[ok], lr[ok]
    n = len(rc)
    rewards, lengths = np.concatenate([rc, rr]), np.concatenate([lc, lr])
    correct, tie = rc > rr, rc == rr
    return {
        "n": n,
        "n_dropped": int(len(ok) - n),
        "pearson": pearson_r(rewards, lengths),
        "spearman": spearman_correlation(rewards, lengths),
        "chosen_longer": _group_accuracy(correct, tie, lc > lr),
        "chosen_shorter": _group_accuracy(correct, tie, lc < lr),
        "equal_length": _group_accuracy(correct, tie, lc == lr),
        "chosen_longer_fraction": ratio(int(np.sum(lc > lr)), n),
        "margin_length_pearson": pearson_r(rc - rr, lc - lr),
        "mean_length_chosen": float(lc.mean()) if n else math.nan,
        "mean_length_rejected": float(lr.mean()) if n else math.nan,
    }


def category_accuracy(rewards_chosen: Any, rewards_rejected: Any, categories: Any) -> dict[str, dict[str, Any]]:
    """Accuracy per category: `{category: {"count", "n_dropped", "correct", "ties", "accuracy"}}`, sorted by name.

    `count` is the number of evaluated pairs of the category, `accuracy = #(r_c > r_r) / count` (ties are not
    correct, as in RewardBench), NaN when every pair of the category was dropped. Category names are `str(value)`.
    """
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    names = np.asarray(check_categories(categories, rc), dtype=object)
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
    sections = check_sections(sections)
    weighting = check_weighting(weighting)
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
    k = check_positive_int(k, "k", minimum=0)
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    index = np.flatnonzero(ok)
    d = rc[index] - rr[index]
    order = np.lexsort((index, d))
    return [int(i) for i in index[order[: int(k)]]]
