"""The field's scoring rules on hand-computed cases: RewardBench 2's best-of-N tie rule and Ties formula, RM-Bench's
style matrix, and content-blind baselines with the model's lead."""

import math

import numpy as np
import pytest

from rewardlab.metrics.baselines import compare_with_baselines, length_rules, masked_mean, mean_of
from rewardlab.metrics.best_of_n import best_of_n_chance, best_of_n_scores
from rewardlab.metrics.intervals import resample_weights
from rewardlab.metrics.style_matrix import difficulty_accuracies, style_correct, unit_values
from rewardlab.metrics.ties import ties_chance_columns, ties_columns, ties_statistic

ONES = np.ones((1, 1))


def test_best_of_n_tie_rule():
    rewards = [
        [2.0, 1.0, 1.0, 1.0],  # correct alone at the top: 1
        [1.0, 1.0, 0.0, 0.0],  # tied with one other: 1/2
        [1.0, 1.0, 1.0],  # N = 3, all tied (duplicates): 1/3
        [1.0, 2.0, 0.0, 0.0, 0.0, -1.0],  # N = 6, a wrong one on top: 0
        [0.5, 0.1],  # N = 2
        [1.0, math.nan, 0.0],  # a dropped completion: undefined
    ]
    scores = best_of_n_scores(rewards, [[0]] * len(rewards))
    np.testing.assert_allclose(scores[:5], [1.0, 0.5, 1 / 3, 0.0, 1.0])
    assert math.isnan(scores[5])
    # Several best completions: the share of the tied top that is best.
    assert best_of_n_scores([[3.0, 3.0, 3.0, 1.0]], [[0, 1]])[0] == pytest.approx(2 / 3)
    np.testing.assert_allclose(best_of_n_chance([4, 2, 6], [1, 1, 2]), [0.25, 0.5, 1 / 3])


def reference_ties_score(prompts):
    """RewardBench 2's Ties rule as its reference states it, prompt by prompt in plain Python: prompts are
    (ref_rewards, ref_correct, tied_rewards, tied_correct)."""

    def stats(rewards, n_correct):
        correct, incorrect = rewards[:n_correct], rewards[n_correct:]
        spread = max(correct) - min(correct) if n_correct > 1 else None
        return min(correct) > max(incorrect), min(correct) - max(incorrect), spread

    ref_acc, tied_acc, preferred, hard, ratios = [], [], [], [], []
    for ref, rc, tied, tc in prompts:
        r_ok, r_cim, _ = stats(ref, rc)
        t_ok, t_cim, t_spread = stats(tied, tc)
        ref_acc.append(r_ok)
        tied_acc.append(t_ok)
        if t_spread is not None:
            preferred.append(t_cim > t_spread)
            hard.append(min(r_cim, t_cim) > t_spread)
            if t_spread > 0:
                ratios.append(math.tanh(min(r_cim, t_cim) / t_spread - 1))
    mean = np.mean
    return (
        0.3 * mean(tied_acc)
        + 0.3 * mean(ref_acc)
        + 0.2 * (mean(preferred) if preferred else 0)
        + 0.2 * (mean(hard) if hard else 0)
        + 0.01 * (mean(ratios) if ratios else 0)
    )


def test_ties_formula_on_hand_computed_prompts():
    # Prompt 1: the correct answers' spread (5 - 2 = 3) exceeds their gap to the wrong ones (2 - 1.5 = 0.5), so
    # correctness is not preferred although both rows rank every correct answer first.
    one = ([3.0, 1.0, 0.0], 1, [5.0, 2.0, 1.5, 0.0], 2)
    # Prompt 2: the ref row ranks a wrong answer first; the tied row separates well (gap 3, spread 0.1).
    two = ([2.0, 3.0], 1, [4.0, 4.1, 1.0], 2)
    columns = ties_columns([one[0], two[0]], [1, 1], [one[2], two[2]], [2, 2])
    np.testing.assert_allclose(columns.tied_accurate, [1, 1])
    np.testing.assert_allclose(columns.ref_accurate, [1, 0])
    np.testing.assert_allclose(columns.preferred, [0, 1])
    np.testing.assert_allclose(columns.preferred_hard, [0, 0])
    np.testing.assert_allclose(columns.margin, [math.tanh(0.5 / 3 - 1), math.tanh(-1 / 0.1 - 1)])
    expected = 0.3 * 1 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0 + 0.01 * np.mean(columns.margin)
    score = ties_statistic(columns)(np.ones((1, 2)))[0]
    assert score == pytest.approx(expected)
    assert score == pytest.approx(reference_ties_score([one, two]))
    # The first prompt alone: 0.3 + 0.3 + 0.01 * tanh(-5/6).
    alone = ties_statistic(ties_columns([one[0]], [1], [one[2]], [2]))(ONES)[0]
    assert alone == pytest.approx(0.6 + 0.01 * math.tanh(0.5 / 3 - 1))


def test_ties_formula_matches_the_reference_on_random_prompts():
    rng = np.random.default_rng(3)
    prompts = []
    for _ in range(40):
        rc, tc = 1, int(rng.integers(1, 5))
        ref = rng.integers(0, 4, size=rc + int(rng.integers(1, 4))).astype(float)  # small integers: many ties
        tied = rng.integers(0, 4, size=tc + int(rng.integers(1, 4))).astype(float)
        prompts.append((ref.tolist(), rc, tied.tolist(), tc))
    columns = ties_columns(*zip(*[(p[0], p[1], p[2], p[3]) for p in prompts], strict=True))
    assert ties_statistic(columns)(np.ones((1, 40)))[0] == pytest.approx(reference_ties_score(prompts))


