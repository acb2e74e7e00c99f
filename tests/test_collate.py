import torch

from rewardlab.layout.collate import DataCollatorForPreference, pad_right


def test_layout_matches_trl_chosen_rows_then_rejected_rows():
    batch = DataCollatorForPreference(pad_token_id=0)(
        [{"chosen_ids": [1, 2, 3], "rejected_ids": [4, 5]}, {"chosen_ids": [6, 7], "rejected_ids": [8]}]
    )
    assert batch["input_ids"].tolist() == [[1, 2, 3], [6, 7, 0], [4, 5, 0], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0], [1, 1, 0], [1, 0, 0]]
    assert "margin" not in batch


def test_margin_and_pad_to_multiple_of():
    batch = DataCollatorForPreference(pad_token_id=9, pad_to_multiple_of=4)(
        [
            {"chosen_ids": [1, 2, 3, 4, 5], "rejected_ids": [4], "margin": 1},
            {"chosen_ids": [6], "rejected_ids": [8], "margin": 0.5},
        ]
    )
    assert batch["input_ids"].shape == (4, 8)
    assert batch["margin"].dtype == torch.float32
    assert batch["margin"].tolist() == [1.0, 0.5]
    assert batch["attention_mask"].sum().item() == 8


def test_pad_right_keeps_values():
    out, mask = pad_right([[5], [1, 2]], pad_value=-1)
    assert out.tolist() == [[5, -1], [1, 2]]
    assert mask.tolist() == [[1, 0], [1, 1]]


def test_docstring_examples():
    import doctest

    import rewardlab.layout.collate

    assert doctest.testmod(rewardlab.layout.collate).failed == 0


PAIRS = [
    {"chosen_ids": [1, 2, 3, 4], "rejected_ids": [1, 2, 5], "margin": 0.5},
    {"chosen_ids": [6, 7], "rejected_ids": [8, 9, 10, 11, 12], "margin": 0.0},
    {"chosen_ids": [1, 9], "rejected_ids": [1, 8], "margin": 1.0},
]


def test_every_batch_says_its_layout_and_a_padded_one_is_trls():
    from rewardlab.layout import Layout, layout_of

    for layout in (Layout.SUB_BATCHES, Layout.PACKED, Layout.SHARED_PREFIX):
        batch = DataCollatorForPreference(0, layout=layout)(PAIRS)
        assert batch["layout"] is layout and layout_of(batch) is layout
        assert int(batch["num_real_tokens"]) == sum(len(p["chosen_ids"]) + len(p["rejected_ids"]) for p in PAIRS)
    padded = DataCollatorForPreference(0)(PAIRS)
    assert set(padded) == {"input_ids", "attention_mask", "margin"} and layout_of(padded) is Layout.PADDED
    assert DataCollatorForPreference(0, layout="shared_prefix").layout is Layout.SHARED_PREFIX  # a name works too


def test_micro_batches_place_every_sequence_of_the_batch_once():
    from rewardlab.layout import Layout

    for layout in Layout.PADDED, Layout.SHARED_PREFIX, Layout.PACKED:
        batch = DataCollatorForPreference(0, layout=layout, max_tokens_per_batch=9)(PAIRS)
        assert batch["layout"] is Layout.MICRO_BATCHES and len(batch["micro_batches"]) > 1
        positions = torch.cat([m["sequence_index"] for m in batch["micro_batches"]])
        assert sorted(positions.tolist()) == list(range(2 * len(PAIRS)))  # chosen 0..2, then rejected 3..5
        for micro in batch["micro_batches"]:
            examples = micro["example_index"].tolist()
            assert micro["sequence_index"].tolist() == examples + [len(PAIRS) + e for e in examples]
        assert batch["margin"].tolist() == [0.5, 0.0, 1.0]  # the whole batch's, for evaluation
