"""Every evaluation metric of one reward model on one preference set, as one JSON-ready report.

`evaluate_pairs` assembles the report section by section from the point metrics (`rewardlab.metrics.pairs`),
calibration (`rewardlab.metrics.calibration`) and their bootstrap intervals (`rewardlab.metrics.intervals`).

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
      "baselines": {"longer_wins", "shorter_wins", "chance", "best", "lead": V±},  # content-blind rules (baselines)
      "categories": None | {name: {"count", "n_dropped", "correct", "ties", "accuracy", "ci95", "baselines"}},
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
estimated from the others. Every number is a plain float or int; NaN marks an undefined value (see
`rewardlab.metrics.inputs`), and `json_safe` turns NaN into None for strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.errors import RewardlabError
from rewardlab.metrics.baselines import compare_with_baselines, length_rules, masked_mean, pair_correct
from rewardlab.metrics.calibration import calibration, optimal_temperature
from rewardlab.metrics.inputs import (
    LENGTH_GROUPS,
    check_bins,
    check_categories,
    check_lengths,
    check_margins,
    check_positive_int,
    check_weighting,
    evaluated_pairs,
)
from rewardlab.metrics.intervals import bootstrap_intervals
from rewardlab.metrics.pairs import (
    bradley_terry_log_loss,
    category_accuracy,
    length_bias,
    mean_margin,
    pair_accuracy,
    section_scores,
    worst_pairs,
)

Intervals = dict[str, list[float]] | None  # bootstrap intervals by statistic key; None when turned off


def _metric(value: float, ci: Intervals, key: str) -> dict[str, Any]:
    return {"value": value, "ci95": None if ci is None else ci.get(key)}


def evaluate_pairs(
    rewards_chosen: Any,
    rewards_rejected: Any,
    *,
    margins: Any = None,
    chosen_lengths: Any = None,
    rejected_lengths: Any = None,
    rule_lengths: tuple[Any, Any] | None = None,
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
    `rule_lengths` = (chosen, rejected) are the lengths the content-blind rules compare (default: the response
    lengths; give the lengths before truncation when those are after it, so that "longer wins" sees real lengths).
    `n_bootstrap=0` turns the intervals off (every `ci95` is then None). Formulas: see the function named with each
    entry below; the intervals come from `bootstrap_intervals` (95%, percentile method, seeded).

    The report's layout is in the module docstring.
    """
    rc, rr, ok = evaluated_pairs(rewards_chosen, rewards_rejected)
    m = check_margins(margins, rc)
    has_lengths = chosen_lengths is not None or rejected_lengths is not None
    lc, lr = check_lengths(chosen_lengths, rejected_lengths, rc) if has_lengths else (None, None)
    names = check_categories(categories, rc) if categories is not None else None
    if sections is not None and names is None:
        raise RewardlabError("sections need categories: give the category of every pair")
    check_weighting(section_weighting)
    check_bins(n_bins)
    n_bootstrap = check_positive_int(n_bootstrap, "n_bootstrap", minimum=0)
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
    report = _accuracy_section(rc, rr, ok, m, ci)
    report["calibration"] = _calibration_section(rc, rr, n_bins, fit_temperature, ci)
    report["length_bias"] = _length_section(rc, rr, lc, lr, ci) if has_lengths else None
    report["categories"], report["sections"] = _category_sections(rc, rr, names, sections, section_weighting, ci)
    rule_c, rule_r = (lc, lr) if rule_lengths is None else check_lengths(*rule_lengths, rc)
    report["baselines"] = _baselines(rc, rr, ok, rule_c, rule_r, n_bootstrap, seed)
    per_pair = np.asarray(names, dtype=object) if names is not None else None
    for name, entry in (report["categories"] or {}).items():
        in_category = per_pair == name
        entry["baselines"] = _baselines(rc, rr, ok & in_category, rule_c, rule_r, n_bootstrap, seed)
    report["worst_pairs"] = _worst_section(rc, rr, m, lc, lr, names, worst_k)
    report["bootstrap"] = {"n_bootstrap": n_bootstrap, "seed": int(seed), "confidence": 0.95, "method": "percentile"}
    return report


def _accuracy_section(rc: np.ndarray, rr: np.ndarray, ok: np.ndarray, m: np.ndarray | None, ci: Intervals) -> dict:
    """Counts, accuracy, margin and the Bradley-Terry log-loss."""
    acc = pair_accuracy(rc, rr)
    loss = bradley_terry_log_loss(rc, rr, m)
    return {
        "n_pairs": len(rc),
        "n_evaluated": acc["n"],
        "n_dropped": acc["n_dropped"],
        "dropped_indices": [int(i) for i in np.flatnonzero(~ok)],
        "accuracy": _metric(acc["accuracy"], ci, "accuracy")
        | {k: acc[k] for k in ("correct", "incorrect", "ties", "tie_fraction")},
        "accuracy_ties_half": _metric(acc["accuracy_ties_half"], ci, "accuracy_ties_half"),
        "mean_margin": _metric(mean_margin(rc, rr)["mean_margin"], ci, "mean_margin"),
        "log_loss": _metric(loss["log_loss"], ci, "log_loss") | {"with_margins": loss["with_margins"]},
    }


