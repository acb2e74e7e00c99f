import numpy as np
import pytest
import torch

from rewardlab.metrics.running import (
    batch_statistics,
    empty_statistics,
    merge_statistics,
    preference_metrics,
    summarize_statistics,
)


def test_ragged_batches_give_the_exact_accuracy_not_a_mean_of_batch_means():
    # Batches of 5, 5 and 2 pairs with 3, 3 and 0 correct: TRL reports (0.6 + 0.6 + 0) / 3 = 0.40... the truth is 6/12.
    batches = [
        (torch.tensor([1.0, 1, 1, 0, 0]), torch.tensor([0.0, 0, 0, 1, 1])),
        (torch.tensor([1.0, 1, 1, 0, 0]), torch.tensor([0.0, 0, 0, 1, 1])),
        (torch.tensor([0.0, 0]), torch.tensor([1.0, 1])),
    ]
    stats = merge_statistics(torch.stack([batch_statistics(c, r) for c, r in batches]))
    metrics = summarize_statistics(stats)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["num_pairs"] == 12
    mean_of_means = np.mean([(c > r).float().mean().item() for c, r in batches])
    assert mean_of_means != pytest.approx(0.5)


def test_ties_are_counted_and_not_correct():
    m = preference_metrics(np.array([1.0, 2.0, 3.0, 0.0]), np.array([1.0, 1.0, 3.0, 1.0]))
    assert m["ties"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.25)


def test_reward_statistics_and_margin():
    rc, rr = np.array([1.0, -2.0, 4.0]), np.array([0.5, 3.0, -1.0])
    m = preference_metrics(rc, rr)
    assert m["min_reward"] == -2.0 and m["max_reward"] == 4.0
    assert m["mean_reward"] == pytest.approx(np.concatenate([rc, rr]).mean())
    assert m["margin"] == pytest.approx(np.mean(rc - rr))
    expected_loss = np.mean(np.log1p(np.exp(-(rc - rr))))
    assert m["loss"] == pytest.approx(expected_loss)


def test_merge_is_order_independent_and_has_a_neutral_element():
    g = torch.Generator().manual_seed(0)
    parts = [batch_statistics(torch.randn(n, generator=g), torch.randn(n, generator=g)) for n in (3, 7, 1)]
    a = merge_statistics(torch.stack(parts + [empty_statistics()]))
    b = merge_statistics(torch.stack(parts[::-1]))
    torch.testing.assert_close(a, b)
    assert summarize_statistics(empty_statistics()) == {}


def test_loss_metric_includes_margin_and_centring():
    rc, rr, margin = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.5, 0.5])
    m = preference_metrics(rc, rr, margin, center_rewards_coefficient=0.1)
    expected = np.mean(np.log1p(np.exp(-(rc - rr - margin)))) + 0.1 * np.mean((rc + rr) ** 2)
    assert m["loss"] == pytest.approx(expected)
