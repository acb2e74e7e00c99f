"""Batch tokenized preference pairs into model inputs (the padded layout of TRL's DataCollatorForPreference)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.data.data_collator import DataCollatorMixin

from rewardlab.packing import pack_groups, plan_sub_batches, shared_prefix_mask, shared_prefix_row


def pad_right(
    sequences: list[list[int]], pad_value: int, pad_to_multiple_of: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack id lists into one tensor padded on the right (to a multiple if asked), with its attention mask."""
    length = max(len(s) for s in sequences)
    if pad_to_multiple_of:
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(sequences), length), pad_value, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    return input_ids, attention_mask


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
        input_ids, attention_mask = pad_right(sequences, self.pad_token_id, self.pad_to_multiple_of)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "margin" in examples[0]:
            batch["margin"] = torch.tensor([float(e["margin"]) for e in examples], dtype=torch.float)
        return batch


@dataclass
class DataCollatorForFastPreference(DataCollatorMixin):
    """
    Batch pairs without padding waste: length-grouped sub-batches, optionally with the prompt shared per pair.

    The output holds the same pairs as `DataCollatorForPreference` would, in `sub_batches` (see `rewardlab.packing`):
    - `share_prompt=False`: each sub-batch has `input_ids`/`attention_mask` of sequences of similar length and
      `sequence_index` (0..B-1 chosen, B..2B-1 rejected), for any architecture.
    - `share_prompt=True` (causal models): each pair is laid out as `prompt + chosen response + rejected response`
      and the pairs are packed into one row (or several, each under `max_tokens_per_sub_batch`) with
      `position_ids`, `segments` (each pair's span and boolean attention mask, see `rewardlab.attention`), the
      read-out positions `chosen_index` and `rejected_index`, and `pair_index`.
    - `pack_sequences=True` (BERT-style encoders): whole sequences concatenated into one row, each attending to
      itself only, with `position_ids`, `segments`, `first_index` (where each sequence starts) and
      `sequence_index`.
    `num_real_tokens` counts the tokens of chosen and rejected as sequences (TRL's `num_tokens`), whatever is shared.
    """

    pad_token_id: int
    share_prompt: bool = False
    pack_sequences: bool = False
    overhead_tokens: int = 32
    max_tokens_per_sub_batch: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = [e["chosen_ids"] for e in examples]
        rejected = [e["rejected_ids"] for e in examples]
        batch: dict[str, Any] = {
            "num_pairs": torch.tensor(len(examples)),
            "num_real_tokens": torch.tensor(sum(len(s) for s in chosen + rejected)),
        }
        if "margin" in examples[0]:
            batch["margin"] = torch.tensor([float(e["margin"]) for e in examples], dtype=torch.float)
        if self.share_prompt:
            rows = [shared_prefix_row(c, r, self.pad_token_id) for c, r in zip(chosen, rejected, strict=True)]
            groups = pack_groups([len(r) for r in rows], self.max_tokens_per_sub_batch)
            batch["sub_batches"] = [self._packed_row(rows, group) for group in groups]
        elif self.pack_sequences:
            sequences = chosen + rejected
            groups = pack_groups([len(s) for s in sequences], self.max_tokens_per_sub_batch)
            batch["sub_batches"] = [self._packed_sequences(sequences, group) for group in groups]
        else:
            sequences = chosen + rejected
            batch["sub_batches"] = [self._sequence_sub_batch(sequences, group) for group in self._plan(sequences)]
        return batch

    def _plan(self, items) -> list[list[int]]:
        return plan_sub_batches([len(x) for x in items], self.overhead_tokens, self.max_tokens_per_sub_batch)

    def _sequence_sub_batch(self, sequences, group: list[int]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_right([sequences[i] for i in group], self.pad_token_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "sequence_index": torch.tensor(group)}

    def _packed_row(self, rows, group: list[int]) -> dict[str, Any]:
        """The pairs of `group` concatenated into one row, with each pair's span and attention mask."""
        input_ids, position_ids, segments, chosen_index, rejected_index = [], [], [], [], []
        for i in group:
            row, offset = rows[i], len(input_ids)
            input_ids += row.input_ids
            position_ids += row.position_ids
            segments.append((offset, offset + len(row), shared_prefix_mask(row)[None, None]))
            chosen_index.append(offset + row.chosen_index)
            rejected_index.append(offset + row.rejected_index)
        return {
            "input_ids": torch.tensor([input_ids]),
            "position_ids": torch.tensor([position_ids]),
            "segments": segments,
            "chosen_index": torch.tensor(chosen_index),
            "rejected_index": torch.tensor(rejected_index),
            "pair_index": torch.tensor(group),
        }

    def _packed_sequences(self, sequences, group: list[int]) -> dict[str, Any]:
        """Whole sequences concatenated into one row (encoders): each attends to itself only, positions restart."""
        input_ids, position_ids, segments = [], [], []
        for i in group:
            offset = len(input_ids)
            input_ids += list(sequences[i])
            position_ids += range(len(sequences[i]))
            segments.append((offset, len(input_ids), None))
        return {
            "input_ids": torch.tensor([input_ids]),
            "position_ids": torch.tensor([position_ids]),
            "segments": segments,
            "first_index": torch.tensor([start for start, _, _ in segments]),
            "sequence_index": torch.tensor(group),
        }
