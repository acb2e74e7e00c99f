"""The over-length policy on id lists (rewardlab.data.truncation)."""

import random

import pytest

from rewardlab.data.truncation import (
    DROPPED,
    OK,
    PROMPT_TRUNCATED,
    RESPONSE_TRUNCATED,
    common_prefix_length,
    truncate_pair,
)

BOS, EOS = 1, 2


def test_common_prefix_length():
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2
    assert common_prefix_length([5], [6]) == 0
    assert common_prefix_length([7, 8], [7, 8]) == 2


def test_fits_or_no_limit_is_ok():
    chosen, rejected = [BOS, 10, 11, EOS], [BOS, 10, 12, 13, EOS]
    for max_length in (None, 5, 100):
        result = truncate_pair(chosen, rejected, max_length, "truncate_prompt", keep_leading=1)
        assert (result.chosen_ids, result.rejected_ids, result.status) == (chosen, rejected, OK)


def test_prompt_truncated_from_the_left_after_bos():
    prompt = [BOS, 10, 11, 12, 13, 14, 15]
    chosen, rejected = prompt + [20, 21, EOS], prompt + [30, 31, 32, EOS]  # lengths 10 and 11
    result = truncate_pair(chosen, rejected, 8, "truncate_prompt", keep_leading=1)
    assert result.status == PROMPT_TRUNCATED
    # excess = 11 - 8 = 3 tokens removed right after BOS, from both.
    assert result.chosen_ids == [BOS, 13, 14, 15, 20, 21, EOS]
    assert result.rejected_ids == [BOS, 13, 14, 15, 30, 31, 32, EOS]


def test_without_keep_leading_the_first_token_goes_too():
    chosen, rejected = [BOS, 10, 11, 20, EOS], [BOS, 10, 11, 30, EOS]
    result = truncate_pair(chosen, rejected, 4, "truncate_prompt")
    assert result.chosen_ids == [10, 11, 20, EOS] and result.status == PROMPT_TRUNCATED


def test_response_cut_at_end_keeping_final_token():
    prompt = [BOS, 10, 11]
    chosen = prompt + [20, 21, 22, 23, 24, 25, EOS]  # response of 7 alone exceeds 5
    rejected = prompt + [30, EOS]
    result = truncate_pair(chosen, rejected, 5, "truncate_prompt", keep_leading=1)
    assert result.status == RESPONSE_TRUNCATED
    assert result.chosen_ids == [BOS, 20, 21, 22, EOS]
    assert result.rejected_ids == [BOS, 30, EOS]  # fits once the prompt is gone: not cut


def test_drop_and_error_policies():
    chosen, rejected = [BOS, 10, 11, 12, EOS], [BOS, 10, 13, EOS]
    dropped = truncate_pair(chosen, rejected, 4, "drop", keep_leading=1)
    assert dropped.status == DROPPED and dropped.chosen_ids == chosen and dropped.rejected_ids == rejected
    assert truncate_pair(chosen, rejected, 5, "drop").status == OK
    with pytest.raises(ValueError, match="max_length=4"):
        truncate_pair(chosen, rejected, 4, "error")
    assert truncate_pair(chosen, rejected, 5, "error").status == OK
    with pytest.raises(ValueError, match="unknown overlength policy"):
        truncate_pair(chosen, rejected, 4, "left")


def test_one_sequence_prefix_of_the_other():
    chosen = [BOS, 10, 11, 12]
    rejected = chosen + [13, 14, 15, 16]
    result = truncate_pair(chosen, rejected, 5, "truncate_prompt", keep_leading=1)
    assert result.chosen_ids != result.rejected_ids
    assert len(result.chosen_ids) <= 5 and len(result.rejected_ids) <= 5
    assert result.chosen_ids[-1] == 12 and result.rejected_ids[-1] == 16


def test_max_length_two_keeps_pairs_distinct():
    chosen, rejected = [BOS, 10, 11, 20, 21, EOS], [BOS, 10, 11, 30, 31, EOS]
    result = truncate_pair(chosen, rejected, 2, "truncate_prompt", keep_leading=1)
    assert result.status == RESPONSE_TRUNCATED
    assert result.chosen_ids == [20, EOS] and result.rejected_ids == [30, EOS]


def _random_pair(rng: random.Random):
    vocab = range(3, 3 + rng.choice([2, 3, 50]))  # a tiny vocabulary makes accidental overlaps common
    lead = [BOS] * rng.choice([0, 0, 1, 1, 2])
    prompt = [rng.choice(vocab) for _ in range(rng.randint(0, 30))]
    chosen = lead + prompt + [rng.choice(vocab) for _ in range(rng.randint(0, 20))]
    rejected = lead + prompt + [rng.choice(vocab) for _ in range(rng.randint(0, 20))]
    if rng.random() < 0.5:
        chosen.append(EOS)
        rejected.append(EOS)
    return chosen, rejected, len(lead)


def test_random_pairs_stay_within_max_length_and_distinct():
    rng = random.Random(1234)
    statuses = set()
    checked = 0
    while checked < 4000:
        chosen, rejected, lead = _random_pair(rng)
        if chosen == rejected or not chosen or not rejected:
            continue
        checked += 1
        max_length = rng.randint(2, 45)
        keep = rng.choice([0, lead, lead + 3])
        result = truncate_pair(chosen, rejected, max_length, "truncate_prompt", keep_leading=keep)
        statuses.add(result.status)
        c, r = result.chosen_ids, result.rejected_ids
        assert len(c) <= max_length and len(r) <= max_length
        assert c != r, (chosen, rejected, max_length, keep)
        assert c and r
        assert c[-1] == chosen[-1] and r[-1] == rejected[-1]  # the final token (eos) always survives
        if result.status == OK:
            assert (c, r) == (chosen, rejected)
        if result.status == PROMPT_TRUNCATED:
            # Same number of tokens removed from both, only from the shared prefix, after the kept leading ones.
            removed = len(chosen) - len(c)
            assert removed == len(rejected) - len(r) > 0
            k = min(keep, common_prefix_length(chosen, rejected))
            assert c == chosen[:k] + chosen[k + removed :]
            assert r == rejected[:k] + rejected[k + removed :]
            assert k + removed <= common_prefix_length(chosen, rejected)
            assert max(len(c), len(r)) == max_length
        if result.status == RESPONSE_TRUNCATED:
            assert max(len(chosen), len(rejected)) - common_prefix_length(chosen, rejected) > max_length - keep - 1
    assert statuses == {OK, PROMPT_TRUNCATED, RESPONSE_TRUNCATED}


def test_truncate_sequence_cuts_the_prompt_first_then_the_response_end():
    from rewardlab.data.truncation import truncate_sequence

    ids = [0, 1, 2, 3, 4, 5, 6, 7]  # 0 is BOS, the prompt is [0, 1, 2, 3, 4]
    assert truncate_sequence(ids, 5, None, "truncate_prompt") == (ids, "ok")
    assert truncate_sequence(ids, 5, 6, "truncate_prompt", keep_leading=1) == ([0, 3, 4, 5, 6, 7], "prompt_truncated")
    assert truncate_sequence(ids, 5, 3, "truncate_prompt", keep_leading=1) == ([0, 5, 7], "response_truncated")
    assert truncate_sequence(ids, 5, 6, "drop") == (ids, "dropped")
    with pytest.raises(ValueError, match="max_length=6"):
        truncate_sequence(ids, 5, 6, "error")
