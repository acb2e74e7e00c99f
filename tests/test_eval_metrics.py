import json
import math

import numpy as np
import pytest
from scipy import stats

from rewardlab.errors import RewardlabError
from rewardlab.metrics.calibration import calibration, optimal_temperature, reliability_bins
from rewardlab.metrics.intervals import _PairColumns, _resample_statistics, bootstrap_intervals
from rewardlab.metrics.pair_evaluation import evaluate_pairs, json_safe
from rewardlab.metrics.pairs import (
    bradley_terry_log_loss,
    category_accuracy,
    length_bias,
    mean_margin,
    pair_accuracy,
    pearson_r,
    section_scores,
    spearman_correlation,
    worst_pairs,
)

NAN = float("nan")


def s(x: float) -> float:
    """σ(x), written out independently of the module under test."""
    return 1.0 / (1.0 + math.exp(-x))


# Five pairs, the last one dropped (NaN reward): margins d = 1, 0, -1, 3 over the four evaluated pairs.
RC = [2.0, 1.0, 0.0, 3.0, 5.0]
RR = [1.0, 1.0, 1.0, 0.0, NAN]


def test_accuracy_counts_ties_apart_and_excludes_dropped_pairs():
    a = pair_accuracy(RC, RR)
    assert a == {
        "n": 4,
        "n_dropped": 1,
        "correct": 2,
        "ties": 1,
        "incorrect": 1,
        "accuracy": 0.5,
        "tie_fraction": 0.25,
        "accuracy_ties_half": 2.5 / 4,
    }


def test_accuracy_of_a_single_pair_and_of_all_equal_rewards():
    assert pair_accuracy([1.0], [0.0])["accuracy"] == 1.0
    assert pair_accuracy([0.0], [1.0])["accuracy"] == 0.0
    equal = pair_accuracy([0.3] * 5, [0.3] * 5)
    assert (equal["accuracy"], equal["ties"], equal["accuracy_ties_half"]) == (0.0, 5, 0.5)


def test_nothing_evaluated_gives_nan_not_zero():
    a = pair_accuracy([NAN, 1.0], [0.0, NAN])
    assert a["n"] == 0 and a["n_dropped"] == 2
    assert math.isnan(a["accuracy"]) and math.isnan(a["accuracy_ties_half"])
    assert math.isnan(mean_margin([], [])["mean_margin"])


def test_infinite_rewards_count_as_dropped():
    a = pair_accuracy([np.inf, 1.0, 2.0], [0.0, -np.inf, 1.0])
    assert (a["n"], a["n_dropped"], a["accuracy"]) == (1, 2, 1.0)


def test_mean_margin():
    assert mean_margin(RC, RR) == {"n": 4, "n_dropped": 1, "mean_margin": 0.75}


def test_log_loss_by_hand_with_and_without_margins():
    by_hand = (math.log(1 + math.exp(-1)) + math.log(2) + math.log(1 + math.e) + math.log(1 + math.exp(-3))) / 4
    loss = bradley_terry_log_loss(RC, RR)
    assert loss["log_loss"] == pytest.approx(by_hand, rel=1e-12)
    assert loss["with_margins"] is False and loss["n_dropped"] == 1
    # Margins shift each difference: d - m = 0.5, 0, -1, 2 (the dropped pair's margin is ignored).
    margins = [0.5, 0.0, 0.0, 1.0, 7.0]
    by_hand = (math.log(1 + math.exp(-0.5)) + math.log(2) + math.log(1 + math.e) + math.log(1 + math.exp(-2))) / 4
    assert bradley_terry_log_loss(RC, RR, margins)["log_loss"] == pytest.approx(by_hand, rel=1e-12)