def _baselines(
    rc: np.ndarray,
    rr: np.ndarray,
    keep: np.ndarray,
    lc: np.ndarray | None,
    lr: np.ndarray | None,
    n_bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """The content-blind rules on the pairs `keep` selects, scored as the accuracy is (a tie is not correct), and
    the accuracy's lead over the best of them (`rewardlab.metrics.baselines`); without lengths, chance only."""

    def accuracy(chosen: np.ndarray, rejected: np.ndarray) -> Any:
        return masked_mean(pair_correct(chosen[keep], rejected[keep]))

    chance = masked_mean(np.full(int(keep.sum()), 0.5))
    rules = length_rules(lambda values: accuracy(*values), (lc, lr), chance) if lc is not None else {"chance": chance}
    return compare_with_baselines(accuracy(rc, rr), rules, int(keep.sum()), n_bootstrap=n_bootstrap, seed=seed)


def _calibration_section(rc: np.ndarray, rr: np.ndarray, n_bins: int, fit_temperature: bool, ci: Intervals) -> dict:
    """ECE, Brier, reliability bins; with `fit_temperature`, the same after the best temperature."""
    cal = calibration(rc, rr, n_bins=n_bins)
    section = {
        "n_bins": cal["n_bins"],
        "ece": _metric(cal["ece"], ci, "ece"),
        "brier": _metric(cal["brier"], ci, "brier"),
        "log_loss": cal["log_loss"],
        "reliability": cal["reliability"],
        "temperature": None,
    }
    if fit_temperature:
        fit = optimal_temperature(rc, rr)
        defined = math.isfinite(fit["temperature"])
        scaled = calibration(rc, rr, n_bins=n_bins, temperature=fit["temperature"]) if defined else cal
        section["temperature"] = {
            "value": fit["temperature"],
            "status": fit["status"],
            "iterations": fit["iterations"],
            "log_loss": fit["log_loss"],
            "ece": scaled["ece"],
            "brier": scaled["brier"],
            "reliability": scaled["reliability"],
        }
    return section


def _length_section(rc: np.ndarray, rr: np.ndarray, lc: np.ndarray, lr: np.ndarray, ci: Intervals) -> dict:
    """Reward-length correlations and accuracy by which response is longer."""
    bias = length_bias(rc, rr, lc, lr)
    shown = ("chosen_longer_fraction", "margin_length_pearson", "mean_length_chosen", "mean_length_rejected")
    return {
        "pearson": _metric(bias["pearson"], ci, "length_pearson"),
        "spearman": _metric(bias["spearman"], ci, "length_spearman"),
        **{g: bias[g] | {"ci95": None if ci is None else ci[f"length_group:{g}"]} for g in LENGTH_GROUPS},
        **{k: bias[k] for k in shown},
    }


def _category_sections(
    rc: np.ndarray,
    rr: np.ndarray,
    names: list[str] | None,
    sections: Mapping[str, Sequence[str]] | None,
    weighting: str,
    ci: Intervals,
) -> tuple[dict | None, dict | None]:
    """Accuracy per category and, with `sections`, the section scores."""
    if names is None:
        return None, None
    per_category = category_accuracy(rc, rr, names)
    categories = {
        name: values | {"ci95": None if ci is None else ci[f"category:{name}"]} for name, values in per_category.items()
    }
    if sections is None:
        return categories, None
    scored = section_scores(per_category, sections, weighting)
    report = {
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
        report["mean"]["ci95"] = [math.nan, math.nan]
    return categories, report


def _worst_section(
    rc: np.ndarray,
    rr: np.ndarray,
    m: np.ndarray | None,
    lc: np.ndarray | None,
    lr: np.ndarray | None,
    names: list[str] | None,
    worst_k: int,
) -> list[dict[str, Any]]:
    """The `worst_k` pairs with the most negative margins, with what is known of each."""
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
        if lc is not None:
            entry["chosen_length"], entry["rejected_length"] = float(lc[i]), float(lr[i])
        if m is not None:
            entry["dataset_margin"] = float(m[i])
        worst.append(entry)
    return worst


def json_safe(value: Any) -> Any:
    """A copy of `value` (nested dicts/lists) with NaN and ±inf floats replaced by None, for strict JSON parsers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
