"""Batch tokenized preference pairs into model inputs (the padded layout of TRL's DataCollatorForPreference)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.data.data_collator import DataCollatorMixin


def pad_right(sequences: list[list[int]], pad_value: int, pad_to_multiple_of: int | None = None) -> torch.Tensor:
    """Stack id lists into one tensor, padded on the right to the longest (rounded up to a multiple if asked)."""
    length = max(len(s) for s in sequences)
    if pad_to_multiple_of:
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    out = torch.full((len(sequences), length), pad_value, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out


@dataclass
class DataCollatorForPreference(DataCollatorMixin):
    """
    Pad pairs into one batch: rows `0..B-1` hold the chosen sequences, rows `B..2B-1` the rejected ones.

    Each example needs `chosen_ids` and `rejected_ids`; an optional `margin` becomes a float tensor. Padding is on the
    right, so a sequence-classification head that reads the rightmost non-pad token sees the same token it would see
    for the unpadded sequence in plain `transformers`.

    >>> collator = DataCollatorForPreference(pad_token_id=0)
    >>> examples = [{"chosen_ids": [1, 2, 3], "rejected_ids": [4, 5]}, {"chosen_ids": [6, 7], "rejected_ids": [8]}]
    >>> batch = collator(examples)
    >>> batch["input_ids"].tolist()
    [[1, 2, 3], [6, 7, 0], [4, 5, 0], [8, 0, 0]]
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences = [e["chosen_ids"] for e in examples] + [e["rejected_ids"] for e in examples]
        lengths = torch.tensor([len(s) for s in sequences])
        input_ids = pad_right(sequences, self.pad_token_id, self.pad_to_multiple_of)
        attention_mask = (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).long()
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "margin" in examples[0]:
            batch["margin"] = torch.tensor([float(e["margin"]) for e in examples], dtype=torch.float)
        return batch