def test_log_loss_is_stable_for_huge_margins():
    # Underflow of exp(-1000) to 0 is the intended result; overflow or NaN would be a bug.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert bradley_terry_log_loss([1000.0], [0.0])["log_loss"] == pytest.approx(0.0, abs=1e-300)
        assert bradley_terry_log_loss([0.0], [1000.0])["log_loss"] == pytest.approx(1000.0, rel=1e-15)
        assert bradley_terry_log_loss([700.0], [0.0])["log_loss"] == pytest.approx(math.exp(-700.0), rel=1e-12)
    assert bradley_terry_log_loss([50.0], [0.0])["log_loss"] == pytest.approx(math.exp(-50), rel=1e-12)


def test_margins_must_be_finite():
    with pytest.raises(RewardlabError, match="pair 1 has margin nan"):
        bradley_terry_log_loss([1.0, 2.0], [0.0, 0.0], [0.0, NAN])


def test_calibration_by_hand_with_two_bins():
    # Symmetrised items (p, 1) and (1 - p, 0) for d = 1, 0, -1, 3 (the NaN pair is dropped).
    p1, p3 = s(1.0), s(3.0)
    low = [(1 - p1, 0), (1 - p1, 1), (1 - p3, 0)]  # predictions below 0.5
    high = [(p1, 1), (0.5, 1), (0.5, 0), (p1, 0), (p3, 1)]  # 0.5 and above (bins are [lo, hi))
    cal = calibration(RC, RR, n_bins=2)
    bins = cal["reliability"]
    assert [b["count"] for b in bins] == [3, 5]
    assert [(b["bin_lower"], b["bin_upper"]) for b in bins] == [(0.0, 0.5), (0.5, 1.0)]
    for b, items in zip(bins, (low, high), strict=True):
        assert b["mean_predicted"] == pytest.approx(sum(p for p, _ in items) / len(items), rel=1e-12)
        assert b["observed_frequency"] == pytest.approx(sum(y for _, y in items) / len(items), rel=1e-12)
    ece = sum(abs(sum(p for p, _ in it) / len(it) - sum(y for _, y in it) / len(it)) * len(it) for it in (low, high))
    assert cal["ece"] == pytest.approx(ece / 8, rel=1e-12)
    brier = ((1 - p1) ** 2 + 0.25 + p1**2 + (1 - p3) ** 2) / 4
    assert cal["brier"] == pytest.approx(brier, rel=1e-12)
    assert cal["log_loss"] == pytest.approx(bradley_terry_log_loss(RC, RR)["log_loss"], rel=1e-12)
    assert (cal["n"], cal["n_dropped"], cal["n_bins"], cal["temperature"]) == (4, 1, 2, 1.0)


def test_calibration_of_all_equal_rewards_is_perfect_and_empty_bins_are_nan():
    cal = calibration([0.3] * 5, [0.3] * 5, n_bins=10)
    assert cal["ece"] == 0.0 and cal["brier"] == 0.25
    assert cal["log_loss"] == pytest.approx(math.log(2))
    assert [b["count"] for b in cal["reliability"]] == [0] * 5 + [10] + [0] * 4
    empty = cal["reliability"][0]
    assert math.isnan(empty["mean_predicted"]) and math.isnan(empty["observed_frequency"])


def test_calibration_with_temperature_scales_the_margins():
    hot = calibration(RC, RR, n_bins=4, temperature=2.0)
    assert hot["brier"] == pytest.approx(np.mean([s(-x / 2) ** 2 for x in (1, 0, -1, 3)]), rel=1e-12)
    assert hot["temperature"] == 2.0
    with pytest.raises(RewardlabError, match="temperature"):
        calibration(RC, RR, temperature=0)
    with pytest.raises(RewardlabError, match="n_bins"):
        calibration(RC, RR, n_bins=0)


def test_probability_one_lands_in_the_top_bin():
    bins = reliability_bins(np.array([1000.0]), 4)
    assert [b["count"] for b in bins] == [1, 0, 0, 1]


