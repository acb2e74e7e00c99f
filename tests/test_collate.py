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
