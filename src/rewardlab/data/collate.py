"""Batch tokenized preference pairs into model inputs (the padded layout of TRL's DataCollatorForPreference)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers.data.data_collator import DataCollatorMixin

from rewardlab.packing import (
    SharedPrefixGroup,
    plan_sub_batches,
    prefix_groups,
    shared_prefix_mask,
    split_by_token_budget,
)


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


def split_into_micro_batches(
    examples: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, Any]],
    costs: list[int],
    max_tokens: int,
    padded: bool,
    **whole_batch: Any,
) -> dict[str, Any]:
    """Collate `examples` as one batch, or, over the token budget, as `micro_batches` of whole examples.

    Each micro-batch is a complete batch of the same layout plus `example_index` (its examples' positions in
    `examples`) and `loss_weight` (its share of the examples): the trainer runs forward and backward per micro-batch
    and accumulates the gradients, so the loss and gradients are the whole batch's while activation memory follows
    the budget. `whole_batch` entries (e.g. every pair's `margin`, for evaluation) are added to the split batch.
    """
    groups = split_by_token_budget(costs, max_tokens, padded)
    if len(groups) == 1:
        return collate(examples)
    micro_batches = []
    for group in groups:
        micro = collate([examples[i] for i in group])
        micro["example_index"] = torch.tensor(group)
        micro["loss_weight"] = torch.tensor(len(group) / len(examples))
        micro_batches.append(micro)
    return {"micro_batches": micro_batches, **whole_batch}


def margins(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """`{"margin": float tensor}` when the pairs have margins, else {}."""
    if "margin" not in examples[0]:
        return {}
    return {"margin": torch.tensor([float(e["margin"]) for e in examples], dtype=torch.float)}


@dataclass
class DataCollatorForPreference(DataCollatorMixin):
    """
    Pad pairs into one batch: rows `0..B-1` hold the chosen sequences, rows `B..2B-1` the rejected ones.

    Each example needs `chosen_ids` and `rejected_ids`; an optional `margin` becomes a float tensor. Padding is on the
    right, so a sequence-classification head that reads the rightmost non-pad token sees the same token it would see
    for the unpadded sequence in plain `transformers`. With `max_tokens_per_batch`, a batch whose padded size
    (2 x pairs x longest sequence) exceeds it comes as `micro_batches` (see `split_into_micro_batches`).

    >>> collator = DataCollatorForPreference(pad_token_id=0)
    >>> examples = [{"chosen_ids": [1, 2, 3], "rejected_ids": [4, 5]}, {"chosen_ids": [6, 7], "rejected_ids": [8]}]
    >>> batch = collator(examples)
    >>> batch["input_ids"].tolist()
    [[1, 2, 3], [6, 7, 0], [4, 5, 0], [8, 0, 0]]
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    max_tokens_per_batch: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if self.max_tokens_per_batch is None:  # the common case: nothing to measure
            return self._collate(examples)
        costs = [2 * max(len(e["chosen_ids"]), len(e["rejected_ids"])) for e in examples]
        return split_into_micro_batches(
            examples, self._collate, costs, self.max_tokens_per_batch, padded=True, **margins(examples)
        )

    def _collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences = [e["chosen_ids"] for e in examples] + [e["rejected_ids"] for e in examples]
        input_ids, attention_mask = pad_right(sequences, self.pad_token_id, self.pad_to_multiple_of)
        return {"input_ids": input_ids, "attention_mask": attention_mask, **margins(examples)}


@dataclass
class DataCollatorForFastPreference(DataCollatorMixin):
    """
    Batch pairs without padding waste, in one of three layouts (see `rewardlab.packing`):
    - default, any architecture: `sub_batches`, each with `input_ids`/`attention_mask` of sequences of similar
      length and `sequence_index` (0..B-1 chosen, B..2B-1 rejected).
    - `share_prompt=True` (causal models): each pair is laid out as `prompt + chosen response + rejected response`
      and the pairs are packed into one row: `input_ids` and `position_ids` of shape (1, n), `segments` (each pair's
      span and boolean attention mask, see `rewardlab.attention`), and `readout_index`, where each sequence's reward
      is read (chosen sequences first, then rejected). Given the model's `hidden_size`, a pair whose shared prompt
      saves less than its group's attention costs keeps its two sequences apart in the row
      (`rewardlab.packing.prefix_groups`).
    - `pack_sequences=True` (BERT-style encoders): whole sequences concatenated into one row, each attending to
      itself only: `input_ids`, `position_ids`, `segments` and `first_index` (where each sequence starts; chosen
      first, then rejected).
    `num_real_tokens` counts the tokens of chosen and rejected as sequences (TRL's `num_tokens`), whatever is shared.
    With `max_tokens_per_batch`, a batch computing more tokens than that comes as `micro_batches` (see
    `split_into_micro_batches`).
    """

    pad_token_id: int
    share_prompt: bool = False
    pack_sequences: bool = False
    overhead_tokens: int = 32
    max_tokens_per_batch: int | None = None
    hidden_size: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if self.max_tokens_per_batch is None:  # the common case: no prefix scan just to price the pairs
            return self._collate(examples)
        if self.share_prompt:
            costs = [sum(len(g) for g in self._groups(e["chosen_ids"], e["rejected_ids"])) for e in examples]
        else:
            costs = [len(e["chosen_ids"]) + len(e["rejected_ids"]) for e in examples]
        return split_into_micro_batches(
            examples, self._collate, costs, self.max_tokens_per_batch, padded=False, **margins(examples)
        )

    def _collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = [e["chosen_ids"] for e in examples]
        rejected = [e["rejected_ids"] for e in examples]
        batch: dict[str, Any] = {
            "num_pairs": torch.tensor(len(examples)),
            "num_real_tokens": torch.tensor(sum(len(s) for s in chosen + rejected)),
            **margins(examples),
        }
        if self.share_prompt:
            row = pack_shared_prefix_groups(
                [g for c, r in zip(chosen, rejected, strict=True) for g in self._groups(c, r)]
            )
            # Read-outs come per group (chosen, rejected); the rewards are expected as all chosen, then all rejected.
            row["readout_index"] = row["readout_index"].view(-1, 2).t().reshape(-1)
            batch.update(row)
        elif self.pack_sequences:
            batch.update(pack_sequences(chosen + rejected))
        else:
            batch.update(length_grouped_sub_batches(chosen + rejected, self.pad_token_id, self.overhead_tokens))
        return batch

    def _groups(self, chosen: list[int], rejected: list[int]) -> list[SharedPrefixGroup]:
        return prefix_groups([chosen, rejected], self.pad_token_id, self.hidden_size)


def length_grouped_sub_batches(sequences: list[list[int]], pad_token_id: int, overhead_tokens: int) -> dict[str, Any]:
    """Any architecture: `sub_batches` of sequences of similar length, each padded to its own longest sequence.

    Each sub-batch carries `sequence_index`, the positions of its sequences in `sequences`.
    """
    sub_batches = []
    for group in plan_sub_batches([len(s) for s in sequences], overhead_tokens):
        input_ids, attention_mask = pad_right([sequences[i] for i in group], pad_token_id)
        sub_batches.append(
            {"input_ids": input_ids, "attention_mask": attention_mask, "sequence_index": torch.tensor(group)}
        )
    return {"sub_batches": sub_batches}


def pack_shared_prefix_groups(groups: list[SharedPrefixGroup]) -> dict[str, Any]:
    """Causal models: groups concatenated into one row, each group's span with its own attention mask.

    `readout_index` lists every sequence's read-out position, group after group.
    """
    input_ids, position_ids, segments, readout = [], [], [], []
    for group in groups:
        offset = len(input_ids)
        input_ids += group.input_ids
        position_ids += group.position_ids
        mask = shared_prefix_mask(group)
        segments.append((offset, offset + len(group), None if mask is None else mask[None, None]))
        readout += [offset + j for j in group.readout_index]
    return {
        "input_ids": torch.tensor([input_ids]),
        "position_ids": torch.tensor([position_ids]),
        "segments": segments,
        "readout_index": torch.tensor(readout),
    }


def pack_sequences(sequences: list[list[int]]) -> dict[str, Any]:
    """Encoders: whole sequences concatenated into one row, each attending to itself only, positions restarting.

    `first_index` is where each sequence starts (the [CLS] token the pooler reads).
    """
    input_ids, position_ids, segments = [], [], []
    for sequence in sequences:
        offset = len(input_ids)
        input_ids += list(sequence)
        position_ids += range(len(sequence))
        segments.append((offset, len(input_ids), None))
    return {
        "input_ids": torch.tensor([input_ids]),
        "position_ids": torch.tensor([position_ids]),
        "segments": segments,
        "first_index": torch.tensor([start for start, _, _ in segments]),
    }


@dataclass
class DataCollatorForRanking(DataCollatorMixin):
    """
    Batch rankings: each example has `response_ids` (K >= 2 token-id lists, prompt included) and `scores` (K floats,
    higher is better). The output holds every response of every prompt in one layout, prompt after prompt:

    - `share_prompt=True` (causal models): each prompt's K responses form one shared-prefix group (the prompt is
      computed once, each response attends to it and to itself), all groups packed into one row (with the model's
      `hidden_size`, responses apart where sharing would cost more: `rewardlab.packing.prefix_groups`);
    - `pack_sequences=True` (encoders): every response packed into one row, each attending to itself;
    - `length_grouped=True` (any other architecture): length-grouped `sub_batches`, as for pairs;
    - none of these: the padded layout (`input_ids`, `attention_mask`), one row per response.

    Plus `scores` (flat, float) and `group_sizes` (K of each prompt), for `rewardlab.ranking`. With
    `max_tokens_per_batch`, a batch computing more tokens than that comes as `micro_batches` of whole rankings (see
    `split_into_micro_batches`).
    """

    pad_token_id: int
    share_prompt: bool = False
    pack_sequences: bool = False
    length_grouped: bool = False
    overhead_tokens: int = 32
    max_tokens_per_batch: int | None = None
    hidden_size: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if self.max_tokens_per_batch is None:
            return self._collate(examples)
        padded = not (self.share_prompt or self.pack_sequences or self.length_grouped)
        costs = []
        for e in examples:
            lengths = [len(r) for r in e["response_ids"]]
            if padded:
                costs.append(len(lengths) * max(lengths))
            elif self.share_prompt:
                costs.append(sum(len(g) for g in self._groups(e["response_ids"])))
            else:
                costs.append(sum(lengths))
        return split_into_micro_batches(examples, self._collate, costs, self.max_tokens_per_batch, padded=padded)

    def _groups(self, responses: list[list[int]]) -> list[SharedPrefixGroup]:
        return prefix_groups(responses, self.pad_token_id, self.hidden_size)

    def _collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        responses = [list(r) for e in examples for r in e["response_ids"]]
        batch: dict[str, Any] = {
            "scores": torch.tensor([float(s) for e in examples for s in e["scores"]], dtype=torch.float),
            "group_sizes": torch.tensor([len(e["response_ids"]) for e in examples]),
            "num_real_tokens": torch.tensor(sum(len(r) for r in responses)),
        }
        if self.share_prompt:
            batch.update(pack_shared_prefix_groups([g for e in examples for g in self._groups(e["response_ids"])]))
        elif self.pack_sequences:
            batch.update(pack_sequences(responses))
        elif self.length_grouped:
            batch.update(length_grouped_sub_batches(responses, self.pad_token_id, self.overhead_tokens))
        else:
            batch["input_ids"], batch["attention_mask"] = pad_right(responses, self.pad_token_id)
        return batch