def test_temperature_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 3.0, 40_000)
    # The chosen response really wins with probability σ(x / 2): the calibrated temperature is 2.
    chosen_wins = rng.random(len(x)) < 1.0 / (1.0 + np.exp(-x / 2.0))
    d = np.where(chosen_wins, x, -x)
    fit = optimal_temperature(d, np.zeros_like(d))
    assert fit["status"] == "converged"
    assert fit["temperature"] == pytest.approx(2.0, rel=0.05)
    assert fit["log_loss"] < fit["log_loss_unscaled"]
    # It is the minimum: nearby temperatures do worse, and rescaling the rewards rescales the temperature.
    for t in (fit["temperature"] * 0.98, fit["temperature"] * 1.02):
        assert calibration(d, np.zeros_like(d), temperature=t)["log_loss"] > fit["log_loss"]
    assert optimal_temperature(10 * d, np.zeros_like(d))["temperature"] == pytest.approx(
        10 * fit["temperature"], rel=1e-8
    )


def test_temperature_fit_by_grid_search_on_a_small_set():
    d = np.array([2.0, -0.5, 1.0, 0.3, -1.5, 4.0, 0.7])
    fit = optimal_temperature(d, np.zeros_like(d))
    grid = np.exp(np.linspace(np.log(0.05), np.log(50), 20001))
    losses = [np.mean(np.log1p(np.exp(-d / t))) for t in grid]
    assert fit["temperature"] == pytest.approx(grid[int(np.argmin(losses))], rel=1e-3)
    assert fit["iterations"] < 30


