"""The over-length policy on id lists (rewardlab.data.truncation)."""

import random

import pytest

from rewardlab.data.truncation import (
    DROPPED,
    OK,
    PROMPT_TRUNCATED,
    RESPONSE_TRUNCATED,
    common_prefix_length,
    truncate_group,
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


# ------------------------------------------------------------------------------------------------ K sequences


def test_group_prefix_length():
    assert common_prefix_length(*[[1, 2, 3], [1, 2, 4], [1, 5]]) == 1
    assert common_prefix_length(*[[1, 2, 3], [1, 2, 3, 4]]) == 3
    assert common_prefix_length(*[[7, 8]]) == 2
    assert common_prefix_length(*[]) == 0


def test_group_fits_or_no_limit_is_ok():
    group = [[BOS, 10, 11, EOS], [BOS, 10, 12, 13, EOS], [BOS, 14, EOS]]
    for max_length in (None, 5, 100):
        result = truncate_group(group, max_length, "truncate_prompt", keep_leading=1)
        assert (result.sequences, result.status) == (group, OK)


def test_group_prompt_truncated_identically_in_all_after_bos():
    prompt = [BOS, 10, 11, 12, 13, 14, 15]
    group = [prompt + [20, 21, EOS], prompt + [30, 31, 32, EOS], prompt + [40, EOS]]  # lengths 10, 11, 9
    result = truncate_group(group, 8, "truncate_prompt", keep_leading=1)
    assert result.status == PROMPT_TRUNCATED
    # excess = 11 - 8 = 3 tokens removed right after BOS, from all three.
    assert result.sequences == [
        [BOS, 13, 14, 15, 20, 21, EOS],
        [BOS, 13, 14, 15, 30, 31, 32, EOS],
        [BOS, 13, 14, 15, 40, EOS],
    ]
    without_bos = truncate_group(group, 8, "truncate_prompt")
    assert without_bos.sequences[2] == [12, 13, 14, 15, 40, EOS]


def test_group_shared_prefix_is_the_prefix_of_all():
    # Sequences 0 and 1 share [BOS, 10, 11, 12]; all three only [BOS, 10]: only token 10 can go.
    group = [[BOS, 10, 11, 12, 20, EOS], [BOS, 10, 11, 12, 30, EOS], [BOS, 10, 40, EOS]]
    result = truncate_group(group, 5, "truncate_prompt", keep_leading=1)
    assert result.status == PROMPT_TRUNCATED
    assert result.sequences == [[BOS, 11, 12, 20, EOS], [BOS, 11, 12, 30, EOS], [BOS, 40, EOS]]


def test_group_response_cut_at_end_keeping_final_token():
    prompt = [BOS, 10, 11]
    group = [prompt + [20, 21, 22, 23, 24, 25, EOS], prompt + [30, EOS], prompt + [40, 41, 42, 43, 44, EOS]]
    result = truncate_group(group, 5, "truncate_prompt", keep_leading=1)
    assert result.status == RESPONSE_TRUNCATED
    assert result.sequences == [[BOS, 20, 21, 22, EOS], [BOS, 30, EOS], [BOS, 40, 41, 42, EOS]]


def test_group_cut_can_make_two_responses_equal():
    # Two responses that differ only after max_length: the caller must check (prepare rejects the row).
    group = [[BOS, 10, 20, 21, 22, 23, 1001, EOS], [BOS, 10, 20, 21, 22, 23, 1002, EOS], [BOS, 10, 30, EOS]]
    result = truncate_group(group, 5, "truncate_prompt", keep_leading=1)
    assert result.status == RESPONSE_TRUNCATED
    assert result.sequences[0] == result.sequences[1] == [BOS, 20, 21, 22, EOS]


def test_group_drop_and_error_policies():
    group = [[BOS, 10, 11, 12, EOS], [BOS, 10, 13, EOS], [BOS, 10, 14, 15, 16, 17, EOS]]
    dropped = truncate_group(group, 5, "drop", keep_leading=1)
    assert dropped.status == DROPPED and dropped.sequences == group
    assert truncate_group(group, 7, "drop").status == OK
    with pytest.raises(ValueError, match=r"3 responses of 5, 4, 7 tokens, more than max_length=5"):
        truncate_group(group, 5, "error")
    with pytest.raises(ValueError, match="unknown overlength policy"):
        truncate_group(group, 5, "left")


def test_pair_error_still_names_chosen_and_rejected():
    with pytest.raises(ValueError, match=r"chosen has 5 tokens and rejected 4, more than max_length=3"):
        truncate_pair([BOS, 10, 11, 12, EOS], [BOS, 10, 13, EOS], 3, "error")


def test_random_groups_stay_within_max_length_and_pairs_agree_with_groups_of_two():
    rng = random.Random(99)
    statuses = set()
    for _ in range(3000):
        chosen, rejected, lead = _random_pair(rng)
        extra = _random_pair(rng)[0]
        group = [chosen, rejected, chosen[: len(chosen) // 2] + extra[len(chosen) // 2 :]]
        if any(not s for s in group):
            continue
        max_length = rng.randint(2, 45)
        keep = rng.choice([0, lead, lead + 3])
        result = truncate_group(group, max_length, "truncate_prompt", keep_leading=keep)
        statuses.add(result.status)
        assert len(result.sequences) == 3
        for before, after in zip(group, result.sequences, strict=True):
            assert after and len(after) <= max_length and after[-1] == before[-1]
        if result.status == PROMPT_TRUNCATED:
            removed = {len(b) - len(a) for b, a in zip(group, result.sequences, strict=True)}
            assert len(removed) == 1
            n, k = removed.pop(), min(keep, common_prefix_length(*group))
            assert k + n <= common_prefix_length(*group)
            assert result.sequences == [s[:k] + s[k + n :] for s in group]
        if result.status == OK:
            assert result.sequences == group
        pair = truncate_pair(chosen, rejected, max_length, "truncate_prompt", keep_leading=keep)
        two = truncate_group([chosen, rejected], max_length, "truncate_prompt", keep_leading=keep)
        assert (pair.chosen_ids, pair.rejected_ids, pair.status) == (*two.sequences, two.status)
    assert statuses == {OK, PROMPT_TRUNCATED, RESPONSE_TRUNCATED}