def test_ties_chance_and_dropped_prompts():
    # One correct answer among two, no tied spread: chance is 0.3 * 1/2 + 0.3 * 1/2, the other terms undefined (0).
    chance = ties_chance_columns([2], [1], [2], [1], draws=20000, seed=0)
    assert ties_statistic(chance)(ONES)[0] == pytest.approx(0.3, abs=0.01)
    dropped = ties_columns([[1.0, math.nan]], [1], [[2.0, 1.0, 0.0]], [2])
    assert all(math.isnan(getattr(dropped, name)[0]) for name in ("ref_accurate", "tied_accurate", "preferred"))


def reference_style_matrix(chosen, rejected):
    """RM-Bench's `compute_accuracy` as its README states it: a strict `>`, triangles by numpy's triu/tril."""
    matrix = np.zeros((3, 3))
    for c, r in zip(chosen, rejected, strict=True):
        for i in range(3):
            for j in range(3):
                matrix[i][j] += c[i] > r[j]
    matrix /= len(chosen)
    return {
        "hard": np.sum(np.triu(matrix, 1)) / 3,
        "normal": np.mean(np.diag(matrix)),
        "easy": np.sum(np.tril(matrix, -1)) / 3,
    }


def all_pairs(chosen, rejected):
    """Every (chosen style, rejected style) comparison of each prompt, as `style_correct` takes them."""
    chosen, rejected = np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)
    cells = [(p, i, j) for p in range(len(chosen)) for i in range(3) for j in range(3)]
    p, i, j = (np.array(column) for column in zip(*cells, strict=True))
    return style_correct(p, i, j, chosen[p, i], rejected[p, j], len(chosen))


def test_rm_bench_matrix_on_a_constructed_case():
    # Chosen 2 ties rejected 1 (2 > 2 is false: a tie is wrong).
    correct = all_pairs([[3.0, 2.0, 1.0]], [[2.5, 2.0, 0.5]])
    np.testing.assert_array_equal(correct[0], [[1, 1, 1], [0, 0, 1], [0, 0, 1]])
    result = difficulty_accuracies(correct)
    assert (result["hard"], result["normal"], result["easy"]) == (pytest.approx(1.0), pytest.approx(2 / 3), 0.0)
    assert result["accuracy"] == pytest.approx(5 / 9)
    rng = np.random.default_rng(0)
    chosen, rejected = rng.integers(0, 3, (50, 3)).astype(float), rng.integers(0, 3, (50, 3)).astype(float)
    ours, reference = difficulty_accuracies(all_pairs(chosen, rejected)), reference_style_matrix(chosen, rejected)
    for name in ("easy", "normal", "hard"):
        assert ours[name] == pytest.approx(reference[name])
    per_prompt = unit_values(all_pairs(chosen, rejected), "hard")
    assert per_prompt.mean() == pytest.approx(reference["hard"])
    with_dropped = all_pairs([[3.0, 2.0, 1.0], [1.0, math.nan, 0.0]], [[2.5, 2.0, 0.5], [0.0, 0.0, 0.0]])
    assert difficulty_accuracies(with_dropped)["accuracy"] == pytest.approx(5 / 9)
    # A comparison of identical responses (no pair: the mapping skips it) is a tie, counted wrong.
    missing = style_correct([0, 0], [0, 1], [0, 1], [2.0, 2.0], [1.0, 1.0], 1)
    assert difficulty_accuracies(missing)["normal"] == pytest.approx(2 / 3)


def pair_accuracy_of(rewards):
    rewards = np.asarray(rewards, dtype=float)
    return masked_mean(rewards[:, 0] > rewards[:, 1])


def test_baselines_on_constructed_lengths_and_the_lead():
    lengths = np.array([[5, 2], [3, 6], [4, 4], [4, 1]], dtype=float)  # chosen longer, shorter, equal, longer
    model = pair_accuracy_of([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])  # 3 of 4 right
    rules = length_rules(pair_accuracy_of, lengths, masked_mean(np.full(4, 0.5)))
    result = compare_with_baselines(model, rules, 4, n_bootstrap=500, seed=0)
    # An equal length is a tie, scored as the benchmark scores a tied reward (here: not correct).
    assert result["longer_wins"] == 0.5 and result["shorter_wins"] == 0.25 and result["chance"] == 0.5
    assert result["best"] == "longer_wins" and result["lead"]["value"] == pytest.approx(0.25)
    low, high = result["lead"]["ci95"]
    assert low <= 0.25 <= high and low < high
    assert compare_with_baselines(model, rules, 4, n_bootstrap=0)["lead"]["ci95"] is None
    empty = compare_with_baselines(model, rules, 0)
    assert empty["best"] is None and math.isnan(empty["lead"]["value"])


def test_stratified_resamples_keep_each_stratum_size():
    strata = np.array([0, 0, 0, 1, 1, 2])
    for weights in resample_weights(6, 50, np.random.default_rng(0), strata):
        np.testing.assert_array_equal(weights[:, :3].sum(1), 3)
        np.testing.assert_array_equal(weights[:, 3:5].sum(1), 2)
        np.testing.assert_array_equal(weights[:, 5], 1)
    # A mean over strata: each part on its own units.
    both = mean_of([(np.array([0, 1]), masked_mean([1.0, 0.0])), (np.array([2]), masked_mean([1.0]))])
    assert both(np.ones((1, 3)))[0] == pytest.approx(0.75)