def test_temperature_fit_edge_cases():
    separable = optimal_temperature([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert separable["status"] == "at_lower_bound" and separable["temperature"] < 1e-4
    worse_than_chance = optimal_temperature([0.0, 1.0], [1.0, 0.0])  # d = -1, 1: mean 0
    assert worse_than_chance["status"] == "at_upper_bound" and worse_than_chance["temperature"] > 1e4
    equal = optimal_temperature([0.5, 0.5], [0.5, 0.5])
    assert equal["status"] == "undefined" and math.isnan(equal["temperature"])
    assert equal["log_loss"] == pytest.approx(math.log(2))
    assert optimal_temperature([NAN], [0.0])["status"] == "undefined"


def test_correlations_by_hand():
    assert pearson_r([1, 2, 3], [2, 4, 7]) == pytest.approx(
        # x - x̄ = (-1, 0, 1), y - ȳ = (-7/3, -1/3, 8/3)
        (7 / 3 + 8 / 3) / math.sqrt(2 * (49 + 1 + 64) / 9),
        rel=1e-12,
    )
    assert spearman_correlation([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)
    assert spearman_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson_r([1, 1, 1], [1, 2, 3]))
    assert math.isnan(pearson_r([1e300 / 3] * 4, [1, 2, 3, 4]))  # constant despite rounding in the mean
    assert math.isnan(spearman_correlation([5], [2]))


def test_length_bias_by_hand():
    rc, rr = [3.0, 1.0, 2.0, 0.0, 9.0], [1.0, 2.0, 2.0, 1.0, NAN]
    lc, lr = [10, 5, 7, 3, 100], [5, 8, 7, 1, 1]
    bias = length_bias(rc, rr, lc, lr)
    assert bias["chosen_longer"] == {"count": 2, "correct": 1, "ties": 0, "accuracy": 0.5}
    assert bias["chosen_shorter"] == {"count": 1, "correct": 0, "ties": 0, "accuracy": 0.0}
    assert bias["equal_length"] == {"count": 1, "correct": 0, "ties": 1, "accuracy": 0.0}
    assert bias["chosen_longer_fraction"] == 0.5 and (bias["n"], bias["n_dropped"]) == (4, 1)
    assert bias["mean_length_chosen"] == 25 / 4 and bias["mean_length_rejected"] == 21 / 4
    rewards, lengths = [3, 1, 2, 0, 1, 2, 2, 1], [10, 5, 7, 3, 5, 8, 7, 1]  # chosen responses, then rejected
    assert bias["pearson"] == pytest.approx(np.corrcoef(rewards, lengths)[0, 1], rel=1e-12)
    reward_ranks, length_ranks = [8, 3, 6, 1, 3, 6, 6, 3], [8, 3.5, 5.5, 2, 3.5, 7, 5.5, 1]
    assert bias["spearman"] == pytest.approx(np.corrcoef(reward_ranks, length_ranks)[0, 1], rel=1e-12)
    assert bias["margin_length_pearson"] == pytest.approx(np.corrcoef([2, -1, 0, -1], [5, -3, 0, 2])[0, 1])


def test_length_bias_of_constant_rewards_is_nan_and_empty_groups_are_nan():
    bias = length_bias([1.0, 1.0], [1.0, 1.0], [3, 4], [1, 2])
    assert math.isnan(bias["pearson"]) and math.isnan(bias["spearman"])
    assert bias["chosen_shorter"]["count"] == 0 and math.isnan(bias["chosen_shorter"]["accuracy"])


def test_length_inputs_are_checked():
    with pytest.raises(RewardlabError, match="both chosen_lengths and rejected_lengths"):
        evaluate_pairs([1.0], [0.0], chosen_lengths=[3], n_bootstrap=0)
    with pytest.raises(RewardlabError, match="rejected_lengths has 1 values but rewards_chosen has 2"):
        length_bias([1.0, 2.0], [0.0, 0.0], [1, 2], [1])
    with pytest.raises(RewardlabError, match="chosen_lengths must be finite"):
        length_bias([1.0], [0.0], [NAN], [1])


def test_category_accuracy_by_hand():
    cats = ["a", "b", "a", "b", "a"]
    per = category_accuracy(RC, RR, cats)
    assert list(per) == ["a", "b"]
    assert per["a"] == {"count": 2, "n_dropped": 1, "correct": 1, "ties": 0, "accuracy": 0.5}
    assert per["b"] == {"count": 2, "n_dropped": 0, "correct": 1, "ties": 1, "accuracy": 0.5}
    only_dropped = category_accuracy([1.0, NAN], [0.0, 0.0], ["x", "y"])["y"]
    assert only_dropped["count"] == 0 and only_dropped["n_dropped"] == 1 and math.isnan(only_dropped["accuracy"])
    with pytest.raises(RewardlabError, match="categories has 2 values"):
        category_accuracy([1.0], [0.0], ["a", "b"])


PER_CATEGORY = {
    "x": {"count": 10, "correct": 9},
    "y": {"count": 30, "correct": 15},
    "z": {"count": 5, "correct": 5},
    "u": {"count": 4, "correct": 1},
    "gone": {"count": 0, "correct": 0},
}
SECTIONS = {"S1": ["x", "y"], "S2": ["z", "w"], "S3": ["gone"]}


def test_section_scores_weighted_by_examples():
    scored = section_scores(PER_CATEGORY, SECTIONS, "examples")
    assert scored["scores"]["S1"] == {"score": 24 / 40, "count": 40, "categories": ["x", "y"], "missing_categories": []}
    assert scored["scores"]["S2"]["score"] == 1.0 and scored["scores"]["S2"]["missing_categories"] == ["w"]
    assert math.isnan(scored["scores"]["S3"]["score"]) and scored["sections_without_data"] == ["S3"]
    assert scored["mean"] == pytest.approx((0.6 + 1.0) / 2)
    assert scored["unassigned_categories"] == ["u"]


def test_section_scores_weighted_uniformly():
    scored = section_scores(PER_CATEGORY, SECTIONS, "uniform")
    assert scored["scores"]["S1"]["score"] == pytest.approx((0.9 + 0.5) / 2)
    assert scored["mean"] == pytest.approx((0.7 + 1.0) / 2)
    with pytest.raises(RewardlabError, match="section_weighting must be one of examples, uniform"):
        section_scores(PER_CATEGORY, SECTIONS, "pairs")
    with pytest.raises(RewardlabError, match="section 'S1' must list its categories"):
        section_scores(PER_CATEGORY, {"S1": "x"})


def test_worst_pairs_sorted_with_ties_by_index_and_nan_excluded():
    rc = [0.0, 2.0, 0.0, 0.0, NAN, 1.0]
    rr = [1.0, 0.0, 3.0, 1.0, 0.0, 4.0]  # d = -1, 2, -3, -1, NaN, -3
    assert worst_pairs(rc, rr, 3) == [2, 5, 0]
    assert worst_pairs(rc, rr, 10) == [2, 5, 0, 3, 1]
    assert worst_pairs(rc, rr, 0) == []
    with pytest.raises(RewardlabError, match="k must be"):
        worst_pairs(rc, rr, -1)


def test_mismatched_or_malformed_inputs_are_rejected():
    with pytest.raises(RewardlabError, match="rewards_rejected has 2 values but rewards_chosen has 3"):
        pair_accuracy([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(RewardlabError, match="1-D"):
        pair_accuracy([[1.0]], [[2.0]])
    with pytest.raises(RewardlabError, match="must be numbers"):
        pair_accuracy(["a"], [1.0])


def _random_set(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    quality = rng.normal(0, 1, (n, 2))
    lengths = rng.integers(20, 400, (n, 2))
    return {
        "rewards_chosen": quality[:, 0] + 0.8 + 0.002 * lengths[:, 0],
        "rewards_rejected": quality[:, 1] + 0.002 * lengths[:, 1],
        "chosen_lengths": lengths[:, 0],
        "rejected_lengths": lengths[:, 1],
        "categories": rng.choice(["chat", "code", "math"], n).tolist(),
    }


def test_resampled_statistics_use_the_point_formulas():
    data = _random_set(60)
    data["rewards_chosen"][:5] = data["rewards_rejected"][:5]  # ties
    data["chosen_lengths"][10:20] = data["rejected_lengths"][10:20]  # equal lengths, tied length ranks
    rc, rr, lc, lr = (np.asarray(data[k], dtype=float) for k in list(data)[:4])
    cats = data["categories"]
    margins = np.linspace(-0.5, 0.5, 60)
    columns = _PairColumns.build(rc, rr, margins, 7, (lc, lr), (cats, sorted(set(cats))), None, "examples")

    def check(weights: np.ndarray, rc, rr, lc, lr, cats, margins) -> None:
        got = {k: v[0] for k, v in _resample_statistics(columns, weights[None, :]).items()}
        acc = pair_accuracy(rc, rr)
        cal = calibration(rc, rr, n_bins=7)
        bias = length_bias(rc, rr, lc, lr)
        assert got["accuracy"] == pytest.approx(acc["accuracy"], rel=1e-12)
        assert got["accuracy_ties_half"] == pytest.approx(acc["accuracy_ties_half"], rel=1e-12)
        assert got["mean_margin"] == pytest.approx(mean_margin(rc, rr)["mean_margin"], rel=1e-9)
        assert got["log_loss"] == pytest.approx(bradley_terry_log_loss(rc, rr, margins)["log_loss"], rel=1e-12)
        assert got["ece"] == pytest.approx(cal["ece"], rel=1e-9)
        assert got["brier"] == pytest.approx(cal["brier"], rel=1e-12)
        assert got["length_pearson"] == pytest.approx(bias["pearson"], rel=1e-9)
        assert got["length_spearman"] == pytest.approx(bias["spearman"], rel=1e-12)
        # The vectorised resampling is rewardlab's own (see rewardlab.metrics.intervals): scipy is the reference.
        rewards, lengths = np.concatenate([rc, rr]), np.concatenate([lc, lr])
        assert got["length_spearman"] == pytest.approx(stats.spearmanr(rewards, lengths).statistic, rel=1e-12)
        assert got["length_pearson"] == pytest.approx(stats.pearsonr(rewards, lengths).statistic, rel=1e-9)
        for group in ("chosen_longer", "chosen_shorter", "equal_length"):
            assert got[f"length_group:{group}"] == pytest.approx(bias[group]["accuracy"], rel=1e-12)
        for name, values in category_accuracy(rc, rr, cats).items():
            assert got[f"category:{name}"] == pytest.approx(values["accuracy"], rel=1e-12)

    check(np.ones(60), rc, rr, lc, lr, cats, margins)
    # A resample is the multiset of drawn pairs: weighting pair i by its draw count equals recomputing on the copies.
    drawn = np.random.default_rng(5).integers(0, 60, 60)
    counts = np.bincount(drawn, minlength=60).astype(float)
    check(counts, rc[drawn], rr[drawn], lc[drawn], lr[drawn], [cats[i] for i in drawn], margins[drawn])


def test_bootstrap_is_seeded_and_contains_the_point_estimates():
    data = _random_set(400)
    first = bootstrap_intervals(**data, n_bootstrap=300, seed=3)
    assert first == bootstrap_intervals(**data, n_bootstrap=300, seed=3)
    assert first != bootstrap_intervals(**data, n_bootstrap=300, seed=4)
    report = evaluate_pairs(**data, n_bootstrap=300, seed=3)
    point = {
        "accuracy": report["accuracy"]["value"],
        "accuracy_ties_half": report["accuracy_ties_half"]["value"],
        "mean_margin": report["mean_margin"]["value"],
        "log_loss": report["log_loss"]["value"],
        "brier": report["calibration"]["brier"]["value"],
        "length_pearson": report["length_bias"]["pearson"]["value"],
        "length_spearman": report["length_bias"]["spearman"]["value"],
        "category:chat": report["categories"]["chat"]["accuracy"],
    }
    for key, value in point.items():
        low, high = first[key]
        assert low < value < high, key
    assert report["accuracy"]["ci95"] == first["accuracy"]


def test_bootstrap_intervals_narrow_with_more_data():
    def width(n: int) -> float:
        low, high = bootstrap_intervals(**_random_set(n), n_bootstrap=200)["accuracy"]
        return high - low

    small, large = width(100), width(3000)
    # The width shrinks like 1/sqrt(n): sqrt(30) ≈ 5.5.
    assert 3 < small / large < 9


def test_bootstrap_of_a_single_pair_and_of_nothing():
    one = bootstrap_intervals([1.0], [0.0], n_bootstrap=50)
    assert one["accuracy"] == [1.0, 1.0] and one["mean_margin"] == [1.0, 1.0]
    nothing = bootstrap_intervals([NAN], [0.0], categories=["a"], n_bootstrap=50)
    assert all(math.isnan(v) for interval in nothing.values() for v in interval)
    assert "category:a" in nothing
    constant_lengths = bootstrap_intervals([1.0, 2.0], [0.0, 0.0], chosen_lengths=[5, 5], rejected_lengths=[5, 5])
    assert all(math.isnan(v) for v in constant_lengths["length_pearson"])
    with pytest.raises(RewardlabError, match="n_bootstrap"):
        bootstrap_intervals([1.0], [0.0], n_bootstrap=0)


def _assert_plain(value) -> None:
    """Only JSON types: no numpy scalars or arrays anywhere."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            _assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            _assert_plain(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), (value, type(value))


def test_evaluate_pairs_report_layout():
    data = _random_set(300)
    data["rewards_chosen"][7] = NAN
    margins = np.full(300, 0.25)
    sections = {"Reasoning": ["code", "math"], "Chat": ["chat"], "Safety": ["refusals"]}
    report = evaluate_pairs(**data, margins=margins, sections=sections, n_bootstrap=200, worst_k=5)
    _assert_plain(report)
    assert json.loads(json.dumps(report))["n_pairs"] == 300
    json.dumps(json_safe(report), allow_nan=False)
    assert (report["n_pairs"], report["n_evaluated"], report["n_dropped"], report["dropped_indices"]) == (
        300,
        299,
        1,
        [7],
    )
    rc, rr = data["rewards_chosen"], data["rewards_rejected"]
    assert report["accuracy"]["value"] == pair_accuracy(rc, rr)["accuracy"]
    assert report["log_loss"]["with_margins"] is True
    assert report["log_loss"]["value"] == bradley_terry_log_loss(rc, rr, margins)["log_loss"]
    assert report["calibration"]["log_loss"] == bradley_terry_log_loss(rc, rr)["log_loss"]
    assert len(report["calibration"]["reliability"]) == 10
    temperature = report["calibration"]["temperature"]
    assert temperature["status"] == "converged" and temperature["log_loss"] <= report["calibration"]["log_loss"]
    assert set(report["length_bias"]) >= {"pearson", "spearman", "chosen_longer", "chosen_shorter", "equal_length"}
    assert len(report["length_bias"]["chosen_longer"]["ci95"]) == 2
    assert set(report["categories"]) == {"chat", "code", "math"}
    assert report["sections"]["scores"]["Safety"]["missing_categories"] == ["refusals"]
    assert report["sections"]["sections_without_data"] == ["Safety"]
    assert len(report["sections"]["scores"]["Chat"]["ci95"]) == 2
    assert report["sections"]["mean"]["value"] == pytest.approx(
        (report["sections"]["scores"]["Reasoning"]["value"] + report["sections"]["scores"]["Chat"]["value"]) / 2
    )
    worst = report["worst_pairs"]
    assert [w["index"] for w in worst] == worst_pairs(rc, rr, 5)
    assert worst[0]["margin"] == rc[worst[0]["index"]] - rr[worst[0]["index"]]
    assert set(worst[0]) == {
        "index",
        "margin",
        "reward_chosen",
        "reward_rejected",
        "category",
        "chosen_length",
        "rejected_length",
        "dataset_margin",
    }
    assert report["bootstrap"] == {"n_bootstrap": 200, "seed": 0, "confidence": 0.95, "method": "percentile"}


def test_evaluate_pairs_minimal_and_degenerate_inputs():
    report = evaluate_pairs([1.0], [0.0], n_bootstrap=0, fit_temperature=False)
    _assert_plain(report)
    assert report["accuracy"] == {
        "value": 1.0,
        "ci95": None,
        "correct": 1,
        "incorrect": 0,
        "ties": 0,
        "tie_fraction": 0.0,
    }
    assert report["calibration"]["temperature"] is None
    assert report["length_bias"] is None and report["categories"] is None and report["sections"] is None
    equal = evaluate_pairs([0.2] * 3, [0.2] * 3, chosen_lengths=[1, 2, 3], rejected_lengths=[3, 2, 1], n_bootstrap=20)
    assert equal["accuracy_ties_half"]["value"] == 0.5 and equal["calibration"]["ece"]["value"] == 0.0
    assert equal["calibration"]["temperature"]["status"] == "undefined"
    assert math.isnan(equal["length_bias"]["pearson"]["value"])
    dropped = evaluate_pairs([NAN, NAN], [0.0, 1.0], categories=["a", "b"], sections={"S": ["a"]}, n_bootstrap=10)
    assert dropped["n_evaluated"] == 0 and math.isnan(dropped["accuracy"]["value"])
    assert dropped["worst_pairs"] == [] and math.isnan(dropped["categories"]["a"]["ci95"][0])
    json.dumps(json_safe(dropped), allow_nan=False)
    with pytest.raises(RewardlabError, match="sections need categories"):
        evaluate_pairs([1.0], [0.0], sections={"S": ["a"]})
