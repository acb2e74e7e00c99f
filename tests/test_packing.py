import itertools

import pytest
import torch

from rewardlab.data.positions import readout_index, shared_prefix_length
from rewardlab.layout.plan import plan_sub_batches, shared_prefix_group, split_by_token_budget
from rewardlab.layout.varlen import causal_mask, group_segments, varlen_plan


def shared_prefix_mask(group):
    """The (n, n) attention a group's varlen segments allow: True where a query token sees a key token."""
    queries, keys = zip(*group_segments(0, group.prefix_length, group.tail_starts, len(group)), strict=True)
    plan = varlen_plan(queries, keys, causal=True)
    positions = plan["kv_index"].tolist() if plan["kv_index"] is not None else list(range(len(group)))
    allowed = torch.zeros(len(group), len(group), dtype=torch.bool)
    for q_start, q_end, k_start, k_end in plan["segments"]:
        seen = causal_mask(q_end - q_start, k_end - k_start)
        allowed[q_start:q_end, positions[k_start:k_end]] = seen
    return allowed


def test_readout_follows_transformers_rightmost_non_pad_rule():
    assert readout_index([5, 6, 7], pad_token_id=0) == 2
    assert readout_index([5, 6, 0, 0], pad_token_id=0) == 1  # pad == eos: trailing eos tokens are skipped
    assert readout_index([0, 5, 0], pad_token_id=0) == 1
    assert readout_index([0, 0], pad_token_id=0) == 0  # transformers' argmax of an all-zero mask
    assert readout_index([5, 6], pad_token_id=None) == 1


def test_shared_prefix_leaves_each_side_a_token():
    assert shared_prefix_length([1, 2, 3, 4], [1, 2, 9]) == 2
    assert shared_prefix_length([1, 2, 3, 4], [1, 2, 3, 5], [1, 9]) == 1
    assert shared_prefix_length([1, 2, 3], [1, 2, 3, 4]) == 2  # chosen is a prefix of rejected
    assert shared_prefix_length([7], [7]) == 0


def test_pair_layout_positions_and_mask():
    row = shared_prefix_group([[1, 2, 3, 4], [1, 2, 8, 9, 10]], pad_token_id=0)
    assert row.input_ids == [1, 2, 3, 4, 8, 9, 10]
    assert row.position_ids == [0, 1, 2, 3, 2, 3, 4]  # rejected continues from the end of the prompt
    assert (row.prefix_length, row.tail_starts, row.readout_index) == (2, [2, 4], [3, 6])
    mask = shared_prefix_mask(row)
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0, 0],
            [1, 1, 0, 0, 1, 0, 0],  # rejected sees the prompt and itself, never the chosen response
            [1, 1, 0, 0, 1, 1, 0],
            [1, 1, 0, 0, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)


def test_rejected_readout_inside_the_prompt_maps_to_the_prompt():
    row = shared_prefix_group([[1, 2, 3], [1, 2, 0]], pad_token_id=0)  # rejected response is only a pad/eos token
    assert row.readout_index == [2, 1]


def test_group_of_three_and_group_of_one():
    group = shared_prefix_group([[5, 6, 1], [5, 6, 2, 3], [5, 6, 4]], pad_token_id=None)
    assert group.input_ids == [5, 6, 1, 2, 3, 4]
    assert group.position_ids == [0, 1, 2, 2, 3, 2]
    assert group.readout_index == [2, 4, 5]
    mask = shared_prefix_mask(group)
    assert mask[4].tolist() == [True, True, False, True, True, False]  # sees the prompt and itself only
    assert mask[5].tolist() == [True, True, False, False, False, True]
    single = shared_prefix_group([[7, 8, 9]], pad_token_id=None)
    assert single.input_ids == [7, 8, 9] and single.readout_index == [2]
    assert torch.equal(shared_prefix_mask(single), torch.ones(3, 3, dtype=torch.bool).tril())


def _padded_cost(lengths, groups, overhead):
    return sum(len(g) * max(lengths[i] for i in g) + overhead for g in groups)


@pytest.mark.parametrize("overhead", [0, 10, 1000])
def test_plan_is_an_optimal_partition_of_all_indices(overhead):
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 100, (7,), generator=g).tolist()
    groups = plan_sub_batches(lengths, overhead_tokens=overhead)
    assert sorted(itertools.chain(*groups)) == list(range(7))
    order = sorted(range(7), key=lambda i: -lengths[i])
    best = min(  # brute force over every split of the sorted order into contiguous groups
        _padded_cost(lengths, [order[a:b] for a, b in zip((0, *cuts), (*cuts, 7), strict=True)], overhead)
        for k in range(7)
        for cuts in itertools.combinations(range(1, 7), k)
    )
    assert _padded_cost(lengths, groups, overhead) == best
    if overhead >= 1000:
        assert len(groups) == 1


def test_plan_of_nothing_is_empty():
    assert plan_sub_batches([]) == []


def _budget_cost(costs, group, padded):
    return len(group) * max(costs[i] for i in group) if padded else sum(costs[i] for i in group)


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_token_budget_groups_partition_the_items_within_the_budget(padded, seed):
    g = torch.Generator().manual_seed(seed)
    costs = torch.randint(1, 300, (int(torch.randint(1, 30, (1,), generator=g)),), generator=g).tolist()
    budget = 400
    groups = split_by_token_budget(costs, budget, padded)
    assert sorted(itertools.chain(*groups)) == list(range(len(costs)))
    for group in groups:
        assert _budget_cost(costs, group, padded) <= budget or len(group) == 1
    # Greedy, but never wasteful: no two groups could have been merged.
    for a, b in itertools.combinations(groups, 2):
        assert _budget_cost(costs, a + b, padded) > budget


def test_token_budget_keeps_an_oversized_item_alone_and_a_small_batch_whole():
    assert split_by_token_budget([500, 10, 20], 100) == [[0], [2, 1]]
    assert split_by_token_budget([10, 20, 30], 100) == [[2, 1, 0]]
    assert split_by_token_budget([40, 30, 30], 100, padded=True) == [[0, 1], [2]]  # 3 x 40 > 100
    with pytest.raises(ValueError, match="positive"):
        split_by_token_budget([1], 0)


def test_group_by_shared_prefix_groups_neighbours_and_respects_limits():
    from rewardlab.layout.plan import group_by_shared_prefix

    prompt_a, prompt_b = list(range(100, 120)), list(range(200, 220))
    sequences = [prompt_a + [1], prompt_b + [2, 3], prompt_a + [4, 5], [7, 8], prompt_b + [9], prompt_a + [6]]
    groups = group_by_shared_prefix(sequences, min_shared_tokens=16)
    assert sorted(sorted(g) for g in groups) == [[0, 2, 5], [1, 4], [3]]
    for group in groups:  # the packed length the limit is about equals the real row length
        if len(group) > 1:
            assert len(shared_prefix_group([sequences[i] for i in group], None)) <= 2048
    capped = group_by_shared_prefix(sequences, min_shared_tokens=16, max_group_tokens=23)
    assert all(len(shared_prefix_group([sequences[i] for i in g], None)) <= 23 for g in capped if len(g) > 1)
    assert len(capped) > len(groups)
    assert group_by_shared_prefix(sequences, min_shared_tokens=21) == [
        [i] for i in sorted(range(6), key=sequences.__getitem__)
    ]
